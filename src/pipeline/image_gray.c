/* image_gray.c - the pixel conversions front ends need for init images and
 * masks: PNG to RGBA (a mask's alpha, A1111's rule for masks with
 * transparency) and PIL's "L" conversion (diffusers' mask processor). */
#include <spng.h>
#include <stdlib.h>

#include "core/status.h"
#include "sdc.h"

sdc_status sdc_png_decode_rgba(const void *png, size_t len, uint8_t **rgba, int *width, int *height) {
    *rgba = NULL;
    spng_ctx *ctx = spng_ctx_new(0);
    struct spng_ihdr ihdr;
    size_t size = 0;
    int err = ctx ? 0 : SPNG_EMEM;
    if (!err) {
        spng_set_crc_action(ctx, SPNG_CRC_ERROR, SPNG_CRC_ERROR);
        spng_set_image_limits(ctx, 16384, 16384);
        spng_set_chunk_limits(ctx, 64u << 20, 256u << 20);
        err = spng_set_png_buffer(ctx, png, len);
    }
    if (!err) err = spng_get_ihdr(ctx, &ihdr);
    if (!err) err = spng_decoded_image_size(ctx, SPNG_FMT_RGBA8, &size);
    uint8_t *buf = NULL;
    if (!err && !(buf = malloc(size))) err = SPNG_EMEM;
    if (!err) err = spng_decode_image(ctx, buf, size, SPNG_FMT_RGBA8, SPNG_DECODE_TRNS);
    spng_ctx_free(ctx);
    if (err) {
        free(buf);
        return sdc_fail(SDC_ERR_FORMAT, "not a readable PNG (%zu bytes): %s", len, spng_strerror(err));
    }
    *rgba = buf;
    *width = (int)ihdr.width;
    *height = (int)ihdr.height;
    return SDC_OK;
}

void sdc_image_gray(const uint8_t *px, int channels, int64_t n, uint8_t *gray) {
    for (int64_t i = 0; i < n; i++, px += channels) /* Pillow's L24 */
        gray[i] = (uint8_t)((px[0] * 19595u + px[1] * 38470u + px[2] * 7471u + 0x8000u) >> 16);
}
