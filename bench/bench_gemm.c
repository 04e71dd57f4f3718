/* bench_gemm.c - sdc's own SGEMM (each available micro-kernel) against
 * OpenBLAS on square and model-shaped problems, GFLOP/s best of N, on the
 * current thread count (--threads). Checks the results agree while at it.
 * The arithmetic peaks (fp32 FMA, bf16 and int8 dot products) come first;
 * the linear shapes also run with int8 (q8) weights, whose rate is given as
 * 2*M*N*K per second like the float ones. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/gemm.h"
#include "backend/cpu/gemm_q8.h"
#include "backend/ops.h"
#include "bench_common.h"

static op_ctx *g_cx; /* the program's CPU context */

static void arithmetic_peaks(void) {
    double g[BENCH_NPEAKS];
    int T = op_ctx_threads(g_cx);
    bench_arith_peaks(T, g);
    for (int k = 0; k < BENCH_NPEAKS; k++)
        if (g[k] > 0)
            printf("%s peak (%d threads, registers only): %.1f G%s/s\n", bench_peak_name(k), T, g[k],
                   k >= 2 ? "OP" : "FLOP");
}

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
    int threads = 0, reps = 3, bf16 = 0;
    const char *only = ""; /* --only peaks|gemm|linear: that section alone */
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--only")) only = argv[i + 1];
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--dtype")) bf16 = !strcmp(argv[i + 1], "bf16");
    }
    if (op_ctx_create(&g_cx, OP_DEV_CPU, threads)) {
        fprintf(stderr, "%s\n", sdc_last_error());
        return 1;
    }
    op_set_compute(g_cx, bf16 ? OP_BF16 : OP_F32);
    printf("threads: %d, compute %s\n", op_ctx_threads(g_cx), op_compute(g_cx) == OP_BF16 ? "bf16" : "f32");
    if (strstr("peaks", only)) arithmetic_peaks();
    const char *isas[] = {"avx512", "avx2", "avx512", "avx2", "generic"};
    for (size_t s = 0; strstr("gemm", only) && s < sizeof shapes / sizeof shapes[0]; s++) {
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
    /* op_linear (y = x W^T + b, W as stored [N, K]) against cblas NT */
    static const shape lin[] = {{"linear 8192x2560<-320", 8192, 2560, 320}, {"linear 2048x5120<-640", 2048, 5120, 640},
                                {"linear 4096x320<-320", 4096, 320, 320},   {"linear 4096x2560<-320", 4096, 2560, 320},
                                {"linear 4096x320<-1280", 4096, 320, 1280}, {"linear 1024x640<-640", 1024, 640, 640},
                                {"linear 256x10240<-1280", 256, 10240, 1280}, {"linear 77x3072<-768", 77, 3072, 768},
                                {"linear 154x320<-768", 154, 320, 768},   {"linear 77x5120<-1280", 77, 5120, 1280},
                                {"linear 77x1280<-5120", 77, 1280, 5120}};
    for (size_t s = 0; strstr("linear", only) && s < sizeof lin / sizeof lin[0]; s++) {
        int M = lin[s].M, N = lin[s].N, K = lin[s].K;
        float *x = malloc((size_t)M * K * 4), *w = malloc((size_t)N * K * 4), *bias = calloc((size_t)N, 4),
              *y = malloc((size_t)M * N * 4);
        for (long i = 0; i < (long)M * K; i++) x[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
        for (long i = 0; i < (long)N * K; i++) w[i] = (float)((i * 104729) % 1000) / 1000.0f - 0.5f;
        uint16_t *wh = malloc((size_t)N * K * 2);
        for (long i = 0; i < (long)N * K; i++) wh[i] = 0x3c00 ^ (uint16_t)(i & 0x83ff); /* some halves */
        q8_matrix *wq;
        if (q8_quantize(w, OP_F32, N, K, 1, &wq)) return 1;
        double fl = 2.0 * M * N * (double)K, bo = 1e30, bs = 1e30, bh = 1e30, bq = 1e30;
        for (int k = 0; k <= reps; k++) {
            double t0 = bench_now();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, x, K, w, K, 0.0f, y, N);
            double t1 = bench_now();
            op_linear(g_cx, x, M, K, w, bias, N, y);
            double t2 = bench_now();
            op_linear_t(g_cx, x, M, K, wh, OP_F16, bias, N, y);
            double t3 = bench_now();
            op_linear_t(g_cx, x, M, K, wq, OP_Q8, bias, N, y);
            double t4 = bench_now();
            if (k && t1 - t0 < bo) bo = t1 - t0;
            if (k && t2 - t1 < bs) bs = t2 - t1;
            if (k && t3 - t2 < bh) bh = t3 - t2;
            if (k && t4 - t3 < bq) bq = t4 - t3;
        }
        printf("%-28s openblas %6.1f GFLOP/s  op_linear %6.1f  f16 weights %6.1f  q8 weights (%s) %6.1f\n", lin[s].what,
               fl / bo / 1e9, fl / bs / 1e9, fl / bh / 1e9, q8_arch_get()->name, fl / bq / 1e9);
        free(x), free(w), free(bias), free(y), free(wh), free(wq);
    }
    return 0;
}
