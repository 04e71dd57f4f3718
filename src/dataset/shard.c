/* shard.c - slice selection; the union of slices 0..N-1 is every unit once. */
#include "dataset/shard.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int parse_num(const char *s, long lo, long hi, int *out) {
    char *end;
    errno = 0;
    if (!s || !*s) return 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return 0;
    *out = (int)v;
    return 1;
}

sdc_status shard_parse(const char *spec, int *i, int *n) {
    char a[32], *slash;
    int k = 0;
    for (; spec[k] && k < 31; k++) a[k] = spec[k];
    a[k] = 0;
    if (spec[k] || !(slash = strchr(a, '/'))) goto bad;
    *slash = 0;
    if (!parse_num(slash + 1, 1, SHARD_MAX, n) || !parse_num(a, 0, *n - 1, i)) goto bad;
    return SDC_OK;
bad:
    return sdc_fail(SDC_ERR_ARG, "--shard expects I/N with 0 <= I < N <= %d (e.g. 0/4), got '%s'", SHARD_MAX, spec);
}

sdc_status shard_select(const char *spec, int shards, const shard_env *env, int *i, int *n, const char **source) {
    if (spec) {
        *source = "--shard";
        return shard_parse(spec, i, n);
    }
    if (env->slurm_id) {
        int id, count, min = 0, step = 1;
        *source = "Slurm array";
        if (!parse_num(env->slurm_id, 0, 1L << 30, &id) || !parse_num(env->slurm_count, 1, SHARD_MAX, &count) ||
            (env->slurm_min && !parse_num(env->slurm_min, 0, 1L << 30, &min)) ||
            (env->slurm_step && !parse_num(env->slurm_step, 1, 1L << 30, &step)))
            return sdc_fail(SDC_ERR_ARG, "Slurm array variables are incomplete or malformed (SLURM_ARRAY_TASK_ID=%s, "
                            "SLURM_ARRAY_TASK_COUNT=%s); pass --shard I/N instead", env->slurm_id,
                            env->slurm_count ? env->slurm_count : "(unset)");
        if (id < min || (id - min) % step || (id - min) / step >= count)
            return sdc_fail(SDC_ERR_ARG, "Slurm array task %d is not one of %d tasks from %d in steps of %d", id, count,
                            min, step);
        *i = (id - min) / step;
        *n = count;
        return SDC_OK;
    }
    if (env->k8s_index) {
        *source = "JOB_COMPLETION_INDEX";
        if (shards <= 0)
            return sdc_fail(SDC_ERR_ARG, "JOB_COMPLETION_INDEX is set: give --shards N (the Job's completions)");
        if (!parse_num(env->k8s_index, 0, shards - 1, i))
            return sdc_fail(SDC_ERR_ARG, "JOB_COMPLETION_INDEX=%s is not in 0..%d (--shards %d)", env->k8s_index,
                            shards - 1, shards);
        *n = shards;
        return SDC_OK;
    }
    if (shards > 0)
        return sdc_fail(SDC_ERR_ARG, "--shards %d needs JOB_COMPLETION_INDEX (a Kubernetes Indexed Job); "
                        "use --shard I/N elsewhere", shards);
    *source = "single process";
    *i = 0;
    *n = 1;
    return SDC_OK;
}

void shard_range(int64_t nunits, int i, int n, int64_t *u0, int64_t *u1) {
    *u0 = nunits * i / n;
    *u1 = nunits * (i + 1) / n;
}

sdc_status sdc_shard_select(const char *spec, int shards, const sdc_shard_env *env, int *slice, int *nslices,
                            const char **source) {
    return shard_select(spec, shards, env, slice, nslices, source);
}
