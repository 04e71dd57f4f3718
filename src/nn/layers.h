/* layers.h - the building blocks shared by the text encoder, UNet and VAE:
 * parameter holders with loaders (by diffusers name prefix) and forwards. */
#ifndef SDC_NN_LAYERS_H
#define SDC_NN_LAYERS_H

#include "backend/ops.h"
#include "nn/weights.h"

/* w as stored (wt: f32, or f16/bf16 read from the file mapping), b float */
typedef struct { const void *w; const float *b; op_dtype wt; int in, out; } linear; /* w (out, in), b (out) or NULL */
typedef struct { const void *w; const float *b; op_dtype wt; int cin, cout, k, stride, pad; } conv2d; /* w (cout, cin, k, k) */
typedef struct { const float *g, *b; int C, groups; float eps; } group_norm;
typedef struct { const float *g, *b; int D; float eps; } layer_norm;

/* name is the module path, e.g. "down_blocks.0.resnets.1.conv1" */
sdc_status linear_load(weights *w, linear *l, int in, int out, int bias, const char *name);
sdc_status conv2d_load(weights *w, conv2d *c, int cin, int cout, int k, int stride, int pad, const char *name);
/* The same for a convolution that may have no bias (torch bias=False; b NULL). */
sdc_status conv2d_load_bias(weights *w, conv2d *c, int cin, int cout, int k, int stride, int pad, int bias,
                            const char *name);
sdc_status group_norm_load(weights *w, group_norm *n, int C, int groups, float eps, const char *name);
sdc_status layer_norm_load(weights *w, layer_norm *n, int D, float eps, const char *name);

/* The forwards run their ops in cx, the context of the model they belong to. */
/* x[M, in] -> y[M, out] */
sdc_status linear_fwd(op_ctx *cx, const linear *l, const float *x, int64_t M, float *y);
/* x[B, cin, H, W] -> y[B, cout, Ho, Wo] (caller-owned) */
sdc_status conv2d_fwd_into(op_ctx *cx, const conv2d *c, const float *x, int B, int H, int W, float *y);
/* The same, then y += res (NULL: none) and ReLU when relu is set (op_conv2d_fused). */
sdc_status conv2d_fwd_fused(op_ctx *cx, const conv2d *c, const float *x, int B, int H, int W, float *y,
                            const float *res, int relu);
/* the same into a new *y (op_alloc; release with op_free) */
sdc_status conv2d_fwd(op_ctx *cx, const conv2d *c, const float *x, int B, int H, int W, float **y, int *Ho, int *Wo);
void group_norm_fwd(op_ctx *cx, const group_norm *n, const float *x, float *y, int B, int64_t HW, int silu);
void layer_norm_fwd(op_ctx *cx, const layer_norm *n, const float *x, float *y, int64_t rows);

/* malloc that reports; n floats of host memory (the callers' side of the
 * model boundary: pipeline buffers, tiles). Activations inside the models
 * come from op_alloc (backend/ops.h) instead. */
sdc_status alloc_f32(float **p, int64_t n);

/* Debug taps and dump callbacks take host pointers: x itself when
 * activations are host memory (op_host_memory: the CPU pays nothing), else
 * a downloaded copy of its n floats in *tmp, which the caller free()s after
 * the call. NULL when the copy cannot be made (the tap is then skipped). */
const float *host_view(op_ctx *cx, const float *x, int64_t n, float **tmp);
/* The other direction: n floats of host memory copied into new activation
 * memory (*dev, released with op_free; NULL on failure). */
sdc_status act_from_host(op_ctx *cx, float **dev, const float *host, int64_t n);

#endif
