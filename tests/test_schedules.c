/* test_schedules.c - schedule types (A1111's "Schedule type": the library
 * table of src/sched/schedules.c, the formulas of schedule_common.c, which
 * sampler rows take which) and the rule that tells apart registry rows
 * sharing a diffusers class (DPM++ 2M / DPM++ 2M SDE). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "harness.h"
#include "io/png_io.h"
#include "sched/sched_internal.h"
#include "sdc.h"

static const sched_def *def_of(const char *name) { return sched_find(name, NULL); }

/* an SD 1.x-like config of the row (scaled_linear betas, leading spacing, steps_offset 1) */
static sdc_status sd_config(const char *name, sched_config *c) {
    cJSON *j = cJSON_Parse("{\"beta_start\": 0.00085, \"beta_end\": 0.012, \"beta_schedule\": \"scaled_linear\","
                           " \"timestep_spacing\": \"leading\", \"steps_offset\": 1}");
    sdc_status st = sched_config_from_json(j, name, c);
    cJSON_Delete(j);
    return st;
}

TEST(schedules_table) {
    const int n = sdc_schedule_count();
    CHECK(n == SCHED_SCHEDULE_COUNT && !sdc_schedule_at(-1) && !sdc_schedule_at(n), "%d schedule types", n);
    CHECK(!strcmp(sdc_schedule_at(SCHED_SCHEDULE_AUTOMATIC)->name, "automatic") &&
              !strcmp(sdc_schedule_at(SCHED_SCHEDULE_KARRAS)->label, "Karras"),
          "the enum and the table disagree");
    for (int i = 0; i < n; i++) {
        const sdc_schedule_info *k = sdc_schedule_at(i);
        CHECK(k->name && k->label && k->summary && *k->summary, "row %d incomplete", i);
        const char *names[8] = {k->name, k->label};
        int nn = 2;
        for (int a = 0; k->aliases && k->aliases[a] && nn < 8; a++) names[nn++] = k->aliases[a];
        for (int m = 0; m < nn; m++) {
            CHECK(sdc_schedule_find(names[m]) == k, "'%s' does not find %s", names[m], k->name);
            char upper[64];
            snprintf(upper, sizeof upper, "%s", names[m]);
            for (char *p = upper; *p; p++) *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
            CHECK(sdc_schedule_find(upper) == k, "'%s' (any case) does not find %s", upper, k->name);
        }
    }
    CHECK(sdc_schedule_find("normal") == sdc_schedule_at(SCHED_SCHEDULE_UNIFORM), "normal is uniform");
    CHECK(sdc_schedule_find("SGMUniform") == sdc_schedule_at(SCHED_SCHEDULE_SGM_UNIFORM), "SGMUniform");
    CHECK(!sdc_schedule_find("polyexponential") && !sdc_schedule_find(NULL) && !sdc_schedule_find(""), "unknown names");
    CHECK(sched_schedule_unknown("x") == SDC_ERR_ARG && strstr(sdc_last_error(), "sgm_uniform"), "message: %s",
          sdc_last_error());
    CHECK(!sdc_sampler_takes_schedule(sdc_sampler_at(0), NULL) && !sdc_sampler_takes_schedule(NULL, sdc_schedule_at(0)),
          "NULLs");
}

/* A row takes every schedule type exactly when it steps over sigmas: its
 * schedule helpers read the config's schedule (a row of the other kind
 * would ignore it silently). */
TEST(schedules_rows_declare_what_they_take) {
    for (int i = 0; i < sched_count(); i++) {
        const sched_def *d = sched_at(i);
        const sdc_sampler_info *s = sched_info(d);
        sched_config c;
        sdc_scheduler *sc;
        CHECK_OK(sd_config(s->name, &c));
        CHECK_OK(sched_create(&sc, &c, 10));
        const int sigma = sched_sigmas(sc, NULL) != NULL;
        sched_free(sc);
        CHECK(s->schedules == (sigma ? SCHED_SCHEDULES_SIGMA : SCHED_SCHEDULES_TIMESTEP), "%s: schedules %#x", s->name,
              s->schedules);
        for (int k = 0; k < sdc_schedule_count(); k++)
            CHECK(sdc_sampler_takes_schedule(s, sdc_schedule_at(k)) == !!(s->schedules & SCHED_SCHEDULE_BIT(k)),
                  "%s / %s", s->name, sdc_schedule_at(k)->name);
    }
    /* the others refuse, naming who takes it */
    sched_config c;
    CHECK_OK(sd_config("ddim", &c));
    CHECK(sched_config_set_schedule(&c, SCHED_SCHEDULE_EXPONENTIAL, "schedule type Exponential") == SDC_ERR_ARG &&
              strstr(sdc_last_error(), "applies to") && strstr(sdc_last_error(), "euler_a") &&
              strstr(sdc_last_error(), "not to ddim"),
          "DDIM took Exponential: %s", sdc_last_error());
    CHECK_OK(sched_config_set_schedule(&c, SCHED_SCHEDULE_UNIFORM, "uniform"));
}

/* each formula schedule on every sigma sampler: n sigmas falling from the
 * row's sigma_max, its timesteps from them, the formula's shape */
TEST(schedules_formulas_on_every_sigma_sampler) {
    const int steps = 12;
    for (int i = 0; i < sched_count(); i++) {
        const sdc_sampler_info *s = sched_info(sched_at(i));
        if (!(s->schedules & SCHED_SCHEDULE_BIT(SCHED_SCHEDULE_EXPONENTIAL))) continue;
        for (int k = SCHED_SCHEDULE_KARRAS; k < SCHED_SCHEDULE_COUNT; k++) {
            sched_config c;
            sdc_scheduler *sc;
            CHECK_OK(sd_config(s->name, &c));
            CHECK_OK(sched_config_set_schedule(&c, (sched_schedule)k, "test"));
            sdc_status st = sched_create(&sc, &c, steps);
            CHECK(st == SDC_OK, "%s / %s: %s", s->name, sdc_schedule_at(k)->name, sdc_last_error());
            int ns, T;
            const double *sig = sched_sigmas(sc, &ns);
            const float *ac = sched_alphas_cumprod(sc, &T);
            const int calls = sched_num_calls(sc), per_step = sched_calls_per_step(sc);
            /* one sigma per call and the last one; KDPM2's classes list two more
             * (diffusers' sigmas: the last repeated twice) */
            int ok = calls >= steps && ns >= calls + 1 && ns <= calls + 3;
            /* strictly falling over the step sigmas (multi-call samplers repeat theirs) */
            for (int q = 1; ok && q < calls; q++) ok = per_step > 1 ? sig[q] <= sig[q - 1] : sig[q] < sig[q - 1];
            double smax = sqrt((1 - (double)ac[T - 1]) / ac[T - 1]);
            ok = ok && sig[0] <= smax * (1 + 1e-6);
            /* the shapes: exponential falls by one ratio; simple takes training sigmas */
            if (ok && k == SCHED_SCHEDULE_EXPONENTIAL && per_step == 1) {
                double r0 = log(sig[1] / sig[0]);
                for (int q = 2; ok && q < calls; q++) ok = fabs(log(sig[q] / sig[q - 1]) - r0) < 1e-5;
            }
            if (ok && k == SCHED_SCHEDULE_SIMPLE && per_step == 1) {
                for (int q = 0; ok && q < calls; q++) {
                    float want = sqrtf((1.0f - ac[T - 1 - (int)(q * ((double)T / steps))]) /
                                       ac[T - 1 - (int)(q * ((double)T / steps))]);
                    ok = (float)sig[q] == want;
                }
            }
            for (int q = 0; ok && q < calls; q++) ok = sched_timestep(sc, q) >= 0 && sched_timestep(sc, q) <= T - 1;
            sched_free(sc);
            CHECK(ok, "%s / %s: sigmas not of the schedule's shape", s->name, sdc_schedule_at(k)->name);
        }
    }
}

/* The DPM-Solver family's formula sigmas span the training sigmas; SGM
 * uniform's timesteps are evenly spaced from 999 with the last left out. */
TEST(schedules_dpm_family_ranges) {
    sched_config c;
    sdc_scheduler *s;
    CHECK_OK(sd_config("dpmpp_2m", &c));
    CHECK_OK(sched_config_set_schedule(&c, SCHED_SCHEDULE_SGM_UNIFORM, "test"));
    CHECK_OK(sched_create(&s, &c, 10));
    int ok = 1;
    for (int q = 0; q < 10; q++) ok &= sched_timestep(s, q) == nearbyint(999.0 - 999.0 * q / 10);
    sched_free(s);
    CHECK(ok, "SGM uniform timesteps");
    CHECK_OK(sd_config("unipc", &c));
    CHECK_OK(sched_config_set_schedule(&c, SCHED_SCHEDULE_EXPONENTIAL, "test"));
    CHECK_OK(sched_create(&s, &c, 8));
    int ns, T;
    const double *sig = sched_sigmas(s, &ns);
    const float *ac = sched_alphas_cumprod(s, &T);
    const float smax = sqrtf((1.0f - ac[T - 1]) / ac[T - 1]), smin = sqrtf((1.0f - ac[0]) / ac[0]);
    /* UniPC 0.30.3 after formula sigmas: the last one again, not final_sigmas_type */
    ok = (float)sig[0] == smax && fabs(sig[7] - smin) < 1e-6 * smin && sig[8] == sig[7];
    sched_free(s);
    CHECK(ok, "UniPC exponential: %g .. %g, last %g (want %g .. %g)", sig[0], sig[7], sig[8], (double)smax,
          (double)smin);
}

/* Euler a takes no use_karras_sigmas (0.30.3): with the Karras schedule it
 * steps over exactly the sigmas and timesteps EulerDiscrete's
 * use_karras_sigmas gives */
TEST(schedules_euler_a_karras_is_euler_karras) {
    sched_config a, e;
    CHECK_OK(sd_config("euler_a", &a));
    CHECK_OK(sd_config("euler", &e));
    CHECK(!sched_takes_key(def_of("euler_a"), "use_karras_sigmas"), "EulerAncestral takes use_karras_sigmas now?");
    CHECK_OK(sched_config_set_schedule(&a, SCHED_SCHEDULE_KARRAS, "--karras"));
    e.use_karras_sigmas = 1;
    sdc_scheduler *sa, *se;
    CHECK_OK(sched_create(&sa, &a, 9));
    sdc_status st = sched_create(&se, &e, 9);
    if (st) sched_free(sa);
    CHECK(st == SDC_OK, "%s", sdc_last_error());
    int na, ne, ok = 1;
    const double *ga = sched_sigmas(sa, &na), *ge = sched_sigmas(se, &ne);
    ok = na == ne && sched_init_noise_sigma(sa) == sched_init_noise_sigma(se);
    for (int q = 0; ok && q < na; q++) ok = ga[q] == ge[q];
    for (int q = 0; ok && q < sched_num_calls(sa); q++) ok = sched_timestep(sa, q) == sched_timestep(se, q);
    /* and its steps are the ancestral ones, deterministic for a seed */
    float x1[16], x2[16], eps[16];
    for (int q = 0; q < 16; q++) x1[q] = x2[q] = (float)q / 4 - 2, eps[q] = 0.1f * (float)(q % 5);
    for (int round = 0; ok && round < 2; round++) {
        torch_gen g;
        torch_gen_seed(&g, 1234);
        sched_reset(sa);
        for (int q = 0; !st && q < sched_num_calls(sa); q++)
            st = sched_step(sa, q, eps, round ? x2 : x1, 1, 16, &g, 0, NULL, NULL);
    }
    ok = ok && !st && !memcmp(x1, x2, sizeof x1);
    sched_free(sa), sched_free(se);
    CHECK(ok, "Euler a + Karras differs from Euler's Karras sigmas, or is not deterministic");
}

/* the rows that share DPMSolverMultistepScheduler (the class rule) */
TEST(schedules_class_variant_rule) {
    sched_config c;
    cJSON *j = cJSON_Parse("{\"_class_name\": \"DPMSolverMultistepScheduler\", \"algorithm_type\": \"sde-dpmsolver++\"}");
    CHECK_OK(sched_config_from_json(j, NULL, &c)); /* a model whose own scheduler is DPM++ 2M SDE */
    CHECK(c.def == def_of("dpmpp_2m_sde"), "_class_name + sde-dpmsolver++ picked %s", sched_info(c.def)->name);
    CHECK_OK(sched_config_from_json(j, "DPMSolverMultistepScheduler", &c)); /* the class as a name: from_config */
    CHECK(c.def == def_of("dpmpp_2m_sde"), "the class name + sde-dpmsolver++ picked %s", sched_info(c.def)->name);
    CHECK_OK(sched_config_from_json(j, "DPM++ 2M", &c)); /* a row's own name sets its algorithm */
    cJSON *v = sched_config_value(&c, "algorithm_type");
    int ok = c.def == def_of("dpmpp_2m") && cJSON_IsString(v) && !strcmp(v->valuestring, "dpmsolver++");
    cJSON_Delete(v);
    CHECK(ok, "DPM++ 2M over an SDE config");
    cJSON_Delete(j);
    j = cJSON_Parse("{\"_class_name\": \"DPMSolverMultistepScheduler\", \"solver_type\": \"bh2\"}");
    CHECK_OK(sched_config_from_json(j, NULL, &c));
    CHECK(c.def == def_of("dpmpp_2m"), "no algorithm_type: the class default picks dpmpp_2m");
    sdc_scheduler *s;
    CHECK_OK(sched_create(&s, &c, 5)); /* a UniPC solver_type reads as midpoint, as diffusers registers it */
    sched_free(s);
    CHECK_OK(sched_config_from_json(j, "dpmpp_2m_sde", &c));
    v = sched_config_value(&c, "algorithm_type");
    ok = c.def == def_of("dpmpp_2m_sde") && cJSON_IsString(v) && !strcmp(v->valuestring, "sde-dpmsolver++");
    cJSON_Delete(v);
    cJSON_Delete(j);
    CHECK(ok, "dpmpp_2m_sde over a plain config");
    CHECK(sched_find("DPMSolverMultistepScheduler", NULL) == def_of("dpmpp_2m"), "the bare class");
    CHECK(sched_find("DPM++ 2M SDE Karras", &ok) == def_of("dpmpp_2m_sde") && ok == 1, "legacy Karras name");
}

/* sdc_request.schedule and .karras, checked without a model */
TEST(schedules_in_requests) {
    const char *p = "x";
    sdc_request r;
    sdc_request_init(&r);
    r.prompts = &p, r.nprompts = 1;
    r.scheduler = "euler_a", r.schedule = "Karras";
    CHECK_OK(sdc_request_check(NULL, &r));
    r.scheduler = "Euler a Karras", r.schedule = NULL; /* Open WebUI's placeholder, legacy spelling */
    CHECK_OK(sdc_request_check(NULL, &r));
    r.scheduler = "ddim", r.schedule = "exponential";
    CHECK(sdc_request_check(NULL, &r) == SDC_ERR_ARG && strstr(sdc_last_error(), "Exponential applies to"),
          "DDIM + exponential: %s", sdc_last_error());
    r.schedule = "normal"; /* SillyTavern's default: uniform */
    CHECK_OK(sdc_request_check(NULL, &r));
    r.schedule = "polyexponential";
    CHECK(sdc_request_check(NULL, &r) == SDC_ERR_ARG && strstr(sdc_last_error(), "unknown schedule type"), "%s",
          sdc_last_error());
    r.scheduler = "unipc", r.schedule = "karras", r.karras = 0;
    CHECK(sdc_request_check(NULL, &r) == SDC_ERR_ARG && strstr(sdc_last_error(), "disagree"), "%s", sdc_last_error());
    r.karras = 1;
    CHECK_OK(sdc_request_check(NULL, &r));
    r.schedule = NULL, r.scheduler = "pndm";
    CHECK(sdc_request_check(NULL, &r) == SDC_ERR_ARG && strstr(sdc_last_error(), "--karras applies to"), "%s",
          sdc_last_error());
    r.karras = -1, r.scheduler = "dpmpp_2s", r.timestep_spacing = "trailing";
    CHECK_OK(sdc_request_check(NULL, &r)); /* the class's own: only a model's config tells */
}

/* what a schedule does to an image: the infotext says it, a formula moves
 * the pixels, Automatic on a Karras-free config is Uniform */
TEST(schedules_infotext_and_images) {
    sdc_model *m;
    sdc_load_options lo = {0};
    CHECK_OK(sdc_model_load(&m, fixture_path("models/tiny-sd"), &lo));
    const char *p = "a red cube";
    const char *sched[] = {NULL, "uniform", "karras", "exponential", "sgm_uniform", "simple"};
    const char *label[] = {NULL, "Uniform", "Karras", "Exponential", "SGM Uniform", "Simple"};
    uint8_t *px[6] = {0};
    sdc_status st = SDC_OK;
    int bad = -1;
    for (int i = 0; i < 6 && !st && bad < 0; i++) {
        sdc_request r;
        sdc_request_init(&r);
        r.prompts = &p, r.nprompts = 1, r.steps = 4, r.width = r.height = 64, r.seed = 3;
        r.scheduler = "DPM++ 2M SDE", r.schedule = sched[i];
        sdc_image *img;
        int n;
        if ((st = sdc_generate(m, &r, &img, &n))) break;
        char want[64];
        snprintf(want, sizeof want, "Sampler: DPM++ 2M SDE, Schedule type: %s,", label[i] ? label[i] : "");
        if (label[i] ? !strstr(img[0].infotext, want) : !!strstr(img[0].infotext, "Schedule type")) bad = i;
        px[i] = malloc(64 * 64 * 3);
        if (px[i]) memcpy(px[i], img[0].rgb, 64 * 64 * 3);
        sdc_images_free(img, n);
    }
    sdc_model_free(m);
    int same_auto = px[0] && px[1] && !memcmp(px[0], px[1], 64 * 64 * 3);
    int moved = 1; /* SGM uniform's timesteps round to linspace's here: only its sigmas move, a little */
    for (int i = 2; i < 6; i++) moved &= i == 4 || (px[i] && px[1] && memcmp(px[i], px[1], 64 * 64 * 3) != 0);
    for (int i = 0; i < 6; i++) free(px[i]);
    CHECK(st == SDC_OK, "%s", sdc_last_error());
    CHECK(bad < 0, "schedule %s: the infotext does not say %s", bad >= 0 ? sched[bad] : "", bad >= 0 ? label[bad] : "");
    CHECK(same_auto, "Automatic on tiny-sd's config (no Karras) is not Uniform");
    CHECK(moved, "a formula schedule gave the uniform image");
}

/* sdc generate --help lists every sampler with its A1111 name and class, and every schedule type */
TEST(schedules_cli_help_lists_them) {
    char cmd[1024];
    static char out[16384];
    snprintf(cmd, sizeof cmd, "%s generate --help", sdc_binary());
    CHECK(run_cmd(cmd, out, sizeof out) == 0, "--help failed: %s", out);
    for (int i = 0; i < sdc_sampler_count(); i++) {
        const sdc_sampler_info *s = sdc_sampler_at(i);
        char line[128];
        snprintf(line, sizeof line, "%s \"%s\"", s->name, s->a1111_name);
        char *at = strstr(out, s->name);
        CHECK(at && strstr(out, s->a1111_name) && strstr(out, s->diffusers_class), "--help lacks %s", line);
    }
    for (int k = 0; k < sdc_schedule_count(); k++)
        CHECK(strstr(out, sdc_schedule_at(k)->name) && strstr(out, sdc_schedule_at(k)->summary), "--help lacks %s",
              sdc_schedule_at(k)->name);
    CHECK(strstr(out, "--schedule NAME") && strstr(out, "--karras"), "--help lacks --schedule / --karras");
}
