/* vae_blocks.h - the blocks AutoencoderKL is built from (diffusers 0.30.3):
 *   vae_attention  Attention with group_norm, one head over all C channels,
 *                  residual add (the mid-block attention)
 *   vae_mid_block  UNetMidBlock2D without time embedding: resnet, [attention], resnet
 *   vae_up_block   UpDecoderBlock2D: resnets, then nearest x2 + 3x3 conv
 *   vae_down_block DownEncoderBlock2D: resnets, then pad (0,1,0,1) + 3x3 conv stride 2
 * Forwards take ownership of the input buffer *x ([1.., C, H, W], op_alloc'd)
 * and replace it with their output, freeing every dead buffer at once so
 * that large decodes stay within a few activations. */
#ifndef SDC_NN_VAE_BLOCKS_H
#define SDC_NN_VAE_BLOCKS_H

#include "nn/resnet.h"

typedef struct {
    int C;
    group_norm norm;
    linear q, k, v, o; /* (C, C) each, with bias */
} vae_attention;

typedef struct {
    int C, has_attn;
    resnet_block res[2];
    vae_attention attn;
} vae_mid_block;

typedef struct {
    int cin, cout, nres, has_sample; /* has_sample: upsampler / downsampler present */
    resnet_block *res;               /* nres */
    conv2d sample_conv;              /* (cout, cout, 3, 3) */
} vae_updown_block;

/* name: module path, e.g. "decoder.mid_block" */
sdc_status vae_mid_load(weights *w, vae_mid_block *m, int C, int groups, int attn, const char *name);
sdc_status vae_mid_fwd(op_ctx *cx, const vae_mid_block *m, float **x, int B, int H, int W);

sdc_status vae_attention_load(weights *w, vae_attention *a, int C, int groups, const char *name);
/* x[B, C, H, W] updated in place: x += attention(group_norm(x)) */
sdc_status vae_attention_fwd(op_ctx *cx, const vae_attention *a, float *x, int B, int H, int W);

/* up: UpDecoderBlock2D ("decoder.up_blocks.i", upsamplers.0.conv);
 * otherwise DownEncoderBlock2D ("encoder.down_blocks.i", downsamplers.0.conv). */
sdc_status vae_updown_load(weights *w, vae_updown_block *b, int up, int cin, int cout, int nres, int has_sample,
                           int groups, const char *name);
void vae_updown_free(vae_updown_block *b);
/* x[B, cin, H, W] -> [B, cout, H', W']; *H, *W updated (x2 up, floor /2 down). */
sdc_status vae_up_fwd(op_ctx *cx, const vae_updown_block *b, float **x, int B, int *H, int *W);
sdc_status vae_down_fwd(op_ctx *cx, const vae_updown_block *b, float **x, int B, int *H, int *W);

#endif
