/* sampler_map.h - AUTOMATIC1111's sampler names (the library's sampler
 * registry, sdc_sampler_* in sdc.h) and its schedules ("scheduler" in its
 * API). */
#ifndef SDC_TOOLS_SERVER_SAMPLER_MAP_H
#define SDC_TOOLS_SERVER_SAMPLER_MAP_H

#include <stddef.h>

#include "sdc.h"

enum { SCHEDULE_AUTOMATIC = 0, SCHEDULE_UNIFORM, SCHEDULE_KARRAS, SCHEDULE_COUNT };

typedef struct {
    const char *name, *label;
    double default_rho; /* -1: none */
} a1111_schedule;

/* A1111 name or alias, case-insensitive. Legacy names with the schedule in
 * them (A1111 name + " Karras") set *schedule to SCHEDULE_KARRAS, else leave
 * it. NULL when unknown. */
const sdc_sampler_info *sampler_find(const char *name, int *schedule);
/* The sampler A1111's API runs when a request names none. */
const sdc_sampler_info *sampler_default(void);
/* The A1111 names of the samplers that take Karras sigmas: "A and B". */
void sampler_karras_names(char *out, size_t n);

const a1111_schedule *schedule_at(int i);
/* name or label, case-insensitive; -1 when unknown */
int schedule_find(const char *name);

#endif
