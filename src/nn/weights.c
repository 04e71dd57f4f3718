/* weights.c - parameter lookup across safetensors files, and the int8
 * quantisation of layer weights (weights_quantize). */
#include "nn/weights.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/q8.h"

static sdc_status keep_owned(weights *w, float *d) {
    if (w->nowned == w->cap) {
        int cap = w->cap ? 2 * w->cap : 64;
        void **o = realloc(w->owned, (size_t)cap * sizeof(void *));
        if (!o) {
            free(d);
            return sdc_fail(SDC_ERR_NOMEM, "out of memory");
        }
        w->owned = o;
        w->cap = cap;
    }
    w->owned[w->nowned++] = d;
    return SDC_OK;
}

sdc_status weights_open(weights *w, const char *const *paths, int n) {
    memset(w, 0, sizeof *w);
    w->files = calloc((size_t)(n > 0 ? n : 1), sizeof(st_file));
    if (!w->files) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        sdc_status st = st_open(&w->files[i], paths[i]);
        if (st) {
            weights_close(w);
            return st;
        }
        w->nfiles++;
    }
    return SDC_OK;
}

void weights_close(weights *w) {
    for (int i = 0; i < w->ndevice; i++) op_weight_free(w->device_cx, w->device[i]);
    free(w->device);
    for (int i = 0; i < w->nslots; i++) {
        if (w->slots[i].overlay_owner) free(w->slots[i].overlay_copy);
        free(w->slots[i].name);
    }
    free(w->slots);
    for (int i = 0; i < w->nviews; i++) free(w->views[i].name);
    free(w->views);
    for (int i = 0; i < w->nfiles; i++) st_close(&w->files[i]);
    free(w->files);
    for (int i = 0; i < w->nowned; i++) free(w->owned[i]);
    free(w->owned);
    memset(w, 0, sizeof *w);
}

void weights_release_pages(const weights *w) {
    for (int i = 0; i < w->nfiles; i++) st_release_pages(&w->files[i]);
}

static int cmp_view(const void *a, const void *b) {
    return strcmp(((const st_tensor *)a)->name, ((const st_tensor *)b)->name);
}

sdc_status weights_add_view(weights *w, const char *name, st_dtype dtype, int ndim, const int64_t *shape,
                            const void *data, int take_ownership) {
    if (ndim > ST_MAX_DIMS) return sdc_fail(SDC_ERR_ARG, "view '%s': too many dimensions", name);
    if (take_ownership) SDC_TRY(keep_owned(w, (float *)data));
    if (w->nviews == w->views_cap) {
        int cap = w->views_cap ? 2 * w->views_cap : 256;
        st_tensor *v = realloc(w->views, (size_t)cap * sizeof(st_tensor));
        if (!v) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
        w->views = v;
        w->views_cap = cap;
    }
    st_tensor *t = &w->views[w->nviews];
    memset(t, 0, sizeof *t);
    if (!(t->name = strdup(name))) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    t->dtype = dtype;
    t->ndim = ndim;
    t->numel = 1;
    for (int i = 0; i < ndim; i++) t->numel *= (t->shape[i] = shape[i]);
    t->data = data;
    t->nbytes = (size_t)t->numel * st_dtype_size(dtype);
    w->nviews++;
    w->views_sorted = 0;
    return SDC_OK;
}

const st_tensor *weights_find(const weights *w, const char *name) {
    if (w->nviews) {
        weights *mw = (weights *)w; /* sorting the view index is not a visible change */
        if (!mw->views_sorted) {
            qsort(mw->views, (size_t)mw->nviews, sizeof(st_tensor), cmp_view);
            mw->views_sorted = 1;
        }
        st_tensor key = {.name = (char *)name};
        const st_tensor *t = bsearch(&key, w->views, (size_t)w->nviews, sizeof(st_tensor), cmp_view);
        if (t) return t;
    }
    char full[512];
    snprintf(full, sizeof full, "%s%s", w->prefix, name);
    for (int i = 0; i < w->nfiles; i++) {
        const st_tensor *t = st_find(&w->files[i], full);
        if (t) return t;
    }
    return NULL;
}

int weights_has(const weights *w, const char *fmt, ...) {
    char name[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    return weights_find(w, name) != NULL;
}

/* Random weights for timing full-size architectures without their files:
 * uniform in +-1/sqrt(fan_in) for matrices and kernels (activations stay
 * O(1)), 1 for norm scales, 0 for biases. */
static sdc_status synthesize(weights *w, const char *name, const float **out, int ndim, const int64_t *shape) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    float *d = malloc((size_t)(n ? n : 1) * sizeof(float));
    if (!d) return sdc_fail(SDC_ERR_NOMEM, "out of memory synthesizing '%s'", name);
    const char *leaf = strrchr(name, '.');
    int is_norm = strstr(name, "norm") && leaf && !strcmp(leaf, ".weight") && ndim == 1;
    float a = ndim >= 2 ? 1.0f / sqrtf((float)(n / shape[0])) : 0.0f;
    if (!w->synth_state) w->synth_state = 0x9e3779b97f4a7c15ull;
    for (int64_t i = 0; i < n; i++) {
        w->synth_state = w->synth_state * 6364136223846793005ull + 1442695040888963407ull;
        float u = (float)(w->synth_state >> 40) / 16777216.0f; /* [0, 1) */
        d[i] = is_norm ? 1.0f : a * (2.0f * u - 1.0f);
    }
    SDC_TRY(keep_owned(w, d));
    w->nparams += n;
    *out = d;
    return SDC_OK;
}

/* copy of the float32 values the model currently reads for t */
static sdc_status alloc_copy(const st_tensor *t, const float *current, float **out) {
    float *d = malloc((size_t)(t->numel ? t->numel : 1) * sizeof(float));
    if (!d) return sdc_fail(SDC_ERR_NOMEM, "out of memory copying '%s'", t->name);
    memcpy(d, current, (size_t)t->numel * sizeof(float));
    *out = d;
    return SDC_OK;
}

static sdc_status add_slot(weights *w, const char *name, const void **slot, op_dtype *dtype, int64_t rows,
                           int64_t cols) {
    if (w->nslots == w->slots_cap) {
        int cap = w->slots_cap ? 2 * w->slots_cap : 256;
        weights_slot *s = realloc(w->slots, (size_t)cap * sizeof(weights_slot));
        if (!s) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
        w->slots = s;
        w->slots_cap = cap;
    }
    weights_slot *s = &w->slots[w->nslots];
    if (!(s->name = strdup(name))) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    s->slot = slot;
    s->dtype = dtype;
    s->mutable_copy = NULL;
    s->overlay_copy = NULL;
    s->overlay_base = NULL;
    s->overlay_base_dt = OP_F32;
    s->overlay_owner = 0;
    s->rows = rows;
    s->cols = cols;
    s->conv_c = s->conv_k = 0;
    w->nslots++;
    return SDC_OK;
}

static sdc_status get_param(weights *w, const char *name, const void **out, op_dtype *dt, int ndim,
                            const int64_t *shape);

sdc_status weights_get(weights *w, const float **out, int ndim, const int64_t *shape, const char *fmt, ...) {
    char name[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    SDC_TRY(get_param(w, name, (const void **)out, NULL, ndim, shape));
    return add_slot(w, name, (const void **)out, NULL, 0, 0);
}

sdc_status weights_get_t(weights *w, const void **out, op_dtype *dt, int ndim, const int64_t *shape, const char *fmt,
                         ...) {
    char name[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    SDC_TRY(get_param(w, name, out, dt, ndim, shape));
    return add_slot(w, name, out, dt, 0, 0);
}

/* ---- int8 layer weights ---- */

/* Let go of float data no slot reads any more: an owned buffer is freed
 * (unless a view's data: single-file transposes), file pages leave the
 * resident set. */
static void release_source(weights *w, const void *p, int64_t nbytes) {
    for (int i = 0; i < w->nslots; i++)
        if (*w->slots[i].slot == p) return;
    for (int i = 0; i < w->nowned; i++)
        if (w->owned[i] == p) {
            for (int v = 0; v < w->nviews; v++)
                if (w->views[v].data == p) return;
            free(w->owned[i]);
            w->owned[i] = w->owned[--w->nowned];
            return;
        }
    for (int f = 0; f < w->nfiles; f++)
        if (st_release_range(&w->files[f], p, (size_t)nbytes)) return;
}

/* Slot i (a layer weight) and every slot of its name in q. */
static sdc_status quantize_slot(weights *w, int i, op_dtype q, int threads) {
    weights_slot *s = &w->slots[i];
    if (!s->rows || *s->dtype == q) return SDC_OK;
    if (q != OP_Q8) return sdc_fail(SDC_ERR_ARG, "weights can be quantised to q8 only");
    const void *src = *s->slot, *dst = NULL;
    op_dtype st = *s->dtype;
    for (int j = 0; j < w->nslots && !dst; j++) /* the same parameter taken twice: one copy */
        if (j != i && w->slots[j].rows && *w->slots[j].dtype == q && !strcmp(w->slots[j].name, s->name))
            dst = *w->slots[j].slot;
    if (!dst) {
        q8_matrix *m;
        sdc_status e = s->conv_k ? q8_quantize_conv(src, st, s->rows, s->conv_c, s->conv_k, threads, &m)
                                 : q8_quantize(src, st, s->rows, s->cols, threads, &m);
        if (e)
            return sdc_fail(e, "%s: '%s%s': %s", w->nfiles ? w->files[0].path : "weights", w->prefix, s->name,
                            sdc_last_error());
        SDC_TRY(keep_owned(w, (float *)m));
        dst = m;
    }
    for (int j = 0; j < w->nslots; j++)
        if (!strcmp(w->slots[j].name, s->name) && w->slots[j].dtype) {
            *w->slots[j].slot = dst;
            *w->slots[j].dtype = q;
            w->slots[j].mutable_copy = NULL; /* freed below if it was one: weights_mutable starts afresh */
        }
    release_source(w, src, s->rows * s->cols * (st == OP_F32 ? 4 : 2));
    return SDC_OK;
}

/* A layer weight stored int8 (sdc convert --weights q8, weights_save): NAME.q8
 * (U8 [panels][nb][Q8_PBLOCK], read in place) and NAME.q8_shape (I64 rows,
 * cols, ch, kk), checked against the shape the model expects. */
static sdc_status get_q8(weights *w, const char *name, const st_tensor *tq, const void **out, op_dtype *dt, int ndim,
                         const int64_t *shape) {
    char sn[440];
    const char *file = w->nfiles ? w->files[0].path : "(no file)";
    snprintf(sn, sizeof sn, "%s.q8_shape", name);
    const st_tensor *ts = weights_find(w, sn);
    int64_t *m = NULL, cols = 1, kk = ndim == 4 ? shape[2] * shape[3] : 0;
    for (int d = 1; d < ndim; d++) cols *= shape[d];
    if (!ts || ts->numel != 4 || st_to_i64(ts, &m))
        return sdc_fail(SDC_ERR_FORMAT, "%s: int8 tensor '%s%s.q8' without its four-value '.q8_shape'", file, w->prefix,
                        name);
    int64_t nb = (cols + Q8_BLOCK - 1) / Q8_BLOCK, panels = (shape[0] + Q8_PANEL - 1) / Q8_PANEL;
    int ok = m[0] == shape[0] && m[1] == cols && tq->dtype == ST_U8 &&
             tq->nbytes == (size_t)(panels * nb * Q8_PBLOCK) &&
             (m[2] == 0 ? m[3] == 0 : m[2] == shape[1] && m[3] == kk && m[2] % Q8_BLOCK == 0);
    q8_matrix *q = ok ? malloc(sizeof *q) : NULL;
    if (q)
        *q = (q8_matrix){.rows = m[0],
                         .cols = m[1],
                         .nb = nb,
                         .panels = panels,
                         .ch = m[2],
                         .kk = m[3],
                         .data = (uint8_t *)tq->data};
    free(m);
    if (!ok)
        return sdc_fail(SDC_ERR_SHAPE, "%s: int8 tensor '%s%s.q8' does not hold a %lld x %lld weight as sdc writes it",
                        file, w->prefix, name, (long long)shape[0], (long long)cols);
    if (!q) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    SDC_TRY(keep_owned(w, (float *)q));
    w->nparams += shape[0] * cols;
    *out = q;
    *dt = OP_Q8;
    return SDC_OK;
}

sdc_status weights_get_layer(weights *w, const void **out, op_dtype *dt, int ndim, const int64_t *shape,
                             const char *fmt, ...) {
    char name[400], qn[420];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    if (ndim < 2) return sdc_fail(SDC_ERR_ARG, "'%s': a layer weight has at least two dimensions", name);
    snprintf(qn, sizeof qn, "%s.q8", name);
    const st_tensor *tq = weights_find(w, name) ? NULL : weights_find(w, qn);
    if (tq) SDC_TRY(get_q8(w, name, tq, out, dt, ndim, shape));
    else SDC_TRY(get_param(w, name, out, dt, ndim, shape));
    int64_t cols = 1;
    for (int d = 1; d < ndim; d++) cols *= shape[d];
    SDC_TRY(add_slot(w, name, out, dt, shape[0], cols));
    if (ndim == 4 && shape[2] == shape[3]) { /* (ky, kx, c) column order for int8 (q8.h) */
        w->slots[w->nslots - 1].conv_c = (int)shape[1];
        w->slots[w->nslots - 1].conv_k = (int)shape[2];
    }
    if (w->quant == OP_F32 || !*out) return SDC_OK; /* not asked for, or a shape-only view (synthesize 2) */
    return quantize_slot(w, w->nslots - 1, w->quant, w->quant_threads);
}

sdc_status weights_quantize(weights *w, op_dtype q, int threads) {
    for (int i = 0; i < w->nslots; i++) SDC_TRY(quantize_slot(w, i, q, threads));
    /* each tensor's pages left as it was quantised, but reading the next one
     * faults its neighbours back in (fault-around, readahead): let the whole
     * mapping go once more; what a forward reads in place (biases, norms)
     * comes back on use */
    weights_release_pages(w);
    return SDC_OK;
}

sdc_status weights_to_device(weights *w, op_ctx *cx, op_dtype dt) {
    if (w->ndevice) return sdc_fail(SDC_ERR_ARG, "weights already on the device");
    if (!(w->device = calloc((size_t)(w->nslots ? w->nslots : 1), sizeof(void *))))
        return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    char *done = calloc((size_t)(w->nslots ? w->nslots : 1), 1);
    if (!done) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    w->device_cx = cx;
    sdc_status st = SDC_OK;
    for (int i = 0; i < w->nslots && !st; i++) {
        if (done[i]) continue;
        /* matrices and kernels (typed slots) in dt; norms, biases, embeddings float32 */
        op_dtype src = w->slots[i].dtype ? *w->slots[i].dtype : OP_F32, dst = w->slots[i].dtype ? dt : OP_F32;
        /* first: a converted model's int8 weight has no float tensor to find */
        if (src == OP_Q8) {
            st = sdc_fail(SDC_ERR_UNSUPPORTED,
                          "parameter '%s' is int8 (q8): device backends take float weights, not sdc's int8 "
                          "blocks",
                          w->slots[i].name);
            break;
        }
        const st_tensor *t = weights_find(w, w->slots[i].name);
        /* the element count: of the stored tensor, or of a synthesized one
         * (benchmarks), which has no stored tensor but an owned buffer */
        int64_t n = t ? t->numel : -1;
        if (n < 0) {
            st = sdc_fail(SDC_ERR_ARG, "parameter '%s' has no stored tensor to upload", w->slots[i].name);
            break;
        }
        void *d = NULL;
        if ((st = op_weight_upload(cx, *w->slots[i].slot, src, n, dst, &d))) break;
        w->device[w->ndevice++] = d;
        for (int j = i; j < w->nslots; j++)
            if (!done[j] && !strcmp(w->slots[j].name, w->slots[i].name)) {
                *w->slots[j].slot = d;
                if (w->slots[j].dtype) *w->slots[j].dtype = dst;
                done[j] = 1;
            }
    }
    free(done);
    return st;
}

int weights_slot_count(const weights *w) { return w->nslots; }
const char *weights_slot_name(const weights *w, int i) { return i >= 0 && i < w->nslots ? w->slots[i].name : NULL; }

/* weights_mutable under an overlay: a fresh float32 copy of what slot `first`
 * (and every slot of its name) reads now, the old pointers kept */
static sdc_status overlay_copy(weights *w, int first, const st_tensor *t, const char *name, float **data) {
    weights_slot *s0 = &w->slots[first];
    if (s0->overlay_copy) {
        *data = s0->overlay_copy;
        return SDC_OK;
    }
    if (w->ndevice)
        return sdc_fail(SDC_ERR_UNSUPPORTED, "'%s' lives on the device; it cannot be changed per request", name);
    if (!t) return sdc_fail(SDC_ERR_ARG, "parameter '%s' has no stored tensor", name);
    float *d;
    op_dtype cur_dt = s0->dtype ? *s0->dtype : OP_F32;
    if (cur_dt == OP_F32) SDC_TRY(alloc_copy(t, *s0->slot, &d));
    else SDC_TRY(st_to_f32(t, &d)); /* a 16-bit slot reads the stored tensor itself */
    for (int i = first; i < w->nslots; i++)
        if (!strcmp(w->slots[i].name, name)) {
            weights_slot *s = &w->slots[i];
            s->overlay_base = *s->slot;
            s->overlay_base_dt = s->dtype ? *s->dtype : OP_F32;
            *s->slot = d;
            if (s->dtype) *s->dtype = OP_F32;
            s->overlay_copy = d;
            s->overlay_owner = i == first;
        }
    *data = d;
    return SDC_OK;
}

void weights_overlay_begin(weights *w) { w->overlay = 1; }

void weights_overlay_drop(weights *w) {
    for (int i = 0; i < w->nslots; i++) {
        weights_slot *s = &w->slots[i];
        if (!s->overlay_copy) continue;
        *s->slot = s->overlay_base;
        if (s->dtype) *s->dtype = s->overlay_base_dt;
        if (s->overlay_owner) free(s->overlay_copy);
        s->overlay_copy = NULL;
        s->overlay_owner = 0;
    }
    w->overlay = 0;
}

sdc_status weights_mutable(weights *w, const char *name, float **data, int *ndim, int64_t *shape) {
    int first = -1;
    for (int i = 0; i < w->nslots; i++)
        if (!strcmp(w->slots[i].name, name)) {
            first = i;
            break;
        }
    if (first < 0) return sdc_fail(SDC_ERR_ARG, "the model has no parameter '%s'", name);
    const st_tensor *t = weights_find(w, name);
    if (ndim) *ndim = t ? t->ndim : 1;
    if (shape && t)
        for (int d = 0; d < t->ndim; d++) shape[d] = t->shape[d];
    if (w->overlay) return overlay_copy(w, first, t, name, data);
    if (w->slots[first].mutable_copy) {
        *data = w->slots[first].mutable_copy;
        return SDC_OK;
    }
    if (!t && w->slots[first].dtype && *w->slots[first].dtype == OP_Q8)
        return sdc_fail(SDC_ERR_UNSUPPORTED,
                        "parameter '%s' is stored int8 (q8): a LoRA needs the float weights (fuse "
                        "it into the original model: sdc convert --lora)",
                        name);
    if (!t) return sdc_fail(SDC_ERR_ARG, "parameter '%s' has no stored tensor", name);
    /* a tensor already widened into a buffer of ours (f16/bf16 files) is
     * updated in place: a second float32 copy would double its memory */
    float *d = NULL;
    const void *cur = *w->slots[first].slot;
    op_dtype cur_dt = w->slots[first].dtype ? *w->slots[first].dtype : OP_F32;
    for (int i = 0; i < w->nowned && !d && cur_dt == OP_F32; i++)
        if (w->owned[i] == cur) d = (float *)cur;
    if (!d) {
        if (cur_dt == OP_F32) SDC_TRY(alloc_copy(t, cur, &d));
        else SDC_TRY(st_to_f32(t, &d)); /* a 16-bit matrix read from the mapping: widen it */
        SDC_TRY(keep_owned(w, d));
    }
    for (int i = first; i < w->nslots; i++)
        if (!strcmp(w->slots[i].name, name)) {
            *w->slots[i].slot = d;
            if (w->slots[i].dtype) *w->slots[i].dtype = OP_F32;
            w->slots[i].mutable_copy = d;
        }
    *data = d;
    return SDC_OK;
}

static sdc_status get_param(weights *w, const char *name, const void **out, op_dtype *dt, int ndim,
                            const int64_t *shape) {
    *out = NULL;
    if (dt) *dt = OP_F32;
    const st_tensor *t = weights_find(w, name);
    const char *file = w->nfiles ? w->files[0].path : "(no file)";
    if (!t && w->synthesize == 2 && ndim >= 0) {
        SDC_TRY(weights_add_view(w, name, ST_F32, ndim, shape, NULL, 0));
        w->nparams += weights_find(w, name)->numel;
        return SDC_OK;
    }
    if (!t && w->synthesize && ndim >= 0) return synthesize(w, name, (const float **)out, ndim, shape);
    if (!t) return sdc_fail(SDC_ERR_FORMAT, "%s: missing tensor '%s%s'", file, w->prefix, name);
    if (ndim >= 0) {
        int ok = t->ndim == ndim;
        for (int i = 0; ok && i < ndim; i++) ok = t->shape[i] == shape[i];
        if (!ok) {
            char a[160] = "(", b[160] = "(";
            for (int i = 0; i < t->ndim; i++)
                snprintf(a + strlen(a), sizeof a - strlen(a), i ? ", %lld" : "%lld", (long long)t->shape[i]);
            for (int i = 0; i < ndim; i++)
                snprintf(b + strlen(b), sizeof b - strlen(b), i ? ", %lld" : "%lld", (long long)shape[i]);
            return sdc_fail(SDC_ERR_SHAPE, "%s: tensor '%s%s' has shape %s), expected %s)", file, w->prefix, name, a, b);
        }
    }
    w->nparams += t->numel;
    if (t->dtype == ST_F32 && ((uintptr_t)t->data & 3) == 0) {
        *out = t->data;
        return SDC_OK;
    }
    if (dt && (t->dtype == ST_F16 || t->dtype == ST_BF16) && ((uintptr_t)t->data & 1) == 0 && t->data) {
        *out = t->data;
        *dt = t->dtype == ST_F16 ? OP_F16 : OP_BF16;
        return SDC_OK;
    }
    float *d;
    SDC_TRY(st_to_f32(t, &d));
    SDC_TRY(keep_owned(w, d));
    *out = d;
    return SDC_OK;
}
