/* conv_q8.c - convolutions with int8 kernels whose columns are in (ky, kx,
 * c) order (backend/q8.h: ch set, the channel count a multiple of 32). A
 * block of 32 columns is then 32 channels at one kernel tap, i.e. 32
 * channels of one input pixel: the input is quantised once, per pixel and
 * channel block (x[B][C][H][W] -> int8 [B][H][W][C] with a scale and a
 * correction per pixel and block), and the int8 GEMM's activation blocks
 * are gathered from it (zero blocks where a tap falls outside the image).
 * The same numbers as quantising each output pixel's im2col row in (ky, kx,
 * c) order, at a ninth of the work for 3x3 kernels and none of the float
 * im2col. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/gemm_q8.h"

typedef struct {
    const int8_t *q;     /* [B][H][W][C] */
    const float *sx;     /* [B][H][W][ncb] */
    const int32_t *corr; /* [B][H][W][ncb]: -128 * the block's sum of q */
    int C, H, W, k, stride, pad, Ho, Wo, ncb;
} qconv_src;

/* 16 consecutive pixels [p0, p0 + n) of one image and channel block cb:
 * the same arithmetic as q8_quantize_rows, per pixel. */
static void quantize_pixels(const float *x, int64_t HW, int C, int64_t p0, int n, int cb, int8_t *q, float *sx,
                            int32_t *corr, int ncb) {
    float amax[16] = {0}, id[16];
    int bad[16] = {0}, sum[16] = {0};
    const float *xc = x + (int64_t)cb * Q8_BLOCK * HW + p0;
    for (int c = 0; c < Q8_BLOCK; c++)
        for (int j = 0; j < n; j++) {
            float a = fabsf(xc[c * HW + j]);
            bad[j] |= !(a <= 3.4028235e38f);
            amax[j] = a > amax[j] ? a : amax[j];
        }
    for (int j = 0; j < n; j++) {
        sx[(p0 + j) * ncb + cb] = bad[j] ? NAN : amax[j] / 127.0f;
        id[j] = bad[j] || amax[j] == 0.0f ? 0.0f : 127.0f / amax[j];
    }
    for (int c = 0; c < Q8_BLOCK; c++)
        for (int j = 0; j < n; j++) {
            float v = rintf(xc[c * HW + j] * id[j]);
            int iv = v != v ? 0 : (int)v;
            sum[j] += iv;
            q[(p0 + j) * C + cb * Q8_BLOCK + c] = (int8_t)iv;
        }
    for (int j = 0; j < n; j++) corr[(p0 + j) * ncb + cb] = -128 * sum[j];
}

static void quantize_input(op_ctx *cx, const float *x, int B, int C, int64_t HW, int8_t *q, float *sx, int32_t *corr) {
    int ncb = C / Q8_BLOCK;
    int64_t groups = (HW + 15) / 16, jobs = (int64_t)B * ncb * groups;
#pragma omp parallel for num_threads(cx->threads) schedule(static) if (jobs > 16)
    for (int64_t job = 0; job < jobs; job++) {
        int64_t b = job / (ncb * groups), r = job % (ncb * groups), g = r % groups;
        int cb = (int)(r / groups), n = HW - g * 16 < 16 ? (int)(HW - g * 16) : 16;
        quantize_pixels(x + b * C * HW, HW, C, g * 16, n, cb, q + b * HW * C, sx + b * HW * ncb, corr + b * HW * ncb,
                        ncb);
    }
}

/* the packed A blocks of output pixels [i0, i0 + n) (gemm_q8.h: q8_pack_a_fn) */
static void pack_taps(const void *ctx, int64_t i0, int n, int64_t pb, int64_t kb, int MR, int32_t *dst) {
    const qconv_src *s = ctx;
    int64_t HWo = (int64_t)s->Ho * s->Wo;
    int64_t base[Q8_MR_MAX];
    int iy0[Q8_MR_MAX], ix0[Q8_MR_MAX];
    for (int r = 0; r < MR; r++) {
        int64_t i = i0 + (r < n ? r : 0), b = i / HWo, p = i % HWo;
        base[r] = b * s->H * s->W;
        iy0[r] = (int)(p / s->Wo) * s->stride - s->pad;
        ix0[r] = (int)(p % s->Wo) * s->stride - s->pad;
    }
    for (int64_t blk = 0; blk < kb; blk++, dst += Q8_A_WORDS(MR)) {
        int64_t kbi = pb + blk;
        int tap = (int)(kbi / s->ncb), cb = (int)(kbi % s->ncb), ky = tap / s->k, kx = tap % s->k;
        float *sx = (float *)(dst + MR);
        for (int r = 0; r < MR; r++) {
            int iy = iy0[r] + ky, ix = ix0[r] + kx;
            if (r >= n || iy < 0 || iy >= s->H || ix < 0 || ix >= s->W) { /* outside: a zero block */
                dst[r] = 0;
                sx[r] = 0.0f;
                for (int t = 0; t < Q8_BLOCK / 4; t++) dst[2 * MR + t * MR + r] = 0;
                continue;
            }
            int64_t px = base[r] + (int64_t)iy * s->W + ix;
            dst[r] = s->corr[px * s->ncb + cb];
            sx[r] = s->sx[px * s->ncb + cb];
            const int8_t *q = s->q + px * s->C + cb * Q8_BLOCK;
            for (int t = 0; t < Q8_BLOCK / 4; t++) memcpy(&dst[2 * MR + t * MR + r], q + 4 * t, 4);
        }
    }
}

sdc_status cpu_conv2d_q8_taps(op_ctx *cx, const float *x, int B, int C, int H, int W, const q8_matrix *w,
                              const float *bias, int O, int k, int stride, int pad, float *y) {
    int Ho = (H + 2 * pad - k) / stride + 1, Wo = (W + 2 * pad - k) / stride + 1, ncb = C / Q8_BLOCK;
    int64_t HW = (int64_t)H * W, HWo = (int64_t)Ho * Wo, npix = (int64_t)B * HW;
    if (w->ch != C || w->kk != (int64_t)k * k || w->rows != O)
        return sdc_fail(SDC_ERR_SHAPE, "conv2d: int8 kernel of %lld channels x %lld taps where %d x %d is needed",
                        (long long)w->ch, (long long)w->kk, C, k * k);
    int8_t *q = malloc((size_t)(npix * C > 0 ? npix * C : 1));
    float *sx = malloc((size_t)(npix * ncb > 0 ? npix * ncb : 1) * sizeof(float));
    int32_t *corr = malloc((size_t)(npix * ncb > 0 ? npix * ncb : 1) * sizeof(int32_t));
    sdc_status st =
        q && sx && corr ? SDC_OK : sdc_fail(SDC_ERR_NOMEM, "out of memory quantising a convolution's input");
    if (!st) {
        quantize_input(cx, x, B, C, HW, q, sx, corr);
        qconv_src s = {q, sx, corr, C, H, W, k, stride, pad, Ho, Wo, ncb};
        gemm_q8_desc d = {.w = w,
                          .M = (int64_t)B * HWo,
                          .pack_a = pack_taps,
                          .x_ctx = &s,
                          .C = y,
                          .ldc = HWo,
                          .c_cols = HWo,
                          .c_batch_stride = (int64_t)O * HWo,
                          .channel_major = 1,
                          .bias = bias,
                          .threads = cx->threads};
        st = gemm_q8_run(&d, q8_arch_get());
    }
    free(q), free(sx), free(corr);
    return st;
}
