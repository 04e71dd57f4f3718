/* test_vae.c - AutoencoderKL decoder and encoder against the diffusers
 * goldens (units/vae_tiny.safetensors), batching, alternative weight
 * layouts (1x1-conv attention, pre-0.14 names, a key prefix) and the
 * loader's error messages. SDC_TEST_VERBOSE=1 prints every max diff. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "golden.h"
#include "harness.h"
#include "io/safetensors.h"
#include "nn/vae.h"

#define ATOL 1e-4
#define VAE_DIR "models/tiny-sd/vae"
#define GOLDEN "units/vae_tiny.safetensors"

static void report(const char *name, double d) {
    if (getenv("SDC_TEST_VERBOSE")) printf("     %s max|diff| = %.3g\n", name, d);
}

typedef struct {
    const st_file *g;
    const char *prefix; /* "decode.mid." or "encode.mid." */
    int compared;
    char bad[256];
} tap_ctx;

static void tap_cmp(void *vctx, const char *name, int b, const float *x, int C, int H, int W) {
    tap_ctx *c = vctx;
    char key[200];
    snprintf(key, sizeof key, "%s%s", c->prefix, name);
    const st_tensor *t = st_find(c->g, key);
    if (!t) {
        if (!c->bad[0]) snprintf(c->bad, sizeof c->bad, "no golden for tap %s", key);
        return;
    }
    if (b != 0 || t->ndim != 4 || t->shape[1] != C || t->shape[2] != H || t->shape[3] != W) {
        if (!c->bad[0]) snprintf(c->bad, sizeof c->bad, "%s: shape [%d,%d,%d,%d] differs", key, b + 1, C, H, W);
        return;
    }
    float *ref = golden_f32(c->g, key, NULL);
    double d = ref ? max_abs_diff(x, ref, t->numel) : INFINITY;
    free(ref);
    report(key, d);
    if (!(d <= ATOL) && !c->bad[0]) snprintf(c->bad, sizeof c->bad, "%s max|diff| %g", key, d);
    c->compared++;
}

TEST(vae_decode_golden) {
    op_ctx *cx = test_cx();
    sdc_vae *v;
    st_file g;
    CHECK_OK(vae_load(&v, cx, fixture_path(VAE_DIR), NULL));
    CHECK_OK(st_open(&g, fixture_path(GOLDEN)));
    const st_tensor *tz = st_find(&g, "decode.in.z"), *to = st_find(&g, "decode.out.sample");
    CHECK(tz && to && tz->ndim == 4 && to->ndim == 4, "golden tensors missing");
    int h = (int)tz->shape[2], w = (int)tz->shape[3], up = vae_downscale_factor(v);
    CHECK(up == 8 && to->shape[2] == h * up && to->shape[3] == w * up, "upscale %d", up);
    CHECK(fabsf(vae_scaling_factor(v) - 0.18215f) < 1e-9f && vae_shift_factor(v) == 0.0f, "scaling/shift factor");
    float *z = golden_f32(&g, "decode.in.z", NULL), *ref = golden_f32(&g, "decode.out.sample", NULL);
    float *out = malloc((size_t)to->numel * sizeof(float));
    tap_ctx tc = {.g = &g, .prefix = "decode.mid."};
    CHECK_OK(vae_decode_tap(v, z, 1, h, w, out, tap_cmp, &tc));
    CHECK(!tc.bad[0], "%s", tc.bad);
    CHECK(tc.compared == 9, "compared %d intermediates, expected 9", tc.compared);
    double d = max_abs_diff(out, ref, to->numel);
    report("decode.out.sample", d);
    CHECK(d <= ATOL, "decode.out.sample max|diff| %g", d);
    free(z);
    free(ref);
    free(out);
    st_close(&g);
    vae_free(v);
}

TEST(vae_encode_golden) {
    op_ctx *cx = test_cx();
    sdc_vae *v;
    st_file g;
    CHECK_OK(vae_load(&v, cx, fixture_path(VAE_DIR), NULL));
    CHECK(vae_has_encoder(v), "encoder not loaded");
    CHECK_OK(st_open(&g, fixture_path(GOLDEN)));
    const st_tensor *ti = st_find(&g, "encode.in.image");
    CHECK(ti && ti->ndim == 4, "encode.in.image missing");
    int H = (int)ti->shape[2], W = (int)ti->shape[3], h, w;
    vae_encode_size(v, H, W, &h, &w);
    CHECK(h == 4 && w == 6, "latent size %dx%d", h, w);
    int64_t n = (int64_t)vae_latent_channels(v) * h * w;
    float *img = golden_f32(&g, "encode.in.image", NULL);
    float *mean = malloc((size_t)n * sizeof(float)), *lv = malloc((size_t)n * sizeof(float)),
          *sd = malloc((size_t)n * sizeof(float));
    tap_ctx tc = {.g = &g, .prefix = "encode.mid."};
    CHECK_OK(vae_encode_tap(v, img, 1, H, W, mean, lv, sd, tap_cmp, &tc));
    CHECK(!tc.bad[0], "%s", tc.bad);
    CHECK(tc.compared == 9, "compared %d intermediates, expected 9", tc.compared);
    const char *names[3] = {"encode.out.mean", "encode.out.logvar", "encode.out.std"};
    float *outs[3] = {mean, lv, sd};
    for (int i = 0; i < 3; i++) {
        int64_t gn = 0;
        float *ref = golden_f32(&g, names[i], &gn);
        double d = ref && gn == n ? max_abs_diff(outs[i], ref, n) : INFINITY;
        free(ref);
        report(names[i], d);
        CHECK(d <= ATOL, "%s max|diff| %g", names[i], d);
    }
    free(img);
    free(mean);
    free(lv);
    free(sd);
    st_close(&g);
    vae_free(v);
}

/* B = 2 decodes each image exactly as B = 1 does; odd latent sizes work. */
TEST(vae_decode_batch_and_odd_size) {
    op_ctx *cx = test_cx();
    sdc_vae *v;
    CHECK_OK(vae_load(&v, cx, fixture_path(VAE_DIR), NULL));
    int h = 3, w = 5, L = 4, up = 8;
    int64_t zn = (int64_t)L * h * w, on = (int64_t)3 * h * up * w * up;
    float *z = malloc((size_t)(2 * zn) * sizeof(float)), *o2 = malloc((size_t)(2 * on) * sizeof(float)),
          *o1 = malloc((size_t)on * sizeof(float));
    for (int64_t i = 0; i < 2 * zn; i++) z[i] = (float)sin(0.37 * (double)i) * 2.0f;
    CHECK_OK(vae_decode(v, z, 2, h, w, o2));
    CHECK_OK(vae_decode(v, z + zn, 1, h, w, o1));
    CHECK(!memcmp(o1, o2 + on, (size_t)on * sizeof(float)), "image 1 of a batch differs from a lone decode");
    CHECK(max_abs_diff(o2, o2 + on, on) > 1e-3, "different latents gave the same image");
    CHECK(vae_decode(v, z, 1, 0, w, o1) == SDC_ERR_ARG, "0-height latent accepted");
    free(z);
    free(o1);
    free(o2);
    vae_free(v);
}

/* ---- alternative layouts ------------------------------------------------- */

enum { EDIT_NONE, EDIT_ATTN_CONV, EDIT_ATTN_OLD_NAMES, EDIT_QUANT_BIAS };

/* Copy the VAE weights to dst with every name prefixed, `drop` entries
 * (substring match) removed, and the attention projections rewritten. */
static int copy_vae(const char *dst, const char *prefix, const char *drop, int edit) {
    st_file f;
    if (st_open(&f, fixture_path(VAE_DIR "/diffusion_pytorch_model.safetensors"))) return 0;
    st_writer *w = st_writer_new();
    int ok = 1;
    for (int i = 0; ok && i < f.n; i++) {
        const st_tensor *t = &f.tensors[i];
        if (drop && strstr(t->name, drop)) continue;
        char name[300], base[300];
        int64_t shape[4] = {t->shape[0], t->shape[1], 1, 1};
        int ndim = t->ndim;
        snprintf(base, sizeof base, "%s", t->name);
        const char *at = strstr(base, ".attentions.0.");
        if (at && edit == EDIT_ATTN_CONV && ndim == 2) ndim = 4;
        if (at && edit == EDIT_ATTN_OLD_NAMES) {
            const char *from[4] = {"to_q", "to_k", "to_v", "to_out.0"}, *to[4] = {"query", "key", "value", "proj_attn"};
            for (int k = 0; k < 4; k++) {
                char *p = strstr(base, from[k]);
                if (p) {
                    char tail[300];
                    snprintf(tail, sizeof tail, "%s", p + strlen(from[k]));
                    snprintf(p, sizeof base - (size_t)(p - base), "%s%s", to[k], tail);
                    break;
                }
            }
        }
        snprintf(name, sizeof name, "%s%s", prefix, base);
        float qb[8];
        const void *data = t->data;
        if (edit == EDIT_QUANT_BIAS && !strcmp(t->name, "quant_conv.bias") && t->numel == 8) {
            /* push the logvar half past both clamps: channels 4,5 -> +100, 6,7 -> -100 */
            st_copy_f32(t, qb);
            qb[4] = qb[5] = 100.0f;
            qb[6] = qb[7] = -100.0f;
            data = qb;
        }
        ok = !st_writer_add(w, name, t->dtype, ndim, ndim == 4 && t->ndim == 2 ? shape : t->shape, data);
    }
    if (ok) ok = !st_writer_save(w, dst);
    st_writer_free(w);
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

/* Reference decode of a fixed latent with the fixture VAE. */
static int ref_decode(float *out, const float *z) {
    op_ctx *cx = test_cx();
    sdc_vae *v;
    if (vae_load(&v, cx, fixture_path(VAE_DIR), NULL)) return 0;
    int ok = !vae_decode(v, z, 1, 2, 3, out);
    vae_free(v);
    return ok;
}

static void fill_z(float *z) {
    for (int i = 0; i < 4 * 2 * 3; i++) z[i] = (float)cos(1.3 * i);
}

TEST(vae_load_weights_prefix_and_conv_attention) {
    op_ctx *cx = test_cx();
    const char *p = tmp_path("vae_prefixed.safetensors");
    CHECK(copy_vae(p, "first_stage_model.", NULL, EDIT_ATTN_CONV), "copy");
    vae_config cfg;
    CHECK_OK(vae_config_load(&cfg, fixture_path(VAE_DIR "/config.json")));
    weights wt;
    const char *paths[1] = {p};
    CHECK_OK(weights_open(&wt, paths, 1));
    snprintf(wt.prefix, sizeof wt.prefix, "first_stage_model.");
    sdc_vae *v;
    sdc_status st = vae_load_weights(&v, cx, &cfg, &wt);
    if (st) weights_close(&wt);
    CHECK_OK(st);
    float z[24], a[3 * 16 * 24], b[3 * 16 * 24];
    fill_z(z);
    st = vae_decode(v, z, 1, 2, 3, a);
    vae_free(v);
    weights_close(&wt);
    CHECK_OK(st);
    CHECK(ref_decode(b, z), "reference decode");
    CHECK(!memcmp(a, b, sizeof a), "prefixed / 1x1-conv attention weights decode differently");
}

/* A fresh VAE folder: config text + a rewritten weights file. */
static const char *make_dir(const char *name, const char *cfg, const char *drop, int edit) {
    const char *dir = tmp_path(name);
    char p[1100];
    mkdir(dir, 0755);
    snprintf(p, sizeof p, "%s/config.json", dir);
    if (!write_text(p, cfg)) return NULL;
    snprintf(p, sizeof p, "%s/diffusion_pytorch_model.safetensors", dir);
    if (!copy_vae(p, "", drop, edit)) return NULL;
    return dir;
}

static const char *CFG_OK =
    "{\"_class_name\":\"AutoencoderKL\",\"act_fn\":\"silu\",\"block_out_channels\":[32,64,64,64],"
    "\"down_block_types\":[\"DownEncoderBlock2D\",\"DownEncoderBlock2D\",\"DownEncoderBlock2D\",\"DownEncoderBlock2D\"],"
    "\"in_channels\":3,\"latent_channels\":4,\"layers_per_block\":2,\"norm_num_groups\":32,\"out_channels\":3,"
    "\"scaling_factor\":0.13025,\"shift_factor\":null,"
    "\"up_block_types\":[\"UpDecoderBlock2D\",\"UpDecoderBlock2D\",\"UpDecoderBlock2D\",\"UpDecoderBlock2D\"]}";

static void replace(char *out, size_t n, const char *s, const char *from, const char *to) {
    const char *at = strstr(s, from);
    if (!at) {
        snprintf(out, n, "%s", s);
        return;
    }
    snprintf(out, n, "%.*s%s%s", (int)(at - s), s, to, at + strlen(from));
}

TEST(vae_old_attention_names_and_defaults) {
    op_ctx *cx = test_cx();
    const char *dir = make_dir("vae_old", CFG_OK, NULL, EDIT_ATTN_OLD_NAMES);
    CHECK(dir, "could not build the folder");
    sdc_vae *v;
    CHECK_OK(vae_load(&v, cx, dir, "fp16")); /* no fp16 file: falls back to the plain one */
    CHECK(fabsf(vae_scaling_factor(v) - 0.13025f) < 1e-9f && vae_shift_factor(v) == 0.0f, "factors");
    CHECK(vae_get_config(v)->use_post_quant_conv && vae_get_config(v)->mid_attention, "defaults");
    float z[24], a[3 * 16 * 24], b[3 * 16 * 24];
    fill_z(z);
    sdc_status st = vae_decode(v, z, 1, 2, 3, a);
    vae_free(v);
    CHECK_OK(st);
    CHECK(ref_decode(b, z), "reference decode");
    CHECK(!memcmp(a, b, sizeof a), "query/key/value/proj_attn weights decode differently");
}

/* mid_block_add_attention false: no attention tensors needed, and they matter */
TEST(vae_without_mid_attention_or_encoder) {
    op_ctx *cx = test_cx();
    char cfg[2048];
    replace(cfg, sizeof cfg, CFG_OK, "\"act_fn\"", "\"mid_block_add_attention\":false,\"act_fn\"");
    const char *dir = make_dir("vae_noattn", cfg, "decoder.mid_block.attentions", EDIT_NONE);
    CHECK(dir, "could not build the folder");
    sdc_vae *v;
    CHECK_OK(vae_load(&v, cx, dir, NULL));
    float z[24], a[3 * 16 * 24], b[3 * 16 * 24];
    fill_z(z);
    sdc_status st = vae_decode(v, z, 1, 2, 3, a);
    vae_free(v);
    CHECK_OK(st);
    CHECK(ref_decode(b, z), "reference decode");
    CHECK(max_abs_diff(a, b, 3 * 16 * 24) > 1e-4, "the mid attention made no difference");
    /* a decoder-only file: no encoder, encode refuses */
    dir = make_dir("vae_noenc", CFG_OK, "encoder.", EDIT_NONE);
    CHECK(dir, "could not build the folder");
    CHECK_OK(vae_load(&v, cx, dir, NULL));
    float img[3 * 16 * 16], mean[4 * 2 * 2];
    memset(img, 0, sizeof img);
    int has = vae_has_encoder(v);
    st = vae_encode(v, img, 1, 16, 16, mean, NULL, NULL);
    vae_free(v);
    CHECK(!has, "encoder reported present");
    CHECK(st == SDC_ERR_UNSUPPORTED, "encode without encoder: %d", st);
}

/* DiagonalGaussianDistribution clamps logvar to [-30, 20] before std = exp(logvar / 2) */
TEST(vae_encode_logvar_clamp) {
    op_ctx *cx = test_cx();
    const char *dir = make_dir("vae_clamp", CFG_OK, NULL, EDIT_QUANT_BIAS);
    CHECK(dir, "could not build the folder");
    sdc_vae *v;
    CHECK_OK(vae_load(&v, cx, dir, NULL));
    float img[3 * 16 * 16], mean[4 * 2 * 2], lv[4 * 2 * 2], sd[4 * 2 * 2];
    for (int i = 0; i < 3 * 16 * 16; i++) img[i] = (float)sin(0.1 * i);
    sdc_status st = vae_encode(v, img, 1, 16, 16, mean, lv, sd);
    vae_free(v);
    CHECK_OK(st);
    for (int i = 0; i < 16; i++) {
        float want = i < 8 ? 20.0f : -30.0f;
        CHECK(lv[i] == want, "logvar[%d] = %g, expected %g", i, lv[i], want);
        CHECK(sd[i] == expf(0.5f * want), "std[%d] = %g", i, sd[i]);
    }
}

/* ---- errors -------------------------------------------------------------- */

static void expect_load_error(const char *dir, sdc_status code, const char *needle) {
    op_ctx *cx = test_cx();
    sdc_vae *v = (sdc_vae *)1;
    sdc_status st = vae_load(&v, cx, dir, NULL);
    CHECK(st == code, "status %d (%s), expected %d", st, sdc_last_error(), code);
    CHECK(v == NULL, "output not cleared on failure");
    CHECK(strstr(sdc_last_error(), needle), "message '%s' lacks '%s'", sdc_last_error(), needle);
}

TEST(vae_error_configs) {
    struct { const char *from, *to, *needle; sdc_status code; } cases[] = {
        {"[32,64,64,64]", "[32,64,48,64]", "block_out_channels[2] = 48 is not divisible by norm_num_groups 32",
         SDC_ERR_FORMAT},
        {"\"silu\"", "\"gelu\"", "act_fn 'gelu'", SDC_ERR_UNSUPPORTED},
        {"\"UpDecoderBlock2D\",\"UpDecoderBlock2D\"]", "\"UpDecoderBlock2D\",\"AttnUpDecoderBlock2D\"]",
         "up_block_types[3] is 'AttnUpDecoderBlock2D'", SDC_ERR_UNSUPPORTED},
        {"[32,64,64,64]", "[32,64,64]", "'down_block_types' has 4 entries but block_out_channels has 3", SDC_ERR_FORMAT},
        {"\"layers_per_block\":2", "\"layers_per_block\":0", "layers_per_block = 0", SDC_ERR_FORMAT},
        {"\"layers_per_block\":2", "\"layers_per_block\":3", "decoder.up_blocks.0.resnets.3.norm1.weight",
         SDC_ERR_FORMAT},
        {"\"latent_channels\":4", "\"latent_channels\":8", "post_quant_conv.weight", SDC_ERR_SHAPE},
        {"\"norm_num_groups\":32", "\"norm_num_groups\":\"x\"", "'norm_num_groups' must be an integer", SDC_ERR_FORMAT},
        {"AutoencoderKL", "AutoencoderTiny", "AutoencoderTiny", SDC_ERR_UNSUPPORTED},
        {"\"scaling_factor\":0.13025", "\"scaling_factor\":0", "scaling_factor", SDC_ERR_FORMAT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char cfg[2048], name[32];
        CHECK(strstr(CFG_OK, cases[i].from), "case %zu: pattern", i);
        replace(cfg, sizeof cfg, CFG_OK, cases[i].from, cases[i].to);
        snprintf(name, sizeof name, "vae_cfg%zu", i);
        const char *dir = make_dir(name, cfg, NULL, EDIT_NONE);
        CHECK(dir, "could not build the folder");
        expect_load_error(dir, cases[i].code, cases[i].needle);
        if (test_failed()) return;
    }
}

TEST(vae_error_files) {
    /* missing tensor, named with its file */
    const char *dir = make_dir("vae_missing", CFG_OK, "decoder.up_blocks.2.upsamplers.0.conv.bias", EDIT_NONE);
    CHECK(dir, "could not build the folder");
    expect_load_error(dir, SDC_ERR_FORMAT, "missing tensor 'decoder.up_blocks.2.upsamplers.0.conv.bias'");
    if (test_failed()) return;
    CHECK(strstr(sdc_last_error(), "vae_missing/diffusion_pytorch_model.safetensors"), "file not named: %s",
          sdc_last_error());
    /* a broken encoder is an error too, not a silently missing one */
    dir = make_dir("vae_enc_missing", CFG_OK, "encoder.mid_block.attentions.0.to_k.weight", EDIT_NONE);
    CHECK(dir, "could not build the folder");
    expect_load_error(dir, SDC_ERR_FORMAT, "encoder.mid_block.attentions.0.to_k.weight");
    if (test_failed()) return;
    /* config without weights */
    dir = tmp_path("vae_noweights");
    char p[1100];
    mkdir(dir, 0755);
    snprintf(p, sizeof p, "%s/config.json", dir);
    CHECK(write_text(p, CFG_OK), "write");
    expect_load_error(dir, SDC_ERR_IO, "no diffusion_pytorch_model.safetensors");
    if (test_failed()) return;
    /* no folder */
    expect_load_error("/nonexistent/vae", SDC_ERR_IO, "/nonexistent/vae/config.json");
}
