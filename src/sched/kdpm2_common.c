/* kdpm2_common.c - what KDPM2DiscreteScheduler (dpm2.c) and
 * KDPM2AncestralDiscreteScheduler (dpm2_a.c) share in diffusers 0.30.3: the
 * __init__ arguments, the checks, the step state, the schedule they start
 * from and the interleaving of their 2n - 1 model calls.
 *
 * Both take a DPM-Solver-2 step per pair of calls: a first-order call at
 * sigma_j that moves to a midpoint sigma, then a second-order call at the
 * midpoint that redoes the step from the kept sample. The midpoints are torch
 * float32 tensor math (log, lerp, exp: Sleef), their timesteps diffusers'
 * _sigma_to_t applied to those tensors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sched/sched_internal.h"

/* KDPM2DiscreteScheduler.__init__ (KDPM2AncestralDiscreteScheduler takes the same) */
const sched_key sched_kdpm2_keys[] = {SK_INT(num_train_timesteps, 1000),
                                      SK_NUM(beta_start, 0.00085),
                                      SK_NUM(beta_end, 0.012),
                                      SK_STR(beta_schedule, "linear"),
                                      SK_NULLABLE(trained_betas),
                                      SK_BOOL(use_karras_sigmas, 0),
                                      SK_STR(prediction_type, "epsilon"),
                                      SK_STR(timestep_spacing, "linspace"),
                                      SK_INT(steps_offset, 0),
                                      SK_END};

sdc_status sched_kdpm2_validate(const sched_config *c, int steps) {
    (void)steps;
    if (sched_is_sample(c))
        return sdc_fail(SDC_ERR_ARG,
                        "%s: prediction_type 'sample' is not implemented by diffusers either (epsilon or v_prediction)",
                        c->def->info.diffusers_class);
    return SDC_OK;
}

sdc_status sched_kdpm2_state_create(sdc_scheduler *s) {
    if (!(s->state = calloc(1, sizeof(sched_kdpm2_state))))
        return sdc_fail(SDC_ERR_NOMEM, "%s: out of memory", s->cfg.def->info.diffusers_class);
    return SDC_OK;
}

void sched_kdpm2_state_free(void *state) {
    sched_kdpm2_state *k = state;
    if (!k) return;
    free(k->sig);
    free(k->mid);
    free(k->up);
    free(k->down);
    free(k->sample);
    free(k);
}

sdc_status sched_kdpm2_state_reset(sdc_scheduler *s, int64_t n) {
    sched_kdpm2_state *k = s->state;
    if (k->len == n) return SDC_OK;
    free(k->sample);
    k->len = (k->sample = malloc((size_t)n * sizeof(float))) ? n : 0;
    if (!k->len)
        return sdc_fail(SDC_ERR_NOMEM, "%s: out of memory for the step state (%lld floats)",
                        s->cfg.def->info.diffusers_class, (long long)n);
    return SDC_OK;
}

sdc_status sched_kdpm2_schedule(sdc_scheduler *s, int n, double *t, float *log_sigmas) {
    const sched_config *c = &s->cfg;
    const int T = c->num_train_timesteps;
    sched_kdpm2_state *k = s->state;
    k->n = n;
    const size_t sz = (size_t)(n + 1) * sizeof(float);
    if (!(k->sig = malloc(sz)) || !(k->mid = malloc(sz)) || !(k->up = malloc(sz)) || !(k->down = malloc(sz)))
        return sdc_fail(SDC_ERR_NOMEM, "%s: out of memory", c->def->info.diffusers_class);
    /* timesteps by spacing and the training sigmas interpolated at them (the
     * Euler schedule); Karras sigmas (use_karras_sigmas) or another formula
     * schedule the request's schedule type asks for replace them below */
    SDC_TRY(sched_sigma_schedule_of(s, n, SCHED_SCHEDULE_UNIFORM, 0));
    const sched_schedule kind = sched_sigma_kind(c, c->use_karras_sigmas);
    float *train = malloc((size_t)T * sizeof(float));
    double *ks = kind != SCHED_SCHEDULE_UNIFORM ? malloc((size_t)n * sizeof(double)) : NULL;
    sdc_status st = SDC_OK;
    if (!train || (kind != SCHED_SCHEDULE_UNIFORM && !ks))
        st = sdc_fail(SDC_ERR_NOMEM, "%s: out of memory", c->def->info.diffusers_class);
    if (!st) {
        sched_train_sigmas(s->ac, T, train);
        for (int i = 0; i < T; i++) log_sigmas[i] = np_logf(train[i]); /* np.log of the float32 sigmas */
        for (int i = 0; i < n; i++) t[i] = (double)s->ts_float[i], k->sig[i] = s->sigmas[i];
    }
    if (!st && ks) {
        /* the formula's sigmas between the interpolated (float64) first and
         * last sigma; their timesteps np.array([_sigma_to_t(...)]).round() as
         * for Karras sigmas */
        double smax = np_interp_index((double)s->ts_float[0], train, T);
        double smin = np_interp_index((double)s->ts_float[n - 1], train, T);
        st = sched_formula_sigmas(kind, train, T, smin, smax, n, ks, t);
        for (int i = 0; !st && i < n; i++) t[i] = np_round(t[i]), k->sig[i] = (float)ks[i];
    }
    free(train);
    free(ks);
    if (st) return st;
    k->sig[n] = 0.0f;
    /* init_noise_sigma: sigmas.max(), or (max^2 + 1) ** 0.5 for leading spacing */
    float mx = k->sig[0];
    for (int i = 1; i <= n; i++) mx = k->sig[i] > mx ? k->sig[i] : mx;
    s->init_noise_sigma = !strcmp(c->timestep_spacing, "leading") ? sqrtf(mx * mx + 1.0f) : mx;
    return SDC_OK;
}

float sched_kdpm2_log_mid(float a, float b) {
    /* a.log().lerp(b.log(), 0.5).exp(); torch's lerp for weight >= 0.5 is
     * end - (end - self) * (1 - weight) */
    const float la = sleef_logf_u1(a), lb = sleef_logf_u1(b);
    return sleef_expf(lb - (lb - la) * 0.5f);
}

double sched_kdpm2_sigma_to_t(float sigma, const float *log_sigmas, int T) {
    /* np.log(np.maximum(sigma, 1e-10)) of a 0-dim float32 tensor and a Python
     * float is a float64 0-dim tensor; everything it meets after that is a
     * float32 tensor with dimensions (log_sigmas[:, None], log_sigmas[low_idx]),
     * so torch computes the distances, the weight and t itself in float32 */
    const float log_sigma = (float)log(fmax((double)sigma, 1e-10));
    int64_t cs = 0, best = -1;
    int low_idx = 0;
    for (int i = 0; i < T; i++) { /* argmax(cumsum(dists >= 0)): its first maximum */
        if (log_sigma - log_sigmas[i] >= 0) cs++;
        if (cs > best) best = cs, low_idx = i;
    }
    if (low_idx > T - 2) low_idx = T - 2;
    const int high_idx = low_idx + 1;
    const float low = log_sigmas[low_idx], high = log_sigmas[high_idx];
    float w = (low - log_sigma) / (low - high);
    w = w < 0 ? 0 : w > 1 ? 1 : w;
    return (double)((1.0f - w) * (float)low_idx + w * (float)high_idx);
}

sdc_status sched_kdpm2_install(sdc_scheduler *s, int n, const double *t, const double *tm, int first_mid) {
    const sched_kdpm2_state *k = s->state;
    float *ts = malloc((size_t)(2 * n - 1) * sizeof(float)), *sig = malloc((size_t)(2 * n + 2) * sizeof(float));
    if (!ts || !sig) {
        free(ts);
        free(sig);
        return sdc_fail(SDC_ERR_NOMEM, "%s: out of memory", s->cfg.def->info.diffusers_class);
    }
    /* torch.cat([t[:1], torch.stack((tm[a:a + n - 1], t[1:]), -1).flatten()]) */
    ts[0] = (float)t[0];
    for (int j = 1; j < n; j++) ts[2 * j - 1] = (float)tm[first_mid + j - 1], ts[2 * j] = (float)t[j];
    /* torch.cat([sig[:1], sig[1:].repeat_interleave(2), sig[-1:]]) */
    sig[0] = k->sig[0];
    for (int i = 1; i <= n; i++) sig[2 * i - 1] = sig[2 * i] = k->sig[i];
    sig[2 * n + 1] = k->sig[n];
    free(s->ts_float);
    free(s->sigmas);
    s->ts_float = ts;
    s->sigmas = sig;
    s->n_calls = 2 * n - 1;
    s->n_sigmas = 2 * n + 2;
    return SDC_OK;
}
