/* ops_attention.c - multi-head attention, blocked flash-style: memory stays
 * at a (keys block x queries block) tile per thread at any image size.
 *
 * Each task takes one (batch, head, block of queries) and walks the keys in
 * blocks, computing the scores transposed, S^T[keys, queries] = K . Q^T, so
 * that each query is a vector lane: the softmax max/sum run down columns
 * with no horizontal reductions, and S^T is written by the GEMM directly in
 * the packed-panel layout the second GEMM, O^T[dh, queries] += V^T . P^T,
 * reads. The online softmax (running max m, sum l, rescale of O^T by
 * exp(m_old - m_new)) is exactly the two-pass softmax when the keys fit in
 * one block (all cross-attention and the lower UNet levels). As diffusers'
 * AttnProcessor: float32 scores scaled by `scale`, float32 softmax. */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "backend/cpu/gemm.h"
#include "backend/cpu/profile.h"
#include "backend/cpu/vec_math.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/ops.h"

#define KEYS_BLOCK 512
#define QUERY_SLIVERS 4 /* queries per task = 4 x the kernel's NR */

/* One block of keys for NR-wide slivers of queries:
 * s[nsl][nk][NR] (scores, replaced by exp(scale*s - m_new)); m, l, corr per
 * query lane. first: no earlier block (corr unused). */
typedef void (*softmax_fn)(float *s, int nsl, int nk, int NR, float scale, float *m, float *l, float *corr,
                           int first);

static void softmax_generic(float *s, int nsl, int nk, int NR, float scale, float *m, float *l, float *corr,
                            int first) {
    for (int q = 0; q < nsl * NR; q++) {
        float *col = s + (int64_t)(q / NR) * nk * NR + q % NR;
        float mx = -INFINITY;
        for (int r = 0; r < nk; r++) mx = fmaxf(mx, col[(int64_t)r * NR]);
        mx *= scale;
        float mn = first ? mx : fmaxf(m[q], mx), c = first ? 1.0f : expf(m[q] - mn), sum = 0.0f;
        for (int r = 0; r < nk; r++) {
            float p = col[(int64_t)r * NR] * scale - mn;
            p = p < -87.3f ? 0.0f : expf(p);
            col[(int64_t)r * NR] = p;
            sum += p;
        }
        l[q] = first ? sum : l[q] * c + sum;
        m[q] = mn;
        corr[q] = c;
    }
}

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx512f"))) static void softmax_avx512(float *s, int nsl, int nk, int NR, float scale,
                                                              float *m, float *l, float *corr, int first) {
    __m512 vs = _mm512_set1_ps(scale);
    for (int q = 0; q < nsl * NR; q += 16) {
        float *col = s + (int64_t)(q / NR) * nk * NR + q % NR;
        __m512 mx = _mm512_set1_ps(-INFINITY);
        for (int r = 0; r < nk; r++) mx = _mm512_max_ps(mx, _mm512_loadu_ps(col + (int64_t)r * NR));
        mx = _mm512_mul_ps(mx, vs);
        __m512 mo = _mm512_loadu_ps(m + q);
        __m512 mn = first ? mx : _mm512_max_ps(mo, mx);
        __m512 c = first ? _mm512_set1_ps(1.0f) : vexp512(_mm512_sub_ps(mo, mn));
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0; /* 4 partial sums: shorter rounding chains */
        int r = 0;
        for (; r + 4 <= nk; r += 4) {
            float *p = col + (int64_t)r * NR;
            __m512 e0 = vexp512(_mm512_fmsub_ps(_mm512_loadu_ps(p), vs, mn));
            __m512 e1 = vexp512(_mm512_fmsub_ps(_mm512_loadu_ps(p + NR), vs, mn));
            __m512 e2 = vexp512(_mm512_fmsub_ps(_mm512_loadu_ps(p + 2 * NR), vs, mn));
            __m512 e3 = vexp512(_mm512_fmsub_ps(_mm512_loadu_ps(p + 3 * NR), vs, mn));
            _mm512_storeu_ps(p, e0);
            _mm512_storeu_ps(p + NR, e1);
            _mm512_storeu_ps(p + 2 * NR, e2);
            _mm512_storeu_ps(p + 3 * NR, e3);
            a0 = _mm512_add_ps(a0, e0);
            a1 = _mm512_add_ps(a1, e1);
            a2 = _mm512_add_ps(a2, e2);
            a3 = _mm512_add_ps(a3, e3);
        }
        for (; r < nk; r++) {
            float *p = col + (int64_t)r * NR;
            __m512 e = vexp512(_mm512_fmsub_ps(_mm512_loadu_ps(p), vs, mn));
            _mm512_storeu_ps(p, e);
            a0 = _mm512_add_ps(a0, e);
        }
        __m512 sum = _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3));
        __m512 lv = first ? sum : _mm512_fmadd_ps(_mm512_loadu_ps(l + q), c, sum);
        _mm512_storeu_ps(l + q, lv);
        _mm512_storeu_ps(m + q, mn);
        _mm512_storeu_ps(corr + q, c);
    }
}

__attribute__((target("avx2,fma"))) static void softmax_avx2(float *s, int nsl, int nk, int NR, float scale,
                                                             float *m, float *l, float *corr, int first) {
    __m256 vs = _mm256_set1_ps(scale);
    for (int q = 0; q < nsl * NR; q += 8) {
        float *col = s + (int64_t)(q / NR) * nk * NR + q % NR;
        __m256 mx = _mm256_set1_ps(-INFINITY);
        for (int r = 0; r < nk; r++) mx = _mm256_max_ps(mx, _mm256_loadu_ps(col + (int64_t)r * NR));
        mx = _mm256_mul_ps(mx, vs);
        __m256 mo = _mm256_loadu_ps(m + q);
        __m256 mn = first ? mx : _mm256_max_ps(mo, mx);
        __m256 c = first ? _mm256_set1_ps(1.0f) : vexp256(_mm256_sub_ps(mo, mn));
        __m256 a0 = _mm256_setzero_ps(), a1 = a0;
        int r = 0;
        for (; r + 2 <= nk; r += 2) {
            float *p = col + (int64_t)r * NR;
            __m256 e0 = vexp256(_mm256_fmsub_ps(_mm256_loadu_ps(p), vs, mn));
            __m256 e1 = vexp256(_mm256_fmsub_ps(_mm256_loadu_ps(p + NR), vs, mn));
            _mm256_storeu_ps(p, e0);
            _mm256_storeu_ps(p + NR, e1);
            a0 = _mm256_add_ps(a0, e0);
            a1 = _mm256_add_ps(a1, e1);
        }
        for (; r < nk; r++) {
            float *p = col + (int64_t)r * NR;
            __m256 e = vexp256(_mm256_fmsub_ps(_mm256_loadu_ps(p), vs, mn));
            _mm256_storeu_ps(p, e);
            a0 = _mm256_add_ps(a0, e);
        }
        __m256 sum = _mm256_add_ps(a0, a1);
        __m256 lv = first ? sum : _mm256_fmadd_ps(_mm256_loadu_ps(l + q), c, sum);
        _mm256_storeu_ps(l + q, lv);
        _mm256_storeu_ps(m + q, mn);
        _mm256_storeu_ps(corr + q, c);
    }
}
#endif

static softmax_fn pick_softmax(const gemm_arch *ar) {
#if defined(__x86_64__) || defined(__i386__)
    if (ar->vec == 2) return softmax_avx512;
    if (ar->vec == 1) return softmax_avx2;
#endif
    return softmax_generic;
}

typedef struct {
    const float *q, *k, *v;
    int64_t q_ld, kv_ld, out_ld;
    int Nq, Nk, dh, causal;
    float scale;
    float *out;
    const gemm_arch *ar;
    softmax_fn softmax;
    float *vp; /* non-causal: V^T of every (batch, head) packed once, [B][heads][dhp * Nk] */
    int heads;
    int bf16;  /* the context's compute precision: both products on bfloat16 operands */
} attn_job;

/* Keys per block: a multiple of the row tile, so only the last block has an edge. */
static int key_block(int nkeys, int mr) {
    int nkb = (nkeys + KEYS_BLOCK - 1) / KEYS_BLOCK, BK = (nkeys + nkb - 1) / nkb;
    return (BK + mr - 1) / mr * mr;
}

/* V^T of keys [0, nkeys) of one head as A panels of av->mr rows, block by block. */
static void pack_vt(const attn_job *J, const float *vh, int nkeys, const gemm_arch *av, float *Vp) {
    int BK = key_block(nkeys, J->ar->mr), dhp = (J->dh + av->mr - 1) / av->mr * av->mr;
    for (int k0 = 0; k0 < nkeys; k0 += BK) {
        int nk = nkeys - k0 < BK ? nkeys - k0 : BK;
        gemm_strided vt = {vh + (int64_t)k0 * J->kv_ld, 1, J->kv_ld};
        gemm_pack_strided(&vt, 0, J->dh, 0, nk, av->mr, Vp + (int64_t)k0 * dhp);
    }
}

/* One (batch b, head h, queries [q0, q0+nq)) task; returns nonzero on OOM. */
static int attn_task(const attn_job *J, int b, int h, int q0, int nq) {
    const gemm_arch *ar = J->ar, *av = gemm_arch_for_rows(ar, J->dh);
    int NR = ar->nr, nsl = (nq + NR - 1) / NR, nqp = nsl * NR, dh = J->dh;
    int nkeys = J->causal && q0 + nq < J->Nk ? q0 + nq : J->Nk; /* later keys are masked for every query */
    int BK = key_block(nkeys, ar->mr), nkb = (nkeys + BK - 1) / BK;
    int dhp = (dh + av->mr - 1) / av->mr * av->mr;
    float *S = cpu_scratch(2, (int64_t)BK * nqp);
    float *O = cpu_scratch(3, (int64_t)dh * nqp + 3 * nqp + (int64_t)nqp * dh + (J->vp ? 0 : (int64_t)dhp * nkeys));
    if (!S || !O) return 1;
    float *m = O + (int64_t)dh * nqp, *l = m + nqp, *corr = l + nqp;
    float *Qp = corr + nqp;             /* Q^T panels [nsl][dh][NR] */
    float *Vp = J->vp ? J->vp + ((int64_t)b * J->heads + h) * dhp * J->Nk
                      : Qp + (int64_t)nqp * dh; /* V^T per key block: [block][dhp/mr][nk][mr] */
    const float *qb = J->q + ((int64_t)b * J->Nq + q0) * J->q_ld + (int64_t)h * dh;
    const float *kh = J->k + (int64_t)b * J->Nk * J->kv_ld + (int64_t)h * dh;
    const float *vh = J->v + (int64_t)b * J->Nk * J->kv_ld + (int64_t)h * dh;
    gemm_strided qt = {qb, J->q_ld, 1};
    gemm_pack_strided(&qt, 0, nq, 0, dh, NR, Qp);
    if (!J->vp) pack_vt(J, vh, nkeys, av, Vp);
    for (int kb = 0; kb < nkb; kb++) {
        int k0 = kb * BK, nk = nkeys - k0 < BK ? nkeys - k0 : BK;
        const float *kbase = kh + (int64_t)k0 * J->kv_ld;
        /* S^T[nk, nq] = K . Q^T, written as NR-wide panels (sliver s at S + s*NR*nk) */
        if (nq % NR) memset(S + (int64_t)(nsl - 1) * NR * nk, 0, (size_t)NR * nk * sizeof(float));
        gemm_strided ka = {kbase, J->kv_ld, 1};
        gemm_desc ds = {.M = nk, .N = nq, .K = dh, .pack_a = gemm_pack_strided, .a_ctx = &ka, .a_direct = kbase,
                        .lda = J->kv_ld, .b_packed = Qp, .C = S, .ldc = NR, .c_cols = NR,
                        .c_batch_stride = (int64_t)NR * nk, .bf16 = J->bf16};
        if (gemm_serial(&ds, ar, 0, nk, 0, nq)) return 1;
        if (J->causal)
            for (int i = 0; i < nq; i++)
                for (int r = q0 + i + 1 - k0; r < nk; r++)
                    if (r >= 0) S[(int64_t)(i / NR) * NR * nk + (int64_t)r * NR + i % NR] = -INFINITY;
        J->softmax(S, nsl, nk, NR, J->scale, m, l, corr, kb == 0);
        if (kb > 0)
            for (int d = 0; d < dh; d++)
                for (int i = 0; i < nq; i++) O[(int64_t)d * nqp + i] *= corr[i];
        /* O^T[dh, nq] (+)= V^T . P^T with P^T the panels just written */
        gemm_desc dp = {.M = dh, .N = nq, .K = nk, .a_packed = Vp + (int64_t)k0 * dhp, .b_packed = S, .C = O,
                        .ldc = nqp, .accumulate = kb > 0, .bf16 = J->bf16};
        if (gemm_serial(&dp, av, 0, dh, 0, nq)) return 1;
    }
    float *ob = J->out + ((int64_t)b * J->Nq + q0) * J->out_ld + (int64_t)h * dh;
    for (int i = 0; i < nq; i++) {
        float inv = 1.0f / l[i];
        for (int d = 0; d < dh; d++) ob[(int64_t)i * J->out_ld + d] = O[(int64_t)d * nqp + i] * inv;
    }
    return 0;
}

sdc_status cpu_attention(op_ctx *cx, const float *q, int64_t q_ld, const float *k, const float *v, int64_t kv_ld, int B,
                        int Nq, int Nk, int heads, int dh, float scale, int causal, float *out) {
    PROF_BEGIN();
    const gemm_arch *ar = gemm_arch_get();
    attn_job J = {q,     k,  v,  q_ld, kv_ld, (int64_t)heads * dh, Nq, Nk, dh, causal, scale, out, ar,
                  pick_softmax(ar), NULL, heads, cx->compute == OP_BF16};
    int BQ = QUERY_SLIVERS * ar->nr, nqb = (Nq + BQ - 1) / BQ;
    int64_t tasks = (int64_t)B * heads * nqb;
    double flops = 4.0 * B * heads * (double)Nq * (double)Nk * dh;
    op_flops_add(flops);
    int nthr = omp_in_parallel() ? 1 : cx->threads, failed = 0;
    if (nthr > tasks) nthr = (int)tasks;
    /* V^T is shared by all query blocks of a head: pack it once (causal
     * tasks see different key counts and pack their own) */
    const gemm_arch *av = gemm_arch_for_rows(ar, dh);
    int64_t dhp = (dh + av->mr - 1) / av->mr * av->mr;
    if (!causal && nqb > 1) {
        J.vp = cpu_scratch(4, (int64_t)B * heads * dhp * Nk);
        if (!J.vp) return sdc_fail(SDC_ERR_NOMEM, "out of memory in attention (%d x %d tokens)", Nq, Nk);
#pragma omp parallel for schedule(dynamic) num_threads(nthr)
        for (int bh = 0; bh < B * heads; bh++)
            pack_vt(&J, v + (int64_t)(bh / heads) * Nk * kv_ld + (int64_t)(bh % heads) * dh, Nk, av,
                    J.vp + (int64_t)bh * dhp * Nk);
    }
#pragma omp parallel for schedule(dynamic) num_threads(nthr) reduction(| : failed)
    for (int64_t t = 0; t < tasks; t++) {
        int qb = (int)(t % nqb), h = (int)(t / nqb % heads), b = (int)(t / nqb / heads);
        int q0 = qb * BQ, nq = Nq - q0 < BQ ? Nq - q0 : BQ;
        failed |= attn_task(&J, b, h, q0, nq);
    }
    PROF_END(PROF_ATTENTION, flops);
    if (failed) return sdc_fail(SDC_ERR_NOMEM, "out of memory in attention (%d x %d tokens)", Nq, Nk);
    return SDC_OK;
}
