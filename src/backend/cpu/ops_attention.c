/* ops_attention.c - blocked multi-head attention. Each task takes one
 * (batch, head, block of query rows) and computes its scores against all
 * keys, so memory stays at threads x block x Nk floats however large the
 * image. Matches diffusers' AttnProcessor: scores = scale * q k^T (scale as
 * the GEMM alpha), float32 softmax, then scores v. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>

#include "backend/ops.h"

#define ATTN_BLOCK 128

sdc_status op_attention(const float *q, int64_t q_ld, const float *k, const float *v, int64_t kv_ld, int B,
                        int Nq, int Nk, int heads, int dh, float scale, int causal, float *out) {
    int nblk = (Nq + ATTN_BLOCK - 1) / ATTN_BLOCK;
    int64_t tasks = (int64_t)B * heads * nblk;
    int nthr = op_threads();
    if (nthr > tasks) nthr = (int)tasks;
    if (nthr < 1) nthr = 1;
    float *scratch = malloc((size_t)nthr * ATTN_BLOCK * (size_t)Nk * sizeof(float));
    if (!scratch) return sdc_fail(SDC_ERR_NOMEM, "out of memory in attention (%d x %d tokens)", Nq, Nk);
    int64_t out_ld = (int64_t)heads * dh;
    op_flops_add(4.0 * B * heads * (double)Nq * (double)Nk * dh);
    /* many small GEMMs in parallel: keep OpenBLAS single-threaded inside */
    openblas_set_num_threads(1);
#pragma omp parallel for schedule(dynamic) num_threads(nthr)
    for (int64_t task = 0; task < tasks; task++) {
        int blk = (int)(task % nblk);
        int h = (int)(task / nblk % heads);
        int b = (int)(task / nblk / heads);
        int i0 = blk * ATTN_BLOCK, rows = Nq - i0 < ATTN_BLOCK ? Nq - i0 : ATTN_BLOCK;
        float *S = scratch + (size_t)omp_get_thread_num() * ATTN_BLOCK * Nk;
        const float *qb = q + ((int64_t)b * Nq + i0) * q_ld + (int64_t)h * dh;
        const float *kb = k + (int64_t)b * Nk * kv_ld + (int64_t)h * dh;
        const float *vb = v + (int64_t)b * Nk * kv_ld + (int64_t)h * dh;
        float *ob = out + ((int64_t)b * Nq + i0) * out_ld + (int64_t)h * dh;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, Nk, dh, scale, qb, (int)q_ld, kb, (int)kv_ld,
                    0.0f, S, Nk);
        for (int r = 0; r < rows; r++) {
            float *s = S + (int64_t)r * Nk;
            int lim = causal ? i0 + r + 1 : Nk;
            float m = -INFINITY;
            for (int j = 0; j < lim; j++) m = s[j] > m ? s[j] : m;
            float sum = 0.0f;
            for (int j = 0; j < lim; j++) {
                s[j] = expf(s[j] - m);
                sum += s[j];
            }
            for (int j = 0; j < lim; j++) s[j] /= sum;
            for (int j = lim; j < Nk; j++) s[j] = 0.0f;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, dh, Nk, 1.0f, S, Nk, vb, (int)kv_ld, 0.0f, ob,
                    (int)out_ld);
    }
    openblas_set_num_threads(op_threads());
    free(scratch);
    return SDC_OK;
}
