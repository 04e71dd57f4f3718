/* img2img.h - what an init image (diffusers' StableDiffusion(XL)Img2ImgPipeline),
 * an init image with a mask (StableDiffusionInpaintPipeline) or init latents
 * (the hires fix's second pass) change in a denoising run (generate.c):
 * the start latents and the first call of the schedule, the inpainting
 * UNet's extra input channels, and an ordinary UNet's blend after each
 * step. A text-to-image run leaves the state inactive and nothing here
 * changes it. */
#ifndef SDC_PIPELINE_IMG2IMG_H
#define SDC_PIPELINE_IMG2IMG_H

#include "family/model.h"
#include "pipeline/request.h"
#include "rng/noise_gen.h"
#include "sched/scheduler.h"

typedef struct {
    int active;           /* the start latents were made here; the run starts at `begin` */
    int begin, steps_run; /* first scheduler call (t_start * scheduler.order); UNet steps that run */
    int extra;            /* 9-channel UNet: each row is [latents C, mask 1, masked-image latents C] */
    int blend;            /* 4-channel UNet with a mask: the kept region reset after each step */
    int B, C, h, w;
    float *image_latents; /* [B, C, h, w] the init latents (blend) */
    float *noise;         /* [B, C, h, w] the noise they were noised with (blend) */
    float *mask;          /* [h, w] the mask at latent size, 0 or 1 (extra, blend) */
    float *masked;        /* [B, C, h, w] masked-image latents (extra) */
} img2img_state;

/* Where the run starts: r's init image (and mask), or init_latents [B, C, h, w]
 * (img2img of latents, with `strength`); nothing for text to image. Writes
 * the start latents[B, C, h, w], drawing from gens[b] in diffusers' order
 * (per image: the init image's latent sample, the noise, the masked
 * image's latent sample), and sets the scheduler's begin call. The VAE runs
 * in the model's context; dumps vae_encode_mean_K and init_latents. */
sdc_status img2img_start(img2img_state *st, sdc_model *m, const sdc_request *r, const request_plan *P, sdc_scheduler *s,
                         noise_gen *gens, int B, int h, int w, const float *init_latents, double strength,
                         float *latents);

/* The UNet's rows for one step: n copies (CFG) of the B scaled latents
 * model_in[B, C, h, w]; on a 9-channel UNet each image's mask and
 * masked-image latents follow its latents. unet_in: [n * B, in, h, w]. */
void img2img_unet_input(const img2img_state *st, const float *model_in, int B, int C, int64_t per, int n,
                        float *unet_in);

/* After call k's scheduler step: on a 4-channel UNet with a mask,
 * latents = (1 - mask) * init_k + mask * latents, init_k the init latents
 * noised to call k + 1 (the init latents themselves after the last call). */
sdc_status img2img_after_step(const img2img_state *st, const sdc_scheduler *s, int k, float *latents);

void img2img_free(img2img_state *st);

/* ---- init_image.c ---- */

/* The init image as the VAE reads it: resized to W x H when its size
 * differs, [3, H, W] floats 2 * (v / 255) - 1 (VaeImageProcessor). */
sdc_status init_image_tensor(const sdc_request *r, int W, int H, float **out);
/* The mask as diffusers' mask processor makes it: resized to W x H,
 * binarized (v / 255 < 0.5: 0, else 1), [H, W]. */
sdc_status init_mask_tensor(const sdc_request *r, int W, int H, float **out);

#endif
