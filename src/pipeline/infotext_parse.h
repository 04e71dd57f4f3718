/* infotext_parse.h - AUTOMATIC1111's "parameters" text back into fields,
 * the way its parse_generation_parameters reads it:
 *   <prompt lines>
 *   Negative prompt: <negative lines>
 *   Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512, ...
 * The last line counts as parameters only when it holds at least three
 * "Key: value" pairs; values stay strings ("Size: WxH" becomes Size-1/Size-2,
 * a "quoted" value is JSON-unquoted). Front ends reach it through sdc.h
 * (sdc_infotext_parse, infotext_apply.c). */
#ifndef SDC_PIPELINE_INFOTEXT_PARSE_H
#define SDC_PIPELINE_INFOTEXT_PARSE_H

#include <cjson/cJSON.h>

/* A new object {"Prompt": ..., "Negative prompt": ..., "Steps": "20", ...};
 * NULL only when out of memory. */
cJSON *infotext_parse(const char *text);

#endif
