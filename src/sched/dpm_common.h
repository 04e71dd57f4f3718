/* dpm_common.h - what the DPM-Solver family of diffusers shares
 * (DPMSolverMultistep's DPM++ 2M and 2M SDE rows, DPMSolverSinglestep,
 * DEISMultistep, UniPCMultistep): float32 0-dim tensor math as torch runs it
 * (dpm_common.c), the integer-timestep sigma schedule these classes build in
 * set_timesteps, and DPMSolverMultistepScheduler's config, validation,
 * schedule and history, which its two rows share (dpm_multistep.c). */
#ifndef SDC_SCHED_DPM_COMMON_H
#define SDC_SCHED_DPM_COMMON_H

#include "sched/sched_internal.h"

/* ---- float32 scalar math (dpm_common.c) ---- */

/* torch.log / torch.exp of a float32 tensor on the CPU: Sleef's
 * vectorised kernels, lane for lane (not always correctly rounded, so libm
 * differs by an ulp now and then). */
float dpm_logf(float x);
float dpm_expf(float x);
/* torch.expm1 (Sleef_expm1f8_u10, within 1 ulp): the correctly rounded value. */
float dpm_expm1f(float x);
/* _sigma_to_alpha_sigma_t: alpha = 1 / (sigma**2 + 1) ** 0.5, sigma_t = sigma * alpha */
void dpm_alpha_sigma(float sigma, float *alpha, float *sigma_t);
/* lambda = log(alpha) - log(sigma_t) of a sigma (+inf for sigma 0) */
float dpm_lambda(float sigma);

/* ---- the schedule (dpm_common.c) ---- */

/* The last sigma, appended after the n step sigmas. */
typedef enum {
    DPM_LAST_ZERO,      /* 0 */
    DPM_LAST_SIGMA_MIN, /* ((1 - alphas_cumprod[0]) / alphas_cumprod[0]) ** 0.5 */
    DPM_LAST_REPEAT     /* the last step sigma again (UniPC and DEIS after Karras sigmas) */
} dpm_last_sigma;

typedef struct {
    const char *cls;      /* for messages */
    const char *spacing;  /* linspace | leading | trailing */
    double lambda_min_clipped; /* -inf: none; else timesteps whose lambda is below it are left out */
    dpm_last_sigma last_interp;  /* after sigmas interpolated at the spaced timesteps */
    dpm_last_sigma last_formula; /* after Karras (or another formula schedule's) sigmas */
} dpm_schedule_spec;

/* set_timesteps of these classes: integer timesteps by spacing (leading:
 * last_timestep // (n + 1) apart + steps_offset), sigmas np.interp'ed from
 * the training sigmas - or, when the class's use_karras_sigmas or the
 * config's schedule type asks for a formula, that formula's sigmas between
 * the training sigmas' extremes with np.round(sigma_to_t) timesteps - then
 * the last sigma. rescale_betas_zero_snr sets alphas_cumprod[-1] = 2**-24
 * first. Sets ts_int, sigmas, n_sigmas, n_calls, num_inference_steps. */
sdc_status dpm_schedule(sdc_scheduler *s, int n, const dpm_schedule_spec *p);

/* ---- DPMSolverMultistepScheduler (dpm_multistep.c) ---- */

/* its own __init__ arguments */
typedef struct {
    int solver_order;
    char algorithm_type[24];   /* dpmsolver++ (dpmpp_2m) | sde-dpmsolver++ (dpmpp_2m_sde); deis reads as dpmsolver++ */
    char solver_type[16];      /* midpoint | heun (logrho, bh1, bh2 read as midpoint) */
    int lower_order_final;
    int euler_at_final;
    int use_lu_lambdas;
    double lambda_min_clipped; /* -inf by default */
    int has_variance_type;     /* variance_type not null (unsupported) */
} dpm_ms_opts;

dpm_ms_opts dpm_ms_opts_of(const sched_config *c);
int dpm_is_heun(const char *solver_type); /* heun; else midpoint (diffusers maps logrho/bh1/bh2 to it) */

/* the history: the last two data predictions of the batch */
typedef struct {
    int64_t n;               /* floats per buffer (0: none yet) */
    float *model_outputs[3]; /* [0] previous x0, [1] this step's x0, [2] spare */
    int n_model_outputs;
    int lower_order_nums;
} dpm_ms_state;

extern const sched_key dpm_ms_keys[]; /* DPMSolverMultistepScheduler.__init__ */
sdc_status dpm_ms_validate(const sched_config *c, int steps);
sdc_status dpm_ms_set_timesteps(sdc_scheduler *s, int n);
sdc_status dpm_ms_state_create(sdc_scheduler *s);
void dpm_ms_state_free(void *state);
sdc_status dpm_ms_state_reset(sdc_scheduler *s, int64_t n);

/* The part of DPMSolverMultistepScheduler.step both rows share: the data
 * prediction x0 of step i pushed onto the history (and into x0_out), and
 * whether this step runs the first-order update (solver_order 1, warm-up,
 * or lower_order_final). */
int dpm_ms_push_x0(sdc_scheduler *s, int i, const float *mo, const float *x, int64_t n, float *x0_out);

#endif
