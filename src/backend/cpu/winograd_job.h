/* winograd_job.h - what conv_winograd.c's chunk loop hands to a variant's
 * transforms (private to the CPU backend: conv_winograd*.c). */
#ifndef SDC_BACKEND_CPU_WINOGRAD_JOB_H
#define SDC_BACKEND_CPU_WINOGRAD_JOB_H

#include <stdint.h>

#include "backend/backend.h"
#include "backend/cpu/gemm.h"

/* A run of consecutive tiles of one tile row: chunk columns [k0, k0+cnt). */
typedef struct {
    int k0, cnt, ty, tx0;
    int64_t b;
} tile_run;

typedef struct wino_job wino_job;

typedef struct {
    int m, n, nxi; /* output tile m x m, input tile n x n = (m+2)^2 = nxi transformed positions */
    void (*weights)(const wino_job *J, const void *w, op_dtype wt);
    void (*input)(const wino_job *J, const tile_run *runs, int nruns, float *vp, int64_t vstride, float *tmp);
    void (*output)(const wino_job *J, const tile_run *runs, int nruns, int n, const float *m, int64_t mstride,
                   float *tmp);
} wino_variant;

struct wino_job {
    const float *x, *bias;
    float *y;
    const float *res; /* added to the output after the bias (NULL: none), then */
    int relu;         /* max(0, .) as cpu_relu (keeps -0 and NaN) */
    int B, C, H, W, O;
    int th, tw;      /* tiles per image: ceil(H/m) x ceil(W/m) */
    int64_t T;       /* tiles in the batch */
    const float *up; /* [nxi][O rounded up to mr][C] packed A */
    int64_t up_stride;
    const gemm_arch *ar;
    const wino_variant *v;
    int threads; /* the op's context's */
};

/* F(4x4, 3x3)'s transforms with AVX-512, 16 tiles to a vector: usable when
 * every run of tiles starts and ends on a multiple of 16 (tw % 16 == 0) and
 * B panels are 32 tiles wide. Same operations in the same order as the
 * portable ones in conv_winograd.c, so the results are bit-identical. */
int wino4_avx512_usable(const wino_job *J);
/* Whether GEMM kernel set ar can take them at all (its AVX-512 sets, which
 * gemm_arch_named hands out only where cpuid has avx512f). */
int wino4_avx512_arch(const gemm_arch *ar);
void wino4_avx512_input(const wino_job *J, const tile_run *runs, int nruns, float *vp, int64_t vstride);
void wino4_avx512_output(const wino_job *J, const tile_run *runs, int nruns, int n, const float *m,
                         int64_t mstride);

#endif
