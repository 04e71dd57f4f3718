/* ops_gemm.c - allocator tuning, the FLOP counter and the linear
 * layer (float32 or 16-bit weights) on the backend's own GEMM (gemm.h).
 * Convolutions are in ops_conv.c. */
#include <stdlib.h> /* first: it defines __GLIBC__ */
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <string.h>

#include "backend/cpu/gemm.h"
#include "backend/cpu/gemm_q8.h"
#include "backend/cpu/profile.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/ops.h"

static double g_flops; /* counted from the calling thread only, never inside parallel regions */

void op_flops_reset(void) { g_flops = 0; }
double op_flops(void) { return g_flops; }
void op_flops_add(double n) { g_flops += n; }

void op_tune_allocator(void) {
#ifdef __GLIBC__
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}

/* y = x . W^T: A = x (read in place), B(k, n) = W[n, k] packed, widened
 * from 16 bits when W is stored so */
/* The shape an OP_Q8 weight must have: its rows and columns are part of it. */
sdc_status cpu_q8_check(const void *W, int64_t rows, int64_t cols, const char *op) {
    const q8_matrix *q = W;
    if (!q || q->rows != rows || q->cols != cols)
        return sdc_fail(SDC_ERR_SHAPE, "%s: int8 weight of shape %lld x %lld where %lld x %lld is needed", op,
                        q ? (long long)q->rows : 0LL, q ? (long long)q->cols : 0LL, (long long)rows, (long long)cols);
    return SDC_OK;
}

/* y = x . W^T with int8 weights: tokens are the activation rows */
static sdc_status linear_q8(op_ctx *cx, const float *x, int64_t M, int64_t K, const void *W, const float *b, int64_t N,
                            float *y) {
    SDC_TRY(cpu_q8_check(W, N, K, "linear"));
    gemm_strided xs = {x, K, 1};
    gemm_q8_desc d = {
        .w = W, .M = M, .pack_x = gemm_pack_strided, .x_ctx = &xs, .C = y, .ldc = N, .bias = b, .threads = cx->threads};
    return gemm_q8_run(&d, q8_arch_get());
}

sdc_status cpu_linear_t(op_ctx *cx, const float *x, int64_t M, int64_t K, const void *W, op_dtype wt, const float *b,
                        int64_t N, float *y) {
    PROF_BEGIN();
    if (wt == OP_Q8) {
        SDC_TRY(linear_q8(cx, x, M, K, W, b, N, y));
        op_flops_add(2.0 * (double)M * (double)N * (double)K);
        PROF_END(PROF_LINEAR, 2.0 * (double)M * (double)N * (double)K);
        return SDC_OK;
    }
    gemm_strided w32 = {W, K, 1};
    gemm_strided16 w16 = {W, K, 1, wt == OP_BF16};
    gemm_strided xa = {x, K, 1};
    gemm_desc d = {.M = M, .N = N, .K = K, .pack_a = gemm_pack_strided, .a_ctx = &xa, .a_direct = x, .lda = K,
                   .pack_b = wt == OP_F32 ? gemm_pack_strided : gemm_pack_strided16,
                   .b_ctx = wt == OP_F32 ? (const void *)&w32 : (const void *)&w16, .C = y, .ldc = N, .col_bias = b,
                   GEMM_CTX(cx)};
    SDC_TRY(gemm_run(&d, gemm_arch_get())); /* out of memory for scratch: y unwritten */
    op_flops_add(2.0 * (double)M * (double)N * (double)K);
    PROF_END(PROF_LINEAR, 2.0 * (double)M * (double)N * (double)K);
    return SDC_OK;
}

sdc_status cpu_linear(op_ctx *cx, const float *x, int64_t M, int64_t K, const float *W, const float *b, int64_t N,
                      float *y) {
    return cpu_linear_t(cx, x, M, K, W, OP_F32, b, N, y);
}
