/* test_taesd.c - TAESD (AutoencoderTiny): the decoder and encoder against
 * diffusers' goldens (fixtures2/units/taesd.safetensors) on the CPU and
 * behind the emulated device boundary, the key layouts a single file may
 * have (diffusers, madebyollin's two files, prefixed), and the loader's
 * errors for what is not TAESD. SDC_TEST_VERBOSE=1 prints every max diff. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "golden.h"
#include "harness.h"
#include "io/json.h"
#include "io/png_io.h"
#include "io/safetensors.h"
#include "nn/taesd.h"
#include "sdc.h"

#define ATOL 1e-4
#define TAESD_DIR "../fixtures2/models/taesd-random"
#define GOLDEN "../fixtures2/units/taesd.safetensors"

static void report(const char *name, double d) {
    if (getenv("SDC_TEST_VERBOSE")) printf("     %s max|diff| = %.3g\n", name, d);
}

/* decode golden latents_<tag> -> decoded_<tag> (batch as stored) */
static double decode_diff(sdc_taesd *t, const st_file *g, const char *tag) {
    char zn[64], on[64];
    snprintf(zn, sizeof zn, "latents_%s", tag);
    snprintf(on, sizeof on, "decoded_%s", tag);
    const st_tensor *tz = st_find(g, zn), *to = st_find(g, on);
    if (!tz || !to || tz->ndim != 4 || to->ndim != 4) return INFINITY;
    int B = (int)tz->shape[0], h = (int)tz->shape[2], w = (int)tz->shape[3], f = taesd_upscale(t);
    if (to->shape[0] != B || to->shape[2] != h * f || to->shape[3] != w * f) return INFINITY;
    float *z = golden_f32(g, zn, NULL), *ref = golden_f32(g, on, NULL);
    float *out = malloc((size_t)to->numel * sizeof(float));
    double d = z && ref && out && !taesd_decode(t, z, B, h, w, out) ? max_abs_diff(out, ref, to->numel) : INFINITY;
    free(z), free(ref), free(out);
    return d;
}

static double encode_diff(sdc_taesd *t, const st_file *g) {
    const st_tensor *ti = st_find(g, "image_64x96"), *te = st_find(g, "encoded_64x96");
    if (!ti || !te || ti->ndim != 4 || te->ndim != 4) return INFINITY;
    int B = (int)ti->shape[0], H = (int)ti->shape[2], W = (int)ti->shape[3], h, w;
    taesd_encode_size(t, H, W, &h, &w);
    if (te->shape[2] != h || te->shape[3] != w) return INFINITY;
    float *x = golden_f32(g, "image_64x96", NULL), *ref = golden_f32(g, "encoded_64x96", NULL);
    float *out = malloc((size_t)te->numel * sizeof(float));
    double d = x && ref && out && !taesd_encode(t, x, B, H, W, out) ? max_abs_diff(out, ref, te->numel) : INFINITY;
    free(x), free(ref), free(out);
    return d;
}

/* every golden of the unit file through one loaded TAESD */
static void check_goldens(op_ctx *cx, const char *path, int want_encoder, const char *what) {
    sdc_taesd *t;
    st_file g;
    CHECK_OK(taesd_load(&t, cx, path, NULL));
    sdc_status st = st_open(&g, fixture_path(GOLDEN));
    if (st) taesd_free(t);
    CHECK(st == SDC_OK, "golden: %s", sdc_last_error());
    taesd_config c = *taesd_get_config(t);
    int cfg_ok = c.latent_channels == 4 && c.scaling_factor == 1.0f && c.shift_factor == 0.0f && taesd_upscale(t) == 8;
    double d8 = decode_diff(t, &g, "8x8"), d16 = decode_diff(t, &g, "16x12");
    double de = want_encoder ? encode_diff(t, &g) : 0;
    int has_enc = taesd_has_encoder(t);
    int64_t left = op_live_allocations(cx);
    st_close(&g);
    taesd_free(t);
    char name[128];
    snprintf(name, sizeof name, "%s decoded_8x8", what), report(name, d8);
    snprintf(name, sizeof name, "%s decoded_16x12 (batch 2)", what), report(name, d16);
    if (want_encoder) snprintf(name, sizeof name, "%s encoded_64x96", what), report(name, de);
    CHECK(cfg_ok, "%s: config not the real TAESD's (latent %d, scaling %g)", what, c.latent_channels,
          (double)c.scaling_factor);
    CHECK(has_enc == want_encoder, "%s: encoder %s", what, has_enc ? "loaded" : "missing");
    CHECK(d8 <= ATOL, "%s: decoded_8x8 max|diff| %g", what, d8);
    CHECK(d16 <= ATOL, "%s: decoded_16x12 max|diff| %g", what, d16);
    CHECK(de <= ATOL, "%s: encoded_64x96 max|diff| %g", what, de);
    CHECK(left == 0, "%s: %lld activation buffers left", what, (long long)left);
}

TEST(taesd_goldens_folder) { check_goldens(test_cx(), fixture_path(TAESD_DIR), 1, "folder"); }

/* the same through the emulated device (activations behind a boundary) */
TEST(taesd_goldens_emulated_device) {
    op_ctx *cx;
    CHECK_OK(op_ctx_create(&cx, OP_DEV_EMULATED, 0));
    check_goldens(cx, fixture_path(TAESD_DIR), 1, "emulated");
    op_ctx_free(cx);
}

/* ---- single files in the other key layouts ----
 * Written from the diffusers file: each tensor renamed by `rename`, or left
 * out when it returns 0 (so one source file gives madebyollin's decoder and
 * encoder halves). */
typedef int (*rename_fn)(const char *name, char *out, size_t n);

static sdc_status write_renamed(const char *dst, rename_fn rename) {
    st_file src;
    SDC_TRY(st_open(&src, fixture_path(TAESD_DIR "/diffusion_pytorch_model.safetensors")));
    st_writer *w = st_writer_new();
    sdc_status st = w ? SDC_OK : sdc_fail(SDC_ERR_NOMEM, "out of memory");
    for (int i = 0; i < src.n && !st; i++) {
        const st_tensor *t = &src.tensors[i];
        char name[256];
        if (rename(t->name, name, sizeof name)) st = st_writer_add(w, name, t->dtype, t->ndim, t->shape, t->data);
    }
    if (!st) st = st_writer_save(w, dst);
    st_writer_free(w);
    st_close(&src);
    return st;
}

/* "decoder.layers.N.rest" -> "<prefix>(N + offset).rest" */
static int renum(const char *name, const char *part, const char *prefix, int offset, char *out, size_t n) {
    size_t k = strlen(part);
    if (strncmp(name, part, k)) return 0;
    char *end;
    long idx = strtol(name + k, &end, 10);
    snprintf(out, n, "%s%ld%s", prefix, idx + offset, end);
    return 1;
}
static int mbo_decoder(const char *name, char *out, size_t n) { return renum(name, "decoder.layers.", "", 1, out, n); }
static int mbo_encoder(const char *name, char *out, size_t n) { return renum(name, "encoder.layers.", "", 0, out, n); }
static int prefixed(const char *name, char *out, size_t n) {
    return renum(name, "decoder.layers.", "taesd_decoder.", 1, out, n) ||
           renum(name, "encoder.layers.", "taesd_encoder.", 0, out, n);
}

TEST(taesd_goldens_single_files) {
    /* the diffusers file on its own: the built-in config */
    check_goldens(test_cx(), fixture_path(TAESD_DIR "/diffusion_pytorch_model.safetensors"), 1, "diffusers file");
    if (test_failed()) return;
    /* madebyollin's pair, given either half */
    const char *dec = tmp_path("mbo/taesd_decoder.safetensors"), *enc = tmp_path("mbo/taesd_encoder.safetensors");
    mkdir(tmp_path("mbo"), 0755);
    CHECK_OK(write_renamed(dec, mbo_decoder));
    CHECK_OK(write_renamed(enc, mbo_encoder));
    check_goldens(test_cx(), dec, 1, "madebyollin decoder + encoder");
    if (test_failed()) return;
    check_goldens(test_cx(), enc, 1, "madebyollin encoder + decoder");
    if (test_failed()) return;
    /* the decoder alone decodes; encoding says why it cannot */
    const char *alone = tmp_path("mbo-dec/taesdxl_decoder.safetensors");
    mkdir(tmp_path("mbo-dec"), 0755);
    CHECK_OK(write_renamed(alone, mbo_decoder));
    check_goldens(test_cx(), alone, 0, "madebyollin decoder alone");
    if (test_failed()) return;
    sdc_taesd *t;
    CHECK_OK(taesd_load(&t, test_cx(), alone, NULL));
    float img[3 * 16 * 16] = {0}, lat[4 * 2 * 2];
    sdc_status st = taesd_encode(t, img, 1, 16, 16, lat);
    taesd_free(t);
    CHECK(st == SDC_ERR_UNSUPPORTED && strstr(sdc_last_error(), "no encoder"), "encode without encoder: %s",
          sdc_last_error());
    /* both halves in one file under prefixes */
    const char *pre = tmp_path("taesd-prefixed.safetensors");
    CHECK_OK(write_renamed(pre, prefixed));
    check_goldens(test_cx(), pre, 1, "prefixed file");
}

/* ---- what is not TAESD ---- */

static int write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    fputs(text, f);
    return fclose(f) == 0;
}

/* taesd_load must fail with `code` and a message containing `want` (and the path) */
static void expect_load_error(const char *path, sdc_status code, const char *want) {
    sdc_taesd *t = NULL;
    sdc_status st = taesd_load(&t, test_cx(), path, NULL);
    taesd_free(t);
    CHECK(st != SDC_OK && t == NULL, "%s: loaded", path);
    CHECK(st == code, "%s: status %s, expected %s (%s)", path, sdc_status_name(st), sdc_status_name(code),
          sdc_last_error());
    CHECK(strstr(sdc_last_error(), want), "%s: message '%s' lacks '%s'", path, sdc_last_error(), want);
}

static int drop_all(const char *name, char *out, size_t n) {
    (void)name, (void)out, (void)n;
    return 0;
}

TEST(taesd_load_errors) {
    expect_load_error(tmp_path("no-such-taesd"), SDC_ERR_IO, "not found");
    /* a folder without config.json */
    mkdir(tmp_path("taesd-noconfig"), 0755);
    expect_load_error(tmp_path("taesd-noconfig"), SDC_ERR_FORMAT, "no config.json");
    if (test_failed()) return;
    /* the model's KL VAE folder and file */
    expect_load_error(fixture_path("models/tiny-sd/vae"), SDC_ERR_UNSUPPORTED, "AutoencoderKL");
    if (test_failed()) return;
    expect_load_error(fixture_path("models/tiny-sd/vae/diffusion_pytorch_model.safetensors"), SDC_ERR_FORMAT,
                      "full VAE");
    if (test_failed()) return;
    /* a text file, an empty safetensors file, an encoder without its decoder */
    const char *txt = tmp_path("not-taesd.safetensors");
    CHECK(write_text(txt, "hello"), "write");
    sdc_taesd *t = NULL;
    CHECK(taesd_load(&t, test_cx(), txt, NULL) != SDC_OK && !t, "a text file loaded");
    const char *empty = tmp_path("empty-taesd.safetensors");
    CHECK_OK(write_renamed(empty, drop_all));
    expect_load_error(empty, SDC_ERR_FORMAT, "not a TAESD file");
    if (test_failed()) return;
    mkdir(tmp_path("enc-only"), 0755);
    const char *enc = tmp_path("enc-only/taesd_encoder.safetensors");
    CHECK_OK(write_renamed(enc, mbo_encoder));
    expect_load_error(enc, SDC_ERR_FORMAT, "encoder only");
    if (test_failed()) return;
    /* configs: wrong class, activation, mismatched lists, widths that change */
    static const struct {
        const char *json;
        sdc_status code;
        const char *want;
    } cfgs[] = {
        {"{\"_class_name\": \"UNet2DConditionModel\"}", SDC_ERR_UNSUPPORTED, "not TAESD"},
        {"{\"_class_name\": \"AutoencoderTiny\", \"act_fn\": \"silu\"}", SDC_ERR_UNSUPPORTED, "act_fn 'silu'"},
        {"{\"_class_name\": \"AutoencoderTiny\", \"upsample_fn\": \"bilinear\"}", SDC_ERR_UNSUPPORTED, "upsample_fn"},
        {"{\"_class_name\": \"AutoencoderTiny\", \"num_encoder_blocks\": [1, 3, 3]}", SDC_ERR_FORMAT,
         "num_encoder_blocks 3"},
        {"{\"_class_name\": \"AutoencoderTiny\", \"decoder_block_out_channels\": [64, 32, 64, 64]}",
         SDC_ERR_UNSUPPORTED, "must all be equal"},
        {"{\"_class_name\": \"AutoencoderTiny\", \"latent_channels\": 0}", SDC_ERR_FORMAT, "latent_channels"},
        {"{\"_class_name\": \"AutoencoderTiny\", \"scaling_factor\": 0}", SDC_ERR_FORMAT, "scaling_factor"},
        {"{\"_class_name\": \"AutoencoderTiny\", \"num_decoder_blocks\": \"3\"}", SDC_ERR_FORMAT, "must be a list"},
        {"[1, 2]", SDC_ERR_FORMAT, "not a JSON object"},
        {"{\"_class_name\": \"AutoencoderTiny\"", SDC_ERR_FORMAT, "config.json"},
        /* a config whose latent width disagrees with the weights */
        {"{\"_class_name\": \"AutoencoderTiny\", \"latent_channels\": 16}", SDC_ERR_SHAPE, "decoder.layers.0.weight"},
    };
    for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++) {
        char dir[64], p[1100];
        snprintf(dir, sizeof dir, "taesd-cfg-%zu", i);
        snprintf(p, sizeof p, "%s", tmp_path(dir));
        mkdir(p, 0755);
        char cfg[1200], wt[1200];
        snprintf(cfg, sizeof cfg, "%s/config.json", p);
        snprintf(wt, sizeof wt, "%s/diffusion_pytorch_model.safetensors", p);
        CHECK(write_text(cfg, cfgs[i].json), "write %s", cfg);
        char real[PATH_MAX];
        unlink(wt);
        CHECK(realpath(fixture_path(TAESD_DIR "/diffusion_pytorch_model.safetensors"), real) && symlink(real, wt) == 0,
              "weights for %s", p);
        expect_load_error(p, cfgs[i].code, cfgs[i].want);
        if (test_failed()) return;
    }
}

/* ---- the end-to-end case: tiny-sd's latents decoded by TAESD ---- */

#define CASE "../fixtures2/cases/sd-taesd-decode"

typedef struct {
    cJSON *j;
    char model[512], taesd[512], prompt[256];
    int steps, W, H;
    uint64_t seed;
    float g;
} taesd_case;

/* the case's call; paths are relative to the folder that holds cases/ */
static int load_taesd_case(taesd_case *c) {
    memset(c, 0, sizeof *c);
    if (json_load(fixture_path(CASE ".json"), &c->j)) return 0;
    const cJSON *j = c->j, *s = cJSON_GetObjectItem(j, "scheduler");
    const cJSON *m = cJSON_GetObjectItem(j, "model"), *t = cJSON_GetObjectItem(j, "taesd");
    const cJSON *p = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "prompt"), 0);
    if (!cJSON_IsString(m) || !cJSON_IsString(t) || !cJSON_IsString(p) || !s ||
        strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(s, "class")), "DDIMScheduler"))
        return 0;
    char rel[600];
    snprintf(rel, sizeof rel, "../fixtures2/%s", m->valuestring);
    snprintf(c->model, sizeof c->model, "%s", fixture_path(rel));
    snprintf(rel, sizeof rel, "../fixtures2/%s", t->valuestring);
    snprintf(c->taesd, sizeof c->taesd, "%s", fixture_path(rel));
    snprintf(c->prompt, sizeof c->prompt, "%s", p->valuestring);
    c->seed = (uint64_t)cJSON_GetArrayItem(cJSON_GetObjectItem(j, "seeds"), 0)->valuedouble;
    c->steps = cJSON_GetObjectItem(j, "num_inference_steps")->valueint;
    c->g = (float)cJSON_GetObjectItem(j, "guidance_scale")->valuedouble;
    c->W = cJSON_GetObjectItem(j, "width")->valueint;
    c->H = cJSON_GetObjectItem(j, "height")->valueint;
    return 1;
}

/* max |a - b| over RGB8 pixels against the golden PNG; 999 when sizes differ */
static int golden_png_diff(const uint8_t *a, int w, int h) {
    uint8_t *b;
    int bw, bh;
    if (png_read_rgb(fixture_path(CASE "_0.png"), &b, &bw, &bh, NULL)) return 999;
    int worst = bw == w && bh == h ? 0 : 999;
    for (int64_t k = 0; worst < 999 && k < (int64_t)w * h * 3; k++) {
        int d = abs((int)a[k] - (int)b[k]);
        if (d > worst) worst = d;
    }
    free(b);
    return worst;
}

TEST(taesd_case_cli_png) {
    taesd_case c;
    CHECK(load_taesd_case(&c), "cannot read %s.json", CASE);
    char cmd[4096], out[600], log[2048];
    snprintf(out, sizeof out, "%s", tmp_path("sd-taesd-decode.png"));
    snprintf(cmd, sizeof cmd, "%s generate --quiet -m '%s' --taesd '%s' -p \"%s\" --seed %llu --steps %d --guidance %g "
             "-W %d -H %d --scheduler ddim -o '%s'", sdc_binary(), c.model, c.taesd, c.prompt,
             (unsigned long long)c.seed, c.steps, (double)c.g, c.W, c.H, out);
    cJSON_Delete(c.j);
    int rc = run_cmd(cmd, log, sizeof log);
    CHECK(rc == 0, "command failed (%d): %s\n%s", rc, cmd, log);
    uint8_t *a;
    int w, h;
    char *params = NULL;
    CHECK_OK(png_read_rgb(out, &a, &w, &h, &params));
    int worst = golden_png_diff(a, w, h);
    int said = params && strstr(params, ", VAE Decoder: TAESD,") && strstr(params, "Seed: ");
    free(a), free(params);
    if (getenv("SDC_TEST_VERBOSE")) printf("     sd-taesd-decode (CLI): max pixel difference %d/255\n", worst);
    CHECK(worst <= 2, "sd-taesd-decode: max pixel difference %d/255", worst);
    CHECK(said, "the infotext does not say VAE Decoder: TAESD");
}

/* the case through the library: on the CPU and behind the emulated device,
 * every activation buffer returned */
static void taesd_case_library(const char *device) {
    taesd_case c;
    CHECK(load_taesd_case(&c), "cannot read %s.json", CASE);
    sdc_load_options lo = {.taesd = c.taesd, .device = device};
    sdc_model *m;
    sdc_status st = sdc_model_load(&m, c.model, &lo);
    if (st) cJSON_Delete(c.j);
    CHECK(st == SDC_OK, "load: %s", sdc_last_error());
    const char *prompts[1] = {c.prompt};
    sdc_request r;
    sdc_request_init(&r);
    r.prompts = prompts, r.nprompts = 1, r.seed = c.seed, r.steps = c.steps, r.guidance = c.g;
    r.width = c.W, r.height = c.H, r.scheduler = "ddim";
    sdc_image *imgs = NULL;
    int n = 0;
    st = sdc_generate(m, &r, &imgs, &n);
    cJSON_Delete(c.j);
    sdc_model_info info;
    sdc_model_get_info(m, &info);
    int worst = !st && n == 1 ? golden_png_diff(imgs[0].rgb, imgs[0].width, imgs[0].height) : 999;
    int said = !st && n == 1 && strstr(imgs[0].infotext, "VAE Decoder: TAESD");
    sdc_images_free(imgs, n);
    sdc_model_free(m);
    CHECK(st == SDC_OK, "generate: %s", sdc_last_error());
    if (getenv("SDC_TEST_VERBOSE"))
        printf("     sd-taesd-decode (library, %s): max pixel difference %d/255\n", device ? device : "cpu", worst);
    CHECK(worst <= 2, "sd-taesd-decode on %s: max pixel difference %d/255", device ? device : "cpu", worst);
    CHECK(said, "the infotext does not say VAE Decoder: TAESD");
    CHECK(info.has_taesd && info.params_taesd > 2000000, "model info: has_taesd %d, %lld parameters", info.has_taesd,
          (long long)info.params_taesd);
}

TEST(taesd_case_library) { taesd_case_library(NULL); }
TEST(taesd_case_emulated_device) { taesd_case_library("emulated"); }

/* The --device cuda numerics predicted on the CPU: the emulated device with
 * the CUDA backend's f16 roundings (UNet, text encoder and TAESD, which is
 * f16-safe); held to the *_cuda_png bound, PSNR >= 35 dB. */
TEST(taesd_case_emulated_f16) {
    taesd_case c;
    CHECK(load_taesd_case(&c), "cannot read %s.json", CASE);
    sdc_load_options lo = {.taesd = c.taesd, .device = "emulated", .dtype = "f16"};
    sdc_model *m = NULL;
    const char *prompts[1] = {c.prompt};
    sdc_request r;
    sdc_request_init(&r);
    r.prompts = prompts, r.nprompts = 1, r.seed = c.seed, r.steps = c.steps, r.guidance = c.g;
    r.width = c.W, r.height = c.H, r.scheduler = "ddim";
    sdc_image *imgs = NULL;
    int n = 0;
    sdc_status st = sdc_model_load(&m, c.model, &lo);
    if (!st) st = sdc_generate(m, &r, &imgs, &n);
    cJSON_Delete(c.j);
    sdc_model_free(m);
    uint8_t *b = NULL;
    int bw = 0, bh = 0;
    if (!st) st = png_read_rgb(fixture_path(CASE "_0.png"), &b, &bw, &bh, NULL);
    double se = 0, psnr = 0;
    if (!st && n == 1 && bw == imgs[0].width && bh == imgs[0].height) {
        for (int64_t k = 0; k < (int64_t)bw * bh * 3; k++) se += ((double)imgs[0].rgb[k] - b[k]) * ((double)imgs[0].rgb[k] - b[k]);
        psnr = se ? 10.0 * log10(255.0 * 255.0 / (se / ((double)bw * bh * 3))) : 99;
    }
    free(b);
    sdc_images_free(imgs, n);
    CHECK(st == SDC_OK, "%s", sdc_last_error());
    if (getenv("SDC_TEST_VERBOSE")) printf("     sd-taesd-decode, f16 (emulated): PSNR %.1f dB\n", psnr);
    CHECK(psnr >= 35.0, "sd-taesd-decode f16-emulated: PSNR %.1f dB < 35", psnr);
}

/* ---- sdc dataset --taesd: the TAESD is part of the data set's identity ---- */

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *b = calloc(1, 1 << 16);
    if (b) b[fread(b, 1, (1 << 16) - 1, f)] = 0;
    fclose(f);
    return b;
}

TEST(taesd_dataset_identity) {
    const char *prompts = tmp_path("taesd-prompts.txt"), *dir = tmp_path("taesd-dataset");
    CHECK(write_text(prompts, "a lighthouse\n"), "write prompts");
    char cmd[4096], out[2048];
    const char *base = "%s dataset --quiet -m '%s' --prompts '%s' --out '%s' --steps 2 -W 64 -H 64 --scheduler ddim%s";
    char with[1200];
    snprintf(with, sizeof with, " --taesd '%s'", fixture_path(TAESD_DIR));
    snprintf(cmd, sizeof cmd, base, sdc_binary(), fixture_path("models/tiny-sd"), prompts, dir, with);
    int rc = run_cmd(cmd, out, sizeof out);
    CHECK(rc == 0, "dataset --taesd failed (%d): %s", rc, out);
    char p[1200];
    snprintf(p, sizeof p, "%s/sdc-dataset.json", dir);
    char *cfg = read_text(p);
    snprintf(p, sizeof p, "%s/train/metadata.jsonl", dir);
    char *meta = read_text(p);
    snprintf(p, sizeof p, "%s/train/00000000.png", dir);
    uint8_t *rgb = NULL;
    int w, h;
    char *params = NULL;
    sdc_status st = png_read_rgb(p, &rgb, &w, &h, &params);
    int cfg_ok = cfg && strstr(cfg, "\n  \"taesd\": {\"name\": \"taesd-random\", \"fingerprint\": \"");
    int meta_ok = meta && strstr(meta, "\"vae_decoder\": \"TAESD\"");
    int png_ok = !st && params && strstr(params, "VAE Decoder: TAESD");
    free(cfg), free(meta), free(rgb), free(params);
    CHECK(cfg_ok, "sdc-dataset.json lacks the taesd line");
    CHECK(meta_ok, "metadata.jsonl lacks vae_decoder");
    CHECK(png_ok, "the PNG's infotext lacks VAE Decoder: TAESD (%s)", st ? sdc_last_error() : "");
    /* the same folder without --taesd is another data set */
    snprintf(cmd, sizeof cmd, base, sdc_binary(), fixture_path("models/tiny-sd"), prompts, dir, "");
    rc = run_cmd(cmd, out, sizeof out);
    CHECK(rc != 0 && strstr(out, "taesd"), "resumed without --taesd (%d): %s", rc, out);
}

/* ---- on a CUDA device (a GPU, or the CPU emulator of `make test-cuda-emu`) ----
 * The goldens with the weights uploaded in f32 (convolutions with TF32
 * operands, as torch's allow_tf32 on GPUs) and in f16 (AutoencoderTiny is
 * f16-safe: the model runs it in the UNet's precision). Skipped without one. */
static void cuda_goldens(op_dtype dt, double tol) {
    op_ctx *cx;
    if (op_ctx_create(&cx, OP_DEV_CUDA, 0)) SKIP("%s", sdc_last_error());
    sdc_taesd *t = NULL;
    st_file g;
    sdc_status st = taesd_load(&t, cx, fixture_path(TAESD_DIR), NULL);
    if (!st) st = taesd_to_device(t, dt);
    if (!st) op_set_precision(cx, dt);
    int opened = !st && !(st = st_open(&g, fixture_path(GOLDEN)));
    double d8 = opened ? decode_diff(t, &g, "8x8") : INFINITY, d16 = opened ? decode_diff(t, &g, "16x12") : INFINITY;
    double de = opened ? encode_diff(t, &g) : INFINITY;
    if (opened) st_close(&g);
    taesd_free(t);
    op_ctx_free(cx);
    CHECK(st == SDC_OK, "%s", sdc_last_error());
    const char *name = dt == OP_F16 ? "f16" : "f32";
    if (getenv("SDC_TEST_VERBOSE"))
        printf("     cuda %s: decoded_8x8 %.3g, decoded_16x12 %.3g, encoded_64x96 %.3g (tolerance %g)\n", name, d8, d16,
               de, tol);
    CHECK(d8 <= tol && d16 <= tol && de <= tol, "cuda %s: max|diff| %g / %g / %g > %g", name, d8, d16, de, tol);
}

TEST(cuda_taesd_goldens_f32) { cuda_goldens(OP_F32, 1e-2); } /* emulator: 2.3e-3 (TF32) */
TEST(cuda_taesd_goldens_f16) { cuda_goldens(OP_F16, 2e-2); } /* emulator: 2.8e-3 */

/* the end-to-end case with --device cuda (f16): PSNR >= 35 dB against
 * diffusers' float32 PNG, the bound of the other cases' *_cuda_png */
TEST(cuda_taesd_case_png) {
    taesd_case c;
    CHECK(load_taesd_case(&c), "cannot read %s.json", CASE);
    char cmd[4096], out[600], log[2048];
    snprintf(out, sizeof out, "%s", tmp_path("sd-taesd-decode-cuda.png"));
    snprintf(cmd, sizeof cmd, "%s generate --quiet -m '%s' --taesd '%s' -p \"%s\" --seed %llu --steps %d --guidance %g "
             "-W %d -H %d --scheduler ddim --device cuda -o '%s'", sdc_binary(), c.model, c.taesd, c.prompt,
             (unsigned long long)c.seed, c.steps, (double)c.g, c.W, c.H, out);
    cJSON_Delete(c.j);
    int rc = run_cmd(cmd, log, sizeof log);
    if (rc == 1 && (strstr(log, "no CUDA device") || strstr(log, "no CUDA support"))) SKIP("%s", log);
    CHECK(rc == 0, "command failed (%d): %s\n%s", rc, cmd, log);
    uint8_t *a, *b;
    int w, h, bw, bh;
    CHECK_OK(png_read_rgb(out, &a, &w, &h, NULL));
    sdc_status st = png_read_rgb(fixture_path(CASE "_0.png"), &b, &bw, &bh, NULL);
    if (st) free(a);
    CHECK(st == SDC_OK, "%s", sdc_last_error());
    double se = 0;
    for (int64_t k = 0; bw == w && bh == h && k < (int64_t)w * h * 3; k++) se += ((double)a[k] - b[k]) * ((double)a[k] - b[k]);
    double psnr = bw == w && bh == h ? (se ? 10.0 * log10(255.0 * 255.0 / (se / ((double)w * h * 3))) : 99) : 0;
    free(a), free(b);
    if (getenv("SDC_TEST_VERBOSE")) printf("     sd-taesd-decode on cuda: PSNR %.1f dB\n", psnr);
    CHECK(psnr >= 35.0, "sd-taesd-decode on cuda: PSNR %.1f dB < 35", psnr);
}
