/* tokenizer_api.c - the CLIP tokenizer as front ends see it (sdc.h:
 * sdc_tokenizer, sdc_tokenize, sdc_tokenize_a1111): one call gives what
 * `sdc tokenize` prints. */
#include <stdlib.h>
#include <string.h>

#include "sdc.h"
#include "text/a1111_prompt.h"
#include "text/clip_tokenizer.h"

struct sdc_tokenizer {
    clip_tokenizer *t;
};

sdc_status sdc_tokenizer_load(sdc_tokenizer **out, const char *dir) {
    *out = calloc(1, sizeof **out);
    if (!*out) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    sdc_status st = clip_tokenizer_load(&(*out)->t, dir);
    if (st) {
        free(*out);
        *out = NULL;
    }
    return st;
}

void sdc_tokenizer_free(sdc_tokenizer *t) {
    if (!t) return;
    clip_tokenizer_free(t->t);
    free(t);
}

sdc_status sdc_tokenize(const sdc_tokenizer *t, const char *text, size_t len, sdc_tokens *out) {
    memset(out, 0, sizeof *out);
    int32_t *ids32 = NULL;
    out->max_length = clip_tokenizer_max_length(t->t);
    sdc_status st = (out->input_ids = malloc((size_t)out->max_length * sizeof(int64_t)))
                        ? SDC_OK
                        : sdc_fail(SDC_ERR_NOMEM, "out of memory");
    if (!st)
        st = clip_encode(t->t, text, len, out->max_length, out->input_ids, &out->untruncated_ids,
                         &out->nuntruncated);
    if (!st) st = clip_tokenize(t->t, text, len, &out->tokens, &ids32, &out->n);
    if (!st && out->n && !(out->token_ids = malloc((size_t)out->n * sizeof(int64_t))))
        st = sdc_fail(SDC_ERR_NOMEM, "out of memory");
    for (int i = 0; !st && i < out->n; i++) out->token_ids[i] = ids32[i];
    free(ids32);
    if (st) sdc_tokens_free(out);
    return st;
}

void sdc_tokens_free(sdc_tokens *k) {
    clip_tokens_free(k->tokens, NULL, k->n);
    free(k->token_ids);
    free(k->untruncated_ids);
    free(k->input_ids);
    memset(k, 0, sizeof *k);
}

/* the parse's pieces, weights and tokens copied out */
static sdc_status copy_fragments(const clip_tokenizer *t, const a1111_parse *p, sdc_a1111_tokens *out) {
    int n = p->n;
    out->nfragments = n;
    if (!(out->fragment_text = calloc((size_t)n, sizeof(char *))) ||
        !(out->fragment_weight = calloc((size_t)n, sizeof(double))) ||
        !(out->fragment_ntokens = calloc((size_t)n, sizeof(int))) ||
        !(out->fragment_tokens = calloc((size_t)n, sizeof(char **))))
        return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        out->fragment_weight[i] = p->f[i].weight;
        if (!(out->fragment_text[i] = strdup(p->f[i].text))) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
        if (a1111_fragment_is_break(&p->f[i])) continue; /* a marker, not text */
        int32_t *ids;
        SDC_TRY(clip_tokenize(t, p->f[i].text, p->f[i].len, &out->fragment_tokens[i], &ids, &out->fragment_ntokens[i]));
        free(ids);
    }
    return SDC_OK;
}

sdc_status sdc_tokenize_a1111(const sdc_tokenizer *t, const char *text, size_t len, sdc_a1111_tokens *out) {
    memset(out, 0, sizeof *out);
    a1111_parse p;
    a1111_chunks c = {0};
    sdc_prompt_networks nets; /* the text as the encoder gets it: no <lora:...> tags */
    char *t0 = malloc(len + 1);
    if (!t0) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    if (len) memcpy(t0, text, len);
    t0[len] = 0; /* a NUL inside the text ends it here, as it ends a C prompt */
    sdc_status st = sdc_prompt_networks_parse(t0, &nets);
    free(t0);
    if (st) return st;
    st = a1111_parse_prompt(nets.text, strlen(nets.text), &p);
    sdc_prompt_networks_free(&nets);
    if (!st) st = copy_fragments(t->t, &p, out);
    if (!st) st = a1111_chunk(t->t, &p, A1111_COMMA_BACKTRACK, SDC_MAX_PROMPT_CHUNKS, &c);
    a1111_parse_free(&p);
    if (!st) {
        a1111_pad_after_eos(c.ids, c.n, clip_tokenizer_eos(t->t), clip_tokenizer_pad(t->t));
        out->nchunks = c.n, out->chunk_ids = c.ids, out->chunk_multipliers = c.multipliers;
        out->token_count = c.token_count;
    }
    if (st) sdc_a1111_tokens_free(out);
    return st;
}

void sdc_a1111_tokens_free(sdc_a1111_tokens *k) {
    for (int i = 0; i < k->nfragments; i++) {
        if (k->fragment_text) free(k->fragment_text[i]);
        if (k->fragment_tokens) clip_tokens_free(k->fragment_tokens[i], NULL, k->fragment_ntokens[i]);
    }
    free(k->fragment_text), free(k->fragment_weight), free(k->fragment_ntokens), free(k->fragment_tokens);
    free(k->chunk_ids), free(k->chunk_multipliers);
    memset(k, 0, sizeof *k);
}
