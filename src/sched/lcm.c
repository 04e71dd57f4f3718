/* lcm.c - LCMScheduler (diffusers 0.30.3); also the arguments, checks and
 * timestep selection that TCDScheduler shares: the original_inference_steps-step training schedule
 * (k*1-1, k*2-1, ... with k = T // original_steps), reversed, sampled at
 * floor(linspace(0, original_steps, N, endpoint=False)). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sched/sched_internal.h"

/* LCMScheduler.__init__ (TCDScheduler takes the same arguments) */
const sched_key sched_lcm_keys[] = {
    SK_INT(num_train_timesteps, 1000), SK_NUM(beta_start, 0.00085), SK_NUM(beta_end, 0.012),
    SK_STR(beta_schedule, "scaled_linear"), SK_NULLABLE(trained_betas),
    SO_INT(sched_lcm_opts, original_inference_steps, 50), SK_BOOL(clip_sample, 0), SK_NUM(clip_sample_range, 1.0),
    SK_BOOL(set_alpha_to_one, 1), SK_INT(steps_offset, 0), SK_STR(prediction_type, "epsilon"),
    SK_BOOL(thresholding, 0), SK_NUM(dynamic_thresholding_ratio, 0.995), SK_NUM(sample_max_value, 1.0),
    SK_STR(timestep_spacing, "leading"), SO_NUM(sched_lcm_opts, timestep_scaling, 10.0),
    SK_BOOL(rescale_betas_zero_snr, 0), SK_END};

static sched_lcm_opts opts_of(const sched_config *c) {
    sched_lcm_opts o;
    SCHED_OPTS_GET(sched_lcm_opts, c, &o);
    return o;
}

sdc_status sched_lcm_validate(const sched_config *c, int steps) {
    const char *cls = c->def->info.diffusers_class;
    const sched_lcm_opts o = opts_of(c);
    if (c->thresholding)
        return sdc_fail(SDC_ERR_UNSUPPORTED, "%s: thresholding (dynamic thresholding) is not supported", cls);
    if (o.original_inference_steps < 1 || o.original_inference_steps > c->num_train_timesteps)
        return sdc_fail(SDC_ERR_ARG, "%s: original_inference_steps %d out of range (1..%d)", cls,
                        o.original_inference_steps, c->num_train_timesteps);
    if (steps > o.original_inference_steps)
        return sdc_fail(SDC_ERR_ARG, "%s: num_inference_steps %d cannot be larger than original_inference_steps %d", cls,
                        steps, o.original_inference_steps);
    return SDC_OK;
}

sdc_status sched_lcm_set_timesteps(sdc_scheduler *s, int n) {
    const sched_config *c = &s->cfg;
    const char *cls = c->def->info.diffusers_class;
    const int orig = opts_of(c).original_inference_steps;
    const int64_t k = c->num_train_timesteps / orig;
    if (orig / n < 1)
        return sdc_fail(SDC_ERR_ARG, "%s: original_inference_steps %d is smaller than num_inference_steps %d", cls, orig,
                        n);
    double *idx = malloc((size_t)n * sizeof(double));
    s->ts_int = malloc((size_t)n * sizeof(int64_t));
    if (!idx || !s->ts_int) {
        free(idx);
        return sdc_fail(SDC_ERR_NOMEM, "%s: out of memory", cls);
    }
    np_linspace(0, orig, n, 0, idx);
    for (int i = 0; i < n; i++) {
        int64_t j = (int64_t)floor(idx[i]);   /* index into the reversed origin schedule */
        int64_t m = orig - 1 - j;             /* index into origin = range(1, orig + 1) * k - 1 */
        s->ts_int[i] = (m + 1) * k - 1;
    }
    free(idx);
    s->n_calls = n;
    return SDC_OK;
}

static inline float clampf(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

static int lcm_draws_noise(const sdc_scheduler *s, int i, float eta) {
    (void)eta;
    return i != s->num_inference_steps - 1;
}

static sdc_status lcm_step(sdc_scheduler *s, int i, const float *mo, float *x, int batch, int64_t per,
                           const sched_gens *gens, float eta, float *x0_out, float *noise_out) {
    (void)eta;
    const sched_config *c = &s->cfg;
    const int64_t n = (int64_t)batch * per;
    const int64_t t = s->ts_int[i];
    const int64_t prev_t = i + 1 < s->n_calls ? s->ts_int[i + 1] : t;
    const float a_t = s->ac[t];
    const float a_prev = prev_t >= 0 ? s->ac[prev_t] : s->final_ac;
    const float b_t = 1.0f - a_t, b_prev = 1.0f - a_prev;
    const float sa_t = sqrtf(a_t), sb_t = sqrtf(b_t);
    /* get_scalings_for_boundary_condition_discrete, sigma_data = 0.5 */
    const float scaled = (float)t * (float)opts_of(c).timestep_scaling;
    const float sd2 = 0.25f;
    const float c_skip = (1.0f / (scaled * scaled + sd2)) * sd2; /* python scalar / tensor = reciprocal * scalar */
    const float c_out = scaled / sqrtf(scaled * scaled + sd2);
    const int eps = sched_is_eps(c), v = sched_is_v(c);
    const float lo = -(float)c->clip_sample_range, hi = (float)c->clip_sample_range;
    const int last = i == s->num_inference_steps - 1;
    float *noise = NULL;
    if (!last) {
        noise = noise_out ? noise_out : malloc((size_t)n * sizeof(float));
        if (!noise) return sdc_fail(SDC_ERR_NOMEM, "LCMScheduler: out of memory");
        sched_randn_batch(gens, batch, per, noise);
    }
    const float sa_prev = sqrtf(a_prev), sb_prev = sqrtf(b_prev);
    for (int64_t k = 0; k < n; k++) {
        float pos;
        if (eps)
            pos = (x[k] - sb_t * mo[k]) / sa_t;
        else if (v)
            pos = sa_t * x[k] - sb_t * mo[k];
        else
            pos = mo[k];
        if (c->clip_sample) pos = clampf(pos, lo, hi);
        float denoised = c_out * pos + c_skip * x[k];
        if (x0_out) x0_out[k] = denoised;
        x[k] = noise ? sa_prev * denoised + sb_prev * noise[k] : denoised;
    }
    if (noise && noise != noise_out) free(noise);
    return SDC_OK;
}

static const char *const a1111_aliases[] = {"k_lcm", NULL};

const sched_def sched_lcm = {
    .info = {.name = "lcm", .diffusers_class = "LCMScheduler", .a1111_name = "LCM", .a1111_aliases = a1111_aliases,
             .schedules = SCHED_SCHEDULES_TIMESTEP},
    .keys = sched_lcm_keys,
    .opts_size = sizeof(sched_lcm_opts),
    .calls_per_step = 1,
    .validate = sched_lcm_validate,
    .set_timesteps = sched_lcm_set_timesteps,
    .draws_noise = lcm_draws_noise,
    .step = lcm_step,
};
