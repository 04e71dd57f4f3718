/* json_util.h - replies, A1111-style JSON errors, base64 and strictly typed
 * reads of request fields for the HTTP server. */
#ifndef SDC_TOOLS_SERVER_JSON_UTIL_H
#define SDC_TOOLS_SERVER_JSON_UTIL_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "server.h"

/* cJSON_Parse for request threads: cJSON records parse errors in one global,
 * so parses are serialized. *err_at (may be NULL) gets the failing offset. */
cJSON *req_json_parse(const char *s, size_t n, size_t *err_at);

/* A request body as a JSON object, or 0 with a 422 reply: the body must be
 * valid UTF-8 (FastAPI, behind A1111, refuses it otherwise too), valid JSON,
 * an object, and hold at most JSON_MAX_VALUES values (its parse tree then
 * stays within ~5 MiB whatever the body). The caller deletes *out. */
#define JSON_MAX_VALUES 65536
int req_body_parse(const char *body, size_t len, const char *what, cJSON **out, http_reply *r);

/* Print obj (and delete it) as the reply body. Every reply is valid UTF-8:
 * a byte that is not part of a well-formed sequence (a message cut inside a
 * character, text from a PNG) is replaced by U+FFFD. */
void reply_json(http_reply *r, int status, cJSON *obj);
/* A1111's error body: {"error": error, "detail": detail, "body": "", "errors": "<status>: <detail>"} */
void reply_error(http_reply *r, int status, const char *error, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* 422 RequestValidationError, FastAPI's status for a request that does not fit the model. */
#define reply_invalid(r, ...) reply_error((r), 422, "RequestValidationError", __VA_ARGS__)

/* base64 (RFC 4648, padded). Encode returns a malloc'd string or NULL.
 * Decode skips whitespace, accepts missing padding, rejects anything else;
 * returns 0 on success (caller frees *out). */
char *b64_encode(const void *data, size_t n);
int b64_decode(const char *s, size_t n, uint8_t **out, size_t *out_len);

/* Typed reads of an optional field of a JSON object. A missing or null
 * field leaves *out as it is and returns 1; a field of the wrong type or
 * out of range fills a 422 reply naming the field and returns 0. */
int field_string(const cJSON *o, const char *key, const char **out, http_reply *r);
int field_int(const cJSON *o, const char *key, long lo, long hi, int *out, http_reply *r);
int field_number(const cJSON *o, const char *key, double lo, double hi, float *out, http_reply *r);
int field_bool(const cJSON *o, const char *key, int *out, http_reply *r);

#endif
