/* test_img2img.c - img2img, inpainting and the hires fix against diffusers'
 * goldens in tests/fixtures2 (its README defines each case): through the
 * library (the VAE encoder's means and every step's latents) and through
 * build/sdc (PNGs within 2/255), and the bad inputs each refuses. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "golden.h"
#include "harness.h"
#include "io/json.h"
#include "io/png_io.h"
#include "sdc.h"

static int verbose(void) { return getenv("SDC_TEST_VERBOSE") != NULL; }

/* fixtures2 paths, relative to tests/fixtures */
static const char *f2(const char *rel) {
    static char buf[4][512];
    static int k;
    char *b = buf[k++ % 4];
    snprintf(b, sizeof buf[0], "%s", fixture_path("../fixtures2"));
    size_t o = strlen(b);
    snprintf(b + o, sizeof buf[0] - o, "/%s", rel);
    return b;
}

/* one case's call, strings pointing into its JSON */
typedef struct {
    cJSON *j;
    char model[512], init[512], mask[512];
    const char *sched, *prompts[4], *negs[4];
    int np, nn, steps, W, H, has_init, has_mask;
    double g, strength;
    uint64_t seed;
    double hires_scale, hires_strength;
    int hires_steps;
    const char *hires_upscaler;
} i2i_case;

static const char *sched_name(const char *cls) {
    static const char *m[][2] = {{"DDIMScheduler", "ddim"},
                                 {"EulerDiscreteScheduler", "euler"},
                                 {"EulerAncestralDiscreteScheduler", "euler_a"},
                                 {"PNDMScheduler", "pndm"}};
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        if (!strcmp(m[i][0], cls)) return m[i][1];
    return NULL;
}

static int load_case(const char *name, i2i_case *c) {
    char p[256];
    memset(c, 0, sizeof *c);
    snprintf(p, sizeof p, "cases/%s.json", name);
    if (json_load(f2(p), &c->j)) return 0;
    cJSON *j = c->j, *a;
    const cJSON *um = cJSON_GetObjectItem(j, "unet_model");
    /* an inpainting UNet's case: its folder is the whole pipeline (the rest is tiny-sd's) */
    snprintf(c->model, sizeof c->model, "%s",
             f2(cJSON_IsString(um) ? um->valuestring : cJSON_GetObjectItem(j, "model")->valuestring));
    c->sched = sched_name(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "scheduler"), "class")->valuestring);
    cJSON_ArrayForEach(a, cJSON_GetObjectItem(j, "prompt")) if (c->np < 4) c->prompts[c->np++] = a->valuestring;
    cJSON_ArrayForEach(a, cJSON_GetObjectItem(j, "negative_prompt")) if (c->nn < 4) c->negs[c->nn++] = a->valuestring;
    c->seed = (uint64_t)cJSON_GetArrayItem(cJSON_GetObjectItem(j, "seeds"), 0)->valuedouble;
    c->steps = cJSON_GetObjectItem(j, "num_inference_steps")->valueint;
    c->g = cJSON_GetObjectItem(j, "guidance_scale")->valuedouble;
    c->W = cJSON_GetObjectItem(j, "width")->valueint;
    c->H = cJSON_GetObjectItem(j, "height")->valueint;
    const cJSON *s = cJSON_GetObjectItem(j, "strength"), *ii = cJSON_GetObjectItem(j, "init_image"),
                *mi = cJSON_GetObjectItem(j, "mask_image"), *hr = cJSON_GetObjectItem(j, "hires");
    c->strength = cJSON_IsNumber(s) ? s->valuedouble : -1;
    if ((c->has_init = cJSON_IsString(ii))) {
        snprintf(p, sizeof p, "cases/%s", ii->valuestring);
        snprintf(c->init, sizeof c->init, "%s", f2(p));
    }
    if ((c->has_mask = cJSON_IsString(mi))) {
        snprintf(p, sizeof p, "cases/%s", mi->valuestring);
        snprintf(c->mask, sizeof c->mask, "%s", f2(p));
    }
    if (cJSON_IsObject(hr)) {
        c->hires_scale = cJSON_GetObjectItem(hr, "scale")->valuedouble;
        c->hires_steps = cJSON_GetObjectItem(hr, "steps")->valueint;
        c->hires_strength = cJSON_GetObjectItem(hr, "strength")->valuedouble;
        const char *u = cJSON_GetObjectItem(hr, "upscaler")->valuestring;
        c->hires_upscaler = !strcmp(u, "nearest") ? "latent-nearest" : u;
    }
    return c->sched != NULL && c->np > 0;
}

/* max |a - b| of two RGB8 PNG files (999: sizes differ or unreadable) */
static int png_max_diff(const char *a_path, const char *b_path) {
    uint8_t *a = NULL, *b = NULL;
    int aw, ah, bw, bh, worst = 999;
    if (!png_read_rgb(a_path, &a, &aw, &ah, NULL) && !png_read_rgb(b_path, &b, &bw, &bh, NULL) && aw == bw &&
        ah == bh) {
        worst = 0;
        for (int64_t k = 0; k < (int64_t)aw * ah * 3; k++)
            if (abs((int)a[k] - (int)b[k]) > worst) worst = abs((int)a[k] - (int)b[k]);
    }
    free(a), free(b);
    return worst;
}

/* ---- library: intermediates ---- */

typedef struct {
    st_writer *w;
} dump_ctx;

static void collect(void *ctx, const char *name, int is_int, int ndim, const int64_t *shape, const void *data) {
    dump_ctx *d = ctx;
    if (data) st_writer_add(d->w, name, is_int ? ST_I64 : ST_F32, ndim, shape, data);
}

/* a tensor as doubles, whatever its dtype (timesteps are integers under DDPM-style samplers, floats under others) */
static double *as_f64(const st_tensor *t) {
    double *d = malloc((size_t)t->numel * sizeof(double));
    if (!d) return NULL;
    int ints = t->dtype == ST_I64 || t->dtype == ST_I32;
    int64_t *i = NULL;
    float *f = NULL;
    if (ints ? st_to_i64(t, &i) : st_to_f32(t, &f)) {
        free(d);
        return NULL;
    }
    for (int64_t k = 0; k < t->numel; k++) d[k] = ints ? (double)i[k] : (double)f[k];
    free(i), free(f);
    return d;
}

/* max |mine - golden| / max(1, max |golden|) of one tensor (INFINITY: missing or another size) */
static double rel_diff(const st_file *mine, const st_file *gold, const char *name) {
    const st_tensor *a = st_find(mine, name), *b = st_find(gold, name);
    if (!a || !b || a->numel != b->numel) return INFINITY;
    double *x = as_f64(a), *y = as_f64(b), scale = 1, d = x && y ? 0 : INFINITY;
    for (int64_t k = 0; x && y && k < b->numel; k++) {
        scale = fmax(scale, fabs(y[k]));
        d = fmax(d, fabs(x[k] - y[k]));
    }
    free(x), free(y);
    return d / scale;
}

/* the image (RGB) or mask (gray) pixels of a PNG file */
static sdc_status read_px(const char *path, int gray, uint8_t **px, int *w, int *h) {
    SDC_TRY(png_read_rgb(path, px, w, h, NULL));
    if (gray)
        sdc_image_gray(*px, 3, (int64_t)*w * *h, *px); /* in place: gray[i] is written after px[3i..3i+2] is read */
    return SDC_OK;
}

static void run_library(const char *name) {
    i2i_case c;
    CHECK(load_case(name, &c), "cannot read case %s", name);
    sdc_request r;
    sdc_request_init(&r);
    r.prompts = c.prompts, r.nprompts = c.np;
    r.negative_prompts = c.nn ? c.negs : NULL, r.nnegative = c.nn;
    r.seed = c.seed, r.steps = c.steps, r.guidance = (float)c.g, r.width = c.W, r.height = c.H;
    r.scheduler = c.sched, r.strength = c.strength;
    r.hires_scale = c.hires_scale, r.hires_steps = c.hires_steps,
    r.hires_strength = c.hires_scale ? c.hires_strength : -1;
    r.hires_upscaler = c.hires_upscaler;
    uint8_t *init = NULL, *mask = NULL;
    sdc_status st = SDC_OK;
    if (c.has_init) st = read_px(c.init, 0, &init, &r.init_width, &r.init_height);
    if (!st && c.has_mask) st = read_px(c.mask, 1, &mask, &r.mask_width, &r.mask_height);
    r.init_image = init, r.mask = mask;
    sdc_model *m = NULL;
    if (!st) st = sdc_model_load(&m, c.model, NULL);
    dump_ctx d = {.w = st_writer_new()};
    r.dump = collect, r.dump_ctx = &d;
    sdc_image *imgs = NULL;
    int n = 0;
    if (!st) st = sdc_generate(m, &r, &imgs, &n);
    char mp[256];
    snprintf(mp, sizeof mp, "%s", tmp_path(name));
    if (!st) st = st_writer_save(d.w, mp);
    st_writer_free(d.w);
    sdc_images_free(imgs, n);
    sdc_model_free(m);
    free(init), free(mask);
    cJSON_Delete(c.j);
    CHECK(st == SDC_OK, "%s: %s", name, sdc_last_error());
    char gp[256];
    snprintf(gp, sizeof gp, "cases/%s.safetensors", name);
    st_file mine, gold;
    CHECK_OK(st_open(&mine, mp));
    CHECK_OK(st_open(&gold, f2(gp)));
    int compared = 0;
    double worst = 0;
    char worst_name[64] = "";
    for (int i = 0; i < gold.n; i++) { /* every tensor diffusers recorded */
        const char *t = gold.tensors[i].name;
        double dd = rel_diff(&mine, &gold, t);
        if (verbose()) printf("     %s: %s diff %.3g\n", name, t, dd);
        if (!(dd <= worst)) worst = dd, snprintf(worst_name, sizeof worst_name, "%s", t);
        compared++;
    }
    st_close(&mine), st_close(&gold);
    CHECK(compared >= 4, "%s: only %d tensors compared", name, compared);
    CHECK(worst <= 1e-4, "%s: %s differs by %g of its scale (tolerance 1e-4)", name, worst_name, worst);
}

/* ---- command line: PNGs ---- */

static void run_cli(const char *name) {
    i2i_case c;
    CHECK(load_case(name, &c), "cannot read case %s", name);
    char cmd[4096], out[512];
    snprintf(out, sizeof out, "%s", tmp_path(name));
    int o = snprintf(cmd, sizeof cmd,
                     "%s generate --quiet -m '%s' --seed %llu --steps %d --guidance %g -W %d -H %d "
                     "--scheduler %s -o '%s-{index}.png'",
                     sdc_binary(), c.model, (unsigned long long)c.seed, c.steps, c.g, c.W, c.H, c.sched, out);
    if (c.has_init)
        o += snprintf(cmd + o, sizeof cmd - (size_t)o, " --init-image '%s' --strength %g", c.init, c.strength);
    if (c.has_mask) o += snprintf(cmd + o, sizeof cmd - (size_t)o, " --mask '%s'", c.mask);
    if (c.hires_scale)
        o += snprintf(cmd + o, sizeof cmd - (size_t)o,
                      " --hires-scale %g --hires-steps %d --hires-strength %g "
                      "--hires-upscaler %s",
                      c.hires_scale, c.hires_steps, c.hires_strength, c.hires_upscaler);
    for (int i = 0; i < c.np; i++) o += snprintf(cmd + o, sizeof cmd - (size_t)o, " -p \"%s\"", c.prompts[i]);
    for (int i = 0; i < c.nn; i++) o += snprintf(cmd + o, sizeof cmd - (size_t)o, " -n \"%s\"", c.negs[i]);
    int np = c.np;
    cJSON_Delete(c.j);
    char log[2048];
    int rc = run_cmd(cmd, log, sizeof log);
    CHECK(rc == 0, "command failed (%d): %s\n%s", rc, cmd, log);
    for (int i = 0; i < np; i++) {
        char mine[600], gold[256];
        snprintf(mine, sizeof mine, "%s-%d.png", out, i);
        snprintf(gold, sizeof gold, "cases/%s_%d.png", name, i);
        int worst = png_max_diff(mine, f2(gold));
        if (verbose()) printf("     %s image %d: max pixel difference %d/255\n", name, i, worst);
        CHECK(worst <= 2, "%s image %d: max pixel difference %d/255", name, i, worst);
    }
}

#define I2I_TESTS(id, name)                                                                                            \
    TEST(img2img_##id##_library) { run_library(name); }                                                                \
    TEST(img2img_##id##_cli_png) { run_cli(name); }

I2I_TESTS(sd_ddim, "img2img-sd-ddim")
I2I_TESTS(sd_euler_a_batch2, "img2img-sd-euler-a-batch2")
I2I_TESTS(sdxl_euler, "img2img-sdxl-euler")
I2I_TESTS(inpaint_sd4_euler, "inpaint-sd4-euler")
I2I_TESTS(inpaint_sd9_ddim, "inpaint-sd9-ddim")
I2I_TESTS(hires_sd_latent, "hires-sd-latent")

/* ---- bad input: each refused with a message that says what is wrong ---- */

/* runs `sdc generate` on tiny-sd (or model) with args; expects exit rc and want in the message */
static void refuses(const char *model, const char *args, int want_rc, const char *want) {
    char cmd[2048], log[2048];
    snprintf(cmd, sizeof cmd, "%s generate --quiet -m '%s' --seed 1 --steps 4 -p x -o '%s' %s", sdc_binary(),
             model ? model : fixture_path("models/tiny-sd"), tmp_path("refused.png"), args);
    int rc = run_cmd(cmd, log, sizeof log);
    CHECK(rc == want_rc && strstr(log, want), "%s\nexit %d (want %d), message lacks '%s':\n%s", cmd, rc, want_rc, want,
          log);
}

TEST(img2img_refuses_bad_input) {
    char a[1600];
    const char *init = f2("cases/img2img-sd-ddim_init.png");
    const char *tall = f2("cases/img2img-sd-euler-a-batch2_init.png"); /* 64x96 */
    snprintf(a, sizeof a, "--init-image '%s' --mask '%s'", init, tall);
    refuses(NULL, a, 2, "the mask is 64x96 but the init image is 64x64");
    if (test_failed()) return;
    snprintf(a, sizeof a, "--init-image '%s'", f2("cases/img2img-sd-ddim.json"));
    refuses(NULL, a, 1, "is not a PNG image");
    if (test_failed()) return;
    snprintf(a, sizeof a, "--init-image '%s' --strength 0", init);
    refuses(NULL, a, 2, "strength 0 out of range (0, 1]");
    if (test_failed()) return;
    snprintf(a, sizeof a, "--init-image '%s' --strength 1.5", init);
    refuses(NULL, a, 2, "strength 1.5 out of range (0, 1]");
    if (test_failed()) return;
    snprintf(a, sizeof a, "--strength 0.5");
    refuses(NULL, a, 2, "give an init image");
    if (test_failed()) return;
    snprintf(a, sizeof a, "--mask '%s'", init);
    refuses(NULL, a, 2, "--mask needs --init-image");
    if (test_failed()) return;
    snprintf(a, sizeof a, "--init-image '%s' --strength 0.1", init); /* int(4 x 0.1) = 0 steps */
    refuses(NULL, a, 1, "runs no step");
    if (test_failed()) return;
    refuses(f2("models/tiny-sd-inpaint"), "", 1, "is an inpainting model");
    if (test_failed()) return;
    refuses(NULL, "--hires-scale 2 --hires-upscaler lanczos", 2, "unknown hires upscaler 'lanczos'");
}

/* The library's check, without a model: a mask of another size, a truncated PNG. */
TEST(img2img_request_check) {
    static uint8_t px[8 * 8 * 3], m[8 * 16];
    const char *p[1] = {"x"};
    sdc_request r;
    sdc_request_init(&r);
    r.prompts = p, r.nprompts = 1;
    r.init_image = px, r.init_width = 8, r.init_height = 8;
    CHECK_OK(sdc_request_check(NULL, &r));
    r.mask = m, r.mask_width = 8, r.mask_height = 16;
    CHECK(sdc_request_check(NULL, &r) == SDC_ERR_ARG && strstr(sdc_last_error(), "mask is 8x16"), "%s",
          sdc_last_error());
    r.mask_height = 8;
    r.strength = NAN;
    CHECK(sdc_request_check(NULL, &r) == SDC_ERR_ARG, "NaN strength accepted");
    uint8_t *rgba;
    int w, h;
    static const uint8_t half_png[16] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R'};
    CHECK(sdc_png_decode_rgba(half_png, sizeof half_png, &rgba, &w, &h) == SDC_ERR_FORMAT, "a truncated PNG decoded");
}

/* Every sampler of the registry runs an inpaint with an ordinary UNet (the
 * schedule sliced at the strength's begin call, add_noise there - its own or
 * the generic one - and at every later call), or refuses with a message
 * naming it: none fails any other way. */
TEST(img2img_every_sampler) {
    sdc_model *m;
    CHECK_OK(sdc_model_load(&m, fixture_path("models/tiny-sd"), NULL));
    uint8_t *init = NULL, *mask = NULL;
    int w, h, mw, mh;
    sdc_status st = read_px(f2("cases/inpaint-sd4-euler_init.png"), 0, &init, &w, &h);
    if (!st) st = read_px(f2("cases/inpaint-sd4-euler_mask.png"), 1, &mask, &mw, &mh);
    char why[512] = "";
    for (int i = 0; !st && i < sdc_sampler_count(); i++) {
        const sdc_sampler_info *si = sdc_sampler_at(i);
        for (int inpaint = 1; !st && inpaint < 2; inpaint++) {
            const char *p[1] = {"a door"};
            sdc_request r;
            sdc_request_init(&r);
            r.prompts = p, r.nprompts = 1, r.seed = 3, r.steps = 4, r.scheduler = si->name, r.strength = 0.5;
            r.init_image = init, r.init_width = w, r.init_height = h;
            if (inpaint) r.mask = mask, r.mask_width = mw, r.mask_height = mh;
            sdc_image *imgs = NULL;
            int n = 0;
            sdc_status g = sdc_generate(m, &r, &imgs, &n);
            if (g == SDC_ERR_UNSUPPORTED && strstr(sdc_last_error(), si->name)) continue; /* refused, clearly */
            int64_t sum = 0;
            for (int64_t k = 0; !g && n == 1 && k < (int64_t)w * h * 3; k++) sum += imgs[0].rgb[k];
            if (g || n != 1 || sum == 0)
                snprintf(why, sizeof why, "%s (%s): %s", si->name, inpaint ? "inpaint" : "img2img",
                         g ? sdc_last_error() : "no image");
            if (verbose())
                printf("     %s %s: %s\n", si->name, inpaint ? "inpaint" : "img2img", g ? sdc_last_error() : "ok");
            sdc_images_free(imgs, n);
            if (why[0]) st = SDC_ERR_ARG;
        }
    }
    free(init), free(mask);
    sdc_model_free(m);
    CHECK(!why[0], "%s", why);
    CHECK(st == SDC_OK, "%s", sdc_last_error());
}
