/* schedule_common.c - betas / alphas_cumprod exactly as torch computes them,
 * numpy's linspace / arange / round / interp, Karras sigmas, sigma -> t, and
 * the discrete sigma schedule the sigma samplers share.
 *
 * Floating-point contraction must stay off here except where torch's own
 * build contracts (fmaf below): the project compiles with -std=c11, where
 * GCC defaults to -ffp-contract=off. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sched/sched_internal.h"

/* torch 1.13 linspace_kernel on the AVX2 build: step = (end - start) / (n - 1)
 * in float; chunks of 8 through Vectorized<float>::arange(base, step), two
 * chunks per iteration, then a scalar tail; base = start + step * idx below
 * n / 2, else end - step * (n - idx - 1). GCC contracts every a + b * c into an
 * FMA there (verified: alphas_cumprod matches the golden bit for bit only
 * this way). */
void torch_linspace_f32(double start_d, double end_d, int64_t n, float *out) {
    if (n <= 0) return;
    const float start = (float)start_d, end = (float)end_d;
    if (n == 1) {
        out[0] = start;
        return;
    }
    const float step = (end - start) / (float)(n - 1);
    const int64_t halfway = n / 2;
    int64_t i = 0;
    for (; i <= n - 16; i += 16) {
        for (int c = 0; c < 2; c++) {
            int64_t idx = i + 8 * c;
            float base = idx < halfway ? fmaf(step, (float)idx, start) : fmaf(-step, (float)(n - idx - 1), end);
            for (int k = 0; k < 8; k++) out[idx + k] = k == 0 ? base : fmaf((float)k, step, base);
        }
    }
    for (; i < n; i++) out[i] = i < halfway ? fmaf(step, (float)i, start) : fmaf(-step, (float)(n - i - 1), end);
}

/* diffusers betas_for_alpha_bar (cosine), computed in Python floats. */
static void betas_cosine(int n, float *betas) {
    for (int i = 0; i < n; i++) {
        double t1 = (double)i / n, t2 = (double)(i + 1) / n;
        double c1 = cos((t1 + 0.008) / 1.008 * M_PI / 2), c2 = cos((t2 + 0.008) / 1.008 * M_PI / 2);
        double a1 = c1 * c1, a2 = c2 * c2;
        double b = 1 - a2 / a1;
        betas[i] = (float)(b < 0.999 ? b : 0.999);
    }
}

static void cumprod_f32(const float *a, int n, float *out) {
    double acc = 1.0; /* torch's CPU cumprod accumulates in acc_type<float> = double */
    for (int i = 0; i < n; i++) {
        acc *= (double)a[i];
        out[i] = (float)acc;
    }
}

/* diffusers rescale_zero_terminal_snr, float32 torch ops. */
static void rescale_zero_snr(float *betas, int n) {
    if (n < 2) return;
    float *a = malloc((size_t)n * sizeof(float)), *ac = malloc((size_t)n * sizeof(float));
    if (!a || !ac) {
        free(a);
        free(ac);
        return;
    }
    for (int i = 0; i < n; i++) a[i] = 1.0f - betas[i];
    cumprod_f32(a, n, ac);
    for (int i = 0; i < n; i++) ac[i] = sqrtf(ac[i]);
    float s0 = ac[0], sT = ac[n - 1];
    for (int i = 0; i < n; i++) ac[i] = ac[i] - sT;
    float scale = s0 / (s0 - sT);
    for (int i = 0; i < n; i++) ac[i] = ac[i] * scale;
    for (int i = 0; i < n; i++) ac[i] = ac[i] * ac[i];
    betas[0] = 1.0f - ac[0];
    for (int i = n - 1; i >= 1; i--) betas[i] = 1.0f - ac[i] / ac[i - 1];
    free(a);
    free(ac);
}

sdc_status sched_make_alphas_cumprod(const sched_config *cfg, float **out) {
    int n = cfg->num_train_timesteps;
    *out = NULL;
    float *betas = malloc((size_t)n * sizeof(float)), *ac = malloc((size_t)n * sizeof(float));
    if (!betas || !ac) {
        free(betas);
        free(ac);
        return sdc_fail(SDC_ERR_NOMEM, "scheduler: out of memory for %d betas", n);
    }
    if (!strcmp(cfg->beta_schedule, "linear")) {
        torch_linspace_f32(cfg->beta_start, cfg->beta_end, n, betas);
    } else if (!strcmp(cfg->beta_schedule, "scaled_linear")) {
        torch_linspace_f32(pow(cfg->beta_start, 0.5), pow(cfg->beta_end, 0.5), n, betas);
        for (int i = 0; i < n; i++) betas[i] = betas[i] * betas[i];
    } else if (!strcmp(cfg->beta_schedule, "squaredcos_cap_v2")) {
        betas_cosine(n, betas);
    } else {
        free(betas);
        free(ac);
        return sdc_fail(SDC_ERR_ARG, "scheduler: beta_schedule '%s' is not implemented (valid: linear, scaled_linear, squaredcos_cap_v2)",
                        cfg->beta_schedule);
    }
    if (cfg->rescale_betas_zero_snr) rescale_zero_snr(betas, n);
    for (int i = 0; i < n; i++) betas[i] = 1.0f - betas[i]; /* alphas */
    cumprod_f32(betas, n, ac);
    free(betas);
    *out = ac;
    return SDC_OK;
}

void np_linspace(double start, double stop, int num, int endpoint, double *out) {
    if (num <= 0) return;
    int div = endpoint ? num - 1 : num;
    double delta = stop - start;
    if (div > 0) {
        double step = delta / div;
        if (step == 0) {
            for (int i = 0; i < num; i++) out[i] = (double)i / div * delta + start;
        } else {
            for (int i = 0; i < num; i++) out[i] = (double)i * step + start;
        }
    } else {
        for (int i = 0; i < num; i++) out[i] = (double)i * delta + start;
    }
    if (endpoint && num > 1) out[num - 1] = stop;
}

/* numpy.arange(start, stop, step) for floats: element 1 is start + step, the
 * rest start + i * (element1 - start). Returns the length (<= max). */
int np_arange(double start, double stop, double step, double *out, int max) {
    double len_d = ceil((stop - start) / step);
    if (!(len_d > 0)) return 0;
    int len = len_d > max ? max : (int)len_d;
    out[0] = start;
    if (len > 1) {
        out[1] = start + step;
        double delta = out[1] - start;
        for (int i = 2; i < len; i++) out[i] = start + (double)i * delta;
    }
    return len;
}

double np_round(double x) { return nearbyint(x); } /* half to even in the default rounding mode */

double np_interp_index(double x, const float *fp, int len) {
    if (isnan(x)) return x;
    if (x < 0) return (double)fp[0];
    if (x >= (double)(len - 1)) return (double)fp[len - 1];
    int j = (int)floor(x);
    if ((double)j == x) return (double)fp[j];
    double slope = ((double)fp[j + 1] - (double)fp[j]) / (double)((j + 1) - j);
    double r = slope * (x - (double)j) + (double)fp[j];
    if (isnan(r)) {
        r = slope * (x - (double)(j + 1)) + (double)fp[j + 1];
        if (isnan(r) && fp[j] == fp[j + 1]) r = (double)fp[j];
    }
    return r;
}

void sched_train_sigmas(const float *ac, int n, float *sig) {
    for (int i = 0; i < n; i++) sig[i] = sqrtf((1.0f - ac[i]) / ac[i]);
}

void sched_karras(double sigma_min, double sigma_max, int n, double *out) {
    const double rho = 7.0;
    double *ramp = malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    if (!ramp) return;
    np_linspace(0, 1, n, 1, ramp);
    double min_inv_rho = pow(sigma_min, 1 / rho);
    double max_inv_rho = pow(sigma_max, 1 / rho);
    for (int i = 0; i < n; i++) out[i] = pow(max_inv_rho + ramp[i] * (min_inv_rho - max_inv_rho), rho);
    free(ramp);
}

double sched_sigma_to_t(double sigma, const float *log_sigmas, int n) {
    /* numpy 1.x: log_sigma is float64, but every operation with the float32
     * log_sigmas array (dists, low - log_sigma, the weight) is float32 by
     * value-based casting; only (1 - w) * low_idx + w * high_idx, float32 times
     * an int64 array, is float64 again */
    const float log_sigma = (float)log(sigma > 1e-10 ? sigma : 1e-10);
    /* low_idx = argmax(cumsum(dists >= 0)), clipped to n - 2 */
    int64_t cs = 0, best = -1;
    int low_idx = 0;
    for (int i = 0; i < n; i++) {
        if (log_sigma - log_sigmas[i] >= 0) cs++;
        if (cs > best) {
            best = cs;
            low_idx = i;
        }
    }
    if (low_idx > n - 2) low_idx = n - 2;
    int high_idx = low_idx + 1;
    const float low = log_sigmas[low_idx], high = log_sigmas[high_idx];
    float w = (low - log_sigma) / (low - high);
    if (w < 0) w = 0;
    if (w > 1) w = 1;
    return (double)(1.0f - w) * (double)low_idx + (double)w * (double)high_idx;
}

sdc_status sched_karras_schedule(const float *train_sigmas, int T, double sigma_min, double sigma_max, int n,
                                 double *sig, double *t) {
    return sched_formula_sigmas(SCHED_SCHEDULE_KARRAS, train_sigmas, T, sigma_min, sigma_max, n, sig, t);
}

sched_schedule sched_sigma_kind(const sched_config *c, int karras) {
    if (karras) return SCHED_SCHEDULE_KARRAS;
    switch (c->schedule) {
    case SCHED_SCHEDULE_KARRAS:
    case SCHED_SCHEDULE_EXPONENTIAL:
    case SCHED_SCHEDULE_SGM_UNIFORM:
    case SCHED_SCHEDULE_SIMPLE: return c->schedule;
    default: return SCHED_SCHEDULE_UNIFORM;
    }
}

/* k-diffusion's t_to_sigma: log-linear between the neighbouring training sigmas */
static double t_to_sigma(double t, const float *logs, int T) {
    if (t <= 0) return exp((double)logs[0]);
    if (t >= T - 1) return exp((double)logs[T - 1]);
    int lo = (int)floor(t);
    double w = t - lo;
    return exp((1 - w) * (double)logs[lo] + w * (double)logs[lo + 1]);
}

sdc_status sched_formula_sigmas(sched_schedule kind, const float *train, int T, double sigma_min, double sigma_max,
                                int n, double *sig, double *t) {
    if (n < 1 || T < 2) return sdc_fail(SDC_ERR_ARG, "scheduler: %d sigmas from %d training sigmas", n, T);
    float *logs = malloc((size_t)T * sizeof(float));
    if (!logs) return sdc_fail(SDC_ERR_NOMEM, "scheduler: out of memory");
    for (int i = 0; i < T; i++) logs[i] = np_logf(train[i]); /* np.log of a float32 array */
    sdc_status st = SDC_OK;
    switch (kind) {
    case SCHED_SCHEDULE_KARRAS: sched_karras(sigma_min, sigma_max, n, sig); break;
    case SCHED_SCHEDULE_EXPONENTIAL: /* exp(linspace(log(sigma_max), log(sigma_min), n)) */
        np_linspace(log(sigma_max), log(sigma_min), n, 1, sig);
        for (int i = 0; i < n; i++) sig[i] = exp(sig[i]);
        break;
    case SCHED_SCHEDULE_SGM_UNIFORM: { /* linspace(t(sigma_max), t(sigma_min), n + 1)[:-1] */
        double t0 = sched_sigma_to_t(sigma_max, logs, T), t1 = sched_sigma_to_t(sigma_min, logs, T);
        for (int i = 0; i < n; i++) sig[i] = t_to_sigma(t0 + (t1 - t0) * i / n, logs, T);
        break;
    }
    case SCHED_SCHEDULE_SIMPLE: { /* sigmas[-(1 + int(x * len(sigmas) / n))] */
        const double ss = (double)T / n;
        for (int i = 0; i < n; i++) sig[i] = (double)train[T - 1 - (int)(i * ss)];
        break;
    }
    default: st = sdc_fail(SDC_ERR_ARG, "scheduler: schedule type %d has no sigma formula", (int)kind);
    }
    for (int i = 0; !st && i < n; i++) t[i] = sched_sigma_to_t(sig[i], logs, T);
    free(logs);
    return st;
}

sdc_status sched_spacing_int(const sched_config *cfg, int n, int64_t *out) {
    const int T = cfg->num_train_timesteps;
    if (!strcmp(cfg->timestep_spacing, "linspace")) {
        double *v = malloc((size_t)n * sizeof(double));
        if (!v) return sdc_fail(SDC_ERR_NOMEM, "scheduler: out of memory");
        np_linspace(0, T - 1, n, 1, v);
        for (int i = 0; i < n; i++) out[i] = (int64_t)np_round(v[n - 1 - i]);
        free(v);
    } else if (!strcmp(cfg->timestep_spacing, "leading")) {
        int64_t ratio = T / n;
        for (int i = 0; i < n; i++) out[i] = (int64_t)(n - 1 - i) * ratio + cfg->steps_offset;
    } else if (!strcmp(cfg->timestep_spacing, "trailing")) {
        double ratio = (double)T / n;
        double *v = malloc((size_t)(n + 2) * sizeof(double));
        if (!v) return sdc_fail(SDC_ERR_NOMEM, "scheduler: out of memory");
        int len = np_arange(T, 0, -ratio, v, n + 2);
        if (len != n) {
            free(v);
            return sdc_fail(SDC_ERR_UNSUPPORTED, "scheduler: trailing spacing gives %d timesteps for %d steps", len, n);
        }
        for (int i = 0; i < n; i++) out[i] = (int64_t)np_round(v[i]) - 1;
        free(v);
    } else {
        return sdc_fail(SDC_ERR_ARG, "scheduler: timestep_spacing '%s' is not supported (valid: linspace, leading, trailing)",
                        cfg->timestep_spacing);
    }
    return SDC_OK;
}

int sched_is_eps(const sched_config *c) { return !strcmp(c->prediction_type, "epsilon"); }
int sched_is_v(const sched_config *c) { return !strcmp(c->prediction_type, "v_prediction"); }
int sched_is_sample(const sched_config *c) { return !strcmp(c->prediction_type, "sample"); }

/* timesteps as float32, descending */
static sdc_status sigma_timesteps(const sched_config *c, int n, float *ts) {
    const int T = c->num_train_timesteps;
    if (!strcmp(c->timestep_spacing, "linspace")) {
        double *v = malloc((size_t)n * sizeof(double));
        if (!v) return sdc_fail(SDC_ERR_NOMEM, "scheduler: out of memory");
        np_linspace(0, T - 1, n, 1, v); /* dtype=np.float32: computed in float64, cast */
        for (int i = 0; i < n; i++) ts[i] = (float)v[n - 1 - i];
        free(v);
    } else if (!strcmp(c->timestep_spacing, "leading")) {
        int ratio = T / n;
        for (int i = 0; i < n; i++) ts[i] = (float)((int64_t)(n - 1 - i) * ratio) + (float)c->steps_offset;
    } else {
        double ratio = (double)T / n, *v = malloc((size_t)(n + 2) * sizeof(double));
        if (!v) return sdc_fail(SDC_ERR_NOMEM, "scheduler: out of memory");
        int len = np_arange(T, 0, -ratio, v, n + 2);
        if (len != n) {
            free(v);
            return sdc_fail(SDC_ERR_UNSUPPORTED, "scheduler: trailing spacing gives %d timesteps for %d steps", len, n);
        }
        for (int i = 0; i < n; i++) ts[i] = (float)np_round(v[i]) - 1.0f;
        free(v);
    }
    return SDC_OK;
}

sdc_status sched_sigma_schedule(sdc_scheduler *s, int n, int karras, int final_sigma_min) {
    return sched_sigma_schedule_of(s, n, sched_sigma_kind(&s->cfg, karras), final_sigma_min);
}

sdc_status sched_sigma_schedule_of(sdc_scheduler *s, int n, sched_schedule kind, int final_sigma_min) {
    const sched_config *c = &s->cfg;
    const int T = c->num_train_timesteps;
    s->ts_float = malloc((size_t)n * sizeof(float));
    s->sigmas = malloc((size_t)(n + 1) * sizeof(float));
    float *train = malloc((size_t)T * sizeof(float));
    double *sig = malloc((size_t)n * sizeof(double)), *t = malloc((size_t)n * sizeof(double));
    sdc_status st = SDC_OK;
    if (!s->ts_float || !s->sigmas || !train || !sig || !t) st = sdc_fail(SDC_ERR_NOMEM, "scheduler: out of memory");
    if (!st) st = sigma_timesteps(c, n, s->ts_float);
    if (!st) {
        if (c->rescale_betas_zero_snr) s->ac[T - 1] = 0x1p-24f; /* near 0 but not 0: first sigma finite */
        sched_train_sigmas(s->ac, T, train);
        for (int i = 0; i < n; i++) sig[i] = np_interp_index((double)s->ts_float[i], train, T);
        if (kind != SCHED_SCHEDULE_UNIFORM) { /* the range of the class's _convert_to_karras */
            double smin = c->has_sigma_min ? c->sigma_min : sig[n - 1];
            double smax = c->has_sigma_max ? c->sigma_max : sig[0];
            st = sched_formula_sigmas(kind, train, T, smin, smax, n, sig, t);
            for (int i = 0; !st && i < n; i++) s->ts_float[i] = (float)t[i];
        }
    }
    if (!st) {
        float last = 0.0f;
        if (final_sigma_min) last = sqrtf((1.0f - s->ac[0]) / s->ac[0]);
        for (int i = 0; i < n; i++) s->sigmas[i] = (float)sig[i];
        s->sigmas[n] = last;
        s->n_sigmas = n + 1;
        s->n_calls = n;
        /* init_noise_sigma: max sigma (linspace, trailing) or sqrt(max^2 + 1) */
        float mx = s->sigmas[0];
        for (int i = 1; i <= n; i++)
            if (s->sigmas[i] > mx) mx = s->sigmas[i];
        if (!strcmp(c->timestep_spacing, "linspace") || !strcmp(c->timestep_spacing, "trailing"))
            s->init_noise_sigma = mx;
        else
            s->init_noise_sigma = sqrtf(mx * mx + 1.0f);
    }
    free(train);
    free(sig);
    free(t);
    return st;
}

void sched_scale_by_sigma(const sdc_scheduler *s, int i, float *x, int64_t n) {
    const float sigma = s->sigmas[i];
    const float d = sqrtf(sigma * sigma + 1.0f); /* (sigma**2 + 1) ** 0.5, float32 */
    for (int64_t k = 0; k < n; k++) x[k] = x[k] / d;
}

void sched_add_noise_default(const sdc_scheduler *s, int i, const float *x0, const float *noise, float *out,
                             int64_t n) {
    if (s->sigmas && s->cfg.def->scale_model_input) { /* x0 + noise * sigma */
        const float sigma = s->sigmas[i];
        for (int64_t k = 0; k < n; k++) out[k] = x0[k] + noise[k] * sigma;
    } else if (s->sigmas) { /* _sigma_to_alpha_sigma_t: alpha_t = 1 / (sigma**2 + 1) ** 0.5 */
        const float sigma = s->sigmas[i];
        const float alpha_t = 1.0f / sqrtf(sigma * sigma + 1.0f), sigma_t = sigma * alpha_t;
        for (int64_t k = 0; k < n; k++) out[k] = alpha_t * x0[k] + sigma_t * noise[k];
    } else { /* alphas_cumprod[t] ** 0.5 and (1 - alphas_cumprod[t]) ** 0.5 as float32 tensors */
        const float ac = s->ac[s->ts_int[i]];
        const float sa = sqrtf(ac), sb = sqrtf(1.0f - ac);
        for (int64_t k = 0; k < n; k++) out[k] = sa * x0[k] + sb * noise[k];
    }
}
