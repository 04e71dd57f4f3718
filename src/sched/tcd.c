/* tcd.c - TCDScheduler step (diffusers 0.30.3; timesteps as LCM). eta is the
 * pipeline's eta passed as gamma: timestep_s = floor((1 - eta) * prev_t) in
 * float32; on the last step prev_t is 0, and noise is drawn only on
 * non-final steps when eta > 0. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sched/sched_internal.h"

static int tcd_draws_noise(const sdc_scheduler *s, int i, float eta) {
    return eta > 0 && i != s->num_inference_steps - 1;
}

static sdc_status tcd_step(sdc_scheduler *s, int i, const float *mo, float *x, int batch, int64_t per,
                           const sched_gens *gens, float eta, float *x0_out, float *noise_out) {
    const sched_config *c = &s->cfg;
    if (!(eta >= 0 && eta <= 1))
        return sdc_fail(SDC_ERR_ARG, "TCDScheduler: eta (gamma) %g must be in [0, 1]", (double)eta);
    const int64_t n = (int64_t)batch * per;
    const int64_t t = s->ts_int[i];
    const int64_t prev_t = i + 1 < s->n_calls ? s->ts_int[i + 1] : 0;
    /* (1 - eta) is a Python float; times the int64 tensor prev_t -> float32 */
    const float one_minus_eta = (float)(1.0 - (double)eta);
    const int64_t ts_s = (int64_t)floorf(one_minus_eta * (float)prev_t);
    const float a_t = s->ac[t];
    const float b_t = 1.0f - a_t;
    const float a_prev = prev_t >= 0 ? s->ac[prev_t] : s->final_ac;
    const float a_s = s->ac[ts_s];
    const float b_s = 1.0f - a_s;
    const float sa_t = sqrtf(a_t), sb_t = sqrtf(b_t), sa_s = sqrtf(a_s), sb_s = sqrtf(b_s);
    const int eps = sched_is_eps(c), v = sched_is_v(c);
    const int draw = tcd_draws_noise(s, i, eta);
    float *noise = NULL;
    if (draw) {
        noise = noise_out ? noise_out : malloc((size_t)n * sizeof(float));
        if (!noise) return sdc_fail(SDC_ERR_NOMEM, "TCDScheduler: out of memory");
        sched_randn_batch(gens, batch, per, noise);
    }
    const float ratio = a_prev / a_s;
    const float c_pns = sqrtf(ratio), c_noise = sqrtf(1.0f - ratio);
    for (int64_t k = 0; k < n; k++) {
        float pos, pe;
        if (eps) {
            pos = (x[k] - sb_t * mo[k]) / sa_t;
            pe = mo[k];
        } else if (v) {
            pos = sa_t * x[k] - sb_t * mo[k];
            pe = sa_t * mo[k] + sb_t * x[k];
        } else {
            pos = mo[k];
            pe = (x[k] - sa_t * pos) / sb_t;
        }
        float pns = sa_s * pos + sb_s * pe;
        if (x0_out) x0_out[k] = pns;
        x[k] = noise ? c_pns * pns + c_noise * noise[k] : pns;
    }
    if (noise && noise != noise_out) free(noise);
    return SDC_OK;
}

static const char *const a1111_aliases[] = {"tcd", NULL};

const sched_def sched_tcd = {
    .info = {.name = "tcd", .diffusers_class = "TCDScheduler", .a1111_name = "TCD", .a1111_aliases = a1111_aliases,
             .takes_eta = 1, .schedules = SCHED_SCHEDULES_TIMESTEP},
    .keys = sched_lcm_keys, /* TCDScheduler.__init__ takes LCMScheduler's arguments */
    .opts_size = sizeof(sched_lcm_opts),
    .calls_per_step = 1,
    .validate = sched_lcm_validate,
    .set_timesteps = sched_lcm_set_timesteps,
    .draws_noise = tcd_draws_noise,
    .step = tcd_step,
};
