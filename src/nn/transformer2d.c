/* transformer2d.c - Transformer2DModel / BasicTransformerBlock / Attention
 * forwards as diffusers computes them (AttnProcessor: scale as GEMM alpha). */
#include "nn/transformer2d.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

sdc_status attention_load(weights *w, attention_module *a, int dim, int ctx_dim, int heads, int out_bias,
                          const char *name) {
    char n[320];
    if (heads <= 0 || dim % heads)
        return sdc_fail(SDC_ERR_FORMAT, "%s: %d channels cannot be split into %d attention heads", name, dim, heads);
    a->dim = dim;
    a->ctx_dim = ctx_dim;
    a->heads = heads;
    a->head_dim = dim / heads;
    snprintf(n, sizeof n, "%s.to_q", name);
    SDC_TRY(linear_load(w, &a->to_q, dim, dim, weights_has(w, "%s.bias", n), n));
    snprintf(n, sizeof n, "%s.to_k", name);
    SDC_TRY(linear_load(w, &a->to_k, ctx_dim, dim, weights_has(w, "%s.bias", n), n));
    snprintf(n, sizeof n, "%s.to_v", name);
    SDC_TRY(linear_load(w, &a->to_v, ctx_dim, dim, weights_has(w, "%s.bias", n), n));
    snprintf(n, sizeof n, "%s.to_out.0", name);
    SDC_TRY(linear_load(w, &a->to_out, dim, dim, out_bias, n));
    return SDC_OK;
}

sdc_status attention_fwd(op_ctx *cx, const attention_module *a, const float *x, int B, int N, const float *ctx, int M, float *out) {
    const float *c = ctx ? ctx : x;
    int Mk = ctx ? M : N;
    int64_t D = a->dim;
    float *q = NULL, *k = NULL, *v = NULL, *o = NULL;
    sdc_status st;
    if ((st = op_alloc(cx, &q, (int64_t)B * N * D)) || (st = op_alloc(cx, &k, (int64_t)B * Mk * D)) ||
        (st = op_alloc(cx, &v, (int64_t)B * Mk * D)) || (st = op_alloc(cx, &o, (int64_t)B * N * D)))
        goto done;
    if ((st = linear_fwd(cx, &a->to_q, x, (int64_t)B * N, q))) goto done;
    if ((st = linear_fwd(cx, &a->to_k, c, (int64_t)B * Mk, k))) goto done;
    if ((st = linear_fwd(cx, &a->to_v, c, (int64_t)B * Mk, v))) goto done;
    st = op_attention(cx, q, D, k, v, D, B, N, Mk, a->heads, a->head_dim, 1.0f / sqrtf((float)a->head_dim), 0, o);
    if (st) goto done;
    if ((st = linear_fwd(cx, &a->to_out, o, (int64_t)B * N, out))) goto done;
done:
    op_free(cx, q);
    op_free(cx, k);
    op_free(cx, v);
    op_free(cx, o);
    return st;
}

static sdc_status block_load(weights *w, transformer_block *b, int dim, int ctx_dim, int heads, const char *name) {
    char n[320];
    snprintf(n, sizeof n, "%s.norm1", name);
    SDC_TRY(layer_norm_load(w, &b->norm1, dim, 1e-5f, n));
    snprintf(n, sizeof n, "%s.norm2", name);
    SDC_TRY(layer_norm_load(w, &b->norm2, dim, 1e-5f, n));
    snprintf(n, sizeof n, "%s.norm3", name);
    SDC_TRY(layer_norm_load(w, &b->norm3, dim, 1e-5f, n));
    snprintf(n, sizeof n, "%s.attn1", name);
    SDC_TRY(attention_load(w, &b->attn1, dim, dim, heads, 1, n));
    snprintf(n, sizeof n, "%s.attn2", name);
    SDC_TRY(attention_load(w, &b->attn2, dim, ctx_dim, heads, 1, n));
    b->ff_inner = 4 * dim;
    snprintf(n, sizeof n, "%s.ff.net.0.proj", name);
    SDC_TRY(linear_load(w, &b->ff_in, dim, 2 * b->ff_inner, 1, n));
    snprintf(n, sizeof n, "%s.ff.net.2", name);
    SDC_TRY(linear_load(w, &b->ff_out, b->ff_inner, dim, 1, n));
    return SDC_OK;
}

/* h[B, N, dim] updated in place */
static sdc_status block_fwd(op_ctx *cx, const transformer_block *b, float *h, int B, int N, const float *ctx, int M) {
    int64_t rows = (int64_t)B * N, D = b->norm1.D;
    float *t = NULL, *a = NULL, *ff = NULL, *g = NULL;
    sdc_status st;
    if ((st = op_alloc(cx, &t, rows * D)) || (st = op_alloc(cx, &a, rows * D)) ||
        (st = op_alloc(cx, &ff, rows * 2 * b->ff_inner)) || (st = op_alloc(cx, &g, rows * b->ff_inner)))
        goto done;
    layer_norm_fwd(cx, &b->norm1, h, t, rows);
    if ((st = attention_fwd(cx, &b->attn1, t, B, N, NULL, 0, a))) goto done;
    op_add(cx, h, a, rows * D);
    layer_norm_fwd(cx, &b->norm2, h, t, rows);
    if ((st = attention_fwd(cx, &b->attn2, t, B, N, ctx, M, a))) goto done;
    op_add(cx, h, a, rows * D);
    layer_norm_fwd(cx, &b->norm3, h, t, rows);
    if ((st = linear_fwd(cx, &b->ff_in, t, rows, ff))) goto done;
    op_geglu(cx, ff, g, rows, b->ff_inner);
    if ((st = linear_fwd(cx, &b->ff_out, g, rows, a))) goto done;
    op_add(cx, h, a, rows * D);
done:
    op_free(cx, t);
    op_free(cx, a);
    op_free(cx, ff);
    op_free(cx, g);
    return st;
}

sdc_status transformer2d_load(weights *w, transformer2d *t, int C, int heads, int nblocks, int ctx_dim, int groups,
                              int linear_proj, const char *name) {
    char n[320];
    memset(t, 0, sizeof *t);
    t->C = t->inner = C;
    t->heads = heads;
    t->ctx_dim = ctx_dim;
    t->linear_proj = linear_proj;
    snprintf(n, sizeof n, "%s.norm", name);
    SDC_TRY(group_norm_load(w, &t->norm, C, groups, 1e-6f, n));
    snprintf(n, sizeof n, "%s.proj_in", name);
    if (linear_proj) SDC_TRY(linear_load(w, &t->proj_in_lin, C, C, 1, n));
    else SDC_TRY(conv2d_load(w, &t->proj_in_conv, C, C, 1, 1, 0, n));
    snprintf(n, sizeof n, "%s.proj_out", name);
    if (linear_proj) SDC_TRY(linear_load(w, &t->proj_out_lin, C, C, 1, n));
    else SDC_TRY(conv2d_load(w, &t->proj_out_conv, C, C, 1, 1, 0, n));
    t->blocks = calloc((size_t)nblocks, sizeof(transformer_block));
    if (!t->blocks) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    t->nblocks = nblocks;
    for (int i = 0; i < nblocks; i++) {
        snprintf(n, sizeof n, "%s.transformer_blocks.%d", name, i);
        SDC_TRY(block_load(w, &t->blocks[i], C, ctx_dim, heads, n));
    }
    return SDC_OK;
}

void transformer2d_free(transformer2d *t) {
    free(t->blocks);
    t->blocks = NULL;
}

sdc_status transformer2d_fwd(op_ctx *cx, const transformer2d *t, float *x, int B, int H, int W, const float *ctx, int M) {
    int64_t HW = (int64_t)H * W, n = (int64_t)B * t->C * HW;
    float *a = NULL, *h = NULL, *p = NULL;
    sdc_status st;
    if ((st = op_alloc(cx, &a, n)) || (st = op_alloc(cx, &h, n))) goto done;
    group_norm_fwd(cx, &t->norm, x, a, B, HW, 0);
    if (t->linear_proj) {
        op_nchw_to_nhwc(cx, a, h, B, t->C, HW);
        if ((st = linear_fwd(cx, &t->proj_in_lin, h, (int64_t)B * HW, a))) goto done;
        float *s = a; a = h; h = s; /* h = tokens */
    } else {
        if ((st = conv2d_fwd(cx, &t->proj_in_conv, a, B, H, W, &p, NULL, NULL))) goto done;
        op_nchw_to_nhwc(cx, p, h, B, t->C, HW);
        op_free(cx, p);
        p = NULL;
    }
    for (int i = 0; i < t->nblocks; i++)
        if ((st = block_fwd(cx, &t->blocks[i], h, B, (int)HW, ctx, M))) goto done;
    if (t->linear_proj) {
        if ((st = linear_fwd(cx, &t->proj_out_lin, h, (int64_t)B * HW, a))) goto done;
        op_nhwc_to_nchw(cx, a, h, B, t->C, HW);
        op_add(cx, x, h, n);
    } else {
        op_nhwc_to_nchw(cx, h, a, B, t->C, HW);
        if ((st = conv2d_fwd(cx, &t->proj_out_conv, a, B, H, W, &p, NULL, NULL))) goto done;
        op_add(cx, x, p, n);
    }
done:
    op_free(cx, a);
    op_free(cx, h);
    op_free(cx, p);
    return st;
}
