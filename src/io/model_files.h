/* model_files.h - where a diffusers component keeps its weights:
 * <base>[.<variant>].safetensors, or shards listed in
 * <base>.safetensors.index[.<variant>].json. A requested variant that a
 * component lacks falls back to the plain file, as diffusers does. */
#ifndef SDC_IO_MODEL_FILES_H
#define SDC_IO_MODEL_FILES_H

#include "nn/weights.h"

/* base: "diffusion_pytorch_model" (diffusers) or "model" (transformers). */
sdc_status component_weights_open(weights *w, const char *dir, const char *base, const char *variant);
int path_exists(const char *path);
int dir_exists(const char *path);

#endif
