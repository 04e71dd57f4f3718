/* golden.h - comparing engine tensors with golden safetensors. */
#ifndef SDC_TESTS_GOLDEN_H
#define SDC_TESTS_GOLDEN_H

#include <stdint.h>

#include "io/safetensors.h"

/* max |a - b| over n floats (NaN counts as infinite) */
double max_abs_diff(const float *a, const float *b, int64_t n);
/* Load golden tensor `name` as float32 (caller frees); NULL if absent. */
float *golden_f32(const st_file *f, const char *name, int64_t *numel);

#endif
