/* cuda_emu.h - a CUDA device emulated on the CPU, for testing the CUDA
 * backend on machines without a GPU (issue 8: "everything that can be
 * tested without a GPU is tested").
 *
 * The backend's .cu files compile unchanged as C++ against this header
 * (tests/cuda_emu/include/ maps cuda_runtime.h, cuda_fp16.h, mma.h,
 * cublasLt.h & co. onto it); tests/cuda_emu/rewrite.sed first turns the two
 * pieces of CUDA syntax C++ cannot parse, `k<<<grid, block, smem, stream>>>(...)`
 * and `extern __shared__ T name[];`, into calls of this emulator.
 *
 * What it is faithful to, because that is what finds bugs:
 * - every thread of a block is its own fiber with its own stack, so
 *   __syncthreads, __syncwarp and warp shuffles behave as barriers: a thread
 *   that reads shared memory before the barrier that makes it valid reads
 *   the poison (0xff bytes: NaN in every float type), a barrier not reached
 *   by every thread, or a shuffle from a lane that did not take part, is
 *   reported as a kernel fault instead of hanging;
 * - launch limits: threads per block, grid size, dynamic shared memory above
 *   48 KiB only after cudaFuncSetAttribute, and at most the H100's 227 KiB;
 * - wmma fragments: the documented pointer (256-bit) and leading-dimension
 *   (16-byte) alignment rules, products in f32 from f16/bf16 operands;
 * - device memory is poisoned on allocation (a GPU's is garbage), and each
 *   allocation is its own heap block, so an ASan build flags a kernel that
 *   reads or writes past a buffer, shared memory included;
 * - streams and graphs: work is executed in stream order at once, or
 *   recorded while a stream is captured and replayed by cudaGraphLaunch;
 *   synchronising, host copies and allocations (outside relaxed mode) break
 *   a capture as they do on a GPU;
 * - cuBLAS / cuBLASLt: the GEMMs the backend calls, column-major, with
 *   transposes, strides, batches, the bias epilogue and TF32 operand
 *   rounding, accumulated in f32.
 * What it is not: fast (a tiny model's image takes seconds), nor a model of
 * a GPU's timing, memory coalescing or exact tensor-core rounding order. */
#ifndef SDC_CUDA_EMU_H
#define SDC_CUDA_EMU_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <tuple>
#include <utility>

/* ---- qualifiers ---- */
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) alignas(n)
/* Blocks run one at a time, so a function-static array is one block's shared memory. */
#define __shared__ static

/* ---- vector types ---- */
struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct uint3 {
    unsigned x, y, z;
};
struct alignas(16) uint4 {
    unsigned x, y, z, w;
};
static inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return uint4{x, y, z, w}; }

/* ---- 16-bit floats ---- */
namespace cu_emu {
uint16_t f32_to_f16(float f);
float f16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float f);
float bf16_to_f32(uint16_t h);
} // namespace cu_emu

struct __half {
    uint16_t __x;
    __half() = default;
    __half(float f) : __x(cu_emu::f32_to_f16(f)) {}
    __half(double f) : __x(cu_emu::f32_to_f16((float)f)) {}
    __half(int i) : __x(cu_emu::f32_to_f16((float)i)) {}
    operator float() const { return cu_emu::f16_to_f32(__x); }
};
struct __nv_bfloat16 {
    uint16_t __x;
    __nv_bfloat16() = default;
    __nv_bfloat16(float f) : __x(cu_emu::f32_to_bf16(f)) {}
    __nv_bfloat16(double f) : __x(cu_emu::f32_to_bf16((float)f)) {}
    __nv_bfloat16(int i) : __x(cu_emu::f32_to_bf16((float)i)) {}
    operator float() const { return cu_emu::bf16_to_f32(__x); }
};
static inline float __half2float(__half h) { return (float)h; }
static inline __half __float2half_rn(float f) { return __half(f); }
static inline float __bfloat162float(__nv_bfloat16 h) { return (float)h; }
static inline __nv_bfloat16 __float2bfloat16_rn(float f) { return __nv_bfloat16(f); }

/* ---- device math the kernels use (host libm; no contraction: the emu build has -ffp-contract=off) ---- */
static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float __fadd_rn(float a, float b) { return a + b; }

/* ---- runtime API types ---- */
typedef enum cudaError {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInitializationError = 3,
    cudaErrorInvalidConfiguration = 9,
    cudaErrorInvalidDevice = 101,
    cudaErrorNoDevice = 100,
    cudaErrorMisalignedAddress = 716,
    cudaErrorLaunchFailure = 719,
    cudaErrorStreamCaptureUnsupported = 900,
    cudaErrorStreamCaptureInvalidated = 901,
    cudaErrorStreamCaptureWrongThread = 908,
    cudaErrorInvalidResourceHandle = 400,
} cudaError_t;

typedef struct cu_emu_stream *cudaStream_t;
typedef struct cu_emu_graph *cudaGraph_t;
typedef struct cu_emu_graph_exec *cudaGraphExec_t;

enum cudaMemcpyKind { cudaMemcpyHostToDevice = 1, cudaMemcpyDeviceToHost = 2, cudaMemcpyDeviceToDevice = 3 };
enum cudaStreamCaptureMode {
    cudaStreamCaptureModeGlobal = 0,
    cudaStreamCaptureModeThreadLocal = 1,
    cudaStreamCaptureModeRelaxed = 2
};
enum cudaStreamCaptureStatus {
    cudaStreamCaptureStatusNone = 0,
    cudaStreamCaptureStatusActive = 1,
    cudaStreamCaptureStatusInvalidated = 2
};
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 };
#define cudaStreamNonBlocking 0x01

struct cudaDeviceProp {
    char name[256];
    size_t totalGlobalMem;
    size_t sharedMemPerBlock;
    size_t sharedMemPerBlockOptin;
    int multiProcessorCount;
    int major, minor;
    int maxThreadsPerBlock;
};

cudaError_t cudaGetDeviceCount(int *n);
cudaError_t cudaSetDevice(int d);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int d);
cudaError_t cudaGetLastError(void);
const char *cudaGetErrorString(cudaError_t e);
const char *cudaGetErrorName(cudaError_t e);
cudaError_t cudaMalloc(void **p, size_t bytes);
cudaError_t cudaFree(void *p);
cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total);
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, cudaMemcpyKind k, cudaStream_t s = 0);
cudaError_t cudaMemcpy2DAsync(void *dst, size_t dpitch, const void *src, size_t spitch, size_t width, size_t height,
                              cudaMemcpyKind k, cudaStream_t s = 0);
cudaError_t cudaMemsetAsync(void *p, int v, size_t n, cudaStream_t s = 0);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *g);
cudaError_t cudaStreamIsCapturing(cudaStream_t s, cudaStreamCaptureStatus *st);
cudaError_t cudaThreadExchangeStreamCaptureMode(cudaStreamCaptureMode *mode);
cudaError_t cudaGraphInstantiate(cudaGraphExec_t *e, cudaGraph_t g, unsigned long long flags = 0);
cudaError_t cudaGraphLaunch(cudaGraphExec_t e, cudaStream_t s);
cudaError_t cudaGraphDestroy(cudaGraph_t g);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t e);

namespace cu_emu {
cudaError_t func_set_attribute(const void *fn, int attr, int value);
}
template <class F>
cudaError_t cudaFuncSetAttribute(F *fn, cudaFuncAttribute attr, int value) {
    return cu_emu::func_set_attribute((const void *)fn, (int)attr, value);
}

/* ---- the device side ---- */
namespace cu_emu {
struct block_state {
    uint3 idx, dim, grid;
};
extern block_state g_blk;
const uint3 &thread_idx(void);
void *dyn_smem(void);
void sync_block(void);
void sync_warp(void);
/* a warp shuffle: every lane of the warp hands in `v` and gets lane `src`'s */
void shfl_bytes(const void *v, void *out, size_t n, int src, const char *what);
int lane_id(void);
/* the last tensor-core product of the running thread's warp (wmma_emu.h) */
struct mma_memo {
    unsigned char key[2048];
    size_t nkey;
    unsigned char out[1024];
};
mma_memo *mma_memo_of_warp(void);
/* a fault inside a kernel (misuse a GPU would punish with garbage or an error): reported, the launch fails */
void fault(const char *fmt, ...);
} // namespace cu_emu

#define threadIdx (cu_emu::thread_idx())
#define blockIdx (cu_emu::g_blk.idx)
#define blockDim (cu_emu::g_blk.dim)
#define gridDim (cu_emu::g_blk.grid)
#define warpSize 32

static inline void __syncthreads(void) { cu_emu::sync_block(); }
static inline void __syncwarp(unsigned mask = 0xffffffffu) {
    if (mask != 0xffffffffu) cu_emu::fault("__syncwarp with a partial mask is not emulated");
    cu_emu::sync_warp();
}
template <class T>
static inline T __shfl_sync(unsigned mask, T v, int src, int width = 32) {
    if (mask != 0xffffffffu || width != 32) cu_emu::fault("__shfl_sync: only full-warp shuffles are emulated");
    T out;
    cu_emu::shfl_bytes(&v, &out, sizeof(T), src & 31, "__shfl_sync");
    return out;
}
template <class T>
static inline T __shfl_xor_sync(unsigned mask, T v, int lanemask, int width = 32) {
    if (mask != 0xffffffffu || width != 32) cu_emu::fault("__shfl_xor_sync: only full-warp shuffles are emulated");
    T out;
    cu_emu::shfl_bytes(&v, &out, sizeof(T), (cu_emu::lane_id() ^ lanemask) & 31, "__shfl_xor_sync");
    return out;
}
/* fibers switch only at barriers, so a read-modify-write is atomic */
template <class T>
static inline T atomicAdd(T *p, T v) {
    T old = *p;
    *p = old + v;
    return old;
}

/* ---- kernel launches: k<<<g, b, s, st>>>(args) -> cu_emu::launch("k", g, b, s, st)(&k)(args) ---- */
namespace cu_emu {
struct launch_cfg {
    const char *name;
    dim3 grid, block;
    size_t smem;
    cudaStream_t stream;
};
/* Runs the grid now, or records it when the stream is being captured; the
 * thread body is called once per emulated thread. */
void enqueue_kernel(const launch_cfg &c, const void *fn, void (*body)(void *), void *ctx, void (*drop)(void *));

template <class... P>
struct bound_kernel {
    void (*fn)(P...);
    launch_cfg cfg;
    template <class... A>
    void operator()(A &&...a) const {
        typedef std::pair<void (*)(P...), std::tuple<P...>> call;
        call *c = new call(fn, std::tuple<P...>(std::forward<A>(a)...));
        enqueue_kernel(
            cfg, (const void *)fn, [](void *p) { std::apply(((call *)p)->first, ((call *)p)->second); }, c,
            [](void *p) { delete (call *)p; });
    }
};
struct launcher {
    launch_cfg cfg;
    template <class... P>
    bound_kernel<P...> operator()(void (*fn)(P...)) const {
        return bound_kernel<P...>{fn, cfg};
    }
};
static inline launcher launch(const char *name, dim3 g, dim3 b, size_t smem = 0, cudaStream_t s = 0) {
    return launcher{launch_cfg{name, g, b, smem, s}};
}
} // namespace cu_emu

#endif
