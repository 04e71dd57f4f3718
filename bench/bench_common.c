/* bench_common.c - measurement helpers for bench/. */
#include "bench_common.h"

#include "backend/ops.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

double bench_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

double bench_own_gemm_peak(op_ctx *cx, int n, int reps) {
    float *a = malloc((size_t)n * n * sizeof(float)), *b = malloc((size_t)n * n * sizeof(float)),
          *c = malloc((size_t)n * n * sizeof(float));
    double best = 1e30;
    if (a && b && c) {
        for (long i = 0; i < (long)n * n; i++) a[i] = b[i] = (float)(i % 7) * 0.1f;
        for (int r = 0; r < reps + 1; r++) {
            double t0 = bench_now();
            if (op_linear(cx, a, n, n, b, NULL, n, c)) break;
            double t = bench_now() - t0;
            if (r && t < best) best = t;
        }
    }
    free(a), free(b), free(c);
    return best < 1e30 ? 2.0 * n * (double)n * n / best / 1e9 : 0;
}

double bench_cpu_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void bench_print_profile(double total, double total_cpu) {
    const char *name;
    double s, f, sum = 0, csum = 0;
    long calls;
    printf("  %-12s %8s %6s %8s %7s %9s %13s\n", "op", "seconds", "share", "CPU s", "calls", "GFLOP/s",
           "GFLOP/CPU-s");
    for (int i = 0; op_profile_get(i, &name, &s, &f, &calls); i++) {
        double c = op_profile_cpu_seconds(i);
        sum += s;
        csum += c;
        if (!calls) continue;
        printf("  %-12s %8.3f %5.1f%% %8.3f %7ld", name, s, 100.0 * s / total, c, calls);
        if (f > 0) printf(" %9.1f %13.1f", f / s / 1e9, f / c / 1e9);
        printf("\n");
    }
    printf("  %-12s %8.3f %5.1f%% %8.3f\n", "(other)", total - sum, 100.0 * (total - sum) / total, total_cpu - csum);
}

double bench_peak_rss_mib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

double bench_gemm_peak(int n, int reps) {
    float *a = malloc((size_t)n * n * sizeof(float)), *b = malloc((size_t)n * n * sizeof(float)),
          *c = malloc((size_t)n * n * sizeof(float));
    if (!a || !b || !c) {
        free(a), free(b), free(c);
        return 0;
    }
    for (long i = 0; i < (long)n * n; i++) a[i] = b[i] = (float)(i % 7) * 0.1f;
    double best = 1e30;
    for (int r = 0; r < reps + 1; r++) { /* first run warms up */
        double t0 = bench_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        double t = bench_now() - t0;
        if (r && t < best) best = t;
    }
    free(a), free(b), free(c);
    return 2.0 * n * (double)n * n / best / 1e9;
}
