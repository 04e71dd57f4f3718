/* a1111_cond.c - A1111's conditioning (a1111_cond.h): its
 * FrozenCLIPEmbedderWithCustomWordsBase.forward for one prompt at a time
 * (prompt_parser groups the texts so), then stack_conds over a batch.
 * Every chunk of every prompt is one row of a single encoder batch: rows do
 * not interact in CLIP, and the emphasis works per row, so this equals
 * encoding each chunk alone. */
#include "family/a1111_cond.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "family/clip_unet_vae.h"
#include "nn/layers.h"

a1111_opts a1111_opts_default(int clip_skip) {
    return (a1111_opts){
        .clip_skip = clip_skip, .emphasis = A1111_EMPHASIS_ORIGINAL, .comma_backtrack = A1111_COMMA_BACKTRACK};
}

/* sd_emphasis.py on one chunk of one encoder: z [77, D] at row stride
 * `stride`, mult [77]. Original: z1 = z * m, then z1 * (mean(z) / mean(z1)).
 * The means are accumulated in double and rounded to float32, the ratio is
 * a float32 division as torch's: the tiny models' means are near zero, so
 * the ratio magnifies float32 summation error (fixtures README). */
static sdc_status emphasis(float *z, int stride, int D, const float *mult, a1111_emphasis e) {
    if (e == A1111_EMPHASIS_IGNORE || e == A1111_EMPHASIS_NONE) return SDC_OK;
    int ones = 1;
    for (int t = 0; t < A1111_CHUNK_IDS; t++) ones &= mult[t] == 1.0f;
    if (ones) return SDC_OK; /* z * 1 and a ratio of exactly 1: z as it is */
    double s0 = 0, s1 = 0, N = (double)A1111_CHUNK_IDS * D;
    for (int t = 0; t < A1111_CHUNK_IDS; t++) {
        float *r = z + (int64_t)t * stride;
        for (int j = 0; j < D; j++) {
            s0 += r[j];
            r[j] *= mult[t];
            s1 += r[j];
        }
    }
    if (e == A1111_EMPHASIS_NO_NORM) return SDC_OK;
    float mean0 = (float)(s0 / N), mean1 = (float)(s1 / N), ratio = mean0 / mean1;
    if (!isfinite(ratio))
        return sdc_fail(SDC_ERR_ARG, "its weights bring a chunk's mean to zero, which the emphasis divides by "
                                     "(A1111 fails on it too)");
    for (int t = 0; t < A1111_CHUNK_IDS; t++) {
        float *r = z + (int64_t)t * stride;
        for (int j = 0; j < D; j++) r[j] *= ratio;
    }
    return SDC_OK;
}

typedef struct {
    int B, nenc, rows, kmax;
    a1111_chunks *ch; /* [B][nenc] */
    int *row0;        /* [B] first row of each prompt */
} chunk_set;

static void chunk_set_free(chunk_set *s) {
    for (int i = 0; s->ch && i < s->B * s->nenc; i++) a1111_chunks_free(&s->ch[i]);
    free(s->ch), free(s->row0);
}

/* every prompt's chunks with each encoder's tokenizer (same counts) */
static sdc_status make_chunks(sdc_model *m, const char *const *prompts, int B, const a1111_encoder *enc, int nenc,
                              const a1111_opts *o, chunk_set *s) {
    memset(s, 0, sizeof *s);
    s->B = B, s->nenc = nenc;
    if (!(s->ch = calloc((size_t)B * nenc, sizeof *s->ch)) || !(s->row0 = calloc((size_t)B, sizeof *s->row0)))
        return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    for (int b = 0; b < B; b++) {
        a1111_parse p;
        size_t len = strlen(prompts[b]);
        sdc_status st = o->emphasis == A1111_EMPHASIS_NONE ? a1111_parse_literal(prompts[b], len, &p)
                                                           : a1111_parse_prompt(prompts[b], len, &p);
        for (int e = 0; e < nenc && !st; e++)
            st = a1111_chunk(m->tok[enc[e].which], &p, o->comma_backtrack, SDC_MAX_PROMPT_CHUNKS, &s->ch[b * nenc + e]);
        a1111_parse_free(&p); /* zeroed when the parse failed */
        if (st) return sdc_wrap(st, "prompt \"%.40s%s\": ", prompts[b], len > 40 ? "..." : "");
        int k = s->ch[b * nenc].n;
        for (int e = 1; e < nenc; e++)
            if (s->ch[b * nenc + e].n != k)
                return sdc_fail(SDC_ERR_UNSUPPORTED,
                                "prompt %d: the text encoders' tokenizers cut it into %d and %d "
                                "chunks; A1111 cannot put them side by side either",
                                b, k, s->ch[b * nenc + e].n);
        s->row0[b] = s->rows;
        s->rows += k;
        if (k > s->kmax) s->kmax = k;
    }
    return SDC_OK;
}

/* raw: one row of 77 per chunk: ids as each encoder reads them, its hidden
 * states in its columns, the emphasis applied */
static sdc_status encode_rows(sdc_model *m, const chunk_set *s, const a1111_encoder *enc, int P, const a1111_opts *o,
                              text_cond *raw) {
    memset(raw, 0, sizeof *raw);
    raw->B = s->rows, raw->T = A1111_CHUNK_IDS, raw->P = P, raw->nids = s->nenc;
    for (int e = 0; e < s->nenc; e++) raw->D += clip_text_hidden_size(m->te[enc[e].which]);
    for (int e = 0; e < s->nenc; e++) {
        const clip_tokenizer *t = m->tok[enc[e].which];
        int64_t *ids = malloc((size_t)s->rows * A1111_CHUNK_IDS * sizeof *ids);
        if (!(raw->ids[enc[e].which] = ids)) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
        for (int b = 0; b < s->B; b++) {
            const a1111_chunks *c = &s->ch[b * s->nenc + e];
            memcpy(ids + (size_t)s->row0[b] * A1111_CHUNK_IDS, c->ids, (size_t)c->n * A1111_CHUNK_IDS * sizeof *ids);
        }
        a1111_pad_after_eos(ids, s->rows, clip_tokenizer_eos(t), clip_tokenizer_pad(t));
    }
    SDC_TRY(alloc_f32(&raw->embeds, (int64_t)s->rows * A1111_CHUNK_IDS * raw->D));
    if (P) SDC_TRY(alloc_f32(&raw->pooled, (int64_t)s->rows * P));
    for (int e = 0, col = 0; e < s->nenc; e++) {
        SDC_TRY(cuv_hidden(m, enc[e].which, enc[e].layer, enc[e].final_norm, col, enc[e].pooled, raw));
        int De = clip_text_hidden_size(m->te[enc[e].which]);
        for (int b = 0; b < s->B; b++) {
            const a1111_chunks *c = &s->ch[b * s->nenc + e];
            for (int k = 0; k < c->n; k++) {
                float *z = raw->embeds + ((int64_t)(s->row0[b] + k) * A1111_CHUNK_IDS) * raw->D + col;
                SDC_TRY(emphasis(z, raw->D, De, c->multipliers + (size_t)k * A1111_CHUNK_IDS, o->emphasis));
            }
        }
        col += De;
    }
    return SDC_OK;
}

/* the rows of each prompt side by side, stack_conds padding, pooled of chunk 0 */
static sdc_status assemble(sdc_model *m, const chunk_set *s, const a1111_encoder *enc, const text_cond *raw,
                           text_cond *out) {
    int B = s->B, T = s->kmax * A1111_CHUNK_IDS, D = raw->D, P = raw->P;
    memset(out, 0, sizeof *out);
    out->B = B, out->T = T, out->D = D, out->P = P, out->nids = s->nenc;
    SDC_TRY(alloc_f32(&out->embeds, (int64_t)B * T * D));
    SDC_TRY(alloc_f32(&out->multipliers, (int64_t)B * T));
    if (P) SDC_TRY(alloc_f32(&out->pooled, (int64_t)B * P));
    for (int e = 0; e < s->nenc; e++)
        if (!(out->ids[enc[e].which] = malloc((size_t)B * T * sizeof(int64_t))))
            return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    for (int b = 0; b < B; b++) {
        int have = s->ch[b * s->nenc].n * A1111_CHUNK_IDS;
        const float *src = raw->embeds + (int64_t)s->row0[b] * A1111_CHUNK_IDS * D;
        float *dst = out->embeds + (int64_t)b * T * D;
        memcpy(dst, src, (size_t)have * D * sizeof(float));
        for (int t = have; t < T; t++) /* stack_conds: the last token vector repeated */
            memcpy(dst + (int64_t)t * D, src + (int64_t)(have - 1) * D, (size_t)D * sizeof(float));
        const float *mu = s->ch[b * s->nenc].multipliers;
        for (int t = 0; t < T; t++) out->multipliers[(int64_t)b * T + t] = t < have ? mu[t] : 1.0f;
        for (int e = 0; e < s->nenc; e++) {
            int w = enc[e].which;
            const int64_t *ri = raw->ids[w] + (size_t)s->row0[b] * A1111_CHUNK_IDS;
            int64_t *oi = out->ids[w] + (size_t)b * T, pad = clip_tokenizer_pad(m->tok[w]);
            for (int t = 0; t < T; t++) oi[t] = t < have ? ri[t] : pad;
        }
        if (P) memcpy(out->pooled + (int64_t)b * P, raw->pooled + (int64_t)s->row0[b] * P, (size_t)P * sizeof(float));
    }
    return SDC_OK;
}

sdc_status a1111_encode(sdc_model *m, const char *const *prompts, int B, const a1111_encoder *enc, int nenc, int P,
                        const a1111_opts *o, text_cond *out) {
    memset(out, 0, sizeof *out);
    op_set_precision(m->cx, m->te_dt);
    chunk_set s;
    text_cond raw;
    memset(&raw, 0, sizeof raw);
    sdc_status st = make_chunks(m, prompts, B, enc, nenc, o, &s);
    if (!st) st = encode_rows(m, &s, enc, P, o, &raw);
    if (!st) st = assemble(m, &s, enc, &raw, out);
    text_cond_free(&raw);
    chunk_set_free(&s);
    if (st) text_cond_free(out);
    return st;
}

sdc_status a1111_pad_empty(text_cond *c, const text_cond *empty, int T) {
    int B = c->B, D = c->D, T0 = c->T, Te = empty->T;
    if (T == T0) return SDC_OK;
    if (T < T0 || empty->B != 1 || (T - T0) % Te || empty->D != D || (c->nids && empty->nids != c->nids) ||
        (c->multipliers && !empty->multipliers))
        return sdc_fail(SDC_ERR_SHAPE, "cannot pad a conditioning of %d tokens to %d with blocks of %d", T0, T, Te);
    float *e = NULL, *mu = NULL;
    int64_t *ids[2] = {NULL, NULL};
    sdc_status st = alloc_f32(&e, (int64_t)B * T * D);
    if (!st && c->multipliers) st = alloc_f32(&mu, (int64_t)B * T);
    for (int i = 0; i < c->nids && !st; i++)
        if (!(ids[i] = malloc((size_t)B * T * sizeof(int64_t)))) st = sdc_fail(SDC_ERR_NOMEM, "out of memory");
    if (st) {
        free(e), free(mu), free(ids[0]), free(ids[1]);
        return st;
    }
    for (int b = 0; b < B; b++) /* row b: its own T0 tokens, then the empty prompt's, repeated */
        for (int t = 0; t < T; t += t < T0 ? T0 : Te) {
            int own = t < T0, n = own ? T0 : Te;
            int64_t src = own ? (int64_t)b * T0 : 0, dst = (int64_t)b * T + t;
            memcpy(e + dst * D, (own ? c->embeds : empty->embeds) + src * D, (size_t)n * D * sizeof(float));
            if (mu) memcpy(mu + dst, (own ? c->multipliers : empty->multipliers) + src, (size_t)n * sizeof(float));
            for (int i = 0; i < c->nids; i++)
                memcpy(ids[i] + dst, (own ? c->ids[i] : empty->ids[i]) + src, (size_t)n * sizeof(int64_t));
        }
    free(c->embeds), free(c->multipliers);
    c->embeds = e, c->multipliers = mu;
    for (int i = 0; i < c->nids; i++) free(c->ids[i]), c->ids[i] = ids[i];
    c->T = T;
    return SDC_OK;
}
