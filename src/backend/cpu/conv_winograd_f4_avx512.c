/* conv_winograd_f4_avx512.c - F(4x4, 3x3)'s input and output transforms with
 * AVX-512, sixteen tiles of a tile row to a vector.
 *
 * Why: with 64 channels (TAESD) a tile's transforms cost as much as its 36
 * small GEMMs when written as portable loops, because the tiles' columns are
 * 4 apart in memory: the portable code gathers them one float at a time. Here
 * a row of 66 input columns is read with five vector loads, transformed down
 * the six rows while still contiguous (B^T d), then split into its four column
 * phases with eight permutes and transformed across (. B). The output side
 * runs the same steps backwards and adds the bias, an optional residual and
 * ReLU while the tile is in registers, so a TAESD block needs no separate
 * passes over its 64-channel activations.
 *
 * The arithmetic is the portable code's, operation for operation (no FMA
 * contraction: the build is ISO C, -ffp-contract=off), so both give the same
 * bits and the goldens do not move. */
#include "backend/cpu/winograd_job.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f")))

int wino4_avx512_arch(const gemm_arch *ar) { return ar->vec == 2 && ar->nr == 32; }

int wino4_avx512_usable(const wino_job *J) { return J->v->m == 4 && wino4_avx512_arch(J->ar) && J->tw % 16 == 0; }

/* How many channels (input) or output channels ahead the transforms
 * prefetch: a group takes ~100 cycles, DRAM answers in a few hundred. */
#ifndef PREFETCH_AHEAD
#define PREFETCH_AHEAD 3
#endif

/* Lanes [0, lanes) whose column xs + lane lies in [0, W). */
static inline __mmask16 col_mask(int64_t xs, int W, int lanes) {
    int64_t lo = xs < 0 ? -xs : 0, hi = W - xs;
    if (hi > lanes) hi = lanes;
    if (hi <= lo) return 0;
    return (__mmask16)((((uint32_t)1 << hi) - 1) & ~(((uint32_t)1 << lo) - 1));
}

/* base + off as an address only: off may be -1 at the top-left corner, where
 * the masked load reads nothing there (no out-of-object pointer arithmetic). */
static inline const float *addr(const float *base, int64_t off) {
    return (const float *)((uintptr_t)base + (uintptr_t)(off * (int64_t)sizeof(float)));
}

/* B^T applied across six vectors (in4_cols / in4_rows, same order). */
static inline AVX512 void bt6(const __m512 *d, __m512 *o) {
    const __m512 k4 = _mm512_set1_ps(4.0f), k5 = _mm512_set1_ps(5.0f), km4 = _mm512_set1_ps(-4.0f),
                 k2 = _mm512_set1_ps(2.0f), km2 = _mm512_set1_ps(-2.0f);
    o[0] = _mm512_add_ps(_mm512_sub_ps(_mm512_mul_ps(k4, d[0]), _mm512_mul_ps(k5, d[2])), d[4]);
    o[1] = _mm512_add_ps(_mm512_add_ps(_mm512_sub_ps(_mm512_mul_ps(km4, d[1]), _mm512_mul_ps(k4, d[2])), d[3]), d[4]);
    o[2] = _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(_mm512_mul_ps(k4, d[1]), _mm512_mul_ps(k4, d[2])), d[3]), d[4]);
    o[3] = _mm512_add_ps(_mm512_add_ps(_mm512_sub_ps(_mm512_mul_ps(km2, d[1]), d[2]), _mm512_mul_ps(k2, d[3])), d[4]);
    o[4] = _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(_mm512_mul_ps(k2, d[1]), d[2]), _mm512_mul_ps(k2, d[3])), d[4]);
    o[5] = _mm512_add_ps(_mm512_sub_ps(_mm512_mul_ps(k4, d[1]), _mm512_mul_ps(k5, d[3])), d[5]);
}

/* q[p][k] = t[4k + p] for the 64 floats in t[0..3], k < 16. */
static inline AVX512 void deinterleave4(const __m512 *t, __m512 *q) {
    const __m512i i01 = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 1, 5, 9, 13, 17, 21, 25, 29);
    const __m512i i23 = _mm512_setr_epi32(2, 6, 10, 14, 18, 22, 26, 30, 3, 7, 11, 15, 19, 23, 27, 31);
    __m512 s01 = _mm512_permutex2var_ps(t[0], i01, t[1]), s23 = _mm512_permutex2var_ps(t[0], i23, t[1]);
    __m512 u01 = _mm512_permutex2var_ps(t[2], i01, t[3]), u23 = _mm512_permutex2var_ps(t[2], i23, t[3]);
    q[0] = _mm512_shuffle_f32x4(s01, u01, 0x44);
    q[1] = _mm512_shuffle_f32x4(s01, u01, 0xee);
    q[2] = _mm512_shuffle_f32x4(s23, u23, 0x44);
    q[3] = _mm512_shuffle_f32x4(s23, u23, 0xee);
}

/* The inverse: t[4k + p] = q[p][k]. */
static inline AVX512 void interleave4(const __m512 *q, __m512 *t) {
    const __m512i lo = _mm512_setr_epi32(0, 8, 16, 24, 1, 9, 17, 25, 2, 10, 18, 26, 3, 11, 19, 27);
    const __m512i hi = _mm512_setr_epi32(4, 12, 20, 28, 5, 13, 21, 29, 6, 14, 22, 30, 7, 15, 23, 31);
    __m512 s01 = _mm512_shuffle_f32x4(q[0], q[1], 0x44), s23 = _mm512_shuffle_f32x4(q[2], q[3], 0x44);
    __m512 u01 = _mm512_shuffle_f32x4(q[0], q[1], 0xee), u23 = _mm512_shuffle_f32x4(q[2], q[3], 0xee);
    t[0] = _mm512_permutex2var_ps(s01, lo, s23);
    t[1] = _mm512_permutex2var_ps(s01, hi, s23);
    t[2] = _mm512_permutex2var_ps(u01, lo, u23);
    t[3] = _mm512_permutex2var_ps(u01, hi, u23);
}

/* Sixteen tiles of one channel: input rows y0 .. y0+5, columns x0 .. x0+65,
 * into V at dst (transformed position xi at dst + xi * vstride). */
static AVX512 void in_group(const float *xc, int H, int W, int y0, int x0, float *dst, int64_t vstride,
                            const float *next) {
    __m512 t[6][5]; /* B^T d: transformed row i, columns x0 + 16 v .. */
    /* the same rows of a later channel, planes away: too far for the
     * hardware prefetcher, which sees only 66-float runs */
    if (next)
        for (int r = 0; r < 6; r++) {
            int y = y0 + r;
            if (y < 0 || y >= H) continue;
            const char *p = (const char *)addr(next, (int64_t)y * W + (x0 < 0 ? 0 : x0));
            for (int l = 0; l < 5; l++) _mm_prefetch(p + 64 * l, _MM_HINT_T0);
        }
    for (int v = 0; v < 5; v++) {
        int64_t xs = (int64_t)x0 + 16 * v;
        __mmask16 m = col_mask(xs, W, v == 4 ? 2 : 16);
        __m512 d[6], o[6];
        for (int r = 0; r < 6; r++) {
            int y = y0 + r;
            d[r] = y >= 0 && y < H && m ? _mm512_maskz_loadu_ps(m, addr(xc, (int64_t)y * W + xs)) : _mm512_setzero_ps();
        }
        bt6(d, o);
        for (int i = 0; i < 6; i++) t[i][v] = o[i];
    }
    for (int i = 0; i < 6; i++) {
        __m512 c[6], o[6];
        deinterleave4(t[i], c);
        __m512i e = _mm512_castps_si512(t[i][4]); /* columns x0 + 64 and x0 + 65 in lanes 0, 1 */
        c[4] = _mm512_castsi512_ps(_mm512_alignr_epi32(e, _mm512_castps_si512(c[0]), 1));
        c[5] = _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_alignr_epi32(e, e, 1), _mm512_castps_si512(c[1]), 1));
        bt6(c, o);
        for (int mm = 0; mm < 6; mm++) _mm512_storeu_ps(dst + (i * 6 + mm) * vstride, o[mm]);
    }
}

void wino4_avx512_input(const wino_job *J, const tile_run *runs, int nruns, float *vp, int64_t vstride) {
    int NR = J->ar->nr;
    for (int c = 0; c < J->C; c++)
        for (int q = 0; q < nruns; q++) {
            const tile_run *ru = &runs[q];
            const float *xc = J->x + (ru->b * J->C + c) * J->H * J->W;
            for (int k = 0; k < ru->cnt; k += 16) {
                int64_t tt = ru->k0 + k;
                float *dst = vp + (tt / NR) * NR * J->C + (int64_t)c * NR + tt % NR;
                in_group(xc, J->H, J->W, 4 * ru->ty - 1, 4 * (ru->tx0 + k) - 1, dst, vstride,
                         c + PREFETCH_AHEAD < J->C ? xc + PREFETCH_AHEAD * (int64_t)J->H * J->W : NULL);
            }
        }
}

/* A^T applied down six vectors: four (out4_cols / out4_row without bias). */
static inline AVX512 void at6(const __m512 *v, __m512 *s) {
    __m512 a = _mm512_add_ps(v[1], v[2]), b = _mm512_sub_ps(v[1], v[2]);
    __m512 c = _mm512_add_ps(v[3], v[4]), d = _mm512_sub_ps(v[3], v[4]);
    s[0] = _mm512_add_ps(_mm512_add_ps(v[0], a), c);
    s[1] = _mm512_add_ps(b, _mm512_mul_ps(_mm512_set1_ps(2.0f), d));
    s[2] = _mm512_add_ps(a, _mm512_mul_ps(_mm512_set1_ps(4.0f), c));
    s[3] = _mm512_add_ps(_mm512_add_ps(b, _mm512_mul_ps(_mm512_set1_ps(8.0f), d)), v[5]);
}

/* Sixteen tiles of one output channel from M at mm (position xi at
 * mm + xi * mstride) into the plane yo: rows y0 .., columns x0 .. x0+63. */
static AVX512 void out_group(const wino_job *J, const float *mm, int64_t mstride, float bo, float *yo,
                             const float *ro, int y0, int x0, int64_t ahead) {
    if (ahead) /* the same rows of a later output channel (and its residual), to be written / read */
        for (int i = 0; i < 4 && y0 + i < J->H; i++) {
            int64_t off = (int64_t)(y0 + i) * J->W + x0 + ahead;
            for (int l = 0; l < 4; l++) {
                _mm_prefetch((const char *)(yo + off) + 64 * l, _MM_HINT_ET0);
                if (ro) _mm_prefetch((const char *)(ro + off) + 64 * l, _MM_HINT_T0);
            }
        }
    __m512 s[4][6]; /* A^T m: output row i, transformed column j */
    for (int j = 0; j < 6; j++) {
        __m512 v[6], o[4];
        for (int r = 0; r < 6; r++) v[r] = _mm512_loadu_ps(mm + (r * 6 + j) * mstride);
        at6(v, o);
        for (int i = 0; i < 4; i++) s[i][j] = o[i];
    }
    const __m512 bias = _mm512_set1_ps(bo), zero = _mm512_setzero_ps();
    for (int i = 0; i < 4 && y0 + i < J->H; i++) {
        __m512 q[4], t[4];
        at6(s[i], q);
        for (int p = 0; p < 4; p++) q[p] = _mm512_add_ps(q[p], bias);
        interleave4(q, t);
        int64_t row = (int64_t)(y0 + i) * J->W;
        for (int v = 0; v < 4; v++) {
            int64_t xs = (int64_t)x0 + 16 * v;
            __mmask16 m = col_mask(xs, J->W, 16);
            if (!m) break;
            __m512 r = t[v];
            if (ro) r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(m, ro + row + xs));
            if (J->relu) r = _mm512_mask_mov_ps(r, _mm512_cmp_ps_mask(r, zero, _CMP_LT_OQ), zero);
            _mm512_mask_storeu_ps(yo + row + xs, m, r);
        }
    }
}

void wino4_avx512_output(const wino_job *J, const tile_run *runs, int nruns, int n, const float *m,
                         int64_t mstride) {
    int64_t HW = (int64_t)J->H * J->W;
    for (int o = 0; o < J->O; o++) {
        float bo = J->bias ? J->bias[o] : 0.0f;
        for (int q = 0; q < nruns; q++) {
            const tile_run *ru = &runs[q];
            float *yo = J->y + (ru->b * J->O + o) * HW;
            const float *ro = J->res ? J->res + (ru->b * J->O + o) * HW : NULL;
            for (int k = 0; k < ru->cnt; k += 16)
                out_group(J, m + (int64_t)o * n + ru->k0 + k, mstride, bo, yo, ro, 4 * ru->ty, 4 * (ru->tx0 + k),
                          o + PREFETCH_AHEAD < J->O ? PREFETCH_AHEAD * HW : 0);
        }
    }
}

#else /* not x86-64: never usable */
int wino4_avx512_arch(const gemm_arch *ar) { return 0; }
int wino4_avx512_usable(const wino_job *J) { return 0; }
void wino4_avx512_input(const wino_job *J, const tile_run *runs, int nruns, float *vp, int64_t vstride) {}
void wino4_avx512_output(const wino_job *J, const tile_run *runs, int nruns, int n, const float *m,
                         int64_t mstride) {}
#endif
