/* test_ksamplers.c - the k-diffusion-style samplers of the second wave (heun,
 * dpm2, dpm2_a, lms) against diffusers 0.30.3: the cases sd-heun, sd-dpm2,
 * sd-dpm2-a and sd-lms-karras of tests/fixtures2 (schedules, steps teacher-
 * forced with the golden noise_pred, from_config, the whole run through the
 * library and the CLI), and the behaviour the cases do not cover (other
 * spacings, Karras sigmas, prediction types, call structure, bad input). */
#include <cjson/cJSON.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "case_util.h"
#include "golden.h"
#include "harness.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "rng/torch_rng.h"
#include "sched/sched_internal.h"
#include "sched/scheduler.h"

static int verbose(void) { return getenv("SDC_TEST_VERBOSE") != NULL; }

/* The latents reach |x| ~ 50 in these cases: 1e-3 is 2e-5 of that (the README
 * allows 1e-4 relative to their scale); decoded / image as the wave-1 cases.
 * Measured (x86-64, GCC, float32): PNG max differences 1, 0, 1, 1 / 255; last
 * latents 9e-5, 8e-5, 3e-4, 1.5e-4; the scheduler itself is bit-exact
 * (ksampler_case_schedules_and_steps), the rest is the UNet's rounding. */
static const case_spec k_cases[] = {
    {"sd-heun", 1e-3, 1e-4, 1e-4, 1e-4},
    {"sd-dpm2", 1e-3, 1e-4, 1e-4, 1e-4},
    {"sd-dpm2-a", 1e-3, 1e-4, 1e-4, 1e-4},
    {"sd-lms-karras", 1e-3, 1e-4, 1e-4, 1e-4},
};
#define NCASES ((int)(sizeof k_cases / sizeof k_cases[0]))

static const sched_def *def_of(const char *name) { return sched_find(name, NULL); }

/* from_config(the case model's scheduler_config.json, **overrides) for the case's class */
static sdc_status case_sched_config(const case_req *c, sched_config *cfg) {
    const cJSON *sch = cJSON_GetObjectItem(c->j, "scheduler");
    const char *cls = cJSON_GetStringValue(cJSON_GetObjectItem(sch, "class"));
    char rel[600];
    snprintf(rel, sizeof rel, "%s/scheduler/scheduler_config.json", c->model);
    cJSON *file;
    SDC_TRY(json_load(fixture_path(rel), &file));
    const cJSON *o;
    cJSON_ArrayForEach(o, cJSON_GetObjectItem(sch, "overrides")) {
        cJSON_DeleteItemFromObjectCaseSensitive(file, o->string);
        cJSON_AddItemToObject(file, o->string, cJSON_Duplicate(o, 1));
    }
    sdc_status st = sched_config_from_json(file, cls, cfg);
    cJSON_Delete(file);
    return st;
}

/* ---------- the cases' configs, schedules and steps ---------- */

TEST(ksampler_from_config_cases) {
    int keys = 0;
    for (int ci = 0; ci < NCASES; ci++) {
        case_req c;
        CHECK(case_find(k_cases[ci].name, &c), "cannot read case %s", k_cases[ci].name);
        sched_config cfg;
        sdc_status st = case_sched_config(&c, &cfg);
        const cJSON *sch = cJSON_GetObjectItem(c.j, "scheduler"), *e;
        int ok = !st;
        char msg[300] = "";
        if (st) snprintf(msg, sizeof msg, "%s", sdc_last_error());
        /* every key the class takes has diffusers' effective value */
        cJSON_ArrayForEach(e, cJSON_GetObjectItem(sch, "effective_config")) {
            if (!ok || !sched_takes_key(cfg.def, e->string)) continue; /* carried along, unused by the class */
            cJSON *mine = sched_config_value(&cfg, e->string);
            if (!cJSON_Compare(mine, e, 1)) {
                char *ms = cJSON_PrintUnformatted(mine);
                snprintf(msg, sizeof msg, "%s = %s", e->string, ms);
                free(ms);
                ok = 0;
            }
            cJSON_Delete(mine);
            keys++;
        }
        /* and the keys taken from the class defaults are diffusers' */
        const cJSON *kd = cJSON_GetObjectItem(sch, "keys_taken_from_class_defaults"), *k;
        if (ok && cJSON_GetArraySize(kd) != cfg.n_defaulted)
            snprintf(msg, sizeof msg, "%d keys from the class defaults, diffusers %d", cfg.n_defaulted,
                     cJSON_GetArraySize(kd)),
                ok = 0;
        cJSON_ArrayForEach(k, kd) {
            int found = 0;
            for (int q = 0; q < cfg.n_defaulted; q++) found |= !strcmp(cfg.defaulted[q], k->valuestring);
            if (ok && !found)
                snprintf(msg, sizeof msg, "%s should come from the class defaults", k->valuestring), ok = 0;
        }
        cJSON_Delete(c.j);
        CHECK(ok, "%s: %s", k_cases[ci].name, msg);
    }
    CHECK(keys >= 36, "only %d keys compared", keys);
}

/* bit-exactness of the teacher-forced steps, over all cases */
typedef struct {
    int64_t values, exact;
    double max_abs;
} exact_stats;

static void tally(exact_stats *es, const float *a, const float *b, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        es->values++;
        es->exact += d == 0;
        if (d > es->max_abs) es->max_abs = d;
    }
}

/* first index where |got - ref| > atol + rtol |ref|, or -1 */
static int64_t first_bad(const float *got, const float *ref, int64_t n, double rtol, double atol) {
    for (int64_t i = 0; i < n; i++)
        if (!(fabs((double)got[i] - (double)ref[i]) <= atol + rtol * fabs((double)ref[i]))) return i;
    return -1;
}

/* One case: the schedule against the golden timesteps / sigmas, then every
 * call with the golden noise_pred_K: model_input_K, scheduler_noise_K and
 * latents_K. msg is empty on success. */
static void case_steps(const char *name, exact_stats *es, char *msg, size_t msz) {
    case_req c;
    if (!case_find(name, &c)) {
        snprintf(msg, msz, "cannot read case %s", name);
        return;
    }
    sched_config cfg;
    sdc_scheduler *s = NULL;
    st_file g = {0};
    int opened = 0;
    float *buf[6] = {0};
    char gp[256], key[64];
    snprintf(gp, sizeof gp, "%s", case_file(&c, name, ".safetensors"));
    const int steps = cJSON_GetObjectItem(c.j, "num_inference_steps")->valueint;
    const int want_calls = cJSON_GetObjectItem(c.j, "num_unet_calls")->valueint;
    const float want_sigma0 = (float)cJSON_GetObjectItem(c.j, "init_noise_sigma")->valuedouble;
    const uint64_t seed = (uint64_t)cJSON_GetArrayItem(cJSON_GetObjectItem(c.j, "seeds"), 0)->valuedouble;
    do {
        if (case_sched_config(&c, &cfg) || sched_create(&s, &cfg, steps) || st_open(&g, fixture_path(gp))) {
            snprintf(msg, msz, "%s", sdc_last_error());
            break;
        }
        opened = 1;
        const int calls = sched_num_calls(s);
        if (calls != want_calls || sched_init_noise_sigma(s) != want_sigma0) {
            snprintf(msg, msz, "%d calls, init_noise_sigma %.9g; diffusers %d, %.9g", calls,
                     (double)sched_init_noise_sigma(s), want_calls, (double)want_sigma0);
            break;
        }
        /* timesteps: what the UNet sees, float32 (diffusers' may be float64) */
        int64_t nt, ns, nn;
        float *ts = buf[0] = golden_f32(&g, "timesteps", &nt), *sg = buf[1] = golden_f32(&g, "sigmas", &ns);
        int ms;
        const double *mys = sched_sigmas(s, &ms);
        if (!ts || nt != calls || !sg || !mys || ms != ns) {
            snprintf(msg, msz, "timesteps / sigmas: %lld / %lld in the golden, sdc %d / %d", (long long)nt,
                     (long long)ns, calls, ms);
            break;
        }
        for (int i = 0; i < calls && !msg[0]; i++)
            if ((float)sched_timestep(s, i) != ts[i])
                snprintf(msg, msz, "timesteps[%d] = %.9g, diffusers %.9g", i, sched_timestep(s, i), (double)ts[i]);
        for (int i = 0; i < ms && !msg[0]; i++)
            if ((float)mys[i] != sg[i])
                snprintf(msg, msz, "sigmas[%d] = %.9g, diffusers %.9g", i, mys[i], (double)sg[i]);
        if (msg[0]) break;
        /* the initial noise from the seed, scaled */
        float *x = buf[2] = golden_f32(&g, "noise", &nn);
        float *mi = buf[3] = malloc((size_t)nn * sizeof(float)), *sn = buf[4] = malloc((size_t)nn * sizeof(float));
        torch_gen gen;
        torch_gen_seed(&gen, seed);
        torch_randn(&gen, mi, nn);
        if (!x || memcmp(mi, x, (size_t)nn * sizeof(float))) {
            snprintf(msg, msz, "the initial noise is not torch.randn's");
            break;
        }
        for (int64_t q = 0; q < nn; q++) x[q] = x[q] * sched_init_noise_sigma(s);
        for (int i = 0; i < calls && !msg[0]; i++) {
            memcpy(mi, x, (size_t)nn * sizeof(float));
            sched_scale_model_input(s, i, mi, nn);
            snprintf(key, sizeof key, "model_input_%d", i + 1);
            float *ref = golden_f32(&g, key, NULL);
            int64_t bad = ref ? first_bad(mi, ref, nn, 1e-5, 1e-6) : 0;
            if (ref) tally(es, mi, ref, nn);
            free(ref);
            if (bad >= 0) {
                snprintf(msg, msz, "%s[%lld] differs", key, (long long)bad);
                break;
            }
            snprintf(key, sizeof key, "noise_pred_%d", i + 1);
            float *np_ = golden_f32(&g, key, NULL);
            const int drew = sched_draws_noise(s, i, 0);
            sdc_status st = np_ ? sched_step(s, i, np_, x, 1, nn, &gen, 0, NULL, sn) : SDC_ERR_IO;
            free(np_);
            if (st) {
                snprintf(msg, msz, "step %d: %s", i, np_ ? sdc_last_error() : "noise_pred missing");
                break;
            }
            snprintf(key, sizeof key, "scheduler_noise_%d", i + 1);
            ref = golden_f32(&g, key, NULL);
            if (!!ref != drew || (ref && memcmp(ref, sn, (size_t)nn * sizeof(float))))
                snprintf(msg, msz, "%s: %s", key,
                         !!ref != drew
                             ? (drew ? "sdc drew noise, diffusers did not" : "diffusers drew noise, sdc did not")
                             : "differs from diffusers' draw");
            free(ref);
            if (msg[0]) break;
            snprintf(key, sizeof key, "latents_%d", i + 1);
            ref = golden_f32(&g, key, NULL);
            bad = ref ? first_bad(x, ref, nn, 1e-5, 1e-5) : 0;
            if (bad >= 0)
                snprintf(msg, msz, "%s[%lld] = %.9g, diffusers %.9g", key, (long long)bad, ref ? (double)x[bad] : 0.0,
                         ref ? (double)ref[bad] : 0.0);
            if (ref) tally(es, x, ref, nn);
            free(ref);
        }
    } while (0);
    for (int k = 0; k < 6; k++) free(buf[k]);
    if (opened) st_close(&g);
    sched_free(s);
    cJSON_Delete(c.j);
}

TEST(ksampler_case_schedules_and_steps) {
    exact_stats es = {0};
    for (int ci = 0; ci < NCASES; ci++) {
        char msg[300] = "";
        case_steps(k_cases[ci].name, &es, msg, sizeof msg);
        CHECK(!msg[0], "%s: %s", k_cases[ci].name, msg);
    }
    if (verbose())
        printf("     teacher-forced: %lld values, %lld bit-exact, max abs diff %.3g\n", (long long)es.values,
               (long long)es.exact, es.max_abs);
    CHECK(es.values > 4000, "only %lld values compared", (long long)es.values);
#if FLT_EVAL_METHOD == 0 && !defined(__clang__)
    /* float32 ops in the reference's order (Sleef and numpy's log, QUADPACK's
     * sum): bit for bit; with a compiler that contracts a*b+c into FMAs only
     * the tolerances above apply */
    CHECK(es.exact == es.values, "%lld of %lld values not bit-exact (max abs diff %.3g)",
          (long long)(es.values - es.exact), (long long)es.values, es.max_abs);
#endif
}

/* ---------- the cases end to end ---------- */

/* The library run (case_util.c: embeddings, noise, first noise_pred, last
 * latents, decoded, image), then every intermediate the golden stores. */
static void run_case_library_all(const case_spec *cs) {
    run_case_library_on(cs, NULL);
    if (test_failed()) return;
    case_req c;
    CHECK(case_find(cs->name, &c), "cannot read case %s", cs->name);
    const int calls = cJSON_GetObjectItem(c.j, "num_unet_calls")->valueint;
    cJSON_Delete(c.j);
    char gp[256];
    snprintf(gp, sizeof gp, "%s", case_file(&c, cs->name, ".safetensors"));
    st_file mine, gold;
    CHECK_OK(st_open(&mine, tmp_path(cs->name)));
    sdc_status st = st_open(&gold, fixture_path(gp));
    if (st) st_close(&mine);
    CHECK_OK(st);
    char bad[64] = "";
    double worst = 0, bad_diff = 0;
    int compared = 0;
    for (int k = 0; k <= calls && !bad[0]; k++) {
        /* latents, model inputs and noise_pred (whose input drifted with the
         * latents since the first call) as the last latents; the noise exactly */
        static const char *const kinds[] = {"latents_%d", "model_input_%d", "noise_pred_%d", "scheduler_noise_%d"};
        for (int q = 0; q < 4 && !bad[0]; q++) {
            char name[64];
            snprintf(name, sizeof name, kinds[q], k);
            if (!st_find(&gold, name)) continue;
            const double tol = q < 3 ? cs->latents_tol : 0;
            double d = case_cmp_tensor(&mine, &gold, name);
            if (q == 0 && d > worst) worst = d;
            if (!(d <= tol)) snprintf(bad, sizeof bad, "%s", name), bad_diff = d;
            compared++;
        }
    }
    double ds = case_cmp_tensor(&mine, &gold, "sigmas");
    st_close(&mine), st_close(&gold);
    CHECK(!bad[0], "%s: %s differs by %g", cs->name, bad, bad_diff);
    CHECK(ds == 0, "%s: sigmas differ by %g", cs->name, ds);
    if (verbose()) printf("     %s: %d intermediates, worst latents diff %.3g\n", cs->name, compared, worst);
    CHECK(compared >= 3 * calls, "%s: only %d intermediates compared", cs->name, compared);
}

#define KCASE_TESTS(id, idx)                                                                                           \
    TEST(case_##id##_library) { run_case_library_all(&k_cases[idx]); }                                                 \
    TEST(case_##id##_cli_png) { run_case_cli_on(&k_cases[idx], NULL); }

KCASE_TESTS(sd_heun, 0)
KCASE_TESTS(sd_dpm2, 1)
KCASE_TESTS(sd_dpm2_a, 2)
KCASE_TESTS(sd_lms_karras, 3)

/* ---------- what the cases do not cover ---------- */

TEST(ksampler_class_defaults) {
    /* from_config({}): each class's own __init__ defaults (diffusers 0.30.3) */
    static const struct {
        const char *name;
        double beta_start, beta_end;
        int nkeys, calls_per_step;
    } want[] = {{"heun", 0.00085, 0.012, 11, 2},
                {"dpm2", 0.00085, 0.012, 9, 2},
                {"dpm2_a", 0.00085, 0.012, 9, 2},
                {"lms", 0.0001, 0.02, 9, 1}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        sched_config c;
        CHECK_OK(sched_config_from_json(NULL, want[i].name, &c));
        CHECK(c.beta_start == want[i].beta_start && c.beta_end == want[i].beta_end &&
                  !strcmp(c.beta_schedule, "linear") && !strcmp(c.timestep_spacing, "linspace") &&
                  !strcmp(c.prediction_type, "epsilon") && c.steps_offset == 0 && !c.use_karras_sigmas &&
                  c.n_defaulted == want[i].nkeys,
              "%s defaults (%d keys)", want[i].name, c.n_defaulted);
        CHECK(c.def->calls_per_step == want[i].calls_per_step, "%s: calls_per_step %d", want[i].name,
              c.def->calls_per_step);
    }
    sched_config c;
    CHECK_OK(sched_config_from_json(NULL, "heun", &c));
    CHECK(!c.clip_sample && c.clip_sample_range == 1.0, "Heun clip_sample defaults");
}

/* the scheduler of a sampler on SD's betas with a few overrides */
static sdc_status make(sdc_scheduler **s, const char *name, const char *spacing, int karras, const char *pred, int n) {
    sched_config c;
    SDC_TRY(sched_config_from_json(NULL, name, &c));
    c.beta_start = 0.00085, c.beta_end = 0.012;
    snprintf(c.beta_schedule, sizeof c.beta_schedule, "scaled_linear");
    c.steps_offset = 1;
    if (spacing) snprintf(c.timestep_spacing, sizeof c.timestep_spacing, "%s", spacing);
    if (pred) snprintf(c.prediction_type, sizeof c.prediction_type, "%s", pred);
    c.use_karras_sigmas = karras;
    return sched_create(s, &c, n);
}

TEST(ksampler_call_structure) {
    static const char *const names[] = {"heun", "dpm2", "dpm2_a", "lms"};
    static const char *const spacings[] = {"linspace", "leading", "trailing"};
    static const int ns[] = {1, 2, 7, 30};
    for (int a = 0; a < 4; a++)
        for (int sp = 0; sp < 3; sp++)
            for (int karras = 0; karras < 2; karras++)
                for (int q = 0; q < 4; q++) {
                    const int n = ns[q], second = a < 3;
                    sdc_scheduler *s;
                    CHECK_OK(make(&s, names[a], spacings[sp], karras, NULL, n));
                    int nsig, calls = sched_num_calls(s);
                    const double *sig = sched_sigmas(s, &nsig);
                    int want_sig = a == 0 ? 2 * n : a < 3 ? 2 * n + 2 : n + 1;
                    int ok = calls == (second ? 2 * n - 1 : n) && nsig == want_sig && sched_timesteps_are_float(s);
                    /* descending sigmas down to a final 0; the first is init_noise_sigma (leading: sqrt(s^2 + 1)) */
                    for (int i = 1; ok && i < nsig; i++) ok = sig[i] <= sig[i - 1];
                    ok = ok && sig[nsig - 1] == 0 && sig[0] > 0;
                    float s0 = (float)sig[0];
                    float want0 = sp == 1 ? sqrtf(s0 * s0 + 1.0f) : s0;
                    ok = ok && sched_init_noise_sigma(s) == want0;
                    /* timesteps in [0, T); the steps' and the midpoints' each descend, a midpoint
                     * below its step's start (DPM2 a's is about the next step's, rounded or not) */
                    for (int i = 0; ok && i < calls; i++) {
                        double t = sched_timestep(s, i),
                               back = i >= (second ? 2 : 1) ? sched_timestep(s, i - (second ? 2 : 1)) : 1e9;
                        ok = t >= 0 && t < 1000 && t <= back && (!(i & 1) || !second || t <= sched_timestep(s, i - 1));
                    }
                    /* Heun repeats each timestep but the first; who draws noise */
                    for (int i = 1; ok && a == 0 && i < calls; i += 2)
                        ok = sched_timestep(s, i) == sched_timestep(s, i + 1);
                    for (int i = 0; ok && i < calls; i++) ok = sched_draws_noise(s, i, 0) == (a == 2);
                    sched_free(s);
                    CHECK(ok, "%s %s%s, %d steps: %d calls, %d sigmas", names[a], spacings[sp], karras ? " karras" : "",
                          n, calls, nsig);
                }
}

TEST(ksampler_karras_sigmas_are_eulers) {
    /* Heun and LMS take EulerDiscrete's Karras sigmas and timesteps, KDPM2 the
     * same sigmas with timesteps rounded to integers */
    for (int k = 0; k < 2; k++) {
        const char *spacing = k ? "leading" : NULL;
        sdc_scheduler *e, *h, *l, *d;
        CHECK_OK(make(&e, "euler", spacing, 1, NULL, 12));
        CHECK_OK(make(&h, "heun", spacing, 1, NULL, 12));
        CHECK_OK(make(&l, "lms", spacing, 1, NULL, 12));
        CHECK_OK(make(&d, "dpm2", spacing, 1, NULL, 12));
        int ne, nh, nl, nd;
        const double *se = sched_sigmas(e, &ne), *sh = sched_sigmas(h, &nh), *sl = sched_sigmas(l, &nl),
                     *sd = sched_sigmas(d, &nd);
        int ok = ne == 13 && nh == 24 && nl == 13 && nd == 26;
        for (int j = 0; ok && j < 12; j++) {
            ok = sl[j] == se[j] && sh[j ? 2 * j - 1 : 0] == se[j] && sd[j ? 2 * j - 1 : 0] == se[j];
            double te = sched_timestep(e, j);
            ok = ok && sched_timestep(l, j) == te && sched_timestep(h, j ? 2 * j : 0) == te;
            ok = ok && sched_timestep(d, 2 * j) == nearbyint(te) &&
                 sched_init_noise_sigma(d) == sched_init_noise_sigma(e);
        }
        sched_free(e), sched_free(h), sched_free(l), sched_free(d);
        CHECK(ok, "Karras schedules (%s spacing) differ from Euler's", spacing ? spacing : "linspace");
    }
}

/* the probability-flow ODE dx/dsigma = e with a constant e: every sampler
 * here integrates it exactly, so n steps from x0 end at x0 - sigma_max * e */
TEST(ksampler_constant_derivative_is_exact) {
    static const char *const names[] = {"heun", "dpm2", "lms"};
    for (int a = 0; a < 3; a++)
        for (int karras = 0; karras < 2; karras++) {
            sdc_scheduler *s;
            CHECK_OK(make(&s, names[a], NULL, karras, NULL, 9));
            const float x_start = 3.0f * sched_init_noise_sigma(s);
            float x[4] = {x_start, x_start, x_start, x_start}, e[4] = {1, 1, 1, 1};
            sdc_status st = SDC_OK;
            for (int i = 0; i < sched_num_calls(s) && !st; i++) st = sched_step(s, i, e, x, 1, 4, NULL, 0, NULL, NULL);
            const double want = (double)x_start - (double)sched_init_noise_sigma(s);
            sched_free(s);
            CHECK(!st, "%s: %s", names[a], sdc_last_error());
            CHECK(fabs(x[0] - want) <= 1e-5 * fabs(want), "%s%s: %.9g, exact %.9g", names[a], karras ? " karras" : "",
                  (double)x[0], want);
        }
}

TEST(ksampler_prediction_types) {
    /* v_prediction runs everywhere; 'sample' is Heun's and LMS's only, as in diffusers */
    static const char *const names[] = {"heun", "dpm2", "dpm2_a", "lms"};
    for (int a = 0; a < 4; a++) {
        sdc_scheduler *s;
        CHECK_OK(make(&s, names[a], NULL, 0, "v_prediction", 4));
        torch_gen g;
        torch_gen_seed(&g, 7);
        float x[8], e[8], x0[8];
        for (int k = 0; k < 8; k++) x[k] = 14.0f * (float)(k - 4), e[k] = 0.5f * (float)k;
        sdc_status st = SDC_OK;
        int finite = 1;
        for (int i = 0; i < sched_num_calls(s) && !st; i++) {
            st = sched_step(s, i, e, x, 1, 8, &g, 0, x0, NULL);
            for (int k = 0; k < 8; k++) finite &= isfinite(x[k]) && isfinite(x0[k]);
        }
        sched_free(s);
        CHECK(!st && finite, "%s v_prediction: %s", names[a], st ? sdc_last_error() : "not finite");
        st = make(&s, names[a], NULL, 0, "sample", 4);
        if (a == 1 || a == 2) {
            CHECK(st == SDC_ERR_ARG && !s, "%s: prediction_type sample accepted", names[a]);
            CHECK(strstr(sdc_last_error(), "sample"), "message: %s", sdc_last_error());
        } else {
            CHECK(!st, "%s sample: %s", names[a], sdc_last_error());
            /* x0 = the model output: after the last step the sample is it */
            for (int k = 0; k < 8; k++) x[k] = 5.0f, e[k] = -2.0f;
            for (int i = 0; i < sched_num_calls(s) && !st; i++) st = sched_step(s, i, e, x, 1, 8, NULL, 0, x0, NULL);
            sched_free(s);
            CHECK(!st && fabsf(x[0] + 2.0f) < 1e-5f && x0[3] == -2.0f, "%s sample: x = %g", names[a], (double)x[0]);
        }
    }
}

TEST(ksampler_heun_clip_sample) {
    sched_config c;
    CHECK_OK(sched_config_from_json(NULL, "heun", &c));
    c.clip_sample = 1;
    c.clip_sample_range = 0.5;
    sdc_scheduler *s;
    CHECK_OK(sched_create(&s, &c, 3));
    float x[2] = {10.0f, -10.0f}, e[2] = {0, 0}, x0[2];
    sdc_status st = sched_step(s, 0, e, x, 1, 2, NULL, 0, x0, NULL);
    sched_free(s);
    CHECK(!st && x0[0] == 0.5f && x0[1] == -0.5f, "x0 = %g, %g", (double)x0[0], (double)x0[1]);
}

TEST(ksampler_step_order_and_generators) {
    sdc_scheduler *s;
    float x[8] = {0}, e[8] = {0};
    static const char *const names[] = {"heun", "dpm2", "dpm2_a", "lms"};
    for (int a = 0; a < 4; a++) { /* the second call of a pair needs the first's state */
        CHECK_OK(make(&s, names[a], NULL, 0, NULL, 5));
        torch_gen g;
        torch_gen_seed(&g, 1);
        sdc_status st = sched_step(s, 1, e, x, 1, 8, &g, 0, NULL, NULL);
        sched_free(s);
        CHECK(st == SDC_ERR_ARG && strstr(sdc_last_error(), "in order"), "%s: step 1 before 0: %s", names[a],
              sdc_last_error());
    }
    CHECK_OK(make(&s, "dpm2_a", NULL, 0, NULL, 5));
    sdc_status st = sched_step(s, 0, e, x, 1, 8, NULL, 0, NULL, NULL);
    sched_free(s);
    CHECK(st == SDC_ERR_ARG && strstr(sdc_last_error(), "generators"), "DPM2 a without generators: %s",
          sdc_last_error());
}

TEST(ksampler_dpm2_a_draws_every_call) {
    /* one draw per call from each image's own generator, shaped like its
     * latents: after the 5 calls of 3 steps, image b's noise is the fifth
     * draw of a generator seeded 5 + b */
    sdc_scheduler *s;
    CHECK_OK(make(&s, "dpm2_a", NULL, 0, NULL, 3));
    torch_gen g[2];
    torch_gen_seed(&g[0], 5), torch_gen_seed(&g[1], 6);
    float x[16], e[16], noise[16], want[8];
    for (int k = 0; k < 16; k++) x[k] = (float)k, e[k] = 0.1f * (float)k;
    sdc_status st = SDC_OK;
    for (int i = 0; i < sched_num_calls(s) && !st; i++) st = sched_step(s, i, e, x, 2, 8, g, 0, NULL, noise);
    int calls = sched_num_calls(s);
    sched_free(s);
    CHECK(!st && calls == 5, "%d calls: %s", calls, sdc_last_error());
    for (int b = 0; b < 2; b++) {
        torch_gen r;
        torch_gen_seed(&r, 5 + (uint64_t)b);
        for (int i = 0; i < 5; i++) torch_randn(&r, want, 8);
        CHECK(!memcmp(noise + 8 * b, want, sizeof want), "image %d's draws are not its generator's, in order", b);
    }
}

TEST(ksampler_names) {
    static const struct {
        const char *a1111, *alias, *name;
    } want[] = {{"Heun", "k_heun", "heun"},
                {"DPM2", "k_dpm_2", "dpm2"},
                {"DPM2 a", "k_dpm_2_a", "dpm2_a"},
                {"LMS", "k_lms", "lms"}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        int karras = -1;
        const sdc_sampler_info *si = sdc_sampler_find_a1111(want[i].a1111, &karras);
        CHECK(si && !strcmp(si->name, want[i].name) && karras == 0, "%s", want[i].a1111);
        CHECK(sdc_sampler_find_a1111(want[i].alias, NULL) == si && sdc_sampler_find(want[i].name) == si, "%s aliases",
              want[i].name);
        char legacy[64], canon[64];
        snprintf(legacy, sizeof legacy, "%s Karras", want[i].a1111);
        CHECK(sdc_sampler_find_a1111(legacy, &karras) == si && karras == 1, "%s", legacy);
        CHECK_OK(sched_canonical_name(legacy, canon, sizeof canon));
        CHECK(!strcmp(canon, legacy), "'%s' is stored as '%s'", legacy, canon);
        sched_config c;
        CHECK_OK(sched_config_from_json(NULL, legacy, &c));
        CHECK(c.def == def_of(want[i].name) && c.use_karras_sigmas, "%s: no Karras sigmas", legacy);
    }
    int karras;
    CHECK(sdc_sampler_find_a1111("k_dpm_2_a_ka", &karras) == sdc_sampler_find("dpm2_a") && karras == 1, "k_dpm_2_a_ka");
    CHECK(sdc_sampler_find("KDPM2AncestralDiscreteScheduler") == sdc_sampler_find("dpm2-a"), "class / '-' spelling");
}
