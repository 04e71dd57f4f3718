/* server.c - the libmicrohttpd side of `sdc serve`: one thread per
 * connection, a request body limit, a budget for the memory requests hold
 * at once and deadlines for slow clients (conn_guard.c), optional HTTP
 * basic auth on every route, CORS (cors.c: preflights answered before auth,
 * as browsers send them without credentials), routing to the API handlers
 * (404 unknown path, 405 wrong method; a trailing slash names the same
 * route; HEAD is GET without the body, which libmicrohttpd leaves out), and
 * the shutdown on SIGINT/SIGTERM: stop accepting, interrupt the running
 * job, answer every request still in flight, then stop. */
#include <ctype.h>
#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "conn_guard.h"
#include "cors.h"
#include "json_util.h"
#include "server.h"

#define MAX_USERS 16
#define DRAIN_SECONDS 10 /* how long shutdown waits for in-flight requests */

typedef struct {
    const server_config *cfg;
    api_ctx api;
    char *users[MAX_USERS]; /* "user:pass" */
    int nusers;
    cors_policy cors;
    pthread_mutex_t mu;
    pthread_cond_t idle;
    int in_flight; /* requests begun and not yet completed */
    conn_guard *guard;
} server;

typedef struct {
    char *body;
    size_t len, cap;
    size_t reserved; /* taken from the request memory budget */
    guard_conn *gc;  /* its connection in the guard (may be NULL) */
    struct timespec t0;
    int replied; /* a response was queued before the body arrived */
    int big;     /* its body or reply took >= TRIM_BYTES */
} request;

/* sdc_tune_allocator keeps freed memory for reuse (it serves the model's
 * activations), and every connection thread may have its own malloc arena:
 * without a trim, what one large request used stays resident per arena
 * (measured: +170 MiB after a few rounds of 8 MB bodies from 4 clients). */
#define TRIM_BYTES (1u << 20)

/* What a request with a body of n bytes may cost while it is handled: the
 * body, its JSON tree (strings up to n, at most JSON_MAX_VALUES nodes of
 * <= 80 bytes: 5 MiB), a decoded copy (png-info's image, 3/4 n) and the
 * reply (png-info: a text of at most SDC_PNG_TEXT_MAX, escaped, twice). */
static size_t request_cost(size_t n) { return 3 * n + ((size_t)8 << 20); }

static double seconds_since(const struct timespec *t0) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + 1e-9 * (double)(t.tv_nsec - t0->tv_nsec);
}

/* ---- routing ---- */

enum { M_GET = 1, M_POST = 2 };

typedef struct {
    const char *path;
    int methods;
} route;

static const route k_routes[] = {
    {"/", M_GET},
    {"/sdapi/v1/txt2img", M_POST},
    {"/sdapi/v1/img2img", M_POST},
    {"/sdapi/v1/sd-models", M_GET},
    {"/sdapi/v1/samplers", M_GET},
    {"/sdapi/v1/schedulers", M_GET},
    {"/sdapi/v1/options", M_GET | M_POST},
    {"/sdapi/v1/progress", M_GET},
    {"/sdapi/v1/png-info", M_POST},
    {"/sdapi/v1/interrupt", M_POST},
    {"/sdapi/v1/skip", M_POST},
    {"/sdapi/v1/loras", M_GET},
    {"/sdapi/v1/refresh-loras", M_POST},
    {"/sdapi/v1/refresh-checkpoints", M_POST},
    {"/sdapi/v1/cmd-flags", M_GET},
    {"/sdapi/v1/memory", M_GET},
    {"/sdapi/v1/embeddings", M_GET},
    {"/sdapi/v1/scripts", M_GET},
    /* probed by clients (webuiapi, SillyTavern, Open WebUI); this server has none of these: A1111's empty answers */
    {"/internal/ping", M_GET},
    {"/sdapi/v1/upscalers", M_GET},
    {"/sdapi/v1/latent-upscale-modes", M_GET},
    {"/sdapi/v1/sd-vae", M_GET},
    {"/sdapi/v1/prompt-styles", M_GET},
    {"/sdapi/v1/face-restorers", M_GET},
    {"/sdapi/v1/realesrgan-models", M_GET},
    {"/sdapi/v1/hypernetworks", M_GET},
    {"/sdapi/v1/sd-modules", M_GET},
    {"/sdapi/v1/script-info", M_GET},
    {"/sdapi/v1/extensions", M_GET},
    {"/sdapi/v1/refresh-vae", M_POST},
    {"/sdapi/v1/refresh-embeddings", M_POST},
};

static void dispatch(server *s, struct MHD_Connection *c, const char *url_in, const char *method, const char *body,
                     size_t len, http_reply *r) {
    /* "/sdapi/v1/options/" is "/sdapi/v1/options" (FastAPI redirects it; answering saves clients the redirect) */
    char url[256];
    size_t ul = strlen(url_in);
    if (ul >= sizeof url) ul = sizeof url - 1; /* longer than any route: stays unknown */
    memcpy(url, url_in, ul);
    url[ul] = 0;
    if (ul > 1 && url[ul - 1] == '/') url[ul - 1] = 0;
    const route *rt = NULL;
    for (size_t i = 0; i < sizeof k_routes / sizeof k_routes[0]; i++)
        if (!strcmp(k_routes[i].path, url)) rt = &k_routes[i];
    if (!rt) {
        reply_error(r, 404, "HTTPException", "Not Found");
        return;
    }
    int m = !strcmp(method, "GET") || !strcmp(method, "HEAD") ? M_GET : !strcmp(method, "POST") ? M_POST : 0;
    if (!(rt->methods & m)) {
        r->allow = rt->methods == M_GET ? "GET, HEAD" : rt->methods == M_POST ? "POST" : "GET, HEAD, POST";
        reply_error(r, 405, "HTTPException", "Method Not Allowed");
        return;
    }
    api_ctx *a = &s->api;
    if (!strcmp(url, "/")) {
        r->status = 200;
        r->body = (char *)page_html(&r->len);
        r->persistent_body = 1;
        r->content_type = "text/html; charset=utf-8";
    } else if (!strcmp(url, "/sdapi/v1/txt2img")) {
        api_txt2img(a, body, len, r);
    } else if (!strcmp(url, "/sdapi/v1/img2img")) {
        api_img2img(a, body, len, r);
    } else if (!strcmp(url, "/sdapi/v1/sd-models")) {
        api_sd_models(a, r);
    } else if (!strcmp(url, "/sdapi/v1/samplers")) {
        api_samplers(a, r);
    } else if (!strcmp(url, "/sdapi/v1/schedulers")) {
        api_schedulers(a, r);
    } else if (!strcmp(url, "/sdapi/v1/options")) {
        if (m == M_GET) api_options_get(a, r);
        else api_options_post(a, body, len, r);
    } else if (!strcmp(url, "/sdapi/v1/progress")) {
        /* A1111's ProgressRequest: ?skip_current_image=true (FastAPI reads true/1/yes/on) */
        const char *skip = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "skip_current_image");
        int sk = skip && (!strcasecmp(skip, "true") || !strcmp(skip, "1") || !strcasecmp(skip, "yes") ||
                          !strcasecmp(skip, "on"));
        api_progress(a, sk, r);
    } else if (!strcmp(url, "/sdapi/v1/png-info")) {
        api_png_info(a, body, len, r);
    } else if (!strcmp(url, "/sdapi/v1/interrupt")) {
        api_interrupt(a, r);
    } else if (!strcmp(url, "/sdapi/v1/skip")) {
        api_skip(a, r);
    } else if (!strcmp(url, "/sdapi/v1/loras")) {
        api_loras(a, r);
    } else if (!strcmp(url, "/sdapi/v1/refresh-checkpoints")) {
        api_refresh_checkpoints(a, r);
    } else if (!strcmp(url, "/sdapi/v1/cmd-flags")) {
        api_cmd_flags(a, r);
    } else if (!strcmp(url, "/sdapi/v1/memory")) {
        api_memory(a, r);
    } else if (!strcmp(url, "/sdapi/v1/embeddings")) {
        api_embeddings(a, r);
    } else if (!strcmp(url, "/sdapi/v1/scripts")) {
        api_scripts(a, r);
    } else if (!strcmp(url, "/sdapi/v1/refresh-loras") || !strcmp(url, "/sdapi/v1/refresh-vae") ||
               !strcmp(url, "/sdapi/v1/refresh-embeddings")) {
        /* the LoRA folder is read at every request; there are no VAEs or embeddings to read */
        reply_json(r, 200, cJSON_CreateNull());
    } else {
        api_empty(strcmp(url, "/internal/ping") != 0, r);
    }
}

/* ---- libmicrohttpd callbacks ---- */

/* Starlette's CORSMiddleware: the allowed Origin echoed (credentials are on,
 * so never "*"), on every response to a request that sent one */
static void add_cors(server *s, struct MHD_Connection *c, struct MHD_Response *resp) {
    if (!cors_enabled(&s->cors)) return;
    const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    MHD_add_response_header(resp, "Vary", "Origin");
    if (!cors_allowed(&s->cors, origin)) return;
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", origin);
    MHD_add_response_header(resp, "Access-Control-Allow-Credentials", "true");
}

static enum MHD_Result send_reply(server *s, struct MHD_Connection *c, const char *method, const char *url,
                                  request *q, http_reply *r, int auth_fail) {
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        r->len, r->body, r->persistent_body || !r->body ? MHD_RESPMEM_PERSISTENT : MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        if (!r->persistent_body) free(r->body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type ? r->content_type : "application/json");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (r->allow) MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
    add_cors(s, c, resp);
    if (r->preflight) { /* allowed: every method and the headers asked for, cached 10 minutes (Starlette's) */
        const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Access-Control-Request-Headers");
        MHD_add_response_header(resp, "Access-Control-Allow-Methods", "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT");
        MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
        if (h) MHD_add_response_header(resp, "Access-Control-Allow-Headers", h);
    }
    enum MHD_Result ok = auth_fail ? MHD_queue_basic_auth_fail_response(c, "sdc", resp)
                                   : MHD_queue_response(c, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    if (!s->cfg->quiet)
        fprintf(stderr, "%s %s %d %.3fs\n", method, url, auth_fail ? 401 : r->status, seconds_since(&q->t0));
    q->replied = 1;
    if (r->len >= TRIM_BYTES) q->big = 1;
    return ok;
}

/* The "user:pass" of an Authorization header, read here rather than by
 * libmicrohttpd: the scheme is case-insensitive (RFC 7617; "basic" works in
 * A1111) and a malformed or empty credential is a quiet refusal, not a
 * logged warning. NULL when absent or not basic (caller frees). */
static char *basic_credentials(struct MHD_Connection *c, size_t *n) {
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h) return NULL;
    while (*h == ' ' || *h == '\t') h++;
    if (strncasecmp(h, "basic", 5) || (h[5] && h[5] != ' ' && h[5] != '\t')) return NULL;
    h += 5;
    while (*h == ' ' || *h == '\t') h++;
    size_t k = strlen(h);
    while (k && isspace((unsigned char)h[k - 1])) k--;
    uint8_t *dec = NULL;
    if (!k || k > 1024 || b64_decode(h, k, &dec, n)) return NULL;
    char *s = malloc(*n + 1);
    if (s) memcpy(s, dec, *n), s[*n] = 0;
    free(dec);
    if (s && (!memchr(s, ':', *n) || memchr(s, 0, *n))) free(s), s = NULL;
    return s;
}

/* constant-time comparison of the offered "user:pass" with each allowed one;
 * without --api-auth any Authorization header (SillyTavern sends an empty
 * "Basic ") is ignored */
static int authorized(server *s, struct MHD_Connection *c) {
    if (!s->nusers) return 1;
    size_t n = 0;
    char *offered = basic_credentials(c, &n);
    int ok = 0;
    for (int i = 0; offered && i < s->nusers; i++) {
        size_t len = strlen(s->users[i]);
        unsigned diff = n != len;
        for (size_t k = 0; k < len; k++) diff |= (unsigned)(s->users[i][k] ^ offered[k < n ? k : 0]);
        ok |= !diff;
    }
    free(offered);
    return ok;
}

/* a CORS preflight: OPTIONS with Access-Control-Request-Method (Starlette's test) */
static int is_preflight(server *s, struct MHD_Connection *c, const char *method) {
    return cors_enabled(&s->cors) && !strcmp(method, "OPTIONS") &&
           MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin") &&
           MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Access-Control-Request-Method");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    (void)version;
    server *s = cls;
    request *q = *con_cls;
    if (!q) { /* first call: headers only */
        if (!(q = calloc(1, sizeof *q))) return MHD_NO;
        clock_gettime(CLOCK_MONOTONIC, &q->t0);
        *con_cls = q;
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        q->gc = ci ? ci->socket_context : NULL;
        guard_request_begun(s->guard, q->gc);
        pthread_mutex_lock(&s->mu);
        s->in_flight++;
        pthread_mutex_unlock(&s->mu);
        http_reply r = {0};
        if (is_preflight(s, c, method)) {
            const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
            int ok = cors_allowed(&s->cors, origin);
            r.status = ok ? 200 : 400;
            r.body = ok ? "OK" : "Disallowed CORS origin";
            r.len = strlen(r.body);
            r.persistent_body = 1;
            r.content_type = "text/plain; charset=utf-8";
            r.preflight = ok;
            return send_reply(s, c, method, url, q, &r, 0);
        }
        if (!authorized(s, c)) {
            reply_error(&r, 401, "HTTPException", "Incorrect username or password");
            return send_reply(s, c, method, url, q, &r, 1);
        }
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        unsigned long long n = cl ? strtoull(cl, NULL, 10) : 0;
        if (n > s->cfg->max_body) {
            reply_error(&r, 413, "HTTPException", "the request body (%s bytes) is larger than this server's limit of %zu",
                        cl, s->cfg->max_body);
            return send_reply(s, c, method, url, q, &r, 0);
        }
        if (n) { /* the body's memory, reserved up front and allocated once */
            size_t in_flight;
            if (!guard_reserve(s->guard, request_cost((size_t)n), &in_flight)) {
                reply_error(&r, 503, "HTTPException",
                            "the server is holding %zu MiB of requests (its limit is %zu MiB); try again shortly",
                            in_flight >> 20, s->cfg->max_request_memory >> 20);
                return send_reply(s, c, method, url, q, &r, 0);
            }
            q->reserved = request_cost((size_t)n);
            if (!(q->body = malloc((size_t)n + 1))) return MHD_NO;
            q->cap = (size_t)n + 1;
        }
        return MHD_YES;
    }
    if (q->replied) { /* the rest of a refused body */
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        guard_body_bytes(s->guard, q->gc, n);
        if (q->len + n > s->cfg->max_body) return MHD_NO; /* a chunked body past the limit: drop the connection */
        if (q->len + n + 1 > q->cap) { /* a chunked body (no Content-Length): grow, within the budget */
            size_t cap = q->cap ? q->cap : 4096;
            while (cap < q->len + n + 1) cap *= 2;
            if (cap > s->cfg->max_body + 1) cap = s->cfg->max_body + 1;
            size_t need = request_cost(cap);
            if (need > q->reserved) {
                if (!guard_reserve(s->guard, need - q->reserved, NULL)) return MHD_NO; /* over the budget: drop it */
                q->reserved = need;
            }
            char *b = realloc(q->body, cap);
            if (!b) return MHD_NO;
            q->body = b;
            q->cap = cap;
        }
        memcpy(q->body + q->len, upload, n);
        q->len += n;
        q->body[q->len] = 0;
        *upload_size = 0;
        return MHD_YES;
    }
    guard_request_complete(s->guard, q->gc);
    http_reply r = {0};
    dispatch(s, c, url, method, q->body ? q->body : "", q->len, &r);
    return send_reply(s, c, method, url, q, &r, 0);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    (void)c, (void)toe;
    server *s = cls;
    request *q = *con_cls;
    if (!q) return;
    guard_request_done(s->guard, q->gc);
    guard_release(s->guard, q->reserved);
    int trim = q->big || q->cap >= TRIM_BYTES;
    free(q->body);
    free(q);
    *con_cls = NULL;
#ifdef __GLIBC__
    if (trim) malloc_trim(0); /* hand a large request's memory back to the system */
#else
    (void)trim;
#endif
    pthread_mutex_lock(&s->mu);
    if (--s->in_flight == 0) pthread_cond_broadcast(&s->idle);
    pthread_mutex_unlock(&s->mu);
}

/* every accepted connection is known to the guard until it closes */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe) {
    server *s = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_context = guard_opened(s->guard, ci ? ci->connect_fd : -1);
    } else {
        guard_closed(s->guard, *socket_context);
        *socket_context = NULL;
    }
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    fprintf(stderr, "sdc serve: ");
    vfprintf(stderr, fmt, ap);
}

/* ---- run ---- */

static int parse_users(server *s, const char *auth) {
    if (!auth) return 1;
    char *copy = strdup(auth), *save = NULL;
    if (!copy) return 0;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (!strchr(t, ':') || s->nusers == MAX_USERS) {
            free(copy);
            return 0;
        }
        s->users[s->nusers++] = strdup(t);
    }
    free(copy);
    return s->nusers > 0;
}

static void drain(server *s) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += DRAIN_SECONDS;
    pthread_mutex_lock(&s->mu);
    while (s->in_flight > 0)
        if (pthread_cond_timedwait(&s->idle, &s->mu, &until) == ETIMEDOUT) break;
    pthread_mutex_unlock(&s->mu);
}

int server_run(model_set *ms, const server_config *cfg) {
    server s = {.cfg = cfg};
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.idle, NULL);
    int rc = 1;
    struct addrinfo *ai = NULL;
    struct MHD_Daemon *d = NULL;
    s.api = (api_ctx){.cfg = cfg, .models = ms, .has_taesd = ms_info(ms) && ms_info(ms)->has_taesd};
    pthread_mutex_init(&s.api.opt_mu, NULL);
    api_set_option_checkpoint(&s.api, ms_resident(ms));
    page_init(ms_info(ms));
    if (!parse_users(&s, cfg->auth)) {
        fprintf(stderr, "sdc: --api-auth expects user:pass[,user:pass...] (at most %d)\n", MAX_USERS);
        goto done;
    }
    char cors_err[512];
    if (!cors_init(&s.cors, cfg->cors_origins, cfg->cors_regex, cors_err, sizeof cors_err)) {
        fprintf(stderr, "sdc: %s\n", cors_err);
        goto done;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    char port[16];
    snprintf(port, sizeof port, "%d", cfg->port);
    int gai = getaddrinfo(cfg->host, port, &hints, &ai);
    if (gai) {
        fprintf(stderr, "sdc: cannot use --host '%s': %s\n", cfg->host, gai_strerror(gai));
        goto done;
    }
    /* A1111's defaults, with the period of --preview-every (0: off) */
    jq_options opt = {.live_previews = cfg->preview_every > 0, .every = cfg->preview_every > 0 ? cfg->preview_every : 10,
                      .grid = 1, .taesd_decode = s.api.has_taesd};
    if (jq_start(&s.api.queue, ms, cfg->queue, &opt)) {
        fprintf(stderr, "sdc: cannot start the worker thread\n");
        goto done;
    }
    if (guard_start(&s.guard, cfg->max_connections, cfg->client_timeout, cfg->max_request_memory)) {
        fprintf(stderr, "sdc: cannot start the connection watchdog\n");
        jq_stop(s.api.queue);
        goto done;
    }
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG | (ai->ai_family == AF_INET6 ? MHD_USE_IPv6 : 0);
    d = MHD_start_daemon(flags, (uint16_t)cfg->port, NULL, NULL, on_request, &s, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log,
                         NULL, MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_CONNECTION_LIMIT,
                         (unsigned)cfg->max_connections, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
                         MHD_OPTION_NOTIFY_COMPLETED, on_completed, &s, MHD_OPTION_NOTIFY_CONNECTION, on_connection, &s,
                         MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "sdc: cannot listen on %s:%d: %s\n", cfg->host, cfg->port, strerror(errno));
        jq_stop(s.api.queue);
        goto done;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    int bound = info ? info->port : cfg->port;
    printf("sdc serve: listening on http://%s%s%s:%d/ (model %s, API at /sdapi/v1/)\n",
           ai->ai_family == AF_INET6 ? "[" : "", cfg->host, ai->ai_family == AF_INET6 ? "]" : "", bound,
           ms_info(ms)->name);
    fflush(stdout);

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "sdc serve: %s, shutting down\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    MHD_socket ls = MHD_quiesce_daemon(d); /* no new connections */
    if (ls != MHD_INVALID_SOCKET) close(ls);
    jq_stop(s.api.queue); /* the running job stops at its next step; waiting ones get 503 */
    drain(&s);            /* every request in flight gets its answer */
    MHD_stop_daemon(d);
    rc = 0;
done:
    guard_stop(s.guard);
    if (s.api.queue) jq_free(s.api.queue);
    if (ai) freeaddrinfo(ai);
    for (int i = 0; i < s.nusers; i++) free(s.users[i]);
    cors_free(&s.cors);
    pthread_mutex_destroy(&s.api.opt_mu);
    pthread_mutex_destroy(&s.mu);
    pthread_cond_destroy(&s.idle);
    return rc;
}
