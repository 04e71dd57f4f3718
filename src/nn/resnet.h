/* resnet.h - diffusers ResnetBlock2D (time_embedding_norm "default"):
 *   h = conv1(silu(norm1(x))) [+ time_emb_proj(silu(temb))]
 *   h = conv2(silu(norm2(h)));  out = (shortcut(x) + h) / output_scale_factor
 * shortcut is a 1x1 conv when channels change. Used by the UNet (with temb)
 * and the VAE (without). */
#ifndef SDC_NN_RESNET_H
#define SDC_NN_RESNET_H

#include "nn/layers.h"

typedef struct {
    int cin, cout;
    group_norm norm1, norm2;
    conv2d conv1, conv2, shortcut;
    int has_shortcut, has_temb;
    linear temb_proj; /* (cout, temb_dim) */
    float out_scale;
} resnet_block;

/* temb_dim 0: no time embedding input. */
sdc_status resnet_load(weights *w, resnet_block *r, int cin, int cout, int temb_dim, int groups, float eps,
                       float out_scale, const char *name);
/* x[B, cin, H, W] -> newly allocated y[B, cout, H, W]. temb_silu: silu(temb)
 * [B, temb_dim] (already activated, shared by all blocks) or NULL. */
sdc_status resnet_fwd(op_ctx *cx, const resnet_block *r, const float *x, int B, int H, int W, const float *temb_silu, float **y);

#endif
