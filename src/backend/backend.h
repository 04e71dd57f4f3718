/* backend.h - what a backend provides to the dispatcher in ops.c (internal to
 * src/backend): one table of functions with the semantics of the op_* of the
 * same name in ops.h. The CPU table (cpu/backend_cpu.c) is always there; the
 * CUDA one (cuda/backend_cuda.c) when nvcc built the CUDA code. A backend's
 * void ops that can fail on a device record the failure (first one wins) and
 * report it from the next call that returns a status (download, sync). */
#ifndef SDC_BACKEND_BACKEND_H
#define SDC_BACKEND_BACKEND_H

#include "backend/ops.h"

typedef struct {
    const char *name;
    /* activation memory */
    sdc_status (*alloc)(float **p, int64_t n);
    void (*free)(void *p);
    int host_memory;
    sdc_status (*upload)(float *dev, const float *host, int64_t n);
    sdc_status (*download)(float *host, const float *dev, int64_t n);
    void (*copy)(float *dst, const float *src, int64_t n);
    void (*copy_2d)(float *dst, int64_t dst_ld, const float *src, int64_t src_ld, int64_t rows, int64_t cols);
    void (*affine)(float *y, const float *x, float a, float b, int64_t n);
    void (*pad_zero)(const float *x, float *y, int64_t BC, int H, int W, int Ho, int Wo);
    void (*gather_rows)(float *dst, const void *src, op_dtype st, int64_t cols, const int64_t *rows, int64_t n);
    /* compute */
    void (*linear_t)(const float *x, int64_t M, int64_t K, const void *W, op_dtype wt, const float *b, int64_t N,
                     float *y);
    sdc_status (*conv2d_t)(const float *x, int B, int C, int H, int W, const void *w, op_dtype wt, const float *b,
                           int O, int k, int stride, int pad, float *y);
    void (*group_norm)(const float *x, float *y, int B, int C, int64_t HW, int G, float eps, const float *gamma,
                       const float *beta, int silu);
    void (*layer_norm)(const float *x, float *y, int64_t rows, int D, float eps, const float *gamma,
                       const float *beta);
    void (*silu)(float *x, int64_t n);
    void (*gelu)(float *x, int64_t n);
    void (*quick_gelu)(float *x, int64_t n);
    void (*geglu)(const float *x, float *y, int64_t rows, int D);
    void (*add)(float *y, const float *x, int64_t n);
    void (*scale)(float *y, float s, int64_t n);
    void (*add_channel_bias)(float *y, const float *v, int B, int C, int64_t HW);
    sdc_status (*attention)(const float *q, int64_t q_ld, const float *k, const float *v, int64_t kv_ld, int B,
                            int Nq, int Nk, int heads, int dh, float scale, int causal, float *out);
    void (*upsample_nearest)(const float *x, float *y, int64_t BC, int H, int W, int Ho, int Wo);
    void (*nchw_to_nhwc)(const float *x, float *y, int B, int C, int64_t HW);
    void (*nhwc_to_nchw)(const float *x, float *y, int B, int C, int64_t HW);
    void (*timestep_embedding)(const float *t, int n, int dim, int flip_sin_to_cos, float shift, float *out);
    /* device backends: copy a weight tensor (src_dt as loaded, n elements) into
     * device memory as dst_dt, and free one; NULL on the CPU */
    sdc_status (*weight_upload)(const void *host, op_dtype src_dt, int64_t n, op_dtype dst_dt, void **dev);
    void (*weight_free)(void *dev);
    /* set the activation (and weight) precision of the component about to run */
    void (*set_precision)(op_dtype dt);
    sdc_status (*sync)(void);
    /* step graphs (ops.h: op_graph_*); NULL where the backend has none. The
     * dispatcher refuses host round trips while capturing; the backend
     * records instead of running, and keeps the memory freed during a capture
     * for its graph. */
    sdc_status (*graph_begin)(void);
    sdc_status (*graph_end)(void **graph);
    sdc_status (*graph_launch)(void *graph);
    void (*graph_free)(void *graph);
    int64_t (*graph_bytes)(void *graph);
} op_backend;

extern const op_backend op_backend_cpu;
/* The CPU ops behind a "device" whose memory the host must not touch
 * directly (op_host_memory() == 0): tests run the models through it to check
 * that every activation crosses the boundary through op_upload/op_download. */
extern const op_backend op_backend_emulated;
#ifdef SDC_HAVE_CUDA
extern const op_backend op_backend_cuda;
#endif

#endif
