/* conv_direct.h - stride-1 convolutions with few output channels as a
 * direct loop, equal to the implicit GEMM bit for bit (conv_direct.c), used
 * by op_conv2d where it pays off. SDC_CONV_DIRECT=0 turns it off. */
#ifndef SDC_BACKEND_CPU_CONV_DIRECT_H
#define SDC_BACKEND_CPU_CONV_DIRECT_H

#include "backend/backend.h"
#include "core/status.h"

/* Whether this shape and this CPU take the direct loop (O < 8, stride 1,
 * k <= 7, float32 compute, AVX2 or AVX-512). */
int conv_direct_worthwhile(const op_ctx *cx, op_dtype wt, int O, int k, int stride, int pad);
/* y[B,O,Ho,Wo] = conv2d(x[B,C,H,W], w[O,C,k,k] of type wt, stride 1, pad) + bias[O] (bias may be NULL) */
sdc_status conv_direct(op_ctx *cx, const float *x, int B, int C, int H, int W, const void *w, op_dtype wt,
                       const float *bias, int O, int k, int pad, float *y);

#endif
