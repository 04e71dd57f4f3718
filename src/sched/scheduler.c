/* scheduler.c - creation, validation and dispatch for the scheduler families. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sched/sched_internal.h"

static int one_of(const char *v, const char *const *list) {
    for (; *list; list++)
        if (!strcmp(v, *list)) return 1;
    return 0;
}

static sdc_status validate(const sched_config *c, int steps) {
    const char *cls = sched_class_name(c->kind);
    static const char *const spacings[] = {"linspace", "leading", "trailing", NULL};
    static const char *const preds[] = {"epsilon", "v_prediction", "sample", NULL};
    static const char *const betas[] = {"linear", "scaled_linear", "squaredcos_cap_v2", NULL};
    if ((unsigned)c->kind >= SCHED_NUM_KINDS) return sdc_fail(SDC_ERR_ARG, "scheduler: invalid kind %d", (int)c->kind);
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
    if (!one_of(c->timestep_spacing, spacings))
        return sdc_fail(SDC_ERR_ARG, "%s: timestep_spacing '%s' is not supported (valid: linspace, leading, trailing)", cls,
                        c->timestep_spacing);
    if (!one_of(c->prediction_type, preds))
        return sdc_fail(SDC_ERR_ARG, "%s: prediction_type '%s' must be one of epsilon, v_prediction, sample", cls,
                        c->prediction_type);
    if (c->steps_offset < 0 || c->steps_offset >= c->num_train_timesteps)
        return sdc_fail(SDC_ERR_ARG, "%s: steps_offset %d out of range", cls, c->steps_offset);
    switch (c->kind) {
    case SCHED_DDIM:
    case SCHED_LCM:
    case SCHED_TCD:
        if (c->thresholding)
            return sdc_fail(SDC_ERR_UNSUPPORTED, "%s: thresholding (dynamic thresholding) is not supported", cls);
        if (c->kind != SCHED_DDIM) {
            if (c->original_inference_steps < 1 || c->original_inference_steps > c->num_train_timesteps)
                return sdc_fail(SDC_ERR_ARG, "%s: original_inference_steps %d out of range (1..%d)", cls,
                                c->original_inference_steps, c->num_train_timesteps);
            if (steps > c->original_inference_steps)
                return sdc_fail(SDC_ERR_ARG, "%s: num_inference_steps %d cannot be larger than original_inference_steps %d",
                                cls, steps, c->original_inference_steps);
        }
        break;
    case SCHED_PNDM:
        if (sched_is_sample(c))
            return sdc_fail(SDC_ERR_ARG, "%s: prediction_type 'sample' is not valid (epsilon or v_prediction)", cls);
        break;
    case SCHED_EULER_A:
        if (sched_is_sample(c))
            return sdc_fail(SDC_ERR_ARG, "%s: prediction_type 'sample' is not implemented by diffusers either", cls);
        break;
    case SCHED_EULER:
        if (strcmp(c->interpolation_type, "linear"))
            return sdc_fail(strcmp(c->interpolation_type, "log_linear") ? SDC_ERR_ARG : SDC_ERR_UNSUPPORTED,
                            "%s: interpolation_type '%s' is not supported (only linear)", cls, c->interpolation_type);
        if (strcmp(c->timestep_type, "discrete") && strcmp(c->timestep_type, "continuous"))
            return sdc_fail(SDC_ERR_ARG, "%s: timestep_type '%s' (discrete or continuous)", cls, c->timestep_type);
        if (!strcmp(c->timestep_type, "continuous") && sched_is_v(c))
            return sdc_fail(SDC_ERR_UNSUPPORTED, "%s: continuous timesteps with v_prediction are not supported", cls);
        if (strcmp(c->final_sigmas_type, "zero") && strcmp(c->final_sigmas_type, "sigma_min"))
            return sdc_fail(SDC_ERR_ARG, "%s: final_sigmas_type '%s' (zero or sigma_min)", cls, c->final_sigmas_type);
        break;
    case SCHED_DPMPP_2M:
        if (strcmp(c->algorithm_type, "dpmsolver++")) {
            static const char *const algos[] = {"dpmsolver", "sde-dpmsolver", "sde-dpmsolver++", NULL};
            return sdc_fail(one_of(c->algorithm_type, algos) ? SDC_ERR_UNSUPPORTED : SDC_ERR_ARG,
                            "%s: algorithm_type '%s' is not supported (only dpmsolver++)", cls, c->algorithm_type);
        }
        if (c->solver_order < 1 || c->solver_order > 3)
            return sdc_fail(SDC_ERR_ARG, "%s: solver_order %d (1, 2 or 3)", cls, c->solver_order);
        if (c->solver_order == 3)
            return sdc_fail(SDC_ERR_UNSUPPORTED, "%s: solver_order 3 is not supported (1 or 2)", cls);
        if (strcmp(c->solver_type, "midpoint") && strcmp(c->solver_type, "heun"))
            return sdc_fail(SDC_ERR_ARG, "%s: solver_type '%s' (midpoint or heun)", cls, c->solver_type);
        if (c->thresholding)
            return sdc_fail(SDC_ERR_UNSUPPORTED, "%s: thresholding (dynamic thresholding) is not supported", cls);
        if (c->use_lu_lambdas) return sdc_fail(SDC_ERR_UNSUPPORTED, "%s: use_lu_lambdas is not supported", cls);
        if (c->has_variance_type) return sdc_fail(SDC_ERR_UNSUPPORTED, "%s: variance_type is not supported", cls);
        if (strcmp(c->final_sigmas_type, "zero") && strcmp(c->final_sigmas_type, "sigma_min"))
            return sdc_fail(SDC_ERR_ARG, "%s: final_sigmas_type '%s' (zero or sigma_min)", cls, c->final_sigmas_type);
        if (!strcmp(c->timestep_spacing, "leading") && steps + 1 > c->num_train_timesteps)
            return sdc_fail(SDC_ERR_ARG, "%s: too many steps (%d) for leading spacing", cls, steps);
        break;
    }
    return SDC_OK;
}

sdc_status sched_create(sdc_scheduler **out, const sched_config *cfg, int steps) {
    *out = NULL;
    SDC_TRY(validate(cfg, steps));
    sdc_scheduler *s = calloc(1, sizeof *s);
    if (!s) return sdc_fail(SDC_ERR_NOMEM, "scheduler: out of memory");
    s->cfg = *cfg;
    s->num_inference_steps = steps;
    s->init_noise_sigma = 1.0f;
    sdc_status st = sched_make_alphas_cumprod(cfg, &s->ac);
    if (!st) {
        s->final_ac = cfg->set_alpha_to_one ? 1.0f : s->ac[0];
        switch (cfg->kind) {
        case SCHED_DDIM: st = ddim_set_timesteps(s, steps); break;
        case SCHED_PNDM: st = pndm_set_timesteps(s, steps); break;
        case SCHED_EULER:
        case SCHED_EULER_A: st = euler_set_timesteps(s, steps); break;
        case SCHED_DPMPP_2M: st = dpm_set_timesteps(s, steps); break;
        case SCHED_LCM:
        case SCHED_TCD: st = lcm_set_timesteps(s, steps); break;
        }
    }
    if (!st && s->sigmas) {
        s->sigmas_d = malloc((size_t)s->n_sigmas * sizeof(double));
        if (!s->sigmas_d) st = sdc_fail(SDC_ERR_NOMEM, "scheduler: out of memory");
        for (int i = 0; !st && i < s->n_sigmas; i++) s->sigmas_d[i] = (double)s->sigmas[i];
    }
    if (st) {
        sched_free(s);
        return st;
    }
    *out = s;
    return SDC_OK;
}

void sched_free(sdc_scheduler *s) {
    if (!s) return;
    free(s->ts_int);
    free(s->ts_float);
    free(s->sigmas);
    free(s->sigmas_d);
    free(s->ac);
    free(s->prk_ts);
    for (int k = 0; k < 4; k++) free(s->ets[k]);
    for (int k = 0; k < 3; k++) free(s->model_outputs[k]);
    free(s->cur_sample);
    free(s->cur_model_output);
    free(s);
}

void sched_reset(sdc_scheduler *s) {
    s->steps_done = 0;
    s->n_ets = 0;
    s->has_cur_sample = 0;
    s->counter = 0;
    s->n_model_outputs = 0;
    s->lower_order_nums = 0;
    if (s->cur_model_output) memset(s->cur_model_output, 0, (size_t)s->state_n * sizeof(float));
}

const sched_config *sched_get_config(const sdc_scheduler *s) { return &s->cfg; }
int sched_num_inference_steps(const sdc_scheduler *s) { return s->num_inference_steps; }
int sched_num_calls(const sdc_scheduler *s) { return s->n_calls; }
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
    if (s->cfg.kind != SCHED_EULER && s->cfg.kind != SCHED_EULER_A) return; /* identity */
    if (i < 0 || i >= s->n_calls) return;
    const float sigma = s->sigmas[i];
    const float d = sqrtf(sigma * sigma + 1.0f); /* (sigma**2 + 1) ** 0.5, float32 */
    for (int64_t k = 0; k < n; k++) x[k] = x[k] / d;
}

int sched_accepts_eta(const sdc_scheduler *s) { return s->cfg.kind == SCHED_DDIM || s->cfg.kind == SCHED_TCD; }

int sched_draws_noise(const sdc_scheduler *s, int i, float eta) {
    if (i < 0 || i >= s->n_calls) return 0;
    switch (s->cfg.kind) {
    case SCHED_DDIM: return eta > 0;
    case SCHED_EULER:
    case SCHED_EULER_A: return 1;
    case SCHED_LCM: return i != s->num_inference_steps - 1;
    case SCHED_TCD: return eta > 0 && i != s->num_inference_steps - 1;
    default: return 0;
    }
}

static sdc_status step_with(sdc_scheduler *s, int i, const float *model_output, float *sample, int batch,
                            int64_t per_image, const sched_gens *gens, float eta, float *pred_x0, float *noise_out) {
    const char *cls = sched_class_name(s->cfg.kind);
    if (i < 0 || i >= s->n_calls)
        return sdc_fail(SDC_ERR_ARG, "%s: step %d out of range (0..%d)", cls, i, s->n_calls - 1);
    if (batch < 1 || per_image < 1) return sdc_fail(SDC_ERR_ARG, "%s: empty batch", cls);
    const int64_t n = (int64_t)batch * per_image;
    if (sched_draws_noise(s, i, eta) && !gens->torch && !gens->any)
        return sdc_fail(SDC_ERR_ARG, "%s: step %d draws noise but no generators were given", cls, i);
    if (s->cfg.kind == SCHED_TCD && !(eta >= 0 && eta <= 1))
        return sdc_fail(SDC_ERR_ARG, "%s: eta (gamma) %g must be in [0, 1]", cls, (double)eta);
    if (s->cfg.kind == SCHED_DDIM && !(eta >= 0))
        return sdc_fail(SDC_ERR_ARG, "%s: eta %g must be >= 0", cls, (double)eta);
    if (noise_out && !sched_draws_noise(s, i, eta)) memset(noise_out, 0, (size_t)n * sizeof(float));
    if (s->cfg.kind == SCHED_PNDM || s->cfg.kind == SCHED_DPMPP_2M) {
        if (i == 0) { /* step 0 (re)starts the history */
            if (s->state_n != n) SDC_TRY(sched_state_alloc(s, n));
            sched_reset(s);
        } else if (i != s->steps_done) {
            return sdc_fail(SDC_ERR_ARG, "%s: steps must be taken in order (expected step %d, got %d)", cls, s->steps_done,
                            i);
        } else if (s->state_n != n) {
            return sdc_fail(SDC_ERR_ARG, "%s: batch size changed between steps (%lld -> %lld floats)", cls,
                            (long long)s->state_n, (long long)n);
        }
    }
    sdc_status st = SDC_OK;
    switch (s->cfg.kind) {
    case SCHED_DDIM: st = ddim_step(s, i, model_output, sample, batch, per_image, gens, eta, pred_x0, noise_out); break;
    case SCHED_PNDM:
        st = pndm_step(s, i, model_output, sample, n, pred_x0);
        break;
    case SCHED_EULER: st = euler_step(s, i, model_output, sample, batch, per_image, gens, pred_x0, noise_out); break;
    case SCHED_EULER_A: st = euler_a_step(s, i, model_output, sample, batch, per_image, gens, pred_x0, noise_out); break;
    case SCHED_DPMPP_2M: st = dpm_step(s, i, model_output, sample, n, pred_x0); break;
    case SCHED_LCM: st = lcm_step(s, i, model_output, sample, batch, per_image, gens, pred_x0, noise_out); break;
    case SCHED_TCD: st = tcd_step(s, i, model_output, sample, batch, per_image, gens, eta, pred_x0, noise_out); break;
    }
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
