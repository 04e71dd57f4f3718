/* sampler_map.c - the A1111 samplers sdc runs (the library's registry, with
 * A1111's own names and aliases from modules/sd_samplers_*.py), and the
 * schedules it understands. "Automatic" leaves the model's
 * scheduler_config.json as it is. */
#include "sampler_map.h"

#include <stdio.h>
#include <strings.h>

static const a1111_schedule k_schedules[SCHEDULE_COUNT] = {
    [SCHEDULE_AUTOMATIC] = {"automatic", "Automatic", -1},
    [SCHEDULE_UNIFORM] = {"uniform", "Uniform", -1},
    [SCHEDULE_KARRAS] = {"karras", "Karras", 7.0},
};

const sdc_sampler_info *sampler_find(const char *name, int *schedule) {
    int karras;
    const sdc_sampler_info *s = sdc_sampler_find_a1111(name, &karras);
    if (s && karras) *schedule = SCHEDULE_KARRAS;
    return s;
}

const sdc_sampler_info *sampler_default(void) {
    for (int i = 0; i < sdc_sampler_count(); i++)
        if (sdc_sampler_at(i)->a1111_default) return sdc_sampler_at(i);
    return sdc_sampler_at(0);
}

void sampler_karras_names(char *out, size_t n) {
    int total = 0, k = 0;
    for (int i = 0; i < sdc_sampler_count(); i++) total += sdc_sampler_at(i)->karras_ok;
    size_t o = 0;
    out[0] = 0;
    for (int i = 0; i < sdc_sampler_count() && o < n; i++) {
        const sdc_sampler_info *s = sdc_sampler_at(i);
        if (!s->karras_ok) continue;
        o += (size_t)snprintf(out + o, n - o, "%s%s", !k ? "" : k == total - 1 ? " and " : ", ", s->a1111_name);
        k++;
    }
}

const a1111_schedule *schedule_at(int i) { return &k_schedules[i]; }

int schedule_find(const char *name) {
    for (int i = 0; i < SCHEDULE_COUNT; i++)
        if (!strcasecmp(k_schedules[i].name, name) || !strcasecmp(k_schedules[i].label, name)) return i;
    return -1;
}
