/* img2img.c - the start of an img2img / inpainting run and its per-step
 * parts (see img2img.h), as diffusers 0.30.3's pipelines do them:
 *   image latents = vae.encode(image).latent_dist.sample(generator) * scaling_factor
 *   latents       = scheduler.add_noise(image latents, noise, timesteps[begin])
 *                   (inpainting at strength 1: noise * init_noise_sigma)
 *   begin         = (N - min(int(N * strength), N)) * scheduler.order
 * Inpainting adds the mask (binarized, F.interpolate "nearest" to latent
 * size) and the masked image's latents (the image with the masked pixels
 * 0, encoded and sampled the same way): a 9-channel UNet reads them beside
 * the latents; with a 4-channel UNet the kept region is put back after
 * each step. The VAE encoder runs once per distinct image; each image of
 * the batch draws its own samples from its own generator, so an image is
 * the same whether it runs alone or in a batch (diffusers' inpainting
 * pipeline draws both encodings from the first generator of a batch: its
 * later images differ from sdc's, which equal diffusers run one at a time). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "nn/layers.h"
#include "pipeline/img2img.h"
#include "pipeline/latent_resize.h"

static void dump(const sdc_request *r, const char *name, int64_t b, int64_t C, int64_t h, int64_t w, const float *x) {
    int64_t shape[4] = {b, C, h, w};
    if (r->dump) r->dump(r->dump_ctx, name, 0, 4, shape, x);
}

/* vae.encode(x).latent_dist of one [3, H, W] image: mean and std [C, h, w] */
static sdc_status encode(sdc_model *m, const float *x, int H, int W, float *mean, float *std) {
    op_set_precision(m->cx, m->vae_dt);
    return vae_encode(m->vae, x, 1, H, W, mean, NULL, std);
}

/* latent_dist.sample(generator) = mean + std * randn, then (x - shift) * scaling_factor (float32 tensor ops) */
static void sample(const float *mean, const float *std, noise_gen *g, const latent_format *lf, int64_t n, float *eps,
                   float *out) {
    noise_randn(g, eps, n);
    for (int64_t k = 0; k < n; k++) {
        float x = mean[k] + std[k] * eps[k];
        out[k] = lf->scale * (x - lf->shift);
    }
}

/* the encodings an init image (and mask) need, shared by the batch */
typedef struct {
    float *x, *mask_px;  /* [3, H, W] image in [-1, 1]; [H, W] binarized mask */
    float *mean, *std;   /* the image's latent distribution [C, h, w] (NULL: not needed) */
    float *mmean, *mstd; /* the masked image's */
} encodings;

static void encodings_free(encodings *e) {
    free(e->x), free(e->mask_px), free(e->mean), free(e->std), free(e->mmean), free(e->mstd);
}

static sdc_status encode_inputs(sdc_model *m, const sdc_request *r, const request_plan *P, int need_image,
                                int need_masked, int64_t per, img2img_state *st, encodings *e) {
    const int H = P->H, W = P->W;
    SDC_TRY(init_image_tensor(r, W, H, &e->x));
    if (need_image) {
        SDC_TRY(alloc_f32(&e->mean, per));
        SDC_TRY(alloc_f32(&e->std, per));
        SDC_TRY(encode(m, e->x, H, W, e->mean, e->std));
    }
    if (!P->inpaint) return SDC_OK;
    SDC_TRY(init_mask_tensor(r, W, H, &e->mask_px));
    SDC_TRY(alloc_f32(&st->mask, (int64_t)st->h * st->w));
    latent_resize(e->mask_px, 1, H, W, st->mask, st->h, st->w, LATENT_NEAREST);
    if (!need_masked) return SDC_OK;
    float *masked;
    SDC_TRY(alloc_f32(&masked, 3 * (int64_t)H * W));
    for (int c = 0; c < 3; c++) /* image * (mask < 0.5) */
        for (int64_t p = 0; p < (int64_t)H * W; p++)
            masked[c * (int64_t)H * W + p] = e->x[c * (int64_t)H * W + p] * (float)(e->mask_px[p] < 0.5f);
    sdc_status s = alloc_f32(&e->mmean, per);
    if (!s) s = alloc_f32(&e->mstd, per);
    if (!s) s = encode(m, masked, H, W, e->mmean, e->mstd);
    free(masked);
    return s;
}

/* A1111's inpainting_fill in latent space: the masked region of the init latents replaced */
static void fill(const img2img_state *st, int fill_kind, float *lat, const float *noise) {
    int64_t hw = (int64_t)st->h * st->w;
    for (int c = 0; c < st->C; c++)
        for (int64_t p = 0; p < hw; p++)
            if (st->mask[p] != 0.0f) lat[c * hw + p] = fill_kind == SDC_FILL_LATENT_NOISE ? noise[c * hw + p] : 0.0f;
}

sdc_status img2img_start(img2img_state *st, sdc_model *m, const sdc_request *r, const request_plan *P, sdc_scheduler *s,
                         noise_gen *gens, int B, int h, int w, const float *init_latents, double strength,
                         float *latents) {
    memset(st, 0, sizeof *st);
    if (!init_latents && !P->init) return SDC_OK; /* text to image */
    latent_format lf;
    m->fam->latents(m, &lf);
    st->B = B, st->C = lf.channels, st->h = h, st->w = w;
    const int64_t per = (int64_t)st->C * h * w;
    const double str = init_latents ? strength : P->strength;
    SDC_TRY(sched_strength_begin(s, str, &st->begin, &st->steps_run));
    SDC_TRY(sched_set_begin(s, st->begin));
    const int inpaint = !init_latents && P->inpaint;
    const int is_max = inpaint && str == 1.0; /* diffusers' inpainting starts from pure noise then */
    /* the init image's latents: img2img always; inpainting unless a 9-channel UNet starts from noise */
    const int need_image = !init_latents && (!inpaint || !is_max || !P->unet_extra);
    /* the masked image's: a 9-channel UNet reads them; a 4-channel one only draws their sample (encoded for dumps) */
    const int need_masked = inpaint && (P->unet_extra || r->dump);
    st->extra = inpaint && P->unet_extra;
    st->blend = inpaint && !P->unet_extra;

    encodings e = {0};
    float *eps = NULL;
    sdc_status err = alloc_f32(&eps, per);
    if (!err) err = alloc_f32(&st->image_latents, B * per);
    if (!err) err = alloc_f32(&st->noise, B * per);
    if (!err && st->extra) err = alloc_f32(&st->masked, B * per);
    if (!err && !init_latents) err = encode_inputs(m, r, P, need_image, need_masked, per, st, &e);
    const float sigma0 = sched_init_noise_sigma(s);
    for (int b = 0; b < B && !err; b++) {
        float *lat = st->image_latents + b * per, *noise = st->noise + b * per, *out = latents + b * per;
        if (init_latents) memcpy(lat, init_latents + b * per, (size_t)per * sizeof(float));
        else if (need_image) sample(e.mean, e.std, &gens[b], &lf, per, eps, lat);
        noise_randn(&gens[b], noise, per);
        if (inpaint && r->inpaint_fill && need_image) fill(st, r->inpaint_fill, lat, noise);
        if (is_max)
            for (int64_t k = 0; k < per; k++) out[k] = noise[k] * sigma0;
        else err = sched_add_noise(s, st->begin, lat, noise, out, per);
        if (!err && inpaint) { /* prepare_mask_latents: the masked image's sample, drawn in every case */
            if (e.mmean) sample(e.mmean, e.mstd, &gens[b], &lf, per, eps, st->masked ? st->masked + b * per : eps);
            else noise_randn(&gens[b], eps, per);
        }
    }
    if (!err && r->dump) {
        char name[48];
        int K = 0;
        for (int b = 0; e.mean && b < B; b++, K++) {
            snprintf(name, sizeof name, "vae_encode_mean_%d", K);
            dump(r, name, 1, st->C, h, w, e.mean);
        }
        for (int b = 0; e.mmean && b < B; b++, K++) {
            snprintf(name, sizeof name, "vae_encode_mean_%d", K);
            dump(r, name, 1, st->C, h, w, e.mmean);
        }
        if (need_image || init_latents) dump(r, "image_latents", B, st->C, h, w, st->image_latents);
        dump(r, "noise", B, st->C, h, w, st->noise);
        if (st->masked) dump(r, "masked_image_latents", B, st->C, h, w, st->masked);
        if (st->mask) dump(r, "mask", 1, 1, h, w, st->mask);
    }
    encodings_free(&e);
    free(eps);
    if (err) return err;
    if (!st->blend) { /* kept only for the blend */
        free(st->image_latents), free(st->noise);
        st->image_latents = st->noise = NULL;
    }
    st->active = 1;
    return SDC_OK;
}

void img2img_unet_input(const img2img_state *st, const float *model_in, int B, int C, int64_t per, int n,
                        float *unet_in) {
    if (!st->extra) {
        for (int c = 0; c < n; c++) memcpy(unet_in + c * B * per, model_in, (size_t)(B * per) * sizeof(float));
        return;
    }
    const int64_t hw = per / C, row = (2 * (int64_t)C + 1) * hw; /* cat([latents, mask, masked], dim=1) */
    for (int c = 0; c < n; c++)
        for (int b = 0; b < B; b++) {
            float *o = unet_in + ((int64_t)c * B + b) * row;
            memcpy(o, model_in + b * per, (size_t)per * sizeof(float));
            memcpy(o + per, st->mask, (size_t)hw * sizeof(float));
            memcpy(o + per + hw, st->masked + b * per, (size_t)per * sizeof(float));
        }
}

sdc_status img2img_after_step(const img2img_state *st, const sdc_scheduler *s, int k, float *latents) {
    if (!st->blend) return SDC_OK;
    const int64_t hw = (int64_t)st->h * st->w, per = st->C * hw;
    const int last = k == sched_num_calls(s) - 1;
    float *init;
    SDC_TRY(alloc_f32(&init, per));
    sdc_status err = SDC_OK;
    for (int b = 0; b < st->B && !err; b++) {
        const float *lat = st->image_latents + b * per;
        if (last) memcpy(init, lat, (size_t)per * sizeof(float));
        else err = sched_add_noise(s, k + 1, lat, st->noise + b * per, init, per);
        float *x = latents + b * per;
        for (int c = 0; !err && c < st->C; c++)
            for (int64_t p = 0; p < hw; p++) {
                const float mk = st->mask[p];
                x[c * hw + p] = (1.0f - mk) * init[c * hw + p] + mk * x[c * hw + p];
            }
    }
    free(init);
    return err;
}

void img2img_free(img2img_state *st) {
    free(st->image_latents), free(st->noise), free(st->mask), free(st->masked);
    memset(st, 0, sizeof *st);
}
