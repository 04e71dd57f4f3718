/* euler_a.c - EulerAncestralDiscreteScheduler (diffusers 0.30.3): the sigma
 * schedule of EulerDiscrete (schedule_common.c, final sigma 0; Karras or
 * another formula only by the request's schedule type - the class has no
 * use_karras_sigmas) with an ancestral step that draws fresh noise every
 * step. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sched/sched_internal.h"

static sdc_status euler_a_validate(const sched_config *c, int steps) {
    (void)steps;
    if (sched_is_sample(c))
        return sdc_fail(SDC_ERR_ARG,
                        "EulerAncestralDiscreteScheduler: prediction_type 'sample' is not implemented by diffusers either");
    return SDC_OK;
}

/* the class takes no use_karras_sigmas (0.30.3): Karras and the other formula
 * schedules come from the config's schedule type, over EulerDiscrete's range */
static sdc_status euler_a_set_timesteps(sdc_scheduler *s, int n) { return sched_sigma_schedule(s, n, 0, 0); }

static int euler_a_draws_noise(const sdc_scheduler *s, int i, float eta) {
    (void)s, (void)i, (void)eta;
    return 1;
}

static sdc_status euler_a_step(sdc_scheduler *s, int i, const float *mo, float *x, int batch, int64_t per,
                               const sched_gens *gens, float eta, float *x0_out, float *noise_out) {
    (void)eta;
    const sched_config *c = &s->cfg;
    const int64_t n = (int64_t)batch * per;
    const float sigma = s->sigmas[i];
    const float sf = s->sigmas[i], st = s->sigmas[i + 1];
    const float sf2 = sf * sf, st2 = st * st;
    const float sigma_up = sqrtf(st2 * (sf2 - st2) / sf2);
    const float sigma_down = sqrtf(st2 - sigma_up * sigma_up);
    const float dt = sigma_down - sigma;
    const int eps = sched_is_eps(c);
    const float s2p1 = sigma * sigma + 1.0f;
    const float c_out = -sigma / sqrtf(s2p1);
    float *noise = noise_out ? noise_out : malloc((size_t)n * sizeof(float));
    if (!noise) return sdc_fail(SDC_ERR_NOMEM, "EulerAncestralDiscreteScheduler: out of memory");
    sched_randn_batch(gens, batch, per, noise);
    for (int64_t k = 0; k < n; k++) {
        float pos = eps ? x[k] - sigma * mo[k] : mo[k] * c_out + x[k] / s2p1;
        float derivative = (x[k] - pos) / sigma;
        float prev = x[k] + derivative * dt;
        if (x0_out) x0_out[k] = pos;
        x[k] = prev + noise[k] * sigma_up;
    }
    if (noise != noise_out) free(noise);
    return SDC_OK;
}

static const char *const aliases[] = {"euler_ancestral", NULL};
static const char *const a1111_aliases[] = {"k_euler_a", "k_euler_ancestral", NULL};

/* EulerAncestralDiscreteScheduler.__init__ */
static const sched_key keys[] = {
    SK_INT(num_train_timesteps, 1000), SK_NUM(beta_start, 0.0001), SK_NUM(beta_end, 0.02),
    SK_STR(beta_schedule, "linear"), SK_NULLABLE(trained_betas), SK_STR(prediction_type, "epsilon"),
    SK_STR(timestep_spacing, "linspace"), SK_INT(steps_offset, 0), SK_BOOL(rescale_betas_zero_snr, 0), SK_END};

const sched_def sched_euler_a = {
    .info = {.name = "euler_a", .aliases = aliases, .diffusers_class = "EulerAncestralDiscreteScheduler",
             .a1111_name = "Euler a", .a1111_aliases = a1111_aliases, .a1111_option_key = "uses_ensd",
             .a1111_option_value = "true", .ui_default = 1, .karras_ok = 1,
             .schedules = SCHED_SCHEDULES_SIGMA},
    .keys = keys,
    .calls_per_step = 1,
    .validate = euler_a_validate,
    .set_timesteps = euler_a_set_timesteps,
    .scale_model_input = sched_scale_by_sigma,
    .draws_noise = euler_a_draws_noise,
    .step = euler_a_step,
};
