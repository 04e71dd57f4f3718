/* image.c - generated images as PNG files, on disk and in memory, and the
 * PNGs front ends are given (their pixels and "parameters" infotext). */
#include <stdlib.h>

#include "io/png_io.h"
#include "io/png_text.h"
#include "sdc.h"

void sdc_images_free(sdc_image *images, int n) {
    if (!images) return;
    for (int i = 0; i < n; i++) {
        free(images[i].rgb);
        free(images[i].infotext);
    }
    free(images);
}

sdc_status sdc_image_save_png(const sdc_image *img, const char *path) {
    return png_write_rgb(path, img->rgb, img->width, img->height, "parameters", img->infotext);
}

sdc_status sdc_image_encode_png(const sdc_image *img, void **png, size_t *len) {
    return png_encode_rgb_mem(img->rgb, img->width, img->height, "parameters", img->infotext, png, len);
}

sdc_status sdc_png_decode(const void *png, size_t len, uint8_t **rgb, int *width, int *height, char **params) {
    if (!rgb) { /* the chunks only: text without a byte of pixel memory */
        uint32_t w = 0, h = 0;
        if (params) *params = NULL;
        SDC_TRY(png_text_read(png, len, "parameters", params, &w, &h));
        if (width) *width = (int)w;
        if (height) *height = (int)h;
        return SDC_OK;
    }
    int w = 0, h = 0;
    SDC_TRY(png_read_rgb_mem(png, len, rgb, &w, &h, params));
    if (width) *width = w;
    if (height) *height = h;
    return SDC_OK;
}
