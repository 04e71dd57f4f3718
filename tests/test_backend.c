/* test_backend.c - the CPU backend's own kernels against plain double
 * references, for every micro-kernel this CPU can run (portable C, AVX2,
 * AVX-512): GEMM edge tiles and blocking, implicit-GEMM convolution (padding,
 * stride, batch, odd sizes), blocked attention (several key blocks, causal),
 * norms and activations. The model goldens check the same code end to end;
 * these pin down the shapes the tiny models never reach. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/gemm.h"
#include "backend/ops.h"
#include "harness.h"

static const char *const ISAS[] = {"generic", "avx2", "avx512"};

static void fill(float *p, int64_t n, unsigned seed) {
    uint64_t s = seed * 2654435761u + 1;
    for (int64_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        p[i] = (float)((double)(s >> 40) / (double)(1ull << 24) * 2.0 - 1.0);
    }
}

/* max |a - b| / (1 + |b|) */
static double rel_err(const float *a, const double *b, int64_t n) {
    double e = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]) / (1.0 + fabs(b[i]));
        if (!(d <= e)) e = d; /* NaN propagates */
    }
    return e;
}

TEST(backend_gemm_shapes_all_kernels) {
    static const int Ms[] = {1, 5, 12, 37, 130}, Ns[] = {1, 17, 32, 70}, Ks[] = {1, 3, 400, 801};
    for (int q = 0; q < 3; q++) {
        const gemm_arch *ar = gemm_arch_named(ISAS[q]);
        if (!ar) continue;
        for (int mi = 0; mi < 5; mi++)
            for (int ni = 0; ni < 4; ni++)
                for (int ki = 0; ki < 4; ki++)
                    for (int mode = 0; mode < 3; mode++) {
                        int M = Ms[mi], N = Ns[ni], K = Ks[ki];
                        float *a = malloc((size_t)M * K * 4), *b = malloc((size_t)K * N * 4);
                        float *c = malloc((size_t)M * N * 4), *rb = malloc((size_t)M * 4), *cb = malloc((size_t)N * 4);
                        double *r = malloc((size_t)M * N * 8), *mag = malloc((size_t)M * N * 8);
                        fill(a, (int64_t)M * K, 1), fill(b, (int64_t)K * N, 2), fill(c, (int64_t)M * N, 3);
                        fill(rb, M, 4), fill(cb, N, 5);
                        /* mode 0: A packed, row bias; 1: A in place, column bias; 2: accumulate */
                        for (int i = 0; i < M; i++)
                            for (int j = 0; j < N; j++) {
                                double s = mode == 0 ? rb[i] : mode == 1 ? cb[j] : c[i * N + j], m = fabs(s);
                                for (int k = 0; k < K; k++) {
                                    s += (double)a[i * K + k] * b[k * N + j];
                                    m += fabs((double)a[i * K + k] * b[k * N + j]);
                                }
                                r[i * N + j] = s;
                                mag[i * N + j] = m;
                            }
                        gemm_strided A = {a, K, 1}, Bm = {b, 1, N};
                        gemm_desc d = {.M = M, .N = N, .K = K, .pack_a = gemm_pack_strided, .a_ctx = &A,
                                       .pack_b = gemm_pack_strided, .b_ctx = &Bm, .C = c, .ldc = N,
                                       .row_bias = mode == 0 ? rb : NULL, .col_bias = mode == 1 ? cb : NULL,
                                       .accumulate = mode == 2};
                        if (mode == 1) d.a_direct = a, d.lda = K;
                        sdc_status st = gemm_run(&d, ar);
                        /* error against the sum of |terms|: float rounding stays far below 1e-6 of
                         * it, while one lost or doubled term shows up at about 1/K */
                        double e = 0;
                        for (int64_t i = 0; i < (int64_t)M * N; i++) {
                            double d = fabs(c[i] - r[i]) / (mag[i] + 1e-30);
                            if (!(d <= e)) e = d;
                        }
                        free(a), free(b), free(c), free(rb), free(cb), free(r), free(mag);
                        CHECK_OK(st);
                        CHECK(e < 1e-6, "%s gemm M=%d N=%d K=%d mode %d: error %g", ar->name, M, N, K, mode, e);
                    }
    }
}

static void conv_ref(const float *x, int B, int C, int H, int W, const float *w, const float *bias, int O, int k,
                     int s, int p, double *y) {
    int Ho = (H + 2 * p - k) / s + 1, Wo = (W + 2 * p - k) / s + 1;
    for (int n = 0; n < B; n++)
        for (int o = 0; o < O; o++)
            for (int oy = 0; oy < Ho; oy++)
                for (int ox = 0; ox < Wo; ox++) {
                    double acc = bias ? bias[o] : 0;
                    for (int c = 0; c < C; c++)
                        for (int i = 0; i < k; i++)
                            for (int j = 0; j < k; j++) {
                                int iy = oy * s - p + i, ix = ox * s - p + j;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                acc += (double)w[((o * C + c) * k + i) * k + j] * x[((n * C + c) * H + iy) * W + ix];
                            }
                    y[((n * O + o) * Ho + oy) * Wo + ox] = acc;
                }
}

TEST(backend_conv2d_implicit_gemm) {
    op_ctx *cx = test_cx();
    /* B, C, H, W, O, k, stride, pad */
    static const int cases[][8] = {{2, 5, 9, 13, 7, 3, 1, 1},  {1, 16, 8, 8, 33, 3, 1, 1}, {2, 6, 11, 7, 4, 3, 2, 1},
                                   {2, 8, 6, 10, 13, 1, 1, 0}, {1, 3, 40, 36, 5, 3, 1, 1}, {3, 4, 5, 5, 2, 3, 2, 0},
                                   {1, 2, 1, 1, 3, 3, 1, 1},   {1, 16, 17, 19, 13, 3, 1, 1}, {2, 9, 16, 20, 40, 3, 1, 1},
                                   {1, 24, 40, 33, 30, 3, 1, 1}};
    for (int q = 0; q < 3; q++) {
        const gemm_arch *ar = gemm_arch_named(ISAS[q]);
        if (!ar) continue;
        gemm_arch_force(ar);
        for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
            const int *cs = cases[t];
            int B = cs[0], C = cs[1], H = cs[2], W = cs[3], O = cs[4], k = cs[5], s = cs[6], p = cs[7];
            int Ho = (H + 2 * p - k) / s + 1, Wo = (W + 2 * p - k) / s + 1;
            int64_t nx = (int64_t)B * C * H * W, nw = (int64_t)O * C * k * k, ny = (int64_t)B * O * Ho * Wo;
            float *x = malloc(nx * 4), *w = malloc(nw * 4), *bias = malloc(O * 4), *y = malloc(ny * 4);
            double *r = malloc(ny * 8);
            fill(x, nx, 7), fill(w, nw, 8), fill(bias, O, 9);
            conv_ref(x, B, C, H, W, w, t % 2 ? NULL : bias, O, k, s, p, r);
            sdc_status st = op_conv2d(cx, x, B, C, H, W, w, t % 2 ? NULL : bias, O, k, s, p, y);
            double e = rel_err(y, r, ny);
            free(x), free(w), free(bias), free(y), free(r);
            if (st || !(e < 1e-5)) gemm_arch_force(NULL);
            CHECK_OK(st);
            CHECK(e < 1e-5, "%s conv case %zu: error %g", ar->name, t, e);
        }
        gemm_arch_force(NULL);
    }
}

static void attn_ref(const float *q, int64_t qld, const float *k, const float *v, int64_t kvld, int B, int Nq, int Nk,
                     int heads, int dh, float scale, int causal, double *out) {
    double *s = malloc((size_t)Nk * 8);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < Nq; i++) {
                double mx = -INFINITY, sum = 0;
                int lim = causal ? i + 1 : Nk;
                for (int j = 0; j < lim; j++) {
                    double d = 0;
                    for (int e = 0; e < dh; e++)
                        d += (double)q[(b * Nq + i) * qld + h * dh + e] * k[(b * Nk + j) * kvld + h * dh + e];
                    s[j] = d * scale;
                    mx = fmax(mx, s[j]);
                }
                for (int j = 0; j < lim; j++) sum += (s[j] = exp(s[j] - mx));
                for (int e = 0; e < dh; e++) {
                    double o = 0;
                    for (int j = 0; j < lim; j++) o += s[j] * v[(b * Nk + j) * kvld + h * dh + e];
                    out[(b * Nq + i) * heads * dh + h * dh + e] = o / sum;
                }
            }
    free(s);
}

TEST(backend_attention_blocked) {
    op_ctx *cx = test_cx();
    /* B, Nq, Nk, heads, dh, causal */
    static const int cases[][6] = {{2, 70, 77, 3, 8, 0}, {1, 130, 1100, 2, 40, 0}, {1, 77, 77, 4, 16, 1},
                                   {2, 5, 1, 1, 3, 0},   {1, 600, 600, 1, 64, 1}};
    for (int qi = 0; qi < 3; qi++) {
        const gemm_arch *ar = gemm_arch_named(ISAS[qi]);
        if (!ar) continue;
        gemm_arch_force(ar);
        for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
            const int *cs = cases[t];
            int B = cs[0], Nq = cs[1], Nk = cs[2], heads = cs[3], dh = cs[4], causal = cs[5];
            int64_t D = (int64_t)heads * dh, qld = 3 * D + 1, kvld = 2 * D + 3; /* strided rows, as in fused q/k/v */
            float *q = malloc((size_t)B * Nq * qld * 4), *kv = malloc((size_t)B * Nk * kvld * 4 + 4 * D);
            float *o = malloc((size_t)B * Nq * D * 4);
            double *r = malloc((size_t)B * Nq * D * 8);
            fill(q, (int64_t)B * Nq * qld, 11), fill(kv, (int64_t)B * Nk * kvld + D, 12);
            for (int64_t i = 0; i < (int64_t)B * Nq * qld; i++) q[i] *= 3.0f; /* peaky softmax */
            float scale = 1.0f / sqrtf((float)dh);
            attn_ref(q, qld, kv, kv + D, kvld, B, Nq, Nk, heads, dh, scale, causal, r);
            sdc_status st = op_attention(cx, q, qld, kv, kv + D, kvld, B, Nq, Nk, heads, dh, scale, causal, o);
            double e = rel_err(o, r, (int64_t)B * Nq * D);
            free(q), free(kv), free(o), free(r);
            if (st || !(e < 2e-6)) gemm_arch_force(NULL);
            CHECK_OK(st);
            CHECK(e < 2e-6, "%s attention case %zu: error %g", ar->name, t, e);
        }
        gemm_arch_force(NULL);
    }
}

TEST(backend_linear_transposed_weights) {
    op_ctx *cx = test_cx();
    /* M, K, N: K past one 16-wide transpose block and not a multiple of it */
    static const int cases[][3] = {{1, 1, 1}, {7, 37, 45}, {77, 768, 70}, {13, 16, 33}, {40, 400, 17}};
    for (int q = 0; q < 3; q++) {
        const gemm_arch *ar = gemm_arch_named(ISAS[q]);
        if (!ar) continue;
        gemm_arch_force(ar);
        for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
            int M = cases[t][0], K = cases[t][1], N = cases[t][2];
            float *x = malloc((size_t)M * K * 4), *w = malloc((size_t)N * K * 4), *b = malloc((size_t)N * 4);
            float *y = malloc((size_t)M * N * 4);
            double *r = malloc((size_t)M * N * 8);
            fill(x, (int64_t)M * K, 21), fill(w, (int64_t)N * K, 22), fill(b, N, 23);
            for (int i = 0; i < M; i++)
                for (int j = 0; j < N; j++) {
                    double s = b[j];
                    for (int k = 0; k < K; k++) s += (double)x[i * K + k] * w[j * K + k];
                    r[i * N + j] = s;
                }
            op_linear(cx, x, M, K, w, b, N, y);
            double e = rel_err(y, r, (int64_t)M * N);
            free(x), free(w), free(b), free(y), free(r);
            if (!(e < 1e-5)) gemm_arch_force(NULL);
            CHECK(e < 1e-5, "%s linear %dx%d<-%d: error %g", ar->name, M, N, K, e);
        }
        gemm_arch_force(NULL);
    }
}

static double silu_d(double v) { return v / (1.0 + exp(-v)); }

TEST(backend_norms_and_activations) {
    op_ctx *cx = test_cx();
    for (int q = 0; q < 3; q++) {
        const gemm_arch *ar = gemm_arch_named(ISAS[q]);
        if (!ar) continue;
        gemm_arch_force(ar);
        /* GroupNorm(+SiLU), in place, odd pixel count; B*G above and below the per-channel split */
        static const int gcases[][4] = {{2, 12, 37, 3}, {1, 64, 5, 32}, {3, 8192, 3, 2048}};
        for (int t = 0; t < 3; t++) {
            int B = gcases[t][0], C = gcases[t][1], HW = gcases[t][2], G = gcases[t][3], cpg = C / G;
            int64_t n = (int64_t)B * C * HW;
            float *x = malloc(n * 4), *g = malloc(C * 4), *b = malloc(C * 4);
            double *r = malloc(n * 8);
            fill(x, n, 31), fill(g, C, 32), fill(b, C, 33);
            for (int64_t i = 0; i < n; i++) x[i] = 3.0f * x[i] + 0.5f;
            for (int silu = 0; silu < 2; silu++) {
                for (int64_t bg = 0; bg < (int64_t)B * G; bg++) {
                    const float *xs = x + bg * cpg * HW;
                    double s = 0, sq = 0;
                    for (int64_t i = 0; i < (int64_t)cpg * HW; i++) s += xs[i];
                    double m = s / (cpg * HW);
                    for (int64_t i = 0; i < (int64_t)cpg * HW; i++) sq += (xs[i] - m) * (xs[i] - m);
                    double rs = 1.0 / sqrt(sq / (cpg * HW) + 1e-5);
                    for (int64_t i = 0; i < (int64_t)cpg * HW; i++) {
                        int c = (int)((bg % G) * cpg + i / HW);
                        double v = (xs[i] - m) * rs * g[c] + b[c];
                        r[bg * cpg * HW + i] = silu ? silu_d(v) : v;
                    }
                }
                float *y = malloc(n * 4);
                memcpy(y, x, n * 4);
                op_group_norm(cx, y, y, B, C, HW, G, 1e-5f, g, b, silu);
                double e = rel_err(y, r, n);
                free(y);
                if (!(e < 2e-6)) gemm_arch_force(NULL);
                CHECK(e < 2e-6, "%s group_norm case %d silu %d: error %g", ar->name, t, silu, e);
            }
            free(x), free(g), free(b), free(r);
        }
        /* LayerNorm rows of 77 (vector body + tail) with an offset mean */
        {
            int rows = 5, D = 77;
            float *x = malloc(rows * D * 4), *g = malloc(D * 4), *b = malloc(D * 4), *y = malloc(rows * D * 4);
            double r[5 * 77];
            fill(x, rows * D, 41), fill(g, D, 42), fill(b, D, 43);
            for (int i = 0; i < rows * D; i++) x[i] = 4.0f * x[i] + 10.0f;
            for (int rr = 0; rr < rows; rr++) {
                double s = 0, sq = 0;
                for (int i = 0; i < D; i++) s += x[rr * D + i];
                double m = s / D;
                for (int i = 0; i < D; i++) sq += (x[rr * D + i] - m) * (x[rr * D + i] - m);
                for (int i = 0; i < D; i++) r[rr * D + i] = (x[rr * D + i] - m) / sqrt(sq / D + 1e-5) * g[i] + b[i];
            }
            op_layer_norm(cx, x, y, rows, D, 1e-5f, g, b);
            double e = rel_err(y, r, rows * D);
            free(x), free(g), free(b), free(y);
            if (!(e < 2e-6)) gemm_arch_force(NULL);
            CHECK(e < 2e-6, "%s layer_norm: error %g", ar->name, e);
        }
        /* activations over [-12, 12] (a length with a scalar tail) */
        {
            int n = 4003;
            float *x = malloc(n * 4), *y = malloc(n * 4), *gg = malloc(2 * n * 4), *o = malloc(n * 4);
            double *r = malloc(n * 8);
            for (int i = 0; i < n; i++) x[i] = -12.0f + 24.0f * (float)i / (float)(n - 1);
            for (int kind = 0; kind < 4; kind++) {
                for (int i = 0; i < n; i++) {
                    double v = x[i];
                    r[i] = kind == 0 ? silu_d(v) : kind == 1 ? 0.5 * v * (1 + erf(v / sqrt(2.0)))
                         : kind == 2 ? v / (1 + exp(-1.702 * v)) : 0.25 * v * (1 + erf(v / sqrt(2.0)));
                }
                memcpy(y, x, n * 4);
                if (kind == 0) op_silu(cx, y, n);
                if (kind == 1) op_gelu(cx, y, n);
                if (kind == 2) op_quick_gelu(cx, y, n);
                if (kind == 3) { /* geglu rows of 1 with a = 0.5: 0.5 * gelu(x) */
                    for (int i = 0; i < n; i++) gg[2 * i] = 0.5f, gg[2 * i + 1] = x[i];
                    op_geglu(cx, gg, o, n, 1);
                    memcpy(y, o, n * 4);
                }
                double e = rel_err(y, r, n);
                if (!(e < 2e-6)) gemm_arch_force(NULL);
                CHECK(e < 2e-6, "%s activation %d: error %g", ar->name, kind, e);
            }
            free(x), free(y), free(gg), free(o), free(r);
        }
        gemm_arch_force(NULL);
    }
}

TEST(backend_layouts_and_resize) {
    op_ctx *cx = test_cx();
    int B = 2, C = 37, H = 5, W = 7;
    int64_t n = (int64_t)B * C * H * W;
    float *x = malloc(n * 4), *y = malloc(n * 4), *z = malloc(n * 4), *u = malloc(n * 4 * 4);
    fill(x, n, 51);
    op_nchw_to_nhwc(cx, x, y, B, C, H * W);
    CHECK(y[(1 * H * W + 9) * C + 5] == x[(1 * C + 5) * H * W + 9], "nchw_to_nhwc moved the wrong element");
    op_nhwc_to_nchw(cx, y, z, B, C, H * W);
    CHECK(!memcmp(x, z, n * 4), "nhwc_to_nchw is not the inverse of nchw_to_nhwc");
    op_upsample_nearest(cx, x, u, B * C, H, W, 2 * H, 2 * W);
    CHECK(u[(3 * 2 * H + 7) * 2 * W + 9] == x[(3 * H + 3) * W + 4], "2x nearest upsampling");
    op_upsample_nearest(cx, x, u, B * C, H, W, 8, 11); /* torch: src = floor(dst * in/out) */
    CHECK(u[(2 * 8 + 7) * 11 + 10] == x[(2 * H + 4) * W + 6] && u[(2 * 8 + 3) * 11 + 5] == x[(2 * H + 1) * W + 3],
          "non-integer nearest resize");
    free(x), free(y), free(z), free(u);
}

#include "backend/cpu/winograd.h"

/* Winograd F(2x2) and F(4x4) against double, forced (below the sizes where
 * op_conv2d picks them), with sizes that leave partial tiles at the right and
 * bottom; error relative to the sum of |terms| of each output. */
TEST(backend_conv3x3_winograd_tiles) {
    op_ctx *cx = test_cx();
    static const int cases[][5] = {{1, 3, 5, 7, 2}, {2, 16, 13, 18, 20}, {1, 40, 33, 31, 24}, {1, 64, 16, 16, 64}};
    for (int q = 0; q < 3; q++) {
        const gemm_arch *ar = gemm_arch_named(ISAS[q]);
        if (!ar) continue;
        gemm_arch_force(ar);
        for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
            int B = cases[t][0], C = cases[t][1], H = cases[t][2], W = cases[t][3], O = cases[t][4];
            int64_t nx = (int64_t)B * C * H * W, nw = (int64_t)O * C * 9, ny = (int64_t)B * O * H * W;
            float *x = malloc(nx * 4), *w = malloc(nw * 4), *bias = malloc(O * 4), *y = malloc(ny * 4);
            double *r = malloc(ny * 8), *mag = malloc(ny * 8);
            fill(x, nx, 61), fill(w, nw, 62), fill(bias, O, 63);
            conv_ref(x, B, C, H, W, w, bias, O, 3, 1, 1, r);
            for (int n = 0; n < B; n++) /* sum of |terms| */
                for (int o = 0; o < O; o++)
                    for (int i = 0; i < H * W; i++) {
                        double m = fabs(bias[o]);
                        int oy = i / W, ox = i % W;
                        for (int c = 0; c < C; c++)
                            for (int ky = 0; ky < 3; ky++)
                                for (int kx = 0; kx < 3; kx++) {
                                    int iy = oy - 1 + ky, ix = ox - 1 + kx;
                                    if (iy >= 0 && iy < H && ix >= 0 && ix < W)
                                        m += fabs((double)w[((o * C + c) * 3 + ky) * 3 + kx] *
                                                  x[((n * C + c) * H + iy) * W + ix]);
                                }
                        mag[(n * O + o) * H * W + i] = m;
                    }
            for (int m = 2; m <= 4; m += 2) {
                sdc_status st = conv3x3_winograd_m(cx, x, B, C, H, W, w, OP_F32, bias, O, y, m);
                double e = 0;
                for (int64_t i = 0; i < ny; i++) {
                    double d = fabs(y[i] - r[i]) / (mag[i] + 1e-30);
                    if (!(d <= e)) e = d;
                }
                if (getenv("SDC_TEST_VERBOSE"))
                    printf("     %s F(%dx%d,3x3) case %zu: max error / sum|terms| %.3g\n", ar->name, m, m, t, e);
                double tol = m == 2 ? 1e-6 : 4e-6;
                if (st || !(e < tol)) {
                    free(x), free(w), free(bias), free(y), free(r), free(mag);
                    gemm_arch_force(NULL);
                }
                CHECK_OK(st);
                CHECK(e < tol, "%s F(%dx%d,3x3) case %zu: error %g", ar->name, m, m, t, e);
            }
            free(x), free(w), free(bias), free(y), free(r), free(mag);
        }
        gemm_arch_force(NULL);
    }
}

/* F(4x4)'s AVX-512 transforms (tile rows of a multiple of 16 tiles) give the
 * portable transforms' bits, and the fused residual + ReLU the bits of the
 * separate ops; shapes with partial tiles at the bottom and the right. */
TEST(backend_winograd_vector_transforms_bit_identical) {
    op_ctx *cx = test_cx();
    if (!winograd_vector_transforms(1)) {
        SKIP("the GEMM kernels in use are not AVX-512 (no AVX-512 here, or SDC_GEMM_ISA): only the portable transforms run");
    }
    /* tile rows of 16, 32, 64 and 48 tiles (runs of 1 to 4 groups of 16), and long runs (C + O > 128) */
    static const int cases[][5] = {{1, 64, 61, 64, 64},  {2, 24, 29, 125, 40}, {1, 16, 128, 128, 16},
                                   {1, 8, 20, 256, 8},   {1, 8, 24, 190, 16},  {1, 72, 8, 510, 72}};
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        int B = cases[t][0], C = cases[t][1], H = cases[t][2], W = cases[t][3], O = cases[t][4];
        int64_t nx = (int64_t)B * C * H * W, nw = (int64_t)O * C * 9, ny = (int64_t)B * O * H * W;
        float *x = malloc(nx * 4), *w = malloc(nw * 4), *bias = malloc(O * 4), *res = malloc(ny * 4);
        float *yv = malloc(ny * 4), *yp = malloc(ny * 4), *ys = malloc(ny * 4);
        fill(x, nx, 91), fill(w, nw, 92), fill(bias, O, 93), fill(res, ny, 94);
        sdc_status st = conv3x3_winograd(cx, x, B, C, H, W, w, OP_F32, bias, O, yv, res, 1);
        winograd_vector_transforms(0);
        if (!st) st = conv3x3_winograd(cx, x, B, C, H, W, w, OP_F32, bias, O, yp, res, 1);
        if (!st) st = conv3x3_winograd_m(cx, x, B, C, H, W, w, OP_F32, bias, O, ys, 4);
        winograd_vector_transforms(1);
        int negative = 0;
        for (int64_t i = 0; i < ny; i++) {
            ys[i] += res[i];
            negative += ys[i] < 0.0f;
            ys[i] = ys[i] < 0.0f ? 0.0f : ys[i];
        }
        int same_vp = !memcmp(yv, yp, ny * 4), same_ps = !memcmp(yp, ys, ny * 4);
        free(x), free(w), free(bias), free(res), free(yv), free(yp), free(ys);
        CHECK_OK(st);
        CHECK(negative > ny / 4, "case %zu: the test should clamp many outputs (%d of %lld)", t, negative,
              (long long)ny);
        CHECK(same_vp, "case %zu: AVX-512 transforms differ from the portable ones", t);
        CHECK(same_ps, "case %zu: the fused residual + ReLU differ from the separate ops", t);
    }
}

/* Weights kept as f16 / bf16 give exactly the results of widening them first
 * (the packed panels hold the same floats). */
TEST(backend_16bit_weights_match_widened) {
    op_ctx *cx = test_cx();
    int M = 37, K = 70, N = 45;
    uint16_t *wh = malloc((size_t)N * K * 2);
    float *x = malloc((size_t)M * K * 4), *wf = malloc((size_t)N * K * 4), *b = malloc(N * 4);
    float *y0 = malloc((size_t)M * N * 4), *y1 = malloc((size_t)M * N * 4);
    fill(x, (int64_t)M * K, 71), fill(b, N, 72);
    for (int bf = 0; bf < 2; bf++) {
        for (int64_t i = 0; i < (int64_t)N * K; i++) { /* values exactly representable in both formats */
            float v = (float)((i * 37) % 255 - 127) / 64.0f;
            uint32_t u;
            memcpy(&u, &v, 4);
            if (bf) wh[i] = (uint16_t)(u >> 16);
            else wh[i] = (uint16_t)((u >> 16 & 0x8000) | (v == 0.0f ? 0 : ((((u >> 23) & 0xff) - 112) << 10 | (u >> 13 & 0x3ff))));
            wf[i] = v;
        }
        op_linear(cx, x, M, K, wf, b, N, y0);
        op_linear_t(cx, x, M, K, wh, bf ? OP_BF16 : OP_F16, b, N, y1);
        CHECK(!memcmp(y0, y1, (size_t)M * N * 4), "linear with %s weights differs from widened", bf ? "bf16" : "f16");
        /* the same values as an 8 -> 9 channel 3x3 kernel (45 * 70 >= 9 * 8 * 9), batch 2, on 66x64
         * (Winograd 4x4), 34x32 (2x2) and 6x5 (direct) */
        for (int t = 0; t < 3; t++) {
            int C = 8, O = 9, H = t == 0 ? 66 : t == 1 ? 34 : 6, Wd = t == 0 ? 64 : t == 1 ? 32 : 5;
            float *xi = malloc((size_t)2 * C * H * Wd * 4), *c0 = malloc((size_t)2 * O * H * Wd * 4),
                  *c1 = malloc((size_t)2 * O * H * Wd * 4);
            fill(xi, (int64_t)2 * C * H * Wd, 73);
            sdc_status s0 = op_conv2d(cx, xi, 2, C, H, Wd, wf, b, O, 3, 1, 1, c0);
            sdc_status s1 = op_conv2d_t(cx, xi, 2, C, H, Wd, wh, bf ? OP_BF16 : OP_F16, b, O, 3, 1, 1, c1);
            int same = !s0 && !s1 && !memcmp(c0, c1, (size_t)2 * O * H * Wd * 4);
            free(xi), free(c0), free(c1);
            CHECK(same, "conv %dx%d with %s weights differs from widened", H, Wd, bf ? "bf16" : "f16");
        }
    }
    free(wh), free(x), free(wf), free(b), free(y0), free(y1);
}

static float bf16_round(float f) { /* nearest even, as VCVTNE2PS2BF16 (finite inputs) */
    uint32_t u;
    memcpy(&u, &f, 4);
    u = (u + 0x7fff + ((u >> 16) & 1)) & 0xffff0000u;
    memcpy(&f, &u, 4);
    return f;
}

/* op_set_compute(cx, OP_BF16): the GEMM of the bf16-rounded operands, summed in
 * float32 (checked against double over the rounded values), on odd shapes
 * (odd K pads a k pair, edge tiles), for linear, convolution and attention. */
TEST(backend_bf16_compute) {
    op_ctx *cx = test_cx();
    op_set_compute(cx, OP_BF16);
    if (op_compute(cx) != OP_BF16 || !gemm_use_bf16(&(gemm_desc){.bf16 = 1}, gemm_arch_get())) {
        op_set_compute(cx, OP_F32);
        SKIP("no AVX512_BF16 on this CPU (or SDC_GEMM_ISA chose non-AVX-512 kernels)");
    }
    static const int cases[][3] = {{13, 7, 33}, {77, 385, 45}, {130, 1000, 64}};
    for (size_t t = 0; t < 3; t++) {
        int M = cases[t][0], K = cases[t][1], N = cases[t][2];
        float *x = malloc((size_t)M * K * 4), *w = malloc((size_t)N * K * 4), *b = malloc(N * 4), *y = malloc((size_t)M * N * 4);
        double *r = malloc((size_t)M * N * 8), *mag = malloc((size_t)M * N * 8);
        fill(x, (int64_t)M * K, 81), fill(w, (int64_t)N * K, 82), fill(b, N, 83);
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                double s = b[j], m = fabs(b[j]);
                for (int k = 0; k < K; k++) {
                    double p = (double)bf16_round(x[i * K + k]) * bf16_round(w[j * K + k]);
                    s += p, m += fabs(p);
                }
                r[i * N + j] = s, mag[i * N + j] = m;
            }
        op_linear(cx, x, M, K, w, b, N, y);
        double e = 0;
        for (int64_t i = 0; i < (int64_t)M * N; i++) {
            double d = fabs(y[i] - r[i]) / (mag[i] + 1e-30);
            if (!(d <= e)) e = d;
        }
        free(x), free(w), free(b), free(y), free(r), free(mag);
        if (!(e < 1e-6)) op_set_compute(cx, OP_F32);
        CHECK(e < 1e-6, "bf16 linear %dx%d<-%d: error %g against the rounded operands", M, N, K, e);
    }
    /* convolution and attention: close to float32 at bf16 precision */
    {
        int B = 2, C = 16, H = 34, W = 33, O = 20;
        int64_t nx = (int64_t)B * C * H * W, ny = (int64_t)B * O * H * W;
        float *x = malloc(nx * 4), *w = malloc((int64_t)O * C * 9 * 4), *y = malloc(ny * 4);
        double *r = malloc(ny * 8);
        fill(x, nx, 84), fill(w, (int64_t)O * C * 9, 85);
        conv_ref(x, B, C, H, W, w, NULL, O, 3, 1, 1, r);
        sdc_status st = op_conv2d(cx, x, B, C, H, W, w, NULL, O, 3, 1, 1, y);
        double e = rel_err(y, r, ny);
        free(x), free(w), free(y), free(r);
        if (st || !(e < 3e-2)) op_set_compute(cx, OP_F32);
        CHECK_OK(st);
        CHECK(e < 3e-2, "bf16 conv: error %g", e);
    }
    {
        int B = 1, Nq = 200, Nk = 600, heads = 2, dh = 40;
        int64_t D = (int64_t)heads * dh;
        float *q = malloc((size_t)B * Nq * D * 4), *kv = malloc((size_t)B * Nk * 2 * D * 4), *o = malloc((size_t)B * Nq * D * 4);
        double *r = malloc((size_t)B * Nq * D * 8);
        fill(q, (int64_t)B * Nq * D, 86), fill(kv, (int64_t)B * Nk * 2 * D, 87);
        attn_ref(q, D, kv, kv + D, 2 * D, B, Nq, Nk, heads, dh, 0.16f, 0, r);
        sdc_status st = op_attention(cx, q, D, kv, kv + D, 2 * D, B, Nq, Nk, heads, dh, 0.16f, 0, o);
        double e = rel_err(o, r, (int64_t)B * Nq * D);
        free(q), free(kv), free(o), free(r);
        op_set_compute(cx, OP_F32);
        CHECK_OK(st);
        CHECK(e < 1e-2, "bf16 attention: error %g", e);
    }
}
