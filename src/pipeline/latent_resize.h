/* latent_resize.h - torch.nn.functional.interpolate of float32 NCHW maps
 * on the CPU, as torch 1.13 computes it (hires fix's latent upscalers,
 * the inpainting mask at latent size). */
#ifndef SDC_PIPELINE_LATENT_RESIZE_H
#define SDC_PIPELINE_LATENT_RESIZE_H

#include <stdint.h>

typedef enum {
    LATENT_BILINEAR,      /* mode="bilinear", align_corners=False (A1111 "Latent") */
    LATENT_NEAREST,       /* mode="nearest" (A1111 "Latent (nearest)") */
    LATENT_NEAREST_EXACT, /* mode="nearest-exact" (A1111 "Latent (nearest-exact)") */
} latent_mode;

/* sdc's names ("latent", "latent-nearest", "latent-nearest-exact"); -1 when unknown */
int latent_mode_parse(const char *name);
const char *latent_mode_name(latent_mode m);
/* A1111's upscaler name of a mode ("Latent", "Latent (nearest)", ...) */
const char *latent_mode_a1111(latent_mode m);

/* in[planes, h, w] -> out[planes, oh, ow] with F.interpolate(size=(oh, ow), mode) */
void latent_resize(const float *in, int64_t planes, int h, int w, float *out, int oh, int ow, latent_mode mode);

#endif
