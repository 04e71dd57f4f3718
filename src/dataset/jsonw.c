/* jsonw.c - JSON text output for the data set files. */
#include "dataset/jsonw.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void jb_free(jbuf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

static int grow(jbuf *b, size_t extra) {
    if (b->oom) return 0;
    if (b->n + extra + 1 <= b->cap) return 1;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + extra + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return 0;
    }
    b->p = p;
    b->cap = cap;
    return 1;
}

void jb_put(jbuf *b, const char *s, size_t n) {
    if (!grow(b, n)) return;
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

void jb_puts(jbuf *b, const char *s) { jb_put(b, s, strlen(s)); }

void jb_printf(jbuf *b, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (k < 0) return;
    if ((size_t)k < sizeof tmp) {
        jb_put(b, tmp, (size_t)k);
        return;
    }
    if (!grow(b, (size_t)k)) return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->n, (size_t)k + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)k;
}

void jb_str(jbuf *b, const char *s) {
    if (!s) {
        jb_puts(b, "null");
        return;
    }
    jb_put(b, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"') jb_put(b, "\\\"", 2);
        else if (*c == '\\') jb_put(b, "\\\\", 2);
        else if (*c == '\n') jb_put(b, "\\n", 2);
        else if (*c == '\r') jb_put(b, "\\r", 2);
        else if (*c == '\t') jb_put(b, "\\t", 2);
        else if (*c < 0x20 || *c == 0x7f) jb_printf(b, "\\u%04x", *c);
        else jb_put(b, (const char *)c, 1);
    }
    jb_put(b, "\"", 1);
}

void jb_float(jbuf *b, float v) {
    char t[64];
    for (int d = 0; d <= 9; d++) { /* plain decimals first: 7.5, not 7.5e+00 */
        snprintf(t, sizeof t, "%.*f", d, (double)v);
        if (strtof(t, NULL) == v) {
            jb_puts(b, t);
            return;
        }
    }
    for (int p = 1; p <= 9; p++) {
        snprintf(t, sizeof t, "%.*g", p, (double)v);
        if (strtof(t, NULL) == v) break;
    }
    jb_puts(b, t);
}
