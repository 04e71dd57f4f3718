/* gemm_pack.c - packers for strided matrices: float32, and 16-bit weights
 * (IEEE half or bfloat16, as stored in the model files) widened to float32
 * on the way. The x-major case (rows contiguous in k: weight matrices, A
 * rows) is a transpose; on AVX-512 it goes 16 x 16 through registers. */
#include <string.h>

#include "backend/cpu/gemm.h"

#if defined(__x86_64__) || defined(__i386__)
#define SDC_X86 1
#include <cpuid.h>
#include <immintrin.h>
#endif

float gemm_half_to_float(uint16_t h) {
    uint32_t s = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff, x;
    if (e == 0x1f) x = s | 0x7f800000 | m << 13; /* inf / nan */
    else if (e) x = s | (e + 112) << 23 | m << 13;
    else if (!m) x = s;
    else { /* subnormal: normalise */
        e = 113;
        while (!(m & 0x400)) m <<= 1, e--;
        x = s | e << 23 | (m & 0x3ff) << 13;
    }
    float f;
    memcpy(&f, &x, 4);
    return f;
}

static inline float load16(const uint16_t *p, int bf16) {
    if (bf16) {
        uint32_t x = (uint32_t)*p << 16;
        float f;
        memcpy(&f, &x, 4);
        return f;
    }
    return gemm_half_to_float(*p);
}

#ifdef SDC_X86
static int have_avx512(void) {
    static int v = -1;
    if (v < 0) {
        __builtin_cpu_init();
        /* F16C from cpuid: clang 14 (the fuzz build's compiler) has no "f16c" for __builtin_cpu_supports */
        unsigned a, b, c, d;
        v = __builtin_cpu_supports("avx512f") && __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C) ? 1 : 0;
    }
    return v;
}

/* 16 consecutive values of a row as floats: dt 0 float32, 1 half, 2 bfloat16 */
__attribute__((target("avx512f,f16c"), always_inline)) static inline __m512 load_row16(const void *p, int dt) {
    if (dt == 1) return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
    if (dt == 2)
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p)), 16));
    return _mm512_loadu_ps(p);
}

/* dst[k*R + r] = row_r[k] for r < rows (<= 16, others 0), k < 16; stores
 * `lanes` floats per k (the part of this 16-row group inside the panel). */
__attribute__((target("avx512f,f16c"), always_inline)) static inline void
transpose16(const char *src, int64_t sxb, int rows, int dt, float *dst, int R, __mmask16 lanes) {
    __m512 t[16], u[16];
    for (int r = 0; r < 16; r++) t[r] = r < rows ? load_row16(src + r * sxb, dt) : _mm512_setzero_ps();
    for (int r = 0; r < 16; r += 2) {
        u[r] = _mm512_unpacklo_ps(t[r], t[r + 1]);
        u[r + 1] = _mm512_unpackhi_ps(t[r], t[r + 1]);
    }
    for (int r = 0; r < 16; r += 4) {
        t[r] = _mm512_shuffle_ps(u[r], u[r + 2], 0x44);
        t[r + 1] = _mm512_shuffle_ps(u[r], u[r + 2], 0xEE);
        t[r + 2] = _mm512_shuffle_ps(u[r + 1], u[r + 3], 0x44);
        t[r + 3] = _mm512_shuffle_ps(u[r + 1], u[r + 3], 0xEE);
    }
    /* t[4g + j] holds, per 128-bit lane L, column 4L + j of rows 4g..4g+3 */
    for (int j = 0; j < 4; j++) {
        __m512 a = _mm512_shuffle_f32x4(t[j], t[4 + j], 0x88), b = _mm512_shuffle_f32x4(t[j], t[4 + j], 0xDD);
        __m512 c = _mm512_shuffle_f32x4(t[8 + j], t[12 + j], 0x88), d = _mm512_shuffle_f32x4(t[8 + j], t[12 + j], 0xDD);
        _mm512_mask_storeu_ps(dst + (int64_t)j * R, lanes, _mm512_shuffle_f32x4(a, c, 0x88));
        _mm512_mask_storeu_ps(dst + (int64_t)(8 + j) * R, lanes, _mm512_shuffle_f32x4(a, c, 0xDD));
        _mm512_mask_storeu_ps(dst + (int64_t)(4 + j) * R, lanes, _mm512_shuffle_f32x4(b, d, 0x88));
        _mm512_mask_storeu_ps(dst + (int64_t)(12 + j) * R, lanes, _mm512_shuffle_f32x4(b, d, 0xDD));
    }
}

/* The x-major (transposing) pack of one panel: w valid rows, kc values each;
 * esz bytes per element of type dt. */
__attribute__((target("avx512f,f16c"))) static void pack_transpose_avx512(const void *src, int64_t sx, int esz,
                                                                          int dt, int64_t w, int64_t kc, int R,
                                                                          float *dst) {
    const char *s = src;
    int64_t sxb = sx * esz, k = 0;
    for (; k + 16 <= kc; k += 16)
        for (int r0 = 0; r0 < R; r0 += 16) {
            int lanes = R - r0 < 16 ? R - r0 : 16, rows = w - r0 > 16 ? 16 : (int)(w - r0);
            if (rows < 0) rows = 0;
            transpose16(s + r0 * sxb + k * esz, sxb, rows, dt, dst + k * R + r0, R, (__mmask16)((1u << lanes) - 1));
        }
    for (; k < kc; k++)
        for (int r = 0; r < R; r++) {
            const char *e = s + r * sxb + k * esz;
            dst[k * R + r] = r >= w ? 0.0f : dt == 0 ? *(const float *)e : load16((const uint16_t *)e, dt == 2);
        }
}
#endif

void gemm_pack_strided(const void *ctx, int64_t x0, int64_t n, int64_t k0, int64_t kc, int R, float *dst) {
    const gemm_strided *m = ctx;
    for (int64_t s = 0; s < n; s += R, dst += R * kc) {
        int64_t w = n - s < R ? n - s : R;
        const float *src = m->p + (x0 + s) * m->sx + k0 * m->sk;
        if (m->sx == 1) { /* k-major source: each k row is R contiguous floats */
            for (int64_t k = 0; k < kc; k++) { /* short rows: a loop, not a memcpy call */
                const float *sr = src + k * m->sk;
                float *dr = dst + k * R;
                for (int64_t r = 0; r < w; r++) dr[r] = sr[r];
                for (int64_t r = w; r < R; r++) dr[r] = 0.0f;
            }
        } else if (m->sk == 1) { /* x-major source: transpose while copying */
#ifdef SDC_X86
            if (R >= 8 && have_avx512()) {
                pack_transpose_avx512(src, m->sx, 4, 0, w, kc, R, dst);
                continue;
            }
#endif
            for (int64_t r = 0; r < w; r++) {
                const float *row = src + r * m->sx;
                for (int64_t k = 0; k < kc; k++) dst[k * R + r] = row[k];
            }
            for (int64_t r = w; r < R; r++)
                for (int64_t k = 0; k < kc; k++) dst[k * R + r] = 0.0f;
        } else {
            for (int64_t k = 0; k < kc; k++)
                for (int64_t r = 0; r < R; r++) dst[k * R + r] = r < w ? src[r * m->sx + k * m->sk] : 0.0f;
        }
    }
}

void gemm_pack_strided16(const void *ctx, int64_t x0, int64_t n, int64_t k0, int64_t kc, int R, float *dst) {
    const gemm_strided16 *m = ctx;
    for (int64_t s = 0; s < n; s += R, dst += R * kc) {
        int64_t w = n - s < R ? n - s : R;
        const uint16_t *src = m->p + (x0 + s) * m->sx + k0 * m->sk;
#ifdef SDC_X86
        if (m->sk == 1 && R >= 8 && have_avx512()) {
            pack_transpose_avx512(src, m->sx, 2, m->bf16 ? 2 : 1, w, kc, R, dst);
            continue;
        }
#endif
        for (int64_t k = 0; k < kc; k++)
            for (int64_t r = 0; r < R; r++) dst[k * R + r] = r < w ? load16(src + r * m->sx + k * m->sk, m->bf16) : 0.0f;
    }
}
