/* generate_pass.h - one denoising pass of a request (generate.c), the unit
 * the hires fix (hires.c) composes two of. */
#ifndef SDC_PIPELINE_GENERATE_PASS_H
#define SDC_PIPELINE_GENERATE_PASS_H

#include "pipeline/request.h"

typedef struct {
    const float *init_latents; /* [B, C, h, w]: img2img of these latents with `strength` (no VAE encode); NULL: r's
                                  init image, or text to image */
    double strength;
    float **latents_out; /* non-NULL: the final latents (malloc'd [B, C, h, w]) instead of images */
    int *padded;         /* non-NULL: set to whether A1111's pad_cond_uncond padded a half */
} gen_pass;

/* The images (no infotexts: the caller writes them) of r as plan P says,
 * P resolved from r (or from the request the pass belongs to). pass may be
 * NULL. last: no UNet call follows in this request. */
sdc_status generate_pass(sdc_model *m, const sdc_request *r, const request_plan *P, int last, const gen_pass *pass,
                         sdc_image **images, int *nimages);

/* hires.c: the hires fix of a text-to-image request whose plan has P->hires */
sdc_status hires_generate(sdc_model *m, const sdc_request *r, const request_plan *P, int last, sdc_image **images,
                          int *nimages);

#endif
