/* dpm_common.c - float32 scalar math as torch computes it on 0-dim tensors,
 * and the integer-timestep sigma schedule of the DPM-Solver family
 * (DPMSolverMultistep, DPMSolverSinglestep, DEIS, UniPC; see dpm_common.h).
 * torch.log / torch.exp of float32 tensors are sleef_f32.c's lane-for-lane
 * copies of torch's Sleef kernels. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sched/dpm_common.h"

float dpm_logf(float x) { return sleef_logf_u1(x); }
float dpm_expf(float x) { return sleef_expf(x); }
float dpm_expm1f(float x) { return (float)expm1((double)x); }

void dpm_alpha_sigma(float sigma, float *alpha, float *sigma_t) {
    *alpha = 1.0f / sqrtf(sigma * sigma + 1.0f);
    *sigma_t = sigma * *alpha;
}

float dpm_lambda(float sigma) {
    float a, s;
    dpm_alpha_sigma(sigma, &a, &s);
    return sleef_logf_u1(a) - sleef_logf_u1(s);
}

/* clipped_idx = searchsorted(flip(lambda_t), lambda_min_clipped): how many of
 * the noisiest training timesteps have lambda below it */
static int clipped_timesteps(const float *ac, int T, double lambda_min_clipped) {
    int clipped = 0;
    if (isinf(lambda_min_clipped) && lambda_min_clipped < 0) return 0;
    for (int j = 0; j < T; j++) {
        float a = ac[T - 1 - j];
        float lam = sleef_logf_u1(sqrtf(a)) - sleef_logf_u1(sqrtf(1.0f - a));
        if ((double)lam < lambda_min_clipped) clipped = j + 1;
        else break;
    }
    return clipped;
}

/* the spaced timesteps (float64 values of int64s, descending); returns how many */
static int spaced_timesteps(const sched_config *c, const dpm_schedule_spec *p, int n, int last_timestep, double *tsd,
                            sdc_status *st) {
    const int T = c->num_train_timesteps;
    if (!strcmp(p->spacing, "linspace")) {
        double *v = malloc((size_t)(n + 1) * sizeof(double));
        if (!v) {
            *st = sdc_fail(SDC_ERR_NOMEM, "%s: out of memory", p->cls);
            return 0;
        }
        np_linspace(0, last_timestep - 1, n + 1, 1, v);
        for (int i = 0; i < n; i++) tsd[i] = (double)(int64_t)np_round(v[n - i]);
        free(v);
        return n;
    }
    if (!strcmp(p->spacing, "leading")) {
        int ratio = last_timestep / (n + 1);
        if (ratio < 1) {
            *st = sdc_fail(SDC_ERR_ARG, "%s: too many steps (%d) for leading spacing", p->cls, n);
            return 0;
        }
        for (int i = 0; i < n; i++) tsd[i] = (double)((int64_t)(n - i) * ratio + c->steps_offset);
        return n;
    }
    double ratio = (double)T / n; /* trailing */
    int len = np_arange(last_timestep, 0, -ratio, tsd, n + 2);
    for (int i = 0; i < len; i++) tsd[i] = (double)((int64_t)np_round(tsd[i]) - 1);
    if (len < 1) *st = sdc_fail(SDC_ERR_ARG, "%s: no timesteps for %d steps", p->cls, n);
    return len;
}

sdc_status dpm_schedule(sdc_scheduler *s, int n, const dpm_schedule_spec *p) {
    const sched_config *c = &s->cfg;
    const int T = c->num_train_timesteps;
    float *train = malloc((size_t)T * sizeof(float));
    double *tsd = malloc((size_t)(n + 2) * sizeof(double)), *sig = malloc((size_t)(n + 2) * sizeof(double));
    sdc_status st = SDC_OK;
    int len = 0, formula = 0;
    if (!train || !tsd || !sig) st = sdc_fail(SDC_ERR_NOMEM, "%s: out of memory", p->cls);
    if (!st) {
        if (c->rescale_betas_zero_snr) s->ac[T - 1] = 0x1p-24f; /* near 0 but not 0: the first sigma is finite */
        sched_train_sigmas(s->ac, T, train);
        len = spaced_timesteps(c, p, n, T - clipped_timesteps(s->ac, T, p->lambda_min_clipped), tsd, &st);
    }
    if (!st) {
        const sched_schedule kind = sched_sigma_kind(c, c->use_karras_sigmas);
        if (kind != SCHED_SCHEDULE_UNIFORM) {
            /* in_sigmas = flip(training sigmas): sigma_min = sigmas[0], sigma_max = sigmas[-1] */
            st = sched_formula_sigmas(kind, train, T, (double)train[0], (double)train[T - 1], n, sig, tsd);
            for (int i = 0; i < n; i++) tsd[i] = np_round(tsd[i]);
            len = n;
            formula = 1;
        } else {
            for (int i = 0; i < len; i++) sig[i] = np_interp_index(tsd[i], train, T);
        }
    }
    if (!st) {
        const dpm_last_sigma rule = formula ? p->last_formula : p->last_interp;
        s->ts_int = malloc((size_t)len * sizeof(int64_t));
        s->sigmas = malloc((size_t)(len + 1) * sizeof(float));
        if (!s->ts_int || !s->sigmas) st = sdc_fail(SDC_ERR_NOMEM, "%s: out of memory", p->cls);
        for (int i = 0; !st && i < len; i++) {
            s->ts_int[i] = (int64_t)tsd[i];
            s->sigmas[i] = (float)sig[i];
            if (s->ts_int[i] < 0 || s->ts_int[i] >= T)
                st = sdc_fail(SDC_ERR_ARG, "%s: timestep %lld out of range", p->cls, (long long)s->ts_int[i]);
        }
        if (!st) {
            s->sigmas[len] = rule == DPM_LAST_ZERO        ? 0.0f
                             : rule == DPM_LAST_SIGMA_MIN ? sqrtf((1.0f - s->ac[0]) / s->ac[0])
                                                          : s->sigmas[len - 1];
            s->n_sigmas = len + 1;
            s->n_calls = len;
            s->num_inference_steps = len;
        }
    }
    free(train);
    free(tsd);
    free(sig);
    return st;
}
