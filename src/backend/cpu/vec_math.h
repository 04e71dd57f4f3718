/* vec_math.h - vector exp for AVX-512 and AVX2 (inline, with function target
 * attributes so callers choose at run time), within ~1 ulp of expf over the
 * range that matters: softmax (x <= 0), SiLU and sigmoid. Cody-Waite
 * reduction x = n ln2 + r, |r| <= ln2/2, then Cephes' degree-6 expf
 * polynomial. Results below e^-87.3 are flushed to 0 (as the softmax of a
 * masked score must be), above e^88.72 become +inf. */
#ifndef SDC_BACKEND_CPU_VEC_MATH_H
#define SDC_BACKEND_CPU_VEC_MATH_H

#include <math.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define VEXP_LOG2E 1.44269504088896341f
#define VEXP_LN2_HI 0.693359375f
#define VEXP_LN2_LO -2.12194440e-4f
#define VEXP_P0 1.9875691500e-4f
#define VEXP_P1 1.3981999507e-3f
#define VEXP_P2 8.3334519073e-3f
#define VEXP_P3 4.1665795894e-2f
#define VEXP_P4 1.6666665459e-1f
#define VEXP_P5 5.0000001201e-1f

__attribute__((target("avx512f"), always_inline)) static inline __m512 vexp512(__m512 x) {
    __m512 hi = _mm512_set1_ps(88.72f), lo = _mm512_set1_ps(-87.3f);
    __mmask16 tiny = _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ), big = _mm512_cmp_ps_mask(x, hi, _CMP_GT_OQ);
    x = _mm512_min_ps(x, hi);
    x = _mm512_max_ps(x, lo);
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(VEXP_LOG2E)), _MM_FROUND_TO_NEAREST_INT);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(VEXP_LN2_HI), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(VEXP_LN2_LO), r);
    __m512 p = _mm512_set1_ps(VEXP_P0);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(VEXP_P1));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(VEXP_P2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(VEXP_P3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(VEXP_P4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(VEXP_P5));
    __m512 r2 = _mm512_mul_ps(r, r);
    p = _mm512_fmadd_ps(p, r2, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    p = _mm512_scalef_ps(p, n);
    p = _mm512_mask_blend_ps(big, p, _mm512_set1_ps(INFINITY));
    return _mm512_mask_blend_ps(tiny, p, _mm512_setzero_ps());
}

__attribute__((target("avx2,fma"), always_inline)) static inline __m256 vexp256(__m256 x) {
    __m256 hi = _mm256_set1_ps(88.72f), lo = _mm256_set1_ps(-87.3f);
    __m256 tiny = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    __m256 big = _mm256_cmp_ps(x, hi, _CMP_GT_OQ);
    x = _mm256_min_ps(x, hi);
    x = _mm256_max_ps(x, lo);
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(VEXP_LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(VEXP_LN2_HI), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(VEXP_LN2_LO), r);
    __m256 p = _mm256_set1_ps(VEXP_P0);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(VEXP_P1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(VEXP_P2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(VEXP_P3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(VEXP_P4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(VEXP_P5));
    __m256 r2 = _mm256_mul_ps(r, r);
    p = _mm256_fmadd_ps(p, r2, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    /* 2^n for n in [-126, 128]: split in two halves so neither overflows the exponent field */
    __m256i ni = _mm256_cvtps_epi32(n);
    __m256i h1 = _mm256_srai_epi32(ni, 1), h2 = _mm256_sub_epi32(ni, h1);
    __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(h1, _mm256_set1_epi32(127)), 23));
    __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(h2, _mm256_set1_epi32(127)), 23));
    p = _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
    p = _mm256_blendv_ps(p, _mm256_set1_ps(INFINITY), big);
    return _mm256_andnot_ps(tiny, p);
}

/* erf as an odd/even rational function on [-4, 4] (erf is +-1 in float
 * beyond), |error| < 4e-7: the accuracy of torch's own vectorised erf. */
#define VERF_A1 -1.60960333262415e-02f
#define VERF_A3 -2.95459980854025e-03f
#define VERF_A5 -7.34990630326855e-04f
#define VERF_A7 -5.69250639462346e-05f
#define VERF_A9 -2.10102402082508e-06f
#define VERF_A11 2.77068142495902e-08f
#define VERF_A13 -2.72614225801306e-10f
#define VERF_B0 -1.42647390514189e-02f
#define VERF_B2 -7.37332916720468e-03f
#define VERF_B4 -1.68282697438203e-03f
#define VERF_B6 -2.13374055278905e-04f
#define VERF_B8 -1.45660718464996e-05f

__attribute__((target("avx512f"), always_inline)) static inline __m512 verf512(__m512 x) {
    x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(4.0f)), _mm512_set1_ps(-4.0f));
    __m512 x2 = _mm512_mul_ps(x, x);
    __m512 p = _mm512_fmadd_ps(x2, _mm512_set1_ps(VERF_A13), _mm512_set1_ps(VERF_A11));
    p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(VERF_A9));
    p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(VERF_A7));
    p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(VERF_A5));
    p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(VERF_A3));
    p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(VERF_A1));
    p = _mm512_mul_ps(x, p);
    __m512 q = _mm512_fmadd_ps(x2, _mm512_set1_ps(VERF_B8), _mm512_set1_ps(VERF_B6));
    q = _mm512_fmadd_ps(x2, q, _mm512_set1_ps(VERF_B4));
    q = _mm512_fmadd_ps(x2, q, _mm512_set1_ps(VERF_B2));
    q = _mm512_fmadd_ps(x2, q, _mm512_set1_ps(VERF_B0));
    return _mm512_div_ps(p, q);
}

__attribute__((target("avx2,fma"), always_inline)) static inline __m256 verf256(__m256 x) {
    x = _mm256_max_ps(_mm256_min_ps(x, _mm256_set1_ps(4.0f)), _mm256_set1_ps(-4.0f));
    __m256 x2 = _mm256_mul_ps(x, x);
    __m256 p = _mm256_fmadd_ps(x2, _mm256_set1_ps(VERF_A13), _mm256_set1_ps(VERF_A11));
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(VERF_A9));
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(VERF_A7));
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(VERF_A5));
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(VERF_A3));
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(VERF_A1));
    p = _mm256_mul_ps(x, p);
    __m256 q = _mm256_fmadd_ps(x2, _mm256_set1_ps(VERF_B8), _mm256_set1_ps(VERF_B6));
    q = _mm256_fmadd_ps(x2, q, _mm256_set1_ps(VERF_B4));
    q = _mm256_fmadd_ps(x2, q, _mm256_set1_ps(VERF_B2));
    q = _mm256_fmadd_ps(x2, q, _mm256_set1_ps(VERF_B0));
    return _mm256_div_ps(p, q);
}

/* x * sigmoid(k x) as torch's SiLU computes it: x / (1 + exp(-k x)). */
__attribute__((target("avx512f"), always_inline)) static inline __m512 vsilu512(__m512 x, float k) {
    __m512 e = vexp512(_mm512_mul_ps(x, _mm512_set1_ps(-k)));
    return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}
__attribute__((target("avx2,fma"), always_inline)) static inline __m256 vsilu256(__m256 x, float k) {
    __m256 e = vexp256(_mm256_mul_ps(x, _mm256_set1_ps(-k)));
    return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

/* exact GELU: 0.5 x (1 + erf(x / sqrt 2)) */
__attribute__((target("avx512f"), always_inline)) static inline __m512 vgelu512(__m512 x) {
    __m512 e = verf512(_mm512_mul_ps(x, _mm512_set1_ps((float)M_SQRT1_2)));
    return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), x), _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}
__attribute__((target("avx2,fma"), always_inline)) static inline __m256 vgelu256(__m256 x) {
    __m256 e = verf256(_mm256_mul_ps(x, _mm256_set1_ps((float)M_SQRT1_2)));
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x), _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}
#endif

#endif
