/* dpm2.c - KDPM2DiscreteScheduler (diffusers 0.30.3): k-diffusion's DPM-Solver-2
 * (sample_dpm_2) over the Euler sigma schedule, Karras sigmas optional.
 *
 * Step j (sigma_j -> sigma_{j+1}) takes two model calls but the last: call
 * 2j at sigma_j moves the sample to the log-midpoint m_{j+1} of sigma_j and
 * sigma_{j+1}, call 2j + 1 evaluates the model there and takes the whole step
 * from the kept sample with that derivative. The last step (to sigma 0, whose
 * midpoint is 0) is the first call alone. Schedule and state: kdpm2_common.c. */
#include <stdlib.h>

#include "sched/sched_internal.h"

static sdc_status dpm2_set_timesteps(sdc_scheduler *s, int n) {
    const int T = s->cfg.num_train_timesteps;
    sched_kdpm2_state *k = s->state;
    double *t = malloc((size_t)n * sizeof(double)), *tm = malloc((size_t)(n + 1) * sizeof(double));
    float *logs = malloc((size_t)T * sizeof(float));
    sdc_status st = t && tm && logs ? SDC_OK : sdc_fail(SDC_ERR_NOMEM, "KDPM2DiscreteScheduler: out of memory");
    if (!st) st = sched_kdpm2_schedule(s, n, t, logs);
    if (!st) {
        /* sigmas_interpol = sigmas.log().lerp(sigmas.roll(1).log(), 0.5).exp(): entry 0 pairs
         * sigma_0 with the final 0 (NaN, never used), the last is 0 */
        k->mid[0] = NAN;
        for (int i = 1; i < n; i++) k->mid[i] = sched_kdpm2_log_mid(k->sig[i], k->sig[i - 1]);
        k->mid[n] = 0.0f;
        for (int i = 1; i < n; i++) tm[i] = sched_kdpm2_sigma_to_t(k->mid[i], logs, T);
        st = sched_kdpm2_install(s, n, t, tm, 1); /* timesteps_interpol[1:-1] */
    }
    free(t);
    free(tm);
    free(logs);
    return st;
}

/* the first call of a pair at sigma_j, the second at the midpoint m_{j+1} */
static void dpm2_scale_model_input(const sdc_scheduler *s, int i, float *x, int64_t n) {
    const sched_kdpm2_state *k = s->state;
    const int j = i / 2;
    const float sigma = i & 1 ? k->mid[j + 1] : k->sig[j];
    const float d = sqrtf(sigma * sigma + 1.0f);
    for (int64_t q = 0; q < n; q++) x[q] = x[q] / d;
}

static sdc_status dpm2_step(sdc_scheduler *s, int i, const float *mo, float *x, int batch, int64_t per,
                            const sched_gens *gens, float eta, float *x0_out, float *noise_out) {
    (void)gens, (void)eta, (void)noise_out;
    sched_kdpm2_state *k = s->state;
    const int64_t n = (int64_t)batch * per;
    const int j = i / 2, first = !(i & 1); /* self.state_in_first_order: sample is None */
    const float sigma_hat = k->sig[j], sigma_mid = k->mid[j + 1], sigma_next = k->sig[j + 1];
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
        const float dt = sigma_next - sigma_hat;
        for (int64_t q = 0; q < n; q++) {
            const float x0 = sched_x0_of(&p, x[q], mo[q]);
            if (x0_out) x0_out[q] = x0;
            const float d = (x[q] - x0) / sigma_mid;
            x[q] = k->sample[q] + d * dt;
        }
    }
    return SDC_OK;
}

static const char *const a1111_aliases[] = {"k_dpm_2", NULL};

const sched_def sched_dpm2 = {
    .info = {.name = "dpm2",
             .diffusers_class = "KDPM2DiscreteScheduler",
             .a1111_name = "DPM2",
             .a1111_aliases = a1111_aliases,
             .a1111_option_key = "second_order",
             .a1111_option_value = "true",
             .karras_ok = 1,
             .schedules = SCHED_SCHEDULES_SIGMA},
    .keys = sched_kdpm2_keys,
    .calls_per_step = 2,
    .validate = sched_kdpm2_validate,
    .set_timesteps = dpm2_set_timesteps,
    .scale_model_input = dpm2_scale_model_input,
    .step = dpm2_step,
    .state_create = sched_kdpm2_state_create,
    .state_free = sched_kdpm2_state_free,
    .state_reset = sched_kdpm2_state_reset,
};
