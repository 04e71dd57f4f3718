/* gemm_q8.h - the int8 GEMM behind OP_Q8 weights (internal to
 * src/backend/cpu): C[i][j] = sum_k W[i][k] X[j][k] (+ bias[i]) with W a
 * q8_matrix (backend/q8.h) and X float activations that are quantised on
 * the fly, per activation row (an im2col column for convolutions) and per
 * block of 32 k: sx = max|x| / 127, xq = round(x / sx) in [-127, 127].
 * Each block's product is an exact integer dot product; the float result
 * sums sw * sx * dot over the blocks in k order (one fused multiply-add per
 * block), so every kernel gives the same bits.
 *
 * Packed operands (one kb-block range of k):
 *  - A, the weights, per MR rows and per block: int32 corr[MR] (-128 times
 *    the sum of the block's q: the activations are stored offset by +128,
 *    unsigned, for VPDPBUSD's unsigned x signed products), float sw[MR]
 *    (the half scale widened), then int32 q[8][MR] (4 consecutive k of row r
 *    per word): 40 * MR bytes per block.
 *  - B, the activations, per NR columns and per block: float sx[NR], then
 *    uint8 xq + 128 as [8][NR][4]: 36 * NR bytes per block.
 * Kernels: AVX512-VNNI 12 x 16 (VPDPBUSD with the weight word broadcast
 * from memory), AVX-VNNI 4 x 16 (VEX-encoded, 256-bit, for CPUs without
 * AVX-512), portable C 4 x 16; picked at run time with the float GEMM's
 * choice (SDC_GEMM_ISA=avx2 takes AVX-VNNI where the CPU has it, =generic
 * the portable one). */
#ifndef SDC_BACKEND_CPU_GEMM_Q8_H
#define SDC_BACKEND_CPU_GEMM_Q8_H

#include <stdint.h>

#include "backend/cpu/gemm.h"
#include "backend/q8.h"

#define Q8_NR 16                   /* columns of every kernel's tile */
#define Q8_A_WORDS(mr) (10 * (mr)) /* int32 words of a packed A block */
#define Q8_B_BYTES (36 * Q8_NR)    /* bytes of a packed B block */

/* t[MR][NR] (row-major) = the tile's sum over kb blocks of packed a and b */
typedef void (*q8_kernel_fn)(int64_t kb, const int32_t *a, const uint8_t *b, float *t);

typedef struct {
    const char *name;
    int mr;
    q8_kernel_fn kernel;
} q8_arch;

/* The kernel for this CPU, following gemm_arch_get()'s vector ISA: AVX-512
 * -> AVX512-VNNI, AVX2 -> AVX-VNNI, where the CPU has them; else portable. */
const q8_arch *q8_arch_get(void);
/* "avx512vnni", "avxvnni", "generic"; NULL when this CPU cannot run it. */
const q8_arch *q8_arch_named(const char *name);

typedef struct {
    const q8_matrix *w;  /* A: M = w->rows, K = w->cols */
    int64_t N;           /* activation rows (linear: tokens; convolution: pixels of the batch) */
    gemm_pack_fn pack_x; /* float panels of X: index j (R = Q8_NR) x k */
    const void *x_ctx;
    float *C; /* (i, j) at c_at() as in gemm_desc (ldc, c_cols, c_batch_stride) */
    int64_t ldc, c_cols, c_batch_stride;
    int transposed;    /* (i, j) at C[j * ldc + i] instead: linear layers, y[tokens][features] */
    const float *bias; /* [M] or NULL */
    int threads;
} gemm_q8_desc;

/* Run on d->threads threads (inline when called inside a parallel region). */
sdc_status gemm_q8_run(const gemm_q8_desc *d, const q8_arch *arch);

/* Quantise a float panel p[kc][Q8_NR] (kc <= 32; rows past kc count as
 * zeros) into one packed B block. Shared by every kernel. */
void q8_quantize_panel(const float *p, int kc, uint8_t *dst);

#endif
