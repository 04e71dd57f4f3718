/* lora_fuse.c - one weight tensor plus a LoRA delta, the way the reference
 * fuses: the delta up @ down is formed in float64, scaled, added to the
 * float64 weight and rounded once to float32. This is load-time weight
 * preparation on the CPU (not a compute op of the backend), so it calls
 * OpenBLAS' dgemm directly: a real SDXL LoRA is ~10^11 multiply-adds. */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "lora/lora_internal.h"

/* float64 copy of a float tensor (F32/F16/BF16/F64) */
static sdc_status to_f64(const st_tensor *t, double **out) {
    double *d = malloc((size_t)(t->numel ? t->numel : 1) * sizeof(double));
    if (!d) return sdc_fail(SDC_ERR_NOMEM, "out of memory widening '%s'", t->name);
    if (t->dtype == ST_F64) {
        const unsigned char *p = t->data;
        for (int64_t i = 0; i < t->numel; i++) {
            double v;
            memcpy(&v, p + 8 * i, 8);
            d[i] = v;
        }
    } else {
        float *f;
        sdc_status st = st_to_f32(t, &f);
        if (st) {
            free(d);
            return st;
        }
        for (int64_t i = 0; i < t->numel; i++) d[i] = f[i];
        free(f);
    }
    *out = d;
    return SDC_OK;
}

sdc_status lora_fuse_tensor(float *W, int64_t out, int64_t K, int r, const st_tensor *up, const st_tensor *down,
                            double factor) {
    double *u = NULL, *dn = NULL, *acc = NULL;
    sdc_status st = to_f64(up, &u);   /* (out, r) */
    if (!st) st = to_f64(down, &dn);  /* (r, K) */
    int64_t rows = (1 << 20) / (K > 0 ? K : 1); /* rows of W widened at a time: ~8 MB */
    if (rows < 1) rows = 1;
    if (rows > out) rows = out;
    if (!st && !(acc = malloc((size_t)(rows * K) * sizeof(double))))
        st = sdc_fail(SDC_ERR_NOMEM, "out of memory fusing '%s'", up->name);
    for (int64_t r0 = 0; !st && r0 < out; r0 += rows) {
        int64_t nr = out - r0 < rows ? out - r0 : rows;
        float *w = W + r0 * K;
        for (int64_t i = 0; i < nr * K; i++) acc[i] = w[i];
        /* acc[nr, K] = factor * up[r0:r0+nr, r] @ down[r, K] + acc */
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nr, (int)K, r, factor, u + r0 * r, r, dn,
                    (int)K, 1.0, acc, (int)K);
        for (int64_t i = 0; i < nr * K; i++) w[i] = (float)acc[i];
    }
    free(u);
    free(dn);
    free(acc);
    return st;
}
