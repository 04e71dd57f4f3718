/* fuzz_util.c - see fuzz_util.h. */
#include "fuzz_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int fuzz_file(const uint8_t *data, size_t n, size_t hole, char *path, size_t path_n) {
    int fd = memfd_create("fuzz", MFD_CLOEXEC);
    if (fd < 0) return -1;
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(fd, data + off, n - off);
        if (w <= 0) {
            close(fd);
            return -1;
        }
        off += (size_t)w;
    }
    if (hole && ftruncate(fd, (off_t)(n + hole))) {
        close(fd);
        return -1;
    }
    snprintf(path, path_n, "/proc/self/fd/%d", fd);
    return fd;
}

int fuzz_safetensors_from_header(const uint8_t *json, size_t n, char *path, size_t path_n) {
    uint8_t *buf = malloc(n + 8);
    if (!buf) return -1;
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)((uint64_t)n >> (8 * i));
    memcpy(buf + 8, json, n);
    int fd = fuzz_file(buf, n + 8, (size_t)64 << 20, path, path_n);
    free(buf);
    return fd;
}

void fuzz_require_utf8(const char *s, size_t n, const char *what) {
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
            fprintf(stderr, "fuzz: %s is not valid UTF-8 at byte %zu of %zu\n", what, i, n);
            abort();
        }
        i += need + 1;
    }
}

const char *fuzz_root_path(const char *rel) {
    static char buf[4][4096];
    static int k;
    const char *root = getenv("SDC_FUZZ_ROOT");
    char *b = buf[k++ % 4];
    snprintf(b, sizeof buf[0], "%s/%s", root && *root ? root : ".", rel);
    return b;
}
