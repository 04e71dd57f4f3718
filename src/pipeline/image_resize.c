/* image_resize.c - sdc_image_resize: 8-bit images resized as Pillow's
 * Image.resize(size, Image.LANCZOS) resizes them (libImaging/Resample.c's
 * algorithm, written here from its description): a separable filter, the
 * horizontal pass first over the rows the vertical pass will read, each
 * output pixel a weighted sum with weights
 *     lanczos3((x - center + 0.5) / filterscale), normalised to sum 1,
 * converted to 22-bit fixed point (rounded half away from zero) and summed
 * in integers, the intermediate rows clipped to 8 bits. diffusers'
 * VaeImageProcessor fits init images and masks to the output size this way,
 * and so does A1111, so sdc's resized init image is the one diffusers feeds
 * its VAE, byte for byte. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "sdc.h"

#define PRECISION_BITS (32 - 8 - 2)
#define LANCZOS_SUPPORT 3.0

static double sinc(double x) {
    if (x == 0.0) return 1.0;
    x *= M_PI;
    return sin(x) / x;
}

static double lanczos(double x) { return -3.0 <= x && x < 3.0 ? sinc(x) * sinc(x / 3.0) : 0.0; }

/* One axis: in_size -> out_size. bounds[2 * o] is the first input index of
 * output o, bounds[2 * o + 1] how many; kk[o * ksize ...] the fixed-point
 * weights. Returns ksize, 0 when out of memory. */
static int coeffs(int in_size, int out_size, int **bounds_out, int32_t **kk_out) {
    double scale = (double)in_size / out_size, filterscale = scale < 1.0 ? 1.0 : scale;
    double support = LANCZOS_SUPPORT * filterscale;
    int ksize = (int)ceil(support) * 2 + 1;
    double *w = malloc((size_t)ksize * sizeof(double));
    int *bounds = malloc((size_t)out_size * 2 * sizeof(int));
    int32_t *kk = calloc((size_t)out_size * ksize, sizeof(int32_t));
    if (!w || !bounds || !kk) {
        free(w), free(bounds), free(kk);
        return 0;
    }
    for (int o = 0; o < out_size; o++) {
        double center = (o + 0.5) * scale, ss = 1.0 / filterscale, ww = 0.0;
        int xmin = (int)(center - support + 0.5), xmax = (int)(center + support + 0.5); /* C truncation, as Pillow */
        if (xmin < 0) xmin = 0;
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        for (int x = 0; x < xmax; x++) {
            w[x] = lanczos((x + xmin - center + 0.5) * ss);
            ww += w[x];
        }
        for (int x = 0; x < xmax; x++) {
            double k = ww != 0.0 ? w[x] / ww : w[x];
            kk[(int64_t)o * ksize + x] =
                (int32_t)(k < 0 ? -0.5 + k * (1 << PRECISION_BITS) : 0.5 + k * (1 << PRECISION_BITS));
        }
        bounds[2 * o] = xmin;
        bounds[2 * o + 1] = xmax;
    }
    free(w);
    *bounds_out = bounds;
    *kk_out = kk;
    return ksize;
}

static uint8_t clip8(int32_t v) {
    if (v >= (1 << PRECISION_BITS << 8)) return 255;
    if (v <= 0) return 0;
    return (uint8_t)(v >> PRECISION_BITS);
}

/* rows [y0, y0 + rows) of in (width w) -> out (width ow), c channels */
static void pass_h(const uint8_t *in, int w, int c, int y0, int rows, uint8_t *out, int ow, int ksize,
                   const int *bounds, const int32_t *kk) {
    for (int y = 0; y < rows; y++) {
        const uint8_t *src = in + (int64_t)(y0 + y) * w * c;
        for (int o = 0; o < ow; o++) {
            const int32_t *k = kk + (int64_t)o * ksize;
            int xmin = bounds[2 * o], n = bounds[2 * o + 1];
            for (int ch = 0; ch < c; ch++) {
                int32_t ss = 1 << (PRECISION_BITS - 1);
                for (int x = 0; x < n; x++) ss += src[(xmin + x) * c + ch] * k[x];
                out[((int64_t)y * ow + o) * c + ch] = clip8(ss);
            }
        }
    }
}

/* in (width w, rows from row 0) -> out (oh rows); bounds already relative to in's first row */
static void pass_v(const uint8_t *in, int w, int c, uint8_t *out, int oh, int ksize, const int *bounds,
                   const int32_t *kk) {
    int64_t stride = (int64_t)w * c;
    for (int o = 0; o < oh; o++) {
        const int32_t *k = kk + (int64_t)o * ksize;
        int ymin = bounds[2 * o], n = bounds[2 * o + 1];
        for (int64_t x = 0; x < stride; x++) {
            int32_t ss = 1 << (PRECISION_BITS - 1);
            for (int y = 0; y < n; y++) ss += in[(ymin + y) * stride + x] * k[y];
            out[o * stride + x] = clip8(ss);
        }
    }
}

sdc_status sdc_image_resize(const uint8_t *in, int w, int h, int c, uint8_t *out, int ow, int oh) {
    if (w < 1 || h < 1 || ow < 1 || oh < 1 || c < 1 || c > 4 || w > 65536 || h > 65536 || ow > 65536 || oh > 65536)
        return sdc_fail(SDC_ERR_ARG, "image resize %dx%d -> %dx%d (%d channels): sizes must be 1..65536, 1..4 channels",
                        w, h, ow, oh, c);
    if (w == ow && h == oh) { /* Pillow returns a copy */
        memcpy(out, in, (size_t)w * h * c);
        return SDC_OK;
    }
    int *bh = NULL, *bv = NULL;
    int32_t *kh = NULL, *kv = NULL;
    uint8_t *tmp = NULL;
    sdc_status st = SDC_OK;
    int ksh = coeffs(w, ow, &bh, &kh), ksv = coeffs(h, oh, &bv, &kv);
    if (!ksh || !ksv) {
        st = sdc_fail(SDC_ERR_NOMEM, "out of memory resizing %dx%d to %dx%d", w, h, ow, oh);
        goto done;
    }
    int need_h = ow != w, need_v = oh != h;
    /* the horizontal pass covers only the rows the vertical one reads */
    int first = bv[0], last = bv[2 * (oh - 1)] + bv[2 * (oh - 1) + 1];
    if (need_h && need_v) {
        if (!(tmp = malloc((size_t)ow * (last - first) * c))) {
            st = sdc_fail(SDC_ERR_NOMEM, "out of memory resizing %dx%d to %dx%d", w, h, ow, oh);
            goto done;
        }
        pass_h(in, w, c, first, last - first, tmp, ow, ksh, bh, kh);
        for (int o = 0; o < oh; o++) bv[2 * o] -= first;
        pass_v(tmp, ow, c, out, oh, ksv, bv, kv);
    } else if (need_h) {
        pass_h(in, w, c, 0, h, out, ow, ksh, bh, kh);
    } else {
        pass_v(in, w, c, out, oh, ksv, bv, kv);
    }
done:
    free(bh), free(bv), free(kh), free(kv), free(tmp);
    return st;
}
