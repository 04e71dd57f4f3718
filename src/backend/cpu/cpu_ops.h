/* cpu_ops.h - the CPU backend's implementations of the ops in ops.h (same
 * semantics, cpu_ prefix), gathered into op_backend_cpu (backend_cpu.c) for
 * the dispatcher in ../ops.c. Internal to src/backend. They read the
 * context's thread count and compute precision (cx->threads, cx->compute). */
#ifndef SDC_BACKEND_CPU_OPS_H
#define SDC_BACKEND_CPU_OPS_H

#include "backend/backend.h"
#include "backend/q8.h"

sdc_status cpu_linear(op_ctx *cx, const float *x, int64_t M, int64_t K, const float *W, const float *b, int64_t N, float *y);
sdc_status cpu_conv2d(op_ctx *cx, const float *x, int B, int C, int H, int W, const float *w, const float *b, int O, int k,
                     int stride, int pad, float *y);
sdc_status cpu_linear_t(op_ctx *cx, const float *x, int64_t M, int64_t K, const void *W, op_dtype wt, const float *b, int64_t N,
                 float *y);
sdc_status cpu_conv2d_t(op_ctx *cx, const float *x, int B, int C, int H, int W, const void *w, op_dtype wt, const float *b, int O,
                       int k, int stride, int pad, float *y);
sdc_status cpu_conv2d_fused(op_ctx *cx, const float *x, int B, int C, int H, int W, const void *w, op_dtype wt,
                            const float *b, int O, int k, int stride, int pad, float *y, const float *res, int relu);
/* int8 convolution whose kernel has its columns in (ky, kx, c) order (conv_q8.c) */
sdc_status cpu_conv2d_q8_taps(op_ctx *cx, const float *x, int B, int C, int H, int W, const q8_matrix *w,
                              const float *bias, int O, int k, int stride, int pad, float *y);
/* SDC_ERR_SHAPE unless W (an OP_Q8 weight, backend/q8.h) is [rows][cols] */
sdc_status cpu_q8_check(const void *W, int64_t rows, int64_t cols, const char *op);
void cpu_group_norm(op_ctx *cx, const float *x, float *y, int B, int C, int64_t HW, int G, float eps, const float *gamma,
                   const float *beta, int silu);
void cpu_layer_norm(op_ctx *cx, const float *x, float *y, int64_t rows, int D, float eps, const float *gamma, const float *beta);
void cpu_silu(op_ctx *cx, float *x, int64_t n);
void cpu_gelu(op_ctx *cx, float *x, int64_t n);
void cpu_quick_gelu(op_ctx *cx, float *x, int64_t n);
void cpu_relu(op_ctx *cx, float *x, int64_t n);
void cpu_tanh_clamp(op_ctx *cx, float *x, float m, int64_t n);
void cpu_geglu(op_ctx *cx, const float *x, float *y, int64_t rows, int D);
void cpu_add(op_ctx *cx, float *y, const float *x, int64_t n);
void cpu_scale(op_ctx *cx, float *y, float s, int64_t n);
void cpu_add_channel_bias(op_ctx *cx, float *y, const float *v, int B, int C, int64_t HW);
sdc_status cpu_attention(op_ctx *cx, const float *q, int64_t q_ld, const float *k, const float *v, int64_t kv_ld, int B,
                        int Nq, int Nk, int heads, int dh, float scale, int causal, float *out);
void cpu_upsample_nearest(op_ctx *cx, const float *x, float *y, int64_t BC, int H, int W, int Ho, int Wo);
void cpu_nchw_to_nhwc(op_ctx *cx, const float *x, float *y, int B, int C, int64_t HW);
void cpu_nhwc_to_nchw(op_ctx *cx, const float *x, float *y, int B, int C, int64_t HW);
void cpu_timestep_embedding(op_ctx *cx, const float *t, int n, int dim, int flip_sin_to_cos, float shift, float *out);
sdc_status cpu_alloc(op_ctx *cx, float **p, int64_t n);
void cpu_free(op_ctx *cx, void *p);
sdc_status cpu_upload(op_ctx *cx, float *dev, const float *host, int64_t n);
sdc_status cpu_download(op_ctx *cx, float *host, const float *dev, int64_t n);
void cpu_copy(op_ctx *cx, float *dst, const float *src, int64_t n);
void cpu_copy_2d(op_ctx *cx, float *dst, int64_t dst_ld, const float *src, int64_t src_ld, int64_t rows, int64_t cols);
void cpu_affine(op_ctx *cx, float *y, const float *x, float a, float b, int64_t n);
void cpu_pad_zero(op_ctx *cx, const float *x, float *y, int64_t BC, int H, int W, int Ho, int Wo);
void cpu_gather_rows(op_ctx *cx, float *dst, const void *src, op_dtype st, int64_t cols, const int64_t *rows, int64_t n);

#endif
