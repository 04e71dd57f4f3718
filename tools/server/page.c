/* page.c - the web page served at /: tools/server/page.html, turned into a
 * C array at build time (`xxd -i`, see the Makefile) so the binary needs no
 * files beside it and the page works offline. */
#include <stddef.h>

#include "page_html.h" /* generated: tools_server_page_html, tools_server_page_html_len */
#include "server.h"

const char *page_html(size_t *len) {
    *len = tools_server_page_html_len;
    return (const char *)tools_server_page_html;
}
