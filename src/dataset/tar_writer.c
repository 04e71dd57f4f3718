/* tar_writer.c - ustar member headers (POSIX.1-1988) and a resumable scan. */
#include "dataset/tar_writer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

size_t tar_member_size(size_t n) { return TAR_BLOCK + (n + TAR_BLOCK - 1) / TAR_BLOCK * TAR_BLOCK; }

size_t tar_trailer_size(uint64_t size) {
    uint64_t end = size + 2 * TAR_BLOCK;
    end = (end + TAR_RECORD - 1) / TAR_RECORD * TAR_RECORD;
    return (size_t)(end - size);
}

static unsigned checksum(const uint8_t *h) {
    unsigned s = 0;
    for (int i = 0; i < TAR_BLOCK; i++) s += (i >= 148 && i < 156) ? ' ' : h[i];
    return s;
}

sdc_status tar_member_encode(uint8_t *dst, const char *name, const void *data, size_t n) {
    size_t nl = strlen(name);
    if (nl == 0 || nl > 100) return sdc_fail(SDC_ERR_ARG, "tar member name '%s' must be 1..100 bytes", name);
    if ((uint64_t)n >= (1ull << 33)) return sdc_fail(SDC_ERR_ARG, "tar member '%s' is too large for ustar", name);
    size_t total = tar_member_size(n);
    memset(dst, 0, total);
    memcpy(dst, name, nl);
    memcpy(dst + 100, "0000644", 8);
    memcpy(dst + 108, "0000000", 8);
    memcpy(dst + 116, "0000000", 8);
    char sz[13];
    snprintf(sz, sizeof sz, "%011llo", (unsigned long long)n);
    memcpy(dst + 124, sz, 12);
    memcpy(dst + 136, "00000000000", 12); /* mtime 0: identical bytes on every run */
    dst[156] = '0';
    memcpy(dst + 257, "ustar", 6);
    memcpy(dst + 263, "00", 2);
    memcpy(dst + 329, "0000000", 8);
    memcpy(dst + 337, "0000000", 8);
    char ck[9];
    snprintf(ck, sizeof ck, "%06o", checksum(dst));
    memcpy(dst + 148, ck, 7); /* six digits, NUL, then the space the field had */
    dst[155] = ' ';
    if (n) memcpy(dst + TAR_BLOCK, data, n);
    return SDC_OK;
}

static int parse_octal(const uint8_t *f, int len, uint64_t *out) {
    uint64_t v = 0;
    int i = 0, digits = 0;
    while (i < len && f[i] == ' ') i++;
    for (; i < len && f[i] >= '0' && f[i] <= '7'; i++, digits++) v = v * 8 + (uint64_t)(f[i] - '0');
    for (; i < len; i++)
        if (f[i] != ' ' && f[i] != 0) return 0;
    *out = v;
    return digits > 0;
}

static int read_at(int fd, void *buf, size_t n, uint64_t off) {
    size_t got = 0;
    while (got < n) {
        ssize_t k = pread(fd, (char *)buf + got, n - got, (off_t)(off + got));
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return 0;
        got += (size_t)k;
    }
    return 1;
}

sdc_status tar_scan(int fd, tar_member **members, int *n, const char *what) {
    *members = NULL;
    *n = 0;
    struct stat sb;
    if (fstat(fd, &sb)) return sdc_fail(SDC_ERR_IO, "%s: cannot stat: %s", what, strerror(errno));
    uint64_t size = (uint64_t)sb.st_size, off = 0;
    int cap = 0;
    uint8_t h[TAR_BLOCK];
    while (off + TAR_BLOCK <= size && read_at(fd, h, TAR_BLOCK, off)) {
        uint64_t ck, len;
        if (!parse_octal(h + 148, 8, &ck) || ck != checksum(h) || memcmp(h + 257, "ustar", 5) ||
            !parse_octal(h + 124, 12, &len) || (h[156] != '0' && h[156] != 0))
            break; /* end marker (zeros), torn or foreign header: what follows is not trusted */
        uint64_t end = off + tar_member_size((size_t)len);
        if (end > size) break;
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            tar_member *m = realloc(*members, (size_t)cap * sizeof *m);
            if (!m) {
                free(*members);
                *members = NULL;
                *n = 0;
                return sdc_fail(SDC_ERR_NOMEM, "out of memory");
            }
            *members = m;
        }
        tar_member *m = &(*members)[(*n)++];
        memcpy(m->name, h, 100);
        m->name[100] = 0;
        m->offset = off;
        m->end = end;
        m->size = len;
        off = end;
    }
    return SDC_OK;
}
