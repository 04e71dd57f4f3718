/* weights.c - parameter lookup across safetensors files. */
#include "nn/weights.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

sdc_status weights_open(weights *w, const char *const *paths, int n) {
    memset(w, 0, sizeof *w);
    w->files = calloc((size_t)n, sizeof(st_file));
    if (!w->files) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        sdc_status st = st_open(&w->files[i], paths[i]);
        if (st) {
            weights_close(w);
            return st;
        }
        w->nfiles++;
    }
    return SDC_OK;
}

void weights_close(weights *w) {
    for (int i = 0; i < w->nfiles; i++) st_close(&w->files[i]);
    free(w->files);
    for (int i = 0; i < w->nowned; i++) free(w->owned[i]);
    free(w->owned);
    memset(w, 0, sizeof *w);
}

const st_tensor *weights_find(const weights *w, const char *name) {
    char full[512];
    snprintf(full, sizeof full, "%s%s", w->prefix, name);
    for (int i = 0; i < w->nfiles; i++) {
        const st_tensor *t = st_find(&w->files[i], full);
        if (t) return t;
    }
    return NULL;
}

int weights_has(const weights *w, const char *fmt, ...) {
    char name[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    return weights_find(w, name) != NULL;
}

sdc_status weights_get(weights *w, const float **out, int ndim, const int64_t *shape, const char *fmt, ...) {
    char name[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    *out = NULL;
    const st_tensor *t = weights_find(w, name);
    const char *file = w->nfiles ? w->files[0].path : "(no file)";
    if (!t) return sdc_fail(SDC_ERR_FORMAT, "%s: missing tensor '%s%s'", file, w->prefix, name);
    if (ndim >= 0) {
        int ok = t->ndim == ndim;
        for (int i = 0; ok && i < ndim; i++) ok = t->shape[i] == shape[i];
        if (!ok) {
            char a[160] = "(", b[160] = "(";
            for (int i = 0; i < t->ndim; i++)
                snprintf(a + strlen(a), sizeof a - strlen(a), i ? ", %lld" : "%lld", (long long)t->shape[i]);
            for (int i = 0; i < ndim; i++)
                snprintf(b + strlen(b), sizeof b - strlen(b), i ? ", %lld" : "%lld", (long long)shape[i]);
            return sdc_fail(SDC_ERR_SHAPE, "%s: tensor '%s%s' has shape %s), expected %s)", file, w->prefix, name, a, b);
        }
    }
    w->nparams += t->numel;
    if (t->dtype == ST_F32 && ((uintptr_t)t->data & 3) == 0) {
        *out = t->data;
        return SDC_OK;
    }
    if (w->nowned == w->cap) {
        int cap = w->cap ? 2 * w->cap : 64;
        void **o = realloc(w->owned, (size_t)cap * sizeof(void *));
        if (!o) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
        w->owned = o;
        w->cap = cap;
    }
    float *d;
    SDC_TRY(st_to_f32(t, &d));
    w->owned[w->nowned++] = d;
    *out = d;
    return SDC_OK;
}
