/* vae_tiling.c - tiled VAE decoding (see vae_tiling.h), diffusers'
 * AutoencoderKL.tiled_decode:
 *   tiles start every `stride` latents on each axis and span tile_latent
 *   latents (fewer at the right/bottom edge); each is decoded on its own
 *   (post_quant_conv + decoder); then, in row-major order and in place,
 *   tile(i,j) takes blend_v from the already blended tile(i-1,j) over its
 *   first `blend` rows and then blend_h from the already blended tile(i,j-1)
 *   over its first `blend` columns, with weights (1 - k/e, k/e) computed in
 *   double and applied in float32 as torch does; the first row_limit rows
 *   and columns of each tile, concatenated, are the image.
 * Only two rows of decoded tiles are alive at a time (the row above is all a
 * tile blends with), so memory follows the width of the image, not its area. */
#include "nn/vae_tiling.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/json.h"
#include "nn/layers.h"

sdc_status vae_tile_geometry_make(int tile_sample_size, int f, vae_tile_geometry *g) {
    int q = 4 * f;
    *g = (vae_tile_geometry){0};
    if (f < 1 || tile_sample_size < q || tile_sample_size % q || tile_sample_size > 65536)
        return sdc_fail(SDC_ERR_ARG,
                        "VAE tile size %d must be a multiple of %d (4 latents of %d pixels) between %d and 65536",
                        tile_sample_size, q, f, q);
    g->tile_sample = tile_sample_size;
    g->tile_latent = (int)((double)tile_sample_size / (double)f);
    g->stride = (int)((double)g->tile_latent * (1.0 - VAE_TILE_OVERLAP_FACTOR));
    g->blend = (int)((double)tile_sample_size * VAE_TILE_OVERLAP_FACTOR);
    g->row_limit = tile_sample_size - g->blend;
    return SDC_OK;
}

int vae_tiling_applies(const vae_tile_geometry *g, int h, int w) { return h > g->tile_latent || w > g->tile_latent; }

int vae_tiling_default_size(int sample_size, int f) {
    int q = 4 * (f < 1 ? 1 : f);
    if (sample_size > 65536) sample_size = 65536;
    int s = sample_size > 0 ? sample_size / q * q : 0;
    return s < q ? q : s;
}

sdc_status vae_tiling_config_sample_size(const char *config_path, int *sample_size) {
    cJSON *j;
    SDC_TRY(json_load(config_path, &j));
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "sample_size");
    if (cJSON_IsArray(s)) s = cJSON_GetArrayItem(s, 0); /* diffusers: sample_size[0] */
    sdc_status st = SDC_OK;
    if (!s || cJSON_IsNull(s)) *sample_size = 32; /* AutoencoderKL.__init__ default */
    else if (cJSON_IsNumber(s) && s->valuedouble >= 1 && s->valuedouble <= 65536 && s->valuedouble == floor(s->valuedouble))
        *sample_size = (int)s->valuedouble;
    else st = sdc_fail(SDC_ERR_FORMAT, "%s: 'sample_size' must be a positive integer", config_path);
    cJSON_Delete(j);
    return st;
}

/* b[:, :e, :] = a[:, ah-e:, :] * (1 - y/e) + b[:, :e, :] * (y/e), e = min(ah, bh, blend) (diffusers blend_v) */
static void blend_v(const float *a, int ah, float *b, int bh, int wd, int C, int blend) {
    int e = ah < bh ? ah : bh;
    if (blend < e) e = blend;
    for (int y = 0; y < e; y++) {
        float wa = (float)(1.0 - (double)y / e), wb = (float)((double)y / e);
        for (int c = 0; c < C; c++) {
            const float *ar = a + ((int64_t)c * ah + (ah - e + y)) * wd;
            float *br = b + ((int64_t)c * bh + y) * wd;
            for (int x = 0; x < wd; x++) {
                float pa = ar[x] * wa, pb = br[x] * wb; /* two rounded products, then the sum: no FMA */
                br[x] = pa + pb;
            }
        }
    }
}

/* b[:, :, :e] = a[:, :, aw-e:] * (1 - x/e) + b[:, :, :e] * (x/e), e = min(aw, bw, blend) (diffusers blend_h) */
static void blend_h(const float *a, int aw, float *b, int bw, int ht, int C, int blend) {
    int e = aw < bw ? aw : bw;
    if (blend < e) e = blend;
    for (int x = 0; x < e; x++) {
        float wa = (float)(1.0 - (double)x / e), wb = (float)((double)x / e);
        for (int64_t r = 0; r < (int64_t)C * ht; r++) {
            float pa = a[r * aw + (aw - e + x)] * wa, pb = b[r * bw + x] * wb;
            b[r * bw + x] = pa + pb;
        }
    }
}

static int imin(int a, int b) { return a < b ? a : b; }

/* One image: z[L, h, w] -> out[C, h*f, w*f], tiled. */
static sdc_status decode_one(const sdc_vae *v, const vae_tile_geometry *g, const float *z, int h, int w, float *out) {
    const vae_config *c = vae_get_config(v);
    int f = vae_downscale_factor(v), L = c->latent_channels, C = c->out_channels;
    int H = h * f, W = w * f, tl = g->tile_latent, s = g->stride;
    int ncols = (w + s - 1) / s;
    int64_t tile_n = (int64_t)C * g->tile_sample * g->tile_sample;
    float *zt = NULL, *rows = NULL; /* zt[L, <=tl, <=tl]; rows: two rows of ncols tiles [C, <=ts, <=ts] */
    sdc_status st;
    if ((st = alloc_f32(&zt, (int64_t)L * tl * tl)) || (st = alloc_f32(&rows, 2 * ncols * tile_n))) goto done;
    float *prev = rows, *cur = rows + ncols * tile_n;
    for (int i0 = 0; i0 < h; i0 += s) {
        int th = imin(tl, h - i0), TH = th * f;
        for (int cj = 0, j0 = 0; j0 < w; cj++, j0 += s) {
            int tw = imin(tl, w - j0), TW = tw * f;
            for (int l = 0; l < L; l++)
                for (int y = 0; y < th; y++)
                    memcpy(zt + ((int64_t)l * th + y) * tw, z + ((int64_t)l * h + i0 + y) * w + j0, (size_t)tw * sizeof(float));
            float *T = cur + cj * tile_n;
            if ((st = vae_decode(v, zt, 1, th, tw, T))) goto done;
            if (i0 > 0) blend_v(prev + cj * tile_n, imin(tl, h - (i0 - s)) * f, T, TH, TW, C, g->blend);
            if (cj > 0) blend_h(cur + (cj - 1) * tile_n, imin(tl, w - (j0 - s)) * f, T, TW, TH, C, g->blend);
            /* tile (i, j) keeps [0, row_limit) on each axis, at (i0 * f, j0 * f): stride * f == row_limit */
            int KH = imin(g->row_limit, TH), KW = imin(g->row_limit, TW), oy = i0 * f, ox = j0 * f;
            if (oy + KH > H || ox + KW > W) {
                st = sdc_fail(SDC_ERR_ARG, "vae tiling: tile at (%d, %d) overruns the %dx%d image", oy, ox, W, H);
                goto done;
            }
            for (int ch = 0; ch < C; ch++)
                for (int y = 0; y < KH; y++)
                    memcpy(out + ((int64_t)ch * H + oy + y) * W + ox, T + ((int64_t)ch * TH + y) * TW,
                           (size_t)KW * sizeof(float));
        }
        float *t = prev;
        prev = cur;
        cur = t;
    }
done:
    free(zt);
    free(rows);
    return st;
}

sdc_status vae_decode_tiled(const sdc_vae *v, const float *z, int B, int h, int w, float *out, const vae_tiling *opt) {
    const vae_config *c = vae_get_config(v);
    int f = vae_downscale_factor(v);
    vae_tile_geometry g;
    SDC_TRY(vae_tile_geometry_make(opt->tile_sample_size, f, &g));
    if (B < 1 || h < 1 || w < 1 || (int64_t)h * f > 65536 || (int64_t)w * f > 65536)
        return sdc_fail(SDC_ERR_ARG, "vae decode: bad latent size %d x %d x %d", B, h, w);
    if (!vae_tiling_applies(&g, h, w)) return vae_decode(v, z, B, h, w, out);
    int64_t zn = (int64_t)c->latent_channels * h * w, on = (int64_t)c->out_channels * h * f * w * f;
    for (int b = 0; b < B; b++) SDC_TRY(decode_one(v, &g, z + b * zn, h, w, out + b * on));
    return SDC_OK;
}
