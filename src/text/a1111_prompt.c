/* a1111_prompt.c - A1111's prompt_parser.parse_prompt_attention, written
 * from its rules (README-a1111-prompts.md section 1). At each position the
 * first of these matches (its re_attention, alternatives in this order):
 *   \( \) \[ \] \\   the escaped character as a fragment of weight 1
 *   \                an empty fragment (the backslash disappears)
 *   ( [              push the index of the next fragment on the round / square stack
 *   :\s*([+-]?[.\d]+)\s*\)   with a round bracket open: pop it, multiply from
 *                    there by float(number); else the whole match is text
 *   ) ]              pop and multiply by 1.1 / (1/1.1); nothing open: text
 *   [^\\()\[\]:]+    text;   :   text
 * Text is split on \s*\bBREAK\b\s* with the marker ("BREAK", -1) between the
 * pieces. Brackets still open at the end multiply by 1.1 (round, in the order
 * opened), then 1/1.1 (square). Neighbours of equal weight are merged. \s, \d
 * and \b are Python's Unicode classes (str.isspace, category Nd, \w = letters,
 * numbers and '_'). Weights are doubles multiplied in A1111's order, so
 * "((a:1.3))" gives 1.3 * 1.1 = 1.4300000000000002 as it does. */
#include "text/a1111_prompt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "text/tokenizer_text.h"

/* multiply_range work allowed: linear in any real prompt; only brackets
 * nested by the ten thousand get near it */
#define MAX_WORK ((int64_t)1 << 25)

/* a fragment while parsing: bytes of the prompt (or the BREAK marker) */
typedef struct {
    size_t off, len;
    double w;
    int marker;
} frag;

typedef struct {
    const char *s;
    size_t n;
    frag *f;
    int nf, cf;
    int *round, *square; /* stacks of fragment indices */
    int nr, cr, ns, cs;
    int64_t work;
} parser;

/* one code point at s[i]: its length in bytes; invalid UTF-8 reads as one
 * U+FFFD byte (only its class matters here: text, not space, not a word) */
static size_t cp_at(const char *s, size_t n, size_t i, int32_t *cp) {
    utf8proc_int32_t c;
    utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &c);
    if (k <= 0) {
        *cp = 0xFFFD;
        return 1;
    }
    *cp = c;
    return (size_t)k;
}

/* the code point that ends at s[i] (i > 0): its start */
static size_t cp_before(const char *s, size_t i, int32_t *cp) {
    size_t b = i - 1;
    while (b > 0 && i - b < 4 && ((unsigned char)s[b] & 0xC0) == 0x80) b--;
    if (cp_at(s, i, b, cp) != i - b) { /* not one well-formed sequence ending at i */
        *cp = 0xFFFD;
        return i - 1;
    }
    return b;
}

/* the characters re_attention treats apart: \\ ( ) [ ] : */
static int special(char c) { return c == '\\' || c == '(' || c == ')' || c == '[' || c == ']' || c == ':'; }

static int py_space(int32_t c) { return tok_py_isspace((uint32_t)c); }
static int py_digit(int32_t c) { return utf8proc_category(c) == UTF8PROC_CATEGORY_ND; }
int a1111_py_word(int32_t c) {
    int k = utf8proc_category(c);
    return c == '_' || (k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO) ||
           (k >= UTF8PROC_CATEGORY_ND && k <= UTF8PROC_CATEGORY_NO);
}

/* a decimal digit's value: Unicode puts every Nd digit in runs of ten in
 * ascending order (a stability guarantee), so it is its distance from the
 * start of its run of Nd characters, modulo 10 */
static int digit_value(int32_t c) {
    int32_t a = c;
    while (a > 0 && py_digit(a - 1)) a--;
    return (int)((c - a) % 10);
}

static sdc_status push_frag(parser *P, size_t off, size_t len, int marker) {
    if (P->nf == P->cf) {
        int cap = P->cf ? 2 * P->cf : 16;
        frag *f = realloc(P->f, (size_t)cap * sizeof *f);
        if (!f) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
        P->f = f, P->cf = cap;
    }
    P->f[P->nf++] = (frag){.off = off, .len = len, .w = marker ? -1.0 : 1.0, .marker = marker};
    return SDC_OK;
}

static sdc_status push_index(int **st, int *n, int *cap, int v) {
    if (*n == *cap) {
        int c = *cap ? 2 * *cap : 16;
        int *p = realloc(*st, (size_t)c * sizeof *p);
        if (!p) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
        *st = p, *cap = c;
    }
    (*st)[(*n)++] = v;
    return SDC_OK;
}

/* multiply_range(start, m) */
static sdc_status multiply(parser *P, int start, double m) {
    P->work += P->nf - start;
    if (P->work > MAX_WORK)
        return sdc_fail(SDC_ERR_ARG,
                        "brackets nested too deeply around too much text (more than %lld weight "
                        "multiplications); A1111 would take minutes on it",
                        (long long)MAX_WORK);
    for (int i = start; i < P->nf; i++) P->f[i].w *= m;
    return SDC_OK;
}

/* text s[a, b): the pieces between whole-word BREAKs (the spaces around
 * them removed) with the BREAK marker between them; empty pieces stay */
static sdc_status add_text(parser *P, size_t a, size_t b) {
    const char *s = P->s;
    size_t start = a, search = a;
    while (b - search >= 5) {
        const char *hit = memmem(s + search, b - search, "BREAK", 5);
        if (!hit) break;
        size_t k = (size_t)(hit - s), ms = k, me = k + 5;
        int32_t c;
        int before = k == a || (cp_before(s, k, &c), !a1111_py_word(c));
        int after = me == b || (cp_at(s, b, me, &c), !a1111_py_word(c));
        if (!before || !after) {
            search = k + 1;
            continue;
        }
        while (ms > start) { /* \s* before it, leftmost: back to the previous match */
            size_t p = cp_before(s, ms, &c);
            if (!py_space(c)) break;
            ms = p;
        }
        for (size_t l; me < b && (l = cp_at(s, b, me, &c)) && py_space(c);) me += l;
        SDC_TRY(push_frag(P, start, ms - start, 0));
        SDC_TRY(push_frag(P, 0, 0, 1));
        start = search = me;
    }
    return push_frag(P, start, b - start, 0);
}

/* ":\s*([+-]?[.\d]+)\s*\)" at s[p] == ':': its end, or 0; [*na, *nb) the number */
static size_t weight_match(const char *s, size_t n, size_t p, size_t *na, size_t *nb) {
    size_t i = p + 1, l;
    int32_t c;
    while (i < n && (l = cp_at(s, n, i, &c)) && py_space(c)) i += l;
    *na = i;
    if (i < n && (s[i] == '+' || s[i] == '-')) i++;
    size_t d = i;
    while (i < n && (l = cp_at(s, n, i, &c)) && (c == '.' || py_digit(c))) i += l;
    if (i == d) return 0;
    *nb = i;
    while (i < n && (l = cp_at(s, n, i, &c)) && py_space(c)) i += l;
    return i < n && s[i] == ')' ? i + 1 : 0;
}

/* Python's float() of a [+-]?[.\d]+ string (Unicode digits count as theirs) */
static sdc_status to_float(const char *s, size_t a, size_t b, double *out) {
    char *buf = malloc(b - a + 1);
    if (!buf) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    size_t o = 0;
    int dots = 0, digits = 0;
    for (size_t i = a, l; i < b; i += l) {
        int32_t c;
        l = cp_at(s, b, i, &c);
        if (c == '.') dots++, buf[o++] = '.';
        else if (c == '+' || c == '-') buf[o++] = (char)c;
        else digits++, buf[o++] = (char)('0' + digit_value(c));
    }
    buf[o] = 0;
    sdc_status st = SDC_OK;
    if (dots > 1 || !digits)
        st = sdc_fail(SDC_ERR_ARG,
                      "weight '%.*s' of (text:weight) is not a number (A1111 fails on it too: float() "
                      "refuses it)",
                      (int)(b - a > 40 ? 40 : b - a), s + a);
    else *out = strtod(buf, NULL);
    free(buf);
    return st;
}

static sdc_status scan(parser *P) {
    const char *s = P->s;
    size_t n = P->n, p = 0;
    while (p < n) {
        char c = s[p];
        if (c == '\\') {
            if (p + 1 < n && special(s[p + 1]) && s[p + 1] != ':') {
                SDC_TRY(push_frag(P, p + 1, 1, 0));
                p += 2;
            } else {
                SDC_TRY(push_frag(P, p, 0, 0));
                p++;
            }
        } else if (c == '(') {
            SDC_TRY(push_index(&P->round, &P->nr, &P->cr, P->nf));
            p++;
        } else if (c == '[') {
            SDC_TRY(push_index(&P->square, &P->ns, &P->cs, P->nf));
            p++;
        } else if (c == ':') {
            size_t na, nb, end = weight_match(s, n, p, &na, &nb);
            if (end && P->nr) {
                double w = 0;
                SDC_TRY(to_float(s, na, nb, &w));
                SDC_TRY(multiply(P, P->round[--P->nr], w));
            } else {
                SDC_TRY(add_text(P, p, end ? end : p + 1));
            }
            p = end ? end : p + 1;
        } else if (c == ')' && P->nr) {
            SDC_TRY(multiply(P, P->round[--P->nr], 1.1));
            p++;
        } else if (c == ']' && P->ns) {
            SDC_TRY(multiply(P, P->square[--P->ns], 1 / 1.1));
            p++;
        } else if (c == ')' || c == ']') {
            SDC_TRY(add_text(P, p, p + 1));
            p++;
        } else {
            size_t e = p;
            while (e < n && !special(s[e])) e++;
            SDC_TRY(add_text(P, p, e));
            p = e;
        }
    }
    for (int i = 0; i < P->nr; i++) SDC_TRY(multiply(P, P->round[i], 1.1));
    for (int i = 0; i < P->ns; i++) SDC_TRY(multiply(P, P->square[i], 1 / 1.1));
    return SDC_OK;
}

/* neighbours of equal weight merged, texts copied out */
static sdc_status merge(const parser *P, a1111_parse *out) {
    if (!(out->f = calloc((size_t)P->nf, sizeof *out->f))) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    size_t *need = calloc((size_t)P->nf, sizeof *need);
    if (!need) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    int n = -1;
    for (int i = 0; i < P->nf; i++) {
        if (!isfinite(P->f[i].w)) {
            free(need);
            return sdc_fail(SDC_ERR_ARG, "a weight overflows (brackets and (text:weight) multiply to %g)", P->f[i].w);
        }
        if (n < 0 || P->f[i].w != out->f[n].weight) out->f[++n].weight = P->f[i].w;
        need[n] += P->f[i].marker ? 5 : P->f[i].len;
    }
    out->n = n + 1;
    for (int k = 0; k < out->n; k++)
        if (!(out->f[k].text = malloc(need[k] + 1))) {
            free(need);
            return sdc_fail(SDC_ERR_NOMEM, "out of memory");
        }
    free(need);
    n = -1;
    double last = 0;
    for (int i = 0; i < P->nf; i++) {
        if (n < 0 || P->f[i].w != last) last = P->f[i].w, n++;
        a1111_fragment *o = &out->f[n];
        memcpy(o->text + o->len, P->f[i].marker ? "BREAK" : P->s + P->f[i].off, P->f[i].marker ? 5 : P->f[i].len);
        o->len += P->f[i].marker ? 5 : P->f[i].len;
        o->text[o->len] = 0;
    }
    return SDC_OK;
}

sdc_status a1111_parse_prompt(const char *text, size_t len, a1111_parse *out) {
    memset(out, 0, sizeof *out);
    parser P = {.s = text ? text : "", .n = text ? len : 0};
    sdc_status st = scan(&P);
    if (!st && P.nf == 0) st = push_frag(&P, 0, 0, 0); /* nothing at all: [["", 1.0]] */
    if (!st) st = merge(&P, out);
    free(P.f), free(P.round), free(P.square);
    if (st) a1111_parse_free(out);
    return st;
}

sdc_status a1111_parse_literal(const char *text, size_t len, a1111_parse *out) {
    memset(out, 0, sizeof *out);
    if (!(out->f = calloc(1, sizeof *out->f)) || !(out->f->text = malloc(len + 1))) {
        a1111_parse_free(out);
        return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    }
    out->n = 1;
    if (len) memcpy(out->f->text, text, len);
    out->f->text[len] = 0;
    out->f->len = len;
    out->f->weight = 1.0;
    return SDC_OK;
}

void a1111_parse_free(a1111_parse *p) {
    for (int i = 0; p->f && i < p->n; i++) free(p->f[i].text);
    free(p->f);
    memset(p, 0, sizeof *p);
}

int a1111_fragment_is_break(const a1111_fragment *f) {
    return f->weight == -1.0 && f->len == 5 && !memcmp(f->text, "BREAK", 5);
}
