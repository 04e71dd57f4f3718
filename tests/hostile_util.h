/* hostile_util.h - helpers of the hostile-input tests (test_hostile.c,
 * test_server_hostile.c): PNG files with hand-made text chunks, the heap in
 * use (leak checks that work in the regular build and under ASan), and a
 * byte buffer. */
#ifndef SDC_TESTS_HOSTILE_UTIL_H
#define SDC_TESTS_HOSTILE_UTIL_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t *p;
    size_t n, cap;
} hbuf;
void hbuf_add(hbuf *b, const void *p, size_t n);
void hbuf_free(hbuf *b);

/* A valid w x h RGB PNG (pixels from sdc's own encoder, no text) with `extra`
 * (whole chunks: png_chunk output) spliced in after the IHDR. */
void png_with_chunks(hbuf *out, int w, int h, const hbuf *extra);
/* One chunk (length, type, data, CRC) appended to out. */
void png_chunk(hbuf *out, const char *type, const void *data, size_t n);
/* zlib-compressed `n` bytes of `fill` (a decompression bomb when n is large) appended to out. */
void zlib_of_fill(hbuf *out, uint8_t fill, size_t n);

/* Bytes of heap in use now (glibc mallinfo2, or ASan's allocator): a loop
 * that leaks grows it by its leak times the iterations. */
size_t heap_in_use(void);

/* Is s[0..n) valid UTF-8 (Unicode Table 3-7)? *bad gets the first bad offset. */
int utf8_ok(const char *s, size_t n, size_t *bad);

#endif
