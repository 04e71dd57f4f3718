/* inpaint_prep.c - A1111's pixel work for img2img and inpainting (see
 * inpaint_prep.h). Resizes are PIL's Lanczos (sdc_image_resize); the blurs
 * are computed in floating point, so a blurred mask or a "fill" may differ
 * from A1111's by a level here and there (docs/server.md). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "inpaint_prep.h"
#include "sdc.h"

static void copy_rect(const uint8_t *src, int sw, int sx, int sy, uint8_t *dst, int dw, int dx, int dy, int w, int h,
                      int ch) {
    for (int y = 0; y < h; y++)
        memcpy(dst + ((int64_t)(dy + y) * dw + dx) * ch, src + ((int64_t)(sy + y) * sw + sx) * ch, (size_t)w * ch);
}

int prep_resize_mode(int mode, const uint8_t *in, int iw, int ih, int ch, uint8_t *out, int w, int h) {
    if (mode == 0) return sdc_image_resize(in, iw, ih, ch, out, w, h) == SDC_OK;
    const double ratio = (double)w / h, src_ratio = (double)iw / ih;
    int sw, sh;
    if (mode == 1) { /* cover */
        sw = ratio > src_ratio ? w : iw * h / ih;
        sh = ratio <= src_ratio ? h : ih * w / iw;
    } else { /* fit */
        sw = ratio < src_ratio ? w : iw * h / ih;
        sh = ratio >= src_ratio ? h : ih * w / iw;
    }
    if (sw < 1) sw = 1;
    if (sh < 1) sh = 1;
    uint8_t *r = malloc((size_t)sw * sh * ch);
    if (!r) return 0;
    if (sdc_image_resize(in, iw, ih, ch, r, sw, sh)) {
        free(r);
        return 0;
    }
    memset(out, 0, (size_t)w * h * ch);
    /* pasted at (w/2 - sw/2, h/2 - sh/2); the parts outside the canvas cut */
    int ox = w / 2 - sw / 2, oy = h / 2 - sh / 2;
    int sx = ox < 0 ? -ox : 0, sy = oy < 0 ? -oy : 0, dx = ox < 0 ? 0 : ox, dy = oy < 0 ? 0 : oy;
    int cw = sw - sx < w - dx ? sw - sx : w - dx, chh = sh - sy < h - dy ? sh - sy : h - dy;
    copy_rect(r, sw, sx, sy, out, w, dx, dy, cw, chh, ch);
    if (mode == 2) { /* the bands left: the nearest edge row / column stretched over them */
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                int cx = x < dx         ? dx
                         : x >= dx + cw ? dx + cw - 1
                                        : x,
                    cy = y < dy          ? dy
                         : y >= dy + chh ? dy + chh - 1
                                         : y;
                if (cx != x || cy != y)
                    memcpy(out + ((int64_t)y * w + x) * ch, out + ((int64_t)cy * w + cx) * ch, (size_t)ch);
            }
    }
    free(r);
    return 1;
}

void prep_binary_mask(const uint8_t *rgba, int64_t n, uint8_t *out) {
    int alpha = 0;
    for (int64_t i = 0; i < n && !alpha; i++) alpha = rgba[4 * i + 3] != 255;
    if (alpha) {
        for (int64_t i = 0; i < n; i++) out[i] = rgba[4 * i + 3] > 128 ? 255 : 0;
        return;
    }
    sdc_image_gray(rgba, 4, n, out);
    for (int64_t i = 0; i < n; i++) out[i] = out[i] > 127 ? 255 : 0;
}

static int reflect101(int i, int n) {
    if (n == 1) return 0;
    while (i < 0 || i >= n) i = i < 0 ? -i : 2 * n - 2 - i;
    return i;
}

/* one direction of cv2.GaussianBlur on 8-bit pixels (rounded after each direction, as A1111 runs x then y as
 * two calls) */
static void blur_1d(uint8_t *m, int w, int h, int s, int along_y) {
    if (s <= 0) return;
    const int r = (int)(2.5 * s + 0.5), k = 2 * r + 1, len = along_y ? h : w;
    double *kern = malloc(sizeof(double) * k), sum = 0;
    uint8_t *t = malloc((size_t)w * h);
    if (!kern || !t) {
        free(kern), free(t);
        return;
    }
    for (int i = 0; i < k; i++) sum += kern[i] = exp(-(double)(i - r) * (i - r) / (2.0 * s * s));
    for (int i = 0; i < k; i++) kern[i] /= sum;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double a = 0;
            for (int i = 0; i < k; i++) {
                int q = reflect101((along_y ? y : x) + i - r, len);
                a += kern[i] * m[along_y ? (int64_t)q * w + x : (int64_t)y * w + q];
            }
            t[(int64_t)y * w + x] = (uint8_t)fmin(255, floor(a + 0.5));
        }
    memcpy(m, t, (size_t)w * h);
    free(kern), free(t);
}

void prep_mask_blur(uint8_t *m, int w, int h, int sx, int sy) {
    blur_1d(m, w, h, sx, 0);
    blur_1d(m, w, h, sy, 1);
}

int prep_crop_region(const uint8_t *m, int w, int h, int pad, int pw, int ph, int box[4]) {
    int x1 = w, y1 = h, x2 = 0, y2 = 0; /* Image.getbbox: the nonzero pixels, x2 / y2 exclusive */
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            if (m[(int64_t)y * w + x]) {
                if (x < x1) x1 = x;
                if (y < y1) y1 = y;
                if (x + 1 > x2) x2 = x + 1;
                if (y + 1 > y2) y2 = y + 1;
            }
    if (x2 <= x1) return 0;
    if (pad) {
        x1 = x1 - pad > 0 ? x1 - pad : 0, y1 = y1 - pad > 0 ? y1 - pad : 0;
        x2 = x2 + pad < w ? x2 + pad : w, y2 = y2 + pad < h ? y2 + pad : h;
    }
    const double rc = (double)(x2 - x1) / (y2 - y1), rp = (double)pw / ph;
    /* expand_crop_region: grow the short side to the processing aspect, kept inside the image */
    int *a1 = rc > rp ? &y1 : &x1, *a2 = rc > rp ? &y2 : &x2, lim = rc > rp ? h : w;
    double want = rc > rp ? (x2 - x1) / rp : (y2 - y1) * rp;
    int diff = (int)(want - (*a2 - *a1));
    *a1 -= diff / 2;
    *a2 += diff - diff / 2;
    if (*a2 >= lim) {
        int d = *a2 - lim;
        *a2 -= d, *a1 -= d;
    }
    if (*a1 < 0) *a2 -= *a1, *a1 = 0;
    if (*a2 >= lim) *a2 = lim;
    box[0] = x1, box[1] = y1, box[2] = x2, box[3] = y2;
    return 1;
}

/* one box-blur pass of radius r (PIL's extended box: l whole pixels each side, the next at weight r - l; edges
 * repeated) over n lines of len values (element stride step, line stride line). pre: prefix sums over the line
 * extended by l + 1 edge values each side (len + 2l + 3 doubles), so a pass costs O(len) whatever the radius;
 * out: len floats. */
static void box_pass(float *v, int len, int n, int64_t step, int64_t line, double r, double *pre, float *out) {
    const int l = (int)r;
    const double a = r - l, norm = 1.0 / (2 * r + 1);
    for (int j = 0; j < n; j++) {
        float *p = v + j * line;
        pre[0] = 0; /* pre[k + 1]: the sum of the extended values at -l-1 .. k-l-1 */
        for (int k = 0; k < len + 2 * l + 2; k++) {
            int q = k - l - 1;
            q = q < 0 ? 0 : q >= len ? len - 1 : q;
            pre[k + 1] = pre[k] + p[q * step];
        }
        for (int i = 0; i < len; i++) {
            double s = pre[i + 2 * l + 2] - pre[i + 1]; /* values at i-l .. i+l */
            int lo = i - l - 1 < 0 ? 0 : i - l - 1, hi = i + l + 1 >= len ? len - 1 : i + l + 1;
            out[i] = (float)((s + a * ((double)p[lo * step] + p[hi * step])) * norm);
        }
        for (int i = 0; i < len; i++) p[i * step] = out[i];
    }
}

/* PIL's GaussianBlur(radius): three extended box blurs each way (_gaussian_blur_radius) */
static sdc_status gauss_box(float *v, int w, int h, double radius) {
    if (radius <= 0) return SDC_OK;
    const double s2 = radius * radius / 3, L = sqrt(12 * s2 + 1);
    const double l = floor((L - 1) / 2);
    const double a = (2 * l + 1) * (l * (l + 1) - 3 * s2) / (6 * (s2 - (l + 1) * (l + 1)));
    const double r = l + a;
    const int m = w > h ? w : h;
    double *pre = malloc(sizeof(double) * ((size_t)m + 2 * (size_t)r + 4));
    float *out = malloc(sizeof(float) * (size_t)m);
    if (!pre || !out) {
        free(pre), free(out);
        return SDC_ERR_NOMEM;
    }
    for (int p = 0; p < 3; p++) box_pass(v, w, h, 1, w, r, pre, out);
    for (int p = 0; p < 3; p++) box_pass(v, h, w, w, 1, r, pre, out);
    free(pre), free(out);
    return SDC_OK;
}

int prep_fill(uint8_t *rgb, const uint8_t *mask, int w, int h) {
    const int64_t n = (int64_t)w * h;
    float *pm = malloc(sizeof(float) * 4 * n), *b = malloc(sizeof(float) * 4 * n),
          *acc = calloc(4 * (size_t)n, sizeof(float));
    if (!pm || !b || !acc) {
        free(pm), free(b), free(acc);
        return 0;
    }
    for (int64_t i = 0; i < n; i++) { /* the unmasked pixels, premultiplied (RGBa); the masked transparent */
        const float al = (255 - mask[i]) / 255.0f;
        for (int c = 0; c < 3; c++) pm[c * n + i] = rgb[3 * i + c] * al;
        pm[3 * n + i] = al;
    }
    static const struct {
        double radius;
        int repeats;
    } steps[] = {{256, 1}, {64, 1}, {16, 2}, {4, 4}, {2, 2}, {0, 1}};
    for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
        memcpy(b, pm, sizeof(float) * 4 * n);
        for (int c = 0; c < 4; c++)
            if (gauss_box(b + c * n, w, h, steps[s].radius)) {
                free(pm), free(b), free(acc);
                return 0;
            }
        for (int rep = 0; rep < steps[s].repeats; rep++)
            for (int64_t i = 0; i < n; i++) { /* alpha_composite of the blurred layer (premultiplied: over) */
                const float sa = b[3 * n + i];
                for (int c = 0; c < 4; c++) acc[c * n + i] = b[c * n + i] + acc[c * n + i] * (1 - sa);
            }
    }
    for (int64_t i = 0; i < n; i++) {
        const float al = acc[3 * n + i];
        for (int c = 0; c < 3; c++)
            rgb[3 * i + c] = al > 0 ? (uint8_t)fminf(255, floorf(acc[c * n + i] / al + 0.5f)) : 0;
    }
    free(pm), free(b), free(acc);
    return 1;
}

int prep_overlay(const uint8_t *gen, int gw, int gh, const uint8_t *orig, const uint8_t *mask, int ow, int oh,
                 const int paste[4], uint8_t *out) {
    const uint8_t *base = gen;
    uint8_t *placed = NULL;
    int px = 0, py = 0, pw = ow, ph = oh;
    if (paste) { /* uncrop: the image resized (crop and resize) to the region it came from */
        px = paste[0], py = paste[1], pw = paste[2], ph = paste[3];
        if (!(placed = malloc((size_t)pw * ph * 3)) || !prep_resize_mode(1, gen, gw, gh, 3, placed, pw, ph)) {
            free(placed);
            return 0;
        }
        base = placed;
    } else if (gw != ow || gh != oh) {
        return 0;
    }
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++) {
            const int64_t i = (int64_t)y * ow + x;
            const int in = x >= px && x < px + pw && y >= py && y < py + ph;
            const unsigned sa = 255u - mask[i], da = in ? 255u : 0u; /* the overlay's alpha; the canvas's */
            for (int c = 0; c < 3; c++) {
                const unsigned s = orig[3 * i + c], d = in ? base[((int64_t)(y - py) * pw + (x - px)) * 3 + c] : 0;
                unsigned v;
                if (da == 255) { /* PIL's alpha_composite over an opaque pixel, its fixed point */
                    unsigned t = (s * sa + d * (255 - sa)) * 128 + (0x80 << 7);
                    v = (((t >> 8) + t) >> 8) >> 7;
                } else {
                    v = sa ? s : 0;
                }
                out[3 * i + c] = (uint8_t)v;
            }
        }
    free(placed);
    return 1;
}
