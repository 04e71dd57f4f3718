/* vae_tiling.h - the VAE decoder run on overlapping latent tiles, blended
 * into one seamless image: diffusers' AutoencoderKL.enable_tiling() /
 * tiled_decode / blend_v / blend_h (0.30.3), so that a diffusers user with
 * pipe.vae.enable_tiling() gets the same pixels. Memory then follows the tile
 * size, not the image size. Built on vae_decode (each tile runs
 * post_quant_conv + decoder, as diffusers does); owns no model code. */
#ifndef SDC_NN_VAE_TILING_H
#define SDC_NN_VAE_TILING_H

#include "nn/vae.h"

/* diffusers' tile_overlap_factor */
#define VAE_TILE_OVERLAP_FACTOR 0.25

typedef struct {
    /* diffusers' tile_sample_min_size in pixels: the VAE config's
     * sample_size (see vae_tiling_default_size). A positive multiple of
     * 4 * vae_downscale_factor: then every stride and crop below is a whole
     * number of latents, and the tiles tile the image exactly. */
    int tile_sample_size;
} vae_tiling;

/* The tile geometry, each value computed as diffusers computes it. */
typedef struct {
    int tile_sample;  /* tile_sample_min_size (pixels) */
    int tile_latent;  /* tile_latent_min_size = int(sample_size / 2^(nblocks - 1)) */
    int stride;       /* overlap_size = int(tile_latent * (1 - overlap_factor)): latent step between tiles */
    int blend;        /* blend_extent = int(tile_sample * overlap_factor) (pixels) */
    int row_limit;    /* tile_sample - blend: the pixels each tile keeps per axis */
} vae_tile_geometry;

/* f = vae_downscale_factor. Fails (SDC_ERR_ARG) for a tile size that is not
 * a positive multiple of 4 * f. */
sdc_status vae_tile_geometry_make(int tile_sample_size, int f, vae_tile_geometry *g);
/* diffusers' condition: tiles only when the latent exceeds one tile on an axis. */
int vae_tiling_applies(const vae_tile_geometry *g, int h, int w);

/* The tile for a VAE config's sample_size: itself, except that a value that
 * is not a multiple of 4 * f (none of the published VAEs) is rounded down to
 * one, and anything below 4 * f becomes 4 * f. */
int vae_tiling_default_size(int sample_size, int f);
/* sample_size of an AutoencoderKL config.json (an int, or a list whose first
 * entry counts, as in diffusers); absent or null: diffusers' default 32. */
sdc_status vae_tiling_config_sample_size(const char *config_path, int *sample_size);

/* z[B, latent_channels, h, w] (already divided by scaling_factor) ->
 * out[B, out_channels, h * f, w * f], like vae_decode. When the latent fits
 * in one tile this is vae_decode itself (bit for bit). */
sdc_status vae_decode_tiled(const sdc_vae *v, const float *z, int B, int h, int w, float *out,
                            const vae_tiling *opt);

#endif
