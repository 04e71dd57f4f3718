/* ddim.c - DDIMScheduler (diffusers 0.30.3). Scalars are float32 0-dim
 * tensors in the reference, so every coefficient is rounded to float32 in
 * the same order; the elementwise ops are separate float32 ops. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sched/sched_internal.h"

static sdc_status ddim_validate(const sched_config *c, int steps) {
    (void)steps;
    if (c->thresholding)
        return sdc_fail(SDC_ERR_UNSUPPORTED, "DDIMScheduler: thresholding (dynamic thresholding) is not supported");
    return SDC_OK;
}

static sdc_status ddim_set_timesteps(sdc_scheduler *s, int n) {
    s->ts_int = malloc((size_t)n * sizeof(int64_t));
    if (!s->ts_int) return sdc_fail(SDC_ERR_NOMEM, "DDIMScheduler: out of memory");
    SDC_TRY(sched_spacing_int(&s->cfg, n, s->ts_int));
    s->n_calls = n;
    for (int i = 0; i < n; i++)
        if (s->ts_int[i] < 0 || s->ts_int[i] >= s->cfg.num_train_timesteps)
            return sdc_fail(SDC_ERR_ARG, "DDIMScheduler: timestep %lld out of range for %d steps",
                            (long long)s->ts_int[i], n);
    return SDC_OK;
}

static inline float clampf(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

static int ddim_draws_noise(const sdc_scheduler *s, int i, float eta) {
    (void)s, (void)i;
    return eta > 0;
}

static sdc_status ddim_step(sdc_scheduler *s, int i, const float *mo, float *x, int batch, int64_t per,
                            const sched_gens *gens, float eta, float *x0_out, float *noise_out) {
    const sched_config *c = &s->cfg;
    if (!(eta >= 0)) return sdc_fail(SDC_ERR_ARG, "DDIMScheduler: eta %g must be >= 0", (double)eta);
    const int64_t t = s->ts_int[i];
    const int64_t prev_t = t - c->num_train_timesteps / s->num_inference_steps;
    const float a_t = s->ac[t];
    const float a_prev = prev_t >= 0 ? s->ac[prev_t] : s->final_ac;
    const float b_t = 1.0f - a_t;
    const float sa_t = sqrtf(a_t), sb_t = sqrtf(b_t);
    const int64_t n = (int64_t)batch * per;
    const int eps = sched_is_eps(c), v = sched_is_v(c);
    const float lo = -(float)c->clip_sample_range, hi = (float)c->clip_sample_range;

    /* variance = (beta_prev / beta_t) * (1 - alpha_t / alpha_prev); std = eta * variance ** 0.5 */
    const float b_prev = 1.0f - a_prev;
    const float variance = (b_prev / b_t) * (1.0f - a_t / a_prev);
    const float std_dev_t = eta * sqrtf(variance);
    const float dir_coef = sqrtf(1.0f - a_prev - std_dev_t * std_dev_t);
    const float sa_prev = sqrtf(a_prev);

    float *noise = NULL;
    if (eta > 0) {
        noise = noise_out ? noise_out : malloc((size_t)n * sizeof(float));
        if (!noise) return sdc_fail(SDC_ERR_NOMEM, "DDIMScheduler: out of memory");
        sched_randn_batch(gens, batch, per, noise);
    }
    for (int64_t k = 0; k < n; k++) {
        float pos, pe;
        if (eps) {
            pos = (x[k] - sb_t * mo[k]) / sa_t;
            pe = mo[k];
        } else if (v) {
            pos = sa_t * x[k] - sb_t * mo[k];
            pe = sa_t * mo[k] + sb_t * x[k];
        } else { /* sample */
            pos = mo[k];
            pe = (x[k] - sa_t * pos) / sb_t;
        }
        if (c->clip_sample) pos = clampf(pos, lo, hi);
        float dir = dir_coef * pe;
        float prev = sa_prev * pos + dir;
        if (noise) prev = prev + std_dev_t * noise[k];
        if (x0_out) x0_out[k] = pos;
        x[k] = prev;
    }
    if (noise && noise != noise_out) free(noise);
    return SDC_OK;
}

static const char *const a1111_aliases[] = {"ddim", NULL};

/* DDIMScheduler.__init__ */
static const sched_key keys[] = {
    SK_INT(num_train_timesteps, 1000), SK_NUM(beta_start, 0.0001), SK_NUM(beta_end, 0.02),
    SK_STR(beta_schedule, "linear"), SK_NULLABLE(trained_betas), SK_BOOL(clip_sample, 1),
    SK_BOOL(set_alpha_to_one, 1), SK_INT(steps_offset, 0), SK_STR(prediction_type, "epsilon"),
    SK_BOOL(thresholding, 0), SK_NUM(dynamic_thresholding_ratio, 0.995), SK_NUM(clip_sample_range, 1.0),
    SK_NUM(sample_max_value, 1.0), SK_STR(timestep_spacing, "leading"), SK_BOOL(rescale_betas_zero_snr, 0),
    SK_END};

const sched_def sched_ddim = {
    .info = {.name = "ddim", .diffusers_class = "DDIMScheduler", .a1111_name = "DDIM", .a1111_aliases = a1111_aliases,
             .takes_eta = 1, .schedules = SCHED_SCHEDULES_TIMESTEP},
    .keys = keys,
    .calls_per_step = 1,
    .validate = ddim_validate,
    .set_timesteps = ddim_set_timesteps,
    .draws_noise = ddim_draws_noise,
    .step = ddim_step,
};
