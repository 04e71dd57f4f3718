/* test_schedulers.c - schedulers against diffusers 0.30.3 goldens: unit
 * trajectories (units/schedulers.*), the end-to-end cases' schedules and
 * scheduler steps (teacher-forced with the golden noise_pred), from_config
 * key carry-over, and bad input. */
#include <ctype.h>
#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "rng/torch_rng.h"
#include "sched/sched_internal.h"
#include "sched/scheduler.h"

/* ---------- helpers ---------- */

typedef struct {
    double max_abs, max_rel;
    int64_t count, exact;
} err_stats;

static err_stats g_unit_err, g_case_err;

/* |a - b| <= atol + rtol * |b|; returns the first failing index or -1 */
static int64_t compare(const float *got, const float *ref, int64_t n, double rtol, double atol, err_stats *es) {
    int64_t bad = -1;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)ref[i]);
        if (es) {
            es->count++;
            es->exact += d == 0;
            if (d > es->max_abs) es->max_abs = d;
            double r = d / (fabs((double)ref[i]) + 1e-30);
            if (fabs((double)ref[i]) > 1e-3 && r > es->max_rel) es->max_rel = r;
        }
        if (!(d <= atol + rtol * fabs((double)ref[i])) && bad < 0) bad = i;
    }
    return bad;
}

/* golden float tensor (any float dtype) or NULL */
static float *gf(const st_file *f, const char *name, int64_t *numel) {
    const st_tensor *t = st_find(f, name);
    if (!t) return NULL;
    float *o = NULL;
    if (t->dtype == ST_I64 || t->dtype == ST_I32) {
        int64_t *v;
        if (st_to_i64(t, &v)) return NULL;
        o = malloc((size_t)(t->numel ? t->numel : 1) * sizeof(float));
        for (int64_t i = 0; o && i < t->numel; i++) o[i] = (float)v[i];
        free(v);
    } else if (st_to_f32(t, &o)) {
        return NULL;
    }
    if (numel) *numel = t->numel;
    return o;
}

static int verbose(void) { return getenv("SDC_TEST_VERBOSE") ? atoi(getenv("SDC_TEST_VERBOSE")) : 0; }

/* the registry row of a sampler name */
static const sched_def *def_of(const char *name) { return sched_find(name, NULL); }

/* a key of the sampler's own options (sched_config_value): number or bool as a
 * double, NAN when absent; string compared with want */
static double opt_num(const sched_config *c, const char *key) {
    cJSON *v = sched_config_value(c, key);
    double d = cJSON_IsBool(v) ? (double)cJSON_IsTrue(v) : cJSON_IsNumber(v) ? v->valuedouble : NAN;
    cJSON_Delete(v);
    return d;
}
static int opt_str_is(const sched_config *c, const char *key, const char *want) {
    cJSON *v = sched_config_value(c, key);
    int eq = cJSON_IsString(v) && !strcmp(v->valuestring, want);
    cJSON_Delete(v);
    return eq;
}

/* ---------- alphas_cumprod ---------- */

TEST(sched_alphas_cumprod_exact) {
    st_file f;
    CHECK_OK(st_open(&f, fixture_path("units/schedulers.safetensors")));
    int64_t n;
    float *ref = gf(&f, "alphas_cumprod", &n);
    CHECK(ref && n == 1000, "alphas_cumprod missing");
    cJSON *j = cJSON_Parse("{\"num_train_timesteps\":1000,\"beta_start\":0.00085,\"beta_end\":0.012,"
                           "\"beta_schedule\":\"scaled_linear\"}");
    CHECK(sched_count() >= 7, "%d samplers", sched_count());
    for (int k = 0; k < sched_count(); k++) {
        const char *name = sched_info(sched_at(k))->name;
        sched_config c;
        CHECK_OK(sched_config_from_json(j, name, &c));
        sdc_scheduler *s;
        CHECK_OK(sched_create(&s, &c, 10));
        int na;
        const float *ac = sched_alphas_cumprod(s, &na);
        int ok = na == 1000 && !memcmp(ac, ref, 1000 * sizeof(float));
        int first = -1;
        for (int i = 0; i < na && first < 0; i++)
            if (ac[i] != ref[i]) first = i;
        sched_free(s);
        CHECK(ok, "%s: alphas_cumprod differs from torch's (first at %d)", name, first);
    }
    /* linear schedule: the same torch linspace kernel */
    cJSON_Delete(j);
    free(ref);
    st_close(&f);
}

/* ---------- unit trajectories ---------- */

typedef struct {
    char what[256];
} fail_msg;

static int run_unit_variant(const st_file *f, const char *vname, const cJSON *var, int steps, double tcd_eta,
                            fail_msg *fm) {
    const char *cls = cJSON_GetStringValue(cJSON_GetObjectItem(var, "class"));
    const cJSON *cfgj = cJSON_GetObjectItem(var, "config_passed");
    char key[256], runkey[16];
    snprintf(runkey, sizeof runkey, "%d", steps);
    const cJSON *run = cJSON_GetObjectItem(cJSON_GetObjectItem(var, "runs"), runkey);
    if (!cls || !cfgj || !run) {
        snprintf(fm->what, sizeof fm->what, "%s: malformed schedulers.json entry", vname);
        return 0;
    }
    sched_config c;
    if (sched_config_from_json(cfgj, cls, &c)) {
        snprintf(fm->what, sizeof fm->what, "%s: config: %s", vname, sdc_last_error());
        return 0;
    }
    sdc_scheduler *s;
    if (sched_create(&s, &c, steps)) {
        snprintf(fm->what, sizeof fm->what, "%s.%d: create: %s", vname, steps, sdc_last_error());
        return 0;
    }
    int ok = 0, calls = sched_num_calls(s);
    float *ref_x = NULL, *ref_mi = NULL, *ref_eps = NULL, *ref_x0 = NULL, *start = NULL, *sig = NULL;
    int64_t *ts = NULL;
    const int P = 64; /* (1, 4, 4, 4) */
    do {
        int want_calls = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(run, "num_model_calls"));
        if (calls != want_calls) {
            snprintf(fm->what, sizeof fm->what, "%s.%d: %d calls, diffusers makes %d", vname, steps, calls, want_calls);
            break;
        }
        float want_sigma0 = (float)cJSON_GetNumberValue(cJSON_GetObjectItem(run, "init_noise_sigma"));
        if (sched_init_noise_sigma(s) != want_sigma0) {
            snprintf(fm->what, sizeof fm->what, "%s.%d: init_noise_sigma %.9g, diffusers %.9g", vname, steps,
                     (double)sched_init_noise_sigma(s), (double)want_sigma0);
            break;
        }
        /* timesteps: exact */
        snprintf(key, sizeof key, "%s.%d.timesteps", vname, steps);
        const st_tensor *tt = st_find(f, key);
        if (!tt || tt->numel != calls) {
            snprintf(fm->what, sizeof fm->what, "%s: missing or wrong length", key);
            break;
        }
        int bad_t = -1;
        if (tt->dtype == ST_F32) {
            if (!sched_timesteps_are_float(s)) {
                snprintf(fm->what, sizeof fm->what, "%s: diffusers timesteps are float32", key);
                break;
            }
            float *tf = gf(f, key, NULL);
            for (int i = 0; i < calls && bad_t < 0; i++)
                if ((float)sched_timestep(s, i) != tf[i]) bad_t = i;
            if (bad_t >= 0)
                snprintf(fm->what, sizeof fm->what, "%s[%d] = %.9g, diffusers %.9g", key, bad_t,
                         sched_timestep(s, bad_t), (double)tf[bad_t]);
            free(tf);
        } else {
            if (st_to_i64(tt, &ts)) break;
            for (int i = 0; i < calls && bad_t < 0; i++)
                if (sched_timestep(s, i) != (double)ts[i]) bad_t = i;
            if (bad_t >= 0)
                snprintf(fm->what, sizeof fm->what, "%s[%d] = %g, diffusers %lld", key, bad_t, sched_timestep(s, bad_t),
                         (long long)ts[bad_t]);
        }
        if (bad_t >= 0) break;
        /* sigmas: 1e-6 relative */
        snprintf(key, sizeof key, "%s.%d.sigmas", vname, steps);
        int64_t nsig = 0;
        sig = gf(f, key, &nsig);
        int ns;
        const double *mys = sched_sigmas(s, &ns);
        if (!!sig != !!mys) {
            snprintf(fm->what, sizeof fm->what, "%s: sigma-based mismatch (golden %s, sdc %s)", key, sig ? "has" : "none",
                     mys ? "has" : "none");
            break;
        }
        if (sig) {
            if (ns != nsig) {
                snprintf(fm->what, sizeof fm->what, "%s: %d sigmas, diffusers %lld", key, ns, (long long)nsig);
                break;
            }
            int bs = -1;
            for (int i = 0; i < ns && bs < 0; i++)
                if (!(fabs(mys[i] - (double)sig[i]) <= 1e-6 * fabs((double)sig[i]))) bs = i;
            if (bs >= 0) {
                snprintf(fm->what, sizeof fm->what, "%s[%d] = %.9g, diffusers %.9g", key, bs, mys[bs], (double)sig[bs]);
                break;
            }
        }
        /* trajectory */
        snprintf(key, sizeof key, "%s.%d.start", vname, steps);
        start = gf(f, key, NULL);
        snprintf(key, sizeof key, "%s.%d.x", vname, steps);
        ref_x = gf(f, key, NULL);
        snprintf(key, sizeof key, "%s.%d.model_input", vname, steps);
        ref_mi = gf(f, key, NULL);
        snprintf(key, sizeof key, "%s.%d.eps", vname, steps);
        ref_eps = gf(f, key, NULL);
        const char *x0name = NULL;
        static const char *const x0names[] = {"pred_original_sample", "denoised", "pred_noised_sample"};
        for (int q = 0; q < 3 && !ref_x0; q++) {
            snprintf(key, sizeof key, "%s.%d.%s", vname, steps, x0names[q]);
            if ((ref_x0 = gf(f, key, NULL))) x0name = x0names[q];
        }
        if (!start || !ref_x || !ref_mi || !ref_eps) {
            snprintf(fm->what, sizeof fm->what, "%s.%d: trajectory tensors missing", vname, steps);
            break;
        }
        torch_gen g;
        torch_gen_seed(&g, 0);
        float x[64], mi[64], eps[64], x0[64], noise[64];
        torch_randn(&g, x, P);
        if (memcmp(x, start, sizeof x)) {
            snprintf(fm->what, sizeof fm->what, "%s.%d: start noise differs from torch.randn", vname, steps);
            break;
        }
        const float sigma0 = sched_init_noise_sigma(s);
        for (int k = 0; k < P; k++) x[k] = x[k] * sigma0;
        int64_t bad = compare(x, ref_x, P, 1e-5, 1e-6, &g_unit_err);
        if (bad >= 0) {
            snprintf(fm->what, sizeof fm->what, "%s.%d: x[0][%lld] = %.9g, diffusers %.9g", vname, steps, (long long)bad,
                     (double)x[bad], (double)ref_x[bad]);
            break;
        }
        const float eta = !strcmp(cls, "TCDScheduler") ? (float)tcd_eta : 0.0f;
        int step_ok = 1;
        for (int i = 0; i < calls && step_ok; i++) {
            memcpy(mi, x, sizeof mi);
            sched_scale_model_input(s, i, mi, P);
            const float t = (float)sched_timestep(s, i);
            for (int k = 0; k < P; k++) eps[k] = 0.1f * mi[k] + (0.01f * t) / 1000.0f;
            const char *stage = "model_input";
            bad = compare(mi, ref_mi + i * P, P, 1e-5, 1e-6, &g_unit_err);
            if (bad < 0) {
                stage = "eps";
                bad = compare(eps, ref_eps + i * P, P, 1e-5, 1e-6, &g_unit_err);
            }
            if (bad < 0) {
                if (sched_step(s, i, eps, x, 1, P, &g, eta, x0, noise)) {
                    snprintf(fm->what, sizeof fm->what, "%s.%d: step %d: %s", vname, steps, i, sdc_last_error());
                    step_ok = 0;
                    break;
                }
                if (ref_x0) {
                    stage = x0name;
                    bad = compare(x0, ref_x0 + i * P, P, 1e-5, 1e-6, &g_unit_err);
                }
            }
            if (bad < 0) {
                stage = "x";
                bad = compare(x, ref_x + (i + 1) * P, P, 1e-5, 1e-6, &g_unit_err);
            }
            if (bad >= 0) {
                const float *got = !strcmp(stage, "model_input") ? mi : !strcmp(stage, "eps") ? eps : !strcmp(stage, "x") ? x : x0;
                const float *ref = !strcmp(stage, "model_input") ? ref_mi + i * P
                                   : !strcmp(stage, "eps")       ? ref_eps + i * P
                                   : !strcmp(stage, "x")         ? ref_x + (i + 1) * P
                                                                 : ref_x0 + i * P;
                snprintf(fm->what, sizeof fm->what, "%s.%d: step %d: %s[%lld] = %.9g, diffusers %.9g", vname, steps, i,
                         stage, (long long)bad, (double)got[bad], (double)ref[bad]);
                step_ok = 0;
            }
        }
        ok = step_ok;
    } while (0);
    free(ts);
    free(sig);
    free(start);
    free(ref_x);
    free(ref_mi);
    free(ref_eps);
    free(ref_x0);
    sched_free(s);
    return ok;
}

TEST(sched_unit_goldens_all_variants) {
    cJSON *j;
    CHECK_OK(json_load(fixture_path("units/schedulers.json"), &j));
    st_file f;
    CHECK_OK(st_open(&f, fixture_path("units/schedulers.safetensors")));
    const cJSON *vars = cJSON_GetObjectItem(j, "variants");
    double tcd_eta = cJSON_GetNumberValue(cJSON_GetObjectItem(j, "tcd_eta"));
    CHECK(cJSON_IsObject(vars) && cJSON_GetArraySize(vars) >= 15, "variants missing");
    CHECK(tcd_eta == 0.3, "tcd_eta %g", tcd_eta);
    memset(&g_unit_err, 0, sizeof g_unit_err);
    int nvar = 0, nruns = 0;
    const cJSON *v;
    fail_msg fm = {""};
    int ok = 1;
    cJSON_ArrayForEach(v, vars) {
        const cJSON *runs = cJSON_GetObjectItem(v, "runs"), *r;
        nvar++;
        cJSON_ArrayForEach(r, runs) {
            int steps = atoi(r->string);
            nruns++;
            err_stats before = g_unit_err;
            memset(&g_unit_err, 0, sizeof g_unit_err);
            if (!run_unit_variant(&f, v->string, v, steps, tcd_eta, &fm)) {
                ok = 0;
                break;
            }
            if (verbose() > 1)
                fprintf(stderr, "     %-18s %2d steps: %4lld values, %4lld exact, max abs %.3g, max rel %.3g\n", v->string,
                        steps, (long long)g_unit_err.count, (long long)g_unit_err.exact, g_unit_err.max_abs,
                        g_unit_err.max_rel);
            before.count += g_unit_err.count, before.exact += g_unit_err.exact;
            if (g_unit_err.max_abs > before.max_abs) before.max_abs = g_unit_err.max_abs;
            if (g_unit_err.max_rel > before.max_rel) before.max_rel = g_unit_err.max_rel;
            g_unit_err = before;
        }
        if (!ok) break;
    }
    st_close(&f);
    cJSON_Delete(j);
    CHECK(ok, "%s", fm.what);
    CHECK(nvar == 15 && nruns == 90, "only %d variants / %d runs checked", nvar, nruns);
#if FLT_EVAL_METHOD == 0 && !defined(__clang__)
    /* sdc reproduces these bit for bit (float32 ops in torch's order, Sleef's log/exp for DPM); with a compiler that
     * contracts a*b+c into FMAs (clang's default) only the tolerance above applies */
    CHECK(g_unit_err.exact == g_unit_err.count, "%lld of %lld values not bit-exact (max abs err %.3g)",
          (long long)(g_unit_err.count - g_unit_err.exact), (long long)g_unit_err.count, g_unit_err.max_abs);
#endif
    if (verbose())
        fprintf(stderr, "     unit trajectories: %lld values (%lld bit-exact), max abs err %.3g, max rel err %.3g\n",
                (long long)g_unit_err.count, (long long)g_unit_err.exact, g_unit_err.max_abs, g_unit_err.max_rel);
}

/* ---------- from_config against the cases' effective configs ---------- */

static const char *const case_names[] = {
    "sd-pndm-cfg",    "sd-ddim-trailing", "sd-euler-a-batch",      "sd-dpmpp2m-karras",  "sd-fp16-variant",
    "sd-lcm4",        "sd-singlefile",    "sdxl-turbo-euler-a",    "sdxl-euler-cfg",     "sdxl-lora-kohya-ddim2",
    "sdxl-lora-peft-tcd1", "sdxl-tcd4-eta03", "sdxl-singlefile",
};
#define NCASES ((int)(sizeof case_names / sizeof case_names[0]))

/* from_config(file, **overrides): the file's keys with the overrides replaced */
static sdc_status case_config(const cJSON *cs, cJSON **file_out, sched_config *c) {
    const char *model = cJSON_GetStringValue(cJSON_GetObjectItem(cs, "model"));
    const cJSON *sch = cJSON_GetObjectItem(cs, "scheduler");
    const char *cls = cJSON_GetStringValue(cJSON_GetObjectItem(sch, "class"));
    if (!model || !cls) return sdc_fail(SDC_ERR_FORMAT, "case without model/scheduler");
    char rel[512];
    snprintf(rel, sizeof rel, "%s/scheduler/scheduler_config.json", model);
    cJSON *file;
    SDC_TRY(json_load(fixture_path(rel), &file));
    const cJSON *ov = cJSON_GetObjectItem(sch, "overrides"), *o;
    cJSON_ArrayForEach(o, ov) {
        cJSON_DeleteItemFromObjectCaseSensitive(file, o->string);
        cJSON_AddItemToObject(file, o->string, cJSON_Duplicate(o, 1));
    }
    *file_out = file;
    return sched_config_from_json(file, cls, c);
}

/* the value sdc uses for a config key, as a cJSON value (NULL: key unknown to this test) */
static cJSON *cfg_value(const sched_config *c, const char *key) {
#define NUM(k, e) if (!strcmp(key, k)) return cJSON_CreateNumber(e)
#define BOOLV(k, e) if (!strcmp(key, k)) return cJSON_CreateBool(e)
#define STR(k, e) if (!strcmp(key, k)) return cJSON_CreateString(e)
    NUM("num_train_timesteps", c->num_train_timesteps);
    NUM("beta_start", c->beta_start);
    NUM("beta_end", c->beta_end);
    STR("beta_schedule", c->beta_schedule);
    if (!strcmp(key, "trained_betas")) return c->has_trained_betas ? cJSON_CreateTrue() : cJSON_CreateNull();
    NUM("steps_offset", c->steps_offset);
    STR("timestep_spacing", c->timestep_spacing);
    STR("prediction_type", c->prediction_type);
    BOOLV("rescale_betas_zero_snr", c->rescale_betas_zero_snr);
    BOOLV("set_alpha_to_one", c->set_alpha_to_one);
    BOOLV("clip_sample", c->clip_sample);
    NUM("clip_sample_range", c->clip_sample_range);
    BOOLV("thresholding", c->thresholding);
    NUM("dynamic_thresholding_ratio", c->dynamic_thresholding_ratio);
    NUM("sample_max_value", c->sample_max_value);
    BOOLV("use_karras_sigmas", c->use_karras_sigmas);
    if (!strcmp(key, "sigma_min")) return c->has_sigma_min ? cJSON_CreateNumber(c->sigma_min) : cJSON_CreateNull();
    if (!strcmp(key, "sigma_max")) return c->has_sigma_max ? cJSON_CreateNumber(c->sigma_max) : cJSON_CreateNull();
    STR("final_sigmas_type", c->final_sigmas_type);
    /* the sampler's own keys live in its options struct: read through its key table */
    static const char *const own[] = {"skip_prk_steps", "interpolation_type", "timestep_type", "solver_order",
                                      "algorithm_type", "solver_type", "lower_order_final", "euler_at_final",
                                      "use_lu_lambdas", "lambda_min_clipped", "variance_type",
                                      "original_inference_steps", "timestep_scaling"};
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        if (!strcmp(key, own[i])) return sched_config_value(c, key);
    return NULL;
#undef NUM
#undef BOOLV
#undef STR
}

static int json_equal_values(const cJSON *a, const cJSON *b) {
    if (cJSON_IsNumber(a) && cJSON_IsNumber(b)) {
        double x = a->valuedouble, y = b->valuedouble;
        return x == y || (isinf(x) && isinf(y) && (x < 0) == (y < 0));
    }
    return cJSON_Compare(a, b, 1);
}

TEST(sched_from_config_cases) {
    int checked_keys = 0;
    for (int ci = 0; ci < NCASES; ci++) {
        char rel[256];
        snprintf(rel, sizeof rel, "cases/%s.json", case_names[ci]);
        cJSON *cs;
        CHECK_OK(json_load(fixture_path(rel), &cs));
        cJSON *file = NULL;
        sched_config c;
        sdc_status st = case_config(cs, &file, &c);
        CHECK(!st, "%s: %s", case_names[ci], sdc_last_error());
        const cJSON *sch = cJSON_GetObjectItem(cs, "scheduler");
        const cJSON *eff = cJSON_GetObjectItem(sch, "effective_config"), *e;
        CHECK(cJSON_IsObject(eff), "%s: no effective_config", case_names[ci]);
        cJSON_ArrayForEach(e, eff) {
            if (!sched_takes_key(c.def, e->string)) continue; /* carried along, unused by the class */
            cJSON *mine = cfg_value(&c, e->string);
            CHECK(mine, "%s: key %s of %s unknown to the test", case_names[ci], e->string,
                  sched_info(c.def)->diffusers_class);
            int eq = json_equal_values(mine, e);
            char *ms = cJSON_PrintUnformatted(mine), *es = cJSON_PrintUnformatted(e);
            cJSON_Delete(mine);
            if (!eq) {
                test_fail_at(__FILE__, __LINE__, "%s: %s = %s, diffusers used %s", case_names[ci], e->string, ms, es);
                free(ms), free(es);
                cJSON_Delete(file), cJSON_Delete(cs);
                return;
            }
            free(ms), free(es);
            checked_keys++;
        }
        /* every class key is in the effective config */
        for (int k = 0; k < c.n_defaulted; k++)
            CHECK(cJSON_GetObjectItem(eff, c.defaulted[k]), "%s: %s not in effective_config", case_names[ci], c.defaulted[k]);
        /* keys taken from the class defaults: same set */
        const cJSON *kd = cJSON_GetObjectItem(sch, "keys_taken_from_class_defaults"), *kk;
        int nkd = cJSON_GetArraySize(kd);
        CHECK(nkd == c.n_defaulted, "%s: %d keys from class defaults, diffusers %d", case_names[ci], c.n_defaulted, nkd);
        cJSON_ArrayForEach(kk, kd) {
            int found = 0;
            for (int k = 0; k < c.n_defaulted; k++) found |= !strcmp(c.defaulted[k], kk->valuestring);
            CHECK(found, "%s: %s should come from the class defaults", case_names[ci], kk->valuestring);
        }
        cJSON_Delete(file);
        cJSON_Delete(cs);
    }
    CHECK(checked_keys > 150, "only %d keys compared", checked_keys);
}

TEST(sched_class_defaults) {
    /* from_config with an empty config: each class's own __init__ defaults (diffusers 0.30.3) */
    cJSON *j = cJSON_CreateObject();
    sched_config c;
    CHECK_OK(sched_config_from_json(j, "ddim", &c));
    CHECK(c.beta_start == 0.0001 && c.beta_end == 0.02 && !strcmp(c.beta_schedule, "linear") && c.clip_sample &&
              c.set_alpha_to_one && c.steps_offset == 0 && !strcmp(c.timestep_spacing, "leading") &&
              !strcmp(c.prediction_type, "epsilon") && c.clip_sample_range == 1.0,
          "DDIM defaults");
    CHECK(c.n_defaulted == 15, "DDIM takes 15 keys, %d defaulted", c.n_defaulted);
    CHECK_OK(sched_config_from_json(j, "pndm", &c));
    CHECK(!opt_num(&c, "skip_prk_steps") && !c.set_alpha_to_one && c.steps_offset == 0 && c.n_defaulted == 10,
          "PNDM defaults");
    CHECK_OK(sched_config_from_json(j, "euler", &c));
    CHECK(!strcmp(c.timestep_spacing, "linspace") && !c.use_karras_sigmas && !strcmp(c.final_sigmas_type, "zero") &&
              opt_str_is(&c, "interpolation_type", "linear") && !c.has_sigma_min && c.n_defaulted == 15,
          "Euler defaults");
    CHECK_OK(sched_config_from_json(j, "euler_a", &c));
    CHECK(!strcmp(c.timestep_spacing, "linspace") && c.steps_offset == 0 && c.n_defaulted == 9, "Euler-a defaults");
    CHECK_OK(sched_config_from_json(j, "dpmpp_2m", &c));
    CHECK(opt_num(&c, "solver_order") == 2 && opt_str_is(&c, "algorithm_type", "dpmsolver++") &&
              opt_str_is(&c, "solver_type", "midpoint") && opt_num(&c, "lower_order_final") == 1 &&
              opt_num(&c, "euler_at_final") == 0 && !strcmp(c.timestep_spacing, "linspace") && c.n_defaulted == 22,
          "DPM defaults");
    for (int k = 0; k < 2; k++) {
        CHECK_OK(sched_config_from_json(j, k ? "tcd" : "lcm", &c));
        CHECK(c.beta_start == 0.00085 && c.beta_end == 0.012 && !strcmp(c.beta_schedule, "scaled_linear") &&
                  opt_num(&c, "original_inference_steps") == 50 && opt_num(&c, "timestep_scaling") == 10.0 &&
                  c.set_alpha_to_one &&
                  !c.clip_sample && !strcmp(c.timestep_spacing, "leading") && c.n_defaulted == 17,
              "%s defaults", k ? "TCD" : "LCM");
    }
    cJSON_Delete(j);
}

TEST(sched_from_config_spacing_defaults) {
    /* SD1.4's PNDM file has no timestep_spacing: Euler / Euler-a / DPM get linspace, DDIM / PNDM / LCM / TCD leading;
     * keys present in the file carry over to every class that takes them */
    cJSON *j;
    CHECK_OK(json_load(fixture_path("models/tiny-sd/scheduler/scheduler_config.json"), &j));
    static const struct {
        const char *name, *spacing;
    } want[] = {{"euler", "linspace"}, {"euler_a", "linspace"}, {"dpmpp_2m", "linspace"}, {"ddim", "leading"},
                {"pndm", "leading"},   {"lcm", "leading"},      {"tcd", "leading"}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        sched_config c;
        CHECK_OK(sched_config_from_json(j, want[i].name, &c));
        CHECK(!strcmp(c.timestep_spacing, want[i].spacing), "%s: spacing %s", want[i].name, c.timestep_spacing);
        CHECK(c.steps_offset == 1 && c.num_train_timesteps == 1000 && !strcmp(c.beta_schedule, "scaled_linear") &&
                  c.beta_start == 0.00085,
              "%s: file keys not carried over", want[i].name);
    }
    sched_config c;
    CHECK_OK(sched_config_from_json(j, NULL, &c)); /* _class_name */
    CHECK(c.def == def_of("pndm") && opt_num(&c, "skip_prk_steps") == 1 && c.set_alpha_to_one == 0,
          "PNDM from its own file");
    CHECK_OK(sched_config_from_json(j, "ddim", &c));
    CHECK(c.set_alpha_to_one == 0 && c.clip_sample == 0, "DDIM did not take set_alpha_to_one/clip_sample from the file");
    CHECK_OK(sched_config_from_json(j, "lcm", &c));
    CHECK(c.set_alpha_to_one == 0 && opt_num(&c, "original_inference_steps") == 50 &&
              opt_num(&c, "timestep_scaling") == 10.0,
          "LCM keys");
    CHECK_OK(sched_config_from_json(j, "DPMSolverMultistepScheduler", &c));
    CHECK(c.def == def_of("dpmpp_2m") && opt_num(&c, "solver_order") == 2 && opt_num(&c, "lower_order_final") == 1 &&
              isinf(opt_num(&c, "lambda_min_clipped")),
          "DPM defaults");
    cJSON_Delete(j);
    /* SDXL's Euler file says leading; DDIM from it keeps leading, Euler-a too */
    CHECK_OK(json_load(fixture_path("models/tiny-sdxl/scheduler/scheduler_config.json"), &j));
    CHECK_OK(sched_config_from_json(j, "euler_a", &c));
    CHECK(!strcmp(c.timestep_spacing, "leading"), "euler_a from SDXL file: %s", c.timestep_spacing);
    CHECK_OK(sched_config_from_json(j, NULL, &c));
    CHECK(c.def == def_of("euler") && c.n_defaulted == 5, "SDXL Euler: %d defaulted keys", c.n_defaulted);
    cJSON_Delete(j);
}

/* ---------- the cases' schedules and steps (teacher-forced noise_pred) ---------- */

TEST(sched_case_schedules_and_steps) {
    memset(&g_case_err, 0, sizeof g_case_err);
    int steps_checked = 0;
    for (int ci = 0; ci < NCASES; ci++) {
        const char *cn = case_names[ci];
        char rel[256];
        snprintf(rel, sizeof rel, "cases/%s.json", cn);
        cJSON *cs;
        CHECK_OK(json_load(fixture_path(rel), &cs));
        cJSON *file = NULL;
        sched_config c;
        CHECK_OK(case_config(cs, &file, &c));
        cJSON_Delete(file);
        int steps = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(cs, "num_inference_steps"));
        int want_calls = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(cs, "num_unet_calls"));
        float want_sigma0 = (float)cJSON_GetNumberValue(cJSON_GetObjectItem(cs, "init_noise_sigma"));
        float eta = (float)cJSON_GetNumberValue(cJSON_GetObjectItem(cs, "eta"));
        const cJSON *seeds = cJSON_GetObjectItem(cs, "seeds");
        int B = cJSON_GetArraySize(seeds);
        snprintf(rel, sizeof rel, "cases/%s.safetensors", cn);
        st_file f;
        CHECK_OK(st_open(&f, fixture_path(rel)));
        sdc_scheduler *s;
        CHECK_OK(sched_create(&s, &c, steps));
        int calls = sched_num_calls(s);
        int ok = 1;
        char msg[300] = "";
        float *buf[8] = {0};
        do {
            if (calls != want_calls || sched_init_noise_sigma(s) != want_sigma0) {
                snprintf(msg, sizeof msg, "%d calls / init sigma %.9g; diffusers %d / %.9g", calls,
                         (double)sched_init_noise_sigma(s), want_calls, (double)want_sigma0);
                ok = 0;
                break;
            }
            int64_t nt;
            float *ts = gf(&f, "timesteps", &nt);
            buf[0] = ts;
            if (!ts || nt != calls) {
                snprintf(msg, sizeof msg, "timesteps missing");
                ok = 0;
                break;
            }
            for (int i = 0; i < calls; i++)
                if ((float)sched_timestep(s, i) != ts[i]) {
                    snprintf(msg, sizeof msg, "timesteps[%d] = %g, diffusers %g", i, sched_timestep(s, i), (double)ts[i]);
                    ok = 0;
                    break;
                }
            if (!ok) break;
            int64_t nsg;
            float *sg = gf(&f, "sigmas", &nsg);
            buf[1] = sg;
            int ns;
            const double *mys = sched_sigmas(s, &ns);
            if (!!sg != !!mys || (sg && ns != nsg)) {
                snprintf(msg, sizeof msg, "sigmas present/length mismatch");
                ok = 0;
                break;
            }
            for (int i = 0; sg && i < ns; i++)
                if (!(fabs(mys[i] - sg[i]) <= 1e-6 * fabs((double)sg[i]))) {
                    snprintf(msg, sizeof msg, "sigmas[%d] = %.9g, diffusers %.9g", i, mys[i], (double)sg[i]);
                    ok = 0;
                    break;
                }
            if (!ok) break;
            /* generators and the initial noise */
            int64_t nn;
            float *noise = gf(&f, "noise", &nn);
            buf[2] = noise;
            if (!noise || nn % B) {
                snprintf(msg, sizeof msg, "noise missing");
                ok = 0;
                break;
            }
            const int64_t per = nn / B;
            torch_gen gens[4];
            float *x = malloc((size_t)nn * sizeof(float)), *mi = malloc((size_t)nn * sizeof(float)),
                  *sn = malloc((size_t)nn * sizeof(float));
            buf[3] = x, buf[4] = mi, buf[5] = sn;
            for (int b = 0; b < B; b++) {
                torch_gen_seed(&gens[b], (uint64_t)cJSON_GetArrayItem(seeds, b)->valuedouble);
                torch_randn(&gens[b], x + b * per, per);
            }
            if (memcmp(x, noise, (size_t)nn * sizeof(float))) {
                snprintf(msg, sizeof msg, "initial noise differs from torch.randn");
                ok = 0;
                break;
            }
            const float s0 = sched_init_noise_sigma(s);
            for (int64_t k = 0; k < nn; k++) x[k] = x[k] * s0;
            float *l0 = gf(&f, "latents_0", NULL);
            int64_t bad = l0 ? compare(x, l0, nn, 0, 0, NULL) : 0;
            free(l0);
            if (bad >= 0) {
                snprintf(msg, sizeof msg, "latents_0[%lld] differs", (long long)bad);
                ok = 0;
                break;
            }
            for (int i = 0; i < calls && ok; i++) {
                char key[64];
                memcpy(mi, x, (size_t)nn * sizeof(float));
                sched_scale_model_input(s, i, mi, nn);
                snprintf(key, sizeof key, "model_input_%d", i + 1);
                float *rmi = gf(&f, key, NULL);
                bad = rmi ? compare(mi, rmi, nn, 1e-5, 1e-6, &g_case_err) : 0;
                free(rmi);
                if (bad >= 0) {
                    snprintf(msg, sizeof msg, "%s[%lld] differs", key, (long long)bad);
                    ok = 0;
                    break;
                }
                snprintf(key, sizeof key, "noise_pred_%d", i + 1);
                float *np_ = gf(&f, key, NULL);
                if (!np_) {
                    snprintf(msg, sizeof msg, "%s missing", key);
                    ok = 0;
                    break;
                }
                int drew = sched_draws_noise(s, i, eta);
                sdc_status st = sched_step(s, i, np_, x, B, per, gens, eta, NULL, sn);
                free(np_);
                if (st) {
                    snprintf(msg, sizeof msg, "step %d: %s", i, sdc_last_error());
                    ok = 0;
                    break;
                }
                snprintf(key, sizeof key, "scheduler_noise_%d", i + 1);
                float *rsn = gf(&f, key, NULL);
                if (!!rsn != drew || (rsn && memcmp(rsn, sn, (size_t)nn * sizeof(float)))) {
                    snprintf(msg, sizeof msg, "%s: %s", key,
                             !!rsn != drew ? (drew ? "sdc drew noise, diffusers did not" : "diffusers drew noise, sdc did not")
                                           : "differs from the golden draw");
                    free(rsn);
                    ok = 0;
                    break;
                }
                free(rsn);
                snprintf(key, sizeof key, "latents_%d", i + 1);
                float *rl = gf(&f, key, NULL);
                bad = rl ? compare(x, rl, nn, 1e-5, 1e-5, &g_case_err) : -2;
                if (bad != -1) {
                    snprintf(msg, sizeof msg, "%s[%lld] = %.9g, diffusers %.9g", key, (long long)bad,
                             bad >= 0 ? (double)x[bad] : 0.0, bad >= 0 ? (double)rl[bad] : 0.0);
                    ok = 0;
                }
                free(rl);
                steps_checked++;
            }
        } while (0);
        for (int k = 0; k < 8; k++) free(buf[k]);
        sched_free(s);
        st_close(&f);
        cJSON_Delete(cs);
        CHECK(ok, "%s: %s", cn, msg);
    }
    CHECK(steps_checked >= 50, "only %d steps checked", steps_checked);
#if FLT_EVAL_METHOD == 0 && !defined(__clang__)
    CHECK(g_case_err.exact == g_case_err.count, "%lld of %lld values not bit-exact (max abs err %.3g)",
          (long long)(g_case_err.count - g_case_err.exact), (long long)g_case_err.count, g_case_err.max_abs);
#endif
    if (verbose())
        fprintf(stderr, "     case steps: %lld values (%lld bit-exact), max abs err %.3g, max rel err %.3g\n",
                (long long)g_case_err.count, (long long)g_case_err.exact, g_case_err.max_abs, g_case_err.max_rel);
}

/* ---------- batches, history, PRK, bad input ---------- */

static void fake_eps(const float *x, float t, float *eps, int64_t n) {
    for (int64_t k = 0; k < n; k++) eps[k] = 0.1f * x[k] + (0.01f * t) / 1000.0f;
}

TEST(sched_batch_equals_single_images) {
    /* a batch of 2 with one generator per image == each image alone, for every kind (history kept per sample) */
    const char *names[] = {"ddim", "pndm", "euler", "euler_a", "dpmpp_2m", "lcm", "tcd"};
    cJSON *j;
    CHECK_OK(json_load(fixture_path("models/tiny-sd/scheduler/scheduler_config.json"), &j));
    enum { P = 48 };
    for (int q = 0; q < 7; q++) {
        sched_config c;
        CHECK_OK(sched_config_from_json(j, names[q], &c));
        sdc_scheduler *s;
        CHECK_OK(sched_create(&s, &c, 6));
        float xb[2 * P], mi[2 * P], eps[2 * P], x1[2][P];
        torch_gen gb[2], g1[2];
        for (int b = 0; b < 2; b++) {
            torch_gen_seed(&gb[b], 100 + b);
            torch_gen_seed(&g1[b], 100 + b);
            torch_randn(&gb[b], xb + b * P, P);
            torch_randn(&g1[b], x1[b], P);
        }
        const float s0 = sched_init_noise_sigma(s);
        for (int k = 0; k < 2 * P; k++) xb[k] *= s0;
        for (int b = 0; b < 2; b++)
            for (int k = 0; k < P; k++) x1[b][k] *= s0;
        const float eta = q == 6 ? 0.5f : 0.0f;
        for (int i = 0; i < sched_num_calls(s); i++) {
            memcpy(mi, xb, sizeof mi);
            sched_scale_model_input(s, i, mi, 2 * P);
            fake_eps(mi, (float)sched_timestep(s, i), eps, 2 * P);
            CHECK_OK(sched_step(s, i, eps, xb, 2, P, gb, eta, NULL, NULL));
        }
        for (int b = 0; b < 2; b++) {
            sched_reset(s);
            for (int i = 0; i < sched_num_calls(s); i++) {
                memcpy(mi, x1[b], P * sizeof(float));
                sched_scale_model_input(s, i, mi, P);
                fake_eps(mi, (float)sched_timestep(s, i), eps, P);
                CHECK_OK(sched_step(s, i, eps, x1[b], 1, P, &g1[b], eta, NULL, NULL));
            }
            CHECK(!memcmp(x1[b], xb + b * P, P * sizeof(float)), "%s: image %d of the batch differs from a single run",
                  names[q], b);
        }
        sched_free(s);
    }
    cJSON_Delete(j);
}

static char g_oracle_msg[256];

static int oracle_run(sdc_scheduler *s, const sched_config *c, double tol) {
    int na;
    const float *ac = sched_alphas_cumprod(s, &na);
    float x[16], eps[16], e[16];
    for (int k = 0; k < 16; k++) e[k] = (float)(k - 8) / 4.0f + 0.1f;
    const double a0 = ac[(int)sched_timestep(s, 0)];
    for (int k = 0; k < 16; k++) x[k] = (float)(sqrt(1 - a0) * e[k]);
    for (int i = 0; i < sched_num_calls(s); i++) {
        const double a = ac[(int)sched_timestep(s, i)];
        for (int k = 0; k < 16; k++) eps[k] = (float)(x[k] / sqrt(1 - a));
        if (sched_step(s, i, eps, x, 1, 16, NULL, 0, NULL, NULL)) {
            snprintf(g_oracle_msg, sizeof g_oracle_msg, "step %d: %s", i, sdc_last_error());
            return 0;
        }
    }
    const double af = c->set_alpha_to_one ? 1.0 : ac[0];
    for (int k = 0; k < 16; k++) {
        double want = sqrt(1 - af) * e[k];
        if (!(fabs(x[k] - want) <= tol * fabs(want) + 1e-7)) {
            snprintf(g_oracle_msg, sizeof g_oracle_msg, "final x[%d] = %.9g, exact ODE %.9g", k, (double)x[k], want);
            return 0;
        }
    }
    return 1;
}

TEST(sched_pndm_prk_warmup) {
    /* PNDM without skip_prk_steps: diffusers' own test (test_steps_offset) timesteps for 10 steps, offset 1 */
    cJSON *j = cJSON_Parse("{\"steps_offset\":1,\"skip_prk_steps\":false}");
    sched_config c;
    CHECK_OK(sched_config_from_json(j, "pndm", &c));
    cJSON_Delete(j);
    sdc_scheduler *s;
    CHECK_OK(sched_create(&s, &c, 10));
    static const int want[] = {901, 851, 851, 801, 801, 751, 751, 701, 701, 651, 651, 601, 601, 501, 401, 301, 201, 101, 1};
    CHECK(sched_num_calls(s) == 19, "%d calls", sched_num_calls(s));
    for (int i = 0; i < 19; i++) CHECK(sched_timestep(s, i) == want[i], "timestep %d = %g", i, sched_timestep(s, i));
    /* With the exact noise prediction of a point-mass data distribution at 0,
     * eps(x, t) = x / sqrt(1 - alphas_cumprod[t]), the ODE keeps
     * x_t = sqrt(1 - alphas_cumprod[t]) * e; PRK and PLMS (weights summing to
     * one, exact transfer) must stay on it and end at sqrt(1 - ac[0]) * e
     * (set_alpha_to_one false). Any timestep bookkeeping slip breaks this. */
    CHECK(oracle_run(s, &c, 1e-4), "%s", g_oracle_msg);
    sched_free(s);
    j = cJSON_Parse("{\"steps_offset\":1,\"skip_prk_steps\":true}");
    CHECK_OK(sched_config_from_json(j, "pndm", &c));
    cJSON_Delete(j);
    CHECK_OK(sched_create(&s, &c, 10));
    CHECK(sched_num_calls(s) == 11, "PLMS calls");
    CHECK(oracle_run(s, &c, 1e-4), "PLMS: %s", g_oracle_msg);
    sched_free(s);
    /* fewer than 4 steps cannot do the warm-up (diffusers fails too) */
    j = cJSON_Parse("{\"steps_offset\":1,\"skip_prk_steps\":false}");
    CHECK_OK(sched_config_from_json(j, "pndm", &c));
    cJSON_Delete(j);
    CHECK(sched_create(&s, &c, 3) == SDC_ERR_ARG, "PRK with 3 steps accepted");
}

TEST(sched_bad_input) {
    sched_config c;
    sdc_scheduler *s = NULL;
    /* unknown names / classes */
    CHECK(sched_config_from_json(NULL, "k_dpm_fast", &c) == SDC_ERR_ARG, "unknown name accepted");
    CHECK(strstr(sdc_last_error(), "valid") && strstr(sdc_last_error(), "euler_a"), "message: %s", sdc_last_error());
    cJSON *j = cJSON_Parse("{\"_class_name\":\"DPMSolverSDEScheduler\"}");
    CHECK(sched_config_from_json(j, NULL, &c) == SDC_ERR_ARG, "unknown class accepted");
    CHECK(strstr(sdc_last_error(), "DPMSolverSDEScheduler") && strstr(sdc_last_error(), "DDIMScheduler"), "message: %s",
          sdc_last_error());
    cJSON_Delete(j);
    j = cJSON_Parse("{\"beta_start\":0.1}");
    CHECK(sched_config_from_json(j, NULL, &c) == SDC_ERR_ARG, "missing _class_name accepted");
    cJSON_Delete(j);
    /* wrong types */
    j = cJSON_Parse("{\"num_train_timesteps\":\"1000\"}");
    CHECK(sched_config_from_json(j, "ddim", &c) == SDC_ERR_FORMAT, "string num_train_timesteps accepted");
    cJSON_Delete(j);
    j = cJSON_Parse("{\"clip_sample\":1}");
    CHECK(sched_config_from_json(j, "ddim", &c) == SDC_ERR_FORMAT, "numeric bool accepted");
    cJSON_Delete(j);
    /* invalid values */
    j = cJSON_Parse("{\"beta_schedule\":\"cosine\"}");
    CHECK_OK(sched_config_from_json(j, "euler", &c));
    cJSON_Delete(j);
    CHECK(sched_create(&s, &c, 10) == SDC_ERR_ARG && !s, "beta_schedule cosine accepted");
    CHECK(strstr(sdc_last_error(), "cosine") && strstr(sdc_last_error(), "scaled_linear"), "message: %s",
          sdc_last_error());
    sched_config_defaults(def_of("ddim"), &c);
    snprintf(c.timestep_spacing, sizeof c.timestep_spacing, "uniform");
    CHECK(sched_create(&s, &c, 10) == SDC_ERR_ARG, "spacing 'uniform' accepted");
    sched_config_defaults(def_of("ddim"), &c);
    snprintf(c.prediction_type, sizeof c.prediction_type, "x0");
    CHECK(sched_create(&s, &c, 10) == SDC_ERR_ARG, "prediction_type x0 accepted");
    /* step counts */
    for (int k = 0; k < sched_count(); k++) {
        sched_config_defaults(sched_at(k), &c);
        CHECK(sched_create(&s, &c, 0) == SDC_ERR_ARG && !s, "%s: 0 steps accepted", sched_info(sched_at(k))->name);
        CHECK(strstr(sdc_last_error(), "at least 1"), "message: %s", sdc_last_error());
        CHECK(sched_create(&s, &c, 1001) == SDC_ERR_ARG && !s, "%s: 1001 steps accepted", sched_info(sched_at(k))->name);
        CHECK(strstr(sdc_last_error(), "num_train_timesteps"), "message: %s", sdc_last_error());
        CHECK(sched_create(&s, &c, -3) == SDC_ERR_ARG, "negative steps accepted");
    }
    sched_config_defaults(def_of("lcm"), &c);
    CHECK(sched_create(&s, &c, 51) == SDC_ERR_ARG, "LCM with 51 > original_inference_steps accepted");
    CHECK(strstr(sdc_last_error(), "original_inference_steps"), "message: %s", sdc_last_error());
    /* valid diffusers options sdc does not implement */
    sched_config_defaults(def_of("ddim"), &c);
    c.thresholding = 1;
    CHECK(sched_create(&s, &c, 10) == SDC_ERR_UNSUPPORTED, "thresholding accepted");
    j = cJSON_Parse("{\"_class_name\":\"DPMSolverMultistepScheduler\",\"algorithm_type\":\"dpmsolver\"}");
    CHECK_OK(sched_config_from_json(j, NULL, &c));
    cJSON_Delete(j);
    CHECK(sched_create(&s, &c, 10) == SDC_ERR_UNSUPPORTED, "dpmsolver accepted");
    j = cJSON_Parse("{\"_class_name\":\"DPMSolverMultistepScheduler\",\"algorithm_type\":\"dpm3\"}");
    CHECK_OK(sched_config_from_json(j, NULL, &c));
    cJSON_Delete(j);
    CHECK(sched_create(&s, &c, 10) == SDC_ERR_ARG, "algorithm dpm3 accepted");
    j = cJSON_Parse("{\"trained_betas\":[0.1,0.2]}");
    CHECK_OK(sched_config_from_json(j, "ddim", &c));
    cJSON_Delete(j);
    CHECK(sched_create(&s, &c, 10) == SDC_ERR_UNSUPPORTED, "trained_betas accepted");
    /* steps out of range / out of order */
    sched_config_defaults(def_of("dpmpp_2m"), &c);
    CHECK_OK(sched_create(&s, &c, 5));
    float x[8] = {0}, e[8] = {0};
    CHECK(sched_step(s, 5, e, x, 1, 8, NULL, 0, NULL, NULL) == SDC_ERR_ARG, "step 5 of 5 accepted");
    CHECK(sched_step(s, 2, e, x, 1, 8, NULL, 0, NULL, NULL) == SDC_ERR_ARG, "DPM step 2 before 0 accepted");
    CHECK_OK(sched_step(s, 0, e, x, 1, 8, NULL, 0, NULL, NULL));
    CHECK(sched_step(s, 1, e, x, 2, 4, NULL, 0, NULL, NULL) == SDC_OK, "same total size is fine");
    CHECK(sched_step(s, 2, e, x, 1, 4, NULL, 0, NULL, NULL) == SDC_ERR_ARG, "batch size change accepted");
    sched_free(s);
    sched_config_defaults(def_of("euler_a"), &c);
    CHECK_OK(sched_create(&s, &c, 5));
    CHECK(sched_step(s, 0, e, x, 1, 8, NULL, 0, NULL, NULL) == SDC_ERR_ARG, "Euler-a step without generators accepted");
    sched_free(s);
    sched_config_defaults(def_of("tcd"), &c);
    CHECK_OK(sched_create(&s, &c, 4));
    torch_gen g;
    torch_gen_seed(&g, 1);
    CHECK(sched_step(s, 0, e, x, 1, 8, &g, 1.5f, NULL, NULL) == SDC_ERR_ARG, "TCD gamma 1.5 accepted");
    sched_free(s);
}

TEST(sched_names_and_noise_draws) {
    const sched_def *k = sched_find("Euler-A", NULL);
    CHECK(k && k == def_of("euler_a"), "Euler-A");
    k = sched_find("EulerAncestralDiscreteScheduler", NULL);
    CHECK(k == def_of("euler_a"), "class name");
    for (int q = 0; q < sched_count(); q++) {
        k = sched_find(sched_info(sched_at(q))->name, NULL);
        CHECK(k == sched_at(q), "round trip %d", q);
        /* the class name finds the class's first row; a config with the row's variant finds the row */
        k = sched_find(sched_info(sched_at(q))->diffusers_class, NULL);
        CHECK(k == sched_at(q) || (k && sched_at(q)->variant_key && sched_at(q) != k), "class round trip %d", q);
        sched_config c;
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "_class_name", sched_info(sched_at(q))->diffusers_class);
        if (sched_at(q)->variant_key) cJSON_AddStringToObject(j, sched_at(q)->variant_key, sched_at(q)->variant_value);
        sdc_status st = sched_config_from_json(j, NULL, &c);
        cJSON_Delete(j);
        CHECK(st == SDC_OK && c.def == sched_at(q), "config round trip %d", q);
    }
    /* who draws noise when (README: scheduler_noise_K) */
    sched_config c;
    sdc_scheduler *s;
    sched_config_defaults(def_of("lcm"), &c);
    CHECK_OK(sched_create(&s, &c, 4));
    CHECK(sched_draws_noise(s, 0, 0) && sched_draws_noise(s, 2, 0) && !sched_draws_noise(s, 3, 0), "LCM draws");
    sched_free(s);
    sched_config_defaults(def_of("tcd"), &c);
    CHECK_OK(sched_create(&s, &c, 4));
    CHECK(sched_draws_noise(s, 0, 0.3f) && !sched_draws_noise(s, 3, 0.3f) && !sched_draws_noise(s, 0, 0), "TCD draws");
    CHECK(sched_accepts_eta(s), "TCD takes eta");
    sched_free(s);
    sched_config_defaults(def_of("euler"), &c);
    CHECK_OK(sched_create(&s, &c, 4));
    CHECK(sched_draws_noise(s, 3, 0) && !sched_accepts_eta(s), "Euler draws every step");
    CHECK(sched_timesteps_are_float(s), "Euler timesteps are float");
    sched_free(s);
    sched_config_defaults(def_of("ddim"), &c);
    CHECK_OK(sched_create(&s, &c, 4));
    CHECK(!sched_draws_noise(s, 0, 0) && sched_draws_noise(s, 0, 0.5f), "DDIM draws with eta > 0");
    CHECK(!sched_sigmas(s, NULL), "DDIM has no sigmas");
    sched_free(s);
}

/* ---------- the registry ---------- */

/* every name a row goes by: sdc name, aliases, diffusers class, A1111 name, A1111 aliases */
static int row_names(const sdc_sampler_info *s, const char **out, int max) {
    int n = 0;
    out[n++] = s->name;
    for (int k = 0; s->aliases && s->aliases[k] && n < max; k++) out[n++] = s->aliases[k];
    out[n++] = s->diffusers_class;
    out[n++] = s->a1111_name;
    for (int k = 0; s->a1111_aliases && s->a1111_aliases[k] && n < max; k++) out[n++] = s->a1111_aliases[k];
    return n;
}

static int in_list(const char *v, const char *const *list) {
    for (; list && *list; list++)
        if (!strcmp(v, *list)) return 1;
    return 0;
}

/* names that sched_find would confuse: case-insensitive, '-' == '_' */
static int same_name(const char *a, const char *b) {
    for (; *a && *b; a++, b++) {
        int x = *a == '-' ? '_' : tolower((unsigned char)*a), y = *b == '-' ? '_' : tolower((unsigned char)*b);
        if (x != y) return 0;
    }
    return *a == *b;
}

TEST(sched_registry_rows) {
    const int n = sched_count();
    CHECK(n >= 7 && n == sdc_sampler_count(), "%d rows, the public view has %d", n, sdc_sampler_count());
    CHECK(!sdc_sampler_at(-1) && !sdc_sampler_at(n) && !sched_at(n), "out-of-range rows");
    int a1111_default = 0, ui_default = 0;
    for (int i = 0; i < n; i++) {
        const sched_def *d = sched_at(i);
        const sdc_sampler_info *s = sched_info(d);
        CHECK(sdc_sampler_at(i) == s, "row %d: public view is another row", i);
        /* all three names */
        CHECK(s->name && *s->name && s->diffusers_class && *s->diffusers_class && s->a1111_name && *s->a1111_name,
              "row %d lacks a name", i);
        CHECK(s->a1111_aliases && s->a1111_aliases[0], "%s: no A1111 alias", s->name);
        CHECK(!s->a1111_option_key == !s->a1111_option_value, "%s: option key without value", s->name);
        a1111_default += s->a1111_default, ui_default += s->ui_default;
        /* the row is complete */
        CHECK(d->keys && d->set_timesteps && d->step && d->calls_per_step >= 1, "%s: incomplete row", s->name);
        CHECK(d->opts_size <= SCHED_OPTS_SIZE, "%s: options of %zu bytes", s->name, d->opts_size);
        CHECK(!d->state_reset || (d->state_create && d->state_free), "%s: history without state", s->name);
        /* schedule types: the Karras one wherever the class takes use_karras_sigmas; karras_ok says it */
        CHECK(s->schedules == SCHED_SCHEDULES_SIGMA || s->schedules == SCHED_SCHEDULES_TIMESTEP, "%s: schedules %#x",
              s->name, s->schedules);
        CHECK(s->karras_ok == !!(s->schedules & SCHED_SCHEDULE_BIT(SCHED_SCHEDULE_KARRAS)),
              "%s: karras_ok disagrees with its schedules", s->name);
        CHECK(!sched_takes_key(d, "use_karras_sigmas") || s->karras_ok, "%s: takes use_karras_sigmas, not Karras",
              s->name);
        /* rows that share a class: the same variant key, one value each, the first row the key's default */
        for (int j = 0; j < n; j++) {
            const sched_def *e = sched_at(j);
            if (j == i || strcmp(sched_info(e)->diffusers_class, s->diffusers_class)) continue;
            CHECK(d->variant_key && e->variant_key && !strcmp(d->variant_key, e->variant_key) &&
                      strcmp(d->variant_value, e->variant_value),
                  "%s and %s share %s without distinct variants", s->name, sched_info(e)->name, s->diffusers_class);
        }
        const sched_def *first = sched_find(s->diffusers_class, NULL);
        CHECK(first && (first == d || d->variant_key), "%s: its class finds %s", s->name,
              first ? sched_info(first)->name : "nothing");
        if (d->variant_key && first == d) {
            cJSON *v = NULL;
            sched_config dc;
            sched_config_defaults(d, &dc);
            v = sched_config_value(&dc, d->variant_key);
            int ok = cJSON_IsString(v) && !strcmp(v->valuestring, d->variant_value);
            cJSON_Delete(v);
            CHECK(ok, "%s: the class's first row is not the %s default", s->name, d->variant_key);
        }
        int nkeys = 0, in_opts = 0;
        for (const sched_key *k = d->keys; k->key; k++, nkeys++) {
            in_opts |= k->in_opts;
            for (const sched_key *q = d->keys; q != k; q++) CHECK(strcmp(q->key, k->key), "%s: key %s twice", s->name, k->key);
        }
        CHECK(!in_opts || d->opts_size > 0, "%s: option keys without an options struct", s->name);
        CHECK(sched_takes_key(d, "num_train_timesteps") && sched_takes_key(d, "prediction_type"), "%s: keys", s->name);
        /* from_config with nothing: every key from the class defaults, in order */
        sched_config c;
        CHECK_OK(sched_config_from_json(NULL, s->name, &c));
        CHECK(c.def == d && c.n_defaulted == nkeys, "%s: %d of %d keys defaulted", s->name, c.n_defaulted, nkeys);
        int k = 0;
        for (const sched_key *q = d->keys; q->key && k < c.n_defaulted; q++, k++)
            CHECK(!strcmp(c.defaulted[k], q->key), "%s: defaulted[%d] = %s", s->name, k, c.defaulted[k]);
        for (const sched_key *q = d->keys; q->key; q++) {
            cJSON *v = sched_config_value(&c, q->key);
            CHECK(v, "%s: no value for its key %s", s->name, q->key);
            cJSON_Delete(v);
        }
        CHECK(!sched_config_value(&c, "no_such_key"), "%s: a value for a key it does not take", s->name);
        /* find by each name round-trips; no name of another row is the same */
        const char *mine[24];
        int nm = row_names(s, mine, 24);
        for (int m = 0; m < nm; m++) {
            if (!strcmp(mine[m], s->diffusers_class) && first != d) continue; /* a class's other rows: above */
            CHECK(sched_find(mine[m], NULL) == d && sdc_sampler_find(mine[m]) == s, "%s: '%s' finds another row", s->name,
                  mine[m]);
            int karras = -1;
            CHECK(sched_find(mine[m], &karras) == d && karras == 0, "%s: '%s' with karras", s->name, mine[m]);
            CHECK_OK(sched_config_from_json(NULL, mine[m], &c));
            CHECK(c.def == d && !c.use_karras_sigmas, "%s: config by '%s'", s->name, mine[m]);
            char canon[64];
            CHECK_OK(sched_canonical_name(mine[m], canon, sizeof canon));
            CHECK(!strcmp(canon, s->name), "%s: '%s' is stored as '%s'", s->name, mine[m], canon);
            for (int j = 0; j < n; j++) {
                if (j == i) continue;
                if (!strcmp(mine[m], s->diffusers_class) && !strcmp(sched_info(sched_at(j))->diffusers_class, mine[m]))
                    continue; /* a shared class: told apart by the variant (above) */
                const char *theirs[24];
                int nt = row_names(sched_info(sched_at(j)), theirs, 24);
                for (int t = 0; t < nt; t++)
                    CHECK(!same_name(mine[m], theirs[t]), "'%s' names %s and %s", mine[m], s->name,
                          sched_info(sched_at(j))->name);
            }
        }
        /* A1111's lookup: its names and aliases only; legacy Karras names for the samplers that take it */
        int karras = -1;
        CHECK(sdc_sampler_find_a1111(s->a1111_name, &karras) == s && karras == 0, "%s: A1111 name", s->name);
        for (int a = 0; s->a1111_aliases[a]; a++)
            CHECK(sdc_sampler_find_a1111(s->a1111_aliases[a], NULL) == s, "%s: A1111 alias %s", s->name,
                  s->a1111_aliases[a]);
        if (!in_list(s->diffusers_class, s->a1111_aliases))
            CHECK(!sdc_sampler_find_a1111(s->diffusers_class, NULL), "%s: A1111 finds the class name", s->name);
        char legacy[96], alias_ka[96];
        snprintf(legacy, sizeof legacy, "%s Karras", s->a1111_name);
        snprintf(alias_ka, sizeof alias_ka, "%s_ka", s->a1111_aliases[0]);
        CHECK(sched_find(legacy, &karras) == d && karras == 1, "%s: '%s'", s->name, legacy);
        CHECK(sched_find(alias_ka, &karras) == d && karras == 1, "%s: '%s'", s->name, alias_ka);
        CHECK(!sched_find(legacy, NULL), "%s: '%s' found without asking for the schedule", s->name, legacy);
        if (s->karras_ok) {
            CHECK(sdc_sampler_find_a1111(legacy, &karras) == s && karras == 1, "%s: '%s'", s->name, legacy);
            CHECK(sdc_sampler_find_a1111(alias_ka, &karras) == s && karras == 1, "%s: '%s'", s->name, alias_ka);
            CHECK_OK(sched_config_from_json(NULL, legacy, &c));
            CHECK(c.def == d && c.schedule == SCHED_SCHEDULE_KARRAS &&
                      c.use_karras_sigmas == sched_takes_key(d, "use_karras_sigmas"),
                  "%s: '%s' without Karras sigmas", s->name, legacy);
            char canon[64];
            CHECK_OK(sched_canonical_name(alias_ka, canon, sizeof canon));
            CHECK(!strcmp(canon, legacy), "'%s' is stored as '%s'", alias_ka, canon);
        } else {
            CHECK(!sdc_sampler_find_a1111(legacy, NULL), "%s: A1111 finds '%s'", s->name, legacy);
            CHECK(sched_config_from_json(NULL, legacy, &c) == SDC_ERR_ARG && strstr(sdc_last_error(), "Karras"),
                  "%s: '%s' accepted", s->name, legacy);
            CHECK(sched_check_karras(d, "--karras") == SDC_ERR_ARG && strstr(sdc_last_error(), "--karras applies to"),
                  "%s: --karras", s->name);
        }
    }
    CHECK(a1111_default == 1 && ui_default == 1, "%d A1111 defaults, %d UI defaults", a1111_default, ui_default);
    /* the presets name registry rows */
    CHECK(sdc_preset_count() >= 1, "no presets");
    for (int p = 0; p < sdc_preset_count(); p++) {
        const sdc_preset *ps = sdc_preset_at(p);
        int found = 0;
        for (int i = 0; i < n; i++) found |= ps->sampler == sdc_sampler_at(i);
        CHECK(found && sdc_preset_find(ps->name) == ps, "preset %s", ps->name);
    }
    CHECK(!sdc_preset_find("turbo") && !sdc_preset_at(sdc_preset_count()), "unknown presets");
    /* unknown names: NULL, and the message lists every name kind */
    CHECK(!sched_find("k_dpm_fast", NULL) && !sdc_sampler_find(NULL) && !sdc_sampler_find_a1111("", NULL),
          "unknown names");
    CHECK(sched_unknown("x") == SDC_ERR_ARG, "sched_unknown");
    for (int i = 0; i < n; i++) {
        const sdc_sampler_info *s = sdc_sampler_at(i);
        CHECK(strstr(sdc_last_error(), s->name) && strstr(sdc_last_error(), s->diffusers_class) &&
                  strstr(sdc_last_error(), s->a1111_name),
              "the message lacks %s: %s", s->name, sdc_last_error());
    }
}
