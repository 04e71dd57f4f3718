/* test_server_a1111.c - what A1111's clients (webuiapi, Open WebUI,
 * SillyTavern, browser front ends) need of `sdc serve` beyond generation:
 * CORS preflights and headers, the basic-auth header as clients send it,
 * trailing slashes, every endpoint webuiapi calls (200 with A1111's shapes),
 * /progress before the first step, /skip, cfg_scale as a float, Eta only
 * for samplers that use it, a models folder with checkpoint switching
 * (options and override_settings, load failures as 500 with the old model
 * kept, /refresh-checkpoints) and <lora:...> tags with --lora-dir. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "sdc.h"
#include "server_client.h"

/* a header line's value in a response head ("" when absent) */
static const char *header(const http_resp *r, const char *name, char *buf, size_t n) {
    buf[0] = 0;
    if (!r->head) return buf;
    size_t k = strlen(name);
    for (const char *p = strstr(r->head, "\r\n"); p; p = strstr(p + 2, "\r\n"))
        if (!strncasecmp(p + 2, name, k) && p[2 + k] == ':') {
            const char *v = p + 3 + k, *e = strstr(v, "\r\n");
            while (*v == ' ') v++;
            snprintf(buf, n, "%.*s", (int)(e ? (size_t)(e - v) : strlen(v)), v);
            break;
        }
    return buf;
}

static void req(int port, const char *method, const char *path, const char *body, const char *headers, http_resp *r) {
    int fd = http_send(port, method, path, body, headers);
    if (fd < 0) memset(r, 0, sizeof *r);
    else http_read(fd, r);
}

/* the --quiet server's log holds nothing but its shutdown line */
static int log_clean(const char *path) {
    FILE *f = fopen(path, "r");
    char buf[8192];
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f) fclose(f);
    buf[n] = 0;
    return !strcmp(buf, "sdc serve: SIGTERM, shutting down\n");
}

#define EXPECT(cond, ...)                                                                                              \
    if (!(cond)) {                                                                                                     \
        test_fail_at(__FILE__, __LINE__, __VA_ARGS__);                                                                 \
        goto out;                                                                                                      \
    }

/* u:p in base64 */
#define AUTH_UP "dTpw"

TEST(server_a1111_cors_auth_and_paths) {
    server_proc s;
    char why[1024], h[512];
    CHECK(server_start(&s,
                       "--api-auth u:p --cors-allow-origins 'http://a.example, http://b.example' "
                       "--cors-allow-origins-regex 'https://.*\\.c\\.example'",
                       why, sizeof why),
          "%s", why);
    http_resp r = {0};
    /* a preflight needs no credentials; the allowed origin is echoed with every method and the asked headers */
    req(s.port, "OPTIONS", "/sdapi/v1/txt2img", NULL,
        "Origin: http://b.example\r\nAccess-Control-Request-Method: POST\r\n"
        "Access-Control-Request-Headers: content-type, authorization\r\n",
        &r);
    EXPECT(r.status == 200 && !strcmp(header(&r, "Access-Control-Allow-Origin", h, sizeof h), "http://b.example"),
           "preflight: %d %s", r.status, r.head);
    EXPECT(strstr(header(&r, "Access-Control-Allow-Methods", h, sizeof h), "POST") &&
               !strcmp(header(&r, "Access-Control-Allow-Headers", h, sizeof h), "content-type, authorization") &&
               !strcmp(header(&r, "Access-Control-Allow-Credentials", h, sizeof h), "true"),
           "preflight headers: %s", r.head);
    resp_free(&r);
    req(s.port, "OPTIONS", "/sdapi/v1/options", NULL,
        "Origin: https://x.c.example\r\nAccess-Control-Request-Method: GET\r\n", &r);
    EXPECT(r.status == 200 && !strcmp(header(&r, "Access-Control-Allow-Origin", h, sizeof h), "https://x.c.example"),
           "regex origin: %d %s", r.status, r.head);
    resp_free(&r);
    /* the regex covers the whole origin, as Starlette's fullmatch */
    req(s.port, "OPTIONS", "/sdapi/v1/options", NULL,
        "Origin: https://x.c.example.evil\r\nAccess-Control-Request-Method: GET\r\n", &r);
    EXPECT(r.status == 400 && !*header(&r, "Access-Control-Allow-Origin", h, sizeof h), "disallowed: %d %s", r.status,
           r.head);
    resp_free(&r);

    /* a normal request from an allowed origin carries the headers, on errors too */
    req(s.port, "GET", "/sdapi/v1/options", NULL, "Origin: http://a.example\r\nAuthorization: basic " AUTH_UP "\r\n",
        &r);
    EXPECT(r.status == 200 && !strcmp(header(&r, "Access-Control-Allow-Origin", h, sizeof h), "http://a.example"),
           "lowercase basic with origin: %d %s", r.status, r.head);
    resp_free(&r);
    req(s.port, "GET", "/sdapi/v1/options", NULL, "Origin: http://a.example\r\n", &r);
    EXPECT(r.status == 401 && !strcmp(header(&r, "Access-Control-Allow-Origin", h, sizeof h), "http://a.example"),
           "401 without CORS headers: %d %s", r.status, r.head);
    resp_free(&r);
    req(s.port, "GET", "/sdapi/v1/options", NULL, "Origin: http://evil.example\r\nAuthorization: BASIC " AUTH_UP "\r\n",
        &r);
    EXPECT(r.status == 200 && !*header(&r, "Access-Control-Allow-Origin", h, sizeof h), "other origin: %d %s", r.status,
           r.head);
    resp_free(&r);
    /* empty and malformed credentials: a quiet 401 */
    static const char *bad[] = {"Authorization: Basic \r\n", "Authorization: Basic\r\n", "Authorization: Basic ###\r\n",
                                "Authorization: Bearer " AUTH_UP "\r\n", "Authorization: Basic dTpx\r\n"};
    for (int i = 0; i < 5; i++) {
        req(s.port, "GET", "/sdapi/v1/options", NULL, bad[i], &r);
        EXPECT(r.status == 401, "'%s': %d", bad[i], r.status);
        resp_free(&r);
    }
    /* a trailing slash names the same route */
    req(s.port, "GET", "/sdapi/v1/options/", NULL, "Authorization: Basic " AUTH_UP "\r\n", &r);
    EXPECT(r.status == 200 && strstr(r.body, "sd_model_checkpoint"), "/options/: %d %s", r.status, r.body);
    resp_free(&r);
    req(s.port, "POST", "/sdapi/v1/options/", "{}", "Authorization: Basic " AUTH_UP "\r\n", &r);
    EXPECT(r.status == 200, "POST /options/: %d %s", r.status, r.body);
    resp_free(&r);
    req(s.port, "GET", "/sdapi/v1/nothing/", NULL, "Authorization: Basic " AUTH_UP "\r\n", &r);
    EXPECT(r.status == 404, "unknown path with a slash: %d", r.status);
out:
    resp_free(&r);
    int rc = server_stop(&s);
    CHECK(rc == 0, "server exited %d (log %s)", rc, s.log);
    CHECK(log_clean(s.log), "the server logged a warning: see %s", s.log);
}

/* webuiapi's calls answer 200 with A1111's shapes; without CORS flags a
 * preflight is a 405 (as A1111 without --cors-*) and an empty Basic header
 * (SillyTavern) is accepted silently */
TEST(server_a1111_endpoints) {
    server_proc s;
    char why[1024], h[256];
    CHECK(server_start(&s, NULL, why, sizeof why), "%s", why);
    http_resp r = {0};
    cJSON *j = NULL;
    req(s.port, "OPTIONS", "/sdapi/v1/txt2img", NULL,
        "Origin: http://a.example\r\nAccess-Control-Request-Method: POST\r\n", &r);
    EXPECT(r.status == 405 && !*header(&r, "Access-Control-Allow-Origin", h, sizeof h), "no CORS: %d %s", r.status,
           r.head);
    resp_free(&r);
    req(s.port, "GET", "/sdapi/v1/sd-models", NULL, "Authorization: Basic \r\n", &r);
    EXPECT(r.status == 200, "empty Basic without auth: %d", r.status);
    resp_free(&r);

    static const struct {
        const char *method, *path, *body;
    } calls[] = {
        {"GET", "/sdapi/v1/cmd-flags", "{"},
        {"GET", "/sdapi/v1/memory", "{"},
        {"GET", "/sdapi/v1/embeddings", "{\"loaded\":{},\"skipped\":{}}"},
        {"GET", "/sdapi/v1/scripts", "{\"txt2img\":[],\"img2img\":[]}"},
        {"GET", "/sdapi/v1/prompt-styles", "[]"},
        {"GET", "/sdapi/v1/face-restorers", "[]"},
        {"GET", "/sdapi/v1/hypernetworks", "[]"},
        {"GET", "/sdapi/v1/realesrgan-models", "[]"},
        {"GET", "/sdapi/v1/loras", "[]"},
        {"GET", "/sdapi/v1/sd-vae", "[]"},
        {"GET", "/sdapi/v1/upscalers", "[]"},
        {"GET", "/sdapi/v1/latent-upscale-modes", "[]"},
        {"POST", "/sdapi/v1/refresh-checkpoints", "null"},
        {"POST", "/sdapi/v1/refresh-loras", "null"},
        {"POST", "/sdapi/v1/skip", "null"},
        {"POST", "/sdapi/v1/refresh-embeddings", "null"},
        {"GET", "/sdapi/v1/sd-modules", "[]"},
        {"GET", "/sdapi/v1/script-info", "[]"},
        {"GET", "/sdapi/v1/extensions", "[]"},
        {"POST", "/sdapi/v1/interrupt", "{}"},
    };
    for (size_t i = 0; i < sizeof calls / sizeof *calls; i++) {
        req(s.port, calls[i].method, calls[i].path, *calls[i].method == 'P' ? "" : NULL, NULL, &r);
        EXPECT(r.status == 200 && r.body && !strncmp(r.body, calls[i].body, strlen(calls[i].body)), "%s %s: %d %s",
               calls[i].method, calls[i].path, r.status, r.body);
        resp_free(&r);
    }
    http(s.port, "GET", "/sdapi/v1/memory", NULL, &r);
    j = json_of(&r);
    const cJSON *ram = cJSON_GetObjectItem(j, "ram");
    double used = cJSON_GetNumberValue(cJSON_GetObjectItem(ram, "used")),
           total = cJSON_GetNumberValue(cJSON_GetObjectItem(ram, "total")),
           fr = cJSON_GetNumberValue(cJSON_GetObjectItem(ram, "free"));
    EXPECT(used > 1e6 && total > used && fr == total - used &&
               cJSON_IsString(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "cuda"), "error")),
           "memory: %s", r.body);
    EXPECT(used <= (double)server_rss_kb(&s) * 1024 * 1.5 && used >= (double)server_rss_kb(&s) * 1024 / 1.5,
           "memory used %.0f vs the process's RSS %ld kB", used, server_rss_kb(&s));
    cJSON_Delete(j), j = NULL;
    resp_free(&r);
    http(s.port, "GET", "/sdapi/v1/cmd-flags", NULL, &r);
    j = json_of(&r);
    EXPECT(cJSON_IsTrue(cJSON_GetObjectItem(j, "api")) && cJSON_IsFalse(cJSON_GetObjectItem(j, "api_auth")) &&
               strstr(cJSON_GetStringValue(cJSON_GetObjectItem(j, "ckpt")), "tiny-sd"),
           "cmd-flags: %s", r.body);
out:
    cJSON_Delete(j);
    resp_free(&r);
    int rc = server_stop(&s);
    CHECK(rc == 0, "server exited %d (log %s)", rc, s.log);
    CHECK(log_clean(s.log), "the server logged a warning: see %s", s.log);
}

static int progress_state(int port, const char *key, double *v, char *text, size_t n) {
    http_resp r;
    http(port, "GET", "/sdapi/v1/progress", NULL, &r);
    cJSON *j = json_of(&r);
    const cJSON *x = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "state"), key);
    const char *t = cJSON_GetStringValue(cJSON_GetObjectItem(j, "textinfo"));
    int ok = cJSON_IsNumber(x) || cJSON_IsBool(x);
    if (ok) *v = cJSON_IsBool(x) ? cJSON_IsTrue(x) : x->valuedouble;
    if (text) snprintf(text, n, "%s", t ? t : "");
    cJSON_Delete(j);
    resp_free(&r);
    return ok;
}

/* /progress knows the steps from the start; /skip drops the running
 * iteration and goes on; cfg_scale is a float in info and parameters; Eta
 * is written only for samplers that use it */
TEST(server_a1111_progress_skip_and_info) {
    server_proc s;
    char why[1024];
    CHECK(server_start(&s, "--max-steps 1000", why, sizeof why), "%s", why);
    http_resp r = {0};
    cJSON *j = NULL, *info = NULL;
    int fd =
        http_send(s.port, "POST", "/sdapi/v1/txt2img",
                  "{\"prompt\": \"a\", \"steps\": 1000, \"n_iter\": 2, \"width\": 64, \"height\": 64, \"seed\": 1, "
                  "\"cfg_scale\": 1}",
                  NULL);
    double steps = 0, count = 0, step = 0, skipped = 0;
    char text[256] = "";
    /* the first answer with the job running, however early: its steps are known */
    for (int i = 0; i < 600 && !(count > 0); i++) {
        if (!progress_state(s.port, "job_count", &count, text, sizeof text)) break;
        if (count > 0) progress_state(s.port, "sampling_steps", &steps, text, sizeof text);
        else usleep(20000);
    }
    EXPECT(count == 2 && steps == 1000 && !strstr(text, "of 0"), "progress at the start: %g jobs, %g steps, '%s'",
           count, steps, text);
    for (int i = 0; i < 600 && step < 1; i++) progress_state(s.port, "sampling_step", &step, NULL, 0), usleep(20000);
    http(s.port, "POST", "/sdapi/v1/skip", "", &r);
    EXPECT(r.status == 200, "skip: %d", r.status);
    resp_free(&r);
    double job_no = 0;
    for (int i = 0; i < 600 && job_no < 1; i++) progress_state(s.port, "job_no", &job_no, NULL, 0), usleep(20000);
    progress_state(s.port, "skipped", &skipped, NULL, 0);
    http(s.port, "POST", "/sdapi/v1/interrupt", "", &r); /* the second iteration: stopped, as interrupt does */
    resp_free(&r);
    http_read(fd, &r);
    fd = -1;
    j = json_of(&r);
    EXPECT(r.status == 200 && job_no == 1 && cJSON_GetArraySize(cJSON_GetObjectItem(j, "images")) == 0,
           "skip then interrupt: %d, job_no %g, %.300s", r.status, job_no, r.body);
    cJSON_Delete(j), j = NULL;
    resp_free(&r);

    /* info's cfg_scale as A1111 (a Python float): 7 -> 7.0, 7.25 stays */
    static const struct {
        const char *body, *cfg, *eta;
    } cases[] = {
        {"{\"prompt\": \"a\", \"steps\": 1, \"width\": 64, \"height\": 64, \"seed\": 1, \"cfg_scale\": 7, "
         "\"sampler_name\": \"Euler\", \"eta\": 0.5}",
         "7.0", NULL},
        {"{\"prompt\": \"a\", \"steps\": 1, \"width\": 64, \"height\": 64, \"seed\": 1, \"cfg_scale\": 7.25, "
         "\"sampler_name\": \"DDIM\", \"eta\": 0.5}",
         "7.25", "Eta: 0.5"},
    };
    for (int c = 0; c < 2; c++) {
        http(s.port, "POST", "/sdapi/v1/txt2img", cases[c].body, &r);
        j = json_of(&r);
        const char *is = cJSON_GetStringValue(cJSON_GetObjectItem(j, "info"));
        char want[64];
        snprintf(want, sizeof want, "\"cfg_scale\":%s,", cases[c].cfg);
        EXPECT(r.status == 200 && is && strstr(is, want), "case %d: info lacks %s: %.400s", c, want, is ? is : r.body);
        const char *p = strstr(r.body, "\"parameters\"");
        EXPECT(p && strstr(p, want), "case %d: parameters lack %s", c, want);
        info = cJSON_Parse(is);
        const char *it = cJSON_GetStringValue(cJSON_GetArrayItem(cJSON_GetObjectItem(info, "infotexts"), 0));
        EXPECT(it && (cases[c].eta ? strstr(it, cases[c].eta) != NULL : strstr(it, "Eta") == NULL),
               "case %d infotext: %s", c, it ? it : "-");
        cJSON_Delete(info), info = NULL;
        cJSON_Delete(j), j = NULL;
        resp_free(&r);
    }
out:
    if (fd >= 0) http_read(fd, &r), resp_free(&r);
    cJSON_Delete(j), cJSON_Delete(info);
    resp_free(&r);
    int rc = server_stop(&s);
    CHECK(rc == 0, "server exited %d (log %s)", rc, s.log);
    (void)skipped;
}

/* a link to a fixture by its absolute path (fixture_path may be relative) */
static int symlink_fixture(const char *rel, const char *to) {
    char *abs = realpath(fixture_path(rel), NULL);
    int ok = abs && symlink(abs, to) == 0;
    free(abs);
    return ok;
}

static const char *model_of(const http_resp *r, char *buf, size_t n) {
    cJSON *j = json_of(r);
    const char *is = cJSON_GetStringValue(cJSON_GetObjectItem(j, "info"));
    cJSON *info = cJSON_Parse(is ? is : "");
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(info, "sd_model_name"));
    snprintf(buf, n, "%s", name ? name : "-");
    cJSON_Delete(info), cJSON_Delete(j);
    return buf;
}

#define GEN(extra) "{\"prompt\": \"cat\", \"steps\": 1, \"width\": 64, \"height\": 64, \"seed\": 1" extra "}"

/* --models-dir: every model listed as A1111 names it, switched by /options
 * and override_settings, load failures clear, refresh-checkpoints rescans */
TEST(server_a1111_models_dir) {
    char dir[1024], p[1200], args[1400], why[1024], name[256];
    snprintf(dir, sizeof dir, "%s", tmp_path("models-dir"));
    mkdir(dir, 0755);
    snprintf(p, sizeof p, "%s/sub", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/tiny-sd", dir);
    int ok = symlink_fixture("models/tiny-sd", p);
    snprintf(p, sizeof p, "%s/sub/tiny-sdxl", dir);
    ok = ok && symlink_fixture("models/tiny-sdxl", p);
    /* a folder that says it is a model and is not */
    snprintf(p, sizeof p, "%s/broken", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/broken/model_index.json", dir);
    FILE *f = fopen(p, "w");
    if (f) fputs("{\"_class_name\": \"StableDiffusionPipeline\"}", f), fclose(f);
    CHECK(ok && f, "cannot build the models folder");
    snprintf(args, sizeof args, "--models-dir '%s' -m '%s/tiny-sd'", dir, dir);
    server_proc s;
    CHECK(server_start_args(&s, args, why, sizeof why), "%s", why);
    http_resp r = {0};
    cJSON *j = NULL;
    http(s.port, "GET", "/sdapi/v1/sd-models", NULL, &r);
    j = json_of(&r);
    EXPECT(r.status == 200 && cJSON_GetArraySize(j) == 3, "sd-models: %s", r.body);
    static const char *titles[] = {"broken", "sub/tiny-sdxl", "tiny-sd"},
                      *names[] = {"broken", "sub_tiny-sdxl", "tiny-sd"};
    for (int i = 0; i < 3; i++) {
        const cJSON *e = cJSON_GetArrayItem(j, i);
        EXPECT(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(e, "title")), titles[i]) &&
                   !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(e, "model_name")), names[i]) &&
                   cJSON_IsNull(cJSON_GetObjectItem(e, "hash")) &&
                   strstr(cJSON_GetStringValue(cJSON_GetObjectItem(e, "filename")), titles[i]),
               "entry %d: %s", i, r.body);
    }
    cJSON_Delete(j), j = NULL;
    resp_free(&r);
    http(s.port, "GET", "/sdapi/v1/options", NULL, &r);
    EXPECT(strstr(r.body, "\"sd_model_checkpoint\":\"tiny-sd\""), "options at start: %s", r.body);
    resp_free(&r);

    /* a one-off override: that request only */
    http(s.port, "POST", "/sdapi/v1/txt2img",
         GEN(", \"override_settings\": {\"sd_model_checkpoint\": \"sub/tiny-sdxl\"}"), &r);
    EXPECT(r.status == 200 && !strcmp(model_of(&r, name, sizeof name), "tiny-sdxl"), "override: %d %s %.200s", r.status,
           name, r.body);
    resp_free(&r);
    http(s.port, "POST", "/sdapi/v1/txt2img", GEN(""), &r);
    EXPECT(r.status == 200 && !strcmp(model_of(&r, name, sizeof name), "tiny-sd"), "after the override: %s", name);
    resp_free(&r);
    /* the option: by model_name, as webuiapi's util_set_model would by title */
    http(s.port, "POST", "/sdapi/v1/options", "{\"sd_model_checkpoint\": \"sub_tiny-sdxl\"}", &r);
    EXPECT(r.status == 200, "switch: %d %s", r.status, r.body);
    resp_free(&r);
    http(s.port, "GET", "/sdapi/v1/options/", NULL, &r);
    EXPECT(strstr(r.body, "\"sd_model_checkpoint\":\"sub/tiny-sdxl\""), "options after the switch: %s", r.body);
    resp_free(&r);
    http(s.port, "POST", "/sdapi/v1/options", "{\"sd_model_checkpoint\": \"nope\"}", &r);
    EXPECT(r.status == 422 && strstr(r.body, "nope"), "unknown model: %d %s", r.status, r.body);
    resp_free(&r);
    http(s.port, "POST", "/sdapi/v1/txt2img", GEN(", \"override_settings\": {\"sd_model_checkpoint\": \"nope\"}"), &r);
    EXPECT(r.status == 422 && strstr(r.body, "nope"), "unknown override: %d %s", r.status, r.body);
    resp_free(&r);
    /* a model that does not load: 500 naming it, the previous one still serves */
    http(s.port, "POST", "/sdapi/v1/options", "{\"sd_model_checkpoint\": \"broken\"}", &r);
    EXPECT(r.status == 500 && strstr(r.body, "broken"), "broken model: %d %s", r.status, r.body);
    resp_free(&r);
    http(s.port, "GET", "/sdapi/v1/options", NULL, &r);
    EXPECT(strstr(r.body, "\"sd_model_checkpoint\":\"sub/tiny-sdxl\""), "options after a failed switch: %s", r.body);
    resp_free(&r);
    http(s.port, "POST", "/sdapi/v1/txt2img", GEN(""), &r);
    EXPECT(r.status == 200 && !strcmp(model_of(&r, name, sizeof name), "tiny-sdxl"), "after a failed switch: %d %s",
           r.status, name);
    resp_free(&r);
    /* a model added later appears after refresh-checkpoints */
    snprintf(p, sizeof p, "%s/zz-new", dir);
    EXPECT(symlink_fixture("models/tiny-sd", p), "symlink");
    http(s.port, "POST", "/sdapi/v1/refresh-checkpoints", "", &r);
    EXPECT(r.status == 200, "refresh: %d", r.status);
    resp_free(&r);
    http(s.port, "GET", "/sdapi/v1/sd-models", NULL, &r);
    j = json_of(&r);
    EXPECT(cJSON_GetArraySize(j) == 4 && strstr(r.body, "\"title\":\"zz-new\""), "after refresh: %s", r.body);
out:
    cJSON_Delete(j);
    resp_free(&r);
    int rc = server_stop(&s);
    CHECK(rc == 0, "server exited %d (log %s)", rc, s.log);
}

/* --lora-dir: /loras lists the folder; a tag is applied, an unknown one is a 422 */
TEST(server_a1111_lora_tags) {
    char dir[1024], p[1200], args[2400], why[1024];
    snprintf(dir, sizeof dir, "%s", tmp_path("server-loras"));
    mkdir(dir, 0755);
    snprintf(p, sizeof p, "%s/style.safetensors", dir);
    CHECK(symlink_fixture("models/loras/tiny-sdxl-lora-kohya.safetensors", p), "symlink");
    snprintf(args, sizeof args, "-m '%s' --lora-dir '%s'", fixture_path("models/tiny-sdxl"), dir);
    server_proc s;
    CHECK(server_start_args(&s, args, why, sizeof why), "%s", why);
    http_resp r = {0};
    cJSON *j = NULL;
    http(s.port, "GET", "/sdapi/v1/loras", NULL, &r);
    j = json_of(&r);
    EXPECT(r.status == 200 && cJSON_GetArraySize(j) == 1 &&
               !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(j, 0), "name")), "style") &&
               cJSON_IsObject(cJSON_GetObjectItem(cJSON_GetArrayItem(j, 0), "metadata")),
           "loras: %s", r.body);
    cJSON_Delete(j), j = NULL;
    resp_free(&r);
    http(s.port, "POST", "/sdapi/v1/txt2img",
         "{\"prompt\": \"cat <lora:style:0.7>\", \"steps\": 1, \"width\": 64, "
         "\"height\": 64, \"seed\": 1}",
         &r);
    EXPECT(r.status == 200 && strstr(r.body, "cat <lora:style:0.7>\\\\nSteps"), "tag: %d %.300s", r.status, r.body);
    resp_free(&r);
    http(s.port, "POST", "/sdapi/v1/txt2img",
         "{\"prompt\": \"cat <lora:nope:1>\", \"steps\": 1, \"width\": 64, "
         "\"height\": 64, \"seed\": 1}",
         &r);
    EXPECT(r.status == 422 && strstr(r.body, "'nope' not found"), "unknown tag: %d %s", r.status, r.body);
out:
    cJSON_Delete(j);
    resp_free(&r);
    int rc = server_stop(&s);
    CHECK(rc == 0, "server exited %d (log %s)", rc, s.log);
}

/* a models folder with tiny-sd and sub/tiny-sdxl (links); dir gets its path */
static int make_models_dir(const char *name, char *dir, size_t n) {
    char p[1200];
    snprintf(dir, n, "%s", tmp_path(name));
    mkdir(dir, 0755);
    snprintf(p, sizeof p, "%s/sub", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/tiny-sd", dir);
    int ok = symlink_fixture("models/tiny-sd", p);
    snprintf(p, sizeof p, "%s/sub/tiny-sdxl", dir);
    return ok && symlink_fixture("models/tiny-sdxl", p);
}

/* the images of a txt2img answer decode as PNGs of w x h */
static int pngs_ok(const http_resp *r, int want, int w, int h) {
    cJSON *j = json_of(r);
    const cJSON *imgs = cJSON_GetObjectItem(j, "images");
    int ok = cJSON_GetArraySize(imgs) == want;
    for (int i = 0; ok && i < want; i++) {
        const char *path = tmp_path("client.png");
        uint8_t *rgb = NULL;
        int iw = 0, ih = 0;
        FILE *f;
        ok = b64_to_file(cJSON_GetStringValue(cJSON_GetArrayItem(imgs, i)), path) && (f = fopen(path, "rb"));
        if (ok) {
            static unsigned char buf[1 << 20];
            size_t n = fread(buf, 1, sizeof buf, f);
            fclose(f);
            ok = !sdc_png_decode(buf, n, &rgb, &iw, &ih, NULL) && iw == w && ih == h;
            free(rgb);
        }
    }
    cJSON_Delete(j);
    return ok;
}

/* Open WebUI's AUTOMATIC1111 engine, request for request (its images
 * router): an "authorization: Basic " header with an empty credential when
 * no auth is configured; models from /sd-models as {id: title, name:
 * model_name}; a model switch GETs /options and POSTs the whole object back
 * with sd_model_checkpoint changed; txt2img with prompt, batch_size, width,
 * height, steps, negative_prompt, cfg_scale, sampler_name, scheduler. Then
 * SillyTavern's: /options as its ping, the lists it fills its menus from, a
 * model switch followed by /progress polling until idle, and txt2img with
 * the body its extension builds (hires fields, override_settings with
 * sd_vae, its own url and auth keys ...). */
TEST(server_a1111_client_replays) {
    char dir[1024], args[1400], why[1024], name[256];
    CHECK(make_models_dir("client-models", dir, sizeof dir), "cannot build the models folder");
    snprintf(args, sizeof args, "--models-dir '%s' -m '%s/tiny-sd'", dir, dir);
    server_proc s;
    CHECK(server_start_args(&s, args, why, sizeof why), "%s", why);
    const char *auth = "authorization: Basic \r\n";
    http_resp r = {0};
    cJSON *j = NULL;
    char *body = NULL;
    /* Open WebUI */
    req(s.port, "GET", "/sdapi/v1/sd-models", NULL, auth, &r);
    j = json_of(&r);
    EXPECT(r.status == 200 && cJSON_GetArraySize(j) == 2, "OWUI models: %d %s", r.status, r.body);
    const char *title = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(j, 0), "title"));
    EXPECT(title && !strcmp(title, "sub/tiny-sdxl"), "OWUI model id: %s", r.body);
    cJSON_Delete(j), j = NULL;
    resp_free(&r);
    req(s.port, "GET", "/sdapi/v1/options", NULL, auth, &r);
    j = json_of(&r);
    EXPECT(r.status == 200 && cJSON_IsObject(j), "OWUI options: %d", r.status);
    cJSON_ReplaceItemInObject(j, "sd_model_checkpoint", cJSON_CreateString("sub/tiny-sdxl"));
    body = cJSON_PrintUnformatted(j);
    cJSON_Delete(j), j = NULL;
    resp_free(&r);
    req(s.port, "POST", "/sdapi/v1/options", body, auth, &r);
    EXPECT(r.status == 200, "OWUI switch: %d %s", r.status, r.body);
    resp_free(&r);
    req(s.port, "POST", "/sdapi/v1/txt2img",
        "{\"prompt\": \"a lighthouse\", \"batch_size\": 1, \"width\": 64, \"height\": 64, \"steps\": 2, "
        "\"negative_prompt\": \"blurry\", \"cfg_scale\": 7.0, \"sampler_name\": \"Euler\", \"scheduler\": \"Karras\"}",
        auth, &r);
    EXPECT(r.status == 200 && pngs_ok(&r, 1, 64, 64) && !strcmp(model_of(&r, name, sizeof name), "tiny-sdxl"),
           "OWUI txt2img: %d %s %.300s", r.status, name, r.body);
    resp_free(&r);

    /* SillyTavern */
    static const char *lists[] = {"/sdapi/v1/options",    "/sdapi/v1/sd-models", "/sdapi/v1/samplers",
                                  "/sdapi/v1/schedulers", "/sdapi/v1/upscalers", "/sdapi/v1/latent-upscale-modes",
                                  "/sdapi/v1/sd-vae"};
    for (int i = 0; i < 7; i++) {
        req(s.port, "GET", lists[i], NULL, "Authorization: Basic \r\n", &r);
        EXPECT(r.status == 200, "ST %s: %d", lists[i], r.status);
        resp_free(&r);
    }
    req(s.port, "POST", "/sdapi/v1/options", "{\"sd_model_checkpoint\": \"tiny-sd\"}", "Authorization: Basic \r\n", &r);
    EXPECT(r.status == 200, "ST switch: %d %s", r.status, r.body);
    resp_free(&r);
    req(s.port, "GET", "/sdapi/v1/progress", NULL, "Authorization: Basic \r\n", &r);
    j = json_of(&r);
    EXPECT(cJSON_GetNumberValue(cJSON_GetObjectItem(j, "progress")) == 0 &&
               cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "state"), "job_count")) == 0,
           "ST waits for progress 0 and job_count 0: %s", r.body);
    cJSON_Delete(j), j = NULL;
    resp_free(&r);
    req(s.port, "POST", "/sdapi/v1/txt2img",
        "{\"url\": \"http://127.0.0.1:7860\", \"auth\": \"\", \"prompt\": \"a cat, masterpiece\", "
        "\"negative_prompt\": \"lowres, bad anatomy\", \"sampler_name\": \"DPM++ 2M\", \"scheduler\": \"Karras\", "
        "\"steps\": 2, \"cfg_scale\": 7, \"width\": 64, \"height\": 64, \"restore_faces\": false, \"enable_hr\": "
        "false, "
        "\"hr_upscaler\": \"Latent\", \"hr_scale\": 2, \"hr_additional_modules\": [], \"denoising_strength\": 0.7, "
        "\"hr_second_pass_steps\": 0, \"seed\": 42, \"override_settings\": {\"CLIP_stop_at_last_layers\": 1, "
        "\"sd_vae\": \"Automatic\"}, \"override_settings_restore_afterwards\": true, \"clip_skip\": 1, "
        "\"save_images\": true, \"send_images\": true, \"do_not_save_grid\": false, \"do_not_save_samples\": false}",
        "Authorization: Basic \r\n", &r);
    EXPECT(r.status == 200 && pngs_ok(&r, 1, 64, 64) && !strcmp(model_of(&r, name, sizeof name), "tiny-sd"),
           "ST txt2img: %d %s %.300s", r.status, name, r.body);
out:
    free(body);
    cJSON_Delete(j);
    resp_free(&r);
    int rc = server_stop(&s);
    CHECK(rc == 0, "server exited %d (log %s)", rc, s.log);
    CHECK(log_clean(s.log), "the server logged a warning: see %s", s.log);
}

/* --keep-models 2: a model switched away from stays loaded, so switching
 * back needs no load - shown by removing its folder in between (with the
 * default of one model the same switch must load it and fails) */
TEST(server_a1111_keep_models) {
    for (int keep = 2; keep >= 1; keep--) {
        char dir[1024], args[1400], why[1024], name[256], p[1200];
        snprintf(p, sizeof p, "keep-models-%d", keep);
        CHECK(make_models_dir(p, dir, sizeof dir), "cannot build the models folder");
        snprintf(args, sizeof args, "--models-dir '%s' -m '%s/tiny-sd' --keep-models %d", dir, dir, keep);
        server_proc s;
        CHECK(server_start_args(&s, args, why, sizeof why), "%s", why);
        http_resp r = {0};
        int fail = 1;
        http(s.port, "POST", "/sdapi/v1/options", "{\"sd_model_checkpoint\": \"sub/tiny-sdxl\"}", &r);
        EXPECT(r.status == 200, "keep %d: switch: %d %s", keep, r.status, r.body);
        resp_free(&r);
        snprintf(p, sizeof p, "%s/tiny-sd", dir);
        EXPECT(!unlink(p), "unlink %s", p);
        http(s.port, "POST", "/sdapi/v1/options", "{\"sd_model_checkpoint\": \"tiny-sd\"}", &r);
        if (keep == 2) {
            EXPECT(r.status == 200, "keep 2: switch back to the kept model: %d %s", r.status, r.body);
            resp_free(&r);
            http(s.port, "POST", "/sdapi/v1/txt2img", GEN(""), &r);
            EXPECT(r.status == 200 && !strcmp(model_of(&r, name, sizeof name), "tiny-sd"), "keep 2: generate: %d %s",
                   r.status, name);
        } else {
            EXPECT(r.status == 500, "keep 1: the switch back must load (and fail): %d %s", r.status, r.body);
        }
        fail = 0;
    out:
        resp_free(&r);
        int rc = server_stop(&s);
        if (fail) return;
        CHECK(rc == 0, "server exited %d (log %s)", rc, s.log);
    }
}

/* a switch where neither the new model nor the previous one loads leaves
 * no model: requests fail with 500 naming why, and serve again once the
 * model is back */
TEST(server_a1111_models_none_loadable) {
    char dir[1024], args[1400], why[1024], name[256], p[1200];
    CHECK(make_models_dir("none-loadable", dir, sizeof dir), "cannot build the models folder");
    snprintf(p, sizeof p, "%s/broken", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/broken/model_index.json", dir);
    FILE *f = fopen(p, "w");
    CHECK(f, "cannot write %s", p);
    fputs("{\"_class_name\": \"StableDiffusionPipeline\"}", f);
    fclose(f);
    snprintf(args, sizeof args, "--models-dir '%s' -m '%s/tiny-sd'", dir, dir);
    server_proc s;
    CHECK(server_start_args(&s, args, why, sizeof why), "%s", why);
    http_resp r = {0};
    snprintf(p, sizeof p, "%s/tiny-sd", dir);
    EXPECT(!unlink(p), "unlink %s", p);
    http(s.port, "POST", "/sdapi/v1/options", "{\"sd_model_checkpoint\": \"broken\"}", &r);
    EXPECT(r.status == 500 && strstr(r.body, "could not be loaded again"), "double failure: %d %s", r.status, r.body);
    resp_free(&r);
    http(s.port, "POST", "/sdapi/v1/txt2img", GEN(""), &r);
    EXPECT(r.status == 500 && strstr(r.body, "tiny-sd"), "no model: %d %s", r.status, r.body);
    resp_free(&r);
    static const char *still[] = {"/sdapi/v1/memory", "/sdapi/v1/cmd-flags", "/sdapi/v1/options",
                                  "/sdapi/v1/sd-models"};
    for (int i = 0; i < 4; i++) {
        http(s.port, "GET", still[i], NULL, &r);
        EXPECT(r.status == 200, "%s without a model: %d", still[i], r.status);
        resp_free(&r);
    }
    EXPECT(symlink_fixture("models/tiny-sd", p), "relink");
    http(s.port, "POST", "/sdapi/v1/txt2img", GEN(""), &r);
    EXPECT(r.status == 200 && !strcmp(model_of(&r, name, sizeof name), "tiny-sd"), "model back: %d %s", r.status,
           r.body);
out:
    resp_free(&r);
    int rc = server_stop(&s);
    CHECK(rc == 0, "server exited %d (log %s)", rc, s.log);
}
