/* sched_internal.h - shared state and helpers of the scheduler family files. */
#ifndef SDC_SCHED_INTERNAL_H
#define SDC_SCHED_INTERNAL_H

#include <stdint.h>

#include "sched/scheduler.h"

/* The per-image generators a step draws from: torch CPU generators
 * (sched_step) or noise_gen of either kind (sched_step_gen); the other is NULL. */
typedef struct {
    torch_gen *torch;
    noise_gen *any;
} sched_gens;

/* randn of image b's noise, n floats. */
static inline void sched_randn(const sched_gens *g, int b, float *out, int64_t n) {
    if (g->any)
        noise_randn(&g->any[b], out, n);
    else
        torch_randn(&g->torch[b], out, n);
}

struct sdc_scheduler {
    sched_config cfg;
    int num_inference_steps;
    int n_calls;
    int64_t *ts_int;      /* integer timesteps (all but Euler / Euler-a) */
    float *ts_float;      /* Euler / Euler-a timesteps (float32) */
    float *sigmas;        /* float32 sigmas, n_calls + 1 (sigma-based kinds) */
    double *sigmas_d;     /* the same as double, for sched_sigmas */
    int n_sigmas;
    float *ac;            /* alphas_cumprod, num_train_timesteps entries */
    float final_ac;       /* final_alpha_cumprod */
    float init_noise_sigma;

    /* history (PNDM, DPM) */
    int steps_done;       /* steps taken since creation / reset */
    int64_t state_n;      /* batch * per_image of the allocated state, 0 = none */
    /* PNDM */
    int prk_count;        /* number of PRK calls (0 with skip_prk_steps) */
    int64_t *prk_ts;      /* prk_timesteps (needed by step_prk) */
    float *ets[4];
    int n_ets;
    float *cur_sample;
    int has_cur_sample;
    float *cur_model_output;
    int counter;
    /* DPM */
    float *model_outputs[3]; /* [order-2], [order-1]: last two data predictions */
    int n_model_outputs;
    int lower_order_nums;
};

/* ---- schedule_common.c ---- */

/* betas (torch float32 linspace / cosine), optional zero-SNR rescale, and
 * alphas_cumprod (torch.cumprod: double accumulator, float32 outputs).
 * Allocates *ac (cfg->num_train_timesteps floats). */
sdc_status sched_make_alphas_cumprod(const sched_config *cfg, float **ac);
/* torch.linspace(start, end, n, dtype=float32) as the AVX2 CPU kernel computes it. */
void torch_linspace_f32(double start, double end, int64_t n, float *out);
/* numpy.linspace(start, stop, num, endpoint) in float64. */
void np_linspace(double start, double stop, int num, int endpoint, double *out);
/* numpy.arange(start, stop, step) for float64 (numpy's fill rule); returns
 * the length, at most max. */
int np_arange(double start, double stop, double step, double *out, int max);
/* numpy.round (half to even) for float64. */
double np_round(double x);
/* numpy.interp(x, arange(len), fp) for fp float32 values: float64 result. */
double np_interp_index(double x, const float *fp, int len);
/* sqrt((1 - ac) / ac) in float32, elementwise (torch). */
void sched_train_sigmas(const float *ac, int n, float *sig);
/* Karras et al. schedule (diffusers _convert_to_karras), float64. */
void sched_karras(double sigma_min, double sigma_max, int n, double *out);
/* diffusers _sigma_to_t with log_sigmas = np.log(float32 sigmas) (float32). */
double sched_sigma_to_t(double sigma, const float *log_sigmas, int n);
/* leading / trailing / linspace integer timesteps (DDIM, LCM-free classes).
 * Fills out[0..n-1] descending. */
sdc_status sched_spacing_int(const sched_config *cfg, int n, int64_t *out);

int sched_is_eps(const sched_config *c);
int sched_is_v(const sched_config *c);
int sched_is_sample(const sched_config *c);

/* allocation of history buffers of `n` floats each (frees old ones) */
sdc_status sched_state_alloc(sdc_scheduler *s, int64_t n);

/* ---- family entry points ---- */
sdc_status ddim_set_timesteps(sdc_scheduler *s, int n);
sdc_status ddim_step(sdc_scheduler *s, int i, const float *mo, float *x, int batch, int64_t per, const sched_gens *gens,
                     float eta, float *x0, float *noise_out);
sdc_status pndm_set_timesteps(sdc_scheduler *s, int n);
sdc_status pndm_step(sdc_scheduler *s, int i, const float *mo, float *x, int64_t n_total, float *x0);
sdc_status euler_set_timesteps(sdc_scheduler *s, int n);
sdc_status euler_step(sdc_scheduler *s, int i, const float *mo, float *x, int batch, int64_t per, const sched_gens *gens,
                      float *x0, float *noise_out);
sdc_status euler_a_step(sdc_scheduler *s, int i, const float *mo, float *x, int batch, int64_t per, const sched_gens *gens,
                        float *x0, float *noise_out);
sdc_status dpm_set_timesteps(sdc_scheduler *s, int n);
sdc_status dpm_step(sdc_scheduler *s, int i, const float *mo, float *x, int64_t n_total, float *x0);
sdc_status lcm_set_timesteps(sdc_scheduler *s, int n); /* LCM and TCD */
sdc_status lcm_step(sdc_scheduler *s, int i, const float *mo, float *x, int batch, int64_t per, const sched_gens *gens,
                    float *x0, float *noise_out);
sdc_status tcd_step(sdc_scheduler *s, int i, const float *mo, float *x, int batch, int64_t per, const sched_gens *gens,
                    float eta, float *x0, float *noise_out);

#endif
