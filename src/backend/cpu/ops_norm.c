/* ops_norm.c - GroupNorm and LayerNorm. Statistics are accumulated in double
 * so the result is the correctly rounded float32 normalisation that the
 * reference approximates; both torch kernels agree with it to ~1 ulp. */
#include <math.h>

#include "backend/ops.h"

void op_group_norm(const float *x, float *y, int B, int C, int64_t HW, int G, float eps, const float *gamma,
                   const float *beta, int silu) {
    int cpg = C / G;
#pragma omp parallel for schedule(static)
    for (int64_t bg = 0; bg < (int64_t)B * G; bg++) {
        int64_t n = (int64_t)cpg * HW;
        const float *xs = x + bg * n;
        float *ys = y + bg * n;
        double sum = 0, sq = 0;
        for (int64_t i = 0; i < n; i++) sum += xs[i];
        double mean = sum / (double)n;
        for (int64_t i = 0; i < n; i++) {
            double d = xs[i] - mean;
            sq += d * d;
        }
        double rstd = 1.0 / sqrt(sq / (double)n + eps);
        int c0 = (int)(bg % G) * cpg;
        for (int c = 0; c < cpg; c++) {
            float a = (float)(rstd * gamma[c0 + c]);
            float bb = (float)(beta[c0 + c] - mean * rstd * gamma[c0 + c]);
            const float *xc = xs + c * HW;
            float *yc = ys + c * HW;
            if (silu) {
                for (int64_t i = 0; i < HW; i++) {
                    float v = xc[i] * a + bb;
                    yc[i] = v / (1.0f + expf(-v));
                }
            } else {
                for (int64_t i = 0; i < HW; i++) yc[i] = xc[i] * a + bb;
            }
        }
    }
}

void op_layer_norm(const float *x, float *y, int64_t rows, int D, float eps, const float *gamma, const float *beta) {
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * D;
        float *yr = y + r * D;
        double sum = 0, sq = 0;
        for (int i = 0; i < D; i++) sum += xr[i];
        double mean = sum / D;
        for (int i = 0; i < D; i++) {
            double d = xr[i] - mean;
            sq += d * d;
        }
        double rstd = 1.0 / sqrt(sq / D + eps);
        for (int i = 0; i < D; i++) yr[i] = (float)((xr[i] - mean) * rstd) * gamma[i] + beta[i];
    }
}
