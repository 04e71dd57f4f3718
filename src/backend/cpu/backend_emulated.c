/* backend_emulated.c - the CPU ops behind an "emulated device" for tests:
 * host memory the model code must treat as foreign (op_host_memory() == 0),
 * so every activation that reaches host code goes through op_download as it
 * would from a GPU; and, under op_set_precision(cx, OP_F16 / OP_BF16), the
 * roundings the CUDA backend makes (backend_cuda.c): linear, convolution and
 * attention inputs and weights rounded to the GEMM precision, and the
 * outputs of 3x3 convolutions and attention; linear and 1x1 outputs, and
 * everything else, float32. The tests use it to predict, without a GPU, how
 * far a --device cuda image may move from the float32 golden. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/emulated_graph.h"

/* x rounded to nearest-even in f16 (11 significant bits, subnormals below
 * 2^-14, overflow to inf), bf16 (8 significant bits, float32's range), or,
 * for OP_F32 (the TF32 convolutions), 11 significant bits in float32's range */
static float round_to(float x, op_dtype dt) {
    if (!isfinite(x) || x == 0.0f) return x;
    int e;
    frexpf(x, &e); /* |x| = m * 2^e, m in [0.5, 1) */
    if (dt == OP_F32) {
        float q = ldexpf(1.0f, e - 11);
        return rintf(x / q) * q;
    }
    if (dt == OP_F16) {
        if (fabsf(x) >= 65520.0f) return x > 0 ? INFINITY : -INFINITY;
        if (e < -13) e = -13; /* subnormal quantum 2^-24 */
        float q = ldexpf(1.0f, e - 11);
        return rintf(x / q) * q;
    }
    float q = ldexpf(1.0f, e - 8);
    return rintf(x / q) * q;
}

/* a rounded copy of n floats, or of a 16-bit tensor widened */
static float *rounded_copy_as(const void *src, op_dtype st, int64_t n, op_dtype to) {
    float *d = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    if (!d) return NULL;
    for (int64_t i = 0; i < n; i++) {
        float v;
        if (st == OP_F32) {
            v = ((const float *)src)[i];
        } else {
            uint16_t h = ((const uint16_t *)src)[i];
            if (st == OP_BF16) {
                uint32_t u = (uint32_t)h << 16;
                memcpy(&v, &u, 4);
            } else { /* IEEE half */
                uint32_t s = (uint32_t)(h >> 15) << 31, ex = (h >> 10) & 31, m = h & 1023;
                v = ex == 0 ? ldexpf((float)m, -24) : ex == 31 ? (m ? NAN : INFINITY) : ldexpf((float)(m | 1024), (int)ex - 25);
                if (s) v = -v;
            }
        }
        d[i] = round_to(v, to);
    }
    return d;
}

static float *rounded_copy(const op_ctx *cx, const void *src, op_dtype st, int64_t n) {
    return rounded_copy_as(src, st, n, cx->precision);
}

static void round_in_place(const op_ctx *cx, float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = round_to(x[i], cx->precision);
}

/* int8 weights (OP_Q8) run the CPU's int8 kernels, which have no rounding
 * model of a GPU: only in float32 (and not with TF32 convolutions) */
static sdc_status refuse_q8(const op_ctx *cx, op_dtype wt, int conv) {
    if (wt != OP_Q8 || (cx->precision == OP_F32 && !(conv && cx->tf32))) return SDC_OK;
    return sdc_fail(SDC_ERR_UNSUPPORTED, "int8 (q8) weights run on the emulated device in f32 only (it has no "
                                         "reduced-precision model of them)");
}

static sdc_status emu_linear_t(op_ctx *cx, const float *x, int64_t M, int64_t K, const void *W, op_dtype wt,
                               const float *b, int64_t N, float *y) {
    SDC_TRY(refuse_q8(cx, wt, 0));
    if (cx->precision == OP_F32) return cpu_linear_t(cx, x, M, K, W, wt, b, N, y);
    /* rounded operands; the float32 result and bias as the GEMM's epilogue writes them */
    float *xr = rounded_copy(cx, x, OP_F32, M * K), *wr = rounded_copy(cx, W, wt, N * K);
    sdc_status st = xr && wr ? cpu_linear_t(cx, xr, M, K, wr, OP_F32, b, N, y) : sdc_fail(SDC_ERR_NOMEM, "out of memory");
    free(xr);
    free(wr);
    return st;
}

static sdc_status emu_conv2d_t(op_ctx *cx, const float *x, int B, int C, int H, int W, const void *w, op_dtype wt, const float *b,
                               int O, int k, int stride, int pad, float *y) {
    SDC_TRY(refuse_q8(cx, wt, 1));
    if (cx->precision == OP_F32 && !cx->tf32) return cpu_conv2d_t(cx, x, B, C, H, W, w, wt, b, O, k, stride, pad, y);
    if (cx->precision == OP_F32) { /* TF32: operands rounded, float32 result */
        float *xr = rounded_copy_as(x, OP_F32, (int64_t)B * C * H * W, OP_F32);
        float *wr = rounded_copy_as(w, wt, (int64_t)O * C * k * k, OP_F32);
        sdc_status st = xr && wr ? cpu_conv2d_t(cx, xr, B, C, H, W, wr, OP_F32, b, O, k, stride, pad, y)
                                 : sdc_fail(SDC_ERR_NOMEM, "out of memory");
        free(xr);
        free(wr);
        return st;
    }
    int64_t HWo = (int64_t)((H + 2 * pad - k) / stride + 1) * ((W + 2 * pad - k) / stride + 1);
    float *xr = rounded_copy(cx, x, OP_F32, (int64_t)B * C * H * W), *wr = rounded_copy(cx, w, wt, (int64_t)O * C * k * k);
    sdc_status st = xr && wr ? cpu_conv2d_t(cx, xr, B, C, H, W, wr, OP_F32, NULL, O, k, stride, pad, y)
                             : sdc_fail(SDC_ERR_NOMEM, "out of memory");
    free(xr);
    free(wr);
    if (st) return st;
    if (!(k == 1 && stride == 1 && pad == 0)) round_in_place(cx, y, (int64_t)B * O * HWo); /* 1x1: float32 out */
    for (int i = 0; b && i < B; i++) cpu_add_channel_bias(cx, y + (int64_t)i * O * HWo, b, 1, O, HWo);
    return SDC_OK;
}

static sdc_status emu_attention(op_ctx *cx, const float *q, int64_t q_ld, const float *k, const float *v, int64_t kv_ld, int B,
                                int Nq, int Nk, int heads, int dh, float scale, int causal, float *out) {
    if (cx->precision == OP_F32) return cpu_attention(cx, q, q_ld, k, v, kv_ld, B, Nq, Nk, heads, dh, scale, causal, out);
    int64_t w = (int64_t)heads * dh, nq = ((int64_t)B * Nq - 1) * q_ld + w, nk = ((int64_t)B * Nk - 1) * kv_ld + w;
    float *qr = rounded_copy(cx, q, OP_F32, nq), *kr = rounded_copy(cx, k, OP_F32, nk), *vr = rounded_copy(cx, v, OP_F32, nk);
    sdc_status st = qr && kr && vr ? cpu_attention(cx, qr, q_ld, kr, vr, kv_ld, B, Nq, Nk, heads, dh, scale, causal, out)
                                   : sdc_fail(SDC_ERR_NOMEM, "out of memory");
    free(qr);
    free(kr);
    free(vr);
    if (!st) round_in_place(cx, out, (int64_t)B * Nq * w);
    return st;
}

/* the plain table; op_backend_emulated (emulated_graph.c) wraps it with
 * step-graph recording */
const op_backend emu_plain = {
    .name = "emulated device", .host_memory = 0, .alloc = cpu_alloc, .free = cpu_free, .upload = cpu_upload,
    .download = cpu_download, .copy = cpu_copy, .copy_2d = cpu_copy_2d, .affine = cpu_affine,
    .pad_zero = cpu_pad_zero, .gather_rows = cpu_gather_rows, .linear_t = emu_linear_t, .conv2d_t = emu_conv2d_t,
    .group_norm = cpu_group_norm, .layer_norm = cpu_layer_norm, .silu = cpu_silu, .gelu = cpu_gelu,
    .quick_gelu = cpu_quick_gelu, .relu = cpu_relu, .tanh_clamp = cpu_tanh_clamp, .geglu = cpu_geglu, .add = cpu_add, .scale = cpu_scale,
    .add_channel_bias = cpu_add_channel_bias, .attention = emu_attention, .upsample_nearest = cpu_upsample_nearest,
    .nchw_to_nhwc = cpu_nchw_to_nhwc, .nhwc_to_nchw = cpu_nhwc_to_nchw, .timestep_embedding = cpu_timestep_embedding};
