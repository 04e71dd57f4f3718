/* a1111_cond.h - the conditioning AUTOMATIC1111 builds from a prompt for the
 * CLIP families (sd_hijack_clip.py, sd_hijack_open_clip.py, sd_emphasis.py):
 * each prompt parsed and cut into 77-id chunks (text/a1111_prompt.h), every
 * chunk through each text encoder alone, the emphasis applied per chunk and
 * encoder, the chunks side by side on the token axis. The families say which
 * encoders, layers and pooled output (family_sd.c, family_sdxl.c). */
#ifndef SDC_FAMILY_A1111_COND_H
#define SDC_FAMILY_A1111_COND_H

#include "family/model.h"
#include "text/a1111_prompt.h"

typedef enum {
    A1111_EMPHASIS_ORIGINAL = 0, /* z * m, then scaled back to z's mean (A1111's default) */
    A1111_EMPHASIS_NO_NORM,      /* z * m */
    A1111_EMPHASIS_IGNORE,       /* z: the syntax is parsed (BREAK works), the weights unused */
    A1111_EMPHASIS_NONE,         /* no syntax at all: the prompt is one fragment of weight 1 */
} a1111_emphasis;

typedef struct a1111_opts {
    int clip_skip;           /* CLIP_stop_at_last_layers (0/1: last layer), for the encoders that honour it */
    a1111_emphasis emphasis; /* opts.emphasis */
    int comma_backtrack;     /* opts.comma_padding_backtrack (A1111_COMMA_BACKTRACK; 0: off) */
} a1111_opts;

/* A1111's defaults with this clip skip. */
a1111_opts a1111_opts_default(int clip_skip);

/* One text encoder's part of the conditioning: its hidden state `layer`
 * (0 = embeddings .. num_layers), through the final LayerNorm when
 * final_norm, in the columns after the encoders listed before it; pooled:
 * its pooled projection of each prompt's first chunk is out->pooled. */
typedef struct {
    int which; /* m->tok[which] and m->te[which]; encoders listed in this order from 0 */
    int layer;
    int final_norm;
    int pooled;
} a1111_encoder;

/* prompts[B] -> out: embeds [B, T, D] with T = 77 x the most chunks of any
 * prompt (a prompt with fewer repeats its last token vector, as A1111's
 * stack_conds), D the encoders' widths side by side; pooled [B, P] when P;
 * ids (and multipliers, of the first encoder) [B, T], the padding's ids the
 * pad id. An encoder whose pad token is not its eos reads every id after a
 * chunk's first eos as the pad id (A1111's process_tokens for OpenCLIP). */
sdc_status a1111_encode(sdc_model *m, const char *const *prompts, int B, const a1111_encoder *enc, int nenc, int P,
                        const a1111_opts *o, text_cond *out);

/* c [B, T0] -> [B, T]: the empty prompt's conditioning (empty: B = 1, its
 * embeds, ids and multipliers) appended (T - T0) / empty->T times to every
 * row, as A1111's pad_cond_uncond (pooled stays). */
sdc_status a1111_pad_empty(text_cond *c, const text_cond *empty, int T);

#endif
