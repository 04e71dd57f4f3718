/* test_a1111_cases.c - the end-to-end cases with "prompt_syntax": "a1111"
 * (tests/fixtures2/cases/a1111-*): diffusers' StableDiffusionPipeline on
 * tiny-sd fed A1111's conditioning. Through the library every dumped
 * intermediate is compared with the golden (ids and multipliers exactly,
 * embeddings within the case's tolerance, each UNet call, the latents, the
 * image); through build/sdc the PNG within 2/255. The halves of different
 * lengths run apart (A1111's default) or padded with the empty prompt's
 * conditioning (--pad-cond-uncond), as each case says. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "golden.h"
#include "harness.h"
#include "io/json.h"
#include "io/png_io.h"
#include "io/safetensors.h"
#include "sdc.h"

static int verbose(void) { return getenv("SDC_TEST_VERBOSE") != NULL; }

/* the request a case describes; strings point into its JSON */
typedef struct {
    cJSON *j;
    const char *prompt, *negative, *sched;
    int steps, W, H, clip_skip, pad, calls;
    float g;
    uint64_t seed;
    double tol_pos, tol_neg; /* tolerances.prompt_embeds_max_abs, negative_... */
} a_case;

static const char *case_path(const char *name, const char *ext) {
    char rel[256];
    snprintf(rel, sizeof rel, "../fixtures2/cases/%s%s", name, ext);
    return fixture_path(rel);
}

static int load(const char *name, a_case *c) {
    memset(c, 0, sizeof *c);
    if (json_load(case_path(name, ".json"), &c->j)) return 0;
    const cJSON *j = c->j, *tol = cJSON_GetObjectItem(j, "tolerances");
    const char *cls = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "scheduler"), "class")->valuestring;
    c->sched = !strcmp(cls, "PNDMScheduler") ? "pndm" : !strcmp(cls, "DDIMScheduler") ? "ddim" : NULL;
    c->prompt = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "prompt"), 0)->valuestring;
    c->negative = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "negative_prompt"), 0)->valuestring;
    c->steps = cJSON_GetObjectItem(j, "num_inference_steps")->valueint;
    c->W = cJSON_GetObjectItem(j, "width")->valueint;
    c->H = cJSON_GetObjectItem(j, "height")->valueint;
    c->g = (float)cJSON_GetObjectItem(j, "guidance_scale")->valuedouble;
    c->seed = (uint64_t)cJSON_GetArrayItem(cJSON_GetObjectItem(j, "seeds"), 0)->valuedouble;
    c->clip_skip = cJSON_GetObjectItem(j, "clip_skip")->valueint;
    c->calls = cJSON_GetObjectItem(j, "num_unet_calls")->valueint;
    c->pad = !strcmp(cJSON_GetObjectItem(j, "cond_uncond_length_mismatch")->valuestring, "pad_empty");
    c->tol_pos = cJSON_GetObjectItem(tol, "prompt_embeds_max_abs")->valuedouble;
    c->tol_neg = cJSON_GetObjectItem(tol, "negative_prompt_embeds_max_abs")->valuedouble;
    return c->sched && !strcmp(cJSON_GetObjectItem(j, "prompt_syntax")->valuestring, "a1111") &&
           !strcmp(cJSON_GetObjectItem(j, "emphasis")->valuestring, "Original");
}

typedef struct {
    st_writer *w;
} dump_ctx;

static void collect(void *ctx, const char *name, int is_int, int ndim, const int64_t *shape, const void *data) {
    dump_ctx *d = ctx;
    if (data) st_writer_add(d->w, name, is_int ? ST_I64 : ST_F32, ndim, shape, data);
}

/* max |mine - golden| of one tensor; INFINITY when missing or of another size */
static double diff(const st_file *mine, const st_file *gold, const char *name) {
    const st_tensor *a = st_find(mine, name), *b = st_find(gold, name);
    if (!a || !b || a->numel != b->numel) return INFINITY;
    if (b->dtype == ST_I64) {
        int64_t *x, *y;
        if (st_to_i64(a, &x)) return INFINITY;
        if (st_to_i64(b, &y)) return free(x), INFINITY;
        double d = memcmp(x, y, (size_t)a->numel * 8) ? INFINITY : 0;
        free(x), free(y);
        return d;
    }
    float *x, *y;
    if (st_to_f32(a, &x)) return INFINITY;
    if (st_to_f32(b, &y)) return free(x), INFINITY;
    double d = max_abs_diff(x, y, a->numel);
    free(x), free(y);
    return d;
}

static void run_library(const char *name) {
    a_case c;
    CHECK(load(name, &c), "cannot read case %s", name);
    sdc_model *m;
    sdc_load_options lo = {0};
    sdc_status st = sdc_model_load(&m, fixture_path("models/tiny-sd"), &lo);
    if (st) cJSON_Delete(c.j);
    CHECK(!st, "load: %s", sdc_last_error());
    sdc_request r;
    sdc_request_init(&r);
    const char *pos[1] = {c.prompt}, *neg[1] = {c.negative};
    r.prompts = pos, r.nprompts = 1, r.negative_prompts = neg, r.nnegative = 1;
    r.seed = c.seed, r.steps = c.steps, r.guidance = c.g, r.width = c.W, r.height = c.H, r.scheduler = c.sched;
    r.prompt_syntax = "a1111", r.clip_skip = c.clip_skip, r.pad_cond_uncond = c.pad;
    dump_ctx d = {.w = st_writer_new()};
    r.dump = collect, r.dump_ctx = &d;
    sdc_image *imgs = NULL;
    int n = 0;
    st = sdc_generate(m, &r, &imgs, &n);
    char mp[512];
    snprintf(mp, sizeof mp, "%s", tmp_path(name));
    if (!st) st = st_writer_save(d.w, mp);
    st_writer_free(d.w);
    sdc_images_free(imgs, n);
    sdc_model_free(m);
    if (st) cJSON_Delete(c.j);
    CHECK(!st, "generate: %s", sdc_last_error());
    st_file mine, gold;
    st = st_open(&mine, mp);
    if (st) cJSON_Delete(c.j);
    CHECK(!st, "%s", sdc_last_error());
    st = st_open(&gold, case_path(name, ".safetensors"));
    if (st) st_close(&mine), cJSON_Delete(c.j);
    CHECK(!st, "%s", sdc_last_error());
    struct {
        char name[40];
        double tol;
    } k[64] = {
        {"input_ids", 0},
        {"multipliers", 0},
        {"uncond_input_ids", 0},
        {"uncond_multipliers", 0},
        {"timesteps", 1e-6},
        {"noise", 0},
        {"latents_0", 0},
        {"prompt_embeds", c.tol_pos},
        {"negative_prompt_embeds", c.tol_neg},
        {"prompt_embeds_padded", c.tol_pos},
        {"negative_prompt_embeds_padded", c.tol_neg},
        {"decoded", 1e-4},
        {"image", 1e-4},
    };
    int nk = 13;
    for (int i = 1; i <= c.calls && nk + 3 <= 64; i++) { /* every UNet call, the guidance mix, the step */
        snprintf(k[nk].name, sizeof k[nk].name, "unet_out_%d", i), k[nk++].tol = 1e-4;
        snprintf(k[nk].name, sizeof k[nk].name, "noise_pred_%d", i), k[nk++].tol = 1e-4;
        snprintf(k[nk].name, sizeof k[nk].name, "latents_%d", i), k[nk++].tol = 5e-4;
    }
    cJSON_Delete(c.j);
    int compared = 0, bad = 0;
    char what[160] = "";
    for (int i = 0; i < nk; i++) {
        if (!st_find(&gold, k[i].name)) continue;
        double dd = diff(&mine, &gold, k[i].name);
        if (verbose()) printf("     %s: %s diff %.3g\n", name, k[i].name, dd);
        if (!(dd <= k[i].tol) && !bad++)
            snprintf(what, sizeof what, "%s differs by %g (tolerance %g)", k[i].name, dd, k[i].tol);
        compared++;
    }
    st_close(&mine), st_close(&gold);
    CHECK(!bad, "%s: %d tensors off, first %s", name, bad, what);
    CHECK(compared >= 20, "%s: only %d tensors compared", name, compared);
}

/* build/sdc with the case's flags: the PNG within 2/255 of the golden, its
 * infotext A1111's (no "Prompt syntax: plain"; "Pad conds" when padded) */
static void run_cli(const char *name) {
    a_case c;
    CHECK(load(name, &c), "cannot read case %s", name);
    char cmd[4096], out[512];
    snprintf(out, sizeof out, "%s.png", tmp_path(name));
    snprintf(cmd, sizeof cmd,
             "%s generate --quiet -m '%s' --prompt-syntax a1111 --clip-skip %d%s --seed %llu --steps %d --guidance %g "
             "-W %d -H %d --scheduler %s -p \"%s\" -n \"%s\" -o '%s'",
             sdc_binary(), fixture_path("models/tiny-sd"), c.clip_skip, c.pad ? " --pad-cond-uncond" : "",
             (unsigned long long)c.seed, c.steps, (double)c.g, c.W, c.H, c.sched, c.prompt, c.negative, out);
    int pad = c.pad;
    cJSON_Delete(c.j);
    char log[2048];
    int rc = run_cmd(cmd, log, sizeof log);
    CHECK(rc == 0, "command failed (%d): %s\n%s", rc, cmd, log);
    uint8_t *a, *b;
    int aw, ah, bw, bh;
    char *params = NULL;
    CHECK_OK(png_read_rgb(out, &a, &aw, &ah, &params));
    sdc_status st = png_read_rgb(case_path(name, "_0.png"), &b, &bw, &bh, NULL);
    if (st) free(a), free(params);
    CHECK(!st, "%s", sdc_last_error());
    int worst = aw == bw && ah == bh ? 0 : 999;
    for (int64_t i = 0; worst < 999 && i < (int64_t)aw * ah * 3; i++) {
        int d = abs((int)a[i] - (int)b[i]);
        if (d > worst) worst = d;
    }
    int info_ok = params && !strstr(params, "Prompt syntax") && !strstr(params, "Pad conds") == !pad;
    free(a), free(b), free(params);
    if (verbose()) printf("     %s: max pixel difference %d/255\n", name, worst);
    CHECK(worst <= 2, "%s: max pixel difference %d/255", name, worst);
    CHECK(info_ok, "%s: the infotext does not say what ran", name);
}

#define A1111_CASE(id, name)                                                                                           \
    TEST(a1111_case_##id##_library) { run_library(name); }                                                             \
    TEST(a1111_case_##id##_cli_png) { run_cli(name); }

A1111_CASE(long_pndm, "a1111-long-pndm")
A1111_CASE(long_padcond, "a1111-long-padcond")
A1111_CASE(break_ddim_skip2, "a1111-break-ddim-skip2")
A1111_CASE(weights_pndm, "a1111-weights-pndm")

/* `sdc dataset --prompt-syntax a1111`: a1111-weights-pndm's prompt as a
 * JSONL line gives its golden image; the syntax is part of the data set's
 * identity (a plain run into the same folder is refused, naming it) */
TEST(a1111_dataset_case_and_identity) {
    a_case c;
    const char *name = "a1111-weights-pndm";
    CHECK(load(name, &c), "cannot read case %s", name);
    char dir[600], pf[600], cmd[4096], log[2048];
    snprintf(dir, sizeof dir, "%s", tmp_path("a1111-dataset"));
    snprintf(pf, sizeof pf, "%s", tmp_path("a1111-prompts.jsonl"));
    cJSON *line = cJSON_CreateObject();
    cJSON_AddStringToObject(line, "prompt", c.prompt);
    cJSON_AddStringToObject(line, "negative_prompt", c.negative);
    char *js = cJSON_PrintUnformatted(line);
    FILE *f = fopen(pf, "wb");
    if (f) fprintf(f, "%s\n", js), fclose(f);
    free(js);
    cJSON_Delete(line);
    int o = snprintf(cmd, sizeof cmd,
                     "env -u SLURM_ARRAY_TASK_ID -u JOB_COMPLETION_INDEX %s dataset -m '%s' --prompts '%s' --out '%s' "
                     "--quiet --seed %llu --steps %d --guidance %g -W %d -H %d --scheduler %s --prompt-syntax a1111",
                     sdc_binary(), fixture_path("models/tiny-sd"), pf, dir, (unsigned long long)c.seed, c.steps,
                     (double)c.g, c.W, c.H, c.sched);
    cJSON_Delete(c.j);
    CHECK(f != NULL, "cannot write %s", pf);
    int rc = run_cmd(cmd, log, sizeof log);
    CHECK(rc == 0, "dataset failed (%d): %s", rc, log);
    char img[700];
    snprintf(img, sizeof img, "%s/train/00000000.png", dir);
    uint8_t *a, *b;
    int aw, ah, bw, bh;
    CHECK_OK(png_read_rgb(img, &a, &aw, &ah, NULL));
    sdc_status st = png_read_rgb(case_path(name, "_0.png"), &b, &bw, &bh, NULL);
    if (st) free(a);
    CHECK(!st, "%s", sdc_last_error());
    int worst = aw == bw && ah == bh ? 0 : 999;
    for (int64_t i = 0; worst < 999 && i < (int64_t)aw * ah * 3; i++)
        if (abs((int)a[i] - (int)b[i]) > worst) worst = abs((int)a[i] - (int)b[i]);
    free(a), free(b);
    if (verbose()) printf("     dataset image: max pixel difference %d/255\n", worst);
    CHECK(worst <= 2, "the data set's image differs from the golden by %d/255", worst);
    snprintf(cmd + o - (int)strlen("a1111"), sizeof cmd - (size_t)(o - (int)strlen("a1111")), "plain");
    rc = run_cmd(cmd, log, sizeof log);
    CHECK(rc != 0 && strstr(log, "prompt_syntax"), "a plain run into the a1111 folder (%d): %s", rc, log);
}

/* SDXL with A1111's syntax: a plain prompt of one chunk is conditioned as
 * diffusers does (both encoders' penultimate layers, the second's pooled
 * output of the chunk, a "" negative as zeros), so the sdxl-euler-cfg case
 * (tests/fixtures) comes out the same, ids of both tokenizers included */
TEST(a1111_sdxl_plain_prompt_equals_diffusers) {
    cJSON *j;
    CHECK_OK(json_load(fixture_path("cases/sdxl-euler-cfg.json"), &j));
    sdc_model *m;
    sdc_load_options lo = {0};
    sdc_status st = sdc_model_load(&m, fixture_path("models/tiny-sdxl"), &lo);
    if (st) cJSON_Delete(j);
    CHECK(!st, "load: %s", sdc_last_error());
    const char *pos[1] = {cJSON_GetArrayItem(cJSON_GetObjectItem(j, "prompt"), 0)->valuestring};
    sdc_request r;
    sdc_request_init(&r);
    r.prompts = pos, r.nprompts = 1, r.prompt_syntax = "a1111", r.scheduler = "euler";
    r.seed = (uint64_t)cJSON_GetArrayItem(cJSON_GetObjectItem(j, "seeds"), 0)->valuedouble;
    r.steps = cJSON_GetObjectItem(j, "num_inference_steps")->valueint;
    r.guidance = (float)cJSON_GetObjectItem(j, "guidance_scale")->valuedouble;
    r.width = cJSON_GetObjectItem(j, "width")->valueint, r.height = cJSON_GetObjectItem(j, "height")->valueint;
    dump_ctx d = {.w = st_writer_new()};
    r.dump = collect, r.dump_ctx = &d;
    sdc_image *imgs = NULL;
    int n = 0;
    st = sdc_generate(m, &r, &imgs, &n);
    cJSON_Delete(j);
    char mp[512];
    snprintf(mp, sizeof mp, "%s", tmp_path("a1111-sdxl"));
    if (!st) st = st_writer_save(d.w, mp);
    st_writer_free(d.w);
    sdc_images_free(imgs, n);
    sdc_model_free(m);
    CHECK(!st, "generate: %s", sdc_last_error());
    st_file mine, gold;
    CHECK_OK(st_open(&mine, mp));
    st = st_open(&gold, fixture_path("cases/sdxl-euler-cfg.safetensors"));
    if (st) st_close(&mine);
    CHECK(!st, "%s", sdc_last_error());
    static const struct {
        const char *name;
        double tol;
    } k[] = {{"input_ids", 0},
             {"input_ids_2", 0},
             {"prompt_embeds", 1e-5},
             {"pooled_prompt_embeds", 1e-5},
             {"negative_prompt_embeds", 0},
             {"negative_pooled_prompt_embeds", 0},
             {"add_time_ids", 0},
             {"image", 1e-4}};
    int bad = -1;
    double worst = 0;
    for (size_t i = 0; i < sizeof k / sizeof k[0] && bad < 0; i++) {
        double dd = diff(&mine, &gold, k[i].name);
        if (verbose()) printf("     sdxl-euler-cfg (a1111): %s diff %.3g\n", k[i].name, dd);
        if (!(dd <= k[i].tol)) bad = (int)i, worst = dd;
    }
    st_close(&mine), st_close(&gold);
    CHECK(bad < 0, "%s differs by %g", k[bad < 0 ? 0 : bad].name, worst);
}

/* one SDXL run's first UNet call, rows [uncond, cond] */
static sdc_status sdxl_first_call(sdc_model *m, const char *prompt, const char *negative, float **out, int64_t *n) {
    sdc_request r;
    sdc_request_init(&r);
    const char *pos[1] = {prompt}, *neg[1] = {negative};
    r.prompts = pos, r.nprompts = 1, r.negative_prompts = neg, r.nnegative = 1;
    r.prompt_syntax = "a1111", r.scheduler = "euler", r.seed = 3, r.steps = 1, r.guidance = 5, r.width = 64,
    r.height = 64;
    dump_ctx d = {.w = st_writer_new()};
    r.dump = collect, r.dump_ctx = &d;
    sdc_image *imgs = NULL;
    int k = 0;
    sdc_status st = sdc_generate(m, &r, &imgs, &k);
    sdc_images_free(imgs, k);
    char p[512];
    snprintf(p, sizeof p, "%s", tmp_path("sdxl-split"));
    if (!st) st = st_writer_save(d.w, p);
    st_writer_free(d.w);
    st_file f;
    if (!st && !(st = st_open(&f, p))) {
        *out = golden_f32(&f, "unet_out_1", n);
        st_close(&f);
        if (!*out) st = sdc_fail(SDC_ERR_FORMAT, "no unet_out_1 dumped");
    }
    return st;
}

/* Halves of different lengths run apart (A1111's default) with each its own
 * pooled output and time ids: each half of the split call equals that half
 * of a batched run whose two prompts both have its length */
TEST(a1111_sdxl_split_halves_equal_batched_halves) {
    sdc_model *m;
    sdc_load_options lo = {0};
    CHECK_OK(sdc_model_load(&m, fixture_path("models/tiny-sdxl"), &lo));
    const char *lng = "a red fox in the snow, (oil painting:1.2) BREAK a blue lake under the moon", *shrt = "blurry";
    float *split = NULL, *neg_only = NULL, *pos_only = NULL;
    int64_t n0 = 0, n1 = 0, n2 = 0;
    sdc_status st = sdxl_first_call(m, lng, shrt, &split, &n0);
    if (!st) st = sdxl_first_call(m, shrt, shrt, &neg_only, &n1);
    if (!st) st = sdxl_first_call(m, lng, lng, &pos_only, &n2);
    sdc_model_free(m);
    int64_t half = n0 / 2;
    double du = !st && n0 == n1 && n0 == n2 ? max_abs_diff(split, neg_only, half) : INFINITY;
    double dc = !st && n0 == n1 && n0 == n2 ? max_abs_diff(split + half, pos_only + half, half) : INFINITY;
    free(split), free(neg_only), free(pos_only);
    CHECK(!st, "%s", sdc_last_error());
    if (verbose()) printf("     split vs batched: uncond half %.3g, cond half %.3g\n", du, dc);
    CHECK(du <= 1e-5 && dc <= 1e-5, "split halves differ from batched ones by %g (uncond) / %g (cond)", du, dc);
}
