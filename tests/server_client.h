/* server_client.h - what the server tests share: `sdc serve` as a child
 * process on a free loopback port (server_start/server_stop) and a minimal
 * HTTP/1.1 client over plain sockets (tests/server_client.c). */
#ifndef SDC_TESTS_SERVER_CLIENT_H
#define SDC_TESTS_SERVER_CLIENT_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct {
    pid_t pid;
    int port;
    char log[1024]; /* its stderr */
} server_proc;

typedef struct {
    int status;
    char *head; /* status line + headers */
    char *body;
    size_t len;
} http_resp;

/* Start `sdc serve` with the tiny model (tiny-sd) and extra flags; 0 on
 * failure (message in *why). server_start_args: with exactly these flags
 * (besides --port 0 --threads 2 --quiet). */
int server_start(server_proc *s, const char *extra, char *why, size_t why_n);
int server_start_args(server_proc *s, const char *args, char *why, size_t why_n);
/* SIGTERM and wait; the exit status (-1: killed by a signal or hung) */
int server_stop(server_proc *s);
long server_rss_kb(const server_proc *s);

void resp_free(http_resp *r);
int connect_to(int port);
void send_all(int fd, const void *data, size_t n);
/* send a request (Connection: close) with extra header lines ("Name: v\r\n");
 * the answer is read by http_read */
int http_send(int port, const char *method, const char *path, const char *body, const char *extra_headers);
/* read to EOF and split; status 0 when nothing parseable came back */
void http_read(int fd, http_resp *r);
void http(int port, const char *method, const char *path, const char *body, http_resp *r);
cJSON *json_of(const http_resp *r);

/* base64 -> file; 0 on bad input */
int b64_to_file(const char *s, const char *path);
int has_keys(const cJSON *o, const char *const *keys, const char **missing);
/* the PNG in base64 `b64` equals the PNG file `cli_png`: pixels and infotext */
int same_image(const char *b64, const char *cli_png, char *why, size_t n);

#endif
