/* status.c - thread-local error message storage behind sdc_fail/sdc_wrap. */
#include "core/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char g_msg[1024];

sdc_status sdc_fail(sdc_status code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_msg, sizeof g_msg, fmt, ap);
    va_end(ap);
    return code;
}

sdc_status sdc_wrap(sdc_status code, const char *fmt, ...) {
    char prefix[512], old[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, g_msg, sizeof old);
    snprintf(g_msg, sizeof g_msg, "%s: %s", prefix, old);
    return code;
}

void sdc_clear_error(void) { g_msg[0] = 0; }

const char *sdc_last_error(void) { return g_msg[0] ? g_msg : "no error"; }

const char *sdc_status_name(sdc_status st) {
    switch (st) {
    case SDC_OK: return "ok";
    case SDC_ERR_IO: return "i/o error";
    case SDC_ERR_FORMAT: return "malformed input";
    case SDC_ERR_SHAPE: return "shape mismatch";
    case SDC_ERR_ARG: return "invalid argument";
    case SDC_ERR_NOMEM: return "out of memory";
    case SDC_ERR_UNSUPPORTED: return "unsupported";
    case SDC_ERR_INTERRUPTED: return "interrupted";
    }
    return "unknown status";
}
