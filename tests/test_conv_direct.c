/* test_conv_direct.c - convolutions with few output channels (O < 8) take a
 * direct loop instead of the implicit GEMM (backend/cpu/conv_direct.c); it
 * must give the GEMM's results bit for bit, on both vector ISAs, for every
 * kernel size, padding, border and 16-bit weight type. The GEMM's answer for
 * O channels is its first O rows with the weights padded to 8 outputs (which
 * stays on the GEMM: images small enough to keep Winograd out). */
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/gemm.h"
#include "backend/ops.h"
#include "harness.h"

static void fill(float *p, int64_t n, unsigned seed) {
    uint64_t s = seed * 2654435761u + 1;
    for (int64_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        p[i] = (float)((double)(s >> 40) / (double)(1 << 24)) * 2.0f - 1.0f;
    }
}

static uint16_t to_half(float f) { /* round to nearest, finite normal range (the test's values) */
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t s = u >> 16 & 0x8000, e = u >> 23 & 0xff, m = u & 0x7fffff;
    if (e < 103) return (uint16_t)s;
    if (e < 113) return (uint16_t)(s | ((m | 0x800000) >> (126 - e)));
    uint32_t h = s | (e - 112) << 10 | m >> 13;
    if ((m & 0x1fff) > 0x1000 || ((m & 0x1fff) == 0x1000 && (h & 1))) h++;
    return (uint16_t)h;
}

TEST(backend_conv2d_few_outputs_equal_gemm) {
    op_ctx *cx = test_cx();
    /* B, C, H, W, O, k, pad; F(2x2) tiles stay below 256 so O = 8 takes the implicit GEMM */
    static const int cases[][7] = {{1, 64, 5, 100, 3, 3, 1}, {2, 5, 9, 13, 7, 3, 1}, {1, 3, 4, 70, 1, 3, 1},
                                   {2, 8, 6, 10, 4, 1, 0},   {1, 2, 1, 1, 3, 3, 1},   {1, 6, 7, 9, 5, 5, 2},
                                   {1, 4, 6, 33, 2, 3, 0},   {1, 9, 3, 129, 6, 3, 1}, {2, 16, 2, 17, 3, 7, 3}};
    static const char *const isas[] = {"avx2", "avx512"};
    int ran = 0;
    for (int q = 0; q < 2; q++) {
        const gemm_arch *ar = gemm_arch_named(isas[q]);
        if (!ar) continue;
        gemm_arch_force(ar);
        for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++)
            for (int wt = 0; wt < 2; wt++) { /* float32 weights, then IEEE half */
                const int *cs = cases[t];
                int B = cs[0], C = cs[1], H = cs[2], W = cs[3], O = cs[4], k = cs[5], p = cs[6];
                int Ho = H + 2 * p - k + 1, Wo = W + 2 * p - k + 1, kk = k * k;
                int64_t nx = (int64_t)B * C * H * W, per = (int64_t)Ho * Wo;
                float *x = malloc(nx * 4), *w = calloc((size_t)8 * C * kk, 4), *bias = calloc(8, 4);
                float *y = malloc((size_t)B * O * per * 4), *g = malloc((size_t)B * 8 * per * 4);
                uint16_t *wh = malloc((size_t)8 * C * kk * 2);
                fill(x, nx, 11 + (unsigned)t), fill(w, (int64_t)O * C * kk, 12), fill(bias, O, 13);
                if (wt) { /* the same values in both: half weights widen exactly */
                    for (int64_t i = 0; i < (int64_t)8 * C * kk; i++) wh[i] = to_half(w[i]);
                    for (int64_t i = 0; i < (int64_t)8 * C * kk; i++) w[i] = gemm_half_to_float(wh[i]);
                }
                const float *b = t % 2 ? NULL : bias; /* with and without a bias */
                sdc_status s1 = wt ? op_conv2d_t(cx, x, B, C, H, W, wh, OP_F16, b, O, k, 1, p, y)
                                   : op_conv2d(cx, x, B, C, H, W, w, b, O, k, 1, p, y);
                sdc_status s2 = op_conv2d(cx, x, B, C, H, W, w, b, 8, k, 1, p, g);
                int same = !s1 && !s2;
                for (int n = 0; same && n < B; n++)
                    same = !memcmp(y + (int64_t)n * O * per, g + (int64_t)n * 8 * per, (size_t)(O * per) * 4);
                free(x), free(w), free(bias), free(y), free(g), free(wh);
                if (!same) gemm_arch_force(NULL);
                CHECK(!s1 && !s2, "%s", sdc_last_error());
                CHECK(same, "%s, case %zu (%s weights): the direct loop differs from the GEMM", ar->name, t,
                      wt ? "f16" : "f32");
                ran++;
            }
        gemm_arch_force(NULL);
    }
    if (!ran) SKIP("no AVX2 or AVX-512 on this CPU: the direct loop is not used");
}
