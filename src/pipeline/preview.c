/* preview.c - live previews: the denoised estimate of a step decoded by
 * TAESD (pipeline/preview.h). */
#include "pipeline/preview.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/layers.h"
#include "pipeline/pixels.h"

int preview_due(const sdc_model *m, const sdc_request *r, int k, int calls) {
    return m->taesd && r->preview && r->preview_every > 0 && (k + 1) % r->preview_every == 0 && k + 1 < calls;
}

/* alphas_cumprod at a (possibly fractional) timestep, linearly interpolated */
static double alpha_at(const float *ac, int n, double t) {
    if (!(t > 0)) return ac[0];
    if (t >= n - 1) return ac[n - 1];
    int i = (int)t;
    double f = t - i;
    return (1 - f) * ac[i] + f * ac[i + 1];
}

void preview_x0(const sdc_scheduler *s, int k, const float *pred_x0, const float *model_in, const float *model_out,
                int64_t n, float *x0) {
    int filled = 0;
    for (int64_t i = 0; pred_x0 && i < n && !filled; i++) filled = pred_x0[i] != 0.0f;
    if (filled) {
        memcpy(x0, pred_x0, (size_t)n * sizeof(float));
        return;
    }
    int na;
    const float *ac = sched_alphas_cumprod(s, &na);
    const char *pt = sched_get_config(s)->prediction_type;
    if (!strcmp(pt, "sample")) { /* the UNet predicts x0 itself */
        memcpy(x0, model_out, (size_t)n * sizeof(float));
        return;
    }
    if (!ac || na < 1) { /* no schedule to undo: the noisy latents */
        memcpy(x0, model_in, (size_t)n * sizeof(float));
        return;
    }
    double a = alpha_at(ac, na, sched_timestep(s, k));
    float sa = (float)sqrt(a), sb = (float)sqrt(1 - a);
    if (!strcmp(pt, "v_prediction"))
        for (int64_t i = 0; i < n; i++) x0[i] = sa * model_in[i] - sb * model_out[i];
    else
        for (int64_t i = 0; i < n; i++) x0[i] = (model_in[i] - sb * model_out[i]) / sa;
}

sdc_status preview_emit(sdc_model *m, const sdc_request *r, const float *x0, int B, int C, int h, int w, int step,
                        int total) {
    int f = taesd_upscale(m->taesd);
    int64_t per = (int64_t)C * h * w, npix = (int64_t)h * f * w * f;
    float *z = NULL, *dec = NULL;
    sdc_image *imgs = calloc((size_t)B, sizeof *imgs);
    sdc_status st = imgs ? SDC_OK : sdc_fail(SDC_ERR_NOMEM, "out of memory");
    if (!st) st = alloc_f32(&z, per);
    if (!st) st = alloc_f32(&dec, 3 * npix);
    for (int b = 0; b < B && !st; b++) {
        if ((st = pixels_decode(m, 1, x0 + b * per, h, w, 0, z, dec))) break;
        if (!(imgs[b].rgb = malloc((size_t)npix * 3))) {
            st = sdc_fail(SDC_ERR_NOMEM, "out of memory");
            break;
        }
        imgs[b].width = w * f, imgs[b].height = h * f;
        (void)pixels_to_rgb(dec, npix, imgs[b].rgb, NULL); /* a non-finite preview shows black; the image reports it */
    }
    if (!st) r->preview(r->preview_ctx, step, total, imgs, B);
    free(z), free(dec);
    sdc_images_free(imgs, imgs ? B : 0);
    return st;
}
