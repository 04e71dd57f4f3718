/* emulated_graph.c - step graphs on the emulated device: between
 * graph_begin and graph_end every op is recorded with its arguments (the
 * pointers, shapes and the GEMM precision in force) instead of being run,
 * and a launch runs the records with the CPU ops. That is what a CUDA graph
 * does with kernels, so the model code captured here is held to the same
 * rules as on a GPU: a value read on the host at capture time is frozen
 * into the graph, a buffer must stay where it was, results exist only after
 * a launch. To make a slip visible, memory allocated during a capture is
 * filled with NaN (a GPU would hold garbage there), and memory freed during
 * it is kept for the graph (its addresses are baked in) until the graph is
 * freed. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/emulated_graph.h"

typedef struct rec rec;
struct rec {
    sdc_status (*run)(const rec *r);
    const void *p[4];
    int64_t i[9];
    float f[2];
};

typedef struct {
    rec *recs;
    int n, cap;
    void **owned; /* buffers freed during the capture: the graph's now */
    int nowned, capowned;
    op_dtype mm;   /* GEMM precision the ops were recorded under */
    int64_t bytes; /* allocated during the capture: all kept (no reuse here) */
} emu_graph;

static emu_graph *g_cap;       /* the capture in progress */
static void **g_fresh;         /* allocated during it and not yet freed */
static int g_nfresh, g_capfresh;
static op_dtype g_mm = OP_F32; /* as last set through this table */
static int g_oom;              /* a record could not be stored */

static int grow(void ***a, int *n, int *cap, void *p) {
    if (*n == *cap) {
        int c = *cap ? 2 * *cap : 64;
        void **t = realloc(*a, (size_t)c * sizeof *t);
        if (!t) return 0;
        *a = t;
        *cap = c;
    }
    (*a)[(*n)++] = p;
    return 1;
}

static rec *push(sdc_status (*run)(const rec *)) {
    emu_graph *g = g_cap;
    if (g->n == g->cap) {
        int c = g->cap ? 2 * g->cap : 256;
        rec *t = realloc(g->recs, (size_t)c * sizeof *t);
        if (!t) {
            g_oom = 1;
            return NULL;
        }
        g->recs = t;
        g->cap = c;
    }
    rec *r = &g->recs[g->n++];
    memset(r, 0, sizeof *r);
    r->run = run;
    return r;
}

/* ---- memory ---- */

static sdc_status rg_alloc(float **p, int64_t n) {
    SDC_TRY(emu_plain.alloc(p, n));
    if (!g_cap) return SDC_OK;
    for (int64_t i = 0; i < (n > 0 ? n : 1); i++) (*p)[i] = NAN;
    g_cap->bytes += (n > 0 ? n : 1) * (int64_t)sizeof(float);
    if (!grow(&g_fresh, &g_nfresh, &g_capfresh, *p)) {
        emu_plain.free(*p);
        *p = NULL;
        return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    }
    return SDC_OK;
}

static void rg_free(void *p) {
    if (!g_cap) {
        emu_plain.free(p);
        return;
    }
    for (int i = 0; i < g_nfresh; i++)
        if (g_fresh[i] == p) {
            g_fresh[i] = g_fresh[--g_nfresh];
            break;
        }
    if (!grow(&g_cap->owned, &g_cap->nowned, &g_cap->capowned, p)) g_oom = 1; /* leaks p; the capture fails */
}

static void rg_set_precision(op_dtype dt) {
    g_mm = dt;
    emu_plain.set_precision(dt);
}

/* ---- recorded ops: rg_X runs or records, run_X replays a record ---- */

static sdc_status run_copy(const rec *r) {
    emu_plain.copy((float *)r->p[0], r->p[1], r->i[0]);
    return SDC_OK;
}
static void rg_copy(float *dst, const float *src, int64_t n) {
    if (!g_cap) {
        emu_plain.copy(dst, src, n);
        return;
    }
    rec *r = push(run_copy);
    if (!r) return;
    r->p[0] = dst, r->p[1] = src, r->i[0] = n;
}

static sdc_status run_copy_2d(const rec *r) {
    emu_plain.copy_2d((float *)r->p[0], r->i[0], r->p[1], r->i[1], r->i[2], r->i[3]);
    return SDC_OK;
}
static void rg_copy_2d(float *dst, int64_t dst_ld, const float *src, int64_t src_ld, int64_t rows, int64_t cols) {
    if (!g_cap) {
        emu_plain.copy_2d(dst, dst_ld, src, src_ld, rows, cols);
        return;
    }
    rec *r = push(run_copy_2d);
    if (!r) return;
    r->p[0] = dst, r->p[1] = src, r->i[0] = dst_ld, r->i[1] = src_ld, r->i[2] = rows, r->i[3] = cols;
}

static sdc_status run_affine(const rec *r) {
    emu_plain.affine((float *)r->p[0], r->p[1], r->f[0], r->f[1], r->i[0]);
    return SDC_OK;
}
static void rg_affine(float *y, const float *x, float a, float b, int64_t n) {
    if (!g_cap) {
        emu_plain.affine(y, x, a, b, n);
        return;
    }
    rec *r = push(run_affine);
    if (!r) return;
    r->p[0] = y, r->p[1] = x, r->f[0] = a, r->f[1] = b, r->i[0] = n;
}

static sdc_status run_pad_zero(const rec *r) {
    emu_plain.pad_zero(r->p[0], (float *)r->p[1], r->i[0], (int)r->i[1], (int)r->i[2], (int)r->i[3], (int)r->i[4]);
    return SDC_OK;
}
static void rg_pad_zero(const float *x, float *y, int64_t BC, int H, int W, int Ho, int Wo) {
    if (!g_cap) {
        emu_plain.pad_zero(x, y, BC, H, W, Ho, Wo);
        return;
    }
    rec *r = push(run_pad_zero);
    if (!r) return;
    r->p[0] = x, r->p[1] = y, r->i[0] = BC, r->i[1] = H, r->i[2] = W, r->i[3] = Ho, r->i[4] = Wo;
}

/* the dispatcher refuses it during a capture (host row ids) */
static void rg_gather_rows(float *dst, const void *src, op_dtype st, int64_t cols, const int64_t *rows, int64_t n) {
    emu_plain.gather_rows(dst, src, st, cols, rows, n);
}

static sdc_status run_linear_t(const rec *r) {
    emu_plain.linear_t(r->p[0], r->i[0], r->i[1], r->p[1], (op_dtype)r->i[2], r->p[2], r->i[3], (float *)r->p[3]);
    return SDC_OK;
}
static void rg_linear_t(const float *x, int64_t M, int64_t K, const void *W, op_dtype wt, const float *b, int64_t N,
                        float *y) {
    if (!g_cap) {
        emu_plain.linear_t(x, M, K, W, wt, b, N, y);
        return;
    }
    rec *r = push(run_linear_t);
    if (!r) return;
    r->p[0] = x, r->p[1] = W, r->p[2] = b, r->p[3] = y;
    r->i[0] = M, r->i[1] = K, r->i[2] = wt, r->i[3] = N;
}

static sdc_status run_conv2d_t(const rec *r) {
    const int64_t *i = r->i;
    return emu_plain.conv2d_t(r->p[0], (int)i[0], (int)i[1], (int)i[2], (int)i[3], r->p[1], (op_dtype)i[4], r->p[2],
                              (int)i[5], (int)i[6], (int)i[7], (int)i[8], (float *)r->p[3]);
}
static sdc_status rg_conv2d_t(const float *x, int B, int C, int H, int W, const void *w, op_dtype wt, const float *b,
                              int O, int k, int stride, int pad, float *y) {
    if (!g_cap) return emu_plain.conv2d_t(x, B, C, H, W, w, wt, b, O, k, stride, pad, y);
    rec *r = push(run_conv2d_t);
    if (!r) return SDC_OK;
    r->p[0] = x, r->p[1] = w, r->p[2] = b, r->p[3] = y;
    int64_t *i = r->i;
    i[0] = B, i[1] = C, i[2] = H, i[3] = W, i[4] = wt, i[5] = O, i[6] = k, i[7] = stride, i[8] = pad;
    return SDC_OK;
}

static sdc_status run_group_norm(const rec *r) {
    emu_plain.group_norm(r->p[0], (float *)r->p[1], (int)r->i[0], (int)r->i[1], r->i[2], (int)r->i[3], r->f[0],
                         r->p[2], r->p[3], (int)r->i[4]);
    return SDC_OK;
}
static void rg_group_norm(const float *x, float *y, int B, int C, int64_t HW, int G, float eps, const float *gamma,
                          const float *beta, int silu) {
    if (!g_cap) {
        emu_plain.group_norm(x, y, B, C, HW, G, eps, gamma, beta, silu);
        return;
    }
    rec *r = push(run_group_norm);
    if (!r) return;
    r->p[0] = x, r->p[1] = y, r->p[2] = gamma, r->p[3] = beta;
    r->i[0] = B, r->i[1] = C, r->i[2] = HW, r->i[3] = G, r->i[4] = silu, r->f[0] = eps;
}

static sdc_status run_layer_norm(const rec *r) {
    emu_plain.layer_norm(r->p[0], (float *)r->p[1], r->i[0], (int)r->i[1], r->f[0], r->p[2], r->p[3]);
    return SDC_OK;
}
static void rg_layer_norm(const float *x, float *y, int64_t rows, int D, float eps, const float *gamma,
                          const float *beta) {
    if (!g_cap) {
        emu_plain.layer_norm(x, y, rows, D, eps, gamma, beta);
        return;
    }
    rec *r = push(run_layer_norm);
    if (!r) return;
    r->p[0] = x, r->p[1] = y, r->p[2] = gamma, r->p[3] = beta, r->i[0] = rows, r->i[1] = D, r->f[0] = eps;
}

/* in-place activations: i[1] says which */
static sdc_status run_activation(const rec *r) {
    float *x = (float *)r->p[0];
    switch (r->i[1]) {
    case 0: emu_plain.silu(x, r->i[0]); break;
    case 1: emu_plain.gelu(x, r->i[0]); break;
    default: emu_plain.quick_gelu(x, r->i[0]); break;
    }
    return SDC_OK;
}
static void rg_activation(float *x, int64_t n, int which, void (*plain)(float *, int64_t)) {
    if (!g_cap) {
        plain(x, n);
        return;
    }
    rec *r = push(run_activation);
    if (!r) return;
    r->p[0] = x, r->i[0] = n, r->i[1] = which;
}
static void rg_silu(float *x, int64_t n) { rg_activation(x, n, 0, emu_plain.silu); }
static void rg_gelu(float *x, int64_t n) { rg_activation(x, n, 1, emu_plain.gelu); }
static void rg_quick_gelu(float *x, int64_t n) { rg_activation(x, n, 2, emu_plain.quick_gelu); }

static sdc_status run_geglu(const rec *r) {
    emu_plain.geglu(r->p[0], (float *)r->p[1], r->i[0], (int)r->i[1]);
    return SDC_OK;
}
static void rg_geglu(const float *x, float *y, int64_t rows, int D) {
    if (!g_cap) {
        emu_plain.geglu(x, y, rows, D);
        return;
    }
    rec *r = push(run_geglu);
    if (!r) return;
    r->p[0] = x, r->p[1] = y, r->i[0] = rows, r->i[1] = D;
}

static sdc_status run_add(const rec *r) {
    emu_plain.add((float *)r->p[0], r->p[1], r->i[0]);
    return SDC_OK;
}
static void rg_add(float *y, const float *x, int64_t n) {
    if (!g_cap) {
        emu_plain.add(y, x, n);
        return;
    }
    rec *r = push(run_add);
    if (!r) return;
    r->p[0] = y, r->p[1] = x, r->i[0] = n;
}

static sdc_status run_scale(const rec *r) {
    emu_plain.scale((float *)r->p[0], r->f[0], r->i[0]);
    return SDC_OK;
}
static void rg_scale(float *y, float s, int64_t n) {
    if (!g_cap) {
        emu_plain.scale(y, s, n);
        return;
    }
    rec *r = push(run_scale);
    if (!r) return;
    r->p[0] = y, r->f[0] = s, r->i[0] = n;
}

static sdc_status run_add_channel_bias(const rec *r) {
    emu_plain.add_channel_bias((float *)r->p[0], r->p[1], (int)r->i[0], (int)r->i[1], r->i[2]);
    return SDC_OK;
}
static void rg_add_channel_bias(float *y, const float *v, int B, int C, int64_t HW) {
    if (!g_cap) {
        emu_plain.add_channel_bias(y, v, B, C, HW);
        return;
    }
    rec *r = push(run_add_channel_bias);
    if (!r) return;
    r->p[0] = y, r->p[1] = v, r->i[0] = B, r->i[1] = C, r->i[2] = HW;
}

static sdc_status run_attention(const rec *r) {
    const int64_t *i = r->i;
    return emu_plain.attention(r->p[0], i[0], r->p[1], r->p[2], i[1], (int)i[2], (int)i[3], (int)i[4], (int)i[5],
                               (int)i[6], r->f[0], (int)i[7], (float *)r->p[3]);
}
static sdc_status rg_attention(const float *q, int64_t q_ld, const float *k, const float *v, int64_t kv_ld, int B,
                               int Nq, int Nk, int heads, int dh, float scale, int causal, float *out) {
    if (!g_cap) return emu_plain.attention(q, q_ld, k, v, kv_ld, B, Nq, Nk, heads, dh, scale, causal, out);
    rec *r = push(run_attention);
    if (!r) return SDC_OK;
    r->p[0] = q, r->p[1] = k, r->p[2] = v, r->p[3] = out, r->f[0] = scale;
    int64_t *i = r->i;
    i[0] = q_ld, i[1] = kv_ld, i[2] = B, i[3] = Nq, i[4] = Nk, i[5] = heads, i[6] = dh, i[7] = causal;
    return SDC_OK;
}

static sdc_status run_upsample_nearest(const rec *r) {
    emu_plain.upsample_nearest(r->p[0], (float *)r->p[1], r->i[0], (int)r->i[1], (int)r->i[2], (int)r->i[3],
                               (int)r->i[4]);
    return SDC_OK;
}
static void rg_upsample_nearest(const float *x, float *y, int64_t BC, int H, int W, int Ho, int Wo) {
    if (!g_cap) {
        emu_plain.upsample_nearest(x, y, BC, H, W, Ho, Wo);
        return;
    }
    rec *r = push(run_upsample_nearest);
    if (!r) return;
    r->p[0] = x, r->p[1] = y, r->i[0] = BC, r->i[1] = H, r->i[2] = W, r->i[3] = Ho, r->i[4] = Wo;
}

/* layout changes: i[3] 0 = NCHW -> NHWC, 1 = back */
static sdc_status run_layout(const rec *r) {
    if (r->i[3]) emu_plain.nhwc_to_nchw(r->p[0], (float *)r->p[1], (int)r->i[0], (int)r->i[1], r->i[2]);
    else emu_plain.nchw_to_nhwc(r->p[0], (float *)r->p[1], (int)r->i[0], (int)r->i[1], r->i[2]);
    return SDC_OK;
}
static void rg_layout(const float *x, float *y, int B, int C, int64_t HW, int back) {
    if (!g_cap) {
        if (back) emu_plain.nhwc_to_nchw(x, y, B, C, HW);
        else emu_plain.nchw_to_nhwc(x, y, B, C, HW);
        return;
    }
    rec *r = push(run_layout);
    if (!r) return;
    r->p[0] = x, r->p[1] = y, r->i[0] = B, r->i[1] = C, r->i[2] = HW, r->i[3] = back;
}
static void rg_nchw_to_nhwc(const float *x, float *y, int B, int C, int64_t HW) { rg_layout(x, y, B, C, HW, 0); }
static void rg_nhwc_to_nchw(const float *x, float *y, int B, int C, int64_t HW) { rg_layout(x, y, B, C, HW, 1); }

static sdc_status run_timestep_embedding(const rec *r) {
    emu_plain.timestep_embedding(r->p[0], (int)r->i[0], (int)r->i[1], (int)r->i[2], r->f[0], (float *)r->p[1]);
    return SDC_OK;
}
static void rg_timestep_embedding(const float *t, int n, int dim, int flip_sin_to_cos, float shift, float *out) {
    if (!g_cap) {
        emu_plain.timestep_embedding(t, n, dim, flip_sin_to_cos, shift, out);
        return;
    }
    rec *r = push(run_timestep_embedding);
    if (!r) return;
    r->p[0] = t, r->p[1] = out, r->i[0] = n, r->i[1] = dim, r->i[2] = flip_sin_to_cos, r->f[0] = shift;
}

/* ---- graphs ---- */

static void graph_release(emu_graph *g) {
    if (!g) return;
    for (int i = 0; i < g->nowned; i++) emu_plain.free(g->owned[i]);
    free(g->owned);
    free(g->recs);
    free(g);
}

static sdc_status rg_graph_begin(void) {
    emu_graph *g = calloc(1, sizeof *g);
    if (!g) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    g->mm = g_mm;
    g_cap = g;
    g_nfresh = 0;
    g_oom = 0;
    return SDC_OK;
}

static sdc_status rg_graph_end(void **out) {
    emu_graph *g = g_cap;
    g_cap = NULL;
    *out = NULL;
    if (g_oom) {
        graph_release(g);
        return sdc_fail(SDC_ERR_NOMEM, "out of memory while recording a step graph");
    }
    if (g_nfresh) { /* still the caller's: it frees them with op_free later */
        int n = g_nfresh;
        g_nfresh = 0;
        graph_release(g);
        return sdc_fail(SDC_ERR_ARG, "%d buffer%s allocated during the step-graph capture %s still in use at its end "
                                     "(a graph may only keep memory it has finished with)",
                        n, n == 1 ? "" : "s", n == 1 ? "is" : "are");
    }
    *out = g;
    return SDC_OK;
}

static sdc_status rg_graph_launch(void *p) {
    emu_graph *g = p;
    op_dtype was = g_mm;
    emu_plain.set_precision(g->mm);
    sdc_status st = SDC_OK;
    for (int i = 0; i < g->n && !st; i++) st = g->recs[i].run(&g->recs[i]);
    emu_plain.set_precision(was);
    return st;
}

static void rg_graph_free(void *p) { graph_release(p); }
static int64_t rg_graph_bytes(void *p) { return ((emu_graph *)p)->bytes; }

const op_backend op_backend_emulated = {
    .name = "emulated device", .host_memory = 0, .alloc = rg_alloc, .free = rg_free, .upload = cpu_upload,
    .download = cpu_download, .copy = rg_copy, .copy_2d = rg_copy_2d, .affine = rg_affine,
    .pad_zero = rg_pad_zero, .gather_rows = rg_gather_rows, .linear_t = rg_linear_t, .conv2d_t = rg_conv2d_t,
    .group_norm = rg_group_norm, .layer_norm = rg_layer_norm, .silu = rg_silu, .gelu = rg_gelu,
    .quick_gelu = rg_quick_gelu, .geglu = rg_geglu, .add = rg_add, .scale = rg_scale,
    .add_channel_bias = rg_add_channel_bias, .attention = rg_attention, .upsample_nearest = rg_upsample_nearest,
    .nchw_to_nhwc = rg_nchw_to_nhwc, .nhwc_to_nchw = rg_nhwc_to_nchw, .timestep_embedding = rg_timestep_embedding,
    .set_precision = rg_set_precision, .graph_begin = rg_graph_begin, .graph_end = rg_graph_end,
    .graph_launch = rg_graph_launch, .graph_free = rg_graph_free, .graph_bytes = rg_graph_bytes};
