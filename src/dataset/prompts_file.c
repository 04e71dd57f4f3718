/* prompts_file.c - reads a prompts file (text or JSONL) into prompt
 * entries, validating every key and value; nothing here knows about models
 * or output folders. */
#include "dataset/prompts_file.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/json.h"
#include "sched/scheduler.h"

#define SEED_MAX 9007199254740992.0 /* 2^53: the largest integer a JSON number keeps exactly */

static const char *const KEYS = "prompt, negative_prompt, seed, steps, guidance, width, height, scheduler, count";

static sdc_status push(prompt_list *l, int *cap) {
    if (l->n == *cap) {
        int nc = *cap ? *cap * 2 : 64;
        prompt_entry *e = realloc(l->e, (size_t)nc * sizeof *e);
        if (!e) return sdc_fail(SDC_ERR_NOMEM, "out of memory reading prompts");
        l->e = e;
        *cap = nc;
    }
    memset(&l->e[l->n], 0, sizeof l->e[0]);
    l->e[l->n].guidance = -1.0f;
    l->n++;
    return SDC_OK;
}

static int blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\f' && s[i] != '\v') return 0;
    return 1;
}

/* well-formed UTF-8 (no overlongs, surrogates or values past U+10FFFF), so
 * every metadata line written from a prompt is valid JSON text */
static int utf8_valid(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (!len || i + len > n) return 0;
        unsigned cp = len == 1 ? c : c & (0x3Fu >> (len - 1));
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (s[i + k] & 0x3Fu);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += len;
    }
    return 1;
}

static char *dup_n(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

/* an integer-valued JSON number in lo..hi */
static sdc_status get_int(const cJSON *v, const char *what, int line, const char *key, double lo, double hi,
                          double *out) {
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < lo || v->valuedouble > hi) {
        char *txt = cJSON_PrintUnformatted(v);
        sdc_status st = sdc_fail(SDC_ERR_FORMAT, "%s:%d: \"%s\" must be an integer in %.0f..%.0f, got %s", what, line,
                                 key, lo, hi, txt ? txt : "?");
        free(txt);
        return st;
    }
    *out = v->valuedouble;
    return SDC_OK;
}

static sdc_status parse_object(const cJSON *o, const char *what, int line, prompt_entry *e) {
    if (!cJSON_IsObject(o)) return sdc_fail(SDC_ERR_FORMAT, "%s:%d: expected a JSON object {\"prompt\": ...}", what, line);
    for (const cJSON *a = o->child; a; a = a->next)
        for (const cJSON *b = a->next; b; b = b->next)
            if (!strcmp(a->string, b->string))
                return sdc_fail(SDC_ERR_FORMAT, "%s:%d: key \"%s\" appears twice", what, line, a->string);
    for (const cJSON *v = o->child; v; v = v->next) {
        const char *k = v->string;
        double d = 0;
        if (!strcmp(k, "prompt") || !strcmp(k, "negative_prompt") || !strcmp(k, "scheduler")) {
            if (cJSON_IsNull(v) && strcmp(k, "prompt")) continue;
            if (!cJSON_IsString(v))
                return sdc_fail(SDC_ERR_FORMAT, "%s:%d: \"%s\" must be a string", what, line, k);
            if (!strcmp(k, "scheduler")) {
                char name[64];
                if (sched_canonical_name(v->valuestring, name, sizeof name))
                    return sdc_wrap(SDC_ERR_FORMAT, "%s:%d: \"scheduler\"", what, line);
                if (!(e->scheduler = strdup(name))) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
            } else {
                char **dst = !strcmp(k, "prompt") ? &e->prompt : &e->negative;
                if (!(*dst = strdup(v->valuestring))) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
            }
            continue;
        }
        if (cJSON_IsNull(v)) {
            if (!strcmp(k, "seed") || !strcmp(k, "steps") || !strcmp(k, "guidance") || !strcmp(k, "width") ||
                !strcmp(k, "height") || !strcmp(k, "count"))
                continue;
        } else if (!strcmp(k, "seed")) {
            SDC_TRY(get_int(v, what, line, k, 0, SEED_MAX, &d));
            e->has_seed = 1;
            e->seed = (uint64_t)d;
            continue;
        } else if (!strcmp(k, "steps")) {
            SDC_TRY(get_int(v, what, line, k, 1, SDC_MAX_STEPS, &d));
            e->steps = (int)d;
            continue;
        } else if (!strcmp(k, "count")) {
            SDC_TRY(get_int(v, what, line, k, 1, PROMPTS_MAX_COUNT, &d));
            e->count = (int)d;
            continue;
        } else if (!strcmp(k, "width") || !strcmp(k, "height")) {
            SDC_TRY(get_int(v, what, line, k, 8, SDC_MAX_SIDE, &d));
            if ((int)d % 8) return sdc_fail(SDC_ERR_FORMAT, "%s:%d: \"%s\" must be a multiple of 8, got %d", what, line,
                                            k, (int)d);
            *(!strcmp(k, "width") ? &e->width : &e->height) = (int)d;
            continue;
        } else if (!strcmp(k, "guidance")) {
            if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < 0 || v->valuedouble > 100)
                return sdc_fail(SDC_ERR_FORMAT, "%s:%d: \"guidance\" must be a number in 0..100", what, line);
            e->guidance = (float)v->valuedouble;
            continue;
        }
        return sdc_fail(SDC_ERR_FORMAT, "%s:%d: unknown key \"%s\" (known: %s)", what, line, k, KEYS);
    }
    if (!e->prompt) return sdc_fail(SDC_ERR_FORMAT, "%s:%d: no \"prompt\" string", what, line);
    return SDC_OK;
}

static sdc_status parse_json_line(const char *s, size_t n, const char *what, int line, prompt_entry *e) {
    /* cJSON ends strings at \u0000, which would silently cut a prompt */
    for (size_t i = 0; i + 6 <= n; i++)
        if (!memcmp(s + i, "\\u0000", 6)) return sdc_fail(SDC_ERR_FORMAT, "%s:%d: \\u0000 is not allowed", what, line);
    const char *end = NULL;
    /* parsed directly (not json_parse) to see where the object ends: one object per line */
    cJSON *o = cJSON_ParseWithLengthOpts(s, n, &end, 0);
    if (!o) {
        long off = end ? (long)(end - s) + 1 : 0;
        return sdc_fail(SDC_ERR_FORMAT, "%s:%d: invalid JSON near column %ld", what, line, off);
    }
    if (!blank(end, n - (size_t)(end - s))) {
        cJSON_Delete(o);
        return sdc_fail(SDC_ERR_FORMAT, "%s:%d: text after the JSON object (one object per line)", what, line);
    }
    sdc_status st = parse_object(o, what, line, e);
    cJSON_Delete(o);
    return st;
}

static void entry_free(prompt_entry *e) {
    free(e->prompt);
    free(e->negative);
    free(e->scheduler);
}

void prompts_free(prompt_list *l) {
    for (int i = 0; i < l->n; i++) entry_free(&l->e[i]);
    free(l->e);
    memset(l, 0, sizeof *l);
}

sdc_status prompts_parse(const char *buf, size_t len, const char *what, int force_jsonl, prompt_list *out) {
    memset(out, 0, sizeof *out);
    if (len >= 3 && !memcmp(buf, "\xEF\xBB\xBF", 3)) buf += 3, len -= 3; /* UTF-8 byte order mark */
    int jsonl = force_jsonl;
    for (size_t i = 0; !jsonl && i < len; i++) { /* first non-blank character of the file */
        if (buf[i] == '{') jsonl = 1;
        if (!strchr(" \t\r\n\f\v", buf[i])) break;
    }
    out->jsonl = jsonl;
    int cap = 0, line = 0;
    sdc_status st = SDC_OK;
    for (size_t pos = 0; pos < len && !st;) {
        const char *s = buf + pos, *nl = memchr(s, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - s) : len - pos;
        pos += n + 1;
        line++;
        if (n && s[n - 1] == '\r') n--;
        if (blank(s, n)) continue;
        if (memchr(s, 0, n)) {
            st = sdc_fail(SDC_ERR_FORMAT, "%s:%d: contains a NUL byte", what, line);
            break;
        }
        if (!utf8_valid((const unsigned char *)s, n)) {
            st = sdc_fail(SDC_ERR_FORMAT, "%s:%d: not valid UTF-8 text", what, line);
            break;
        }
        if (line > 100000000) {
            st = sdc_fail(SDC_ERR_FORMAT, "%s:%d: too many lines", what, line);
            break;
        }
        if ((st = push(out, &cap))) break;
        prompt_entry *e = &out->e[out->n - 1];
        e->line = line;
        if (jsonl) {
            st = parse_json_line(s, n, what, line, e);
        } else if (!(e->prompt = dup_n(s, n))) {
            st = sdc_fail(SDC_ERR_NOMEM, "out of memory reading prompts");
        }
    }
    if (!st && !out->n) st = sdc_fail(SDC_ERR_FORMAT, "%s: no prompts (the file is empty)", what);
    if (st) prompts_free(out);
    return st;
}

sdc_status prompts_file_load(const char *path, prompt_list *out) {
    char *buf;
    size_t len;
    memset(out, 0, sizeof *out);
    SDC_TRY(sdc_read_file(path, &buf, &len));
    size_t pl = strlen(path);
    int jsonl = pl >= 6 && !strcmp(path + pl - 6, ".jsonl");
    sdc_status st = prompts_parse(buf, len, path, jsonl, out);
    free(buf);
    return st;
}
