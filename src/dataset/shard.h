/* shard.h - which slice of a data set this process makes: --shard I/N, or a
 * cluster's job-array variables (Slurm: SLURM_ARRAY_TASK_ID / _COUNT / _MIN /
 * _STEP; Kubernetes Indexed Jobs: JOB_COMPLETION_INDEX with --shards N), and
 * the contiguous range of work units slice I of N owns. */
#ifndef SDC_DATASET_SHARD_H
#define SDC_DATASET_SHARD_H

#include <stdint.h>

#include "core/status.h"
#include "sdc.h"

#define SHARD_MAX 1000000

/* "I/N" with 0 <= I < N <= SHARD_MAX. */
sdc_status shard_parse(const char *spec, int *i, int *n);

/* The environment as seen by the caller (NULL = unset). */
typedef sdc_shard_env shard_env;

/* sdc_shard_select (sdc.h). */
sdc_status shard_select(const char *spec, int shards, const shard_env *env, int *i, int *n, const char **source);

/* Units [*u0, *u1) of nunits for slice i of n: contiguous, sizes differ by at most one. */
void shard_range(int64_t nunits, int i, int n, int64_t *u0, int64_t *u1);

#endif
