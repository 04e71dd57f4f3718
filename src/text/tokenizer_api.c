/* tokenizer_api.c - the CLIP tokenizer as front ends see it (sdc.h:
 * sdc_tokenizer, sdc_tokenize): one call gives what `sdc tokenize` prints. */
#include <stdlib.h>
#include <string.h>

#include "sdc.h"
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
