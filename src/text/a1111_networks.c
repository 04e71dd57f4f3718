/* a1111_networks.c - sdc_prompt_networks_parse, A1111's extra_networks.parse_prompt: re.sub of
 * <(\w+):([^>]+)> by "" over the prompt, each match recorded as its name and
 * its arguments split on ':'. Written out by hand: at a '<', a run of word
 * characters, then ':', then at least one character before the first '>'
 * (the greedy [^>]+ cannot pass a '>', so the first one ends the tag); no
 * match there and the scan goes on at the next byte, as re.sub does. The
 * whitespace around a tag stays, as in A1111. */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "sdc.h"
#include "text/a1111_prompt.h"

/* the end of the \w+ run at s[i] (i when none) */
static size_t word_run(const char *s, size_t n, size_t i) {
    while (i < n) {
        utf8proc_int32_t c;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &c);
        if (k <= 0 || !a1111_py_word(c)) break;
        i += (size_t)k;
    }
    return i;
}

size_t a1111_network_tag_at(const char *s, size_t n, size_t i, size_t *colon) {
    size_t w = s[i] == '<' ? word_run(s, n, i + 1) : i;
    if (!(w > i + 1 && w + 1 < n && s[w] == ':')) return 0;
    const char *e = memchr(s + w + 1, '>', n - w - 1);
    if (!e || (size_t)(e - s) <= w + 1) return 0;
    *colon = w;
    return (size_t)(e - s);
}

static char *copy(const char *s, size_t n) {
    char *o = malloc(n + 1);
    if (o) memcpy(o, s, n), o[n] = 0;
    return o;
}

/* one tag: name s[a, colon), arguments s[colon + 1, end) */
static sdc_status add_network(sdc_prompt_networks *o, const char *s, size_t a, size_t colon, size_t end) {
    sdc_prompt_network *nets = realloc(o->nets, (size_t)(o->n + 1) * sizeof *nets);
    if (!nets) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    o->nets = nets;
    sdc_prompt_network *x = &nets[o->n];
    memset(x, 0, sizeof *x);
    o->n++;
    int nargs = 1;
    for (size_t i = colon + 1; i < end; i++) nargs += s[i] == ':';
    if (!(x->name = copy(s + a, colon - a)) || !(x->args = calloc((size_t)nargs, sizeof *x->args)))
        return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    for (size_t i = colon + 1, b = i; i <= end; i++)
        if (i == end || s[i] == ':') {
            if (!(x->args[x->nargs++] = copy(s + b, i - b))) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
            b = i + 1;
        }
    return SDC_OK;
}

sdc_status sdc_prompt_networks_parse(const char *prompt, sdc_prompt_networks *out) {
    memset(out, 0, sizeof *out);
    const char *s = prompt ? prompt : "";
    size_t n = strlen(s), o = 0;
    if (!(out->text = malloc(n + 1))) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    sdc_status st = SDC_OK;
    for (size_t i = 0; i < n && !st;) {
        size_t w = 0, gt = a1111_network_tag_at(s, n, i, &w);
        if (!gt) {
            out->text[o++] = s[i++];
            continue;
        }
        st = add_network(out, s, i + 1, w, gt);
        i = gt + 1;
    }
    out->text[o] = 0;
    if (st) sdc_prompt_networks_free(out);
    return st;
}

void sdc_prompt_networks_free(sdc_prompt_networks *p) {
    for (int i = 0; i < p->n; i++) {
        for (int k = 0; k < p->nets[i].nargs; k++) free(p->nets[i].args[k]);
        free(p->nets[i].args), free(p->nets[i].name);
    }
    free(p->nets), free(p->text);
    memset(p, 0, sizeof *p);
}
