/* png_mem.c - PNG encoding into a buffer with libspng (settings as in
 * src/io/png_io.c: 8-bit RGB, default compression, one tEXt chunk). */
#include "dataset/png_mem.h"

#include <spng.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

sdc_status png_encode_mem(const sdc_image *img, unsigned char **png, size_t *n) {
    *png = NULL;
    *n = 0;
    spng_ctx *ctx = spng_ctx_new(SPNG_CTX_ENCODER);
    int err = ctx ? 0 : SPNG_EMEM;
    if (!err) err = spng_set_option(ctx, SPNG_ENCODE_TO_BUFFER, 1);
    struct spng_ihdr ihdr = {.width = (uint32_t)img->width, .height = (uint32_t)img->height, .bit_depth = 8,
                             .color_type = SPNG_COLOR_TYPE_TRUECOLOR};
    if (!err) err = spng_set_ihdr(ctx, &ihdr);
    struct spng_text text;
    memset(&text, 0, sizeof text);
    if (!err && img->infotext) {
        snprintf(text.keyword, sizeof text.keyword, "parameters");
        text.type = SPNG_TEXT;
        text.length = strlen(img->infotext);
        text.text = img->infotext;
        err = spng_set_text(ctx, &text, 1);
    }
    if (!err)
        err = spng_encode_image(ctx, img->rgb, (size_t)img->width * img->height * 3, SPNG_FMT_PNG,
                                SPNG_ENCODE_FINALIZE);
    if (!err) {
        *png = spng_get_png_buffer(ctx, n, &err);
        if (!*png && !err) err = SPNG_EMEM;
    }
    spng_ctx_free(ctx);
    if (err) return sdc_fail(SDC_ERR_IO, "PNG encoding failed: %s", spng_strerror(err));
    return SDC_OK;
}
