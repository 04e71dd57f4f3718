/* dpmpp_2m.c - DPMSolverMultistepScheduler (diffusers 0.30.3) with
 * algorithm_type dpmsolver++, solver_order 1 or 2 (midpoint or heun),
 * optional Karras sigmas, lower_order_final / euler_at_final and
 * final_sigmas_type zero | sigma_min. The coefficients are float32 0-dim
 * tensor math as in the reference; torch.log / torch.exp of those tensors run
 * through its vectorised kernels (Sleef_logf8_u10 / Sleef_expf8_u10 on AVX2),
 * which are reproduced below lane for lane (they are not always correctly
 * rounded, so libm's logf/expf would differ by an ulp now and then). */
#include <assert.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sched/sched_internal.h"

/* ---- Sleef (AVX2 + FMA build) xlogf_u1 and xexpf, one lane ---- */

typedef struct {
    float x, y;
} df2;

static inline uint32_t fbits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static inline float bitsf(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static inline df2 dfadd2_ff(float x, float y) {
    float s = x + y, v = s - x;
    return (df2){s, (x - (s - v)) + (y - v)};
}
static inline df2 dfadd_22(df2 x, df2 y) {
    float s = x.x + y.x;
    return (df2){s, (((x.x - s) + y.x) + x.y) + y.y};
}
static inline df2 dfadd_2f(df2 x, float y) {
    float s = x.x + y;
    return (df2){s, ((x.x - s) + y) + x.y};
}
static inline df2 dfmul_2f(df2 x, float y) {
    float s = x.x * y;
    return (df2){s, fmaf(x.y, y, fmaf(x.x, y, -s))};
}
static inline df2 dfdiv_22(df2 n, df2 d) {
    float t = 1.0f / d.x;
    float s = n.x * t;
    float u = fmaf(t, n.x, -s);
    float v = fmaf(-d.y, t, fmaf(-d.x, t, 1.0f));
    return (df2){s, fmaf(s, v, fmaf(n.y, t, u))};
}

static float sleef_logf_u1(float d) {
    int o = d < 1.17549435e-38f;
    if (o) d = d * ((float)(INT64_C(1) << 32) * (float)(INT64_C(1) << 32));
    int32_t e = (int32_t)((fbits(d * (1.0f / 0.75f)) >> 23) & 0xff) - 0x7f;
    float m = bitsf(fbits(d) + ((uint32_t)(-e) << 23));
    if (o) e -= 64;
    df2 s = dfmul_2f((df2){0.69314718246459960938f, -1.904654323148236017e-09f}, (float)e);
    df2 x = dfdiv_22(dfadd2_ff(-1.0f, m), dfadd2_ff(1.0f, m));
    float x2 = x.x * x.x;
    float t = 0.3027294874e+0f;
    t = fmaf(t, x2, 0.3996108174e+0f);
    t = fmaf(t, x2, 0.6666694880e+0f);
    s = dfadd_22(s, (df2){x.x * 2.0f, x.y * 2.0f});
    s = dfadd_2f(s, (x2 * x.x) * t);
    float r = s.x + s.y;
    if (isinf(d) && d > 0) r = INFINITY;
    if (d < 0 || isnan(d)) r = NAN;
    if (d == 0) r = -INFINITY;
    return r;
}

static inline float pow2i(int32_t q) { return bitsf((uint32_t)(q + 0x7f) << 23); }

static float sleef_expf(float d) {
    const float R_LN2f = 1.442695040888963407359924681001892137426645954152985934135449406931f;
    const float L2Uf = 0.693145751953125f, L2Lf = 1.428606765330187045e-06f;
    /* the guards at the end, taken first: out of this range (+-inf on the last
     * step, where sigma is 0) the cast below would be undefined behaviour */
    if (!(d >= -104 && d <= 100)) return d < -104 ? 0 : d > 100 ? INFINITY : d;
    int32_t q = (int32_t)nearbyintf(d * R_LN2f); /* cvtps2dq: round to nearest even */
    float s = fmaf((float)q, -L2Uf, d);
    s = fmaf((float)q, -L2Lf, s);
    float u = 0.000198527617612853646278381f;
    u = fmaf(u, s, 0.00139304355252534151077271f);
    u = fmaf(u, s, 0.00833336077630519866943359f);
    u = fmaf(u, s, 0.0416664853692054748535156f);
    u = fmaf(u, s, 0.166666671633720397949219f);
    u = fmaf(u, s, 0.5f);
    u = 1.0f + fmaf(s * s, u, s);
    int32_t h = q >> 1; /* vldexp2: u * 2^(q>>1) * 2^(q - (q>>1)) */
    u = u * pow2i(h) * pow2i(q - h);
    if (d < -104) u = 0;
    if (100 < d) u = INFINITY;
    return u;
}

/* DPMSolverMultistepScheduler's own __init__ arguments */
typedef struct {
    int solver_order;
    char algorithm_type[24];     /* dpmsolver++ (others unsupported) */
    char solver_type[16];        /* midpoint | heun */
    int lower_order_final;
    int euler_at_final;
    int use_lu_lambdas;
    double lambda_min_clipped;   /* -inf by default */
    int has_variance_type;       /* variance_type not null (unsupported) */
} dpm_opts;

static dpm_opts opts_of(const sched_config *c) {
    dpm_opts o;
    SCHED_OPTS_GET(dpm_opts, c, &o);
    return o;
}

/* the history: the last two data predictions of the batch */
typedef struct {
    int64_t n;               /* floats per buffer (0: none yet) */
    float *model_outputs[3]; /* [order-2], [order-1]: last two data predictions */
    int n_model_outputs;
    int lower_order_nums;
} dpm_state;

static sdc_status dpm_state_create(sdc_scheduler *s) {
    if (!(s->state = calloc(1, sizeof(dpm_state))))
        return sdc_fail(SDC_ERR_NOMEM, "DPMSolverMultistepScheduler: out of memory");
    return SDC_OK;
}

static void dpm_state_free(void *state) {
    dpm_state *d = state;
    if (!d) return;
    for (int k = 0; k < 3; k++) free(d->model_outputs[k]);
    free(d);
}

static sdc_status dpm_state_reset(sdc_scheduler *s, int64_t n) {
    dpm_state *d = s->state;
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

static sdc_status dpm_validate(const sched_config *c, int steps) {
    const char *cls = "DPMSolverMultistepScheduler";
    const dpm_opts o = opts_of(c);
    if (strcmp(o.algorithm_type, "dpmsolver++")) {
        static const char *const algos[] = {"dpmsolver", "sde-dpmsolver", "sde-dpmsolver++", NULL};
        return sdc_fail(one_of(o.algorithm_type, algos) ? SDC_ERR_UNSUPPORTED : SDC_ERR_ARG,
                        "%s: algorithm_type '%s' is not supported (only dpmsolver++)", cls, o.algorithm_type);
    }
    if (o.solver_order < 1 || o.solver_order > 3)
        return sdc_fail(SDC_ERR_ARG, "%s: solver_order %d (1, 2 or 3)", cls, o.solver_order);
    if (o.solver_order == 3) return sdc_fail(SDC_ERR_UNSUPPORTED, "%s: solver_order 3 is not supported (1 or 2)", cls);
    if (strcmp(o.solver_type, "midpoint") && strcmp(o.solver_type, "heun"))
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

static sdc_status dpm_set_timesteps(sdc_scheduler *s, int n) {
    const sched_config *c = &s->cfg;
    const dpm_opts o = opts_of(c);
    const int T = c->num_train_timesteps;
    float *train = malloc((size_t)T * sizeof(float));
    double *tsd = malloc((size_t)(n + 2) * sizeof(double)), *sig = malloc((size_t)(n + 2) * sizeof(double));
    sdc_status st = SDC_OK;
    int len = n;
    if (!train || !tsd || !sig) st = sdc_fail(SDC_ERR_NOMEM, "DPMSolverMultistepScheduler: out of memory");
    if (!st) {
        if (c->rescale_betas_zero_snr) s->ac[T - 1] = 0x1p-24f;
        sched_train_sigmas(s->ac, T, train);
        /* clipped_idx = searchsorted(flip(lambda_t), lambda_min_clipped) */
        int clipped = 0;
        if (!(isinf(o.lambda_min_clipped) && o.lambda_min_clipped < 0)) {
            for (int j = 0; j < T; j++) {
                float a = s->ac[T - 1 - j];
                float lam = sleef_logf_u1(sqrtf(a)) - sleef_logf_u1(sqrtf(1.0f - a));
                if ((double)lam < o.lambda_min_clipped) clipped = j + 1;
                else break;
            }
        }
        const int last_timestep = T - clipped;
        if (!strcmp(c->timestep_spacing, "linspace")) {
            double *v = malloc((size_t)(n + 1) * sizeof(double));
            if (!v) st = sdc_fail(SDC_ERR_NOMEM, "DPMSolverMultistepScheduler: out of memory");
            else {
                np_linspace(0, last_timestep - 1, n + 1, 1, v);
                for (int i = 0; i < n; i++) tsd[i] = (double)(int64_t)np_round(v[n - i]);
                free(v);
            }
        } else if (!strcmp(c->timestep_spacing, "leading")) {
            int ratio = last_timestep / (n + 1);
            for (int i = 0; i < n; i++) tsd[i] = (double)((int64_t)(n - i) * ratio + c->steps_offset);
        } else {
            double ratio = (double)T / n;
            len = np_arange(last_timestep, 0, -ratio, tsd, n + 2);
            for (int i = 0; i < len; i++) tsd[i] = (double)((int64_t)np_round(tsd[i]) - 1);
            if (len < 1) st = sdc_fail(SDC_ERR_ARG, "DPMSolverMultistepScheduler: no timesteps for %d steps", n);
        }
    }
    if (!st) {
        if (c->use_karras_sigmas) {
            /* in_sigmas = flip(training sigmas): min = sigmas[0], max = sigmas[-1] */
            st = sched_karras_schedule(train, T, (double)train[0], (double)train[T - 1], n, sig, tsd);
            for (int i = 0; i < n; i++) tsd[i] = np_round(tsd[i]);
            len = n;
        } else {
            for (int i = 0; i < len; i++) sig[i] = np_interp_index(tsd[i], train, T);
        }
    }
    if (!st) {
        float last = 0.0f;
        if (!strcmp(c->final_sigmas_type, "sigma_min")) last = sqrtf((1.0f - s->ac[0]) / s->ac[0]);
        s->ts_int = malloc((size_t)len * sizeof(int64_t));
        s->sigmas = malloc((size_t)(len + 1) * sizeof(float));
        if (!s->ts_int || !s->sigmas) st = sdc_fail(SDC_ERR_NOMEM, "DPMSolverMultistepScheduler: out of memory");
        for (int i = 0; !st && i < len; i++) {
            s->ts_int[i] = (int64_t)tsd[i];
            s->sigmas[i] = (float)sig[i];
            if (s->ts_int[i] < 0 || s->ts_int[i] >= T)
                st = sdc_fail(SDC_ERR_ARG, "DPMSolverMultistepScheduler: timestep %lld out of range",
                              (long long)s->ts_int[i]);
        }
        if (!st) {
            s->sigmas[len] = last;
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

/* _sigma_to_alpha_sigma_t: alpha = 1 / (sigma**2 + 1) ** 0.5, sigma_t = sigma * alpha */
static void alpha_sigma(float sigma, float *alpha, float *sigma_t) {
    *alpha = 1.0f / sqrtf(sigma * sigma + 1.0f);
    *sigma_t = sigma * *alpha;
}

static sdc_status dpm_step(sdc_scheduler *s, int i, const float *mo, float *x, int batch, int64_t per,
                           const sched_gens *gens, float eta, float *x0_out, float *noise_out) {
    (void)gens, (void)eta, (void)noise_out;
    const sched_config *c = &s->cfg;
    const dpm_opts o = opts_of(c);
    dpm_state *d = s->state;
    const int64_t n = (int64_t)batch * per;
    const int L = s->n_calls;
    const int order = o.solver_order;
    const int lower_order_final =
        i == L - 1 && (o.euler_at_final || (o.lower_order_final && L < 15) || !strcmp(c->final_sigmas_type, "zero"));
    assert(d->n == n); /* scheduler.c started the history for this batch at step 0 */
    assert(d->lower_order_nums <= i); /* one more per step since step 0: steps come in order */

    /* convert_model_output -> data prediction x0, pushed onto the history */
    float a_i, s_i;
    alpha_sigma(s->sigmas[i], &a_i, &s_i);
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

    float alpha_t, sigma_t, alpha_s0, sigma_s0;
    alpha_sigma(s->sigmas[i + 1], &alpha_t, &sigma_t);
    alpha_sigma(s->sigmas[i], &alpha_s0, &sigma_s0);
    const float lambda_t = sleef_logf_u1(alpha_t) - sleef_logf_u1(sigma_t);
    const float lambda_s0 = sleef_logf_u1(alpha_s0) - sleef_logf_u1(sigma_s0);
    const float h = lambda_t - lambda_s0;
    const float em1 = sleef_expf(-h) - 1.0f;
    const float c_sample = sigma_t / sigma_s0;
    const float c_d0 = alpha_t * em1;

    if (order == 1 || d->lower_order_nums < 1 || lower_order_final) {
        for (int64_t k = 0; k < n; k++) x[k] = c_sample * x[k] - c_d0 * m0[k];
    } else {
        assert(i >= 1 && d->n_model_outputs == 2); /* a previous step's x0 is in model_outputs[0] */
        const float *m1 = d->model_outputs[0];
        float alpha_s1, sigma_s1;
        alpha_sigma(s->sigmas[i - 1], &alpha_s1, &sigma_s1);
        const float lambda_s1 = sleef_logf_u1(alpha_s1) - sleef_logf_u1(sigma_s1);
        const float h_0 = lambda_s0 - lambda_s1;
        const float r0 = h_0 / h;
        const float inv_r0 = 1.0f / r0;
        if (!strcmp(o.solver_type, "midpoint")) {
            const float c_d1 = 0.5f * c_d0;
            for (int64_t k = 0; k < n; k++) {
                float d1 = inv_r0 * (m0[k] - m1[k]);
                x[k] = c_sample * x[k] - c_d0 * m0[k] - c_d1 * d1;
            }
        } else { /* heun */
            const float c_d1 = alpha_t * (em1 / h + 1.0f);
            for (int64_t k = 0; k < n; k++) {
                float d1 = inv_r0 * (m0[k] - m1[k]);
                x[k] = c_sample * x[k] - c_d0 * m0[k] + c_d1 * d1;
            }
        }
    }
    if (d->lower_order_nums < order) d->lower_order_nums++;
    return SDC_OK;
}

static const char *const aliases[] = {"dpmpp2m", "dpm++_2m", NULL};
static const char *const a1111_aliases[] = {"k_dpmpp_2m", NULL};

/* DPMSolverMultistepScheduler.__init__ */
static const sched_key keys[] = {
    SK_INT(num_train_timesteps, 1000), SK_NUM(beta_start, 0.0001), SK_NUM(beta_end, 0.02),
    SK_STR(beta_schedule, "linear"), SK_NULLABLE(trained_betas), SO_INT(dpm_opts, solver_order, 2),
    SK_STR(prediction_type, "epsilon"), SK_BOOL(thresholding, 0), SK_NUM(dynamic_thresholding_ratio, 0.995),
    SK_NUM(sample_max_value, 1.0), SO_STR(dpm_opts, algorithm_type, "dpmsolver++"),
    SO_STR(dpm_opts, solver_type, "midpoint"), SO_BOOL(dpm_opts, lower_order_final, 1),
    SO_BOOL(dpm_opts, euler_at_final, 0), SK_BOOL(use_karras_sigmas, 0), SO_BOOL(dpm_opts, use_lu_lambdas, 0),
    SK_STR(final_sigmas_type, "zero"), SO_NUM(dpm_opts, lambda_min_clipped, -INFINITY),
    SO_NULLABLE(dpm_opts, variance_type), SK_STR(timestep_spacing, "linspace"), SK_INT(steps_offset, 0),
    SK_BOOL(rescale_betas_zero_snr, 0), SK_END};

const sched_def sched_dpmpp_2m = {
    .info = {.name = "dpmpp_2m", .aliases = aliases, .diffusers_class = "DPMSolverMultistepScheduler",
             .a1111_name = "DPM++ 2M", .a1111_aliases = a1111_aliases, .karras_ok = 1},
    .keys = keys,
    .opts_size = sizeof(dpm_opts),
    .calls_per_step = 1,
    .validate = dpm_validate,
    .set_timesteps = dpm_set_timesteps,
    .step = dpm_step,
    .state_create = dpm_state_create,
    .state_free = dpm_state_free,
    .state_reset = dpm_state_reset,
};
