/* layers.c - loaders and forwards for linear, conv2d and norm layers. */
#include "nn/layers.h"

#include <stdlib.h>

sdc_status alloc_f32(float **p, int64_t n) {
    *p = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    if (!*p) return sdc_fail(SDC_ERR_NOMEM, "out of memory (%lld floats)", (long long)n);
    return SDC_OK;
}

const float *host_view(op_ctx *cx, const float *x, int64_t n, float **tmp) {
    *tmp = NULL;
    if (op_host_memory(cx)) return x;
    if (alloc_f32(tmp, n)) return NULL;
    if (op_download(cx, *tmp, x, n)) {
        free(*tmp);
        *tmp = NULL;
    }
    return *tmp;
}

sdc_status act_from_host(op_ctx *cx, float **dev, const float *host, int64_t n) {
    SDC_TRY(op_alloc(cx, dev, n));
    sdc_status st = op_upload(cx, *dev, host, n);
    if (st) {
        op_free(cx, *dev);
        *dev = NULL;
    }
    return st;
}

sdc_status linear_load(weights *w, linear *l, int in, int out, int bias, const char *name) {
    int64_t ws[2] = {out, in}, bs[1] = {out};
    l->in = in;
    l->out = out;
    l->b = NULL;
    SDC_TRY(weights_get_layer(w, &l->w, &l->wt, 2, ws, "%s.weight", name));
    if (bias) SDC_TRY(weights_get(w, &l->b, 1, bs, "%s.bias", name));
    return SDC_OK;
}

sdc_status conv2d_load_bias(weights *w, conv2d *c, int cin, int cout, int k, int stride, int pad, int bias,
                            const char *name) {
    int64_t ws[4] = {cout, cin, k, k}, bs[1] = {cout};
    *c = (conv2d){.cin = cin, .cout = cout, .k = k, .stride = stride, .pad = pad};
    SDC_TRY(weights_get_layer(w, &c->w, &c->wt, 4, ws, "%s.weight", name));
    if (bias) SDC_TRY(weights_get(w, &c->b, 1, bs, "%s.bias", name));
    return SDC_OK;
}

sdc_status conv2d_load(weights *w, conv2d *c, int cin, int cout, int k, int stride, int pad, const char *name) {
    return conv2d_load_bias(w, c, cin, cout, k, stride, pad, 1, name);
}

sdc_status group_norm_load(weights *w, group_norm *n, int C, int groups, float eps, const char *name) {
    int64_t s[1] = {C};
    if (groups <= 0 || C % groups)
        return sdc_fail(SDC_ERR_FORMAT, "%s: %d channels cannot be split into %d groups", name, C, groups);
    *n = (group_norm){.C = C, .groups = groups, .eps = eps};
    SDC_TRY(weights_get(w, &n->g, 1, s, "%s.weight", name));
    SDC_TRY(weights_get(w, &n->b, 1, s, "%s.bias", name));
    return SDC_OK;
}

sdc_status layer_norm_load(weights *w, layer_norm *n, int D, float eps, const char *name) {
    int64_t s[1] = {D};
    *n = (layer_norm){.D = D, .eps = eps};
    SDC_TRY(weights_get(w, &n->g, 1, s, "%s.weight", name));
    SDC_TRY(weights_get(w, &n->b, 1, s, "%s.bias", name));
    return SDC_OK;
}

sdc_status linear_fwd(op_ctx *cx, const linear *l, const float *x, int64_t M, float *y) {
    return op_linear_t(cx, x, M, l->in, l->w, l->wt, l->b, l->out, y);
}

sdc_status conv2d_fwd_into(op_ctx *cx, const conv2d *c, const float *x, int B, int H, int W, float *y) {
    return op_conv2d_t(cx, x, B, c->cin, H, W, c->w, c->wt, c->b, c->cout, c->k, c->stride, c->pad, y);
}

sdc_status conv2d_fwd_fused(op_ctx *cx, const conv2d *c, const float *x, int B, int H, int W, float *y,
                            const float *res, int relu) {
    return op_conv2d_fused(cx, x, B, c->cin, H, W, c->w, c->wt, c->b, c->cout, c->k, c->stride, c->pad, y, res, relu);
}

sdc_status conv2d_fwd(op_ctx *cx, const conv2d *c, const float *x, int B, int H, int W, float **y, int *Ho,
                      int *Wo) {
    int ho = (H + 2 * c->pad - c->k) / c->stride + 1, wo = (W + 2 * c->pad - c->k) / c->stride + 1;
    SDC_TRY(op_alloc(cx, y, (int64_t)B * c->cout * ho * wo));
    sdc_status st = conv2d_fwd_into(cx, c, x, B, H, W, *y);
    if (st) {
        op_free(cx, *y);
        *y = NULL;
        return st;
    }
    if (Ho) *Ho = ho;
    if (Wo) *Wo = wo;
    return SDC_OK;
}

void group_norm_fwd(op_ctx *cx, const group_norm *n, const float *x, float *y, int B, int64_t HW, int silu) {
    op_group_norm(cx, x, y, B, n->C, HW, n->groups, n->eps, n->g, n->b, silu);
}

void layer_norm_fwd(op_ctx *cx, const layer_norm *n, const float *x, float *y, int64_t rows) {
    op_layer_norm(cx, x, y, rows, n->D, n->eps, n->g, n->b);
}
