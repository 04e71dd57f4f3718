/* profile.c - accumulates op_profile_* counters (see profile.h). */
#include "backend/cpu/profile.h"

#include <time.h>

#include "backend/ops.h"

int g_prof_on;
static double g_sec[PROF_KINDS], g_cpu[PROF_KINDS], g_flop[PROF_KINDS];
static long g_calls[PROF_KINDS];
static const char *const g_names[PROF_KINDS] = {"linear",     "conv3x3",    "conv1x1", "conv_other",
                                                "attention",  "group_norm", "layer_norm", "activation",
                                                "add_scale",  "layout",     "resize"};

double prof_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

double prof_cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void prof_add(prof_kind k, double t0, double c0, double flops) {
    g_sec[k] += prof_now() - t0;
    g_cpu[k] += prof_cpu_now() - c0;
    g_flop[k] += flops;
    g_calls[k]++;
}

void op_profile_enable(int on) { g_prof_on = on; }

void op_profile_reset(void) {
    for (int i = 0; i < PROF_KINDS; i++) g_sec[i] = g_cpu[i] = g_flop[i] = 0, g_calls[i] = 0;
}

double op_profile_cpu_seconds(int i) { return i >= 0 && i < PROF_KINDS ? g_cpu[i] : 0.0; }

int op_profile_get(int i, const char **name, double *seconds, double *flops, long *calls) {
    if (i < 0 || i >= PROF_KINDS) return 0;
    *name = g_names[i];
    *seconds = g_sec[i];
    *flops = g_flop[i];
    *calls = g_calls[i];
    return 1;
}
