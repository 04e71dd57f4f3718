/* json_util.c - replies, A1111-style errors, base64, typed request fields. */
#include "json_util.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char k_oom[] = "{\"error\":\"MemoryError\",\"detail\":\"out of memory\",\"body\":\"\",\"errors\":\"out of memory\"}";

static pthread_mutex_t g_parse_mu = PTHREAD_MUTEX_INITIALIZER;

cJSON *req_json_parse(const char *s, size_t n, size_t *err_at) {
    const char *end = NULL;
    pthread_mutex_lock(&g_parse_mu);
    cJSON *j = cJSON_ParseWithLengthOpts(s, n, &end, 0);
    pthread_mutex_unlock(&g_parse_mu);
    if (err_at) *err_at = !j && end && end >= s ? (size_t)(end - s) : 0;
    return j;
}

/* Length of the well-formed UTF-8 sequence at p (Unicode Table 3-7), 0 if invalid. */
static size_t utf8_seq(const unsigned char *p, size_t n) {
    unsigned char c = p[0];
    if (c < 0x80) return 1;
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) need = 1;
    else if (c >= 0xE0 && c <= 0xEF) need = 2, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    else if (c >= 0xF0 && c <= 0xF4) need = 3, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    else return 0;
    if (n < need + 1 || p[1] < lo || p[1] > hi) return 0;
    for (size_t k = 2; k <= need; k++)
        if ((p[k] & 0xC0) != 0x80) return 0;
    return need + 1;
}

/* offset of the first byte of s[0..n) that is not valid UTF-8, or n */
static size_t utf8_valid_prefix(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, k;
    while (i < n && (k = utf8_seq(p + i, n - i))) i += k;
    return i;
}

/* s (malloc'd, NUL-terminated) with invalid bytes replaced by U+FFFD; s itself when valid */
static char *utf8_repair(char *s, size_t *len) {
    size_t n = *len, i = utf8_valid_prefix(s, n);
    if (i == n) return s;
    char *d = malloc(3 * n + 1);
    if (!d) {
        free(s);
        return NULL;
    }
    memcpy(d, s, i);
    size_t o = i;
    while (i < n) {
        size_t k = utf8_seq((const unsigned char *)s + i, n - i);
        if (k) memcpy(d + o, s + i, k), o += k, i += k;
        else memcpy(d + o, "\xEF\xBF\xBD", 3), o += 3, i++;
    }
    d[o] = 0;
    free(s);
    *len = o;
    return d;
}

int req_body_parse(const char *body, size_t len, const char *what, cJSON **out, http_reply *r) {
    *out = NULL;
    size_t bad = utf8_valid_prefix(body, len);
    if (bad < len) {
        reply_invalid(r, "the body is not valid UTF-8 (byte %zu)", bad);
        return 0;
    }
    /* values: at most one per ',', '[' or '{' outside strings, plus one */
    size_t values = 1;
    int in_str = 0;
    for (size_t i = 0; i < len; i++) {
        char c = body[i];
        if (in_str) {
            if (c == '\\') i++;
            else if (c == '"') in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == ',' || c == '[' || c == '{') {
            values++;
        }
    }
    if (values > JSON_MAX_VALUES) {
        reply_invalid(r, "the body holds more than %d JSON values", JSON_MAX_VALUES);
        return 0;
    }
    size_t err_at;
    cJSON *j = req_json_parse(body, len, &err_at);
    if (!j) {
        reply_invalid(r, "the body is not valid JSON (error at byte %zu)", err_at);
        return 0;
    }
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        reply_invalid(r, "the body must be a JSON object%s%s", what ? " " : "", what ? what : "");
        return 0;
    }
    *out = j;
    return 1;
}

static void reply_oom(http_reply *r) {
    r->status = 500;
    r->body = (char *)k_oom;
    r->len = sizeof k_oom - 1;
    r->persistent_body = 1;
}

void reply_json(http_reply *r, int status, cJSON *obj) {
    char *s = obj ? cJSON_PrintUnformatted(obj) : NULL;
    cJSON_Delete(obj);
    size_t len = s ? strlen(s) : 0;
    if (s) s = utf8_repair(s, &len);
    if (!s) {
        reply_oom(r);
        return;
    }
    r->status = status;
    r->body = s;
    r->len = len;
    r->persistent_body = 0;
}

void reply_error(http_reply *r, int status, const char *error, const char *fmt, ...) {
    char detail[1024], errors[1100];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    snprintf(errors, sizeof errors, "%d: %s", status, detail); /* str(HTTPException) */
    cJSON *o = cJSON_CreateObject();
    if (o) {
        cJSON_AddStringToObject(o, "error", error);
        cJSON_AddStringToObject(o, "detail", detail);
        cJSON_AddStringToObject(o, "body", "");
        cJSON_AddStringToObject(o, "errors", errors);
    }
    reply_json(r, status, o);
}

/* ---- base64 ---- */

static const char k_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *b64_encode(const void *data, size_t n) {
    const uint8_t *p = data;
    char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;
    if (!out) return NULL;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *o++ = k_b64[v >> 18], *o++ = k_b64[v >> 12 & 63], *o++ = k_b64[v >> 6 & 63], *o++ = k_b64[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        *o++ = k_b64[v >> 18], *o++ = k_b64[v >> 12 & 63], *o++ = '=', *o++ = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        *o++ = k_b64[v >> 18], *o++ = k_b64[v >> 12 & 63], *o++ = k_b64[v >> 6 & 63], *o++ = '=';
    }
    *o = 0;
    return out;
}

static int b64_val(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62; /* '-' '_': the URL-safe alphabet */
    if (c == '/' || c == '_') return 63;
    return -1;
}

int b64_decode(const char *s, size_t n, uint8_t **out, size_t *out_len) {
    uint8_t *buf = malloc(n / 4 * 3 + 3);
    if (!buf) return -1;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0, pad = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
        if (c == '=') {
            pad++;
            continue;
        }
        int v = b64_val(c);
        if (v < 0 || pad) { /* a foreign byte, or data after padding */
            free(buf);
            return -1;
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (uint8_t)(acc >> bits);
        }
    }
    if (bits >= 6 || pad > 2) { /* a lone trailing sextet cannot encode a byte */
        free(buf);
        return -1;
    }
    *out = buf;
    *out_len = o;
    return 0;
}

/* ---- typed fields ---- */

/* the offending value, shortened, for the message */
static void show(const cJSON *v, char *b, size_t n) {
    char *s = cJSON_PrintUnformatted(v);
    if (!s) {
        snprintf(b, n, "?");
        return;
    }
    if (strlen(s) > 40) snprintf(b, n, "%.37s...", s);
    else snprintf(b, n, "%s", s);
    free(s);
}

static const cJSON *present(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

int field_string(const cJSON *o, const char *key, const char **out, http_reply *r) {
    const cJSON *v = present(o, key);
    if (!v) return 1;
    if (!cJSON_IsString(v)) {
        char b[64];
        show(v, b, sizeof b);
        reply_invalid(r, "%s: expected a string, got %s", key, b);
        return 0;
    }
    *out = v->valuestring;
    return 1;
}

int field_int(const cJSON *o, const char *key, long lo, long hi, int *out, http_reply *r) {
    const cJSON *v = present(o, key);
    if (!v) return 1;
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!isfinite(d) || d != floor(d) || d < (double)lo || d > (double)hi) {
        char b[64];
        show(v, b, sizeof b);
        reply_invalid(r, "%s: expected an integer in %ld..%ld, got %s", key, lo, hi, b);
        return 0;
    }
    *out = (int)d;
    return 1;
}

int field_number(const cJSON *o, const char *key, double lo, double hi, float *out, http_reply *r) {
    const cJSON *v = present(o, key);
    if (!v) return 1;
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!isfinite(d) || d < lo || d > hi) {
        char b[64];
        show(v, b, sizeof b);
        reply_invalid(r, "%s: expected a number in %g..%g, got %s", key, lo, hi, b);
        return 0;
    }
    *out = (float)d;
    return 1;
}

int field_bool(const cJSON *o, const char *key, int *out, http_reply *r) {
    const cJSON *v = present(o, key);
    if (!v) return 1;
    if (!cJSON_IsBool(v)) {
        char b[64];
        show(v, b, sizeof b);
        reply_invalid(r, "%s: expected true or false, got %s", key, b);
        return 0;
    }
    *out = cJSON_IsTrue(v);
    return 1;
}
