/* backend_cuda.c - the CUDA ops (cuda_ops.h) as a backend table for the
 * dispatcher (ops.c). Activations live in device memory as float32: the
 * model code addresses them as float arrays (views such as q = qkv + D, the
 * second half of a concatenation), so their element size is fixed. The
 * precision of the component that runs (op_set_precision: f16/bf16 for the
 * UNet and text encoders, f32 for a VAE that needs it) is that of the GEMM
 * operands: matrices and kernels are uploaded once in it, and linear,
 * convolution and attention inputs are rounded to it on the way in (tensor
 * cores, float32 accumulation). Linear layers and 1x1 convolutions write
 * their float32 result directly (bias added in float32); 3x3 convolutions
 * and attention produce it in the operand precision, widened after. Norms,
 * biases and embeddings stay float32. A caching allocator makes a repeated step
 * allocate nothing; the first failure of a void op is kept until the next op
 * that returns a status (download, sync). Built only when nvcc built the
 * CUDA code. */
#ifdef SDC_HAVE_CUDA
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/cuda/cuda_ops.h"

#define ACT CU_F32 /* activations */
/* GEMM operands of the running component (op_set_precision) */
#define MM(cx) ((cu_dtype)(cx)->precision)

/* Per context (cx->be_state): the sticky error of void ops, the caching
 * allocator's blocks and the capture in progress. The CUDA runtime under it
 * (stream, handles, scratch: cuda_runtime.cu) is the device's, shared. */
typedef struct {
    void *p;
    size_t bytes;
    int captured; /* allocated during the step-graph capture in progress */
} block;
typedef struct dev_graph dev_graph;
typedef struct {
    sdc_status err;
    char err_msg[512];
    block *live, *cache;
    int nlive, caplive, ncache, capcache;
    dev_graph *capg; /* the capture in progress */
    int cap_fresh;   /* blocks allocated during it, not yet freed */
    int cap_oom;
} cuda_state;

static cuda_state *ST(op_ctx *cx) { return cx->be_state; }

/* ---- sticky error of void ops ---- */
static void keep(op_ctx *cx, sdc_status st) {
    cuda_state *S = ST(cx);
    if (st && !S->err) {
        S->err = st;
        snprintf(S->err_msg, sizeof S->err_msg, "%s", sdc_last_error());
    }
}

static sdc_status pending(op_ctx *cx) {
    cuda_state *S = ST(cx);
    if (!S->err) return SDC_OK;
    sdc_status st = S->err;
    S->err = SDC_OK;
    return sdc_fail(st, "%s", S->err_msg);
}

/* ---- caching allocator: freed blocks wait, by exact size, for the next
 * request of that size (the models free and reallocate the same shapes every
 * layer and every step) ---- */

static int push(block **a, int *n, int *cap, block b) {
    if (*n == *cap) {
        int c = *cap ? 2 * *cap : 256;
        block *t = realloc(*a, (size_t)c * sizeof(block));
        if (!t) return 0;
        *a = t;
        *cap = c;
    }
    (*a)[(*n)++] = b;
    return 1;
}

/* ---- step graphs: while a capture runs, freed blocks go to the graph
 * (its kernels' addresses are baked in) and are reused only within it; the
 * graph gives them back to the cache when it is freed. Blocks allocated
 * during the capture must be freed before it ends. ---- */
struct dev_graph {
    cu_graph *exec;
    block *owned;
    int nowned, capowned;
};

static int take(block *a, int *n, size_t bytes, void **d) {
    for (int i = *n - 1; i >= 0; i--)
        if (a[i].bytes == bytes) {
            *d = a[i].p;
            a[i] = a[--*n];
            return 1;
        }
    return 0;
}

static sdc_status dev_alloc(op_ctx *cx, float **p, int64_t n) {
    cuda_state *S = ST(cx);
    size_t bytes = (size_t)(n > 0 ? n : 1) * sizeof(float);
    bytes = (bytes + 255) & ~(size_t)255;
    void *d = NULL;
    /* during a capture, blocks the graph already holds come first */
    if (!(S->capg && take(S->capg->owned, &S->capg->nowned, bytes, &d))) take(S->cache, &S->ncache, bytes, &d);
    if (!d && S->capg) { /* cudaFree is not allowed while capturing: no flush */
        SDC_TRY(cu_malloc(&d, bytes));
    } else if (!d) {
        sdc_status st = cu_malloc(&d, bytes);
        if (st) { /* give the cache back to the driver and try once more */
            for (int i = 0; i < S->ncache; i++) cu_free(S->cache[i].p);
            S->ncache = 0;
            SDC_TRY(cu_malloc(&d, bytes));
        }
    }
    if (!push(&S->live, &S->nlive, &S->caplive, (block){d, bytes, S->capg != NULL})) {
        cu_free(d);
        return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    }
    if (S->capg) S->cap_fresh++;
    *p = d;
    return SDC_OK;
}

static void dev_free(op_ctx *cx, void *p) {
    cuda_state *S = ST(cx);
    for (int i = S->nlive - 1; i >= 0; i--)
        if (S->live[i].p == p) {
            block b = S->live[i];
            S->live[i] = S->live[--S->nlive];
            if (b.captured) S->cap_fresh--;
            b.captured = 0;
            if (S->capg) { /* a block from before the capture freed inside it becomes the graph's too */
                if (!push(&S->capg->owned, &S->capg->nowned, &S->capg->capowned, b)) S->cap_oom = 1;
                return;
            }
            if (!push(&S->cache, &S->ncache, &S->capcache, b)) cu_free(b.p);
            return;
        }
    keep(cx, sdc_fail(SDC_ERR_ARG, "op_free: %p is not device activation memory", p));
}

/* ---- host <-> device ---- */
static sdc_status dev_upload(op_ctx *cx, float *dev, const float *host, int64_t n) {
    SDC_TRY(pending(cx));
    return n > 0 ? cu_upload(dev, host, (size_t)n * sizeof(float)) : SDC_OK;
}

static sdc_status dev_download(op_ctx *cx, float *host, const float *dev, int64_t n) {
    SDC_TRY(pending(cx));
    return n > 0 ? cu_download(host, dev, (size_t)n * sizeof(float)) : SDC_OK;
}

/* Device scratch (operands rounded to the GEMM precision), the runtime's cu_scratch
 * slots: one per use so that the inputs and output of one op never share;
 * kept alive for graphs that captured them (cuda_ops.h). */
enum { SCR_X, SCR_Y, SCR_K, SCR_V, SCR_N };
_Static_assert(SCR_N <= CU_SCRATCH_USER_SLOTS, "backend scratch slots");
/* weights arrive with their op_dtype and go on as a cu_dtype */
_Static_assert((int)CU_F32 == (int)OP_F32 && (int)CU_F16 == (int)OP_F16 && (int)CU_BF16 == (int)OP_BF16,
               "cu_dtype and op_dtype share their values");
static sdc_status scratch(int slot, int64_t elems, cu_dtype dt, void **p) {
    return cu_scratch(slot, (size_t)(elems > 0 ? elems : 1) * cu_dtype_size(dt), p);
}

/* x[n] float32 -> scratch in the GEMM precision (x itself when that is float32) */
static sdc_status rounded(op_ctx *cx, int slot, const float *x, int64_t n, const void **out) {
    if (MM(cx) == CU_F32) {
        *out = x;
        return SDC_OK;
    }
    void *d;
    SDC_TRY(scratch(slot, n, MM(cx), &d));
    SDC_TRY(cu_convert(d, MM(cx), x, CU_F32, n));
    *out = d;
    return SDC_OK;
}

static sdc_status dev_sync(op_ctx *cx) {
    SDC_TRY(pending(cx));
    return cu_sync();
}

/* ---- layout ---- */
static void dev_copy(op_ctx *cx, float *dst, const float *src, int64_t n) {
    if (n > 0) keep(cx, cu_copy(dst, src, (size_t)n * sizeof(float)));
}
static void dev_copy_2d(op_ctx *cx, float *dst, int64_t dst_ld, const float *src, int64_t src_ld, int64_t rows, int64_t cols) {
    keep(cx, cu_copy_2d(dst, dst_ld, src, src_ld, rows, cols, ACT));
}
static void dev_affine(op_ctx *cx, float *y, const float *x, float a, float b, int64_t n) { keep(cx, cu_affine(y, x, a, b, ACT, n)); }
static void dev_pad_zero(op_ctx *cx, const float *x, float *y, int64_t BC, int H, int W, int Ho, int Wo) {
    keep(cx, cu_pad_zero(x, y, ACT, BC, H, W, Ho, Wo));
}
/* src: float32 activations (the EOS pooling) or a token table uploaded as a
 * matrix, in the GEMM precision (weights_to_device): gathered in its type, then widened */
static void dev_gather_rows(op_ctx *cx, float *dst, const void *src, op_dtype st, int64_t cols, const int64_t *rows, int64_t n) {
    if (st == OP_F32) {
        keep(cx, cu_gather_rows(dst, src, ACT, cols, rows, n));
        return;
    }
    void *t;
    sdc_status e = scratch(SCR_Y, n * cols, (cu_dtype)st, &t);
    if (!e) e = cu_gather_rows(t, src, (cu_dtype)st, cols, rows, n);
    if (!e) e = cu_convert(dst, ACT, t, (cu_dtype)st, n * cols);
    keep(cx, e);
}

/* ---- compute: matrices and kernels in their upload dtype (the GEMM precision, as a rule), biases float32 ---- */

/* int8 block weights (OP_Q8) have CPU kernels only */
static sdc_status refuse_q8(op_dtype wt) {
    if (wt != OP_Q8) return SDC_OK;
    return sdc_fail(SDC_ERR_UNSUPPORTED, "the CUDA backend has no int8 (q8) weight kernels; run q8 weights on the CPU");
}

/* queued: a failure shows now only when it is an argument error; the GEMM's
 * own failures surface at the next download or sync (keep) */
static sdc_status dev_linear_t(op_ctx *cx, const float *x, int64_t M, int64_t K, const void *W, op_dtype wt,
                               const float *b, int64_t N, float *y) {
    SDC_TRY(refuse_q8(wt));
    SDC_TRY(pending(cx));
    if (MM(cx) == CU_F32) /* bias fused into the GEMM's epilogue */
        return cu_linear_ex(x, ACT, M, K, W, (cu_dtype)wt, b, ACT, N, y, ACT);
    /* f16/bf16 operands, the float32 result and bias straight from the GEMM's epilogue */
    const void *xm;
    SDC_TRY(rounded(cx, SCR_X, x, M * K, &xm));
    return cu_linear_ex(xm, MM(cx), M, K, W, (cu_dtype)wt, b, ACT, N, y, ACT);
}

static sdc_status dev_conv2d_t(op_ctx *cx, const float *x, int B, int C, int H, int W, const void *w, op_dtype wt, const float *b,
                               int O, int k, int stride, int pad, float *y) {
    SDC_TRY(refuse_q8(wt));
    SDC_TRY(pending(cx));
    int Ho = (H + 2 * pad - k) / stride + 1, Wo = (W + 2 * pad - k) / stride + 1;
    int64_t HWo = (int64_t)Ho * Wo;
    const cu_dtype mm = MM(cx);
    if (mm == CU_F32) return cu_conv2d_ex(x, ACT, B, C, H, W, w, (cu_dtype)wt, b, ACT, O, k, stride, pad, y, ACT);
    const void *xm;
    void *ym;
    SDC_TRY(rounded(cx, SCR_X, x, (int64_t)B * C * H * W, &xm));
    if (k == 1 && stride == 1 && pad == 0) /* one GEMM: float32 out, bias added in float32 */
        return cu_conv2d_ex(xm, mm, B, C, H, W, w, (cu_dtype)wt, b, ACT, O, k, stride, pad, y, ACT);
    SDC_TRY(scratch(SCR_Y, (int64_t)B * O * HWo, mm, &ym));
    SDC_TRY(cu_conv2d(xm, mm, B, C, H, W, w, NULL, (cu_dtype)wt, O, k, stride, pad, ym));
    SDC_TRY(cu_convert(y, ACT, ym, mm, (int64_t)B * O * HWo));
    /* the bias is float32, the GEMM's operands are not: added afterwards */
    for (int i = 0; b && i < B; i++) SDC_TRY(cu_add_channel_bias(y + (int64_t)i * O * HWo, b, ACT, 1, O, HWo));
    return SDC_OK;
}

static void dev_group_norm(op_ctx *cx, const float *x, float *y, int B, int C, int64_t HW, int G, float eps, const float *gamma,
                           const float *beta, int silu) {
    keep(cx, cu_group_norm(x, y, ACT, B, C, HW, G, eps, gamma, beta, ACT, silu));
}
static void dev_layer_norm(op_ctx *cx, const float *x, float *y, int64_t rows, int D, float eps, const float *gamma,
                           const float *beta) {
    keep(cx, cu_layer_norm(x, y, ACT, rows, D, eps, gamma, beta, ACT));
}
static void dev_silu(op_ctx *cx, float *x, int64_t n) { keep(cx, cu_silu(x, ACT, n)); }
static void dev_relu(op_ctx *cx, float *x, int64_t n) { keep(cx, cu_relu(x, ACT, n)); }
static void dev_tanh_clamp(op_ctx *cx, float *x, float m, int64_t n) { keep(cx, cu_tanh_clamp(x, m, ACT, n)); }
static void dev_gelu(op_ctx *cx, float *x, int64_t n) { keep(cx, cu_gelu(x, ACT, n)); }
static void dev_quick_gelu(op_ctx *cx, float *x, int64_t n) { keep(cx, cu_quick_gelu(x, ACT, n)); }
static void dev_geglu(op_ctx *cx, const float *x, float *y, int64_t rows, int D) { keep(cx, cu_geglu(x, y, ACT, rows, D)); }
static void dev_add(op_ctx *cx, float *y, const float *x, int64_t n) { keep(cx, cu_add(y, x, ACT, n)); }
static void dev_scale(op_ctx *cx, float *y, float s, int64_t n) { keep(cx, cu_scale(y, s, ACT, n)); }
static void dev_add_channel_bias(op_ctx *cx, float *y, const float *v, int B, int C, int64_t HW) {
    keep(cx, cu_add_channel_bias(y, v, ACT, B, C, HW));
}
static sdc_status dev_attention(op_ctx *cx, const float *q, int64_t q_ld, const float *k, const float *v, int64_t kv_ld, int B,
                                int Nq, int Nk, int heads, int dh, float scale, int causal, float *out) {
    SDC_TRY(pending(cx));
    const cu_dtype mm = MM(cx);
    if (mm == CU_F32) return cu_attention(q, q_ld, k, v, kv_ld, ACT, B, Nq, Nk, heads, dh, scale, causal, out);
    /* q, k, v may be column slices of one projection (row strides q_ld,
     * kv_ld): the spans they cover are rounded as they lie, strides kept */
    int64_t w = (int64_t)heads * dh, nq = ((int64_t)B * Nq - 1) * q_ld + w, nk = ((int64_t)B * Nk - 1) * kv_ld + w;
    const void *qm, *km, *vm;
    void *om;
    SDC_TRY(rounded(cx, SCR_X, q, nq, &qm));
    SDC_TRY(rounded(cx, SCR_K, k, nk, &km));
    SDC_TRY(rounded(cx, SCR_V, v, nk, &vm));
    SDC_TRY(scratch(SCR_Y, (int64_t)B * Nq * w, mm, &om));
    SDC_TRY(cu_attention(qm, q_ld, km, vm, kv_ld, mm, B, Nq, Nk, heads, dh, scale, causal, om));
    return cu_convert(out, ACT, om, mm, (int64_t)B * Nq * w);
}
static void dev_upsample_nearest(op_ctx *cx, const float *x, float *y, int64_t BC, int H, int W, int Ho, int Wo) {
    keep(cx, cu_upsample_nearest(x, y, ACT, BC, H, W, Ho, Wo));
}
static void dev_nchw_to_nhwc(op_ctx *cx, const float *x, float *y, int B, int C, int64_t HW) {
    keep(cx, cu_nchw_to_nhwc(x, y, ACT, B, C, HW));
}
static void dev_nhwc_to_nchw(op_ctx *cx, const float *x, float *y, int B, int C, int64_t HW) {
    keep(cx, cu_nhwc_to_nchw(x, y, ACT, B, C, HW));
}
static void dev_timestep_embedding(op_ctx *cx, const float *t, int n, int dim, int flip_sin_to_cos, float shift, float *out) {
    keep(cx, cu_timestep_embedding(t, n, dim, flip_sin_to_cos, shift, out, ACT));
}

/* ---- weights ---- */
static sdc_status dev_weight_upload(op_ctx *cx, const void *host, op_dtype src_dt, int64_t n, op_dtype dst_dt, void **dev) {
    SDC_TRY(refuse_q8(src_dt));
    SDC_TRY(refuse_q8(dst_dt));
    size_t sb = (size_t)n * cu_dtype_size((cu_dtype)src_dt), db = (size_t)n * cu_dtype_size((cu_dtype)dst_dt);
    void *d = NULL, *tmp = NULL;
    SDC_TRY(cu_malloc(&d, db ? db : 1));
    sdc_status st = SDC_OK;
    if (src_dt == dst_dt) {
        st = cu_upload(d, host, sb);
    } else {
        st = cu_malloc(&tmp, sb ? sb : 1);
        if (!st) st = cu_upload(tmp, host, sb);
        if (!st) st = cu_convert(d, (cu_dtype)dst_dt, tmp, (cu_dtype)src_dt, n);
        if (!st) st = cu_sync();
        cu_free(tmp);
    }
    if (st) {
        cu_free(d);
        return st;
    }
    *dev = d;
    return SDC_OK;
}

static void dev_weight_free(op_ctx *cx, void *dev) { cu_free(dev); }
/* A new component runs: the blocks cached for the previous one's shapes go
 * back to the driver (e.g. the UNet's before the VAE decodes a large image),
 * so peak device memory is the larger of the two, not their sum. */
static void dev_precision_changed(op_ctx *cx) {
    cuda_state *S = ST(cx);
    if (S->ncache) keep(cx, cu_sync());
    for (int i = 0; i < S->ncache; i++) cu_free(S->cache[i].p);
    S->ncache = 0;
}

static void graph_release(op_ctx *cx, dev_graph *dg) {
    cuda_state *S = ST(cx);
    if (!dg) return;
    if (dg->exec) cu_graph_free(dg->exec);
    for (int i = 0; i < dg->nowned; i++)
        if (!push(&S->cache, &S->ncache, &S->capcache, dg->owned[i])) cu_free(dg->owned[i].p);
    free(dg->owned);
    free(dg);
}

static sdc_status dev_graph_begin(op_ctx *cx) {
    cuda_state *S = ST(cx);
    SDC_TRY(pending(cx));
    dev_graph *dg = calloc(1, sizeof *dg);
    if (!dg) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    sdc_status st = cu_graph_begin();
    if (st) {
        free(dg);
        return st;
    }
    S->capg = dg;
    S->cap_fresh = 0;
    S->cap_oom = 0;
    return SDC_OK;
}

static sdc_status dev_graph_end(op_ctx *cx, void **out) {
    cuda_state *S = ST(cx);
    dev_graph *dg = S->capg;
    S->capg = NULL;
    *out = NULL;
    for (int i = 0; i < S->nlive; i++) S->live[i].captured = 0; /* left in use: the caller's (an error below) */
    cu_graph *cg = NULL;
    sdc_status st = cu_graph_end(&cg); /* ends the capture even after a failed op */
    dg->exec = cg;
    sdc_status err = pending(cx); /* an op that failed while recording */
    if (!err && st) err = st;
    if (!err && S->cap_oom) err = sdc_fail(SDC_ERR_NOMEM, "out of memory while recording a step graph");
    if (!err && S->cap_fresh)
        err = sdc_fail(SDC_ERR_ARG, "%d buffer%s allocated during the step-graph capture %s still in use at its end",
                       S->cap_fresh, S->cap_fresh == 1 ? "" : "s", S->cap_fresh == 1 ? "is" : "are");
    if (err) {
        graph_release(cx, dg);
        return err;
    }
    *out = dg;
    return SDC_OK;
}

static sdc_status dev_graph_launch(op_ctx *cx, void *p) {
    SDC_TRY(pending(cx));
    return cu_graph_launch(((dev_graph *)p)->exec);
}

static void dev_graph_free(op_ctx *cx, void *p) {
    dev_graph *dg = p;
    if (dg && dg->exec) keep(cx, cu_sync()); /* a launch in flight may still use the blocks */
    graph_release(cx, dg);
}

static int64_t dev_graph_bytes(void *p) {
    const dev_graph *dg = p;
    int64_t n = 0;
    for (int i = 0; i < dg->nowned; i++) n += (int64_t)dg->owned[i].bytes;
    return n;
}

static sdc_status dev_ctx_init(op_ctx *cx) {
    cx->be_state = calloc(1, sizeof(cuda_state));
    cx->precision = OP_F16;
    return cx->be_state ? SDC_OK : sdc_fail(SDC_ERR_NOMEM, "out of memory");
}

/* every buffer and graph of the context is released by now: its cached
 * blocks go back to the driver */
static void dev_ctx_free(op_ctx *cx) {
    cuda_state *S = ST(cx);
    if (!S) return;
    if (S->ncache) (void)cu_sync();
    for (int i = 0; i < S->ncache; i++) cu_free(S->cache[i].p);
    for (int i = 0; i < S->nlive; i++) cu_free(S->live[i].p); /* leaked by the caller: reclaimed */
    free(S->cache);
    free(S->live);
    free(S);
    cx->be_state = NULL;
}

sdc_status cuda_backend_init(int device);
sdc_status cuda_backend_init(int device) { return cu_init(device); }

const op_backend op_backend_cuda = {
    .name = "cuda", .host_memory = 0, .ctx_init = dev_ctx_init, .ctx_free = dev_ctx_free, .alloc = dev_alloc, .free = dev_free, .upload = dev_upload,
    .download = dev_download, .copy = dev_copy, .copy_2d = dev_copy_2d, .affine = dev_affine,
    .pad_zero = dev_pad_zero, .gather_rows = dev_gather_rows, .linear_t = dev_linear_t, .conv2d_t = dev_conv2d_t,
    .group_norm = dev_group_norm, .layer_norm = dev_layer_norm, .silu = dev_silu, .gelu = dev_gelu,
    .quick_gelu = dev_quick_gelu, .relu = dev_relu, .tanh_clamp = dev_tanh_clamp, .geglu = dev_geglu, .add = dev_add, .scale = dev_scale,
    .add_channel_bias = dev_add_channel_bias, .attention = dev_attention, .upsample_nearest = dev_upsample_nearest,
    .nchw_to_nhwc = dev_nchw_to_nhwc, .nhwc_to_nchw = dev_nhwc_to_nchw, .timestep_embedding = dev_timestep_embedding,
    .weight_upload = dev_weight_upload, .weight_free = dev_weight_free, .precision_changed = dev_precision_changed,
    .sync = dev_sync, .graph_begin = dev_graph_begin, .graph_end = dev_graph_end, .graph_launch = dev_graph_launch,
    .graph_free = dev_graph_free, .graph_bytes = dev_graph_bytes};
#else
/* ISO C forbids an empty translation unit */
typedef int backend_cuda_not_built;
#endif
