/* sampler_map.h - AUTOMATIC1111's sampler names (the library's sampler
 * registry, sdc_sampler_* in sdc.h) and schedule types (the library's
 * table, sdc_schedule_* in sdc.h: "scheduler" in its API). */
#ifndef SDC_TOOLS_SERVER_SAMPLER_MAP_H
#define SDC_TOOLS_SERVER_SAMPLER_MAP_H

#include <stddef.h>

#include "sdc.h"

/* A1111 name or alias, case-insensitive. Legacy names with the schedule in
 * them (A1111 name + " Karras") set *schedule to the Karras schedule, else
 * leave it. NULL when unknown. */
const sdc_sampler_info *sampler_find(const char *name, const sdc_schedule_info **schedule);
/* The sampler A1111's API runs when a request names none. */
const sdc_sampler_info *sampler_default(void);
/* For an A1111 sampler sdc knows it does not run: why (one sentence); else NULL. */
const char *sampler_missing(const char *name);
/* The A1111 names of the samplers that take schedule k: "A, B and C". */
void sampler_takers(const sdc_schedule_info *k, char *out, size_t n);

#endif
