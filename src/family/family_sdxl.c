/* family_sdxl.c - Stable Diffusion XL (diffusers' StableDiffusionXLPipeline):
 * two text encoders (CLIP ViT-L and OpenCLIP ViT-bigG with projection) whose
 * penultimate hidden states, side by side, condition the UNet (clip skip k:
 * hidden_states[-(k + 1)], no final norm), the second one's pooled
 * projection and six "time ids" (original size, crop top-left, target size)
 * as its additional embedding; "no negative prompt" is zero conditioning
 * when the model says force_zeros_for_empty_prompt. */
#include <stdlib.h>
#include <string.h>

#include "family/a1111_cond.h"
#include "family/clip_unet_vae.h"
#include "family/single_file.h"
#include "nn/layers.h"

static int sdxl_owns_checkpoint(ckpt_family f) { return f == CKPT_SDXL; }

static sdc_status sdxl_encode(sdc_model *m, const char *const *prompts, int B, int clip_skip, text_cond *out) {
    int skip = clip_skip > 1 ? clip_skip - 1 : 0;
    int L1 = clip_text_num_layers(m->te[0]), L2 = clip_text_num_layers(m->te[1]);
    if (skip + 2 > L1 + 1 || skip + 2 > L2 + 1)
        return sdc_fail(SDC_ERR_ARG, "clip skip %d exceeds the text encoders' layers", clip_skip);
    SDC_TRY(cuv_cond_begin(m, prompts, B, clip_text_projection_dim(m->te[1]), out));
    /* penultimate layer (hidden_states[-(clip_skip + 2)]), no final norm */
    sdc_status st = cuv_hidden(m, 0, L1 - 1 - skip, 0, 0, 0, out);
    if (!st) st = cuv_hidden(m, 1, L2 - 1 - skip, 0, clip_text_hidden_size(m->te[0]), 1, out);
    if (st) text_cond_free(out);
    return st;
}

/* A1111 (sd_hijack_clip / sd_hijack_open_clip for SGM's embedders): the
 * penultimate hidden state of both encoders, no final norm, the second one's
 * pooled projection of each prompt's first chunk; clip skip is ignored (its
 * sdxl_clip_l_skip option, off by default, is not modelled). */
static sdc_status sdxl_encode_a1111(sdc_model *m, const char *const *prompts, int B, const a1111_opts *o,
                                    text_cond *out) {
    a1111_encoder e[2] = {
        {.which = 0, .layer = clip_text_num_layers(m->te[0]) - 1, .final_norm = 0, .pooled = 0},
        {.which = 1, .layer = clip_text_num_layers(m->te[1]) - 1, .final_norm = 0, .pooled = 1},
    };
    return a1111_encode(m, prompts, B, e, 2, clip_text_projection_dim(m->te[1]), o, out);
}

/* add_text_embeds = the pooled embeddings of each row; add_time_ids =
 * (original_size, crops_coords_top_left, target_size) = (H, W, 0, 0, H, W) */
static sdc_status sdxl_unet_extras(const sdc_model *m, const text_cond *const *conds, int n, int width, int height,
                                   unet_extra_bufs *out) {
    memset(out, 0, sizeof *out);
    int B = conds[0]->B, P = conds[0]->P;
    sdc_status st = alloc_f32(&out->text_embeds, (int64_t)n * B * P);
    if (!st) st = alloc_f32(&out->time_ids, (int64_t)n * B * 6);
    if (st) {
        unet_extra_bufs_free(out);
        return st;
    }
    for (int c = 0; c < n; c++)
        memcpy(out->text_embeds + (int64_t)c * B * P, conds[c]->pooled, (size_t)B * P * sizeof(float));
    for (int i = 0; i < n * B; i++) {
        float *t = out->time_ids + 6 * i;
        t[0] = (float)height, t[1] = (float)width, t[2] = 0, t[3] = 0, t[4] = (float)height, t[5] = (float)width;
    }
    return SDC_OK;
}

static const char *const sdxl_classes[] = {"StableDiffusionXLPipeline", "StableDiffusionXLImg2ImgPipeline",
                                           "StableDiffusionXLInpaintPipeline", NULL};

const model_family family_sdxl = {
    .name = "sdxl",
    .title = "SDXL",
    .pipeline_classes = sdxl_classes,
    .owns_checkpoint = sdxl_owns_checkpoint,
    .ntext = 2,
    .load_folder = cuv_load_folder,
    .load_file = single_file_load,
    .encode = sdxl_encode,
    .encode_a1111 = sdxl_encode_a1111,
    .zero_negative = 1,
    .unet_extras = sdxl_unet_extras,
    .latents = cuv_latents,
    .default_steps = 50,
    .default_strength = 0.3, /* its Img2Img pipeline's __call__ */
    .default_guidance = 5.0f,
};
