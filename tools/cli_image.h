/* cli_image.h - the init image and mask of `sdc generate --init-image PATH
 * [--mask PATH]` read from files into the pixels sdc_request takes. */
#ifndef SDC_TOOLS_CLI_IMAGE_H
#define SDC_TOOLS_CLI_IMAGE_H

#include <stdint.h>

#include "sdc.h"

/* The file's pixels as RGB8 (mask 0) or as 8-bit gray (mask 1: PIL's
 * convert("L"), what diffusers' mask processor does). A PNG only; any other
 * bytes are refused with a message naming the file. The caller frees *px. */
sdc_status cli_image_read(const char *path, int mask, uint8_t **px, int *width, int *height);

#endif
