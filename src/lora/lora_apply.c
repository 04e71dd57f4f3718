/* lora_apply.c - fuse one LoRA file into a model's components: read its
 * modules, resolve each to a parameter and check every shape first, then
 * change the weights one tensor at a time (weights_mutable gives an owned
 * float32 copy of just that tensor). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lora/lora_internal.h"

/* a resolved module: what to add where */
typedef struct {
    weights *w;
    const char *param;      /* "<module>.weight" */
    int64_t out, K;         /* W viewed as (out, K), K = in * kh * kw */
    int r;
    double factor;          /* scale * alpha / rank */
    const lora_module *m;
} fuse_plan;

static const char *comp_title(lora_comp c) {
    static const char *t[] = {"UNet", "text encoder (text_encoder)", "second text encoder (text_encoder_2)"};
    return c >= 0 && c < LORA_NCOMP ? t[c] : "?";
}

static void shape_str(char *b, size_t n, int ndim, const int64_t *shape) {
    size_t o = (size_t)snprintf(b, n, "(");
    for (int i = 0; i < ndim && o < n; i++) o += (size_t)snprintf(b + o, n - o, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (o < n) snprintf(b + o, n - o, ")");
}

static int is_float(st_dtype d) { return d == ST_F32 || d == ST_F16 || d == ST_BF16 || d == ST_F64; }

static sdc_status read_alpha(const char *path, const st_tensor *a, double *alpha) {
    if (a->numel != 1 || !is_float(a->dtype))
        return sdc_fail(SDC_ERR_FORMAT, "%s: LoRA key '%s' must be one float (it has %lld %s values)", path, a->name,
                        (long long)a->numel, st_dtype_name(a->dtype));
    float *v;
    SDC_TRY(st_to_f32(a, &v));
    *alpha = v[0];
    free(v);
    if (!isfinite(*alpha)) return sdc_fail(SDC_ERR_FORMAT, "%s: LoRA key '%s' is not a finite number", path, a->name);
    return SDC_OK;
}

/* Check one module against the model and fill its plan. */
static sdc_status resolve(const lora_targets *t, lora_index *ix, int *built, const char *path, const lora_module *m,
                          const float *scales, fuse_plan *p) {
    float scale = scales[m->comp];
    weights *w = t->w[m->comp];
    if (!w)
        return sdc_fail(SDC_ERR_SHAPE, "%s: LoRA key '%s' is for a %s, which this model does not have", path, m->key,
                        comp_title(m->comp));
    if (!built[m->comp]) {
        SDC_TRY(lora_index_build(&ix[m->comp], w, m->comp == LORA_UNET ? t->unet_cfg : NULL));
        built[m->comp] = 1;
    }
    int ambiguous;
    const char *param = lora_index_find(&ix[m->comp], m->module, &ambiguous);
    if (ambiguous)
        return sdc_fail(SDC_ERR_FORMAT, "%s: LoRA key '%s' may mean more than one module of the %s", path, m->key,
                        comp_title(m->comp));
    if (!param)
        return sdc_fail(SDC_ERR_SHAPE, "%s: LoRA key '%s' matches no module of the %s (is the LoRA for another model?)",
                        path, m->key, comp_title(m->comp));
    const st_tensor *W = weights_find(w, param);
    /* a converted model (sdc convert --weights q8) stores NAME.q8 instead of the float weight */
    if (!W && weights_has(w, "%s.q8", param))
        return sdc_fail(SDC_ERR_UNSUPPORTED,
                        "%s: parameter '%s' is stored int8 (q8): a LoRA needs the float weights (fuse it into the "
                        "original model: sdc convert --lora)",
                        path, param);
    if (!W) return sdc_fail(SDC_ERR_ARG, "%s: parameter '%s' has no stored tensor", path, param);
    const st_tensor *dn = m->t[LORA_DOWN], *up = m->t[LORA_UP];
    char a[160], b[160], c[160];
    shape_str(a, sizeof a, dn->ndim, dn->shape);
    shape_str(b, sizeof b, up->ndim, up->shape);
    shape_str(c, sizeof c, W->ndim, W->shape);
    if (!is_float(dn->dtype) || !is_float(up->dtype))
        return sdc_fail(SDC_ERR_FORMAT, "%s: LoRA key '%s' holds %s values, not floats", path,
                        is_float(dn->dtype) ? up->name : dn->name, st_dtype_name(is_float(dn->dtype) ? up->dtype : dn->dtype));
    if ((dn->ndim != 2 && dn->ndim != 4) || (up->ndim != 2 && up->ndim != 4) || (up->ndim == 4 && (up->shape[2] != 1 || up->shape[3] != 1)))
        return sdc_fail(SDC_ERR_SHAPE, "%s: LoRA keys '%s' %s and '%s' %s are not (rank, in[, kh, kw]) and "
                        "(out, rank[, 1, 1])", path, dn->name, a, up->name, b);
    if (dn->shape[0] != up->shape[1])
        return sdc_fail(SDC_ERR_SHAPE, "%s: rank mismatch: LoRA key '%s' %s has rank %lld but '%s' %s has %lld", path,
                        dn->name, a, (long long)dn->shape[0], up->name, b, (long long)up->shape[1]);
    if (dn->shape[0] < 1 || dn->shape[0] > 65536)
        return sdc_fail(SDC_ERR_SHAPE, "%s: LoRA key '%s' %s has rank %lld", path, dn->name, a, (long long)dn->shape[0]);
    if (W->ndim != 2 && W->ndim != 4)
        return sdc_fail(SDC_ERR_SHAPE, "%s: LoRA key '%s' targets '%s' %s, which is no linear or conv weight", path,
                        m->key, param, c);
    int64_t wk[2] = {W->ndim == 4 ? W->shape[2] : 1, W->ndim == 4 ? W->shape[3] : 1};
    int64_t dk[2] = {dn->ndim == 4 ? dn->shape[2] : 1, dn->ndim == 4 ? dn->shape[3] : 1};
    if (up->shape[0] != W->shape[0] || dn->shape[1] != W->shape[1] || wk[0] != dk[0] || wk[1] != dk[1])
        return sdc_fail(SDC_ERR_SHAPE, "%s: LoRA keys '%s' %s and '%s' %s do not fit %s module '%s' of shape %s", path,
                        dn->name, a, up->name, b, lora_comp_name(m->comp), param, c);
    double alpha = (double)dn->shape[0];
    if (m->t[LORA_ALPHA]) SDC_TRY(read_alpha(path, m->t[LORA_ALPHA], &alpha));
    *p = (fuse_plan){.w = w, .param = param, .out = W->shape[0], .K = W->numel / W->shape[0],
                     .r = (int)dn->shape[0], .factor = (double)scale * (alpha / (double)dn->shape[0]), .m = m};
    return SDC_OK;
}

static int cmp_plan(const void *a, const void *b) {
    const fuse_plan *x = a, *y = b;
    if (x->w != y->w) return x->w < y->w ? -1 : 1;
    return strcmp(x->param, y->param);
}

sdc_status lora_apply(const lora_targets *t, const char *path, float scale, lora_counts *counts) {
    const float scales[LORA_NCOMP] = {scale, scale, scale};
    return lora_apply_scaled(t, path, scales, counts);
}

sdc_status lora_apply_scaled(const lora_targets *t, const char *path, const float scale[LORA_NCOMP],
                             lora_counts *counts) {
    if (counts) memset(counts, 0, sizeof *counts);
    for (int c = 0; c < LORA_NCOMP; c++)
        if (!isfinite(scale[c]))
            return sdc_fail(SDC_ERR_ARG, "%s: LoRA scale %g is not a finite number", path, (double)scale[c]);
    st_file f;
    SDC_TRY(st_open(&f, path));
    lora_module *mods = NULL;
    int n = 0, built[LORA_NCOMP] = {0};
    lora_index ix[LORA_NCOMP];
    memset(ix, 0, sizeof ix);
    fuse_plan *plan = NULL;
    sdc_status st = lora_file_modules(&f, &mods, &n);
    if (!st && !(plan = calloc((size_t)n, sizeof *plan))) st = sdc_fail(SDC_ERR_NOMEM, "out of memory");
    for (int i = 0; !st && i < n; i++) st = resolve(t, ix, built, path, &mods[i], scale, &plan[i]);
    if (!st) { /* two spellings of one module in one file would fuse it twice */
        fuse_plan *s = malloc((size_t)n * sizeof *s);
        if (!s) st = sdc_fail(SDC_ERR_NOMEM, "out of memory");
        else {
            memcpy(s, plan, (size_t)n * sizeof *s);
            qsort(s, (size_t)n, sizeof *s, cmp_plan);
            for (int i = 1; !st && i < n; i++)
                if (!cmp_plan(&s[i - 1], &s[i]))
                    st = sdc_fail(SDC_ERR_FORMAT, "%s: LoRA keys '%s' and '%s' both change '%s'", path, s[i - 1].m->key,
                                  s[i].m->key, s[i].param);
            free(s);
        }
    }
    for (int i = 0; !st && i < n; i++) {
        const fuse_plan *p = &plan[i];
        if (p->factor != 0.0) { /* scale 0 leaves the stored tensor in use */
            float *W;
            st = weights_mutable(p->w, p->param, &W, NULL, NULL);
            if (!st) st = lora_fuse_tensor(W, p->out, p->K, p->r, p->m->t[LORA_UP], p->m->t[LORA_DOWN], p->factor);
        }
        if (!st && counts) {
            counts->total++;
            counts->comp[p->m->comp]++;
        }
    }
    free(plan);
    for (int c = 0; c < LORA_NCOMP; c++) lora_index_free(&ix[c]);
    lora_modules_free(mods, n);
    st_close(&f);
    return st;
}
