/* plan_run.h - `sdc generate --prompts`: every image of a plan through one
 * loaded model, batch by batch, handed to a callback in index order. */
#ifndef SDC_DATASET_PLAN_RUN_H
#define SDC_DATASET_PLAN_RUN_H

#include "dataset/plan.h"

/* A failure (recorded with sdc_fail) stops the run, which returns it. */
typedef sdc_status (*plan_image_fn)(void *ctx, int64_t index, const sdc_image *img);

/* base: everything but prompts, negatives, seed and the per-line settings
 * (timestep spacing, karras, eta, clip skip, progress ...). base->batch_size
 * > 0: images of consecutive lines with equal settings share UNet calls of at
 * most that many; 0: each line runs alone, 64 images at a time. */
sdc_status plan_run(sdc_model *m, const sdc_request *base, const plan *p, plan_image_fn on_image, void *ctx);

#endif
