/* sched_internal.h - what the sampler files share: the registry row
 * (struct sched_def), the scheduler object, config-key tables and the
 * schedule helpers of schedule_common.c.
 *
 * A sampler is one file that defines `const sched_def sched_NAME = {...}`
 * (its names, its class's __init__ keys with their defaults, its functions
 * and its private state) plus NAME in the SCHED_ROWS list of registry.c. */
#ifndef SDC_SCHED_INTERNAL_H
#define SDC_SCHED_INTERNAL_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

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

/* image b's noise for every image of the batch, in image order */
static inline void sched_randn_batch(const sched_gens *g, int batch, int64_t per, float *out) {
    for (int b = 0; b < batch; b++) sched_randn(g, b, out + (int64_t)b * per, per);
}

/* What every sampler has; the rest is the sampler's own (state). */
struct sdc_scheduler {
    sched_config cfg;
    int num_inference_steps;
    int n_calls;
    int64_t *ts_int;      /* integer timesteps (NULL for float-timestep samplers) */
    float *ts_float;      /* float32 timesteps (Euler, Euler-a) */
    float *sigmas;        /* float32 sigmas, n_calls + 1 (sigma-based samplers) */
    double *sigmas_d;     /* the same as double, for sched_sigmas */
    int n_sigmas;
    float *ac;            /* alphas_cumprod, num_train_timesteps entries */
    float final_ac;       /* final_alpha_cumprod */
    float init_noise_sigma;

    int begin;            /* the first call that runs (img2img: diffusers' begin_index); 0 for text to image */
    int steps_done;       /* the call expected next: begin after creation / reset, then one more per step */
    int64_t hist_n;       /* batch * per_image of the history (samplers with state_reset), 0 = none */
    void *state;          /* the sampler's own (state_create / state_free) */
};

/* ---- config keys ---- */

typedef enum {
    SCHED_K_INT,
    SCHED_K_NUM,
    SCHED_K_BOOL,
    SCHED_K_STR,
    SCHED_K_OPT_NUM,
    SCHED_K_NULLABLE,
    SCHED_K_INT_LIST /* a JSON list of ints: sched_int_list at off (options only) */
} sched_key_type;

/* A K_INT_LIST value (UniPC's disable_corrector). */
#define SCHED_INT_LIST_MAX 16
typedef struct {
    int n;
    int v[SCHED_INT_LIST_MAX];
} sched_int_list;

/* One __init__ argument of a diffusers class and its default. */
typedef struct {
    const char *key;
    sched_key_type type;
    int in_opts;        /* 1: off / has_off are offsets in the sampler's options struct (cfg.opts), 0: in sched_config */
    size_t off;         /* the field (K_NULLABLE: none) */
    size_t has_off;     /* K_OPT_NUM / K_NULLABLE: the int set when the key is given (not null) */
    size_t size;        /* K_STR: buffer size */
    double num;         /* default of K_NUM */
    int i;              /* default of K_INT / K_BOOL */
    const char *str;    /* default of K_STR */
} sched_key;            /* K_OPT_NUM and K_NULLABLE default to None */

/* Keys stored in sched_config; the key is the field's name. */
#define SK_INT(f, d) {.key = #f, .type = SCHED_K_INT, .off = offsetof(sched_config, f), .i = (d)}
#define SK_BOOL(f, d) {.key = #f, .type = SCHED_K_BOOL, .off = offsetof(sched_config, f), .i = (d)}
#define SK_NUM(f, d) {.key = #f, .type = SCHED_K_NUM, .off = offsetof(sched_config, f), .num = (d)}
#define SK_STR(f, d) \
    {.key = #f, .type = SCHED_K_STR, .off = offsetof(sched_config, f), .size = sizeof(((sched_config *)0)->f), .str = (d)}
#define SK_OPT_NUM(f) \
    {.key = #f, .type = SCHED_K_OPT_NUM, .off = offsetof(sched_config, f), .has_off = offsetof(sched_config, has_##f)}
#define SK_NULLABLE(f) {.key = #f, .type = SCHED_K_NULLABLE, .has_off = offsetof(sched_config, has_##f)}
/* Keys of the sampler's own options struct T (cfg.opts). */
#define SO_INT(T, f, d) {.key = #f, .type = SCHED_K_INT, .in_opts = 1, .off = offsetof(T, f), .i = (d)}
#define SO_BOOL(T, f, d) {.key = #f, .type = SCHED_K_BOOL, .in_opts = 1, .off = offsetof(T, f), .i = (d)}
#define SO_NUM(T, f, d) {.key = #f, .type = SCHED_K_NUM, .in_opts = 1, .off = offsetof(T, f), .num = (d)}
#define SO_STR(T, f, d) \
    {.key = #f, .type = SCHED_K_STR, .in_opts = 1, .off = offsetof(T, f), .size = sizeof(((T *)0)->f), .str = (d)}
#define SO_NULLABLE(T, f) {.key = #f, .type = SCHED_K_NULLABLE, .in_opts = 1, .has_off = offsetof(T, has_##f)}
#define SO_INT_LIST(T, f) {.key = #f, .type = SCHED_K_INT_LIST, .in_opts = 1, .off = offsetof(T, f)} /* default [] */
#define SK_END {.key = NULL}

/* A copy of the sampler's options struct out of cfg->opts (memcpy: opts is
 * plain bytes, so no aliasing question). */
#define SCHED_OPTS_GET(T, cfg, dst)                                                    \
    do {                                                                             \
        _Static_assert(sizeof(T) <= SCHED_OPTS_SIZE, #T " does not fit SCHED_OPTS_SIZE"); \
        memcpy((dst), (cfg)->opts, sizeof(T));                                       \
    } while (0)

/* ---- the registry row ---- */

struct sched_def {
    sdc_sampler_info info;       /* names and flags: the public view (sdc_sampler_at); info.schedules
                                    declares the schedule types it takes (SCHED_SCHEDULES_SIGMA when
                                    set_timesteps fills sigmas through a schedule helper that reads
                                    cfg.schedule, else SCHED_SCHEDULES_TIMESTEP) */
    const sched_key *keys;       /* the class's __init__ arguments in order, with its defaults; SK_END ends */
    /* Rows that share a diffusers class (DPMSolverMultistepScheduler: DPM++ 2M
     * and DPM++ 2M SDE) differ in the value of one string key of it: picking
     * the row by its own name sets variant_key to variant_value; a config that
     * names only the class (its "_class_name", or the class as --scheduler)
     * picks the row whose variant_value it holds (absent: the key's default).
     * NULL: the row has its class to itself. */
    const char *variant_key, *variant_value;
    size_t opts_size;            /* sizeof the options struct its SO_ keys fill (0: none) */
    int calls_per_step;          /* model calls one step takes (1; Heun-style samplers 2) */
    /* class-specific config checks after the common ones (NULL: none) */
    sdc_status (*validate)(const sched_config *c, int steps);
    /* set_timesteps: fill ts_int or ts_float, n_calls, and for sigma samplers
     * sigmas / n_sigmas / init_noise_sigma; may change num_inference_steps */
    sdc_status (*set_timesteps)(sdc_scheduler *s, int steps);
    /* scale_model_input for call i, in place (NULL: identity) */
    void (*scale_model_input)(const sdc_scheduler *s, int i, float *x, int64_t n);
    /* whether step i draws noise (NULL: never); step must draw exactly then */
    int (*draws_noise)(const sdc_scheduler *s, int i, float eta);
    /* the step over the whole batch (checks its own eta range); scheduler.c
     * has checked i, the batch, the generators and the history order */
    sdc_status (*step)(sdc_scheduler *s, int i, const float *mo, float *x, int batch, int64_t per,
                       const sched_gens *gens, float eta, float *x0, float *noise_out);
    /* private state: made before set_timesteps, freed with the scheduler (NULL: none) */
    sdc_status (*state_create)(sdc_scheduler *s);
    void (*state_free)(void *state);
    /* samplers with history: start it over for steps of n floats (reallocated
     * when n changes). Called at the first call that runs (s->begin: 0, or
     * img2img's later start); then steps must come in order with the same
     * batch size (NULL: no history, any order). A step tells its first call
     * from its history (or i == s->begin), never from i == 0. */
    sdc_status (*state_reset)(sdc_scheduler *s, int64_t n);
    /* scheduler.add_noise: x0 noised to the noise level of call i (img2img's
     * start latents at s->begin, inpainting's blend at later calls), n floats
     * into out (may alias x0). NULL: sched_add_noise_default. */
    void (*add_noise)(const sdc_scheduler *s, int i, const float *x0, const float *noise, float *out, int64_t n);
};

/* ---- registry.c ---- */

enum { SCHED_LIST_NAMES, SCHED_LIST_CLASSES, SCHED_LIST_A1111, SCHED_LIST_KARRAS };
/* The registry's sdc names / diffusers classes (each once) / A1111 names /
 * sdc names of the samplers that take Karras sigmas, in registry order,
 * joined by sep (last_sep before the last one): "a, b and c". */
void sched_list_names(int which, const char *sep, const char *last_sep, char *out, size_t n);
/* The sdc names of the samplers that take schedule type k, joined the same way. */
void sched_list_takers(sched_schedule k, const char *sep, const char *last_sep, char *out, size_t n);
/* The row a config picks among those of d's class (see variant_key):
 * value NULL means the key's default. d itself when it has no siblings or
 * none holds value. */
const sched_def *sched_variant_row(const sched_def *d, const char *value);

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
/* numpy.log of a float32 array element (np_logf.c: numpy's SIMD loop, not
 * correctly rounded). */
float np_logf(float x);
/* numpy.interp(x, arange(len), fp) for fp float32 values: float64 result. */
double np_interp_index(double x, const float *fp, int len);
/* sqrt((1 - ac) / ac) in float32, elementwise (torch). */
void sched_train_sigmas(const float *ac, int n, float *sig);
/* Karras et al. schedule (diffusers _convert_to_karras), float64. */
void sched_karras(double sigma_min, double sigma_max, int n, double *out);
/* diffusers _sigma_to_t of a float64 sigma with log_sigmas = np.log(float32
 * sigmas) (np_logf), in numpy's dtypes. */
double sched_sigma_to_t(double sigma, const float *log_sigmas, int n);
/* The Karras sigma schedule a sampler with use_karras_sigmas takes: n
 * sigmas from sigma_max down to sigma_min into sig, and each one's
 * (fractional) training timestep into t (diffusers _sigma_to_t against
 * log(train_sigmas), T of them). t may alias nothing else. */
sdc_status sched_karras_schedule(const float *train_sigmas, int T, double sigma_min, double sigma_max, int n,
                                 double *sig, double *t);
/* Which sigmas a sigma-based sampler steps over: SCHED_SCHEDULE_KARRAS
 * when karras (its class's use_karras_sigmas) is set, else the config's
 * schedule type when it is a formula (Karras, Exponential, SGM Uniform,
 * Simple), else SCHED_SCHEDULE_UNIFORM: the class's own spacing. */
sched_schedule sched_sigma_kind(const sched_config *c, int karras);
/* A formula schedule's n sigmas (float64) from sigma_max down to sigma_min
 * into sig and each one's fractional training timestep (sched_sigma_to_t
 * against log(train)) into t; train: the T training sigmas (float32).
 * Karras et al. (rho 7, diffusers _convert_to_karras); exponential
 * (k-diffusion get_sigmas_exponential: log-linear from sigma_max to
 * sigma_min); SGM uniform (A1111/ComfyUI sgm_uniform: n timesteps evenly
 * from t(sigma_max) to t(sigma_min), last excluded, sigma by log-linear
 * interpolation of the training sigmas); simple (ComfyUI simple_scheduler:
 * every T/n-th training sigma from the top; sigma_min/max unused). */
sdc_status sched_formula_sigmas(sched_schedule kind, const float *train, int T, double sigma_min, double sigma_max,
                                int n, double *sig, double *t);
/* leading / trailing / linspace integer timesteps (DDIM, LCM-free classes).
 * Fills out[0..n-1] descending. */
sdc_status sched_spacing_int(const sched_config *cfg, int n, int64_t *out);
/* The discrete sigma schedule of EulerDiscrete / EulerAncestralDiscrete
 * (and the k-diffusion-style classes like them): float32 timesteps by
 * timestep_spacing, sigmas interpolated from the training sigmas (or Karras
 * sigmas when karras - the class's use_karras_sigmas -, or another formula
 * schedule the config's schedule type asks for, between the first and last
 * interpolated sigma, timesteps from sigma_to_t), a final sigma of 0 or,
 * with final_sigma_min, sigma(t=0); init_noise_sigma. Sets ts_float,
 * sigmas, n_sigmas, n_calls. */
sdc_status sched_sigma_schedule(sdc_scheduler *s, int n, int karras, int final_sigma_min);
/* The same with the schedule type given (sched_sigma_kind's answer, or
 * SCHED_SCHEDULE_UNIFORM for the class's own spacing whatever the config
 * says: the base a sampler with its own formula handling starts from). */
sdc_status sched_sigma_schedule_of(sdc_scheduler *s, int n, sched_schedule kind, int final_sigma_min);
/* scale_model_input of the sigma samplers: x / sqrt(sigma_i^2 + 1) in float32. */
void sched_scale_by_sigma(const sdc_scheduler *s, int i, float *x, int64_t n);
/* diffusers' add_noise at call i, the formula chosen by what the sampler is
 * (every class of diffusers 0.30.3 uses one of the three, in float32):
 *   no sigmas (DDIM, PNDM, LCM, TCD: DDPM-style timesteps):
 *       sqrt(ac[t_i]) x0 + sqrt(1 - ac[t_i]) noise
 *   sigmas and a scale_model_input (Euler, Euler a, Heun, DPM2, LMS: the
 *   k-diffusion samplers, whose latents carry sigma-scaled noise):
 *       x0 + noise * sigmas[i]
 *   sigmas and no scale_model_input (DPM-Solver++, UniPC, DEIS: the model
 *   input is the latent itself): alpha_t = 1 / sqrt(sigma^2 + 1),
 *       sigma_t = sigma * alpha_t, alpha_t x0 + sigma_t noise
 * So a sampler gets it for free when its sigmas[i] is the sigma of call i as
 * diffusers' self.sigmas lists it (interleaved for two-call samplers), or its
 * ts_int[i] the timestep of call i. */
void sched_add_noise_default(const sdc_scheduler *s, int i, const float *x0, const float *noise, float *out, int64_t n);

/* pred_original_sample of the sigma samplers at sigma (Heun, KDPM2, LMS ...),
 * float32 tensor math in diffusers' order: epsilon x - sigma * e;
 * v_prediction e * (-sigma / (sigma^2 + 1)^0.5) + x / (sigma^2 + 1); sample e. */
typedef struct {
    int kind; /* 0 epsilon, 1 v_prediction, 2 sample */
    float sigma, c_out, s2p1;
} sched_x0;
static inline sched_x0 sched_x0_at(const sched_config *c, float sigma) {
    const float s2p1 = sigma * sigma + 1.0f;
    const int kind = !strcmp(c->prediction_type, "epsilon") ? 0 : !strcmp(c->prediction_type, "v_prediction") ? 1 : 2;
    return (sched_x0){kind, sigma, -sigma / sqrtf(s2p1), s2p1};
}
static inline float sched_x0_of(const sched_x0 *p, float x, float e) {
    return p->kind == 0 ? x - p->sigma * e : p->kind == 1 ? e * p->c_out + x / p->s2p1 : e;
}

int sched_is_eps(const sched_config *c);
int sched_is_v(const sched_config *c);
int sched_is_sample(const sched_config *c);

/* ---- sleef_f32.c: torch.log / torch.exp of float32 tensors (Sleef u10, lane for lane) ---- */

float sleef_logf_u1(float d);
float sleef_expf(float d);

/* ---- KDPM2DiscreteScheduler and KDPM2AncestralDiscreteScheduler (kdpm2_common.c) ---- */

/* Both take the same __init__ arguments, validate alike, start from the same
 * schedule and keep the same state; each interpolates its own midpoints. */
typedef struct {
    int n;            /* inference steps */
    float *sig;       /* sigmas before interleaving: n + 1, the last 0 */
    float *mid;       /* sigmas_interpol before interleaving, n + 1 */
    float *up, *down; /* the ancestral sampler's sigmas_up / sigmas_down, n + 1 */
    int64_t len;      /* floats of sample (0: none yet) */
    float *sample;    /* self.sample: the first-order call's start sample */
} sched_kdpm2_state;

extern const sched_key sched_kdpm2_keys[];
sdc_status sched_kdpm2_validate(const sched_config *c, int steps);
sdc_status sched_kdpm2_state_create(sdc_scheduler *s);
void sched_kdpm2_state_free(void *state);
sdc_status sched_kdpm2_state_reset(sdc_scheduler *s, int64_t n);
/* The schedule both start from: n timesteps by timestep_spacing into t (Karras:
 * from the Karras sigmas, rounded), n + 1 sigmas into the state's sig (the last
 * 0), init_noise_sigma, and np.log of the training sigmas into log_sigmas
 * (num_train_timesteps floats). */
sdc_status sched_kdpm2_schedule(sdc_scheduler *s, int n, double *t, float *log_sigmas);
/* exp(lerp(log a, log b, 0.5)) as torch computes it on float32 tensors (the midpoints) */
float sched_kdpm2_log_mid(float a, float b);
/* diffusers' _sigma_to_t fed a float32 torch midpoint sigma and the
 * log_sigmas tensor: float32 throughout but the log */
double sched_kdpm2_sigma_to_t(float sigma, const float *log_sigmas, int T);
/* Install the interleaved schedule of 2n - 1 calls: timesteps [t0, tm_a, t1,
 * tm_{a+1}, t2, ...] (tm: the midpoints' timesteps from index a = first_mid)
 * and sigmas [s0, s1, s1, ..., s_n, s_n, s_n] (2n + 2, as diffusers lists them). */
sdc_status sched_kdpm2_install(sdc_scheduler *s, int n, const double *t, const double *tm, int first_mid);

/* ---- LCMScheduler and TCDScheduler (lcm.c): same arguments, same timesteps ---- */

typedef struct {
    int original_inference_steps;
    double timestep_scaling;
} sched_lcm_opts;
extern const sched_key sched_lcm_keys[];
sdc_status sched_lcm_validate(const sched_config *c, int steps);
sdc_status sched_lcm_set_timesteps(sdc_scheduler *s, int n);

#endif
