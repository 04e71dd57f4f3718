/* pixels.c - one image's latents through the KL VAE or TAESD, and the
 * decoded floats to 8-bit RGB (pipeline/pixels.h). */
#include "pipeline/pixels.h"

#include <math.h>

#include "nn/vae_tiling.h"

sdc_status pixels_decode(sdc_model *m, int taesd, const float *lat, int h, int w, int vae_tile, float *z, float *dec) {
    if (taesd) {
        const taesd_config *c = taesd_get_config(m->taesd);
        int64_t n = (int64_t)c->latent_channels * h * w;
        for (int64_t i = 0; i < n; i++) z[i] = lat[i] / c->scaling_factor; /* 1.0 for TAESD: the latents as they are */
        if (c->shift_factor != 0.0f)
            for (int64_t i = 0; i < n; i++) z[i] += c->shift_factor;
        op_set_precision(m->cx, m->taesd_dt);
        return taesd_decode(m->taesd, z, 1, h, w, dec);
    }
    latent_format lf;
    m->fam->latents(m, &lf);
    int64_t n = (int64_t)lf.channels * h * w;
    for (int64_t i = 0; i < n; i++) z[i] = lat[i] / lf.scale;
    if (lf.shift != 0.0f) /* latents / scaling_factor + shift_factor */
        for (int64_t i = 0; i < n; i++) z[i] += lf.shift;
    op_set_precision(m->cx, m->vae_dt);
    vae_tiling vt = {.tile_sample_size = vae_tile};
    return vae_tile ? vae_decode_tiled(m->vae, z, 1, h, w, dec, &vt) : vae_decode(m->vae, z, 1, h, w, dec);
}

int pixels_to_rgb(const float *dec, int64_t npix, uint8_t *rgb, float *hwc) {
    int nonfinite = 0;
    for (int c = 0; c < 3; c++)
        for (int64_t p = 0; p < npix; p++) {
            float v = dec[c * npix + p] / 2.0f + 0.5f;
            if (!isfinite(v)) nonfinite = 1, v = 0.0f; /* reported by the caller; no NaN reaches the uint8 cast */
            v = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
            if (hwc) hwc[p * 3 + c] = v;
            rgb[p * 3 + c] = (uint8_t)nearbyintf(v * 255.0f); /* numpy round: half to even */
        }
    return nonfinite;
}
