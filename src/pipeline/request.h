/* request.h - a request's settings resolved against a model: the model's
 * defaults filled in and every field checked, in one place (sdc_request_check
 * is this with nothing kept; sdc_generate resolves each batch it runs). */
#ifndef SDC_PIPELINE_REQUEST_H
#define SDC_PIPELINE_REQUEST_H

#include "family/model.h"
#include "rng/noise_gen.h"
#include "sched/scheduler.h"

typedef struct {
    int W, H, steps;
    float g;
    int cfg;            /* classifier-free guidance: two UNet rows per image */
    noise_rng rng;
    int vae_tile;       /* --vae-tiling: tile side in pixels; 0: decode untiled */
    sched_config sched; /* the scheduler config with the request's spacing and Karras choice */
} request_plan;

/* m NULL: only what needs no model (and *out is not filled). */
sdc_status request_resolve(const sdc_model *m, const sdc_request *r, request_plan *out);

#endif
