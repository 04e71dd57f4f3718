/* sleef_f32.c - torch.log / torch.exp of float32 tensors as torch's CPU
 * kernels compute them: its vectorised kernels call Sleef_logf8_u10 and
 * Sleef_expf8_u10 (AVX2 + FMA build) for every element, tails included.
 * Sleef's xlogf_u1 and xexpf are reproduced here lane for lane; they are not
 * always correctly rounded, so libm's logf / expf would differ by an ulp now
 * and then, and a schedule built from them would not be diffusers'. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "sched/sched_internal.h"

typedef struct {
    float x, y;
} df2;

static inline uint32_t fbits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static inline float bitsf(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static inline df2 dfadd2_ff(float x, float y) {
    float s = x + y, v = s - x;
    return (df2){s, (x - (s - v)) + (y - v)};
}
static inline df2 dfadd_22(df2 x, df2 y) {
    float s = x.x + y.x;
    return (df2){s, (((x.x - s) + y.x) + x.y) + y.y};
}
static inline df2 dfadd_2f(df2 x, float y) {
    float s = x.x + y;
    return (df2){s, ((x.x - s) + y) + x.y};
}
static inline df2 dfmul_2f(df2 x, float y) {
    float s = x.x * y;
    return (df2){s, fmaf(x.y, y, fmaf(x.x, y, -s))};
}
static inline df2 dfdiv_22(df2 n, df2 d) {
    float t = 1.0f / d.x;
    float s = n.x * t;
    float u = fmaf(t, n.x, -s);
    float v = fmaf(-d.y, t, fmaf(-d.x, t, 1.0f));
    return (df2){s, fmaf(s, v, fmaf(n.y, t, u))};
}

float sleef_logf_u1(float d) {
    int o = d < 1.17549435e-38f;
    if (o) d = d * ((float)(INT64_C(1) << 32) * (float)(INT64_C(1) << 32));
    int32_t e = (int32_t)((fbits(d * (1.0f / 0.75f)) >> 23) & 0xff) - 0x7f;
    float m = bitsf(fbits(d) + ((uint32_t)(-e) << 23));
    if (o) e -= 64;
    df2 s = dfmul_2f((df2){0.69314718246459960938f, -1.904654323148236017e-09f}, (float)e);
    df2 x = dfdiv_22(dfadd2_ff(-1.0f, m), dfadd2_ff(1.0f, m));
    float x2 = x.x * x.x;
    float t = 0.3027294874e+0f;
    t = fmaf(t, x2, 0.3996108174e+0f);
    t = fmaf(t, x2, 0.6666694880e+0f);
    s = dfadd_22(s, (df2){x.x * 2.0f, x.y * 2.0f});
    s = dfadd_2f(s, (x2 * x.x) * t);
    float r = s.x + s.y;
    if (isinf(d) && d > 0) r = INFINITY;
    if (d < 0 || isnan(d)) r = NAN;
    if (d == 0) r = -INFINITY;
    return r;
}

static inline float pow2i(int32_t q) { return bitsf((uint32_t)(q + 0x7f) << 23); }

float sleef_expf(float d) {
    const float R_LN2f = 1.442695040888963407359924681001892137426645954152985934135449406931f;
    const float L2Uf = 0.693145751953125f, L2Lf = 1.428606765330187045e-06f;
    /* Sleef's own results for these, returned before the int conversion (which
     * C leaves undefined for NaN and huge values; cvtps2dq does not) */
    if (isnan(d)) return d;
    if (d < -104) return 0;
    if (100 < d) return INFINITY;
    int32_t q = (int32_t)nearbyintf(d * R_LN2f); /* cvtps2dq: round to nearest even */
    float s = fmaf((float)q, -L2Uf, d);
    s = fmaf((float)q, -L2Lf, s);
    float u = 0.000198527617612853646278381f;
    u = fmaf(u, s, 0.00139304355252534151077271f);
    u = fmaf(u, s, 0.00833336077630519866943359f);
    u = fmaf(u, s, 0.0416664853692054748535156f);
    u = fmaf(u, s, 0.166666671633720397949219f);
    u = fmaf(u, s, 0.5f);
    u = 1.0f + fmaf(s * s, u, s);
    int32_t h = q >> 1; /* vldexp2: u * 2^(q>>1) * 2^(q - (q>>1)) */
    return u * pow2i(h) * pow2i(q - h);
}
