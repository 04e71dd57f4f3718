/* png_io.h - 8-bit RGB PNG files through libspng, carrying tEXt chunks (the
 * A1111 "parameters" infotext). Writes go to a temporary file that is
 * renamed into place only when complete, so a failure never leaves a torn
 * PNG behind. */
#ifndef SDC_IO_PNG_IO_H
#define SDC_IO_PNG_IO_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

/* rgb: h*w*3 bytes. text_key/text_value may be NULL. */
sdc_status png_write_rgb(const char *path, const uint8_t *rgb, int w, int h, const char *text_key,
                         const char *text_value);
/* Reads any PNG as 8-bit RGB (caller frees *rgb); *params gets the
 * "parameters" tEXt/iTXt value if present (caller frees), else NULL. */
sdc_status png_read_rgb(const char *path, uint8_t **rgb, int *w, int *h, char **params);

#endif
