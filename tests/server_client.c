/* server_client.c - the server tests' process control and HTTP client
 * (server_client.h), shared by test_server*.c. */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "io/png_io.h"
#include "sdc.h"
#include "server_client.h"

/* ---- the server process ---- */

int server_start(server_proc *s, const char *extra, char *why, size_t why_n) {
    char args[2048];
    snprintf(args, sizeof args, "-m '%s' %s", fixture_path("models/tiny-sd"), extra ? extra : "");
    return server_start_args(s, args, why, why_n);
}

int server_start_args(server_proc *s, const char *args, char *why, size_t why_n) {
    static int n;
    memset(s, 0, sizeof *s);
    snprintf(s->log, sizeof s->log, "%s", tmp_path(n++ % 2 ? "server-b.log" : "server-a.log"));
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "exec '%s' serve --port 0 --threads 2 --quiet %s 2>'%s'", sdc_binary(), args, s->log);
    int fd[2];
    if (pipe(fd)) return snprintf(why, why_n, "pipe: %s", strerror(errno)), 0;
    pid_t pid = fork();
    if (pid < 0) return snprintf(why, why_n, "fork: %s", strerror(errno)), 0;
    if (pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]);
        close(fd[1]);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(fd[1]);
    s->pid = pid;
    /* the first stdout line says where it listens */
    char line[512];
    size_t k = 0;
    struct pollfd p = {.fd = fd[0], .events = POLLIN};
    while (k + 1 < sizeof line && poll(&p, 1, 120000) == 1) {
        char c;
        if (read(fd[0], &c, 1) != 1 || c == '\n') break;
        line[k++] = c;
    }
    line[k] = 0;
    close(fd[0]);
    const char *colon = strstr(line, "127.0.0.1:");
    if (!colon || (s->port = atoi(colon + 10)) <= 0) {
        snprintf(why, why_n, "server did not start: '%s' (log %s)", line, s->log);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return 0;
    }
    return 1;
}

/* SIGTERM and wait; returns the exit status (-1: killed by a signal or hung) */
int server_stop(server_proc *s) {
    if (s->pid <= 0) return -1;
    kill(s->pid, SIGTERM);
    int st = 0;
    for (int i = 0; i < 1200; i++) { /* 120 s at most */
        pid_t r = waitpid(s->pid, &st, WNOHANG);
        if (r == s->pid) {
            s->pid = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        }
        usleep(100000);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
    return -1;
}

long server_rss_kb(const server_proc *s) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)s->pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) kb = atol(line + 6);
    if (f) fclose(f);
    return kb;
}

/* ---- a minimal HTTP/1.1 client ---- */

void resp_free(http_resp *r) {
    free(r->head);
    free(r->body);
    memset(r, 0, sizeof *r);
}

int connect_to(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct timeval tv = {.tv_sec = 120};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
        close(fd);
        return -1;
    }
    return fd;
}

void send_all(int fd, const void *data, size_t n) {
    const char *p = data;
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0) return; /* the server may refuse early (413): read its answer anyway */
        p += w;
        n -= (size_t)w;
    }
}

/* send a request (Connection: close); the answer is read by http_read */
int http_send(int port, const char *method, const char *path, const char *body, const char *extra_headers) {
    int fd = connect_to(port);
    if (fd < 0) return -1;
    char head[2048];
    size_t n = body ? strlen(body) : 0;
    int o = snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n", method, path);
    if (body)
        o +=
            snprintf(head + o, sizeof head - (size_t)o, "Content-Type: application/json\r\nContent-Length: %zu\r\n", n);
    snprintf(head + o, sizeof head - (size_t)o, "%s\r\n", extra_headers ? extra_headers : "");
    send_all(fd, head, strlen(head));
    if (body) send_all(fd, body, n);
    return fd;
}

/* read to EOF and split; status 0 when nothing parseable came back */
void http_read(int fd, http_resp *r) {
    memset(r, 0, sizeof *r);
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (len + 4096 > cap) buf = realloc(buf, cap *= 2);
        ssize_t k = recv(fd, buf + len, cap - len - 1, 0);
        if (k <= 0) break;
        len += (size_t)k;
    }
    close(fd);
    buf[len] = 0;
    char *sep = strstr(buf, "\r\n\r\n");
    if (strncmp(buf, "HTTP/1.", 7) || !sep) {
        free(buf);
        return;
    }
    r->status = atoi(buf + 9);
    *sep = 0;
    r->head = strdup(buf);
    r->len = len - (size_t)(sep + 4 - buf);
    r->body = malloc(r->len + 1);
    memcpy(r->body, sep + 4, r->len);
    r->body[r->len] = 0;
    free(buf);
}

void http(int port, const char *method, const char *path, const char *body, http_resp *r) {
    int fd = http_send(port, method, path, body, NULL);
    if (fd < 0) {
        memset(r, 0, sizeof *r);
        return;
    }
    http_read(fd, r);
}

cJSON *json_of(const http_resp *r) { return r->body ? cJSON_Parse(r->body) : NULL; }

/* ---- helpers ---- */

static int b64_val(int c) {
    const char *t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *p = c ? strchr(t, c) : NULL;
    return p ? (int)(p - t) : -1;
}

/* base64 -> file; 0 on bad input */
int b64_to_file(const char *s, const char *path) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    uint32_t acc = 0;
    int bits = 0, ok = 1;
    for (; *s && *s != '='; s++) {
        int v = b64_val((unsigned char)*s);
        if (v < 0) {
            ok = 0;
            break;
        }
        acc = acc << 6 | (uint32_t)v;
        if ((bits += 6) >= 8) fputc((int)(acc >> (bits -= 8)) & 255, f);
    }
    fclose(f);
    return ok;
}

int has_keys(const cJSON *o, const char *const *keys, const char **missing) {
    for (; *keys; keys++)
        if (!cJSON_HasObjectItem(o, *keys)) {
            *missing = *keys;
            return 0;
        }
    return 1;
}

/* compare the PNG in base64 `b64` with the PNG file `cli_png`: pixels and infotext */
int same_image(const char *b64, const char *cli_png, char *why, size_t n) {
    const char *api_png = tmp_path("api.png");
    if (!b64_to_file(b64, api_png)) return snprintf(why, n, "image is not base64"), 0;
    uint8_t *a = NULL, *b = NULL;
    char *ta = NULL, *tb = NULL;
    int aw, ah, bw, bh, ok = 0;
    if (png_read_rgb(api_png, &a, &aw, &ah, &ta)) snprintf(why, n, "API image: %s", sdc_last_error());
    else if (png_read_rgb(cli_png, &b, &bw, &bh, &tb)) snprintf(why, n, "CLI image: %s", sdc_last_error());
    else if (aw != bw || ah != bh) snprintf(why, n, "size %dx%d vs CLI %dx%d", aw, ah, bw, bh);
    else if (memcmp(a, b, (size_t)aw * ah * 3)) snprintf(why, n, "pixels differ from the CLI's");
    else if (!ta || !tb || strcmp(ta, tb)) snprintf(why, n, "infotext '%s' vs CLI '%s'", ta ? ta : "-", tb ? tb : "-");
    else ok = 1;
    free(a), free(b), free(ta), free(tb);
    return ok;
}
