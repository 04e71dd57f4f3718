/* dpmpp_2m_sde.c - DPM++ 2M SDE: DPMSolverMultistepScheduler (diffusers
 * 0.30.3) with algorithm_type sde-dpmsolver++. The class's config, schedule
 * and history are dpm_multistep.c's, shared with DPM++ 2M; this row's step
 * draws fresh noise from each image's generator on every step (the last
 * one too, where sigma_t = 0 multiplies it away), shaped like the latents,
 * as diffusers' step draws randn_tensor(model_output.shape, generator).
 *   first order:  x = (s_t / s_s * e^-h) x + a_t (1 - e^-2h) x0 + s_t sqrt(1 - e^-2h) z
 *   second order: + 0.5 a_t (1 - e^-2h) D1 (midpoint), or
 *                 + a_t ((1 - e^-2h) / (-2h) + 1) D1 (heun), D1 = (x0 - x0_prev) / r0 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sched/dpm_common.h"

static int sde_draws_noise(const sdc_scheduler *s, int i, float eta) {
    (void)s, (void)i, (void)eta;
    return 1;
}

static sdc_status sde_step(sdc_scheduler *s, int i, const float *mo, float *x, int batch, int64_t per,
                           const sched_gens *gens, float eta, float *x0_out, float *noise_out) {
    (void)eta;
    const dpm_ms_opts o = dpm_ms_opts_of(&s->cfg);
    const dpm_ms_state *d = s->state;
    const int64_t n = (int64_t)batch * per;
    float *noise = noise_out ? noise_out : malloc((size_t)n * sizeof(float));
    if (!noise) return sdc_fail(SDC_ERR_NOMEM, "DPMSolverMultistepScheduler: out of memory");
    sched_randn_batch(gens, batch, per, noise);
    const int first = dpm_ms_push_x0(s, i, mo, x, n, x0_out);
    const float *m0 = d->model_outputs[1];

    float alpha_t, sigma_t, alpha_s0, sigma_s0;
    dpm_alpha_sigma(s->sigmas[i + 1], &alpha_t, &sigma_t);
    dpm_alpha_sigma(s->sigmas[i], &alpha_s0, &sigma_s0);
    const float lambda_t = dpm_logf(alpha_t) - dpm_logf(sigma_t);
    const float lambda_s0 = dpm_logf(alpha_s0) - dpm_logf(sigma_s0);
    const float h = lambda_t - lambda_s0;
    const float e2 = dpm_expf(-2.0f * h);
    const float c_sample = sigma_t / sigma_s0 * dpm_expf(-h);
    const float c_d0 = alpha_t * (1.0f - e2);
    const float c_noise = sigma_t * sqrtf(1.0f - e2);

    if (first) {
        for (int64_t k = 0; k < n; k++) x[k] = c_sample * x[k] + c_d0 * m0[k] + c_noise * noise[k];
    } else {
        const float *m1 = d->model_outputs[0];
        const float h_0 = lambda_s0 - dpm_lambda(s->sigmas[i - 1]);
        const float r0 = h_0 / h;
        const float inv_r0 = 1.0f / r0; /* D1 = (1 / r0) * (m0 - m1) */
        const float c_d1 = dpm_is_heun(o.solver_type) ? alpha_t * ((1.0f - e2) / (-2.0f * h) + 1.0f) : 0.5f * c_d0;
        for (int64_t k = 0; k < n; k++) {
            float d1 = inv_r0 * (m0[k] - m1[k]);
            x[k] = c_sample * x[k] + c_d0 * m0[k] + c_d1 * d1 + c_noise * noise[k];
        }
    }
    if (noise != noise_out) free(noise);
    return SDC_OK;
}

static const char *const aliases[] = {"dpmpp2m_sde", "dpm++_2m_sde", NULL};
static const char *const a1111_aliases[] = {"k_dpmpp_2m_sde", NULL};

const sched_def sched_dpmpp_2m_sde = {
    .info = {.name = "dpmpp_2m_sde", .aliases = aliases, .diffusers_class = "DPMSolverMultistepScheduler",
             .a1111_name = "DPM++ 2M SDE", .a1111_aliases = a1111_aliases, .karras_ok = 1,
             .schedules = SCHED_SCHEDULES_SIGMA},
    .keys = dpm_ms_keys,
    .variant_key = "algorithm_type",
    .variant_value = "sde-dpmsolver++",
    .opts_size = sizeof(dpm_ms_opts),
    .calls_per_step = 1,
    .validate = dpm_ms_validate,
    .set_timesteps = dpm_ms_set_timesteps,
    .draws_noise = sde_draws_noise,
    .step = sde_step,
    .state_create = dpm_ms_state_create,
    .state_free = dpm_ms_state_free,
    .state_reset = dpm_ms_state_reset,
};
