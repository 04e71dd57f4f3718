/* sched_config.c - scheduler configs with diffusers' from_config semantics:
 * the target class's __init__ arguments are read from the JSON when present
 * (whatever class wrote the file) and take the TARGET class's defaults when
 * absent. Keys the target class does not take are ignored. */
#include <ctype.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "io/json.h"
#include "sched/scheduler.h"

typedef enum { K_INT, K_NUM, K_BOOL, K_STR, K_OPT_NUM, K_NULLABLE } key_type;

typedef struct {
    const char *key;
    key_type type;
    size_t off;      /* field offset in sched_config */
    size_t has_off;  /* K_OPT_NUM / K_NULLABLE: offset of the has_ flag */
    size_t size;     /* K_STR: buffer size */
} key_desc;

#define F(field) offsetof(sched_config, field)
#define KI(name, field) {name, K_INT, F(field), 0, 0}
#define KN(name, field) {name, K_NUM, F(field), 0, 0}
#define KB(name, field) {name, K_BOOL, F(field), 0, 0}
#define KS(name, field) {name, K_STR, F(field), 0, sizeof(((sched_config *)0)->field)}
#define KO(name, field, has) {name, K_OPT_NUM, F(field), F(has), 0}
#define KNL(name, has) {name, K_NULLABLE, 0, F(has), 0}
#define KEND {NULL, K_INT, 0, 0, 0}

/* The __init__ arguments of each diffusers 0.30.3 class, in order. */
static const key_desc keys_ddim[] = {
    KI("num_train_timesteps", num_train_timesteps), KN("beta_start", beta_start), KN("beta_end", beta_end),
    KS("beta_schedule", beta_schedule), KNL("trained_betas", has_trained_betas), KB("clip_sample", clip_sample),
    KB("set_alpha_to_one", set_alpha_to_one), KI("steps_offset", steps_offset), KS("prediction_type", prediction_type),
    KB("thresholding", thresholding), KN("dynamic_thresholding_ratio", dynamic_thresholding_ratio),
    KN("clip_sample_range", clip_sample_range), KN("sample_max_value", sample_max_value),
    KS("timestep_spacing", timestep_spacing), KB("rescale_betas_zero_snr", rescale_betas_zero_snr), KEND};
static const key_desc keys_pndm[] = {
    KI("num_train_timesteps", num_train_timesteps), KN("beta_start", beta_start), KN("beta_end", beta_end),
    KS("beta_schedule", beta_schedule), KNL("trained_betas", has_trained_betas), KB("skip_prk_steps", skip_prk_steps),
    KB("set_alpha_to_one", set_alpha_to_one), KS("prediction_type", prediction_type),
    KS("timestep_spacing", timestep_spacing), KI("steps_offset", steps_offset), KEND};
static const key_desc keys_euler[] = {
    KI("num_train_timesteps", num_train_timesteps), KN("beta_start", beta_start), KN("beta_end", beta_end),
    KS("beta_schedule", beta_schedule), KNL("trained_betas", has_trained_betas), KS("prediction_type", prediction_type),
    KS("interpolation_type", interpolation_type), KB("use_karras_sigmas", use_karras_sigmas),
    KO("sigma_min", sigma_min, has_sigma_min), KO("sigma_max", sigma_max, has_sigma_max),
    KS("timestep_spacing", timestep_spacing), KS("timestep_type", timestep_type), KI("steps_offset", steps_offset),
    KB("rescale_betas_zero_snr", rescale_betas_zero_snr), KS("final_sigmas_type", final_sigmas_type), KEND};
static const key_desc keys_euler_a[] = {
    KI("num_train_timesteps", num_train_timesteps), KN("beta_start", beta_start), KN("beta_end", beta_end),
    KS("beta_schedule", beta_schedule), KNL("trained_betas", has_trained_betas), KS("prediction_type", prediction_type),
    KS("timestep_spacing", timestep_spacing), KI("steps_offset", steps_offset),
    KB("rescale_betas_zero_snr", rescale_betas_zero_snr), KEND};
static const key_desc keys_dpm[] = {
    KI("num_train_timesteps", num_train_timesteps), KN("beta_start", beta_start), KN("beta_end", beta_end),
    KS("beta_schedule", beta_schedule), KNL("trained_betas", has_trained_betas), KI("solver_order", solver_order),
    KS("prediction_type", prediction_type), KB("thresholding", thresholding),
    KN("dynamic_thresholding_ratio", dynamic_thresholding_ratio), KN("sample_max_value", sample_max_value),
    KS("algorithm_type", algorithm_type), KS("solver_type", solver_type), KB("lower_order_final", lower_order_final),
    KB("euler_at_final", euler_at_final), KB("use_karras_sigmas", use_karras_sigmas),
    KB("use_lu_lambdas", use_lu_lambdas), KS("final_sigmas_type", final_sigmas_type),
    KN("lambda_min_clipped", lambda_min_clipped), KNL("variance_type", has_variance_type),
    KS("timestep_spacing", timestep_spacing), KI("steps_offset", steps_offset),
    KB("rescale_betas_zero_snr", rescale_betas_zero_snr), KEND};
static const key_desc keys_lcm[] = { /* LCMScheduler and TCDScheduler take the same arguments */
    KI("num_train_timesteps", num_train_timesteps), KN("beta_start", beta_start), KN("beta_end", beta_end),
    KS("beta_schedule", beta_schedule), KNL("trained_betas", has_trained_betas),
    KI("original_inference_steps", original_inference_steps), KB("clip_sample", clip_sample),
    KN("clip_sample_range", clip_sample_range), KB("set_alpha_to_one", set_alpha_to_one),
    KI("steps_offset", steps_offset), KS("prediction_type", prediction_type), KB("thresholding", thresholding),
    KN("dynamic_thresholding_ratio", dynamic_thresholding_ratio), KN("sample_max_value", sample_max_value),
    KS("timestep_spacing", timestep_spacing), KN("timestep_scaling", timestep_scaling),
    KB("rescale_betas_zero_snr", rescale_betas_zero_snr), KEND};

static const struct {
    const char *name, *cls;
    const key_desc *keys;
} kinds[SCHED_NUM_KINDS] = {
    [SCHED_DDIM] = {"ddim", "DDIMScheduler", keys_ddim},
    [SCHED_PNDM] = {"pndm", "PNDMScheduler", keys_pndm},
    [SCHED_EULER] = {"euler", "EulerDiscreteScheduler", keys_euler},
    [SCHED_EULER_A] = {"euler_a", "EulerAncestralDiscreteScheduler", keys_euler_a},
    [SCHED_DPMPP_2M] = {"dpmpp_2m", "DPMSolverMultistepScheduler", keys_dpm},
    [SCHED_LCM] = {"lcm", "LCMScheduler", keys_lcm},
    [SCHED_TCD] = {"tcd", "TCDScheduler", keys_lcm},
};

const char *sched_kind_name(sched_kind k) { return (unsigned)k < SCHED_NUM_KINDS ? kinds[k].name : "unknown"; }
const char *sched_class_name(sched_kind k) { return (unsigned)k < SCHED_NUM_KINDS ? kinds[k].cls : "unknown"; }

int sched_class_takes_key(sched_kind k, const char *key) {
    if ((unsigned)k >= SCHED_NUM_KINDS || !key) return 0;
    for (const key_desc *d = kinds[k].keys; d->key; d++)
        if (!strcmp(d->key, key)) return 1;
    return 0;
}

static void set_str(char *dst, size_t n, const char *v) { snprintf(dst, n, "%s", v); }

void sched_config_defaults(sched_kind kind, sched_config *c) {
    memset(c, 0, sizeof *c);
    c->kind = kind;
    c->num_train_timesteps = 1000;
    c->beta_start = 0.0001;
    c->beta_end = 0.02;
    set_str(c->beta_schedule, sizeof c->beta_schedule, "linear");
    set_str(c->prediction_type, sizeof c->prediction_type, "epsilon");
    set_str(c->timestep_spacing, sizeof c->timestep_spacing, "leading");
    c->clip_sample_range = 1.0;
    c->dynamic_thresholding_ratio = 0.995;
    c->sample_max_value = 1.0;
    set_str(c->interpolation_type, sizeof c->interpolation_type, "linear");
    set_str(c->timestep_type, sizeof c->timestep_type, "discrete");
    set_str(c->final_sigmas_type, sizeof c->final_sigmas_type, "zero");
    c->solver_order = 2;
    set_str(c->algorithm_type, sizeof c->algorithm_type, "dpmsolver++");
    set_str(c->solver_type, sizeof c->solver_type, "midpoint");
    c->lower_order_final = 1;
    c->lambda_min_clipped = -INFINITY;
    c->original_inference_steps = 50;
    c->timestep_scaling = 10.0;
    switch (kind) {
    case SCHED_DDIM:
        c->clip_sample = 1;
        c->set_alpha_to_one = 1;
        break;
    case SCHED_PNDM:
        c->skip_prk_steps = 0;
        c->set_alpha_to_one = 0;
        break;
    case SCHED_EULER:
    case SCHED_EULER_A:
    case SCHED_DPMPP_2M:
        set_str(c->timestep_spacing, sizeof c->timestep_spacing, "linspace");
        break;
    case SCHED_LCM:
    case SCHED_TCD:
        c->beta_start = 0.00085;
        c->beta_end = 0.012;
        set_str(c->beta_schedule, sizeof c->beta_schedule, "scaled_linear");
        c->clip_sample = 0;
        c->set_alpha_to_one = 1;
        break;
    }
}

static int name_eq(const char *a, const char *b) {
    /* case-insensitive, '-' == '_' */
    for (; *a && *b; a++, b++) {
        int x = tolower((unsigned char)*a), y = tolower((unsigned char)*b);
        if (x == '-') x = '_';
        if (y == '-') y = '_';
        if (x != y) return 0;
    }
    return *a == *b;
}

sdc_status sched_kind_from_name(const char *name, sched_kind *out) {
    static const struct {
        const char *alias;
        sched_kind k;
    } aliases[] = {{"euler_ancestral", SCHED_EULER_A}, {"dpmpp2m", SCHED_DPMPP_2M}, {"dpm++_2m", SCHED_DPMPP_2M},
                   {"plms", SCHED_PNDM}};
    if (name) {
        for (int k = 0; k < SCHED_NUM_KINDS; k++) {
            if (name_eq(name, kinds[k].name) || !strcmp(name, kinds[k].cls)) {
                *out = (sched_kind)k;
                return SDC_OK;
            }
        }
        for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++) {
            if (name_eq(name, aliases[i].alias)) {
                *out = aliases[i].k;
                return SDC_OK;
            }
        }
    }
    return sdc_fail(SDC_ERR_ARG,
                    "unknown scheduler '%s' (valid: ddim, pndm, euler, euler_a, dpmpp_2m, lcm, tcd, or the diffusers "
                    "classes DDIMScheduler, PNDMScheduler, EulerDiscreteScheduler, EulerAncestralDiscreteScheduler, "
                    "DPMSolverMultistepScheduler, LCMScheduler, TCDScheduler)",
                    name ? name : "(null)");
}

sdc_status sched_config_from_json(const cJSON *json, const char *name, sched_config *cfg) {
    sched_kind kind;
    const char *what = "scheduler config";
    if (json && !cJSON_IsObject(json)) return sdc_fail(SDC_ERR_FORMAT, "%s: not a JSON object", what);
    if (name) {
        SDC_TRY(sched_kind_from_name(name, &kind));
    } else {
        const cJSON *cn = json ? cJSON_GetObjectItemCaseSensitive(json, "_class_name") : NULL;
        if (!cJSON_IsString(cn))
            return sdc_fail(SDC_ERR_ARG, "%s: no \"_class_name\" and no scheduler name given (valid: ddim, pndm, euler, "
                                         "euler_a, dpmpp_2m, lcm, tcd)",
                            what);
        sdc_status st = sched_kind_from_name(cn->valuestring, &kind);
        if (st) return sdc_wrap(st, "%s: _class_name", what);
    }
    sched_config c;
    sched_config_defaults(kind, &c);
    for (const key_desc *d = kinds[kind].keys; d->key; d++) {
        char *base = (char *)&c;
        const cJSON *present = json ? cJSON_GetObjectItemCaseSensitive(json, d->key) : NULL;
        if (!present) {
            if (c.n_defaulted < SCHED_MAX_DEFAULTED) c.defaulted[c.n_defaulted++] = d->key;
            continue;
        }
        switch (d->type) {
        case K_INT: {
            long long v;
            int *f = (int *)(base + d->off);
            SDC_TRY(json_get_int(json, d->key, *f, &v, what));
            if (v < -2147483647 || v > 2147483647) return sdc_fail(SDC_ERR_FORMAT, "%s: '%s' out of range", what, d->key);
            *f = (int)v;
            break;
        }
        case K_NUM: {
            double *f = (double *)(base + d->off);
            SDC_TRY(json_get_num(json, d->key, *f, f, what));
            break;
        }
        case K_BOOL: {
            int *f = (int *)(base + d->off);
            SDC_TRY(json_get_bool(json, d->key, *f, f, what));
            break;
        }
        case K_STR: {
            const char *v;
            char *f = base + d->off;
            SDC_TRY(json_get_str(json, d->key, f, &v, what));
            if (strlen(v) >= d->size)
                return sdc_fail(SDC_ERR_ARG, "%s: invalid %s '%.40s'", what, d->key, v);
            if (v != f) set_str(f, d->size, v);
            break;
        }
        case K_OPT_NUM: {
            double *f = (double *)(base + d->off);
            int *has = (int *)(base + d->has_off);
            *has = json_has(json, d->key);
            SDC_TRY(json_get_num(json, d->key, 0.0, f, what));
            break;
        }
        case K_NULLABLE:
            *(int *)(base + d->has_off) = json_has(json, d->key);
            break;
        }
    }
    *cfg = c;
    return SDC_OK;
}
