/* test_server_preview.c - `sdc serve --taesd`: live previews in /progress
 * (current_image while a job runs, A1111's grid of the batch, none with
 * ?skip_current_image=true, none once the job is done or with
 * live_previews_enable false), the TAESD decode and its "VAE Decoder"
 * infotext, and the /options and override_settings that switch them, with
 * their 422s. The server runs the tiny model with the random full-size TAESD
 * at 64x64 over plain loopback sockets (the same way as test_server.c). */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "sdc.h"

#define TAESD "../fixtures2/models/taesd-random"

typedef struct {
    pid_t pid;
    int port;
} srv;

/* `sdc serve --port 0` with the tiny model and extra flags; 0 on failure */
static int srv_start(srv *s, const char *extra, char *why, size_t n) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "exec '%s' serve -m '%s' --port 0 --threads 2 --quiet %s 2>'%s'", sdc_binary(),
             fixture_path("models/tiny-sd"), extra, tmp_path("server-preview.log"));
    int fd[2];
    if (pipe(fd)) return snprintf(why, n, "pipe: %s", strerror(errno)), 0;
    pid_t pid = fork();
    if (pid < 0) return snprintf(why, n, "fork: %s", strerror(errno)), 0;
    if (pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]), close(fd[1]);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(fd[1]);
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
    const char *at = strstr(line, "127.0.0.1:");
    s->pid = pid;
    if (!at || (s->port = atoi(at + 10)) <= 0) {
        snprintf(why, n, "server did not start: '%s' (log %s)", line, tmp_path("server-preview.log"));
        kill(pid, SIGKILL), waitpid(pid, NULL, 0);
        return 0;
    }
    return 1;
}

static int srv_stop(srv *s) {
    kill(s->pid, SIGTERM);
    int st = 0;
    for (int i = 0; i < 1200; i++) {
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        usleep(100000);
    }
    kill(s->pid, SIGKILL), waitpid(s->pid, NULL, 0);
    return -1;
}

/* send one request (Connection: close); the answer is read by reply() */
static int ask(int port, const char *method, const char *path, const char *body) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct timeval tv = {.tv_sec = 120};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) return close(fd), -1;
    char head[1024];
    size_t n = body ? strlen(body) : 0;
    int o = snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n", method, path);
    if (body) o += snprintf(head + o, sizeof head - (size_t)o, "Content-Type: application/json\r\nContent-Length: %zu\r\n", n);
    snprintf(head + o, sizeof head - (size_t)o, "\r\n");
    if (send(fd, head, strlen(head), MSG_NOSIGNAL) < 0 || (n && send(fd, body, n, MSG_NOSIGNAL) < 0)) return close(fd), -1;
    return fd;
}

/* read to EOF: the status, and the body as JSON (NULL when it is not) */
static int reply(int fd, cJSON **json) {
    *json = NULL;
    if (fd < 0) return 0;
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    for (ssize_t k; buf && (k = recv(fd, buf + len, cap - len - 1, 0)) > 0;)
        if ((len += (size_t)k) + 4096 > cap) buf = realloc(buf, cap *= 2);
    close(fd);
    if (!buf) return 0;
    buf[len] = 0;
    char *sep = strstr(buf, "\r\n\r\n");
    int status = !strncmp(buf, "HTTP/1.", 7) && sep ? atoi(buf + 9) : 0;
    if (sep) *json = cJSON_Parse(sep + 4);
    free(buf);
    return status;
}

static int call(int port, const char *method, const char *path, const char *body, cJSON **json) {
    return reply(ask(port, method, path, body), json);
}

static int b64_digit(int c) {
    return c >= 'A' && c <= 'Z' ? c - 'A' : c >= 'a' && c <= 'z' ? c - 'a' + 26 : c >= '0' && c <= '9' ? c - '0' + 52
           : c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* a base64 PNG's size (0 when it is not one) */
static int png_size(const char *b64, int *w, int *h) {
    size_t n = strlen(b64), k = 0;
    uint8_t *png = malloc(n);
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; png && i < n; i++) {
        int d = b64_digit((unsigned char)b64[i]);
        if (d < 0) continue;
        acc = acc << 6 | (uint32_t)d, bits += 6;
        if (bits >= 8) png[k++] = (uint8_t)(acc >> (bits -= 8));
    }
    int ok = png && !sdc_png_decode(png, k, NULL, w, h, NULL);
    free(png);
    return ok;
}

static const char *str_at(const cJSON *o, const char *key) { return cJSON_GetStringValue(cJSON_GetObjectItem(o, key)); }

/* poll /progress while the request on fd runs: the first current_image seen
 * (malloc'd, or NULL), whether ?skip_current_image=true hid it then, and
 * the request's answer */
typedef struct {
    char *image;
    int skipped_null, polls, status;
    cJSON *answer;
} watched;

static void watch(int port, int fd, watched *w) {
    memset(w, 0, sizeof *w);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while (poll(&p, 1, 50) == 0 && w->polls < 4000) { /* the job's answer has not come yet */
        cJSON *j;
        w->polls++;
        if (call(port, "GET", "/sdapi/v1/progress", NULL, &j) == 200 && !w->image && str_at(j, "current_image")) {
            w->image = strdup(str_at(j, "current_image"));
            cJSON *k;
            w->skipped_null = call(port, "GET", "/sdapi/v1/progress?skip_current_image=true", NULL, &k) == 200 &&
                              cJSON_IsNull(cJSON_GetObjectItem(k, "current_image"));
            cJSON_Delete(k);
        }
        cJSON_Delete(j);
    }
    w->status = reply(fd, &w->answer);
}

/* the first infotext of a txt2img answer, and its extra_generation_params' VAE Decoder */
static void answer_decoder(const cJSON *ans, char *infotext, size_t n, char *extra, size_t m) {
    cJSON *info = cJSON_Parse(str_at(ans, "info") ? str_at(ans, "info") : "");
    const char *it = cJSON_GetStringValue(cJSON_GetArrayItem(cJSON_GetObjectItem(info, "infotexts"), 0));
    const char *ex = str_at(cJSON_GetObjectItem(info, "extra_generation_params"), "VAE Decoder");
    snprintf(infotext, n, "%s", it ? it : "");
    snprintf(extra, m, "%s", ex ? ex : "");
    cJSON_Delete(info);
}

#define JOB(steps, extra)                                                                                      \
    "{\"prompt\": \"a lighthouse\", \"steps\": " #steps ", \"width\": 64, \"height\": 64, \"sampler_name\": " \
    "\"DDIM\", \"seed\": 7" extra "}"

TEST(server_taesd_live_previews) {
    srv s;
    char why[512], flags[1200];
    snprintf(flags, sizeof flags, "--taesd '%s' --preview-every 1", fixture_path(TAESD));
    CHECK(srv_start(&s, flags, why, sizeof why), "%s", why);
    cJSON *o;
    int st = call(s.port, "GET", "/sdapi/v1/options", NULL, &o);
    int opts_ok = st == 200 && cJSON_IsTrue(cJSON_GetObjectItem(o, "live_previews_enable")) &&
                  cJSON_GetNumberValue(cJSON_GetObjectItem(o, "show_progress_every_n_steps")) == 1 &&
                  cJSON_IsTrue(cJSON_GetObjectItem(o, "show_progress_grid")) &&
                  !strcmp(str_at(o, "show_progress_type") ? str_at(o, "show_progress_type") : "", "TAESD") &&
                  !strcmp(str_at(o, "sd_vae_decode_method") ? str_at(o, "sd_vae_decode_method") : "", "TAESD");
    cJSON_Delete(o);
    /* a batch of 2 over 16 steps: previews are the 2 images side by side (A1111: 1 row of 2) */
    watched w;
    watch(s.port, ask(s.port, "POST", "/sdapi/v1/txt2img", JOB(16, ", \"batch_size\": 2")), &w);
    int gw = 0, gh = 0, png_ok = w.image && png_size(w.image, &gw, &gh);
    char infotext[2048], extra[64];
    answer_decoder(w.answer, infotext, sizeof infotext, extra, sizeof extra);
    cJSON_Delete(w.answer);
    cJSON *after;
    int idle_null = call(s.port, "GET", "/sdapi/v1/progress", NULL, &after) == 200 &&
                    cJSON_IsNull(cJSON_GetObjectItem(after, "current_image"));
    cJSON_Delete(after);
    /* previews off and the KL VAE: no current_image, no VAE Decoder */
    int post = call(s.port, "POST", "/sdapi/v1/options",
                    "{\"live_previews_enable\": false, \"sd_vae_decode_method\": \"Full\"}", &o);
    cJSON_Delete(o);
    watched w2;
    watch(s.port, ask(s.port, "POST", "/sdapi/v1/txt2img", JOB(12, "")), &w2);
    char infotext2[2048], extra2[64];
    answer_decoder(w2.answer, infotext2, sizeof infotext2, extra2, sizeof extra2);
    cJSON_Delete(w2.answer);
    /* a request's override_settings picks TAESD again */
    cJSON *a3;
    int st3 = call(s.port, "POST", "/sdapi/v1/txt2img",
                   JOB(1, ", \"override_settings\": {\"sd_vae_decode_method\": \"TAESD\"}"), &a3);
    char infotext3[2048], extra3[64];
    answer_decoder(a3, infotext3, sizeof infotext3, extra3, sizeof extra3);
    cJSON_Delete(a3);
    /* bad values are 422 and change nothing */
    static const char *const bad[] = {"{\"sd_vae_decode_method\": \"Fast\"}", "{\"show_progress_every_n_steps\": -2}",
                                      "{\"live_previews_enable\": \"yes\"}", "{\"show_progress_grid\": 1}"};
    int bad_ok = 1;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bad_ok &= call(s.port, "POST", "/sdapi/v1/options", bad[i], &o) == 422;
        cJSON_Delete(o);
    }
    bad_ok &= call(s.port, "POST", "/sdapi/v1/txt2img",
                   JOB(1, ", \"override_settings\": {\"sd_vae_decode_method\": \"Approx\"}"), &o) == 422;
    cJSON_Delete(o);
    int still = call(s.port, "GET", "/sdapi/v1/options", NULL, &o) == 200 &&
                cJSON_IsFalse(cJSON_GetObjectItem(o, "live_previews_enable")) &&
                !strcmp(str_at(o, "sd_vae_decode_method") ? str_at(o, "sd_vae_decode_method") : "", "Full");
    cJSON_Delete(o);
    int rc = srv_stop(&s);
    free(w.image);
    if (getenv("SDC_TEST_VERBOSE"))
        printf("     preview %dx%d after %d polls; job 2: %d polls, image %s\n", gw, gh, w.polls, w2.polls,
               w2.image ? "seen" : "none");
    CHECK(opts_ok, "GET /options: the preview options are not --preview-every 1 with TAESD");
    CHECK(w.status == 200 && w2.status == 200 && st3 == 200, "txt2img: %d, %d, %d", w.status, w2.status, st3);
    CHECK(png_ok, "no current_image PNG seen while the job ran (%d polls)", w.polls);
    CHECK(gw == 128 && gh == 64, "the preview of a batch of 2 is %dx%d, not A1111's 1x2 grid (128x64)", gw, gh);
    CHECK(w.skipped_null, "?skip_current_image=true still sent the image");
    CHECK(idle_null, "current_image is not null once the job is done");
    CHECK(strstr(infotext, ", VAE Decoder: TAESD") && !strcmp(extra, "TAESD"), "TAESD job: infotext '%s', extra '%s'",
          infotext, extra);
    CHECK(post == 200, "POST /options: %d", post);
    CHECK(!w2.image, "a preview with live_previews_enable false");
    free(w2.image);
    CHECK(!strstr(infotext2, "VAE Decoder") && !extra2[0], "Full job: infotext '%s', extra '%s'", infotext2, extra2);
    CHECK(strstr(infotext3, "VAE Decoder: TAESD") && !strcmp(extra3, "TAESD"), "override TAESD: '%s'", infotext3);
    CHECK(bad_ok, "a bad option or override was not refused with 422");
    CHECK(still, "a refused POST /options changed the options");
    CHECK(rc == 0, "server exit status %d", rc);
}

/* Without --taesd: TAESD cannot be asked for, and --preview-every is a usage error. */
TEST(server_taesd_absent) {
    char out[1024], cmd[1200];
    snprintf(cmd, sizeof cmd, "%s serve -m '%s' --preview-every 3", sdc_binary(), fixture_path("models/tiny-sd"));
    int rc = run_cmd(cmd, out, sizeof out);
    CHECK(rc == 2 && strstr(out, "--preview-every needs --taesd"), "serve --preview-every without --taesd: %d %s", rc,
          out);
    srv s;
    char why[512];
    CHECK(srv_start(&s, "", why, sizeof why), "%s", why);
    cJSON *o;
    int a = call(s.port, "POST", "/sdapi/v1/options", "{\"sd_vae_decode_method\": \"TAESD\"}", &o);
    cJSON_Delete(o);
    int b = call(s.port, "POST", "/sdapi/v1/txt2img", JOB(1, ", \"override_settings\": {\"sd_vae_decode_method\": \"TAESD\"}"),
                 &o);
    cJSON_Delete(o);
    int g = call(s.port, "GET", "/sdapi/v1/options", NULL, &o) == 200 &&
            !strcmp(str_at(o, "sd_vae_decode_method") ? str_at(o, "sd_vae_decode_method") : "", "Full");
    cJSON_Delete(o);
    int full = call(s.port, "POST", "/sdapi/v1/txt2img", JOB(1, ", \"override_settings\": {\"sd_vae_decode_method\": \"Full\"}"),
                    &o);
    cJSON_Delete(o);
    rc = srv_stop(&s);
    CHECK(a == 422 && b == 422, "TAESD without --taesd: options %d, txt2img %d (expected 422)", a, b);
    CHECK(g, "GET /options: sd_vae_decode_method is not Full");
    CHECK(full == 200, "override Full: %d", full);
    CHECK(rc == 0, "server exit status %d", rc);
}
