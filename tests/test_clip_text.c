/* test_clip_text.c - CLIP text encoder against the transformers goldens
 * (units/te_tiny_*.safetensors), clip skip, batching, fp16 variants and
 * the loader's error messages. SDC_TEST_VERBOSE=1 prints every max diff. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "golden.h"
#include "harness.h"
#include "io/safetensors.h"
#include "text/clip_text_model.h"

#define ATOL 1e-5

static void report(const char *golden, const char *name, double d) {
    if (getenv("SDC_TEST_VERBOSE")) printf("     %s %s max|diff| = %.3g\n", golden, name, d);
}

/* Collects the tapped layer-0 / embedding intermediates and compares them. */
typedef struct {
    const st_file *g;
    const char *golden;
    int compared;
    double worst;
    char bad[256];
    int last_layer_calls; /* taps seen from layer `watch_layer` */
    int watch_layer;
} tap_ctx;

static void tap_cmp(void *vctx, const char *name, const float *x, int B, int T, int D) {
    tap_ctx *c = vctx;
    char key[200], watch[64];
    snprintf(watch, sizeof watch, "layers.%d.", c->watch_layer);
    if (strstr(name, watch)) c->last_layer_calls++;
    snprintf(key, sizeof key, "mid.%s", name);
    const st_tensor *t = st_find(c->g, key);
    if (!t) return;
    if (t->numel != (int64_t)B * T * D) {
        snprintf(c->bad, sizeof c->bad, "%s: size %lld vs %d", key, (long long)t->numel, B * T * D);
        return;
    }
    float *ref;
    if (st_to_f32(t, &ref)) {
        snprintf(c->bad, sizeof c->bad, "%s unreadable", key);
        return;
    }
    double d = max_abs_diff(x, ref, t->numel);
    free(ref);
    report(c->golden, key, d);
    if (d > c->worst) c->worst = d;
    if (!(d <= ATOL) && !c->bad[0]) snprintf(c->bad, sizeof c->bad, "%s max|diff| %g", key, d);
    c->compared++;
}

/* Compare buffer x with golden tensor `key`; returns the max diff or +inf. */
static double cmp_key(const st_file *g, const char *golden, const char *key, const float *x, int64_t n) {
    const st_tensor *t = st_find(g, key);
    if (!t || t->numel != n) return INFINITY;
    float *ref;
    if (st_to_f32(t, &ref)) return INFINITY;
    double d = max_abs_diff(x, ref, n);
    free(ref);
    report(golden, key, d);
    return d;
}

static void run_golden(const char *model_dir, const char *golden, int expect_proj) {
    op_ctx *cx = test_cx();
    clip_text_model *m;
    st_file g;
    CHECK_OK(clip_text_load(&m, cx, fixture_path(model_dir), NULL));
    CHECK_OK(st_open(&g, fixture_path(golden)));
    int64_t *ids;
    const st_tensor *ti = st_find(&g, "in.input_ids");
    CHECK(ti && ti->ndim == 2, "in.input_ids missing");
    CHECK_OK(st_to_i64(ti, &ids));
    int B = (int)ti->shape[0], T = (int)ti->shape[1], D = clip_text_hidden_size(m), L = clip_text_num_layers(m);
    int P = clip_text_projection_dim(m);
    CHECK(expect_proj ? P > 0 : P == 0, "projection dim %d", P);
    int64_t ND = (int64_t)B * T * D;
    float *hs[65] = {0}, *last = malloc((size_t)ND * sizeof(float)), *pooled = malloc((size_t)B * D * sizeof(float));
    float *emb = P ? malloc((size_t)B * P * sizeof(float)) : NULL;
    CHECK(L < 64, "too many layers");
    for (int i = 0; i <= L; i++) hs[i] = malloc((size_t)ND * sizeof(float));
    tap_ctx tc = {.g = &g, .golden = golden, .watch_layer = -1};
    CHECK_OK(clip_text_forward_tap(m, ids, B, T, hs, last, pooled, emb, tap_cmp, &tc));
    CHECK(!tc.bad[0], "%s: %s", golden, tc.bad);
    CHECK(tc.compared == 4, "%s: compared %d intermediates, expected 4", golden, tc.compared);
    for (int i = 0; i <= L; i++) {
        char key[64];
        snprintf(key, sizeof key, "out.hidden_states.%d", i);
        double d = cmp_key(&g, golden, key, hs[i], ND);
        CHECK(d <= ATOL, "%s %s max|diff| %g", golden, key, d);
    }
    /* final_layer_norm applied to the last hidden state is last_hidden_state */
    clip_text_final_norm(m, hs[L], (int64_t)B * T);
    CHECK(!memcmp(hs[L], last, (size_t)ND * sizeof(float)), "%s: clip_text_final_norm(hidden_states[L]) != last", golden);
    double d = cmp_key(&g, golden, "out.last_hidden_state", last, ND);
    CHECK(d <= ATOL, "%s last_hidden_state max|diff| %g", golden, d);
    d = cmp_key(&g, golden, "out.pooler_output", pooled, (int64_t)B * D);
    CHECK(d <= ATOL, "%s pooler_output max|diff| %g", golden, d);
    if (P) {
        d = cmp_key(&g, golden, "out.text_embeds", emb, (int64_t)B * P);
        CHECK(d <= ATOL, "%s text_embeds max|diff| %g", golden, d);
    }
    CHECK(st_find(&g, "out.hidden_states.4") == NULL || L >= 4, "golden has more layers than the model");
    for (int i = 0; i <= L; i++) free(hs[i]);
    free(last);
    free(pooled);
    free(emb);
    free(ids);
    st_close(&g);
    clip_text_free(m);
}

TEST(clip_text_tiny_sd_golden) { run_golden("models/tiny-sd/text_encoder", "units/te_tiny_sd.safetensors", 0); }
TEST(clip_text_tiny_sdxl_te1_golden) {
    run_golden("models/tiny-sdxl/text_encoder", "units/te_tiny_sdxl_1.safetensors", 0);
}
TEST(clip_text_tiny_sdxl_te2_golden) {
    run_golden("models/tiny-sdxl/text_encoder_2", "units/te_tiny_sdxl_2.safetensors", 1);
}

/* Clip skip: asking only for hidden_states[L-1] must not run layer L-1 (the
 * last layer) and must give the golden penultimate state; one row alone
 * must equal the same row of the batch. */
TEST(clip_text_clip_skip_and_batch_rows) {
    op_ctx *cx = test_cx();
    clip_text_model *m;
    st_file g;
    const char *golden = "units/te_tiny_sdxl_2.safetensors";
    CHECK_OK(clip_text_load(&m, cx, fixture_path("models/tiny-sdxl/text_encoder_2"), NULL));
    CHECK_OK(st_open(&g, fixture_path(golden)));
    int64_t *ids;
    CHECK_OK(st_to_i64(st_find(&g, "in.input_ids"), &ids));
    int B = 3, T = 77, D = clip_text_hidden_size(m), L = clip_text_num_layers(m);
    float *hs[8] = {0};
    float *pen = malloc((size_t)B * T * D * sizeof(float));
    hs[L - 1] = pen;
    tap_ctx tc = {.g = &g, .golden = golden, .watch_layer = L - 1};
    CHECK_OK(clip_text_forward_tap(m, ids, B, T, hs, NULL, NULL, NULL, tap_cmp, &tc));
    CHECK(tc.last_layer_calls == 0, "the last layer ran %d taps although only hidden_states[%d] was asked", tc.last_layer_calls, L - 1);
    char key[64];
    snprintf(key, sizeof key, "out.hidden_states.%d", L - 1);
    double d = cmp_key(&g, golden, key, pen, (int64_t)B * T * D);
    CHECK(d <= ATOL, "penultimate max|diff| %g", d);
    /* row 2 alone */
    float *one = malloc((size_t)T * D * sizeof(float)), *pooled1 = malloc((size_t)D * sizeof(float));
    float *pooled3 = malloc((size_t)B * D * sizeof(float));
    float *hs1[8] = {0};
    hs1[L - 1] = one;
    CHECK_OK(clip_text_forward(m, ids + 2 * T, 1, T, hs1, NULL, pooled1, NULL));
    CHECK(max_abs_diff(one, pen + (int64_t)2 * T * D, (int64_t)T * D) <= 1e-6, "row 2 alone differs from the batch");
    CHECK_OK(clip_text_forward(m, ids, B, T, NULL, NULL, pooled3, NULL));
    CHECK(max_abs_diff(pooled1, pooled3 + 2 * D, D) <= 1e-6, "pooled row 2 alone differs");
    /* nothing asked: nothing computed, no error */
    CHECK_OK(clip_text_forward(m, ids, B, T, NULL, NULL, NULL, NULL));
    free(one);
    free(pooled1);
    free(pooled3);
    free(pen);
    free(ids);
    st_close(&g);
    clip_text_free(m);
}

TEST(clip_text_eos_rules) {
    op_ctx *cx = test_cx();
    clip_text_model *m;
    CHECK_OK(clip_text_load(&m, cx, fixture_path("models/tiny-sd/text_encoder"), NULL));
    int64_t ids[6] = {1112, 5, 1113, 1113, 1113, 1113};
    CHECK(clip_text_eos_index(m, ids, 6) == 2, "legacy argmax rule (first maximum)");
    int64_t ids2[6] = {1112, 5, 7, 1113, 2, 1113};
    CHECK(clip_text_eos_index(m, ids2, 6) == 3, "legacy rule ignores eos_token_id 2");
    clip_text_free(m);
    /* eos_token_id != 2: the first position equal to it (0 when absent) */
    clip_text_config c;
    CHECK_OK(clip_text_config_load(&c, fixture_path("models/tiny-sd/text_encoder/config.json")));
    c.eos_token_id = 1113;
    weights w;
    const char *paths[1] = {fixture_path("models/tiny-sd/text_encoder/model.safetensors")};
    CHECK_OK(weights_open(&w, paths, 1));
    sdc_status st = clip_text_load_weights(&m, cx, &c, &w);
    if (st) weights_close(&w);
    CHECK_OK(st);
    int64_t ids3[6] = {1112, 5, 1113, 7, 1113, 1113};
    int64_t ids4[6] = {1112, 5, 6, 7, 8, 9};
    int e3 = clip_text_eos_index(m, ids3, 6), e4 = clip_text_eos_index(m, ids4, 6);
    int e2 = clip_text_eos_index(m, ids2, 6);
    clip_text_free(m);
    weights_close(&w);
    CHECK(e3 == 2, "eos 1113: got %d, expected 2", e3);
    CHECK(e4 == 0, "no eos: got %d, expected 0", e4);
    CHECK(e2 == 3, "eos 1113 in ids2: got %d", e2);
}

/* ---- loader errors ----------------------------------------------------- */

/* Copy `src` to `dst` leaving out `drop` and giving `reshape` a bad shape (first dim - 1). */
static int copy_st(const char *src, const char *dst, const char *drop, const char *reshape, st_dtype as) {
    st_file f;
    if (st_open(&f, src)) return 0;
    st_writer *w = st_writer_new();
    void **bufs = calloc((size_t)f.n, sizeof(void *));
    int ok = 1;
    for (int i = 0; ok && i < f.n; i++) {
        const st_tensor *t = &f.tensors[i];
        if (drop && !strcmp(t->name, drop)) continue;
        int64_t shape[ST_MAX_DIMS];
        memcpy(shape, t->shape, sizeof shape);
        if (reshape && !strcmp(t->name, reshape)) shape[0]--;
        int64_t n = 1;
        for (int d = 0; d < t->ndim; d++) n *= shape[d];
        float *x;
        if (st_to_f32(t, &x)) {
            ok = 0;
            break;
        }
        if (as == ST_F16) {
            uint16_t *h = malloc((size_t)(n ? n : 1) * 2);
            for (int64_t k = 0; k < n; k++) h[k] = sdc_f32_to_f16(x[k]);
            free(x);
            bufs[i] = h;
        } else {
            bufs[i] = x;
        }
        ok = !st_writer_add(w, t->name, as, t->ndim, shape, bufs[i]);
    }
    if (ok) ok = !st_writer_save(w, dst);
    st_writer_free(w);
    for (int i = 0; i < f.n; i++) free(bufs[i]);
    free(bufs);
    st_close(&f);
    return ok;
}

static int write_text(const char *path, const char *text) {
    FILE *fp = fopen(path, "w");
    if (!fp) return 0;
    fputs(text, fp);
    fclose(fp);
    return 1;
}

static const char *CFG_OK =
    "{\"architectures\":[\"CLIPTextModel\"],\"eos_token_id\":2,\"hidden_act\":\"quick_gelu\",\"hidden_size\":64,"
    "\"intermediate_size\":128,\"layer_norm_eps\":1e-05,\"max_position_embeddings\":77,\"num_attention_heads\":4,"
    "\"num_hidden_layers\":3,\"projection_dim\":64,\"vocab_size\":1114}";

/* A fresh folder `name` with config text and a weights copy. */
static const char *make_dir_from(const char *src, const char *name, const char *cfg, const char *drop,
                                 const char *reshape) {
    const char *dir = tmp_path(name);
    char p[1100];
    mkdir(dir, 0755);
    snprintf(p, sizeof p, "%s/config.json", dir);
    if (!write_text(p, cfg)) return NULL;
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    if (!copy_st(fixture_path(src), p, drop, reshape, ST_F32)) return NULL;
    return dir;
}

static const char *make_dir(const char *name, const char *cfg, const char *drop, const char *reshape) {
    return make_dir_from("models/tiny-sd/text_encoder/model.safetensors", name, cfg, drop, reshape);
}

static void expect_load_error(const char *dir, sdc_status code, const char *needle1, const char *needle2) {
    op_ctx *cx = test_cx();
    clip_text_model *m = (clip_text_model *)1;
    sdc_status st = clip_text_load(&m, cx, dir, NULL);
    CHECK(st == code, "status %d (%s), expected %d", st, sdc_last_error(), code);
    CHECK(m == NULL, "output not cleared on failure");
    CHECK(strstr(sdc_last_error(), needle1), "message '%s' lacks '%s'", sdc_last_error(), needle1);
    CHECK(!needle2 || strstr(sdc_last_error(), needle2), "message '%s' lacks '%s'", sdc_last_error(), needle2);
}

TEST(clip_text_error_missing_tensor) {
    const char *dir = make_dir("te_missing", CFG_OK, "text_model.encoder.layers.2.mlp.fc2.bias", NULL);
    CHECK(dir, "could not build the folder");
    expect_load_error(dir, SDC_ERR_FORMAT, "missing tensor", "text_model.encoder.layers.2.mlp.fc2.bias");
    if (test_failed()) return;
    CHECK(strstr(sdc_last_error(), "te_missing/model.safetensors"), "file not named: %s", sdc_last_error());
}

TEST(clip_text_error_wrong_shape) {
    const char *dir = make_dir("te_shape", CFG_OK, NULL, "text_model.embeddings.position_embedding.weight");
    CHECK(dir, "could not build the folder");
    expect_load_error(dir, SDC_ERR_SHAPE, "position_embedding.weight", "(76, 64)");
}

TEST(clip_text_error_bad_configs) {
    struct { const char *from, *to, *needle; sdc_status code; } cases[] = {
        {"\"num_attention_heads\":4", "\"num_attention_heads\":5", "not divisible", SDC_ERR_FORMAT},
        {"\"quick_gelu\"", "\"relu\"", "hidden_act 'relu'", SDC_ERR_UNSUPPORTED},
        {"\"hidden_size\":64", "\"hidden_size\":-64", "hidden_size", SDC_ERR_FORMAT},
        {"\"num_hidden_layers\":3", "\"num_hidden_layers\":100000", "num_hidden_layers = 100000", SDC_ERR_FORMAT},
        {"\"vocab_size\":1114", "\"vocab_size\":\"big\"", "'vocab_size' must be an integer", SDC_ERR_FORMAT},
        {"\"layer_norm_eps\":1e-05", "\"layer_norm_eps\":0", "layer_norm_eps", SDC_ERR_FORMAT},
        {"\"num_hidden_layers\":3", "\"num_hidden_layers\":4", "layers.3.layer_norm1.weight", SDC_ERR_FORMAT},
        {"\"vocab_size\":1114", "\"vocab_size\":1000", "token_embedding.weight", SDC_ERR_SHAPE},
        {"{", "[", "config.json", SDC_ERR_FORMAT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char cfg[1024], name[32];
        const char *at = strstr(CFG_OK, cases[i].from);
        CHECK(at, "case %zu: pattern", i);
        snprintf(cfg, sizeof cfg, "%.*s%s%s", (int)(at - CFG_OK), CFG_OK, cases[i].to, at + strlen(cases[i].from));
        snprintf(name, sizeof name, "te_cfg%zu", i);
        const char *dir = make_dir(name, cfg, NULL, NULL);
        CHECK(dir, "could not build the folder");
        expect_load_error(dir, cases[i].code, cases[i].needle, NULL);
        if (test_failed()) return;
    }
    /* no folder at all */
    expect_load_error("/nonexistent/text_encoder", SDC_ERR_IO, "/nonexistent/text_encoder/config.json", NULL);
    if (test_failed()) return;
    /* config but no weights */
    const char *dir = tmp_path("te_noweights");
    char p[1100];
    mkdir(dir, 0755);
    snprintf(p, sizeof p, "%s/config.json", dir);
    CHECK(write_text(p, CFG_OK), "write");
    expect_load_error(dir, SDC_ERR_IO, "no model.safetensors found", NULL);
}

TEST(clip_text_error_bad_inputs) {
    op_ctx *cx = test_cx();
    clip_text_model *m;
    CHECK_OK(clip_text_load(&m, cx, fixture_path("models/tiny-sd/text_encoder"), NULL));
    int64_t ids[78] = {0};
    float out[78 * 64], pooled[64];
    ids[3] = 1114;
    sdc_status st = clip_text_forward(m, ids, 1, 5, NULL, out, NULL, NULL);
    int ok1 = st == SDC_ERR_ARG && strstr(sdc_last_error(), "1114");
    ids[3] = -1;
    st = clip_text_forward(m, ids, 1, 5, NULL, out, NULL, NULL);
    int ok2 = st == SDC_ERR_ARG;
    ids[3] = 0;
    st = clip_text_forward(m, ids, 1, 78, NULL, out, NULL, NULL);
    int ok3 = st == SDC_ERR_ARG && strstr(sdc_last_error(), "77");
    st = clip_text_forward(m, ids, 1, 5, NULL, NULL, pooled, pooled);
    int ok4 = st == SDC_ERR_ARG && strstr(sdc_last_error(), "text_projection");
    clip_text_free(m);
    CHECK(ok1, "id 1114 accepted or bad message");
    CHECK(ok2, "id -1 accepted");
    CHECK(ok3, "78 tokens accepted");
    CHECK(ok4, "text_embeds without projection accepted");
}

/* fp16 variant: model.fp16.safetensors is preferred when asked for and
 * present, and the plain file is the fallback. */
TEST(clip_text_fp16_variant) {
    op_ctx *cx = test_cx();
    const char *dir = make_dir("te_fp16", CFG_OK, NULL, NULL);
    CHECK(dir, "could not build the folder");
    char p[1100];
    snprintf(p, sizeof p, "%s/model.fp16.safetensors", dir);
    CHECK(copy_st(fixture_path("models/tiny-sd/text_encoder/model.safetensors"), p, NULL, NULL, ST_F16), "fp16 copy");
    clip_text_model *m32, *m16, *mfb;
    CHECK_OK(clip_text_load(&m32, cx, dir, NULL));
    CHECK_OK(clip_text_load(&m16, cx, dir, "fp16"));
    CHECK_OK(clip_text_load(&mfb, cx, fixture_path("models/tiny-sd/text_encoder"), "fp16")); /* no fp16 file: fallback */
    int64_t ids[8] = {1112, 40, 41, 42, 1113, 1113, 1113, 1113};
    float a[8 * 64], b[8 * 64], c[8 * 64];
    CHECK_OK(clip_text_forward(m32, ids, 1, 8, NULL, a, NULL, NULL));
    CHECK_OK(clip_text_forward(m16, ids, 1, 8, NULL, b, NULL, NULL));
    CHECK_OK(clip_text_forward(mfb, ids, 1, 8, NULL, c, NULL, NULL));
    clip_text_free(m32);
    clip_text_free(m16);
    clip_text_free(mfb);
    double d16 = max_abs_diff(a, b, 8 * 64), dfb = max_abs_diff(a, c, 8 * 64);
    CHECK(d16 > 0 && d16 < 2e-2, "fp16 weights: max|diff| %g (expected small but nonzero)", d16);
    CHECK(dfb == 0, "fallback differs from the plain file: %g", dfb);
}

/* clip_text_load_weights with a prefix, as single-file checkpoints need. */
TEST(clip_text_load_weights_prefix) {
    op_ctx *cx = test_cx();
    /* rename every tensor with a prefix */
    st_file f;
    CHECK_OK(st_open(&f, fixture_path("models/tiny-sd/text_encoder/model.safetensors")));
    st_writer *w = st_writer_new();
    for (int i = 0; i < f.n; i++) {
        char name[300];
        snprintf(name, sizeof name, "cond_stage_model.transformer.%s", f.tensors[i].name);
        CHECK_OK(st_writer_add(w, name, f.tensors[i].dtype, f.tensors[i].ndim, f.tensors[i].shape, f.tensors[i].data));
    }
    const char *p = tmp_path("te_prefixed.safetensors");
    CHECK_OK(st_writer_save(w, p));
    st_writer_free(w);
    st_close(&f);
    clip_text_config cfg;
    CHECK_OK(clip_text_config_load(&cfg, fixture_path("models/tiny-sd/text_encoder/config.json")));
    weights wt;
    const char *paths[1] = {p};
    CHECK_OK(weights_open(&wt, paths, 1));
    snprintf(wt.prefix, sizeof wt.prefix, "cond_stage_model.transformer.");
    clip_text_model *m, *ref;
    sdc_status st = clip_text_load_weights(&m, cx, &cfg, &wt);
    if (st) weights_close(&wt);
    CHECK_OK(st);
    CHECK_OK(clip_text_load(&ref, cx, fixture_path("models/tiny-sd/text_encoder"), NULL));
    int64_t ids[6] = {1112, 10, 20, 30, 1113, 1113};
    float a[6 * 64], b[6 * 64];
    CHECK_OK(clip_text_forward(m, ids, 1, 6, NULL, a, NULL, NULL));
    CHECK_OK(clip_text_forward(ref, ids, 1, 6, NULL, b, NULL, NULL));
    clip_text_free(m);
    clip_text_free(ref);
    weights_close(&wt);
    CHECK(!memcmp(a, b, sizeof a), "prefixed load differs");
}

/* A config without "architectures": text_projection.weight alone marks a
 * CLIPTextModelWithProjection; its projection_dim must match the tensor. */
TEST(clip_text_projection_by_tensor) {
    op_ctx *cx = test_cx();
    const char *cfg = "{\"eos_token_id\":2,\"hidden_act\":\"gelu\",\"hidden_size\":64,\"intermediate_size\":128,"
                      "\"max_position_embeddings\":77,\"num_attention_heads\":4,\"num_hidden_layers\":3,"
                      "\"projection_dim\":32,\"vocab_size\":1114}";
    const char *src = "models/tiny-sdxl/text_encoder_2/model.safetensors";
    const char *dir = make_dir_from(src, "te_proj", cfg, NULL, NULL);
    CHECK(dir, "could not build the folder");
    clip_text_model *m;
    CHECK_OK(clip_text_load(&m, cx, dir, NULL));
    int P = clip_text_projection_dim(m);
    clip_text_free(m);
    CHECK(P == 32, "projection_dim %d", P);
    /* wrong projection_dim: a shape error naming the tensor */
    char bad[1024];
    const char *at = strstr(cfg, "\"projection_dim\":32");
    snprintf(bad, sizeof bad, "%.*s\"projection_dim\":16%s", (int)(at - cfg), cfg, at + strlen("\"projection_dim\":32"));
    dir = make_dir_from(src, "te_proj_bad", bad, NULL, NULL);
    CHECK(dir, "could not build the folder");
    expect_load_error(dir, SDC_ERR_SHAPE, "text_projection.weight", "(32, 64)");
}
