/* euler.c - EulerDiscreteScheduler (diffusers 0.30.3). Timesteps are
 * float32; the training sigmas are float32 torch values, interpolated by
 * numpy in float64 and stored as float32 (schedule_common.c); the step runs
 * in float32 (sample upcast to float32). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sched/sched_internal.h"

/* EulerDiscreteScheduler's own __init__ arguments */
typedef struct {
    char interpolation_type[16]; /* linear | log_linear */
    char timestep_type[16];      /* discrete | continuous */
} euler_opts;

static sdc_status euler_validate(const sched_config *c, int steps) {
    (void)steps;
    const char *cls = "EulerDiscreteScheduler";
    euler_opts o;
    SCHED_OPTS_GET(euler_opts, c, &o);
    if (strcmp(o.interpolation_type, "linear"))
        return sdc_fail(strcmp(o.interpolation_type, "log_linear") ? SDC_ERR_ARG : SDC_ERR_UNSUPPORTED,
                        "%s: interpolation_type '%s' is not supported (only linear)", cls, o.interpolation_type);
    if (strcmp(o.timestep_type, "discrete") && strcmp(o.timestep_type, "continuous"))
        return sdc_fail(SDC_ERR_ARG, "%s: timestep_type '%s' (discrete or continuous)", cls, o.timestep_type);
    if (!strcmp(o.timestep_type, "continuous") && sched_is_v(c))
        return sdc_fail(SDC_ERR_UNSUPPORTED, "%s: continuous timesteps with v_prediction are not supported", cls);
    if (strcmp(c->final_sigmas_type, "zero") && strcmp(c->final_sigmas_type, "sigma_min"))
        return sdc_fail(SDC_ERR_ARG, "%s: final_sigmas_type '%s' (zero or sigma_min)", cls, c->final_sigmas_type);
    return SDC_OK;
}

static sdc_status euler_set_timesteps(sdc_scheduler *s, int n) {
    return sched_sigma_schedule(s, n, s->cfg.use_karras_sigmas, !strcmp(s->cfg.final_sigmas_type, "sigma_min"));
}

static int euler_draws_noise(const sdc_scheduler *s, int i, float eta) {
    (void)s, (void)i, (void)eta;
    return 1;
}

static sdc_status euler_step(sdc_scheduler *s, int i, const float *mo, float *x, int batch, int64_t per,
                             const sched_gens *gens, float eta, float *x0_out, float *noise_out) {
    (void)eta;
    const sched_config *c = &s->cfg;
    const int64_t n = (int64_t)batch * per;
    /* EulerDiscrete draws its churn noise on every step and (s_churn = 0) ignores it */
    float *noise = noise_out ? noise_out : malloc((size_t)n * sizeof(float));
    if (!noise) return sdc_fail(SDC_ERR_NOMEM, "EulerDiscreteScheduler: out of memory");
    sched_randn_batch(gens, batch, per, noise);
    if (noise != noise_out) free(noise);

    const float sigma = s->sigmas[i];
    const float sigma_hat = sigma; /* sigma * (gamma + 1), gamma = 0 */
    const float dt = s->sigmas[i + 1] - sigma_hat;
    const int eps = sched_is_eps(c), v = sched_is_v(c);
    const float s2p1 = sigma * sigma + 1.0f;
    const float c_out = -sigma / sqrtf(s2p1);
    for (int64_t k = 0; k < n; k++) {
        float pos;
        if (eps)
            pos = x[k] - sigma_hat * mo[k];
        else if (v)
            pos = mo[k] * c_out + x[k] / s2p1;
        else
            pos = mo[k];
        float derivative = (x[k] - pos) / sigma_hat;
        if (x0_out) x0_out[k] = pos;
        x[k] = x[k] + derivative * dt;
    }
    return SDC_OK;
}

static const char *const a1111_aliases[] = {"k_euler", NULL};

/* EulerDiscreteScheduler.__init__ */
static const sched_key keys[] = {
    SK_INT(num_train_timesteps, 1000), SK_NUM(beta_start, 0.0001), SK_NUM(beta_end, 0.02),
    SK_STR(beta_schedule, "linear"), SK_NULLABLE(trained_betas), SK_STR(prediction_type, "epsilon"),
    SO_STR(euler_opts, interpolation_type, "linear"), SK_BOOL(use_karras_sigmas, 0), SK_OPT_NUM(sigma_min),
    SK_OPT_NUM(sigma_max), SK_STR(timestep_spacing, "linspace"), SO_STR(euler_opts, timestep_type, "discrete"),
    SK_INT(steps_offset, 0), SK_BOOL(rescale_betas_zero_snr, 0), SK_STR(final_sigmas_type, "zero"), SK_END};

const sched_def sched_euler = {
    .info = {.name = "euler", .diffusers_class = "EulerDiscreteScheduler", .a1111_name = "Euler",
             .a1111_aliases = a1111_aliases, .a1111_default = 1, .karras_ok = 1,
             .schedules = SCHED_SCHEDULES_SIGMA},
    .keys = keys,
    .opts_size = sizeof(euler_opts),
    .calls_per_step = 1,
    .validate = euler_validate,
    .set_timesteps = euler_set_timesteps,
    .scale_model_input = sched_scale_by_sigma,
    .draws_noise = euler_draws_noise,
    .step = euler_step,
};
