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
    int64_t nb = (cols + Q8_BLOCK - 1) / Q8_BLOCK;
    return 64 + rows * nb * Q8_BLOCK + ((rows * nb * 2 + 63) & ~(int64_t)63);
}

/* one row: 0, or 1 when it holds a value that is not finite */
static int quantize_row(const void *src, op_dtype st, int64_t off, int64_t cols, int64_t nb, int8_t *q, uint16_t *d) {
    int bad = 0;
    for (int64_t b = 0; b < nb; b++) {
        float v[Q8_BLOCK], amax = 0.0f;
        int n = cols - b * Q8_BLOCK < Q8_BLOCK ? (int)(cols - b * Q8_BLOCK) : Q8_BLOCK;
        for (int i = 0; i < n; i++) {
            v[i] = load_as_f32(src, st, off + b * Q8_BLOCK + i);
            if (!isfinite(v[i])) bad = 1, v[i] = 0.0f;
            amax = fmaxf(amax, fabsf(v[i]));
        }
        uint16_t dh = f32_to_half(amax / 127.0f);
        float df = half_to_f32(dh);
        d[b] = dh;
        for (int i = 0; i < Q8_BLOCK; i++) {
            float r = i < n && df > 0.0f ? rintf(v[i] / df) : 0.0f; /* the half scale itself, so w = d * q as stored */
            q[b * Q8_BLOCK + i] = (int8_t)(r > 127.0f ? 127 : r < -127.0f ? -127 : r);
        }
    }
    return bad;
}

sdc_status q8_quantize(const void *src, op_dtype st, int64_t rows, int64_t cols, int threads, q8_matrix **out) {
    *out = NULL;
    if (st != OP_F32 && st != OP_F16 && st != OP_BF16)
        return sdc_fail(SDC_ERR_ARG, "q8: cannot quantise weights of dtype %d", (int)st);
    if (rows < 0 || cols < 0)
        return sdc_fail(SDC_ERR_ARG, "q8: bad matrix shape %lld x %lld", (long long)rows, (long long)cols);
    int64_t nb = (cols + Q8_BLOCK - 1) / Q8_BLOCK, qbytes = rows * nb * Q8_BLOCK;
    char *mem = aligned_alloc(64, (size_t)q8_bytes(rows, cols));
    if (!mem)
        return sdc_fail(SDC_ERR_NOMEM, "out of memory quantising a %lld x %lld matrix", (long long)rows,
                        (long long)cols);
    q8_matrix *m = (q8_matrix *)mem;
    *m = (q8_matrix){
        .rows = rows, .cols = cols, .nb = nb, .q = (int8_t *)(mem + 64), .d = (uint16_t *)(mem + 64 + qbytes)};
    int bad = 0;
#pragma omp parallel for num_threads(threads > 1 ? threads : 1) schedule(static)                                       \
    reduction(|                                                                                                        \
              : bad) if (rows * cols > 65536)
    for (int64_t r = 0; r < rows; r++)
        bad |= quantize_row(src, st, r * cols, cols, nb, m->q + r * nb * Q8_BLOCK, m->d + r * nb);
    if (bad) {
        free(mem);
        return sdc_fail(SDC_ERR_FORMAT, "q8: the weights hold values that are not finite (inf or nan)");
    }
    *out = m;
    return SDC_OK;
}

void q8_dequantize_row(const q8_matrix *m, int64_t r, float *dst) {
    for (int64_t c = 0; c < m->cols; c++)
        dst[c] = half_to_f32(m->d[r * m->nb + c / Q8_BLOCK]) * (float)m->q[r * m->nb * Q8_BLOCK + c];
}
