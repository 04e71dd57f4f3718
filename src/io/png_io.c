/* png_io.c - PNG encode/decode with libspng. */
#include "io/png_io.h"

#include <errno.h>
#include <limits.h>
#include <spng.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

sdc_status png_write_rgb(const char *path, const uint8_t *rgb, int w, int h, const char *text_key,
                         const char *text_value) {
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.tmp%d", path, (int)getpid());
    FILE *fp = fopen(tmp, "wb");
    if (!fp) return sdc_fail(SDC_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    spng_ctx *ctx = spng_ctx_new(SPNG_CTX_ENCODER);
    int err = ctx ? 0 : SPNG_EMEM;
    if (!err) err = spng_set_png_file(ctx, fp);
    struct spng_ihdr ihdr = {.width = (uint32_t)w, .height = (uint32_t)h, .bit_depth = 8,
                             .color_type = SPNG_COLOR_TYPE_TRUECOLOR};
    if (!err) err = spng_set_ihdr(ctx, &ihdr);
    struct spng_text text;
    memset(&text, 0, sizeof text);
    if (!err && text_key && text_value) {
        snprintf(text.keyword, sizeof text.keyword, "%s", text_key);
        text.type = SPNG_TEXT;
        text.length = strlen(text_value);
        text.text = (char *)text_value;
        err = spng_set_text(ctx, &text, 1);
    }
    if (!err) err = spng_encode_image(ctx, rgb, (size_t)w * h * 3, SPNG_FMT_PNG, SPNG_ENCODE_FINALIZE);
    spng_ctx_free(ctx);
    int close_err = fclose(fp);
    if (err || close_err) {
        unlink(tmp);
        return sdc_fail(SDC_ERR_IO, "%s: PNG encoding failed: %s", path, err ? spng_strerror(err) : strerror(errno));
    }
    if (rename(tmp, path)) {
        int e = errno;
        unlink(tmp);
        return sdc_fail(SDC_ERR_IO, "%s: cannot write: %s", path, strerror(e));
    }
    return SDC_OK;
}

sdc_status png_read_rgb(const char *path, uint8_t **rgb, int *w, int *h, char **params) {
    *rgb = NULL;
    if (params) *params = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) return sdc_fail(SDC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    spng_ctx *ctx = spng_ctx_new(0);
    struct spng_ihdr ihdr;
    size_t size = 0;
    int err = ctx ? 0 : SPNG_EMEM;
    if (!err) {
        spng_set_crc_action(ctx, SPNG_CRC_ERROR, SPNG_CRC_ERROR);
        spng_set_image_limits(ctx, 16384, 16384);
        spng_set_chunk_limits(ctx, 64u << 20, 256u << 20);
        err = spng_set_png_file(ctx, fp);
    }
    if (!err) err = spng_get_ihdr(ctx, &ihdr);
    if (!err) err = spng_decoded_image_size(ctx, SPNG_FMT_RGB8, &size);
    uint8_t *buf = NULL;
    if (!err && !(buf = malloc(size))) err = SPNG_EMEM;
    if (!err) err = spng_decode_image(ctx, buf, size, SPNG_FMT_RGB8, 0);
    if (!err && params) {
        uint32_t n = 0;
        if (!spng_get_text(ctx, NULL, &n) && n) {
            struct spng_text *t = calloc(n, sizeof *t);
            if (t && !spng_get_text(ctx, t, &n))
                for (uint32_t i = 0; i < n; i++)
                    if (!strcmp(t[i].keyword, "parameters") && !*params) *params = strdup(t[i].text);
            free(t);
        }
    }
    spng_ctx_free(ctx);
    fclose(fp);
    if (err) {
        free(buf);
        return sdc_fail(SDC_ERR_FORMAT, "%s: not a readable PNG: %s", path, spng_strerror(err));
    }
    *rgb = buf;
    *w = (int)ihdr.width;
    *h = (int)ihdr.height;
    return SDC_OK;
}
