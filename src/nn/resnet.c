/* resnet.c - ResnetBlock2D forward. */
#include "nn/resnet.h"

#include <stdio.h>
#include <stdlib.h>

sdc_status resnet_load(weights *w, resnet_block *r, int cin, int cout, int temb_dim, int groups, float eps,
                       float out_scale, const char *name) {
    char n[300];
    r->cin = cin;
    r->cout = cout;
    r->out_scale = out_scale;
    snprintf(n, sizeof n, "%s.norm1", name);
    SDC_TRY(group_norm_load(w, &r->norm1, cin, groups, eps, n));
    snprintf(n, sizeof n, "%s.conv1", name);
    SDC_TRY(conv2d_load(w, &r->conv1, cin, cout, 3, 1, 1, n));
    snprintf(n, sizeof n, "%s.norm2", name);
    SDC_TRY(group_norm_load(w, &r->norm2, cout, groups, eps, n));
    snprintf(n, sizeof n, "%s.conv2", name);
    SDC_TRY(conv2d_load(w, &r->conv2, cout, cout, 3, 1, 1, n));
    r->has_temb = temb_dim > 0;
    if (r->has_temb) {
        snprintf(n, sizeof n, "%s.time_emb_proj", name);
        SDC_TRY(linear_load(w, &r->temb_proj, temb_dim, cout, 1, n));
    }
    r->has_shortcut = cin != cout;
    if (r->has_shortcut) {
        snprintf(n, sizeof n, "%s.conv_shortcut", name);
        SDC_TRY(conv2d_load(w, &r->shortcut, cin, cout, 1, 1, 0, n));
    }
    return SDC_OK;
}

sdc_status resnet_fwd(op_ctx *cx, const resnet_block *r, const float *x, int B, int H, int W, const float *temb_silu, float **y) {
    int64_t HW = (int64_t)H * W;
    float *t = NULL, *h = NULL, *h2 = NULL, *sc = NULL, *tp = NULL;
    sdc_status st;
    *y = NULL;
    if ((st = op_alloc(cx, &t, (int64_t)B * r->cin * HW))) goto done;
    group_norm_fwd(cx, &r->norm1, x, t, B, HW, 1);
    if ((st = conv2d_fwd(cx, &r->conv1, t, B, H, W, &h, NULL, NULL))) goto done;
    op_free(cx, t); /* dead from here: at VAE resolutions it is the largest buffer */
    t = NULL;
    if (r->has_temb && temb_silu) {
        if ((st = op_alloc(cx, &tp, (int64_t)B * r->cout))) goto done;
        if ((st = linear_fwd(cx, &r->temb_proj, temb_silu, B, tp))) goto done;
        op_add_channel_bias(cx, h, tp, B, r->cout, HW);
    }
    group_norm_fwd(cx, &r->norm2, h, h, B, HW, 1);
    if ((st = conv2d_fwd(cx, &r->conv2, h, B, H, W, &h2, NULL, NULL))) goto done;
    if (r->has_shortcut) {
        if ((st = conv2d_fwd(cx, &r->shortcut, x, B, H, W, &sc, NULL, NULL))) goto done;
        op_add(cx, h2, sc, (int64_t)B * r->cout * HW);
    } else {
        op_add(cx, h2, x, (int64_t)B * r->cout * HW);
    }
    if (r->out_scale != 1.0f) op_scale(cx, h2, 1.0f / r->out_scale, (int64_t)B * r->cout * HW);
    *y = h2;
    h2 = NULL;
done:
    op_free(cx, t);
    op_free(cx, h);
    op_free(cx, h2);
    op_free(cx, sc);
    op_free(cx, tp);
    return st;
}
