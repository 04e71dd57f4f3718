/* vae.h - diffusers AutoencoderKL (diffusers 0.30.3): config, loading,
 * the decoder (latents -> image) and the encoder (image -> latent
 * distribution). All tensors are float32 NCHW. */
#ifndef SDC_NN_VAE_H
#define SDC_NN_VAE_H

#include "nn/weights.h"

#define VAE_MAX_BLOCKS 8

typedef struct {
    int in_channels, out_channels; /* image channels (3) */
    int latent_channels;           /* 4 */
    int nblocks;                   /* len(block_out_channels) */
    int block_out[VAE_MAX_BLOCKS]; /* block_out_channels */
    int layers_per_block;          /* encoder blocks; decoder up blocks have layers_per_block + 1 */
    int norm_num_groups;
    int use_quant_conv, use_post_quant_conv;
    int mid_attention;             /* mid_block_add_attention */
    float scaling_factor;          /* default 0.18215 */
    float shift_factor;            /* null -> 0 */
    int load_encoder;              /* 0: decoder only; 1: also the encoder when its tensors exist (default);
                                      2: the encoder always (make_random_model writes it) */
    int fp16_safe;                 /* config force_upcast: false (default 0: the VAE needs float32 activations
                                      on a device that runs the rest in f16, as diffusers upcasts it) */
} vae_config;

typedef struct sdc_vae sdc_vae;

/* Called with intermediates during decode/encode (tests, --dump), per image
 * b: names as diffusers modules ("post_quant_conv", "decoder.conv_in",
 * "decoder.mid_block", "decoder.up_blocks.1", "decoder.conv_norm_out" (after
 * the GroupNorm, before SiLU), "decoder.conv_out", "encoder.down_blocks.0",
 * "quant_conv", ...). x is [1, C, H, W], valid only during the call. */
typedef void (*vae_tap_fn)(void *ctx, const char *name, int b, const float *x, int C, int H, int W);

/* Parse a diffusers AutoencoderKL config.json and validate it. */
sdc_status vae_config_load(vae_config *cfg, const char *config_path);
sdc_status vae_config_check(const vae_config *cfg, const char *what);

/* dir: config.json + diffusion_pytorch_model[.<variant>].safetensors
 * (variant falls back to the plain file). The VAE owns its files. */
sdc_status vae_load(sdc_vae **out, op_ctx *cx, const char *dir, const char *variant);
/* Parameters looked up as w->prefix + diffusers names ("decoder.conv_in.weight",
 * "post_quant_conv.weight", ...). The attention to_q/to_k/to_v/to_out.0
 * weights may be (C, C) or (C, C, 1, 1). The VAE borrows w: keep it open
 * until vae_free. */
sdc_status vae_load_weights(sdc_vae **out, op_ctx *cx, const vae_config *cfg, weights *w);
/* Hand the heap-allocated w the VAE was loaded from over to it: closed and
 * freed by vae_free. */
sdc_status vae_own_weights(sdc_vae *v, weights *w);
void vae_free(sdc_vae *v);

const vae_config *vae_get_config(const sdc_vae *v);
float vae_scaling_factor(const sdc_vae *v);
weights *vae_weights(sdc_vae *v); /* the parameters it reads (its own, or a single file's) */
op_ctx *vae_ctx(const sdc_vae *v); /* where decode/encode run (the model's context) */
float vae_shift_factor(const sdc_vae *v);
int vae_latent_channels(const sdc_vae *v);
/* Pixels per latent along each axis: 2^(nblocks - 1) (8 for SD; diffusers' vae_scale_factor). */
int vae_downscale_factor(const sdc_vae *v);
int vae_has_encoder(const sdc_vae *v);

/* z[B, latent_channels, h, w] (already divided by scaling_factor) ->
 * out[B, out_channels, h * f, w * f] with f = vae_downscale_factor(v). Images are
 * decoded one at a time to bound memory. */
sdc_status vae_decode(const sdc_vae *v, const float *z, int B, int h, int w, float *out);
sdc_status vae_decode_tap(const sdc_vae *v, const float *z, int B, int h, int w, float *out, vae_tap_fn tap,
                          void *tap_ctx);

/* Latent size for an H x W image: each of the nblocks-1 downsamplers (pad
 * right/bottom by 1, 3x3 conv, stride 2) maps n -> n / 2 (floor); 0 when an
 * axis gets too small (a downsampler input below 2). */
void vae_encode_size(const sdc_vae *v, int H, int W, int *h, int *w);
/* x[B, in_channels, H, W] -> the latent distribution: mean, logvar (clamped
 * to [-30, 20]) and std = exp(0.5 logvar), each [B, latent_channels, h, w]
 * (any may be NULL). Fails with SDC_ERR_UNSUPPORTED without an encoder. */
sdc_status vae_encode(const sdc_vae *v, const float *x, int B, int H, int W, float *mean, float *logvar, float *std);
sdc_status vae_encode_tap(const sdc_vae *v, const float *x, int B, int H, int W, float *mean, float *logvar,
                          float *std, vae_tap_fn tap, void *tap_ctx);

#endif
