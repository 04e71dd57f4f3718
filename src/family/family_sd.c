/* family_sd.c - Stable Diffusion 1.x / 2.x (diffusers' StableDiffusionPipeline):
 * one CLIP text encoder (ViT-L for 1.x, OpenCLIP ViT-H for 2.x), whose last
 * hidden state through the final LayerNorm conditions the UNet (with clip
 * skip k: hidden_states[-k] through the final LayerNorm, as encode_prompt
 * does); no extra UNet inputs. */
#include "family/a1111_cond.h"
#include "family/clip_unet_vae.h"
#include "family/single_file.h"

static int sd_owns_checkpoint(ckpt_family f) { return f == CKPT_SD1 || f == CKPT_SD2; }

static sdc_status sd_encode(sdc_model *m, const char *const *prompts, int B, int clip_skip, text_cond *out) {
    int skip = clip_skip > 1 ? clip_skip - 1 : 0; /* diffusers' clip_skip: layers skipped from the end */
    int L = clip_text_num_layers(m->te[0]);
    if (skip >= L) return sdc_fail(SDC_ERR_ARG, "clip skip %d exceeds the text encoder's %d layers", clip_skip, L);
    SDC_TRY(cuv_cond_begin(m, prompts, B, 0, out));
    sdc_status st = cuv_hidden(m, 0, L - skip, 1, 0, 0, out);
    if (st) text_cond_free(out);
    return st;
}

/* A1111: SD 1.x's CLIP ViT-L (padded with its eos) honours clip skip as
 * above; SD 2.x's OpenCLIP (padded with another token) is always its last
 * layer here (A1111's penultimate of 24, which diffusers' conversion keeps
 * as the last of 23): A1111 ignores CLIP_stop_at_last_layers for it. */
static sdc_status sd_encode_a1111(sdc_model *m, const char *const *prompts, int B, const a1111_opts *o,
                                  text_cond *out) {
    int L = clip_text_num_layers(m->te[0]), openclip = clip_tokenizer_pad(m->tok[0]) != clip_tokenizer_eos(m->tok[0]);
    int skip = !openclip && o->clip_skip > 1 ? o->clip_skip - 1 : 0;
    if (skip >= L) return sdc_fail(SDC_ERR_ARG, "clip skip %d exceeds the text encoder's %d layers", o->clip_skip, L);
    a1111_encoder e = {.which = 0, .layer = L - skip, .final_norm = 1, .pooled = 0};
    return a1111_encode(m, prompts, B, &e, 1, 0, o, out);
}

/* the img2img and inpainting pipelines save the same components (an inpainting
 * model's UNet takes 9 input channels: request.c asks for a mask then) */
static const char *const sd_classes[] = {"StableDiffusionPipeline", "StableDiffusionImg2ImgPipeline",
                                         "StableDiffusionInpaintPipeline", NULL};

const model_family family_sd = {
    .name = "sd",
    .title = "SD 1.x/2.x",
    .pipeline_classes = sd_classes,
    .owns_checkpoint = sd_owns_checkpoint,
    .ntext = 1,
    .load_folder = cuv_load_folder,
    .load_file = single_file_load,
    .encode = sd_encode,
    .encode_a1111 = sd_encode_a1111,
    .zero_negative = 0,
    .unet_extras = NULL,
    .latents = cuv_latents,
    .default_steps = 50,
    .default_strength = 0.8, /* its Img2Img pipeline's __call__ */
    .default_guidance = 7.5f,
};
