/* cuda_elementwise.cu - activations (SiLU, erf GELU, QuickGELU, ReLU, GEGLU,
 * the tanh soft clamp), adds and scales, the per-channel bias, nearest
 * upsampling, NCHW <-> NHWC and the sinusoidal timestep embedding.
 * Memory-bound grid-stride loops with f32 math on every dtype; index maps
 * shared with the tests via cu_shared.h. */
#include "backend/cuda/cu_shared.h"
#include "backend/cuda/cuda_common.cuh"

#define GRID_LOOP(i, n) \
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (n); i += (int64_t)gridDim.x * blockDim.x)

enum { ACT_SILU, ACT_GELU, ACT_QUICK_GELU, ACT_RELU };

__device__ __forceinline__ float act1(int kind, float x) {
    if (kind == ACT_SILU) return x / (1.0f + expf(-x));
    if (kind == ACT_GELU) return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
    if (kind == ACT_RELU) return x < 0.0f ? 0.0f : x; /* a NaN passes, as torch.relu keeps it */
    return x * (1.0f / (1.0f + expf(-1.702f * x)));
}

template <typename T>
__global__ void act_kernel(T *x, int64_t n, int kind) {
    GRID_LOOP(i, n) cu_st(x + i, act1(kind, cu_ld(x + i)));
}

static sdc_status activation(const char *op, int kind, void *x, cu_dtype at, int64_t n) {
    CU_READY(op);
    if (!cu__dtype_ok(at) || n < 0 || (n && !x)) return sdc_fail(SDC_ERR_ARG, "%s: bad argument (n=%lld)", op, (long long)n);
    if (n == 0) return SDC_OK;
    CU_DISPATCH(at, T, { act_kernel<T><<<cu__blocks(n, 256), 256, 0, cu__stream_get()>>>((T *)x, n, kind); });
    CU_LAUNCH_CK(op);
    return SDC_OK;
}

sdc_status cu_silu(void *x, cu_dtype at, int64_t n) { return activation("cu_silu", ACT_SILU, x, at, n); }
sdc_status cu_gelu(void *x, cu_dtype at, int64_t n) { return activation("cu_gelu", ACT_GELU, x, at, n); }
sdc_status cu_quick_gelu(void *x, cu_dtype at, int64_t n) { return activation("cu_quick_gelu", ACT_QUICK_GELU, x, at, n); }
sdc_status cu_relu(void *x, cu_dtype at, int64_t n) { return activation("cu_relu", ACT_RELU, x, at, n); }

template <typename T>
__global__ void tanh_clamp_kernel(T *x, float m, int64_t n) {
    GRID_LOOP(i, n) cu_st(x + i, tanhf(cu_ld(x + i) / m) * m);
}

sdc_status cu_tanh_clamp(void *x, float m, cu_dtype at, int64_t n) {
    const char *op = "cu_tanh_clamp";
    CU_READY(op);
    if (!cu__dtype_ok(at) || n < 0 || (n && !x) || !(m > 0.0f))
        return sdc_fail(SDC_ERR_ARG, "%s: bad argument (n=%lld, m=%g)", op, (long long)n, (double)m);
    if (n == 0) return SDC_OK;
    CU_DISPATCH(at, T, { tanh_clamp_kernel<T><<<cu__blocks(n, 256), 256, 0, cu__stream_get()>>>((T *)x, m, n); });
    CU_LAUNCH_CK(op);
    return SDC_OK;
}

template <typename T>
__global__ void geglu_kernel(const T *x, T *y, int64_t rows, int D) {
    CU_ROWS(r, rows) {
        const T *xr = x + r * 2 * D;
        T *yr = y + r * D;
        CU_COLS(c, D) cu_st(yr + c, cu_ld(xr + c) * act1(ACT_GELU, cu_ld(xr + D + c)));
    }
}

sdc_status cu_geglu(const void *x, void *y, cu_dtype at, int64_t rows, int D) {
    const char *op = "cu_geglu";
    CU_READY(op);
    if (!cu__dtype_ok(at) || rows < 0 || D <= 0 || (rows && (!x || !y)))
        return sdc_fail(SDC_ERR_ARG, "%s: bad argument (rows=%lld D=%d)", op, (long long)rows, D);
    if (rows == 0) return SDC_OK;
    CU_DISPATCH(at, T, {
        geglu_kernel<T><<<cu__row_blocks(rows), cu__row_threads(D), 0, cu__stream_get()>>>((const T *)x, (T *)y, rows,
                                                                                             D);
    });
    CU_LAUNCH_CK(op);
    return SDC_OK;
}

template <typename T>
__global__ void add_kernel(T *y, const T *x, int64_t n) {
    GRID_LOOP(i, n) cu_st(y + i, cu_ld(y + i) + cu_ld(x + i));
}

template <typename T>
__global__ void scale_kernel(T *y, float s, int64_t n) {
    GRID_LOOP(i, n) cu_st(y + i, cu_ld(y + i) * s);
}

sdc_status cu_add(void *y, const void *x, cu_dtype at, int64_t n) {
    CU_READY("cu_add");
    if (!cu__dtype_ok(at) || n < 0 || (n && (!x || !y))) return sdc_fail(SDC_ERR_ARG, "cu_add: bad argument");
    if (n == 0) return SDC_OK;
    CU_DISPATCH(at, T, { add_kernel<T><<<cu__blocks(n, 256), 256, 0, cu__stream_get()>>>((T *)y, (const T *)x, n); });
    CU_LAUNCH_CK("cu_add");
    return SDC_OK;
}

sdc_status cu_scale(void *y, float s, cu_dtype at, int64_t n) {
    CU_READY("cu_scale");
    if (!cu__dtype_ok(at) || n < 0 || (n && !y)) return sdc_fail(SDC_ERR_ARG, "cu_scale: bad argument");
    if (n == 0) return SDC_OK;
    CU_DISPATCH(at, T, { scale_kernel<T><<<cu__blocks(n, 256), 256, 0, cu__stream_get()>>>((T *)y, s, n); });
    CU_LAUNCH_CK("cu_scale");
    return SDC_OK;
}

sdc_status cu_add_channel_bias(void *y, const void *v, cu_dtype at, int B, int C, int64_t HW) {
    const char *op = "cu_add_channel_bias";
    CU_READY(op);
    if (!cu__dtype_ok(at) || B <= 0 || C <= 0 || HW <= 0 || !y || !v)
        return sdc_fail(SDC_ERR_ARG, "%s: bad argument (B=%d C=%d HW=%lld)", op, B, C, (long long)HW);
    int64_t planes = (int64_t)B * C; /* v[B, C]: one value per plane */
    CU_DISPATCH(at, T, {
        cu_bias_planes_kernel<T, T><<<cu__row_blocks(planes), cu__row_threads(HW), 0, cu__stream_get()>>>(
            (T *)y, (const T *)v, planes, HW, planes);
    });
    CU_LAUNCH_CK(op);
    return SDC_OK;
}

/* one output row (plane p, row r) per block iteration */
template <typename T>
__global__ void upsample_kernel(const T *x, T *y, int64_t BC, int H, int W, int Ho, int Wo) {
    CU_ROWS(q, BC * Ho) {
        int64_t p = q / Ho;
        int r = (int)(q - p * Ho);
        const T *xr = x + (p * H + cu_nearest_src(r, H, Ho)) * W;
        T *yr = y + q * Wo;
        CU_COLS(c, Wo) yr[c] = xr[cu_nearest_src((int)c, W, Wo)];
    }
}

sdc_status cu_upsample_nearest(const void *x, void *y, cu_dtype at, int64_t BC, int H, int W, int Ho, int Wo) {
    const char *op = "cu_upsample_nearest";
    CU_READY(op);
    if (!cu__dtype_ok(at) || BC <= 0 || H <= 0 || W <= 0 || Ho <= 0 || Wo <= 0 || !x || !y)
        return sdc_fail(SDC_ERR_ARG, "%s: bad argument (%dx%d -> %dx%d)", op, H, W, Ho, Wo);
    CU_DISPATCH(at, T, {
        upsample_kernel<T><<<cu__row_blocks(BC * Ho), cu__row_threads(Wo), 0, cu__stream_get()>>>((const T *)x, (T *)y,
                                                                                                   BC, H, W, Ho, Wo);
    });
    CU_LAUNCH_CK(op);
    return SDC_OK;
}

/* y_b[c][r] = x_b[r][c] for an R x Cc matrix per image, 32 x 32 tiles through
 * shared memory so reads and writes are both coalesced. grid (ceil(Cc/32),
 * ceil(R/32), B), block (32, 8). */
template <typename T>
__global__ void transpose_kernel(const T *x, T *y, int64_t R, int64_t Cc) {
    __shared__ T tile[32][33];
    int64_t b = blockIdx.z;
    const T *xb = x + b * R * Cc;
    T *yb = y + b * R * Cc;
    int64_t r0 = (int64_t)blockIdx.y * 32, c0 = (int64_t)blockIdx.x * 32;
    for (int j = threadIdx.y; j < 32; j += 8) {
        int64_t r = r0 + j, c = c0 + threadIdx.x;
        if (r < R && c < Cc) tile[j][threadIdx.x] = xb[r * Cc + c];
    }
    __syncthreads();
    for (int j = threadIdx.y; j < 32; j += 8) {
        int64_t c = c0 + j, r = r0 + threadIdx.x;
        if (r < R && c < Cc) yb[c * R + r] = tile[threadIdx.x][j];
    }
}

static sdc_status transpose(const char *op, const void *x, void *y, cu_dtype at, int B, int64_t R, int64_t Cc) {
    CU_READY(op);
    if (!cu__dtype_ok(at) || B <= 0 || R <= 0 || Cc <= 0 || !x || !y || B > 65535 || (R + 31) / 32 > 65535 ||
        (Cc + 31) / 32 > INT32_MAX)
        return sdc_fail(SDC_ERR_ARG, "%s: bad argument (B=%d, %lld x %lld)", op, B, (long long)R, (long long)Cc);
    dim3 grid((unsigned)((Cc + 31) / 32), (unsigned)((R + 31) / 32), (unsigned)B), block(32, 8);
    CU_DISPATCH(at, T, { transpose_kernel<T><<<grid, block, 0, cu__stream_get()>>>((const T *)x, (T *)y, R, Cc); });
    CU_LAUNCH_CK(op);
    return SDC_OK;
}

sdc_status cu_nchw_to_nhwc(const void *x, void *y, cu_dtype at, int B, int C, int64_t HW) {
    return transpose("cu_nchw_to_nhwc", x, y, at, B, C, HW);
}
sdc_status cu_nhwc_to_nchw(const void *x, void *y, cu_dtype at, int B, int C, int64_t HW) {
    return transpose("cu_nhwc_to_nchw", x, y, at, B, HW, C);
}

template <typename T>
__global__ void timestep_kernel(const float *t, int n, int dim, int flip, float shift, T *out) {
    int half = dim / 2;
    GRID_LOOP(i, (int64_t)n * dim) {
        int k = (int)(i / dim), j = (int)(i % dim);
        float v = 0.0f;
        if (j < 2 * half) {
            int f = j < half ? j : j - half, first = j < half;
            float a = cu_timestep_angle(t[k], f, half, shift);
            int use_cos = flip ? first : !first; /* flip puts cos first */
            v = use_cos ? cosf(a) : sinf(a);
        }
        cu_st(out + i, v);
    }
}

sdc_status cu_timestep_embedding(const float *t, int n, int dim, int flip_sin_to_cos, float shift, void *out,
                                 cu_dtype at) {
    const char *op = "cu_timestep_embedding";
    CU_READY(op);
    if (!cu__dtype_ok(at) || n <= 0 || dim <= 1 || !t || !out)
        return sdc_fail(SDC_ERR_ARG, "%s: bad argument (n=%d dim=%d)", op, n, dim);
    int64_t total = (int64_t)n * dim;
    CU_DISPATCH(at, T, {
        timestep_kernel<T><<<cu__blocks(total, 256), 256, 0, cu__stream_get()>>>(t, n, dim, flip_sin_to_cos, shift, (T *)out);
    });
    CU_LAUNCH_CK(op);
    return SDC_OK;
}
