/* gemm.c - the GEMM driver: cache blocking, edge tiles, the split of one GEMM
 * between the threads of one OpenMP team, and per-thread scratch (the
 * packers are in gemm_pack.c).
 * Loop order (per thread): rows in blocks of mc, k in blocks of kc (pack the
 * A block), columns in blocks of nc (pack the B block), then every A sliver
 * against every B sliver. */
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/gemm.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/ops.h"

/* ---- per-thread scratch, freed when the thread ends */
#define SCRATCH_SLOTS 10
typedef struct {
    float *p[SCRATCH_SLOTS];
    int64_t n[SCRATCH_SLOTS];
} scratch_set;

static pthread_key_t g_scratch_key;
static pthread_once_t g_scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *v) {
    scratch_set *s = v;
    for (int i = 0; i < SCRATCH_SLOTS; i++) free(s->p[i]);
    free(s);
}

static void scratch_key_init(void) { pthread_key_create(&g_scratch_key, scratch_free); }

float *cpu_scratch(int slot, int64_t nfloats) {
    pthread_once(&g_scratch_once, scratch_key_init);
    scratch_set *s = pthread_getspecific(g_scratch_key);
    if (!s) {
        if (!(s = calloc(1, sizeof *s))) return NULL;
        if (pthread_setspecific(g_scratch_key, s)) {
            free(s);
            return NULL;
        }
    }
    if (s->n[slot] < nfloats) {
        free(s->p[slot]);
        s->n[slot] = 0;
        size_t bytes = ((size_t)nfloats * sizeof(float) + 63) & ~(size_t)63;
        if (!(s->p[slot] = aligned_alloc(64, bytes))) return NULL;
        s->n[slot] = nfloats;
    }
    return s->p[slot];
}

/* ---- one thread's block of C */
static void edge_tile(const gemm_desc *d, const gemm_arch *ar, int64_t kc, const float *ap, const float *adir,
                      const float *bp, int64_t i, int64_t j, int64_t mr, int64_t nr, int load_c) {
    float t[32 * 32];
    int NR = ar->nr;
    edge_tile_fill(d, t, ar->mr, NR, i, j, mr, nr, load_c);
    if (adir) ar->kernel_direct(kc, adir, d->lda, bp, t, NR, 1, NULL, NULL);
    else ar->kernel(kc, ap, bp, t, NR, 1, NULL, NULL);
    edge_tile_store(d, t, NR, i, j, mr, nr);
}

sdc_status gemm_serial(const gemm_desc *d, const gemm_arch *ar, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
    int MR = ar->mr, NR = ar->nr;
    /* A read in place (rows whose stride is not a multiple of 2 KiB, which
     * would pile them into the same L1 sets): no row blocking needed, so B
     * is packed once per (k, column) block */
    int direct = !d->a_packed && d->a_direct && ar->kernel_direct && d->lda % 512;
    int64_t KC = ar->kc, MC = direct ? m1 - m0 : ar->mc, NC = ar->nc;
    if (m1 <= m0 || n1 <= n0) return SDC_OK;
    if (d->K == 0) { /* C = bias (or unchanged) */
        if (!d->accumulate)
            for (int64_t i = m0; i < m1; i++)
                for (int64_t j = n0; j < n1; j++)
                    *c_at(d, i, j) = (d->row_bias ? d->row_bias[i] : 0.0f) +
                                     (d->col_bias ? *col_bias_at(d, j) : 0.0f);
        return SDC_OK;
    }
    if (gemm_use_bf16(d, ar)) return gemm_serial_bf16(d, ar, m0, m1, n0, n1);
    int64_t mc_max = MC < m1 - m0 ? MC : m1 - m0, nc_max = NC < n1 - n0 ? NC : n1 - n0;
    int64_t kc_max = KC < d->K ? KC : d->K;
    float *ap = d->a_packed ? NULL : cpu_scratch(0, (direct ? MR : (mc_max + MR - 1) / MR * MR) * kc_max);
    float *bp = d->b_packed ? NULL : cpu_scratch(1, ((nc_max + NR - 1) / NR) * NR * kc_max);
    if ((!ap && !d->a_packed) || (!bp && !d->b_packed)) return SDC_ERR_NOMEM;
    /* A read in place: only a last partial sliver of rows is packed */
    gemm_strided adesc = {d->a_direct, d->lda, 1};
    gemm_pack_fn pack_a = d->a_direct ? gemm_pack_strided : d->pack_a;
    const void *a_ctx = d->a_direct ? (const void *)&adesc : d->a_ctx;
    for (int64_t ic = m0; ic < m1; ic += MC) {
        int64_t mc = m1 - ic < MC ? m1 - ic : MC;
        for (int64_t pc = 0; pc < d->K; pc += KC) {
            int64_t kc = d->K - pc < KC ? d->K - pc : KC;
            int load_c = pc > 0 || d->accumulate;
            if (d->a_packed) ap = (float *)d->a_packed + ic * d->K + pc * MR; /* slivers MR*K apart */
            else if (!direct) pack_a(a_ctx, ic, mc, pc, kc, MR, ap);
            else if (mc % MR) gemm_pack_strided(&adesc, ic + mc / MR * MR, mc % MR, pc, kc, MR, ap);
            for (int64_t jc = n0; jc < n1; jc += NC) {
                int64_t nc = n1 - jc < NC ? n1 - jc : NC;
                if (!d->b_packed) d->pack_b(d->b_ctx, jc, nc, pc, kc, NR, bp);
                for (int64_t ir = 0; ir < mc; ir += MR) {
                    const float *as = direct ? ap : ap + ir * (d->a_packed ? d->K : kc);
                    int64_t i = ic + ir, mr = mc - ir < MR ? mc - ir : MR;
                    const float *adir = direct && mr == MR ? d->a_direct + i * d->lda + pc : NULL;
                    for (int64_t jr = 0; jr < nc; jr += NR) {
                        const float *bs = d->b_packed ? d->b_packed + (jc + jr) * d->K + pc * NR : bp + jr * kc;
                        int64_t j = jc + jr, nr = nc - jr < NR ? nc - jr : NR;
                        int whole = mr == MR && nr == NR && (d->c_cols <= 0 || j % d->c_cols + NR <= d->c_cols);
                        if (!whole)
                            edge_tile(d, ar, kc, as, adir, bs, i, j, mr, nr, load_c);
                        else if (adir)
                            ar->kernel_direct(kc, adir, d->lda, bs, c_at(d, i, j), d->ldc, load_c,
                                              d->row_bias ? d->row_bias + i : NULL, col_bias_at(d, j));
                        else
                            ar->kernel(kc, as, bs, c_at(d, i, j), d->ldc, load_c,
                                       d->row_bias ? d->row_bias + i : NULL, col_bias_at(d, j));
                    }
                }
            }
        }
    }
    return SDC_OK;
}

/* Split C into a tm x tn grid of thread blocks: duplicated packing costs
 * tn * M*K (every column block packs all its rows of A) + tm * K*N. */
static void choose_grid(const gemm_desc *d, const gemm_arch *ar, int T, int *tm, int *tn) {
    int64_t tiles_m = (d->M + ar->mr - 1) / ar->mr, tiles_n = (d->N + ar->nr - 1) / ar->nr;
    double best = 1e300;
    *tm = 1;
    *tn = 1;
    for (int a = 1; a <= T; a++) {
        if (T % a) continue;
        int b = T / a;
        if (a > tiles_m || b > tiles_n) continue;
        /* imbalance: the largest block's share of tiles */
        double big = (double)((tiles_m + a - 1) / a) * (double)((tiles_n + b - 1) / b);
        double cost = big * ar->mr * ar->nr * (double)d->K + (double)b * d->M * d->K + (double)a * d->K * d->N;
        if (cost < best) best = cost, *tm = a, *tn = b;
    }
}

sdc_status gemm_run(const gemm_desc *d, const gemm_arch *ar) {
    int T = omp_in_parallel() || d->threads < 1 ? 1 : d->threads;
    int tm = 1, tn = 1;
    if (T > 1) choose_grid(d, ar, T, &tm, &tn);
    sdc_status st = SDC_OK;
    if (tm * tn == 1) {
        st = gemm_serial(d, ar, 0, d->M, 0, d->N);
    } else {
        int64_t tiles_m = (d->M + ar->mr - 1) / ar->mr, tiles_n = (d->N + ar->nr - 1) / ar->nr;
        int failed = 0;
#pragma omp parallel num_threads(tm * tn) reduction(| : failed)
        {
            int t = omp_get_thread_num(), a = t / tn, b = t % tn;
            int64_t m0 = tiles_m * a / tm * ar->mr, m1 = tiles_m * (a + 1) / tm * ar->mr;
            int64_t n0 = tiles_n * b / tn * ar->nr, n1 = tiles_n * (b + 1) / tn * ar->nr;
            if (m1 > d->M) m1 = d->M;
            if (n1 > d->N) n1 = d->N;
            failed |= gemm_serial(d, ar, m0, m1, n0, n1) != SDC_OK;
        }
        if (failed) st = SDC_ERR_NOMEM;
    }
    if (st) return sdc_fail(st, "out of memory for GEMM scratch (%lld x %lld x %lld)", (long long)d->M,
                            (long long)d->N, (long long)d->K);
    return SDC_OK;
}
