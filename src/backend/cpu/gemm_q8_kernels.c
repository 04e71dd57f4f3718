/* gemm_q8_kernels.c - the int8 GEMM's micro-kernels (layouts in gemm_q8.h),
 * the activation quantiser they share, and the choice between them. Every
 * kernel computes, per block and per tile element, the exact integer
 * sum_k (xq + 128) * wq + corr = sum_k xq * wq, then acc += float(sum) *
 * (sx * sw) as one fused multiply-add: the same bits on every path. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/gemm_q8.h"

#if defined(__x86_64__) || defined(__i386__)
#define SDC_X86 1
#include <immintrin.h>
#endif

/* ---- activations: one block of a float panel -> sx[NR], xq + 128 [8][NR][4].
 * Plain C over NR-wide rows (the compiler vectorises the j loops); a value
 * that is not finite makes its column's scale NaN, so the result is NaN as
 * a float GEMM's would be. */
void q8_quantize_panel(const float *p, int kc, uint8_t *dst) {
    float amax[Q8_NR], id[Q8_NR], *sx = (float *)dst;
    int bad[Q8_NR];
    for (int j = 0; j < Q8_NR; j++) amax[j] = 0.0f, bad[j] = 0;
    for (int k = 0; k < kc; k++)
        for (int j = 0; j < Q8_NR; j++) {
            float a = fabsf(p[k * Q8_NR + j]);
            bad[j] |= !(a <= 3.4028235e38f);
            amax[j] = a > amax[j] ? a : amax[j];
        }
    for (int j = 0; j < Q8_NR; j++) {
        sx[j] = bad[j] ? NAN : amax[j] / 127.0f;
        id[j] = bad[j] || amax[j] == 0.0f ? 0.0f : 127.0f / amax[j];
    }
    /* four k of a column per 32-bit word, lowest k in the lowest byte */
    uint8_t *q = dst + 4 * Q8_NR;
    for (int w = 0; w < Q8_BLOCK / 4; w++, q += 4 * Q8_NR) {
        uint32_t word[Q8_NR] = {0};
        for (int u = 0; u < 4 && 4 * w + u < kc; u++) {
            const float *row = p + (4 * w + u) * Q8_NR;
            for (int j = 0; j < Q8_NR; j++) {
                float v = rintf(row[j] * id[j]); /* |v| <= 127; NaN only in a bad column (id 0) */
                v = v != v ? 0.0f : v;
                word[j] |= (uint32_t)((int32_t)v + 128) << (8 * u);
            }
        }
        for (int u = kc - 4 * w > 0 ? kc - 4 * w : 0; u < 4; u++) /* past kc: zeros, 128 */
            for (int j = 0; j < Q8_NR; j++) word[j] |= 128u << (8 * u);
        memcpy(q, word, sizeof word);
    }
}

/* ---- portable C: 4 x 16. The block's activations are first widened to
 * signed 16-bit [32][16] (xq + 128 - 128: the sum is the same integer as
 * with the unsigned bytes and the correction), so the j loops vectorise. */
#define GEN_MR 4
static void kernel_generic(int64_t kb, const int32_t *a, const uint8_t *b, float *t) {
    float acc[GEN_MR][Q8_NR] = {{0}};
    for (int64_t blk = 0; blk < kb; blk++, a += Q8_A_WORDS(GEN_MR), b += Q8_B_BYTES) {
        const float *sw = (const float *)(a + GEN_MR), *sx = (const float *)b;
        const int8_t *wq = (const int8_t *)(a + 2 * GEN_MR); /* [8][MR][4] */
        const uint8_t *xq = b + 4 * Q8_NR;                   /* [8][NR][4] */
        int32_t xs[Q8_BLOCK][Q8_NR], ws[GEN_MR][Q8_BLOCK];
        for (int k = 0; k < Q8_BLOCK; k++) {
            for (int j = 0; j < Q8_NR; j++) xs[k][j] = (int32_t)xq[((k / 4) * Q8_NR + j) * 4 + k % 4] - 128;
            for (int i = 0; i < GEN_MR; i++) ws[i][k] = wq[((k / 4) * GEN_MR + i) * 4 + k % 4];
        }
        for (int i = 0; i < GEN_MR; i++) {
            int32_t s[Q8_NR] = {0};
            for (int k = 0; k < Q8_BLOCK; k++)
                for (int j = 0; j < Q8_NR; j++) s[j] += xs[k][j] * ws[i][k];
            for (int j = 0; j < Q8_NR; j++) acc[i][j] = fmaf((float)s[j], sx[j] * sw[i], acc[i][j]);
        }
    }
    memcpy(t, acc, sizeof acc);
}

#ifdef SDC_X86
/* ---- AVX512-VNNI: 12 x 16, 12 integer and 12 float accumulators */
#define R12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#define V_DECL(i)                                                                                                      \
    __m512 f##i = _mm512_setzero_ps();                                                                                 \
    __m512i s##i;
#define V_INIT(i) s##i = _mm512_set1_epi32(a[i]);
#define V_DOT(i) s##i = _mm512_dpbusd_epi32(s##i, xv, _mm512_set1_epi32(aw[i]));
#define V_ACC(i) f##i = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s##i), _mm512_mul_ps(sx, _mm512_set1_ps(sw[i])), f##i);
#define V_ST(i) _mm512_storeu_ps(t + (i)*Q8_NR, f##i);

__attribute__((target("avx512f,avx512bw,avx512vnni"))) static void kernel_avx512vnni(int64_t kb, const int32_t *a,
                                                                                     const uint8_t *b, float *t) {
    R12(V_DECL)
    for (int64_t blk = 0; blk < kb; blk++, a += Q8_A_WORDS(12), b += Q8_B_BYTES) {
        R12(V_INIT)
        const int32_t *aw = a + 24;
        for (int w = 0; w < 8; w++, aw += 12) {
            __m512i xv = _mm512_loadu_si512(b + 4 * Q8_NR + w * 64);
            R12(V_DOT)
        }
        __m512 sx = _mm512_loadu_ps(b);
        const float *sw = (const float *)(a + 12);
        R12(V_ACC)
    }
    R12(V_ST)
}

/* ---- AVX-VNNI (256-bit, VEX): 4 x 16, floats kept in the tile buffer */
__attribute__((target("avx2,fma,avxvnni"))) static void kernel_avxvnni(int64_t kb, const int32_t *a, const uint8_t *b,
                                                                       float *t) {
    for (int i = 0; i < 4 * Q8_NR; i++) t[i] = 0.0f;
    for (int64_t blk = 0; blk < kb; blk++, a += Q8_A_WORDS(4), b += Q8_B_BYTES) {
        __m256i s[4][2];
        for (int i = 0; i < 4; i++) s[i][0] = s[i][1] = _mm256_set1_epi32(a[i]);
        const int32_t *aw = a + 8;
        for (int w = 0; w < 8; w++, aw += 4) {
            __m256i x0 = _mm256_loadu_si256((const __m256i *)(b + 4 * Q8_NR + w * 64));
            __m256i x1 = _mm256_loadu_si256((const __m256i *)(b + 4 * Q8_NR + w * 64 + 32));
            for (int i = 0; i < 4; i++) {
                __m256i wv = _mm256_set1_epi32(aw[i]);
                s[i][0] = _mm256_dpbusd_avx_epi32(s[i][0], x0, wv);
                s[i][1] = _mm256_dpbusd_avx_epi32(s[i][1], x1, wv);
            }
        }
        const float *sw = (const float *)(a + 4), *sxp = (const float *)b;
        __m256 sx0 = _mm256_loadu_ps(sxp), sx1 = _mm256_loadu_ps(sxp + 8);
        for (int i = 0; i < 4; i++) {
            __m256 w = _mm256_set1_ps(sw[i]);
            float *ti = t + i * Q8_NR;
            _mm256_storeu_ps(ti,
                             _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[i][0]), _mm256_mul_ps(sx0, w), _mm256_loadu_ps(ti)));
            _mm256_storeu_ps(
                ti + 8, _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[i][1]), _mm256_mul_ps(sx1, w), _mm256_loadu_ps(ti + 8)));
        }
    }
}
#endif

static const q8_arch arch_generic = {"generic", GEN_MR, kernel_generic};
#ifdef SDC_X86
static const q8_arch arch_avx512vnni = {"avx512vnni", 12, kernel_avx512vnni};
static const q8_arch arch_avxvnni = {"avxvnni", 4, kernel_avxvnni};
#endif

const q8_arch *q8_arch_named(const char *name) {
    if (!strcmp(name, "generic")) return &arch_generic;
#ifdef SDC_X86
    __builtin_cpu_init();
    if (!strcmp(name, "avx512vnni") && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vnni"))
        return &arch_avx512vnni;
    if (!strcmp(name, "avxvnni") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
        __builtin_cpu_supports("avxvnni"))
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
