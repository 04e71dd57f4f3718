/* scheduler.h - diffusers 0.30.3 noise schedulers, reproduced with the
 * reference's dtype choices (float32 torch scalars, float64 numpy schedules).
 * Each sampler is one file with one registry row (sched_internal.h,
 * registry.c); the rest of the library sees a row as an opaque sched_def.
 *
 *   sched_config c;  sched_config_from_json(json, NULL, &c);   // or a sampler name
 *   c.timestep_spacing = ... (overrides)
 *   sdc_scheduler *s; sched_create(&s, &c, steps);
 *   x *= sched_init_noise_sigma(s);
 *   for (i = 0; i < sched_num_calls(s); i++) {
 *       in = x; sched_scale_model_input(s, i, in, n);
 *       eps = unet(in, sched_timestep(s, i));
 *       sched_step(s, i, eps, x, batch, per_image, gens, eta, NULL, NULL);
 *   }
 *   sched_free(s);
 */
#ifndef SDC_SCHED_SCHEDULER_H
#define SDC_SCHED_SCHEDULER_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "rng/noise_gen.h"
#include "rng/torch_rng.h"
#include "sdc.h"

/* One sampler: a row of the registry (struct in sched_internal.h). */
typedef struct sched_def sched_def;

#define SCHED_MAX_DEFAULTED 32
#define SCHED_OPTS_SIZE 256 /* bytes for a sampler's own config keys */

/* A1111's schedule types sdc implements (the table of schedules.c; index =
 * the row of sdc_schedule_at). AUTOMATIC keeps the scheduler config as it
 * is; UNIFORM is the sampler's own diffusers schedule without Karras sigmas;
 * KARRAS is use_karras_sigmas where the class takes it; KARRAS (elsewhere),
 * EXPONENTIAL, SGM_UNIFORM and SIMPLE replace a sigma-based sampler's sigmas
 * by their formula (sched_formula_sigmas). */
typedef enum {
    SCHED_SCHEDULE_AUTOMATIC = 0,
    SCHED_SCHEDULE_UNIFORM,
    SCHED_SCHEDULE_KARRAS,
    SCHED_SCHEDULE_EXPONENTIAL,
    SCHED_SCHEDULE_SGM_UNIFORM,
    SCHED_SCHEDULE_SIMPLE,
    SCHED_SCHEDULE_COUNT
} sched_schedule;
#define SCHED_SCHEDULE_BIT(k) (1u << (k))
/* what a registry row declares (sdc_sampler_info.schedules): samplers on
 * discrete timesteps (DDIM, PNDM, LCM, TCD) take only these two ... */
#define SCHED_SCHEDULES_TIMESTEP (SCHED_SCHEDULE_BIT(SCHED_SCHEDULE_AUTOMATIC) | SCHED_SCHEDULE_BIT(SCHED_SCHEDULE_UNIFORM))
/* ... samplers that step over a sigma schedule take every one */
#define SCHED_SCHEDULES_SIGMA ((1u << SCHED_SCHEDULE_COUNT) - 1u)

/* A scheduler config: the __init__ arguments of the sampler's diffusers
 * class. The keys more than one class takes are fields here; a key only one
 * sampler reads lives in that sampler's options struct, stored in opts and
 * filled through its row's key table (sched_config_value reads any key). */
typedef struct {
    const sched_def *def;       /* the sampler */
    /* common */
    int num_train_timesteps;
    double beta_start, beta_end;
    char beta_schedule[32];     /* linear | scaled_linear | squaredcos_cap_v2 */
    int has_trained_betas;      /* trained_betas given (not supported) */
    int steps_offset;
    char timestep_spacing[16];  /* linspace | leading | trailing */
    char prediction_type[16];   /* epsilon | v_prediction | sample */
    int rescale_betas_zero_snr;
    /* DDIM / PNDM / LCM / TCD */
    int set_alpha_to_one;
    int clip_sample;
    double clip_sample_range;
    int thresholding;
    double dynamic_thresholding_ratio;
    double sample_max_value;
    /* sigma-based samplers */
    int use_karras_sigmas;       /* Euler, DPM */
    int has_sigma_min, has_sigma_max;
    double sigma_min, sigma_max;
    char final_sigmas_type[16];  /* zero | sigma_min (Euler, DPM) */
    /* the request's schedule type (not a diffusers key; sched_config_set_schedule) */
    sched_schedule schedule;
    /* the sampler's own keys (its options struct; see sched_internal.h) */
    unsigned char opts[SCHED_OPTS_SIZE];
    /* which of the target class's keys were absent from the JSON (class defaults);
     * pointers to static strings, in the class's argument order */
    const char *defaulted[SCHED_MAX_DEFAULTED];
    int n_defaulted;
} sched_config;

/* ---- the registry (registry.c) ---- */

int sched_count(void);
const sched_def *sched_at(int i);                     /* 0 <= i < sched_count() */
const sdc_sampler_info *sched_info(const sched_def *d); /* names and flags */
/* By any name (see sdc_sampler_find). With karras non-NULL, A1111's legacy
 * names with the schedule in them ("<A1111 name> Karras", "<alias>_ka") are
 * found too, setting *karras to 1 (else 0) whether or not the sampler takes
 * Karras sigmas (see sched_check_karras). NULL when unknown (no error set). */
const sched_def *sched_find(const char *name, int *karras);
/* SDC_ERR_ARG: "unknown scheduler 'name' (valid: ...)", every name listed. */
sdc_status sched_unknown(const char *name);
/* SDC_ERR_ARG "<what> applies to <the samplers that take it>, not to <d>"
 * unless d takes Karras sigmas. */
sdc_status sched_check_karras(const sched_def *d, const char *what);
/* The same for any schedule type: SDC_ERR_ARG "<what> applies to <the
 * samplers that take it>, not to <d>" unless d's row declares it. */
sdc_status sched_check_schedule(const sched_def *d, sched_schedule k, const char *what);
/* A schedule type by its name, label or alias (case-insensitive); -1 when
 * unknown (schedules.c). */
int sched_schedule_find(const char *name);
/* SDC_ERR_ARG "unknown schedule type 'name' (valid: ...)". */
sdc_status sched_schedule_unknown(const char *name);
/* The one spelling stored for a sampler name (data sets, prompts files):
 * the sdc name, or for a legacy Karras name the A1111 name + " Karras".
 * Unknown names fail as sched_unknown. */
sdc_status sched_canonical_name(const char *name, char *out, size_t n);

/* ---- configs (sched_config.c) ---- */

/* name: any sampler name (sched_find), or NULL = the class in the config's
 * "_class_name". Keys present in the JSON carry over; absent (or null) keys
 * take the TARGET class's defaults (from_config). json may be NULL (all
 * class defaults). A legacy Karras name ("DPM++ 2M Karras") also sets
 * use_karras_sigmas. Unknown class/name -> SDC_ERR_ARG listing the valid
 * names; a present key of the wrong type -> SDC_ERR_FORMAT. */
sdc_status sched_config_from_json(const cJSON *json, const char *name, sched_config *cfg);
/* Set a config's schedule type (after the sampler checked it takes it, see
 * sched_check_schedule; what names the setting in the error). KARRAS turns
 * use_karras_sigmas on where the class takes that key; the other types but
 * AUTOMATIC turn it off, so the config's own choice does not override them. */
sdc_status sched_config_set_schedule(sched_config *c, sched_schedule k, const char *what);
/* The class defaults of a sampler (as from_config with an empty JSON). */
void sched_config_defaults(const sched_def *d, sched_config *cfg);
/* Whether the sampler's diffusers class takes config key `key` (__init__ argument). */
int sched_takes_key(const sched_def *d, const char *key);
/* The value sdc uses for a key the class takes, as a new JSON value (a
 * nullable key that is set reads true); NULL when the class does not take it. */
cJSON *sched_config_value(const sched_config *c, const char *key);

/* ---- schedulers (scheduler.c) ---- */

typedef struct sdc_scheduler sdc_scheduler;

/* __init__ + set_timesteps(num_inference_steps). Invalid config values or
 * step counts -> SDC_ERR_ARG; valid diffusers options sdc does not implement
 * -> SDC_ERR_UNSUPPORTED. */
sdc_status sched_create(sdc_scheduler **out, const sched_config *cfg, int num_inference_steps);
void sched_free(sdc_scheduler *s);
/* Forget the multistep history (PNDM ets, DPM model outputs): the next step is 0. */
void sched_reset(sdc_scheduler *s);

const sched_config *sched_get_config(const sdc_scheduler *s);
int sched_num_inference_steps(const sdc_scheduler *s);
int sched_num_calls(const sdc_scheduler *s);          /* len(timesteps) (PNDM PLMS: steps+1) */
int sched_calls_per_step(const sdc_scheduler *s);     /* model calls one step takes (1; Heun-style 2) */
double sched_timestep(const sdc_scheduler *s, int i); /* timesteps[i] as passed to the UNet */
int sched_timesteps_are_float(const sdc_scheduler *s); /* Euler / Euler-a: float32 timesteps */
const double *sched_sigmas(const sdc_scheduler *s, int *n); /* NULL when not sigma-based; float32 values */
const float *sched_alphas_cumprod(const sdc_scheduler *s, int *n);
float sched_init_noise_sigma(const sdc_scheduler *s);

/* scale_model_input for call i, in place, over n floats. */
void sched_scale_model_input(sdc_scheduler *s, int i, float *x, int64_t n);

/* scheduler.step for call i over a batch: sample is [batch][per_image] floats,
 * updated in place to prev_sample; model_output likewise. gens[b] is image b's
 * generator, used exactly when diffusers draws noise (per image, in image
 * order), including draws diffusers makes and ignores (EulerDiscrete draws
 * every step). eta: DDIM eta / TCD gamma (ignored by the others). pred_x0 (may
 * be NULL): pred_original_sample (DDIM, Euler, Euler-a), denoised (LCM),
 * pred_noised_sample (TCD), the data prediction x0 (DPM); zeros for PNDM.
 * noise_out (may be NULL): the noise drawn this step, zeros if none.
 * PNDM and DPM keep history: their steps must come in order 0, 1, 2, ...
 * with the same batch size (sched_reset starts over). */
sdc_status sched_step(sdc_scheduler *s, int i, const float *model_output, float *sample, int batch,
                      int64_t per_image, torch_gen *gens, float eta, float *pred_x0, float *noise_out);
/* The same step drawing from noise_gen generators (torch's CPU or CUDA
 * generator, see rng/noise_gen.h); with CPU generators it equals sched_step. */
sdc_status sched_step_gen(sdc_scheduler *s, int i, const float *model_output, float *sample, int batch,
                          int64_t per_image, noise_gen *gens, float eta, float *pred_x0, float *noise_out);

/* ---- img2img (diffusers' get_timesteps / set_begin_index / add_noise) ---- */

/* With N inference steps and strength s in (0, 1] the last
 * init = min(int(N * s), N) steps run: *begin = (N - init) * calls_per_step
 * (scheduler.order: diffusers slices timesteps[t_start * order:]) and
 * *steps_run = init. SDC_ERR_ARG when no step would run. */
sdc_status sched_strength_begin(const sdc_scheduler *s, double strength, int *begin, int *steps_run);
/* The first call that runs (set_begin_index): steps start there, the
 * samplers' histories are started over there. Default 0. */
sdc_status sched_set_begin(sdc_scheduler *s, int begin);
int sched_begin(const sdc_scheduler *s);
/* scheduler.add_noise(x0, noise, timesteps[i]) over n floats into out (may
 * alias x0): x0 at the noise level of call i (0 <= i < sched_num_calls). */
sdc_status sched_add_noise(const sdc_scheduler *s, int i, const float *x0, const float *noise, float *out, int64_t n);

/* Whether step i draws noise from the generators. */
int sched_draws_noise(const sdc_scheduler *s, int i, float eta);
/* Whether step accepts eta (diffusers' DDIM and TCD; the pipeline passes it). */
int sched_accepts_eta(const sdc_scheduler *s);

#endif
