/* latent_resize.c - F.interpolate on the CPU (see latent_resize.h). The
 * source index of each output index is computed per axis in float, as
 * torch's kernels do: scale = (float)in / out;
 *   nearest:        min(floor(o * scale), in - 1) (o >> 1 when out == 2 in)
 *   nearest-exact:  min(floor((o + 0.5) * scale), in - 1)
 *   bilinear:       s = max(scale * (o + 0.5) - 0.5, 0), i0 = (int)s,
 *                   i1 = i0 + (i0 < in - 1), l1 = s - i0, l0 = 1 - l1
 * and a bilinear output is (x[h0][w0] lw0 + x[h0][w1] lw1) lh0 + (x[h1][w0] lw0 + x[h1][w1] lw1) lh1. */
#include "pipeline/latent_resize.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const k_names[] = {"latent", "latent-nearest", "latent-nearest-exact"};
static const char *const k_a1111[] = {"Latent", "Latent (nearest)", "Latent (nearest-exact)"};

int latent_mode_parse(const char *name) {
    for (int i = 0; i < 3; i++)
        if (!strcmp(name, k_names[i])) return i;
    return -1;
}

const char *latent_mode_name(latent_mode m) { return k_names[m]; }
const char *latent_mode_a1111(latent_mode m) { return k_a1111[m]; }

typedef struct {
    int i0, i1;
    float l0, l1;
} tap;

static void axis(int in, int out, latent_mode mode, tap *t) {
    const float scale = (float)in / (float)out;
    for (int o = 0; o < out; o++) {
        if (in == out) {
            t[o] = (tap){o, o, 1.0f, 0.0f};
        } else if (mode == LATENT_BILINEAR) {
            float s = scale * ((float)o + 0.5f) - 0.5f;
            if (s < 0) s = 0;
            int i0 = (int)s;
            float l1 = s - (float)i0;
            l1 = l1 < 0 ? 0 : l1 > 1 ? 1 : l1;
            t[o] = (tap){i0, i0 + (i0 < in - 1), 1.0f - l1, l1};
        } else {
            int64_t i = mode == LATENT_NEAREST && out == 2 * in ? o >> 1
                        : mode == LATENT_NEAREST                ? (int64_t)floorf((float)o * scale)
                                                                : (int64_t)floorf(((float)o + 0.5f) * scale);
            if (i > in - 1) i = in - 1;
            t[o] = (tap){(int)i, (int)i, 1.0f, 0.0f};
        }
    }
}

void latent_resize(const float *in, int64_t planes, int h, int w, float *out, int oh, int ow, latent_mode mode) {
    tap *th = malloc((size_t)oh * sizeof *th), *tw = malloc((size_t)ow * sizeof *tw);
    if (!th || !tw) { /* tiny tables; the callers' buffers are far larger */
        free(th), free(tw);
        memset(out, 0, (size_t)(planes * oh * ow) * sizeof(float));
        return;
    }
    axis(h, oh, mode, th);
    axis(w, ow, mode, tw);
    for (int64_t p = 0; p < planes; p++) {
        const float *x = in + p * h * w;
        float *y = out + p * oh * ow;
        for (int i = 0; i < oh; i++) {
            const float *r0 = x + (int64_t)th[i].i0 * w, *r1 = x + (int64_t)th[i].i1 * w;
            for (int j = 0; j < ow; j++) {
                if (mode != LATENT_BILINEAR) {
                    y[(int64_t)i * ow + j] = r0[tw[j].i0];
                    continue;
                }
                float t0 = r0[tw[j].i0] * tw[j].l0 + r0[tw[j].i1] * tw[j].l1;
                float t1 = r1[tw[j].i0] * tw[j].l0 + r1[tw[j].i1] * tw[j].l1;
                y[(int64_t)i * ow + j] = t0 * th[i].l0 + t1 * th[i].l1;
            }
        }
    }
    free(th), free(tw);
}
