/* gemm_q8_kernels.c - the int8 GEMM's micro-kernels (layouts in gemm_q8.h),
 * the activation quantiser they share, and the choice between them. Every
 * kernel computes, per block and per tile element, the exact integer
 * sum_k xq * (wq + 128) + corr = sum_k xq * wq, then acc += float(sum) *
 * (sw * sx) as one fused multiply-add: the same bits on every path. */
#ifdef __x86_64__
#include <cpuid.h>
#endif
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/gemm_q8.h"

#if defined(__x86_64__) || defined(__i386__)
#define SDC_X86 1
#include <immintrin.h>
#endif

/* ---- activations: one block of a float panel -> corr[R], sx[R], xq[8][R].
 * Plain C over the R lanes (the compiler vectorises them); a value that is
 * not finite makes its row's scale NaN, so the result is NaN as a float
 * GEMM's would be. */
void q8_quantize_rows(const float *p, int kc, int R, int32_t *dst) {
    float amax[Q8_MR_MAX], id[Q8_MR_MAX], *sx = (float *)(dst + R);
    int bad[Q8_MR_MAX], sum[Q8_MR_MAX];
    for (int r = 0; r < R; r++) amax[r] = 0.0f, bad[r] = 0, sum[r] = 0;
    for (int k = 0; k < kc; k++)
        for (int r = 0; r < R; r++) {
            float a = fabsf(p[k * R + r]);
            bad[r] |= !(a <= 3.4028235e38f);
            amax[r] = a > amax[r] ? a : amax[r];
        }
    for (int r = 0; r < R; r++) {
        sx[r] = bad[r] ? NAN : amax[r] / 127.0f;
        id[r] = bad[r] || amax[r] == 0.0f ? 0.0f : 127.0f / amax[r];
    }
    /* four k of a row per 32-bit word, lowest k in the lowest byte; zeros past kc */
    uint32_t *q = (uint32_t *)(dst + 2 * R);
    for (int w = 0; w < Q8_BLOCK / 4; w++, q += R) {
        uint32_t word[Q8_MR_MAX] = {0};
        for (int u = 0; u < 4 && 4 * w + u < kc; u++) {
            const float *row = p + (4 * w + u) * R;
            for (int r = 0; r < R; r++) {
                float v = rintf(row[r] * id[r]); /* |v| <= 127; NaN only in a bad row (id 0) */
                int iv = v != v ? 0 : (int)v;
                sum[r] += iv;
                word[r] |= (uint32_t)(iv & 0xff) << (8 * u);
            }
        }
        memcpy(q, word, (size_t)R * 4);
    }
    for (int r = 0; r < R; r++) dst[r] = -128 * sum[r];
}

/* ---- portable C: 16 x 16. The block's weights are first widened to int32
 * [32][16] (wq + 128, as stored: with the correction the sum is the same
 * integer), so the j loops vectorise. */
#define GEN_MR 16
static void kernel_generic(int64_t kb, const int32_t *a, const uint8_t *b, float *t) {
    float acc[GEN_MR][Q8_PANEL] = {{0}};
    for (int64_t blk = 0; blk < kb; blk++, a += Q8_A_WORDS(GEN_MR), b += Q8_PBLOCK) {
        const float *sx = (const float *)(a + GEN_MR);
        const int8_t *xq = (const int8_t *)(a + 2 * GEN_MR); /* [8][MR][4] */
        const uint8_t *wq = b + 2 * Q8_PANEL;                /* [8][16][4] */
        float sw[Q8_PANEL];
        int32_t ws[Q8_BLOCK][Q8_PANEL], xs[GEN_MR][Q8_BLOCK];
        for (int j = 0; j < Q8_PANEL; j++) {
            uint16_t h;
            memcpy(&h, b + 2 * j, 2);
            sw[j] = gemm_half_to_float(h);
        }
        for (int k = 0; k < Q8_BLOCK; k++) {
            for (int j = 0; j < Q8_PANEL; j++) ws[k][j] = wq[((k / 4) * Q8_PANEL + j) * 4 + k % 4];
            for (int i = 0; i < GEN_MR; i++) xs[i][k] = xq[((k / 4) * GEN_MR + i) * 4 + k % 4];
        }
        for (int i = 0; i < GEN_MR; i++) {
            int32_t s[Q8_PANEL];
            for (int j = 0; j < Q8_PANEL; j++) s[j] = a[i];
            for (int k = 0; k < Q8_BLOCK; k++)
                for (int j = 0; j < Q8_PANEL; j++) s[j] += xs[i][k] * ws[k][j];
            for (int j = 0; j < Q8_PANEL; j++) acc[i][j] = fmaf((float)s[j], sw[j] * sx[i], acc[i][j]);
        }
    }
    memcpy(t, acc, sizeof acc);
}

#ifdef SDC_X86
/* ---- AVX512-VNNI: 16 x 16, 16 integer accumulators in registers, the
 * float tile in L1 (one load and store per row and block of 32 k) */
#define R16(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15)
#define V_DECL(i) __m512i s##i;
#define V_INIT(i) s##i = _mm512_set1_epi32(a[i]);
#define V_DOT(i) s##i = _mm512_dpbusd_epi32(s##i, wv, _mm512_set1_epi32(ax[i]));
#define V_ACC(i)                                                                                                       \
    _mm512_storeu_ps(t + (i)*Q8_PANEL,                                                                                 \
                     _mm512_fmadd_ps(_mm512_cvtepi32_ps(s##i), _mm512_mul_ps(sw, _mm512_set1_ps(sx[i])),               \
                                     _mm512_loadu_ps(t + (i)*Q8_PANEL)));

__attribute__((target("avx512f,avx512bw,avx512vnni,f16c"))) static void kernel_avx512vnni(int64_t kb, const int32_t *a,
                                                                                          const uint8_t *b, float *t) {
    R16(V_DECL)
    for (int i = 0; i < 16; i++) _mm512_storeu_ps(t + i * Q8_PANEL, _mm512_setzero_ps());
    for (int64_t blk = 0; blk < kb; blk++, a += Q8_A_WORDS(16), b += Q8_PBLOCK) {
        R16(V_INIT)
        const int32_t *ax = a + 32;
        for (int w = 0; w < 8; w++, ax += 16) {
            __m512i wv = _mm512_loadu_si512(b + 2 * Q8_PANEL + w * 64);
            R16(V_DOT)
        }
        __m512 sw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)b));
        const float *sx = (const float *)(a + 16);
        R16(V_ACC)
    }
}

/* q8_quantize_rows for R = 16 in AVX-512: the same operations lane by lane
 * (division for the scales, round to nearest even, NaN rows zeroed) */
__attribute__((target("avx512f,avx512bw"))) static void quantize_rows16(const float *p, int kc, int R, int32_t *dst) {
    (void)R;
    const __m512i absmask = _mm512_set1_epi32(0x7fffffff);
    __m512 amax = _mm512_setzero_ps();
    __mmask16 bad = 0;
    for (int k = 0; k < kc; k++) {
        /* integer AND, not _mm512_and_ps: that one is AVX512DQ, which this target does not assume */
        __m512 a = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(_mm512_loadu_ps(p + k * 16)), absmask));
        bad |= _mm512_cmp_ps_mask(a, _mm512_set1_ps(3.4028235e38f), _CMP_NLE_UQ); /* inf or NaN */
        amax = _mm512_max_ps(a, amax); /* a NaN a leaves amax (as a > amax ? a : amax) */
    }
    __mmask16 ok = (__mmask16)~bad & _mm512_cmp_ps_mask(amax, _mm512_setzero_ps(), _CMP_NEQ_OQ);
    _mm512_storeu_ps((float *)(dst + 16),
                     _mm512_mask_blend_ps(bad, _mm512_div_ps(amax, _mm512_set1_ps(127.0f)), _mm512_set1_ps(NAN)));
    __m512 id = _mm512_maskz_div_ps(ok, _mm512_set1_ps(127.0f), amax);
    __m512i sum = _mm512_setzero_si512(), *q = (__m512i *)(dst + 32);
    for (int w = 0; w < Q8_BLOCK / 4; w++) {
        __m512i word = _mm512_setzero_si512();
        for (int u = 0; u < 4 && 4 * w + u < kc; u++) {
            __m512i v = _mm512_maskz_cvtps_epi32(ok, _mm512_mul_ps(_mm512_loadu_ps(p + (4 * w + u) * 16), id));
            sum = _mm512_add_epi32(sum, v);
            word = _mm512_or_si512(word, _mm512_slli_epi32(_mm512_and_si512(v, _mm512_set1_epi32(0xff)), 8 * u));
        }
        _mm512_storeu_si512(q + w, word);
    }
    _mm512_storeu_si512(dst, _mm512_mullo_epi32(sum, _mm512_set1_epi32(-128)));
}

/* ---- AVX-VNNI (256-bit, VEX): 4 x 16, floats kept in the tile buffer */
__attribute__((target("avx2,fma,f16c,avxvnni"))) static void kernel_avxvnni(int64_t kb, const int32_t *a,
                                                                            const uint8_t *b, float *t) {
    for (int i = 0; i < 4 * Q8_PANEL; i++) t[i] = 0.0f;
    for (int64_t blk = 0; blk < kb; blk++, a += Q8_A_WORDS(4), b += Q8_PBLOCK) {
        __m256i s[4][2];
        for (int i = 0; i < 4; i++) s[i][0] = s[i][1] = _mm256_set1_epi32(a[i]);
        const int32_t *ax = a + 8;
        for (int w = 0; w < 8; w++, ax += 4) {
            __m256i w0 = _mm256_loadu_si256((const __m256i *)(b + 2 * Q8_PANEL + w * 64));
            __m256i w1 = _mm256_loadu_si256((const __m256i *)(b + 2 * Q8_PANEL + w * 64 + 32));
            for (int i = 0; i < 4; i++) {
                __m256i xv = _mm256_set1_epi32(ax[i]);
                s[i][0] = _mm256_dpbusd_avx_epi32(s[i][0], w0, xv);
                s[i][1] = _mm256_dpbusd_avx_epi32(s[i][1], w1, xv);
            }
        }
        const float *sx = (const float *)(a + 4);
        __m256 sw0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)b));
        __m256 sw1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(b + 16)));
        for (int i = 0; i < 4; i++) {
            __m256 x = _mm256_set1_ps(sx[i]);
            float *ti = t + i * Q8_PANEL;
            _mm256_storeu_ps(ti,
                             _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[i][0]), _mm256_mul_ps(sw0, x), _mm256_loadu_ps(ti)));
            _mm256_storeu_ps(
                ti + 8, _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[i][1]), _mm256_mul_ps(sw1, x), _mm256_loadu_ps(ti + 8)));
        }
    }
}
#endif

static const q8_arch arch_generic = {"generic", GEN_MR, kernel_generic, q8_quantize_rows};
#ifdef SDC_X86
static const q8_arch arch_avx512vnni = {"avx512vnni", 16, kernel_avx512vnni, quantize_rows16};
static const q8_arch arch_avxvnni = {"avxvnni", 4, kernel_avxvnni, q8_quantize_rows};
#endif

#ifdef SDC_X86
/* f16c and AVX-VNNI straight from cpuid: clang 14's __builtin_cpu_supports
 * knows neither name (the fuzz build compiles this file with clang) */
static int cpu_f16c(void) {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29));
}
static int cpu_avxvnni(void) {
    unsigned a, b, c, d;
    return __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & (1u << 4));
}
#endif

const q8_arch *q8_arch_named(const char *name) {
    if (!strcmp(name, "generic")) return &arch_generic;
#ifdef SDC_X86
    __builtin_cpu_init();
    if (!strcmp(name, "avx512vnni") && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vnni") && cpu_f16c())
        return &arch_avx512vnni;
    if (!strcmp(name, "avxvnni") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_f16c() &&
        cpu_avxvnni())
        return &arch_avxvnni;
#endif
    return NULL;
}

const q8_arch *q8_arch_get(void) {
    int vec = gemm_arch_get()->vec;
    const q8_arch *a = NULL;
    if (vec >= 2) a = q8_arch_named("avx512vnni");
    if (!a && vec >= 1) a = q8_arch_named("avxvnni");
    return a ? a : &arch_generic;
}
