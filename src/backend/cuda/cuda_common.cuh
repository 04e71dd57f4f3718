/* cuda_common.cuh - what the backend's .cu files share and nothing outside
 * sees: the runtime's handles and scratch, error checking that turns a CUDA
 * or cuBLAS error into sdc_fail naming the op, and the element load/store
 * and dtype dispatch every kernel template uses (f32 math on all types). */
#ifndef SDC_BACKEND_CUDA_COMMON_CUH
#define SDC_BACKEND_CUDA_COMMON_CUH

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

extern "C" {
#include "core/status.h"
}
#include "backend/cuda/cuda_ops.h"

/* ---- runtime state (cuda_runtime.cu) ---- */
cudaStream_t cu__stream_get(void);
cublasHandle_t cu__cublas(void);
cublasLtHandle_t cu__lt(void);
void *cu__lt_workspace(size_t *bytes);
int cu__sm_count(void);
/* Persistent scratch slot (0: im2col and staging, 1: converted weights,
 * 2: reduction partials, 3: cuDNN workspace), grown on demand; fails rather
 * than growing while the stream is being captured into a graph. */
sdc_status cu__scratch(int slot, size_t bytes, void **p, const char *op);
/* y = conv2d(x, w) without bias through cuDNN (cuda_conv_cudnn.cu); *done = 0
 * when cuDNN is off, missing, or refuses the shape: the caller computes it. */
sdc_status cu__conv_cudnn(const void *x, cu_dtype at, int B, int C, int H, int W, const void *w, int O, int k,
                          int stride, int pad, void *y, int *done);

sdc_status cu__fail_cuda(cudaError_t e, const char *op, const char *what);
sdc_status cu__fail_cublas(cublasStatus_t e, const char *op, const char *what);

/* Check a CUDA runtime call / the last kernel launch inside op `OP`. */
#define CU_CK(OP, call)                                              \
    do {                                                             \
        cudaError_t cu_e_ = (call);                                  \
        if (cu_e_ != cudaSuccess) return cu__fail_cuda(cu_e_, OP, #call); \
    } while (0)
#define CU_LAUNCH_CK(OP) CU_CK(OP, cudaGetLastError())
#define CUBLAS_CK(OP, call)                                                 \
    do {                                                                    \
        cublasStatus_t cb_e_ = (call);                                      \
        if (cb_e_ != CUBLAS_STATUS_SUCCESS) return cu__fail_cublas(cb_e_, OP, #call); \
    } while (0)
#define CU_READY(OP)                                                                         \
    do {                                                                                     \
        if (!cu_ready()) return sdc_fail(SDC_ERR_ARG, "%s: cuda backend not initialised (cu_init)", OP); \
    } while (0)

/* ---- elements ---- */
__device__ __forceinline__ float cu_ld(const float *p) { return *p; }
__device__ __forceinline__ float cu_ld(const __half *p) { return __half2float(*p); }
__device__ __forceinline__ float cu_ld(const __nv_bfloat16 *p) { return __bfloat162float(*p); }
__device__ __forceinline__ void cu_st(float *p, float v) { *p = v; }
__device__ __forceinline__ void cu_st(__half *p, float v) { *p = __float2half_rn(v); }
__device__ __forceinline__ void cu_st(__nv_bfloat16 *p, float v) { *p = __float2bfloat16_rn(v); }

/* Run BODY with T bound to the C++ type of dtype DT. */
#define CU_DISPATCH(DT, T, ...)                   \
    switch (DT) {                                 \
    case CU_F32: { typedef float T; __VA_ARGS__; break; }          \
    case CU_F16: { typedef __half T; __VA_ARGS__; break; }         \
    case CU_BF16: { typedef __nv_bfloat16 T; __VA_ARGS__; break; } \
    }

static inline int cu__dtype_ok(cu_dtype t) { return t == CU_F32 || t == CU_F16 || t == CU_BF16; }

/* Blocks for a grid-stride loop over n elements. */
static inline unsigned cu__blocks(int64_t n, int threads) {
    int64_t b = (n + threads - 1) / threads, cap = (int64_t)cu__sm_count() * 32;
    if (b > cap) b = cap;
    return (unsigned)(b > 0 ? b : 1);
}

/* Work on a [rows, cols] layout without a 64-bit division per element (a
 * division is a long instruction sequence on the GPU, as costly as these
 * kernels' memory traffic): blocks stride over rows, a block's threads over
 * its row's columns. Launch with <<<cu__row_blocks(rows), cu__row_threads(cols)>>>. */
#define CU_ROWS(r, rows) for (int64_t r = blockIdx.x; r < (rows); r += gridDim.x)
#define CU_COLS(c, cols) for (int64_t c = threadIdx.x; c < (cols); c += blockDim.x)
static inline unsigned cu__row_threads(int64_t cols) {
    int64_t t = (cols + 31) / 32 * 32;
    return (unsigned)(t > 256 ? 256 : t < 32 ? 32 : t);
}
static inline unsigned cu__row_blocks(int64_t rows) {
    int64_t cap = (int64_t)cu__sm_count() * 64;
    return (unsigned)(rows < 1 ? 1 : rows < cap ? rows : cap);
}

/* y[r][c] += b[c] (a GEMM's bias) */
template <typename T, typename W>
__global__ void cu_bias_rows_kernel(T *y, const W *b, int64_t rows, int64_t cols) {
    CU_ROWS(r, rows) {
        T *yr = y + r * cols;
        CU_COLS(c, cols) cu_st(yr + c, cu_ld(yr + c) + cu_ld(b + c));
    }
}
/* y[p][i] += b[p % nb] over planes of `inner` elements (a convolution's bias) */
template <typename T, typename W>
__global__ void cu_bias_planes_kernel(T *y, const W *b, int64_t planes, int64_t inner, int64_t nb) {
    CU_ROWS(p, planes) {
        float bv = cu_ld(b + p % nb);
        T *yp = y + p * inner;
        CU_COLS(i, inner) cu_st(yp + i, cu_ld(yp + i) + bv);
    }
}

#endif
