/* clip_text_model.c - CLIP text encoder: config, loading and forward.
 * Follows transformers 4.44 modeling_clip.py (eager attention):
 *   x = token_embedding[ids] + position_embedding[0..T)
 *   per layer: x += out_proj(attn(q_proj(ln1 x) * head_dim^-0.5, k, v, causal))
 *              x += fc2(act(fc1(ln2 x)))
 *   last = final_layer_norm(x); pooled = last[eos]; embeds = text_projection(pooled) */
#include "text/clip_text_model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/json.h"
#include "nn/layers.h"

typedef struct {
    layer_norm ln1, ln2;
    linear q, k, v, o; /* (D, D) each, with bias */
    linear fc1, fc2;   /* (I, D), (D, I) */
} clip_layer;

struct clip_text_model {
    op_ctx *cx; /* the model's: every op of the forward runs in it */
    clip_text_config cfg;
    weights own;      /* used when the model opened its own files */
    int owns_weights;
    weights *src;     /* where the parameters came from: &own or the borrowed object */
    weights *adopted; /* a borrowed object handed over with clip_text_own_weights */
    const void *tok_emb;  /* (vocab, D) as stored: 49408 rows of which a prompt reads 77 */
    op_dtype tok_dt;
    const float *pos_emb; /* (max_positions, D) */
    clip_layer *layers;   /* num_layers */
    layer_norm final_ln;
    linear proj; /* (proj, D), no bias; only with_projection */
};

/* ---- config ------------------------------------------------------------ */

sdc_status clip_text_config_check(const clip_text_config *c, const char *what) {
#define RANGE(v, key, lo, hi)                                                                          \
    if ((v) < (lo) || (v) > (hi))                                                                         \
        return sdc_fail(SDC_ERR_FORMAT, "%s: %s = %lld is out of range [%lld, %lld]", what, key, (long long)(v), \
                        (long long)(lo), (long long)(hi));
    RANGE(c->hidden_size, "hidden_size", 1, 1 << 16);
    RANGE(c->intermediate_size, "intermediate_size", 1, 1 << 18);
    RANGE(c->num_layers, "num_hidden_layers", 1, 512);
    RANGE(c->num_heads, "num_attention_heads", 1, 1024);
    RANGE(c->max_positions, "max_position_embeddings", 1, 1 << 16);
    RANGE(c->vocab_size, "vocab_size", 1, 1 << 24);
    if (c->with_projection) RANGE(c->projection_dim, "projection_dim", 1, 1 << 16);
#undef RANGE
    if (c->hidden_size % c->num_heads)
        return sdc_fail(SDC_ERR_FORMAT, "%s: hidden_size %d is not divisible by num_attention_heads %d", what,
                        c->hidden_size, c->num_heads);
    if (!(c->layer_norm_eps > 0.0f) || !isfinite(c->layer_norm_eps))
        return sdc_fail(SDC_ERR_FORMAT, "%s: layer_norm_eps %g must be a positive number", what,
                        (double)c->layer_norm_eps);
    if (c->act != CLIP_ACT_QUICK_GELU && c->act != CLIP_ACT_GELU)
        return sdc_fail(SDC_ERR_FORMAT, "%s: bad activation %d", what, (int)c->act);
    return SDC_OK;
}

static sdc_status get_int_field(const cJSON *o, const char *key, long long def, int *out, const char *what) {
    long long v;
    SDC_TRY(json_get_int(o, key, def, &v, what));
    if (v < -2147483647 || v > 2147483647) return sdc_fail(SDC_ERR_FORMAT, "%s: '%s' = %lld is out of range", what, key, v);
    *out = (int)v;
    return SDC_OK;
}

static sdc_status parse_config(const cJSON *root, clip_text_config *c, const char *what) {
    /* a full CLIPConfig keeps the text part under "text_config" */
    const cJSON *o = root;
    const cJSON *tc = cJSON_GetObjectItemCaseSensitive(root, "text_config");
    if (!json_has(root, "hidden_size") && tc && cJSON_IsObject(tc)) o = tc;
    if (!cJSON_IsObject(o)) return sdc_fail(SDC_ERR_FORMAT, "%s: not a JSON object", what);
    /* defaults: transformers CLIPTextConfig */
    SDC_TRY(get_int_field(o, "hidden_size", 512, &c->hidden_size, what));
    SDC_TRY(get_int_field(o, "intermediate_size", 2048, &c->intermediate_size, what));
    SDC_TRY(get_int_field(o, "num_hidden_layers", 12, &c->num_layers, what));
    SDC_TRY(get_int_field(o, "num_attention_heads", 8, &c->num_heads, what));
    SDC_TRY(get_int_field(o, "max_position_embeddings", 77, &c->max_positions, what));
    SDC_TRY(get_int_field(o, "vocab_size", 49408, &c->vocab_size, what));
    SDC_TRY(get_int_field(o, "projection_dim", 512, &c->projection_dim, what));
    long long eos;
    SDC_TRY(json_get_int(o, "eos_token_id", 49407, &eos, what));
    c->eos_token_id = eos;
    double eps;
    SDC_TRY(json_get_num(o, "layer_norm_eps", 1e-5, &eps, what));
    c->layer_norm_eps = (float)eps;
    const char *act;
    SDC_TRY(json_get_str(o, "hidden_act", "quick_gelu", &act, what));
    if (!strcmp(act, "quick_gelu"))
        c->act = CLIP_ACT_QUICK_GELU;
    else if (!strcmp(act, "gelu"))
        c->act = CLIP_ACT_GELU;
    else
        return sdc_fail(SDC_ERR_UNSUPPORTED, "%s: hidden_act '%s' is not supported (quick_gelu, gelu)", what, act);
    c->with_projection = 0;
    const cJSON *arch = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    if (arch && cJSON_IsArray(arch)) {
        const cJSON *a;
        cJSON_ArrayForEach(a, arch) {
            if (cJSON_IsString(a) && !strcmp(a->valuestring, "CLIPTextModelWithProjection")) c->with_projection = 1;
        }
    }
    return SDC_OK;
}

sdc_status clip_text_config_load(clip_text_config *cfg, const char *config_path) {
    cJSON *j;
    memset(cfg, 0, sizeof *cfg);
    SDC_TRY(json_load(config_path, &j));
    sdc_status st = parse_config(j, cfg, config_path);
    cJSON_Delete(j);
    SDC_TRY(st);
    return clip_text_config_check(cfg, config_path);
}

/* ---- loading ----------------------------------------------------------- */

static sdc_status load_layer(weights *w, const clip_text_config *c, clip_layer *L, int i) {
    char n[160];
    int D = c->hidden_size, I = c->intermediate_size;
    const char *p = "text_model.encoder.layers";
#define NAME(suffix) (snprintf(n, sizeof n, "%s.%d.%s", p, i, suffix), n)
    SDC_TRY(layer_norm_load(w, &L->ln1, D, c->layer_norm_eps, NAME("layer_norm1")));
    SDC_TRY(linear_load(w, &L->q, D, D, 1, NAME("self_attn.q_proj")));
    SDC_TRY(linear_load(w, &L->k, D, D, 1, NAME("self_attn.k_proj")));
    SDC_TRY(linear_load(w, &L->v, D, D, 1, NAME("self_attn.v_proj")));
    SDC_TRY(linear_load(w, &L->o, D, D, 1, NAME("self_attn.out_proj")));
    SDC_TRY(layer_norm_load(w, &L->ln2, D, c->layer_norm_eps, NAME("layer_norm2")));
    SDC_TRY(linear_load(w, &L->fc1, D, I, 1, NAME("mlp.fc1")));
    SDC_TRY(linear_load(w, &L->fc2, I, D, 1, NAME("mlp.fc2")));
#undef NAME
    return SDC_OK;
}

static sdc_status load_params(clip_text_model *m, weights *w) {
    const clip_text_config *c = &m->cfg;
    int64_t tok[2] = {c->vocab_size, c->hidden_size}, pos[2] = {c->max_positions, c->hidden_size};
    SDC_TRY(weights_get_t(w, &m->tok_emb, &m->tok_dt, 2, tok, "text_model.embeddings.token_embedding.weight"));
    SDC_TRY(weights_get(w, &m->pos_emb, 2, pos, "text_model.embeddings.position_embedding.weight"));
    m->layers = calloc((size_t)c->num_layers, sizeof *m->layers);
    if (!m->layers) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    for (int i = 0; i < c->num_layers; i++) SDC_TRY(load_layer(w, c, &m->layers[i], i));
    SDC_TRY(layer_norm_load(w, &m->final_ln, c->hidden_size, c->layer_norm_eps, "text_model.final_layer_norm"));
    if (c->with_projection)
        SDC_TRY(linear_load(w, &m->proj, c->hidden_size, c->projection_dim, 0, "text_projection"));
    return SDC_OK;
}

sdc_status clip_text_load_weights(clip_text_model **out, op_ctx *cx, const clip_text_config *cfg, weights *w) {
    *out = NULL;
    const char *file = w->nfiles ? w->files[0].path : "(no file)";
    SDC_TRY(clip_text_config_check(cfg, file));
    clip_text_model *m = calloc(1, sizeof *m);
    if (!m) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    m->cx = cx;
    m->cfg = *cfg;
    m->src = w;
    sdc_status st = load_params(m, w);
    if (st) {
        clip_text_free(m);
        return st;
    }
    *out = m;
    return SDC_OK;
}

sdc_status clip_text_load(clip_text_model **out, op_ctx *cx, const char *dir, const char *variant) {
    char cfg_path[1024];
    clip_text_config cfg;
    *out = NULL;
    snprintf(cfg_path, sizeof cfg_path, "%s/config.json", dir);
    SDC_TRY(clip_text_config_load(&cfg, cfg_path));
    clip_text_model *m = calloc(1, sizeof *m);
    if (!m) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    sdc_status st = weights_open_component(&m->own, dir, "model", variant && *variant ? variant : NULL);
    if (st) {
        free(m);
        return st;
    }
    m->owns_weights = 1;
    m->cx = cx;
    m->src = &m->own;
    /* CLIPTextModelWithProjection is also recognised by its tensor */
    if (weights_find(&m->own, "text_projection.weight")) cfg.with_projection = 1;
    if ((st = clip_text_config_check(&cfg, cfg_path))) goto fail;
    m->cfg = cfg;
    if ((st = load_params(m, &m->own))) goto fail;
    *out = m;
    return SDC_OK;
fail:
    clip_text_free(m);
    return st;
}

sdc_status clip_text_own_weights(clip_text_model *m, weights *w) {
    if (w != m->src) return sdc_fail(SDC_ERR_ARG, "clip_text_own_weights: not the model's weights");
    m->adopted = w;
    return SDC_OK;
}

void clip_text_free(clip_text_model *m) {
    if (!m) return;
    free(m->layers);
    if (m->owns_weights) weights_close(&m->own);
    if (m->adopted) weights_close(m->adopted), free(m->adopted);
    free(m);
}

const clip_text_config *clip_text_get_config(const clip_text_model *m) { return &m->cfg; }
int clip_text_hidden_size(const clip_text_model *m) { return m->cfg.hidden_size; }
int clip_text_num_layers(const clip_text_model *m) { return m->cfg.num_layers; }
int clip_text_projection_dim(const clip_text_model *m) { return m->cfg.with_projection ? m->cfg.projection_dim : 0; }
weights *clip_text_weights(clip_text_model *m) { return m->src; }
op_ctx *clip_text_ctx(const clip_text_model *m) { return m->cx; }

/* ---- forward ----------------------------------------------------------- */

int clip_text_eos_index(const clip_text_model *m, const int64_t *ids, int T) {
    int best = 0;
    if (m->cfg.eos_token_id == 2) { /* legacy: argmax(input_ids), first maximum */
        for (int t = 1; t < T; t++)
            if (ids[t] > ids[best]) best = t;
        return best;
    }
    for (int t = 0; t < T; t++)
        if (ids[t] == m->cfg.eos_token_id) return t;
    return 0; /* argmax of an all-zero mask */
}

sdc_status clip_text_final_norm(const clip_text_model *m, float *x, int64_t rows) {
    op_ctx *cx = m->cx;
    int64_t n = rows * m->cfg.hidden_size;
    float *d;
    if (op_host_memory(cx)) { /* x is where the norm can run: no copy */
        layer_norm_fwd(cx, &m->final_ln, x, x, rows);
        return SDC_OK;
    }
    SDC_TRY(act_from_host(cx, &d, x, n));
    layer_norm_fwd(cx, &m->final_ln, d, d, rows);
    sdc_status st = op_download(cx, x, d, n);
    op_free(cx, d);
    return st;
}

/* x is activation memory; the tap gets a host view of it */
static void emit(op_ctx *cx, clip_tap_fn tap, void *ctx, const char *name, int layer, const char *suffix,
                 const float *x, int B, int T, int D) {
    char n[160];
    if (!tap) return;
    if (layer >= 0)
        snprintf(n, sizeof n, "text_model.encoder.layers.%d.%s", layer, suffix);
    else
        snprintf(n, sizeof n, "%s", name);
    float *tmp;
    const float *hx = host_view(cx, x, (int64_t)B * T * D, &tmp);
    if (hx) tap(ctx, n, hx, B, T, D);
    free(tmp);
}

/* One encoder layer on x[BT, D] in place. ws: h, q, k, v, a [BT, D] and mlp [BT, I]. */
static sdc_status layer_fwd(const clip_text_model *m, int li, float *x, int B, int T, float *ws, clip_tap_fn tap,
                            void *ctx) {
    op_ctx *cx = m->cx;
    const clip_text_config *c = &m->cfg;
    const clip_layer *L = &m->layers[li];
    int D = c->hidden_size, H = c->num_heads, dh = D / H;
    int64_t N = (int64_t)B * T, ND = N * D;
    float *h = ws, *q = h + ND, *k = q + ND, *v = k + ND, *a = v + ND, *mlp = a + ND;

    layer_norm_fwd(cx, &L->ln1, x, h, N);
    emit(cx, tap, ctx, NULL, li, "layer_norm1", h, B, T, D);
    SDC_TRY(linear_fwd(cx, &L->q, h, N, q));
    op_scale(cx, q, (float)pow((double)dh, -0.5), ND); /* transformers scales q before q.k^T */
    SDC_TRY(linear_fwd(cx, &L->k, h, N, k));
    SDC_TRY(linear_fwd(cx, &L->v, h, N, v));
    SDC_TRY(op_attention(cx, q, D, k, v, D, B, T, T, H, dh, 1.0f, 1, a));
    SDC_TRY(linear_fwd(cx, &L->o, a, N, h));
    emit(cx, tap, ctx, NULL, li, "self_attn", h, B, T, D);
    op_add(cx, x, h, ND);

    layer_norm_fwd(cx, &L->ln2, x, h, N);
    SDC_TRY(linear_fwd(cx, &L->fc1, h, N, mlp));
    if (c->act == CLIP_ACT_QUICK_GELU)
        op_quick_gelu(cx, mlp, N * c->intermediate_size);
    else
        op_gelu(cx, mlp, N * c->intermediate_size);
    SDC_TRY(linear_fwd(cx, &L->fc2, mlp, N, h));
    emit(cx, tap, ctx, NULL, li, "mlp", h, B, T, D);
    op_add(cx, x, h, ND);
    return SDC_OK;
}

static sdc_status check_ids(const clip_text_model *m, const int64_t *ids, int B, int T) {
    const clip_text_config *c = &m->cfg;
    if (B < 1 || T < 1 || T > c->max_positions)
        return sdc_fail(SDC_ERR_ARG, "clip text encoder: %d x %d tokens (sequence length must be 1..%d)", B, T,
                        c->max_positions);
    for (int64_t i = 0; i < (int64_t)B * T; i++)
        if (ids[i] < 0 || ids[i] >= c->vocab_size)
            return sdc_fail(SDC_ERR_ARG, "clip text encoder: token id %lld at [%lld, %lld] is outside the vocabulary (%d)",
                            (long long)ids[i], (long long)(i / T), (long long)(i % T), c->vocab_size);
    return SDC_OK;
}

int64_t clip_text_workspace_floats(const clip_text_model *m, int B, int T) {
    int64_t N = (int64_t)B * T;
    return 5 * N * m->cfg.hidden_size + N * m->cfg.intermediate_size;
}

sdc_status clip_text_embed(const clip_text_model *m, const int64_t *ids, int B, int T, float *x) {
    op_ctx *cx = m->cx;
    SDC_TRY(check_ids(m, ids, B, T));
    int D = m->cfg.hidden_size;
    /* x[b, t] = tok[ids[b, t]] + pos[t] */
    op_gather_rows(cx, x, m->tok_emb, m->tok_dt, D, ids, (int64_t)B * T);
    for (int b = 0; b < B; b++) op_add(cx, x + (int64_t)b * T * D, m->pos_emb, (int64_t)T * D);
    return SDC_OK;
}

sdc_status clip_text_layers(const clip_text_model *m, float *x, int B, int T, int n, float *ws, int layer,
                            int final_norm, float *out, float *last) {
    op_ctx *cx = m->cx;
    const clip_text_config *c = &m->cfg;
    int64_t N = (int64_t)B * T, ND = N * c->hidden_size;
    if (n < 0 || n > c->num_layers || layer < 0 || layer > n || (last && n != c->num_layers))
        return sdc_fail(SDC_ERR_ARG, "clip text encoder: layers %d, output after %d", n, layer);
    for (int li = 0; li <= n; li++) {
        if (li == layer && out) {
            if (final_norm) layer_norm_fwd(cx, &m->final_ln, x, out, N);
            else op_copy(cx, out, x, ND);
        }
        if (li < n) SDC_TRY(layer_fwd(m, li, x, B, T, ws, NULL, NULL));
    }
    if (last) layer_norm_fwd(cx, &m->final_ln, x, last, N);
    return SDC_OK;
}

sdc_status clip_text_pool_project(const clip_text_model *m, const int64_t *ids, int B, int T, const float *last,
                                  float *pool, float *text_embeds) {
    op_ctx *cx = m->cx;
    if (text_embeds && !m->cfg.with_projection)
        return sdc_fail(SDC_ERR_ARG, "clip text encoder: text_embeds requested from a model without text_projection");
    if (B < 1 || B > 4096 || T < 1) return sdc_fail(SDC_ERR_ARG, "clip text encoder: %d x %d tokens", B, T);
    int64_t eos[B]; /* rows of last pooled: each row's EOS position, found on the host ids */
    for (int b = 0; b < B; b++) eos[b] = (int64_t)b * T + clip_text_eos_index(m, ids + (int64_t)b * T, T);
    op_gather_rows(cx, pool, last, OP_F32, m->cfg.hidden_size, eos, B);
    return text_embeds ? linear_fwd(cx, &m->proj, pool, B, text_embeds) : SDC_OK;
}

sdc_status clip_text_forward_tap(const clip_text_model *m, const int64_t *ids, int B, int T, float **hidden_states,
                                 float *last_hidden, float *pooled, float *text_embeds, clip_tap_fn tap,
                                 void *tap_ctx) {
    op_ctx *cx = m->cx;
    const clip_text_config *c = &m->cfg;
    int D = c->hidden_size, L = c->num_layers;
    SDC_TRY(check_ids(m, ids, B, T));
    if (text_embeds && !c->with_projection)
        return sdc_fail(SDC_ERR_ARG, "clip text encoder: text_embeds requested from a model without text_projection");

    /* how many layers must run */
    int need = -1;
    if (last_hidden || pooled || text_embeds) need = L;
    for (int i = L; hidden_states && i > need; i--)
        if (hidden_states[i]) need = i;
    if (need < 0) return SDC_OK;

    /* ids and every output are host memory; the activations are op_alloc'd
     * and the outputs downloaded from them */
    int64_t N = (int64_t)B * T, ND = N * D;
    float *x, *ws;
    SDC_TRY(op_alloc(cx, &x, ND));
    sdc_status st = op_alloc(cx, &ws, clip_text_workspace_floats(m, B, T));
    if (st) {
        op_free(cx, x);
        return st;
    }
    if ((st = clip_text_embed(m, ids, B, T, x))) goto done;
    emit(cx, tap, tap_ctx, "text_model.embeddings", -1, NULL, x, B, T, D);
    if (hidden_states && hidden_states[0] && (st = op_download(cx, hidden_states[0], x, ND))) goto done;
    for (int li = 0; li < need; li++) {
        if ((st = layer_fwd(m, li, x, B, T, ws, tap, tap_ctx))) goto done;
        if (hidden_states && hidden_states[li + 1] && (st = op_download(cx, hidden_states[li + 1], x, ND))) goto done;
    }
    if (need == L && (last_hidden || pooled || text_embeds)) {
        float *last = ws; /* ws is free now */
        layer_norm_fwd(cx, &m->final_ln, x, last, N);
        if (last_hidden && (st = op_download(cx, last_hidden, last, ND))) goto done;
        float *pool = x, *te = NULL; /* x is dead after the norm */
        if (text_embeds && (st = op_alloc(cx, &te, (int64_t)B * c->projection_dim))) goto done;
        st = clip_text_pool_project(m, ids, B, T, last, pool, te);
        if (!st && pooled) st = op_download(cx, pooled, pool, (int64_t)B * D);
        if (!st && te) st = op_download(cx, text_embeds, te, (int64_t)B * c->projection_dim);
        op_free(cx, te);
    }
done:
    op_free(cx, x);
    op_free(cx, ws);
    return st;
}

sdc_status clip_text_forward(const clip_text_model *m, const int64_t *ids, int B, int T, float **hidden_states,
                             float *last_hidden, float *pooled, float *text_embeds) {
    return clip_text_forward_tap(m, ids, B, T, hidden_states, last_hidden, pooled, text_embeds, NULL, NULL);
}
