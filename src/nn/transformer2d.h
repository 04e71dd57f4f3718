/* transformer2d.h - diffusers Transformer2DModel (continuous input) with
 * BasicTransformerBlocks: self-attention, cross-attention to the text
 * embeddings, GEGLU feed-forward, each behind a LayerNorm with a residual.
 *   x[B,C,H,W] -> GroupNorm(eps 1e-6) -> proj_in (1x1 conv or linear)
 *   -> blocks on [B, HW, inner] -> proj_out -> + x */
#ifndef SDC_NN_TRANSFORMER2D_H
#define SDC_NN_TRANSFORMER2D_H

#include "nn/layers.h"

typedef struct {
    int dim, ctx_dim, heads, head_dim;
    linear to_q, to_k, to_v, to_out; /* q (inner, dim); k,v (inner, ctx_dim); out (dim, inner) */
} attention_module;

typedef struct {
    layer_norm norm1, norm2, norm3;
    attention_module attn1, attn2;
    linear ff_in, ff_out; /* ff.net.0.proj (2*ff_inner, dim), ff.net.2 (dim, ff_inner) */
    int ff_inner;
} transformer_block;

typedef struct {
    int C, inner, heads, ctx_dim, nblocks, linear_proj;
    group_norm norm;
    conv2d proj_in_conv, proj_out_conv;
    linear proj_in_lin, proj_out_lin;
    transformer_block *blocks;
} transformer2d;

sdc_status attention_load(weights *w, attention_module *a, int dim, int ctx_dim, int heads, int out_bias,
                          const char *name);
/* x[B, N, dim] attends to ctx[B, M, ctx_dim] (ctx == NULL: self-attention, M = N); out[B, N, dim]. */
sdc_status attention_fwd(op_ctx *cx, const attention_module *a, const float *x, int B, int N, const float *ctx, int M, float *out);

sdc_status transformer2d_load(weights *w, transformer2d *t, int C, int heads, int nblocks, int ctx_dim, int groups,
                              int linear_proj, const char *name);
void transformer2d_free(transformer2d *t);
/* x[B, C, H, W] updated in place; ctx[B, M, ctx_dim]. */
sdc_status transformer2d_fwd(op_ctx *cx, const transformer2d *t, float *x, int B, int H, int W, const float *ctx, int M);

#endif
