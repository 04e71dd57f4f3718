/* ops.c - the dispatcher: every op of ops.h goes to the backend chosen with
 * op_set_device (the CPU unless a program asks for another). It also counts
 * live activation buffers for the tests. Holds no arithmetic of its own. */
#include <stdatomic.h>
#include <stddef.h>

#include "backend/backend.h"

static const op_backend *g_be = &op_backend_cpu;
static op_device g_dev = OP_DEV_CPU;
static atomic_llong g_live; /* op_alloc'd buffers not yet op_free'd */

#ifdef SDC_HAVE_CUDA
sdc_status cuda_backend_init(int device); /* cuda/backend_cuda.c */
#endif

sdc_status op_set_device(op_device d) {
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
    if (!g_be->weight_upload) return sdc_fail(SDC_ERR_UNSUPPORTED, "the %s backend reads weights in place", g_be->name);
    return g_be->weight_upload(host, src_dt, n, dst_dt, dev);
}

void op_weight_free(void *dev) {
    if (dev && g_be->weight_free) g_be->weight_free(dev);
}

void op_set_precision(op_dtype dt) {
    if (g_be->set_precision) g_be->set_precision(dt);
}

sdc_status op_sync(void) { return g_be->sync ? g_be->sync() : SDC_OK; }

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

sdc_status op_upload(float *dev, const float *host, int64_t n) { return g_be->upload(dev, host, n); }
sdc_status op_download(float *host, const float *dev, int64_t n) { return g_be->download(host, dev, n); }
void op_copy(float *dst, const float *src, int64_t n) { g_be->copy(dst, src, n); }
void op_copy_2d(float *dst, int64_t dst_ld, const float *src, int64_t src_ld, int64_t rows, int64_t cols) {
    g_be->copy_2d(dst, dst_ld, src, src_ld, rows, cols);
}
void op_affine(float *y, const float *x, float a, float b, int64_t n) { g_be->affine(y, x, a, b, n); }
void op_pad_zero(const float *x, float *y, int64_t BC, int H, int W, int Ho, int Wo) {
    g_be->pad_zero(x, y, BC, H, W, Ho, Wo);
}
void op_gather_rows(float *dst, const void *src, op_dtype st, int64_t cols, const int64_t *rows, int64_t n) {
    g_be->gather_rows(dst, src, st, cols, rows, n);
}

void op_linear(const float *x, int64_t M, int64_t K, const float *W, const float *b, int64_t N, float *y) {
    g_be->linear_t(x, M, K, W, OP_F32, b, N, y);
}
void op_linear_t(const float *x, int64_t M, int64_t K, const void *W, op_dtype wt, const float *b, int64_t N,
                 float *y) {
    g_be->linear_t(x, M, K, W, wt, b, N, y);
}
sdc_status op_conv2d(const float *x, int B, int C, int H, int W, const float *w, const float *b, int O, int k,
                     int stride, int pad, float *y) {
    return g_be->conv2d_t(x, B, C, H, W, w, OP_F32, b, O, k, stride, pad, y);
}
sdc_status op_conv2d_t(const float *x, int B, int C, int H, int W, const void *w, op_dtype wt, const float *b, int O,
                       int k, int stride, int pad, float *y) {
    return g_be->conv2d_t(x, B, C, H, W, w, wt, b, O, k, stride, pad, y);
}
void op_group_norm(const float *x, float *y, int B, int C, int64_t HW, int G, float eps, const float *gamma,
                   const float *beta, int silu) {
    g_be->group_norm(x, y, B, C, HW, G, eps, gamma, beta, silu);
}
void op_layer_norm(const float *x, float *y, int64_t rows, int D, float eps, const float *gamma, const float *beta) {
    g_be->layer_norm(x, y, rows, D, eps, gamma, beta);
}
void op_silu(float *x, int64_t n) { g_be->silu(x, n); }
void op_gelu(float *x, int64_t n) { g_be->gelu(x, n); }
void op_quick_gelu(float *x, int64_t n) { g_be->quick_gelu(x, n); }
void op_geglu(const float *x, float *y, int64_t rows, int D) { g_be->geglu(x, y, rows, D); }
void op_add(float *y, const float *x, int64_t n) { g_be->add(y, x, n); }
void op_scale(float *y, float s, int64_t n) { g_be->scale(y, s, n); }
void op_add_channel_bias(float *y, const float *v, int B, int C, int64_t HW) { g_be->add_channel_bias(y, v, B, C, HW); }
sdc_status op_attention(const float *q, int64_t q_ld, const float *k, const float *v, int64_t kv_ld, int B, int Nq,
                        int Nk, int heads, int dh, float scale, int causal, float *out) {
    return g_be->attention(q, q_ld, k, v, kv_ld, B, Nq, Nk, heads, dh, scale, causal, out);
}
void op_upsample_nearest(const float *x, float *y, int64_t BC, int H, int W, int Ho, int Wo) {
    g_be->upsample_nearest(x, y, BC, H, W, Ho, Wo);
}
void op_nchw_to_nhwc(const float *x, float *y, int B, int C, int64_t HW) { g_be->nchw_to_nhwc(x, y, B, C, HW); }
void op_nhwc_to_nchw(const float *x, float *y, int B, int C, int64_t HW) { g_be->nhwc_to_nchw(x, y, B, C, HW); }
void op_timestep_embedding(const float *t, int n, int dim, int flip_sin_to_cos, float shift, float *out) {
    g_be->timestep_embedding(t, n, dim, flip_sin_to_cos, shift, out);
}
