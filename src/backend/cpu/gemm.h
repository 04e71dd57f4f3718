/* gemm.h - the CPU backend's own single-precision GEMM (internal to
 * src/backend/cpu). C[M,N] = A[M,K] . B[K,N] (+ bias) (+ C), float32
 * products accumulated in float32 registers.
 *
 * Operands are never read in place: a packer copies a block of A (rows) or
 * B (columns) into "slivers" of R indices x kc (for each k, R consecutive
 * floats, zero-padded), which is where layouts are absorbed (transposes,
 * strided matrices, f16 weights, implicit im2col). The driver blocks for the
 * caches, splits the output between threads (one OpenMP team, no BLAS
 * threads) and calls an MR x NR register-tile micro-kernel picked once at run
 * time from the CPU's features (AVX-512, AVX2+FMA, or portable C). */
#ifndef SDC_BACKEND_CPU_GEMM_H
#define SDC_BACKEND_CPU_GEMM_H

#include <stdint.h>

#include "backend/backend.h"
#include "core/status.h"

/* Write slivers for outer indices [x0, x0+n) and k in [k0, k0+kc) into dst:
 * sliver s (indices x0+s*R ...) occupies dst[s*R*kc ...], element (x, k) at
 * [(k-k0)*R + (x - x0 - s*R)]; indices past n are zero. */
typedef void (*gemm_pack_fn)(const void *ctx, int64_t x0, int64_t n, int64_t k0, int64_t kc, int R, float *dst);

/* Micro-kernel: tile c[MR][NR] (row stride ldc) from packed a (kc x MR) and
 * b (kc x NR). Starts from c when load_c, else from rb[i] + cb[j] (either
 * may be NULL = 0). */
typedef void (*gemm_kernel_fn)(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int load_c,
                               const float *rb, const float *cb);

/* The same reading A in place: element (i, k) at a[i * lda + k]. */
typedef void (*gemm_kernel_direct_fn)(int64_t kc, const float *a, int64_t lda, const float *b, float *c,
                                      int64_t ldc, int load_c, const float *rb, const float *cb);

typedef struct {
    const char *name;
    int mr, nr;           /* register tile */
    int kc, mc, nc;       /* cache blocks: k depth, rows of A per block, columns of B per block */
    gemm_kernel_fn kernel;
    gemm_kernel_direct_fn kernel_direct; /* NULL: always pack A */
    int vec;                             /* vector ISA of the other ops: 2 AVX-512, 1 AVX2+FMA, 0 portable C */
} gemm_arch;

/* The vector ISA the elementwise/norm/softmax code uses (follows the GEMM choice). */
#define CPU_VEC() (gemm_arch_get()->vec)

/* The kernel set for this CPU (SDC_GEMM_ISA=avx512|avx2|generic overrides for
 * testing; an unsupported choice falls back to the best available). */
const gemm_arch *gemm_arch_get(void);
const gemm_arch *gemm_arch_named(const char *name); /* NULL when this CPU cannot run it */
/* A variant of `a` with the same B panels (nr) whose row tile divides M
 * when `a`'s does not (e.g. 8 rows for M = 40); else `a` itself. */
const gemm_arch *gemm_arch_for_rows(const gemm_arch *a, int64_t M);
/* Tests: make every op use `a` (NULL: back to the automatic choice). */
void gemm_arch_force(const gemm_arch *a);

typedef struct {
    int64_t M, N, K;
    gemm_pack_fn pack_a;  /* A rows   (R = mr) */
    const void *a_ctx;
    const float *a_direct; /* or A row-major in place: (i, k) at a_direct[i * lda + k] */
    int64_t lda;
    const float *a_packed; /* or A already packed for all of K: sliver s at a_packed + s * mr * K */
    gemm_pack_fn pack_b;  /* B columns (R = nr) */
    const void *b_ctx;
    const float *b_packed; /* or B already packed for all of K: sliver s at b_packed + s * nr * K */
    float *C;
    int64_t ldc;
    /* Column j of C lives at C + (j / c_cols) * c_batch_stride + j % c_cols
     * when c_cols > 0 (convolutions over a batch: N = B * H*W). */
    int64_t c_cols, c_batch_stride;
    const float *row_bias; /* [M] or NULL */
    const float *col_bias; /* [N] or NULL (with c_cols > 0: indexed j % c_cols) */
    int accumulate;        /* C += A.B instead of C = A.B */
    int f32_only;          /* stay float32 under bf16 (Winograd: transformed operands lose too
                              much when rounded to bf16) */
    /* from the op's context (gemm_desc_for) */
    int threads;           /* gemm_run's team size (<= 1: one thread) */
    int bf16;              /* operands rounded to bfloat16 (op_set_compute(OP_BF16)) */
} gemm_desc;

/* The context's part of a descriptor: its thread count and compute precision. */
#define GEMM_CTX(cx) .threads = (cx)->threads, .bf16 = (cx)->compute == OP_BF16


/* Element (i, j) of C, where j may run across batches of c_cols columns. */
static inline float *c_at(const gemm_desc *d, int64_t i, int64_t j) {
    if (d->c_cols > 0) return d->C + (j / d->c_cols) * d->c_batch_stride + i * d->ldc + j % d->c_cols;
    return d->C + i * d->ldc + j;
}

static inline const float *col_bias_at(const gemm_desc *d, int64_t j) {
    if (!d->col_bias) return NULL;
    return d->col_bias + (d->c_cols > 0 ? j % d->c_cols : j);
}

/* A tile cut by the edge of C or by a batch boundary goes through a dense
 * MR x NR buffer t: fill it with C (load_c) or the biases, run the kernel on
 * it, then store back the mr x nr part that exists. */
static inline void edge_tile_fill(const gemm_desc *d, float *t, int MR, int NR, int64_t i, int64_t j, int64_t mr,
                                  int64_t nr, int load_c) {
    for (int r = 0; r < MR; r++)
        for (int q = 0; q < NR; q++) {
            float v = 0.0f;
            if (r < mr && q < nr) {
                if (load_c) v = *c_at(d, i + r, j + q);
                else {
                    if (d->row_bias) v += d->row_bias[i + r];
                    if (d->col_bias) v += *col_bias_at(d, j + q);
                }
            }
            t[r * NR + q] = v;
        }
}

static inline void edge_tile_store(const gemm_desc *d, const float *t, int NR, int64_t i, int64_t j, int64_t mr,
                                   int64_t nr) {
    for (int r = 0; r < mr; r++)
        for (int q = 0; q < nr; q++) *c_at(d, i + r, j + q) = t[r * NR + q];
}

/* Run on d->threads threads (or inline, single-threaded, when called from
 * inside a parallel region). Fails only when scratch cannot be allocated. */
sdc_status gemm_run(const gemm_desc *d, const gemm_arch *arch);
/* The same on one thread, on the sub-block rows [m0,m1) x columns [n0,n1). */
sdc_status gemm_serial(const gemm_desc *d, const gemm_arch *arch, int64_t m0, int64_t m1, int64_t n0, int64_t n1);

/* Packers for plain strided float32 matrices: element (x, k) at
 * p[x * sx + k * sk]. */
typedef struct {
    const float *p;
    int64_t sx, sk;
} gemm_strided;
void gemm_pack_strided(const void *ctx, int64_t x0, int64_t n, int64_t k0, int64_t kc, int R, float *dst);

/* The same for 16-bit floats (IEEE half, or bfloat16 when bf16), widened. */
typedef struct {
    const uint16_t *p;
    int64_t sx, sk;
    int bf16;
} gemm_strided16;
void gemm_pack_strided16(const void *ctx, int64_t x0, int64_t n, int64_t k0, int64_t kc, int R, float *dst);
float gemm_half_to_float(uint16_t h);

/* The bfloat16 path (gemm_bf16.c), taken by gemm_serial for a descriptor
 * with bf16 set (and not f32_only) when `ar` is the AVX-512 tile. */
int gemm_bf16_available(void);
int gemm_use_bf16(const gemm_desc *d, const gemm_arch *ar);
sdc_status gemm_serial_bf16(const gemm_desc *d, const gemm_arch *ar, int64_t m0, int64_t m1, int64_t n0, int64_t n1);

/* Per-thread scratch that lives as long as the thread (grown on demand);
 * slots: 0-1 GEMM panels, 2-3 attention, 4-6 Winograd, 7-8 bf16 panels. */
float *cpu_scratch(int slot, int64_t nfloats);

#endif
