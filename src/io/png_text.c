/* png_text.c - a PNG's text chunks without its pixels: a chunk walker
 * (length, type, data, CRC) and a capped inflate. Nothing here trusts a
 * length before checking it against the buffer, and no compressed text is
 * inflated past PNG_TEXT_MAX bytes. */
#include "io/png_text.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The chunk's CRC (over type and data) matches the 4 bytes after the data.
 * Fuzzing builds skip the check, as libpng's and libspng's do, so mutated
 * chunks reach the parsers behind it. */
static int crc_ok(const uint8_t *type, const uint8_t *data, uint32_t n) {
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
    (void)type, (void)data, (void)n;
    return 1;
#else
    return crc32(crc32(0, type, 4), data, n) == be32(data + n);
#endif
}

/* Length of the well-formed UTF-8 sequence at p (Unicode Table 3-7), 0 if invalid. */
static size_t utf8_seq(const uint8_t *p, size_t n) {
    uint8_t c = p[0];
    if (c < 0x80) return 1;
    size_t need;
    uint8_t lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) need = 1;
    else if (c >= 0xE0 && c <= 0xEF) need = 2, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    else if (c >= 0xF0 && c <= 0xF4) need = 3, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    else return 0;
    if (n < need + 1 || p[1] < lo || p[1] > hi) return 0;
    for (size_t k = 2; k <= need; k++)
        if ((p[k] & 0xC0) != 0x80) return 0;
    return need + 1;
}

/* src as NUL-terminated UTF-8: Latin-1 bytes widened, or UTF-8 with every
 * invalid byte replaced by U+FFFD (EF BF BD). At most 3 bytes per input byte. */
static sdc_status to_utf8(const uint8_t *src, size_t n, int latin1, char **out) {
    char *d = malloc(3 * n + 1);
    if (!d) return sdc_fail(SDC_ERR_NOMEM, "out of memory reading a PNG text chunk");
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        if (latin1) {
            uint8_t c = src[i++];
            if (c < 0x80) d[o++] = (char)c;
            else d[o++] = (char)(0xC0 | c >> 6), d[o++] = (char)(0x80 | (c & 0x3F));
            continue;
        }
        size_t k = utf8_seq(src + i, n - i);
        if (k) {
            memcpy(d + o, src + i, k);
            o += k, i += k;
        } else {
            memcpy(d + o, "\xEF\xBF\xBD", 3);
            o += 3, i++;
        }
    }
    d[o] = 0;
    *out = d;
    return SDC_OK;
}

/* zlib stream -> at most PNG_TEXT_MAX bytes (malloc'd in *out, *n). */
static sdc_status inflate_capped(const uint8_t *src, size_t n, const char *keyword, uint8_t **out, size_t *on) {
    uint8_t *buf = malloc(PNG_TEXT_MAX + 1);
    if (!buf) return sdc_fail(SDC_ERR_NOMEM, "out of memory reading a PNG text chunk");
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit(&z) != Z_OK) {
        free(buf);
        return sdc_fail(SDC_ERR_NOMEM, "out of memory reading a PNG text chunk");
    }
    z.next_in = (Bytef *)src;
    z.avail_in = (uInt)n; /* n < 2^31: chunk lengths are checked */
    z.next_out = buf;
    z.avail_out = PNG_TEXT_MAX + 1; /* one byte more than allowed: its use means "too large" */
    int r = inflate(&z, Z_FINISH);
    size_t got = (size_t)z.total_out;
    inflateEnd(&z);
    if (got > PNG_TEXT_MAX) {
        free(buf);
        return sdc_fail(SDC_ERR_FORMAT, "PNG text chunk '%s' inflates to more than %d bytes (the limit for text)",
                        keyword, PNG_TEXT_MAX);
    }
    if (r != Z_STREAM_END) {
        free(buf);
        return sdc_fail(SDC_ERR_FORMAT, "PNG text chunk '%s' is not valid compressed data", keyword);
    }
    *out = buf;
    *on = got;
    return SDC_OK;
}

/* One tEXt/zTXt/iTXt chunk body: if its keyword is `keyword`, *text gets the text. */
static sdc_status text_chunk(const uint8_t *type, const uint8_t *d, size_t n, const char *keyword, char **text) {
    const uint8_t *nul = memchr(d, 0, n < 80 ? n : 80);
    if (!nul) return SDC_OK; /* no keyword of 1..79 bytes: not a text chunk anyone wrote; skipped */
    size_t kl = (size_t)(nul - d);
    if (kl != strlen(keyword) || memcmp(d, keyword, kl)) return SDC_OK;
    const uint8_t *p = nul + 1, *end = d + n;
    int compressed = 0, latin1 = 1;
    if (!memcmp(type, "zTXt", 4)) {
        if (p >= end || *p != 0)
            return sdc_fail(SDC_ERR_FORMAT, "PNG zTXt chunk '%s' has an unknown compression method", keyword);
        p++, compressed = 1;
    } else if (!memcmp(type, "iTXt", 4)) {
        /* compression flag, method, language tag\0, translated keyword\0, text */
        if (end - p < 2 || p[0] > 1 || (p[0] && p[1] != 0))
            return sdc_fail(SDC_ERR_FORMAT, "PNG iTXt chunk '%s' has an invalid compression flag or method", keyword);
        compressed = p[0], latin1 = 0, p += 2;
        for (int field = 0; field < 2; field++) {
            const uint8_t *z = memchr(p, 0, (size_t)(end - p));
            if (!z) return sdc_fail(SDC_ERR_FORMAT, "PNG iTXt chunk '%s' is truncated", keyword);
            p = z + 1;
        }
    }
    if (!compressed) return to_utf8(p, (size_t)(end - p), latin1, text);
    uint8_t *raw = NULL;
    size_t rn = 0;
    SDC_TRY(inflate_capped(p, (size_t)(end - p), keyword, &raw, &rn));
    sdc_status st = to_utf8(raw, rn, latin1, text);
    free(raw);
    return st;
}

sdc_status png_text_read(const void *png, size_t len, const char *keyword, char **text, uint32_t *w, uint32_t *h) {
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    const uint8_t *b = png;
    if (text) *text = NULL;
    if (!b || len < 8 || memcmp(b, sig, 8)) return sdc_fail(SDC_ERR_FORMAT, "not a PNG file (no PNG signature)");
    size_t pos = 8;
    int first = 1;
    for (;;) {
        if (len - pos < 12) {
            if (pos == len && !first) break; /* no IEND: the chunks read so far are all there is */
            free(text ? *text : NULL);
            if (text) *text = NULL;
            return sdc_fail(SDC_ERR_FORMAT, "not a readable PNG (%zu bytes): truncated chunk at byte %zu", len, pos);
        }
        uint32_t n = be32(b + pos);
        const uint8_t *type = b + pos + 4, *data = b + pos + 8;
        if (n > 0x7fffffffu || n > len - pos - 12) {
            free(text ? *text : NULL);
            if (text) *text = NULL;
            return sdc_fail(SDC_ERR_FORMAT, "not a readable PNG (%zu bytes): chunk at byte %zu claims %u bytes", len,
                            pos, n);
        }
        if (first) {
            /* IHDR first, 13 bytes, CRC-checked: what says this is an image at all */
            if (memcmp(type, "IHDR", 4) || n != 13 || !crc_ok(type, data, 13))
                return sdc_fail(SDC_ERR_FORMAT, "not a readable PNG: no valid IHDR chunk first");
            uint32_t iw = be32(data), ih = be32(data + 4);
            if (!iw || !ih || iw > 0x7fffffffu || ih > 0x7fffffffu)
                return sdc_fail(SDC_ERR_FORMAT, "not a readable PNG: image size %ux%u", iw, ih);
            if (w) *w = iw;
            if (h) *h = ih;
            first = 0;
        } else if (!memcmp(type, "IEND", 4)) {
            break;
        } else if (text && !*text &&
                   (!memcmp(type, "tEXt", 4) || !memcmp(type, "zTXt", 4) || !memcmp(type, "iTXt", 4))) {
            /* a damaged text chunk is an error, as it is to a decoder that checks CRCs */
            if (!crc_ok(type, data, n))
                return sdc_fail(SDC_ERR_FORMAT, "not a readable PNG: CRC error in a %.4s chunk", (const char *)type);
            SDC_TRY(text_chunk(type, data, n, keyword, text));
        }
        pos += 12 + (size_t)n;
    }
    return SDC_OK;
}
