/* clip_text_model.h - the CLIP text encoder of transformers 4.44
 * (CLIPTextModel / CLIPTextModelWithProjection): token + position
 * embeddings, pre-LayerNorm transformer layers with causal self-attention
 * and an MLP (quick_gelu or erf gelu), final LayerNorm, EOS pooling and the
 * optional bias-free text projection. Owns config parsing, loading (from a
 * transformers folder or from an open weights object) and the forward. */
#ifndef SDC_TEXT_CLIP_TEXT_MODEL_H
#define SDC_TEXT_CLIP_TEXT_MODEL_H

#include <stdint.h>

#include "nn/weights.h"

typedef enum { CLIP_ACT_QUICK_GELU, CLIP_ACT_GELU } clip_act;

typedef struct {
    int hidden_size;       /* D */
    int intermediate_size; /* MLP width */
    int num_layers;
    int num_heads;
    int max_positions;     /* max_position_embeddings */
    int vocab_size;
    clip_act act;
    float layer_norm_eps;
    int64_t eos_token_id;  /* 2 = legacy pooling rule (argmax of the ids) */
    int with_projection;   /* CLIPTextModelWithProjection: text_projection.weight (proj, D) */
    int projection_dim;
} clip_text_config;

typedef struct clip_text_model clip_text_model;

/* Called with intermediate activations during a forward (tests, --dump).
 * name is the transformers module path ("text_model.embeddings",
 * "text_model.encoder.layers.0.layer_norm1", ".self_attn", ".mlp");
 * x is [B, T, D] and only valid during the call. */
typedef void (*clip_tap_fn)(void *ctx, const char *name, const float *x, int B, int T, int D);

/* Parse a transformers CLIPTextConfig file (config.json) and validate it. */
sdc_status clip_text_config_load(clip_text_config *cfg, const char *config_path);
/* Reject absurd or inconsistent values; `what` names the source in messages. */
sdc_status clip_text_config_check(const clip_text_config *cfg, const char *what);

/* dir: config.json + model.safetensors (or shards via
 * model.safetensors.index.json); with variant "fp16", model.fp16.safetensors
 * when it exists, else the plain file. The model owns its files; its
 * forward runs in cx (the model's context, which must outlive it). */
sdc_status clip_text_load(clip_text_model **out, op_ctx *cx, const char *dir, const char *variant);

/* Parameters looked up as w->prefix + "text_model.…" and
 * "text_projection.weight" (HF names). The model borrows w: it must stay
 * open until clip_text_free. */
sdc_status clip_text_load_weights(clip_text_model **out, op_ctx *cx, const clip_text_config *cfg, weights *w);

/* Hand the heap-allocated w the model was loaded from over to it: closed
 * and freed by clip_text_free. */
sdc_status clip_text_own_weights(clip_text_model *m, weights *w);
void clip_text_free(clip_text_model *m);

/* ids[B, T], 0 <= id < vocab_size, 1 <= T <= max_positions. Every output is
 * optional (NULL skips it); layers past the last one needed are not run.
 *   hidden_states: NULL or an array of num_layers+1 pointers (each NULL or a
 *                  caller buffer [B, T, D]): 0 = embeddings, i = after layer i
 *                  (no final norm). hidden_states[num_layers-1] = clip skip 1.
 *   last_hidden:   [B, T, D] final_layer_norm(last layer)
 *   pooled:        [B, D] last_hidden at each row's EOS position
 *   text_embeds:   [B, projection_dim] text_projection(pooled) (projection models only) */
sdc_status clip_text_forward(const clip_text_model *m, const int64_t *ids, int B, int T, float **hidden_states,
                             float *last_hidden, float *pooled, float *text_embeds);
/* Same, reporting intermediates to tap (may be NULL). */
sdc_status clip_text_forward_tap(const clip_text_model *m, const int64_t *ids, int B, int T, float **hidden_states,
                                 float *last_hidden, float *pooled, float *text_embeds, clip_tap_fn tap,
                                 void *tap_ctx);

/* x[rows, D] <- final_layer_norm(x) in place (diffusers applies it to the
 * clip-skipped hidden state of SD1/SD2 encoders). x is host memory, like
 * every buffer of this interface; fails only when it must be copied to the
 * backend's memory and cannot. */
sdc_status clip_text_final_norm(const clip_text_model *m, float *x, int64_t rows);

/* The forward in parts on activation memory, for a runner that captures
 * the layer stack into a step graph (clip_text_runner.h):
 *   clip_text_embed: x[B*T, D] = embeddings of ids (host; checked here)
 *   clip_text_layers: layers [0, n) on x in place, ws of
 *     clip_text_workspace_floats; the hidden state after `layer` layers
 *     (0 = embeddings, <= n) into out, through the final norm when
 *     final_norm; last (n == num_layers only) = final_norm(x). No host round
 *     trip: a step graph may capture it.
 *   clip_text_pool_project: pool[B, D] = last at each row's EOS (host ids),
 *     text_embeds (NULL to skip) = text_projection(pool). */
sdc_status clip_text_embed(const clip_text_model *m, const int64_t *ids, int B, int T, float *x);
sdc_status clip_text_layers(const clip_text_model *m, float *x, int B, int T, int n, float *ws, int layer,
                            int final_norm, float *out, float *last);
sdc_status clip_text_pool_project(const clip_text_model *m, const int64_t *ids, int B, int T, const float *last,
                                  float *pool, float *text_embeds);
int64_t clip_text_workspace_floats(const clip_text_model *m, int B, int T);

/* The EOS position pooled for one row of ids[T] (the rule of transformers 4.44). */
int clip_text_eos_index(const clip_text_model *m, const int64_t *ids, int T);

const clip_text_config *clip_text_get_config(const clip_text_model *m);
int clip_text_hidden_size(const clip_text_model *m);
int clip_text_num_layers(const clip_text_model *m);
int clip_text_projection_dim(const clip_text_model *m); /* 0 without projection */
/* The weights object the model took its parameters from (its own files or
 * the borrowed one), for fusing LoRAs into them (weights_mutable). */
weights *clip_text_weights(clip_text_model *m);
op_ctx *clip_text_ctx(const clip_text_model *m);

#endif
