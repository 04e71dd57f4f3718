/* euler.c - EulerDiscreteScheduler and EulerAncestralDiscreteScheduler
 * (diffusers 0.30.3). Timesteps are float32; the training sigmas are float32
 * torch values, interpolated by numpy in float64 and stored as float32; the
 * step runs in float32 (sample upcast to float32). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sched/sched_internal.h"

/* timesteps as float32, descending */
static sdc_status euler_timesteps(const sched_config *c, int n, float *ts) {
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

sdc_status euler_set_timesteps(sdc_scheduler *s, int n) {
    const sched_config *c = &s->cfg;
    const int T = c->num_train_timesteps;
    const int karras = c->kind == SCHED_EULER && c->use_karras_sigmas;
    s->ts_float = malloc((size_t)n * sizeof(float));
    s->sigmas = malloc((size_t)(n + 1) * sizeof(float));
    float *train = malloc((size_t)T * sizeof(float)), *logs = malloc((size_t)T * sizeof(float));
    double *sig = malloc((size_t)n * sizeof(double));
    sdc_status st = SDC_OK;
    if (!s->ts_float || !s->sigmas || !train || !logs || !sig) st = sdc_fail(SDC_ERR_NOMEM, "scheduler: out of memory");
    if (!st) st = euler_timesteps(c, n, s->ts_float);
    if (!st) {
        if (c->rescale_betas_zero_snr) s->ac[T - 1] = 0x1p-24f; /* near 0 but not 0: first sigma finite */
        sched_train_sigmas(s->ac, T, train);
        for (int i = 0; i < n; i++) sig[i] = np_interp_index((double)s->ts_float[i], train, T);
        if (karras) {
            for (int i = 0; i < T; i++) logs[i] = logf(train[i]);
            double smin = c->has_sigma_min ? c->sigma_min : sig[n - 1];
            double smax = c->has_sigma_max ? c->sigma_max : sig[0];
            sched_karras(smin, smax, n, sig);
            for (int i = 0; i < n; i++) s->ts_float[i] = (float)sched_sigma_to_t(sig[i], logs, T);
        }
        float last = 0.0f;
        if (!strcmp(c->final_sigmas_type, "sigma_min") && c->kind == SCHED_EULER)
            last = sqrtf((1.0f - s->ac[0]) / s->ac[0]);
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
    free(logs);
    free(sig);
    return st;
}

static void draw_noise(int batch, int64_t per, const sched_gens *gens, float *noise) {
    for (int b = 0; b < batch; b++) sched_randn(gens, b, noise + (int64_t)b * per, per);
}

sdc_status euler_step(sdc_scheduler *s, int i, const float *mo, float *x, int batch, int64_t per, const sched_gens *gens,
                      float *x0_out, float *noise_out) {
    const sched_config *c = &s->cfg;
    const int64_t n = (int64_t)batch * per;
    /* EulerDiscrete draws its churn noise on every step and (s_churn = 0) ignores it */
    float *noise = noise_out ? noise_out : malloc((size_t)n * sizeof(float));
    if (!noise) return sdc_fail(SDC_ERR_NOMEM, "EulerDiscreteScheduler: out of memory");
    draw_noise(batch, per, gens, noise);
    if (noise != noise_out) free(noise);

    const float sigma = s->sigmas[i];
    const float sigma_hat = sigma; /* sigma * (gamma + 1), gamma = 0 */
    const float dt = s->sigmas[i + 1] - sigma_hat;
    const int eps = sched_is_eps(c), v = sched_is_v(c);
    const float s2p1 = sigma * sigma + 1.0f;
    const float c_out = -sigma / sqrtf(s2p1);
    for (int64_t k = 0; k < n; k++) {
        float pos;
        if (eps)
            pos = x[k] - sigma_hat * mo[k];
        else if (v)
            pos = mo[k] * c_out + x[k] / s2p1;
        else
            pos = mo[k];
        float derivative = (x[k] - pos) / sigma_hat;
        if (x0_out) x0_out[k] = pos;
        x[k] = x[k] + derivative * dt;
    }
    return SDC_OK;
}

sdc_status euler_a_step(sdc_scheduler *s, int i, const float *mo, float *x, int batch, int64_t per, const sched_gens *gens,
                        float *x0_out, float *noise_out) {
    const sched_config *c = &s->cfg;
    const int64_t n = (int64_t)batch * per;
    const float sigma = s->sigmas[i];
    const float sf = s->sigmas[i], st = s->sigmas[i + 1];
    const float sf2 = sf * sf, st2 = st * st;
    const float sigma_up = sqrtf(st2 * (sf2 - st2) / sf2);
    const float sigma_down = sqrtf(st2 - sigma_up * sigma_up);
    const float dt = sigma_down - sigma;
    const int eps = sched_is_eps(c);
    const float s2p1 = sigma * sigma + 1.0f;
    const float c_out = -sigma / sqrtf(s2p1);
    float *noise = noise_out ? noise_out : malloc((size_t)n * sizeof(float));
    if (!noise) return sdc_fail(SDC_ERR_NOMEM, "EulerAncestralDiscreteScheduler: out of memory");
    draw_noise(batch, per, gens, noise);
    for (int64_t k = 0; k < n; k++) {
        float pos = eps ? x[k] - sigma * mo[k] : mo[k] * c_out + x[k] / s2p1;
        float derivative = (x[k] - pos) / sigma;
        float prev = x[k] + derivative * dt;
        if (x0_out) x0_out[k] = pos;
        x[k] = prev + noise[k] * sigma_up;
    }
    if (noise != noise_out) free(noise);
    return SDC_OK;
}
