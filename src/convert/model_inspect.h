/* model_inspect.h - what a model is, from its configs and safetensors
 * headers only (no weight is converted, nothing is computed): family,
 * prediction type, default scheduler and size, and per component the
 * parameter count, dtypes, bytes on disk and the modules a LoRA can target.
 * For diffusers folders and single-file checkpoints alike (`sdc info`). */
#ifndef SDC_CONVERT_MODEL_INSPECT_H
#define SDC_CONVERT_MODEL_INSPECT_H

#include <stdint.h>

#include "sdc.h"

#define INSPECT_MAX_COMPONENTS 4

typedef struct {
    char name[24];       /* "unet", "vae", "text_encoder", "text_encoder_2" */
    char source[80];     /* single files: the key prefix; folders: the weight file(s) */
    int64_t params;      /* elements of the tensors the engine uses */
    int64_t tensors;
    int64_t bytes;       /* their stored size */
    char dtypes[48];     /* e.g. "F16" or "F16+F32" */
    int lora_targets;    /* Linear / 1x1-conv modules a LoRA can change */
} inspect_component;

typedef struct {
    int single_file;
    int64_t file_bytes;         /* the file, or every weight file of the folder */
    char family[8];             /* "sd1", "sd2", "sdxl" */
    char family_title[32];      /* "SD 1.x", "SD 2.x", "SDXL" */
    char pipeline[40];          /* diffusers pipeline class */
    char configs[160];          /* where the architecture comes from */
    char prediction[16];        /* "epsilon", "v_prediction", "sample" */
    char prediction_source[128];
    char scheduler[16];         /* sdc name of the sampler (sdc_sampler_info.name) */
    char scheduler_class[40];
    int width, height;          /* default image size */
    inspect_component comp[INSPECT_MAX_COMPONENTS];
    int ncomp;
    int lora_targets;           /* over all components */
    int64_t ema_tensors;        /* model_ema.* copies (ignored) */
    int64_t ignored_tensors;    /* other tensors the engine does not use */
    /* single files: where the tokenizers would be taken from, or why none was found */
    char tokenizer[2][600];
    int ntokenizers, tokenizers_found;
} model_report;

/* opt: config_dir / prediction / variant as for sdc_model_load (may be NULL). */
sdc_status model_inspect(const char *path, const sdc_load_options *opt, model_report *r);

#endif
