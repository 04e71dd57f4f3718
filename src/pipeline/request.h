/* request.h - a request's settings resolved against a model: the model's
 * defaults filled in and every field checked, in one place (sdc_request_check
 * is this with nothing kept; sdc_generate resolves each batch it runs). */
#ifndef SDC_PIPELINE_REQUEST_H
#define SDC_PIPELINE_REQUEST_H

#include "family/model.h"
#include "pipeline/latent_resize.h"
#include "rng/noise_gen.h"
#include "sched/scheduler.h"

typedef struct {
    int W, H, steps;
    float g;
    int cfg;            /* classifier-free guidance: two UNet rows per image */
    noise_rng rng;
    int vae_tile;       /* --vae-tiling: tile side in pixels; 0: decode untiled */
    int taesd;          /* the final image decodes with TAESD (sdc_request.vae_decode) */
    sched_config sched; /* the scheduler config with the request's spacing and Karras choice */
    /* img2img / inpainting (r->init_image, r->mask) */
    int init, inpaint;
    double strength; /* the default filled in */
    int unet_extra;  /* a 9-channel inpainting UNet: the mask and masked-image latents join its input */
    /* hires fix: the first pass at W x H, its latents upscaled to hires_lh x hires_lw (latent pixels), the middle
     * hires_H/f x hires_W/f of them (from row hires_cy, column hires_cx) denoised again */
    int hires;
    int hires_W, hires_H, hires_lw, hires_lh, hires_cx, hires_cy;
    int hires_steps;
    double hires_strength;
    latent_mode hires_mode;
} request_plan;

/* m NULL: only what needs no model (and *out is not filled). */
sdc_status request_resolve(const sdc_model *m, const sdc_request *r, request_plan *out);
/* img2img's UNet steps: min(int(steps * strength), steps) (diffusers' get_timesteps) */
int request_steps_run(int steps, double strength);

#endif
