/* text_conditioning.c - tokenizer + text encoder(s) -> embeddings. */
#include "pipeline/text_conditioning.h"

#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "nn/layers.h"
#include "nn/step_graph.h"
#include "text/clip_text_runner.h"

int text_cond_width(const sdc_model *m) {
    return clip_text_hidden_size(m->te) + (m->te2 ? clip_text_hidden_size(m->te2) : 0);
}

void text_cond_free(text_cond *c) {
    free(c->embeds);
    free(c->pooled);
    free(c->ids);
    free(c->ids2);
    memset(c, 0, sizeof *c);
}

static sdc_status tokenize_all(const clip_tokenizer *tok, const char *const *prompts, int B, int64_t **ids) {
    *ids = malloc((size_t)B * SDC_TOKENS * sizeof(int64_t));
    if (!*ids) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    for (int b = 0; b < B; b++)
        SDC_TRY(clip_encode(tok, prompts[b], strlen(prompts[b]), SDC_TOKENS, *ids + (int64_t)b * SDC_TOKENS, NULL, NULL));
    return SDC_OK;
}

/* hidden state `layer` (0 = embeddings .. L) of encoder `which` (0: te, 1:
 * te2) into dst rows of width D_total at column offset col, through the final
 * norm when final_norm; pooled_proj (NULL to skip) gets the pooled
 * projection. The encoder runs through its runner, kept in the model on a
 * device backend so that the next request replays its graph. */
static sdc_status encoder_layer(sdc_model *m, int which, const int64_t *ids, int B, int layer, int final_norm,
                                float *dst, int D_total, int col, float *pooled_proj) {
    const clip_text_model *te = which ? m->te2 : m->te;
    int D = clip_text_hidden_size(te), graphs = step_graph_env_enabled(), proj = pooled_proj != NULL;
    clip_runner **slot = &m->te_run[which];
    if (!clip_runner_fits(*slot, te, B, SDC_TOKENS, layer, final_norm, proj, graphs)) {
        clip_runner_free(*slot);
        *slot = NULL;
        SDC_TRY(clip_runner_create(slot, te, B, SDC_TOKENS, layer, final_norm, proj, graphs));
    }
    float *h = NULL;
    sdc_status st = alloc_f32(&h, (int64_t)B * SDC_TOKENS * D);
    if (!st) st = clip_runner_run(*slot, ids, h, pooled_proj);
    if (!st)
        for (int64_t r = 0; r < (int64_t)B * SDC_TOKENS; r++)
            memcpy(dst + r * D_total + col, h + r * D, (size_t)D * sizeof(float));
    free(h);
    if (st || op_host_memory(m->cx)) { /* the CPU gains nothing from keeping it */
        clip_runner_free(*slot);
        *slot = NULL;
    }
    return st;
}

sdc_status text_cond_encode(sdc_model *m, const char *const *prompts, int B, int clip_skip, text_cond *out) {
    memset(out, 0, sizeof *out);
    op_set_precision(m->cx, m->te_dt);
    int skip = clip_skip > 1 ? clip_skip - 1 : 0; /* diffusers' clip_skip: layers skipped from the end */
    out->B = B;
    out->T = SDC_TOKENS;
    out->D = text_cond_width(m);
    sdc_status st = tokenize_all(m->tok, prompts, B, &out->ids);
    if (!st) st = alloc_f32(&out->embeds, (int64_t)B * SDC_TOKENS * out->D);
    if (st) goto fail;
    if (m->family == FAMILY_SD) {
        int L = clip_text_num_layers(m->te);
        if (skip >= L) {
            st = sdc_fail(SDC_ERR_ARG, "clip skip %d exceeds the text encoder's %d layers", clip_skip, L);
            goto fail;
        }
        st = encoder_layer(m, 0, out->ids, B, L - skip, 1, out->embeds, out->D, 0, NULL);
    } else {
        int L1 = clip_text_num_layers(m->te), L2 = clip_text_num_layers(m->te2);
        if (skip + 2 > L1 + 1 || skip + 2 > L2 + 1) {
            st = sdc_fail(SDC_ERR_ARG, "clip skip %d exceeds the text encoders' layers", clip_skip);
            goto fail;
        }
        out->P = clip_text_projection_dim(m->te2);
        if ((st = tokenize_all(m->tok2, prompts, B, &out->ids2)) || (st = alloc_f32(&out->pooled, (int64_t)B * out->P)))
            goto fail;
        /* penultimate layer (hidden_states[-(clip_skip + 2)]), no final norm */
        st = encoder_layer(m, 0, out->ids, B, L1 - 1 - skip, 0, out->embeds, out->D, 0, NULL);
        if (!st)
            st = encoder_layer(m, 1, out->ids2, B, L2 - 1 - skip, 0, out->embeds, out->D,
                               clip_text_hidden_size(m->te), out->pooled);
    }
    if (st) goto fail;
    return SDC_OK;
fail:
    text_cond_free(out);
    return st;
}

sdc_status text_cond_zeros(const sdc_model *m, int B, text_cond *out) {
    memset(out, 0, sizeof *out);
    out->B = B;
    out->T = SDC_TOKENS;
    out->D = text_cond_width(m);
    out->P = m->te2 ? clip_text_projection_dim(m->te2) : 0;
    out->embeds = calloc((size_t)B * SDC_TOKENS * out->D, sizeof(float));
    out->pooled = out->P ? calloc((size_t)B * out->P, sizeof(float)) : NULL;
    if (!out->embeds || (out->P && !out->pooled)) {
        text_cond_free(out);
        return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    }
    return SDC_OK;
}
