/* a1111_chunk.c - A1111's tokenize_line (sd_hijack_clip.py), written from
 * its rules (README-a1111-prompts.md section 3): every fragment tokenized
 * alone (no bos/eos, no truncation), each token carrying its fragment's
 * weight, laid into chunks of 75:
 *   BREAK marker            close the current chunk (even an empty one)
 *   token ",</w>"           remember its index in the chunk (last_comma)
 *   other token, chunk full, a comma among its last `backtrack` tokens:
 *                           the tokens after that comma move to a new chunk
 *   chunk full              close it; then the token goes in
 * At the end the current chunk closes when it holds tokens or no chunk
 * exists. Closing pads to 75 with eos (weight 1) and wraps bos ... eos. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "text/a1111_prompt.h"

typedef struct {
    const clip_tokenizer *t;
    int max_chunks;
    a1111_chunks *out;
    int cap;
    int32_t tok[A1111_CHUNK_TOKENS]; /* the open chunk */
    double w[A1111_CHUNK_TOKENS];
    int len, last_comma;
} chunker;

/* next_chunk(): pad, wrap, append; is_last counts only its real tokens */
static sdc_status close_chunk(chunker *C, int is_last) {
    a1111_chunks *o = C->out;
    if (o->n == C->max_chunks)
        return sdc_fail(SDC_ERR_ARG, "more than %d chunks of %d tokens (%d tokens), sdc's limit", C->max_chunks,
                        A1111_CHUNK_TOKENS, C->max_chunks * A1111_CHUNK_TOKENS);
    if (o->n == C->cap) {
        int cap = C->cap ? 2 * C->cap : 4;
        int64_t *ids = realloc(o->ids, (size_t)cap * A1111_CHUNK_IDS * sizeof *ids);
        if (ids) o->ids = ids;
        float *m = ids ? realloc(o->multipliers, (size_t)cap * A1111_CHUNK_IDS * sizeof *m) : NULL;
        if (!m) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
        o->multipliers = m, C->cap = cap;
    }
    int64_t *ids = o->ids + (size_t)o->n * A1111_CHUNK_IDS;
    float *m = o->multipliers + (size_t)o->n * A1111_CHUNK_IDS;
    int eos = clip_tokenizer_eos(C->t);
    ids[0] = clip_tokenizer_bos(C->t), m[0] = 1.0f;
    for (int i = 0; i < A1111_CHUNK_TOKENS; i++) {
        int real = i < C->len;
        ids[1 + i] = real ? C->tok[i] : eos;
        m[1 + i] = real ? (float)C->w[i] : 1.0f; /* torch.asarray of the Python floats: float32 */
        if (!isfinite(m[1 + i])) return sdc_fail(SDC_ERR_ARG, "weight %g does not fit a float32 multiplier", C->w[i]);
    }
    ids[A1111_CHUNK_IDS - 1] = eos, m[A1111_CHUNK_IDS - 1] = 1.0f;
    o->token_count += is_last ? C->len : A1111_CHUNK_TOKENS;
    o->n++;
    C->len = 0;
    C->last_comma = -1;
    return SDC_OK;
}

/* ",</w>" as the tokenizer has it, or -1 (no back-track then, as in A1111) */
static int32_t comma_id(const clip_tokenizer *t) {
    char **tokens;
    int32_t *ids, id = -1;
    int n;
    if (clip_tokenize(t, ",", 1, &tokens, &ids, &n)) return -1;
    if (n == 1 && !strcmp(tokens[0], ",</w>")) id = ids[0];
    clip_tokens_free(tokens, ids, n);
    return id;
}

static sdc_status add_token(chunker *C, int32_t tok, double w, int32_t comma, int backtrack) {
    if (tok == comma) {
        C->last_comma = C->len;
    } else if (backtrack && C->len == A1111_CHUNK_TOKENS && C->last_comma != -1 &&
               A1111_CHUNK_TOKENS - C->last_comma <= backtrack) {
        int at = C->last_comma + 1, moved = C->len - at;
        int32_t rt[A1111_CHUNK_TOKENS];
        double rw[A1111_CHUNK_TOKENS];
        memcpy(rt, C->tok + at, (size_t)moved * sizeof *rt);
        memcpy(rw, C->w + at, (size_t)moved * sizeof *rw);
        C->len = at;
        SDC_TRY(close_chunk(C, 0));
        memcpy(C->tok, rt, (size_t)moved * sizeof *rt);
        memcpy(C->w, rw, (size_t)moved * sizeof *rw);
        C->len = moved;
    }
    if (C->len == A1111_CHUNK_TOKENS) SDC_TRY(close_chunk(C, 0));
    C->tok[C->len] = tok;
    C->w[C->len++] = w;
    return SDC_OK;
}

sdc_status a1111_chunk(const clip_tokenizer *t, const a1111_parse *p, int backtrack, int max_chunks,
                       a1111_chunks *out) {
    memset(out, 0, sizeof *out);
    chunker C = {.t = t, .max_chunks = max_chunks, .out = out, .last_comma = -1};
    int32_t comma = comma_id(t);
    sdc_status st = SDC_OK;
    for (int f = 0; f < p->n && !st; f++) {
        const a1111_fragment *fr = &p->f[f];
        if (a1111_fragment_is_break(fr)) {
            st = close_chunk(&C, 0);
            continue;
        }
        char **tokens;
        int32_t *ids;
        int n;
        if ((st = clip_tokenize(t, fr->text, fr->len, &tokens, &ids, &n))) break;
        for (int i = 0; i < n && !st; i++) st = add_token(&C, ids[i], fr->weight, comma, backtrack);
        clip_tokens_free(tokens, ids, n);
    }
    if (!st && (C.len || !out->n)) st = close_chunk(&C, 1);
    if (st) a1111_chunks_free(out);
    return st;
}

void a1111_chunks_free(a1111_chunks *c) {
    free(c->ids);
    free(c->multipliers);
    memset(c, 0, sizeof *c);
}

void a1111_pad_after_eos(int64_t *ids, int nchunks, int64_t eos, int64_t pad) {
    if (eos == pad) return;
    for (int c = 0; c < nchunks; c++) {
        int64_t *x = ids + (size_t)c * A1111_CHUNK_IDS;
        int i = 0;
        while (i < A1111_CHUNK_IDS && x[i] != eos) i++;
        for (i++; i < A1111_CHUNK_IDS; i++) x[i] = pad;
    }
}
