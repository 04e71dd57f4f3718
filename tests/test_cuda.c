/* test_cuda.c - the CUDA backend (src/backend/cuda) against the CPU ops of
 * ops.h. Two kinds of tests:
 *  - cuda_shared_*: the kernels' pure arithmetic (cu_shared.h: the flash
 *    attention tile schedule and online softmax, the chunked im2col index
 *    map, nearest/timestep index maps, the shared-memory layout) run on the
 *    CPU against the reference ops. They need no GPU and run everywhere.
 *  - cuda_*: every device op on random inputs (f32, f16, bf16) against the
 *    CPU op on the same (rounded) inputs, odd sizes, the SD/SDXL attention
 *    shapes, error paths, the arena and CUDA graphs. They SKIP when built
 *    without nvcc or when cu_init finds no device.
 * SDC_TEST_VERBOSE=1 prints each measured error beside its tolerance. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cu_shared.h"
#include "backend/ops.h"
#include "harness.h"
#ifdef SDC_HAVE_CUDA
#include "backend/cuda/cuda_ops.h"
#endif

static int verbose(void) {
    const char *e = getenv("SDC_TEST_VERBOSE");
    return e && *e && *e != '0';
}

static void fill(float *p, int64_t n, unsigned seed, float lo, float hi) {
    uint64_t s = seed * 2654435761u + 7;
    for (int64_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        p[i] = lo + (hi - lo) * (float)((double)(s >> 40) / (double)(1ull << 24));
    }
}

/* max |a-b| / max(1, max|b|): errors measured against the output's scale */
static double scaled_err(const float *a, const float *b, int64_t n) {
    double e = 0, mx = 1;
    for (int64_t i = 0; i < n; i++) mx = fmax(mx, fabs((double)b[i]));
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= e)) e = d; /* NaN propagates */
    }
    return e / mx;
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) abort();
    return p;
}

/* ======== the kernels' arithmetic on the CPU (no GPU needed) ======== */

/* The flash kernel's schedule exactly: 64-row query tiles, key tiles of
 * cu_att_bk(dhp), the two half-row softmax steps combined like the lane pair
 * (max, then sum), O rescaled by corr before P V, O / l at the end. */
static void emulate_flash(const float *q, int64_t q_ld, const float *k, const float *v, int64_t kv_ld, int B, int Nq,
                          int Nk, int heads, int dh, float scale, int causal, float *out, int bk) {
    float sl2 = scale * 1.4426950408889634f;
    float *s = xmalloc((size_t)bk * 4), *o = xmalloc((size_t)dh * 4);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < heads; h++)
            for (int q0 = 0; q0 < Nq; q0 += CU_ATT_BQ)
                for (int i = q0; i < q0 + CU_ATT_BQ && i < Nq; i++) {
                    const float *qi = q + ((int64_t)b * Nq + i) * q_ld + h * dh;
                    float m = -INFINITY, l = 0;
                    memset(o, 0, (size_t)dh * 4);
                    int kend = cu_att_key_end(q0, Nq, Nk, causal);
                    for (int j0 = 0; j0 < kend; j0 += bk) {
                        for (int c = 0; c < bk; c++) {
                            int j = j0 + c;
                            double d = 0;
                            if (j < Nk)
                                for (int e = 0; e < dh; e++) d += (double)qi[e] * k[((int64_t)b * Nk + j) * kv_ld + h * dh + e];
                            s[c] = (float)d;
                        }
                        float t0 = cu_att_tile_max(s, 0, bk / 2, j0, i, Nk, causal, sl2);
                        float t1 = cu_att_tile_max(s, bk / 2, bk, j0, i, Nk, causal, sl2);
                        float mnew, corr = cu_att_new_max(m, fmaxf(t0, t1), &mnew);
                        float sum = cu_att_tile_exp(s, 0, bk / 2, j0, i, Nk, causal, sl2, mnew) +
                                    cu_att_tile_exp(s, bk / 2, bk, j0, i, Nk, causal, sl2, mnew);
                        l = l * corr + sum;
                        m = mnew;
                        for (int e = 0; e < dh; e++) o[e] *= corr;
                        for (int c = 0; c < bk && j0 + c < Nk; c++)
                            for (int e = 0; e < dh; e++) o[e] += s[c] * v[((int64_t)b * Nk + j0 + c) * kv_ld + h * dh + e];
                    }
                    float *oi = out + ((int64_t)b * Nq + i) * heads * dh + h * dh;
                    for (int e = 0; e < dh; e++) oi[e] = l > 0 ? o[e] / l : 0;
                }
    free(s);
    free(o);
}

TEST(cuda_shared_attention_tiles) {
    /* B, Nq, Nk, heads, dh, causal: SD/SDXL heads, cross-attention to 77
     * tokens, CLIP's causal self-attention, tile edges on both sides */
    static const int cases[][6] = {{2, 70, 70, 2, 40, 0}, {1, 100, 77, 3, 64, 0}, {1, 77, 77, 2, 64, 1},
                                   {1, 129, 129, 1, 80, 1}, {1, 65, 33, 2, 128, 0}, {1, 50, 77, 1, 160, 0},
                                   {1, 3, 200, 1, 20, 1}};
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        int B = cases[t][0], Nq = cases[t][1], Nk = cases[t][2], H = cases[t][3], dh = cases[t][4], causal = cases[t][5];
        int D = H * dh, dhp = cu_att_dh_pad(dh);
        CHECK(dhp >= dh && dhp % 16 == 0, "dh %d padded to %d", dh, dhp);
        float *q = xmalloc((size_t)B * Nq * D * 4), *kv = xmalloc((size_t)B * Nk * 2 * D * 4);
        float *ref = xmalloc((size_t)B * Nq * D * 4), *got = xmalloc((size_t)B * Nq * D * 4);
        fill(q, (int64_t)B * Nq * D, 11 + t, -2, 2);
        fill(kv, (int64_t)B * Nk * 2 * D, 12 + t, -2, 2);
        float scale = 1.0f / sqrtf((float)dh);
        sdc_status st = op_attention(test_cx(), q, D, kv, kv + D, 2 * D, B, Nq, Nk, H, dh, scale, causal, ref);
        emulate_flash(q, D, kv, kv + D, 2 * D, B, Nq, Nk, H, dh, scale, causal, got, cu_att_bk(dhp));
        double e = scaled_err(got, ref, (int64_t)B * Nq * D);
        free(q), free(kv), free(ref), free(got);
        CHECK(st == SDC_OK, "op_attention: %s", sdc_last_error());
        if (verbose()) printf("    tiles B=%d Nq=%d Nk=%d heads=%d dh=%d causal=%d: err %.2e (tol 2e-5)\n", B, Nq, Nk, H, dh, causal, e);
        CHECK(e < 2e-5, "case %zu: emulated flash schedule differs from op_attention by %.3g", t, e);
    }
}

TEST(cuda_shared_attention_smem_layout) {
    /* what the kernel assumes of its shared-memory carve-up: wmma pointers
     * 32-byte aligned, ldm multiples of 8 halves / 4 floats, < 100 KB */
    static const int dhps[] = {32, 48, 64, 80, 96, 128, 160};
    for (int t = 0; t < 7; t++) {
        int dhp = dhps[t], bk = cu_att_bk(dhp);
        int ldh = cu_att_ld_h(dhp), lds = cu_att_ld_s(bk), ldp = cu_att_ld_p(bk), ldo = cu_att_ld_o(dhp);
        CHECK(ldh % 8 == 0 && ldp % 8 == 0 && lds % 4 == 0 && ldo % 4 == 0, "dhp %d: ldm", dhp);
        CHECK(bk % 32 == 0 && dhp % 16 == 0, "dhp %d: bk %d must split into two halves of 16-multiples", dhp, bk);
        int64_t off_k = (int64_t)CU_ATT_BQ * ldh * 2, off_v = off_k + (int64_t)bk * ldh * 2, off_p = off_v + (int64_t)bk * ldh * 2;
        int64_t off_s = off_p + (int64_t)CU_ATT_BQ * ldp * 2, off_o = off_s + (int64_t)CU_ATT_BQ * lds * 4;
        int64_t end = off_o + (int64_t)CU_ATT_BQ * ldo * 4;
        CHECK(off_k % 32 == 0 && off_v % 32 == 0 && off_p % 32 == 0 && off_s % 32 == 0 && off_o % 32 == 0,
              "dhp %d: sub-array not 32-byte aligned", dhp);
        CHECK((16 * ldh * 2) % 32 == 0 && (16 * ldp * 2) % 32 == 0 && (16 * lds * 4) % 32 == 0 && (16 * ldo * 4) % 32 == 0,
              "dhp %d: warp row tile not 32-byte aligned", dhp);
        CHECK(end == cu_att_smem_bytes(dhp), "dhp %d: smem %lld vs %lld", dhp, (long long)end, (long long)cu_att_smem_bytes(dhp));
        CHECK(end <= 100 * 1024, "dhp %d: %lld bytes of shared memory", dhp, (long long)end);
    }
    CHECK(cu_att_dh_pad(0) == 0 && cu_att_dh_pad(161) == 0 && cu_att_dh_pad(512) == 0, "large heads take the f32 kernel");
}

TEST(cuda_shared_im2col_chunks) {
    /* B, C, H, W, O, k, stride, pad */
    static const int cases[][8] = {{2, 4, 9, 7, 5, 3, 1, 1}, {1, 3, 8, 8, 6, 3, 2, 1}, {2, 8, 5, 5, 3, 1, 1, 0},
                                   {1, 5, 10, 6, 4, 3, 2, 0}, {1, 2, 3, 3, 2, 3, 1, 1}, {1, 6, 11, 13, 3, 1, 2, 0}};
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        int B = cases[t][0], C = cases[t][1], H = cases[t][2], W = cases[t][3], O = cases[t][4], k = cases[t][5],
            s = cases[t][6], p = cases[t][7];
        int Ho = (H + 2 * p - k) / s + 1, Wo = (W + 2 * p - k) / s + 1;
        int64_t P = (int64_t)Ho * Wo, K = (int64_t)C * k * k;
        float *x = xmalloc((size_t)B * C * H * W * 4), *w = xmalloc((size_t)O * K * 4), *bias = xmalloc((size_t)O * 4);
        float *ref = xmalloc((size_t)B * O * P * 4), *got = xmalloc((size_t)B * O * P * 4);
        fill(x, (int64_t)B * C * H * W, 21 + t, -1, 1), fill(w, O * K, 22 + t, -1, 1), fill(bias, O, 23 + t, -1, 1);
        sdc_status st = op_conv2d(test_cx(), x, B, C, H, W, w, bias, O, k, s, p, ref);
        /* chunks of a few pixels, so several chunks and a short last one */
        int64_t np = cu_conv_chunk_pixels(K, P, K * 7);
        float *col = xmalloc((size_t)(K * np) * 4);
        for (int b = 0; b < B; b++)
            for (int64_t p0 = 0; p0 < P; p0 += np) {
                int64_t n = P - p0 < np ? P - p0 : np;
                for (int64_t r = 0; r < K; r++)
                    for (int64_t pp = 0; pp < n; pp++) {
                        int64_t src = cu_im2col_src(r, p0 + pp, H, W, Wo, k, s, p);
                        col[r * n + pp] = src < 0 ? 0.0f : x[(int64_t)b * C * H * W + src];
                    }
                for (int o = 0; o < O; o++)
                    for (int64_t pp = 0; pp < n; pp++) {
                        double acc = bias[o];
                        for (int64_t r = 0; r < K; r++) acc += (double)w[o * K + r] * col[r * n + pp];
                        got[((int64_t)b * O + o) * P + p0 + pp] = (float)acc;
                    }
            }
        double e = scaled_err(got, ref, (int64_t)B * O * P);
        free(x), free(w), free(bias), free(ref), free(got), free(col);
        CHECK(st == SDC_OK, "op_conv2d: %s", sdc_last_error());
        if (verbose()) printf("    im2col case %zu (k=%d s=%d p=%d, %lld px/chunk): err %.2e\n", t, k, s, p, (long long)np, e);
        CHECK(e < 1e-5, "case %zu: chunked im2col conv differs from op_conv2d by %.3g", t, e);
    }
    CHECK(cu_conv_chunk_pixels(100, 50, 1 << 20) == 50, "whole image in one chunk");
    CHECK(cu_conv_chunk_pixels(11520, 16384, (int64_t)32 << 20) % 64 == 0, "chunk a multiple of 64 pixels");
    CHECK(cu_conv_chunk_pixels(1 << 20, 10, 5) == 1, "at least one pixel");
}

TEST(cuda_shared_index_maps) {
    static const int sz[][4] = {{4, 5, 8, 10}, {5, 7, 11, 13}, {6, 6, 4, 3}, {3, 3, 3, 3}};
    for (int t = 0; t < 4; t++) {
        int H = sz[t][0], W = sz[t][1], Ho = sz[t][2], Wo = sz[t][3];
        float *x = xmalloc((size_t)2 * H * W * 4), *y = xmalloc((size_t)2 * Ho * Wo * 4);
        fill(x, 2 * H * W, 31 + t, -1, 1);
        op_upsample_nearest(test_cx(), x, y, 2, H, W, Ho, Wo);
        int bad = 0;
        for (int p = 0; p < 2; p++)
            for (int r = 0; r < Ho; r++)
                for (int c = 0; c < Wo; c++)
                    bad += y[(p * Ho + r) * Wo + c] != x[(p * H + cu_nearest_src(r, H, Ho)) * W + cu_nearest_src(c, W, Wo)];
        free(x), free(y);
        CHECK(!bad, "nearest %dx%d -> %dx%d: %d pixels differ", H, W, Ho, Wo, bad);
    }
    float ts[3] = {0, 1, 999};
    float ref[3 * 320];
    op_timestep_embedding(test_cx(), ts, 3, 320, 1, 0.0f, ref);
    for (int n = 0; n < 3; n++)
        for (int i = 0; i < 160; i++) {
            float a = cu_timestep_angle(ts[n], i, 160, 0.0f);
            CHECK(ref[n * 320 + i] == cosf(a) && ref[n * 320 + 160 + i] == sinf(a), "timestep %g freq %d", ts[n], i);
        }
}

/* ======== device tests ======== */

#ifdef SDC_HAVE_CUDA

static int g_up = -1;
static char g_why[512];

static int cuda_up(void) {
    if (g_up < 0) {
        g_up = cu_init(0) == SDC_OK;
        if (!g_up) snprintf(g_why, sizeof g_why, "%s", sdc_last_error());
    }
    return g_up;
}

/* every device buffer of a test, freed at its start and end */
static void *g_dev[256];
static int g_ndev;
static void dev_free_all(void) {
    for (int i = 0; i < g_ndev; i++) cu_free(g_dev[i]);
    g_ndev = 0;
}
static void *dalloc(size_t bytes) {
    void *p = NULL;
    if (g_ndev == 256 || cu_malloc(&p, bytes)) return NULL;
    g_dev[g_ndev++] = p;
    return p;
}

/* h[n] to the device in dtype dt; h is rounded in place to what the device holds */
static void *up(float *h, int64_t n, cu_dtype dt) {
    float *f = dalloc((size_t)n * 4);
    void *d = dt == CU_F32 ? (void *)f : dalloc((size_t)n * cu_dtype_size(dt));
    if (!f || !d || cu_upload(f, h, (size_t)n * 4)) return NULL;
    if (dt != CU_F32 && (cu_convert(d, dt, f, CU_F32, n) || cu_convert(f, CU_F32, d, dt, n) || cu_download(h, f, (size_t)n * 4)))
        return NULL;
    return d;
}

static sdc_status down(float *h, const void *d, int64_t n, cu_dtype dt) {
    if (dt == CU_F32) return cu_download(h, d, (size_t)n * 4);
    float *f = dalloc((size_t)n * 4);
    if (!f) return SDC_ERR_NOMEM;
    SDC_TRY(cu_convert(f, CU_F32, d, dt, n));
    return cu_download(h, f, (size_t)n * 4);
}

static void *dzeros(int64_t n, cu_dtype dt) {
    void *d = dalloc((size_t)n * cu_dtype_size(dt));
    if (d && cu_memset0(d, (size_t)n * cu_dtype_size(dt))) return NULL;
    return d;
}

/* Tolerance relative to the output's scale: the output's own rounding plus
 * a few roundings of intermediates (inputs are already rounded). */
static double tol_for(cu_dtype dt, double f32_tol) {
    return dt == CU_F32 ? f32_tol : dt == CU_F16 ? 2e-3 : 1.6e-2;
}

static const cu_dtype DTS[3] = {CU_F32, CU_F16, CU_BF16};

#define REPORT(what, dt, e, tol)                                                                   \
    do {                                                                                           \
        if (verbose()) printf("    %-44s %-4s err %.2e  tol %.1e\n", what, cu_dtype_name(dt), e, tol); \
    } while (0)

static void dev_runtime(void) {
    CHECK(cu_device_name()[0], "device name empty");
    if (verbose()) printf("    device: %s\n", cu_device_name());
    float h[1000], g[1000];
    fill(h, 1000, 1, -5, 5);
    float *d = dalloc(sizeof h), *d2 = dalloc(sizeof h);
    CHECK(d && d2, "cu_malloc: %s", sdc_last_error());
    CHECK_OK(cu_upload(d, h, sizeof h));
    CHECK_OK(cu_copy(d2, d, sizeof h));
    CHECK_OK(cu_download(g, d2, sizeof g));
    CHECK(!memcmp(h, g, sizeof h), "upload/copy/download round trip changed the data");
    CHECK_OK(cu_memset0(d2, 40));
    CHECK_OK(cu_download(g, d2, sizeof g));
    CHECK(g[9] == 0 && g[10] == h[10], "cu_memset0 wrote the wrong range");
    CHECK_OK(cu_sync());
    CHECK(cu_init(0) == SDC_OK, "a second cu_init must succeed");
}

static uint16_t bf16_rne(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

static void dev_convert(void) {
    enum { N = 4099 };
    float *h = xmalloc(N * 4), *back = xmalloc(N * 4);
    uint16_t *bits = xmalloc(N * 2);
    fill(h, N, 2, -70000, 70000);
    for (int i = 0; i < 200; i++) h[i] *= 1e-9f; /* f16 subnormals and underflow */
    h[200] = INFINITY, h[201] = -INFINITY, h[202] = 65504.0f, h[203] = 65520.0f, h[204] = 1e-8f, h[205] = -0.0f;
    float *d = dalloc(N * 4), *d2 = dalloc(N * 4);
    uint16_t *dh = dalloc(N * 2);
    int bad = 0;
    if (d && d2 && dh && !cu_upload(d, h, N * 4)) {
        /* bf16: bit-exact round to nearest even */
        if (!cu_convert(dh, CU_BF16, d, CU_F32, N) && !cu_download(bits, dh, N * 2))
            for (int i = 0; i < N; i++) bad += bits[i] != bf16_rne(h[i]);
        CHECK(!bad, "f32 -> bf16: %d of %d differ from round-to-nearest-even", bad, N);
#ifdef __FLT16_MAX__
        if (!cu_convert(dh, CU_F16, d, CU_F32, N) && !cu_download(bits, dh, N * 2))
            for (int i = 0; i < N; i++) {
                _Float16 r = (_Float16)h[i];
                uint16_t rb;
                memcpy(&rb, &r, 2);
                bad += bits[i] != rb;
            }
        CHECK(!bad, "f32 -> f16: %d of %d differ from the compiler's _Float16 rounding", bad, N);
#endif
        /* f16 -> bf16 -> f32 and back: chains through every kernel pair */
        if (!cu_convert(dh, CU_F16, d, CU_F32, N) && !cu_convert(d2, CU_F32, dh, CU_F16, N) &&
            !cu_download(back, d2, N * 4))
            for (int i = 0; i < N; i++)
                bad += !(fabsf(back[i] - h[i]) <= 1e-3f * fabsf(h[i]) + 1e-7f || (fabsf(h[i]) > 65504 && isinf(back[i])));
        CHECK(!bad, "f32 -> f16 -> f32: %d of %d too far", bad, N);
    }
    free(h), free(back), free(bits);
    CHECK(d && d2 && dh, "allocation: %s", sdc_last_error());
}

static void dev_linear(void) {
    /* M, K, N, bias */
    static const int cases[][4] = {{1, 1, 1, 1}, {5, 3, 7, 0}, {77, 768, 320, 1}, {130, 320, 1280, 1}, {33, 40, 17, 1}};
    for (int di = 0; di < 3; di++)
        for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
            cu_dtype dt = DTS[di];
            int M = cases[t][0], K = cases[t][1], N = cases[t][2], hb = cases[t][3];
            float *x = xmalloc((size_t)M * K * 4), *w = xmalloc((size_t)N * K * 4), *b = xmalloc((size_t)N * 4);
            float *ref = xmalloc((size_t)M * N * 4), *got = xmalloc((size_t)M * N * 4);
            fill(x, (int64_t)M * K, 3 + t, -1, 1), fill(w, (int64_t)N * K, 4 + t, -0.2f, 0.2f), fill(b, N, 5, -1, 1);
            void *dx = up(x, (int64_t)M * K, dt), *dw = up(w, (int64_t)N * K, dt), *db = up(b, N, dt);
            void *dy = dzeros((int64_t)M * N, dt);
            sdc_status st = dx && dw && db && dy ? cu_linear(dx, dt, M, K, dw, hb ? db : NULL, dt, N, dy) : SDC_ERR_NOMEM;
            if (!st) st = down(got, dy, (int64_t)M * N, dt);
            op_linear(test_cx(), x, M, K, w, hb ? b : NULL, N, ref);
            double e = scaled_err(got, ref, (int64_t)M * N), tol = tol_for(dt, 1e-4);
            free(x), free(w), free(b), free(ref), free(got);
            CHECK(st == SDC_OK, "cu_linear %s M=%d K=%d N=%d: %s", cu_dtype_name(dt), M, K, N, sdc_last_error());
            char what[96];
            snprintf(what, sizeof what, "linear M=%d K=%d N=%d bias=%d", M, K, N, hb);
            REPORT(what, dt, e, tol);
            CHECK(e < tol, "%s %s: err %.3g", what, cu_dtype_name(dt), e);
            dev_free_all();
        }
    /* f32 weights with f16 activations (converted on the fly), x one element
     * past an aligned address (cuBLASLt must not assume 256-byte alignment) */
    int M = 9, K = 24, N = 40;
    float *x = xmalloc((size_t)(M * K + 1) * 4), *w = xmalloc((size_t)N * K * 4), *b = xmalloc((size_t)N * 4);
    float *ref = xmalloc((size_t)M * N * 4), *got = xmalloc((size_t)M * N * 4);
    fill(x, M * K + 1, 6, -1, 1), fill(w, N * K, 7, -0.3f, 0.3f), fill(b, N, 8, -1, 1);
    void *dx = up(x, M * K + 1, CU_F16), *dw = up(w, N * K, CU_F32), *db = up(b, N, CU_F32), *dy = dzeros(M * N, CU_F16);
    sdc_status st = dx && dw && db && dy ? cu_linear((char *)dx + 2, CU_F16, M, K, dw, db, CU_F32, N, dy) : SDC_ERR_NOMEM;
    if (!st) st = down(got, dy, M * N, CU_F16);
    op_linear(test_cx(), x + 1, M, K, w, b, N, ref);
    double e = scaled_err(got, ref, M * N);
    free(x), free(w), free(b), free(ref), free(got);
    CHECK(st == SDC_OK, "cu_linear mixed dtypes: %s", sdc_last_error());
    REPORT("linear f32 weights, offset x", CU_F16, e, 2e-3);
    CHECK(e < 2e-3, "linear with f32 weights on f16 activations: err %.3g", e);
    dev_free_all();
    /* what the backend runs: 16-bit operands, float32 bias and output from the
     * epilogue (cu_linear_ex), and the same for a 1x1 convolution */
    for (int di = 1; di < 3; di++) {
        cu_dtype dt = DTS[di];
        enum { LM = 77, LK = 320, LN = 640 };
        float *lx = xmalloc(LM * LK * 4), *lw = xmalloc(LN * LK * 4), *lb = xmalloc(LN * 4);
        float *lref = xmalloc(LM * LN * 4), *lgot = xmalloc(LM * LN * 4);
        fill(lx, LM * LK, 31, -1, 1), fill(lw, LN * LK, 32, -0.1f, 0.1f), fill(lb, LN, 33, -1, 1);
        void *ex = up(lx, LM * LK, dt), *ew = up(lw, LN * LK, dt), *eb = up(lb, LN, CU_F32), *ey = dzeros(LM * LN, CU_F32);
        sdc_status es = ex && ew && eb && ey ? cu_linear_ex(ex, dt, LM, LK, ew, dt, eb, CU_F32, LN, ey, CU_F32)
                                             : SDC_ERR_NOMEM;
        if (!es) es = down(lgot, ey, LM * LN, CU_F32);
        op_linear(test_cx(), lx, LM, LK, lw, lb, LN, lref);
        double le = scaled_err(lgot, lref, LM * LN), lt = tol_for(dt, 1e-4);
        CHECK(es == SDC_OK, "cu_linear_ex %s -> f32: %s", cu_dtype_name(dt), sdc_last_error());
        REPORT("linear -> f32 out, f32 bias", dt, le, lt);
        CHECK(le < lt, "cu_linear_ex %s -> f32: err %.3g", cu_dtype_name(dt), le);
        /* 1x1 convolution [2, 320, 8x8] -> [2, 640, 8x8] written as float32 */
        float *cx = xmalloc(2 * LK * 64 * 4), *cref = xmalloc(2 * LN * 64 * 4), *cgot = xmalloc(2 * LN * 64 * 4);
        fill(cx, 2 * LK * 64, 34, -1, 1);
        void *dcx = up(cx, 2 * LK * 64, dt), *dcy = dzeros(2 * LN * 64, CU_F32);
        es = dcx && dcy ? cu_conv2d_ex(dcx, dt, 2, LK, 8, 8, ew, dt, eb, CU_F32, LN, 1, 1, 0, dcy, CU_F32) : SDC_ERR_NOMEM;
        if (!es) es = down(cgot, dcy, 2 * LN * 64, CU_F32);
        op_conv2d(test_cx(), cx, 2, LK, 8, 8, lw, lb, LN, 1, 1, 0, cref);
        double ce = scaled_err(cgot, cref, 2 * LN * 64);
        CHECK(es == SDC_OK, "cu_conv2d_ex 1x1 %s -> f32: %s", cu_dtype_name(dt), sdc_last_error());
        REPORT("conv 1x1 -> f32 out, f32 bias", dt, ce, lt);
        CHECK(ce < lt, "cu_conv2d_ex 1x1 %s -> f32: err %.3g", cu_dtype_name(dt), ce);
        /* other convolutions give their result in the operand type only */
        es = cu_conv2d_ex(dcx, dt, 1, 8, 8, 8, ew, dt, NULL, dt, 8, 3, 1, 1, dcy, CU_F32);
        CHECK(es == SDC_ERR_ARG, "a 3x3 convolution accepted a float32 output from %s operands", cu_dtype_name(dt));
        /* no cuBLAS GEMM turns f16 operands into bf16 or back */
        cu_dtype other = dt == CU_F16 ? CU_BF16 : CU_F16;
        es = cu_linear_ex(ex, dt, LM, LK, ew, dt, NULL, dt, LN, ey, other);
        CHECK(es == SDC_ERR_ARG, "cu_linear_ex accepted %s operands with a %s output", cu_dtype_name(dt),
              cu_dtype_name(other));
        es = cu_conv2d_ex(dcx, dt, 2, LK, 8, 8, ew, dt, NULL, dt, LN, 1, 1, 0, dcy, other);
        CHECK(es == SDC_ERR_ARG, "cu_conv2d_ex accepted %s operands with a %s output", cu_dtype_name(dt),
              cu_dtype_name(other));
        free(lx), free(lw), free(lb), free(lref), free(lgot), free(cx), free(cref), free(cgot);
        dev_free_all();
    }
}

static void dev_conv2d(void) {
    /* B, C, H, W, O, k, stride, pad: odd sizes, both strides, 1x1, and one UNet-like block */
    static const int cases[][8] = {{2, 4, 9, 7, 5, 3, 1, 1}, {1, 3, 8, 8, 6, 3, 2, 1}, {2, 8, 5, 5, 3, 1, 1, 0},
                                   {1, 5, 10, 6, 4, 3, 2, 0}, {1, 64, 32, 32, 64, 3, 1, 1}, {2, 4, 16, 16, 320, 3, 1, 1}};
    /* both paths: cuDNN where it loads (else this pass is the fallback again), im2col + cuBLAS;
     * float32 exact here (TF32 off), the TF32 pass below */
    int tf32_was = cu_conv_allow_tf32(0);
    for (int path = 1; path >= 0; path--)
    for (int di = 0; di < 3; di++)
        for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
            cu_dtype dt = DTS[di];
            cu_conv_use_cudnn(path);
            int B = cases[t][0], C = cases[t][1], H = cases[t][2], W = cases[t][3], O = cases[t][4], k = cases[t][5],
                s = cases[t][6], p = cases[t][7];
            int Ho = (H + 2 * p - k) / s + 1, Wo = (W + 2 * p - k) / s + 1;
            int64_t nx = (int64_t)B * C * H * W, nw = (int64_t)O * C * k * k, ny = (int64_t)B * O * Ho * Wo;
            float *x = xmalloc((size_t)nx * 4), *w = xmalloc((size_t)nw * 4), *b = xmalloc((size_t)O * 4);
            float *ref = xmalloc((size_t)ny * 4), *got = xmalloc((size_t)ny * 4);
            fill(x, nx, 13 + t, -1, 1), fill(w, nw, 14 + t, -0.1f, 0.1f), fill(b, O, 15, -1, 1);
            void *dx = up(x, nx, dt), *dw = up(w, nw, dt), *db = up(b, O, dt), *dy = dzeros(ny, dt);
            sdc_status st = dx && dw && db && dy ? cu_conv2d(dx, dt, B, C, H, W, dw, db, dt, O, k, s, p, dy) : SDC_ERR_NOMEM;
            if (!st) st = down(got, dy, ny, dt);
            sdc_status rs = op_conv2d(test_cx(), x, B, C, H, W, w, b, O, k, s, p, ref);
            double e = scaled_err(got, ref, ny), tol = tol_for(dt, 1e-4);
            free(x), free(w), free(b), free(ref), free(got);
            CHECK(st == SDC_OK && rs == SDC_OK, "cu_conv2d %s case %zu: %s", cu_dtype_name(dt), t, sdc_last_error());
            char what[96];
            snprintf(what, sizeof what, "conv%s B=%d C=%d %dx%d O=%d k=%d s=%d p=%d", path ? "" : " (im2col)", B, C, H,
                     W, O, k, s, p);
            REPORT(what, dt, e, tol);
            CHECK(e < tol, "%s %s: err %.3g", what, cu_dtype_name(dt), e);
            dev_free_all();
        }
    /* float32 operands on TF32 tensor cores (the default): 10-bit mantissas, like f16's */
    cu_conv_allow_tf32(1);
    for (int path = 1; path >= 0; path--) {
        cu_conv_use_cudnn(path);
        enum { B = 1, C = 64, H = 24, W = 24, O = 32 };
        int64_t nx = (int64_t)B * C * H * W, nw = (int64_t)O * C * 9, ny = (int64_t)B * O * H * W;
        float *x = xmalloc((size_t)nx * 4), *w = xmalloc((size_t)nw * 4), *ref = xmalloc((size_t)ny * 4),
              *got = xmalloc((size_t)ny * 4);
        fill(x, nx, 41, -1, 1), fill(w, nw, 42, -0.1f, 0.1f);
        void *dx = up(x, nx, CU_F32), *dw = up(w, nw, CU_F32), *dy = dzeros(ny, CU_F32);
        sdc_status st = dx && dw && dy ? cu_conv2d(dx, CU_F32, B, C, H, W, dw, NULL, CU_F32, O, 3, 1, 1, dy) : SDC_ERR_NOMEM;
        if (!st) st = down(got, dy, ny, CU_F32);
        op_conv2d(test_cx(), x, B, C, H, W, w, NULL, O, 3, 1, 1, ref);
        double e = scaled_err(got, ref, ny), tol = tol_for(CU_F16, 1e-4);
        free(x), free(w), free(ref), free(got);
        CHECK(st == SDC_OK, "TF32 conv: %s", sdc_last_error());
        REPORT(path ? "conv 3x3 f32 on TF32" : "conv 3x3 f32 on TF32 (im2col)", CU_F32, e, tol);
        CHECK(e < tol, "TF32 conv: err %.3g", e);
        dev_free_all();
    }
    cu_conv_allow_tf32(tf32_was);
    cu_conv_use_cudnn(1);
    if (verbose()) printf("    convolutions: %s\n", cu_cudnn_status());
}

static void dev_norms(void) {
    /* B, C, HW, G, silu, in_place, offset (a large mean tests cancellation) */
    static const int gn[][7] = {{2, 64, 81, 32, 0, 0, 0}, {2, 64, 81, 32, 1, 1, 0}, {1, 32, 128 * 128, 32, 1, 0, 5},
                                {1, 6, 7, 3, 0, 0, 100}};
    for (int di = 0; di < 3; di++)
        for (int t = 0; t < 4; t++) {
            cu_dtype dt = DTS[di];
            int B = gn[t][0], C = gn[t][1], G = gn[t][3], silu = gn[t][4], inpl = gn[t][5];
            int64_t HW = gn[t][2], n = (int64_t)B * C * HW;
            float off = (float)gn[t][6];
            float *x = xmalloc((size_t)n * 4), *ga = xmalloc((size_t)C * 4), *be = xmalloc((size_t)C * 4);
            float *ref = xmalloc((size_t)n * 4), *got = xmalloc((size_t)n * 4);
            fill(x, n, 40 + t, off - 1, off + 1), fill(ga, C, 41, 0.5f, 1.5f), fill(be, C, 42, -0.5f, 0.5f);
            void *dx = up(x, n, dt), *dg = up(ga, C, dt), *db = up(be, C, dt);
            void *dy = inpl ? dx : dzeros(n, dt);
            sdc_status st = dx && dg && db && dy ? cu_group_norm(dx, dy, dt, B, C, HW, G, 1e-6f, dg, db, dt, silu) : SDC_ERR_NOMEM;
            if (!st) st = down(got, dy, n, dt);
            op_group_norm(test_cx(), x, ref, B, C, HW, G, 1e-6f, ga, be, silu);
            /* f32 of a group normalised around a mean of 100: x's own rounding is 1e-5 relative to 100 */
            double e = scaled_err(got, ref, n), tol = tol_for(dt, off > 10 ? 1e-3 : 2e-5);
            free(x), free(ga), free(be), free(ref), free(got);
            CHECK(st == SDC_OK, "cu_group_norm: %s", sdc_last_error());
            char what[96];
            snprintf(what, sizeof what, "group_norm B=%d C=%d HW=%lld G=%d silu=%d", B, C, (long long)HW, G, silu);
            REPORT(what, dt, e, tol);
            CHECK(e < tol, "%s %s: err %.3g", what, cu_dtype_name(dt), e);
            dev_free_all();
        }
    static const int ln[][2] = {{7, 320}, {3, 1280}, {5, 33}, {1, 2048}};
    for (int di = 0; di < 3; di++)
        for (int t = 0; t < 4; t++) {
            cu_dtype dt = DTS[di];
            int R = ln[t][0], D = ln[t][1];
            int64_t n = (int64_t)R * D;
            float *x = xmalloc((size_t)n * 4), *ga = xmalloc((size_t)D * 4), *be = xmalloc((size_t)D * 4);
            float *ref = xmalloc((size_t)n * 4), *got = xmalloc((size_t)n * 4);
            fill(x, n, 50 + t, -3, 2), fill(ga, D, 51, 0.5f, 1.5f), fill(be, D, 52, -0.5f, 0.5f);
            void *dx = up(x, n, dt), *dg = up(ga, D, dt), *db = up(be, D, dt), *dy = dzeros(n, dt);
            sdc_status st = dx && dg && db && dy ? cu_layer_norm(dx, dy, dt, R, D, 1e-5f, dg, db, dt) : SDC_ERR_NOMEM;
            if (!st) st = down(got, dy, n, dt);
            op_layer_norm(test_cx(), x, ref, R, D, 1e-5f, ga, be);
            double e = scaled_err(got, ref, n), tol = tol_for(dt, 2e-5);
            free(x), free(ga), free(be), free(ref), free(got);
            CHECK(st == SDC_OK, "cu_layer_norm: %s", sdc_last_error());
            char what[96];
            snprintf(what, sizeof what, "layer_norm rows=%d D=%d", R, D);
            REPORT(what, dt, e, tol);
            CHECK(e < tol, "%s %s: err %.3g", what, cu_dtype_name(dt), e);
            dev_free_all();
        }
}

static void dev_elementwise(void) {
    enum { N = 5 * 2 * 37 };
    for (int di = 0; di < 3; di++) {
        cu_dtype dt = DTS[di];
        double tol = tol_for(dt, 2e-6);
        float x[N], y[N], ref[N], got[N];
        static const char *const act_names[] = {"silu", "gelu", "quick_gelu", "relu", "tanh_clamp"};
        for (int a = 0; a < 5; a++) {
            fill(x, N, 60 + a, -6, 6);
            void *d = up(x, N, dt);
            memcpy(ref, x, sizeof x);
            sdc_status st = !d ? SDC_ERR_NOMEM : a == 0 ? cu_silu(d, dt, N) : a == 1 ? cu_gelu(d, dt, N)
                                               : a == 2 ? cu_quick_gelu(d, dt, N) : a == 3 ? cu_relu(d, dt, N)
                                                        : cu_tanh_clamp(d, 3.0f, dt, N);
            if (a == 0) op_silu(test_cx(), ref, N);
            else if (a == 1) op_gelu(test_cx(), ref, N);
            else if (a == 2) op_quick_gelu(test_cx(), ref, N);
            else if (a == 3) op_relu(test_cx(), ref, N);
            else op_tanh_clamp(test_cx(), ref, 3.0f, N);
            if (!st) st = down(got, d, N, dt);
            CHECK(st == SDC_OK, "activation %d: %s", a, sdc_last_error());
            double e = scaled_err(got, ref, N);
            REPORT(act_names[a], dt, e, tol);
            CHECK(e < tol, "activation %d %s: err %.3g", a, cu_dtype_name(dt), e);
        }
        /* GEGLU over rows of 2 x 37 */
        fill(x, N, 63, -4, 4);
        void *dx = up(x, N, dt), *dy = dzeros(N / 2, dt);
        CHECK(dx && dy, "alloc");
        CHECK_OK(cu_geglu(dx, dy, dt, 5, 37));
        op_geglu(test_cx(), x, ref, 5, 37);
        CHECK_OK(down(got, dy, N / 2, dt));
        double e = scaled_err(got, ref, N / 2);
        REPORT("geglu rows=5 D=37", dt, e, tol);
        CHECK(e < tol, "geglu %s: err %.3g", cu_dtype_name(dt), e);
        /* add, scale, channel bias over [2, 5, 37] */
        fill(x, N, 64, -2, 2), fill(y, N, 65, -2, 2);
        void *da = up(x, N, dt), *db = up(y, N, dt);
        float v[10];
        fill(v, 10, 66, -1, 1);
        void *dv = up(v, 10, dt);
        CHECK(da && db && dv, "alloc");
        CHECK_OK(cu_add(da, db, dt, N));
        CHECK_OK(cu_scale(da, 0.37f, dt, N));
        CHECK_OK(cu_add_channel_bias(da, dv, dt, 2, 5, 37));
        memcpy(ref, x, sizeof x);
        op_add(test_cx(), ref, y, N);
        op_scale(test_cx(), ref, 0.37f, N);
        op_add_channel_bias(test_cx(), ref, v, 2, 5, 37);
        CHECK_OK(down(got, da, N, dt));
        /* f16/bf16 round after each of the three ops */
        e = scaled_err(got, ref, N);
        REPORT("add + scale + channel bias", dt, e, 3 * tol);
        CHECK(e < 3 * tol, "add/scale/bias %s: err %.3g", cu_dtype_name(dt), e);
        dev_free_all();
    }
}

static void dev_layout(void) {
    for (int di = 0; di < 3; di++) {
        cu_dtype dt = DTS[di];
        /* nearest: exact copies */
        static const int sz[][4] = {{4, 5, 8, 10}, {5, 7, 11, 13}, {6, 6, 4, 3}};
        for (int t = 0; t < 3; t++) {
            int H = sz[t][0], W = sz[t][1], Ho = sz[t][2], Wo = sz[t][3];
            float x[2 * 6 * 7], ref[2 * 11 * 13], got[2 * 11 * 13];
            fill(x, 2 * H * W, 70 + t, -1, 1);
            void *dx = up(x, 2 * H * W, dt), *dy = dzeros(2 * Ho * Wo, dt);
            CHECK(dx && dy, "alloc");
            CHECK_OK(cu_upsample_nearest(dx, dy, dt, 2, H, W, Ho, Wo));
            CHECK_OK(down(got, dy, 2 * Ho * Wo, dt));
            op_upsample_nearest(test_cx(), x, ref, 2, H, W, Ho, Wo);
            CHECK(!memcmp(got, ref, (size_t)2 * Ho * Wo * 4), "upsample %dx%d -> %dx%d %s differs", H, W, Ho, Wo, cu_dtype_name(dt));
        }
        /* transposes with sizes off the 32-tile grid: [3, 45, 37] */
        enum { B = 3, C = 45, HW = 37, N = B * C * HW };
        float *x = xmalloc(N * 4), *ref = xmalloc(N * 4), *got = xmalloc(N * 4);
        fill(x, N, 73, -1, 1);
        void *dx = up(x, N, dt), *dy = dzeros(N, dt), *dz = dzeros(N, dt);
        int ok = dx && dy && dz && !cu_nchw_to_nhwc(dx, dy, dt, B, C, HW) && !down(got, dy, N, dt);
        op_nchw_to_nhwc(test_cx(), x, ref, B, C, HW);
        int same1 = ok && !memcmp(got, ref, N * 4);
        ok = ok && !cu_nhwc_to_nchw(dy, dz, dt, B, C, HW) && !down(got, dz, N, dt);
        int same2 = ok && !memcmp(got, x, N * 4);
        free(x), free(ref), free(got);
        CHECK(ok, "transpose: %s", sdc_last_error());
        CHECK(same1 && same2, "nchw<->nhwc %s: nhwc %s, round trip %s", cu_dtype_name(dt), same1 ? "ok" : "differs",
              same2 ? "ok" : "differs");
        /* timestep embedding: diffusers' layouts, an odd dim */
        static const int te[][3] = {{320, 1, 0}, {256, 0, 1}, {7, 1, 0}};
        for (int t = 0; t < 3; t++) {
            int dim = te[t][0];
            float ts[3] = {0, 1, 999}, tref[3 * 320], tgot[3 * 320];
            float *dt_ = dalloc(sizeof ts);
            void *dout = dzeros(3 * dim, dt);
            CHECK(dt_ && dout, "alloc");
            CHECK_OK(cu_upload(dt_, ts, sizeof ts));
            CHECK_OK(cu_timestep_embedding(dt_, 3, dim, te[t][1], (float)te[t][2], dout, dt));
            CHECK_OK(down(tgot, dout, 3 * dim, dt));
            op_timestep_embedding(test_cx(), ts, 3, dim, te[t][1], (float)te[t][2], tref);
            /* sinf/cosf of angles up to 999 rad: an ulp of the angle is 6e-5 */
            double e = scaled_err(tgot, tref, 3 * dim), tol = tol_for(dt, 2e-4);
            REPORT("timestep_embedding", dt, e, tol);
            CHECK(e < tol, "timestep embedding dim=%d %s: err %.3g", dim, cu_dtype_name(dt), e);
        }
        dev_free_all();
    }
}

/* the copies the model code uses instead of touching activations
 * (cuda_layout.cu), exact against the CPU ops in every dtype */
static void dev_model_layout(void) {
    for (int di = 0; di < 3; di++) {
        cu_dtype dt = DTS[di];
        enum { R = 3, LD = 21, COLS = 13, BC = 4, H = 5, W = 7, HO = 6, WO = 9, ROWS = 11 };
        float x[R * LD], ref[R * LD], got[R * LD], pin[BC * H * W], pref[BC * HO * WO], pgot[BC * HO * WO];
        fill(x, R * LD, 90, -2, 2);
        /* copy_2d of a 3 x 13 block between row strides 21 */
        void *dx = up(x, R * LD, dt), *dy = dzeros(R * LD, dt);
        CHECK(dx && dy, "alloc");
        CHECK_OK(cu_copy_2d(dy, LD, dx, LD, R, COLS, dt));
        CHECK_OK(down(got, dy, R * LD, dt));
        memset(ref, 0, sizeof ref);
        op_copy_2d(test_cx(), ref, LD, x, LD, R, COLS);
        CHECK(!memcmp(got, ref, sizeof ref), "copy_2d %s differs", cu_dtype_name(dt));
        /* affine (one rounding per operation) */
        if (dt == CU_F32) {
            CHECK_OK(cu_affine(dy, dx, 0.1f, 0.3f, dt, R * LD));
            CHECK_OK(down(got, dy, R * LD, dt));
            op_affine(test_cx(), ref, x, 0.1f, 0.3f, R * LD);
            CHECK(!memcmp(got, ref, sizeof ref), "affine differs from the CPU's");
        }
        /* pad_zero */
        fill(pin, BC * H * W, 91, -1, 1);
        void *dp = up(pin, BC * H * W, dt), *dq = dzeros(BC * HO * WO, dt);
        CHECK(dp && dq, "alloc");
        CHECK_OK(cu_pad_zero(dp, dq, dt, BC, H, W, HO, WO));
        CHECK_OK(down(pgot, dq, BC * HO * WO, dt));
        op_pad_zero(test_cx(), pin, pref, BC, H, W, HO, WO);
        CHECK(!memcmp(pgot, pref, sizeof pref), "pad_zero %s differs", cu_dtype_name(dt));
        /* gather_rows (host row indices, repeats allowed) and the row bias */
        float table[ROWS * COLS], gref[4 * COLS], ggot[4 * COLS], bias[COLS];
        int64_t rows[4] = {10, 0, 3, 3};
        fill(table, ROWS * COLS, 92, -1, 1);
        fill(bias, COLS, 93, -1, 1);
        void *dt_ = up(table, ROWS * COLS, dt), *dg = dzeros(4 * COLS, dt), *db = up(bias, COLS, dt);
        CHECK(dt_ && dg && db, "alloc");
        CHECK_OK(cu_gather_rows(dg, dt_, dt, COLS, rows, 4));
        CHECK_OK(down(ggot, dg, 4 * COLS, dt));
        op_gather_rows(test_cx(), gref, table, OP_F32, COLS, rows, 4);
        CHECK(!memcmp(ggot, gref, sizeof gref), "gather_rows %s differs", cu_dtype_name(dt));
        CHECK_OK(cu_add_row_bias(dg, db, dt, 4, COLS));
        CHECK_OK(down(ggot, dg, 4 * COLS, dt));
        for (int r = 0; r < 4; r++)
            for (int c = 0; c < COLS; c++) gref[r * COLS + c] += bias[c];
        double e = scaled_err(ggot, gref, 4 * COLS), tol = tol_for(dt, 1e-7);
        REPORT("add_row_bias", dt, e, tol);
        CHECK(e < tol, "add_row_bias %s: err %.3g", cu_dtype_name(dt), e);
        dev_free_all();
    }
}

static void dev_attention(void) {
    /* B, Nq, Nk, heads, dh, causal, fused (q/k/v rows of one [N, 3D] tensor) */
    static const int cases[][7] = {
        {2, 70, 70, 2, 40, 0, 0},  {1, 100, 77, 3, 64, 0, 0}, {1, 77, 77, 2, 64, 1, 1}, {1, 129, 129, 1, 80, 1, 0},
        {1, 65, 33, 2, 128, 0, 0}, {1, 50, 77, 1, 160, 0, 0}, {1, 3, 200, 1, 20, 1, 0}, {1, 70, 70, 1, 512, 0, 0},
        {1, 65, 65, 2, 128, 1, 1},
        {2, 256, 256, 5, 64, 0, 1}};
    for (int di = 0; di < 3; di++)
        for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
            cu_dtype dt = DTS[di];
            int B = cases[t][0], Nq = cases[t][1], Nk = cases[t][2], H = cases[t][3], dh = cases[t][4],
                causal = cases[t][5], fused = cases[t][6];
            if (fused && Nq != Nk) continue;
            int D = H * dh;
            int64_t q_ld = fused ? 3 * D : D, kv_ld = fused ? 3 * D : 2 * D;
            int64_t nq = fused ? (int64_t)B * Nq * 3 * D : (int64_t)B * Nq * D, nkv = fused ? 0 : (int64_t)B * Nk * 2 * D;
            float *q = xmalloc((size_t)nq * 4), *kv = xmalloc((size_t)(nkv ? nkv : 1) * 4);
            float *ref = xmalloc((size_t)B * Nq * D * 4), *got = xmalloc((size_t)B * Nq * D * 4);
            fill(q, nq, 80 + t, -2, 2);
            if (nkv) fill(kv, nkv, 81 + t, -2, 2);
            void *dq = up(q, nq, dt), *dkv = nkv ? up(kv, nkv, dt) : dq, *dout = dzeros((int64_t)B * Nq * D, dt);
            size_t es = cu_dtype_size(dt);
            const void *dk = fused ? (const char *)dq + D * es : dkv, *dv = fused ? (const char *)dq + 2 * D * es : (const char *)dkv + D * es;
            const float *hk = fused ? q + D : kv, *hv = fused ? q + 2 * D : kv + D;
            float scale = 1.0f / sqrtf((float)dh);
            sdc_status st = dq && dkv && dout ? cu_attention(dq, q_ld, dk, dv, kv_ld, dt, B, Nq, Nk, H, dh, scale, causal, dout)
                                              : SDC_ERR_NOMEM;
            if (!st) st = down(got, dout, (int64_t)B * Nq * D, dt);
            sdc_status rs = op_attention(test_cx(), q, q_ld, hk, hv, kv_ld, B, Nq, Nk, H, dh, scale, causal, ref);
            double e = scaled_err(got, ref, (int64_t)B * Nq * D), tol = tol_for(dt, 2e-5);
            free(q), free(kv), free(ref), free(got);
            CHECK(st == SDC_OK && rs == SDC_OK, "cu_attention %s case %zu: %s", cu_dtype_name(dt), t, sdc_last_error());
            char what[96];
            snprintf(what, sizeof what, "attention B=%d Nq=%d Nk=%d h=%d dh=%d%s%s", B, Nq, Nk, H, dh,
                     causal ? " causal" : "", fused ? " fused" : "");
            REPORT(what, dt, e, tol);
            CHECK(e < tol, "%s %s: err %.3g", what, cu_dtype_name(dt), e);
            dev_free_all();
        }
}

static void dev_nonfinite(void) {
    enum { N = 1000 };
    float x[N];
    fill(x, N, 90, -1, 1);
    for (int di = 0; di < 3; di++) {
        cu_dtype dt = DTS[di];
        void *d = up(x, N, dt);
        int64_t c = -1;
        CHECK(d, "alloc");
        CHECK_OK(cu_count_nonfinite(d, dt, N, &c));
        CHECK(c == 0, "%s: %lld non-finite in finite data", cu_dtype_name(dt), (long long)c);
        float y[N];
        memcpy(y, x, sizeof y);
        y[3] = NAN, y[500] = INFINITY, y[999] = -INFINITY;
        d = up(y, N, dt);
        CHECK(d, "alloc");
        CHECK_OK(cu_count_nonfinite(d, dt, N, &c));
        CHECK(c == 3, "%s: counted %lld of 3 non-finite", cu_dtype_name(dt), (long long)c);
        dev_free_all();
    }
    /* f16 overflow in a conversion is what a black VAE image comes from */
    float big[4] = {1, 70000, -1e6f, 2};
    void *d = up(big, 4, CU_F16);
    int64_t c = -1;
    CHECK(d, "alloc");
    CHECK_OK(cu_count_nonfinite(d, CU_F16, 4, &c));
    CHECK(c == 2, "f16 overflow: counted %lld of 2", (long long)c);
}

static void dev_arena_graph(void) {
    CHECK_OK(cu_arena_reset());
    long m0 = cu_arena_mallocs();
    /* a "step" needing more than the first block: spills into a second */
    void *a = NULL, *b = NULL, *c = NULL;
    CHECK_OK(cu_arena_alloc(&a, 40u << 20));
    cu_arena_mark mk = cu_arena_get_mark();
    CHECK_OK(cu_arena_alloc(&b, 40u << 20));
    CHECK_OK(cu_arena_alloc(&c, 100));
    CHECK(((uintptr_t)a | (uintptr_t)b | (uintptr_t)c) % 256 == 0, "arena alignment");
    cu_arena_release(mk);
    void *b2 = NULL;
    CHECK_OK(cu_arena_alloc(&b2, 100));
    CHECK_OK(cu_arena_reset()); /* merges into one block */
    long m1 = cu_arena_mallocs();
    for (int pass = 0; pass < 2; pass++) {
        CHECK_OK(cu_arena_alloc(&a, 40u << 20));
        CHECK_OK(cu_arena_alloc(&b, 40u << 20));
        CHECK_OK(cu_arena_alloc(&c, 100));
        CHECK_OK(cu_arena_reset());
    }
    if (verbose())
        printf("    arena: %ld cudaMalloc first pass, %ld after; %zu MiB held\n", m1 - m0, cu_arena_mallocs() - m1,
               cu_arena_capacity() >> 20);
    CHECK(cu_arena_mallocs() == m1, "a repeated pass still called cudaMalloc (%ld times)", cu_arena_mallocs() - m1);

    /* graph: y = (y + x) * 0.5, captured once, replayed twice */
    enum { N = 1000 };
    float hx[N], hy[N], got[N];
    fill(hx, N, 91, -1, 1), fill(hy, N, 92, -1, 1);
    void *dx = NULL, *dy = NULL;
    CHECK_OK(cu_arena_alloc(&dx, N * 4));
    CHECK_OK(cu_arena_alloc(&dy, N * 4));
    CHECK_OK(cu_upload(dx, hx, sizeof hx));
    CHECK_OK(cu_upload(dy, hy, sizeof hy));
    cu_graph *g = NULL;
    CHECK_OK(cu_graph_begin());
    sdc_status s1 = cu_add(dy, dx, CU_F32, N), s2 = cu_scale(dy, 0.5f, CU_F32, N);
    sdc_status s3 = cu_graph_end(&g);
    CHECK(!s1 && !s2 && !s3 && g, "capture: %s", sdc_last_error());
    sdc_status l1 = cu_graph_launch(g), l2 = cu_graph_launch(g);
    sdc_status dl = cu_download(got, dy, sizeof got);
    int bad = 0;
    for (int i = 0; i < N; i++) {
        float r = ((hy[i] + hx[i]) * 0.5f + hx[i]) * 0.5f;
        bad += fabsf(got[i] - r) > 1e-6f;
    }
    /* a spill and reset rebuild the arena: the old graph must refuse to run */
    void *big = NULL;
    sdc_status sp = cu_arena_alloc(&big, (size_t)cu_arena_capacity() + (1u << 20));
    sdc_status rr = cu_arena_reset();
    sdc_status stale = cu_graph_launch(g);
    cu_graph_free(g);
    CHECK(!l1 && !l2 && !dl, "graph launch: %s", sdc_last_error());
    CHECK(!bad, "graph replay: %d of %d wrong", bad, N);
    CHECK(!sp && !rr, "arena regrow: %s", sdc_last_error());
    CHECK(stale != SDC_OK && strstr(sdc_last_error(), "capture it again"), "stale graph ran (%s)", sdc_last_error());
    CHECK_OK(cu_arena_reset());

    /* scratch a graph captured survives being outgrown until the graph goes */
    void *sc0 = NULL, *sc1 = NULL, *sc2 = NULL;
    CHECK_OK(cu_scratch(1, 4096, &sc0));
    int retired0 = cu_scratch_retired();
    CHECK_OK(cu_graph_begin());
    sdc_status sa = cu_scratch(1, 4096, &sc1), sb = sc1 ? cu_memset0(sc1, 4096) : SDC_ERR_ARG;
    sdc_status grow = cu_scratch(1, 64u << 20, &sc2); /* refused inside a capture */
    sdc_status se = cu_graph_end(&g);
    CHECK(!sa && !sb && !se && g && sc1 == sc0, "capture with scratch: %s", sdc_last_error());
    CHECK(grow != SDC_OK, "scratch grew inside a capture");
    CHECK_OK(cu_scratch(1, 64u << 20, &sc2)); /* outgrown now: sc1 is kept for the graph */
    CHECK(sc2 != sc1 && cu_scratch_retired() == retired0 + 1, "outgrown captured scratch: %d kept",
          cu_scratch_retired() - retired0);
    CHECK_OK(cu_graph_launch(g));
    CHECK_OK(cu_sync());
    cu_graph_free(g);
    CHECK(cu_scratch_retired() == 0, "%d outgrown scratch buffers left after the last graph", cu_scratch_retired());
}

static void dev_errors(void) {
    void *d = dalloc(1 << 20);
    CHECK(d, "alloc");
    sdc_status st = cu_linear(d, CU_F16, 4, 0, d, NULL, CU_F16, 4, d);
    CHECK(st == SDC_ERR_ARG && strstr(sdc_last_error(), "cu_linear"), "K=0: %d %s", st, sdc_last_error());
    st = cu_conv2d(d, CU_F16, 1, 2, 2, 2, d, NULL, CU_F16, 2, 5, 1, 0, d);
    CHECK(st == SDC_ERR_ARG && strstr(sdc_last_error(), "cu_conv2d"), "kernel larger than input: %d %s", st, sdc_last_error());
    st = cu_group_norm(d, d, CU_F16, 1, 30, 4, 32, 1e-5f, NULL, NULL, CU_F16, 0);
    CHECK(st == SDC_ERR_ARG && strstr(sdc_last_error(), "cu_group_norm"), "C %% G != 0: %d %s", st, sdc_last_error());
    st = cu_attention(d, 10, d, d, 64, CU_F16, 1, 4, 4, 2, 64, 0.1f, 0, d);
    CHECK(st == SDC_ERR_ARG && strstr(sdc_last_error(), "cu_attention"), "q_ld < heads*dh: %d %s", st, sdc_last_error());
    st = cu_attention(d, 600, d, d, 600, CU_F32, 1, 4, 4, 1, 600, 0.1f, 0, d);
    CHECK(st == SDC_ERR_UNSUPPORTED, "dh 600: %d %s", st, sdc_last_error());
    st = cu_convert(d, (cu_dtype)7, d, CU_F32, 4);
    CHECK(st == SDC_ERR_ARG, "bad dtype: %d %s", st, sdc_last_error());
    st = cu_layer_norm(NULL, d, CU_F32, 3, 8, 1e-5f, NULL, NULL, CU_F32);
    CHECK(st == SDC_ERR_ARG, "NULL input: %d %s", st, sdc_last_error());
    int64_t c;
    st = cu_count_nonfinite(NULL, CU_F32, 5, &c);
    CHECK(st == SDC_ERR_ARG, "NULL count input: %d", st);
    CHECK_OK(cu_sync()); /* nothing was launched by the bad calls */
}

#define DEVICE_TEST(name, fn)                                                    \
    TEST(name) {                                                                 \
        if (!cuda_up()) SKIP("%s", g_why);                                       \
        dev_free_all();                                                          \
        fn();                                                                    \
        dev_free_all();                                                          \
    }

/* Runs here too: without a device cu_init must say so, and ops must refuse. */
TEST(cuda_init_without_device_reports) {
    if (cuda_up()) return;
    CHECK(!strncmp(g_why, "no CUDA device", 14) || strstr(g_why, "compute capability"), "cu_init: \"%s\"", g_why);
    CHECK(cu_init(0) != SDC_OK && !strcmp(sdc_last_error(), g_why), "second cu_init: %s", sdc_last_error());
    sdc_status st = cu_silu((void *)16, CU_F16, 4);
    CHECK(st != SDC_OK && strstr(sdc_last_error(), "not initialised"), "op before init: %s", sdc_last_error());
    CHECK(cu_device_name()[0] == 0, "device name without a device");
}

#else

#define DEVICE_TEST(name, fn) \
    TEST(name) { SKIP("built without CUDA (nvcc not found, or CUDA=0)"); }

#endif

DEVICE_TEST(cuda_runtime_memory, dev_runtime)
DEVICE_TEST(cuda_convert_dtypes, dev_convert)
DEVICE_TEST(cuda_linear, dev_linear)
DEVICE_TEST(cuda_conv2d, dev_conv2d)
DEVICE_TEST(cuda_norms, dev_norms)
DEVICE_TEST(cuda_elementwise, dev_elementwise)
DEVICE_TEST(cuda_layout_resize_timestep, dev_layout)
DEVICE_TEST(cuda_attention, dev_attention)
DEVICE_TEST(cuda_model_layout_ops, dev_model_layout)
DEVICE_TEST(cuda_count_nonfinite, dev_nonfinite)
DEVICE_TEST(cuda_arena_and_graph, dev_arena_graph)
DEVICE_TEST(cuda_error_paths, dev_errors)
