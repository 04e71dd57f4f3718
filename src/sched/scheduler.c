/* scheduler.c - creation, the checks every sampler shares, and the calls
 * into the sampler's registry row. */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sched/sched_internal.h"

static int one_of(const char *v, const char *const *list) {
    for (; *list; list++)
        if (!strcmp(v, *list)) return 1;
    return 0;
}

/* the checks every sampler shares, then its own */
static sdc_status validate(const sched_config *c, int steps) {
    if (!c->def) return sdc_fail(SDC_ERR_ARG, "scheduler: no sampler in the config");
    const char *cls = c->def->info.diffusers_class;
    static const char *const spacings[] = {"linspace", "leading", "trailing", NULL};
    static const char *const preds[] = {"epsilon", "v_prediction", "sample", NULL};
    static const char *const betas[] = {"linear", "scaled_linear", "squaredcos_cap_v2", NULL};
    if (c->num_train_timesteps < 2 || c->num_train_timesteps > 100000)
        return sdc_fail(SDC_ERR_ARG, "%s: num_train_timesteps %d out of range (2..100000)", cls, c->num_train_timesteps);
    if (steps < 1)
        return sdc_fail(SDC_ERR_ARG, "%s: num_inference_steps must be at least 1 (got %d)", cls, steps);
    if (steps > c->num_train_timesteps)
        return sdc_fail(SDC_ERR_ARG, "%s: num_inference_steps %d cannot be larger than num_train_timesteps %d", cls, steps,
                        c->num_train_timesteps);
    if (c->has_trained_betas)
        return sdc_fail(SDC_ERR_UNSUPPORTED, "%s: trained_betas are not supported (use beta_schedule)", cls);
    if (!one_of(c->beta_schedule, betas))
        return sdc_fail(SDC_ERR_ARG, "%s: beta_schedule '%s' is not implemented (valid: linear, scaled_linear, squaredcos_cap_v2)",
                        cls, c->beta_schedule);
    if (!(c->beta_start >= 0 && c->beta_end >= 0 && c->beta_start < 1 && c->beta_end < 1))
        return sdc_fail(SDC_ERR_ARG, "%s: beta_start %g / beta_end %g out of range [0, 1)", cls, c->beta_start, c->beta_end);
    if (sched_takes_key(c->def, "timestep_spacing") && !one_of(c->timestep_spacing, spacings))
        return sdc_fail(SDC_ERR_ARG, "%s: timestep_spacing '%s' is not supported (valid: linspace, leading, trailing)", cls,
                        c->timestep_spacing);
    if (!one_of(c->prediction_type, preds))
        return sdc_fail(SDC_ERR_ARG, "%s: prediction_type '%s' must be one of epsilon, v_prediction, sample", cls,
                        c->prediction_type);
    if (c->steps_offset < 0 || c->steps_offset >= c->num_train_timesteps)
        return sdc_fail(SDC_ERR_ARG, "%s: steps_offset %d out of range", cls, c->steps_offset);
    return c->def->validate ? c->def->validate(c, steps) : SDC_OK;
}

sdc_status sched_create(sdc_scheduler **out, const sched_config *cfg, int steps) {
    *out = NULL;
    SDC_TRY(validate(cfg, steps));
    const sched_def *d = cfg->def;
    sdc_scheduler *s = calloc(1, sizeof *s);
    if (!s) return sdc_fail(SDC_ERR_NOMEM, "scheduler: out of memory");
    s->cfg = *cfg;
    s->num_inference_steps = steps;
    s->init_noise_sigma = 1.0f;
    sdc_status st = sched_make_alphas_cumprod(cfg, &s->ac);
    if (!st) {
        s->final_ac = cfg->set_alpha_to_one ? 1.0f : s->ac[0];
        if (d->state_create) st = d->state_create(s);
    }
    if (!st) st = d->set_timesteps(s, steps);
    if (!st && s->sigmas) {
        s->sigmas_d = malloc((size_t)s->n_sigmas * sizeof(double));
        if (!s->sigmas_d) st = sdc_fail(SDC_ERR_NOMEM, "scheduler: out of memory");
        for (int i = 0; !st && i < s->n_sigmas; i++) s->sigmas_d[i] = (double)s->sigmas[i];
    }
    if (st) {
        sched_free(s);
        return st;
    }
    assert(s->n_calls >= 1 && (!s->ts_int != !s->ts_float)); /* one kind of timesteps, at least one */
    *out = s;
    return SDC_OK;
}

void sched_free(sdc_scheduler *s) {
    if (!s) return;
    if (s->state && s->cfg.def->state_free) s->cfg.def->state_free(s->state);
    free(s->ts_int);
    free(s->ts_float);
    free(s->sigmas);
    free(s->sigmas_d);
    free(s->ac);
    free(s);
}

/* the next step must be the begin call, which starts the sampler's history over (state_reset) */
void sched_reset(sdc_scheduler *s) { s->steps_done = s->begin; }

sdc_status sched_strength_begin(const sdc_scheduler *s, double strength, int *begin, int *steps_run) {
    const int N = s->num_inference_steps;
    if (!(strength > 0 && strength <= 1)) return sdc_fail(SDC_ERR_ARG, "strength %g out of range (0, 1]", strength);
    double prod = (double)N * strength; /* Python: int(num_inference_steps * strength) */
    int init = prod >= N ? N : (int)prod;
    if (init < 1)
        return sdc_fail(SDC_ERR_ARG,
                        "strength %g of %d steps runs no step (int(%d x %g) = 0): raise the steps or the strength",
                        strength, N, N, strength);
    *begin = (N - init) * s->cfg.def->calls_per_step;
    *steps_run = init;
    if (*begin >= s->n_calls) /* cannot happen for diffusers' schedules (n_calls >= N * order - order + 1) */
        return sdc_fail(SDC_ERR_ARG, "strength %g: call %d is past the %d calls of the schedule", strength, *begin,
                        s->n_calls);
    return SDC_OK;
}

sdc_status sched_set_begin(sdc_scheduler *s, int begin) {
    if (begin < 0 || begin >= s->n_calls)
        return sdc_fail(SDC_ERR_ARG, "%s: begin index %d out of range (0..%d)", s->cfg.def->info.diffusers_class, begin,
                        s->n_calls - 1);
    s->begin = s->steps_done = begin;
    return SDC_OK;
}

int sched_begin(const sdc_scheduler *s) { return s->begin; }

sdc_status sched_add_noise(const sdc_scheduler *s, int i, const float *x0, const float *noise, float *out, int64_t n) {
    const char *cls = s->cfg.def->info.diffusers_class;
    if (i < 0 || i >= s->n_calls)
        return sdc_fail(SDC_ERR_ARG, "%s: add_noise at call %d out of range (0..%d)", cls, i, s->n_calls - 1);
    if (!s->sigmas && !s->ts_int)
        return sdc_fail(SDC_ERR_UNSUPPORTED, "%s: add_noise needs sigmas or integer timesteps", cls);
    if (s->cfg.def->add_noise) s->cfg.def->add_noise(s, i, x0, noise, out, n);
    else sched_add_noise_default(s, i, x0, noise, out, n);
    return SDC_OK;
}

const sched_config *sched_get_config(const sdc_scheduler *s) { return &s->cfg; }
int sched_num_inference_steps(const sdc_scheduler *s) { return s->num_inference_steps; }
int sched_num_calls(const sdc_scheduler *s) { return s->n_calls; }
int sched_calls_per_step(const sdc_scheduler *s) { return s->cfg.def->calls_per_step; }
int sched_timesteps_are_float(const sdc_scheduler *s) { return s->ts_float != NULL; }

double sched_timestep(const sdc_scheduler *s, int i) {
    if (i < 0 || i >= s->n_calls) return NAN;
    return s->ts_float ? (double)s->ts_float[i] : (double)s->ts_int[i];
}

const double *sched_sigmas(const sdc_scheduler *s, int *n) {
    if (n) *n = s->sigmas_d ? s->n_sigmas : 0;
    return s->sigmas_d;
}

const float *sched_alphas_cumprod(const sdc_scheduler *s, int *n) {
    if (n) *n = s->cfg.num_train_timesteps;
    return s->ac;
}

float sched_init_noise_sigma(const sdc_scheduler *s) { return s->init_noise_sigma; }

void sched_scale_model_input(sdc_scheduler *s, int i, float *x, int64_t n) {
    if (!s->cfg.def->scale_model_input) return; /* identity */
    if (i < 0 || i >= s->n_calls) return;
    s->cfg.def->scale_model_input(s, i, x, n);
}

int sched_accepts_eta(const sdc_scheduler *s) { return s->cfg.def->info.takes_eta; }

int sched_draws_noise(const sdc_scheduler *s, int i, float eta) {
    if (i < 0 || i >= s->n_calls) return 0;
    return s->cfg.def->draws_noise ? s->cfg.def->draws_noise(s, i, eta) : 0;
}

static sdc_status step_with(sdc_scheduler *s, int i, const float *model_output, float *sample, int batch,
                            int64_t per_image, const sched_gens *gens, float eta, float *pred_x0, float *noise_out) {
    const sched_def *d = s->cfg.def;
    const char *cls = d->info.diffusers_class;
    if (i < 0 || i >= s->n_calls)
        return sdc_fail(SDC_ERR_ARG, "%s: step %d out of range (0..%d)", cls, i, s->n_calls - 1);
    if (batch < 1 || per_image < 1) return sdc_fail(SDC_ERR_ARG, "%s: empty batch", cls);
    const int64_t n = (int64_t)batch * per_image;
    const int draws = sched_draws_noise(s, i, eta);
    if (draws && !gens->torch && !gens->any)
        return sdc_fail(SDC_ERR_ARG, "%s: step %d draws noise but no generators were given", cls, i);
    if (noise_out && !draws) memset(noise_out, 0, (size_t)n * sizeof(float));
    if (d->state_reset) { /* a history: the begin call (re)starts it, the others come in order with the same batch */
        if (i == s->begin) {
            s->hist_n = 0;
            SDC_TRY(d->state_reset(s, n));
            s->hist_n = n;
        } else if (i != s->steps_done) {
            return sdc_fail(SDC_ERR_ARG, "%s: steps must be taken in order (expected step %d, got %d)", cls, s->steps_done,
                            i);
        } else if (s->hist_n != n) {
            return sdc_fail(SDC_ERR_ARG, "%s: batch size changed between steps (%lld -> %lld floats)", cls,
                            (long long)s->hist_n, (long long)n);
        }
        assert(s->hist_n == n && (i == s->begin || i == s->steps_done));
    }
    sdc_status st = d->step(s, i, model_output, sample, batch, per_image, gens, eta, pred_x0, noise_out);
    if (!st) s->steps_done = i + 1;
    return st;
}

sdc_status sched_step(sdc_scheduler *s, int i, const float *model_output, float *sample, int batch, int64_t per_image,
                      torch_gen *gens, float eta, float *pred_x0, float *noise_out) {
    const sched_gens g = {.torch = gens};
    return step_with(s, i, model_output, sample, batch, per_image, &g, eta, pred_x0, noise_out);
}

sdc_status sched_step_gen(sdc_scheduler *s, int i, const float *model_output, float *sample, int batch,
                          int64_t per_image, noise_gen *gens, float eta, float *pred_x0, float *noise_out) {
    const sched_gens g = {.any = gens};
    return step_with(s, i, model_output, sample, batch, per_image, &g, eta, pred_x0, noise_out);
}
