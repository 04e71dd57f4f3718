/* ops_memory.c - activation memory on the CPU backend: allocation (malloc),
 * host <-> activation transfers (memcpy: activations are host memory here) and the copies, padding and
 * row gathers the models use instead of touching activations themselves. */
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/gemm.h"
#include "backend/cpu/profile.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/ops.h"

sdc_status cpu_alloc(op_ctx *cx, float **p, int64_t n) {
    *p = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    if (!*p) return sdc_fail(SDC_ERR_NOMEM, "out of memory (%lld floats of activations)", (long long)n);
    return SDC_OK;
}

void cpu_free(op_ctx *cx, void *p) {
    if (!p) return;
    free(p);
}

sdc_status cpu_upload(op_ctx *cx, float *dev, const float *host, int64_t n) {
    if (n > 0) memcpy(dev, host, (size_t)n * sizeof(float));
    return SDC_OK;
}

sdc_status cpu_download(op_ctx *cx, float *host, const float *dev, int64_t n) {
    if (n > 0) memcpy(host, dev, (size_t)n * sizeof(float));
    return SDC_OK;
}

void cpu_copy(op_ctx *cx, float *dst, const float *src, int64_t n) {
    PROF_BEGIN();
    if (n > 0) memcpy(dst, src, (size_t)n * sizeof(float));
    PROF_END(PROF_LAYOUT, 0);
}

void cpu_copy_2d(op_ctx *cx, float *dst, int64_t dst_ld, const float *src, int64_t src_ld, int64_t rows, int64_t cols) {
    PROF_BEGIN();
    if (cols > 0)
        for (int64_t r = 0; r < rows; r++) memcpy(dst + r * dst_ld, src + r * src_ld, (size_t)cols * sizeof(float));
    PROF_END(PROF_LAYOUT, 0);
}

void cpu_affine(op_ctx *cx, float *y, const float *x, float a, float b, int64_t n) {
    PROF_BEGIN();
#pragma omp parallel for schedule(static) num_threads(cx->threads)
    for (int64_t i = 0; i < n; i++) y[i] = a * x[i] + b; /* C11 mode: not contracted to an FMA */
    PROF_END(PROF_ADD_SCALE, 0);
}

void cpu_pad_zero(op_ctx *cx, const float *x, float *y, int64_t BC, int H, int W, int Ho, int Wo) {
    PROF_BEGIN();
#pragma omp parallel for schedule(static) num_threads(cx->threads)
    for (int64_t p = 0; p < BC; p++) {
        const float *src = x + p * H * W;
        float *dst = y + p * Ho * Wo;
        for (int i = 0; i < H; i++) {
            memcpy(dst + (int64_t)i * Wo, src + (int64_t)i * W, (size_t)W * sizeof(float));
            memset(dst + (int64_t)i * Wo + W, 0, (size_t)(Wo - W) * sizeof(float));
        }
        memset(dst + (int64_t)H * Wo, 0, (size_t)(Ho - H) * Wo * sizeof(float));
    }
    PROF_END(PROF_LAYOUT, 0);
}

void cpu_gather_rows(op_ctx *cx, float *dst, const void *src, op_dtype st, int64_t cols, const int64_t *rows, int64_t n) {
    PROF_BEGIN();
    for (int64_t i = 0; i < n; i++) {
        float *d = dst + i * cols;
        int64_t base = rows[i] * cols;
        if (st == OP_F32) {
            memmove(d, (const float *)src + base, (size_t)cols * sizeof(float));
        } else {
            const uint16_t *s = (const uint16_t *)src + base;
            for (int64_t c = 0; c < cols; c++) {
                if (st == OP_BF16) {
                    uint32_t bits = (uint32_t)s[c] << 16;
                    memcpy(d + c, &bits, sizeof bits);
                } else {
                    d[c] = gemm_half_to_float(s[c]);
                }
            }
        }
    }
    PROF_END(PROF_LAYOUT, 0);
}
