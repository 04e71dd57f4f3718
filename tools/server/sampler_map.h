/* sampler_map.h - AUTOMATIC1111's sampler and schedule ("scheduler" in its
 * API) names, and the sdc scheduler each one runs. */
#ifndef SDC_TOOLS_SERVER_SAMPLER_MAP_H
#define SDC_TOOLS_SERVER_SAMPLER_MAP_H

typedef struct {
    const char *name;        /* A1111 spelling: "Euler a", "DPM++ 2M" ... */
    const char *aliases[3];  /* A1111's aliases (k-diffusion names), NULL-ended */
    const char *sdc;         /* sdc scheduler: euler_a, dpmpp_2m ... */
    int karras_ok;           /* the sdc scheduler takes use_karras_sigmas */
    const char *option_key, *option_value; /* A1111's "options" entry, or NULL */
} a1111_sampler;

enum { SCHEDULE_AUTOMATIC = 0, SCHEDULE_UNIFORM, SCHEDULE_KARRAS, SCHEDULE_COUNT };

typedef struct {
    const char *name, *label;
    double default_rho; /* -1: none */
} a1111_schedule;

int sampler_count(void);
const a1111_sampler *sampler_at(int i);
/* Name or alias, case-insensitive. Legacy names with the schedule in them
 * ("DPM++ 2M Karras") set *schedule to SCHEDULE_KARRAS, else leave it.
 * NULL when unknown. */
const a1111_sampler *sampler_find(const char *name, int *schedule);

const a1111_schedule *schedule_at(int i);
/* name or label, case-insensitive; -1 when unknown */
int schedule_find(const char *name);

#endif
