/* backend.h - what a backend provides to the dispatcher in ops.c, and the
 * context every op runs in (internal to src/backend). One table of
 * functions with the semantics of the op_* of the same name in ops.h, each
 * taking the op_ctx it runs for. The CPU table (cpu/backend_cpu.c) is always
 * there; the CUDA one (cuda/backend_cuda.c) when nvcc built the CUDA code.
 * A backend's void ops that can fail on a device record the failure (first
 * one wins, per context) and report it from the next call that returns a
 * status (download, sync). */
#ifndef SDC_BACKEND_BACKEND_H
#define SDC_BACKEND_BACKEND_H

#include <stdatomic.h>

#include "backend/ops.h"

typedef struct op_backend op_backend;

/* Everything the ops of one model depend on. Nothing here is shared
 * between contexts: two models on different devices, thread counts or
 * precisions run side by side in one process. What a device has once (the
 * CUDA runtime's stream, library handles and scratch) is the backend's own,
 * shared by the contexts on that device. */
struct op_ctx {
    const op_backend *be;
    op_device dev;
    int threads;        /* CPU threads of this context's parallel loops and GEMMs (>= 1) */
    op_dtype compute;   /* CPU GEMM operands: OP_F32, or OP_BF16 where the CPU has AVX512_BF16 */
    op_dtype precision; /* device backends: GEMM operand precision of the component running */
    int tf32;           /* emulated device: float32 convolutions round their operands to TF32 */
    atomic_llong live;  /* op_alloc'd buffers not yet op_free'd */
    /* the step-graph capture in progress (the dispatcher's part) */
    int capturing;
    sdc_status cap_err; /* first host round trip refused during it */
    char cap_msg[512];
    double cap_flops;   /* FLOPs of the ops recorded by it (CUDA: counted per launch) */
    void *be_state;     /* the backend's per-context state (ctx_init / ctx_free) */
};

struct op_backend {
    const char *name;
    int host_memory;
    /* per-context state: called by op_ctx_create / op_ctx_free (NULL: none) */
    sdc_status (*ctx_init)(op_ctx *cx);
    void (*ctx_free)(op_ctx *cx);
    /* activation memory */
    sdc_status (*alloc)(op_ctx *cx, float **p, int64_t n);
    void (*free)(op_ctx *cx, void *p);
    sdc_status (*upload)(op_ctx *cx, float *dev, const float *host, int64_t n);
    sdc_status (*download)(op_ctx *cx, float *host, const float *dev, int64_t n);
    void (*copy)(op_ctx *cx, float *dst, const float *src, int64_t n);
    void (*copy_2d)(op_ctx *cx, float *dst, int64_t dst_ld, const float *src, int64_t src_ld, int64_t rows,
                    int64_t cols);
    void (*affine)(op_ctx *cx, float *y, const float *x, float a, float b, int64_t n);
    void (*pad_zero)(op_ctx *cx, const float *x, float *y, int64_t BC, int H, int W, int Ho, int Wo);
    void (*gather_rows)(op_ctx *cx, float *dst, const void *src, op_dtype st, int64_t cols, const int64_t *rows,
                        int64_t n);
    /* compute */
    sdc_status (*linear_t)(op_ctx *cx, const float *x, int64_t M, int64_t K, const void *W, op_dtype wt,
                           const float *b, int64_t N, float *y);
    sdc_status (*conv2d_t)(op_ctx *cx, const float *x, int B, int C, int H, int W, const void *w, op_dtype wt,
                           const float *b, int O, int k, int stride, int pad, float *y);
    /* conv2d_t + residual + ReLU in one pass (NULL: op_conv2d_fused runs the three ops) */
    sdc_status (*conv2d_fused)(op_ctx *cx, const float *x, int B, int C, int H, int W, const void *w, op_dtype wt,
                               const float *b, int O, int k, int stride, int pad, float *y, const float *res,
                               int relu);
    void (*group_norm)(op_ctx *cx, const float *x, float *y, int B, int C, int64_t HW, int G, float eps,
                       const float *gamma, const float *beta, int silu);
    void (*layer_norm)(op_ctx *cx, const float *x, float *y, int64_t rows, int D, float eps, const float *gamma,
                       const float *beta);
    void (*silu)(op_ctx *cx, float *x, int64_t n);
    void (*gelu)(op_ctx *cx, float *x, int64_t n);
    void (*quick_gelu)(op_ctx *cx, float *x, int64_t n);
    void (*relu)(op_ctx *cx, float *x, int64_t n);
    void (*tanh_clamp)(op_ctx *cx, float *x, float m, int64_t n);
    void (*geglu)(op_ctx *cx, const float *x, float *y, int64_t rows, int D);
    void (*add)(op_ctx *cx, float *y, const float *x, int64_t n);
    void (*scale)(op_ctx *cx, float *y, float s, int64_t n);
    void (*add_channel_bias)(op_ctx *cx, float *y, const float *v, int B, int C, int64_t HW);
    sdc_status (*attention)(op_ctx *cx, const float *q, int64_t q_ld, const float *k, const float *v, int64_t kv_ld,
                            int B, int Nq, int Nk, int heads, int dh, float scale, int causal, float *out);
    void (*upsample_nearest)(op_ctx *cx, const float *x, float *y, int64_t BC, int H, int W, int Ho, int Wo);
    void (*nchw_to_nhwc)(op_ctx *cx, const float *x, float *y, int B, int C, int64_t HW);
    void (*nhwc_to_nchw)(op_ctx *cx, const float *x, float *y, int B, int C, int64_t HW);
    void (*timestep_embedding)(op_ctx *cx, const float *t, int n, int dim, int flip_sin_to_cos, float shift,
                               float *out);
    /* device backends: copy a weight tensor (src_dt as loaded, n elements) into
     * device memory as dst_dt, and free one; NULL on the CPU */
    sdc_status (*weight_upload)(op_ctx *cx, const void *host, op_dtype src_dt, int64_t n, op_dtype dst_dt,
                                void **dev);
    void (*weight_free)(op_ctx *cx, void *dev);
    /* the component about to run changes: cx->precision already holds its
     * precision (NULL: nothing to do) */
    void (*precision_changed)(op_ctx *cx);
    sdc_status (*sync)(op_ctx *cx);
    /* step graphs (ops.h: op_graph_*); NULL where the backend has none. The
     * dispatcher refuses host round trips while capturing; the backend
     * records instead of running, and keeps the memory freed during a capture
     * for its graph. */
    sdc_status (*graph_begin)(op_ctx *cx);
    sdc_status (*graph_end)(op_ctx *cx, void **graph);
    sdc_status (*graph_launch)(op_ctx *cx, void *graph);
    void (*graph_free)(op_ctx *cx, void *graph);
    int64_t (*graph_bytes)(void *graph);
};

extern const op_backend op_backend_cpu;
/* The CPU ops behind a "device" whose memory the host must not touch
 * directly (op_host_memory() == 0): tests run the models through it to check
 * that every activation crosses the boundary through op_upload/op_download. */
extern const op_backend op_backend_emulated;
#ifdef SDC_HAVE_CUDA
extern const op_backend op_backend_cuda;
#endif

#endif
