/* infotext_parse.c - A1111 infotext -> fields, the reading of A1111's
 * parse_generation_parameters: its parameter pattern
 *   \s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)
 * applied findall-style to the last line, written out by hand here. */
#include "infotext_parse.h"

#include "json_util.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Python's \w on UTF-8 text: ASCII word characters and any non-ASCII byte */
static int is_word(unsigned char c) { return isalnum(c) || c == '_' || c >= 0x80; }
static int is_key(unsigned char c) { return is_word(c) || c == ' ' || c == '-' || c == '/'; }
static int is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'; }

typedef struct {
    size_t key, key_len, val, val_len, end;
} param_match;

#define NO_CLOSE SIZE_MAX

/* close[j]: where the quoted-string scan "(?:\\.|[^\\"])*" that starts at j
 * ends on its closing quote, NO_CLOSE when it runs into the end (or a
 * backslash before a newline, which '.' does not match). Made once, right to
 * left, so trying the quoted form at each match costs O(1), not a rescan. */
static size_t *quote_closes(const char *s, size_t n) {
    size_t *close = malloc((n + 2) * sizeof *close);
    if (!close) return NULL;
    close[n] = close[n + 1] = NO_CLOSE;
    for (size_t j = n; j-- > 0;) {
        if (s[j] == '"') close[j] = j;
        else if (s[j] == '\\') close[j] = j + 1 < n && s[j + 1] != '\n' ? close[j + 2] : NO_CLOSE;
        else close[j] = close[j + 1];
    }
    return close;
}

/* One match of the pattern at s+pos, or 0. On a miss, *next is the first
 * later position where a match could start: every start inside the same
 * run of key characters reaches the same end and misses the same way, so a
 * long run of letters is scanned once, not once per letter. */
static int match_at(const char *s, size_t n, size_t pos, const size_t *close, param_match *m, size_t *next) {
    size_t i = pos;
    while (i < n && is_space((unsigned char)s[i])) i++;
    if (i >= n || !is_word((unsigned char)s[i])) {
        *next = i + 1;
        return 0;
    }
    size_t k = i++;
    while (i < n && is_key((unsigned char)s[i])) i++;
    if (i - k < 2 || i >= n || s[i] != ':') {
        *next = i;
        return 0;
    }
    m->key = k;
    m->key_len = i - k;
    i++;
    while (i < n && is_space((unsigned char)s[i])) i++;
    if (i < n && s[i] == '"' && close) { /* "(?:\\.|[^\\"])+" followed by , or the end */
        size_t j = close[i + 1];
        if (j != NO_CLOSE && j > i + 1 && (j + 1 == n || s[j + 1] == ',')) {
            m->val = i;
            m->val_len = j + 1 - i;
            m->end = j + 1 < n ? j + 2 : n;
            return 1;
        }
    }
    size_t j = i;
    while (j < n && s[j] != ',') j++;
    m->val = i;
    m->val_len = j - i;
    m->end = j < n ? j + 1 : n;
    return 1;
}

/* the matches findall would return, at most max; returns the count, -1 when out of memory */
static int find_params(const char *s, size_t n, param_match *out, int max) {
    size_t *close = memchr(s, '"', n) ? quote_closes(s, n) : NULL;
    if (memchr(s, '"', n) && !close) return -1;
    int c = 0;
    size_t pos = 0;
    while (pos < n && c < max) {
        param_match m;
        size_t next;
        if (match_at(s, n, pos, close, &m, &next)) {
            out[c++] = m;
            pos = m.end > pos ? m.end : pos + 1;
        } else {
            pos = next;
        }
    }
    free(close);
    return c;
}

static char *dup_range(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

/* Python's str.strip() on a range */
static void strip(const char **s, size_t *n) {
    while (*n && is_space((unsigned char)**s)) (*s)++, (*n)--;
    while (*n && is_space((unsigned char)(*s)[*n - 1])) (*n)--;
}

/* *acc grows geometrically (*cap), so many short lines stay linear */
static int append_line(char **acc, size_t *len, size_t *cap, const char *line, size_t n) {
    char *p = *acc;
    if (*len + n + 2 > *cap) {
        size_t c = *cap ? *cap : 256;
        while (c < *len + n + 2) c *= 2;
        if (!(p = realloc(*acc, c))) return 0;
        *cap = c;
    }
    if (*len) p[(*len)++] = '\n';
    memcpy(p + *len, line, n);
    *len += n;
    p[*len] = 0;
    *acc = p;
    return 1;
}

/* "WxH" with digits only */
static int image_size(const char *v, size_t n, size_t *x) {
    size_t i = 0;
    while (i < n && isdigit((unsigned char)v[i])) i++;
    if (!i || i >= n || v[i] != 'x') return 0;
    *x = i;
    size_t j = i + 1;
    while (j < n && isdigit((unsigned char)v[j])) j++;
    return j == n && j > i + 1;
}

#define MAX_PARAMS 256

cJSON *infotext_parse(const char *text) {
    cJSON *res = cJSON_CreateObject();
    param_match *pm = malloc(MAX_PARAMS * sizeof *pm);
    if (!res || !pm) goto oom;
    const char *s = text ? text : "";
    size_t n = strlen(s);
    strip(&s, &n);
    /* the last line holds the parameters when it has at least three of them */
    const char *last = memrchr(s, '\n', n);
    size_t body_n = last ? (size_t)(last - s) : 0;
    const char *pl = last ? last + 1 : s;
    size_t pl_n = n - (size_t)(pl - s);
    int np = find_params(pl, pl_n, pm, MAX_PARAMS);
    if (np < 0) goto oom;
    if (np < 3) {
        body_n = n;
        pl_n = 0;
        np = 0;
    }
    char *prompt = NULL, *neg = NULL;
    size_t prompt_n = 0, neg_n = 0, prompt_cap = 0, neg_cap = 0;
    int in_neg = 0, ok = 1;
    for (size_t a = 0; ok && a < body_n;) {
        const char *nl = memchr(s + a, '\n', body_n - a);
        size_t b = nl ? (size_t)(nl - s) : body_n;
        const char *line = s + a;
        size_t ln = b - a;
        strip(&line, &ln);
        if (ln >= 16 && !memcmp(line, "Negative prompt:", 16)) {
            in_neg = 1;
            line += 16, ln -= 16;
            strip(&line, &ln);
        }
        ok = in_neg ? append_line(&neg, &neg_n, &neg_cap, line, ln)
                    : append_line(&prompt, &prompt_n, &prompt_cap, line, ln);
        a = b + 1;
    }
    int added = ok && cJSON_AddStringToObject(res, "Prompt", prompt ? prompt : "") &&
                cJSON_AddStringToObject(res, "Negative prompt", neg ? neg : "");
    free(prompt);
    free(neg);
    if (!added) goto oom;
    for (int i = 0; i < np; i++) {
        char *key = dup_range(pl + pm[i].key, pm[i].key_len);
        char *val = dup_range(pl + pm[i].val, pm[i].val_len);
        size_t vn = pm[i].val_len, x;
        int good = key && val;
        if (good && vn >= 2 && val[0] == '"' && val[vn - 1] == '"') { /* A1111 unquote: json.loads, else as is */
            cJSON *q = req_json_parse(val, vn, NULL);
            if (q && cJSON_IsString(q)) {
                char *u = strdup(q->valuestring);
                if (u) free(val), val = u, vn = strlen(u);
            }
            cJSON_Delete(q);
        }
        if (good && image_size(val, vn, &x)) {
            char k1[300], k2[300];
            val[x] = 0;
            snprintf(k1, sizeof k1, "%s-1", key);
            snprintf(k2, sizeof k2, "%s-2", key);
            cJSON_DeleteItemFromObjectCaseSensitive(res, k1);
            cJSON_DeleteItemFromObjectCaseSensitive(res, k2);
            good = cJSON_AddStringToObject(res, k1, val) && cJSON_AddStringToObject(res, k2, val + x + 1);
        } else if (good) {
            cJSON_DeleteItemFromObjectCaseSensitive(res, key); /* a later duplicate wins, as in a dict */
            good = cJSON_AddStringToObject(res, key, val) != NULL;
        }
        free(key);
        free(val);
        if (!good) goto oom;
    }
    /* what A1111 fills in for fields a default run leaves out */
    if (!cJSON_GetObjectItemCaseSensitive(res, "Clip skip") && !cJSON_AddStringToObject(res, "Clip skip", "1"))
        goto oom;
    if (!cJSON_GetObjectItemCaseSensitive(res, "Schedule type") &&
        !cJSON_AddStringToObject(res, "Schedule type", "Automatic"))
        goto oom;
    free(pm);
    return res;
oom:
    free(pm);
    cJSON_Delete(res);
    return NULL;
}
