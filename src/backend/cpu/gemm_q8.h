/* gemm_q8.h - the int8 GEMM behind OP_Q8 weights (internal to
 * src/backend/cpu): C[i][j] = sum_k X[i][k] W[j][k] (+ bias[j]) with W a
 * q8_matrix (backend/q8.h, read in place) and X float activations (a linear
 * layer's tokens, a convolution's im2col rows of output pixels) quantised
 * on the fly, per row and per block of 32 k: sx = max|x| / 127, xq =
 * round(x / sx) in [-127, 127]. Each block's product is an exact integer
 * dot product; the float result sums sw * sx * dot over the blocks in k
 * order (one fused multiply-add per block), so every kernel gives the same
 * bits.
 *
 * A, the activations, packed per MR rows and per block: int32 corr[MR]
 * (-128 times the sum of the row's xq in the block: the weights are stored
 * as q + 128, unsigned, for VPDPBUSD's unsigned x signed products), float
 * sx[MR], then int32 xq[8][MR] (4 consecutive k of row r per word): 40 * MR
 * bytes per block. B, the weights: one panel of 16 rows of the q8_matrix,
 * its records Q8_PBLOCK bytes apart.
 * Kernels (MR x 16 tiles): AVX512-VNNI 16 x 16 (VPDPBUSD with the
 * activation word broadcast from memory; 16 rows so that the activations
 * quantise 16 lanes to a vector), AVX-VNNI 4 x 16 (VEX-encoded, 256-bit, for
 * CPUs without AVX-512), portable C 16 x 16; picked at run time
 * with the float GEMM's choice (SDC_GEMM_ISA=avx2 takes AVX-VNNI where the
 * CPU has it, =generic the portable one). */
#ifndef SDC_BACKEND_CPU_GEMM_Q8_H
#define SDC_BACKEND_CPU_GEMM_Q8_H

#include <stdint.h>

#include "backend/cpu/gemm.h"
#include "backend/q8.h"

#define Q8_MR_MAX 16
#define Q8_A_WORDS(mr) (10 * (mr)) /* int32 words of a packed A block */

/* t[MR][16] (row-major) = the tile's sum over kb blocks of packed a and the panel's records b */
typedef void (*q8_kernel_fn)(int64_t kb, const int32_t *a, const uint8_t *b, float *t);

/* One block of a float panel p[kc][R] (R = MR rows as lanes, kc <= 32; k
 * past kc counts as zero) into a packed A block: the activations' quantiser */
typedef void (*q8_quantize_fn)(const float *p, int kc, int R, int32_t *dst);

typedef struct {
    const char *name;
    int mr;
    q8_kernel_fn kernel;
    q8_quantize_fn quantize; /* q8_quantize_rows, or a vector version with the same bits */
} q8_arch;

/* The kernel for this CPU, following gemm_arch_get()'s vector ISA: AVX-512
 * -> AVX512-VNNI, AVX2 -> AVX-VNNI, where the CPU has them; else portable. */
const q8_arch *q8_arch_get(void);
/* "avx512vnni", "avxvnni", "generic"; NULL when this CPU cannot run it. */
const q8_arch *q8_arch_named(const char *name);

/* Packed A blocks made directly (activations quantised beforehand): rows
 * [i0, i0 + n) (n <= MR; the rest zero) of blocks [pb, pb + kb), kb packed
 * blocks of Q8_A_WORDS(MR) words into dst. */
typedef void (*q8_pack_a_fn)(const void *ctx, int64_t i0, int n, int64_t pb, int64_t kb, int MR, int32_t *dst);

typedef struct {
    const q8_matrix *w;  /* B: N = w->rows output channels, K = w->cols */
    int64_t M;           /* activation rows (linear: tokens; convolution: output pixels of the batch) */
    gemm_pack_fn pack_x; /* float panels of X: rows i (R = the kernel's MR) x k, quantised here */
    q8_pack_a_fn pack_a; /* or the packed blocks themselves (pack_x NULL) */
    const void *x_ctx;   /* either one's context */
    float *C;
    /* (i, j) at C[i * ldc + j] (linear: y[tokens][features]); with
     * channel_major at C[(i / c_cols) * c_batch_stride + j * ldc + i % c_cols]
     * (convolutions: NCHW, c_cols pixels per image) */
    int64_t ldc, c_cols, c_batch_stride;
    int channel_major;
    const float *bias; /* [N] or NULL */
    int threads;
} gemm_q8_desc;

/* Run on d->threads threads (inline when called inside a parallel region). */
sdc_status gemm_q8_run(const gemm_q8_desc *d, const q8_arch *arch);

/* The activations' quantiser in plain C (any R <= Q8_MR_MAX): what every
 * kernel's quantiser computes. */
void q8_quantize_rows(const float *p, int kc, int R, int32_t *dst);

#endif
