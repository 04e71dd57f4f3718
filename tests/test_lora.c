/* test_lora.c - LoRA fusing and the --preset settings.
 * Fused weights are checked against W + scale * (alpha/rank) * up @ down
 * computed here in float64 from the model's and the LoRA's own files, with
 * the module pairing written out by hand (independent of src/lora's name
 * tables); kohya converted to PEFT naming must fuse bit-identically; LoRAs
 * stack in order; scale 0 changes nothing; conv (1x1, 3x3) targets and the
 * older diffusers namings; malformed files fail with the offending key;
 * --lora / --preset on the command line. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "family/ldm_keymap.h"
#include "harness.h"
#include "io/png_io.h"
#include "lora/lora.h"
#include "family/model.h"
#include "sdc.h"

/* the preset table is part of the sdc program (tools/), not of the library */
#include "../tools/presets.c"

#define KOHYA "models/loras/tiny-sdxl-lora-kohya.safetensors"
#define PEFT "models/loras/tiny-sdxl-lora-peft.safetensors"

/* ---- helpers ------------------------------------------------------------ */

typedef struct {
    int n;
    sdc_lora_report r[4];
    char path[4][1024]; /* r[i].path is only valid during the callback */
} reports;

static void on_report(void *ctx, const sdc_lora_report *r) {
    reports *s = ctx;
    if (s->n < 4) {
        s->r[s->n] = *r;
        snprintf(s->path[s->n], sizeof s->path[0], "%s", r->path);
        s->r[s->n].path = s->path[s->n];
    }
    s->n++;
}

static sdc_status load(sdc_model **m, const char *model_rel, const char *const *loras, const float *scales, int n,
                       reports *rep) {
    char paths[4][1024];
    const char *p[4];
    for (int i = 0; i < n && i < 4; i++) {
        snprintf(paths[i], sizeof paths[i], "%s", loras[i][0] == '/' ? loras[i] : fixture_path(loras[i]));
        p[i] = paths[i];
    }
    sdc_load_options lo = {.loras = p, .lora_scales = scales, .nloras = n};
    if (rep) {
        memset(rep, 0, sizeof *rep);
        lo.lora_report = on_report, lo.lora_report_ctx = rep;
    }
    return sdc_model_load(m, fixture_path(model_rel), &lo);
}

static weights *comp_weights(sdc_model *m, lora_comp c) {
    return c == LORA_UNET ? unet_weights(m->unet) : clip_text_weights(m->te[c == LORA_TE1 ? 0 : 1]);
}

/* the float32 values the model now reads for a parameter */
static const float *current(weights *w, const char *name) {
    for (int i = 0; i < w->nslots; i++)
        if (!strcmp(w->slots[i].name, name)) return *w->slots[i].slot;
    return NULL;
}

static int64_t numel_of(weights *w, const char *name) {
    const st_tensor *t = weights_find(w, name);
    return t ? t->numel : -1;
}

/* float32 values differ by at most one unit in the last place (float64 sums in another order) */
static int within_ulp(float a, float b) {
    if (a == b) return 1;
    int32_t x, y;
    memcpy(&x, &a, 4);
    memcpy(&y, &b, 4);
    return (x < 0) == (y < 0) && abs(x - y) <= 1;
}

static float *file_f32(const char *path, const char *name, int64_t *numel, int64_t *rows) {
    st_file f;
    if (st_open(&f, path)) return NULL;
    const st_tensor *t = st_find(&f, name);
    float *d = NULL;
    if (t && !st_to_f32(t, &d)) {
        if (numel) *numel = t->numel;
        if (rows) *rows = t->ndim ? t->shape[0] : 1;
    }
    st_close(&f);
    return d;
}

/* dst = fl32(W + factor * up[out, r] @ down[r, K]) in float64, straight loops */
static void formula(const float *W, const float *up, const float *down, int64_t out, int64_t K, int64_t r,
                    double factor, float *dst) {
    for (int64_t o = 0; o < out; o++)
        for (int64_t k = 0; k < K; k++) {
            double s = 0;
            for (int64_t j = 0; j < r; j++) s += (double)up[o * r + j] * (double)down[j * K + k];
            dst[o * K + k] = (float)((double)W[o * K + k] + factor * s);
        }
}

static const char *comp_file(const char *model_rel, lora_comp c) {
    static char p[1024];
    static const char *sub[] = {"unet/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors",
                                "text_encoder_2/model.safetensors"};
    char rel[512];
    snprintf(rel, sizeof rel, "%s/%s", model_rel, sub[c]);
    snprintf(p, sizeof p, "%s", fixture_path(rel));
    return p;
}

/* The fused parameter `module`.weight of m against the formula for LoRA tensors
 * down_key/up_key (alpha_key may be NULL: alpha = rank) of lora_path applied
 * with `scale` on top of `base` (NULL: the model's stored file). NULL when it
 * matches, else a message. */
static const char *check_module(sdc_model *m, const char *model_rel, lora_comp c, const char *module,
                                const float *base, const char *lora_path, const char *down_key, const char *up_key,
                                const char *alpha_key, double scale, float *expected_out) {
    static char msg[512];
    char pname[300];
    snprintf(pname, sizeof pname, "%s.weight", module);
    weights *w = comp_weights(m, c);
    const float *got = current(w, pname);
    int64_t n = numel_of(w, pname), nd = 0, nu = 0, out = 1, r = 1, na = 0;
    float *W = base ? NULL : file_f32(comp_file(model_rel, c), pname, NULL, NULL);
    float *down = file_f32(lora_path, down_key, &nd, &r), *up = file_f32(lora_path, up_key, &nu, &out);
    float *alpha = alpha_key ? file_f32(lora_path, alpha_key, &na, NULL) : NULL;
    const float *Wb = base ? base : W;
    const char *err = NULL;
    if (!got || n <= 0 || !Wb || !down || !up || (alpha_key && !alpha)) {
        snprintf(msg, sizeof msg, "%s: cannot read the parameter or the LoRA tensors %s / %s", module, down_key, up_key);
        err = msg;
    } else {
        double factor = scale * ((alpha ? alpha[0] : (double)r) / (double)r);
        float *e = malloc((size_t)n * sizeof(float));
        formula(Wb, up, down, out, n / out, r, factor, e);
        int64_t bad = 0, changed = 0;
        for (int64_t i = 0; i < n; i++) {
            bad += !within_ulp(got[i], e[i]);
            changed += got[i] != Wb[i];
        }
        if (bad || (!changed && factor != 0.0)) {
            snprintf(msg, sizeof msg, "%s: %lld of %lld values differ from the formula by > 1 ulp, %lld changed",
                     module, (long long)bad, (long long)n, (long long)changed);
            err = msg;
        }
        if (expected_out) memcpy(expected_out, e, (size_t)n * sizeof(float));
        free(e);
    }
    free(W), free(down), free(up), free(alpha);
    return err;
}

/* every parameter of the three components bitwise equal between two models; *diff counts those that differ */
static int same_weights(sdc_model *a, sdc_model *b, int *ndiff) {
    *ndiff = 0;
    for (int c = 0; c < LORA_NCOMP; c++) {
        weights *wa = comp_weights(a, (lora_comp)c), *wb = comp_weights(b, (lora_comp)c);
        if (wa->nslots != wb->nslots) return 0;
        for (int i = 0; i < wa->nslots; i++) {
            const char *name = wa->slots[i].name;
            int64_t n = numel_of(wa, name);
            const float *x = current(wa, name), *y = current(wb, name);
            if (!x || !y || n < 0) return 0;
            *ndiff += memcmp(x, y, (size_t)n * sizeof(float)) != 0;
        }
    }
    return 1;
}

static const char *lora_file(const char *rel) {
    static char p[1024];
    snprintf(p, sizeof p, "%s", fixture_path(rel));
    return p;
}

/* ---- the fixture LoRAs --------------------------------------------------- */

TEST(lora_kohya_fused_weights_equal_formula) {
    static const struct { lora_comp c; const char *module, *kohya; } mods[] = {
        {LORA_UNET, "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q",
         "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q"},
        {LORA_UNET, "mid_block.attentions.0.proj_in", "lora_unet_middle_block_1_proj_in"},
        {LORA_UNET, "up_blocks.0.attentions.0.transformer_blocks.2.ff.net.0.proj",
         "lora_unet_output_blocks_0_1_transformer_blocks_2_ff_net_0_proj"},
        {LORA_UNET, "up_blocks.1.attentions.2.transformer_blocks.1.attn2.to_out.0",
         "lora_unet_output_blocks_5_1_transformer_blocks_1_attn2_to_out_0"},
        {LORA_TE1, "text_model.encoder.layers.1.self_attn.out_proj",
         "lora_te1_text_model_encoder_layers_1_self_attn_out_proj"},
        {LORA_TE2, "text_model.encoder.layers.2.mlp.fc2", "lora_te2_text_model_encoder_layers_2_mlp_fc2"},
    };
    sdc_model *m;
    const char *l[] = {KOHYA};
    float s[] = {0.75f};
    reports rep;
    CHECK_OK(load(&m, "models/tiny-sdxl", l, s, 1, &rep));
    const char *err = NULL;
    for (size_t i = 0; !err && i < sizeof mods / sizeof mods[0]; i++) {
        char d[256], u[256], a[256];
        snprintf(d, sizeof d, "%s.lora_down.weight", mods[i].kohya);
        snprintf(u, sizeof u, "%s.lora_up.weight", mods[i].kohya);
        snprintf(a, sizeof a, "%s.alpha", mods[i].kohya);
        err = check_module(m, "models/tiny-sdxl", mods[i].c, mods[i].module, NULL, lora_file(KOHYA), d, u, a, 0.75, NULL);
    }
    sdc_model_free(m);
    CHECK(!err, "%s", err);
    CHECK(rep.n == 1 && rep.r[0].modules == 332 && rep.r[0].unet == 302 && rep.r[0].te1 == 12 && rep.r[0].te2 == 18,
          "report: %d reports, %d modules (unet %d, te1 %d, te2 %d)", rep.n, rep.r[0].modules, rep.r[0].unet,
          rep.r[0].te1, rep.r[0].te2);
    CHECK(rep.r[0].scale == 0.75f && strstr(rep.r[0].path, "tiny-sdxl-lora-kohya"), "report names %s scale %g",
          rep.r[0].path, (double)rep.r[0].scale);
}

TEST(lora_peft_fused_weights_equal_formula) {
    static const struct { lora_comp c; const char *module, *peft; } mods[] = {
        {LORA_UNET, "down_blocks.2.attentions.1.transformer_blocks.2.attn1.to_k",
         "unet.down_blocks.2.attentions.1.transformer_blocks.2.attn1.to_k"},
        {LORA_UNET, "up_blocks.1.attentions.2.transformer_blocks.1.attn2.to_out.0",
         "unet.up_blocks.1.attentions.2.transformer_blocks.1.attn2.to_out.0"},
        {LORA_UNET, "down_blocks.1.attentions.1.proj_out", "unet.down_blocks.1.attentions.1.proj_out"},
        {LORA_TE1, "text_model.encoder.layers.0.mlp.fc1", "text_encoder.text_model.encoder.layers.0.mlp.fc1"},
        {LORA_TE2, "text_model.encoder.layers.1.self_attn.v_proj",
         "text_encoder_2.text_model.encoder.layers.1.self_attn.v_proj"},
    };
    sdc_model *m;
    const char *l[] = {PEFT};
    float s[] = {1.25f};
    reports rep;
    CHECK_OK(load(&m, "models/tiny-sdxl", l, s, 1, &rep));
    const char *err = NULL;
    for (size_t i = 0; !err && i < sizeof mods / sizeof mods[0]; i++) {
        char d[256], u[256];
        snprintf(d, sizeof d, "%s.lora_A.weight", mods[i].peft);
        snprintf(u, sizeof u, "%s.lora_B.weight", mods[i].peft);
        err = check_module(m, "models/tiny-sdxl", mods[i].c, mods[i].module, NULL, lora_file(PEFT), d, u, NULL, 1.25, NULL);
    }
    sdc_model_free(m);
    CHECK(!err, "%s", err);
    CHECK(rep.n == 1 && rep.r[0].modules == 332, "report: %d modules", rep.r[0].modules);
}

static void underscore(char *s) {
    for (; *s; s++)
        if (*s == '.') *s = '_';
}

/* The kohya fixture rewritten under PEFT names: the module list comes from
 * the PEFT fixture (diffusers names), each looked up in the kohya file under
 * its LDM name. Alpha 2 of rank 4 becomes scale 0.5 (PEFT: alpha = rank). */
TEST(lora_kohya_converted_to_peft_fuses_identically) {
    sdc_model *base;
    CHECK_OK(load(&base, "models/tiny-sdxl", NULL, NULL, 0, NULL));
    const unet_config cfg = *unet_get_config(base->unet);
    st_file kf, pf;
    CHECK_OK(st_open(&kf, lora_file(KOHYA)));
    CHECK_OK(st_open(&pf, lora_file(PEFT)));
    st_writer *wr = st_writer_new();
    int converted = 0, kohya_modules = 0, missing = 0;
    for (int i = 0; i < kf.n; i++) kohya_modules += strstr(kf.tensors[i].name, ".lora_down.weight") != NULL;
    for (int i = 0; i < pf.n; i++) {
        const char *k = pf.tensors[i].name, *a = strstr(k, ".lora_A.weight");
        if (!a) continue;
        char module[300], kname[300], kk[400], out[400];
        const char *dot = strchr(k, '.');
        snprintf(module, sizeof module, "%.*s", (int)(a - dot - 1), dot + 1);
        if (!strncmp(k, "unet.", 5)) {
            char ldm[300];
            if (!ldm_unet_name(&cfg, module, ldm, sizeof ldm)) snprintf(ldm, sizeof ldm, "%s", module);
            snprintf(kname, sizeof kname, "lora_unet_%s", ldm);
        } else {
            snprintf(kname, sizeof kname, "lora_%s_%s", !strncmp(k, "text_encoder_2.", 15) ? "te2" : "te1", module);
        }
        underscore(kname + 5);
        const char *parts[][2] = {{"lora_down.weight", "lora_A.weight"}, {"lora_up.weight", "lora_B.weight"}};
        for (int p = 0; p < 2; p++) {
            snprintf(kk, sizeof kk, "%s.%s", kname, parts[p][0]);
            snprintf(out, sizeof out, "%.*s.%s", (int)(a - k), k, parts[p][1]);
            const st_tensor *t = st_find(&kf, kk);
            if (!t) {
                missing++;
                continue;
            }
            st_writer_add(wr, out, t->dtype, t->ndim, t->shape, t->data);
        }
        converted++;
    }
    char conv[1024];
    snprintf(conv, sizeof conv, "%s", tmp_path("kohya-as-peft.safetensors"));
    sdc_status st = st_writer_save(wr, conv);
    st_writer_free(wr);
    st_close(&kf);
    st_close(&pf);
    if (st || missing || converted != 332 || kohya_modules != 332) sdc_model_free(base);
    CHECK(st == SDC_OK, "%s", sdc_last_error());
    CHECK(!missing && converted == 332 && kohya_modules == 332, "converted %d of %d kohya modules, %d tensors missing",
          converted, kohya_modules, missing);
    sdc_model *a, *b;
    const char *la[] = {KOHYA}, *lb[] = {conv};
    float sa[] = {1.0f}, sb[] = {0.5f};
    st = load(&a, "models/tiny-sdxl", la, sa, 1, NULL);
    if (st) sdc_model_free(base);
    CHECK_OK(st);
    st = load(&b, "models/tiny-sdxl", lb, sb, 1, NULL);
    if (st) sdc_model_free(base), sdc_model_free(a);
    CHECK_OK(st);
    int d_ab, d_base, ok = same_weights(a, b, &d_ab) && same_weights(a, base, &d_base);
    sdc_model_free(a), sdc_model_free(b), sdc_model_free(base);
    CHECK(ok, "the models' parameters do not line up");
    CHECK(d_ab == 0, "%d parameters differ between the kohya and the PEFT-named fuse", d_ab);
    CHECK(d_base == 332, "%d parameters changed by the LoRA (332 expected)", d_base);
}

TEST(lora_two_loras_apply_in_order) {
    static const struct { lora_comp c; const char *module, *kohya, *peft; } mods[] = {
        {LORA_TE1, "text_model.encoder.layers.0.self_attn.q_proj", "lora_te1_text_model_encoder_layers_0_self_attn_q_proj",
         "text_encoder.text_model.encoder.layers.0.self_attn.q_proj"},
        {LORA_UNET, "down_blocks.2.attentions.0.transformer_blocks.1.attn2.to_v",
         "lora_unet_input_blocks_7_1_transformer_blocks_1_attn2_to_v",
         "unet.down_blocks.2.attentions.0.transformer_blocks.1.attn2.to_v"},
    };
    for (int order = 0; order < 2; order++) {
        const char *l[2] = {order ? PEFT : KOHYA, order ? KOHYA : PEFT};
        float s[2] = {order ? 0.5f : 1.0f, order ? 1.0f : 0.5f};
        sdc_model *m, *one;
        reports rep;
        CHECK_OK(load(&m, "models/tiny-sdxl", l, s, 2, &rep));
        sdc_status st = load(&one, "models/tiny-sdxl", l, s, 1, NULL); /* the first LoRA alone */
        if (st) sdc_model_free(m);
        CHECK_OK(st);
        const char *err = NULL;
        for (size_t i = 0; !err && i < sizeof mods / sizeof mods[0]; i++) {
            char pname[300], d[300], u[300], a[300];
            snprintf(pname, sizeof pname, "%s.weight", mods[i].module);
            const float *after_first = current(comp_weights(one, mods[i].c), pname);
            int second_is_kohya = order == 1;
            const char *stem = second_is_kohya ? mods[i].kohya : mods[i].peft;
            snprintf(d, sizeof d, "%s.%s", stem, second_is_kohya ? "lora_down.weight" : "lora_A.weight");
            snprintf(u, sizeof u, "%s.%s", stem, second_is_kohya ? "lora_up.weight" : "lora_B.weight");
            snprintf(a, sizeof a, "%s.alpha", stem);
            err = check_module(m, "models/tiny-sdxl", mods[i].c, mods[i].module, after_first, lora_file(l[1]), d, u,
                               second_is_kohya ? a : NULL, s[1], NULL);
        }
        sdc_model_free(one);
        sdc_model_free(m);
        CHECK(!err, "order %d: %s", order, err);
        CHECK(rep.n == 2 && rep.r[0].modules == 332 && rep.r[1].modules == 332 && strstr(rep.r[0].path, l[0]) &&
                  strstr(rep.r[1].path, l[1]), "order %d: reports %d, first %s", order, rep.n, rep.r[0].path);
    }
}

/* A single-file (SGM) checkpoint takes the same LoRA into the same weights as its folder. */
TEST(lora_fuses_into_single_file_like_folder) {
    sdc_model *sf, *dir;
    char p[1024];
    snprintf(p, sizeof p, "%s", fixture_path(KOHYA));
    const char *l[] = {p};
    sdc_load_options lo = {.loras = l, .nloras = 1, .config_dir = fixture_path("models/tiny-sdxl")};
    sdc_status st = sdc_model_load(&sf, fixture_path("models/tiny-sdxl.safetensors"), &lo);
    if (st == SDC_ERR_UNSUPPORTED) SKIP("single files: %s", sdc_last_error());
    CHECK_OK(st);
    const char *rel[] = {KOHYA};
    st = load(&dir, "models/tiny-sdxl", rel, NULL, 1, NULL);
    if (st) sdc_model_free(sf);
    CHECK_OK(st);
    int compared = 0, differ = 0, missing = 0;
    for (int c = 0; c < LORA_NCOMP; c++) {
        weights *wd = comp_weights(dir, (lora_comp)c), *ws = comp_weights(sf, (lora_comp)c);
        for (int i = 0; i < wd->nslots; i++) {
            const char *name = wd->slots[i].name;
            const float *x = current(wd, name), *y = current(ws, name);
            int64_t n = numel_of(wd, name);
            if (!y || n < 0) {
                missing++;
                continue;
            }
            compared++;
            differ += memcmp(x, y, (size_t)n * sizeof(float)) != 0;
        }
    }
    sdc_model_free(sf), sdc_model_free(dir);
    CHECK(!missing && !differ && compared > 332, "%d parameters compared, %d differ, %d missing in the single file",
          compared, differ, missing);
}

TEST(lora_scale_zero_leaves_weights_unchanged) {
    sdc_model *base, *m;
    CHECK_OK(load(&base, "models/tiny-sdxl", NULL, NULL, 0, NULL));
    const char *l[] = {KOHYA};
    float s[] = {0.0f};
    reports rep;
    sdc_status st = load(&m, "models/tiny-sdxl", l, s, 1, &rep);
    if (st) sdc_model_free(base);
    CHECK_OK(st);
    int ndiff, ok = same_weights(m, base, &ndiff);
    sdc_model_free(m), sdc_model_free(base);
    CHECK(ok && ndiff == 0, "%d parameters changed by a LoRA at scale 0", ndiff);
    CHECK(rep.n == 1 && rep.r[0].modules == 332, "scale 0 reports %d modules", rep.r[0].modules);
}

/* ---- conv targets and the other namings, on tiny-sd ---------------------- */

typedef struct {
    const char *down, *up, *alpha; /* file keys (alpha NULL: none) */
    lora_comp c;
    const char *module;            /* what it must change */
    int down4d, up4d;              /* write (r, in, kh, kw) / (out, r, 1, 1) */
    float alpha_value;
    st_dtype alpha_dtype;
} gen_entry;

static uint32_t g_rng = 12345;
static float rnd(void) {
    g_rng = g_rng * 1664525u + 1013904223u;
    return ((float)(g_rng >> 8) / 16777216.0f - 0.5f) * 0.2f;
}

/* Write a rank-2 LoRA with random values for entries whose shapes come from m. */
static int write_lora(sdc_model *m, const gen_entry *e, int n, const char *path) {
    st_writer *wr = st_writer_new();
    int ok = 1;
    for (int i = 0; ok && i < n; i++) {
        char pname[300];
        snprintf(pname, sizeof pname, "%s.weight", e[i].module);
        const st_tensor *t = weights_find(comp_weights(m, e[i].c), pname);
        if (!t) {
            ok = 0;
            break;
        }
        int64_t out = t->shape[0], in = t->shape[1], kh = t->ndim == 4 ? t->shape[2] : 1, kw = t->ndim == 4 ? t->shape[3] : 1;
        int64_t dsh[4] = {2, in, kh, kw}, ush[4] = {out, 2, 1, 1};
        int64_t nd = 2 * in * kh * kw, nu = out * 2;
        float *d = malloc((size_t)nd * sizeof(float)), *u = malloc((size_t)nu * sizeof(float));
        for (int64_t k = 0; k < nd; k++) d[k] = rnd();
        for (int64_t k = 0; k < nu; k++) u[k] = rnd();
        st_writer_add(wr, e[i].down, ST_F32, e[i].down4d ? 4 : 2, dsh, d);
        st_writer_add(wr, e[i].up, ST_F32, e[i].up4d ? 4 : 2, ush, u);
        if (e[i].alpha) {
            uint16_t h = sdc_f32_to_f16(e[i].alpha_value);
            st_writer_add(wr, e[i].alpha, e[i].alpha_dtype, 0, NULL,
                          e[i].alpha_dtype == ST_F16 ? (const void *)&h : (const void *)&e[i].alpha_value);
        }
        free(d), free(u);
    }
    if (ok && st_writer_save(wr, path)) ok = 0;
    st_writer_free(wr);
    return ok;
}

static const char *check_entries(sdc_model *m, const gen_entry *e, int n, const char *path, double scale) {
    const char *err = NULL;
    for (int i = 0; !err && i < n; i++)
        err = check_module(m, "models/tiny-sd", e[i].c, e[i].module, NULL, path, e[i].down, e[i].up, e[i].alpha, scale,
                           NULL);
    return err;
}

TEST(lora_conv_targets_and_legacy_names) {
    static const gen_entry kohya[] = {
        /* 3x3 resnet conv and downsampler under LDM names */
        {"lora_unet_input_blocks_1_0_in_layers_2.lora_down.weight", "lora_unet_input_blocks_1_0_in_layers_2.lora_up.weight",
         "lora_unet_input_blocks_1_0_in_layers_2.alpha", LORA_UNET, "down_blocks.0.resnets.0.conv1", 1, 1, 1.0f, ST_F32},
        {"lora_unet_input_blocks_3_0_op.lora_down.weight", "lora_unet_input_blocks_3_0_op.lora_up.weight", NULL,
         LORA_UNET, "down_blocks.0.downsamplers.0.conv", 1, 1, 0, ST_F32},
        /* 1x1 conv proj_in with 4-D and 2-D LoRA factors */
        {"lora_unet_input_blocks_1_1_proj_in.lora_down.weight", "lora_unet_input_blocks_1_1_proj_in.lora_up.weight",
         NULL, LORA_UNET, "down_blocks.0.attentions.0.proj_in", 1, 1, 0, ST_F32},
        {"lora_unet_input_blocks_1_1_proj_out.lora_down.weight", "lora_unet_input_blocks_1_1_proj_out.lora_up.weight",
         "lora_unet_input_blocks_1_1_proj_out.alpha", LORA_UNET, "down_blocks.0.attentions.0.proj_out", 0, 0, 4.0f,
         ST_F16},
        /* kohya with diffusers module names; SD1's single text encoder */
        {"lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight",
         "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_up.weight",
         "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.alpha", LORA_UNET,
         "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k", 0, 0, 3.0f, ST_F16},
        {"lora_te_text_model_encoder_layers_2_self_attn_q_proj.lora_down.weight",
         "lora_te_text_model_encoder_layers_2_self_attn_q_proj.lora_up.weight", NULL, LORA_TE1,
         "text_model.encoder.layers.2.self_attn.q_proj", 0, 0, 0, ST_F32},
    };
    static const gen_entry legacy[] = {
        {"unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor.to_out_lora.down.weight",
         "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor.to_out_lora.up.weight", NULL, LORA_UNET,
         "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_out.0", 0, 0, 0, ST_F32},
        {"down_blocks.0.attentions.1.transformer_blocks.0.attn1.processor.to_q_lora.down.weight",
         "down_blocks.0.attentions.1.transformer_blocks.0.attn1.processor.to_q_lora.up.weight", NULL, LORA_UNET,
         "down_blocks.0.attentions.1.transformer_blocks.0.attn1.to_q", 0, 0, 0, ST_F32},
        {"unet.mid_block.attentions.0.transformer_blocks.0.attn1.to_v.lora.down.weight",
         "unet.mid_block.attentions.0.transformer_blocks.0.attn1.to_v.lora.up.weight",
         "unet.mid_block.attentions.0.transformer_blocks.0.attn1.to_v.alpha", LORA_UNET,
         "mid_block.attentions.0.transformer_blocks.0.attn1.to_v", 0, 0, 1.0f, ST_F32},
        {"base_model.model.up_blocks.1.attentions.0.transformer_blocks.0.ff.net.2.lora_A.weight",
         "base_model.model.up_blocks.1.attentions.0.transformer_blocks.0.ff.net.2.lora_B.weight", NULL, LORA_UNET,
         "up_blocks.1.attentions.0.transformer_blocks.0.ff.net.2", 0, 0, 0, ST_F32},
        {"text_encoder.text_model.encoder.layers.0.self_attn.to_k_lora.down.weight",
         "text_encoder.text_model.encoder.layers.0.self_attn.to_k_lora.up.weight", NULL, LORA_TE1,
         "text_model.encoder.layers.0.self_attn.k_proj", 0, 0, 0, ST_F32},
        {"text_encoder.text_model.encoder.layers.1.mlp.fc1.lora_linear_layer.down.weight",
         "text_encoder.text_model.encoder.layers.1.mlp.fc1.lora_linear_layer.up.weight", NULL, LORA_TE1,
         "text_model.encoder.layers.1.mlp.fc1", 0, 0, 0, ST_F32},
    };
    const int nk = (int)(sizeof kohya / sizeof kohya[0]), nl = (int)(sizeof legacy / sizeof legacy[0]);
    sdc_model *base;
    CHECK_OK(load(&base, "models/tiny-sd", NULL, NULL, 0, NULL));
    char pk[1024], pl[1024];
    snprintf(pk, sizeof pk, "%s", tmp_path("sd-kohya-conv.safetensors"));
    snprintf(pl, sizeof pl, "%s", tmp_path("sd-legacy.safetensors"));
    int ok = write_lora(base, kohya, nk, pk) && write_lora(base, legacy, nl, pl);
    sdc_model_free(base);
    CHECK(ok, "could not write the test LoRAs: %s", sdc_last_error());
    sdc_model *m;
    const char *l[] = {pk, pl};
    float s[] = {0.8f, 1.5f};
    reports rep;
    for (int i = 0; i < 2; i++) {
        CHECK_OK(load(&m, "models/tiny-sd", &l[i], &s[i], 1, &rep));
        const char *err = check_entries(m, i ? legacy : kohya, i ? nl : nk, l[i], s[i]);
        sdc_model_free(m);
        CHECK(!err, "%s", err);
        int want_unet = i ? 4 : 5, want_te = i ? 2 : 1;
        CHECK(rep.n == 1 && rep.r[0].unet == want_unet && rep.r[0].te1 == want_te && rep.r[0].te2 == 0,
              "%s: report unet %d te1 %d te2 %d", l[i], rep.r[0].unet, rep.r[0].te1, rep.r[0].te2);
    }
}

/* ---- malformed LoRAs ----------------------------------------------------- */

/* Loading model_rel with the LoRA must fail with a message holding want (and want2). */
static const char *expect_failure(const char *model_rel, const char *lora, const char *want, const char *want2) {
    static char msg[1024];
    sdc_model *m;
    const char *l[] = {lora};
    sdc_status st = load(&m, model_rel, l, NULL, 1, NULL);
    if (!st) {
        sdc_model_free(m);
        snprintf(msg, sizeof msg, "%s loaded with %s", model_rel, lora);
        return msg;
    }
    const char *e = sdc_last_error();
    if (!strstr(e, want) || (want2 && !strstr(e, want2)) || strchr(e, '\n')) {
        snprintf(msg, sizeof msg, "error '%s' lacks '%s'%s%s", e, want, want2 ? " / " : "", want2 ? want2 : "");
        return msg;
    }
    return NULL;
}

typedef struct {
    const char *name;
    int ndim;
    int64_t shape[4];
} spec;

static const char *write_specs(const char *file, const spec *s, int n) {
    static char path[1024];
    snprintf(path, sizeof path, "%s", tmp_path(file));
    st_writer *wr = st_writer_new();
    for (int i = 0; i < n; i++) {
        int64_t k = 1;
        for (int d = 0; d < s[i].ndim; d++) k *= s[i].shape[d];
        float *v = calloc((size_t)(k ? k : 1), sizeof(float));
        for (int64_t j = 0; j < k; j++) v[j] = 0.01f;
        st_writer_add(wr, s[i].name, ST_F32, s[i].ndim, s[i].shape, v);
        free(v);
    }
    sdc_status st = st_writer_save(wr, path);
    st_writer_free(wr);
    return st ? NULL : path;
}

#define PROJ "unet.down_blocks.1.attentions.0.proj_in"

TEST(lora_malformed_files_fail_naming_the_key) {
    char cmd[4096];
    /* truncated and garbled files */
    char trunc[1024], garbage[1024];
    snprintf(trunc, sizeof trunc, "%s", tmp_path("truncated.safetensors"));
    snprintf(garbage, sizeof garbage, "%s", tmp_path("garbage.safetensors"));
    snprintf(cmd, sizeof cmd, "head -c 20000 '%s' > '%s' && head -c 4096 /dev/urandom > '%s'", lora_file(KOHYA), trunc,
             garbage);
    CHECK(system(cmd) == 0, "prep failed");
    const char *err;
    CHECK(!(err = expect_failure("models/tiny-sdxl", trunc, "truncated.safetensors", NULL)), "truncated: %s", err);
    CHECK(!(err = expect_failure("models/tiny-sdxl", garbage, "garbage.safetensors", NULL)), "garbage: %s", err);
    CHECK(!(err = expect_failure("models/tiny-sdxl", "/nonexistent/x.safetensors", "/nonexistent/x.safetensors", NULL)),
          "missing: %s", err);

    struct { const char *file; spec s[4]; int n; const char *want, *want2; } bad[] = {
        /* wrong shapes: the first offending key (in name order) is named */
        {"wrong-shape.safetensors",
         {{PROJ ".lora_A.weight", 2, {4, 63}}, {PROJ ".lora_B.weight", 2, {64, 4}},
          {"unet.up_blocks.0.attentions.0.proj_in.lora_A.weight", 2, {4, 7}},
          {"unet.up_blocks.0.attentions.0.proj_in.lora_B.weight", 2, {64, 4}}}, 4,
         PROJ ".lora_A.weight", "do not fit"},
        {"wrong-out.safetensors", {{PROJ ".lora_A.weight", 2, {4, 64}}, {PROJ ".lora_B.weight", 2, {65, 4}}}, 2,
         PROJ ".lora_B.weight", "(65, 4)"},
        {"conv-on-linear.safetensors", {{PROJ ".lora_A.weight", 4, {4, 64, 3, 3}}, {PROJ ".lora_B.weight", 4, {64, 4, 1, 1}}},
         2, PROJ ".lora_A.weight", "do not fit"},
        {"rank-mismatch.safetensors", {{PROJ ".lora_A.weight", 2, {4, 64}}, {PROJ ".lora_B.weight", 2, {64, 3}}}, 2,
         "rank mismatch", PROJ ".lora_A.weight"},
        {"unknown-prefix.safetensors",
         {{"transformer.blocks.0.lora_A.weight", 2, {4, 64}}, {"transformer.blocks.0.lora_B.weight", 2, {64, 4}}}, 2,
         "unknown prefix", "transformer.blocks.0.lora_A.weight"},
        {"no-up.safetensors", {{"lora_unet_middle_block_1_proj_in.lora_down.weight", 2, {4, 64}}}, 1,
         "lora_unet_middle_block_1_proj_in.lora_down.weight", "no matching up"},
        {"loha.safetensors", {{"lora_unet_middle_block_1_proj_in.hada_w1_a", 2, {64, 4}}}, 1,
         "lora_unet_middle_block_1_proj_in.hada_w1_a", "not a LoRA weight"},
        {"vector-alpha.safetensors",
         {{"lora_unet_middle_block_1_proj_in.alpha", 1, {2}},
          {"lora_unet_middle_block_1_proj_in.lora_down.weight", 2, {4, 64}},
          {"lora_unet_middle_block_1_proj_in.lora_up.weight", 2, {64, 4}}}, 3,
         "lora_unet_middle_block_1_proj_in.alpha", "one float"},
        {"norm-target.safetensors",
         {{"unet.mid_block.attentions.0.norm.lora_A.weight", 2, {4, 64}},
          {"unet.mid_block.attentions.0.norm.lora_B.weight", 2, {64, 4}}}, 2,
         "unet.mid_block.attentions.0.norm.lora_A.weight", "no linear or conv"},
        {"twice.safetensors",
         {{"lora_unet_middle_block_1_proj_in.lora_down.weight", 2, {4, 64}},
          {"lora_unet_middle_block_1_proj_in.lora_up.weight", 2, {64, 4}},
          {"unet.mid_block.attentions.0.proj_in.lora_A.weight", 2, {4, 64}},
          {"unet.mid_block.attentions.0.proj_in.lora_B.weight", 2, {64, 4}}}, 4,
         "both change", "mid_block.attentions.0.proj_in.weight"},
        {"empty.safetensors", {{0}}, 0, "no tensors", NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *p = write_specs(bad[i].file, bad[i].s, bad[i].n);
        CHECK(p, "cannot write %s", bad[i].file);
        CHECK(!(err = expect_failure("models/tiny-sdxl", p, bad[i].want, bad[i].want2)), "%s: %s", bad[i].file, err);
    }
}

/* An SD1 LoRA (LDM names of tiny-sd) fuses into tiny-sd but matches nothing in tiny-sdxl. */
TEST(lora_for_sd1_does_not_apply_to_sdxl) {
    static const gen_entry sd1[] = {
        {"lora_unet_input_blocks_1_1_transformer_blocks_0_attn1_to_q.lora_down.weight",
         "lora_unet_input_blocks_1_1_transformer_blocks_0_attn1_to_q.lora_up.weight", NULL, LORA_UNET,
         "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q", 0, 0, 0, ST_F32},
        {"lora_unet_output_blocks_11_1_proj_out.lora_down.weight", "lora_unet_output_blocks_11_1_proj_out.lora_up.weight",
         NULL, LORA_UNET, "up_blocks.3.attentions.2.proj_out", 1, 1, 0, ST_F32},
    };
    sdc_model *base;
    CHECK_OK(load(&base, "models/tiny-sd", NULL, NULL, 0, NULL));
    char p[1024];
    snprintf(p, sizeof p, "%s", tmp_path("sd1-lora.safetensors"));
    int ok = write_lora(base, sd1, 2, p);
    sdc_model_free(base);
    CHECK(ok, "cannot write the SD1 LoRA");
    sdc_model *m;
    const char *l[] = {p};
    reports rep;
    CHECK_OK(load(&m, "models/tiny-sd", l, NULL, 1, &rep));
    const char *err = check_entries(m, sd1, 2, p, 1.0);
    sdc_model_free(m);
    CHECK(!err, "%s", err);
    CHECK(rep.r[0].unet == 2, "tiny-sd: %d UNet modules", rep.r[0].unet);
    CHECK(!(err = expect_failure("models/tiny-sdxl", p, "lora_unet_input_blocks_1_1_transformer_blocks_0_attn1_to_q",
                                 "matches no module")), "%s", err);
    /* a second-encoder key on a model with one encoder */
    spec te2[] = {{"lora_te2_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight", 2, {4, 64}},
                  {"lora_te2_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight", 2, {64, 4}}};
    const char *q = write_specs("te2-on-sd.safetensors", te2, 2);
    CHECK(q, "cannot write");
    CHECK(!(err = expect_failure("models/tiny-sd", q, "lora_te2_text_model_encoder_layers_0_self_attn_q_proj",
                                 "does not have")), "%s", err);
}

/* ---- command line -------------------------------------------------------- */

#define SDXL_GEN "%s generate -m '%s' -p cat --seed 3 -W 64 -H 64 "

TEST(lora_cli_reports_modules_and_errors) {
    char cmd[4096], out[4096], png[1024];
    snprintf(png, sizeof png, "%s", tmp_path("cli-lora.png"));
    snprintf(cmd, sizeof cmd, SDXL_GEN "--steps 1 --lora '%s' --lora '%s:0.5' -o '%s'", sdc_binary(),
             fixture_path("models/tiny-sdxl"), fixture_path(KOHYA), fixture_path(PEFT), png);
    CHECK(run_cmd(cmd, out, sizeof out) == 0, "failed: %s\n%s", cmd, out);
    char want[2048];
    snprintf(want, sizeof want, "lora %s: 332 modules (unet 302, te1 12, te2 18)\n", lora_file(KOHYA));
    CHECK(strstr(out, want), "no report line '%s' in:\n%s", want, out);
    snprintf(want, sizeof want, "lora %s: 332 modules", fixture_path(PEFT));
    CHECK(strstr(out, want) && strstr(out, want) > strstr(out, "tiny-sdxl-lora-kohya"), "second report missing:\n%s", out);
    /* --quiet: no report */
    snprintf(cmd, sizeof cmd, SDXL_GEN "--steps 1 --quiet --lora '%s' -o '%s'", sdc_binary(),
             fixture_path("models/tiny-sdxl"), lora_file(KOHYA), png);
    CHECK(run_cmd(cmd, out, sizeof out) == 0 && !strstr(out, "lora "), "quiet run printed:\n%s", out);
    /* a missing file: exit 1, one line naming it */
    snprintf(cmd, sizeof cmd, SDXL_GEN "--quiet --lora /nonexistent/l.safetensors:0.7 -o '%s'", sdc_binary(),
             fixture_path("models/tiny-sdxl"), tmp_path("never.png"));
    int rc = run_cmd(cmd, out, sizeof out);
    CHECK(rc == 1 && strstr(out, "/nonexistent/l.safetensors") && !strstr(out, "0.7") && strchr(out, '\n') ==
                                                                                              out + strlen(out) - 1,
          "missing LoRA: exit %d, output:\n%s", rc, out);
    /* usage errors */
    const char *bad[] = {"--lora ''", "--lora x:1e9", "--preset turbo", "--lora"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(cmd, sizeof cmd, "%s generate -m x -p cat %s", sdc_binary(), bad[i]);
        rc = run_cmd(cmd, out, sizeof out);
        CHECK(rc == 2, "'%s': exit %d, output:\n%s", bad[i], rc, out);
    }
}

/* ---- presets ------------------------------------------------------------- */

TEST(preset_table_and_explicit_values) {
    CHECK(preset_find("sdxl-turbo") && preset_find("hyper-sd-2step") && preset_find("hyper-sd-1step") &&
              !preset_find("turbo") && !preset_find(""), "preset names");
    sdc_request r;
    preset_given none = {0};
    sdc_request_init(&r);
    preset_apply(preset_find("sdxl-turbo"), &none, &r);
    CHECK(!strcmp(r.scheduler, "euler_a") && !strcmp(r.timestep_spacing, "trailing") && r.steps == 1 &&
              r.guidance == 0.0f && r.width == 512 && r.height == 512 && r.eta == 0.0f,
          "sdxl-turbo: %s %s %d steps g %g %dx%d", r.scheduler, r.timestep_spacing, r.steps, (double)r.guidance,
          r.width, r.height);
    sdc_request_init(&r);
    preset_apply(preset_find("hyper-sd-2step"), &none, &r);
    CHECK(!strcmp(r.scheduler, "ddim") && !strcmp(r.timestep_spacing, "trailing") && r.steps == 2 &&
              r.guidance == 0.0f && r.width == 0 && r.height == 0 && r.eta == 0.0f, "hyper-sd-2step");
    sdc_request_init(&r);
    preset_apply(preset_find("hyper-sd-1step"), &none, &r);
    CHECK(!strcmp(r.scheduler, "tcd") && !r.timestep_spacing && r.steps == 1 && r.guidance == 0.0f && r.eta == 1.0f &&
              r.width == 0, "hyper-sd-1step");
    /* explicit values stay */
    sdc_request_init(&r);
    r.steps = 4, r.width = 768, r.eta = 0.0f, r.guidance = 1.5f, r.scheduler = "euler", r.timestep_spacing = "leading";
    preset_given all = {1, 1, 1, 1, 1, 1, 0};
    preset_apply(preset_find("sdxl-turbo"), &all, &r);
    CHECK(r.steps == 4 && r.width == 768 && r.height == 512 && r.guidance == 1.5f && !strcmp(r.scheduler, "euler") &&
              !strcmp(r.timestep_spacing, "leading"), "explicit values overwritten");
    sdc_request_init(&r);
    preset_given eta = {.eta = 1};
    preset_apply(preset_find("hyper-sd-1step"), &eta, &r);
    CHECK(r.eta == 0.0f, "explicit --eta 0 overwritten by the preset");
}

/* Run generate with --dump; return the exit code and fill the infotext and the timesteps. */
static int gen_dump(const char *args, char *info, size_t n, double *ts, int *nts) {
    char cmd[4096], out[4096], png[1024], dump[1024];
    snprintf(png, sizeof png, "%s", tmp_path("preset.png"));
    snprintf(dump, sizeof dump, "%s", tmp_path("preset.safetensors"));
    snprintf(cmd, sizeof cmd, "%s generate --quiet -m '%s' -p cat --seed 3 %s -o '%s' --dump '%s'", sdc_binary(),
             fixture_path("models/tiny-sdxl"), args, png, dump);
    int rc = run_cmd(cmd, out, sizeof out);
    if (rc) return rc;
    uint8_t *rgb;
    int w, h;
    char *params = NULL;
    if (png_read_rgb(png, &rgb, &w, &h, &params)) return -1;
    snprintf(info, n, "%s, Size: %dx%d", params ? params : "", w, h);
    free(rgb), free(params);
    st_file f;
    if (st_open(&f, dump)) return -1;
    const st_tensor *t = st_find(&f, "timesteps");
    *nts = 0;
    float *v = NULL;
    int64_t *iv = NULL;
    if (t && (t->dtype == ST_I64 ? !st_to_i64(t, &iv) : !st_to_f32(t, &v)))
        for (int64_t i = 0; i < t->numel && i < 8; i++) ts[(*nts)++] = iv ? (double)iv[i] : v[i];
    free(v), free(iv);
    st_close(&f);
    return 0;
}

TEST(preset_cli_sets_settings_and_explicit_flags_win) {
    static const struct {
        const char *args;
        const char *want[4];
        int nts;
        double ts[3];
    } runs[] = {
        {"--preset hyper-sd-2step -W 64 -H 64", {"Steps: 2, Sampler: DDIM,", "CFG scale: 0,", "Size: 64x64"}, 2, {999, 499}},
        /* flags before and after the preset both win */
        {"--timestep-spacing leading --steps 3 --preset hyper-sd-2step -W 64 -H 64",
         {"Steps: 3, Sampler: DDIM,", "CFG scale: 0,"}, 3, {667, 334, 1}},
        {"--preset hyper-sd-1step --eta 0.5 -W 64 -H 64", {"Steps: 1, Sampler: TCD,", "CFG scale: 0,", "Eta: 0.5,"}, 1,
         {999}},
        {"-W 64 --preset sdxl-turbo -H 64 --guidance 2", {"Steps: 1, Sampler: Euler a,", "CFG scale: 2,", "Size: 64x64"},
         1, {999}},
        {"--preset sdxl-turbo --scheduler ddim -W 64 -H 64", {"Steps: 1, Sampler: DDIM,", "CFG scale: 0,"}, 1, {999}},
    };
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        char info[4096];
        double ts[8];
        int nts;
        int rc = gen_dump(runs[i].args, info, sizeof info, ts, &nts);
        CHECK(rc == 0, "'%s': exit %d", runs[i].args, rc);
        for (int k = 0; k < 4 && runs[i].want[k]; k++)
            CHECK(strstr(info, runs[i].want[k]), "'%s': '%s' not in '%s'", runs[i].args, runs[i].want[k], info);
        int same = nts == runs[i].nts;
        for (int k = 0; same && k < nts; k++) same = ts[k] == runs[i].ts[k];
        CHECK(same, "'%s': %d timesteps, first %g", runs[i].args, nts, nts ? ts[0] : -1.0);
    }
}
