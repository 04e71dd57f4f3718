/* ops_conv.c - 2-D convolution as an implicit GEMM: C[O, B*Ho*Wo] =
 * W[O, C*k*k] . col[C*k*k, B*Ho*Wo], where the im2col matrix is never built:
 * the B packer copies each kc x nr panel of it straight from the NCHW input
 * (row runs of contiguous pixels, zeros where the kernel overhangs the
 * border). The weights are read in place, the bias seeds the accumulators
 * and the output is written once, in NCHW, for the whole batch. */
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/conv_direct.h"
#include "backend/cpu/gemm.h"
#include "backend/cpu/gemm_q8.h"
#include "backend/cpu/profile.h"
#include "backend/cpu/winograd.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/ops.h"

typedef struct {
    const float *x; /* [B, C, H, W] */
    int C, H, W, k, stride, pad, Ho, Wo;
} conv_src;

/* Pixels of one sliver split into runs along output rows. */
typedef struct {
    int r0, len, oy, ox0;
    int64_t img; /* offset of the image in x */
} pixel_run;

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
/* Stride 1, 16 pixels per sliver (the int8 GEMM's panels): each k row of
 * the panel is one masked load per run (lanes outside [lo, hi) zero; masked
 * lanes are never read), instead of the copy loops below. Same values. */
__attribute__((target("avx512f"))) static void pack_runs16_s1(const conv_src *cs, const pixel_run *runs, int nruns,
                                                              int64_t k0, int64_t kc, float *dst) {
    int64_t HW = (int64_t)cs->H * cs->W;
    int kk = cs->k * cs->k, c = (int)(k0 / kk), ki = (int)(k0 % kk / cs->k), kj = (int)(k0 % cs->k);
    for (int64_t kr = 0; kr < kc; kr++) {
        const float *xc = cs->x + (int64_t)c * HW;
        __m512 v = _mm512_setzero_ps();
        for (int q = 0; q < nruns; q++) {
            const pixel_run *ru = &runs[q];
            int iy = ru->oy - cs->pad + ki, ix0 = ru->ox0 - cs->pad + kj;
            if (iy < 0 || iy >= cs->H) continue;
            int lo = ix0 < 0 ? -ix0 : 0, hi = cs->W - ix0 < ru->len ? cs->W - ix0 : ru->len;
            if (hi <= lo) continue;
            __mmask16 m = (__mmask16)(((1u << (hi - lo)) - 1) << (ru->r0 + lo));
            v = _mm512_mask_loadu_ps(v, m, xc + ru->img + (int64_t)iy * cs->W + ix0 - ru->r0);
        }
        _mm512_storeu_ps(dst + kr * 16, v);
        if (++kj == cs->k) {
            kj = 0;
            if (++ki == cs->k) ki = 0, c++;
        }
    }
}
#define SDC_PACK16 1
#endif

static void pack_conv(const void *ctx, int64_t x0, int64_t n, int64_t k0, int64_t kc, int R, float *dst) {
    const conv_src *cs = ctx;
    int64_t HWo = (int64_t)cs->Ho * cs->Wo, HW = (int64_t)cs->H * cs->W;
    int kk = cs->k * cs->k, s = cs->stride;
    pixel_run runs[64];
    for (int64_t s0 = 0; s0 < n; s0 += R, dst += R * kc) {
        int w = (int)(n - s0 < R ? n - s0 : R), nruns = 0;
        for (int r = 0; r < w;) {
            int64_t j = x0 + s0 + r, b = j / HWo, p = j % HWo;
            int oy = (int)(p / cs->Wo), ox = (int)(p % cs->Wo);
            int len = cs->Wo - ox < w - r ? cs->Wo - ox : w - r;
            runs[nruns++] = (pixel_run){r, len, oy, ox, b * cs->C * HW};
            r += len;
        }
#ifdef SDC_PACK16
        if (R == 16 && s == 1 && CPU_VEC() == 2) {
            pack_runs16_s1(cs, runs, nruns, k0, kc, dst);
            continue;
        }
#endif
        int64_t k = k0;
        int c = (int)(k / kk), ki = (int)(k % kk / cs->k), kj = (int)(k % cs->k);
        for (int64_t kr = 0; kr < kc; kr++) {
            float *d = dst + kr * R;
            const float *xc = cs->x + (int64_t)c * HW;
            for (int q = 0; q < nruns; q++) {
                const pixel_run *ru = &runs[q];
                float *o = d + ru->r0;
                int iy = ru->oy * s - cs->pad + ki;
                if (iy < 0 || iy >= cs->H) {
                    for (int t = 0; t < ru->len; t++) o[t] = 0.0f;
                    continue;
                }
                const float *row = xc + ru->img + (int64_t)iy * cs->W;
                int ix0 = ru->ox0 * s - cs->pad + kj;
                if (s == 1) {
                    int lo = ix0 < 0 ? -ix0 : 0, hi = cs->W - ix0 < ru->len ? cs->W - ix0 : ru->len;
                    if (hi < lo) hi = lo;
                    for (int t = 0; t < lo; t++) o[t] = 0.0f;
                    for (int t = lo; t < hi; t++) o[t] = row[ix0 + t];
                    for (int t = hi; t < ru->len; t++) o[t] = 0.0f;
                } else {
                    for (int t = 0; t < ru->len; t++) {
                        int ix = ix0 + t * s;
                        o[t] = ix >= 0 && ix < cs->W ? row[ix] : 0.0f;
                    }
                }
            }
            for (int r = w; r < R; r++) d[r] = 0.0f;
            if (++kj == cs->k) {
                kj = 0;
                if (++ki == cs->k) ki = 0, c++;
            }
        }
    }
}

sdc_status cpu_conv2d(op_ctx *cx, const float *x, int B, int C, int H, int W, const float *w, const float *b, int O,
                      int k, int stride, int pad, float *y) {
    return cpu_conv2d_t(cx, x, B, C, H, W, w, OP_F32, b, O, k, stride, pad, y);
}

sdc_status cpu_conv2d_t(op_ctx *cx, const float *x, int B, int C, int H, int W, const void *w, op_dtype wt, const float *b, int O,
                       int k, int stride, int pad, float *y) {
    return cpu_conv2d_fused(cx, x, B, C, H, W, w, wt, b, O, k, stride, pad, y, NULL, 0);
}

sdc_status cpu_conv2d_fused(op_ctx *cx, const float *x, int B, int C, int H, int W, const void *w, op_dtype wt,
                            const float *b, int O, int k, int stride, int pad, float *y, const float *res, int relu) {
    if ((res || relu) && !(wt != OP_Q8 && k == 3 && stride == 1 && pad == 1 && winograd_worthwhile(cx, B, C, H, W, O))) {
        /* only Winograd's output pass takes the epilogue */
        SDC_TRY(cpu_conv2d_fused(cx, x, B, C, H, W, w, wt, b, O, k, stride, pad, y, NULL, 0));
        int64_t n = (int64_t)B * O * ((H + 2 * pad - k) / stride + 1) * ((W + 2 * pad - k) / stride + 1);
        if (res) cpu_add(cx, y, res, n);
        if (relu) cpu_relu(cx, y, n);
        return SDC_OK;
    }
    PROF_BEGIN();
    int Ho = (H + 2 * pad - k) / stride + 1, Wo = (W + 2 * pad - k) / stride + 1;
    int64_t HWo = (int64_t)Ho * Wo, CK = (int64_t)C * k * k;
    double flops = 2.0 * B * (double)O * (double)HWo * (double)CK;
    op_flops_add(flops);
    if (wt != OP_Q8 && k == 3 && stride == 1 && pad == 1 && winograd_worthwhile(cx, B, C, H, W, O)) {
        sdc_status st = conv3x3_winograd(cx, x, B, C, H, W, w, wt, b, O, y, res, relu);
        PROF_END(PROF_CONV3, flops);
        return st;
    }
    if (conv_direct_worthwhile(cx, wt, O, k, stride, pad)) { /* few outputs: the same sums without im2col panels */
        sdc_status st = conv_direct(cx, x, B, C, H, W, w, wt, b, O, k, pad, y);
        PROF_END(k == 3 ? PROF_CONV3 : k == 1 && pad == 0 ? PROF_CONV1 : PROF_CONV_OTHER, flops);
        return st;
    }
    conv_src cs = {x, C, H, W, k, stride, pad, Ho, Wo};
    if (k == 1 && stride == 1 && pad == 0) /* pointwise: each image is one long row */
        cs = (conv_src){x, C, 1, H * W, 1, 1, 0, 1, H * W};
    if (wt == OP_Q8 && w && ((const q8_matrix *)w)->ch) { /* int8, input quantised once per pixel */
        sdc_status st = cpu_conv2d_q8_taps(cx, x, B, C, H, W, w, b, O, k, stride, pad, y);
        PROF_END(k == 3 && stride == 1               ? PROF_CONV3
                 : k == 1 && stride == 1 && pad == 0 ? PROF_CONV1
                                                     : PROF_CONV_OTHER,
                 flops);
        return st;
    }
    if (wt == OP_Q8) { /* int8 weights: the same implicit GEMM, im2col panels quantised as they are packed */
        sdc_status st = cpu_q8_check(w, O, CK, "conv2d");
        gemm_q8_desc d = {.w = w,
                          .M = (int64_t)B * HWo,
                          .pack_x = pack_conv,
                          .x_ctx = &cs,
                          .C = y,
                          .ldc = HWo,
                          .c_cols = HWo,
                          .c_batch_stride = (int64_t)O * HWo,
                          .channel_major = 1,
                          .bias = b,
                          .threads = cx->threads};
        if (!st) st = gemm_q8_run(&d, q8_arch_get());
        PROF_END(k == 3 && stride == 1               ? PROF_CONV3
                 : k == 1 && stride == 1 && pad == 0 ? PROF_CONV1
                                                     : PROF_CONV_OTHER,
                 flops);
        return st;
    }
    /* float32 weights are read in place; 16-bit ones are widened into A panels */
    gemm_strided wa = {w, CK, 1};
    gemm_strided16 wa16 = {w, CK, 1, wt == OP_BF16};
    gemm_desc d = {.M = O, .N = (int64_t)B * HWo, .K = CK, .pack_a = gemm_pack_strided, .a_ctx = &wa,
                   .a_direct = w, .lda = CK, .pack_b = pack_conv, .b_ctx = &cs, .C = y, .ldc = HWo,
                   .c_cols = HWo, .c_batch_stride = (int64_t)O * HWo, .row_bias = b, GEMM_CTX(cx)};
    if (wt != OP_F32) {
        d.pack_a = gemm_pack_strided16;
        d.a_ctx = &wa16;
        d.a_direct = NULL;
    }
    sdc_status st = gemm_run(&d, gemm_arch_get());
    PROF_END(k == 3 && stride == 1 ? PROF_CONV3 : k == 1 && stride == 1 && pad == 0 ? PROF_CONV1 : PROF_CONV_OTHER,
             flops);
    return st;
}
