/* profile.h - per-kind op timing for benchmarks (op_profile_* in ops.h):
 * PROF_BEGIN/PROF_END bracket an op's body; they cost one branch when
 * profiling is off. */
#ifndef SDC_BACKEND_CPU_PROFILE_H
#define SDC_BACKEND_CPU_PROFILE_H

typedef enum {
    PROF_LINEAR,
    PROF_CONV3,
    PROF_CONV1,
    PROF_CONV_OTHER,
    PROF_ATTENTION,
    PROF_GROUP_NORM,
    PROF_LAYER_NORM,
    PROF_ACTIVATION,
    PROF_ADD_SCALE,
    PROF_LAYOUT,
    PROF_RESIZE,
    PROF_KINDS
} prof_kind;

extern int g_prof_on;
double prof_now(void);
double prof_cpu_now(void);
void prof_add(prof_kind k, double t0, double c0, double flops);

#define PROF_BEGIN()                                        \
    double prof_t0_ = g_prof_on ? prof_now() : 0.0;         \
    double prof_c0_ = g_prof_on ? prof_cpu_now() : 0.0
#define PROF_END(kind, flops)                                         \
    do {                                                              \
        if (g_prof_on) prof_add(kind, prof_t0_, prof_c0_, flops);     \
    } while (0)

#endif
