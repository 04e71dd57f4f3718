/* q8.h - the int8 weight format (op_dtype OP_Q8, --weights q8): a matrix
 * W[rows][cols] (a linear layer's [out][in], a convolution kernel
 * [O][C][k][k] as [O][C*k*k]) cut along each row into blocks of Q8_BLOCK =
 * 32 consecutive values, each block stored as 32 signed bytes q and one IEEE
 * half scale d, w = d * q: ggml's q8_0 numbers (symmetric, round to nearest,
 * q in [-127, 127], d = max|w| / 127 rounded to half), kept as two arrays
 * instead of interleaved 34-byte blocks so that every row starts aligned.
 * 1.0625 bytes per weight. A row whose length is not a multiple of 32 ends
 * with zeros (q = 0). One allocation holds the header and both arrays;
 * free() releases it. Pure C, no backend state: weights.c quantises with it,
 * the CPU ops (cpu/gemm_q8.c) read it. */
#ifndef SDC_BACKEND_Q8_H
#define SDC_BACKEND_Q8_H

#include <stdint.h>

#include "backend/ops.h"

#define Q8_BLOCK 32

typedef struct {
    int64_t rows, cols; /* the float matrix it stands for */
    int64_t nb;         /* blocks per row: ceil(cols / Q8_BLOCK) */
    int8_t *q;          /* [rows][nb * Q8_BLOCK], 64-byte aligned, zero past cols */
    uint16_t *d;        /* [rows][nb] IEEE half scales */
} q8_matrix;

/* Quantise src ([rows][cols] of st: OP_F32, OP_F16 or OP_BF16, rows
 * contiguous) on `threads` threads (<= 1: the caller's). */
sdc_status q8_quantize(const void *src, op_dtype st, int64_t rows, int64_t cols, int threads, q8_matrix **out);
/* Row r back to float32 (cols values): d * q, what the int8 GEMM multiplies. */
void q8_dequantize_row(const q8_matrix *m, int64_t r, float *dst);
/* Bytes of the allocation q8_quantize makes for [rows][cols]. */
int64_t q8_bytes(int64_t rows, int64_t cols);

#endif
