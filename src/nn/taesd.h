/* taesd.h - diffusers AutoencoderTiny (diffusers 0.30.3 autoencoder_tiny.py,
 * vae.py EncoderTiny / DecoderTiny): TAESD, the tiny distilled autoencoder
 * of madebyollin/taesd (taesdxl for SDXL) that A1111, ComfyUI and
 * stable-diffusion.cpp use for previews and fast decodes. Config, loading
 * (a diffusers folder, or a single .safetensors in diffusers' or
 * madebyollin's key layout), the decoder (latents -> image in [-1, 1]) and
 * the encoder (image in [-1, 1] -> latents). All tensors are float32 NCHW.
 *
 *   decode: tanh(z / 3) * 3 -> conv -> ReLU -> per stage: blocks, then
 *           (all but the last) nearest upsample + conv (no bias)
 *           -> last conv (bias) -> x * 2 - 1
 *   encode: (x + 1) / 2 -> per stage: conv (the first: bias, stride 1; the
 *           others: no bias, stride 2), blocks -> conv (bias) to latents
 *   block:  relu(conv(relu(conv(relu(conv(x))))) + x), 3x3 convs with bias
 * The pipelines decode latents / scaling_factor (1.0: the UNet's latents
 * as they are), so TAESD replaces the KL VAE without the KL VAE's
 * 0.18215. */
#ifndef SDC_NN_TAESD_H
#define SDC_NN_TAESD_H

#include <cjson/cJSON.h>

#include "backend/ops.h"

#define TAESD_MAX_STAGES 8

typedef struct {
    int in_channels, out_channels;      /* image channels (3) */
    int latent_channels;                /* 4 (taesd, taesdxl); 16 (taesd3, taef1) */
    int n_enc, enc_out[TAESD_MAX_STAGES], enc_blocks[TAESD_MAX_STAGES]; /* encoder_block_out_channels, num_encoder_blocks */
    int n_dec, dec_out[TAESD_MAX_STAGES], dec_blocks[TAESD_MAX_STAGES]; /* decoder_block_out_channels, num_decoder_blocks */
    int upsampling_scaling_factor;      /* 2 */
    float latent_magnitude, latent_shift; /* only for scale_latents / unscale_latents (forward()'s
                                             uint8 round trip); no pipeline uses them */
    float scaling_factor;               /* 1.0: the pipelines decode latents / 1.0 */
    float shift_factor;                 /* absent: 0 */
    int fp16_safe;                      /* force_upcast false (always, for AutoencoderTiny) */
} taesd_config;

/* The config of madebyollin/taesd and taesdxl (64 channels, blocks 1/3/3/3
 * and 3/3/3/1, ReLU, nearest x2, latent magnitude 3, shift 0.5, scaling
 * 1.0): what a single file without a config.json is. */
void taesd_config_default(taesd_config *c);
/* A diffusers AutoencoderTiny config.json (_class_name AutoencoderTiny,
 * absent keys take AutoencoderTiny.__init__'s defaults), validated. */
sdc_status taesd_config_parse(const cJSON *o, taesd_config *c, const char *what);
sdc_status taesd_config_check(const taesd_config *c, const char *what);

typedef struct sdc_taesd sdc_taesd;

/* path: a diffusers folder (config.json + diffusion_pytorch_model
 * [.variant].safetensors), or one .safetensors file: diffusers' keys
 * (decoder.layers.N / encoder.layers.N), madebyollin's taesd_decoder /
 * taesd_encoder files (bare Sequential indices; given one, the other is
 * loaded too when it lies beside it), or both under taesd_decoder. /
 * taesd_encoder. prefixes. A file has the default config with its latent
 * channels read from the weights. The decoder is required, the encoder
 * optional. Every op runs in cx. */
sdc_status taesd_load(sdc_taesd **out, op_ctx *cx, const char *path, const char *variant);
void taesd_free(sdc_taesd *t);

const taesd_config *taesd_get_config(const sdc_taesd *t);
/* Pixels per latent along each axis: upsampling_scaling_factor^(stages - 1). */
int taesd_upscale(const sdc_taesd *t);
int taesd_has_encoder(const sdc_taesd *t);
int64_t taesd_num_params(const sdc_taesd *t);
/* Device backends: upload the parameters in dt (kernels; biases float32). */
sdc_status taesd_to_device(sdc_taesd *t, op_dtype dt);

/* z[B, latent_channels, h, w] (already divided by scaling_factor) ->
 * out[B, out_channels, h * f, w * f], f = taesd_upscale(t), in [-1, 1]
 * (DecoderTiny's x * 2 - 1, not clamped). One image at a time. */
sdc_status taesd_decode(const sdc_taesd *t, const float *z, int B, int h, int w, float *out);

/* Latent size for an H x W image: each stride-2 conv maps n -> ceil(n / 2). */
void taesd_encode_size(const sdc_taesd *t, int H, int W, int *h, int *w);
/* x[B, in_channels, H, W] in [-1, 1] -> latents[B, latent_channels, h, w]
 * (AutoencoderTiny.encode(x).latents: no distribution, no scaling).
 * SDC_ERR_UNSUPPORTED when the encoder was not loaded. */
sdc_status taesd_encode(const sdc_taesd *t, const float *x, int B, int H, int W, float *latents);

#endif
