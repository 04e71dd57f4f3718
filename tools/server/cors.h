/* cors.h - A1111's CORS (--cors-allow-origins LIST, --cors-allow-origins-regex
 * RE: FastAPI's CORSMiddleware with every method and header allowed and
 * credentials on). Off when neither is given, as in A1111: no CORS headers,
 * and OPTIONS is a 405 like any other unrouted method. */
#ifndef SDC_TOOLS_SERVER_CORS_H
#define SDC_TOOLS_SERVER_CORS_H

#include <regex.h>
#include <stddef.h>

typedef struct {
    char **origins; /* exact origins ("*": any) */
    int n, any;
    regex_t re; /* matched against the whole origin */
    int has_re;
} cors_policy;

/* list: comma-separated origins (NULL: none); regex: POSIX extended (NULL:
 * none). 0 with a message in err on a bad regex or out of memory. */
int cors_init(cors_policy *c, const char *list, const char *regex, char *err, size_t n);
void cors_free(cors_policy *c);
int cors_enabled(const cors_policy *c);
/* origin (the request's Origin header, may be NULL) may read responses */
int cors_allowed(const cors_policy *c, const char *origin);

#endif
