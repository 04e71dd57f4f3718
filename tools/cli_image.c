/* cli_image.c - init images and masks from files (see cli_image.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_image.h"

#define MAX_IMAGE_FILE (512L << 20) /* a 8192x8192 RGBA PNG stored uncompressed is 256 MiB */

static sdc_status read_all(const char *path, uint8_t **buf, size_t *len) {
    *buf = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return sdc_fail(SDC_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    long n = -1;
    if (!fseek(f, 0, SEEK_END)) n = ftell(f);
    if (n < 0 || fseek(f, 0, SEEK_SET)) {
        fclose(f);
        return sdc_fail(SDC_ERR_IO, "cannot read '%s': not a regular file", path);
    }
    if (n > MAX_IMAGE_FILE) {
        fclose(f);
        return sdc_fail(SDC_ERR_ARG, "'%s' is %ld bytes: larger than any image sdc takes", path, n);
    }
    uint8_t *b = malloc(n ? (size_t)n : 1);
    if (!b) {
        fclose(f);
        return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    }
    size_t got = fread(b, 1, (size_t)n, f);
    fclose(f);
    if (got != (size_t)n) {
        free(b);
        return sdc_fail(SDC_ERR_IO, "cannot read '%s'", path);
    }
    *buf = b;
    *len = got;
    return SDC_OK;
}

sdc_status cli_image_read(const char *path, int mask, uint8_t **px, int *width, int *height) {
    *px = NULL;
    uint8_t *file, *rgba;
    size_t len = 0;
    sdc_status rs = read_all(path, &file, &len);
    if (rs) return rs;
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (len < 8 || memcmp(file, sig, 8)) {
        free(file);
        return sdc_fail(SDC_ERR_FORMAT, "'%s' is not a PNG image (sdc reads init images and masks as PNG)", path);
    }
    sdc_status st = sdc_png_decode_rgba(file, len, &rgba, width, height);
    free(file);
    if (st) {
        char why[256]; /* copied: sdc_fail writes the buffer sdc_last_error reads */
        snprintf(why, sizeof why, "%s", sdc_last_error());
        return sdc_fail(st, "'%s': %s", path, why);
    }
    const int64_t n = (int64_t)*width * *height;
    uint8_t *out = malloc((size_t)n * (mask ? 1 : 3));
    if (!out) {
        free(rgba);
        return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    }
    if (mask) {
        sdc_image_gray(rgba, 4, n, out);
    } else { /* PIL's convert("RGB"): the alpha dropped */
        for (int64_t i = 0; i < n; i++) memcpy(out + 3 * i, rgba + 4 * i, 3);
    }
    free(rgba);
    *px = out;
    return SDC_OK;
}
