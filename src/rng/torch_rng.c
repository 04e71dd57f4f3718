/* torch_rng.c - PyTorch CPU generator and torch.randn, bit for bit.
 *
 * The >= 16 element path mirrors torch's AVX2 kernel (normal_fill_16_AVX2
 * with avx_mathfun.h's log256_ps / sincos256_ps) lane by lane. torch's GCC
 * build contracts the intrinsics' mul+add pairs into FMAs; the fmaf() calls
 * below are exactly those contractions (verified against the golden: all
 * 592773 values of randn.safetensors equal bit for bit; without the FMAs
 * 5774 differ by one ulp). Everything else must stay uncontracted: the
 * project builds with -std=c11, where GCC defaults to -ffp-contract=off. */
#include "rng/torch_rng.h"

#include <math.h>
#include <string.h>


#define MT_N 624
#define MT_M 397

void torch_gen_seed(torch_gen *g, uint64_t seed) {
    g->seed = seed;
    g->state[0] = (uint32_t)(seed & 0xffffffffu);
    for (int j = 1; j < MT_N; j++)
        g->state[j] = 1812433253u * (g->state[j - 1] ^ (g->state[j - 1] >> 30)) + (uint32_t)j;
    g->left = 1;
    g->next = 0;
    g->has_next_double = 0;
    g->next_double = 0.0;
}

static inline uint32_t twist(uint32_t u, uint32_t v) {
    uint32_t mix = (u & 0x80000000u) | (v & 0x7fffffffu);
    return (mix >> 1) ^ ((v & 1u) ? 0x9908b0dfu : 0u);
}

static void next_state(torch_gen *g) {
    uint32_t *p = g->state;
    g->left = MT_N;
    g->next = 0;
    for (int j = MT_N - MT_M + 1; --j; p++) *p = p[MT_M] ^ twist(p[0], p[1]);
    for (int j = MT_M; --j; p++) *p = p[MT_M - MT_N] ^ twist(p[0], p[1]);
    *p = p[MT_M - MT_N] ^ twist(p[0], g->state[0]);
}

uint32_t torch_gen_random(torch_gen *g) {
    if (--g->left == 0) next_state(g);
    uint32_t y = g->state[g->next++];
    y ^= (y >> 11);
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= (y >> 18);
    return y;
}

uint64_t torch_gen_random64(torch_gen *g) {
    uint32_t hi = torch_gen_random(g);
    uint32_t lo = torch_gen_random(g);
    return ((uint64_t)hi << 32) | lo;
}

/* at::uniform_real_distribution<float>(0, 1) */
static inline float uniform_f(torch_gen *g) {
    uint32_t v = torch_gen_random(g) & ((1u << 24) - 1);
    float x = (float)v * (1.0f / 16777216.0f);
    return x * (1.0f - 0.0f) + 0.0f;
}

/* at::uniform_real_distribution<double>(0, 1) */
static inline double uniform_d(torch_gen *g) {
    uint64_t v = torch_gen_random64(g) & ((UINT64_C(1) << 53) - 1);
    double x = (double)v * (1.0 / 9007199254740992.0);
    return x * (1.0 - 0.0) + 0.0;
}

/* at::normal_distribution<double>(0, 1) with the generator's cache. */
static double normal_d(torch_gen *g) {
    if (g->has_next_double) {
        g->has_next_double = 0;
        return g->next_double * 1.0 + 0.0;
    }
    const double u1 = uniform_d(g);
    const double u2 = uniform_d(g);
    const double r = sqrt(-2.0 * log(1.0 - u2));
    const double theta = 2.0 * 3.14159265358979323846 * u1;
    g->next_double = r * sin(theta);
    g->has_next_double = 1;
    return r * cos(theta) * 1.0 + 0.0;
}

/* ---- avx_mathfun.h (Cephes) log256_ps / sincos256_ps, one lane ---- */

static inline uint32_t f2u(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static inline float u2f(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static float cephes_logf(float x) {
    const float one = 1.0f;
    int invalid = x <= 0.0f;
    float mn = u2f(0x00800000u);
    x = (x > mn) ? x : mn; /* _mm256_max_ps(x, min_norm_pos) */
    int32_t imm0 = (int32_t)(f2u(x) >> 23);
    x = u2f((f2u(x) & ~0x7f800000u) | f2u(0.5f));
    imm0 -= 0x7f;
    float e = (float)imm0;
    e = e + one;
    int mask = x < (float)0.707106781186547524;
    float tmp = mask ? x : 0.0f;
    x = x - one;
    e = e - (mask ? one : 0.0f);
    x = x + tmp;
    float z = x * x;
    float y = (float)7.0376836292E-2;
    y = fmaf(y, x, (float)-1.1514610310E-1);
    y = fmaf(y, x, (float)1.1676998740E-1);
    y = fmaf(y, x, (float)-1.2420140846E-1);
    y = fmaf(y, x, (float)1.4249322787E-1);
    y = fmaf(y, x, (float)-1.6668057665E-1);
    y = fmaf(y, x, (float)2.0000714765E-1);
    y = fmaf(y, x, (float)-2.4999993993E-1);
    y = fmaf(y, x, (float)3.3333331174E-1);
    y = y * x;
    y = fmaf(y, z, e * (float)-2.12194440e-4);
    y = fmaf(-z, 0.5f, y);
    x = x + y;
    x = fmaf(e, (float)0.693359375, x);
    if (invalid) x = u2f(f2u(x) | 0xffffffffu);
    return x;
}

static void cephes_sincosf(float xin, float *s, float *c) {
    uint32_t sign_bit_sin = f2u(xin) & 0x80000000u;
    float x = u2f(f2u(xin) & 0x7fffffffu);
    float y = x * (float)1.27323954473516;
    int32_t imm2 = (int32_t)y; /* cvttps: truncation (x < 2^31 here) */
    imm2 = (int32_t)((uint32_t)(imm2 + 1) & ~1u);
    y = (float)imm2;
    int32_t imm4 = imm2;
    uint32_t swap_sign_bit_sin = ((uint32_t)imm2 & 4u) << 29;
    int poly_mask = ((uint32_t)imm2 & 2u) == 0;
    x = fmaf(y, (float)-0.78515625, x);
    x = fmaf(y, (float)-2.4187564849853515625e-4, x);
    x = fmaf(y, (float)-3.77489497744594108e-8, x);
    imm4 = (int32_t)((uint32_t)imm4 - 2u);
    uint32_t sign_bit_cos = ((~(uint32_t)imm4) & 4u) << 29;
    sign_bit_sin ^= swap_sign_bit_sin;

    float z = x * x;
    y = (float)2.443315711809948E-005;
    y = fmaf(y, z, (float)-1.388731625493765E-003);
    y = fmaf(y, z, (float)4.166664568298827E-002);
    y = y * z;
    y = fmaf(y, z, -(z * 0.5f));
    y = y + 1.0f;

    float y2 = (float)-1.9515295891E-4;
    y2 = fmaf(y2, z, (float)8.3321608736E-3);
    y2 = fmaf(y2, z, (float)-1.6666654611E-1);
    y2 = y2 * z;
    y2 = fmaf(y2, x, x);

    float ysin2 = poly_mask ? y2 : u2f(0);
    float ysin1 = poly_mask ? u2f(0) : y;
    y2 = y2 - ysin2;
    y = y - ysin1;
    float xmm1 = ysin1 + ysin2;
    float xmm2 = y + y2;
    *s = u2f(f2u(xmm1) ^ sign_bit_sin);
    *c = u2f(f2u(xmm2) ^ sign_bit_cos);
}

static void normal_fill_16_avx2(float *data) {
    const float two_pi = (float)(2.0f * 3.14159265358979323846);
    for (int j = 0; j < 8; j++) {
        float u1 = 1.0f - data[j];
        float u2 = data[j + 8];
        float radius = sqrtf(-2.0f * cephes_logf(u1));
        float theta = two_pi * u2;
        float sn, cs;
        cephes_sincosf(theta, &sn, &cs);
        float n1 = radius * cs;
        float n2 = radius * sn;
        data[j] = fmaf(n1, 1.0f, 0.0f);
        data[j + 8] = fmaf(n2, 1.0f, 0.0f);
    }
}

/* ATen's normal_fill_16<float> (non-vectorised kernel) */
static void normal_fill_16_default(float *data) {
    for (int j = 0; j < 8; j++) {
        const float u1 = 1.0f - data[j];
        const float u2 = data[j + 8];
        const float radius = sqrtf(-2.0f * logf(u1));
        const float theta = (float)((double)2.0f * 3.14159265358979323846 * (double)u2);
        data[j] = radius * cosf(theta) * 1.0f + 0.0f;
        data[j + 8] = radius * sinf(theta) * 1.0f + 0.0f;
    }
}

static void randn_impl(torch_gen *g, float *out, int64_t n, void (*fill16)(float *)) {
    if (n <= 0) return;
    if (n < 16) {
        for (int64_t i = 0; i < n; i++) out[i] = (float)normal_d(g);
        return;
    }
    for (int64_t i = 0; i < n; i++) out[i] = uniform_f(g);
    for (int64_t i = 0; i < n - 15; i += 16) fill16(out + i);
    if (n % 16 != 0) {
        float *d = out + n - 16;
        for (int i = 0; i < 16; i++) d[i] = uniform_f(g);
        fill16(d);
    }
}

void torch_randn(torch_gen *g, float *out, int64_t n) { randn_impl(g, out, n, normal_fill_16_avx2); }

void torch_randn_default_kernel(torch_gen *g, float *out, int64_t n) {
    randn_impl(g, out, n, normal_fill_16_default);
}
