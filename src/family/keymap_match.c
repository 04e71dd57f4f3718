/* keymap_match.c - longest-prefix name translation over the prefix pairs
 * the UNet and VAE key maps enumerate. */
#include <stdio.h>
#include <string.h>

#include "family/ldm_keymap.h"

void keymap_match(void *ctx, const char *d, const char *l) {
    keymap_query *q = ctx;
    const char *from = q->reverse ? l : d, *to = q->reverse ? d : l;
    size_t k = strlen(from);
    if (k <= q->best || strncmp(q->name, from, k) || (q->name[k] != '.' && q->name[k] != 0)) return;
    q->best = k;
    q->found = snprintf(q->out, q->n, "%s%s", to, q->name + k) < (int)q->n;
}
