/* fingerprint.h - a model's identity for a data set: a digest of the files
 * that decide its images (model_index.json, component configs, scheduler
 * config, tokenizer files, and of each weight file the loader would open: its
 * size, safetensors header and sampled contents). The folder's path is left
 * out, so copies of one model on different machines agree. A single-file
 * checkpoint is digested the same way as one weight file. */
#ifndef SDC_DATASET_FINGERPRINT_H
#define SDC_DATASET_FINGERPRINT_H

#include <stdint.h>

#include "core/status.h"

/* model: a diffusers folder or a .safetensors file; variant, config_dir and
 * tokenizer_dir (NULL when not given) as given to sdc_model_load. */
sdc_status model_fingerprint(const char *model_dir, const char *variant, const char *config_dir,
                             const char *tokenizer_dir, uint64_t *out);
/* One .safetensors file (a LoRA), sampled the same way: size, header, and
 * blocks spread over the contents; its path is left out. */
sdc_status file_fingerprint(const char *path, uint64_t *out);
/* A TAESD as sdc_load_options.taesd takes it: a .safetensors file (the
 * decoder; an encoder beside it does not change any image), or a diffusers
 * folder's config.json and weight file(s). */
sdc_status taesd_fingerprint(const char *path, const char *variant, uint64_t *out);

#endif
