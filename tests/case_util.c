/* case_util.c - golden case files as requests, and comparisons with their
 * tensors and PNGs (case_util.h). */
#include "case_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "family/model.h"
#include "golden.h"
#include "harness.h"
#include "io/json.h"
#include "io/png_io.h"
#include "nn/unet.h"
#include "nn/unet_runner.h"
#include "text/clip_text_runner.h"

static int verbose(void) { return getenv("SDC_TEST_VERBOSE") != NULL; }

/* the --scheduler name of a case's diffusers class and overrides: the
 * classes' own rows, DPMSolverMultistep by its algorithm_type override */
static const struct {
    const char *cls, *algorithm, *name;
} k_sched_names[] = {
    {"PNDMScheduler", NULL, "pndm"},
    {"DDIMScheduler", NULL, "ddim"},
    {"EulerDiscreteScheduler", NULL, "euler"},
    {"EulerAncestralDiscreteScheduler", NULL, "euler_a"},
    {"DPMSolverMultistepScheduler", NULL, "dpmpp_2m"},
    {"DPMSolverMultistepScheduler", "sde-dpmsolver++", "dpmpp_2m_sde"},
    {"DPMSolverSinglestepScheduler", NULL, "dpmpp_2s"},
    {"UniPCMultistepScheduler", NULL, "unipc"},
    {"DEISMultistepScheduler", NULL, "deis"},
    {"LCMScheduler", NULL, "lcm"},
    {"TCDScheduler", NULL, "tcd"},
    {"HeunDiscreteScheduler", NULL, "heun"},
    {"KDPM2DiscreteScheduler", NULL, "dpm2"},
    {"KDPM2AncestralDiscreteScheduler", NULL, "dpm2_a"},
    {"LMSDiscreteScheduler", NULL, "lms"},
};

static const char *sched_name(const char *cls, const char *algorithm) {
    for (size_t i = 0; i < sizeof k_sched_names / sizeof k_sched_names[0]; i++)
        if (!strcmp(k_sched_names[i].cls, cls) &&
            (!k_sched_names[i].algorithm == !algorithm &&
             (!algorithm || !strcmp(k_sched_names[i].algorithm, algorithm))))
            return k_sched_names[i].name;
    return NULL;
}

static int fail_load(case_req *c, const char *name, const char *why) {
    fprintf(stderr, "case %s: %s\n", name, why);
    cJSON_Delete(c->j);
    c->j = NULL;
    return 0;
}

int case_load(const char *dir, const char *name, case_req *c) {
    char p[256];
    memset(c, 0, sizeof *c);
    snprintf(c->dir, sizeof c->dir, "%s", dir);
    snprintf(p, sizeof p, "%scases/%s.json", dir, name);
    if (json_load(fixture_path(p), &c->j)) return 0;
    cJSON *j = c->j, *s = cJSON_GetObjectItem(j, "scheduler"), *ov = cJSON_GetObjectItem(s, "overrides");
    const char *model = cJSON_GetObjectItem(j, "model")->valuestring;
    snprintf(c->model, sizeof c->model, "%s%s", dir, model);
    const cJSON *sf = cJSON_GetObjectItem(j, "single_file");
    if (cJSON_IsString(sf)) { /* the weights come from the single file, the rest from the folder */
        snprintf(c->config_dir, sizeof c->config_dir, "%s", fixture_path(c->model));
        snprintf(c->model, sizeof c->model, "%s%s", dir, sf->valuestring);
    }
    const cJSON *v = cJSON_GetObjectItem(j, "unet_variant");
    c->variant = cJSON_IsString(v) ? v->valuestring : NULL;
    /* every override must be one the command line can say */
    const cJSON *o, *algorithm = NULL;
    cJSON_ArrayForEach(o, ov) {
        if (!strcmp(o->string, "timestep_spacing") && cJSON_IsString(o)) c->spacing = o->valuestring;
        else if (!strcmp(o->string, "use_karras_sigmas") && cJSON_IsBool(o)) c->karras = cJSON_IsTrue(o) ? 1 : 0;
        else if (!strcmp(o->string, "algorithm_type") && cJSON_IsString(o)) algorithm = o;
        else return fail_load(c, name, "an override the runner does not know");
    }
    if (!cJSON_GetObjectItem(ov, "use_karras_sigmas")) c->karras = -1;
    else if (!c->karras) return fail_load(c, name, "use_karras_sigmas false as an override");
    c->sched = sched_name(cJSON_GetObjectItem(s, "class")->valuestring, algorithm ? algorithm->valuestring : NULL);
    if (!c->sched) return fail_load(c, name, "a scheduler class the runner does not know");
    const cJSON *a;
    cJSON_ArrayForEach(a, cJSON_GetObjectItem(j, "prompt")) if (c->np < 8) c->prompts[c->np++] = a->valuestring;
    cJSON_ArrayForEach(a, cJSON_GetObjectItem(j, "negative_prompt")) if (c->nn < 8) c->negs[c->nn++] = a->valuestring;
    c->seed = (uint64_t)cJSON_GetArrayItem(cJSON_GetObjectItem(j, "seeds"), 0)->valuedouble;
    c->steps = cJSON_GetObjectItem(j, "num_inference_steps")->valueint;
    c->g = (float)cJSON_GetObjectItem(j, "guidance_scale")->valuedouble;
    c->W = cJSON_GetObjectItem(j, "width")->valueint;
    c->H = cJSON_GetObjectItem(j, "height")->valueint;
    c->eta = (float)cJSON_GetObjectItem(j, "eta")->valuedouble;
    const cJSON *fused = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "checks"), "lora_modules_fused");
    cJSON_ArrayForEach(a, cJSON_GetObjectItem(j, "loras")) {
        if (c->nloras == 4) return fail_load(c, name, "more than 4 LoRAs");
        char rel[512];
        snprintf(rel, sizeof rel, "%s%s", dir, cJSON_GetObjectItem(a, "path")->valuestring);
        snprintf(c->lora_paths[c->nloras], sizeof c->lora_paths[0], "%s", fixture_path(rel));
        c->loras[c->nloras] = c->lora_paths[c->nloras];
        c->lora_scales[c->nloras] = (float)cJSON_GetObjectItem(a, "scale")->valuedouble;
        const cJSON *k = cJSON_GetArrayItem(fused, c->nloras);
        c->lora_modules[c->nloras++] = k ? k->valueint : -1;
    }
    return c->np > 0;
}

int case_find(const char *name, case_req *c) {
    char p[256];
    snprintf(p, sizeof p, "cases/%s.json", name);
    /* the wave-1 cases, then the second set's; a missing file is not an error */
    FILE *f = fopen(fixture_path(p), "r");
    if (f) fclose(f);
    return case_load(f ? "" : "../fixtures2/", name, c);
}

const char *case_file(const case_req *c, const char *name, const char *suffix) {
    static char ring[4][512];
    static int k;
    char *b = ring[k++ & 3];
    snprintf(b, 512, "%scases/%s%s", c->dir, name, suffix);
    return b;
}

sdc_load_options case_load_options(const case_req *c) {
    sdc_load_options lo = {.variant = c->variant};
    lo.loras = c->loras, lo.lora_scales = c->lora_scales, lo.nloras = c->nloras;
    lo.config_dir = c->config_dir[0] ? c->config_dir : NULL;
    return lo;
}

sdc_request case_request(const case_req *c) {
    sdc_request r;
    sdc_request_init(&r);
    r.prompts = c->prompts, r.nprompts = c->np;
    r.negative_prompts = c->nn ? c->negs : NULL, r.nnegative = c->nn;
    r.seed = c->seed, r.steps = c->steps, r.guidance = c->g, r.width = c->W, r.height = c->H, r.eta = c->eta;
    r.scheduler = c->sched, r.timestep_spacing = c->spacing, r.karras = c->karras;
    return r;
}

void case_collect(void *ctx, const char *name, int is_int, int ndim, const int64_t *shape, const void *data) {
    case_dump *d = ctx;
    if (data) st_writer_add(d->w, name, is_int ? ST_I64 : ST_F32, ndim, shape, data);
}

double case_cmp_tensor(const st_file *mine, const st_file *gold, const char *name) {
    const st_tensor *a = st_find(mine, name), *b = st_find(gold, name);
    if (!a || !b || a->numel != b->numel) return INFINITY;
    if (b->dtype == ST_I64) {
        int64_t *x, *y;
        if (st_to_i64(a, &x)) return INFINITY;
        if (st_to_i64(b, &y)) {
            free(x);
            return INFINITY;
        }
        double d = memcmp(x, y, (size_t)a->numel * 8) ? INFINITY : 0;
        free(x), free(y);
        return d;
    }
    float *x, *y;
    if (st_to_f32(a, &x)) return INFINITY;
    if (st_to_f32(b, &y)) {
        free(x);
        return INFINITY;
    }
    double d = max_abs_diff(x, y, a->numel);
    free(x), free(y);
    return d;
}

double case_tensor_scale(const st_file *gold, const char *name) {
    int64_t n;
    float *v = golden_f32(gold, name, &n);
    double m = 0;
    for (int64_t i = 0; v && i < n; i++)
        if (fabs(v[i]) > m) m = fabs(v[i]);
    free(v);
    return m;
}

double psnr8(const uint8_t *a, const uint8_t *b, int64_t n) {
    double se = 0;
    for (int64_t k = 0; k < n; k++) se += ((double)a[k] - b[k]) * ((double)a[k] - b[k]);
    return se == 0 ? INFINITY : 10.0 * log10(255.0 * 255.0 / (se / (double)n));
}

int max_pixel_diff(const uint8_t *a, const uint8_t *b, int64_t n) {
    int worst = 0;
    for (int64_t k = 0; k < n; k++) {
        int d = abs((int)a[k] - (int)b[k]);
        if (d > worst) worst = d;
    }
    return worst;
}

sdc_status case_unet_calls(const case_req *c, const char *name, double *worst, int *worst_k) {
    *worst = INFINITY, *worst_k = 0;
    sdc_model *m;
    sdc_load_options lo = case_load_options(c);
    SDC_TRY(sdc_model_load(&m, fixture_path(c->model), &lo));
    const int ncalls = cJSON_GetObjectItem(c->j, "num_unet_calls")->valueint;
    st_file g;
    sdc_status st = st_open(&g, fixture_path(case_file(c, name, ".safetensors")));
    if (st) {
        sdc_model_free(m);
        return st;
    }
    const st_tensor *pe = st_find(&g, "prompt_embeds"), *ne = st_find(&g, "negative_prompt_embeds");
    const st_tensor *tt = st_find(&g, "timesteps");
    int B = (int)pe->shape[0], T = (int)pe->shape[1], D = (int)pe->shape[2], n = ne ? 2 : 1;
    float *ctx = malloc((size_t)n * B * T * D * sizeof(float)), *ts = NULL, tv[16];
    if (ne) st_copy_f32(ne, ctx);
    st_copy_f32(pe, ctx + (size_t)(n - 1) * B * T * D);
    int64_t *ti = NULL;
    if (tt->dtype == ST_I64) st_to_i64(tt, &ti);
    else st_to_f32(tt, &ts);
    float *pooled = NULL, *tids = NULL;
    if (st_find(&g, "add_text_embeds")) {
        pooled = golden_f32(&g, "add_text_embeds", NULL);
        tids = golden_f32(&g, "add_time_ids", NULL);
    }
    unet_extra ex = {.text_embeds = pooled, .time_ids = tids};
    *worst = 0;
    for (int k = 1; k <= ncalls && !st; k++) {
        char nm[64], no[64];
        snprintf(nm, sizeof nm, "model_input_%d", k);
        snprintf(no, sizeof no, "unet_out_%d", k);
        const st_tensor *mi = st_find(&g, nm);
        int64_t nout;
        float *x1 = golden_f32(&g, nm, NULL), *ref = golden_f32(&g, no, &nout);
        int h = (int)mi->shape[2], w = (int)mi->shape[3];
        int64_t per = mi->numel;
        float *x = malloc((size_t)(n * per) * sizeof(float)), *out = malloc((size_t)nout * sizeof(float));
        for (int i = 0; i < n; i++) memcpy(x + i * per, x1, (size_t)per * sizeof(float));
        for (int i = 0; i < n * B; i++) tv[i] = ti ? (float)ti[k - 1] : ts[k - 1];
        st = unet_forward(m->unet, x, n * B, h, w, tv, ctx, T, &ex, out, NULL, NULL);
        double d = st ? INFINITY : max_abs_diff(out, ref, nout);
        if (d > *worst) *worst = d, *worst_k = k;
        free(x1), free(ref), free(x), free(out);
    }
    free(ctx), free(ts), free(ti), free(pooled), free(tids);
    st_close(&g);
    sdc_model_free(m);
    return st;
}

/* ---- the runners (test bodies) ---- */

typedef struct {
    int n, modules[4];
} lora_seen;

static void on_lora_report(void *ctx, const sdc_lora_report *r) {
    lora_seen *s = ctx;
    if (s->n < 4) s->modules[s->n] = r->modules;
    s->n++;
}

/* device NULL: the CPU; "emulated": behind the emulated device boundary */
void run_case_library_on(const case_spec *cs, const char *device) {
    case_req c;
    CHECK(case_find(cs->name, &c), "cannot read case %s", cs->name);
    sdc_model *m;
    sdc_load_options lo = case_load_options(&c);
    lo.device = device;
    lora_seen seen = {0};
    lo.lora_report = on_lora_report, lo.lora_report_ctx = &seen;
    sdc_status st = sdc_model_load(&m, fixture_path(c.model), &lo);
    if (st) cJSON_Delete(c.j);
    CHECK(st == SDC_OK, "load: %s", sdc_last_error());
    int lora_ok = seen.n == c.nloras;
    for (int i = 0; lora_ok && i < c.nloras; i++) lora_ok = seen.modules[i] == c.lora_modules[i];
    if (!lora_ok) sdc_model_free(m), cJSON_Delete(c.j);
    CHECK(lora_ok, "%s: %d LoRA reports, first with %d modules (expected %d with %d)", cs->name, seen.n,
          seen.modules[0], c.nloras, c.nloras ? c.lora_modules[0] : 0);
    sdc_request r = case_request(&c);
    case_dump d = {.w = st_writer_new()};
    r.dump = case_collect, r.dump_ctx = &d;
    sdc_image *imgs;
    int n;
    st = sdc_generate(m, &r, &imgs, &n);
    char gp[256], mp[256];
    snprintf(mp, sizeof mp, "%s", tmp_path(cs->name));
    if (!st) st = st_writer_save(d.w, mp);
    st_writer_free(d.w);
    /* every activation buffer came back: none but the ones the kept runners hold */
    unet_runner_free(m->unet_run), clip_runner_free(m->te_run[0]), clip_runner_free(m->te_run[1]);
    m->unet_run = NULL, m->te_run[0] = m->te_run[1] = NULL;
    int64_t left = op_live_allocations(m->cx);
    sdc_model_free(m);
    if (left) cJSON_Delete(c.j);
    CHECK(!left, "%s: %lld activation buffers left", cs->name, (long long)left);
    int ncalls = cJSON_GetObjectItem(c.j, "num_unet_calls")->valueint;
    cJSON_Delete(c.j);
    CHECK(st == SDC_OK, "generate: %s", sdc_last_error());
    sdc_images_free(imgs, n);
    snprintf(gp, sizeof gp, "%s", case_file(&c, cs->name, ".safetensors"));
    st_file mine, gold;
    CHECK_OK(st_open(&mine, mp));
    CHECK_OK(st_open(&gold, fixture_path(gp)));
    char last[32], first_pred[32];
    snprintf(last, sizeof last, "latents_%d", ncalls);
    snprintf(first_pred, sizeof first_pred, "noise_pred_1");
    struct {
        const char *name;
        double tol;
    } checks[] = {
        {"input_ids", 0},
        {"uncond_input_ids", 0},
        {"input_ids_2", 0},
        {"timesteps", 1e-6},
        {"noise", 0},
        {"latents_0", 0},
        {"prompt_embeds", 1e-5},
        {"negative_prompt_embeds", 1e-5},
        {"pooled_prompt_embeds", 1e-5},
        {"add_time_ids", 0},
        {first_pred, 5e-5},
        {last, cs->latents_tol},
        {"decoded", cs->decoded_tol},
        {"image", cs->image_tol},
    };
    int compared = 0;
    for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
        if (!st_find(&gold, checks[i].name)) continue;
        double diff = case_cmp_tensor(&mine, &gold, checks[i].name);
        if (verbose()) printf("     %s: %s diff %.3g\n", cs->name, checks[i].name, diff);
        if (!(diff <= checks[i].tol)) {
            st_close(&mine), st_close(&gold);
            CHECK(0, "%s: %s differs by %g (tolerance %g)", cs->name, checks[i].name, diff, checks[i].tol);
        }
        compared++;
    }
    st_close(&mine), st_close(&gold);
    CHECK(compared >= 8, "%s: only %d tensors compared", cs->name, compared);
}

/* device NULL: the CPU, within 2/255 of the golden PNG everywhere; "cuda":
 * f16 on the GPU, PSNR >= 35 dB against it (skipped without a GPU) */
void run_case_cli_on(const case_spec *cs, const char *device) {
    case_req c;
    CHECK(case_find(cs->name, &c), "cannot read case %s", cs->name);
    char cmd[4096], out[512];
    snprintf(out, sizeof out, "%s", tmp_path(cs->name));
    int o = snprintf(cmd, sizeof cmd,
                     "%s generate --quiet -m %s --seed %llu --steps %d --guidance %g -W %d -H %d "
                     "--scheduler %s --eta %g -o '%s-{index}.png'",
                     sdc_binary(), fixture_path(c.model), (unsigned long long)c.seed, c.steps, (double)c.g, c.W, c.H,
                     c.sched, (double)c.eta, out);
    if (c.variant) o += snprintf(cmd + o, sizeof cmd - (size_t)o, " --variant %s", c.variant);
    if (c.spacing) o += snprintf(cmd + o, sizeof cmd - (size_t)o, " --timestep-spacing %s", c.spacing);
    if (c.karras == 1) o += snprintf(cmd + o, sizeof cmd - (size_t)o, " --karras");
    if (c.config_dir[0]) o += snprintf(cmd + o, sizeof cmd - (size_t)o, " --config '%s'", c.config_dir);
    for (int i = 0; i < c.nloras; i++)
        o += snprintf(cmd + o, sizeof cmd - (size_t)o, " --lora '%s:%g'", c.loras[i], (double)c.lora_scales[i]);
    for (int i = 0; i < c.np; i++) o += snprintf(cmd + o, sizeof cmd - (size_t)o, " -p \"%s\"", c.prompts[i]);
    for (int i = 0; i < c.nn; i++) o += snprintf(cmd + o, sizeof cmd - (size_t)o, " -n \"%s\"", c.negs[i]);
    if (device) o += snprintf(cmd + o, sizeof cmd - (size_t)o, " --device %s", device);
    int np = c.np;
    cJSON_Delete(c.j);
    char log[2048];
    int rc = run_cmd(cmd, log, sizeof log);
    if (device && rc == 1 && (strstr(log, "no CUDA device") || strstr(log, "no CUDA support"))) SKIP("%s", log);
    CHECK(rc == 0, "command failed (%d): %s\n%s", rc, cmd, log);
    for (int i = 0; i < np; i++) {
        char mine[600], gold[256];
        snprintf(mine, sizeof mine, "%s-%d.png", out, i);
        snprintf(gold, sizeof gold, "%scases/%s_%d.png", c.dir, cs->name, i);
        uint8_t *a, *b;
        int aw, ah, bw, bh;
        char *params;
        CHECK_OK(png_read_rgb(mine, &a, &aw, &ah, &params));
        CHECK_OK(png_read_rgb(fixture_path(gold), &b, &bw, &bh, NULL));
        int worst = aw == bw && ah == bh ? 0 : 999;
        for (int64_t k = 0; worst < 999 && k < (int64_t)aw * ah * 3; k++) {
            int d = abs((int)a[k] - (int)b[k]);
            if (d > worst) worst = d;
        }
        double psnr = worst < 999 ? psnr8(a, b, (int64_t)aw * ah * 3) : 0;
        int has_params = params && strstr(params, "Steps: ") && strstr(params, "Seed: ");
        free(a), free(b), free(params);
        if (device) {
            if (verbose())
                printf("     %s image %d on %s: PSNR %.1f dB, max difference %d/255\n", cs->name, i, device, psnr,
                       worst);
            CHECK(psnr >= 35.0, "%s image %d on %s: PSNR %.1f dB < 35", cs->name, i, device, psnr);
            continue;
        }
        if (verbose()) printf("     %s image %d: max pixel difference %d/255\n", cs->name, i, worst);
        CHECK(worst <= 2, "%s image %d: max pixel difference %d/255", cs->name, i, worst);
        CHECK(has_params, "%s: PNG lacks the parameters infotext", cs->name);
    }
}
