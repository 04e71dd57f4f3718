/* png_mem.h - encode an sdc_image to PNG bytes in memory (the same bytes
 * sdc_image_save_png writes), so a data set can write them durably itself or
 * put them into a tar member. */
#ifndef SDC_DATASET_PNG_MEM_H
#define SDC_DATASET_PNG_MEM_H

#include <stddef.h>

#include "core/status.h"

/* *png is malloc'd; the infotext goes into a "parameters" tEXt chunk. */
sdc_status png_encode_mem(const sdc_image *img, unsigned char **png, size_t *n);

#endif
