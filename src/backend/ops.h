/* ops.h - the numeric operations the models are built from (float32, NCHW).
 * One interface; src/backend/cpu/ implements it with its own GEMM kernels
 * (AVX-512 / AVX2 chosen at run time) and OpenMP loops. Functions that
 * allocate scratch return sdc_status; pure loops return nothing. Shapes are
 * in the comments beside each op. */
#ifndef SDC_BACKEND_OPS_H
#define SDC_BACKEND_OPS_H

#include <stdint.h>

#include "core/status.h"

/* ---- contexts ----------------------------------------------------------
 * Every op runs in an op_ctx: the device (OP_DEV_CPU; OP_DEV_CUDA, which
 * needs a build with nvcc and a GPU, clear error otherwise; OP_DEV_EMULATED,
 * the CPU ops behind the boundary a device has (op_host_memory() == 0), for
 * tests), the CPU threads its loops and GEMMs use, the CPU compute
 * precision, the activation precision of the component running on a device,
 * its live activation buffers and the step graph being captured. A model
 * owns one and hands it to its components; nothing about a device is
 * process-wide, so models on different devices, thread counts or precisions
 * live side by side. A context is used by one thread at a time (a model runs
 * one request at a time). The CUDA contexts of a process share the GPU's
 * stream: their requests take turns, they do not overlap. */
typedef enum { OP_DEV_CPU = 0, OP_DEV_CUDA = 1, OP_DEV_EMULATED = 2 } op_device;
typedef struct op_ctx op_ctx;
/* threads: 0 = all cores. */
sdc_status op_ctx_create(op_ctx **out, op_device dev, int threads);
/* Call once every buffer, weight and graph of the context is released. */
void op_ctx_free(op_ctx *cx);
op_device op_ctx_device(const op_ctx *cx);
const char *op_ctx_device_name(const op_ctx *cx);
void op_ctx_set_threads(op_ctx *cx, int n); /* 0 = all cores */
int op_ctx_threads(const op_ctx *cx);
/* Wait for queued device work; reports asynchronous device failures. */
sdc_status op_sync(op_ctx *cx);

/* Make the C allocator keep freed large blocks for reuse (glibc: mmap and
 * trim thresholds raised to 1 GiB) instead of unmapping them: the models
 * allocate and free activations of up to hundreds of MiB every layer, and
 * each fresh mapping costs a page fault per 4 KiB (measured: VAE decode at
 * 512x512 7.5 s -> 5.7 s, peak RSS +2%). Process-wide, so the program (sdc's
 * model load, a benchmark) decides; a no-op without glibc. */
void op_tune_allocator(void);

/* Floating-point operations issued by GEMM-backed ops since the last reset
 * (2*M*N*K per GEMM): what benchmarks divide by time to report GFLOP/s.
 * Instrumentation, not device state: one count for the whole process (all
 * contexts), kept by the thread that issues the ops. */
void op_flops_reset(void);
double op_flops(void);
void op_flops_add(double n);

/* Benchmarks: wall time, FLOPs and calls per kind of op (linear, conv3x3,
 * attention, group_norm, ...) while enabled. op_profile_get returns 0 past
 * the last kind. Not for concurrent callers. */
void op_profile_enable(int on);
void op_profile_reset(void);
int op_profile_get(int i, const char **name, double *seconds, double *flops, long *calls);
/* The same kind's CPU seconds (all threads of the process). */
double op_profile_cpu_seconds(int i);

/* y[M,N] = x[M,K] . W[N,K]^T + b[N]  (torch Linear; b may be NULL). Fails
 * (SDC_ERR_NOMEM, y unwritten) when its scratch cannot be allocated. */
sdc_status op_linear(op_ctx *cx, const float *x, int64_t M, int64_t K, const float *W, const float *b, int64_t N, float *y);

/* y[B,O,Ho,Wo] = conv2d(x[B,C,H,W], w[O,C,k,k], b[O]), square kernel,
 * Ho = (H + 2*pad - k)/stride + 1. b may be NULL. */
sdc_status op_conv2d(op_ctx *cx, const float *x, int B, int C, int H, int W, const float *w, const float *b, int O, int k,
                     int stride, int pad, float *y);

/* The same two with the weight matrix or kernel kept in the 16-bit format it
 * is stored in (IEEE half or bfloat16, 2-byte aligned, as mapped from a
 * .safetensors file) and widened to float32 while GEMM panels are packed:
 * results equal widening first, at half the weight memory and bandwidth.
 * OP_F32 takes const float * and is op_linear / op_conv2d.
 * OP_Q8 (--weights q8) takes a const q8_matrix * (backend/q8.h: int8 blocks
 * of 32 with a half scale) of shape [N][K] / [O][C*k*k]: the CPU multiplies
 * it with int8 dot products against activations quantised on the fly, 32
 * values of a row at a time with their own scale, summing each block's
 * integer product into float32 (results move by ~1e-2 relative, like bf16);
 * convolutions then never take the Winograd path. Backends without int8
 * kernels (CUDA, the emulated device in reduced precision) refuse it. */
typedef enum { OP_F32 = 0, OP_F16 = 1, OP_BF16 = 2, OP_Q8 = 3 } op_dtype;
sdc_status op_linear_t(op_ctx *cx, const float *x, int64_t M, int64_t K, const void *W, op_dtype wt, const float *b, int64_t N,
                 float *y);
sdc_status op_conv2d_t(op_ctx *cx, const float *x, int B, int C, int H, int W, const void *w, op_dtype wt, const float *b, int O,
                       int k, int stride, int pad, float *y);
/* op_conv2d_t, then y += res (res shaped as y; NULL: none), then op_relu
 * when relu is set. Backends that can do the two in the convolution's own
 * output pass (the CPU's Winograd path: no extra trips through memory) do;
 * the others run the three ops. Results equal the three ops'. */
sdc_status op_conv2d_fused(op_ctx *cx, const float *x, int B, int C, int H, int W, const void *w, op_dtype wt,
                           const float *b, int O, int k, int stride, int pad, float *y, const float *res, int relu);

/* Opt-in reduced precision (--dtype bf16): with OP_BF16 every GEMM-backed op
 * (linear, conv, attention) rounds its operands to bfloat16 and accumulates
 * in float32 with the CPU's BF16 dot-product instructions (AVX512_BF16),
 * about twice the float32 rate; results move by ~1e-2 relative, so the
 * float32 default is what matches diffusers. Ignored (stays OP_F32) on CPUs
 * without AVX512_BF16; op_compute() says which is in force. Per context. */
void op_set_compute(op_ctx *cx, op_dtype dt);
op_dtype op_compute(const op_ctx *cx);

/* GroupNorm over x[B,C,HW] with G groups, affine gamma/beta[C]; silu != 0
 * applies SiLU after the affine (fused GroupNorm+SiLU). y may equal x. */
void op_group_norm(op_ctx *cx, const float *x, float *y, int B, int C, int64_t HW, int G, float eps, const float *gamma,
                   const float *beta, int silu);

/* LayerNorm over the last dim D of x[rows,D]. y may equal x. */
void op_layer_norm(op_ctx *cx, const float *x, float *y, int64_t rows, int D, float eps, const float *gamma, const float *beta);

void op_silu(op_ctx *cx, float *x, int64_t n);
void op_gelu(op_ctx *cx, float *x, int64_t n);       /* exact (erf) GELU */
void op_quick_gelu(op_ctx *cx, float *x, int64_t n); /* x * sigmoid(1.702 x) */
void op_relu(op_ctx *cx, float *x, int64_t n);       /* max(x, 0); NaN stays NaN, as torch's */
/* x = tanh(x / m) * m, m > 0: the soft clamp to (-m, m) of TAESD's decoder
 * (diffusers DecoderTiny: torch.tanh(x / 3) * 3), divided, not multiplied
 * by 1/m, as the reference rounds it. */
void op_tanh_clamp(op_ctx *cx, float *x, float m, int64_t n);
/* GEGLU: x[rows, 2D] -> y[rows, D] = x[:, :D] * gelu(x[:, D:]) */
void op_geglu(op_ctx *cx, const float *x, float *y, int64_t rows, int D);

void op_add(op_ctx *cx, float *y, const float *x, int64_t n);            /* y += x */
void op_scale(op_ctx *cx, float *y, float s, int64_t n);                  /* y *= s */
/* y[B,C,HW] += v[B,C] broadcast over HW */
void op_add_channel_bias(op_ctx *cx, float *y, const float *v, int B, int C, int64_t HW);

/* Multi-head scaled-dot-product attention, never materialising more than a
 * block of query rows against all keys per thread.
 * q: [B, Nq, heads*dh] with row stride q_ld; k, v: [B, Nk, heads*dh] with row
 * stride kv_ld; out: [B, Nq, heads*dh] contiguous. causal masks j > i. */
sdc_status op_attention(op_ctx *cx, const float *q, int64_t q_ld, const float *k, const float *v, int64_t kv_ld, int B,
                        int Nq, int Nk, int heads, int dh, float scale, int causal, float *out);

/* torch F.interpolate(mode="nearest") from [BC,H,W] to [BC,Ho,Wo]. */
void op_upsample_nearest(op_ctx *cx, const float *x, float *y, int64_t BC, int H, int W, int Ho, int Wo);

/* [B,C,HW] <-> [B,HW,C] */
void op_nchw_to_nhwc(op_ctx *cx, const float *x, float *y, int B, int C, int64_t HW);
void op_nhwc_to_nchw(op_ctx *cx, const float *x, float *y, int B, int C, int64_t HW);

/* Sinusoidal timestep embedding of diffusers' get_timestep_embedding:
 * out[n, dim] for t[n]; flip_sin_to_cos puts cos first; shift = freq_shift.
 * t and out are activation memory: the timesteps of a step are uploaded
 * with the step's latents, so a captured step (op_graph) reads this step's
 * values and not the ones it was captured with. */
void op_timestep_embedding(op_ctx *cx, const float *t, int n, int dim, int flip_sin_to_cos, float shift, float *out);

/* ---- weights and precision on a device backend ----
 * op_weight_upload copies a parameter (n elements of src_dt, host memory)
 * into device memory as dst_dt (SDC_ERR_UNSUPPORTED on the CPU, which reads
 * weights in place); op_weight_free releases one. op_set_precision tells the
 * backend the activation precision of the component about to run (weights
 * of that component were uploaded in it); the CPU ignores it. */
sdc_status op_weight_upload(op_ctx *cx, const void *host, op_dtype src_dt, int64_t n, op_dtype dst_dt, void **dev);
void op_weight_free(op_ctx *cx, void *dev);
void op_set_precision(op_ctx *cx, op_dtype dt);

/* ---- activation memory -------------------------------------------------
 * The model code (src/nn, the text encoder) never reads or writes
 * activations from the host: every activation buffer comes from op_alloc and
 * is touched only through ops, so that a backend may keep activations in
 * device memory. The public model entry points take and return host memory
 * and cross the boundary with op_upload / op_download. On the CPU all of
 * this is malloc / memcpy. Weights are not activations (the backend gets
 * them as loaded). */

/* n floats of activation memory (never NULL on success; n <= 0 allocates 1);
 * SDC_ERR_NOMEM when it cannot. Release with op_free on the same context,
 * never free(). */
sdc_status op_alloc(op_ctx *cx, float **p, int64_t n);
void op_free(op_ctx *cx, void *p); /* NULL is a no-op */
/* Allocations by op_alloc on cx not yet released by op_free: tests
 * check that a forward returns it to where it started, which a buffer
 * released with free() instead would not. */
int64_t op_live_allocations(const op_ctx *cx);
/* 1 when activation memory is host memory (the CPU backend): callers that
 * must hand activations to host code (debug taps) then pass the pointer
 * itself instead of downloading a copy. */
int op_host_memory(const op_ctx *cx);

/* Host <-> activation memory, n floats. They are where a device backend
 * synchronises, so asynchronous failures surface here. */
sdc_status op_upload(op_ctx *cx, float *dev, const float *host, int64_t n);
sdc_status op_download(op_ctx *cx, float *host, const float *dev, int64_t n);

/* Within activation memory: dst[n] = src[n] (no overlap). */
void op_copy(op_ctx *cx, float *dst, const float *src, int64_t n);
/* Block copy for concatenations: dst[r * dst_ld + c] = src[r * src_ld + c]
 * for r < rows, c < cols (no overlap). */
void op_copy_2d(op_ctx *cx, float *dst, int64_t dst_ld, const float *src, int64_t src_ld, int64_t rows, int64_t cols);
/* y = a * x + b elementwise (one rounding per operation, no FMA, so that
 * 2x - 1 is bitwise the reference's); y may equal x. */
void op_affine(op_ctx *cx, float *y, const float *x, float a, float b, int64_t n);
/* torch F.pad(x, (0, Wo - W, 0, Ho - H)): each [H, W] plane of x[BC, H, W]
 * into the top-left of a zeroed [Ho, Wo] plane of y; Ho >= H, Wo >= W. */
void op_pad_zero(op_ctx *cx, const float *x, float *y, int64_t BC, int H, int W, int Ho, int Wo);
/* dst[i, :] = src[rows[i], :] widened to float32, for i < n: the token
 * embedding lookup (src a weight table, any op_dtype) and the EOS pooling
 * (src activations, OP_F32). src rows are `cols` wide and contiguous; rows
 * is host memory (token ids, positions chosen on the host). */
void op_gather_rows(op_ctx *cx, float *dst, const void *src, op_dtype st, int64_t cols, const int64_t *rows, int64_t n);

/* Emulated device only (tests): float32 convolutions round their operands
 * to TF32 (11 significant bits, float32's range), as the CUDA backend's
 * float32 convolutions do on tensor cores by default (cu_conv_tf32). */
void op_emulate_conv_tf32(op_ctx *cx, int on);

/* ---- step graphs ----------------------------------------------------
 * A step that repeats with the same shapes (the UNet call of each denoising
 * step) is recorded once and replayed: on CUDA a CUDA graph (one launch
 * instead of ~1500 kernel launches and their host-side work), on the
 * emulated device a list of the recorded ops run by the CPU (so the tests
 * hold the model code to what capture needs). Between op_graph_begin and
 * op_graph_end the ops are recorded, not run: their results exist only
 * after op_graph_launch. What capture needs of the code in between:
 *  - inputs and outputs in activation memory allocated before the capture;
 *    a launch reads the inputs' current contents (op_upload them between
 *    launches) and writes the outputs;
 *  - no host round trip: op_upload, op_download, op_sync, op_set_precision
 *    and op_gather_rows (host row ids) fail the capture;
 *  - buffers op_alloc'd during the capture are op_free'd before it ends: the
 *    graph keeps their memory (its addresses are baked into the graph) until
 *    op_graph_free.
 * A capture that breaks any of this, or a backend without graphs (the CPU:
 * SDC_ERR_UNSUPPORTED from op_graph_begin), leaves the caller to run the
 * step directly; op_graph_end reports the first violation, and nothing
 * stays recorded. One capture at a time per context, not nested; a graph
 * launches on the context that recorded it. */
typedef struct op_graph op_graph;
sdc_status op_graph_begin(op_ctx *cx);
sdc_status op_graph_end(op_ctx *cx, op_graph **g);
sdc_status op_graph_launch(op_graph *g);
void op_graph_free(op_graph *g); /* NULL is a no-op */
int op_graph_capturing(const op_ctx *cx);
/* Bytes of activation memory the graph keeps until op_graph_free. */
int64_t op_graph_bytes(const op_graph *g);
/* op_graph_launch calls since the process started (tests, benchmarks). */
long op_graph_launches(void);

#endif
