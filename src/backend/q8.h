/* q8.h - the int8 weight format (op_dtype OP_Q8, --weights q8): a matrix
 * W[rows][cols] (a linear layer's [out][in], a convolution kernel
 * [O][C][k][k] as [O][C*k*k]) cut along each row into blocks of Q8_BLOCK =
 * 32 consecutive values, each block stored as 32 signed integers q in
 * [-127, 127] and one IEEE half scale d, w = d * q: ggml's q8_0 numbers
 * (symmetric, round to nearest, d = max|w| / 127 rounded to half), 1.0625
 * bytes per weight. The bytes are laid out for the int8 GEMM, which reads
 * them in place: rows in panels of Q8_PANEL = 16 (the kernels' 16 lanes),
 * and per panel and block one Q8_PBLOCK-byte record: the 16 rows' half
 * scales, then the 32 x 16 values as unsigned bytes q + 128 (VPDPBUSD
 * multiplies unsigned by signed bytes), 4 consecutive k of one row per
 * 32-bit word, [k / 4][row][k % 4]. Rows past `rows` and values past `cols`
 * are zero (q = 0, d = 0). A convolution kernel whose channel count is a
 * multiple of 32 keeps its columns in (ky, kx, c) order instead of (c, ky,
 * kx) (`ch` set): each block is then 32 channels at one kernel tap, so the
 * convolution quantises its input once per pixel and channel block
 * (cpu/conv_q8.c). One allocation holds the header and the data;
 * free() releases it. Pure C, no backend state: weights.c quantises with
 * it, the CPU ops (cpu/gemm_q8.c) read it. */
#ifndef SDC_BACKEND_Q8_H
#define SDC_BACKEND_Q8_H

#include <stdint.h>

#include "backend/ops.h"

#define Q8_BLOCK 32
#define Q8_PANEL 16
#define Q8_PBLOCK (2 * Q8_PANEL + Q8_BLOCK * Q8_PANEL) /* 544 bytes: 16 scales, 512 values */

typedef struct {
    int64_t rows, cols; /* the float matrix it stands for */
    int64_t nb;         /* blocks per row: ceil(cols / Q8_BLOCK) */
    int64_t panels;     /* ceil(rows / Q8_PANEL) */
    int64_t ch, kk;     /* ch > 0: a convolution kernel of ch channels and kk = k*k taps, columns stored
                           as [kk][ch]; 0: columns as given */
    uint8_t *data;      /* [panels][nb][Q8_PBLOCK], 64-byte aligned */
} q8_matrix;

/* The record of rows [16 p, 16 p + 16) and block b. */
static inline const uint8_t *q8_block(const q8_matrix *m, int64_t p, int64_t b) {
    return m->data + (p * m->nb + b) * Q8_PBLOCK;
}

/* Quantise src ([rows][cols] of st: OP_F32, OP_F16 or OP_BF16, rows
 * contiguous) on `threads` threads (<= 1: the caller's). */
sdc_status q8_quantize(const void *src, op_dtype st, int64_t rows, int64_t cols, int threads, q8_matrix **out);
/* The same for a convolution kernel [O][C][k][k]: columns in (ky, kx, c)
 * order with ch = C when C is a multiple of 32, else as q8_quantize. */
sdc_status q8_quantize_conv(const void *src, op_dtype st, int64_t O, int64_t C, int k, int threads, q8_matrix **out);
/* q of (r, c), and the half scale of row r's block b (r < panels * 16, c
 * and b inside the padded row), c and b as stored ([kk][ch] for kernels
 * with ch set). */
int8_t q8_value(const q8_matrix *m, int64_t r, int64_t c);
uint16_t q8_scale(const q8_matrix *m, int64_t r, int64_t b);
/* Row r back to float32 (cols values, in the source's column order): d * q, what the int8 GEMM multiplies. */
void q8_dequantize_row(const q8_matrix *m, int64_t r, float *dst);
/* Bytes of the allocation q8_quantize makes for [rows][cols]. */
int64_t q8_bytes(int64_t rows, int64_t cols);

#endif
