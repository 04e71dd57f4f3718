/* conv_winograd.c - 3x3, stride 1, pad 1 convolution by Winograd's minimal
 * filtering (Lavin & Gray 2015), F(2x2, 3x3) and F(4x4, 3x3): an m x m block
 * of outputs ("tile") costs (m+2)^2 multiply-adds per (in, out) channel pair
 * instead of 9 m^2 (16 vs 36 for m = 2, 36 vs 144 for m = 4).
 *
 * Per call the (m+2)^2 transformed kernels U = G g G^T are written straight
 * into the GEMM's packed-A layout; then, chunk by chunk of tiles (one chunk
 * per thread at a time, sized to stay in cache), the input patches are
 * transformed V = B^T d B into packed-B panels, (m+2)^2 GEMMs M = U . V run
 * on the backend's kernels, and Y = A^T M A (+ bias) is written to NCHW.
 * F(2x2) only adds, subtracts and halves; F(4x4) (points 0, +-1, +-2)
 * multiplies by up to 8 and rounds 1/6, 1/12, 1/24, so its float rounding
 * error is several times the direct convolution's (tests/test_backend.c
 * measures both against a double reference). */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/gemm.h"
#include "backend/cpu/winograd.h"
#include "backend/cpu/winograd_job.h"
#include "backend/ops.h"

static int tile_runs(const wino_job *J, int64_t t0, int n, tile_run *runs) {
    int64_t Ti = (int64_t)J->th * J->tw;
    int nr = 0;
    for (int64_t t = t0; t < t0 + n;) {
        int tx0 = (int)(t % J->tw), cnt = J->tw - tx0;
        if (cnt > t0 + n - t) cnt = (int)(t0 + n - t);
        runs[nr++] = (tile_run){(int)(t - t0), cnt, (int)(t % Ti / J->tw), tx0, t / Ti};
        t += cnt;
    }
    return nr;
}

/* Kernel transforms U = G g G^T into packed A panels (row o, k = c), panel by
 * panel and c by c: gg transforms the panel's MR kernels at once, lane r of
 * g[9][GL] / u[nxi][GL] being row r (loops over r vectorise; a kernel at a
 * time cost TAESD 7 % of its decode), and each transformed position's MR
 * values are one contiguous run of the destination. */
#define GL 16 /* lanes: every gemm_arch's mr is at most 16 */
typedef void (*gg_fn)(float (*g)[GL], float (*u)[GL], int R);

static void weights_common(const wino_job *J, const void *w, op_dtype wt, gg_fn gg) {
    int MR = J->ar->mr, C = J->C, npanels = (J->O + MR - 1) / MR, nxi = J->v->nxi;
#pragma omp parallel for schedule(static) num_threads(J->threads)
    for (int p = 0; p < npanels; p++) {
        float *base = (float *)J->up + (int64_t)p * MR * C;
        float g[9][GL], u[36][GL];
        for (int c = 0; c < C; c++) {
            for (int r = 0; r < MR; r++) {
                int o = p * MR + r;
                for (int e = 0; e < 9; e++) {
                    if (o >= J->O) {
                        g[e][r] = 0.0f;
                    } else if (wt == OP_F32) {
                        g[e][r] = ((const float *)w)[((int64_t)o * C + c) * 9 + e];
                    } else {
                        uint16_t h = ((const uint16_t *)w)[((int64_t)o * C + c) * 9 + e];
                        uint32_t bits = (uint32_t)h << 16;
                        if (wt == OP_BF16) memcpy(&g[e][r], &bits, 4);
                        else g[e][r] = gemm_half_to_float(h);
                    }
                }
            }
            gg(g, u, MR);
            float *d = base + (int64_t)c * MR;
            for (int xi = 0; xi < nxi; xi++) memcpy(d + xi * J->up_stride, u[xi], sizeof(float) * (size_t)MR);
        }
    }
}

/* ---------------- F(2x2, 3x3) ----------------
 * G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1]
 * B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
 * A^T = [1 1 1 0; 0 1 -1 -1] */

static void gg2(float (*g)[GL], float (*u)[GL], int R) {
    float t[4][3][GL]; /* G g */
    for (int j = 0; j < 3; j++)
        for (int r = 0; r < R; r++) {
            t[0][j][r] = g[j][r];
            t[1][j][r] = 0.5f * (g[j][r] + g[3 + j][r] + g[6 + j][r]);
            t[2][j][r] = 0.5f * (g[j][r] - g[3 + j][r] + g[6 + j][r]);
            t[3][j][r] = g[6 + j][r];
        }
    for (int i = 0; i < 4; i++)
        for (int r = 0; r < R; r++) {
            u[i * 4 + 0][r] = t[i][0][r];
            u[i * 4 + 1][r] = 0.5f * (t[i][0][r] + t[i][1][r] + t[i][2][r]);
            u[i * 4 + 2][r] = 0.5f * (t[i][0][r] - t[i][1][r] + t[i][2][r]);
            u[i * 4 + 3][r] = t[i][2][r];
        }
}
static void weights2(const wino_job *J, const void *w, op_dtype wt) { weights_common(J, w, wt, gg2); }

/* Input row step for `run` tiles: tile k uses columns e[k], o[k], e[k+1], o[k+1]
 * (restrict: the compiler may vectorise). */
static void in2_rows(const float *restrict e, const float *restrict o, float *restrict d0, float *restrict d1,
                     float *restrict d2, float *restrict d3, int run) {
    for (int u = 0; u < run; u++) {
        d0[u] = e[u] - e[u + 1];
        d1[u] = o[u] + e[u + 1];
        d2[u] = e[u + 1] - o[u];
        d3[u] = o[u] - o[u + 1];
    }
}

static void in2_cols(float *restrict a0, float *restrict a1, float *restrict a2, float *restrict a3, int n) {
    for (int j = 0; j < n; j++) {
        float d0 = a0[j], d1 = a1[j], d2 = a2[j], d3 = a3[j];
        a0[j] = d0 - d2, a1[j] = d1 + d2, a2[j] = d2 - d1, a3[j] = d1 - d3;
    }
}

/* Input row y (zero outside [0, H) x [0, W)) split into `ph` phase arrays:
 * P[q][j] = row[x0 + ph*j + q], j = 0 .. len-1. */
static void load_phases(const float *xc, int H, int W, int yy, int x0, int ph, int len, float *P, int L) {
    if (yy < 0 || yy >= H) {
        for (int q = 0; q < ph; q++) memset(P + q * L, 0, sizeof(float) * (size_t)len);
        return;
    }
    const float *src = xc + (int64_t)yy * W;
    for (int q = 0; q < ph; q++) {
        float *p = P + q * L;
        int j = 0;
        for (; j < len && x0 + ph * j + q < 0; j++) p[j] = 0.0f;
        int num = W - 1 - x0 - q, jm = num < 0 ? -1 : num / ph; /* last j with x0 + ph*j + q < W */
        if (jm > len - 1) jm = len - 1;
        for (; j <= jm; j++) p[j] = src[x0 + ph * j + q];
        for (; j < len; j++) p[j] = 0.0f;
    }
}

/* V = B^T d B for the chunk's tiles into packed B panels vp[xi][n/NR][C][NR]
 * (xi stride vstride). Rows are split into even and odd columns so every
 * step is a plain loop over the run's tiles. */
static void input2(const wino_job *J, const tile_run *runs, int nruns, float *vp, int64_t vstride, float *tmp) {
    int NR = J->ar->nr, L = J->tw + 1;
    float *R = tmp; /* R[i][q][j]: input row i, phase q (0 even, 1 odd), position j */
    for (int c = 0; c < J->C; c++) {
        for (int q = 0; q < nruns; q++) {
            const tile_run *ru = &runs[q];
            int cnt = ru->cnt;
            const float *xc = J->x + (ru->b * J->C + c) * J->H * J->W;
            for (int i = 0; i < 4; i++)
                load_phases(xc, J->H, J->W, 2 * ru->ty - 1 + i, 2 * ru->tx0 - 1, 2, cnt + 1, R + i * 2 * L, L);
            for (int ph = 0; ph < 2; ph++) /* B^T d, on the even and the odd columns */
                in2_cols(R + ph * L, R + 2 * L + ph * L, R + 4 * L + ph * L, R + 6 * L + ph * L, cnt + 1);
            for (int k = 0; k < cnt;) {
                int64_t tt = ru->k0 + k;
                int run = NR - (int)(tt % NR); /* lanes left in this panel */
                if (run > cnt - k) run = cnt - k;
                float *dst = vp + (tt / NR) * NR * J->C + (int64_t)c * NR + tt % NR;
                for (int i = 0; i < 4; i++) {
                    float *d0 = dst + (i * 4) * vstride;
                    in2_rows(R + i * 2 * L + k, R + i * 2 * L + L + k, d0, d0 + vstride, d0 + 2 * vstride,
                             d0 + 3 * vstride, run);
                }
                k += run;
            }
        }
    }
}

static void out2_cols(const float *restrict v0, const float *restrict v1, const float *restrict v2,
                      const float *restrict v3, float *restrict s0, float *restrict s1, int cnt) {
    for (int k = 0; k < cnt; k++) {
        s0[k] = v0[k] + v1[k] + v2[k];
        s1[k] = v1[k] - v2[k] - v3[k];
    }
}

static void out2_row(const float *restrict a, const float *restrict b, const float *restrict c,
                     const float *restrict d, float bo, float *restrict yr, int full) {
    for (int k = 0; k < full; k++) {
        yr[2 * k] = a[k] + b[k] + c[k] + bo;
        yr[2 * k + 1] = b[k] - c[k] - d[k] + bo;
    }
}

/* The fused epilogue on n outputs just written at y (plane offset off): the
 * residual added after the bias, then ReLU as cpu_relu. */
static void epilogue(const wino_job *J, float *y, int64_t off, int n) {
    if (J->res)
        for (int e = 0; e < n; e++) y[e] += J->res[off + e];
    if (J->relu)
        for (int e = 0; e < n; e++) y[e] = y[e] < 0.0f ? 0.0f : y[e];
}

/* Y = A^T M A + bias from m[xi][O][n] (xi stride mstride). */
static void output2(const wino_job *J, const tile_run *runs, int nruns, int n, const float *m, int64_t mstride,
                    float *tmp) {
    int W = J->W, H = J->H, L = J->tw;
    float *s = tmp; /* s[i][j][k] = (A^T m)[i][j] of tile k */
    for (int o = 0; o < J->O; o++) {
        float bo = J->bias ? J->bias[o] : 0.0f;
        for (int q = 0; q < nruns; q++) {
            const tile_run *ru = &runs[q];
            int cnt = ru->cnt;
            const float *mm = m + (int64_t)o * n + ru->k0;
            for (int j = 0; j < 4; j++)
                out2_cols(mm + j * mstride, mm + (4 + j) * mstride, mm + (8 + j) * mstride, mm + (12 + j) * mstride,
                          s + j * L, s + (4 + j) * L, cnt);
            float *yo = J->y + (ru->b * J->O + o) * H * W;
            int x0 = 2 * ru->tx0;
            for (int i = 0; i < 2 && 2 * ru->ty + i < H; i++) {
                const float *a = s + i * 4 * L;
                float *yr = yo + (int64_t)(2 * ru->ty + i) * W + x0;
                int full = x0 + 2 * cnt <= W ? cnt : cnt - 1; /* the last tile may stick out on the right */
                out2_row(a, a + L, a + 2 * L, a + 3 * L, bo, yr, full);
                if (full < cnt) yr[2 * full] = a[full] + a[L + full] + a[2 * L + full] + bo;
                if (J->res || J->relu) epilogue(J, yr, yr - J->y, 2 * cnt < W - x0 ? 2 * cnt : W - x0);
            }
        }
    }
}

/* ---------------- F(4x4, 3x3) ----------------
 * G   = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]
 * B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
 * A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1] */

/* t[i] = (G (a, b, c))[i] for each lane r < R; t rows ts lanes apart */
static void g6(const float *a, const float *b, const float *c, float *t, int ts, int R) {
    for (int r = 0; r < R; r++) {
        t[r] = 0.25f * a[r];
        t[ts + r] = -(a[r] + b[r] + c[r]) / 6.0f;
        t[2 * ts + r] = -(a[r] - b[r] + c[r]) / 6.0f;
        t[3 * ts + r] = a[r] / 24.0f + b[r] / 12.0f + c[r] / 6.0f;
        t[4 * ts + r] = a[r] / 24.0f - b[r] / 12.0f + c[r] / 6.0f;
        t[5 * ts + r] = c[r];
    }
}

static void gg4(float (*g)[GL], float (*u)[GL], int R) {
    float t[6][3][GL]; /* G g */
    for (int j = 0; j < 3; j++) g6(g[j], g[3 + j], g[6 + j], t[0][j], 3 * GL, R);
    for (int i = 0; i < 6; i++) g6(t[i][0], t[i][1], t[i][2], u[i * 6], GL, R);
}
static void weights4(const wino_job *J, const void *w, op_dtype wt) { weights_common(J, w, wt, gg4); }

/* B^T applied down six arrays in place. */
static void in4_cols(float *restrict a0, float *restrict a1, float *restrict a2, float *restrict a3,
                     float *restrict a4, float *restrict a5, int n) {
    for (int j = 0; j < n; j++) {
        float d0 = a0[j], d1 = a1[j], d2 = a2[j], d3 = a3[j], d4 = a4[j], d5 = a5[j];
        a0[j] = 4.0f * d0 - 5.0f * d2 + d4;
        a1[j] = -4.0f * d1 - 4.0f * d2 + d3 + d4;
        a2[j] = 4.0f * d1 - 4.0f * d2 - d3 + d4;
        a3[j] = -2.0f * d1 - d2 + 2.0f * d3 + d4;
        a4[j] = 2.0f * d1 - d2 - 2.0f * d3 + d4;
        a5[j] = 4.0f * d1 - 5.0f * d3 + d5;
    }
}

/* Row step: tile k uses columns p0[k] p1[k] p2[k] p3[k] p0[k+1] p1[k+1]; d[j] = dst + j * vs. */
static void in4_rows(const float *restrict p0, const float *restrict p1, const float *restrict p2,
                     const float *restrict p3, float *restrict d0, float *restrict d1, float *restrict d2,
                     float *restrict d3, float *restrict d4, float *restrict d5, int run) {
    for (int u = 0; u < run; u++) {
        float c0 = p0[u], c1 = p1[u], c2 = p2[u], c3 = p3[u], c4 = p0[u + 1], c5 = p1[u + 1];
        d0[u] = 4.0f * c0 - 5.0f * c2 + c4;
        d1[u] = -4.0f * c1 - 4.0f * c2 + c3 + c4;
        d2[u] = 4.0f * c1 - 4.0f * c2 - c3 + c4;
        d3[u] = -2.0f * c1 - c2 + 2.0f * c3 + c4;
        d4[u] = 2.0f * c1 - c2 - 2.0f * c3 + c4;
        d5[u] = 4.0f * c1 - 5.0f * c3 + c5;
    }
}

static void input4(const wino_job *J, const tile_run *runs, int nruns, float *vp, int64_t vstride, float *tmp) {
    int NR = J->ar->nr, L = J->tw + 1;
    float *R = tmp; /* R[i][q][j]: input row i, phase q (column 4j - 1 + q), position j */
    for (int c = 0; c < J->C; c++) {
        for (int q = 0; q < nruns; q++) {
            const tile_run *ru = &runs[q];
            int cnt = ru->cnt;
            const float *xc = J->x + (ru->b * J->C + c) * J->H * J->W;
            for (int i = 0; i < 6; i++)
                load_phases(xc, J->H, J->W, 4 * ru->ty - 1 + i, 4 * ru->tx0 - 1, 4, cnt + 1, R + i * 4 * L, L);
            for (int ph = 0; ph < 4; ph++) {
                float *b = R + ph * L;
                in4_cols(b, b + 4 * L, b + 8 * L, b + 12 * L, b + 16 * L, b + 20 * L, cnt + 1);
            }
            for (int k = 0; k < cnt;) {
                int64_t tt = ru->k0 + k;
                int run = NR - (int)(tt % NR);
                if (run > cnt - k) run = cnt - k;
                float *dst = vp + (tt / NR) * NR * J->C + (int64_t)c * NR + tt % NR;
                for (int i = 0; i < 6; i++) {
                    const float *p = R + i * 4 * L + k;
                    float *d0 = dst + (i * 6) * vstride;
                    in4_rows(p, p + L, p + 2 * L, p + 3 * L, d0, d0 + vstride, d0 + 2 * vstride, d0 + 3 * vstride,
                             d0 + 4 * vstride, d0 + 5 * vstride, run);
                }
                k += run;
            }
        }
    }
}

/* A^T applied across six arrays: four results. */
static void out4_cols(const float *restrict v0, const float *restrict v1, const float *restrict v2,
                      const float *restrict v3, const float *restrict v4, const float *restrict v5,
                      float *restrict s0, float *restrict s1, float *restrict s2, float *restrict s3, int cnt) {
    for (int k = 0; k < cnt; k++) {
        float a = v1[k] + v2[k], b = v1[k] - v2[k], c = v3[k] + v4[k], d = v3[k] - v4[k];
        s0[k] = v0[k] + a + c;
        s1[k] = b + 2.0f * d;
        s2[k] = a + 4.0f * c;
        s3[k] = b + 8.0f * d + v5[k];
    }
}

/* One output row of `full` whole tiles: 4 pixels per tile, interleaved. */
static void out4_row(const float *restrict v0, const float *restrict v1, const float *restrict v2,
                     const float *restrict v3, const float *restrict v4, const float *restrict v5, float bo,
                     float *restrict yr, int full) {
    for (int k = 0; k < full; k++) {
        float a = v1[k] + v2[k], b = v1[k] - v2[k], c = v3[k] + v4[k], d = v3[k] - v4[k];
        yr[4 * k] = v0[k] + a + c + bo;
        yr[4 * k + 1] = b + 2.0f * d + bo;
        yr[4 * k + 2] = a + 4.0f * c + bo;
        yr[4 * k + 3] = b + 8.0f * d + v5[k] + bo;
    }
}

static void output4(const wino_job *J, const tile_run *runs, int nruns, int n, const float *m, int64_t mstride,
                    float *tmp) {
    int W = J->W, H = J->H, L = J->tw;
    float *s = tmp; /* s[i][j][k], i < 4, j < 6 */
    for (int o = 0; o < J->O; o++) {
        float bo = J->bias ? J->bias[o] : 0.0f;
        for (int q = 0; q < nruns; q++) {
            const tile_run *ru = &runs[q];
            int cnt = ru->cnt;
            const float *mm = m + (int64_t)o * n + ru->k0;
            for (int j = 0; j < 6; j++)
                out4_cols(mm + j * mstride, mm + (6 + j) * mstride, mm + (12 + j) * mstride, mm + (18 + j) * mstride,
                          mm + (24 + j) * mstride, mm + (30 + j) * mstride, s + j * L, s + (6 + j) * L,
                          s + (12 + j) * L, s + (18 + j) * L, cnt);
            float *yo = J->y + (ru->b * J->O + o) * H * W;
            int x0 = 4 * ru->tx0;
            for (int i = 0; i < 4 && 4 * ru->ty + i < H; i++) {
                const float *a = s + i * 6 * L;
                float *yr = yo + (int64_t)(4 * ru->ty + i) * W + x0;
                int full = x0 + 4 * cnt <= W ? cnt : cnt - 1; /* the last tile may stick out on the right */
                out4_row(a, a + L, a + 2 * L, a + 3 * L, a + 4 * L, a + 5 * L, bo, yr, full);
                if (full < cnt) {
                    float t[4];
                    out4_row(a + full, a + L + full, a + 2 * L + full, a + 3 * L + full, a + 4 * L + full,
                             a + 5 * L + full, bo, t, 1);
                    for (int e = 0; x0 + 4 * full + e < W; e++) yr[4 * full + e] = t[e];
                }
                if (J->res || J->relu) epilogue(J, yr, yr - J->y, 4 * cnt < W - x0 ? 4 * cnt : W - x0);
            }
        }
    }
}

static const wino_variant F2 = {2, 4, 16, weights2, input2, output2};
static const wino_variant F4 = {4, 6, 36, weights4, input4, output4};

/* ---------------- driver ---------------- */

static int chunk_tiles(const wino_job *J) {
    /* V and M for a chunk: nxi * (C + O) * n floats, at most 16 MiB a thread;
     * narrow layers (TAESD's 64 -> 64) keep them in L2 with 64 tiles: 20-25 %
     * less CPU time than 896-tile chunks (measured on 64 -> 64 at 512x512 and
     * 256x256, 2 threads); wider layers need the longer GEMMs of larger chunks */
    int NR = J->ar->nr;
    if (J->C + J->O <= 128) return 64 > NR ? 64 / NR * NR : NR;
    int64_t n = (1 << 22) / (J->v->nxi * (int64_t)(J->C + J->O));
    n = n / NR * NR;
    if (n < NR) n = NR;
    if (n > 1024) n = 1024;
    return (int)n;
}

/* The transformed kernels are rebuilt every call and streamed once per chunk
 * of tiles: they must be few next to the work (measured on SD 1.5 at 2x2:
 * 256 tiles of 640 channels win 1.5x, 128 tiles of 1280 lose 1.3x). */
static int usable(const wino_variant *v, int B, int C, int H, int W, int O) {
    int64_t tiles = (int64_t)B * ((H + v->m - 1) / v->m) * ((W + v->m - 1) / v->m);
    return tiles >= 256 && C >= 8 && O >= 8 && (int64_t)v->nxi * O * C <= (16 << 20);
}

#define WINO_PAD 16 /* floats: one cache line */

static int g_wino_vec = 1; /* tests: 0 runs the portable transforms */

int winograd_vector_transforms(int on) {
    g_wino_vec = on;
    return wino4_avx512_arch(gemm_arch_get());
}

static int g_wino_max = -1; /* largest tile allowed: SDC_WINOGRAD = 0 (off), 2, or 4 (default) */

static const wino_variant *pick(const op_ctx *cx, int B, int C, int H, int W, int O) {
    if (g_wino_max < 0) {
        const char *e = getenv("SDC_WINOGRAD");
        g_wino_max = e ? atoi(e) : 4;
    }
    if (g_wino_max >= 4 && usable(&F4, B, C, H, W, O)) return &F4;
    /* under OP_BF16 the direct convolution runs at twice the float32 rate
     * and beats F(2x2) (measured); Winograd's own GEMMs stay float32 */
    if (g_wino_max >= 2 && cx->compute != OP_BF16 && usable(&F2, B, C, H, W, O)) return &F2;
    return NULL;
}

int winograd_worthwhile(const op_ctx *cx, int B, int C, int H, int W, int O) { return pick(cx, B, C, H, W, O) != NULL; }

static sdc_status winograd_run(op_ctx *cx, const float *x, int B, int C, int H, int W, const void *w, op_dtype wt,
                               const float *bias, int O, float *y, int m, const float *res, int relu) {
    const wino_variant *v = m == 4 ? &F4 : m == 2 ? &F2 : pick(cx, B, C, H, W, O);
    if (!v) v = &F2;
    /* a row tile that divides O: no edge tiles (64 channels: 8 rows, not 12) */
    const gemm_arch *ar = gemm_arch_for_rows(gemm_arch_get(), O);
    int MR = ar->mr, NR = ar->nr, nxi = v->nxi;
    wino_job J = {x, bias, y, res, relu, B, C, H, W, O, (H + v->m - 1) / v->m, (W + v->m - 1) / v->m, 0, NULL, 0, ar, v,
                  cx->threads};
    J.T = (int64_t)B * J.th * J.tw;
    int vec = g_wino_vec && wino4_avx512_usable(&J);
    int64_t Op = (O + MR - 1) / MR * MR;
    /* the nxi matrices of U, V and M are each a cache line more than a
     * multiple of 4 KiB apart: the transforms touch all nxi at one offset,
     * which at 64 channels (16 KiB matrices) hit one L1 set and thrashed */
    J.up_stride = Op * C + WINO_PAD;
    /* kept between calls up to 64 MiB (fresh pages cost a fault each) */
    int64_t nup = nxi * J.up_stride;
    float *up = nup <= (16 << 20) ? cpu_scratch(6, nup) : malloc((size_t)nup * sizeof(float));
    if (!up) return sdc_fail(SDC_ERR_NOMEM, "out of memory in conv2d (%d -> %d channels)", C, O);
    J.up = up;
    v->weights(&J, w, wt);
    /* chunks: at most chunk_tiles() each, a multiple of the thread count */
    int nthr = omp_in_parallel() ? 1 : cx->threads, failed = 0, n = chunk_tiles(&J);
    int64_t nchunks = (J.T + n - 1) / n;
    nchunks = (nchunks + nthr - 1) / nthr * nthr;
    n = (int)((J.T + nchunks - 1) / nchunks + NR - 1) / NR * NR;
    nchunks = (J.T + n - 1) / n;
    if (nthr > nchunks) nthr = (int)nchunks;
#pragma omp parallel num_threads(nthr) reduction(| : failed)
    {
        int64_t vstride = (int64_t)n * C + WINO_PAD, mstride = (int64_t)n * O + WINO_PAD;
        int64_t ntmp = 24 * ((int64_t)J.tw + 1);
        float *vp = cpu_scratch(4, nxi * vstride + ntmp);
        float *mb = cpu_scratch(5, nxi * mstride);
        tile_run *runs = malloc(sizeof(tile_run) * (size_t)(n / J.tw + 2));
        if (!vp || !mb || !runs) failed = 1;
#pragma omp for schedule(dynamic)
        for (int64_t ch = 0; ch < nchunks; ch++) {
            if (failed) continue;
            int64_t t0 = ch * n;
            int cnt = J.T - t0 < n ? (int)(J.T - t0) : n;
            int cntp = (cnt + NR - 1) / NR * NR;
            if (cntp > cnt) /* lanes past the last tile: zeros */
                for (int xi = 0; xi < nxi; xi++)
                    memset(vp + xi * vstride + (int64_t)(cntp - NR) * C, 0, sizeof(float) * (size_t)NR * C);
            int nruns = tile_runs(&J, t0, cnt, runs);
            if (vec) wino4_avx512_input(&J, runs, nruns, vp, vstride);
            else v->input(&J, runs, nruns, vp, vstride, vp + nxi * vstride);
            for (int xi = 0; xi < nxi && !failed; xi++) {
                gemm_desc d = {.M = O, .N = cnt, .K = C, .a_packed = up + xi * J.up_stride,
                               .b_packed = vp + xi * vstride, .C = mb + xi * mstride, .ldc = cnt,
                               .f32_only = 1};
                if (gemm_serial(&d, ar, 0, O, 0, cnt)) failed = 1;
            }
            if (failed) continue;
            if (vec) wino4_avx512_output(&J, runs, nruns, cnt, mb, mstride);
            else v->output(&J, runs, nruns, cnt, mb, mstride, vp + nxi * vstride);
        }
        free(runs);
    }
    if (nup > (16 << 20)) free(up);
    if (failed) return sdc_fail(SDC_ERR_NOMEM, "out of memory in conv2d (%d -> %d channels)", C, O);
    return SDC_OK;
}

sdc_status conv3x3_winograd_m(op_ctx *cx, const float *x, int B, int C, int H, int W, const void *w, op_dtype wt,
                              const float *bias, int O, float *y, int m) {
    return winograd_run(cx, x, B, C, H, W, w, wt, bias, O, y, m, NULL, 0);
}

sdc_status conv3x3_winograd(op_ctx *cx, const float *x, int B, int C, int H, int W, const void *w, op_dtype wt,
                            const float *bias, int O, float *y, const float *res, int relu) {
    return winograd_run(cx, x, B, C, H, W, w, wt, bias, O, y, 0, res, relu);
}
