/* dpmpp_2m.c - DPMSolverMultistepScheduler (diffusers 0.30.3) with
 * algorithm_type dpmsolver++, solver_order 1 or 2 (midpoint or heun),
 * optional Karras sigmas, lower_order_final / euler_at_final and
 * final_sigmas_type zero | sigma_min. The coefficients are float32 0-dim
 * tensor math as in the reference; torch.log / torch.exp of those tensors run
 * through its vectorised kernels (Sleef_logf8_u10 / Sleef_expf8_u10 on AVX2),
 * which are reproduced below lane for lane (they are not always correctly
 * rounded, so libm's logf/expf would differ by an ulp now and then). */
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

sdc_status dpm_set_timesteps(sdc_scheduler *s, int n) {
    const sched_config *c = &s->cfg;
    const int T = c->num_train_timesteps;
    float *train = malloc((size_t)T * sizeof(float)), *logs = malloc((size_t)T * sizeof(float));
    double *tsd = malloc((size_t)(n + 2) * sizeof(double)), *sig = malloc((size_t)(n + 2) * sizeof(double));
    sdc_status st = SDC_OK;
    int len = n;
    if (!train || !logs || !tsd || !sig) st = sdc_fail(SDC_ERR_NOMEM, "DPMSolverMultistepScheduler: out of memory");
    if (!st) {
        if (c->rescale_betas_zero_snr) s->ac[T - 1] = 0x1p-24f;
        sched_train_sigmas(s->ac, T, train);
        /* clipped_idx = searchsorted(flip(lambda_t), lambda_min_clipped) */
        int clipped = 0;
        if (!(isinf(c->lambda_min_clipped) && c->lambda_min_clipped < 0)) {
            for (int j = 0; j < T; j++) {
                float a = s->ac[T - 1 - j];
                float lam = sleef_logf_u1(sqrtf(a)) - sleef_logf_u1(sqrtf(1.0f - a));
                if ((double)lam < c->lambda_min_clipped) clipped = j + 1;
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
            for (int i = 0; i < T; i++) logs[i] = logf(train[i]) /* np.log of a float32 array */;
            /* in_sigmas = flip(training sigmas): min = sigmas[0], max = sigmas[-1] */
            sched_karras((double)train[0], (double)train[T - 1], n, sig);
            for (int i = 0; i < n; i++) tsd[i] = np_round(sched_sigma_to_t(sig[i], logs, T));
            len = n;
        } else {
            for (int i = 0; i < len; i++) sig[i] = np_interp_index(tsd[i], train, T);
        }
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
    free(logs);
    free(tsd);
    free(sig);
    return st;
}

/* _sigma_to_alpha_sigma_t: alpha = 1 / (sigma**2 + 1) ** 0.5, sigma_t = sigma * alpha */
static void alpha_sigma(float sigma, float *alpha, float *sigma_t) {
    *alpha = 1.0f / sqrtf(sigma * sigma + 1.0f);
    *sigma_t = sigma * *alpha;
}

sdc_status dpm_step(sdc_scheduler *s, int i, const float *mo, float *x, int64_t n, float *x0_out) {
    const sched_config *c = &s->cfg;
    const int L = s->n_calls;
    const int order = c->solver_order;
    const int lower_order_final =
        i == L - 1 && (c->euler_at_final || (c->lower_order_final && L < 15) || !strcmp(c->final_sigmas_type, "zero"));

    /* convert_model_output -> data prediction x0, pushed onto the history */
    float a_i, s_i;
    alpha_sigma(s->sigmas[i], &a_i, &s_i);
    float *m0 = s->model_outputs[2];
    s->model_outputs[2] = s->model_outputs[0];
    s->model_outputs[0] = s->model_outputs[1];
    s->model_outputs[1] = m0; /* [0] = previous x0, [1] = this step's x0, [2] = spare */
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
    if (s->n_model_outputs < 2) s->n_model_outputs++;

    float alpha_t, sigma_t, alpha_s0, sigma_s0;
    alpha_sigma(s->sigmas[i + 1], &alpha_t, &sigma_t);
    alpha_sigma(s->sigmas[i], &alpha_s0, &sigma_s0);
    const float lambda_t = sleef_logf_u1(alpha_t) - sleef_logf_u1(sigma_t);
    const float lambda_s0 = sleef_logf_u1(alpha_s0) - sleef_logf_u1(sigma_s0);
    const float h = lambda_t - lambda_s0;
    const float em1 = sleef_expf(-h) - 1.0f;
    const float c_sample = sigma_t / sigma_s0;
    const float c_d0 = alpha_t * em1;

    if (order == 1 || s->lower_order_nums < 1 || lower_order_final) {
        for (int64_t k = 0; k < n; k++) x[k] = c_sample * x[k] - c_d0 * m0[k];
    } else {
        const float *m1 = s->model_outputs[0];
        float alpha_s1, sigma_s1;
        alpha_sigma(s->sigmas[i - 1], &alpha_s1, &sigma_s1);
        const float lambda_s1 = sleef_logf_u1(alpha_s1) - sleef_logf_u1(sigma_s1);
        const float h_0 = lambda_s0 - lambda_s1;
        const float r0 = h_0 / h;
        const float inv_r0 = 1.0f / r0;
        if (!strcmp(c->solver_type, "midpoint")) {
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
    if (s->lower_order_nums < order) s->lower_order_nums++;
    return SDC_OK;
}
