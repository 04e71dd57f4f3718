/* png_io.c - PNG encode/decode with libspng. Everything is encoded in
 * memory first; files are written from that buffer to a temporary name,
 * fsync'd and renamed into place. The infotext goes into tEXt when it is
 * plain ASCII and into iTXt (UTF-8) otherwise, as A1111/PIL do, since tEXt
 * is Latin-1 by definition. */
#include "io/png_io.h"

#include <errno.h>
#include <limits.h>
#include <spng.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/json.h"
#include "io/png_text.h"
#include "io/temp_files.h"

static int is_ascii(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80) return 0;
    return 1;
}

sdc_status png_encode_rgb_mem(const uint8_t *rgb, int w, int h, const char *text_key, const char *text_value,
                              void **png, size_t *png_size) {
    *png = NULL;
    *png_size = 0;
    spng_ctx *ctx = spng_ctx_new(SPNG_CTX_ENCODER);
    int err = ctx ? 0 : SPNG_EMEM;
    if (!err) err = spng_set_option(ctx, SPNG_ENCODE_TO_BUFFER, 1);
    struct spng_ihdr ihdr = {.width = (uint32_t)w, .height = (uint32_t)h, .bit_depth = 8,
                             .color_type = SPNG_COLOR_TYPE_TRUECOLOR};
    if (!err) err = spng_set_ihdr(ctx, &ihdr);
    struct spng_text text;
    memset(&text, 0, sizeof text);
    if (!err && text_key && text_value) {
        snprintf(text.keyword, sizeof text.keyword, "%s", text_key);
        text.type = is_ascii(text_value) ? SPNG_TEXT : SPNG_ITXT;
        text.language_tag = "";
        text.translated_keyword = "";
        text.length = strlen(text_value);
        text.text = (char *)text_value;
        err = spng_set_text(ctx, &text, 1);
    }
    if (!err) err = spng_encode_image(ctx, rgb, (size_t)w * h * 3, SPNG_FMT_PNG, SPNG_ENCODE_FINALIZE);
    void *buf = NULL;
    size_t n = 0;
    if (!err) buf = spng_get_png_buffer(ctx, &n, &err); /* ownership passes to us (malloc'd) */
    spng_ctx_free(ctx);
    if (err) {
        free(buf);
        return sdc_fail(SDC_ERR_IO, "PNG encoding (%dx%d) failed: %s", w, h, spng_strerror(err));
    }
    *png = buf;
    *png_size = n;
    return SDC_OK;
}

sdc_status png_write_rgb(const char *path, const uint8_t *rgb, int w, int h, const char *text_key,
                         const char *text_value) {
    void *png;
    size_t n;
    SDC_TRY(png_encode_rgb_mem(rgb, w, h, text_key, text_value, &png, &n));
    char tmp[PATH_MAX];
    if (!temp_name(path, tmp, sizeof tmp)) {
        free(png);
        return sdc_fail(SDC_ERR_IO, "%s: path too long", path);
    }
    temp_clean_stale(path); /* what a run killed while writing this name left */
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        free(png);
        return sdc_fail(SDC_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    }
    int ok = fwrite(png, 1, n, fp) == n && fflush(fp) == 0 && fsync(fileno(fp)) == 0;
    int e = errno;
    free(png);
    if (fclose(fp) || !ok) {
        unlink(tmp);
        return sdc_fail(SDC_ERR_IO, "%s: write failed: %s", path, strerror(e));
    }
    if (rename(tmp, path)) {
        e = errno;
        unlink(tmp);
        return sdc_fail(SDC_ERR_IO, "%s: cannot write: %s", path, strerror(e));
    }
    return SDC_OK;
}

sdc_status png_read_rgb_mem(const void *png, size_t png_size, uint8_t **rgb, int *w, int *h, char **params) {
    *rgb = NULL;
    if (params) *params = NULL;
    spng_ctx *ctx = spng_ctx_new(0);
    struct spng_ihdr ihdr;
    size_t size = 0;
    int err = ctx ? 0 : SPNG_EMEM;
    if (!err) {
        spng_set_crc_action(ctx, SPNG_CRC_ERROR, SPNG_CRC_ERROR);
        spng_set_image_limits(ctx, 16384, 16384);
        /* the text is read by png_text_read (capped); these bound what
         * libspng itself keeps of ancillary chunks */
        spng_set_chunk_limits(ctx, 64u << 20, 16u << 20);
        err = spng_set_png_buffer(ctx, png, png_size);
    }
    if (!err) err = spng_get_ihdr(ctx, &ihdr);
    if (!err) err = spng_decoded_image_size(ctx, SPNG_FMT_RGB8, &size);
    uint8_t *buf = NULL;
    if (!err && !(buf = malloc(size))) err = SPNG_EMEM;
    if (!err) err = spng_decode_image(ctx, buf, size, SPNG_FMT_RGB8, 0);
    spng_ctx_free(ctx);
    if (err) {
        free(buf);
        return sdc_fail(SDC_ERR_FORMAT, "not a readable PNG (%zu bytes): %s", png_size, spng_strerror(err));
    }
    if (params) {
        sdc_status st = png_text_read(png, png_size, "parameters", params, NULL, NULL);
        if (st) {
            free(buf);
            return st;
        }
    }
    *rgb = buf;
    *w = (int)ihdr.width;
    *h = (int)ihdr.height;
    return SDC_OK;
}

sdc_status png_read_rgb(const char *path, uint8_t **rgb, int *w, int *h, char **params) {
    char *buf;
    size_t n;
    *rgb = NULL;
    if (params) *params = NULL;
    SDC_TRY(sdc_read_file(path, &buf, &n));
    sdc_status st = png_read_rgb_mem(buf, n, rgb, w, h, params);
    free(buf);
    if (st) return sdc_wrap(st, "%s", path);
    return SDC_OK;
}
