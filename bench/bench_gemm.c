/* bench_gemm.c - sdc's own SGEMM (each available micro-kernel) against
 * OpenBLAS on square and model-shaped problems, GFLOP/s best of N, on the
 * current thread count (--threads). Checks the results agree while at it. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/gemm.h"
#include "backend/ops.h"
#include "bench_common.h"

typedef struct {
    const char *what;
    int M, N, K;
} shape;

static const shape shapes[] = {
    {"square 2048", 2048, 2048, 2048},
    {"attn proj 4096x320x320", 4096, 320, 320},
    {"ff in 4096x2560x320", 4096, 2560, 320},
    {"ff out 4096x320x1280", 4096, 320, 1280},
    {"conv-like 320x4096x2880", 320, 4096, 2880},
    {"low-res 1280x128x11520", 1280, 128, 11520},
};

int main(int argc, char **argv) {
    int threads = 0, reps = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
    }
    op_set_threads(threads);
    printf("threads: %d\n", op_threads());
    const char *isas[] = {"avx512", "avx2", "avx512", "avx2", "generic"};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const shape *sh = &shapes[s];
        int M = sh->M, N = sh->N, K = sh->K;
        float *a = malloc((size_t)M * K * 4), *b = malloc((size_t)K * N * 4), *c = malloc((size_t)M * N * 4),
              *r = malloc((size_t)M * N * 4);
        for (long i = 0; i < (long)M * K; i++) a[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
        for (long i = 0; i < (long)K * N; i++) b[i] = (float)((i * 104729) % 1000) / 1000.0f - 0.5f;
        double fl = 2.0 * M * N * (double)K, best = 1e30;
        for (int k = 0; k <= reps; k++) {
            double t0 = bench_now();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, a, K, b, N, 0.0f, r, N);
            double t = bench_now() - t0;
            if (k && t < best) best = t;
        }
        printf("%-28s openblas %6.1f GFLOP/s", sh->what, fl / best / 1e9);
        for (int q = 0; q < 5; q++) {
            const gemm_arch *ar = gemm_arch_named(isas[q]);
            int direct = q == 2 || q == 3;
            if (!ar || (q == 4 && M * (double)N * K > 1e10)) continue;
            gemm_strided A = {a, K, 1}, B = {b, 1, N};
            gemm_desc d = {.M = M, .N = N, .K = K, .pack_a = gemm_pack_strided, .a_ctx = &A,
                           .pack_b = gemm_pack_strided, .b_ctx = &B, .C = c, .ldc = N};
            if (direct) d.a_direct = a, d.lda = K;
            best = 1e30;
            for (int k = 0; k <= reps; k++) {
                double t0 = bench_now();
                if (gemm_run(&d, ar)) return 1;
                double t = bench_now() - t0;
                if (k && t < best) best = t;
            }
            double err = 0;
            for (long i = 0; i < (long)M * N; i++) err = fmax(err, fabs(c[i] - r[i]));
            printf("  %s%s %6.1f", ar->name, direct ? "-direct" : "", fl / best / 1e9);
            if (err > 1e-3 * sqrt(K)) printf(" (MISMATCH %g)", err);
        }
        printf("\n");
        free(a), free(b), free(c), free(r);
    }
    return 0;
}
