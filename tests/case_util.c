/* case_util.c - golden case files as requests, and comparisons with their
 * tensors and PNGs (case_util.h). */
#include "case_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "family/model.h"
#include "golden.h"
#include "harness.h"
#include "io/json.h"
#include "nn/unet.h"

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
