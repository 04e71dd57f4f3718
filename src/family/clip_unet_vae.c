/* clip_unet_vae.c - the components SD 1.x/2.x and SDXL share (see
 * clip_unet_vae.h). */
#include "family/clip_unet_vae.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "io/json.h"
#include "io/paths.h"
#include "nn/layers.h"
#include "nn/step_graph.h"
#include "text/clip_text_runner.h"

static sdc_status need_dir(const char *root, const char *comp, char *out, size_t n) {
    snprintf(out, n, "%s/%s", root, comp);
    if (!dir_exists(out)) return sdc_fail(SDC_ERR_IO, "%s: component '%s' is missing (no folder %s)", root, comp, out);
    return SDC_OK;
}

/* benchmarks (sdc_load_options.random_weights): the config's architecture
 * with made-up weights, nothing read from weight files */
static sdc_status open_random(weights *w) {
    SDC_TRY(weights_open(w, NULL, 0));
    w->synthesize = 1;
    return SDC_OK;
}

/* random weights of a text encoder or the UNet with --weights q8: each
 * layer weight quantised as it is made up (never all of them in float32) */
static void quantize_as_loaded(weights *w, const sdc_model *m, const sdc_load_options *opt) {
    if (!opt || !opt->weights || strcmp(opt->weights, "q8")) return;
    w->quant = OP_Q8;
    w->quant_threads = op_ctx_threads(m->cx);
}

static sdc_status load_text(sdc_model *m, const char *dir, int i, const sdc_load_options *opt) {
    char d[4096], sub[32];
    const char *variant = opt ? opt->variant : NULL;
    snprintf(sub, sizeof sub, i ? "tokenizer_%d" : "tokenizer", i + 1);
    SDC_TRY(need_dir(dir, sub, d, sizeof d));
    SDC_TRY(clip_tokenizer_load(&m->tok[i], d));
    snprintf(sub, sizeof sub, i ? "text_encoder_%d" : "text_encoder", i + 1);
    SDC_TRY(need_dir(dir, sub, d, sizeof d));
    if (!(opt && opt->random_weights)) return clip_text_load(&m->te[i], m->cx, d, variant);
    char p[4200];
    clip_text_config cfg;
    snprintf(p, sizeof p, "%s/config.json", d);
    SDC_TRY(clip_text_config_load(&cfg, p));
    cfg.with_projection = i > 0; /* SDXL's second encoder is the CLIPTextModelWithProjection */
    weights *w = calloc(1, sizeof *w);
    if (!w) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    sdc_status st = open_random(w);
    if (!st) quantize_as_loaded(w, m, opt);
    if (!st) st = clip_text_load_weights(&m->te[i], m->cx, &cfg, w);
    if (!st) st = clip_text_own_weights(m->te[i], w);
    if (st) {
        weights_close(w);
        free(w);
    }
    return st;
}

static sdc_status load_unet(sdc_model *m, const char *d, const sdc_load_options *opt) {
    if (!(opt && opt->random_weights)) return unet_load(&m->unet, m->cx, d, opt ? opt->variant : NULL);
    char p[4200];
    cJSON *j;
    unet_config cfg;
    weights w;
    snprintf(p, sizeof p, "%s/config.json", d);
    SDC_TRY(json_load(p, &j));
    sdc_status st = unet_config_from_json(j, p, &cfg);
    cJSON_Delete(j);
    SDC_TRY(st);
    SDC_TRY(open_random(&w));
    quantize_as_loaded(&w, m, opt);
    return unet_load_weights(&m->unet, m->cx, &cfg, &w); /* the UNet owns w now, even on failure */
}

static sdc_status load_vae(sdc_model *m, const char *d, const sdc_load_options *opt) {
    if (!(opt && opt->random_weights)) return vae_load(&m->vae, m->cx, d, opt ? opt->variant : NULL);
    char p[4200];
    vae_config cfg;
    snprintf(p, sizeof p, "%s/config.json", d);
    SDC_TRY(vae_config_load(&cfg, p));
    weights *w = calloc(1, sizeof *w);
    if (!w) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    sdc_status st = open_random(w);
    if (!st) st = vae_load_weights(&m->vae, m->cx, &cfg, w);
    if (!st) st = vae_own_weights(m->vae, w);
    if (st) {
        weights_close(w);
        free(w);
    }
    return st;
}

sdc_status cuv_load_folder(sdc_model *m, const char *dir, const sdc_load_options *opt) {
    char d[4096], p[4200];
    cJSON *idx;
    snprintf(p, sizeof p, "%s/model_index.json", dir);
    SDC_TRY(json_load(p, &idx));
    sdc_status st = json_get_bool(idx, "force_zeros_for_empty_prompt", 1, &m->force_zeros_for_empty_prompt, p);
    cJSON_Delete(idx);
    SDC_TRY(st);
    if (m->ntext < 1 || m->ntext > MODEL_MAX_TEXT)
        return sdc_fail(SDC_ERR_ARG, "%s: %d text encoders (1..%d)", dir, m->ntext, MODEL_MAX_TEXT);
    for (int i = 0; i < m->ntext; i++) SDC_TRY(load_text(m, dir, i, opt));
    SDC_TRY(need_dir(dir, "unet", d, sizeof d));
    SDC_TRY(load_unet(m, d, opt));
    SDC_TRY(need_dir(dir, "vae", d, sizeof d));
    SDC_TRY(load_vae(m, d, opt));
    SDC_TRY(need_dir(dir, "scheduler", d, sizeof d));
    snprintf(p, sizeof p, "%s/scheduler_config.json", d);
    SDC_TRY(json_load(p, &m->sched_json));
    return cuv_check(m, dir);
}

sdc_status cuv_check(sdc_model *m, const char *what) {
    const unet_config *uc = unet_get_config(m->unet);
    int ctx = 0;
    for (int i = 0; i < m->ntext; i++) ctx += clip_text_hidden_size(m->te[i]);
    if (uc->cross_dim[0] != ctx)
        return sdc_fail(SDC_ERR_SHAPE, "%s: UNet cross_attention_dim %d does not match the text encoder width %d",
                        what, uc->cross_dim[0], ctx);
    if (uc->add_text_time) {
        int proj = clip_text_projection_dim(m->te[m->ntext - 1]);
        if (!proj)
            return sdc_fail(SDC_ERR_FORMAT, "%s: the last text encoder has no text_projection "
                            "(CLIPTextModelWithProjection expected)", what);
        if (uc->add_in_dim != 6 * uc->add_time_dim + proj)
            return sdc_fail(SDC_ERR_SHAPE, "%s: UNet projection_class_embeddings_input_dim %d does not match 6 x %d + "
                            "text projection %d", what, uc->add_in_dim, uc->add_time_dim, proj);
    }
    m->vae_scale = vae_downscale_factor(m->vae);
    return SDC_OK;
}

sdc_status cuv_cond_begin(sdc_model *m, const char *const *prompts, int B, int P, text_cond *out) {
    memset(out, 0, sizeof *out);
    op_set_precision(m->cx, m->te_dt);
    out->B = B;
    out->T = FAMILY_TOKENS;
    out->P = P;
    for (int i = 0; i < m->ntext; i++) out->D += clip_text_hidden_size(m->te[i]);
    out->nids = m->ntext;
    sdc_status st = SDC_OK;
    for (int i = 0; i < m->ntext && !st; i++) {
        if (!(out->ids[i] = malloc((size_t)B * FAMILY_TOKENS * sizeof(int64_t)))) {
            st = sdc_fail(SDC_ERR_NOMEM, "out of memory");
            break;
        }
        for (int b = 0; b < B && !st; b++)
            st = clip_encode(m->tok[i], prompts[b], strlen(prompts[b]), FAMILY_TOKENS,
                             out->ids[i] + (int64_t)b * FAMILY_TOKENS, NULL, NULL);
    }
    if (!st) st = alloc_f32(&out->embeds, (int64_t)B * FAMILY_TOKENS * out->D);
    if (!st && P) st = alloc_f32(&out->pooled, (int64_t)B * P);
    if (st) text_cond_free(out);
    return st;
}

sdc_status cuv_hidden(sdc_model *m, int which, int layer, int final_norm, int col, int pooled, text_cond *out) {
    const clip_text_model *te = m->te[which];
    int B = out->B, D = clip_text_hidden_size(te), graphs = step_graph_env_enabled();
    clip_runner **slot = &m->te_run[which];
    if (!clip_runner_fits(*slot, te, B, FAMILY_TOKENS, layer, final_norm, pooled, graphs)) {
        clip_runner_free(*slot);
        *slot = NULL;
        SDC_TRY(clip_runner_create(slot, te, B, FAMILY_TOKENS, layer, final_norm, pooled, graphs));
    }
    float *h = NULL;
    sdc_status st = alloc_f32(&h, (int64_t)B * FAMILY_TOKENS * D);
    if (!st) st = clip_runner_run(*slot, out->ids[which], h, pooled ? out->pooled : NULL);
    if (!st)
        for (int64_t r = 0; r < (int64_t)B * FAMILY_TOKENS; r++)
            memcpy(out->embeds + r * out->D + col, h + r * D, (size_t)D * sizeof(float));
    free(h);
    if (st || op_host_memory(m->cx)) { /* the CPU gains nothing from keeping it */
        clip_runner_free(*slot);
        *slot = NULL;
    }
    return st;
}

void cuv_latents(const sdc_model *m, latent_format *out) {
    out->channels = vae_latent_channels(m->vae);
    out->scale = vae_scaling_factor(m->vae);
    out->shift = vae_shift_factor(m->vae);
}
