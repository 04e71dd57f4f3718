/* tokenizer_text.c - text normalisation and the CLIP pre-tokenizer regex,
 * reproducing transformers' CLIPTokenizer._tokenize without ftfy:
 *   " ".join(BasicTokenizer(strip_accents=False, do_split_on_punc=False).tokenize(text))
 * then re.findall(pat, text). Character properties come from utf8proc. */
#include "text/tokenizer_text.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* --- UTF-8 ---------------------------------------------------------------- */

size_t tok_utf8_decode(const char *s, size_t len, uint32_t *out) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, n = 0;
    while (i < len) {
        unsigned b0 = p[i];
        if (b0 < 0x80) {
            out[n++] = b0;
            i++;
            continue;
        }
        /* Well-formed sequences (Unicode Table 3-7): lead byte, then the
         * allowed range of the second byte; later bytes are 80..BF. */
        int need;
        unsigned lo = 0x80, hi = 0xBF;
        uint32_t c;
        if (b0 >= 0xC2 && b0 <= 0xDF) need = 1, c = b0 & 0x1F;
        else if (b0 == 0xE0) need = 2, c = b0 & 0x0F, lo = 0xA0;
        else if (b0 == 0xED) need = 2, c = b0 & 0x0F, hi = 0x9F;
        else if (b0 >= 0xE1 && b0 <= 0xEF) need = 2, c = b0 & 0x0F;
        else if (b0 == 0xF0) need = 3, c = b0 & 0x07, lo = 0x90;
        else if (b0 == 0xF4) need = 3, c = b0 & 0x07, hi = 0x8F;
        else if (b0 >= 0xF1 && b0 <= 0xF3) need = 3, c = b0 & 0x07;
        else {
            out[n++] = 0xFFFD; /* C0, C1, F5..FF or a stray continuation byte */
            i++;
            continue;
        }
        size_t j = i + 1;
        int ok = 1;
        for (int k = 0; k < need; k++, j++) {
            unsigned lim_lo = k == 0 ? lo : 0x80, lim_hi = k == 0 ? hi : 0xBF;
            if (j >= len || p[j] < lim_lo || p[j] > lim_hi) {
                ok = 0;
                break;
            }
            c = (c << 6) | (p[j] & 0x3F);
        }
        /* invalid: one U+FFFD for the maximal valid prefix (CPython's rule) */
        out[n++] = ok ? c : 0xFFFD;
        i = j;
    }
    return n;
}

size_t tok_utf8_encode(uint32_t c, char *o) {
    unsigned char *u = (unsigned char *)o;
    if (c < 0x80) {
        u[0] = (unsigned char)c;
        return 1;
    }
    if (c < 0x800) {
        u[0] = (unsigned char)(0xC0 | (c >> 6));
        u[1] = (unsigned char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        u[0] = (unsigned char)(0xE0 | (c >> 12));
        u[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
        u[2] = (unsigned char)(0x80 | (c & 0x3F));
        return 3;
    }
    u[0] = (unsigned char)(0xF0 | (c >> 18));
    u[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3F));
    u[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
    u[3] = (unsigned char)(0x80 | (c & 0x3F));
    return 4;
}

int tok_utf8_valid(const char *s, size_t len, size_t *bad) {
    const unsigned char *p = (const unsigned char *)s;
    uint32_t tmp[4];
    for (size_t i = 0; i < len;) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = p[i] >= 0xF0 ? 4 : p[i] >= 0xE0 ? 3 : 2;
        if (k > len - i) k = len - i;
        /* decode just this sequence: valid iff it yields one non-U+FFFD char
         * (a literal U+FFFD is EF BF BD and valid) */
        size_t nc = tok_utf8_decode(s + i, k, tmp);
        int lit_fffd = k == 3 && p[i] == 0xEF && p[i + 1] == 0xBF && p[i + 2] == 0xBD;
        if (nc != 1 || (tmp[0] == 0xFFFD && !lit_fffd)) {
            *bad = i;
            return 0;
        }
        i += k;
    }
    return 1;
}

/* --- character classes ----------------------------------------------------- */

int tok_py_isspace(uint32_t c) {
    /* CPython: bidirectional class WS, B or S, or category Zs */
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
           c == 0x3000;
}

/* The `regex` module's \s for str patterns: the White_Space property. */
static int re_space(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
           c == 0x3000;
}

static int cat(uint32_t c) { return (int)utf8proc_category((utf8proc_int32_t)c); }

static int is_letter(uint32_t c) {
    int k = cat(c);
    return k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO;
}

static int is_number(uint32_t c) {
    int k = cat(c);
    return k >= UTF8PROC_CATEGORY_ND && k <= UTF8PROC_CATEGORY_NO;
}

/* tokenization_utils._is_control: category C*, except \t \n \r. */
static int is_control(uint32_t c) {
    if (c == '\t' || c == '\n' || c == '\r') return 0;
    int k = cat(c);
    return k == UTF8PROC_CATEGORY_CN || k == UTF8PROC_CATEGORY_CC || k == UTF8PROC_CATEGORY_CF ||
           k == UTF8PROC_CATEGORY_CS || k == UTF8PROC_CATEGORY_CO;
}

/* tokenization_utils._is_whitespace: space, \t \n \r, or category Zs. */
static int is_bert_space(uint32_t c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || cat(c) == UTF8PROC_CATEGORY_ZS;
}

/* BasicTokenizer._is_chinese_char */
static int is_cjk(uint32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

/* --- str.lower() ------------------------------------------------------------ */

/* Unicode "Cased" (Lowercase | Uppercase | Lt), used only for the Final_Sigma
 * context. utf8proc has no such property: categories + case mappings + the
 * Other_Lowercase / Other_Uppercase ranges. */
static int is_cased(uint32_t c) {
    int k = cat(c);
    if (k == UTF8PROC_CATEGORY_LU || k == UTF8PROC_CATEGORY_LL || k == UTF8PROC_CATEGORY_LT) return 1;
    if ((uint32_t)utf8proc_tolower((utf8proc_int32_t)c) != c || (uint32_t)utf8proc_toupper((utf8proc_int32_t)c) != c)
        return 1;
    static const uint32_t other[][2] = {
        {0x00AA, 0x00AA}, {0x00BA, 0x00BA}, {0x02B0, 0x02B8}, {0x02C0, 0x02C1}, {0x02E0, 0x02E4},
        {0x0345, 0x0345}, {0x037A, 0x037A}, {0x10FC, 0x10FC}, {0x1D2C, 0x1D6A}, {0x1D78, 0x1D78},
        {0x1D9B, 0x1DBF}, {0x2071, 0x2071}, {0x207F, 0x207F}, {0x2090, 0x209C}, {0x2160, 0x217F},
        {0x24B6, 0x24E9}, {0x2C7C, 0x2C7D}, {0xA69C, 0xA69D}, {0xA770, 0xA770}, {0xA7F8, 0xA7F9},
        {0xAB5C, 0xAB5F}, {0x1F130, 0x1F149}, {0x1F150, 0x1F169}, {0x1F170, 0x1F189},
    };
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++)
        if (c >= other[i][0] && c <= other[i][1]) return 1;
    return 0;
}

/* Unicode "Case_Ignorable": Mn Me Cf Lm Sk, plus Word_Break MidLetter,
 * MidNumLet and Single_Quote. */
static int is_case_ignorable(uint32_t c) {
    int k = cat(c);
    if (k == UTF8PROC_CATEGORY_MN || k == UTF8PROC_CATEGORY_ME || k == UTF8PROC_CATEGORY_CF ||
        k == UTF8PROC_CATEGORY_LM || k == UTF8PROC_CATEGORY_SK)
        return 1;
    switch (c) {
    case 0x0027: case 0x002E: case 0x003A: case 0x00B7: case 0x0387: case 0x055F: case 0x05F4:
    case 0x2018: case 0x2019: case 0x2024: case 0x2027: case 0xFE13: case 0xFE52: case 0xFE55:
    case 0xFF07: case 0xFF0E: case 0xFF1A:
        return 1;
    }
    return 0;
}

/* CPython's handle_capital_sigma: U+03A3 lowers to final sigma U+03C2 when
 * preceded by a cased letter and not followed by one (case-ignorables skipped). */
static uint32_t lower_sigma(const uint32_t *w, size_t n, size_t i) {
    size_t j = i;
    while (j > 0 && is_case_ignorable(w[j - 1])) j--;
    if (j == 0 || !is_cased(w[j - 1])) return 0x3C3;
    j = i + 1;
    while (j < n && is_case_ignorable(w[j])) j++;
    return (j == n || !is_cased(w[j])) ? 0x3C2 : 0x3C3;
}

/* str.lower() of one word: simple lowercase mapping, plus CPython's two
 * full/contextual cases (U+0130 -> "i\u0307", capital sigma). out holds 2n. */
static size_t py_lower(const uint32_t *w, size_t n, uint32_t *out) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = w[i];
        if (c < 0x80) {
            out[o++] = (c >= 'A' && c <= 'Z') ? c + 32 : c;
        } else if (c == 0x130) {
            out[o++] = 'i';
            out[o++] = 0x307;
        } else if (c == 0x3A3) {
            out[o++] = lower_sigma(w, n, i);
        } else {
            out[o++] = (uint32_t)utf8proc_tolower((utf8proc_int32_t)c);
        }
    }
    return o;
}

/* --- BasicTokenizer ------------------------------------------------------- */

/* Canonical ordering: each run of non-starters stably sorted by combining
 * class. utf8proc's own decompose does it by adjacent swaps, quadratic in a
 * run's length (a prompt of 1 MB of combining marks took minutes); a merge
 * sort gives the same order in O(k log k). */
static void canonical_order(uint32_t *b, uint8_t *cc, size_t n, uint32_t *tb, uint8_t *tc) {
    for (size_t i = 0; i < n;) {
        if (!cc[i]) {
            i++;
            continue;
        }
        size_t e = i;
        while (e < n && cc[e]) e++;
        /* bottom-up merge sort of [i, e) by cc, stable */
        for (size_t w = 1; w < e - i; w *= 2) {
            for (size_t lo = i; lo < e; lo += 2 * w) {
                size_t mid = lo + w < e ? lo + w : e, hi = lo + 2 * w < e ? lo + 2 * w : e;
                size_t a = lo, c = mid, o = lo;
                while (a < mid && c < hi) {
                    if (cc[c] < cc[a]) tb[o] = b[c], tc[o++] = cc[c++];
                    else tb[o] = b[a], tc[o++] = cc[a++];
                }
                while (a < mid) tb[o] = b[a], tc[o++] = cc[a++];
                while (c < hi) tb[o] = b[c], tc[o++] = cc[c++];
            }
            memcpy(b + i, tb + i, (e - i) * sizeof *b);
            memcpy(cc + i, tc + i, e - i);
        }
        i = e;
    }
}

/* unicodedata.normalize("NFC", ...) on a code point buffer, in place when
 * possible; *buf may be replaced. utf8proc_map's steps (canonical
 * decomposition, canonical ordering, composition) with the ordering above. */
static sdc_status nfc(uint32_t **buf, size_t *n) {
    size_t i;
    for (i = 0; i < *n && (*buf)[i] < 0x300; i++) {}
    if (i == *n) return SDC_OK; /* below U+0300 nothing composes */
    const utf8proc_option_t opt = UTF8PROC_STABLE | UTF8PROC_COMPOSE;
    size_t cap = *n + 64, len = 0;
    utf8proc_int32_t *d = malloc(cap * sizeof *d);
    if (!d) return sdc_fail(SDC_ERR_NOMEM, "tokenizer: out of memory");
    for (i = 0; i < *n; i++) {
        int bc = 0;
        utf8proc_ssize_t r;
        while ((r = utf8proc_decompose_char((utf8proc_int32_t)(*buf)[i], d + len, (utf8proc_ssize_t)(cap - len), opt,
                                            &bc)) > (utf8proc_ssize_t)(cap - len)) {
            utf8proc_int32_t *g = realloc(d, 2 * cap * sizeof *d);
            if (!g) {
                free(d);
                return sdc_fail(SDC_ERR_NOMEM, "tokenizer: out of memory");
            }
            d = g, cap *= 2;
        }
        if (r < 0) {
            free(d);
            return sdc_fail(SDC_ERR_FORMAT, "tokenizer: NFC failed: %s", utf8proc_errmsg(r));
        }
        len += (size_t)r;
    }
    uint8_t *cc = malloc(2 * len + 1);
    uint32_t *tb = malloc((len + 1) * sizeof *tb);
    if (!cc || !tb) {
        free(d), free(cc), free(tb);
        return sdc_fail(SDC_ERR_NOMEM, "tokenizer: out of memory");
    }
    for (i = 0; i < len; i++) cc[i] = (uint8_t)utf8proc_get_property(d[i])->combining_class;
    canonical_order((uint32_t *)d, cc, len, tb, cc + len);
    free(cc), free(tb);
    utf8proc_ssize_t r = utf8proc_normalize_utf32(d, (utf8proc_ssize_t)len, opt);
    if (r < 0) {
        free(d);
        return sdc_fail(SDC_ERR_FORMAT, "tokenizer: NFC failed: %s", utf8proc_errmsg(r));
    }
    free(*buf);
    *buf = (uint32_t *)d;
    *n = (size_t)r;
    return SDC_OK;
}

sdc_status tok_clip_normalize(const uint32_t *in, size_t n, uint32_t **out, size_t *nout) {
    *out = NULL;
    *nout = 0;
    /* _clean_text + _tokenize_chinese_chars */
    uint32_t *a = malloc((3 * n + 1) * sizeof *a);
    if (!a) return sdc_fail(SDC_ERR_NOMEM, "tokenizer: out of memory");
    size_t na = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = in[i];
        if (c == 0 || c == 0xFFFD || is_control(c)) continue;
        if (is_bert_space(c)) {
            a[na++] = ' ';
        } else if (is_cjk(c)) {
            a[na++] = ' ';
            a[na++] = c;
            a[na++] = ' ';
        } else {
            a[na++] = c;
        }
    }
    sdc_status st = nfc(&a, &na);
    if (st) {
        free(a);
        return st;
    }
    /* whitespace_tokenize (str.split()), lower each word, " ".join */
    uint32_t *o = malloc((2 * na + 1) * sizeof *o);
    if (!o) {
        free(a);
        return sdc_fail(SDC_ERR_NOMEM, "tokenizer: out of memory");
    }
    size_t no = 0, i = 0;
    while (i < na) {
        while (i < na && tok_py_isspace(a[i])) i++;
        if (i == na) break;
        size_t b = i;
        while (i < na && !tok_py_isspace(a[i])) i++;
        if (no) o[no++] = ' ';
        no += py_lower(a + b, i - b, o + no);
    }
    free(a);
    *out = o;
    *nout = no;
    return SDC_OK;
}

/* --- the pre-tokenizer regex ---------------------------------------------- */

/* Does text char t match pattern char p under re.IGNORECASE? The pattern's
 * literals are ASCII; 's' also matches U+017F (long s), 'k' U+212A. */
static int ci_eq(uint32_t t, char p) {
    if (t == (uint32_t)(unsigned char)p) return 1;
    if (p >= 'a' && p <= 'z' && t == (uint32_t)(p - 32)) return 1;
    return (p == 's' && t == 0x17F) || (p == 'k' && t == 0x212A);
}

static size_t match_lit(const uint32_t *s, size_t n, size_t i, const char *lit) {
    size_t k = 0;
    for (; lit[k]; k++)
        if (i + k >= n || !ci_eq(s[i + k], lit[k])) return 0;
    return k;
}

int tok_clip_next_piece(const uint32_t *s, size_t n, size_t *pos, size_t *b, size_t *e) {
    static const char *lits[] = {"<|startoftext|>", "<|endoftext|>", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};
    for (size_t i = *pos; i < n; i++) {
        uint32_t c = s[i];
        size_t len = 0;
        if (c == '<' || c == '\'') {
            for (size_t k = 0; k < sizeof lits / sizeof lits[0] && !len; k++) len = match_lit(s, n, i, lits[k]);
        }
        if (!len) {
            /* U+0345 is matched by nothing: under IGNORECASE the regex module
             * counts it (case partner of iota) as a letter for [^...\p{L}...]
             * but not for [\p{L}]. */
            if (c == 0x345 || re_space(c)) continue;
            if (is_letter(c)) {
                len = 1;
                while (i + len < n && is_letter(s[i + len])) len++;
            } else if (is_number(c)) {
                len = 1;
            } else {
                len = 1;
                while (i + len < n) {
                    uint32_t d = s[i + len];
                    if (d == 0x345 || re_space(d) || is_letter(d) || is_number(d)) break;
                    len++;
                }
            }
        }
        *b = i;
        *e = i + len;
        *pos = i + len;
        return 1;
    }
    *pos = n;
    return 0;
}
