/* winograd.h - 3x3 stride-1 pad-1 convolution by Winograd F(2x2, 3x3) or
 * F(4x4, 3x3) (conv_winograd.c), used by op_conv2d where it pays off.
 * SDC_WINOGRAD=0 turns it off, =2 allows only F(2x2, 3x3). */
#ifndef SDC_BACKEND_CPU_WINOGRAD_H
#define SDC_BACKEND_CPU_WINOGRAD_H

#include "backend/backend.h"
#include "core/status.h"

/* Whether a Winograd variant beats the direct implicit GEMM for this shape. */
int winograd_worthwhile(const op_ctx *cx, int B, int C, int H, int W, int O);
/* y[B,O,H,W] = conv3x3(x[B,C,H,W], w[O,C,3,3] of type wt, pad 1) + bias[O]
 * (bias may be NULL), + res[B,O,H,W] when res is not NULL, then ReLU when
 * relu is set: the epilogue runs on each tile while it is in cache. */
sdc_status conv3x3_winograd(op_ctx *cx, const float *x, int B, int C, int H, int W, const void *w, op_dtype wt,
                            const float *bias, int O, float *y, const float *res, int relu);
/* The same with the output tile forced: m = 2 or 4 (tests). */
sdc_status conv3x3_winograd_m(op_ctx *cx, const float *x, int B, int C, int H, int W, const void *w, op_dtype wt,
                              const float *bias, int O, float *y, int m);

/* Tests: on = 0 makes F(4x4) use its portable transforms even where the
 * AVX-512 ones apply (1: back to the automatic choice). Returns whether this
 * CPU runs the AVX-512 ones at all. */
int winograd_vector_transforms(int on);

#endif
