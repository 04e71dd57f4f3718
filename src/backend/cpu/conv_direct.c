/* conv_direct.c - stride-1 convolutions with few output channels (O < 8:
 * the last convolution of the KL VAE and TAESD decoders, 3 channels at
 * full image size) as a direct loop. The implicit GEMM packs the whole
 * im2col matrix for only O rows of work there (measured: 8 GFLOP per CPU
 * second on 64 -> 3 channels at 512x512, a tenth of the GEMM's rate).
 *
 * Each output pixel sums the same products in the same order as the GEMM
 * micro-kernels (gemm_kernels.c): start from 0 + bias, then one FMA per k =
 * (c, ki, kj) in that order, zero-padded pixels included. Results therefore
 * equal the implicit GEMM's bit for bit (tests/test_backend.c checks it), so
 * the switch changes no image. Registers hold a strip of 4 vectors of
 * output pixels for up to 4 output channels; the k loop streams the input
 * rows through them with masked (zero-filling) loads at the image borders. */
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/conv_direct.h"
#include "backend/cpu/gemm.h"
#include "backend/ops.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define SDC_X86 1
#endif

#define MAX_O 7      /* more output channels: the GEMM's register tile is full enough */
#define GROUP 4      /* output channels per pass (at most; 3 where O is 3 or 6) */
#define STRIP 4      /* vectors of output pixels per pass */
#ifndef DIRECT_AHEAD
#define DIRECT_AHEAD 4 /* channels ahead that the AVX-512 strip prefetches */
#endif

typedef struct {
    const float *x;  /* [B, C, H, W] */
    const float *wg; /* widened weights, [group][c][ki][kj][G] */
    int G;           /* output channels per group: GROUP, or 3 (RGB: no wasted quarter) */
    const float *bias;
    const float *zero; /* a row of zeros for the rows above and below the image */
    float *y;
    int B, C, H, W, O, k, pad, Ho, Wo;
} direct_job;

#ifdef SDC_X86

/* The AVX-512 strip: outputs [o0, o0 + no) x 4 vectors of 16 pixels from x0
 * of row oy, for K x K kernels with padding pad. K, MASKED are constants in
 * each instance, so the tap loops unroll and the 16 accumulators stay in
 * registers. MASKED: the strip touches the left or right border (or runs
 * past Wo), so loads fill the lanes outside the row with zeros; rows above
 * and below the image read J->zero. */
__attribute__((target("avx512f"), always_inline)) static inline void
strip512(const direct_job *J, int b, int oy, int o0, int no, int x0, const int K, const int pad, const int MASKED,
         const int G) {
    const int V = 16;
    __m512 acc[GROUP][STRIP];
    for (int o = 0; o < G; o++) {
        /* the micro-kernel's start: 0 + bias (0 + 0 without one) */
        __m512 r = _mm512_add_ps(_mm512_setzero_ps(), _mm512_set1_ps(J->bias && o < no ? J->bias[o0 + o] : 0.0f));
        for (int u = 0; u < STRIP; u++) acc[o][u] = r;
    }
    __mmask16 m[7][STRIP]; /* per kj and vector: the lanes whose input pixel lies inside the row */
    if (MASKED)
        for (int kj = 0; kj < K; kj++)
            for (int u = 0; u < STRIP; u++) {
                int s = x0 + u * V - pad + kj;
                unsigned mm = 0;
                for (int l = 0; l < V; l++) mm |= (unsigned)(s + l >= 0 && s + l < J->W) << l;
                m[kj][u] = (__mmask16)mm;
            }
    const float *wg = J->wg + (int64_t)(o0 / G) * J->C * K * K * G;
    int last = oy - pad + K - 1; /* the input row the previous output row did not read */
    for (int c = 0; c < J->C; c++) {
        const float *xc = J->x + ((int64_t)b * J->C + c) * J->H * J->W;
        /* that row of a later channel, planes away: the hardware prefetcher
         * does not follow 64-channel strides (3.5x slower at 64 -> 3, 512x512) */
        if (c + DIRECT_AHEAD < J->C && last >= 0 && last < J->H) {
            const char *p = (const char *)(xc + DIRECT_AHEAD * (int64_t)J->H * J->W + (int64_t)last * J->W + x0);
            for (int u = 0; u <= STRIP; u++) _mm_prefetch(p + 64 * u, _MM_HINT_T0);
        }
        for (int ki = 0; ki < K; ki++, wg += K * G) {
            int iy = oy - pad + ki;
            const float *row = (iy >= 0 && iy < J->H ? xc + (int64_t)iy * J->W : J->zero) + x0 - pad;
            for (int kj = 0; kj < K; kj++) {
                __m512 v[STRIP];
                for (int u = 0; u < STRIP; u++)
                    v[u] = MASKED ? _mm512_maskz_loadu_ps(m[kj][u], row + kj + u * V) : _mm512_loadu_ps(row + kj + u * V);
                for (int o = 0; o < G; o++) {
                    __m512 w = _mm512_set1_ps(wg[kj * G + o]);
                    for (int u = 0; u < STRIP; u++) acc[o][u] = _mm512_fmadd_ps(w, v[u], acc[o][u]);
                }
            }
        }
    }
    for (int o = 0; o < no; o++) {
        float *yr = J->y + (((int64_t)b * J->O + o0 + o) * J->Ho + oy) * J->Wo;
        for (int u = 0; u < STRIP; u++) {
            int xs = x0 + u * V, n = J->Wo - xs;
            if (n <= 0) break;
            _mm512_mask_storeu_ps(yr + xs, n >= V ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1), acc[o][u]);
        }
    }
}

/* The same with 8-lane AVX2 vectors (whose GEMM kernel also fuses); the
 * masks are lane vectors for vmaskmovps. */
__attribute__((target("avx2,fma"), always_inline)) static inline void
strip256(const direct_job *J, int b, int oy, int o0, int no, int x0, const int K, const int pad, const int MASKED,
         const int G) {
    const int V = 8;
    __m256 acc[GROUP][STRIP];
    for (int o = 0; o < G; o++) {
        __m256 r = _mm256_add_ps(_mm256_setzero_ps(), _mm256_set1_ps(J->bias && o < no ? J->bias[o0 + o] : 0.0f));
        for (int u = 0; u < STRIP; u++) acc[o][u] = r;
    }
    __m256i m[7][STRIP];
    if (MASKED)
        for (int kj = 0; kj < K; kj++)
            for (int u = 0; u < STRIP; u++) {
                int s = x0 + u * V - pad + kj;
                __m256i lane = _mm256_add_epi32(_mm256_set1_epi32(s), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
                m[kj][u] = _mm256_and_si256(_mm256_cmpgt_epi32(lane, _mm256_set1_epi32(-1)),
                                            _mm256_cmpgt_epi32(_mm256_set1_epi32(J->W), lane));
            }
    const float *wg = J->wg + (int64_t)(o0 / G) * J->C * K * K * G;
    for (int c = 0; c < J->C; c++) {
        const float *xc = J->x + ((int64_t)b * J->C + c) * J->H * J->W;
        for (int ki = 0; ki < K; ki++, wg += K * G) {
            int iy = oy - pad + ki;
            const float *row = (iy >= 0 && iy < J->H ? xc + (int64_t)iy * J->W : J->zero) + x0 - pad;
            for (int kj = 0; kj < K; kj++) {
                __m256 v[STRIP];
                for (int u = 0; u < STRIP; u++)
                    v[u] = MASKED ? _mm256_maskload_ps(row + kj + u * V, m[kj][u]) : _mm256_loadu_ps(row + kj + u * V);
                for (int o = 0; o < G; o++) {
                    __m256 w = _mm256_set1_ps(wg[kj * G + o]);
                    for (int u = 0; u < STRIP; u++) acc[o][u] = _mm256_fmadd_ps(w, v[u], acc[o][u]);
                }
            }
        }
    }
    for (int o = 0; o < no; o++) {
        float *yr = J->y + (((int64_t)b * J->O + o0 + o) * J->Ho + oy) * J->Wo;
        for (int u = 0; u < STRIP; u++) {
            int xs = x0 + u * V, n = J->Wo - xs;
            if (n <= 0) break;
            if (n >= V) {
                _mm256_storeu_ps(yr + xs, acc[o][u]);
            } else {
                float t[8];
                _mm256_storeu_ps(t, acc[o][u]);
                memcpy(yr + xs, t, (size_t)n * sizeof(float));
            }
        }
    }
}

/* Instances: 3x3 with padding 1 (the decoders' last convolutions) with
 * constant taps, anything else with the taps counted at run time. */
__attribute__((target("avx512f"))) static void strip512_3(const direct_job *J, int b, int oy, int o0, int no, int x0,
                                                          int masked) {
    if (J->G == 3) {
        if (masked) strip512(J, b, oy, o0, no, x0, 3, 1, 1, 3);
        else strip512(J, b, oy, o0, no, x0, 3, 1, 0, 3);
    } else {
        if (masked) strip512(J, b, oy, o0, no, x0, 3, 1, 1, GROUP);
        else strip512(J, b, oy, o0, no, x0, 3, 1, 0, GROUP);
    }
}
__attribute__((target("avx512f"))) static void strip512_any(const direct_job *J, int b, int oy, int o0, int no, int x0,
                                                            int masked) {
    (void)masked;
    strip512(J, b, oy, o0, no, x0, J->k, J->pad, 1, J->G);
}
__attribute__((target("avx2,fma"))) static void strip256_3(const direct_job *J, int b, int oy, int o0, int no, int x0,
                                                          int masked) {
    if (masked) strip256(J, b, oy, o0, no, x0, 3, 1, 1, GROUP);
    else strip256(J, b, oy, o0, no, x0, 3, 1, 0, GROUP);
}
__attribute__((target("avx2,fma"))) static void strip256_any(const direct_job *J, int b, int oy, int o0, int no, int x0,
                                                            int masked) {
    (void)masked;
    strip256(J, b, oy, o0, no, x0, J->k, J->pad, 1, GROUP);
}
#endif

static int g_direct = -1; /* SDC_CONV_DIRECT=0 keeps every convolution on the GEMM (comparisons) */

int conv_direct_worthwhile(const op_ctx *cx, op_dtype wt, int O, int k, int stride, int pad) {
#ifdef SDC_X86
    if (g_direct < 0) {
        const char *e = getenv("SDC_CONV_DIRECT");
        g_direct = !e || atoi(e) != 0;
    }
    if (!g_direct) return 0;
    /* only where the GEMM kernels fuse their multiply-adds too (AVX-512, AVX2)
     * and run float32 operands; the masks cover kernels up to 7 wide */
    return O < MAX_O + 1 && stride == 1 && k <= 7 && pad < k && cx->compute == OP_F32 &&
           (wt == OP_F32 || wt == OP_F16 || wt == OP_BF16) && gemm_arch_get()->vec >= 1;
#else
    (void)cx, (void)wt, (void)O, (void)k, (void)stride, (void)pad;
    return 0;
#endif
}

sdc_status conv_direct(op_ctx *cx, const float *x, int B, int C, int H, int W, const void *w, op_dtype wt,
                       const float *bias, int O, int k, int pad, float *y) {
    int avx512 = gemm_arch_get()->vec >= 2;
    /* three outputs a pass where O is a multiple of 3 (the decoders' RGB): a
     * fourth would be a quarter of the multiply-adds for nothing (15-25 %
     * faster at 64 -> 3, 512x512); AVX2 keeps four */
    int G = avx512 && O % 3 == 0 && O % GROUP ? 3 : GROUP;
    int Ho = H + 2 * pad - k + 1, Wo = W + 2 * pad - k + 1, ng = (O + G - 1) / G, kk = k * k;
    /* weights widened (exactly, as the GEMM's A packer does) and laid out per
     * output group as [c][ki][kj][G], zero for the group's missing outputs */
    float *wg = calloc((size_t)ng * C * kk * G, sizeof(float));
    if (!wg) return sdc_fail(SDC_ERR_NOMEM, "out of memory in conv2d (%d -> %d channels)", C, O);
    for (int o = 0; o < O; o++)
        for (int64_t j = 0; j < (int64_t)C * kk; j++) {
            int64_t i = (int64_t)o * C * kk + j;
            float v;
            if (wt == OP_F32) {
                v = ((const float *)w)[i];
            } else if (wt == OP_F16) {
                v = gemm_half_to_float(((const uint16_t *)w)[i]);
            } else {
                uint32_t u = (uint32_t)((const uint16_t *)w)[i] << 16;
                memcpy(&v, &u, sizeof v);
            }
            wg[((int64_t)(o / G) * C * kk + j) * G + o % G] = v;
        }
    int V = avx512 ? 16 : 8, span = V * STRIP;
    int nstrips = (Wo + span - 1) / span;
    /* long enough for every strip's loads, with the padding on both sides */
    float *zero = calloc((size_t)(nstrips * span + 2 * k + 2 * pad), sizeof(float));
    if (!zero) {
        free(wg);
        return sdc_fail(SDC_ERR_NOMEM, "out of memory in conv2d (%d -> %d channels)", C, O);
    }
    direct_job J = {x, wg, G, bias, zero + 2 * pad, y, B, C, H, W, O, k, pad, Ho, Wo};
#ifdef SDC_X86
    void (*strip)(const direct_job *, int, int, int, int, int, int) =
        k == 3 && pad == 1 ? (avx512 ? strip512_3 : strip256_3) : avx512 ? strip512_any : strip256_any;
    int64_t tasks = (int64_t)B * Ho * ng;
#pragma omp parallel for schedule(static) num_threads(cx->threads)
    for (int64_t t = 0; t < tasks; t++) {
        int g = (int)(t % ng), oy = (int)(t / ng % Ho), b = (int)(t / ng / Ho);
        int no = O - g * G < G ? O - g * G : G;
        for (int s = 0; s < nstrips; s++) {
            int x0 = s * span; /* a strip whose loads stay inside the row (and whose pixels exist) needs no masks */
            int masked = x0 - pad < 0 || x0 + span - 1 - pad + k - 1 >= W || x0 + span > Wo;
            strip(&J, b, oy, g * G, no, x0, masked);
        }
    }
#else
    (void)J, (void)nstrips;
#endif
    free(zero);
    free(wg);
    return SDC_OK;
}
