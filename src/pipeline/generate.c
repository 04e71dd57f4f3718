/* generate.c - text to image: the denoising loop of diffusers'
 * StableDiffusionPipeline / StableDiffusionXLPipeline.
 *   noise_i = randn(1,4,h,w; generator seed+i); latents = noise * init_noise_sigma
 *   per timestep: x = scale_model_input(latents); eps = unet([x, x], t, [neg, pos])
 *                 eps = eps_neg + g * (eps_pos - eps_neg); latents = step(eps, t, latents)
 *   image = clamp(vae.decode(latents / scaling_factor) / 2 + 0.5, 0, 1)
 * (vae: the KL VAE, or TAESD with its scaling_factor 1.0: pipeline/pixels.c)
 * With A1111 prompts (prompt_syntax "a1111") neg and pos may differ in length
 * (77 x chunks): then, as A1111's CFGDenoiser, the UNet runs each half with
 * its own context (two runners), or pad_cond_uncond pads the shorter half
 * with the empty prompt's conditioning into one batch. */
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/layers.h"
#include "nn/step_graph.h"
#include "nn/unet_runner.h"
#include "nn/vae_tiling.h"
#include "family/a1111_cond.h"
#include "family/model.h"
#include "pipeline/generate_pass.h"
#include "pipeline/img2img.h"
#include "pipeline/infotext.h"
#include "pipeline/pixels.h"
#include "pipeline/preview.h"
#include "pipeline/prompt_loras.h"
#include "pipeline/request.h"
#include "rng/noise_gen.h"
#include "sched/scheduler.h"

#define MAX_IMAGES SDC_MAX_BATCH

void sdc_model_get_info(const sdc_model *m, sdc_model_info *info) {
    const unet_config *uc = unet_get_config(m->unet);
    memset(info, 0, sizeof *info);
    info->name = m->name;
    info->family = m->fam->name;
    sched_config cfg;
    if (!sched_config_from_json(m->sched_json, NULL, &cfg)) {
        info->prediction = !strcmp(cfg.prediction_type, "v_prediction") ? "v_prediction"
                           : !strcmp(cfg.prediction_type, "sample")     ? "sample"
                                                                         : "epsilon";
        info->scheduler = sched_info(cfg.def)->name;
    }
    info->default_width = info->default_height = uc->sample_size * m->vae_scale;
    info->default_steps = m->fam->default_steps;
    info->default_guidance = m->fam->default_guidance;
    info->params_unet = unet_num_params(m->unet);
    info->device = op_ctx_device_name(m->cx);
    info->threads = op_ctx_threads(m->cx);
    info->has_taesd = m->taesd != NULL;
    info->params_taesd = m->taesd ? taesd_num_params(m->taesd) : 0;
}

static void dump(const sdc_request *r, const char *name, int is_int, int ndim, const int64_t *shape, const void *d) {
    if (r->dump) r->dump(r->dump_ctx, name, is_int, ndim, shape, d);
}

/* diffusers get_guidance_scale_embedding for UNets with time_cond_proj_dim */
static void guidance_embedding(float w, int dim, float *out) {
    int half = dim / 2;
    float s = logf(10000.0f) / (float)(half - 1);
    w *= 1000.0f;
    for (int i = 0; i < half; i++) {
        float a = w * expf((float)i * -s);
        out[i] = sinf(a);
        out[half + i] = cosf(a);
    }
    if (dim % 2) out[dim - 1] = 0.0f;
}

typedef struct {
    sdc_model *m;
    const sdc_request *r;
    int B, W, H, h, w, steps, cfg;
    float g;
    int64_t per; /* floats per latent image */
    latent_format lf;
    int vae_tile; /* --vae-tiling: tile side in pixels; 0: decode untiled */
    int taesd;    /* the final image decodes with TAESD */
    sdc_scheduler *s;
    const sched_config *sc; /* the request plan's */
    text_cond pos, neg;
    int a1111;             /* prompt_syntax "a1111" */
    int split;             /* CFG halves of different lengths: one UNet runner each (neg, then pos) */
    int padded;            /* pad_cond_uncond padded a half (A1111's infotext "Pad conds") */
    float *ctx, *tcond;    /* UNet conditioning, batch 2B with CFG (NULL when split: the halves' own) */
    unet_extra_bufs extra; /* the family's extra UNet inputs, 2B rows with CFG */
    noise_rng rng; /* which torch generator the seeds seed (r->rng) */
    noise_gen *gens;
    float *latents, *model_in, *unet_in, *unet_out, *noise_pred, *step_noise;
    float *pred_x0, *x0; /* live previews: the scheduler's estimate, and what is decoded */
    img2img_state i2i; /* an init image / mask / init latents: the start, the UNet rows, the blend */
    int64_t in_per;    /* a UNet input row: more than the latents (per) when inpainting */
} gen_state;

static void state_free(gen_state *S) {
    sched_free(S->s);
    text_cond_free(&S->pos);
    text_cond_free(&S->neg);
    unet_extra_bufs_free(&S->extra);
    free(S->ctx), free(S->tcond), free(S->gens);
    free(S->latents), free(S->model_in), free(S->unet_in), free(S->unet_out), free(S->noise_pred), free(S->step_noise);
    free(S->pred_x0), free(S->x0);
    img2img_free(&S->i2i);
}

/* zero conditioning of cond's shape with T tokens (diffusers' force_zeros_for_empty_prompt) */
static sdc_status cond_zeros(const text_cond *like, int T, text_cond *out) {
    memset(out, 0, sizeof *out);
    out->B = like->B, out->T = T, out->D = like->D, out->P = like->P;
    out->embeds = calloc((size_t)out->B * out->T * out->D, sizeof(float));
    out->pooled = out->P ? calloc((size_t)out->B * out->P, sizeof(float)) : NULL;
    if (!out->embeds || (out->P && !out->pooled)) {
        text_cond_free(out);
        return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    }
    return SDC_OK;
}

/* each tokenizer's ids: input_ids, input_ids_2 (uncond_ before them for the negative), one row of 77
 * per chunk; A1111 prompts also their multipliers */
static void dump_ids(const sdc_request *r, const char *prefix, const text_cond *c) {
    int64_t shape[2] = {(int64_t)c->B * (c->T / FAMILY_TOKENS), FAMILY_TOKENS};
    char name[64];
    for (int i = 0; i < c->nids; i++) {
        snprintf(name, sizeof name, i ? "%sinput_ids_%d" : "%sinput_ids", prefix, i + 1);
        dump(r, name, 1, 2, shape, c->ids[i]);
    }
    snprintf(name, sizeof name, "%smultipliers", prefix);
    if (c->multipliers) dump(r, name, 0, 2, shape, c->multipliers);
}

/* A1111 prompts: the positive ones without their extra-network tags
 * (<lora:...>, A1111's parse_extra_network_prompts), the negative ones as written */
static sdc_status encode(gen_state *S, const char *const *prompts, int positive, text_cond *out) {
    const model_family *fam = S->m->fam;
    if (!S->a1111) return fam->encode(S->m, prompts, S->B, S->r->clip_skip, out);
    a1111_opts o = a1111_opts_default(S->r->clip_skip);
    if (!positive) return fam->encode_a1111(S->m, prompts, S->B, &o, out);
    sdc_prompt_networks *nets = calloc((size_t)S->B, sizeof *nets);
    const char **text = calloc((size_t)S->B, sizeof *text);
    sdc_status st = nets && text ? SDC_OK : sdc_fail(SDC_ERR_NOMEM, "out of memory");
    for (int i = 0; i < S->B && !st; i++)
        if (!(st = sdc_prompt_networks_parse(prompts[i], &nets[i]))) text[i] = nets[i].text;
    if (!st) st = fam->encode_a1111(S->m, text, S->B, &o, out);
    for (int i = 0; nets && i < S->B; i++) sdc_prompt_networks_free(&nets[i]);
    free(nets), free(text);
    return st;
}

/* CFG halves of different lengths (A1111 prompts): pad_cond_uncond appends
 * the empty prompt's conditioning to the shorter one (both halves dumped
 * as *prompt_embeds_padded); else they run apart (A1111's default) */
static sdc_status match_lengths(gen_state *S) {
    if (!S->cfg || S->pos.T == S->neg.T) return SDC_OK;
    if (!S->r->pad_cond_uncond) {
        S->split = 1;
        return SDC_OK;
    }
    static const char *const empty_prompt[1] = {""};
    a1111_opts o = a1111_opts_default(S->r->clip_skip);
    text_cond empty;
    SDC_TRY(S->m->fam->encode_a1111(S->m, empty_prompt, 1, &o, &empty));
    int neg_short = S->neg.T < S->pos.T;
    text_cond *c = neg_short ? &S->neg : &S->pos;
    sdc_status st = a1111_pad_empty(c, &empty, neg_short ? S->pos.T : S->neg.T);
    text_cond_free(&empty);
    SDC_TRY(st);
    int64_t shape[3] = {c->B, c->T, c->D}; /* what the UNet gets: both halves, one of them padded */
    dump(S->r, "prompt_embeds_padded", 0, 3, shape, S->pos.embeds);
    dump(S->r, "negative_prompt_embeds_padded", 0, 3, shape, S->neg.embeds);
    S->padded = 1;
    return SDC_OK;
}

static int all_empty(const char *const *p, int n) {
    for (int i = 0; i < n; i++)
        if (p[i][0]) return 0;
    return 1;
}

/* prompts of image i: prompt i / batch (each prompt's images are consecutive, like num_images_per_prompt) */
static sdc_status setup_text(gen_state *S) {
    const sdc_request *r = S->r;
    const model_family *fam = S->m->fam;
    const char *pos[MAX_IMAGES], *neg[MAX_IMAGES];
    for (int i = 0; i < S->B; i++) {
        int p = i / r->batch;
        pos[i] = r->prompts[p];
        neg[i] = !r->negative_prompts ? "" : r->negative_prompts[r->nnegative == 1 ? 0 : p];
    }
    if (S->a1111 && !fam->encode_a1111)
        return sdc_fail(SDC_ERR_UNSUPPORTED, "%s models have no A1111 prompt syntax here", fam->title);
    SDC_TRY(encode(S, pos, 1, &S->pos));
    dump_ids(r, "", &S->pos);
    /* A1111 zeroes an SDXL negative prompt that is "" (its force_zero_embeddings) */
    int zero_neg = S->a1111 ? fam->zero_negative && all_empty(neg, S->B)
                            : fam->zero_negative && !r->negative_prompts && S->m->force_zeros_for_empty_prompt;
    if (S->cfg) {
        if (zero_neg) {
            SDC_TRY(cond_zeros(&S->pos, FAMILY_TOKENS, &S->neg));
        } else {
            SDC_TRY(encode(S, neg, 0, &S->neg));
            dump_ids(r, "uncond_", &S->neg);
        }
    }
    int D = S->pos.D, P = S->pos.P, n = S->cfg ? 2 : 1;
    int64_t emb_shape[3] = {S->B, S->pos.T, D}, neg_shape[3] = {S->B, S->neg.T, D}, pool_shape[2] = {S->B, P};
    dump(r, "prompt_embeds", 0, 3, emb_shape, S->pos.embeds);
    if (S->cfg) dump(r, "negative_prompt_embeds", 0, 3, neg_shape, S->neg.embeds);
    SDC_TRY(match_lengths(S));
    /* The encoders are done until the next request: their mapped weights leave
     * the resident set, so the UNet's and VAE's peaks do not stack on them. */
    for (int i = 0; i < S->m->ntext; i++) weights_release_pages(clip_text_weights(S->m->te[i]));
    if (!S->split) {
        int64_t per_ctx = (int64_t)S->pos.T * D;
        SDC_TRY(alloc_f32(&S->ctx, n * S->B * per_ctx));
        if (S->cfg) memcpy(S->ctx, S->neg.embeds, (size_t)(S->B * per_ctx) * sizeof(float));
        memcpy(S->ctx + (n - 1) * S->B * per_ctx, S->pos.embeds, (size_t)(S->B * per_ctx) * sizeof(float));
    }
    if (P) {
        dump(r, "pooled_prompt_embeds", 0, 2, pool_shape, S->pos.pooled);
        if (S->cfg) dump(r, "negative_pooled_prompt_embeds", 0, 2, pool_shape, S->neg.pooled);
    }
    if (fam->unet_extras) {
        const text_cond *conds[2] = {&S->neg, &S->pos};
        SDC_TRY(fam->unet_extras(S->m, S->cfg ? conds : conds + 1, n, S->W, S->H, &S->extra));
        int64_t as[2] = {n * S->B, P}, ts[2] = {n * S->B, 6};
        if (S->extra.text_embeds) dump(r, "add_text_embeds", 0, 2, as, S->extra.text_embeds);
        if (S->extra.time_ids) dump(r, "add_time_ids", 0, 2, ts, S->extra.time_ids);
    }
    return SDC_OK;
}

static sdc_status denoise_step(gen_state *S, unet_runner *const *run, int k);

/* A step graph kept after its request costs its activations' device memory
 * while the VAE decodes and until the next request: kept when that is at
 * most this much (SDXL-Turbo 512x512 and SD 1.5 512x512 steps are; SDXL
 * 1024x1024 with CFG is not, so its decode gets that memory back). */
#define KEEP_GRAPH_BYTES ((int64_t)1 << 30)

/* The model's kept runner when it fits this request (its context
 * re-uploaded), else a new one. SDC_STEP_GRAPHS=0: every step op by op. */
static sdc_status runner_take(sdc_model *m, int rows, int h, int w, const float *ctx, int M, const unet_extra *ex,
                              unet_runner **out) {
    int graphs = step_graph_env_enabled();
    unet_runner *r = m->unet_run;
    m->unet_run = NULL;
    if (unet_runner_fits(r, m->unet, rows, h, w, M, ex, graphs) && !unet_runner_set_context(r, ctx, ex)) {
        *out = r;
        return SDC_OK;
    }
    unet_runner_free(r);
    return unet_runner_create(out, m->unet, rows, h, w, ctx, M, ex, graphs);
}

/* The UNet runners of a request: one for the whole CFG batch, or (split)
 * one for the B negative rows and one for the B positive rows, each with
 * its half's context and extra inputs. The first is the model's kept one. */
static sdc_status runners_make(gen_state *S, const unet_extra *ex, unet_runner **run) {
    int B = S->B, n = S->cfg ? 2 : 1, P = S->pos.P;
    if (!S->split) return runner_take(S->m, n * B, S->h, S->w, S->ctx, S->pos.T, ex, &run[0]);
    for (int p = 0; p < 2; p++) {
        const text_cond *c = p ? &S->pos : &S->neg;
        unet_extra e = *ex; /* timestep_cond is NULL with CFG */
        if (e.text_embeds) e.text_embeds += (int64_t)p * B * P;
        if (e.time_ids) e.time_ids += (int64_t)p * B * 6;
        sdc_status st = p ? unet_runner_create(&run[1], S->m->unet, B, S->h, S->w, c->embeds, c->T, &e,
                                               step_graph_env_enabled())
                          : runner_take(S->m, B, S->h, S->w, c->embeds, c->T, &e, &run[0]);
        SDC_TRY(st);
    }
    return SDC_OK;
}

static void runner_keep(sdc_model *m, unet_runner *r, sdc_status st) {
    int64_t bytes = unet_runner_graph_bytes(r);
    if (!st && bytes > 0 && bytes <= KEEP_GRAPH_BYTES) {
        m->unet_run = r;
        return;
    }
    unet_runner_free(r);
}

static sdc_status denoise(gen_state *S) {
    const sdc_request *r = S->r;
    op_set_precision(S->m->cx, S->m->unet_dt);
    int B = S->B, calls = sched_num_calls(S->s);
    int64_t per = S->per, lat_shape[4] = {B, S->lf.channels, S->h, S->w};
    if (r->dump) {
        int64_t ts[1] = {calls};
        int is_float = sched_timesteps_are_float(S->s), ns;
        void *tb = malloc((size_t)calls * 8);
        if (!tb) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
        for (int i = 0; i < calls; i++) {
            if (is_float) ((float *)tb)[i] = (float)sched_timestep(S->s, i);
            else ((int64_t *)tb)[i] = (int64_t)sched_timestep(S->s, i);
        }
        dump(r, "timesteps", !is_float, 1, ts, tb);
        free(tb);
        const double *sig = sched_sigmas(S->s, &ns);
        if (sig) {
            float *sf = malloc((size_t)ns * sizeof(float));
            if (!sf) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
            for (int i = 0; i < ns; i++) sf[i] = (float)sig[i];
            int64_t ss[1] = {ns};
            dump(r, "sigmas", 0, 1, ss, sf);
            free(sf);
        }
    }
    if (!S->i2i.active) { /* text to image: the noise scaled by the schedule's first sigma */
        dump(r, "noise", 0, 4, lat_shape, S->latents);
        float sigma0 = sched_init_noise_sigma(S->s);
        for (int64_t i = 0; i < B * per; i++) S->latents[i] *= sigma0;
    }
    dump(r, "latents_0", 0, 4, lat_shape, S->latents);
    unet_extra ex = {.text_embeds = S->extra.text_embeds, .time_ids = S->extra.time_ids, .timestep_cond = S->tcond};
    unet_runner *run[2] = {NULL, NULL};
    sdc_status st = runners_make(S, &ex, run);
    for (int k = sched_begin(S->s); k < calls && !st; k++) st = denoise_step(S, run, k);
    runner_keep(S->m, run[0], st);
    unet_runner_free(run[1]);
    return st;
}

/* step k of denoise(): the CFG batch through the UNet, the guidance mix,
 * the scheduler step, dumps and progress */
static sdc_status denoise_step(gen_state *S, unet_runner *const *run, int k) {
    const sdc_request *r = S->r;
    int B = S->B, n = S->cfg ? 2 : 1, begin = sched_begin(S->s), calls = sched_num_calls(S->s) - begin;
    int64_t per = S->per, lat_shape[4] = {B, S->lf.channels, S->h, S->w};
    int64_t out_shape[4] = {n * B, S->lf.channels, S->h, S->w};
    const int K = k - begin + 1; /* img2img: steps and dumps count from the first call that runs */
    float tv[2 * MAX_IMAGES];
    char name[64];
    memcpy(S->model_in, S->latents, (size_t)(B * per) * sizeof(float));
    sched_scale_model_input(S->s, k, S->model_in, B * per);
    snprintf(name, sizeof name, "model_input_%d", K);
    dump(r, name, 0, 4, lat_shape, S->model_in);
    img2img_unet_input(&S->i2i, S->model_in, B, S->lf.channels, per, n, S->unet_in);
    float t = (float)sched_timestep(S->s, k);
    for (int i = 0; i < n * B; i++) tv[i] = t;
    for (int p = 0; p < (S->split ? 2 : 1); p++) { /* split: rows [neg | pos], each through its runner */
        int64_t at = S->split ? p * B * S->in_per : 0, ot = S->split ? p * B * per : 0;
        SDC_TRY(unet_runner_step(run[p], S->unet_in + at, tv, S->unet_out + ot));
    }
    snprintf(name, sizeof name, "unet_out_%d", K);
    dump(r, name, 0, 4, out_shape, S->unet_out);
    if (S->cfg) {
        const float *u = S->unet_out, *c = S->unet_out + B * per;
        for (int64_t i = 0; i < B * per; i++) S->noise_pred[i] = u[i] + S->g * (c[i] - u[i]);
    } else {
        memcpy(S->noise_pred, S->unet_out, (size_t)(B * per) * sizeof(float));
    }
    snprintf(name, sizeof name, "noise_pred_%d", K);
    dump(r, name, 0, 4, lat_shape, S->noise_pred);
    int drew = sched_draws_noise(S->s, k, r->eta), preview = preview_due(S->m, r, K - 1, calls);
    if (preview && !S->pred_x0 && (alloc_f32(&S->pred_x0, B * per) || alloc_f32(&S->x0, B * per)))
        return sdc_fail(SDC_ERR_NOMEM, "out of memory for previews");
    if (preview) memset(S->pred_x0, 0, (size_t)(B * per) * sizeof(float));
    SDC_TRY(sched_step_gen(S->s, k, S->noise_pred, S->latents, B, per, S->gens, r->eta, preview ? S->pred_x0 : NULL,
                           S->step_noise));
    if (drew) {
        snprintf(name, sizeof name, "scheduler_noise_%d", K);
        dump(r, name, 0, 4, lat_shape, S->step_noise);
    }
    SDC_TRY(img2img_after_step(&S->i2i, S->s, k, S->latents));
    snprintf(name, sizeof name, "latents_%d", K);
    dump(r, name, 0, 4, lat_shape, S->latents);
    if (preview) { /* TAESD decodes in the model's context: the UNet's precision is set back after it */
        preview_x0(S->s, k, S->pred_x0, S->model_in, S->noise_pred, B * per, S->x0);
        sdc_status st = preview_emit(S->m, r, S->x0, B, S->lf.channels, S->h, S->w, K, calls);
        op_set_precision(S->m->cx, S->m->unet_dt);
        SDC_TRY(st);
    }
    if (r->progress && r->progress(r->progress_ctx, K, calls))
        return sdc_fail(SDC_ERR_INTERRUPTED, "interrupted at step %d of %d", K, calls);
    return SDC_OK;
}

static sdc_status decode(gen_state *S, sdc_image *imgs) {
    const sdc_request *r = S->r;
    int B = S->B, H = S->H, W = S->W;
    int64_t npix = (int64_t)H * W;
    float *z = NULL, *dec = NULL, *all_dec = NULL, *all_img = NULL;
    sdc_status st;
    if ((st = alloc_f32(&z, S->per)) || (st = alloc_f32(&dec, 3 * npix))) goto done;
    if (r->dump && ((st = alloc_f32(&all_dec, B * 3 * npix)) || (st = alloc_f32(&all_img, B * 3 * npix)))) goto done;
    for (int b = 0; b < B; b++) { /* one image at a time bounds the VAE's memory */
        if ((st = pixels_decode(S->m, S->taesd, S->latents + b * S->per, S->h, S->w, S->vae_tile, z, dec))) goto done;
        uint8_t *rgb = malloc((size_t)npix * 3);
        if (!rgb) {
            st = sdc_fail(SDC_ERR_NOMEM, "out of memory");
            goto done;
        }
        imgs[b].rgb = rgb;
        imgs[b].width = W;
        imgs[b].height = H;
        if (pixels_to_rgb(dec, npix, rgb, all_img ? all_img + b * npix * 3 : NULL)) {
            st = sdc_fail(SDC_ERR_FORMAT, "image %d decoded to NaN/Inf values (numerical overflow in the model)", b);
            goto done;
        }
        if (all_dec) memcpy(all_dec + b * 3 * npix, dec, (size_t)(3 * npix) * sizeof(float));
    }
    int64_t ds[4] = {B, 3, H, W}, is[4] = {B, H, W, 3};
    dump(r, "decoded", 0, 4, ds, all_dec);
    dump(r, "image", 0, 4, is, all_img);
done:
    free(z), free(dec), free(all_dec), free(all_img);
    return st;
}

/* ---- batch_size: a request as consecutive chunks of at most batch_size images ---- */

typedef struct {
    const sdc_request *r;
    int chunk, nchunks;
} chunk_progress;

/* steps of chunk c count after those of the chunks before it */
static int chunk_on_progress(void *ctx, int step, int total) {
    const chunk_progress *c = ctx;
    return c->r->progress(c->r->progress_ctx, c->chunk * total + step, c->nchunks * total);
}

/* previews likewise */
static void chunk_on_preview(void *ctx, int step, int total, const sdc_image *images, int n) {
    const chunk_progress *c = ctx;
    c->r->preview(c->r->preview_ctx, c->chunk * total + step, c->nchunks * total, images, n);
}

static sdc_status generate_batch(sdc_model *m, const sdc_request *r, int last, sdc_image **images, int *nimages);

/* r has passed sdc_request_check */
static sdc_status generate_chunked(sdc_model *m, const sdc_request *r, sdc_image **images, int *nimages) {
    int total = r->batch * r->nprompts, bs = r->batch_size, done = 0;
    const char **pos = malloc((size_t)total * sizeof *pos), **neg = malloc((size_t)total * sizeof *neg);
    sdc_image *all = calloc((size_t)total, sizeof *all);
    sdc_status st = pos && neg && all ? SDC_OK : sdc_fail(SDC_ERR_NOMEM, "out of memory");
    for (int i = 0; !st && i < total; i++) { /* image i: prompt i / batch, as in one big batch */
        int p = i / r->batch;
        pos[i] = r->prompts[p];
        neg[i] = r->negative_prompts ? r->negative_prompts[r->nnegative == 1 ? 0 : p] : NULL;
    }
    chunk_progress cp = {.r = r, .nchunks = (total + bs - 1) / bs};
    for (int a = 0; !st && a < total; a += bs, cp.chunk++) {
        sdc_request sub = *r;
        int n = total - a < bs ? total - a : bs;
        sub.prompts = pos + a;
        sub.nprompts = n;
        sub.batch = 1;
        sub.batch_size = 0;
        sub.negative_prompts = r->negative_prompts ? neg + a : NULL;
        sub.nnegative = r->negative_prompts ? n : 0;
        sub.seed = r->seed + (uint64_t)a;
        if (r->progress) sub.progress = chunk_on_progress, sub.progress_ctx = &cp;
        if (r->preview) sub.preview = chunk_on_preview, sub.preview_ctx = &cp;
        sdc_image *imgs;
        int got;
        if ((st = generate_batch(m, &sub, a + n == total, &imgs, &got))) break;
        memcpy(all + a, imgs, (size_t)got * sizeof *imgs);
        free(imgs); /* the pixels and infotexts moved to all[] */
        done = a + got;
    }
    free(pos);
    free(neg);
    if (st) {
        sdc_images_free(all, done);
        return st;
    }
    *images = all;
    *nimages = total;
    return SDC_OK;
}

sdc_status sdc_generate(sdc_model *m, const sdc_request *r, sdc_image **images, int *nimages) {
    *images = NULL;
    *nimages = 0;
    SDC_TRY(request_resolve(m, r, &(request_plan){0})); /* every field, before any work */
    prompt_loras pl; /* <lora:...> tags: removed from the prompts, their LoRAs fused for this request */
    SDC_TRY(prompt_loras_begin(m, r, &pl));
    const sdc_request *q = &pl.req;
    sdc_status st = q->batch_size && (int64_t)q->batch * q->nprompts > q->batch_size
                        ? generate_chunked(m, q, images, nimages)
                        : generate_batch(m, q, 1, images, nimages);
    if (!st) st = prompt_loras_infotexts(&pl, *images, *nimages);
    prompt_loras_end(&pl);
    if (st) {
        sdc_images_free(*images, *nimages);
        *images = NULL;
        *nimages = 0;
    }
    return st;
}

/* A1111's "Schedule type" of a config: the label of the schedule the request
 * chose; for Automatic, Karras when the config itself turns Karras sigmas on,
 * else none (the sampler's own schedule, as A1111 leaves it unsaid). */
static const char *infotext_schedule(const sched_config *sc) {
    if (sc->schedule != SCHED_SCHEDULE_AUTOMATIC) return sdc_schedule_at(sc->schedule)->label;
    return sc->use_karras_sigmas ? sdc_schedule_at(SCHED_SCHEDULE_KARRAS)->label : NULL;
}

/* One UNet batch: the request's images (through the hires fix's two passes
 * when it asks for them), each with its infotext. */
static sdc_status generate_batch(sdc_model *m, const sdc_request *r, int last, sdc_image **images, int *nimages) {
    *images = NULL;
    *nimages = 0;
    request_plan P;
    SDC_TRY(request_resolve(m, r, &P));
    sdc_image *imgs;
    int n;
    int padded = 0; /* A1111's pad_cond_uncond padded a half ("Pad conds: True") */
    gen_pass g = {.padded = &padded};
    SDC_TRY(P.hires ? hires_generate(m, r, &P, last, &imgs, &n) : generate_pass(m, r, &P, last, &g, &imgs, &n));
    sdc_status st = SDC_OK;
    for (int b = 0; !st && b < n; b++) {
        int p = b / r->batch;
        infotext_fields f = {
            .prompt = r->prompts[p],
            .negative = r->negative_prompts ? r->negative_prompts[r->nnegative == 1 ? 0 : p] : NULL,
            .steps = P.steps,
            .width = P.W,
            .height = P.H,
            .clip_skip = r->clip_skip,
            .sampler = sched_info(P.sched.def)->a1111_name,
            .schedule = infotext_schedule(&P.sched),
            .guidance = P.g,
            .eta = sched_info(P.sched.def)->takes_eta ? r->eta : 0.0f, /* A1111 writes Eta only for samplers that use it */
            .seed = r->seed + (uint64_t)b,
            .model = m->name,
            .rng = P.rng == NOISE_RNG_CPU ? "CPU" : NULL,
            .plain_syntax = !(r->prompt_syntax && !strcmp(r->prompt_syntax, "a1111")),
            .pad_conds = padded,
            .vae_decoder = P.taesd ? "TAESD" : NULL,
            .denoising_strength = P.hires  ? P.hires_strength
                                  : P.init ? P.strength
                                           : 0,
            .hires_scale = P.hires ? r->hires_scale : 0,
            .hires_width = r->hires_width,
            .hires_height = r->hires_height,
            .hires_steps = P.hires ? r->hires_steps : 0,
            .hires_upscaler = P.hires ? latent_mode_a1111(P.hires_mode) : NULL,
        };
        imgs[b].seed = f.seed;
        if (!(imgs[b].infotext = infotext_format(&f))) st = sdc_fail(SDC_ERR_NOMEM, "out of memory");
    }
    if (st) {
        sdc_images_free(imgs, n);
        return st;
    }
    *images = imgs;
    *nimages = n;
    return SDC_OK;
}

/* One denoising pass over a UNet batch. last: no UNet call follows in this
 * request, so the UNet's mapped weights may leave the resident set before
 * the VAE runs (the next request maps them back from the page cache: ~0.05 s
 * per GB here). */
sdc_status generate_pass(sdc_model *m, const sdc_request *r, const request_plan *Pp, int last, const gen_pass *pass,
                         sdc_image **images, int *nimages) {
    *images = NULL;
    *nimages = 0;
    const unet_config *uc = unet_get_config(m->unet);
    const request_plan P = *Pp;
    gen_state S;
    memset(&S, 0, sizeof S);
    S.m = m;
    S.r = r;
    S.W = P.W, S.H = P.H, S.steps = P.steps, S.g = P.g, S.cfg = P.cfg, S.rng = P.rng, S.vae_tile = P.vae_tile;
    S.taesd = P.taesd;
    S.sc = &P.sched;
    S.a1111 = r->prompt_syntax && !strcmp(r->prompt_syntax, "a1111");
    assert(r->batch >= 1 && (int64_t)r->nprompts * r->batch <= MAX_IMAGES && "checked by request_resolve");
    S.B = r->nprompts * r->batch;
    S.h = S.H / m->vae_scale;
    S.w = S.W / m->vae_scale;
    m->fam->latents(m, &S.lf);
    S.per = (int64_t)S.lf.channels * S.h * S.w;
    int n = S.cfg ? 2 : 1;
    const int64_t in_per = (int64_t)uc->in_channels * S.h * S.w; /* a UNet row: more than the latents when inpainting */
    S.in_per = in_per;
    float **latents_out = pass ? pass->latents_out : NULL;
    sdc_image *imgs = calloc((size_t)S.B, sizeof(sdc_image));
    sdc_status st = imgs ? SDC_OK : sdc_fail(SDC_ERR_NOMEM, "out of memory");
    if (!st) st = sched_create(&S.s, S.sc, S.steps);
    if (!st) st = setup_text(&S);
    if (!st && uc->time_cond_proj_dim) {
        st = alloc_f32(&S.tcond, (int64_t)S.B * uc->time_cond_proj_dim);
        for (int b = 0; !st && b < S.B; b++) guidance_embedding(S.g - 1.0f, uc->time_cond_proj_dim, S.tcond + b * uc->time_cond_proj_dim);
    }
    if (!st && !(S.gens = calloc((size_t)S.B, sizeof(noise_gen)))) st = sdc_fail(SDC_ERR_NOMEM, "out of memory");
    if (!st) st = alloc_f32(&S.latents, S.B * S.per);
    if (!st) st = alloc_f32(&S.model_in, S.B * S.per);
    if (!st) st = alloc_f32(&S.unet_in, n * S.B * in_per);
    if (!st) st = alloc_f32(&S.unet_out, n * S.B * S.per);
    if (!st) st = alloc_f32(&S.noise_pred, S.B * S.per);
    if (!st) st = alloc_f32(&S.step_noise, S.B * S.per);
    for (int b = 0; !st && b < S.B; b++) noise_gen_seed(&S.gens[b], S.rng, r->seed + (uint64_t)b);
    if (!st) /* img2img / inpainting / init latents: their start; else the generators' first draw */
        st = img2img_start(&S.i2i, m, r, &P, S.s, S.gens, S.B, S.h, S.w, pass ? pass->init_latents : NULL,
                           pass ? pass->strength : 0.0, S.latents);
    for (int b = 0; !st && !S.i2i.active && b < S.B; b++) noise_randn(&S.gens[b], S.latents + b * S.per, S.per);
    if (!st) st = denoise(&S);
    if (!st && last) weights_release_pages(unet_weights(m->unet));
    if (!st && pass && pass->padded) *pass->padded = S.padded;
    if (!st && latents_out) { /* the hires fix's first pass: latents, no pixels */
        *latents_out = S.latents;
        S.latents = NULL;
        free(imgs);
        imgs = NULL;
    } else if (!st) {
        st = decode(&S, imgs);
    }
    state_free(&S);
    if (st) {
        sdc_images_free(imgs, S.B);
        return st;
    }
    *images = imgs;
    *nimages = imgs ? S.B : 0;
    return SDC_OK;
}
