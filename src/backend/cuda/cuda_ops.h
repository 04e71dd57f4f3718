/* cuda_ops.h - the NVIDIA GPU backend: the ops of src/backend/ops.h on device
 * memory, in f16/bf16 (or f32) activations with f32 accumulation.
 *
 * C-callable, no CUDA types: every pointer named d_* / x / y below is a
 * device pointer from cu_malloc or the arena. Each op is queued on the
 * backend's one stream and returns at once (no host round trip), so a whole
 * UNet step can be captured into a CUDA graph (cu_graph_*). Errors come back
 * as sdc_status with a message naming the op and the CUDA/cuBLAS error; an
 * error from an earlier asynchronous kernel shows up at the next cu_sync.
 *
 * Semantics (layouts, eps, SiLU fusion, GEGLU split, causal mask, nearest
 * upsampling, timestep embedding) are exactly those of the op_* function of
 * the same name in ops.h; tests/test_cuda.c compares each with it.
 * Only built when nvcc is found (SDC_HAVE_CUDA); without it this header may
 * still be included, and nothing declared here exists. */
#ifndef SDC_BACKEND_CUDA_OPS_H
#define SDC_BACKEND_CUDA_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Element type of an activation or weight tensor on the device. */
typedef enum { CU_F32 = 0, CU_F16 = 1, CU_BF16 = 2 } cu_dtype;
size_t cu_dtype_size(cu_dtype dt);
const char *cu_dtype_name(cu_dtype dt);

/* ---- runtime ---- */

/* Select the device, create the stream, cuBLAS handles and workspaces.
 * Fails with "no CUDA device: <cuda error string>" when there is no driver
 * or device. Calling it again is a no-op returning the first result. */
sdc_status cu_init(int device);
int cu_ready(void);                       /* cu_init succeeded */
const char *cu_device_name(void);         /* "NVIDIA H100 80GB HBM3"; "" before cu_init */
void cu_shutdown(void);                   /* frees everything cu_init and the arena made */

sdc_status cu_malloc(void **d_ptr, size_t bytes);
/* Most device memory in use so far as the driver reports it (CUDA context
 * and other processes on the GPU included), sampled at every allocation. */
size_t cu_mem_peak_used(void);
void cu_mem_peak_reset(void); /* start a new peak from what is in use now */
void cu_free(void *d_ptr);
/* Host <-> device copies on the backend stream; both wait for completion. */
sdc_status cu_upload(void *d_dst, const void *h_src, size_t bytes);
sdc_status cu_download(void *h_dst, const void *d_src, size_t bytes);
sdc_status cu_memset0(void *d_dst, size_t bytes); /* queued, async */
sdc_status cu_copy(void *d_dst, const void *d_src, size_t bytes); /* device to device, async */
/* Wait for every queued op; reports asynchronous kernel errors. */
sdc_status cu_sync(void);
/* The backend's stream as an opaque handle (a cudaStream_t), for callers that
 * add their own kernels. */
void *cu_stream(void);

/* ---- activation arena ----
 * A bump allocator over device memory kept across steps: the first step may
 * grow it (cudaMalloc), cu_arena_reset rewinds it, and when the last pass
 * spilled over several blocks it is merged into one block of the high-water
 * size, after which a step of the same shapes does no cudaMalloc. Marks let
 * a layer free its temporaries (stack order). Allocations are 256-byte
 * aligned. Merging changes addresses, so a graph captured before a merge
 * refuses to launch (cu_graph_launch checks the arena's generation). */
typedef struct { int block; size_t used; } cu_arena_mark;
sdc_status cu_arena_alloc(void **d_ptr, size_t bytes);
cu_arena_mark cu_arena_get_mark(void);
void cu_arena_release(cu_arena_mark m);
sdc_status cu_arena_reset(void);
size_t cu_arena_capacity(void);  /* bytes held */
size_t cu_arena_high_water(void);/* most bytes in use at once since cu_init */
long cu_arena_mallocs(void);     /* cudaMalloc calls made by the arena, for tests */

/* Persistent device scratch for the backend's own use, slots 0 ..
 * CU_SCRATCH_USER_SLOTS-1 (the ops keep theirs apart): grown on demand,
 * never while a graph is captured (an error: run the work once first), and
 * a buffer handed out during a capture is kept alive after it is outgrown
 * until no graph is left, since the graph's kernels have its address. */
#define CU_SCRATCH_USER_SLOTS 4
sdc_status cu_scratch(int slot, size_t bytes, void **p);
int cu_scratch_retired(void); /* outgrown buffers kept for graphs (tests) */

/* ---- CUDA graphs: capture a repeated step once, replay it ---- */
typedef struct cu_graph cu_graph;
sdc_status cu_graph_begin(void);            /* start capturing the backend stream */
int cu_capturing(void);                     /* the backend stream is being captured */
sdc_status cu_graph_end(cu_graph **out);    /* stop, instantiate */
sdc_status cu_graph_launch(const cu_graph *g);
void cu_graph_free(cu_graph *g);

/* ---- ops (all queued on the backend stream) ---- */

/* dst[n] = src[n] converted (f32 <-> f16 <-> bf16, round to nearest even) */
sdc_status cu_convert(void *dst, cu_dtype dst_t, const void *src, cu_dtype src_t, int64_t n);

/* What non-1x1 convolutions run on: "cuDNN 9.x.y" when the build saw
 * cudnn.h and libcudnn.so.9 loads at run time, else why not (then im2col +
 * cuBLAS), or the first shape cuDNN refused. SDC_CUDNN=0 turns cuDNN off;
 * cu_conv_use_cudnn(0/1) does for tests and benchmarks (returns the
 * previous setting). */
const char *cu_cudnn_status(void);
int cu_conv_use_cudnn(int on);
/* float32 convolutions (cuDNN and the fallback's GEMMs) on TF32 tensor
 * cores, as PyTorch computes them by default (torch.backends.cudnn.
 * allow_tf32): on unless SDC_TF32=0; cu_conv_allow_tf32 sets it for tests
 * and returns the previous setting. Float32 linear layers stay float32. */
int cu_conv_tf32(void);
int cu_conv_allow_tf32(int on);

/* y[M,N] = x[M,K] . W[N,K]^T + b[N] (b may be NULL). x, y in `at`; W and b
 * in `wt`. Tensor cores with f32 accumulation; when wt != at the weight is
 * converted into scratch first (slow path: give weights in the activation
 * dtype). */
sdc_status cu_linear(const void *x, cu_dtype at, int64_t M, int64_t K, const void *W, const void *b, cu_dtype wt,
                     int64_t N, void *y);
/* The same with the bias (bt) and output (yt) types of their own: f16/bf16
 * operands written straight to an f32 y with an f32 bias in the GEMM's
 * epilogue (no rounding of the result, no conversion pass); the bias is
 * fused when bt == yt. */
sdc_status cu_linear_ex(const void *x, cu_dtype at, int64_t M, int64_t K, const void *W, cu_dtype wt, const void *b,
                        cu_dtype bt, int64_t N, void *y, cu_dtype yt);

/* y[B,O,Ho,Wo] = conv2d(x[B,C,H,W], w[O,C,k,k], b[O]); Ho = (H+2pad-k)/stride+1.
 * 1x1 stride-1 convolutions are one GEMM; others go to cuDNN when it is
 * there (cu_cudnn_status), else im2col a bounded chunk of output pixels at a
 * time into scratch and multiply it by the kernel. */
sdc_status cu_conv2d(const void *x, cu_dtype at, int B, int C, int H, int W, const void *w, const void *b,
                     cu_dtype wt, int O, int k, int stride, int pad, void *y);
/* The same with the bias in bt and y in yt, which may differ from at only
 * for 1x1 stride-1 convolutions (one GEMM writing f32 from f16/bf16
 * operands); w is in wt, as for cu_conv2d. */
sdc_status cu_conv2d_ex(const void *x, cu_dtype at, int B, int C, int H, int W, const void *w, cu_dtype wt,
                        const void *b, cu_dtype bt, int O, int k, int stride, int pad, void *y, cu_dtype yt);

/* GroupNorm over x[B,C,HW] with G groups and affine gamma/beta[C] (in wt);
 * silu != 0 fuses SiLU after the affine. y may equal x. */
sdc_status cu_group_norm(const void *x, void *y, cu_dtype at, int B, int C, int64_t HW, int G, float eps,
                         const void *gamma, const void *beta, cu_dtype wt, int silu);
/* LayerNorm over the last dim D of x[rows,D]. y may equal x. gamma/beta may be NULL (identity). */
sdc_status cu_layer_norm(const void *x, void *y, cu_dtype at, int64_t rows, int D, float eps, const void *gamma,
                         const void *beta, cu_dtype wt);

sdc_status cu_silu(void *x, cu_dtype at, int64_t n);
sdc_status cu_gelu(void *x, cu_dtype at, int64_t n);       /* exact (erf) */
sdc_status cu_quick_gelu(void *x, cu_dtype at, int64_t n); /* x * sigmoid(1.702 x) */
sdc_status cu_relu(void *x, cu_dtype at, int64_t n);       /* max(x, 0), NaN kept */
sdc_status cu_tanh_clamp(void *x, float m, cu_dtype at, int64_t n); /* tanh(x / m) * m */
/* x[rows, 2D] -> y[rows, D] = x[:, :D] * gelu(x[:, D:]) */
sdc_status cu_geglu(const void *x, void *y, cu_dtype at, int64_t rows, int D);

sdc_status cu_add(void *y, const void *x, cu_dtype at, int64_t n); /* y += x */
sdc_status cu_scale(void *y, float s, cu_dtype at, int64_t n);     /* y *= s */
/* y[B,C,HW] += v[B,C] broadcast over HW (v in the activation dtype) */
sdc_status cu_add_channel_bias(void *y, const void *v, cu_dtype at, int B, int C, int64_t HW);

/* Multi-head attention, flash-style (online softmax over key tiles; the
 * Nq x Nk matrix is never stored). q: [B,Nq,heads*dh] with row stride q_ld;
 * k, v: [B,Nk,heads*dh] with row stride kv_ld; out: [B,Nq,heads*dh]
 * contiguous; causal masks key j > query i. f16/bf16 with dh <= 160 run on
 * tensor cores; f32 and larger heads (the VAE's dh = 512) take a correct,
 * slower f32 kernel. */
sdc_status cu_attention(const void *q, int64_t q_ld, const void *k, const void *v, int64_t kv_ld, cu_dtype at,
                        int B, int Nq, int Nk, int heads, int dh, float scale, int causal, void *out);

/* torch F.interpolate(mode="nearest") from [BC,H,W] to [BC,Ho,Wo]. */
sdc_status cu_upsample_nearest(const void *x, void *y, cu_dtype at, int64_t BC, int H, int W, int Ho, int Wo);
/* [B,C,HW] <-> [B,HW,C] */
sdc_status cu_nchw_to_nhwc(const void *x, void *y, cu_dtype at, int B, int C, int64_t HW);
sdc_status cu_nhwc_to_nchw(const void *x, void *y, cu_dtype at, int B, int C, int64_t HW);
/* out[n, dim] (in `at`) for device f32 timesteps t[n]; diffusers'
 * get_timestep_embedding (flip_sin_to_cos, shift = freq_shift). */
sdc_status cu_timestep_embedding(const float *t, int n, int dim, int flip_sin_to_cos, float shift, void *out,
                                 cu_dtype at);

/* Layout helpers for the model code (ops.h: op_copy_2d, op_affine,
 * op_pad_zero, op_gather_rows); all in the activation dtype `at`.
 * cu_gather_rows takes the row indices in host memory (a pageable copy is
 * staged before the call returns, so the array may be reused at once). */
sdc_status cu_copy_2d(void *dst, int64_t dst_ld, const void *src, int64_t src_ld, int64_t rows, int64_t cols,
                      cu_dtype at);
sdc_status cu_affine(void *y, const void *x, float a, float b, cu_dtype at, int64_t n);
sdc_status cu_pad_zero(const void *x, void *y, cu_dtype at, int64_t BC, int H, int W, int Ho, int Wo);
sdc_status cu_gather_rows(void *dst, const void *src, cu_dtype at, int64_t cols, const int64_t *rows_host,
                          int64_t n);
/* y[rows, cols] += b[cols] (a linear layer's bias added after the GEMM) */
sdc_status cu_add_row_bias(void *y, const void *b, cu_dtype at, int64_t rows, int64_t cols);

/* Number of NaN/Inf elements of x[n]; waits for the stream (the pipeline
 * calls it once on the decoded image before writing a PNG). */
sdc_status cu_count_nonfinite(const void *x, cu_dtype at, int64_t n, int64_t *count);

/* ---- for benchmarks ---- */
/* y[M,N] = a[M,K] . b[N,K]^T through plain cuBLAS (the practical GEMM ceiling). */
sdc_status cu_gemm_reference(const void *a, const void *b, void *c, cu_dtype at, int M, int N, int K);

#ifdef __cplusplus
}
#endif

#endif
