/* ops_gemm.c - GEMM-backed ops: linear layers and convolution (im2col in
 * row bands so the column buffer stays bounded at any image size). */
#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

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
    openblas_set_num_threads(n);
}

int op_threads(void) { return g_threads ? g_threads : omp_get_num_procs(); }

void op_linear(const float *x, int64_t M, int64_t K, const float *W, const float *b, int64_t N, float *y) {
    if (b) {
        for (int64_t i = 0; i < M; i++) memcpy(y + i * N, b, (size_t)N * sizeof(float));
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)N, (int)K, 1.0f, x, (int)K, W, (int)K,
                b ? 1.0f : 0.0f, y, (int)N);
    op_flops_add(2.0 * (double)M * (double)N * (double)K);
}

/* Column buffer budget: 32 Mi floats (128 MiB). */
#define IM2COL_MAX_FLOATS (32ll << 20)

sdc_status op_conv2d(const float *x, int B, int C, int H, int W, const float *w, const float *b, int O, int k,
                     int stride, int pad, float *y) {
    int Ho = (H + 2 * pad - k) / stride + 1, Wo = (W + 2 * pad - k) / stride + 1;
    int64_t HWo = (int64_t)Ho * Wo, CK = (int64_t)C * k * k;
    op_flops_add(2.0 * B * (double)O * (double)HWo * (double)CK);
    if (k == 1 && stride == 1 && pad == 0) {
        for (int n = 0; n < B; n++) {
            float *yn = y + (int64_t)n * O * HWo;
            for (int o = 0; o < O; o++)
                for (int64_t i = 0; i < HWo; i++) yn[o * HWo + i] = b ? b[o] : 0.0f;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, O, (int)HWo, C, 1.0f, w, C,
                        x + (int64_t)n * C * H * W, (int)HWo, 1.0f, yn, (int)HWo);
        }
        return SDC_OK;
    }
    int band = (int)(IM2COL_MAX_FLOATS / (CK * Wo));
    if (band < 1) band = 1;
    if (band > Ho) band = Ho;
    float *col = malloc((size_t)(CK * band * Wo) * sizeof(float));
    float *tmp = malloc((size_t)O * band * Wo * sizeof(float));
    if (!col || !tmp) {
        free(col);
        free(tmp);
        return sdc_fail(SDC_ERR_NOMEM, "out of memory in conv2d (%d channels, %dx%d)", C, H, W);
    }
    for (int n = 0; n < B; n++) {
        const float *xn = x + (int64_t)n * C * H * W;
        float *yn = y + (int64_t)n * O * HWo;
        for (int r0 = 0; r0 < Ho; r0 += band) {
            int rows = Ho - r0 < band ? Ho - r0 : band;
            int64_t cols = (int64_t)rows * Wo;
            /* col[(c,ki,kj), (r,xo)] = x[c, (r0+r)*s - pad + ki, xo*s - pad + kj] */
#pragma omp parallel for schedule(static)
            for (int64_t ck = 0; ck < CK; ck++) {
                int c = (int)(ck / (k * k)), ki = (int)(ck / k % k), kj = (int)(ck % k);
                float *dst = col + ck * cols;
                const float *xc = xn + (int64_t)c * H * W;
                for (int r = 0; r < rows; r++) {
                    int yi = (r0 + r) * stride - pad + ki;
                    float *d = dst + (int64_t)r * Wo;
                    if (yi < 0 || yi >= H) {
                        memset(d, 0, (size_t)Wo * sizeof(float));
                        continue;
                    }
                    const float *xr = xc + (int64_t)yi * W;
                    for (int xo = 0; xo < Wo; xo++) {
                        int xi = xo * stride - pad + kj;
                        d[xo] = (xi >= 0 && xi < W) ? xr[xi] : 0.0f;
                    }
                }
            }
            float *out = rows == Ho ? yn : tmp;
            for (int o = 0; o < O; o++)
                for (int64_t i = 0; i < cols; i++) out[o * cols + i] = b ? b[o] : 0.0f;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, O, (int)cols, (int)CK, 1.0f, w, (int)CK, col,
                        (int)cols, 1.0f, out, (int)cols);
            if (out == tmp)
                for (int o = 0; o < O; o++)
                    memcpy(yn + o * HWo + (int64_t)r0 * Wo, tmp + o * cols, (size_t)cols * sizeof(float));
        }
    }
    free(col);
    free(tmp);
    return SDC_OK;
}
