/* page.c - the web page served at /: tools/server/page.html, turned into a
 * C array at build time (`xxd -i`, see the Makefile) so the binary needs no
 * files beside it and the page works offline. Its defaults come from the
 * library and the model: the tokens below are replaced once, when the
 * server starts (page_init). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "page_html.h" /* generated: tools_server_page_html, tools_server_page_html_len */
#include "sdc.h"
#include "server.h"

static char *g_page;
static size_t g_len;

/* src[0..n) with every `token` replaced by `value` (malloc'd, *out_n its length) */
static char *replace_all(const char *src, size_t n, const char *token, const char *value, size_t *out_n) {
    size_t nt = strlen(token), nv = strlen(value), count = 0;
    for (const char *p = src; (p = memmem(p, (size_t)(src + n - p), token, nt)); p += nt) count++;
    size_t len = n - count * nt + count * nv;
    char *out = malloc(len ? len : 1), *o = out;
    if (!out) return NULL;
    for (const char *p = src;;) {
        const char *at = memmem(p, (size_t)(src + n - p), token, nt);
        size_t a = (size_t)((at ? at : src + n) - p);
        memcpy(o, p, a), o += a;
        if (!at) break;
        memcpy(o, value, nv), o += nv;
        p = at + nt;
    }
    *out_n = len;
    return out;
}

void page_init(const sdc_model_info *info) {
    const sdc_sampler_info *def = NULL;
    for (int i = 0; i < sdc_sampler_count() && !def; i++)
        if (sdc_sampler_at(i)->ui_default) def = sdc_sampler_at(i);
    if (!def) def = sdc_sampler_at(0);
    cJSON *s = cJSON_CreateString(def->a1111_name); /* a JSON string is a JavaScript string literal */
    char *sampler = s ? cJSON_PrintUnformatted(s) : NULL, w[16], h[16];
    cJSON_Delete(s);
    snprintf(w, sizeof w, "%d", info->default_width);
    snprintf(h, sizeof h, "%d", info->default_height);
    const struct {
        const char *token, *value;
    } subst[] = {{"\"@SDC_DEFAULT_SAMPLER@\"", sampler}, {"@SDC_DEFAULT_WIDTH@", w}, {"@SDC_DEFAULT_HEIGHT@", h}};
    char *page = NULL;
    size_t len = tools_server_page_html_len;
    for (size_t i = 0; i < sizeof subst / sizeof subst[0]; i++) {
        const char *src = page ? page : (const char *)tools_server_page_html;
        char *next = subst[i].value ? replace_all(src, len, subst[i].token, subst[i].value, &len) : NULL;
        free(page);
        if (!(page = next)) break; /* out of memory: the page as built */
    }
    free(sampler);
    if (page) g_page = page, g_len = len;
}

const char *page_html(size_t *len) {
    if (!g_page) { /* page_init ran out of memory: the page as built (its own fallback values) */
        *len = tools_server_page_html_len;
        return (const char *)tools_server_page_html;
    }
    *len = g_len;
    return g_page;
}
