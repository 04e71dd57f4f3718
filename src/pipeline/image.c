/* image.c - generated images as PNG files, on disk and in memory, and the
 * PNGs front ends are given (their pixels and "parameters" infotext). */
#include <stdlib.h>

#include "io/png_io.h"
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
    uint8_t *pixels = NULL;
    int w = 0, h = 0;
    SDC_TRY(png_read_rgb_mem(png, len, &pixels, &w, &h, params));
    if (rgb) *rgb = pixels;
    else free(pixels);
    if (width) *width = w;
    if (height) *height = h;
    return SDC_OK;
}
