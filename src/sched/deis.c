/* deis.c - DEISMultistepScheduler (diffusers 0.30.3): the log-rho DEIS
 * multistep solver of orders 1 to 3 on the noise prediction re-derived from
 * the data prediction. Timesteps and sigmas are the DPM-Solver family's
 * (dpm_common.c); the last sigma is sigma(t=0), or after Karras sigmas the
 * last Karras sigma again. Coefficients are float32: the reference computes
 * them from 0-dim float32 tensors and np.log of them (numpy float32 log,
 * here logf).
 *   order 1: x = (a_t / a_s) x - s_t (e^h - 1) eps
 *   order k: x = a_t (x / a_s0 + sum_j coef_j eps_j), coef_j the integral over
 *            log rho of the Lagrange basis through rho_s0 .. rho_s(k-1) */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sched/dpm_common.h"

#define CLS "DEISMultistepScheduler"

/* DEISMultistepScheduler's own __init__ arguments */
typedef struct {
    int solver_order;
    char algorithm_type[24]; /* deis (dpmsolver, dpmsolver++ read as deis) */
    char solver_type[16];    /* logrho (midpoint, heun, bh1, bh2 read as logrho) */
    int lower_order_final;
} deis_opts;

static deis_opts opts_of(const sched_config *c) {
    deis_opts o;
    SCHED_OPTS_GET(deis_opts, c, &o);
    return o;
}

/* the history: the last three noise predictions of the batch, newest last */
typedef struct {
    int64_t n;
    float *buf[4];
    float *eps[3]; /* eps[2] this step's, eps[1] the one before, eps[0] before that */
    float *spare;
    int lower_order_nums;
} deis_state;

static sdc_status deis_state_create(sdc_scheduler *s) {
    if (!(s->state = calloc(1, sizeof(deis_state)))) return sdc_fail(SDC_ERR_NOMEM, CLS ": out of memory");
    return SDC_OK;
}

static void deis_state_free(void *state) {
    deis_state *d = state;
    if (!d) return;
    for (int k = 0; k < 4; k++) free(d->buf[k]);
    free(d);
}

static sdc_status deis_state_reset(sdc_scheduler *s, int64_t n) {
    deis_state *d = s->state;
    if (d->n != n) {
        int bad = 0;
        for (int k = 0; k < 4; k++) {
            free(d->buf[k]);
            bad |= !(d->buf[k] = malloc((size_t)n * sizeof(float)));
        }
        d->n = bad ? 0 : n;
        if (bad) return sdc_fail(SDC_ERR_NOMEM, CLS ": out of memory for the step history (%lld floats)", (long long)n);
    }
    for (int k = 0; k < 3; k++) d->eps[k] = d->buf[k];
    d->spare = d->buf[3];
    d->lower_order_nums = 0;
    return SDC_OK;
}

static int one_of(const char *v, const char *const *list) {
    for (; *list; list++)
        if (!strcmp(v, *list)) return 1;
    return 0;
}

static sdc_status deis_validate(const sched_config *c, int steps) {
    const deis_opts o = opts_of(c);
    static const char *const algos[] = {"deis", "dpmsolver", "dpmsolver++", NULL};
    static const char *const solvers[] = {"logrho", "midpoint", "heun", "bh1", "bh2", NULL};
    if (!one_of(o.algorithm_type, algos))
        return sdc_fail(SDC_ERR_ARG, CLS ": algorithm_type '%s' is not implemented (deis)", o.algorithm_type);
    if (!one_of(o.solver_type, solvers))
        return sdc_fail(SDC_ERR_ARG, CLS ": solver_type '%s' is not implemented (logrho)", o.solver_type);
    if (o.solver_order < 1) return sdc_fail(SDC_ERR_ARG, CLS ": solver_order %d (1, 2 or 3)", o.solver_order);
    if (o.solver_order > 3)
        return sdc_fail(SDC_ERR_UNSUPPORTED, CLS ": solver_order %d is not supported (1, 2 or 3)", o.solver_order);
    if (c->thresholding) return sdc_fail(SDC_ERR_UNSUPPORTED, CLS ": thresholding (dynamic thresholding) is not supported");
    if (!strcmp(c->timestep_spacing, "leading") && steps + 1 > c->num_train_timesteps)
        return sdc_fail(SDC_ERR_ARG, CLS ": too many steps (%d) for leading spacing", steps);
    return SDC_OK;
}

static sdc_status deis_set_timesteps(sdc_scheduler *s, int n) {
    const dpm_schedule_spec spec = {.cls = CLS,
                                    .spacing = s->cfg.timestep_spacing,
                                    .lambda_min_clipped = -INFINITY,
                                    .last_interp = DPM_LAST_SIGMA_MIN,
                                    .last_formula = DPM_LAST_REPEAT};
    return dpm_schedule(s, n, &spec);
}

/* rho = sigma_t / alpha_t of a sigma, as the reference rounds it */
static float rho_of(float sigma) {
    float a, s;
    dpm_alpha_sigma(sigma, &a, &s);
    return s / a;
}

/* Integrate[(log(t) - log(c)) / (log(b) - log(c)), {t}] */
static float ind2(float t, float b, float c) {
    const float lt = logf(t), lb = logf(b), lc = logf(c);
    return t * (-lc + lt - 1.0f) / (lb - lc);
}

/* Integrate[(log(t) - log(c))(log(t) - log(d)) / ((log(b) - log(c))(log(b) - log(d))), {t}] */
static float ind3(float t, float b, float c, float d) {
    const float lt = logf(t), lb = logf(b), lc = logf(c), ld = logf(d);
    const float num = t * (lc * (ld - lt + 1.0f) - ld * lt + ld + lt * lt - 2.0f * lt + 2.0f);
    const float den = (lb - lc) * (lb - ld);
    return num / den;
}

static sdc_status deis_step(sdc_scheduler *s, int i, const float *mo, float *x, int batch, int64_t per,
                            const sched_gens *gens, float eta, float *x0_out, float *noise_out) {
    (void)gens, (void)eta, (void)noise_out;
    const sched_config *c = &s->cfg;
    const deis_opts o = opts_of(c);
    deis_state *d = s->state;
    const int64_t n = (int64_t)batch * per;
    const int L = s->n_calls, order = o.solver_order;
    assert(d->n == n && d->lower_order_nums <= i);
    const int lower_final = i == L - 1 && o.lower_order_final && L < 15;
    const int lower_second = i == L - 2 && o.lower_order_final && L < 15;

    /* convert_model_output: x0 from the model output, then eps = (x - alpha x0) / sigma */
    float a_i, s_i;
    dpm_alpha_sigma(s->sigmas[i], &a_i, &s_i);
    float *e = d->spare;
    d->spare = d->eps[0];
    d->eps[0] = d->eps[1];
    d->eps[1] = d->eps[2];
    d->eps[2] = e;
    const int eps = sched_is_eps(c), v = sched_is_v(c);
    for (int64_t k = 0; k < n; k++) {
        float x0 = eps ? (x[k] - s_i * mo[k]) / a_i : v ? a_i * x[k] - s_i * mo[k] : mo[k];
        if (x0_out) x0_out[k] = x0;
        e[k] = (x[k] - a_i * x0) / s_i;
    }

    float alpha_t, sigma_t, alpha_s0, sigma_s0;
    dpm_alpha_sigma(s->sigmas[i + 1], &alpha_t, &sigma_t);
    dpm_alpha_sigma(s->sigmas[i], &alpha_s0, &sigma_s0);
    if (order == 1 || d->lower_order_nums < 1 || lower_final) {
        const float h = (dpm_logf(alpha_t) - dpm_logf(sigma_t)) - (dpm_logf(alpha_s0) - dpm_logf(sigma_s0));
        const float c_x = alpha_t / alpha_s0, c_e = sigma_t * (dpm_expf(h) - 1.0f);
        for (int64_t k = 0; k < n; k++) x[k] = c_x * x[k] - c_e * e[k];
    } else if (order == 2 || d->lower_order_nums < 2 || lower_second) {
        const float r_t = rho_of(s->sigmas[i + 1]), r0 = rho_of(s->sigmas[i]), r1 = rho_of(s->sigmas[i - 1]);
        const float coef1 = ind2(r_t, r0, r1) - ind2(r0, r0, r1);
        const float coef2 = ind2(r_t, r1, r0) - ind2(r0, r1, r0);
        const float *e1 = d->eps[1];
        for (int64_t k = 0; k < n; k++) x[k] = alpha_t * (x[k] / alpha_s0 + coef1 * e[k] + coef2 * e1[k]);
    } else {
        const float r_t = rho_of(s->sigmas[i + 1]), r0 = rho_of(s->sigmas[i]), r1 = rho_of(s->sigmas[i - 1]),
                    r2 = rho_of(s->sigmas[i - 2]);
        const float coef1 = ind3(r_t, r0, r1, r2) - ind3(r0, r0, r1, r2);
        const float coef2 = ind3(r_t, r1, r2, r0) - ind3(r0, r1, r2, r0);
        const float coef3 = ind3(r_t, r2, r0, r1) - ind3(r0, r2, r0, r1);
        const float *e1 = d->eps[1], *e2 = d->eps[0];
        for (int64_t k = 0; k < n; k++)
            x[k] = alpha_t * (x[k] / alpha_s0 + coef1 * e[k] + coef2 * e1[k] + coef3 * e2[k]);
    }
    if (d->lower_order_nums < order) d->lower_order_nums++;
    return SDC_OK;
}

static const char *const a1111_aliases[] = {"deis", NULL};

/* DEISMultistepScheduler.__init__ */
static const sched_key keys[] = {
    SK_INT(num_train_timesteps, 1000), SK_NUM(beta_start, 0.0001), SK_NUM(beta_end, 0.02),
    SK_STR(beta_schedule, "linear"), SK_NULLABLE(trained_betas), SO_INT(deis_opts, solver_order, 2),
    SK_STR(prediction_type, "epsilon"), SK_BOOL(thresholding, 0), SK_NUM(dynamic_thresholding_ratio, 0.995),
    SK_NUM(sample_max_value, 1.0), SO_STR(deis_opts, algorithm_type, "deis"), SO_STR(deis_opts, solver_type, "logrho"),
    SO_BOOL(deis_opts, lower_order_final, 1), SK_BOOL(use_karras_sigmas, 0), SK_STR(timestep_spacing, "linspace"),
    SK_INT(steps_offset, 0), SK_END};

const sched_def sched_deis = {
    .info = {.name = "deis", .diffusers_class = "DEISMultistepScheduler", .a1111_name = "DEIS",
             .a1111_aliases = a1111_aliases, .karras_ok = 1, .schedules = SCHED_SCHEDULES_SIGMA},
    .keys = keys,
    .opts_size = sizeof(deis_opts),
    .calls_per_step = 1,
    .validate = deis_validate,
    .set_timesteps = deis_set_timesteps,
    .step = deis_step,
    .state_create = deis_state_create,
    .state_free = deis_state_free,
    .state_reset = deis_state_reset,
};
