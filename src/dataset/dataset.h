/* dataset.h - `sdc dataset`: make (or resume) one slice of a data set of
 * images from a prompts file. Image j of the whole set has seed base + j
 * (or its line's seed + offset) and the file name %08d.png; which images share
 * a UNet call depends only on j, the batch size and the layout, so any run,
 * slice or resume writes the same bytes for the same j on the same machine
 * type.
 *
 * Folder layout:
 *   DIR/sdc-dataset.json                     what the folder holds (see dataset_config.h)
 *   DIR/manifests/slice-I-of-N.jsonl         finished images of slice I (one metadata line each)
 *   imagefolder: DIR/train/00001234.png, DIR/train/metadata.jsonl (all slices merged)
 *   webdataset:  DIR/shard-000000.tar (00001234.png/.txt/.json members);
 *                DIR/shard-000001.tar.part while being written
 * Every file appears under its final name only when complete (temporary
 * name + fsync + rename); manifests are appended after the image is in place
 * and repaired on resume, so a kill -9 at any moment loses at most the
 * images in flight. */
#ifndef SDC_DATASET_DATASET_H
#define SDC_DATASET_DATASET_H

#include <stdint.h>

#include "core/status.h"
#include "dataset/plan.h"
#include "sdc.h"

typedef enum { DS_IMAGEFOLDER, DS_WEBDATASET } ds_format;

typedef struct {
    int64_t total;     /* images of this slice */
    int64_t done;      /* of them on disk (present before the run + made) */
    int64_t made;      /* made by this run */
    int64_t failures;  /* images that could not be made */
    double seconds;    /* since this run started */
    const char *error; /* set for one call after a failed batch: its message */
    int64_t error_first, error_end; /* the failed images */
} ds_progress;

typedef void (*ds_progress_fn)(void *ctx, const ds_progress *p);
/* Test hook: called at the named points of the n-th image this run writes
 * ("write" half of its bytes written, "file" in place, "line" half of its
 * manifest line written, "done" recorded, "close" a tar's trailer written). */
typedef void (*ds_hook_fn)(void *ctx, const char *point, int64_t nth);

typedef struct {
    const char *model, *prompts, *out;
    const char *variant;
    const char *config_dir, *tokenizer_dir; /* single-file checkpoints (sdc_load_options) */
    /* NULL: the defaults (the cpu generator; cpu; f32 on the cpu, f16 on cuda). Each changes the
     * pixels, so each is part of the data set's identity (written only when not the default). */
    const char *rng;    /* sdc_request.rng: "cpu" | "cuda" */
    const char *dtype;  /* sdc_load_options.dtype: "f32" | "bf16" | "f16" */
    const char *device; /* sdc_load_options.device: "cpu" | "cuda" */
    /* sdc_load_options.loras / lora_scales / nloras: fused in order; each one's
     * file name, scale and sampled content digest are part of the identity */
    const char *const *loras;
    const float *lora_scales; /* NULL: all 1.0 */
    int nloras;
    sdc_lora_report_fn lora_report; /* may be NULL */
    void *lora_report_ctx;
    int threads;
    int images_per_prompt;
    uint64_t seed;
    ds_format format;
    int shard_size; /* images per tar (webdataset) */
    int batch_size; /* images per UNet call */
    int slice, nslices;
    plan_defaults def;
    const char *timestep_spacing;
    int karras;
    float eta;
    int clip_skip;
    ds_progress_fn progress;
    void *progress_ctx;
    ds_hook_fn hook;
    void *hook_ctx;
    volatile int *stop; /* non-zero: stop after the current denoising step */
} ds_options;

void ds_options_init(ds_options *o);

typedef struct {
    int64_t slice_first, slice_end; /* global indices of this slice */
    int64_t total, present, made, failures;
    double seconds;
    int64_t metadata_lines; /* imagefolder: lines in train/metadata.jsonl after the merge */
} ds_summary;

/* SDC_ERR_INTERRUPTED when *stop was raised; failed batches are counted in
 * the summary, not returned as errors. */
sdc_status ds_run(const ds_options *o, ds_summary *sum);

#endif
