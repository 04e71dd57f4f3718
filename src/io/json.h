/* json.h - config files through cJSON, with typed getters that fall back to
 * a default when a key is absent or null (diffusers' from_config rule) and
 * fail when it is present with the wrong type. */
#ifndef SDC_IO_JSON_H
#define SDC_IO_JSON_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "core/status.h"

/* Read a whole file (NUL-terminated; *len excludes the NUL). Max 256 MiB. */
sdc_status sdc_read_file(const char *path, char **buf, size_t *len);
sdc_status json_load(const char *path, cJSON **out);
/* Parse len bytes; `what` names the source in the error message. */
sdc_status json_parse(const char *buf, size_t len, const char *what, cJSON **out);

/* Key absent or JSON null -> default. Wrong type -> SDC_ERR_FORMAT naming
 * `what` (usually the file path) and the key. */
sdc_status json_get_int(const cJSON *o, const char *key, long long def, long long *out, const char *what);
sdc_status json_get_num(const cJSON *o, const char *key, double def, double *out, const char *what);
sdc_status json_get_bool(const cJSON *o, const char *key, int def, int *out, const char *what);
/* Returns a pointer into the cJSON tree (or def). */
sdc_status json_get_str(const cJSON *o, const char *key, const char *def, const char **out, const char *what);
/* An int or an array of n ints (e.g. attention_head_dim): fills out[0..n-1]. */
sdc_status json_get_int_or_list(const cJSON *o, const char *key, long long def, int n, int *out, const char *what);
/* Array of ints of any length up to max; *n gets the length. */
sdc_status json_get_int_list(const cJSON *o, const char *key, int max, int *out, int *n, const char *what);
int json_has(const cJSON *o, const char *key); /* present and not null */

#endif
