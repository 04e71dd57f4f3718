/* dpm_common.c - float32 scalar math as torch computes it on 0-dim tensors,
 * and the integer-timestep sigma schedule of the DPM-Solver family
 * (DPMSolverMultistep, DPMSolverSinglestep, DEIS, UniPC; see dpm_common.h).
 * torch.log / torch.exp of float32 tensors run through its vectorised
 * kernels (Sleef_logf8_u10 / Sleef_expf8_u10 on AVX2), reproduced below lane
 * for lane. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sched/dpm_common.h"

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
    /* Sleef's own results out of range (±inf included), before the int conversion that could not hold them */
    if (d < -104) return 0.0f;
    if (100 < d) return INFINITY;
    if (isnan(d)) return d;
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
