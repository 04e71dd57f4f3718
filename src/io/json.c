/* json.c - file loading and defaulting getters over cJSON. */
#include "io/json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/paths.h"

sdc_status sdc_read_file(const char *path, char **buf, size_t *len) {
    *buf = NULL;
    int fd;
    SDC_TRY(path_open_regular(path, &fd));
    struct stat sb;
    FILE *f = fstat(fd, &sb) ? NULL : fdopen(fd, "rb");
    if (!f) {
        int e = errno;
        close(fd);
        return sdc_fail(SDC_ERR_IO, "%s: cannot read: %s", path, strerror(e));
    }
    if (sb.st_size > (256ll << 20)) {
        fclose(f);
        return sdc_fail(SDC_ERR_FORMAT, "%s: file too large (%lld bytes)", path, (long long)sb.st_size);
    }
    char *b = malloc((size_t)sb.st_size + 1);
    if (!b) {
        fclose(f);
        return sdc_fail(SDC_ERR_NOMEM, "out of memory reading %s", path);
    }
    size_t n = fread(b, 1, (size_t)sb.st_size, f);
    fclose(f);
    if (n != (size_t)sb.st_size) {
        free(b);
        return sdc_fail(SDC_ERR_IO, "%s: short read", path);
    }
    b[n] = 0;
    *buf = b;
    if (len) *len = n;
    return SDC_OK;
}

/* Python's json module writes Infinity, -Infinity and NaN (diffusers configs
 * carry e.g. "lambda_min_clipped": -Infinity). cJSON knows none of them:
 * outside strings, rewrite them to numbers strtod reads as +-inf, and null. */
static char *python_json_literals(const char *in, size_t len, size_t *out_len) {
    char *o = malloc(len * 2 + 1);
    if (!o) return NULL;
    size_t k = 0;
    int in_str = 0;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (in_str) {
            o[k++] = c;
            if (c == '\\' && i + 1 < len) o[k++] = in[++i];
            else if (c == '"') in_str = 0;
            continue;
        }
        if (c == '"') in_str = 1;
        if (len - i >= 8 && !memcmp(in + i, "Infinity", 8)) {
            memcpy(o + k, "1e999", 5);
            k += 5;
            i += 7;
        } else if (len - i >= 3 && !memcmp(in + i, "NaN", 3)) {
            memcpy(o + k, "null", 4);
            k += 4;
            i += 2;
        } else {
            o[k++] = c;
        }
    }
    o[k] = 0;
    *out_len = k;
    return o;
}

sdc_status json_load(const char *path, cJSON **out) {
    char *buf, *raw;
    size_t len;
    *out = NULL;
    SDC_TRY(sdc_read_file(path, &raw, &len));
    buf = python_json_literals(raw, len, &len);
    free(raw);
    if (!buf) return sdc_fail(SDC_ERR_NOMEM, "out of memory reading %s", path);
    sdc_status st = json_parse(buf, len, path, out);
    free(buf);
    return st;
}

sdc_status json_parse(const char *buf, size_t len, const char *what, cJSON **out) {
    const char *end = NULL;
    *out = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
    if (!*out) {
        long off = end ? (long)(end - buf) : -1;
        return sdc_fail(SDC_ERR_FORMAT, "%s: invalid JSON near byte %ld", what, off);
    }
    return SDC_OK;
}

static const cJSON *item(const cJSON *o, const char *key) {
    const cJSON *j = o ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
    return (j && !cJSON_IsNull(j)) ? j : NULL;
}

int json_has(const cJSON *o, const char *key) { return item(o, key) != NULL; }

static int as_int(const cJSON *j, long long *v) {
    if (!cJSON_IsNumber(j)) return 0;
    double d = j->valuedouble;
    if (d != floor(d) || fabs(d) > 9.0e15) return 0;
    *v = (long long)d;
    return 1;
}

sdc_status json_get_int(const cJSON *o, const char *key, long long def, long long *out, const char *what) {
    const cJSON *j = item(o, key);
    *out = def;
    if (!j) return SDC_OK;
    if (!as_int(j, out)) return sdc_fail(SDC_ERR_FORMAT, "%s: '%s' must be an integer", what, key);
    return SDC_OK;
}

sdc_status json_get_num(const cJSON *o, const char *key, double def, double *out, const char *what) {
    const cJSON *j = item(o, key);
    *out = def;
    if (!j) return SDC_OK;
    if (!cJSON_IsNumber(j)) return sdc_fail(SDC_ERR_FORMAT, "%s: '%s' must be a number", what, key);
    *out = j->valuedouble;
    return SDC_OK;
}

sdc_status json_get_bool(const cJSON *o, const char *key, int def, int *out, const char *what) {
    const cJSON *j = item(o, key);
    *out = def;
    if (!j) return SDC_OK;
    if (!cJSON_IsBool(j)) return sdc_fail(SDC_ERR_FORMAT, "%s: '%s' must be true or false", what, key);
    *out = cJSON_IsTrue(j);
    return SDC_OK;
}

sdc_status json_get_str(const cJSON *o, const char *key, const char *def, const char **out, const char *what) {
    const cJSON *j = item(o, key);
    *out = def;
    if (!j) return SDC_OK;
    if (!cJSON_IsString(j)) return sdc_fail(SDC_ERR_FORMAT, "%s: '%s' must be a string", what, key);
    *out = j->valuestring;
    return SDC_OK;
}

sdc_status json_get_int_or_list(const cJSON *o, const char *key, long long def, int n, int *out, const char *what) {
    const cJSON *j = item(o, key);
    long long v = def;
    if (j && cJSON_IsArray(j)) {
        if (cJSON_GetArraySize(j) != n)
            return sdc_fail(SDC_ERR_FORMAT, "%s: '%s' has %d entries, expected %d", what, key, cJSON_GetArraySize(j), n);
        for (int i = 0; i < n; i++) {
            if (!as_int(cJSON_GetArrayItem(j, i), &v) || v < -2147483647 || v > 2147483647)
                return sdc_fail(SDC_ERR_FORMAT, "%s: '%s'[%d] must be an integer", what, key, i);
            out[i] = (int)v;
        }
        return SDC_OK;
    }
    if (j && !as_int(j, &v)) return sdc_fail(SDC_ERR_FORMAT, "%s: '%s' must be an integer or a list", what, key);
    if (v < -2147483647 || v > 2147483647) return sdc_fail(SDC_ERR_FORMAT, "%s: '%s' out of range", what, key);
    for (int i = 0; i < n; i++) out[i] = (int)v;
    return SDC_OK;
}

sdc_status json_get_int_list(const cJSON *o, const char *key, int max, int *out, int *n, const char *what) {
    const cJSON *j = item(o, key);
    *n = 0;
    if (!j) return SDC_OK;
    if (!cJSON_IsArray(j)) return sdc_fail(SDC_ERR_FORMAT, "%s: '%s' must be a list", what, key);
    int c = cJSON_GetArraySize(j);
    if (c > max) return sdc_fail(SDC_ERR_FORMAT, "%s: '%s' has %d entries (max %d)", what, key, c, max);
    for (int i = 0; i < c; i++) {
        long long v;
        if (!as_int(cJSON_GetArrayItem(j, i), &v) || v < -2147483647 || v > 2147483647)
            return sdc_fail(SDC_ERR_FORMAT, "%s: '%s'[%d] must be an integer", what, key, i);
        out[i] = (int)v;
    }
    *n = c;
    return SDC_OK;
}
