/* ops.c - the dispatcher: every op of ops.h goes to the backend chosen with
 * op_set_device (the CPU unless a program asks for another). It also counts
 * live activation buffers for the tests, and FLOPs and per-op profile times
 * for the CUDA backend (below). Holds no arithmetic of its own. */
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "backend/backend.h"

static const op_backend *g_be = &op_backend_cpu;
static op_device g_dev = OP_DEV_CPU;
static atomic_llong g_live; /* op_alloc'd buffers not yet op_free'd */
static int g_capturing;     /* between op_graph_begin and op_graph_end */
static sdc_status refuse_in_capture(const char *what);
static double g_cap_flops; /* FLOPs of the ops recorded by the capture in progress (CUDA) */

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

static void dev_account(prof_kind kind, double t0, double c0, double flops) {
    if (g_capturing) { /* recorded, not run: counted when a launch runs it (op_graph_launch) */
        g_cap_flops += flops;
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
        if (g_dev == OP_DEV_CUDA) {                                     \
            double acct_t0_ = g_prof_on ? prof_now() : 0.0;             \
            double acct_c0_ = g_prof_on ? prof_cpu_now() : 0.0;         \
            call;                                                       \
            dev_account(kind, acct_t0_, acct_c0_, flops);               \
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

sdc_status op_set_device(op_device d) {
    if (g_capturing) return sdc_fail(SDC_ERR_ARG, "op_set_device: a step graph is being captured");
    switch (d) {
    case OP_DEV_CPU: g_be = &op_backend_cpu; break;
    case OP_DEV_EMULATED: g_be = &op_backend_emulated; break;
    case OP_DEV_CUDA:
#ifdef SDC_HAVE_CUDA
        SDC_TRY(cuda_backend_init(0));
        g_be = &op_backend_cuda;
        break;
#else
        return sdc_fail(SDC_ERR_UNSUPPORTED, "this build of sdc has no CUDA support (nvcc was not found when it "
                                             "was built); use the CPU");
#endif
    default: return sdc_fail(SDC_ERR_ARG, "unknown device %d", (int)d);
    }
    g_dev = d;
    return SDC_OK;
}

op_device op_get_device(void) { return g_dev; }
const char *op_device_name(void) { return g_be->name; }

sdc_status op_weight_upload(const void *host, op_dtype src_dt, int64_t n, op_dtype dst_dt, void **dev) {
    *dev = NULL;
    if (g_capturing) return refuse_in_capture("op_weight_upload");
    if (!g_be->weight_upload) return sdc_fail(SDC_ERR_UNSUPPORTED, "the %s backend reads weights in place", g_be->name);
    return g_be->weight_upload(host, src_dt, n, dst_dt, dev);
}

void op_weight_free(void *dev) {
    if (dev && g_be->weight_free) g_be->weight_free(dev);
}

void op_set_precision(op_dtype dt) {
    if (g_capturing) {
        (void)refuse_in_capture("op_set_precision");
        return;
    }
    if (g_be->set_precision) g_be->set_precision(dt);
}

sdc_status op_sync(void) {
    if (g_capturing) return refuse_in_capture("op_sync");
    return g_be->sync ? g_be->sync() : SDC_OK;
}

sdc_status op_alloc(float **p, int64_t n) {
    SDC_TRY(g_be->alloc(p, n));
    atomic_fetch_add_explicit(&g_live, 1, memory_order_relaxed);
    return SDC_OK;
}

void op_free(void *p) {
    if (!p) return;
    atomic_fetch_sub_explicit(&g_live, 1, memory_order_relaxed);
    g_be->free(p);
}

int64_t op_live_allocations(void) { return (int64_t)atomic_load_explicit(&g_live, memory_order_relaxed); }
int op_host_memory(void) { return g_be->host_memory; }

/* ---- step graphs ----
 * The dispatcher owns the capture state: it refuses the calls that need the
 * host inside a capture (the first refusal is what op_graph_end reports) and
 * pairs each graph with the backend that recorded it. */
struct op_graph {
    const op_backend *be;
    void *impl;
    double flops; /* counted per launch where the backend's ops do not count themselves */
};
static sdc_status g_cap_err;
static char g_cap_msg[512];
static atomic_long g_launches;

static sdc_status refuse_in_capture(const char *what) {
    sdc_status st = sdc_fail(SDC_ERR_UNSUPPORTED, "%s while a step graph is being captured (a host round trip "
                                                  "cannot be recorded)", what);
    if (!g_cap_err) {
        g_cap_err = st;
        snprintf(g_cap_msg, sizeof g_cap_msg, "%s", sdc_last_error());
    }
    return st;
}

sdc_status op_graph_begin(void) {
    if (g_capturing) return sdc_fail(SDC_ERR_ARG, "op_graph_begin: a capture is already in progress");
    if (!g_be->graph_begin) return sdc_fail(SDC_ERR_UNSUPPORTED, "the %s backend has no step graphs", g_be->name);
    SDC_TRY(g_be->graph_begin());
    g_capturing = 1;
    g_cap_err = SDC_OK;
    g_cap_flops = 0;
    return SDC_OK;
}

sdc_status op_graph_end(op_graph **g) {
    *g = NULL;
    if (!g_capturing) return sdc_fail(SDC_ERR_ARG, "op_graph_end: no capture in progress");
    g_capturing = 0;
    void *impl = NULL;
    sdc_status st = g_be->graph_end(&impl);
    if (!st && g_cap_err) {
        g_be->graph_free(impl);
        return sdc_fail(g_cap_err, "%s", g_cap_msg);
    }
    SDC_TRY(st);
    op_graph *o = malloc(sizeof *o);
    if (!o) {
        g_be->graph_free(impl);
        return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    }
    o->be = g_be;
    o->impl = impl;
    o->flops = g_cap_flops;
    *g = o;
    return SDC_OK;
}

sdc_status op_graph_launch(op_graph *g) {
    if (!g) return sdc_fail(SDC_ERR_ARG, "op_graph_launch: no graph");
    if (g_capturing) return sdc_fail(SDC_ERR_ARG, "op_graph_launch: called while capturing");
    if (g->be != g_be)
        return sdc_fail(SDC_ERR_ARG, "op_graph_launch: the graph was recorded on the %s backend, %s is selected",
                        g->be->name, g_be->name);
    atomic_fetch_add_explicit(&g_launches, 1, memory_order_relaxed);
    if (g->flops > 0) op_flops_add(g->flops);
    return g_be->graph_launch(g->impl);
}

void op_graph_free(op_graph *g) {
    if (!g) return;
    g->be->graph_free(g->impl);
    free(g);
}

int op_graph_capturing(void) { return g_capturing; }
int64_t op_graph_bytes(const op_graph *g) { return g ? g->be->graph_bytes(g->impl) : 0; }
long op_graph_launches(void) { return atomic_load_explicit(&g_launches, memory_order_relaxed); }

sdc_status op_upload(float *dev, const float *host, int64_t n) {
    if (g_capturing) return refuse_in_capture("op_upload");
    return g_be->upload(dev, host, n);
}
sdc_status op_download(float *host, const float *dev, int64_t n) {
    if (g_capturing) return refuse_in_capture("op_download");
    return g_be->download(host, dev, n);
}
void op_copy(float *dst, const float *src, int64_t n) { DISPATCH(PROF_LAYOUT, 0, g_be->copy(dst, src, n)); }
void op_copy_2d(float *dst, int64_t dst_ld, const float *src, int64_t src_ld, int64_t rows, int64_t cols) {
    DISPATCH(PROF_LAYOUT, 0, g_be->copy_2d(dst, dst_ld, src, src_ld, rows, cols));
}
void op_affine(float *y, const float *x, float a, float b, int64_t n) {
    DISPATCH(PROF_ADD_SCALE, 0, g_be->affine(y, x, a, b, n));
}
void op_pad_zero(const float *x, float *y, int64_t BC, int H, int W, int Ho, int Wo) {
    DISPATCH(PROF_LAYOUT, 0, g_be->pad_zero(x, y, BC, H, W, Ho, Wo));
}
void op_gather_rows(float *dst, const void *src, op_dtype st, int64_t cols, const int64_t *rows, int64_t n) {
    if (g_capturing) {
        (void)refuse_in_capture("op_gather_rows (row ids in host memory)");
        return;
    }
    DISPATCH(PROF_LAYOUT, 0, g_be->gather_rows(dst, src, st, cols, rows, n));
}

void op_linear(const float *x, int64_t M, int64_t K, const float *W, const float *b, int64_t N, float *y) {
    DISPATCH(PROF_LINEAR, gemm_flops(M, N, K), g_be->linear_t(x, M, K, W, OP_F32, b, N, y));
}
void op_linear_t(const float *x, int64_t M, int64_t K, const void *W, op_dtype wt, const float *b, int64_t N,
                 float *y) {
    DISPATCH(PROF_LINEAR, gemm_flops(M, N, K), g_be->linear_t(x, M, K, W, wt, b, N, y));
}
sdc_status op_conv2d(const float *x, int B, int C, int H, int W, const float *w, const float *b, int O, int k,
                     int stride, int pad, float *y) {
    return op_conv2d_t(x, B, C, H, W, w, OP_F32, b, O, k, stride, pad, y);
}
sdc_status op_conv2d_t(const float *x, int B, int C, int H, int W, const void *w, op_dtype wt, const float *b, int O,
                       int k, int stride, int pad, float *y) {
    sdc_status st;
    DISPATCH(conv_kind(k, stride, pad), conv_flops(B, C, H, W, O, k, stride, pad),
             st = g_be->conv2d_t(x, B, C, H, W, w, wt, b, O, k, stride, pad, y));
    return st;
}
void op_group_norm(const float *x, float *y, int B, int C, int64_t HW, int G, float eps, const float *gamma,
                   const float *beta, int silu) {
    DISPATCH(PROF_GROUP_NORM, 0, g_be->group_norm(x, y, B, C, HW, G, eps, gamma, beta, silu));
}
void op_layer_norm(const float *x, float *y, int64_t rows, int D, float eps, const float *gamma, const float *beta) {
    DISPATCH(PROF_LAYER_NORM, 0, g_be->layer_norm(x, y, rows, D, eps, gamma, beta));
}
void op_silu(float *x, int64_t n) { DISPATCH(PROF_ACTIVATION, 0, g_be->silu(x, n)); }
void op_gelu(float *x, int64_t n) { DISPATCH(PROF_ACTIVATION, 0, g_be->gelu(x, n)); }
void op_quick_gelu(float *x, int64_t n) { DISPATCH(PROF_ACTIVATION, 0, g_be->quick_gelu(x, n)); }
void op_geglu(const float *x, float *y, int64_t rows, int D) {
    DISPATCH(PROF_ACTIVATION, 0, g_be->geglu(x, y, rows, D));
}
void op_add(float *y, const float *x, int64_t n) { DISPATCH(PROF_ADD_SCALE, 0, g_be->add(y, x, n)); }
void op_scale(float *y, float s, int64_t n) { DISPATCH(PROF_ADD_SCALE, 0, g_be->scale(y, s, n)); }
void op_add_channel_bias(float *y, const float *v, int B, int C, int64_t HW) {
    DISPATCH(PROF_ADD_SCALE, 0, g_be->add_channel_bias(y, v, B, C, HW));
}
sdc_status op_attention(const float *q, int64_t q_ld, const float *k, const float *v, int64_t kv_ld, int B, int Nq,
                        int Nk, int heads, int dh, float scale, int causal, float *out) {
    sdc_status st;
    /* the CPU op's count: both products in full, causal or not */
    DISPATCH(PROF_ATTENTION, 4.0 * B * heads * (double)Nq * (double)Nk * dh,
             st = g_be->attention(q, q_ld, k, v, kv_ld, B, Nq, Nk, heads, dh, scale, causal, out));
    return st;
}
void op_upsample_nearest(const float *x, float *y, int64_t BC, int H, int W, int Ho, int Wo) {
    DISPATCH(PROF_RESIZE, 0, g_be->upsample_nearest(x, y, BC, H, W, Ho, Wo));
}
void op_nchw_to_nhwc(const float *x, float *y, int B, int C, int64_t HW) {
    DISPATCH(PROF_LAYOUT, 0, g_be->nchw_to_nhwc(x, y, B, C, HW));
}
void op_nhwc_to_nchw(const float *x, float *y, int B, int C, int64_t HW) {
    DISPATCH(PROF_LAYOUT, 0, g_be->nhwc_to_nchw(x, y, B, C, HW));
}
void op_timestep_embedding(const float *t, int n, int dim, int flip_sin_to_cos, float shift, float *out) {
    DISPATCH(PROF_ACTIVATION, 0, g_be->timestep_embedding(t, n, dim, flip_sin_to_cos, shift, out));
}
