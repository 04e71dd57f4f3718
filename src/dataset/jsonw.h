/* jsonw.h - a growable text buffer and the JSON text the data set writes
 * (metadata lines, its config file): escaped strings and floats in their
 * shortest round-trip form, so the same values always give the same bytes. */
#ifndef SDC_DATASET_JSONW_H
#define SDC_DATASET_JSONW_H

#include <stddef.h>

typedef struct {
    char *p;   /* NUL-terminated */
    size_t n, cap;
    int oom;   /* an allocation failed: the text is incomplete */
} jbuf;

void jb_free(jbuf *b);
void jb_put(jbuf *b, const char *s, size_t n);
void jb_puts(jbuf *b, const char *s);
void jb_printf(jbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "..." with JSON escapes (NULL -> null); bytes >= 0x80 pass through (UTF-8). */
void jb_str(jbuf *b, const char *s);
/* shortest decimal that reads back as the same float */
void jb_float(jbuf *b, float v);

#endif
