/* ops.c - the dispatcher: every op of ops.h goes to the backend of the
 * context it is called with. It also owns each context's capture state
 * (refusing host round trips inside a capture), counts live activation
 * buffers per context for the tests, and counts FLOPs and per-op profile
 * times for the CUDA backend (below). Holds no arithmetic of its own. */
#include <assert.h>
#include <omp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "backend/backend.h"

static sdc_status refuse_in_capture(op_ctx *cx, const char *what);

#ifdef SDC_HAVE_CUDA
sdc_status cuda_backend_init(int device); /* cuda/backend_cuda.c */
#endif

/* ---- FLOPs and profile of a device backend ----
 * The CPU backend (and the emulated device, which runs the CPU ops) counts
 * GEMM FLOPs and profiles each op inside the op (cpu/profile.h). The CUDA
 * ops only queue work, so for OP_DEV_CUDA the dispatcher does both: the
 * FLOPs with the CPU ops' formulas (op_flops() must not depend on the
 * backend), and, while op_profile_enable(1), a wait for the device after
 * each op (cu_sync) before the op's clock stops. That wait is one host round
 * trip per op, which inflates small ops; benchmarks report the step time
 * without profiling beside it. CPU-only builds compile none of this; CUDA
 * builds running on the CPU pay one compare per op. */
#ifdef SDC_HAVE_CUDA
#include "backend/cpu/profile.h"
#include "backend/cuda/cuda_ops.h"

static void dev_account(op_ctx *cx, prof_kind kind, double t0, double c0, double flops) {
    if (cx->capturing) { /* recorded, not run: counted when a launch runs it (op_graph_launch) */
        cx->cap_flops += flops;
        return;
    }
    if (flops > 0) op_flops_add(flops);
    if (g_prof_on) {
        (void)cu_sync(); /* an asynchronous failure stays in the CUDA context: the next op_sync reports it */
        prof_add(kind, t0, c0, flops);
    }
}
#define DISPATCH(kind, flops, call)                                     \
    do {                                                                \
        if (cx->dev == OP_DEV_CUDA) {                                   \
            double acct_t0_ = g_prof_on ? prof_now() : 0.0;             \
            double acct_c0_ = g_prof_on ? prof_cpu_now() : 0.0;         \
            call;                                                       \
            dev_account(cx, kind, acct_t0_, acct_c0_, flops);           \
        } else {                                                        \
            call;                                                       \
        }                                                               \
    } while (0)

/* the CPU ops' counts (cpu/ops_gemm.c, ops_conv.c): 2*M*N*K, a convolution
 * as the direct GEMM it is (Winograd's fewer products are not subtracted) */
static double gemm_flops(int64_t M, int64_t N, int64_t K) { return 2.0 * (double)M * (double)N * (double)K; }
static double conv_flops(int B, int C, int H, int W, int O, int k, int stride, int pad) {
    int Ho = (H + 2 * pad - k) / stride + 1, Wo = (W + 2 * pad - k) / stride + 1;
    return 2.0 * B * (double)O * ((double)Ho * Wo) * ((double)C * k * k);
}
static prof_kind conv_kind(int k, int stride, int pad) {
    return k == 3 && stride == 1 ? PROF_CONV3 : k == 1 && stride == 1 && pad == 0 ? PROF_CONV1 : PROF_CONV_OTHER;
}
#else
#define DISPATCH(kind, flops, call) call
#endif

/* ---- contexts ---- */

static int all_cores(int n) { return n > 0 ? n : omp_get_num_procs(); }

sdc_status op_ctx_create(op_ctx **out, op_device dev, int threads) {
    *out = NULL;
    const op_backend *be;
    switch (dev) {
    case OP_DEV_CPU: be = &op_backend_cpu; break;
    case OP_DEV_EMULATED: be = &op_backend_emulated; break;
    case OP_DEV_CUDA:
#ifdef SDC_HAVE_CUDA
        SDC_TRY(cuda_backend_init(0));
        be = &op_backend_cuda;
        break;
#else
        return sdc_fail(SDC_ERR_UNSUPPORTED, "this build of sdc has no CUDA support (nvcc was not found when it "
                                             "was built); use the CPU");
#endif
    default: return sdc_fail(SDC_ERR_ARG, "unknown device %d", (int)dev);
    }
    op_ctx *cx = calloc(1, sizeof *cx);
    if (!cx) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    cx->be = be;
    cx->dev = dev;
    cx->threads = all_cores(threads);
    cx->compute = OP_F32;
    cx->precision = OP_F32;
    atomic_init(&cx->live, 0);
    if (be->ctx_init) {
        sdc_status st = be->ctx_init(cx);
        if (st) {
            free(cx);
            return st;
        }
    }
    *out = cx;
    return SDC_OK;
}

void op_ctx_free(op_ctx *cx) {
    if (!cx) return;
    assert(!cx->capturing && "op_ctx_free during a step-graph capture");
    if (cx->be->ctx_free) cx->be->ctx_free(cx);
    free(cx);
}

op_device op_ctx_device(const op_ctx *cx) { return cx->dev; }
const char *op_ctx_device_name(const op_ctx *cx) { return cx->be->name; }
void op_ctx_set_threads(op_ctx *cx, int n) { cx->threads = all_cores(n); }
int op_ctx_threads(const op_ctx *cx) { return cx->threads; }

void op_emulate_conv_tf32(op_ctx *cx, int on) { cx->tf32 = on; }

sdc_status op_weight_upload(op_ctx *cx, const void *host, op_dtype src_dt, int64_t n, op_dtype dst_dt, void **dev) {
    *dev = NULL;
    if (cx->capturing) return refuse_in_capture(cx, "op_weight_upload");
    if (!cx->be->weight_upload)
        return sdc_fail(SDC_ERR_UNSUPPORTED, "the %s backend reads weights in place", cx->be->name);
    return cx->be->weight_upload(cx, host, src_dt, n, dst_dt, dev);
}

void op_weight_free(op_ctx *cx, void *dev) {
    if (dev && cx->be->weight_free) cx->be->weight_free(cx, dev);
}

void op_set_precision(op_ctx *cx, op_dtype dt) {
    if (cx->capturing) {
        (void)refuse_in_capture(cx, "op_set_precision");
        return;
    }
    cx->precision = dt;
    if (cx->be->precision_changed) cx->be->precision_changed(cx);
}

sdc_status op_sync(op_ctx *cx) {
    if (cx->capturing) return refuse_in_capture(cx, "op_sync");
    return cx->be->sync ? cx->be->sync(cx) : SDC_OK;
}

sdc_status op_alloc(op_ctx *cx, float **p, int64_t n) {
    SDC_TRY(cx->be->alloc(cx, p, n));
    atomic_fetch_add_explicit(&cx->live, 1, memory_order_relaxed);
    return SDC_OK;
}

void op_free(op_ctx *cx, void *p) {
    if (!p) return;
    atomic_fetch_sub_explicit(&cx->live, 1, memory_order_relaxed);
    cx->be->free(cx, p);
}

int64_t op_live_allocations(const op_ctx *cx) {
    return (int64_t)atomic_load_explicit(&((op_ctx *)cx)->live, memory_order_relaxed);
}
int op_host_memory(const op_ctx *cx) { return cx->be->host_memory; }

/* ---- step graphs ----
 * The dispatcher owns the capture state: it refuses the calls that need the
 * host inside a capture (the first refusal is what op_graph_end reports) and
 * pairs each graph with the context that recorded it. */
struct op_graph {
    op_ctx *cx;
    void *impl;
    double flops; /* counted per launch where the backend's ops do not count themselves */
};
static atomic_long g_launches; /* instrumentation (tests, benchmarks), all contexts */

static sdc_status refuse_in_capture(op_ctx *cx, const char *what) {
    sdc_status st = sdc_fail(SDC_ERR_UNSUPPORTED, "%s while a step graph is being captured (a host round trip "
                                                  "cannot be recorded)", what);
    if (!cx->cap_err) {
        cx->cap_err = st;
        snprintf(cx->cap_msg, sizeof cx->cap_msg, "%s", sdc_last_error());
    }
    return st;
}

sdc_status op_graph_begin(op_ctx *cx) {
    if (cx->capturing) return sdc_fail(SDC_ERR_ARG, "op_graph_begin: a capture is already in progress");
    if (!cx->be->graph_begin) return sdc_fail(SDC_ERR_UNSUPPORTED, "the %s backend has no step graphs", cx->be->name);
    SDC_TRY(cx->be->graph_begin(cx));
    cx->capturing = 1;
    cx->cap_err = SDC_OK;
    cx->cap_flops = 0;
    return SDC_OK;
}

sdc_status op_graph_end(op_ctx *cx, op_graph **g) {
    *g = NULL;
    if (!cx->capturing) return sdc_fail(SDC_ERR_ARG, "op_graph_end: no capture in progress");
    cx->capturing = 0;
    void *impl = NULL;
    sdc_status st = cx->be->graph_end(cx, &impl);
    if (!st && cx->cap_err) {
        cx->be->graph_free(cx, impl);
        return sdc_fail(cx->cap_err, "%s", cx->cap_msg);
    }
    SDC_TRY(st);
    op_graph *o = malloc(sizeof *o);
    if (!o) {
        cx->be->graph_free(cx, impl);
        return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    }
    o->cx = cx;
    o->impl = impl;
    o->flops = cx->cap_flops;
    *g = o;
    return SDC_OK;
}

sdc_status op_graph_launch(op_graph *g) {
    if (!g) return sdc_fail(SDC_ERR_ARG, "op_graph_launch: no graph");
    if (g->cx->capturing) return sdc_fail(SDC_ERR_ARG, "op_graph_launch: called while capturing");
    atomic_fetch_add_explicit(&g_launches, 1, memory_order_relaxed);
    if (g->flops > 0) op_flops_add(g->flops);
    return g->cx->be->graph_launch(g->cx, g->impl);
}

void op_graph_free(op_graph *g) {
    if (!g) return;
    g->cx->be->graph_free(g->cx, g->impl);
    free(g);
}

int op_graph_capturing(const op_ctx *cx) { return cx->capturing; }
int64_t op_graph_bytes(const op_graph *g) { return g ? g->cx->be->graph_bytes(g->impl) : 0; }
long op_graph_launches(void) { return atomic_load_explicit(&g_launches, memory_order_relaxed); }

/* ---- data movement ---- */

sdc_status op_upload(op_ctx *cx, float *dev, const float *host, int64_t n) {
    if (cx->capturing) return refuse_in_capture(cx, "op_upload");
    return cx->be->upload(cx, dev, host, n);
}
sdc_status op_download(op_ctx *cx, float *host, const float *dev, int64_t n) {
    if (cx->capturing) return refuse_in_capture(cx, "op_download");
    return cx->be->download(cx, host, dev, n);
}
void op_copy(op_ctx *cx, float *dst, const float *src, int64_t n) {
    DISPATCH(PROF_LAYOUT, 0, cx->be->copy(cx, dst, src, n));
}
void op_copy_2d(op_ctx *cx, float *dst, int64_t dst_ld, const float *src, int64_t src_ld, int64_t rows, int64_t cols) {
    DISPATCH(PROF_LAYOUT, 0, cx->be->copy_2d(cx, dst, dst_ld, src, src_ld, rows, cols));
}
void op_affine(op_ctx *cx, float *y, const float *x, float a, float b, int64_t n) {
    DISPATCH(PROF_ADD_SCALE, 0, cx->be->affine(cx, y, x, a, b, n));
}
void op_pad_zero(op_ctx *cx, const float *x, float *y, int64_t BC, int H, int W, int Ho, int Wo) {
    DISPATCH(PROF_LAYOUT, 0, cx->be->pad_zero(cx, x, y, BC, H, W, Ho, Wo));
}
void op_gather_rows(op_ctx *cx, float *dst, const void *src, op_dtype st, int64_t cols, const int64_t *rows,
                    int64_t n) {
    if (cx->capturing) {
        (void)refuse_in_capture(cx, "op_gather_rows (row ids in host memory)");
        return;
    }
    DISPATCH(PROF_LAYOUT, 0, cx->be->gather_rows(cx, dst, src, st, cols, rows, n));
}

/* ---- compute ---- */

sdc_status op_linear(op_ctx *cx, const float *x, int64_t M, int64_t K, const float *W, const float *b, int64_t N,
                     float *y) {
    return op_linear_t(cx, x, M, K, W, OP_F32, b, N, y);
}
sdc_status op_linear_t(op_ctx *cx, const float *x, int64_t M, int64_t K, const void *W, op_dtype wt, const float *b,
                       int64_t N, float *y) {
    sdc_status st;
    DISPATCH(PROF_LINEAR, gemm_flops(M, N, K), st = cx->be->linear_t(cx, x, M, K, W, wt, b, N, y));
    return st;
}
sdc_status op_conv2d(op_ctx *cx, const float *x, int B, int C, int H, int W, const float *w, const float *b, int O,
                     int k, int stride, int pad, float *y) {
    return op_conv2d_t(cx, x, B, C, H, W, w, OP_F32, b, O, k, stride, pad, y);
}
sdc_status op_conv2d_t(op_ctx *cx, const float *x, int B, int C, int H, int W, const void *w, op_dtype wt,
                       const float *b, int O, int k, int stride, int pad, float *y) {
    sdc_status st;
    DISPATCH(conv_kind(k, stride, pad), conv_flops(B, C, H, W, O, k, stride, pad),
             st = cx->be->conv2d_t(cx, x, B, C, H, W, w, wt, b, O, k, stride, pad, y));
    return st;
}
sdc_status op_conv2d_fused(op_ctx *cx, const float *x, int B, int C, int H, int W, const void *w, op_dtype wt,
                           const float *b, int O, int k, int stride, int pad, float *y, const float *res, int relu) {
    if (!cx->be->conv2d_fused || (!res && !relu)) {
        SDC_TRY(op_conv2d_t(cx, x, B, C, H, W, w, wt, b, O, k, stride, pad, y));
        int64_t n = (int64_t)B * O * ((H + 2 * pad - k) / stride + 1) * ((W + 2 * pad - k) / stride + 1);
        if (res) op_add(cx, y, res, n);
        if (relu) op_relu(cx, y, n);
        return SDC_OK;
    }
    sdc_status st;
    DISPATCH(conv_kind(k, stride, pad), conv_flops(B, C, H, W, O, k, stride, pad),
             st = cx->be->conv2d_fused(cx, x, B, C, H, W, w, wt, b, O, k, stride, pad, y, res, relu));
    return st;
}
void op_group_norm(op_ctx *cx, const float *x, float *y, int B, int C, int64_t HW, int G, float eps,
                   const float *gamma, const float *beta, int silu) {
    DISPATCH(PROF_GROUP_NORM, 0, cx->be->group_norm(cx, x, y, B, C, HW, G, eps, gamma, beta, silu));
}
void op_layer_norm(op_ctx *cx, const float *x, float *y, int64_t rows, int D, float eps, const float *gamma,
                   const float *beta) {
    DISPATCH(PROF_LAYER_NORM, 0, cx->be->layer_norm(cx, x, y, rows, D, eps, gamma, beta));
}
void op_silu(op_ctx *cx, float *x, int64_t n) { DISPATCH(PROF_ACTIVATION, 0, cx->be->silu(cx, x, n)); }
void op_gelu(op_ctx *cx, float *x, int64_t n) { DISPATCH(PROF_ACTIVATION, 0, cx->be->gelu(cx, x, n)); }
void op_quick_gelu(op_ctx *cx, float *x, int64_t n) { DISPATCH(PROF_ACTIVATION, 0, cx->be->quick_gelu(cx, x, n)); }
void op_relu(op_ctx *cx, float *x, int64_t n) { DISPATCH(PROF_ACTIVATION, 0, cx->be->relu(cx, x, n)); }
void op_tanh_clamp(op_ctx *cx, float *x, float m, int64_t n) {
    DISPATCH(PROF_ACTIVATION, 0, cx->be->tanh_clamp(cx, x, m, n));
}
void op_geglu(op_ctx *cx, const float *x, float *y, int64_t rows, int D) {
    DISPATCH(PROF_ACTIVATION, 0, cx->be->geglu(cx, x, y, rows, D));
}
void op_add(op_ctx *cx, float *y, const float *x, int64_t n) { DISPATCH(PROF_ADD_SCALE, 0, cx->be->add(cx, y, x, n)); }
void op_scale(op_ctx *cx, float *y, float s, int64_t n) { DISPATCH(PROF_ADD_SCALE, 0, cx->be->scale(cx, y, s, n)); }
void op_add_channel_bias(op_ctx *cx, float *y, const float *v, int B, int C, int64_t HW) {
    DISPATCH(PROF_ADD_SCALE, 0, cx->be->add_channel_bias(cx, y, v, B, C, HW));
}
sdc_status op_attention(op_ctx *cx, const float *q, int64_t q_ld, const float *k, const float *v, int64_t kv_ld,
                        int B, int Nq, int Nk, int heads, int dh, float scale, int causal, float *out) {
    sdc_status st;
    /* the CPU op's count: both products in full, causal or not */
    DISPATCH(PROF_ATTENTION, 4.0 * B * heads * (double)Nq * (double)Nk * dh,
             st = cx->be->attention(cx, q, q_ld, k, v, kv_ld, B, Nq, Nk, heads, dh, scale, causal, out));
    return st;
}
void op_upsample_nearest(op_ctx *cx, const float *x, float *y, int64_t BC, int H, int W, int Ho, int Wo) {
    DISPATCH(PROF_RESIZE, 0, cx->be->upsample_nearest(cx, x, y, BC, H, W, Ho, Wo));
}
void op_nchw_to_nhwc(op_ctx *cx, const float *x, float *y, int B, int C, int64_t HW) {
    DISPATCH(PROF_LAYOUT, 0, cx->be->nchw_to_nhwc(cx, x, y, B, C, HW));
}
void op_nhwc_to_nchw(op_ctx *cx, const float *x, float *y, int B, int C, int64_t HW) {
    DISPATCH(PROF_LAYOUT, 0, cx->be->nhwc_to_nchw(cx, x, y, B, C, HW));
}
void op_timestep_embedding(op_ctx *cx, const float *t, int n, int dim, int flip_sin_to_cos, float shift, float *out) {
    DISPATCH(PROF_ACTIVATION, 0, cx->be->timestep_embedding(cx, t, n, dim, flip_sin_to_cos, shift, out));
}
