/* test_q8.c - int8 weights (OP_Q8): the block format against its definition,
 * and the int8 linear and convolution ops, for every int8 kernel this CPU
 * can run, against double references within the error the activations'
 * quantisation allows (half a step of each block's scale), and bit for bit
 * against the portable kernel. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/gemm.h"
#include "backend/cpu/gemm_q8.h"
#include "backend/ops.h"
#include "backend/q8.h"
#include "harness.h"
#include "io/safetensors.h"

/* the float GEMM ISA whose choice selects each int8 kernel (q8_arch_get) */
static const char *const ISAS[] = {"generic", "avx2", "avx512"};

static void fill(float *p, int64_t n, unsigned seed) {
    uint64_t s = seed * 2654435761u + 1;
    for (int64_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        p[i] = (float)((double)(s >> 40) / (double)(1ull << 24) * 2.0 - 1.0);
    }
}

TEST(q8_format_roundtrip) {
    int rows = 5, cols = 70; /* 3 blocks, the last one 6 values long */
    float *w = malloc(sizeof(float) * rows * cols), *back = malloc(sizeof(float) * cols);
    uint16_t *h = malloc(2 * (size_t)rows * cols), *bf = malloc(2 * (size_t)rows * cols);
    fill(w, rows * cols, 7);
    for (int i = 0; i < rows * cols; i++) w[i] *= i % 11 == 0 ? 40.0f : 0.02f; /* blocks with outliers */
    for (int c = 0; c < 32; c++) w[2 * cols + c] = 0.0f;                       /* an all-zero block */
    for (int i = 0; i < rows * cols; i++) {
        h[i] = sdc_f32_to_f16(w[i]);
        uint32_t u;
        memcpy(&u, &w[i], 4);
        bf[i] = (uint16_t)(u >> 16);
    }
    const void *src[3] = {w, h, bf};
    for (int t = 0; t < 3; t++) {
        q8_matrix *m;
        CHECK_OK(q8_quantize(src[t], (op_dtype)t, rows, cols, 2, &m));
        CHECK(m->rows == rows && m->cols == cols && m->nb == 3 && m->panels == 1 && ((uintptr_t)m->data & 63) == 0,
              "header");
        for (int r = 0; r < rows; r++) {
            q8_dequantize_row(m, r, back);
            for (int c = 0; c < cols; c++) {
                float x = t == 0   ? w[r * cols + c]
                          : t == 1 ? sdc_f16_to_f32(h[r * cols + c])
                                   : sdc_bf16_to_f32(bf[r * cols + c]);
                float d = sdc_f16_to_f32(q8_scale(m, r, c / 32));
                CHECK(q8_value(m, r, c) != -128, "q out of range");
                CHECK(fabsf(back[c] - x) <= 0.5f * d * 1.0001f + 1e-30f, "dtype %d (%d,%d): %g back as %g (scale %g)",
                      t, r, c, x, back[c], d);
            }
            for (int c = cols; c < 96; c++) CHECK(q8_value(m, r, c) == 0, "padding not zero");
        }
        for (int r = rows; r < 16; r++) /* the panel's rows past the matrix */
            for (int c = 0; c < 96; c++) CHECK(q8_value(m, r, c) == 0 && q8_scale(m, r, c / 32) == 0, "padding row");
        CHECK(q8_scale(m, 2, 0) == 0, "zero block has a scale");
        free(m);
    }
    w[3] = NAN;
    q8_matrix *m = NULL;
    CHECK(q8_quantize(w, OP_F32, rows, cols, 1, &m) == SDC_ERR_FORMAT && !m, "NaN weight accepted");
    free(w), free(back), free(h), free(bf);
}

/* sum_k w_k x_k over one activation vector, and the bound on the int8 op's
 * error: half a quantisation step of x per block, times the block's |w|,
 * plus float rounding */
static void ref_dot(const float *w, const float *x, int64_t K, double *ref, double *bound) {
    double s = 0, b = 0, mag = 0;
    for (int64_t k0 = 0; k0 < K; k0 += 32) {
        double amax = 0, wsum = 0;
        for (int64_t k = k0; k < k0 + 32 && k < K; k++) {
            amax = fmax(amax, fabs(x[k]));
            wsum += fabs(w[k]);
            s += (double)w[k] * x[k];
            mag += fabs((double)w[k] * x[k]);
        }
        b += amax / 127.0 * 0.5 * wsum;
    }
    *ref = s;
    *bound = b * 1.001 + 1e-6 * mag + 1e-30;
}

TEST(q8_linear_all_kernels) {
    static const int Ms[] = {1, 7, 77, 300}, Ns[] = {1, 13, 40, 70}, Ks[] = {1, 31, 32, 100, 1100};
    op_ctx *cx = test_cx();
    int ran = 0;
    for (int mi = 0; mi < 4; mi++)
        for (int ni = 0; ni < 4; ni++)
            for (int ki = 0; ki < 5; ki++) {
                int M = Ms[mi], N = Ns[ni], K = Ks[ki];
                float *x = malloc(sizeof(float) * M * K), *w = malloc(sizeof(float) * N * K),
                      *b = malloc(sizeof(float) * N);
                float *wd = malloc(sizeof(float) * N * K), *y = malloc(sizeof(float) * M * N),
                      *y0 = malloc(sizeof(float) * M * N);
                fill(x, (int64_t)M * K, 1 + mi), fill(w, (int64_t)N * K, 2 + ni), fill(b, N, 3);
                for (int i = 0; i < M * K; i += 17) x[i] *= 30.0f; /* outliers in some blocks */
                q8_matrix *q;
                CHECK_OK(q8_quantize(w, OP_F32, N, K, 1, &q));
                for (int n = 0; n < N; n++) q8_dequantize_row(q, n, wd + (int64_t)n * K);
                int first = 1;
                for (int a = 0; a < 3; a++) {
                    const gemm_arch *ga = gemm_arch_named(ISAS[a]);
                    if (!ga) continue;
                    gemm_arch_force(ga);
                    sdc_status st = op_linear_t(cx, x, M, K, q, OP_Q8, b, N, y);
                    gemm_arch_force(NULL);
                    CHECK_OK(st);
                    for (int m = 0; m < M; m++)
                        for (int n = 0; n < N; n++) {
                            double r, bd;
                            ref_dot(wd + (int64_t)n * K, x + (int64_t)m * K, K, &r, &bd);
                            r += b[n];
                            CHECK(fabs(y[m * N + n] - r) <= bd, "%s M=%d N=%d K=%d (%d,%d): %g, reference %g +- %g",
                                  q8_arch_get()->name, M, N, K, m, n, y[m * N + n], r, bd);
                        }
                    if (first) memcpy(y0, y, sizeof(float) * M * N);
                    else
                        CHECK(!memcmp(y0, y, sizeof(float) * M * N),
                              "%s differs from the portable kernel (M=%d N=%d K=%d)", ISAS[a], M, N, K);
                    first = 0;
                    ran++;
                }
                free(q), free(x), free(w), free(b), free(wd), free(y), free(y0);
            }
    CHECK(ran >= 80, "only %d runs", ran);
}

/* every int8 kernel directly (including ones the float ISA choice would not
 * pick), one thread and two, against the portable kernel */
TEST(q8_kernels_bit_identical) {
    static const char *const names[] = {"generic", "avxvnni", "avx512vnni"};
    int M = 290, N = 45, K = 2100; /* edge tiles and panels, several row blocks, three k ranges */
    float *x = malloc(sizeof(float) * M * K), *w = malloc(sizeof(float) * N * K), *b = malloc(sizeof(float) * N);
    float *y = malloc(sizeof(float) * M * N), *y0 = malloc(sizeof(float) * M * N);
    fill(x, (int64_t)M * K, 4), fill(w, (int64_t)N * K, 5), fill(b, N, 6);
    q8_matrix *q;
    CHECK_OK(q8_quantize(w, OP_F32, N, K, 1, &q));
    gemm_strided xs = {x, K, 1};
    int first = 1, ran = 0;
    for (int a = 0; a < 3; a++) {
        const q8_arch *ar = q8_arch_named(names[a]);
        if (!ar) continue;
        for (int threads = 1; threads <= 2; threads++) {
            gemm_q8_desc d = {.w = q,
                              .M = M,
                              .pack_x = gemm_pack_strided,
                              .x_ctx = &xs,
                              .C = y,
                              .ldc = N,
                              .bias = b,
                              .threads = threads};
            CHECK_OK(gemm_q8_run(&d, ar));
            if (first) memcpy(y0, y, sizeof(float) * M * N);
            else
                CHECK(!memcmp(y0, y, sizeof(float) * M * N), "%s on %d threads differs from the portable kernel",
                      names[a], threads);
            first = 0;
            ran++;
        }
    }
    free(q), free(x), free(w), free(b), free(y), free(y0);
    if (ran < 4) SKIP("only the portable int8 kernel runs on this CPU (checked against the references elsewhere)");
}

/* Convolutions: kernels in the plain column order (channels not a multiple
 * of 32: the im2col panels quantised as packed), and in (ky, kx, c) order
 * (q8_quantize_conv with 32k channels: the input quantised once per pixel);
 * the reference quantises each pixel's im2col row in the matrix's order. */
TEST(q8_conv2d_all_kernels) {
    static const struct {
        int B, C, H, W, O, k, s, p;
    } cs[] = {{2, 5, 7, 9, 13, 3, 1, 1},   {1, 40, 10, 6, 30, 3, 2, 1}, {2, 64, 5, 5, 20, 1, 1, 0},
              {1, 4, 16, 16, 24, 3, 1, 1}, {2, 64, 7, 9, 21, 3, 1, 1},  {1, 32, 10, 6, 40, 3, 2, 1},
              {2, 96, 5, 6, 18, 1, 1, 0},  {1, 32, 20, 18, 16, 3, 1, 1}};
    op_ctx *cx = test_cx();
    for (int c = 0; c < 8; c++) {
        int B = cs[c].B, C = cs[c].C, H = cs[c].H, W = cs[c].W, O = cs[c].O, k = cs[c].k, s = cs[c].s, p = cs[c].p;
        int Ho = (H + 2 * p - k) / s + 1, Wo = (W + 2 * p - k) / s + 1, CK = C * k * k, kk = k * k;
        float *x = malloc(sizeof(float) * B * C * H * W), *w = malloc(sizeof(float) * O * CK),
              *b = malloc(sizeof(float) * O);
        float *wd = malloc(sizeof(float) * O * CK), *col = malloc(sizeof(float) * CK);
        float *y = malloc(sizeof(float) * B * O * Ho * Wo), *y0 = malloc(sizeof(float) * B * O * Ho * Wo);
        fill(x, (int64_t)B * C * H * W, 10 + c), fill(w, (int64_t)O * CK, 20 + c), fill(b, O, 30);
        q8_matrix *q;
        CHECK_OK(c < 4 ? q8_quantize(w, OP_F32, O, CK, 1, &q) : q8_quantize_conv(w, OP_F32, O, C, k, 1, &q));
        int taps = q->ch != 0; /* columns (ky, kx, c) */
        CHECK(taps == (c >= 4), "conv %d: column order", c);
        for (int o = 0; o < O; o++) { /* dequantised, in the matrix's column order */
            q8_dequantize_row(q, o, col);
            for (int j = 0; j < CK; j++) wd[(int64_t)o * CK + j] = taps ? col[j % C * kk + j / C] : col[j];
        }
        int first = 1;
        for (int a = 0; a < 3; a++) {
            const gemm_arch *ga = gemm_arch_named(ISAS[a]);
            if (!ga) continue;
            gemm_arch_force(ga);
            sdc_status st = op_conv2d_t(cx, x, B, C, H, W, q, OP_Q8, b, O, k, s, p, y);
            gemm_arch_force(NULL);
            CHECK_OK(st);
            for (int n = 0; n < B; n++)
                for (int oy = 0; oy < Ho; oy++)
                    for (int ox = 0; ox < Wo; ox++) {
                        for (int ci = 0; ci < C; ci++) /* the im2col row of this pixel */
                            for (int ky = 0; ky < k; ky++)
                                for (int kx = 0; kx < k; kx++) {
                                    int iy = oy * s - p + ky, ix = ox * s - p + kx, tap = ky * k + kx;
                                    col[taps ? tap * C + ci : ci * kk + tap] =
                                        iy < 0 || iy >= H || ix < 0 || ix >= W ? 0.0f
                                                                               : x[((n * C + ci) * H + iy) * W + ix];
                                }
                        for (int o = 0; o < O; o++) {
                            double r, bd;
                            ref_dot(wd + (int64_t)o * CK, col, CK, &r, &bd);
                            float v = y[((n * O + o) * Ho + oy) * Wo + ox];
                            CHECK(fabs(v - (r + b[o])) <= bd, "conv %d (%s) at (%d,%d,%d,%d): %g, reference %g +- %g",
                                  c, q8_arch_get()->name, n, o, oy, ox, v, r + b[o], bd);
                        }
                    }
            int64_t ny = (int64_t)B * O * Ho * Wo;
            if (first) memcpy(y0, y, sizeof(float) * ny);
            else CHECK(!memcmp(y0, y, sizeof(float) * ny), "conv %d: %s differs from the portable kernel", c, ISAS[a]);
            first = 0;
        }
        free(q), free(x), free(w), free(b), free(wd), free(col), free(y), free(y0);
    }
}

TEST(q8_linear_edge_cases) {
    op_ctx *cx = test_cx();
    int M = 3, N = 20, K = 64;
    float x[3 * 64], w[20 * 64], y[3 * 20];
    fill(x, M * K, 1), fill(w, N * K, 2);
    q8_matrix *q;
    CHECK_OK(q8_quantize(w, OP_F32, N, K, 1, &q));
    /* a NaN in an activation row spoils that row only, as in float32 */
    x[K + 5] = NAN;
    CHECK_OK(op_linear_t(cx, x, M, K, q, OP_Q8, NULL, N, y));
    for (int n = 0; n < N; n++) CHECK(isnan(y[N + n]) && isfinite(y[n]) && isfinite(y[2 * N + n]), "NaN row %d", n);
    /* zero activations give the bias exactly */
    float z[64] = {0}, bias[20];
    fill(bias, N, 3);
    CHECK_OK(op_linear_t(cx, z, 1, K, q, OP_Q8, bias, N, y));
    CHECK(!memcmp(y, bias, sizeof bias), "zero input does not give the bias");
    /* a weight of another shape is refused with a message */
    sdc_status st = op_linear_t(cx, x, M, 32, q, OP_Q8, NULL, N, y);
    CHECK(st == SDC_ERR_SHAPE && strstr(sdc_last_error(), "int8 weight of shape 20 x 64"), "shape check: %s",
          sdc_last_error());
    free(q);
}
