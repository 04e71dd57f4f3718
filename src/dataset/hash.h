/* hash.h - FNV-1a 64-bit, the digest behind a data set's identity (model
 * fingerprint, prompts digest). It detects accidental mismatches; it is not
 * meant to resist a deliberate collision. */
#ifndef SDC_DATASET_HASH_H
#define SDC_DATASET_HASH_H

#include <stddef.h>
#include <stdint.h>

#define HASH_INIT 0xcbf29ce484222325ull

static inline uint64_t hash_bytes(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static inline uint64_t hash_u64(uint64_t h, uint64_t v) {
    unsigned char b[8];
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
    return hash_bytes(h, b, 8);
}

/* a string and its terminator, so ("ab","c") and ("a","bc") differ; NULL differs from "" */
static inline uint64_t hash_str(uint64_t h, const char *s) {
    if (!s) return hash_bytes(h, "\xff\xfe", 2);
    size_t n = 0;
    while (s[n]) n++;
    return hash_bytes(h, s, n + 1);
}

#endif
