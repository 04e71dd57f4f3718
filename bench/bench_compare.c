/* bench_compare.c - compares two tensor dumps (sdc generate --dump), e.g. the
 * same request run with --device cpu and --device cuda: per tensor the
 * relative error ||test - ref|| / ||ref|| (L2 over all elements), the largest
 * absolute difference, non-finite values in either, and for "image" (values
 * in [0, 1]) the PSNR. bench/gpu_check.sh uses it for the full-size SDXL
 * step of issue 8.
 *
 *   bench_compare REF.safetensors TEST.safetensors [NAME ...]
 *
 * Without names: every float tensor that both files hold. Exit status 0 when
 * every compared tensor exists in both, has the same shape and is finite; 1
 * otherwise; 2 on usage errors. Prints no verdict on the size of the error:
 * what is close enough depends on the precision the test ran in. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"

static int is_float(st_dtype t) { return t == ST_F32 || t == ST_F16 || t == ST_BF16 || t == ST_F64; }

static int same_shape(const st_tensor *a, const st_tensor *b) {
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return 1;
}

/* one line for tensor `name`; returns 1 when it compared cleanly */
static int compare(const st_file *ref, const st_file *test, const char *name) {
    const st_tensor *r = st_find(ref, name), *t = st_find(test, name);
    if (!r || !t) {
        printf("%-30s missing in %s\n", name, !r ? ref->path : test->path);
        return 0;
    }
    if (!is_float(r->dtype) || !is_float(t->dtype) || !same_shape(r, t)) {
        printf("%-30s not comparable (dtype %s/%s, %d/%d dims)\n", name, st_dtype_name(r->dtype),
               st_dtype_name(t->dtype), r->ndim, t->ndim);
        return 0;
    }
    float *a = NULL, *b = NULL;
    if (st_to_f32(r, &a) || st_to_f32(t, &b)) {
        printf("%-30s %s\n", name, sdc_last_error());
        free(a);
        return 0;
    }
    double d2 = 0, r2 = 0, maxd = 0;
    int64_t bad_ref = 0, bad_test = 0;
    for (int64_t i = 0; i < r->numel; i++) {
        if (!isfinite(a[i])) bad_ref++;
        if (!isfinite(b[i])) bad_test++;
        if (!isfinite(a[i]) || !isfinite(b[i])) continue;
        double d = (double)b[i] - (double)a[i];
        d2 += d * d, r2 += (double)a[i] * a[i];
        if (fabs(d) > maxd) maxd = fabs(d);
    }
    char shape[96] = "";
    for (int i = 0, o = 0; i < r->ndim && o < (int)sizeof shape - 24; i++)
        o += snprintf(shape + o, sizeof shape - (size_t)o, i ? "x%lld" : "%lld", (long long)r->shape[i]);
    printf("%-30s %-18s rel.err %.3e  max|diff| %.3e  ref rms %.3e", name, shape, r2 > 0 ? sqrt(d2 / r2) : sqrt(d2),
           maxd, r->numel ? sqrt(r2 / (double)r->numel) : 0.0);
    if (!strcmp(name, "image") && r->numel) {
        double mse = d2 / (double)r->numel;
        printf("  PSNR %.1f dB", mse > 0 ? 10.0 * log10(1.0 / mse) : 99.0);
    }
    if (bad_ref || bad_test) printf("  NON-FINITE: %lld in ref, %lld in test", (long long)bad_ref, (long long)bad_test);
    printf("\n");
    free(a);
    free(b);
    return !bad_ref && !bad_test;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: bench_compare REF.safetensors TEST.safetensors [NAME ...]\n");
        return 2;
    }
    st_file ref, test;
    if (st_open(&ref, argv[1])) return fprintf(stderr, "bench_compare: %s\n", sdc_last_error()), 1;
    if (st_open(&test, argv[2])) {
        fprintf(stderr, "bench_compare: %s\n", sdc_last_error());
        st_close(&ref);
        return 1;
    }
    printf("reference %s, test %s\n", argv[1], argv[2]);
    int ok = 1, n = 0;
    if (argc > 3) {
        for (int i = 3; i < argc; i++, n++) ok &= compare(&ref, &test, argv[i]);
    } else {
        for (int i = 0; i < ref.n; i++)
            if (is_float(ref.tensors[i].dtype) && st_find(&test, ref.tensors[i].name))
                ok &= compare(&ref, &test, ref.tensors[i].name), n++;
    }
    if (!n) printf("no tensor in common\n"), ok = 0;
    st_close(&ref);
    st_close(&test);
    return ok ? 0 : 1;
}
