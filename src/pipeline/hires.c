/* hires.c - AUTOMATIC1111's "hires fix" with a latent upscaler, as diffusers
 * pipelines composed (tests/fixtures2/README.md defines it):
 *   first pass   text to image at width x height, output_type="latent"
 *   upscale      F.interpolate(latents, size=(lh, lw), mode) (bilinear, nearest
 *                or nearest-exact), then A1111's middle crop when hr_resize
 *                asks for another aspect
 *   second pass  img2img of those latents (a 4-channel image is taken as
 *                latents: no VAE encode) with the hires steps and strength,
 *                the same prompts, guidance and sampler, and fresh generators
 *                seeded as the first pass's
 * Dumps: the first pass's tensors prefixed "first_pass_", then
 * first_pass_latents, upscaled_latents and the second pass's as usual. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/layers.h"
#include "pipeline/generate_pass.h"

static void dump_first(void *ctx, const char *name, int is_int, int ndim, const int64_t *shape, const void *data) {
    const sdc_request *r = ctx;
    char full[128];
    snprintf(full, sizeof full, "first_pass_%s", name);
    r->dump(r->dump_ctx, full, is_int, ndim, shape, data);
}

/* the two passes' steps as one count */
typedef struct {
    const sdc_request *r;
    int offset, total;
} pass_progress;

static int on_progress(void *ctx, int step, int total) {
    (void)total;
    const pass_progress *p = ctx;
    return p->r->progress(p->r->progress_ctx, p->offset + step, p->total);
}

/* UNet calls of each pass (the first all of its schedule, the second from its begin call) */
static sdc_status count_calls(const request_plan *P, const request_plan *P2, int *c1, int *c2) {
    sdc_scheduler *s;
    SDC_TRY(sched_create(&s, &P->sched, P->steps));
    *c1 = sched_num_calls(s);
    sched_free(s);
    SDC_TRY(sched_create(&s, &P2->sched, P2->steps));
    int begin, run;
    sdc_status st = sched_strength_begin(s, P->hires_strength, &begin, &run);
    *c2 = sched_num_calls(s) - begin;
    sched_free(s);
    return st;
}

sdc_status hires_generate(sdc_model *m, const sdc_request *r, const request_plan *P, int last, sdc_image **images,
                          int *nimages) {
    *images = NULL;
    *nimages = 0;
    const int f = m->vae_scale, B = r->nprompts * r->batch;
    latent_format lf;
    m->fam->latents(m, &lf);
    const int C = lf.channels, h = P->H / f, w = P->W / f, lh = P->hires_lh, lw = P->hires_lw;
    const int fh = P->hires_H / f, fw = P->hires_W / f;
    request_plan P2 = *P; /* the second pass: the hires size and steps, started from latents */
    P2.W = P->hires_W, P2.H = P->hires_H, P2.steps = P->hires_steps, P2.hires = 0;
    int c1, c2;
    SDC_TRY(count_calls(P, &P2, &c1, &c2));

    sdc_request r1 = *r, r2 = *r;
    pass_progress pp1 = {r, 0, c1 + c2}, pp2 = {r, c1, c1 + c2};
    if (r->progress)
        r1.progress = on_progress, r1.progress_ctx = &pp1, r2.progress = on_progress, r2.progress_ctx = &pp2;
    if (r->dump) r1.dump = dump_first, r1.dump_ctx = (void *)r;
    float *lat = NULL, *up = NULL, *fin = NULL;
    sdc_image *none;
    int nnone;
    gen_pass p1 = {.latents_out = &lat};
    SDC_TRY(generate_pass(m, &r1, P, 0, &p1, &none, &nnone));
    int64_t shape[4] = {B, C, h, w}, ushape[4] = {B, C, fh, fw};
    if (r->dump) r->dump(r->dump_ctx, "first_pass_latents", 0, 4, shape, lat);
    sdc_status st = alloc_f32(&up, (int64_t)B * C * lh * lw);
    if (!st) st = alloc_f32(&fin, (int64_t)B * C * fh * fw);
    if (!st) {
        latent_resize(lat, (int64_t)B * C, h, w, up, lh, lw, P->hires_mode);
        for (int64_t p = 0; p < (int64_t)B * C; p++) /* A1111's truncate: the middle fh x fw */
            for (int y = 0; y < fh; y++)
                memcpy(fin + (p * fh + y) * fw, up + (p * lh + y + P->hires_cy) * lw + P->hires_cx,
                       (size_t)fw * sizeof(float));
        if (r->dump) r->dump(r->dump_ctx, "upscaled_latents", 0, 4, ushape, fin);
        gen_pass p2 = {.init_latents = fin, .strength = P->hires_strength};
        st = generate_pass(m, &r2, &P2, last, &p2, images, nimages);
    }
    free(lat), free(up), free(fin);
    return st;
}
