/* cuda_norm.cu - GroupNorm (+SiLU fused) and LayerNorm on the device.
 * GroupNorm spreads each group over several blocks (the VAE has only 32
 * groups of up to millions of elements): a statistics pass writes shifted
 * sums per chunk (sum of x-s and (x-s)^2 around the group's first value s,
 * summed in double, so the variance does not cancel), then the apply pass
 * reduces its group's chunks and writes y = x*a + b (and SiLU) per plane.
 * LayerNorm takes one warp per row, two passes over the row. */
#include "backend/cuda/cuda_common.cuh"

#define GN_THREADS 256
#define GN_MAX_CHUNKS 64

__device__ __forceinline__ double warp_sum_d(double v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float warp_sum_f(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* grid (nchunk, B*G): part[(bg*nchunk + chunk)*2 + {0,1}] = sums of (x-s), (x-s)^2; shift[bg] = s */
template <typename T>
__global__ void gn_stats_kernel(const T *x, int64_t n, int nchunk, double *part, float *shift) {
    int64_t bg = blockIdx.y;
    const T *xg = x + bg * n;
    int64_t len = (n + nchunk - 1) / nchunk, i0 = blockIdx.x * len, i1 = i0 + len < n ? i0 + len : n;
    float s = cu_ld(xg);
    float a = 0.0f, q = 0.0f;
    for (int64_t i = i0 + threadIdx.x; i < i1; i += blockDim.x) {
        float d = cu_ld(xg + i) - s;
        a += d;
        q += d * d;
    }
    double da = warp_sum_d((double)a), dq = warp_sum_d((double)q);
    __shared__ double sa[GN_THREADS / 32], sq[GN_THREADS / 32];
    int w = threadIdx.x >> 5, l = threadIdx.x & 31;
    if (l == 0) sa[w] = da, sq[w] = dq;
    __syncthreads();
    if (threadIdx.x == 0) {
        double ta = 0, tq = 0;
        for (int i = 0; i < (int)(blockDim.x >> 5); i++) ta += sa[i], tq += sq[i];
        part[(bg * nchunk + blockIdx.x) * 2] = ta;
        part[(bg * nchunk + blockIdx.x) * 2 + 1] = tq;
        if (blockIdx.x == 0) shift[bg] = s;
    }
}

/* grid (HW chunks, B*C) */
template <typename T, typename W>
__global__ void gn_apply_kernel(const T *x, T *y, int C, int64_t HW, int cpg, int nchunk, const double *part,
                                const float *shift, float eps, const W *gamma, const W *beta, int silu) {
    int64_t bc = blockIdx.y;
    int c = (int)(bc % C);
    int64_t bg = bc / cpg; /* = b*G + c/cpg */
    __shared__ float sab[2];
    if (threadIdx.x == 0) {
        double ta = 0, tq = 0;
        for (int i = 0; i < nchunk; i++) ta += part[(bg * nchunk + i) * 2], tq += part[(bg * nchunk + i) * 2 + 1];
        double n = (double)cpg * (double)HW, ms = ta / n, var = tq / n - ms * ms;
        if (var < 0) var = 0;
        double mean = (double)shift[bg] + ms, rstd = 1.0 / sqrt(var + (double)eps);
        double g = gamma ? (double)cu_ld(gamma + c) : 1.0, be = beta ? (double)cu_ld(beta + c) : 0.0;
        sab[0] = (float)(rstd * g);
        sab[1] = (float)(be - mean * rstd * g);
    }
    __syncthreads();
    float a = sab[0], b = sab[1];
    const T *xp = x + bc * HW;
    T *yp = y + bc * HW;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < HW; i += (int64_t)gridDim.x * blockDim.x) {
        float v = cu_ld(xp + i) * a + b;
        if (silu) v = v / (1.0f + expf(-v));
        cu_st(yp + i, v);
    }
}

sdc_status cu_group_norm(const void *x, void *y, cu_dtype at, int B, int C, int64_t HW, int G, float eps,
                         const void *gamma, const void *beta, cu_dtype wt, int silu) {
    const char *op = "cu_group_norm";
    CU_READY(op);
    if (!cu__dtype_ok(at) || !cu__dtype_ok(wt) || B <= 0 || C <= 0 || HW <= 0 || G <= 0 || C % G || !x || !y ||
        (int64_t)B * C > 65535)
        return sdc_fail(SDC_ERR_ARG, "%s: bad argument (B=%d C=%d HW=%lld G=%d)", op, B, C, (long long)HW, G);
    int cpg = C / G;
    int64_t n = (int64_t)cpg * HW;
    int nchunk = (int)((n + 8 * GN_THREADS - 1) / (8 * GN_THREADS)); /* >= 8 elements a thread */
    if (nchunk > GN_MAX_CHUNKS) nchunk = GN_MAX_CHUNKS;
    if (nchunk < 1) nchunk = 1;
    int64_t BG = (int64_t)B * G;
    void *scr = NULL;
    SDC_TRY(cu__scratch(2, (size_t)BG * nchunk * 2 * sizeof(double) + (size_t)BG * sizeof(float), &scr, op));
    double *part = (double *)scr;
    float *shift = (float *)(part + BG * nchunk * 2);
    cudaStream_t s = cu__stream_get();
    int64_t hwblocks = (HW + 4 * GN_THREADS - 1) / (4 * GN_THREADS);
    if (hwblocks > 1024) hwblocks = 1024;
    CU_DISPATCH(at, T, {
        gn_stats_kernel<T><<<dim3((unsigned)nchunk, (unsigned)BG), GN_THREADS, 0, s>>>((const T *)x, n, nchunk, part, shift);
        CU_DISPATCH(wt, WT, {
            gn_apply_kernel<T, WT><<<dim3((unsigned)hwblocks, (unsigned)(B * C)), GN_THREADS, 0, s>>>(
                (const T *)x, (T *)y, C, HW, cpg, nchunk, part, shift, eps, (const WT *)gamma, (const WT *)beta, silu);
        });
    });
    CU_LAUNCH_CK(op);
    return SDC_OK;
}

/* one warp a row, 4 rows a block */
template <typename T, typename W>
__global__ void ln_kernel(const T *x, T *y, int64_t rows, int D, float eps, const W *gamma, const W *beta) {
    int64_t r = blockIdx.x * (int64_t)(blockDim.x >> 5) + (threadIdx.x >> 5);
    int l = threadIdx.x & 31;
    if (r >= rows) return;
    const T *xr = x + r * D;
    T *yr = y + r * D;
    float s = 0.0f;
    for (int i = l; i < D; i += 32) s += cu_ld(xr + i);
    float mean = warp_sum_f(s) / (float)D;
    float q = 0.0f;
    for (int i = l; i < D; i += 32) {
        float d = cu_ld(xr + i) - mean;
        q += d * d;
    }
    float rstd = rsqrtf(warp_sum_f(q) / (float)D + eps);
    for (int i = l; i < D; i += 32) {
        float v = (cu_ld(xr + i) - mean) * rstd;
        if (gamma) v *= cu_ld(gamma + i);
        if (beta) v += cu_ld(beta + i);
        cu_st(yr + i, v);
    }
}

sdc_status cu_layer_norm(const void *x, void *y, cu_dtype at, int64_t rows, int D, float eps, const void *gamma,
                         const void *beta, cu_dtype wt) {
    const char *op = "cu_layer_norm";
    CU_READY(op);
    if (!cu__dtype_ok(at) || !cu__dtype_ok(wt) || rows < 0 || D <= 0 || (rows && (!x || !y)))
        return sdc_fail(SDC_ERR_ARG, "%s: bad argument (rows=%lld D=%d)", op, (long long)rows, D);
    if (rows == 0) return SDC_OK;
    int64_t blocks = (rows + 3) / 4;
    if (blocks > INT32_MAX) return sdc_fail(SDC_ERR_ARG, "%s: too many rows", op);
    CU_DISPATCH(at, T, CU_DISPATCH(wt, WT, {
        ln_kernel<T, WT><<<(unsigned)blocks, 128, 0, cu__stream_get()>>>((const T *)x, (T *)y, rows, D, eps,
                                                                          (const WT *)gamma, (const WT *)beta);
    }));
    CU_LAUNCH_CK(op);
    return SDC_OK;
}
