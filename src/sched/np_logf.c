/* np_logf.c - numpy.log of a float32 array as numpy computes it on x86 with
 * AVX2 + FMA3 or AVX512F (its simd_log_FLOAT loops; both vector widths do the
 * same arithmetic). The diffusers schedules take np.log of the float32
 * training sigmas (log_sigmas, the table _sigma_to_t interpolates in); numpy's
 * loop is within 4 ulp but not correctly rounded, and an ulp in a log sigma
 * moves a Karras or midpoint timestep by more than its float32 ulp.
 *
 * The method (numpy's): x = m * 2^e with m in [1/2, 1), doubled into
 * (sqrt(1/2), sqrt(2)] (e decremented); log(x) = P(m - 1) / Q(m - 1) + e * ln 2,
 * P and Q degree-5 minimax polynomials evaluated by float32 FMA chains. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "sched/sched_internal.h"

/* numpy's NPY_COEFF_{P,Q}k_LOGf, rounded to float32 as its float literals are */
static const float P[6] = {0.0f,
                           9.999999999999998702752e-01f,
                           2.112677543073053063722e+00f,
                           1.480000633576506585156e+00f,
                           3.808837741388407920751e-01f,
                           2.589979117907922693523e-02f};
static const float Q[6] = {1.0f,
                           2.612677543073109236779e+00f,
                           2.453006071784736363091e+00f,
                           9.864942958519418960339e-01f,
                           1.546476374983906719538e-01f,
                           5.875095403124574342950e-03f};

float np_logf(float x) {
    if (isnan(x)) return x;
    if (x < 0) return -NAN;
    if (x == 0) return -INFINITY;
    if (isinf(x)) return INFINITY;
    float e_bias = 0.0f;
    if (x < FLT_MIN) { /* denormals: scaled by 2^100 first */
        x = x * 0x1p100f;
        e_bias = 100.0f;
    }
    uint32_t b;
    memcpy(&b, &x, 4);
    float e = (float)((int32_t)(b >> 23) - 126) - e_bias;
    const uint32_t mb = (b & 0x7fffffu) | 0x3f000000u; /* the mantissa with exponent 126: [1/2, 1) */
    float m;
    memcpy(&m, &mb, 4);
    if (m <= 0.707106781186547524400844362104849039f) {
        m = m + m;
        e = e - 1.0f;
    }
    const float y = m - 1.0f;
    float num = fmaf(P[5], y, P[4]), den = fmaf(Q[5], y, Q[4]);
    for (int k = 3; k >= 0; k--) {
        num = fmaf(num, y, P[k]);
        den = fmaf(den, y, Q[k]);
    }
    return fmaf(e, 0.693147180559945309417232121458176568f, num / den);
}
