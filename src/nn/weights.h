/* weights.h - a model component's parameters, looked up by their diffusers
 * names in one or more safetensors files. F32 tensors that are aligned are
 * used straight from the mapping; F16/BF16 ones are widened once into owned
 * buffers. Every lookup checks the shape and names file and key on error. */
#ifndef SDC_NN_WEIGHTS_H
#define SDC_NN_WEIGHTS_H

#include <stdint.h>

#include "io/safetensors.h"

/* A parameter slot handed out by weights_get: the model reads *slot. */
typedef struct {
    char *name;
    const float **slot;
    float *mutable_copy; /* set once weights_mutable made the slot point to an owned copy */
} weights_slot;

typedef struct {
    st_file *files;
    int nfiles;
    char prefix[128]; /* prepended to every name ("" for diffusers folders) */
    void **owned;
    int nowned, cap;
    int64_t nparams; /* parameters handed out so far */
    int synthesize;  /* benchmarks: make missing tensors up (random, fixed seed) instead of failing;
                        2: only record each one's name and shape as a view without data (tools that
                        write random-weight model files; the model must not be run) */
    uint64_t synth_state;
    st_tensor *views; /* extra tensors by name (single-file key maps): checked before the files */
    int nviews, views_cap, views_sorted;
    weights_slot *slots;
    int nslots, slots_cap;
} weights;

sdc_status weights_open(weights *w, const char *const *paths, int n);
void weights_close(weights *w);
const st_tensor *weights_find(const weights *w, const char *name);
int weights_has(const weights *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Look up prefix+name; ndim < 0 skips the shape check. */
sdc_status weights_get(weights *w, const float **out, int ndim, const int64_t *shape, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Make `name` (no prefix applied) resolve to a tensor view: data may point into
 * an open file's mapping (e.g. a row slice of a fused q/k/v matrix) or to a
 * malloc'd buffer the weights object then owns (take_ownership). */
sdc_status weights_add_view(weights *w, const char *name, st_dtype dtype, int ndim, const int64_t *shape,
                            const void *data, int take_ownership);

/* Parameters the model has taken (weights_get) and where it keeps them. */
int weights_slot_count(const weights *w);
const char *weights_slot_name(const weights *w, int i);
/* An owned float32 copy of an already-taken parameter that every slot of
 * that name now points to, for fusing deltas (LoRA) one tensor at a time;
 * later calls return the same buffer. SDC_ERR_ARG when the model has no
 * parameter of that name. shape may be NULL. */
sdc_status weights_mutable(weights *w, const char *name, float **data, int *ndim, int64_t *shape);

#endif
