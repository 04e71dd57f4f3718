/* ops_elementwise.c - activations, adds, layout changes, resizing and the
 * sinusoidal timestep embedding. The transcendental ones (SiLU, GELU,
 * GEGLU, QuickGELU) run on the vector exp/erf of vec_math.h, chosen at run
 * time; the rest are plain loops the compiler vectorises. */
#include <math.h>
#include <string.h>

#include "backend/cpu/gemm.h"
#include "backend/cpu/profile.h"
#include "backend/cpu/vec_math.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/ops.h"

enum { ACT_SILU, ACT_GELU, ACT_QUICK_GELU };

static float act1(int kind, float x) {
    switch (kind) {
    case ACT_SILU: return x / (1.0f + expf(-x));
    case ACT_GELU: return 0.5f * x * (1.0f + erff(x * (float)M_SQRT1_2));
    default: return x * (1.0f / (1.0f + expf(-1.702f * x)));
    }
}

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx512f"))) static void act_avx512(int kind, float *x, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_loadu_ps(x + i), r;
        if (kind == ACT_SILU) r = vsilu512(v, 1.0f);
        else if (kind == ACT_GELU) r = vgelu512(v);
        else {
            __m512 e = vexp512(_mm512_mul_ps(v, _mm512_set1_ps(-1.702f)));
            r = _mm512_mul_ps(v, _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_add_ps(_mm512_set1_ps(1.0f), e)));
        }
        _mm512_storeu_ps(x + i, r);
    }
    for (; i < n; i++) x[i] = act1(kind, x[i]);
}

__attribute__((target("avx2,fma"))) static void act_avx2(int kind, float *x, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i), r;
        if (kind == ACT_SILU) r = vsilu256(v, 1.0f);
        else if (kind == ACT_GELU) r = vgelu256(v);
        else {
            __m256 e = vexp256(_mm256_mul_ps(v, _mm256_set1_ps(-1.702f)));
            r = _mm256_mul_ps(v, _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_add_ps(_mm256_set1_ps(1.0f), e)));
        }
        _mm256_storeu_ps(x + i, r);
    }
    for (; i < n; i++) x[i] = act1(kind, x[i]);
}

__attribute__((target("avx512f"))) static void geglu_avx512(const float *a, const float *g, float *o, int D) {
    int i = 0;
    for (; i + 16 <= D; i += 16)
        _mm512_storeu_ps(o + i, _mm512_mul_ps(_mm512_loadu_ps(a + i), vgelu512(_mm512_loadu_ps(g + i))));
    for (; i < D; i++) o[i] = a[i] * act1(ACT_GELU, g[i]);
}

__attribute__((target("avx2,fma"))) static void geglu_avx2(const float *a, const float *g, float *o, int D) {
    int i = 0;
    for (; i + 8 <= D; i += 8)
        _mm256_storeu_ps(o + i, _mm256_mul_ps(_mm256_loadu_ps(a + i), vgelu256(_mm256_loadu_ps(g + i))));
    for (; i < D; i++) o[i] = a[i] * act1(ACT_GELU, g[i]);
}
#endif

/* Activation in place over n floats, in chunks spread over the threads. */
static void activation(op_ctx *cx, int kind, float *x, int64_t n) {
    PROF_BEGIN();
    int vec = CPU_VEC();
    const int64_t chunk = 1 << 14;
#pragma omp parallel for schedule(static) num_threads(cx->threads)
    for (int64_t c = 0; c < (n + chunk - 1) / chunk; c++) {
        float *p = x + c * chunk;
        int64_t m = n - c * chunk < chunk ? n - c * chunk : chunk;
#if defined(__x86_64__) || defined(__i386__)
        if (vec == 2) {
            act_avx512(kind, p, m);
            continue;
        }
        if (vec == 1) {
            act_avx2(kind, p, m);
            continue;
        }
#endif
        for (int64_t i = 0; i < m; i++) p[i] = act1(kind, p[i]);
    }
    PROF_END(PROF_ACTIVATION, 0);
}

void cpu_silu(op_ctx *cx, float *x, int64_t n) { activation(cx, ACT_SILU, x, n); }
void cpu_gelu(op_ctx *cx, float *x, int64_t n) { activation(cx, ACT_GELU, x, n); }
void cpu_quick_gelu(op_ctx *cx, float *x, int64_t n) { activation(cx, ACT_QUICK_GELU, x, n); }

/* memory-bound: the compiler vectorises the compare-and-select; written so
 * that a NaN fails the test and passes through, as torch.relu keeps it */
void cpu_relu(op_ctx *cx, float *x, int64_t n) {
    PROF_BEGIN();
#pragma omp parallel for schedule(static) num_threads(cx->threads)
    for (int64_t i = 0; i < n; i++) x[i] = x[i] < 0.0f ? 0.0f : x[i];
    PROF_END(PROF_ACTIVATION, 0);
}

/* only ever run on latents (a few thousand values): libm's tanhf is enough */
void cpu_tanh_clamp(op_ctx *cx, float *x, float m, int64_t n) {
    PROF_BEGIN();
#pragma omp parallel for schedule(static) num_threads(cx->threads)
    for (int64_t i = 0; i < n; i++) x[i] = tanhf(x[i] / m) * m;
    PROF_END(PROF_ACTIVATION, 0);
}

void cpu_geglu(op_ctx *cx, const float *x, float *y, int64_t rows, int D) {
    PROF_BEGIN();
    int vec = CPU_VEC();
#pragma omp parallel for schedule(static) num_threads(cx->threads)
    for (int64_t r = 0; r < rows; r++) {
        const float *a = x + r * 2 * D, *g = a + D;
        float *o = y + r * D;
#if defined(__x86_64__) || defined(__i386__)
        if (vec == 2) {
            geglu_avx512(a, g, o, D);
            continue;
        }
        if (vec == 1) {
            geglu_avx2(a, g, o, D);
            continue;
        }
#endif
        for (int i = 0; i < D; i++) o[i] = a[i] * act1(ACT_GELU, g[i]);
    }
    PROF_END(PROF_ACTIVATION, 0);
}

void cpu_add(op_ctx *cx, float *y, const float *x, int64_t n) {
    PROF_BEGIN();
#pragma omp parallel for schedule(static) num_threads(cx->threads)
    for (int64_t i = 0; i < n; i++) y[i] += x[i];
    PROF_END(PROF_ADD_SCALE, 0);
}

void cpu_scale(op_ctx *cx, float *y, float s, int64_t n) {
    PROF_BEGIN();
#pragma omp parallel for schedule(static) num_threads(cx->threads)
    for (int64_t i = 0; i < n; i++) y[i] *= s;
    PROF_END(PROF_ADD_SCALE, 0);
}

void cpu_add_channel_bias(op_ctx *cx, float *y, const float *v, int B, int C, int64_t HW) {
    PROF_BEGIN();
#pragma omp parallel for schedule(static) num_threads(cx->threads)
    for (int64_t bc = 0; bc < (int64_t)B * C; bc++) {
        float a = v[bc];
        float *p = y + bc * HW;
        for (int64_t i = 0; i < HW; i++) p[i] += a;
    }
    PROF_END(PROF_ADD_SCALE, 0);
}

void cpu_upsample_nearest(op_ctx *cx, const float *x, float *y, int64_t BC, int H, int W, int Ho, int Wo) {
    PROF_BEGIN();
    /* torch's nearest: src = min(floor(dst * (float)in/out), in-1) */
    float sh = (float)H / (float)Ho, sw = (float)W / (float)Wo;
    if (Ho == 2 * H && Wo == 2 * W) { /* the UNet/VAE case: each pixel twice, each row twice */
#pragma omp parallel for schedule(static) num_threads(cx->threads)
        for (int64_t p = 0; p < BC * H; p++) {
            const float *xr = x + p * W;
            float *y0 = y + p * 2 * Wo;
            for (int j = 0; j < W; j++) y0[2 * j] = y0[2 * j + 1] = xr[j];
            memcpy(y0 + Wo, y0, (size_t)Wo * sizeof(float));
        }
        PROF_END(PROF_RESIZE, 0);
        return;
    }
#pragma omp parallel for schedule(static) num_threads(cx->threads)
    for (int64_t p = 0; p < BC; p++) {
        const float *xp = x + p * H * W;
        float *yp = y + p * Ho * Wo;
        for (int i = 0; i < Ho; i++) {
            int si = (int)floorf((float)i * sh);
            if (si > H - 1) si = H - 1;
            for (int j = 0; j < Wo; j++) {
                int sj = (int)floorf((float)j * sw);
                if (sj > W - 1) sj = W - 1;
                yp[(int64_t)i * Wo + j] = xp[(int64_t)si * W + sj];
            }
        }
    }
    PROF_END(PROF_RESIZE, 0);
}

/* [B,C,HW] <-> [B,HW,C] in 32 x 32 tiles, so both sides are read and
 * written a cache line at a time. */
#define TILE 32
static void transpose_planes(int threads, const float *x, float *y, int B, int64_t R, int64_t C) {
    /* per image: y[c][r] = x[r][c], x is R x C */
    int64_t tr = (R + TILE - 1) / TILE, tc = (C + TILE - 1) / TILE;
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t t = 0; t < (int64_t)B * tr * tc; t++) {
        int64_t b = t / (tr * tc), r0 = t / tc % tr * TILE, c0 = t % tc * TILE;
        const float *xb = x + b * R * C;
        float *yb = y + b * R * C;
        int64_t r1 = r0 + TILE < R ? r0 + TILE : R, c1 = c0 + TILE < C ? c0 + TILE : C;
        for (int64_t c = c0; c < c1; c++)
            for (int64_t r = r0; r < r1; r++) yb[c * R + r] = xb[r * C + c];
    }
}

void cpu_nchw_to_nhwc(op_ctx *cx, const float *x, float *y, int B, int C, int64_t HW) {
    PROF_BEGIN();
    transpose_planes(cx->threads, x, y, B, C, HW);
    PROF_END(PROF_LAYOUT, 0);
}

void cpu_nhwc_to_nchw(op_ctx *cx, const float *x, float *y, int B, int C, int64_t HW) {
    PROF_BEGIN();
    transpose_planes(cx->threads, x, y, B, HW, C);
    PROF_END(PROF_LAYOUT, 0);
}

void cpu_timestep_embedding(op_ctx *cx, const float *t, int n, int dim, int flip_sin_to_cos, float shift, float *out) {
    /* diffusers get_timestep_embedding, all in float32 like the reference */
    int half = dim / 2;
    float nlog = (float)-log(10000.0);
    for (int k = 0; k < n; k++) {
        float *o = out + (int64_t)k * dim;
        for (int i = 0; i < half; i++) {
            float e = (nlog * (float)i) / ((float)half - shift);
            float a = t[k] * expf(e);
            float s = sinf(a), c = cosf(a);
            o[i] = flip_sin_to_cos ? c : s;
            o[half + i] = flip_sin_to_cos ? s : c;
        }
        if (dim % 2) o[dim - 1] = 0.0f;
    }
}
