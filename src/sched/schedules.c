/* schedules.c - A1111's schedule types sdc implements ("Schedule type",
 * its API's "scheduler" field, /sdapi/v1/schedulers): names, labels,
 * aliases and A1111's flags, in A1111's order (modules/sd_schedulers.py).
 * The row index is the sched_schedule value. What each one computes lives
 * in the samplers' schedule helpers (schedule_common.c: sched_sigma_kind,
 * sched_formula_sigmas); which sampler takes which is its registry row's
 * info.schedules, not this table. */
#include <stdio.h>
#include <strings.h>

#include "sched/sched_internal.h"

static const char *const uniform_aliases[] = {"normal", NULL};
static const char *const sgm_aliases[] = {"SGMUniform", NULL};

static const sdc_schedule_info k_schedules[SCHED_SCHEDULE_COUNT] = {
    [SCHED_SCHEDULE_AUTOMATIC] = {"automatic", "Automatic", NULL, -1, 0,
                                  "the scheduler config as it is"},
    [SCHED_SCHEDULE_UNIFORM] = {"uniform", "Uniform", uniform_aliases, -1, 1,
                                "the sampler's own timestep spacing, Karras sigmas off (alias normal)"},
    [SCHED_SCHEDULE_KARRAS] = {"karras", "Karras", NULL, 7.0, 0,
                               "Karras et al., rho 7 (diffusers' use_karras_sigmas)"},
    [SCHED_SCHEDULE_EXPONENTIAL] = {"exponential", "Exponential", NULL, -1, 0,
                                    "sigmas evenly spaced in log sigma"},
    [SCHED_SCHEDULE_SGM_UNIFORM] = {"sgm_uniform", "SGM Uniform", sgm_aliases, -1, 1,
                                    "timesteps evenly spaced from t(sigma_max), the last left out"},
    [SCHED_SCHEDULE_SIMPLE] = {"simple", "Simple", NULL, -1, 1,
                               "every (1000/steps)-th training sigma from the noisiest"},
};

int sdc_schedule_count(void) { return SCHED_SCHEDULE_COUNT; }

const sdc_schedule_info *sdc_schedule_at(int i) {
    return i >= 0 && i < SCHED_SCHEDULE_COUNT ? &k_schedules[i] : NULL;
}

int sched_schedule_find(const char *name) {
    if (!name) return -1;
    for (int i = 0; i < SCHED_SCHEDULE_COUNT; i++) {
        const sdc_schedule_info *k = &k_schedules[i];
        if (!strcasecmp(name, k->name) || !strcasecmp(name, k->label)) return i;
        for (const char *const *a = k->aliases; a && *a; a++)
            if (!strcasecmp(name, *a)) return i;
    }
    return -1;
}

const sdc_schedule_info *sdc_schedule_find(const char *name) { return sdc_schedule_at(sched_schedule_find(name)); }

int sdc_sampler_takes_schedule(const sdc_sampler_info *s, const sdc_schedule_info *k) {
    if (!s || !k || k < k_schedules || k >= k_schedules + SCHED_SCHEDULE_COUNT) return 0;
    return (s->schedules & SCHED_SCHEDULE_BIT(k - k_schedules)) != 0;
}

sdc_status sched_schedule_unknown(const char *name) {
    char valid[256];
    size_t o = 0;
    valid[0] = 0;
    for (int i = 0; i < SCHED_SCHEDULE_COUNT && o < sizeof valid; i++)
        o += (size_t)snprintf(valid + o, sizeof valid - o, "%s%s", i ? ", " : "", k_schedules[i].name);
    return sdc_fail(SDC_ERR_ARG, "unknown schedule type '%.60s' (valid: %s, or their A1111 labels)",
                    name ? name : "(null)", valid);
}
