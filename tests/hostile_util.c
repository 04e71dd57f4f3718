/* hostile_util.c - see hostile_util.h. */
#include "hostile_util.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "sdc.h"

#if defined(__SANITIZE_ADDRESS__)
/* ASan's allocator statistics (clang's sanitizer/allocator_interface.h; gcc
 * ships no such header, but its libasan exports the same function) */
size_t __sanitizer_get_current_allocated_bytes(void);
#endif

void hbuf_add(hbuf *b, const void *p, size_t n) {
    if (b->n + n > b->cap) {
        size_t c = b->cap ? b->cap : 256;
        while (c < b->n + n) c *= 2;
        b->p = realloc(b->p, c);
        b->cap = c;
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

void hbuf_free(hbuf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

static void be32(uint8_t *o, uint32_t v) {
    o[0] = (uint8_t)(v >> 24), o[1] = (uint8_t)(v >> 16), o[2] = (uint8_t)(v >> 8), o[3] = (uint8_t)v;
}

void png_chunk(hbuf *out, const char *type, const void *data, size_t n) {
    uint8_t h[8], c[4];
    be32(h, (uint32_t)n);
    memcpy(h + 4, type, 4);
    hbuf_add(out, h, 8);
    if (n) hbuf_add(out, data, n);
    be32(c, (uint32_t)crc32(crc32(0, (const Bytef *)type, 4), data, (uInt)n));
    hbuf_add(out, c, 4);
}

void png_with_chunks(hbuf *out, int w, int h, const hbuf *extra) {
    uint8_t *rgb = calloc((size_t)w * h * 3, 1);
    sdc_image im = {.width = w, .height = h, .rgb = rgb};
    void *png = NULL;
    size_t n = 0;
    sdc_image_encode_png(&im, &png, &n);
    free(rgb);
    hbuf_add(out, png, 33); /* signature (8) + IHDR (25) */
    if (extra && extra->n) hbuf_add(out, extra->p, extra->n);
    hbuf_add(out, (uint8_t *)png + 33, n - 33);
    free(png);
}

void zlib_of_fill(hbuf *out, uint8_t fill, size_t n) {
    z_stream z;
    memset(&z, 0, sizeof z);
    deflateInit(&z, 9);
    uint8_t in[65536], o[65536];
    memset(in, fill, sizeof in);
    size_t left = n;
    int flush;
    do {
        size_t k = left < sizeof in ? left : sizeof in;
        left -= k;
        flush = left ? Z_NO_FLUSH : Z_FINISH;
        z.next_in = in;
        z.avail_in = (uInt)k;
        do {
            z.next_out = o;
            z.avail_out = sizeof o;
            deflate(&z, flush);
            hbuf_add(out, o, sizeof o - z.avail_out);
        } while (z.avail_out == 0);
    } while (flush != Z_FINISH);
    deflateEnd(&z);
}

size_t heap_in_use(void) {
#if defined(__SANITIZE_ADDRESS__)
    return __sanitizer_get_current_allocated_bytes();
#else
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
#endif
}

int utf8_ok(const char *s, size_t n, size_t *bad) {
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        size_t need = 0;
        unsigned char lo = 0x80, hi = 0xBF;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) need = 1;
        else if (c >= 0xE0 && c <= 0xEF) need = 2, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        else if (c >= 0xF0 && c <= 0xF4) need = 3, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        int ok = need && i + need < n && p[i + 1] >= lo && p[i + 1] <= hi;
        for (size_t k = 2; ok && k <= need; k++) ok = (p[i + k] & 0xC0) == 0x80;
        if (!ok) {
            if (bad) *bad = i;
            return 0;
        }
        i += need + 1;
    }
    return 1;
}
