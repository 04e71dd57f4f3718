/* text_conditioning.h - prompts to the UNet's conditioning, as diffusers'
 * encode_prompt does it. SD: last_hidden_state of the text encoder (or an
 * earlier layer + final LayerNorm with clip skip). SDXL: penultimate hidden
 * states of both encoders concatenated, pooled embedding of encoder 2. */
#ifndef SDC_PIPELINE_TEXT_CONDITIONING_H
#define SDC_PIPELINE_TEXT_CONDITIONING_H

#include "pipeline/model.h"

#define SDC_TOKENS 77

typedef struct {
    int B, T, D, P;   /* images, tokens, context width, pooled width (SDXL, else 0) */
    float *embeds;    /* [B, T, D] */
    float *pooled;    /* [B, P] or NULL */
    int64_t *ids, *ids2; /* [B, T] token ids of each tokenizer (ids2 SDXL only) */
} text_cond;

/* prompts[B]; clip_skip as in sdc_request (0/1 = none). */
sdc_status text_cond_encode(sdc_model *m, const char *const *prompts, int B, int clip_skip, text_cond *out);
/* All zeros of the same shape (SDXL force_zeros_for_empty_prompt). */
sdc_status text_cond_zeros(const sdc_model *m, int B, text_cond *out);
void text_cond_free(text_cond *c);
int text_cond_width(const sdc_model *m);

#endif
