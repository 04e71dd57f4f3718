/* sampler_map.c - the A1111 samplers sdc runs, with A1111's own names and
 * aliases (modules/sd_samplers_*.py), and the schedules it understands.
 * "Automatic" leaves the model's scheduler_config.json as it is. */
#include "sampler_map.h"

#include <stddef.h>
#include <string.h>
#include <strings.h>

static const a1111_sampler k_samplers[] = {
    {"DPM++ 2M", {"k_dpmpp_2m", NULL}, "dpmpp_2m", 1, NULL, NULL},
    {"Euler a", {"k_euler_a", "k_euler_ancestral", NULL}, "euler_a", 0, "uses_ensd", "true"},
    {"Euler", {"k_euler", NULL}, "euler", 1, NULL, NULL},
    {"LCM", {"k_lcm", NULL}, "lcm", 0, NULL, NULL},
    {"DDIM", {"ddim", NULL}, "ddim", 0, NULL, NULL},
    {"PLMS", {"plms", NULL}, "pndm", 0, NULL, NULL},
    {"TCD", {"tcd", NULL}, "tcd", 0, NULL, NULL},
};

static const a1111_schedule k_schedules[SCHEDULE_COUNT] = {
    [SCHEDULE_AUTOMATIC] = {"automatic", "Automatic", -1},
    [SCHEDULE_UNIFORM] = {"uniform", "Uniform", -1},
    [SCHEDULE_KARRAS] = {"karras", "Karras", 7.0},
};

int sampler_count(void) { return (int)(sizeof k_samplers / sizeof k_samplers[0]); }
const a1111_sampler *sampler_at(int i) { return &k_samplers[i]; }

static const a1111_sampler *find_exact(const char *name) {
    for (int i = 0; i < sampler_count(); i++) {
        const a1111_sampler *s = &k_samplers[i];
        if (!strcasecmp(s->name, name)) return s;
        for (int a = 0; s->aliases[a]; a++)
            if (!strcasecmp(s->aliases[a], name)) return s;
    }
    return NULL;
}

const a1111_sampler *sampler_find(const char *name, int *schedule) {
    const a1111_sampler *s = find_exact(name);
    if (s) return s;
    /* A1111 before 1.9 folded the schedule into the name: "DPM++ 2M Karras", alias "k_dpmpp_2m_ka" */
    char base[64];
    size_t n = strlen(name);
    if (n < sizeof base && n > 7 && !strcasecmp(name + n - 7, " Karras")) {
        memcpy(base, name, n - 7);
        base[n - 7] = 0;
    } else if (n < sizeof base && n > 3 && !strcasecmp(name + n - 3, "_ka")) {
        memcpy(base, name, n - 3);
        base[n - 3] = 0;
    } else {
        return NULL;
    }
    s = find_exact(base);
    if (!s || !s->karras_ok) return NULL;
    *schedule = SCHEDULE_KARRAS;
    return s;
}

const a1111_schedule *schedule_at(int i) { return &k_schedules[i]; }

int schedule_find(const char *name) {
    for (int i = 0; i < SCHEDULE_COUNT; i++)
        if (!strcasecmp(k_schedules[i].name, name) || !strcasecmp(k_schedules[i].label, name)) return i;
    return -1;
}
