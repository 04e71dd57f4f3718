/* vae_blocks.c - AutoencoderKL mid, up and down blocks and the mid-block
 * attention (diffusers AttnProcessor on torch 1.13: scores = scale * q k^T
 * as the GEMM alpha, float32 softmax, probs v, to_out.0, + residual). */
#include "nn/vae_blocks.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VAE_EPS 1e-6f /* every VAE GroupNorm (resnets, attention, conv_norm_out) */

/* A (C, C) projection stored as a linear (C, C) or 1x1 conv (C, C, 1, 1) weight. */
static sdc_status proj_load(weights *w, linear *l, int C, const char *name) {
    char n[300];
    snprintf(n, sizeof n, "%s.weight", name);
    const st_tensor *t = weights_find(w, n);
    if (!t || t->ndim != 4) return linear_load(w, l, C, C, 1, name);
    int64_t ws[4] = {C, C, 1, 1}, bs[1] = {C};
    *l = (linear){.in = C, .out = C};
    SDC_TRY(weights_get_t(w, &l->w, &l->wt, 4, ws, "%s.weight", name));
    SDC_TRY(weights_get(w, &l->b, 1, bs, "%s.bias", name));
    return SDC_OK;
}

sdc_status vae_attention_load(weights *w, vae_attention *a, int C, int groups, const char *name) {
    char n[300];
    /* diffusers names, or the pre-0.14 ones (query/key/value/proj_attn) that
     * diffusers still converts when it loads old VAE folders */
    int old = !weights_has(w, "%s.to_q.weight", name) && weights_has(w, "%s.query.weight", name);
    const char *names[4] = {"to_q", "to_k", "to_v", "to_out.0"}, *old_names[4] = {"query", "key", "value", "proj_attn"};
    linear *dst[4] = {&a->q, &a->k, &a->v, &a->o};
    a->C = C;
    snprintf(n, sizeof n, "%s.group_norm", name);
    SDC_TRY(group_norm_load(w, &a->norm, C, groups, VAE_EPS, n));
    for (int i = 0; i < 4; i++) {
        snprintf(n, sizeof n, "%s.%s", name, old ? old_names[i] : names[i]);
        SDC_TRY(proj_load(w, dst[i], C, n));
    }
    return SDC_OK;
}

sdc_status vae_attention_fwd(op_ctx *cx, const vae_attention *a, float *x, int B, int H, int W) {
    int C = a->C;
    int64_t HW = (int64_t)H * W, n = (int64_t)B * C * HW;
    float *t = NULL, *q = NULL, *k = NULL, *v = NULL;
    sdc_status st;
    if ((st = op_alloc(cx, &t, n)) || (st = op_alloc(cx, &q, n)) || (st = op_alloc(cx, &k, n)) || (st = op_alloc(cx, &v, n)))
        goto done;
    group_norm_fwd(cx, &a->norm, x, q, B, HW, 0); /* q as scratch: normalised x[B, C, HW] */
    op_nchw_to_nhwc(cx, q, t, B, C, HW);          /* t[B, HW, C] */
    if ((st = linear_fwd(cx, &a->q, t, (int64_t)B * HW, q))) goto done;
    if ((st = linear_fwd(cx, &a->k, t, (int64_t)B * HW, k))) goto done;
    if ((st = linear_fwd(cx, &a->v, t, (int64_t)B * HW, v))) goto done;
    /* one head of dim C (attention_head_dim = C), scale C^-0.5 */
    if ((st = op_attention(cx, q, C, k, v, C, B, (int)HW, (int)HW, 1, C, (float)pow((double)C, -0.5), 0, t))) goto done;
    if ((st = linear_fwd(cx, &a->o, t, (int64_t)B * HW, q))) goto done; /* q[B, HW, C] */
    op_nhwc_to_nchw(cx, q, k, B, C, HW);         /* k[B, C, HW] */
    op_add(cx, x, k, n);                          /* residual; rescale_output_factor 1 */
done:
    op_free(cx, t);
    op_free(cx, q);
    op_free(cx, k);
    op_free(cx, v);
    return st;
}

sdc_status vae_mid_load(weights *w, vae_mid_block *m, int C, int groups, int attn, const char *name) {
    char n[300];
    m->C = C;
    m->has_attn = attn;
    for (int i = 0; i < 2; i++) {
        snprintf(n, sizeof n, "%s.resnets.%d", name, i);
        SDC_TRY(resnet_load(w, &m->res[i], C, C, 0, groups, VAE_EPS, 1.0f, n));
    }
    if (attn) {
        snprintf(n, sizeof n, "%s.attentions.0", name);
        SDC_TRY(vae_attention_load(w, &m->attn, C, groups, n));
    }
    return SDC_OK;
}

/* *x <- resnet(*x), freeing the input */
static sdc_status res_step(op_ctx *cx, const resnet_block *r, float **x, int B, int H, int W) {
    float *y;
    SDC_TRY(resnet_fwd(cx, r, *x, B, H, W, NULL, &y));
    op_free(cx, *x);
    *x = y;
    return SDC_OK;
}

sdc_status vae_mid_fwd(op_ctx *cx, const vae_mid_block *m, float **x, int B, int H, int W) {
    SDC_TRY(res_step(cx, &m->res[0], x, B, H, W));
    if (m->has_attn) SDC_TRY(vae_attention_fwd(cx, &m->attn, *x, B, H, W));
    return res_step(cx, &m->res[1], x, B, H, W);
}

sdc_status vae_updown_load(weights *w, vae_updown_block *b, int up, int cin, int cout, int nres, int has_sample,
                           int groups, const char *name) {
    char n[300];
    memset(b, 0, sizeof *b);
    b->cin = cin;
    b->cout = cout;
    b->has_sample = has_sample;
    b->res = calloc((size_t)nres, sizeof *b->res);
    if (!b->res) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    b->nres = nres;
    for (int i = 0; i < nres; i++) {
        snprintf(n, sizeof n, "%s.resnets.%d", name, i);
        SDC_TRY(resnet_load(w, &b->res[i], i ? cout : cin, cout, 0, groups, VAE_EPS, 1.0f, n));
    }
    if (has_sample) {
        snprintf(n, sizeof n, "%s.%s.0.conv", name, up ? "upsamplers" : "downsamplers");
        /* up: 3x3 pad 1; down: 3x3 stride 2 pad 0 after the explicit (0,1,0,1) pad */
        SDC_TRY(conv2d_load(w, &b->sample_conv, cout, cout, 3, up ? 1 : 2, up ? 1 : 0, n));
    }
    return SDC_OK;
}

void vae_updown_free(vae_updown_block *b) {
    free(b->res);
    b->res = NULL;
    b->nres = 0;
}

/* *x <- conv(*x), freeing the input */
static sdc_status conv_step(op_ctx *cx, const conv2d *c, float **x, int B, int *H, int *W) {
    float *y;
    SDC_TRY(conv2d_fwd(cx, c, *x, B, *H, *W, &y, H, W));
    op_free(cx, *x);
    *x = y;
    return SDC_OK;
}

sdc_status vae_up_fwd(op_ctx *cx, const vae_updown_block *b, float **x, int B, int *H, int *W) {
    for (int i = 0; i < b->nres; i++) SDC_TRY(res_step(cx, &b->res[i], x, B, *H, *W));
    if (!b->has_sample) return SDC_OK;
    /* Upsample2D: F.interpolate(scale_factor=2.0, mode="nearest"), then conv */
    float *u;
    SDC_TRY(op_alloc(cx, &u, (int64_t)B * b->cout * (4 * (int64_t)*H * *W)));
    op_upsample_nearest(cx, *x, u, (int64_t)B * b->cout, *H, *W, 2 * *H, 2 * *W);
    op_free(cx, *x);
    *x = u;
    *H *= 2;
    *W *= 2;
    return conv_step(cx, &b->sample_conv, x, B, H, W);
}

sdc_status vae_down_fwd(op_ctx *cx, const vae_updown_block *b, float **x, int B, int *H, int *W) {
    for (int i = 0; i < b->nres; i++) SDC_TRY(res_step(cx, &b->res[i], x, B, *H, *W));
    if (!b->has_sample) return SDC_OK;
    if (*H < 2 || *W < 2)
        return sdc_fail(SDC_ERR_ARG, "vae encoder: %dx%d is too small to downsample", *H, *W);
    /* Downsample2D with padding 0: F.pad(x, (0, 1, 0, 1)) then conv stride 2 */
    int Hp = *H + 1, Wp = *W + 1;
    float *p;
    SDC_TRY(op_alloc(cx, &p, (int64_t)B * b->cout * Hp * Wp));
    op_pad_zero(cx, *x, p, (int64_t)B * b->cout, *H, *W, Hp, Wp);
    op_free(cx, *x);
    *x = p;
    *H = Hp;
    *W = Wp;
    return conv_step(cx, &b->sample_conv, x, B, H, W);
}
