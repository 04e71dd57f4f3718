/* cors.c - which origins may call the server from a browser (cors.h). */
#include "cors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cors_init(cors_policy *c, const char *list, const char *regex, char *err, size_t n) {
    memset(c, 0, sizeof *c);
    if (list) {
        char *copy = strdup(list), *save = NULL;
        if (!copy) return snprintf(err, n, "out of memory"), 0;
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            while (*t == ' ') t++;
            size_t k = strlen(t);
            while (k && t[k - 1] == ' ') t[--k] = 0;
            if (!k) continue;
            if (!strcmp(t, "*")) c->any = 1;
            char **g = realloc(c->origins, (size_t)(c->n + 1) * sizeof *g);
            if (g) c->origins = g;
            if (!g || !(g[c->n] = strdup(t))) {
                free(copy);
                cors_free(c);
                return snprintf(err, n, "out of memory"), 0;
            }
            c->n++;
        }
        free(copy);
    }
    if (regex) {
        /* Starlette matches with re.fullmatch: the pattern must cover the whole origin */
        size_t k = strlen(regex) + 8;
        char *anchored = malloc(k);
        if (!anchored) {
            cors_free(c);
            return snprintf(err, n, "out of memory"), 0;
        }
        snprintf(anchored, k, "^(%s)$", regex);
        int rc = regcomp(&c->re, anchored, REG_EXTENDED | REG_NOSUB);
        free(anchored);
        if (rc) {
            char msg[256];
            regerror(rc, &c->re, msg, sizeof msg);
            cors_free(c);
            return snprintf(err, n, "--cors-allow-origins-regex '%s': %s", regex, msg), 0;
        }
        c->has_re = 1;
    }
    return 1;
}

void cors_free(cors_policy *c) {
    for (int i = 0; i < c->n; i++) free(c->origins[i]);
    free(c->origins);
    if (c->has_re) regfree(&c->re);
    memset(c, 0, sizeof *c);
}

int cors_enabled(const cors_policy *c) { return c->n > 0 || c->has_re; }

int cors_allowed(const cors_policy *c, const char *origin) {
    if (!origin || !cors_enabled(c)) return 0;
    if (c->any) return 1;
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->origins[i], origin)) return 1;
    return c->has_re && !regexec(&c->re, origin, 0, NULL, 0);
}
