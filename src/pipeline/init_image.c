/* init_image.c - an img2img request's init image and mask as diffusers'
 * VaeImageProcessor hands them to the pipeline: resized with PIL's Lanczos
 * filter (sdc_image_resize) when their size is not the output's, then the
 * image scaled to [-1, 1] and the mask binarized at one half. */
#include <stdlib.h>

#include "nn/layers.h"
#include "pipeline/img2img.h"

/* pixels of `channels` interleaved bytes at W x H: the request's, or resized (malloc'd; *owned set) */
static sdc_status fitted(const uint8_t *px, int w, int h, int channels, int W, int H, const uint8_t **out,
                         uint8_t **owned) {
    *owned = NULL;
    *out = px;
    if (w == W && h == H) return SDC_OK;
    if (!(*owned = malloc((size_t)W * H * channels))) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    sdc_status st = sdc_image_resize(px, w, h, channels, *owned, W, H);
    if (st) {
        free(*owned);
        *owned = NULL;
        return st;
    }
    *out = *owned;
    return SDC_OK;
}

sdc_status init_image_tensor(const sdc_request *r, int W, int H, float **out) {
    const uint8_t *px;
    uint8_t *owned;
    SDC_TRY(fitted(r->init_image, r->init_width, r->init_height, 3, W, H, &px, &owned));
    int64_t npix = (int64_t)W * H;
    sdc_status st = alloc_f32(out, 3 * npix);
    if (!st) /* np.array(image).astype(np.float32) / 255.0, then 2.0 * x - 1.0 as float32 tensors */
        for (int c = 0; c < 3; c++)
            for (int64_t p = 0; p < npix; p++) (*out)[c * npix + p] = 2.0f * ((float)px[p * 3 + c] / 255.0f) - 1.0f;
    free(owned);
    return st;
}

sdc_status init_mask_tensor(const sdc_request *r, int W, int H, float **out) {
    const uint8_t *px;
    uint8_t *owned;
    SDC_TRY(fitted(r->mask, r->mask_width, r->mask_height, 1, W, H, &px, &owned));
    int64_t npix = (int64_t)W * H;
    sdc_status st = alloc_f32(out, npix);
    if (!st)
        for (int64_t p = 0; p < npix; p++) (*out)[p] = (float)px[p] / 255.0f < 0.5f ? 0.0f : 1.0f;
    free(owned);
    return st;
}
