/* dpmpp_2s.c - DPM++ 2S: DPMSolverSinglestepScheduler (diffusers 0.30.3)
 * with algorithm_type dpmsolver++, solver orders 1 and 2 (midpoint or
 * heun). Steps follow its order list ([1, 2, 1, 2, ..., 1] with
 * lower_order_final): an order-1 step keeps its sample, the order-2 step
 * after it goes from that kept sample to the next sigma with both data
 * predictions - a single-step solver whose second model call is the order-1
 * step's output. Timesteps are always linspace (the class has no
 * timestep_spacing in 0.30.3). This is not A1111's "DPM++ 2S a"
 * (k-diffusion's ancestral sample_dpmpp_2s_ancestral), which diffusers does
 * not implement. */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sched/dpm_common.h"

#define CLS "DPMSolverSinglestepScheduler"

/* DPMSolverSinglestepScheduler's own __init__ arguments */
typedef struct {
    int solver_order;
    char algorithm_type[24]; /* dpmsolver++ (deis read as dpmsolver++) */
    char solver_type[16];    /* midpoint | heun (logrho, bh1, bh2 read as midpoint) */
    int lower_order_final;
    double lambda_min_clipped;
    int has_variance_type;
} dpm_ss_opts;

static dpm_ss_opts opts_of(const sched_config *c) {
    dpm_ss_opts o;
    SCHED_OPTS_GET(dpm_ss_opts, c, &o);
    return o;
}

typedef struct {
    int *orders;       /* order_list, n_calls entries (set_timesteps) */
    int64_t n;         /* floats per buffer */
    float *buf[3];
    float *x0[2];      /* x0[1] this step's data prediction, x0[0] the one before */
    float *spare;
    float *sample;     /* self.sample: the sample an order-1 step started from */
    int n_x0;
} dpm_ss_state;

static sdc_status ss_state_create(sdc_scheduler *s) {
    if (!(s->state = calloc(1, sizeof(dpm_ss_state)))) return sdc_fail(SDC_ERR_NOMEM, CLS ": out of memory");
    return SDC_OK;
}

static void ss_state_free(void *state) {
    dpm_ss_state *d = state;
    if (!d) return;
    for (int k = 0; k < 3; k++) free(d->buf[k]);
    free(d->sample);
    free(d->orders);
    free(d);
}

static sdc_status ss_state_reset(sdc_scheduler *s, int64_t n) {
    dpm_ss_state *d = s->state;
    if (d->n != n) {
        int bad = 0;
        for (int k = 0; k < 3; k++) {
            free(d->buf[k]);
            bad |= !(d->buf[k] = malloc((size_t)n * sizeof(float)));
        }
        free(d->sample);
        bad |= !(d->sample = malloc((size_t)n * sizeof(float)));
        d->n = bad ? 0 : n;
        if (bad) return sdc_fail(SDC_ERR_NOMEM, CLS ": out of memory for the step history (%lld floats)", (long long)n);
    }
    d->x0[0] = d->buf[0], d->x0[1] = d->buf[1], d->spare = d->buf[2];
    d->n_x0 = 0;
    return SDC_OK;
}

static int one_of(const char *v, const char *const *list) {
    for (; *list; list++)
        if (!strcmp(v, *list)) return 1;
    return 0;
}

static sdc_status ss_validate(const sched_config *c, int steps) {
    (void)steps;
    const dpm_ss_opts o = opts_of(c);
    static const char *const other_algos[] = {"dpmsolver", "sde-dpmsolver++", NULL};
    static const char *const solvers[] = {"midpoint", "heun", "logrho", "bh1", "bh2", NULL};
    if (strcmp(o.algorithm_type, "dpmsolver++") && strcmp(o.algorithm_type, "deis"))
        return sdc_fail(one_of(o.algorithm_type, other_algos) ? SDC_ERR_UNSUPPORTED : SDC_ERR_ARG,
                        CLS ": algorithm_type '%s' is not supported (only dpmsolver++)", o.algorithm_type);
    if (!one_of(o.solver_type, solvers))
        return sdc_fail(SDC_ERR_ARG, CLS ": solver_type '%s' (midpoint or heun)", o.solver_type);
    if (o.solver_order < 1 || o.solver_order > 3)
        return sdc_fail(SDC_ERR_ARG, CLS ": solver_order %d (1, 2 or 3)", o.solver_order);
    if (o.solver_order == 3) return sdc_fail(SDC_ERR_UNSUPPORTED, CLS ": solver_order 3 is not supported (1 or 2)");
    if (c->thresholding) return sdc_fail(SDC_ERR_UNSUPPORTED, CLS ": thresholding (dynamic thresholding) is not supported");
    if (o.has_variance_type) return sdc_fail(SDC_ERR_UNSUPPORTED, CLS ": variance_type is not supported");
    if (strcmp(c->final_sigmas_type, "zero") && strcmp(c->final_sigmas_type, "sigma_min"))
        return sdc_fail(SDC_ERR_ARG, CLS ": final_sigmas_type '%s' (zero or sigma_min)", c->final_sigmas_type);
    return SDC_OK;
}

static sdc_status ss_set_timesteps(sdc_scheduler *s, int n) {
    const sched_config *c = &s->cfg;
    const dpm_ss_opts o = opts_of(c);
    const dpm_last_sigma last = strcmp(c->final_sigmas_type, "sigma_min") ? DPM_LAST_ZERO : DPM_LAST_SIGMA_MIN;
    const dpm_schedule_spec spec = {.cls = CLS,
                                    .spacing = "linspace",
                                    .lambda_min_clipped = o.lambda_min_clipped,
                                    .last_interp = last,
                                    .last_formula = last};
    SDC_TRY(dpm_schedule(s, n, &spec));
    /* get_order_list(num_inference_steps); set_timesteps turns lower_order_final on when the
     * steps do not divide by the order, or the last sigma is 0 */
    const int order = o.solver_order, steps = n;
    const int lof = o.lower_order_final || steps % order != 0 || last == DPM_LAST_ZERO;
    dpm_ss_state *d = s->state;
    if (!(d->orders = malloc((size_t)steps * sizeof(int)))) return sdc_fail(SDC_ERR_NOMEM, CLS ": out of memory");
    for (int k = 0; k < steps; k++) d->orders[k] = order == 1 ? 1 : k % 2 + 1; /* [1, 2] * (steps // 2) ... */
    if (order == 2 && lof) {
        if (steps % 2 == 0) d->orders[steps - 1] = 1; /* ... + [1, 1] */
        /* odd: [1, 2] * (steps // 2) + [1] is the pattern already */
    }
    return SDC_OK;
}

static sdc_status ss_step(sdc_scheduler *s, int i, const float *mo, float *x, int batch, int64_t per,
                          const sched_gens *gens, float eta, float *x0_out, float *noise_out) {
    (void)gens, (void)eta, (void)noise_out;
    const sched_config *c = &s->cfg;
    const dpm_ss_opts o = opts_of(c);
    dpm_ss_state *d = s->state;
    const int64_t n = (int64_t)batch * per;
    assert(d->n == n && d->n_x0 <= i);

    /* convert_model_output -> x0, pushed onto the two-entry history */
    float a_i, s_i;
    dpm_alpha_sigma(s->sigmas[i], &a_i, &s_i);
    float *m0 = d->spare;
    d->spare = d->x0[0];
    d->x0[0] = d->x0[1];
    d->x0[1] = m0;
    const int eps = sched_is_eps(c), v = sched_is_v(c);
    for (int64_t k = 0; k < n; k++) {
        float x0 = eps ? (x[k] - s_i * mo[k]) / a_i : v ? a_i * x[k] - s_i * mo[k] : mo[k];
        m0[k] = x0;
        if (x0_out) x0_out[k] = x0;
    }
    if (d->n_x0 < 2) d->n_x0++;

    int order = d->orders[i];
    if (order > d->n_x0) order = d->n_x0; /* while model_outputs[-order] is None: order -= 1 */
    if (order == 1) memcpy(d->sample, x, (size_t)n * sizeof(float)); /* self.sample = sample */

    float alpha_t, sigma_t;
    dpm_alpha_sigma(s->sigmas[i + 1], &alpha_t, &sigma_t);
    const float lambda_t = dpm_logf(alpha_t) - dpm_logf(sigma_t);
    const float *x_s = d->sample;
    if (order == 1) { /* x_t = (sigma_t / sigma_s) * sample - (alpha_t * (exp(-h) - 1)) * x0 */
        float alpha_s, sigma_s;
        dpm_alpha_sigma(s->sigmas[i], &alpha_s, &sigma_s);
        const float h = lambda_t - (dpm_logf(alpha_s) - dpm_logf(sigma_s));
        const float c_x = sigma_t / sigma_s, c_d = alpha_t * (dpm_expf(-h) - 1.0f);
        for (int64_t k = 0; k < n; k++) x[k] = c_x * x_s[k] - c_d * m0[k];
        return SDC_OK;
    }
    /* from the kept sample at s1 = sigmas[i - 1] to t, with D0 = x0(s1), D1 = (x0(s0) - x0(s1)) / r0 */
    float alpha_s1, sigma_s1;
    dpm_alpha_sigma(s->sigmas[i - 1], &alpha_s1, &sigma_s1);
    const float lambda_s0 = dpm_lambda(s->sigmas[i]);
    const float lambda_s1 = dpm_logf(alpha_s1) - dpm_logf(sigma_s1);
    const float h = lambda_t - lambda_s1, h_0 = lambda_s0 - lambda_s1;
    const float r0 = h_0 / h, inv_r0 = 1.0f / r0;
    const float em1 = dpm_expf(-h) - 1.0f;
    const float c_x = sigma_t / sigma_s1, c_d0 = alpha_t * em1;
    const float *m1 = d->x0[0];
    if (!dpm_is_heun(o.solver_type)) {
        const float c_d1 = 0.5f * (alpha_t * em1);
        for (int64_t k = 0; k < n; k++) {
            float d1 = inv_r0 * (m0[k] - m1[k]);
            x[k] = c_x * x_s[k] - c_d0 * m1[k] - c_d1 * d1;
        }
    } else {
        const float c_d1 = alpha_t * (em1 / h + 1.0f);
        for (int64_t k = 0; k < n; k++) {
            float d1 = inv_r0 * (m0[k] - m1[k]);
            x[k] = c_x * x_s[k] - c_d0 * m1[k] + c_d1 * d1;
        }
    }
    return SDC_OK;
}

static const char *const aliases[] = {"dpmpp2s", "dpm++_2s", NULL};
static const char *const a1111_aliases[] = {"k_dpmpp_2s", NULL};

/* DPMSolverSinglestepScheduler.__init__ */
static const sched_key keys[] = {
    SK_INT(num_train_timesteps, 1000), SK_NUM(beta_start, 0.0001), SK_NUM(beta_end, 0.02),
    SK_STR(beta_schedule, "linear"), SK_NULLABLE(trained_betas), SO_INT(dpm_ss_opts, solver_order, 2),
    SK_STR(prediction_type, "epsilon"), SK_BOOL(thresholding, 0), SK_NUM(dynamic_thresholding_ratio, 0.995),
    SK_NUM(sample_max_value, 1.0), SO_STR(dpm_ss_opts, algorithm_type, "dpmsolver++"),
    SO_STR(dpm_ss_opts, solver_type, "midpoint"), SO_BOOL(dpm_ss_opts, lower_order_final, 1),
    SK_BOOL(use_karras_sigmas, 0), SK_STR(final_sigmas_type, "zero"),
    SO_NUM(dpm_ss_opts, lambda_min_clipped, -INFINITY), SO_NULLABLE(dpm_ss_opts, variance_type), SK_END};

const sched_def sched_dpmpp_2s = {
    .info = {.name = "dpmpp_2s", .aliases = aliases, .diffusers_class = CLS, .a1111_name = "DPM++ 2S",
             .a1111_aliases = a1111_aliases, .karras_ok = 1, .schedules = SCHED_SCHEDULES_SIGMA},
    .keys = keys,
    .opts_size = sizeof(dpm_ss_opts),
    .calls_per_step = 1,
    .validate = ss_validate,
    .set_timesteps = ss_set_timesteps,
    .step = ss_step,
    .state_create = ss_state_create,
    .state_free = ss_state_free,
    .state_reset = ss_state_reset,
};
