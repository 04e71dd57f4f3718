/* cuda_attention.cu - fused multi-head attention: softmax(scale Q K^T) V
 * without ever storing the Nq x Nk matrix.
 *
 * Tensor-core kernel (f16/bf16, dh <= 160): a block of 4 warps owns 64 query
 * rows of one (batch, head); each warp keeps its 16 rows of Q as wmma
 * fragments and walks the keys in tiles staged in shared memory:
 * S = Q K^T (wmma, f32 accumulate) -> shared memory, online softmax in base 2
 * on two lanes per row (cu_shared.h, the same functions the CPU tests run),
 * rescale of the f32 output rows by exp2(m_old - m_new), O += P V (wmma).
 * Head dims are zero-padded to a multiple of 16; keys past Nk and padded
 * rows/dims are zeros, masked out of the softmax.
 *
 * f32 kernel (any dtype, dh <= 512: f32 activations and the VAE's one 512-wide
 * head): a warp per query row, keys staged in shared memory as f32, the
 * online softmax per key. Correct and simple rather than fast. */
#include <mma.h>
#include <stdint.h>

#include "backend/cuda/cu_shared.h"
#include "backend/cuda/cuda_common.cuh"

using namespace nvcuda;

template <int DHP>
struct att_cfg {
    static constexpr int BK = DHP >= 128 ? 32 : 64; /* = cu_att_bk(DHP), checked at launch */
    static constexpr int LDH = DHP + 8, LDS = BK + 4, LDP = BK + 8, LDO = DHP + 4;
};

/* rows [r0, r0+nr) of a tile of 2-byte elements, zero past `valid` rows and past dh columns */
template <typename T, int DHP, int LDH>
__device__ __forceinline__ void load_tile(T *dst, const T *src, int64_t ld, int nr, int valid, int dh, int vec) {
    if (vec) {
        constexpr int C8 = DHP / 8;
        for (int idx = threadIdx.x; idx < nr * C8; idx += blockDim.x) {
            int r = idx / C8, d = (idx % C8) * 8;
            uint4 val = make_uint4(0, 0, 0, 0);
            if (r < valid && d < dh) val = *(const uint4 *)(src + (int64_t)r * ld + d);
            *(uint4 *)(dst + r * LDH + d) = val;
        }
    } else {
        for (int idx = threadIdx.x; idx < nr * DHP; idx += blockDim.x) {
            int r = idx / DHP, d = idx % DHP;
            dst[r * LDH + d] = (r < valid && d < dh) ? src[(int64_t)r * ld + d] : T(0.0f);
        }
    }
}

template <typename T, int DHP>
__global__ void __launch_bounds__(32 * CU_ATT_WARPS)
    flash_kernel(const T *q, int64_t q_ld, const T *k, const T *v, int64_t kv_ld, int Nq, int Nk, int heads, int dh,
                 float sl2, int causal, T *out, int vec) {
    typedef att_cfg<DHP> cfg;
    constexpr int BQ = CU_ATT_BQ, BK = cfg::BK, LDH = cfg::LDH, LDS = cfg::LDS, LDP = cfg::LDP, LDO = cfg::LDO;
    extern __shared__ __align__(128) unsigned char smem[];
    T *Qs = (T *)smem;       /* BQ x LDH */
    T *Ks = Qs + BQ * LDH;   /* BK x LDH */
    T *Vs = Ks + BK * LDH;   /* BK x LDH */
    T *Ps = Vs + BK * LDH;   /* BQ x LDP */
    float *Ss = (float *)(Ps + BQ * LDP); /* BQ x LDS */
    float *Os = Ss + BQ * LDS;            /* BQ x LDO */

    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int q0 = blockIdx.x * BQ;
    const int bh = blockIdx.y, b = bh / heads, h = bh % heads;
    const T *qb = q + (int64_t)b * Nq * q_ld + (int64_t)h * dh;
    const T *kb = k + (int64_t)b * Nk * kv_ld + (int64_t)h * dh;
    const T *vb = v + (int64_t)b * Nk * kv_ld + (int64_t)h * dh;

    load_tile<T, DHP, LDH>(Qs, qb + (int64_t)q0 * q_ld, q_ld, BQ, Nq - q0, dh, vec);
    for (int idx = threadIdx.x; idx < BQ * LDO; idx += blockDim.x) Os[idx] = 0.0f;
    __syncthreads();

    wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> qf[DHP / 16];
#pragma unroll
    for (int kk = 0; kk < DHP / 16; kk++) wmma::load_matrix_sync(qf[kk], Qs + warp * 16 * LDH + kk * 16, LDH);

    /* this lane's share of the softmax: row r of the warp's 16, half of the columns */
    const int r = lane >> 1, half = lane & 1;
    const int i = q0 + warp * 16 + r;
    float *srow = Ss + (warp * 16 + r) * LDS;
    T *prow = Ps + (warp * 16 + r) * LDP;
    float *orow = Os + (warp * 16 + r) * LDO;
    float m = -INFINITY, l = 0.0f;

    const int kend = cu_att_key_end(q0, Nq, Nk, causal);
    for (int j0 = 0; j0 < kend; j0 += BK) {
        __syncthreads(); /* every warp is done with the previous K/V tile */
        load_tile<T, DHP, LDH>(Ks, kb + (int64_t)j0 * kv_ld, kv_ld, BK, Nk - j0, dh, vec);
        load_tile<T, DHP, LDH>(Vs, vb + (int64_t)j0 * kv_ld, kv_ld, BK, Nk - j0, dh, vec);
        __syncthreads();

        /* S[16, BK] = Q K^T for this warp's rows */
#pragma unroll
        for (int nt = 0; nt < BK / 16; nt++) {
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
            wmma::fill_fragment(acc, 0.0f);
#pragma unroll
            for (int kk = 0; kk < DHP / 16; kk++) {
                wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> kf;
                wmma::load_matrix_sync(kf, Ks + nt * 16 * LDH + kk * 16, LDH);
                wmma::mma_sync(acc, qf[kk], kf, acc);
            }
            wmma::store_matrix_sync(Ss + warp * 16 * LDS + nt * 16, acc, LDS, wmma::mem_row_major);
        }
        __syncwarp();

        /* online softmax, two lanes per row */
        const int c0 = half * (BK / 2), c1 = c0 + BK / 2;
        float tmax = cu_att_tile_max(srow, c0, c1, j0, i, Nk, causal, sl2);
        tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 1));
        float mnew;
        float corr = cu_att_new_max(m, tmax, &mnew);
        float sum = cu_att_tile_exp(srow, c0, c1, j0, i, Nk, causal, sl2, mnew);
        sum += __shfl_xor_sync(0xffffffffu, sum, 1);
        l = l * corr + sum;
        m = mnew;
        for (int c = c0; c < c1; c++) prow[c] = T(srow[c]);
        for (int d = half * (DHP / 2); d < (half + 1) * (DHP / 2); d++) orow[d] *= corr;
        __syncwarp();

        /* O[16, DHP] += P[16, BK] V[BK, DHP] */
#pragma unroll
        for (int dt = 0; dt < DHP / 16; dt++) {
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
            wmma::load_matrix_sync(acc, Os + warp * 16 * LDO + dt * 16, LDO, wmma::mem_row_major);
#pragma unroll
            for (int kk = 0; kk < BK / 16; kk++) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> pf;
                wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> vf;
                wmma::load_matrix_sync(pf, Ps + warp * 16 * LDP + kk * 16, LDP);
                wmma::load_matrix_sync(vf, Vs + kk * 16 * LDH + dt * 16, LDH);
                wmma::mma_sync(acc, pf, vf, acc);
            }
            wmma::store_matrix_sync(Os + warp * 16 * LDO + dt * 16, acc, LDO, wmma::mem_row_major);
        }
        __syncwarp();
    }

    /* out[b, i, h*dh + d] = O / l, a row at a time across the warp (coalesced) */
    float inv = l > 0.0f ? 1.0f / l : 0.0f;
    const int64_t old = (int64_t)heads * dh;
    for (int rr = 0; rr < 16; rr++) {
        float ir = __shfl_sync(0xffffffffu, inv, 2 * rr);
        int ii = q0 + warp * 16 + rr;
        if (ii >= Nq) break;
        T *orow_g = out + ((int64_t)b * Nq + ii) * old + (int64_t)h * dh;
        const float *os = Os + (warp * 16 + rr) * LDO;
        for (int d = lane; d < dh; d += 32) orow_g[d] = T(os[d] * ir);
    }
}

template <typename T, int DHP>
static sdc_status launch_flash(const void *q, int64_t q_ld, const void *k, const void *v, int64_t kv_ld, int B,
                               int Nq, int Nk, int heads, int dh, float sl2, int causal, void *out, int vec) {
    const char *op = "cu_attention";
    if (att_cfg<DHP>::BK != cu_att_bk(DHP)) return sdc_fail(SDC_ERR_ARG, "%s: tile table mismatch", op);
    int smem = (int)cu_att_smem_bytes(DHP);
    static int attr_set; /* one per instantiation */
    if (!attr_set) {
        CU_CK(op, cudaFuncSetAttribute(flash_kernel<T, DHP>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
        attr_set = 1;
    }
    dim3 grid((unsigned)((Nq + CU_ATT_BQ - 1) / CU_ATT_BQ), (unsigned)(B * heads));
    flash_kernel<T, DHP><<<grid, 32 * CU_ATT_WARPS, smem, cu__stream_get()>>>(
        (const T *)q, q_ld, (const T *)k, (const T *)v, kv_ld, Nq, Nk, heads, dh, sl2, causal, (T *)out, vec);
    CU_LAUNCH_CK(op);
    return SDC_OK;
}

template <typename T>
static sdc_status flash_dispatch(int dhp, const void *q, int64_t q_ld, const void *k, const void *v, int64_t kv_ld,
                                 int B, int Nq, int Nk, int heads, int dh, float sl2, int causal, void *out, int vec) {
#define FLASH_CASE(D) \
    case D: return launch_flash<T, D>(q, q_ld, k, v, kv_ld, B, Nq, Nk, heads, dh, sl2, causal, out, vec)
    switch (dhp) {
        FLASH_CASE(32);
        FLASH_CASE(48);
        FLASH_CASE(64);
        FLASH_CASE(80);
        FLASH_CASE(96);
        FLASH_CASE(128);
        FLASH_CASE(160);
    }
#undef FLASH_CASE
    return sdc_fail(SDC_ERR_UNSUPPORTED, "cu_attention: no tensor-core kernel for head dim %d", dh);
}

/* ---- f32 kernel: a warp per query row ---- */

#define F32_WARPS 8
#define F32_MAXT 16          /* dh <= 32 * 16 = 512 */
#define F32_TILE_FLOATS 6144 /* K and V tiles: 2 x 6144 floats = 48 KiB */

template <typename T>
__global__ void __launch_bounds__(32 * F32_WARPS)
    attn_f32_kernel(const T *q, int64_t q_ld, const T *k, const T *v, int64_t kv_ld, int Nq, int Nk, int heads,
                    int dh, float sl2, int causal, T *out, int kt) {
    extern __shared__ float fsm[];
    float *Kt = fsm, *Vt = fsm + kt * dh;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int bh = blockIdx.y, b = bh / heads, h = bh % heads;
    const int i0 = blockIdx.x * F32_WARPS, i = i0 + warp;
    const int active = i < Nq;
    const T *kb = k + (int64_t)b * Nk * kv_ld + (int64_t)h * dh;
    const T *vb = v + (int64_t)b * Nk * kv_ld + (int64_t)h * dh;
    float qr[F32_MAXT], o[F32_MAXT];
#pragma unroll
    for (int t = 0; t < F32_MAXT; t++) {
        int d = lane + 32 * t;
        qr[t] = active && d < dh ? cu_ld(q + ((int64_t)b * Nq + i) * q_ld + (int64_t)h * dh + d) : 0.0f;
        o[t] = 0.0f;
    }
    float m = -INFINITY, l = 0.0f;
    int last = i0 + F32_WARPS - 1 < Nq - 1 ? i0 + F32_WARPS - 1 : Nq - 1;
    int kend = causal ? (last + 1 < Nk ? last + 1 : Nk) : Nk;
    for (int j0 = 0; j0 < kend; j0 += kt) {
        int nk = kend - j0 < kt ? kend - j0 : kt;
        __syncthreads();
        for (int idx = threadIdx.x; idx < nk * dh; idx += blockDim.x) {
            int jj = idx / dh, d = idx % dh;
            Kt[idx] = cu_ld(kb + (int64_t)(j0 + jj) * kv_ld + d);
            Vt[idx] = cu_ld(vb + (int64_t)(j0 + jj) * kv_ld + d);
        }
        __syncthreads();
        if (!active) continue;
        for (int jj = 0; jj < nk; jj++) {
            if (!cu_att_key_valid(j0 + jj, i, Nk, causal)) continue; /* uniform across the warp */
            const float *kr = Kt + jj * dh, *vr = Vt + jj * dh;
            float s = 0.0f;
#pragma unroll
            for (int t = 0; t < F32_MAXT; t++) {
                int d = lane + 32 * t;
                if (d < dh) s += qr[t] * kr[d];
            }
            for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
            float sc = s * sl2, mnew = fmaxf(m, sc);
            float corr = exp2f(m - mnew), p = exp2f(sc - mnew);
            l = l * corr + p;
#pragma unroll
            for (int t = 0; t < F32_MAXT; t++) {
                int d = lane + 32 * t;
                o[t] = o[t] * corr + (d < dh ? p * vr[d] : 0.0f);
            }
            m = mnew;
        }
    }
    if (!active) return;
    float inv = l > 0.0f ? 1.0f / l : 0.0f;
    T *orow = out + ((int64_t)b * Nq + i) * ((int64_t)heads * dh) + (int64_t)h * dh;
#pragma unroll
    for (int t = 0; t < F32_MAXT; t++) {
        int d = lane + 32 * t;
        if (d < dh) cu_st(orow + d, o[t] * inv);
    }
}

sdc_status cu_attention(const void *q, int64_t q_ld, const void *k, const void *v, int64_t kv_ld, cu_dtype at,
                        int B, int Nq, int Nk, int heads, int dh, float scale, int causal, void *out) {
    const char *op = "cu_attention";
    CU_READY(op);
    if (!cu__dtype_ok(at) || B <= 0 || Nq < 0 || Nk <= 0 || heads <= 0 || dh <= 0 || !q || !k || !v || !out ||
        q_ld < (int64_t)heads * dh || kv_ld < (int64_t)heads * dh || (int64_t)B * heads > 65535)
        return sdc_fail(SDC_ERR_ARG, "%s: bad argument (B=%d Nq=%d Nk=%d heads=%d dh=%d q_ld=%lld kv_ld=%lld)", op, B,
                        Nq, Nk, heads, dh, (long long)q_ld, (long long)kv_ld);
    if (Nq == 0) return SDC_OK;
    float sl2 = scale * 1.4426950408889634f;
    int dhp = cu_att_dh_pad(dh);
    if (at != CU_F32 && dhp) {
        uintptr_t al = (uintptr_t)q | (uintptr_t)k | (uintptr_t)v;
        int vec = dh % 8 == 0 && q_ld % 8 == 0 && kv_ld % 8 == 0 && al % 16 == 0;
        if (at == CU_F16)
            return flash_dispatch<__half>(dhp, q, q_ld, k, v, kv_ld, B, Nq, Nk, heads, dh, sl2, causal, out, vec);
        return flash_dispatch<__nv_bfloat16>(dhp, q, q_ld, k, v, kv_ld, B, Nq, Nk, heads, dh, sl2, causal, out, vec);
    }
    if (dh > 32 * F32_MAXT) return sdc_fail(SDC_ERR_UNSUPPORTED, "%s: head dim %d > %d", op, dh, 32 * F32_MAXT);
    int kt = F32_TILE_FLOATS / dh;
    size_t smem = (size_t)2 * kt * dh * sizeof(float);
    dim3 grid((unsigned)((Nq + F32_WARPS - 1) / F32_WARPS), (unsigned)(B * heads));
    CU_DISPATCH(at, T, {
        attn_f32_kernel<T><<<grid, 32 * F32_WARPS, smem, cu__stream_get()>>>(
            (const T *)q, q_ld, (const T *)k, (const T *)v, kv_ld, Nq, Nk, heads, dh, sl2, causal, (T *)out, kt);
    });
    CU_LAUNCH_CK(op);
    return SDC_OK;
}
