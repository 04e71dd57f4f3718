/* page.c - the web page served at /: tools/server/page.html, turned into a
 * C array at build time (`xxd -i`, see the Makefile) so the binary needs no
 * files beside it and the page works offline. The page's default sampler
 * comes from the library's sampler registry: the JavaScript string
 * "@SDC_DEFAULT_SAMPLER@" is replaced once by its A1111 name. */
#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "page_html.h" /* generated: tools_server_page_html, tools_server_page_html_len */
#include "sdc.h"
#include "server.h"

static const char k_token[] = "\"@SDC_DEFAULT_SAMPLER@\"";

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static char *g_page;
static size_t g_len;

static void build(void) {
    const char *src = (const char *)tools_server_page_html;
    const size_t n = tools_server_page_html_len, nt = sizeof k_token - 1;
    const sdc_sampler_info *def = NULL;
    for (int i = 0; i < sdc_sampler_count() && !def; i++)
        if (sdc_sampler_at(i)->ui_default) def = sdc_sampler_at(i);
    if (!def) def = sdc_sampler_at(0);
    cJSON *s = cJSON_CreateString(def->a1111_name); /* a JSON string is a JavaScript string literal */
    char *lit = s ? cJSON_PrintUnformatted(s) : NULL;
    cJSON_Delete(s);
    const char *at = lit ? memmem(src, n, k_token, nt) : NULL;
    char *page = at ? malloc(n - nt + strlen(lit)) : NULL;
    if (page) {
        size_t a = (size_t)(at - src), l = strlen(lit);
        memcpy(page, src, a);
        memcpy(page + a, lit, l);
        memcpy(page + a + l, at + nt, n - a - nt);
        g_page = page, g_len = n - nt + l;
    }
    free(lit);
}

const char *page_html(size_t *len) {
    pthread_once(&g_once, build);
    if (!g_page) { /* out of memory: the page as built (its own fallback name) */
        *len = tools_server_page_html_len;
        return (const char *)tools_server_page_html;
    }
    *len = g_len;
    return g_page;
}
