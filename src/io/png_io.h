/* png_io.h - 8-bit RGB PNG files through libspng, carrying tEXt/iTXt chunks (the
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
/* The same two in memory (for the HTTP server): png_encode_rgb_mem gives a
 * malloc'd PNG file image (caller frees); png_read_rgb_mem decodes one. */
sdc_status png_encode_rgb_mem(const uint8_t *rgb, int w, int h, const char *text_key, const char *text_value,
                              void **png, size_t *png_size);
sdc_status png_read_rgb_mem(const void *png, size_t png_size, uint8_t **rgb, int *w, int *h, char **params);

#endif
