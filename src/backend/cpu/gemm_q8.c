/* gemm_q8.c - the int8 GEMM driver (gemm_q8.h): cache blocking, packing,
 * the split between threads and the tile stores.
 * Loop order (per thread): columns in panels of Q8_NC, k in ranges of
 * Q8_KCB blocks (quantise the activation panel once, kept in L2), rows in
 * slivers of MR (pack the weight sliver with its scales and corrections, kept
 * in L1), then the sliver against every column sliver of the panel. The
 * weights are read in place as stored (int8 rows); only their block side
 * data is expanded per sliver. */
#include <omp.h>
#include <string.h>

#include "backend/cpu/gemm_q8.h"

#define Q8_KCB 32 /* blocks of k per range: 1024 k */
#define Q8_NC 256 /* columns per activation panel: 256 x 1024 k = 288 KiB packed */

/* Weight rows [i0, i0 + mr) (mr <= MR; the rest zero) of blocks [pb, pb + kb) */
static void pack_w(const q8_matrix *w, int64_t i0, int mr, int MR, int64_t pb, int64_t kb, int32_t *dst) {
    int64_t ldq = w->nb * Q8_BLOCK;
    for (int64_t blk = 0; blk < kb; blk++, dst += Q8_A_WORDS(MR)) {
        int64_t b = pb + blk;
        for (int r = 0; r < MR; r++) {
            if (r >= mr) {
                dst[r] = 0;
                dst[MR + r] = 0; /* +0.0f */
                for (int u = 0; u < 8; u++) dst[2 * MR + u * MR + r] = 0;
                continue;
            }
            const int8_t *q = w->q + (i0 + r) * ldq + b * Q8_BLOCK;
            int32_t sum = 0;
            for (int k = 0; k < Q8_BLOCK; k++) sum += q[k];
            dst[r] = -128 * sum;
            float sw = gemm_half_to_float(w->d[(i0 + r) * w->nb + b]);
            memcpy(&dst[MR + r], &sw, 4);
            for (int u = 0; u < 8; u++) memcpy(&dst[2 * MR + u * MR + r], q + 4 * u, 4);
        }
    }
}

/* Activation columns [j0, j0 + n) of blocks [pb, pb + kb): one packed B
 * block per (sliver, block), slivers kb blocks apart. */
static void pack_x(const gemm_q8_desc *d, int64_t j0, int64_t n, int64_t pb, int64_t kb, float *panel, uint8_t *dst) {
    int64_t K = d->w->cols;
    for (int64_t s = 0; s < n; s += Q8_NR) {
        int64_t w = n - s < Q8_NR ? n - s : Q8_NR;
        for (int64_t blk = 0; blk < kb; blk++, dst += Q8_B_BYTES) {
            int64_t k0 = (pb + blk) * Q8_BLOCK;
            int kc = K - k0 < Q8_BLOCK ? (int)(K - k0) : Q8_BLOCK;
            d->pack_x(d->x_ctx, j0 + s, w, k0, kc, Q8_NR, panel);
            q8_quantize_panel(panel, kc, dst);
        }
    }
}

/* C(i, j) for the tile's element */
static inline float *q8_c_at(const gemm_q8_desc *d, int64_t i, int64_t j) {
    if (d->transposed) return d->C + j * d->ldc + i;
    if (d->c_cols > 0) return d->C + (j / d->c_cols) * d->c_batch_stride + i * d->ldc + j % d->c_cols;
    return d->C + i * d->ldc + j;
}

/* the mr x nr part of tile t[MR][NR] into C: = t + bias on the first k range, else += t */
static void store_tile(const gemm_q8_desc *d, const float *t, int64_t i, int64_t j, int mr, int nr, int first) {
    if (d->transposed) {
        for (int c = 0; c < nr; c++) {
            float *y = d->C + (j + c) * d->ldc + i;
            for (int r = 0; r < mr; r++)
                y[r] = first ? t[r * Q8_NR + c] + (d->bias ? d->bias[i + r] : 0.0f) : y[r] + t[r * Q8_NR + c];
        }
        return;
    }
    int contiguous = d->c_cols <= 0 || j % d->c_cols + nr <= d->c_cols;
    for (int r = 0; r < mr; r++) {
        float bias = first && d->bias ? d->bias[i + r] : 0.0f;
        if (contiguous) {
            float *y = q8_c_at(d, i + r, j);
            for (int c = 0; c < nr; c++) y[c] = first ? t[r * Q8_NR + c] + bias : y[c] + t[r * Q8_NR + c];
        } else {
            for (int c = 0; c < nr; c++) {
                float *y = q8_c_at(d, i + r, j + c);
                *y = first ? t[r * Q8_NR + c] + bias : *y + t[r * Q8_NR + c];
            }
        }
    }
}

/* One thread's block of C: rows [m0, m1), columns [n0, n1). */
static sdc_status q8_serial(const gemm_q8_desc *d, const q8_arch *ar, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
    int MR = ar->mr;
    int64_t nb = d->w->nb;
    if (m1 <= m0 || n1 <= n0) return SDC_OK;
    int64_t kcb = nb < Q8_KCB ? nb : Q8_KCB, ncmax = n1 - n0 < Q8_NC ? n1 - n0 : Q8_NC;
    int64_t nslv = (ncmax + Q8_NR - 1) / Q8_NR;
    /* scratch (floats): the float panel of one block, the weight sliver, the activation panel */
    float *panel = cpu_scratch(0, Q8_BLOCK * Q8_NR + Q8_A_WORDS(MR) * kcb);
    uint8_t *xp = (uint8_t *)cpu_scratch(1, (nslv * kcb * Q8_B_BYTES + 3) / 4);
    if (!panel || !xp) return SDC_ERR_NOMEM;
    int32_t *ap = (int32_t *)(panel + Q8_BLOCK * Q8_NR);
    float t[12 * Q8_NR];
    if (nb == 0) { /* K = 0: C = bias */
        memset(t, 0, sizeof t);
        for (int64_t i = m0; i < m1; i += MR)
            for (int64_t j = n0; j < n1; j += Q8_NR)
                store_tile(d, t, i, j, m1 - i < MR ? (int)(m1 - i) : MR, n1 - j < Q8_NR ? (int)(n1 - j) : Q8_NR, 1);
        return SDC_OK;
    }
    for (int64_t jc = n0; jc < n1; jc += Q8_NC) {
        int64_t nc = n1 - jc < Q8_NC ? n1 - jc : Q8_NC;
        for (int64_t pb = 0; pb < nb; pb += Q8_KCB) {
            int64_t kb = nb - pb < Q8_KCB ? nb - pb : Q8_KCB;
            pack_x(d, jc, nc, pb, kb, panel, xp);
            for (int64_t i = m0; i < m1; i += MR) {
                int mr = m1 - i < MR ? (int)(m1 - i) : MR;
                pack_w(d->w, i, mr, MR, pb, kb, ap);
                for (int64_t jr = 0; jr < nc; jr += Q8_NR) {
                    int nr = nc - jr < Q8_NR ? (int)(nc - jr) : Q8_NR;
                    ar->kernel(kb, ap, xp + (jr / Q8_NR) * kb * Q8_B_BYTES, t);
                    store_tile(d, t, i, jc + jr, mr, nr, pb == 0);
                }
            }
        }
    }
    return SDC_OK;
}

sdc_status gemm_q8_run(const gemm_q8_desc *d, const q8_arch *ar) {
    int64_t M = d->w->rows, N = d->N;
    int T = omp_in_parallel() || d->threads < 1 ? 1 : d->threads;
    /* split the columns (each thread packs only its own activations) when
     * there are enough of them, else the rows (text encoders: 77 tokens) */
    int64_t tiles_m = (M + ar->mr - 1) / ar->mr, tiles_n = (N + Q8_NR - 1) / Q8_NR;
    int tn = T, tm = 1;
    if (tiles_n < 4 * T && tiles_m >= tiles_n) tn = 1, tm = T;
    if (tm > tiles_m) tm = (int)(tiles_m > 0 ? tiles_m : 1);
    if (tn > tiles_n) tn = (int)(tiles_n > 0 ? tiles_n : 1);
    sdc_status st = SDC_OK;
    if (tm * tn <= 1) {
        st = q8_serial(d, ar, 0, M, 0, N);
    } else {
        int failed = 0;
#pragma omp parallel num_threads(tm *tn) reduction(| : failed)
        {
            int t = omp_get_thread_num(), a = t / tn, b = t % tn;
            int64_t m0 = tiles_m * a / tm * ar->mr, m1 = tiles_m * (a + 1) / tm * ar->mr;
            int64_t n0 = tiles_n * b / tn * Q8_NR, n1 = tiles_n * (b + 1) / tn * Q8_NR;
            if (m1 > M) m1 = M;
            if (n1 > N) n1 = N;
            failed |= q8_serial(d, ar, m0, m1, n0, n1) != SDC_OK;
        }
        if (failed) st = SDC_ERR_NOMEM;
    }
    if (st)
        return sdc_fail(st, "out of memory for int8 GEMM scratch (%lld x %lld x %lld)", (long long)M, (long long)N,
                        (long long)d->w->cols);
    return SDC_OK;
}
