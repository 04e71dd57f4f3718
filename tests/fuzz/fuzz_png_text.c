/* fuzz_png_text.c - a PNG's text chunks (sdc_png_decode without pixels: the
 * chunk walker and the capped inflate): the text is valid UTF-8 within
 * SDC_PNG_TEXT_MAX x 3 bytes (Latin-1 widened); small images are also
 * decoded in full (libspng) to check both paths agree on the text. In this
 * build CRCs are not checked (FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION), so
 * mutated chunks get through to the parser. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "sdc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    char *params = NULL;
    int w = 0, h = 0;
    if (sdc_png_decode(data, n, NULL, &w, &h, &params)) return 0;
    if (params) {
        size_t len = strlen(params);
        if (len > 3u * SDC_PNG_TEXT_MAX) abort();
        fuzz_require_utf8(params, len, "PNG text");
    }
    if ((int64_t)w * h <= 4096) {
        uint8_t *rgb = NULL;
        char *p2 = NULL;
        if (!sdc_png_decode(data, n, &rgb, NULL, NULL, &p2)) {
            if ((!params) != (!p2) || (params && strcmp(params, p2))) abort();
            free(rgb);
            free(p2);
        }
    }
    free(params);
    return 0;
}
