/* dpm2_a.c - KDPM2AncestralDiscreteScheduler (diffusers 0.30.3): k-diffusion's
 * ancestral DPM-Solver-2 (sample_dpm_2_ancestral) over the Euler sigma
 * schedule, Karras sigmas optional.
 *
 * Step j splits sigma_{j+1} into the deterministic part sigma_down_j and the
 * fresh noise sigma_up_j (down^2 + up^2 = sigma_{j+1}^2). Call 2j at sigma_j
 * moves the sample to the log-midpoint m_j of sigma_j and sigma_down_j; call
 * 2j + 1 evaluates the model there, steps from the kept sample to sigma_down_j
 * and adds noise * sigma_up_j. The last step (to 0, midpoint 0) is the first
 * call alone. Every call draws noise from the image's generator, shaped like
 * the latents, and the first-order ones ignore it: the order of draws is
 * diffusers'. Schedule and state: kdpm2_common.c. */
#include <stdlib.h>

#include "sched/sched_internal.h"

static sdc_status dpm2_a_set_timesteps(sdc_scheduler *s, int n) {
    const int T = s->cfg.num_train_timesteps;
    sched_kdpm2_state *k = s->state;
    double *t = malloc((size_t)n * sizeof(double)), *tm = malloc((size_t)(n + 1) * sizeof(double));
    float *logs = malloc((size_t)T * sizeof(float));
    sdc_status st =
        t && tm && logs ? SDC_OK : sdc_fail(SDC_ERR_NOMEM, "KDPM2AncestralDiscreteScheduler: out of memory");
    if (!st) st = sched_kdpm2_schedule(s, n, t, logs);
    if (!st) {
        /* sigmas_next = sigmas.roll(-1) with a final 0; float32 tensor math. The
         * last sigma_up is 0 * 0 / 0 = NaN there too, and never used. */
        for (int i = 0; i <= n; i++) {
            const float sg = k->sig[i], sn = i < n ? k->sig[i + 1] : 0.0f;
            const float sn2 = sn * sn, s2 = sg * sg;
            k->up[i] = sqrtf(sn2 * (s2 - sn2) / s2);
            k->down[i] = i < n ? sqrtf(sn2 - k->up[i] * k->up[i]) : 0.0f;
        }
        /* sigmas_interpol = sigmas.log().lerp(sigmas_down.log(), 0.5).exp(), the last two 0 */
        for (int i = 0; i + 2 <= n; i++) k->mid[i] = sched_kdpm2_log_mid(k->sig[i], k->down[i]);
        for (int i = n - 1; i <= n; i++) k->mid[i] = 0.0f;
        for (int i = 0; i + 2 <= n; i++) tm[i] = sched_kdpm2_sigma_to_t(k->mid[i], logs, T);
        st = sched_kdpm2_install(s, n, t, tm, 0); /* timesteps_interpol[:-2] */
    }
    free(t);
    free(tm);
    free(logs);
    return st;
}

/* the first call of a pair at sigma_j, the second at the midpoint m_j */
static void dpm2_a_scale_model_input(const sdc_scheduler *s, int i, float *x, int64_t n) {
    const sched_kdpm2_state *k = s->state;
    const int j = i / 2;
    const float sigma = i & 1 ? k->mid[j] : k->sig[j];
    const float d = sqrtf(sigma * sigma + 1.0f);
    for (int64_t q = 0; q < n; q++) x[q] = x[q] / d;
}

static int dpm2_a_draws_noise(const sdc_scheduler *s, int i, float eta) {
    (void)s, (void)i, (void)eta;
    return 1;
}

static sdc_status dpm2_a_step(sdc_scheduler *s, int i, const float *mo, float *x, int batch, int64_t per,
                              const sched_gens *gens, float eta, float *x0_out, float *noise_out) {
    (void)eta;
    sched_kdpm2_state *k = s->state;
    const int64_t n = (int64_t)batch * per;
    const int j = i / 2, first = !(i & 1); /* self.state_in_first_order: sample is None */
    const float sigma_hat = k->sig[j], sigma_mid = k->mid[j];
    float *noise = noise_out ? noise_out : malloc((size_t)n * sizeof(float));
    if (!noise) return sdc_fail(SDC_ERR_NOMEM, "KDPM2AncestralDiscreteScheduler: out of memory");
    sched_randn_batch(gens, batch, per, noise); /* randn_tensor(model_output.shape) before anything else */
    const sched_x0 p = sched_x0_at(&s->cfg, first ? sigma_hat : sigma_mid);
    if (first) {
        const float dt = sigma_mid - sigma_hat;
        for (int64_t q = 0; q < n; q++) {
            const float x0 = sched_x0_of(&p, x[q], mo[q]);
            if (x0_out) x0_out[q] = x0;
            const float d = (x[q] - x0) / sigma_hat;
            k->sample[q] = x[q];
            x[q] = x[q] + d * dt;
        }
    } else {
        const float dt = k->down[j] - sigma_hat, up = k->up[j];
        for (int64_t q = 0; q < n; q++) {
            const float x0 = sched_x0_of(&p, x[q], mo[q]);
            if (x0_out) x0_out[q] = x0;
            const float d = (x[q] - x0) / sigma_mid;
            const float prev = k->sample[q] + d * dt;
            x[q] = prev + noise[q] * up;
        }
    }
    if (noise != noise_out) free(noise);
    return SDC_OK;
}

static const char *const aliases[] = {"dpm2_ancestral", NULL};
static const char *const a1111_aliases[] = {"k_dpm_2_a", NULL};

const sched_def sched_dpm2_a = {
    .info = {.name = "dpm2_a",
             .aliases = aliases,
             .diffusers_class = "KDPM2AncestralDiscreteScheduler",
             .a1111_name = "DPM2 a",
             .a1111_aliases = a1111_aliases,
             .a1111_option_key = "uses_ensd",
             .a1111_option_value = "true",
             .karras_ok = 1,
             .schedules = SCHED_SCHEDULES_SIGMA},
    .keys = sched_kdpm2_keys,
    .calls_per_step = 2,
    .validate = sched_kdpm2_validate,
    .set_timesteps = dpm2_a_set_timesteps,
    .scale_model_input = dpm2_a_scale_model_input,
    .draws_noise = dpm2_a_draws_noise,
    .step = dpm2_a_step,
    .state_create = sched_kdpm2_state_create,
    .state_free = sched_kdpm2_state_free,
    .state_reset = sched_kdpm2_state_reset,
};
