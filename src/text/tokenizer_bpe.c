/* tokenizer_bpe.c - string hash map, merges.txt loading and the BPE merge loop
 * (transformers CLIPTokenizer.bpe / bytes_to_unicode). */
#include "text/tokenizer_bpe.h"

#include <stdlib.h>
#include <string.h>

#include "io/json.h"
#include "text/tokenizer_text.h"

/* --- string map ------------------------------------------------------------ */

static uint64_t hash_bytes(const char *s, size_t len) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

struct tok_arena_block {
    tok_arena_block *next;
    size_t used, cap;
    char data[];
};

/* len+1 bytes from the map's arena (blocks of >= 64 KiB). */
static char *arena_alloc(tok_strmap *m, size_t len) {
    tok_arena_block *b = m->arena;
    if (!b || b->cap - b->used < len + 1) {
        size_t cap = len + 1 > 65536 ? len + 1 : 65536;
        b = malloc(sizeof *b + cap);
        if (!b) return NULL;
        b->next = m->arena;
        b->used = 0;
        b->cap = cap;
        m->arena = b;
    }
    char *p = b->data + b->used;
    b->used += len + 1;
    return p;
}

static sdc_status alloc_slots(tok_strmap *m, size_t cap) {
    m->keys = calloc(cap, sizeof *m->keys);
    m->lens = malloc(cap * sizeof *m->lens);
    m->hash = malloc(cap * sizeof *m->hash);
    m->vals = malloc(cap * sizeof *m->vals);
    m->cap = cap;
    if (!m->keys || !m->lens || !m->hash || !m->vals) return sdc_fail(SDC_ERR_NOMEM, "tokenizer: out of memory");
    return SDC_OK;
}

sdc_status tok_strmap_init(tok_strmap *m, size_t expected) {
    memset(m, 0, sizeof *m);
    size_t cap = 64;
    while (cap < 2 * expected) cap <<= 1;
    sdc_status st = alloc_slots(m, cap);
    if (st) tok_strmap_free(m);
    return st;
}

void tok_strmap_free(tok_strmap *m) {
    while (m->arena) {
        tok_arena_block *n = m->arena->next;
        free(m->arena);
        m->arena = n;
    }
    free(m->keys);
    free(m->lens);
    free(m->hash);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

static size_t find_slot(const tok_strmap *m, const char *s, size_t len, uint32_t h) {
    size_t mask = m->cap - 1, i = h & mask;
    while (m->keys[i] && !(m->hash[i] == h && m->lens[i] == len && memcmp(m->keys[i], s, len) == 0))
        i = (i + 1) & mask;
    return i;
}

static sdc_status grow(tok_strmap *m) {
    tok_strmap g = *m;
    if (alloc_slots(m, 2 * g.cap)) {
        free(m->keys), free(m->lens), free(m->hash), free(m->vals);
        m->keys = g.keys, m->lens = g.lens, m->hash = g.hash, m->vals = g.vals, m->cap = g.cap;
        return SDC_ERR_NOMEM;
    }
    for (size_t i = 0; i < g.cap; i++) {
        if (!g.keys[i]) continue;
        size_t j = find_slot(m, g.keys[i], g.lens[i], g.hash[i]);
        m->keys[j] = g.keys[i];
        m->lens[j] = g.lens[i];
        m->hash[j] = g.hash[i];
        m->vals[j] = g.vals[i];
    }
    free(g.keys), free(g.lens), free(g.hash), free(g.vals);
    return SDC_OK;
}

sdc_status tok_strmap_put(tok_strmap *m, const char *s, size_t len, int32_t val, const char **stored) {
    if (len > UINT32_MAX - 1) return sdc_fail(SDC_ERR_FORMAT, "tokenizer: token too long");
    if (2 * (m->n + 1) > m->cap) SDC_TRY(grow(m));
    uint32_t h = (uint32_t)hash_bytes(s, len);
    size_t i = find_slot(m, s, len, h);
    if (!m->keys[i]) {
        char *k = arena_alloc(m, len);
        if (!k) return sdc_fail(SDC_ERR_NOMEM, "tokenizer: out of memory");
        memcpy(k, s, len);
        k[len] = 0;
        m->keys[i] = k;
        m->lens[i] = (uint32_t)len;
        m->hash[i] = h;
        m->n++;
    }
    m->vals[i] = val;
    if (stored) *stored = m->keys[i];
    return SDC_OK;
}

int tok_strmap_get(const tok_strmap *m, const char *s, size_t len, int32_t *val) {
    if (!m->cap) return 0;
    size_t i = find_slot(m, s, len, (uint32_t)hash_bytes(s, len));
    if (!m->keys[i]) return 0;
    *val = m->vals[i];
    return 1;
}

/* --- symbols and merge pairs ------------------------------------------------ */

sdc_status tok_bpe_intern(tok_bpe *m, const char *s, size_t len, int32_t *sid) {
    if (tok_strmap_get(&m->sym, s, len, sid)) return SDC_OK;
    if (m->nsym == m->capsym) {
        int32_t cap = m->capsym ? 2 * m->capsym : 1024;
        const char **p = realloc(m->sym_str, (size_t)cap * sizeof *p);
        if (!p) return sdc_fail(SDC_ERR_NOMEM, "tokenizer: out of memory");
        m->sym_str = p;
        m->capsym = cap;
    }
    SDC_TRY(tok_strmap_put(&m->sym, s, len, m->nsym, &m->sym_str[m->nsym]));
    *sid = m->nsym++;
    return SDC_OK;
}

static uint64_t pair_key(int32_t a, int32_t b) { return (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1; }

static size_t pair_slot(const tok_bpe *m, uint64_t key) {
    size_t mask = m->pcap - 1, i = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 17) & mask;
    while (m->pair_key[i] && m->pair_key[i] != key) i = (i + 1) & mask;
    return i;
}

/* dict(zip(merges, range(...))): a repeated pair keeps its last rank. */
static void pair_put(tok_bpe *m, int32_t a, int32_t b, int32_t rank, int32_t res) {
    uint64_t key = pair_key(a, b);
    size_t i = pair_slot(m, key);
    if (!m->pair_key[i]) m->npair++;
    m->pair_key[i] = key;
    m->pair_rank[i] = rank;
    m->pair_res[i] = res;
}

/* rank of the pair (INT32_MAX when unranked), *res its merged symbol. */
static int32_t pair_get(const tok_bpe *m, int32_t a, int32_t b, int32_t *res) {
    size_t i = pair_slot(m, pair_key(a, b));
    if (!m->pair_key[i]) return INT32_MAX;
    *res = m->pair_res[i];
    return m->pair_rank[i];
}

/* GPT-2 bytes_to_unicode: printable Latin-1 bytes map to themselves, the
 * other 68 to U+0100.. in byte order. */
static void bytes_to_unicode(tok_bpe *m) {
    int n = 0;
    for (int b = 0; b < 256; b++) {
        int keep = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        uint32_t c = keep ? (uint32_t)b : (uint32_t)(256 + n++);
        size_t k = tok_utf8_encode(c, m->byte_chr[b]);
        if (k < 3) m->byte_chr[b][k] = 0;
    }
}

/* Length of a Python-whitespace character at p (UTF-8), else 0. */
static size_t py_space_len(const unsigned char *p, size_t rem) {
    uint32_t c;
    if (p[0] < 0x80) return tok_py_isspace(p[0]) ? 1 : 0;
    if (p[0] >= 0xC2 && p[0] <= 0xDF && rem >= 2) {
        c = ((uint32_t)(p[0] & 0x1F) << 6) | (p[1] & 0x3F);
        return tok_py_isspace(c) ? 2 : 0;
    }
    if (p[0] >= 0xE0 && p[0] <= 0xEF && rem >= 3) {
        c = ((uint32_t)(p[0] & 0x0F) << 12) | ((uint32_t)(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
        return tok_py_isspace(c) ? 3 : 0;
    }
    return 0;
}

sdc_status tok_bpe_load(tok_bpe *m, const char *path, int max_lines) {
    memset(m, 0, sizeof *m);
    bytes_to_unicode(m);
    char *buf;
    size_t len;
    SDC_TRY(sdc_read_file(path, &buf, &len));
    size_t bad;
    if (!tok_utf8_valid(buf, len, &bad)) {
        free(buf);
        return sdc_fail(SDC_ERR_FORMAT, "%s: invalid UTF-8 at byte %zu", path, bad);
    }
    sdc_status st = tok_strmap_init(&m->sym, 2 * (size_t)(max_lines > 0 ? max_lines : 1) + 512);
    if (st) {
        free(buf);
        return st;
    }
    m->pcap = 1024;
    while (m->pcap < 2 * (size_t)(max_lines > 0 ? max_lines : 1)) m->pcap <<= 1;
    m->pair_key = calloc(m->pcap, sizeof *m->pair_key);
    m->pair_rank = malloc(m->pcap * sizeof *m->pair_rank);
    m->pair_res = malloc(m->pcap * sizeof *m->pair_res);
    if (!m->pair_key || !m->pair_rank || !m->pair_res) {
        st = sdc_fail(SDC_ERR_NOMEM, "tokenizer: out of memory");
        goto done;
    }
    /* the 512 starting symbols: each byte-char, alone and with "</w>" */
    for (int b = 0; b < 256; b++) {
        char tmp[8];
        size_t k = strlen(m->byte_chr[b]);
        memcpy(tmp, m->byte_chr[b], k);
        memcpy(tmp + k, "</w>", 4);
        if ((st = tok_bpe_intern(m, tmp, k, &m->byte_sid[b])) ||
            (st = tok_bpe_intern(m, tmp, k + 4, &m->byte_w_sid[b])))
            goto done;
    }
    /* read().strip().split("\n") in text mode (universal newlines) */
    const unsigned char *p = (const unsigned char *)buf, *end = p + len;
    size_t w;
    while (p < end && (w = py_space_len(p, (size_t)(end - p)))) p += w;
    while (end > p) {
        const unsigned char *q = end - 1;
        while (q > p && (*q & 0xC0) == 0x80) q--;
        if (!py_space_len(q, (size_t)(end - q))) break;
        end = q;
    }
    int line = 0;
    while (p < end && line < max_lines) {
        const unsigned char *eol = p;
        while (eol < end && *eol != '\n' && *eol != '\r') eol++;
        if (line > 0) {
            /* merge.split(): fields separated by any Python whitespace */
            const unsigned char *f[3], *fe[3];
            int nf = 0;
            const unsigned char *s = p;
            while (s < eol) {
                while (s < eol && (w = py_space_len(s, (size_t)(eol - s)))) s += w;
                if (s >= eol) break;
                const unsigned char *t = s;
                while (t < eol && !py_space_len(t, (size_t)(eol - t))) t++;
                if (nf < 3) f[nf] = s, fe[nf] = t;
                nf++;
                s = t;
            }
            if (nf != 0 && nf != 2) {
                st = sdc_fail(SDC_ERR_FORMAT, "%s: line %d: expected two symbols separated by a space, got %d field%s",
                              path, line + 1, nf, nf == 1 ? "" : "s");
                goto done;
            }
            if (nf == 2) {
                size_t la = (size_t)(fe[0] - f[0]), lb = (size_t)(fe[1] - f[1]);
                char small[256];
                char *cat = la + lb < sizeof small ? small : malloc(la + lb + 1);
                if (!cat) {
                    st = sdc_fail(SDC_ERR_NOMEM, "tokenizer: out of memory");
                    goto done;
                }
                memcpy(cat, f[0], la);
                memcpy(cat + la, f[1], lb);
                int32_t a, b, r;
                st = tok_bpe_intern(m, (const char *)f[0], la, &a);
                if (!st) st = tok_bpe_intern(m, (const char *)f[1], lb, &b);
                if (!st) st = tok_bpe_intern(m, cat, la + lb, &r);
                if (cat != small) free(cat);
                if (st) goto done;
                pair_put(m, a, b, line - 1, r);
                m->nmerges++;
            }
        }
        line++;
        p = eol;
        if (p < end && *p == '\r' && p + 1 < end && p[1] == '\n') p += 2;
        else if (p < end) p++;
    }
    if (line == 0) st = sdc_fail(SDC_ERR_FORMAT, "%s: empty merges file", path);
done:
    free(buf);
    if (st) tok_bpe_free(m);
    return st;
}

void tok_bpe_free(tok_bpe *m) {
    tok_strmap_free(&m->sym);
    free(m->sym_str);
    free(m->pair_key);
    free(m->pair_rank);
    free(m->pair_res);
    memset(m, 0, sizeof *m);
}

size_t tok_bpe_word_simple(const tok_bpe *m, const unsigned char *bytes, size_t n, int32_t *out) {
    for (size_t i = 0; i + 1 < n; i++) out[i] = m->byte_sid[bytes[i]];
    out[n - 1] = m->byte_w_sid[bytes[n - 1]];
    size_t k = n;
    while (k > 1) {
        /* the lowest-ranked adjacent pair ... */
        int32_t best = INT32_MAX, first = -1, second = -1, merged = -1;
        for (size_t i = 0; i + 1 < k; i++) {
            int32_t res, r = pair_get(m, out[i], out[i + 1], &res);
            if (r < best) best = r, first = out[i], second = out[i + 1], merged = res;
        }
        if (best == INT32_MAX) break;
        /* ... merged at every occurrence, left to right, non-overlapping */
        size_t j = 0;
        for (size_t i = 0; i < k;) {
            if (i + 1 < k && out[i] == first && out[i + 1] == second) {
                out[j++] = merged;
                i += 2;
            } else {
                out[j++] = out[i++];
            }
        }
        k = j;
    }
    return k;
}

/* --- the same merges in O(n log n) ------------------------------------------
 * The loop above finds the lowest-ranked adjacent pair by a scan of the whole
 * word, once per merge: quadratic in the word's length. Here every adjacent
 * pair with a rank sits in a binary heap ordered by (rank, position); the
 * symbols form a linked list. A rank belongs to exactly one pair, so popping
 * all entries of the lowest rank in position order and merging each that is
 * still there is the reference's "merge every occurrence, left to right,
 * non-overlapping". The pairs a merge creates are pushed only after that
 * rank is done (the reference looks for the next pair only then), and are
 * never of that rank: a merged symbol is longer than both of its parts.
 * Entries are not removed when a merge changes their pair; a popped entry
 * counts only when its position still starts a pair of that rank. */

typedef struct {
    int32_t rank;
    uint32_t pos;
} bpe_cand;

static int cand_less(bpe_cand a, bpe_cand b) { return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos); }

static void heap_push(bpe_cand *h, size_t *n, bpe_cand c) {
    size_t i = (*n)++;
    while (i && cand_less(c, h[(i - 1) / 2])) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = c;
}

static bpe_cand heap_pop(bpe_cand *h, size_t *n) {
    bpe_cand top = h[0], last = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && cand_less(h[c + 1], h[c])) c++;
        if (!cand_less(h[c], last)) break;
        h[i] = h[c];
        i = c;
    }
    if (*n) h[i] = last;
    return top;
}

#define BPE_NONE UINT32_MAX

sdc_status tok_bpe_word(const tok_bpe *m, const unsigned char *bytes, size_t n, int32_t *out, size_t *k) {
    if (n <= 32) { /* short words (nearly all): the reference's loop, no allocation */
        *k = tok_bpe_word_simple(m, bytes, n, out);
        return SDC_OK;
    }
    if (n >= BPE_NONE) return sdc_fail(SDC_ERR_ARG, "tokenizer: a word of %zu bytes is too long", n);
    /* out[] holds the symbols in place; nxt/prv link the live ones (BPE_NONE: none) */
    uint32_t *nxt = malloc(n * sizeof *nxt), *prv = malloc(n * sizeof *prv);
    /* at most n - 1 pairs at the start and 2 per merge (n - 1 merges at most) */
    bpe_cand *heap = malloc(3 * n * sizeof *heap), *pend = malloc(2 * n * sizeof *pend);
    if (!nxt || !prv || !heap || !pend) {
        free(nxt), free(prv), free(heap), free(pend);
        return sdc_fail(SDC_ERR_NOMEM, "tokenizer: out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        out[i] = i + 1 < n ? m->byte_sid[bytes[i]] : m->byte_w_sid[bytes[i]];
        nxt[i] = i + 1 < n ? (uint32_t)(i + 1) : BPE_NONE;
        prv[i] = i ? (uint32_t)(i - 1) : BPE_NONE;
    }
    size_t nh = 0, np = 0, live = n;
    int32_t res;
    for (size_t i = 0; i + 1 < n; i++) {
        int32_t r = pair_get(m, out[i], out[i + 1], &res);
        if (r != INT32_MAX) heap_push(heap, &nh, (bpe_cand){r, (uint32_t)i});
    }
    while (nh && live > 1) {
        const int32_t rank = heap[0].rank;
        while (nh && heap[0].rank == rank) {
            uint32_t p = heap_pop(heap, &nh).pos, q = nxt[p];
            /* out[p] < 0: merged away into its left neighbour */
            if (out[p] < 0 || q == BPE_NONE || pair_get(m, out[p], out[q], &res) != rank) continue;
            out[p] = res;
            out[q] = -1;
            nxt[p] = nxt[q];
            if (nxt[q] != BPE_NONE) prv[nxt[q]] = p;
            live--;
            if (prv[p] != BPE_NONE) pend[np++] = (bpe_cand){0, prv[p]};
            if (nxt[p] != BPE_NONE) pend[np++] = (bpe_cand){0, p};
        }
        /* the pairs the merges made, as they stand now */
        for (size_t i = 0; i < np; i++) {
            uint32_t p = pend[i].pos, q = out[p] < 0 ? BPE_NONE : nxt[p];
            if (q == BPE_NONE) continue;
            int32_t r = pair_get(m, out[p], out[q], &res);
            if (r != INT32_MAX) heap_push(heap, &nh, (bpe_cand){r, p});
        }
        np = 0;
    }
    size_t o = 0;
    for (uint32_t p = 0; p != BPE_NONE; p = nxt[p]) out[o++] = out[p];
    free(nxt), free(prv), free(heap), free(pend);
    *k = o;
    return SDC_OK;
}
