/* q8.c - quantising float matrices to the int8 block format of q8.h, and
 * back (tests, and backends that widen instead of computing in int8). */
#include "backend/q8.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* IEEE half <-> float32, round to nearest even (no dependency on io/) */
static float half_to_f32(uint16_t h) {
    uint32_t s = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff, x;
    if (e == 0x1f) x = s | 0x7f800000u | m << 13;
    else if (e) x = s | (e + 112) << 23 | m << 13;
    else if (!m) x = s;
    else { /* subnormal */ e = 113;
        while (!(m & 0x400)) m <<= 1, e--;
        x = s | e << 23 | (m & 0x3ff) << 13;
    }
    float f;
    memcpy(&f, &x, 4);
    return f;
}

/* f is finite and >= 0 here (a scale) */
static uint16_t f32_to_half(float f) {
    if (f >= 65504.0f) return 0x7bff; /* the largest half: a block of huge weights saturates, never inf */
    uint32_t x;
    memcpy(&x, &f, 4);
    int32_t e = (int32_t)(x >> 23) - 127 + 15;
    uint32_t m = x & 0x7fffff;
    if (e <= 0) { /* subnormal half, or zero */
        if (e < -10) return 0;
        m |= 0x800000;
        uint32_t shift = (uint32_t)(14 - e), h = m >> shift, rem = m & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (h & 1))) h++;
        return (uint16_t)h;
    }
    uint32_t h = (uint32_t)e << 10 | m >> 13, rem = m & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;
    return (uint16_t)h;
}

static float load_as_f32(const void *src, op_dtype st, int64_t i) {
    if (st == OP_F32) return ((const float *)src)[i];
    uint16_t h = ((const uint16_t *)src)[i];
    if (st == OP_F16) return half_to_f32(h);
    uint32_t x = (uint32_t)h << 16;
    float f;
    memcpy(&f, &x, 4);
    return f;
}

int64_t q8_bytes(int64_t rows, int64_t cols) {
    int64_t nb = (cols + Q8_BLOCK - 1) / Q8_BLOCK, panels = (rows + Q8_PANEL - 1) / Q8_PANEL;
    /* rounded up to the alignment: C11's aligned_alloc wants a multiple of it */
    return (64 + panels * nb * Q8_PBLOCK + 63) / 64 * 64;
}

/* the source column of stored column c */
static int64_t src_col(const q8_matrix *m, int64_t c) { return m->ch ? c % m->ch * m->kk + c / m->ch : c; }

/* Rows [16 p, 16 p + 16) into their records: 0, or 1 when a value is not finite */
static int quantize_panel(const void *src, op_dtype st, const q8_matrix *m, int64_t p) {
    int bad = 0;
    for (int64_t b = 0; b < m->nb; b++) {
        uint8_t *rec = m->data + (p * m->nb + b) * Q8_PBLOCK;
        uint16_t d16[Q8_PANEL];
        memset(rec, 128, Q8_PBLOCK); /* q = 0 for padding */
        int n = m->cols - b * Q8_BLOCK < Q8_BLOCK ? (int)(m->cols - b * Q8_BLOCK) : Q8_BLOCK;
        for (int l = 0; l < Q8_PANEL; l++) {
            int64_t r = p * Q8_PANEL + l;
            d16[l] = 0;
            if (r >= m->rows) continue;
            float v[Q8_BLOCK], amax = 0.0f;
            for (int i = 0; i < n; i++) {
                v[i] = load_as_f32(src, st, r * m->cols + src_col(m, b * Q8_BLOCK + i));
                if (!isfinite(v[i])) bad = 1, v[i] = 0.0f;
                amax = fmaxf(amax, fabsf(v[i]));
            }
            d16[l] = f32_to_half(amax / 127.0f);
            float df = half_to_f32(d16[l]);
            for (int i = 0; i < n && df > 0.0f; i++) {
                float q = rintf(v[i] / df); /* the half scale itself, so w = d * q as stored */
                q = q > 127.0f ? 127.0f : q < -127.0f ? -127.0f : q;
                rec[2 * Q8_PANEL + (i / 4) * 4 * Q8_PANEL + l * 4 + i % 4] = (uint8_t)((int)q + 128);
            }
        }
        memcpy(rec, d16, sizeof d16); /* little-endian halves */
    }
    return bad;
}

static sdc_status quantize(const void *src, op_dtype st, int64_t rows, int64_t cols, int64_t ch, int64_t kk,
                           int threads, q8_matrix **out) {
    *out = NULL;
    if (st != OP_F32 && st != OP_F16 && st != OP_BF16)
        return sdc_fail(SDC_ERR_ARG, "q8: cannot quantise weights of dtype %d", (int)st);
    if (rows < 0 || cols < 0)
        return sdc_fail(SDC_ERR_ARG, "q8: bad matrix shape %lld x %lld", (long long)rows, (long long)cols);
    char *mem = aligned_alloc(64, (size_t)q8_bytes(rows, cols));
    if (!mem)
        return sdc_fail(SDC_ERR_NOMEM, "out of memory quantising a %lld x %lld matrix", (long long)rows,
                        (long long)cols);
    q8_matrix *m = (q8_matrix *)mem;
    *m = (q8_matrix){.rows = rows,
                     .cols = cols,
                     .nb = (cols + Q8_BLOCK - 1) / Q8_BLOCK,
                     .panels = (rows + Q8_PANEL - 1) / Q8_PANEL,
                     .ch = ch,
                     .kk = kk,
                     .data = (uint8_t *)(mem + 64)};
    int bad = 0;
#pragma omp parallel for num_threads(threads > 1 ? threads : 1) schedule(static)                                       \
    reduction(|                                                                                                        \
              : bad) if (rows * cols > 65536)
    for (int64_t p = 0; p < m->panels; p++) bad |= quantize_panel(src, st, m, p);
    if (bad) {
        free(mem);
        return sdc_fail(SDC_ERR_FORMAT, "q8: the weights hold values that are not finite (inf or nan)");
    }
    *out = m;
    return SDC_OK;
}

sdc_status q8_quantize(const void *src, op_dtype st, int64_t rows, int64_t cols, int threads, q8_matrix **out) {
    return quantize(src, st, rows, cols, 0, 0, threads, out);
}

sdc_status q8_quantize_conv(const void *src, op_dtype st, int64_t O, int64_t C, int k, int threads, q8_matrix **out) {
    int64_t kk = (int64_t)k * k;
    if (C > 0 && C % Q8_BLOCK == 0) return quantize(src, st, O, C * kk, C, kk, threads, out);
    return quantize(src, st, O, C * kk, 0, 0, threads, out);
}

int8_t q8_value(const q8_matrix *m, int64_t r, int64_t c) {
    const uint8_t *rec = q8_block(m, r / Q8_PANEL, c / Q8_BLOCK);
    int k = (int)(c % Q8_BLOCK), l = (int)(r % Q8_PANEL);
    return (int8_t)(rec[2 * Q8_PANEL + (k / 4) * 4 * Q8_PANEL + l * 4 + k % 4] - 128);
}

uint16_t q8_scale(const q8_matrix *m, int64_t r, int64_t b) {
    const uint8_t *rec = q8_block(m, r / Q8_PANEL, b);
    uint16_t d;
    memcpy(&d, rec + 2 * (r % Q8_PANEL), 2);
    return d;
}

void q8_dequantize_row(const q8_matrix *m, int64_t r, float *dst) {
    for (int64_t c = 0; c < m->cols; c++)
        dst[src_col(m, c)] = half_to_f32(q8_scale(m, r, c / Q8_BLOCK)) * (float)q8_value(m, r, c);
}
