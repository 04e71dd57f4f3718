/* ops_gemm.c - thread count, allocator tuning, FLOP counter and the linear
 * layer (float32 or 16-bit weights) on the backend's own GEMM (gemm.h).
 * Convolutions are in ops_conv.c. */
#include <cblas.h>
#include <omp.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/gemm.h"
#include "backend/cpu/profile.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/ops.h"

static int g_threads;
static double g_flops; /* counted from the calling thread only, never inside parallel regions */

void op_flops_reset(void) { g_flops = 0; }
double op_flops(void) { return g_flops; }
void op_flops_add(double n) { g_flops += n; }

void op_set_threads(int n) {
    if (n <= 0) n = omp_get_num_procs();
    g_threads = n;
    omp_set_num_threads(n);
    openblas_set_num_threads(n); /* only LoRA fusing still calls BLAS */
}

int op_threads(void) { return g_threads ? g_threads : omp_get_num_procs(); }

void op_tune_allocator(void) {
#ifdef __GLIBC__
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}

void cpu_linear_t(const float *x, int64_t M, int64_t K, const void *W, op_dtype wt, const float *b, int64_t N,
                 float *y) {
    if (wt == OP_F32) return cpu_linear(x, M, K, W, b, N, y);
    PROF_BEGIN();
    gemm_strided16 wt16 = {W, K, 1, wt == OP_BF16};
    gemm_desc d = {.M = M, .N = N, .K = K, .a_direct = x, .lda = K, .pack_b = gemm_pack_strided16, .b_ctx = &wt16,
                   .C = y, .ldc = N, .col_bias = b};
    gemm_strided xa = {x, K, 1};
    d.pack_a = gemm_pack_strided;
    d.a_ctx = &xa;
    if (gemm_run(&d, gemm_arch_get())) { /* out of memory for scratch: widen row by row */
        float *wr = malloc((size_t)K * sizeof(float));
        for (int64_t j = 0; wr && j < N; j++) {
            for (int64_t k = 0; k < K; k++) {
                uint16_t h = ((const uint16_t *)W)[j * K + k];
                if (wt == OP_BF16) {
                    uint32_t u = (uint32_t)h << 16;
                    memcpy(&wr[k], &u, 4);
                } else {
                    wr[k] = gemm_half_to_float(h);
                }
            }
            for (int64_t i = 0; i < M; i++) {
                float s = b ? b[j] : 0.0f;
                for (int64_t k = 0; k < K; k++) s += x[i * K + k] * wr[k];
                y[i * N + j] = s;
            }
        }
        free(wr);
    }
    op_flops_add(2.0 * (double)M * (double)N * (double)K);
    PROF_END(PROF_LINEAR, 2.0 * (double)M * (double)N * (double)K);
}

void cpu_linear(const float *x, int64_t M, int64_t K, const float *W, const float *b, int64_t N, float *y) {
    PROF_BEGIN();
    /* y = x . W^T: A = x read in place, B(k, n) = W[n, k] packed */
    gemm_strided wt = {W, K, 1};
    gemm_desc d = {.M = M, .N = N, .K = K, .a_direct = x, .lda = K, .pack_b = gemm_pack_strided, .b_ctx = &wt,
                   .C = y, .ldc = N, .col_bias = b};
    gemm_strided xa = {x, K, 1};
    d.pack_a = gemm_pack_strided;
    d.a_ctx = &xa;
    /* scratch is a few MiB per thread: a failure here is an out-of-memory
     * that the (void) signature cannot report; fall back to BLAS then */
    if (gemm_run(&d, gemm_arch_get())) {
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) y[i * N + j] = b ? b[j] : 0.0f;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)N, (int)K, 1.0f, x, (int)K, W, (int)K,
                    1.0f, y, (int)N);
    }
    op_flops_add(2.0 * (double)M * (double)N * (double)K);
    PROF_END(PROF_LINEAR, 2.0 * (double)M * (double)N * (double)K);
}
