/* heun.c - HeunDiscreteScheduler (diffusers 0.30.3): Heun's second-order
 * method over the Euler sigma schedule (schedule_common.c, Karras sigmas
 * optional, final sigma 0).
 *
 * diffusers repeats every timestep but the first ([t0, t1, t1, ..., t_{n-1},
 * t_{n-1}]) and every sigma but the first and the final 0, and the pipeline
 * calls the model once per timestep: 2n - 1 calls for n steps. Call 2j is
 * first order (an Euler step from sigma_j to sigma_{j+1}; its start sample,
 * derivative and dt are kept), call 2j + 1 is second order (the step redone
 * from the kept sample with the mean of both derivatives). The last call
 * (sigma_{n-1} -> 0) is a lone Euler step. float32 tensor math in the
 * reference's order. */
#include <stdlib.h>
#include <string.h>

#include "sched/sched_internal.h"

/* the first-order call's results, for the second-order call after it */
typedef struct {
    int64_t n;         /* floats per buffer (0: none yet) */
    float *sample;     /* self.sample: the sample the first-order call started from */
    float *derivative; /* self.prev_derivative */
    float dt;          /* self.dt: sigma_{j+1} - sigma_j */
} heun_state;

static sdc_status heun_state_create(sdc_scheduler *s) {
    if (!(s->state = calloc(1, sizeof(heun_state))))
        return sdc_fail(SDC_ERR_NOMEM, "HeunDiscreteScheduler: out of memory");
    return SDC_OK;
}

static void heun_state_free(void *state) {
    heun_state *h = state;
    if (!h) return;
    free(h->sample);
    free(h->derivative);
    free(h);
}

static sdc_status heun_state_reset(sdc_scheduler *s, int64_t n) {
    heun_state *h = s->state;
    if (h->n == n) return SDC_OK;
    free(h->sample);
    free(h->derivative);
    h->sample = malloc((size_t)n * sizeof(float));
    h->derivative = malloc((size_t)n * sizeof(float));
    h->n = h->sample && h->derivative ? n : 0;
    if (!h->n)
        return sdc_fail(SDC_ERR_NOMEM, "HeunDiscreteScheduler: out of memory for the step state (%lld floats)",
                        (long long)n);
    return SDC_OK;
}

/* [x0, x1, ..., x_{m-1}] -> [x0, x1, x1, ..., x_{m-1}, x_{m-1}]: torch.cat([x[:1],
 * x[1:].repeat_interleave(2)]), 2m - 1 values */
static float *repeat_after_first(const float *x, int m) {
    float *o = malloc((size_t)(2 * m - 1) * sizeof(float));
    if (!o) return NULL;
    o[0] = x[0];
    for (int i = 1; i < m; i++) o[2 * i - 1] = o[2 * i] = x[i];
    return o;
}

static sdc_status heun_set_timesteps(sdc_scheduler *s, int n) {
    SDC_TRY(sched_sigma_schedule(s, n, s->cfg.use_karras_sigmas, 0)); /* n timesteps, n + 1 sigmas, init_noise_sigma */
    /* timesteps [t0, t1, t1, ...]: 2n - 1; sigmas [s0, s1, s1, ..., s_{n-1}, s_{n-1}, 0]: 2n */
    float *ts = repeat_after_first(s->ts_float, n);
    float *sig = malloc((size_t)(2 * n) * sizeof(float));
    if (!ts || !sig) {
        free(ts);
        free(sig);
        return sdc_fail(SDC_ERR_NOMEM, "HeunDiscreteScheduler: out of memory");
    }
    sig[0] = s->sigmas[0];
    for (int i = 1; i < n; i++) sig[2 * i - 1] = sig[2 * i] = s->sigmas[i];
    sig[2 * n - 1] = s->sigmas[n];
    free(s->ts_float);
    free(s->sigmas);
    s->ts_float = ts;
    s->sigmas = sig;
    s->n_calls = 2 * n - 1;
    s->n_sigmas = 2 * n;
    return SDC_OK;
}

static sdc_status heun_step(sdc_scheduler *s, int i, const float *mo, float *x, int batch, int64_t per,
                            const sched_gens *gens, float eta, float *x0_out, float *noise_out) {
    (void)gens, (void)eta, (void)noise_out;
    const sched_config *c = &s->cfg;
    heun_state *h = s->state;
    const int64_t n = (int64_t)batch * per;
    const int first = !(i & 1); /* self.state_in_first_order: dt is None */
    /* first order at call i: sigmas[i] -> sigmas[i + 1]; second order: the same pair, sigmas[i - 1] and sigmas[i] */
    const float sigma = first ? s->sigmas[i] : s->sigmas[i - 1];
    const float sigma_next = first ? s->sigmas[i + 1] : s->sigmas[i];
    const float sigma_hat = sigma; /* sigma * (gamma + 1), gamma = 0 */
    const sched_x0 p = sched_x0_at(c, first ? sigma_hat : sigma_next);
    const int clip = c->clip_sample;
    const float r = (float)c->clip_sample_range;
    if (first) {
        const float dt = sigma_next - sigma_hat;
        h->dt = dt;
        for (int64_t k = 0; k < n; k++) {
            float x0 = sched_x0_of(&p, x[k], mo[k]);
            if (clip) x0 = x0 < -r ? -r : x0 > r ? r : x0;
            if (x0_out) x0_out[k] = x0;
            const float d = (x[k] - x0) / sigma_hat;
            h->derivative[k] = d;
            h->sample[k] = x[k];
            x[k] = x[k] + d * dt;
        }
    } else {
        for (int64_t k = 0; k < n; k++) {
            float x0 = sched_x0_of(&p, x[k], mo[k]);
            if (clip) x0 = x0 < -r ? -r : x0 > r ? r : x0;
            if (x0_out) x0_out[k] = x0;
            float d = (x[k] - x0) / sigma_next;
            d = (h->derivative[k] + d) / 2.0f;
            x[k] = h->sample[k] + d * h->dt;
        }
    }
    return SDC_OK;
}

static const char *const a1111_aliases[] = {"k_heun", NULL};

/* HeunDiscreteScheduler.__init__ */
static const sched_key keys[] = {
    SK_INT(num_train_timesteps, 1000),    SK_NUM(beta_start, 0.00085), SK_NUM(beta_end, 0.012),
    SK_STR(beta_schedule, "linear"),      SK_NULLABLE(trained_betas),  SK_STR(prediction_type, "epsilon"),
    SK_BOOL(use_karras_sigmas, 0),        SK_BOOL(clip_sample, 0),     SK_NUM(clip_sample_range, 1.0),
    SK_STR(timestep_spacing, "linspace"), SK_INT(steps_offset, 0),     SK_END};

const sched_def sched_heun = {
    .info = {.name = "heun",
             .diffusers_class = "HeunDiscreteScheduler",
             .a1111_name = "Heun",
             .a1111_aliases = a1111_aliases,
             .a1111_option_key = "second_order",
             .a1111_option_value = "true",
             .karras_ok = 1,
             .schedules = SCHED_SCHEDULES_SIGMA},
    .keys = keys,
    .calls_per_step = 2,
    .set_timesteps = heun_set_timesteps,
    .scale_model_input = sched_scale_by_sigma,
    .step = heun_step,
    .state_create = heun_state_create,
    .state_free = heun_state_free,
    .state_reset = heun_state_reset,
};
