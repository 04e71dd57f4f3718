/* weights.h - a model component's parameters, looked up by their diffusers
 * names in one or more safetensors files. F32 tensors that are aligned are
 * used straight from the mapping; F16/BF16 ones are widened once into owned
 * buffers. Every lookup checks the shape and names file and key on error. */
#ifndef SDC_NN_WEIGHTS_H
#define SDC_NN_WEIGHTS_H

#include <stdint.h>

#include "io/safetensors.h"

typedef struct {
    st_file *files;
    int nfiles;
    char prefix[128]; /* prepended to every name ("" for diffusers folders) */
    void **owned;
    int nowned, cap;
    int64_t nparams; /* parameters handed out so far */
    int synthesize;  /* benchmarks: make missing tensors up (random, fixed seed) instead of failing */
    uint64_t synth_state;
} weights;

sdc_status weights_open(weights *w, const char *const *paths, int n);
void weights_close(weights *w);
const st_tensor *weights_find(const weights *w, const char *name);
int weights_has(const weights *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Look up prefix+name; ndim < 0 skips the shape check. */
sdc_status weights_get(weights *w, const float **out, int ndim, const int64_t *shape, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

#endif
