/* gemm_q8.c - the int8 GEMM driver (gemm_q8.h): cache blocking, the
 * activations' quantisation, the split between threads and the tile stores.
 * Loop order (per thread): activation rows in blocks of mc, k in ranges of
 * Q8_KCB blocks (quantise that block of activations once, kept in L2), then
 * each weight panel of 16 channels (its records of the range, 17 KiB, stay
 * in L1) against every MR-row sliver of the block. The weights are read in
 * place, never packed. */
#include <omp.h>
#include <string.h>

#include "backend/cpu/gemm_q8.h"

#define Q8_KCB 32          /* blocks of k per range: 1024 k */
#define Q8_A_BUDGET 262144 /* bytes of quantised activations per block of rows (L2) */

/* Activation rows [i0, i0 + n) of blocks [pb, pb + kb): one packed A block
 * per (sliver of MR rows, block), slivers kb blocks apart. Each sliver's
 * float panel of the whole range is packed at once (kb x 32 x MR floats, in
 * L2), then quantised block by block. */
static void quantize_x(const gemm_q8_desc *d, const q8_arch *ar, int64_t i0, int64_t n, int64_t pb, int64_t kb,
                       float *panel, int32_t *dst) {
    int MR = ar->mr;
    int64_t K = d->w->cols, k0 = pb * Q8_BLOCK, kc = K - k0 < kb * Q8_BLOCK ? K - k0 : kb * Q8_BLOCK;
    for (int64_t s = 0; s < n; s += MR) {
        int64_t w = n - s < MR ? n - s : MR;
        if (d->pack_a) {
            d->pack_a(d->x_ctx, i0 + s, (int)w, pb, kb, MR, dst);
            dst += kb * Q8_A_WORDS(MR);
            continue;
        }
        d->pack_x(d->x_ctx, i0 + s, w, k0, kc, MR, panel);
        for (int64_t blk = 0; blk < kb; blk++, dst += Q8_A_WORDS(MR)) {
            int64_t left = kc - blk * Q8_BLOCK;
            ar->quantize(panel + blk * Q8_BLOCK * MR, left < Q8_BLOCK ? (int)left : Q8_BLOCK, MR, dst);
        }
    }
}

/* the mr x nr part of tile t[MR][16] (rows i.., channels j..) into C: = t +
 * bias on the first k range, else += t */
static void store_tile(const gemm_q8_desc *d, const float *t, int64_t i, int64_t j, int mr, int nr, int first) {
    if (!d->channel_major) {
        for (int r = 0; r < mr; r++) {
            float *y = d->C + (i + r) * d->ldc + j;
            const float *tr = t + r * Q8_PANEL;
            if (first)
                for (int c = 0; c < nr; c++) y[c] = tr[c] + (d->bias ? d->bias[j + c] : 0.0f);
            else
                for (int c = 0; c < nr; c++) y[c] += tr[c];
        }
        return;
    }
    int64_t img = i / d->c_cols, p0 = i % d->c_cols;
    int contiguous = p0 + mr <= d->c_cols; /* the rows (pixels) lie in one image */
    for (int c = 0; c < nr; c++) {
        float bias = first && d->bias ? d->bias[j + c] : 0.0f;
        if (contiguous) {
            float *y = d->C + img * d->c_batch_stride + (j + c) * d->ldc + p0;
            for (int r = 0; r < mr; r++) y[r] = first ? t[r * Q8_PANEL + c] + bias : y[r] + t[r * Q8_PANEL + c];
            continue;
        }
        for (int r = 0; r < mr; r++) {
            int64_t px = i + r;
            float *y = d->C + (px / d->c_cols) * d->c_batch_stride + (j + c) * d->ldc + px % d->c_cols;
            *y = first ? t[r * Q8_PANEL + c] + bias : *y + t[r * Q8_PANEL + c];
        }
    }
}

/* One thread's block of C: activation rows [m0, m1), weight panels [p0, p1). */
static sdc_status q8_serial(const gemm_q8_desc *d, const q8_arch *ar, int64_t m0, int64_t m1, int64_t p0, int64_t p1) {
    const q8_matrix *w = d->w;
    int MR = ar->mr;
    int64_t nb = w->nb, N = w->rows;
    if (m1 <= m0 || p1 <= p0) return SDC_OK;
    float t[Q8_MR_MAX * Q8_PANEL];
    if (nb == 0) { /* K = 0: C = bias */
        memset(t, 0, sizeof t);
        for (int64_t i = m0; i < m1; i += MR)
            for (int64_t p = p0; p < p1; p++) {
                int64_t j = p * Q8_PANEL;
                store_tile(d, t, i, j, m1 - i < MR ? (int)(m1 - i) : MR, N - j < Q8_PANEL ? (int)(N - j) : Q8_PANEL, 1);
            }
        return SDC_OK;
    }
    int64_t kcb = nb < Q8_KCB ? nb : Q8_KCB;
    int64_t mc = Q8_A_BUDGET / (kcb * 4 * Q8_A_WORDS(MR)) * MR; /* rows per block */
    if (mc < MR) mc = MR;
    if (mc > m1 - m0) mc = (m1 - m0 + MR - 1) / MR * MR;
    float *panel = cpu_scratch(0, kcb * Q8_BLOCK * MR);
    int32_t *ap = (int32_t *)cpu_scratch(1, mc / MR * kcb * Q8_A_WORDS(MR));
    if (!panel || !ap) return SDC_ERR_NOMEM;
    for (int64_t ic = m0; ic < m1; ic += mc) {
        int64_t rows = m1 - ic < mc ? m1 - ic : mc;
        for (int64_t pb = 0; pb < nb; pb += Q8_KCB) {
            int64_t kb = nb - pb < Q8_KCB ? nb - pb : Q8_KCB;
            quantize_x(d, ar, ic, rows, pb, kb, panel, ap);
            for (int64_t p = p0; p < p1; p++) {
                const uint8_t *bp = q8_block(w, p, pb);
                int64_t j = p * Q8_PANEL;
                int nr = N - j < Q8_PANEL ? (int)(N - j) : Q8_PANEL;
                for (int64_t s = 0; s < rows; s += MR) {
                    ar->kernel(kb, ap + s / MR * kb * Q8_A_WORDS(MR), bp, t);
                    store_tile(d, t, ic + s, j, rows - s < MR ? (int)(rows - s) : MR, nr, pb == 0);
                }
            }
        }
    }
    return SDC_OK;
}

sdc_status gemm_q8_run(const gemm_q8_desc *d, const q8_arch *ar) {
    int64_t M = d->M, P = d->w->panels;
    int T = omp_in_parallel() || d->threads < 1 ? 1 : d->threads;
    /* split the activation rows (each thread quantises only its own) when
     * there are enough of them, else the weight panels (text encoders: 77
     * tokens; the lowest UNet levels: 64-256 pixels) */
    int64_t slivers = (M + ar->mr - 1) / ar->mr;
    int tm = T, tn = 1;
    if (M < 48 * T) tm = 1, tn = T;
    if (tm > slivers) tm = (int)(slivers > 0 ? slivers : 1);
    if (tn > P) tn = (int)(P > 0 ? P : 1);
    sdc_status st = SDC_OK;
    if (tm * tn <= 1) {
        st = q8_serial(d, ar, 0, M, 0, P);
    } else {
        int failed = 0;
#pragma omp parallel num_threads(tm *tn) reduction(| : failed)
        {
            int t = omp_get_thread_num(), a = t / tn, b = t % tn;
            int64_t m0 = slivers * a / tm * ar->mr, m1 = slivers * (a + 1) / tm * ar->mr;
            if (m1 > M) m1 = M;
            failed |= q8_serial(d, ar, m0, m1, P * b / tn, P * (b + 1) / tn) != SDC_OK;
        }
        if (failed) st = SDC_ERR_NOMEM;
    }
    if (st)
        return sdc_fail(st, "out of memory for int8 GEMM scratch (%lld x %lld x %lld)", (long long)M,
                        (long long)d->w->rows, (long long)d->w->cols);
    return SDC_OK;
}
