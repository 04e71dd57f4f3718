/* conn_guard.h - what keeps slow or greedy clients from starving the
 * server: every connection is tracked from accept to close, one that takes
 * too long to send its request is cut off, the oldest waiting connections
 * are cut when free slots run low (so /progress always gets in), and the
 * memory request bodies may hold at once is budgeted. No libmicrohttpd
 * here: server.c reports the events, connections are cut by shutdown(2) on
 * a dup of their socket, which the connection's own thread then sees as EOF. */
#ifndef SDC_TOOLS_SERVER_CONN_GUARD_H
#define SDC_TOOLS_SERVER_CONN_GUARD_H

#include <stddef.h>

typedef struct conn_guard conn_guard;
typedef struct guard_conn guard_conn;

/* max_conns: the server's connection limit; timeout_s: seconds a client may
 * take to send a request's headers (and, after them, its body at no less
 * than GUARD_MIN_BODY_RATE bytes/s); mem_budget: bytes of request memory in
 * flight at once (guard_reserve). Starts the watchdog thread; 0 on success. */
int guard_start(conn_guard **g, int max_conns, int timeout_s, size_t mem_budget);
void guard_stop(conn_guard *g); /* joins the watchdog and frees g */

#define GUARD_MIN_BODY_RATE 16384

/* a connection was accepted (fd: its socket) / closed; NULL when untracked (out of memory) */
guard_conn *guard_opened(conn_guard *g, int fd);
void guard_closed(conn_guard *g, guard_conn *c);
/* the request's headers are in (its body may follow) / n more body bytes /
 * the whole request is in (handling it has no deadline) / its reply is done
 * and the connection waits for the next request. c may be NULL. */
void guard_request_begun(conn_guard *g, guard_conn *c);
void guard_body_bytes(conn_guard *g, guard_conn *c, size_t n);
void guard_request_complete(conn_guard *g, guard_conn *c);
void guard_request_done(conn_guard *g, guard_conn *c);

/* Take n bytes from the request memory budget: 1 if they fit, 0 if not
 * (*in_flight then gets what is taken). guard_release gives them back. */
int guard_reserve(conn_guard *g, size_t n, size_t *in_flight);
void guard_release(conn_guard *g, size_t n);

#endif
