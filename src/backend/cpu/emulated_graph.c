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
    sdc_status (*run)(op_ctx *cx, const rec *r);
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

/* a context's capture state (cx->be_state) */
typedef struct {
    emu_graph *cap; /* the capture in progress */
    void **fresh;   /* allocated during it and not yet freed */
    int nfresh, capfresh;
    int oom;        /* a record could not be stored */
} emu_state;

static emu_state *ST(const op_ctx *cx) { return cx->be_state; }

static sdc_status rg_ctx_init(op_ctx *cx) {
    cx->be_state = calloc(1, sizeof(emu_state));
    return cx->be_state ? SDC_OK : sdc_fail(SDC_ERR_NOMEM, "out of memory");
}

static void rg_ctx_free(op_ctx *cx) {
    emu_state *E = ST(cx);
    if (E) free(E->fresh);
    free(E);
    cx->be_state = NULL;
}

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

static rec *push(emu_state *E, sdc_status (*run)(op_ctx *, const rec *)) {
    emu_graph *g = E->cap;
    if (g->n == g->cap) {
        int c = g->cap ? 2 * g->cap : 256;
        rec *t = realloc(g->recs, (size_t)c * sizeof *t);
        if (!t) {
            E->oom = 1;
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

static sdc_status rg_alloc(op_ctx *cx, float **p, int64_t n) {
    emu_state *E = ST(cx);
    SDC_TRY(emu_plain.alloc(cx, p, n));
    if (!E->cap) return SDC_OK;
    for (int64_t i = 0; i < (n > 0 ? n : 1); i++) (*p)[i] = NAN;
    E->cap->bytes += (n > 0 ? n : 1) * (int64_t)sizeof(float);
    if (!grow(&E->fresh, &E->nfresh, &E->capfresh, *p)) {
        emu_plain.free(cx, *p);
        *p = NULL;
        return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    }
    return SDC_OK;
}

static void rg_free(op_ctx *cx, void *p) {
    emu_state *E = ST(cx);
    if (!E->cap) {
        emu_plain.free(cx, p);
        return;
    }
    for (int i = 0; i < E->nfresh; i++)
        if (E->fresh[i] == p) {
            E->fresh[i] = E->fresh[--E->nfresh];
            break;
        }
    if (!grow(&E->cap->owned, &E->cap->nowned, &E->cap->capowned, p)) E->oom = 1; /* leaks p; the capture fails */
}

/* ---- recorded ops: rg_X runs or records, run_X replays a record ---- */

static sdc_status run_copy(op_ctx *cx, const rec *r) {
    emu_plain.copy(cx, (float *)r->p[0], r->p[1], r->i[0]);
    return SDC_OK;
}
static void rg_copy(op_ctx *cx, float *dst, const float *src, int64_t n) {
    if (!ST(cx)->cap) {
        emu_plain.copy(cx, dst, src, n);
        return;
    }
    rec *r = push(ST(cx), run_copy);
    if (!r) return;
    r->p[0] = dst, r->p[1] = src, r->i[0] = n;
}

static sdc_status run_copy_2d(op_ctx *cx, const rec *r) {
    emu_plain.copy_2d(cx, (float *)r->p[0], r->i[0], r->p[1], r->i[1], r->i[2], r->i[3]);
    return SDC_OK;
}
static void rg_copy_2d(op_ctx *cx, float *dst, int64_t dst_ld, const float *src, int64_t src_ld, int64_t rows, int64_t cols) {
    if (!ST(cx)->cap) {
        emu_plain.copy_2d(cx, dst, dst_ld, src, src_ld, rows, cols);
        return;
    }
    rec *r = push(ST(cx), run_copy_2d);
    if (!r) return;
    r->p[0] = dst, r->p[1] = src, r->i[0] = dst_ld, r->i[1] = src_ld, r->i[2] = rows, r->i[3] = cols;
}

static sdc_status run_affine(op_ctx *cx, const rec *r) {
    emu_plain.affine(cx, (float *)r->p[0], r->p[1], r->f[0], r->f[1], r->i[0]);
    return SDC_OK;
}
static void rg_affine(op_ctx *cx, float *y, const float *x, float a, float b, int64_t n) {
    if (!ST(cx)->cap) {
        emu_plain.affine(cx, y, x, a, b, n);
        return;
    }
    rec *r = push(ST(cx), run_affine);
    if (!r) return;
    r->p[0] = y, r->p[1] = x, r->f[0] = a, r->f[1] = b, r->i[0] = n;
}

static sdc_status run_pad_zero(op_ctx *cx, const rec *r) {
    emu_plain.pad_zero(cx, r->p[0], (float *)r->p[1], r->i[0], (int)r->i[1], (int)r->i[2], (int)r->i[3], (int)r->i[4]);
    return SDC_OK;
}
static void rg_pad_zero(op_ctx *cx, const float *x, float *y, int64_t BC, int H, int W, int Ho, int Wo) {
    if (!ST(cx)->cap) {
        emu_plain.pad_zero(cx, x, y, BC, H, W, Ho, Wo);
        return;
    }
    rec *r = push(ST(cx), run_pad_zero);
    if (!r) return;
    r->p[0] = x, r->p[1] = y, r->i[0] = BC, r->i[1] = H, r->i[2] = W, r->i[3] = Ho, r->i[4] = Wo;
}

/* the dispatcher refuses it during a capture (host row ids) */
static void rg_gather_rows(op_ctx *cx, float *dst, const void *src, op_dtype st, int64_t cols, const int64_t *rows, int64_t n) {
    emu_plain.gather_rows(cx, dst, src, st, cols, rows, n);
}

static sdc_status run_linear_t(op_ctx *cx, const rec *r) {
    return emu_plain.linear_t(cx, r->p[0], r->i[0], r->i[1], r->p[1], (op_dtype)r->i[2], r->p[2], r->i[3],
                              (float *)r->p[3]);
}
static sdc_status rg_linear_t(op_ctx *cx, const float *x, int64_t M, int64_t K, const void *W, op_dtype wt,
                              const float *b, int64_t N, float *y) {
    if (!ST(cx)->cap) return emu_plain.linear_t(cx, x, M, K, W, wt, b, N, y);
    rec *r = push(ST(cx), run_linear_t);
    if (!r) return SDC_OK; /* the capture fails at its end (oom) */
    r->p[0] = x, r->p[1] = W, r->p[2] = b, r->p[3] = y;
    r->i[0] = M, r->i[1] = K, r->i[2] = wt, r->i[3] = N;
    return SDC_OK;
}

static sdc_status run_conv2d_t(op_ctx *cx, const rec *r) {
    const int64_t *i = r->i;
    return emu_plain.conv2d_t(cx, r->p[0], (int)i[0], (int)i[1], (int)i[2], (int)i[3], r->p[1], (op_dtype)i[4], r->p[2],
                              (int)i[5], (int)i[6], (int)i[7], (int)i[8], (float *)r->p[3]);
}
static sdc_status rg_conv2d_t(op_ctx *cx, const float *x, int B, int C, int H, int W, const void *w, op_dtype wt, const float *b,
                              int O, int k, int stride, int pad, float *y) {
    if (!ST(cx)->cap) return emu_plain.conv2d_t(cx, x, B, C, H, W, w, wt, b, O, k, stride, pad, y);
    rec *r = push(ST(cx), run_conv2d_t);
    if (!r) return SDC_OK;
    r->p[0] = x, r->p[1] = w, r->p[2] = b, r->p[3] = y;
    int64_t *i = r->i;
    i[0] = B, i[1] = C, i[2] = H, i[3] = W, i[4] = wt, i[5] = O, i[6] = k, i[7] = stride, i[8] = pad;
    return SDC_OK;
}

static sdc_status run_group_norm(op_ctx *cx, const rec *r) {
    emu_plain.group_norm(cx, r->p[0], (float *)r->p[1], (int)r->i[0], (int)r->i[1], r->i[2], (int)r->i[3], r->f[0],
                         r->p[2], r->p[3], (int)r->i[4]);
    return SDC_OK;
}
static void rg_group_norm(op_ctx *cx, const float *x, float *y, int B, int C, int64_t HW, int G, float eps, const float *gamma,
                          const float *beta, int silu) {
    if (!ST(cx)->cap) {
        emu_plain.group_norm(cx, x, y, B, C, HW, G, eps, gamma, beta, silu);
        return;
    }
    rec *r = push(ST(cx), run_group_norm);
    if (!r) return;
    r->p[0] = x, r->p[1] = y, r->p[2] = gamma, r->p[3] = beta;
    r->i[0] = B, r->i[1] = C, r->i[2] = HW, r->i[3] = G, r->i[4] = silu, r->f[0] = eps;
}

static sdc_status run_layer_norm(op_ctx *cx, const rec *r) {
    emu_plain.layer_norm(cx, r->p[0], (float *)r->p[1], r->i[0], (int)r->i[1], r->f[0], r->p[2], r->p[3]);
    return SDC_OK;
}
static void rg_layer_norm(op_ctx *cx, const float *x, float *y, int64_t rows, int D, float eps, const float *gamma,
                          const float *beta) {
    if (!ST(cx)->cap) {
        emu_plain.layer_norm(cx, x, y, rows, D, eps, gamma, beta);
        return;
    }
    rec *r = push(ST(cx), run_layer_norm);
    if (!r) return;
    r->p[0] = x, r->p[1] = y, r->p[2] = gamma, r->p[3] = beta, r->i[0] = rows, r->i[1] = D, r->f[0] = eps;
}

/* in-place activations: i[1] says which */
static sdc_status run_activation(op_ctx *cx, const rec *r) {
    float *x = (float *)r->p[0];
    switch (r->i[1]) {
    case 0: emu_plain.silu(cx, x, r->i[0]); break;
    case 1: emu_plain.gelu(cx, x, r->i[0]); break;
    case 3: emu_plain.relu(cx, x, r->i[0]); break;
    case 4: emu_plain.tanh_clamp(cx, x, r->f[0], r->i[0]); break;
    default: emu_plain.quick_gelu(cx, x, r->i[0]); break;
    }
    return SDC_OK;
}
static void rg_activation(op_ctx *cx, float *x, int64_t n, int which, void (*plain)(op_ctx *, float *, int64_t)) {
    if (!ST(cx)->cap) {
        plain(cx, x, n);
        return;
    }
    rec *r = push(ST(cx), run_activation);
    if (!r) return;
    r->p[0] = x, r->i[0] = n, r->i[1] = which;
}
static void rg_silu(op_ctx *cx, float *x, int64_t n) { rg_activation(cx, x, n, 0, emu_plain.silu); }
static void rg_gelu(op_ctx *cx, float *x, int64_t n) { rg_activation(cx, x, n, 1, emu_plain.gelu); }
static void rg_quick_gelu(op_ctx *cx, float *x, int64_t n) { rg_activation(cx, x, n, 2, emu_plain.quick_gelu); }
static void rg_relu(op_ctx *cx, float *x, int64_t n) { rg_activation(cx, x, n, 3, emu_plain.relu); }
static void rg_tanh_clamp(op_ctx *cx, float *x, float m, int64_t n) {
    if (!ST(cx)->cap) {
        emu_plain.tanh_clamp(cx, x, m, n);
        return;
    }
    rec *r = push(ST(cx), run_activation);
    if (!r) return;
    r->p[0] = x, r->i[0] = n, r->i[1] = 4, r->f[0] = m;
}

static sdc_status run_geglu(op_ctx *cx, const rec *r) {
    emu_plain.geglu(cx, r->p[0], (float *)r->p[1], r->i[0], (int)r->i[1]);
    return SDC_OK;
}
static void rg_geglu(op_ctx *cx, const float *x, float *y, int64_t rows, int D) {
    if (!ST(cx)->cap) {
        emu_plain.geglu(cx, x, y, rows, D);
        return;
    }
    rec *r = push(ST(cx), run_geglu);
    if (!r) return;
    r->p[0] = x, r->p[1] = y, r->i[0] = rows, r->i[1] = D;
}

static sdc_status run_add(op_ctx *cx, const rec *r) {
    emu_plain.add(cx, (float *)r->p[0], r->p[1], r->i[0]);
    return SDC_OK;
}
static void rg_add(op_ctx *cx, float *y, const float *x, int64_t n) {
    if (!ST(cx)->cap) {
        emu_plain.add(cx, y, x, n);
        return;
    }
    rec *r = push(ST(cx), run_add);
    if (!r) return;
    r->p[0] = y, r->p[1] = x, r->i[0] = n;
}

static sdc_status run_scale(op_ctx *cx, const rec *r) {
    emu_plain.scale(cx, (float *)r->p[0], r->f[0], r->i[0]);
    return SDC_OK;
}
static void rg_scale(op_ctx *cx, float *y, float s, int64_t n) {
    if (!ST(cx)->cap) {
        emu_plain.scale(cx, y, s, n);
        return;
    }
    rec *r = push(ST(cx), run_scale);
    if (!r) return;
    r->p[0] = y, r->f[0] = s, r->i[0] = n;
}

static sdc_status run_add_channel_bias(op_ctx *cx, const rec *r) {
    emu_plain.add_channel_bias(cx, (float *)r->p[0], r->p[1], (int)r->i[0], (int)r->i[1], r->i[2]);
    return SDC_OK;
}
static void rg_add_channel_bias(op_ctx *cx, float *y, const float *v, int B, int C, int64_t HW) {
    if (!ST(cx)->cap) {
        emu_plain.add_channel_bias(cx, y, v, B, C, HW);
        return;
    }
    rec *r = push(ST(cx), run_add_channel_bias);
    if (!r) return;
    r->p[0] = y, r->p[1] = v, r->i[0] = B, r->i[1] = C, r->i[2] = HW;
}

static sdc_status run_attention(op_ctx *cx, const rec *r) {
    const int64_t *i = r->i;
    return emu_plain.attention(cx, r->p[0], i[0], r->p[1], r->p[2], i[1], (int)i[2], (int)i[3], (int)i[4], (int)i[5],
                               (int)i[6], r->f[0], (int)i[7], (float *)r->p[3]);
}
static sdc_status rg_attention(op_ctx *cx, const float *q, int64_t q_ld, const float *k, const float *v, int64_t kv_ld, int B,
                               int Nq, int Nk, int heads, int dh, float scale, int causal, float *out) {
    if (!ST(cx)->cap) return emu_plain.attention(cx, q, q_ld, k, v, kv_ld, B, Nq, Nk, heads, dh, scale, causal, out);
    rec *r = push(ST(cx), run_attention);
    if (!r) return SDC_OK;
    r->p[0] = q, r->p[1] = k, r->p[2] = v, r->p[3] = out, r->f[0] = scale;
    int64_t *i = r->i;
    i[0] = q_ld, i[1] = kv_ld, i[2] = B, i[3] = Nq, i[4] = Nk, i[5] = heads, i[6] = dh, i[7] = causal;
    return SDC_OK;
}

static sdc_status run_upsample_nearest(op_ctx *cx, const rec *r) {
    emu_plain.upsample_nearest(cx, r->p[0], (float *)r->p[1], r->i[0], (int)r->i[1], (int)r->i[2], (int)r->i[3],
                               (int)r->i[4]);
    return SDC_OK;
}
static void rg_upsample_nearest(op_ctx *cx, const float *x, float *y, int64_t BC, int H, int W, int Ho, int Wo) {
    if (!ST(cx)->cap) {
        emu_plain.upsample_nearest(cx, x, y, BC, H, W, Ho, Wo);
        return;
    }
    rec *r = push(ST(cx), run_upsample_nearest);
    if (!r) return;
    r->p[0] = x, r->p[1] = y, r->i[0] = BC, r->i[1] = H, r->i[2] = W, r->i[3] = Ho, r->i[4] = Wo;
}

/* layout changes: i[3] 0 = NCHW -> NHWC, 1 = back */
static sdc_status run_layout(op_ctx *cx, const rec *r) {
    if (r->i[3]) emu_plain.nhwc_to_nchw(cx, r->p[0], (float *)r->p[1], (int)r->i[0], (int)r->i[1], r->i[2]);
    else emu_plain.nchw_to_nhwc(cx, r->p[0], (float *)r->p[1], (int)r->i[0], (int)r->i[1], r->i[2]);
    return SDC_OK;
}
static void rg_layout(op_ctx *cx, const float *x, float *y, int B, int C, int64_t HW, int back) {
    if (!ST(cx)->cap) {
        if (back) emu_plain.nhwc_to_nchw(cx, x, y, B, C, HW);
        else emu_plain.nchw_to_nhwc(cx, x, y, B, C, HW);
        return;
    }
    rec *r = push(ST(cx), run_layout);
    if (!r) return;
    r->p[0] = x, r->p[1] = y, r->i[0] = B, r->i[1] = C, r->i[2] = HW, r->i[3] = back;
}
static void rg_nchw_to_nhwc(op_ctx *cx, const float *x, float *y, int B, int C, int64_t HW) { rg_layout(cx, x, y, B, C, HW, 0); }
static void rg_nhwc_to_nchw(op_ctx *cx, const float *x, float *y, int B, int C, int64_t HW) { rg_layout(cx, x, y, B, C, HW, 1); }

static sdc_status run_timestep_embedding(op_ctx *cx, const rec *r) {
    emu_plain.timestep_embedding(cx, r->p[0], (int)r->i[0], (int)r->i[1], (int)r->i[2], r->f[0], (float *)r->p[1]);
    return SDC_OK;
}
static void rg_timestep_embedding(op_ctx *cx, const float *t, int n, int dim, int flip_sin_to_cos, float shift, float *out) {
    if (!ST(cx)->cap) {
        emu_plain.timestep_embedding(cx, t, n, dim, flip_sin_to_cos, shift, out);
        return;
    }
    rec *r = push(ST(cx), run_timestep_embedding);
    if (!r) return;
    r->p[0] = t, r->p[1] = out, r->i[0] = n, r->i[1] = dim, r->i[2] = flip_sin_to_cos, r->f[0] = shift;
}

/* ---- graphs ---- */

static void graph_release(op_ctx *cx, emu_graph *g) {
    if (!g) return;
    for (int i = 0; i < g->nowned; i++) emu_plain.free(cx, g->owned[i]);
    free(g->owned);
    free(g->recs);
    free(g);
}

static sdc_status rg_graph_begin(op_ctx *cx) {
    emu_state *E = ST(cx);
    emu_graph *g = calloc(1, sizeof *g);
    if (!g) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    g->mm = cx->precision;
    E->cap = g;
    E->nfresh = 0;
    E->oom = 0;
    return SDC_OK;
}

static sdc_status rg_graph_end(op_ctx *cx, void **out) {
    emu_state *E = ST(cx);
    emu_graph *g = E->cap;
    E->cap = NULL;
    *out = NULL;
    if (E->oom) {
        graph_release(cx, g);
        return sdc_fail(SDC_ERR_NOMEM, "out of memory while recording a step graph");
    }
    if (E->nfresh) { /* still the caller's: it frees them with op_free later */
        int n = E->nfresh;
        E->nfresh = 0;
        graph_release(cx, g);
        return sdc_fail(SDC_ERR_ARG, "%d buffer%s allocated during the step-graph capture %s still in use at its end "
                                     "(a graph may only keep memory it has finished with)",
                        n, n == 1 ? "" : "s", n == 1 ? "is" : "are");
    }
    *out = g;
    return SDC_OK;
}

/* the records run with the precision they were recorded under */
static sdc_status rg_graph_launch(op_ctx *cx, void *p) {
    emu_graph *g = p;
    op_dtype was = cx->precision;
    cx->precision = g->mm;
    sdc_status st = SDC_OK;
    for (int i = 0; i < g->n && !st; i++) st = g->recs[i].run(cx, &g->recs[i]);
    cx->precision = was;
    return st;
}

static void rg_graph_free(op_ctx *cx, void *p) { graph_release(cx, p); }
static int64_t rg_graph_bytes(void *p) { return ((emu_graph *)p)->bytes; }

const op_backend op_backend_emulated = {
    .name = "emulated device", .host_memory = 0, .ctx_init = rg_ctx_init, .ctx_free = rg_ctx_free, .alloc = rg_alloc,
    .free = rg_free, .upload = cpu_upload, .download = cpu_download, .copy = rg_copy, .copy_2d = rg_copy_2d,
    .affine = rg_affine, .pad_zero = rg_pad_zero, .gather_rows = rg_gather_rows, .linear_t = rg_linear_t,
    .conv2d_t = rg_conv2d_t, .group_norm = rg_group_norm, .layer_norm = rg_layer_norm, .silu = rg_silu,
    .gelu = rg_gelu, .quick_gelu = rg_quick_gelu, .relu = rg_relu, .tanh_clamp = rg_tanh_clamp, .geglu = rg_geglu, .add = rg_add, .scale = rg_scale,
    .add_channel_bias = rg_add_channel_bias, .attention = rg_attention, .upsample_nearest = rg_upsample_nearest,
    .nchw_to_nhwc = rg_nchw_to_nhwc, .nhwc_to_nchw = rg_nhwc_to_nchw, .timestep_embedding = rg_timestep_embedding,
    .graph_begin = rg_graph_begin, .graph_end = rg_graph_end, .graph_launch = rg_graph_launch,
    .graph_free = rg_graph_free, .graph_bytes = rg_graph_bytes};
