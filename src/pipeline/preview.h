/* preview.h - live previews (sdc_request.preview): after every
 * preview_every-th denoising step, the current estimate of the clean
 * latents of each image, decoded by the model's TAESD and handed to the
 * caller's callback as RGB images. Nothing here changes the denoising. */
#ifndef SDC_PIPELINE_PREVIEW_H
#define SDC_PIPELINE_PREVIEW_H

#include "family/model.h"
#include "sched/scheduler.h"

/* Whether call k (0-based) of `calls` gets a preview: the model has TAESD,
 * the request a callback and preview_every > 0, (k + 1) is a multiple of
 * it, and it is not the last call (whose image is the result itself). */
int preview_due(const sdc_model *m, const sdc_request *r, int k, int calls);

/* The clean-latent estimate x0[n] of a batch after call k: the scheduler's
 * pred_x0 when it filled it (any nonzero value; PNDM leaves zeros), else
 * from the UNet's own input and output, whatever the scheduler: its input
 * model_in is the variance-preserving x_t = sqrt(a) x0 + sqrt(1 - a) eps at
 * the UNet's timestep t (a = alphas_cumprod[t], interpolated for float
 * timesteps), so x0 = (x_t - sqrt(1 - a) eps) / sqrt(a) for epsilon
 * prediction, sqrt(a) x_t - sqrt(1 - a) v for v_prediction, the output
 * itself for sample prediction. */
void preview_x0(const sdc_scheduler *s, int k, const float *pred_x0, const float *model_in, const float *model_out,
                int64_t n, float *x0);

/* Decode x0[B, C, h, w] with TAESD one image at a time and call
 * r->preview(ctx, step, total, images, B). */
sdc_status preview_emit(sdc_model *m, const sdc_request *r, const float *x0, int B, int C, int h, int w, int step,
                        int total);

#endif
