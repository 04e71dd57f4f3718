/* dpm_multistep.c - DPMSolverMultistepScheduler (diffusers 0.30.3) as its
 * two registry rows share it: __init__ keys, validation, set_timesteps,
 * the history of data predictions and the x0 conversion of step. The update
 * rules are the rows' own: dpmpp_2m.c (algorithm_type dpmsolver++) and
 * dpmpp_2m_sde.c (sde-dpmsolver++). Solver orders 1 and 2, optional Karras
 * sigmas, lower_order_final / euler_at_final, final_sigmas_type zero |
 * sigma_min. */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sched/dpm_common.h"

dpm_ms_opts dpm_ms_opts_of(const sched_config *c) {
    dpm_ms_opts o;
    SCHED_OPTS_GET(dpm_ms_opts, c, &o);
    return o;
}

int dpm_is_heun(const char *solver_type) { return !strcmp(solver_type, "heun"); }

sdc_status dpm_ms_state_create(sdc_scheduler *s) {
    if (!(s->state = calloc(1, sizeof(dpm_ms_state))))
        return sdc_fail(SDC_ERR_NOMEM, "DPMSolverMultistepScheduler: out of memory");
    return SDC_OK;
}

void dpm_ms_state_free(void *state) {
    dpm_ms_state *d = state;
    if (!d) return;
    for (int k = 0; k < 3; k++) free(d->model_outputs[k]);
    free(d);
}

sdc_status dpm_ms_state_reset(sdc_scheduler *s, int64_t n) {
    dpm_ms_state *d = s->state;
    if (d->n != n) {
        int bad = 0;
        for (int k = 0; k < 3; k++) {
            free(d->model_outputs[k]);
            bad |= !(d->model_outputs[k] = malloc((size_t)n * sizeof(float)));
        }
        d->n = bad ? 0 : n;
        if (bad)
            return sdc_fail(SDC_ERR_NOMEM, "scheduler: out of memory for the step history (%lld floats)", (long long)n);
    }
    d->n_model_outputs = 0;
    d->lower_order_nums = 0;
    return SDC_OK;
}

static int one_of(const char *v, const char *const *list) {
    for (; *list; list++)
        if (!strcmp(v, *list)) return 1;
    return 0;
}

sdc_status dpm_ms_validate(const sched_config *c, int steps) {
    const char *cls = "DPMSolverMultistepScheduler";
    const dpm_ms_opts o = dpm_ms_opts_of(c);
    /* __init__ registers deis as dpmsolver++; the row's variant is the algorithm it runs */
    const char *algo = !strcmp(o.algorithm_type, "deis") ? "dpmsolver++" : o.algorithm_type;
    if (strcmp(algo, c->def->variant_value)) {
        static const char *const algos[] = {"dpmsolver", "sde-dpmsolver", "dpmsolver++", "sde-dpmsolver++", NULL};
        return sdc_fail(one_of(algo, algos) ? SDC_ERR_UNSUPPORTED : SDC_ERR_ARG,
                        "%s: algorithm_type '%s' is not supported (dpmsolver++: dpmpp_2m, sde-dpmsolver++: dpmpp_2m_sde)",
                        cls, o.algorithm_type);
    }
    if (o.solver_order < 1 || o.solver_order > 3)
        return sdc_fail(SDC_ERR_ARG, "%s: solver_order %d (1, 2 or 3)", cls, o.solver_order);
    if (o.solver_order == 3) return sdc_fail(SDC_ERR_UNSUPPORTED, "%s: solver_order 3 is not supported (1 or 2)", cls);
    static const char *const solvers[] = {"midpoint", "heun", "logrho", "bh1", "bh2", NULL};
    if (!one_of(o.solver_type, solvers))
        return sdc_fail(SDC_ERR_ARG, "%s: solver_type '%s' (midpoint or heun)", cls, o.solver_type);
    if (c->thresholding)
        return sdc_fail(SDC_ERR_UNSUPPORTED, "%s: thresholding (dynamic thresholding) is not supported", cls);
    if (o.use_lu_lambdas) return sdc_fail(SDC_ERR_UNSUPPORTED, "%s: use_lu_lambdas is not supported", cls);
    if (o.has_variance_type) return sdc_fail(SDC_ERR_UNSUPPORTED, "%s: variance_type is not supported", cls);
    if (strcmp(c->final_sigmas_type, "zero") && strcmp(c->final_sigmas_type, "sigma_min"))
        return sdc_fail(SDC_ERR_ARG, "%s: final_sigmas_type '%s' (zero or sigma_min)", cls, c->final_sigmas_type);
    if (!strcmp(c->timestep_spacing, "leading") && steps + 1 > c->num_train_timesteps)
        return sdc_fail(SDC_ERR_ARG, "%s: too many steps (%d) for leading spacing", cls, steps);
    return SDC_OK;
}

sdc_status dpm_ms_set_timesteps(sdc_scheduler *s, int n) {
    const sched_config *c = &s->cfg;
    const dpm_last_sigma last = strcmp(c->final_sigmas_type, "sigma_min") ? DPM_LAST_ZERO : DPM_LAST_SIGMA_MIN;
    const dpm_schedule_spec spec = {.cls = "DPMSolverMultistepScheduler",
                                    .spacing = c->timestep_spacing,
                                    .lambda_min_clipped = dpm_ms_opts_of(c).lambda_min_clipped,
                                    .last_interp = last,
                                    .last_formula = last};
    return dpm_schedule(s, n, &spec);
}

int dpm_ms_push_x0(sdc_scheduler *s, int i, const float *mo, const float *x, int64_t n, float *x0_out) {
    const sched_config *c = &s->cfg;
    const dpm_ms_opts o = dpm_ms_opts_of(c);
    dpm_ms_state *d = s->state;
    const int L = s->n_calls;
    assert(d->n == n);                /* scheduler.c started the history for this batch at step 0 */
    assert(d->lower_order_nums <= i); /* one more per step since step 0: steps come in order */

    /* convert_model_output -> data prediction x0, pushed onto the history */
    float a_i, s_i;
    dpm_alpha_sigma(s->sigmas[i], &a_i, &s_i);
    float *m0 = d->model_outputs[2];
    d->model_outputs[2] = d->model_outputs[0];
    d->model_outputs[0] = d->model_outputs[1];
    d->model_outputs[1] = m0; /* [0] = previous x0, [1] = this step's x0, [2] = spare */
    const int eps = sched_is_eps(c), v = sched_is_v(c);
    for (int64_t k = 0; k < n; k++) {
        float x0;
        if (eps)
            x0 = (x[k] - s_i * mo[k]) / a_i;
        else if (v)
            x0 = a_i * x[k] - s_i * mo[k];
        else
            x0 = mo[k];
        m0[k] = x0;
        if (x0_out) x0_out[k] = x0;
    }
    if (d->n_model_outputs < 2) d->n_model_outputs++;

    /* lower_order_final: the last step, when euler_at_final, or fewer than 15
     * steps with lower_order_final, or a final sigma of 0 */
    const int lower_order_final =
        i == L - 1 && (o.euler_at_final || (o.lower_order_final && L < 15) || !strcmp(c->final_sigmas_type, "zero"));
    const int first = o.solver_order == 1 || d->lower_order_nums < 1 || lower_order_final;
    assert(first || (i >= 1 && d->n_model_outputs == 2)); /* a previous step's x0 is in model_outputs[0] */
    if (d->lower_order_nums < o.solver_order) d->lower_order_nums++;
    return first;
}

/* DPMSolverMultistepScheduler.__init__ */
const sched_key dpm_ms_keys[] = {
    SK_INT(num_train_timesteps, 1000), SK_NUM(beta_start, 0.0001), SK_NUM(beta_end, 0.02),
    SK_STR(beta_schedule, "linear"), SK_NULLABLE(trained_betas), SO_INT(dpm_ms_opts, solver_order, 2),
    SK_STR(prediction_type, "epsilon"), SK_BOOL(thresholding, 0), SK_NUM(dynamic_thresholding_ratio, 0.995),
    SK_NUM(sample_max_value, 1.0), SO_STR(dpm_ms_opts, algorithm_type, "dpmsolver++"),
    SO_STR(dpm_ms_opts, solver_type, "midpoint"), SO_BOOL(dpm_ms_opts, lower_order_final, 1),
    SO_BOOL(dpm_ms_opts, euler_at_final, 0), SK_BOOL(use_karras_sigmas, 0), SO_BOOL(dpm_ms_opts, use_lu_lambdas, 0),
    SK_STR(final_sigmas_type, "zero"), SO_NUM(dpm_ms_opts, lambda_min_clipped, -INFINITY),
    SO_NULLABLE(dpm_ms_opts, variance_type), SK_STR(timestep_spacing, "linspace"), SK_INT(steps_offset, 0),
    SK_BOOL(rescale_betas_zero_snr, 0), SK_END};
