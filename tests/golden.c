/* golden.c - helpers shared by the golden tests. */
#include "golden.h"

#include <math.h>
#include <stdlib.h>

double max_abs_diff(const float *a, const float *b, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (isnan(d)) return INFINITY;
        if (d > m) m = d;
    }
    return m;
}

float *golden_f32(const st_file *f, const char *name, int64_t *numel) {
    const st_tensor *t = st_find(f, name);
    float *d = NULL;
    if (!t || st_to_f32(t, &d)) return NULL;
    if (numel) *numel = t->numel;
    return d;
}
