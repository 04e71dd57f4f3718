/* scheduler.h - diffusers 0.30.3 noise schedulers, reproduced with the
 * reference's dtype choices (float32 torch scalars, float64 numpy schedules):
 * DDIM, PNDM (PLMS and PRK), Euler, Euler-ancestral, DPM-Solver++ (multistep),
 * LCM and TCD.
 *
 *   sched_config c;  sched_config_from_json(json, NULL, &c);   // or "euler_a", ...
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
#include <stdint.h>

#include "core/status.h"
#include "rng/noise_gen.h"
#include "rng/torch_rng.h"

typedef enum { SCHED_DDIM, SCHED_PNDM, SCHED_EULER, SCHED_EULER_A, SCHED_DPMPP_2M, SCHED_LCM, SCHED_TCD } sched_kind;
#define SCHED_NUM_KINDS 7

#define SCHED_MAX_DEFAULTED 32

typedef struct {
    sched_kind kind;
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
    int skip_prk_steps;         /* PNDM */
    /* Euler */
    char interpolation_type[16]; /* linear | log_linear */
    int use_karras_sigmas;       /* Euler, DPM */
    int has_sigma_min, has_sigma_max;
    double sigma_min, sigma_max;
    char timestep_type[16];      /* discrete | continuous */
    char final_sigmas_type[16];  /* zero | sigma_min (Euler, DPM) */
    /* DPM-Solver */
    int solver_order;
    char algorithm_type[24];     /* dpmsolver++ (others unsupported) */
    char solver_type[16];        /* midpoint | heun */
    int lower_order_final;
    int euler_at_final;
    int use_lu_lambdas;
    double lambda_min_clipped;   /* -inf by default */
    int has_variance_type;       /* variance_type not null (unsupported) */
    /* LCM / TCD */
    int original_inference_steps;
    double timestep_scaling;
    /* which of the target class's keys were absent from the JSON (class defaults);
     * pointers to static strings, in the class's argument order */
    const char *defaulted[SCHED_MAX_DEFAULTED];
    int n_defaulted;
} sched_config;

/* name: "ddim"|"pndm"|"euler"|"euler_a"|"dpmpp_2m"|"lcm"|"tcd" (a diffusers class
 * name such as "EulerDiscreteScheduler" is accepted too), or NULL = the class
 * in the config's "_class_name". Keys present in the JSON carry over; absent
 * (or null) keys take the TARGET class's defaults (from_config). json may be
 * NULL (all class defaults). Unknown class/name -> SDC_ERR_ARG listing the
 * valid names; a present key of the wrong type -> SDC_ERR_FORMAT. */
sdc_status sched_config_from_json(const cJSON *json, const char *name, sched_config *cfg);
/* The class defaults of a kind (as from_config with an empty JSON). */
void sched_config_defaults(sched_kind kind, sched_config *cfg);
/* Parse a scheduler name or diffusers class name. */
sdc_status sched_kind_from_name(const char *name, sched_kind *out);
const char *sched_kind_name(sched_kind k);       /* "ddim", ... */
const char *sched_class_name(sched_kind k);      /* "DDIMScheduler", ... */
/* Whether the diffusers class of kind k takes config key `key` (__init__ argument). */
int sched_class_takes_key(sched_kind k, const char *key);

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

/* Whether step i draws noise from the generators. */
int sched_draws_noise(const sdc_scheduler *s, int i, float eta);
/* Whether step accepts eta (diffusers' DDIM and TCD; the pipeline passes it). */
int sched_accepts_eta(const sdc_scheduler *s);

#endif
