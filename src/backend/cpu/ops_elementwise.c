/* ops_elementwise.c - activations, adds, layout changes, resizing and the
 * sinusoidal timestep embedding. */
#include <math.h>
#include <string.h>

#include "backend/ops.h"

void op_silu(float *x, int64_t n) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) x[i] = x[i] / (1.0f + expf(-x[i]));
}

void op_gelu(float *x, int64_t n) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * (float)M_SQRT1_2));
}

void op_quick_gelu(float *x, int64_t n) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) x[i] = x[i] * (1.0f / (1.0f + expf(-1.702f * x[i])));
}

void op_geglu(const float *x, float *y, int64_t rows, int D) {
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float *a = x + r * 2 * D, *g = a + D;
        float *o = y + r * D;
        for (int i = 0; i < D; i++) o[i] = a[i] * (0.5f * g[i] * (1.0f + erff(g[i] * (float)M_SQRT1_2)));
    }
}

void op_add(float *y, const float *x, int64_t n) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) y[i] += x[i];
}

void op_scale(float *y, float s, int64_t n) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) y[i] *= s;
}

void op_add_channel_bias(float *y, const float *v, int B, int C, int64_t HW) {
#pragma omp parallel for schedule(static)
    for (int64_t bc = 0; bc < (int64_t)B * C; bc++) {
        float a = v[bc];
        float *p = y + bc * HW;
        for (int64_t i = 0; i < HW; i++) p[i] += a;
    }
}

void op_upsample_nearest(const float *x, float *y, int64_t BC, int H, int W, int Ho, int Wo) {
    /* torch's nearest: src = min(floor(dst * (float)in/out), in-1) */
    float sh = (float)H / (float)Ho, sw = (float)W / (float)Wo;
#pragma omp parallel for schedule(static)
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
}

void op_nchw_to_nhwc(const float *x, float *y, int B, int C, int64_t HW) {
#pragma omp parallel for schedule(static)
    for (int64_t bp = 0; bp < (int64_t)B * HW; bp++) {
        int64_t b = bp / HW, p = bp % HW;
        for (int c = 0; c < C; c++) y[bp * C + c] = x[(b * C + c) * HW + p];
    }
}

void op_nhwc_to_nchw(const float *x, float *y, int B, int C, int64_t HW) {
#pragma omp parallel for schedule(static)
    for (int64_t bc = 0; bc < (int64_t)B * C; bc++) {
        int64_t b = bc / C, c = bc % C;
        for (int64_t p = 0; p < HW; p++) y[bc * HW + p] = x[(b * HW + p) * C + c];
    }
}

void op_timestep_embedding(const float *t, int n, int dim, int flip_sin_to_cos, float shift, float *out) {
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
