/* conn_guard.c - connection deadlines, a reserve of free slots and the
 * request memory budget (see conn_guard.h). One mutex guards the list; the
 * watchdog wakes every GUARD_TICK_MS. A connection is in one of three
 * states: waiting for a request's headers (accepted, or idle between
 * keep-alive requests), receiving its body, or busy (the request is in: a
 * txt2img job may run for minutes, so busy connections have no deadline). */
#include "conn_guard.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define GUARD_TICK_MS 250

enum { G_WAIT_HEADERS, G_BODY, G_BUSY };

struct guard_conn {
    guard_conn *prev, *next;
    int fd; /* our dup of the socket: shutdown() on it cuts the connection */
    int state;
    double since; /* when the current state began (CLOCK_MONOTONIC seconds) */
    size_t bytes; /* body bytes received in G_BODY */
    int cut;      /* shut down already */
};

struct conn_guard {
    pthread_mutex_t mu;
    pthread_cond_t wake;
    pthread_t watchdog;
    guard_conn *head; /* oldest first */
    int count, max_conns, reserve, stopping;
    double timeout;
    size_t mem_budget, mem_used;
};

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* under g->mu */
static void cut(guard_conn *c) {
    if (c->cut || c->fd < 0) return;
    shutdown(c->fd, SHUT_RDWR);
    c->cut = 1;
}

/* a client that has not sent its request in time: headers within timeout,
 * the body at GUARD_MIN_BODY_RATE on average after that */
static int overdue(const conn_guard *g, const guard_conn *c, double now) {
    double age = now - c->since;
    if (c->state == G_WAIT_HEADERS) return age > g->timeout;
    if (c->state == G_BODY) return age > g->timeout + (double)c->bytes / GUARD_MIN_BODY_RATE;
    return 0;
}

static void *watchdog_main(void *arg) {
    conn_guard *g = arg;
    pthread_mutex_lock(&g->mu);
    while (!g->stopping) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += GUARD_TICK_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&g->wake, &g->mu, &until);
        double now = now_s();
        for (guard_conn *c = g->head; c; c = c->next)
            if (overdue(g, c, now)) cut(c);
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

int guard_start(conn_guard **out, int max_conns, int timeout_s, size_t mem_budget) {
    conn_guard *g = calloc(1, sizeof *g);
    if (!g) return -1;
    g->max_conns = max_conns;
    /* slots kept free for new clients: an eighth of the limit, at least 2 */
    g->reserve = max_conns / 8 > 2 ? max_conns / 8 : 2;
    g->timeout = timeout_s;
    g->mem_budget = mem_budget;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->wake, NULL);
    if (pthread_create(&g->watchdog, NULL, watchdog_main, g)) {
        pthread_mutex_destroy(&g->mu);
        pthread_cond_destroy(&g->wake);
        free(g);
        return -1;
    }
    *out = g;
    return 0;
}

void guard_stop(conn_guard *g) {
    if (!g) return;
    pthread_mutex_lock(&g->mu);
    g->stopping = 1;
    pthread_cond_signal(&g->wake);
    pthread_mutex_unlock(&g->mu);
    pthread_join(g->watchdog, NULL);
    for (guard_conn *c = g->head, *n; c; c = n) { /* connections libmicrohttpd never reported closed */
        n = c->next;
        if (c->fd >= 0) close(c->fd);
        free(c);
    }
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->wake);
    free(g);
}

guard_conn *guard_opened(conn_guard *g, int fd) {
    guard_conn *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->fd = fd >= 0 ? dup(fd) : -1;
    c->state = G_WAIT_HEADERS;
    c->since = now_s();
    pthread_mutex_lock(&g->mu);
    /* append (the list stays oldest first) */
    guard_conn **p = &g->head, *last = NULL;
    while (*p) last = *p, p = &(*p)->next;
    *p = c;
    c->prev = last;
    g->count++;
    /* Few slots left: cut the connections that have waited longest for
     * their request (never one that is being served), so a new client
     * (a /progress poll) always finds a slot. */
    int live = 0;
    for (guard_conn *o = g->head; o; o = o->next) live += !o->cut;
    for (guard_conn *o = g->head; o && live > g->max_conns - g->reserve; o = o->next)
        if (o != c && !o->cut && o->state != G_BUSY) cut(o), live--;
    pthread_mutex_unlock(&g->mu);
    return c;
}

void guard_closed(conn_guard *g, guard_conn *c) {
    if (!c) return;
    pthread_mutex_lock(&g->mu);
    if (c->prev) c->prev->next = c->next;
    else g->head = c->next;
    if (c->next) c->next->prev = c->prev;
    g->count--;
    pthread_mutex_unlock(&g->mu);
    if (c->fd >= 0) close(c->fd);
    free(c);
}

static void set_state(conn_guard *g, guard_conn *c, int state) {
    if (!c) return;
    pthread_mutex_lock(&g->mu);
    c->state = state;
    c->since = now_s();
    c->bytes = 0;
    pthread_mutex_unlock(&g->mu);
}

void guard_request_begun(conn_guard *g, guard_conn *c) { set_state(g, c, G_BODY); }
void guard_request_complete(conn_guard *g, guard_conn *c) { set_state(g, c, G_BUSY); }
void guard_request_done(conn_guard *g, guard_conn *c) { set_state(g, c, G_WAIT_HEADERS); }

void guard_body_bytes(conn_guard *g, guard_conn *c, size_t n) {
    if (!c) return;
    pthread_mutex_lock(&g->mu);
    c->bytes += n;
    pthread_mutex_unlock(&g->mu);
}

int guard_reserve(conn_guard *g, size_t n, size_t *in_flight) {
    pthread_mutex_lock(&g->mu);
    int ok = n <= g->mem_budget - g->mem_used;
    if (ok) g->mem_used += n;
    if (in_flight) *in_flight = g->mem_used;
    pthread_mutex_unlock(&g->mu);
    return ok;
}

void guard_release(conn_guard *g, size_t n) {
    pthread_mutex_lock(&g->mu);
    g->mem_used -= n <= g->mem_used ? n : g->mem_used;
    pthread_mutex_unlock(&g->mu);
}
