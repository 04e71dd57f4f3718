/* pixels.h - final latents to pixels for one image: the decoder a request
 * chose (the KL VAE, tiled or not, or TAESD) and diffusers' image
 * postprocessing (x / 2 + 0.5, clamped to [0, 1], 8 bits). Shared by the
 * final decode (generate.c) and the live previews (preview.c). */
#ifndef SDC_PIPELINE_PIXELS_H
#define SDC_PIPELINE_PIXELS_H

#include <stdint.h>

#include "family/model.h"

/* lat[C, h, w] (the denoiser's latents) -> dec[3, h*f, w*f] in about
 * [-1, 1]: vae.decode(lat / scaling_factor + shift_factor) with the KL VAE
 * (tiled when vae_tile > 0: tile side in pixels) or, with taesd, TAESD and
 * its own scaling (1.0: the latents as they are). z: C*h*w floats of
 * scratch. Sets the decoder's activation precision on a device. */
sdc_status pixels_decode(sdc_model *m, int taesd, const float *lat, int h, int w, int vae_tile, float *z, float *dec);

/* dec[3, npix] -> rgb[npix * 3] as diffusers' image processor makes it
 * (numpy's round half to even); hwc (may be NULL) gets the [0, 1] floats
 * in HWC order. Returns 0, or 1 when dec held NaN/Inf (written as 0). */
int pixels_to_rgb(const float *dec, int64_t npix, uint8_t *rgb, float *hwc);

#endif
