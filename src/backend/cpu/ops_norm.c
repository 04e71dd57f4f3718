/* ops_norm.c - GroupNorm (optionally fused with SiLU) and LayerNorm.
 * Statistics are accumulated in double (two passes: mean, then squared
 * deviations) so they are the correctly rounded float32 values the reference
 * approximates; both torch kernels agree with them to ~1 ulp. The passes are
 * vectorised (AVX-512 / AVX2, chosen at run time) with several partial sums,
 * which reorders double additions only. */
#include <math.h>

#include "backend/cpu/gemm.h"
#include "backend/cpu/profile.h"
#include "backend/cpu/vec_math.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/ops.h"

static void stats_generic(const float *x, int64_t n, double *mean, double *var) {
    double sum = 0, sq = 0;
    for (int64_t i = 0; i < n; i++) sum += x[i];
    double m = sum / (double)n;
    for (int64_t i = 0; i < n; i++) {
        double d = x[i] - m;
        sq += d * d;
    }
    *mean = m;
    *var = sq / (double)n;
}

static void affine_generic(const float *x, float *y, int64_t n, float a, float b, int silu) {
    if (silu) {
        for (int64_t i = 0; i < n; i++) {
            float v = x[i] * a + b;
            y[i] = v / (1.0f + expf(-v));
        }
    } else {
        for (int64_t i = 0; i < n; i++) y[i] = x[i] * a + b;
    }
}

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx512f"))) static void stats_avx512(const float *x, int64_t n, double *mean, double *var) {
    __m512d s0 = _mm512_setzero_pd(), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm256_loadu_ps(x + i)));
        s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm256_loadu_ps(x + i + 8)));
        s2 = _mm512_add_pd(s2, _mm512_cvtps_pd(_mm256_loadu_ps(x + i + 16)));
        s3 = _mm512_add_pd(s3, _mm512_cvtps_pd(_mm256_loadu_ps(x + i + 24)));
    }
    double sum = _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(s0, s1), _mm512_add_pd(s2, s3)));
    for (; i < n; i++) sum += x[i];
    double m = sum / (double)n;
    __m512d vm = _mm512_set1_pd(m);
    s0 = s1 = s2 = s3 = _mm512_setzero_pd();
    for (i = 0; i + 32 <= n; i += 32) {
        __m512d d0 = _mm512_sub_pd(_mm512_cvtps_pd(_mm256_loadu_ps(x + i)), vm);
        __m512d d1 = _mm512_sub_pd(_mm512_cvtps_pd(_mm256_loadu_ps(x + i + 8)), vm);
        __m512d d2 = _mm512_sub_pd(_mm512_cvtps_pd(_mm256_loadu_ps(x + i + 16)), vm);
        __m512d d3 = _mm512_sub_pd(_mm512_cvtps_pd(_mm256_loadu_ps(x + i + 24)), vm);
        s0 = _mm512_fmadd_pd(d0, d0, s0);
        s1 = _mm512_fmadd_pd(d1, d1, s1);
        s2 = _mm512_fmadd_pd(d2, d2, s2);
        s3 = _mm512_fmadd_pd(d3, d3, s3);
    }
    double sq = _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(s0, s1), _mm512_add_pd(s2, s3)));
    for (; i < n; i++) sq += (x[i] - m) * (x[i] - m);
    *mean = m;
    *var = sq / (double)n;
}

__attribute__((target("avx512f"))) static void affine_avx512(const float *x, float *y, int64_t n, float a, float b,
                                                             int silu) {
    __m512 va = _mm512_set1_ps(a), vb = _mm512_set1_ps(b);
    int64_t i = 0;
    if (silu)
        for (; i + 16 <= n; i += 16)
            _mm512_storeu_ps(y + i, vsilu512(_mm512_fmadd_ps(_mm512_loadu_ps(x + i), va, vb), 1.0f));
    else
        for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_fmadd_ps(_mm512_loadu_ps(x + i), va, vb));
    affine_generic(x + i, y + i, n - i, a, b, silu);
}

__attribute__((target("avx2,fma"))) static void stats_avx2(const float *x, int64_t n, double *mean, double *var) {
    __m256d s0 = _mm256_setzero_pd(), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm_loadu_ps(x + i)));
        s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm_loadu_ps(x + i + 4)));
        s2 = _mm256_add_pd(s2, _mm256_cvtps_pd(_mm_loadu_ps(x + i + 8)));
        s3 = _mm256_add_pd(s3, _mm256_cvtps_pd(_mm_loadu_ps(x + i + 12)));
    }
    double t[4];
    _mm256_storeu_pd(t, _mm256_add_pd(_mm256_add_pd(s0, s1), _mm256_add_pd(s2, s3)));
    double sum = (t[0] + t[1]) + (t[2] + t[3]);
    for (; i < n; i++) sum += x[i];
    double m = sum / (double)n;
    __m256d vm = _mm256_set1_pd(m);
    s0 = s1 = s2 = s3 = _mm256_setzero_pd();
    for (i = 0; i + 16 <= n; i += 16) {
        __m256d d0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + i)), vm);
        __m256d d1 = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + i + 4)), vm);
        __m256d d2 = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + i + 8)), vm);
        __m256d d3 = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + i + 12)), vm);
        s0 = _mm256_fmadd_pd(d0, d0, s0);
        s1 = _mm256_fmadd_pd(d1, d1, s1);
        s2 = _mm256_fmadd_pd(d2, d2, s2);
        s3 = _mm256_fmadd_pd(d3, d3, s3);
    }
    _mm256_storeu_pd(t, _mm256_add_pd(_mm256_add_pd(s0, s1), _mm256_add_pd(s2, s3)));
    double sq = (t[0] + t[1]) + (t[2] + t[3]);
    for (; i < n; i++) sq += (x[i] - m) * (x[i] - m);
    *mean = m;
    *var = sq / (double)n;
}

__attribute__((target("avx2,fma"))) static void affine_avx2(const float *x, float *y, int64_t n, float a, float b,
                                                            int silu) {
    __m256 va = _mm256_set1_ps(a), vb = _mm256_set1_ps(b);
    int64_t i = 0;
    if (silu)
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(y + i, vsilu256(_mm256_fmadd_ps(_mm256_loadu_ps(x + i), va, vb), 1.0f));
    else
        for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(_mm256_loadu_ps(x + i), va, vb));
    affine_generic(x + i, y + i, n - i, a, b, silu);
}
#endif

static void stats(int vec, const float *x, int64_t n, double *mean, double *var) {
#if defined(__x86_64__) || defined(__i386__)
    if (vec == 2) return stats_avx512(x, n, mean, var);
    if (vec == 1) return stats_avx2(x, n, mean, var);
#endif
    stats_generic(x, n, mean, var);
}

static void affine(int vec, const float *x, float *y, int64_t n, float a, float b, int silu) {
#if defined(__x86_64__) || defined(__i386__)
    if (vec == 2) return affine_avx512(x, y, n, a, b, silu);
    if (vec == 1) return affine_avx2(x, y, n, a, b, silu);
#endif
    affine_generic(x, y, n, a, b, silu);
}

void cpu_group_norm(op_ctx *cx, const float *x, float *y, int B, int C, int64_t HW, int G, float eps, const float *gamma,
                   const float *beta, int silu) {
    PROF_BEGIN();
    int cpg = C / G, vec = CPU_VEC();
    int64_t n = (int64_t)cpg * HW;
    /* few groups over many pixels (the VAE at full size: 32 groups per image)
     * would leave threads idle at the tail: split each group's affine pass
     * by channel, after all statistics are known */
    static const int MAXG = 4096;
    if ((int64_t)B * G > MAXG) {
#pragma omp parallel for schedule(static) num_threads(cx->threads)
        for (int64_t bg = 0; bg < (int64_t)B * G; bg++) {
            double mean, var;
            stats(vec, x + bg * n, n, &mean, &var);
            double rstd = 1.0 / sqrt(var + eps);
            int c0 = (int)(bg % G) * cpg;
            for (int c = 0; c < cpg; c++) {
                float a = (float)(rstd * gamma[c0 + c]);
                float bb = (float)(beta[c0 + c] - mean * rstd * gamma[c0 + c]);
                affine(vec, x + bg * n + c * HW, y + bg * n + c * HW, HW, a, bb, silu);
            }
        }
        PROF_END(PROF_GROUP_NORM, 0);
        return;
    }
    double st[2 * 4096];
#pragma omp parallel for schedule(dynamic) num_threads(cx->threads)
    for (int64_t bg = 0; bg < (int64_t)B * G; bg++) stats(vec, x + bg * n, n, &st[2 * bg], &st[2 * bg + 1]);
#pragma omp parallel for schedule(static) num_threads(cx->threads)
    for (int64_t bc = 0; bc < (int64_t)B * C; bc++) {
        int64_t bg = bc / cpg;
        int c = (int)(bc % C);
        double mean = st[2 * bg], rstd = 1.0 / sqrt(st[2 * bg + 1] + eps);
        float a = (float)(rstd * gamma[c]);
        float bb = (float)(beta[c] - mean * rstd * gamma[c]);
        affine(vec, x + bc * HW, y + bc * HW, HW, a, bb, silu);
    }
    PROF_END(PROF_GROUP_NORM, 0);
}

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx512f"))) static void ln_row_avx512(const float *x, float *y, int D, float m, float r,
                                                             const float *g, const float *b) {
    __m512 vm = _mm512_set1_ps(m), vr = _mm512_set1_ps(r);
    int i = 0;
    for (; i + 16 <= D; i += 16) {
        __m512 t = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i), vm), vr);
        _mm512_storeu_ps(y + i, _mm512_fmadd_ps(t, _mm512_loadu_ps(g + i), _mm512_loadu_ps(b + i)));
    }
    for (; i < D; i++) y[i] = (x[i] - m) * r * g[i] + b[i];
}
#endif

void cpu_layer_norm(op_ctx *cx, const float *x, float *y, int64_t rows, int D, float eps, const float *gamma, const float *beta) {
    PROF_BEGIN();
    int vec = CPU_VEC();
#pragma omp parallel for schedule(static) num_threads(cx->threads)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * D;
        float *yr = y + r * D;
        double mean, var;
        stats(vec, xr, D, &mean, &var);
        /* (x - mean) * rstd in float: the subtraction is exact for x near the
         * mean, so this is the double formula up to one rounding */
        float m = (float)mean, rs = (float)(1.0 / sqrt(var + eps));
#if defined(__x86_64__) || defined(__i386__)
        if (vec == 2) {
            ln_row_avx512(xr, yr, D, m, rs, gamma, beta);
            continue;
        }
#endif
        for (int i = 0; i < D; i++) yr[i] = (xr[i] - m) * rs * gamma[i] + beta[i];
    }
    PROF_END(PROF_LAYER_NORM, 0);
}
