/* lora_internal.h - the pieces behind lora_apply: a LoRA file read into
 * modules (lora_file.c), module names resolved to a component's parameters
 * (lora_names.c) and the float64 fuse of one tensor (lora_fuse.c). */
#ifndef SDC_LORA_LORA_INTERNAL_H
#define SDC_LORA_LORA_INTERNAL_H

#include <stdint.h>

#include "io/safetensors.h"
#include "lora/lora.h"

enum { LORA_DOWN, LORA_UP, LORA_ALPHA, LORA_NPARTS };

/* One module a LoRA file changes. */
typedef struct {
    lora_comp comp;
    char *module;                      /* as the file names it, prefix and part removed ("_"- or "."-joined) */
    const st_tensor *t[LORA_NPARTS];   /* down (r, in[, kh, kw]), up (out, r[, 1, 1]), alpha (0-dim) or NULL */
    const char *key;                   /* the module's first file key (for messages) */
} lora_module;

/* Group every tensor of f into modules, ordered by their first key. Keys
 * that are no LoRA part, carry an unknown prefix, or repeat a part are
 * errors naming the key. */
sdc_status lora_file_modules(const st_file *f, lora_module **out, int *n);
void lora_modules_free(lora_module *m, int n);

const char *lora_comp_name(lora_comp c); /* "unet", "text_encoder", "text_encoder_2" */

/* Every name a module of one component may have in a LoRA file -> the
 * parameter ("<module>.weight") the model took: the diffusers/HF module
 * path with '.' and with '_', and for the UNet the LDM/SGM path both ways. */
typedef struct {
    char *key;
    const char *param; /* NULL: two modules share this spelling */
} lora_name;
typedef struct {
    lora_name *v;
    int n;
} lora_index;

sdc_status lora_index_build(lora_index *ix, const weights *w, const unet_config *ldm_cfg);
/* The parameter name for a module spelling; NULL when none (or ambiguous: *ambiguous set). */
const char *lora_index_find(const lora_index *ix, const char *module, int *ambiguous);
void lora_index_free(lora_index *ix);

/* W[out, K] <- fl32(W + factor * up[out, r] @ down[r, K]), formed and added
 * in float64 (K = in * kh * kw). */
sdc_status lora_fuse_tensor(float *W, int64_t out, int64_t K, int r, const st_tensor *up, const st_tensor *down,
                            double factor);

#endif
