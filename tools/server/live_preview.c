/* live_preview.c - the running job's live preview as /progress's
 * current_image: the batch's TAESD previews laid out as A1111's image_grid
 * (modules/images.py: rows = round(sqrt(n)), cols = ceil(n / rows), images
 * pasted left to right, top to bottom on black) or the first image alone,
 * encoded as a base64 PNG. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "json_util.h"
#include "server.h"

char *live_preview_b64(const sdc_image *images, int n, int grid) {
    if (n < 1) return NULL;
    int w = images[0].width, h = images[0].height, rows = 1, cols = 1;
    if (grid && n > 1) {
        rows = (int)lround(sqrt((double)n)); /* sqrt(n) of an integer is never x.5: Python's round agrees */
        if (rows > n) rows = n;
        cols = (n + rows - 1) / rows;
    }
    sdc_image g = {.width = cols * w, .height = rows * h};
    if (!(g.rgb = calloc((size_t)g.width * g.height, 3))) return NULL;
    for (int i = 0; i < (grid ? n : 1); i++) {
        int x0 = i % cols * w, y0 = i / cols * h;
        for (int y = 0; y < h; y++)
            memcpy(g.rgb + ((size_t)(y0 + y) * g.width + x0) * 3, images[i].rgb + (size_t)y * w * 3, (size_t)w * 3);
    }
    void *png = NULL;
    size_t len = 0;
    char *b64 = sdc_image_encode_png(&g, &png, &len) ? NULL : b64_encode(png, len);
    free(png);
    free(g.rgb);
    return b64;
}
