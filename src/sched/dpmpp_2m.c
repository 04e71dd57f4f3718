/* dpmpp_2m.c - DPM++ 2M: DPMSolverMultistepScheduler (diffusers 0.30.3)
 * with algorithm_type dpmsolver++, its step's first- and second-order
 * (midpoint or heun) updates. The class's config, schedule and history are
 * dpm_multistep.c's, shared with DPM++ 2M SDE. The coefficients are float32
 * 0-dim tensor math as in the reference. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "sched/dpm_common.h"

static sdc_status dpm_step(sdc_scheduler *s, int i, const float *mo, float *x, int batch, int64_t per,
                           const sched_gens *gens, float eta, float *x0_out, float *noise_out) {
    (void)gens, (void)eta, (void)noise_out;
    const dpm_ms_opts o = dpm_ms_opts_of(&s->cfg);
    const dpm_ms_state *d = s->state;
    const int64_t n = (int64_t)batch * per;
    const int first = dpm_ms_push_x0(s, i, mo, x, n, x0_out);
    const float *m0 = d->model_outputs[1];

    float alpha_t, sigma_t, alpha_s0, sigma_s0;
    dpm_alpha_sigma(s->sigmas[i + 1], &alpha_t, &sigma_t);
    dpm_alpha_sigma(s->sigmas[i], &alpha_s0, &sigma_s0);
    const float lambda_t = dpm_logf(alpha_t) - dpm_logf(sigma_t);
    const float lambda_s0 = dpm_logf(alpha_s0) - dpm_logf(sigma_s0);
    const float h = lambda_t - lambda_s0;
    const float em1 = dpm_expf(-h) - 1.0f;
    const float c_sample = sigma_t / sigma_s0;
    const float c_d0 = alpha_t * em1;

    if (first) { /* x_t = (sigma_t / sigma_s) * x - (alpha_t * (exp(-h) - 1)) * x0 */
        for (int64_t k = 0; k < n; k++) x[k] = c_sample * x[k] - c_d0 * m0[k];
        return SDC_OK;
    }
    const float *m1 = d->model_outputs[0];
    const float h_0 = lambda_s0 - dpm_lambda(s->sigmas[i - 1]);
    const float r0 = h_0 / h;
    const float inv_r0 = 1.0f / r0; /* D1 = (1 / r0) * (m0 - m1) */
    if (!dpm_is_heun(o.solver_type)) {
        const float c_d1 = 0.5f * c_d0;
        for (int64_t k = 0; k < n; k++) {
            float d1 = inv_r0 * (m0[k] - m1[k]);
            x[k] = c_sample * x[k] - c_d0 * m0[k] - c_d1 * d1;
        }
    } else {
        const float c_d1 = alpha_t * (em1 / h + 1.0f);
        for (int64_t k = 0; k < n; k++) {
            float d1 = inv_r0 * (m0[k] - m1[k]);
            x[k] = c_sample * x[k] - c_d0 * m0[k] + c_d1 * d1;
        }
    }
    return SDC_OK;
}

static const char *const aliases[] = {"dpmpp2m", "dpm++_2m", NULL};
static const char *const a1111_aliases[] = {"k_dpmpp_2m", NULL};

const sched_def sched_dpmpp_2m = {
    .info = {.name = "dpmpp_2m", .aliases = aliases, .diffusers_class = "DPMSolverMultistepScheduler",
             .a1111_name = "DPM++ 2M", .a1111_aliases = a1111_aliases, .karras_ok = 1,
             .schedules = SCHED_SCHEDULES_SIGMA},
    .keys = dpm_ms_keys,
    .variant_key = "algorithm_type",
    .variant_value = "dpmsolver++",
    .opts_size = sizeof(dpm_ms_opts),
    .calls_per_step = 1,
    .validate = dpm_ms_validate,
    .set_timesteps = dpm_ms_set_timesteps,
    .step = dpm_step,
    .state_create = dpm_ms_state_create,
    .state_free = dpm_ms_state_free,
    .state_reset = dpm_ms_state_reset,
};
