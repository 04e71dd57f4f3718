/* test_server.c - `sdc serve` end to end: the server is started on a free
 * loopback port (--port 0) with the tiny model and spoken to over plain
 * sockets. Endpoint shapes are checked against AUTOMATIC1111's API, images
 * against `sdc generate` with the same parameters, bad requests against
 * their 4xx answers (and the server keeps serving), the queue (503 when
 * full), /interrupt, basic auth, graceful shutdown (exit 0, leak-free under
 * ASan) and a bounded load (8 clients x 5 requests: every request answered
 * 200 or 503, RSS flat). Images are 64x64 with 1-2 steps to stay fast. */
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
#include "io/json.h"
#include "io/png_io.h"
#include "sdc.h"
#include "server_client.h"

/* ---- tests ---- */

TEST(server_usage_errors) {
    const char *bad[] = {"-m x --port 70000", "-m x --api-auth nocolon", "-m x --queue 0", "-m x --bogus",
                         "-m x extra"};
    char cmd[1024], out[2048];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(cmd, sizeof cmd, "%s serve %s", sdc_binary(), bad[i]);
        int rc = run_cmd(cmd, out, sizeof out);
        CHECK(rc == 2 && strstr(out, "sdc: "), "'serve %s' exited %d, want 2: %s", bad[i], rc, out);
    }
    snprintf(cmd, sizeof cmd, "%s serve -m /nonexistent/model --port 0", sdc_binary());
    CHECK(run_cmd(cmd, out, sizeof out) == 1 && strstr(out, "sdc: "), "missing model: %s", out);
    snprintf(cmd, sizeof cmd, "%s serve -m %s --port 0 --host 999.1.2.3", sdc_binary(), fixture_path("models/tiny-sd"));
    CHECK(run_cmd(cmd, out, sizeof out) == 1 && strstr(out, "--host"), "bad host: %s", out);
    snprintf(cmd, sizeof cmd, "%s serve --help", sdc_binary());
    CHECK(run_cmd(cmd, out, sizeof out) == 0 && strstr(out, "--api-auth"), "--help: %s", out);
}

TEST(server_endpoint_shapes) {
    server_proc s;
    char why[1024];
    CHECK(server_start(&s, NULL, why, sizeof why), "%s", why);
    http_resp r;
    const char *miss = NULL;
    int fail = 0;
#define EXPECT(cond, ...)                           \
    if (!(cond)) {                                  \
        test_fail_at(__FILE__, __LINE__, __VA_ARGS__); \
        fail = 1;                                   \
        goto out;                                   \
    }
    cJSON *j = NULL;
    http(s.port, "GET", "/sdapi/v1/sd-models", NULL, &r);
    j = json_of(&r);
    static const char *model_keys[] = {"title", "model_name", "hash", "sha256", "filename", "config", NULL};
    EXPECT(r.status == 200 && cJSON_GetArraySize(j) == 1 && has_keys(cJSON_GetArrayItem(j, 0), model_keys, &miss),
           "sd-models: %d %s", r.status, r.body);
    EXPECT(!strcmp(cJSON_GetObjectItem(cJSON_GetArrayItem(j, 0), "model_name")->valuestring, "tiny-sd"), "model name");
    cJSON_Delete(j), resp_free(&r);

    http(s.port, "GET", "/sdapi/v1/samplers", NULL, &r);
    j = json_of(&r);
    static const char *sampler_keys[] = {"name", "aliases", "options", NULL};
    static const char *want_samplers[] = {"Euler a", "Euler", "DDIM", "DPM++ 2M", "LCM", "PLMS", "TCD"};
    EXPECT(r.status == 200 && cJSON_IsArray(j), "samplers: %d %s", r.status, r.body);
    for (size_t w = 0; w < sizeof want_samplers / sizeof *want_samplers; w++) {
        int found = 0;
        cJSON *it;
        cJSON_ArrayForEach(it, j) {
            EXPECT(has_keys(it, sampler_keys, &miss) && cJSON_IsArray(cJSON_GetObjectItem(it, "aliases")) &&
                       cJSON_IsObject(cJSON_GetObjectItem(it, "options")),
                   "sampler entry lacks '%s': %s", miss, r.body);
            found |= !strcmp(cJSON_GetObjectItem(it, "name")->valuestring, want_samplers[w]);
        }
        EXPECT(found, "sampler '%s' missing: %s", want_samplers[w], r.body);
    }
    /* exactly the library's sampler registry, in its order, with A1111's aliases and options */
    EXPECT(cJSON_GetArraySize(j) == sdc_sampler_count(), "%d samplers listed, the registry has %d",
           cJSON_GetArraySize(j), sdc_sampler_count());
    for (int i = 0; i < sdc_sampler_count(); i++) {
        const sdc_sampler_info *si = sdc_sampler_at(i);
        const cJSON *it = cJSON_GetArrayItem(j, i), *al = cJSON_GetObjectItem(it, "aliases");
        const cJSON *opt = cJSON_GetObjectItem(it, "options");
        EXPECT(!strcmp(cJSON_GetObjectItem(it, "name")->valuestring, si->a1111_name), "sampler %d is '%s', want '%s'",
               i, cJSON_GetObjectItem(it, "name")->valuestring, si->a1111_name);
        int na = 0;
        while (si->a1111_aliases && si->a1111_aliases[na]) na++;
        EXPECT(cJSON_GetArraySize(al) == na, "%s: %d aliases, the registry has %d", si->a1111_name,
               cJSON_GetArraySize(al), na);
        for (int k = 0; k < na; k++)
            EXPECT(!strcmp(cJSON_GetArrayItem(al, k)->valuestring, si->a1111_aliases[k]), "%s: alias %d", si->a1111_name, k);
        EXPECT(si->a1111_option_key ? cJSON_GetArraySize(opt) == 1 &&
                                          cJSON_IsTrue(cJSON_GetObjectItem(opt, si->a1111_option_key)) ==
                                              !strcmp(si->a1111_option_value, "true")
                                    : cJSON_GetArraySize(opt) == 0,
               "%s: %d options, want %s", si->a1111_name, cJSON_GetArraySize(opt),
               si->a1111_option_key ? si->a1111_option_key : "none");
    }
    cJSON_Delete(j), resp_free(&r);

    http(s.port, "GET", "/sdapi/v1/schedulers", NULL, &r);
    j = json_of(&r);
    static const char *sched_keys[] = {"name", "label", "aliases", "default_rho", "need_inner_model", NULL};
    EXPECT(r.status == 200 && cJSON_GetArraySize(j) >= 2, "schedulers: %d %s", r.status, r.body);
    int karras = 0;
    for (int i = 0; i < cJSON_GetArraySize(j); i++) {
        EXPECT(has_keys(cJSON_GetArrayItem(j, i), sched_keys, &miss), "scheduler entry lacks '%s'", miss);
        karras |= !strcmp(cJSON_GetObjectItem(cJSON_GetArrayItem(j, i), "label")->valuestring, "Karras");
    }
    EXPECT(karras, "no Karras schedule: %s", r.body);
    cJSON_Delete(j), resp_free(&r);

    http(s.port, "GET", "/sdapi/v1/options", NULL, &r);
    j = json_of(&r);
    EXPECT(r.status == 200 && cJSON_IsString(cJSON_GetObjectItem(j, "sd_model_checkpoint")) &&
               !strcmp(cJSON_GetObjectItem(j, "sd_model_checkpoint")->valuestring, "tiny-sd"),
           "options: %d %s", r.status, r.body);
    cJSON_Delete(j), resp_free(&r);
    http(s.port, "POST", "/sdapi/v1/options", "{\"sd_model_checkpoint\": \"tiny-sd\"}", &r);
    EXPECT(r.status == 200 && r.body && !strcmp(r.body, "null"), "options POST: %d %s", r.status, r.body);
    resp_free(&r);

    http(s.port, "GET", "/sdapi/v1/progress", NULL, &r);
    j = json_of(&r);
    static const char *prog_keys[] = {"progress", "eta_relative", "state", "current_image", "textinfo", NULL};
    static const char *state_keys[] = {"skipped", "interrupted", "job", "job_count", "job_timestamp", "job_no",
                                       "sampling_step", "sampling_steps", NULL};
    EXPECT(r.status == 200 && has_keys(j, prog_keys, &miss) && has_keys(cJSON_GetObjectItem(j, "state"), state_keys, &miss),
           "progress lacks '%s': %s", miss, r.body);
    EXPECT(cJSON_GetObjectItem(j, "progress")->valuedouble == 0 &&
               cJSON_GetObjectItem(cJSON_GetObjectItem(j, "state"), "job_count")->valuedouble == 0,
           "idle progress: %s", r.body);
    cJSON_Delete(j), resp_free(&r);
    j = NULL;

    http(s.port, "POST", "/sdapi/v1/interrupt", "", &r);
    EXPECT(r.status == 200 && r.body && !strcmp(r.body, "{}"), "interrupt while idle: %d %s", r.status, r.body);
    resp_free(&r);

    /* the page: HTML with its controls, nothing fetched from elsewhere */
    http(s.port, "GET", "/", NULL, &r);
    EXPECT(r.status == 200 && strstr(r.head, "text/html") && strstr(r.body, "id=\"generate\"") &&
               strstr(r.body, "/sdapi/v1/progress") && strstr(r.body, "name=\"viewport\""),
           "page: %d", r.status);
    EXPECT(!strstr(r.body, "http://") && !strstr(r.body, "https://") && !strstr(r.body, "//cdn"),
           "the page references an outside URL");
    resp_free(&r);
    http(s.port, "HEAD", "/sdapi/v1/samplers", NULL, &r);
    EXPECT(r.status == 200 && r.len == 0, "HEAD: %d, %zu body bytes", r.status, r.len);
    resp_free(&r);
    http(s.port, "GET", "/internal/ping", NULL, &r);
    EXPECT(r.status == 200 && r.body && !strcmp(r.body, "{}"), "ping: %d %s", r.status, r.body);
    resp_free(&r);
    http(s.port, "GET", "/sdapi/v1/upscalers", NULL, &r);
    EXPECT(r.status == 200 && r.body && !strcmp(r.body, "[]"), "upscalers: %d %s", r.status, r.body);

    /* a second server on the same port fails clearly */
    char cmd[1024], out[2048];
    snprintf(cmd, sizeof cmd, "%s serve -m '%s' --port %d", sdc_binary(), fixture_path("models/tiny-sd"), s.port);
    int busy_rc = run_cmd(cmd, out, sizeof out);
    EXPECT(busy_rc == 1 && strstr(out, "cannot listen"), "port in use: exit %d: %s", busy_rc, out);
out:
    cJSON_Delete(j);
    resp_free(&r);
    int rc = server_stop(&s);
    if (!fail) CHECK(rc == 0, "server exited %d after SIGTERM (log %s)", rc, s.log);
#undef EXPECT
}

/* the API's images are the CLI's images, bit for bit, with the same infotext */
TEST(server_txt2img_matches_cli) {
    server_proc s;
    char why[1024], cmd[2048], out[4096];
    CHECK(server_start(&s, NULL, why, sizeof why), "%s", why);
    struct {
        const char *json, *cli;
        int nimg;
    } cases[] = {
        {"{\"prompt\": \"a red cube\", \"negative_prompt\": \"blurry\", \"steps\": 2, \"width\": 64, \"height\": 64,"
         " \"seed\": 7, \"sampler_name\": \"Euler a\", \"cfg_scale\": 7, \"batch_size\": 2, \"unknown_field\": [1]}",
         "-p 'a red cube' -n blurry --steps 2 -W 64 -H 64 --seed 7 --scheduler euler_a --guidance 7 --batch 2", 2},
        {"{\"prompt\": \"a red cube\", \"steps\": 2, \"width\": 64, \"height\": 64, \"seed\": 11,"
         " \"sampler_name\": \"DPM++ 2M\", \"scheduler\": \"Karras\", \"cfg_scale\": 5.5}",
         "-p 'a red cube' --steps 2 -W 64 -H 64 --seed 11 --scheduler dpmpp_2m --karras --guidance 5.5", 1},
        /* A1111's defaults (sampler "Euler", CFG 7); n_iter batches of one: seeds 5, 6 like --batch 2 */
        {"{\"prompt\": \"cat\", \"steps\": 2, \"width\": 64, \"height\": 64, \"seed\": 5, \"n_iter\": 2}",
         "-p cat --steps 2 -W 64 -H 64 --seed 5 --scheduler euler --guidance 7 --batch 2", 2},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        http_resp r;
        http(s.port, "POST", "/sdapi/v1/txt2img", cases[c].json, &r);
        cJSON *j = json_of(&r), *info = NULL;
        const cJSON *images = cJSON_GetObjectItem(j, "images"), *params = cJSON_GetObjectItem(j, "parameters");
        const cJSON *info_s = cJSON_GetObjectItem(j, "info");
        int ok = r.status == 200 && cJSON_GetArraySize(images) == cases[c].nimg && cJSON_IsObject(params) &&
                 cJSON_IsString(info_s) && (info = cJSON_Parse(info_s->valuestring));
        if (!ok) {
            test_fail_at(__FILE__, __LINE__, "case %zu: %d %.300s", c, r.status, r.body ? r.body : "");
            cJSON_Delete(j), resp_free(&r), server_stop(&s);
            return;
        }
        static const char *info_keys[] = {"prompt", "all_prompts", "negative_prompt", "seed", "all_seeds", "width",
                                          "height", "sampler_name", "cfg_scale", "steps", "batch_size",
                                          "sd_model_name", "infotexts", NULL};
        const char *miss = "";
        double seed0 = cJSON_GetObjectItem(info, "seed") ? cJSON_GetObjectItem(info, "seed")->valuedouble : -1;
        const cJSON *seeds = cJSON_GetObjectItem(info, "all_seeds"), *its = cJSON_GetObjectItem(info, "infotexts");
        ok = has_keys(info, info_keys, &miss) && cJSON_GetArraySize(seeds) == cases[c].nimg &&
             cJSON_GetArraySize(its) == cases[c].nimg && cJSON_HasObjectItem(params, "prompt") &&
             cJSON_GetObjectItem(params, "seed")->valuedouble == seed0 &&
             !cJSON_HasObjectItem(params, "unknown_field");
        for (int i = 0; ok && i < cases[c].nimg; i++) ok = cJSON_GetArrayItem(seeds, i)->valuedouble == seed0 + i;
        /* the server reads prompts as A1111 does */
        snprintf(cmd, sizeof cmd, "%s generate --quiet -m '%s' --prompt-syntax a1111 %s -o '%s'", sdc_binary(),
                 fixture_path("models/tiny-sd"), cases[c].cli, tmp_path("cli-{index}.png"));
        int rc = ok ? run_cmd(cmd, out, sizeof out) : 0;
        for (int i = 0; ok && rc == 0 && i < cases[c].nimg; i++) {
            char name[32];
            snprintf(name, sizeof name, "cli-%d.png", i);
            ok = same_image(cJSON_GetArrayItem(images, i)->valuestring, tmp_path(name), why, sizeof why);
            if (ok) {
                /* the infotext the info carries is the PNG's */
                uint8_t *px;
                int w, h;
                char *t = NULL;
                ok = !png_read_rgb(tmp_path(name), &px, &w, &h, &t) && t &&
                     !strcmp(t, cJSON_GetArrayItem(its, i)->valuestring);
                free(px), free(t);
                if (!ok) snprintf(why, sizeof why, "info.infotexts[%d] is not the PNG's infotext", i);
            }
        }
        if (!ok || rc) {
            test_fail_at(__FILE__, __LINE__, "case %zu: %s%s %s", c, miss, rc ? out : "", why);
            cJSON_Delete(info), cJSON_Delete(j), resp_free(&r), server_stop(&s);
            return;
        }
        /* png-info reads the infotext back */
        if (c == 0) {
            char *body = malloc(strlen(cJSON_GetArrayItem(images, 0)->valuestring) + 64);
            sprintf(body, "{\"image\": \"data:image/png;base64,%s\"}", cJSON_GetArrayItem(images, 0)->valuestring);
            http_resp pr;
            http(s.port, "POST", "/sdapi/v1/png-info", body, &pr);
            free(body);
            cJSON *pj = json_of(&pr), *pp = cJSON_GetObjectItem(pj, "parameters");
            const char *want[][2] = {{"Prompt", "a red cube"}, {"Negative prompt", "blurry"}, {"Steps", "2"},
                                     {"Sampler", "Euler a"},   {"CFG scale", "7"},          {"Seed", "7"},
                                     {"Size-1", "64"},         {"Size-2", "64"},            {"Model", "tiny-sd"}};
            ok = pr.status == 200 && cJSON_IsString(cJSON_GetObjectItem(pj, "info")) && cJSON_IsObject(pp) &&
                 cJSON_IsObject(cJSON_GetObjectItem(pj, "items"));
            for (size_t k = 0; ok && k < sizeof want / sizeof want[0]; k++) {
                const cJSON *v = cJSON_GetObjectItem(pp, want[k][0]);
                ok = cJSON_IsString(v) && !strcmp(v->valuestring, want[k][1]);
                if (!ok) snprintf(why, sizeof why, "png-info %s: want '%s': %s", want[k][0], want[k][1], pr.body);
            }
            cJSON_Delete(pj), resp_free(&pr);
            if (!ok) {
                test_fail_at(__FILE__, __LINE__, "%s", why);
                cJSON_Delete(info), cJSON_Delete(j), resp_free(&r), server_stop(&s);
                return;
            }
        }
        cJSON_Delete(info), cJSON_Delete(j), resp_free(&r);
    }
    int rc = server_stop(&s);
    CHECK(rc == 0, "server exited %d (log %s)", rc, s.log);
}

static char *file_to_b64(const char *path) {
    static const char *t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 3);
    char *o = malloc((size_t)n / 3 * 4 + 8), *p = o;
    size_t got = fread(b, 1, (size_t)n, f);
    fclose(f);
    b[got] = b[got + 1] = 0;
    for (size_t i = 0; i < got; i += 3) {
        uint32_t v = (uint32_t)b[i] << 16 | (uint32_t)b[i + 1] << 8 | b[i + 2];
        *p++ = t[v >> 18], *p++ = t[v >> 12 & 63];
        *p++ = i + 1 < got ? t[v >> 6 & 63] : '=';
        *p++ = i + 2 < got ? t[v & 63] : '=';
    }
    *p = 0;
    free(b);
    return o;
}

/* png-info reads A1111 infotexts back the way A1111's parse_generation_parameters does */
TEST(server_png_info_parses_infotext) {
    static const uint8_t px[2 * 2 * 3] = {0};
    struct {
        const char *text;
        const char *want[14][2];
    } cases[] = {
        {"line one\nline two\nNegative prompt: bad, ugly\nmore negative\n"
         "Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 965400086, Size: 512x768, "
         "Model hash: 45dee52b, Lora hashes: \"a: 1, b: 2\", Note: \"say \\\"hi\\\"\", Version: v1.10.1",
         {{"Prompt", "line one\nline two"}, {"Negative prompt", "bad, ugly\nmore negative"}, {"Steps", "20"},
          {"Sampler", "DPM++ 2M"}, {"Schedule type", "Karras"}, {"CFG scale", "7"}, {"Seed", "965400086"},
          {"Size-1", "512"}, {"Size-2", "768"}, {"Model hash", "45dee52b"}, {"Lora hashes", "a: 1, b: 2"},
          {"Note", "say \"hi\""}, {"Clip skip", "1"}, {NULL, NULL}}},
        /* fewer than three "Key: value" pairs on the last line: it is prompt text */
        {"just a prompt\nwith: a colon, and more",
         {{"Prompt", "just a prompt\nwith: a colon, and more"}, {"Negative prompt", ""}, {"Schedule type", "Automatic"},
          {NULL, NULL}}},
        {NULL, {{"Prompt", ""}, {"Negative prompt", ""}, {NULL, NULL}}}, /* no parameters chunk */
    };
    server_proc s;
    char why[1024];
    CHECK(server_start(&s, NULL, why, sizeof why), "%s", why);
    int failed = 0;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0] && !failed; c++) {
        const char *png = tmp_path("infotext.png");
        char *b64 = NULL, *body = NULL;
        if (!png_write_rgb(png, px, 2, 2, cases[c].text ? "parameters" : NULL, cases[c].text) &&
            (b64 = file_to_b64(png)) && (body = malloc(strlen(b64) + 32)))
            sprintf(body, "{\"image\": \"%s\"}", b64);
        http_resp r;
        memset(&r, 0, sizeof r);
        if (body) http(s.port, "POST", "/sdapi/v1/png-info", body, &r);
        cJSON *j = json_of(&r), *pp = cJSON_GetObjectItem(j, "parameters");
        const cJSON *info = cJSON_GetObjectItem(j, "info");
        if (r.status != 200 || !cJSON_IsString(info) || strcmp(info->valuestring, cases[c].text ? cases[c].text : "")) {
            test_fail_at(__FILE__, __LINE__, "case %zu: %d %s", c, r.status, r.body ? r.body : "");
            failed = 1;
        }
        for (int k = 0; !failed && cases[c].want[k][0]; k++) {
            const cJSON *v = cJSON_GetObjectItem(pp, cases[c].want[k][0]);
            if (!cJSON_IsString(v) || strcmp(v->valuestring, cases[c].want[k][1])) {
                test_fail_at(__FILE__, __LINE__, "case %zu: %s is %s, want '%s'", c, cases[c].want[k][0],
                             cJSON_IsString(v) ? v->valuestring : "missing", cases[c].want[k][1]);
                failed = 1;
            }
        }
        cJSON_Delete(j);
        resp_free(&r);
        free(b64);
        free(body);
    }
    int rc = server_stop(&s);
    if (!failed) CHECK(rc == 0, "server exited %d (log %s)", rc, s.log);
}

/* largest channel difference between a base64 PNG and a golden PNG (999: unreadable or other size);
 * *info: the PNG's infotext */
static int golden_diff(const char *b64, const char *golden, char **info) {
    const char *png = tmp_path("api-a1111.png");
    uint8_t *a = NULL, *b = NULL;
    int aw, ah, bw, bh, worst = 999;
    if (b64_to_file(b64, png) && !png_read_rgb(png, &a, &aw, &ah, info) && !png_read_rgb(golden, &b, &bw, &bh, NULL) &&
        aw == bw && ah == bh) {
        worst = 0;
        for (int64_t i = 0; i < (int64_t)aw * ah * 3; i++)
            if (abs((int)a[i] - (int)b[i]) > worst) worst = abs((int)a[i] - (int)b[i]);
    }
    free(a), free(b);
    return worst;
}

/* the server reads prompts as A1111 does: the a1111-long-* cases (a 2-chunk prompt, a 1-chunk negative)
 * come out as their goldens, the halves run apart by default, padded after POST /options
 * {"pad_cond_uncond": true}, and apart again when override_settings turns it off for one request */
TEST(server_a1111_prompts_and_pad_cond_uncond) {
    cJSON *cj;
    CHECK_OK(json_load(fixture_path("../fixtures2/cases/a1111-long-pndm.json"), &cj));
    cJSON *req = cJSON_CreateObject(), *ovr = cJSON_AddObjectToObject(req, "override_settings");
    cJSON_AddStringToObject(req, "prompt", cJSON_GetArrayItem(cJSON_GetObjectItem(cj, "prompt"), 0)->valuestring);
    cJSON_AddStringToObject(req, "negative_prompt",
                            cJSON_GetArrayItem(cJSON_GetObjectItem(cj, "negative_prompt"), 0)->valuestring);
    cJSON_AddStringToObject(req, "sampler_name", "PLMS");
    cJSON_AddNumberToObject(req, "steps", 6);
    cJSON_AddNumberToObject(req, "cfg_scale", 7.5);
    cJSON_AddNumberToObject(req, "width", 128);
    cJSON_AddNumberToObject(req, "height", 64);
    cJSON_AddNumberToObject(req, "seed", 101);
    cJSON_AddStringToObject(ovr, "randn_source", "CPU");
    char *plain = cJSON_PrintUnformatted(req);
    cJSON_AddFalseToObject(ovr, "pad_cond_uncond");
    char *no_pad = cJSON_PrintUnformatted(req);
    cJSON_Delete(req), cJSON_Delete(cj);
    server_proc s;
    char why[1024];
    int started = server_start(&s, NULL, why, sizeof why);
    if (!started) free(plain), free(no_pad);
    CHECK(started, "%s", why);
    struct {
        const char *options, *body, *golden;
        int padded;
    } steps[] = {
        {NULL, plain, "../fixtures2/cases/a1111-long-pndm_0.png", 0},
        {"{\"pad_cond_uncond\": true}", plain, "../fixtures2/cases/a1111-long-padcond_0.png", 1},
        {NULL, no_pad, "../fixtures2/cases/a1111-long-pndm_0.png", 0},
    };
    char fail[512] = "";
    for (size_t k = 0; k < sizeof steps / sizeof steps[0] && !fail[0]; k++) {
        http_resp r;
        if (steps[k].options) {
            http(s.port, "POST", "/sdapi/v1/options", steps[k].options, &r);
            if (r.status != 200) snprintf(fail, sizeof fail, "step %zu: options %d %.200s", k, r.status, r.body);
            resp_free(&r);
            http(s.port, "GET", "/sdapi/v1/options", NULL, &r);
            cJSON *o = json_of(&r);
            if (!fail[0] && !cJSON_IsTrue(cJSON_GetObjectItem(o, "pad_cond_uncond")))
                snprintf(fail, sizeof fail, "GET /options does not show pad_cond_uncond true");
            cJSON_Delete(o), resp_free(&r);
        }
        if (fail[0]) break;
        http(s.port, "POST", "/sdapi/v1/txt2img", steps[k].body, &r);
        cJSON *j = json_of(&r);
        const cJSON *img = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "images"), 0);
        char *info = NULL;
        int worst = r.status == 200 && cJSON_IsString(img)
                        ? golden_diff(img->valuestring, fixture_path(steps[k].golden), &info)
                        : 999;
        if (worst > 2)
            snprintf(fail, sizeof fail, "step %zu: %d, max pixel difference %d/255 %.200s", k, r.status, worst,
                     r.status == 200 ? "" : r.body);
        else if (!info || !strstr(info, "Pad conds: True") != !steps[k].padded)
            snprintf(fail, sizeof fail, "step %zu: infotext '%s'", k, info ? info : "-");
        free(info), cJSON_Delete(j), resp_free(&r);
    }
    free(plain), free(no_pad);
    int rc = server_stop(&s);
    CHECK(!fail[0], "%s", fail);
    CHECK(rc == 0, "server exited %d (log %s)", rc, s.log);
}

/* each bad request gets its 4xx with A1111's error body, and the server keeps serving */
/* max |a - b| of the PNG in base64 `b64` and the pixels want (w x h RGB); 999: unreadable or another size */
static int b64_max_diff(const char *b64, const uint8_t *want, int w, int h) {
    const char *p = tmp_path("api-i2i.png");
    uint8_t *a = NULL;
    int aw, ah, worst = 999;
    if (b64_to_file(b64, p) && !png_read_rgb(p, &a, &aw, &ah, NULL) && aw == w && ah == h) {
        worst = 0;
        for (int64_t k = 0; k < (int64_t)w * h * 3; k++)
            if (abs((int)a[k] - (int)want[k]) > worst) worst = abs((int)a[k] - (int)want[k]);
    }
    free(a);
    return worst;
}

/* POST body to path; the first image's max difference from want (-1: no image, *status set) */
static int api_image_diff(int port, const char *path, const char *body, const uint8_t *want, int w, int h,
                          int *status, char *why, size_t why_n) {
    http_resp r;
    http(port, "POST", path, body, &r);
    cJSON *j = json_of(&r);
    const cJSON *img = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "images"), 0);
    *status = r.status;
    int d = cJSON_IsString(img) ? b64_max_diff(img->valuestring, want, w, h) : -1;
    snprintf(why, why_n, "%d %.300s", r.status, r.status == 200 ? "" : r.body ? r.body : "");
    cJSON_Delete(j), resp_free(&r);
    return d;
}

/* POST /sdapi/v1/img2img and txt2img's hires fix against diffusers' goldens (tests/fixtures2): img2img
 * equals diffusers' image; an inpaint is diffusers' image inside the mask and the init image's pixels outside
 * (A1111's overlay); enable_hr makes the hires case's 128x128 image; bad input gets a 422 */
TEST(server_img2img_and_hires) {
    server_proc s;
    char why[1024], body[200000];
    CHECK(server_start(&s, NULL, why, sizeof why), "%s", why);
    char *init = file_to_b64(fixture_path("../fixtures2/cases/img2img-sd-ddim_init.png"));
    char *init4 = file_to_b64(fixture_path("../fixtures2/cases/inpaint-sd4-euler_init.png"));
    char *mask4 = file_to_b64(fixture_path("../fixtures2/cases/inpaint-sd4-euler_mask.png"));
    char *tall = file_to_b64(fixture_path("../fixtures2/cases/img2img-sd-euler-a-batch2_init.png"));
    uint8_t *gold = NULL, *g4 = NULL, *i4 = NULL, *m4 = NULL, *gh = NULL;
    int w, h, ok = init && init4 && mask4 && tall, status, d;
    ok = ok && !png_read_rgb(fixture_path("../fixtures2/cases/img2img-sd-ddim_0.png"), &gold, &w, &h, NULL) &&
         !png_read_rgb(fixture_path("../fixtures2/cases/inpaint-sd4-euler_0.png"), &g4, &w, &h, NULL) &&
         !png_read_rgb(fixture_path("../fixtures2/cases/inpaint-sd4-euler_init.png"), &i4, &w, &h, NULL) &&
         !png_read_rgb(fixture_path("../fixtures2/cases/inpaint-sd4-euler_mask.png"), &m4, &w, &h, NULL) &&
         !png_read_rgb(fixture_path("../fixtures2/cases/hires-sd-latent_0.png"), &gh, &w, &h, NULL);
    if (!ok) snprintf(why, sizeof why, "cannot read the fixtures2 cases");
    if (ok) { /* img2img-sd-ddim: diffusers' StableDiffusionImg2ImgPipeline */
        snprintf(body, sizeof body, "{\"prompt\": \"a castle, oil painting\", \"steps\": 10, \"cfg_scale\": 7.5, "
                 "\"width\": 64, \"height\": 64, \"seed\": 51, \"sampler_name\": \"DDIM\", \"denoising_strength\": 0.6, "
                 "\"init_images\": [\"data:image/png;base64,%s\"]}", init);
        d = api_image_diff(s.port, "/sdapi/v1/img2img", body, gold, 64, 64, &status, why, sizeof why);
        if (getenv("SDC_TEST_VERBOSE")) printf("     img2img-sd-ddim through the API: max pixel difference %d/255\n", d);
        ok = d >= 0 && d <= 2;
    }
    if (ok) { /* inpaint-sd4-euler with A1111's overlay: no blur, the image's own content, whole picture */
        for (int64_t k = 0; k < 64 * 64 * 3; k++) /* the mask is white (repaint) or black */
            if (m4[k / 3 * 3] < 128) g4[k] = i4[k];
        snprintf(body, sizeof body, "{\"prompt\": \"a blue door\", \"steps\": 8, \"cfg_scale\": 7.5, \"width\": 64, "
                 "\"height\": 64, \"seed\": 56, \"sampler_name\": \"Euler\", \"denoising_strength\": 0.8, "
                 "\"mask_blur\": 0, \"inpainting_fill\": 1, \"inpaint_full_res\": false, \"init_images\": [\"%s\"], "
                 "\"mask\": \"%s\"}", init4, mask4);
        d = api_image_diff(s.port, "/sdapi/v1/img2img", body, g4, 64, 64, &status, why, sizeof why);
        if (getenv("SDC_TEST_VERBOSE")) printf("     inpaint-sd4-euler through the API: max pixel difference %d/255\n", d);
        ok = d >= 0 && d <= 2;
    }
    if (ok) { /* hires-sd-latent: enable_hr with the Latent upscaler */
        snprintf(body, sizeof body, "{\"prompt\": \"a knight on a horse\", \"steps\": 6, \"cfg_scale\": 7.5, "
                 "\"width\": 64, \"height\": 64, \"seed\": 57, \"sampler_name\": \"DDIM\", \"enable_hr\": true, "
                 "\"hr_scale\": 2, \"hr_upscaler\": \"Latent\", \"hr_second_pass_steps\": 6, "
                 "\"denoising_strength\": 0.6}");
        d = api_image_diff(s.port, "/sdapi/v1/txt2img", body, gh, 128, 128, &status, why, sizeof why);
        if (getenv("SDC_TEST_VERBOSE")) printf("     hires-sd-latent through the API: max pixel difference %d/255\n", d);
        ok = d >= 0 && d <= 2;
    }
    /* bad input: 422 and the server goes on */
    const char *bad[][2] = {
        {"{\"init_images\": [\"%s\"], \"mask\": \"%s\", \"steps\": 2, \"width\": 64, \"height\": 64}", "must be the same size"},
        {"{\"init_images\": [\"aGVsbG8gd29ybGQ=\"], \"steps\": 2%s%s}", "not a PNG"},
        {"{\"init_images\": [\"%s\"], \"denoising_strength\": 0, \"steps\": 2%s}", "more than 0"},
        {"{\"steps\": 2%s%s}", "init_images"},
        {"{\"enable_hr\": true, \"hr_upscaler\": \"ESRGAN_4x\", \"steps\": 2, \"width\": 64, \"height\": 64%s%s}",
         "Latent (nearest)"},
    };
    for (size_t i = 0; ok && i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(body, sizeof body, bad[i][0], i == 0 ? init : i == 2 ? init : "", i == 0 ? tall : "");
        http_resp r;
        http(s.port, "POST", i == 4 ? "/sdapi/v1/txt2img" : "/sdapi/v1/img2img", body, &r);
        ok = r.status == 422 && r.body && strstr(r.body, bad[i][1]);
        if (!ok) snprintf(why, sizeof why, "bad input %zu: %d %.300s (want 422 with '%s')", i, r.status, r.body ? r.body : "", bad[i][1]);
        resp_free(&r);
    }
    free(init), free(init4), free(mask4), free(tall);
    free(gold), free(g4), free(i4), free(m4), free(gh);
    int rc = server_stop(&s);
    CHECK(ok, "%s", why);
    CHECK(rc == 0, "server exited %d (log %s)", rc, s.log);
}

TEST(server_bad_requests) {
    server_proc s;
    char why[1024];
    CHECK(server_start(&s, "--max-body-mb 1 --max-size 512", why, sizeof why), "%s", why);
    struct {
        const char *method, *path, *body;
        int status;
    } bad[] = {
        {"POST", "/sdapi/v1/txt2img", "{\"prompt\": ", 422},                /* malformed JSON */
        {"POST", "/sdapi/v1/txt2img", "", 422},                             /* empty body */
        {"POST", "/sdapi/v1/txt2img", "[1, 2]", 422},                        /* not an object */
        {"POST", "/sdapi/v1/txt2img", "{\"prompt\": 5}", 422},               /* wrong types */
        {"POST", "/sdapi/v1/txt2img", "{\"steps\": \"many\"}", 422},
        {"POST", "/sdapi/v1/txt2img", "{\"steps\": 2.5}", 422},
        {"POST", "/sdapi/v1/txt2img", "{\"cfg_scale\": \"high\"}", 422},
        {"POST", "/sdapi/v1/txt2img", "{\"send_images\": 1}", 422},
        {"POST", "/sdapi/v1/txt2img", "{\"steps\": 0}", 422},                /* out of range */
        {"POST", "/sdapi/v1/txt2img", "{\"steps\": 100000}", 422},
        {"POST", "/sdapi/v1/txt2img", "{\"width\": 65}", 422},
        {"POST", "/sdapi/v1/txt2img", "{\"width\": 4096}", 422},             /* over --max-size */
        {"POST", "/sdapi/v1/txt2img", "{\"height\": -8}", 422},
        {"POST", "/sdapi/v1/txt2img", "{\"cfg_scale\": 1e308}", 422},
        {"POST", "/sdapi/v1/txt2img", "{\"eta\": 3}", 422},
        {"POST", "/sdapi/v1/txt2img", "{\"seed\": -5}", 422},
        {"POST", "/sdapi/v1/txt2img", "{\"seed\": 1e30}", 422},
        {"POST", "/sdapi/v1/txt2img", "{\"batch_size\": 8, \"n_iter\": 8}", 422},
        {"POST", "/sdapi/v1/txt2img", "{\"sampler_name\": \"DPM++ 2S a\"}", 400}, /* a sampler sdc lacks */
        {"POST", "/sdapi/v1/txt2img", "{\"sampler_name\": \"k_no_such\"}", 400},  /* unknown sampler */
        {"POST", "/sdapi/v1/txt2img", "{\"scheduler\": \"Polyexponential\"}", 400},
        {"POST", "/sdapi/v1/txt2img", "{\"sampler_name\": \"DDIM\", \"scheduler\": \"Karras\"}", 422},
        {"POST", "/sdapi/v1/txt2img", "{\"override_settings\": {\"CLIP_stop_at_last_layers\": 99}}", 422},
        {"POST", "/sdapi/v1/png-info", "{}", 422},
        {"POST", "/sdapi/v1/png-info", "{\"image\": \"%%%not base64\"}", 422},
        {"POST", "/sdapi/v1/png-info", "{\"image\": \"aGVsbG8gd29ybGQ=\"}", 422}, /* "hello world" */
        {"POST", "/sdapi/v1/png-info", "{\"image\": \"iVBORw0KGgoAAAANSUhEUgAAAEAAAABACAIAAAAlC+aJAAAA\"}", 422},
        {"POST", "/sdapi/v1/options", "{\"sd_model_checkpoint\": \"sd_xl_base_1.0\"}", 422},
        {"POST", "/sdapi/v1/options", "17", 422},
        {"GET", "/sdapi/v1/nothing-here", NULL, 404},                       /* unknown path */
        {"GET", "/sdapi/v1/txt2img", NULL, 405},                            /* wrong method */
        {"DELETE", "/sdapi/v1/progress", NULL, 405},
        {"PUT", "/", "{}", 405},
    };
    int failed = 0;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0] && !failed; i++) {
        http_resp r;
        http(s.port, bad[i].method, bad[i].path, bad[i].body, &r);
        cJSON *j = json_of(&r);
        const cJSON *e = cJSON_GetObjectItem(j, "error"), *d = cJSON_GetObjectItem(j, "detail");
        if (r.status != bad[i].status || !cJSON_IsString(e) || !cJSON_IsString(d) || !*d->valuestring ||
            !cJSON_HasObjectItem(j, "errors")) {
            test_fail_at(__FILE__, __LINE__, "%s %s '%s': got %d %s, want %d with error/detail", bad[i].method,
                         bad[i].path, bad[i].body ? bad[i].body : "", r.status, r.body ? r.body : "", bad[i].status);
            failed = 1;
        }
        if (!failed && r.status == 405 && !strstr(r.head, "Allow:")) {
            test_fail_at(__FILE__, __LINE__, "405 without an Allow header");
            failed = 1;
        }
        cJSON_Delete(j);
        resp_free(&r);
    }
    /* a body over the limit is refused from its Content-Length alone */
    if (!failed) {
        int fd = http_send(s.port, "POST", "/sdapi/v1/txt2img", NULL, "Content-Length: 5000000\r\n");
        http_resp r;
        if (fd >= 0) http_read(fd, &r);
        else memset(&r, 0, sizeof r);
        if (r.status != 413 || !r.body || !strstr(r.body, "\"detail\"")) {
            test_fail_at(__FILE__, __LINE__, "oversized body: %d %s", r.status, r.body ? r.body : "");
            failed = 1;
        }
        resp_free(&r);
    }
    /* not HTTP at all: libmicrohttpd answers 400 and the server lives on */
    if (!failed) {
        int fd = connect_to(s.port);
        http_resp r;
        memset(&r, 0, sizeof r);
        if (fd >= 0) {
            send_all(fd, "\x01\x02garbage\r\n\r\n", 13);
            http_read(fd, &r);
        }
        if (r.status && (r.status < 400 || r.status > 499)) {
            test_fail_at(__FILE__, __LINE__, "garbage request: status %d", r.status);
            failed = 1;
        }
        resp_free(&r);
    }
    /* still serving: a real generation works after all that */
    if (!failed) {
        http_resp r;
        http(s.port, "POST", "/sdapi/v1/txt2img",
             "{\"prompt\": \"ok\", \"steps\": 1, \"width\": 64, \"height\": 64, \"seed\": 3, \"cfg_scale\": 1}", &r);
        if (r.status != 200) {
            test_fail_at(__FILE__, __LINE__, "after the bad requests: %d %s", r.status, r.body ? r.body : "");
            failed = 1;
        }
        resp_free(&r);
    }
    int rc = server_stop(&s);
    if (!failed) CHECK(rc == 0, "server exited %d (log %s)", rc, s.log);
}

TEST(server_basic_auth) {
    server_proc s;
    char why[1024];
    CHECK(server_start(&s, "--api-auth 'alice:s3cret,bob:pw'", why, sizeof why), "%s", why);
    http_resp r;
    int fd;
    const char *paths[] = {"/", "/sdapi/v1/options", "/sdapi/v1/nothing"};
    int failed = 0;
    for (size_t i = 0; i < 3 && !failed; i++) {
        http(s.port, "GET", paths[i], NULL, &r);
        if (r.status != 401 || !strstr(r.head, "WWW-Authenticate: Basic")) {
            test_fail_at(__FILE__, __LINE__, "%s without credentials: %d", paths[i], r.status);
            failed = 1;
        }
        resp_free(&r);
    }
    /* alice:wrong, then bob:pw */
    if (!failed && (fd = http_send(s.port, "GET", "/sdapi/v1/options", NULL, "Authorization: Basic YWxpY2U6d3Jvbmc=\r\n")) >= 0) {
        http_read(fd, &r);
        if (r.status != 401) test_fail_at(__FILE__, __LINE__, "wrong password: %d", r.status), failed = 1;
        resp_free(&r);
    }
    if (!failed && (fd = http_send(s.port, "GET", "/sdapi/v1/options", NULL, "Authorization: Basic Ym9iOnB3\r\n")) >= 0) {
        http_read(fd, &r);
        if (r.status != 200) test_fail_at(__FILE__, __LINE__, "right password: %d %s", r.status, r.body), failed = 1;
        resp_free(&r);
    }
    int rc = server_stop(&s);
    if (!failed) CHECK(rc == 0, "server exited %d (log %s)", rc, s.log);
}

/* wait until /progress says `key` in state reaches at least `value` (20 s at most) */
static int wait_state(int port, const char *key, double value) {
    for (int i = 0; i < 400; i++) {
        http_resp r;
        http(port, "GET", "/sdapi/v1/progress", NULL, &r);
        cJSON *j = json_of(&r);
        const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "state"), key);
        int ok = cJSON_IsNumber(v) && v->valuedouble >= value;
        cJSON_Delete(j);
        resp_free(&r);
        if (ok) return 1;
        usleep(50000);
    }
    return 0;
}

#define LONG_JOB "{\"prompt\": \"long\", \"steps\": 1000, \"width\": 64, \"height\": 64, \"seed\": 1, \"cfg_scale\": 1}"
#define SHORT_JOB "{\"prompt\": \"short\", \"steps\": 1, \"width\": 64, \"height\": 64, \"seed\": 2, \"cfg_scale\": 1}"

/* one job at a time: a second waits, a third finds the queue full (503);
 * /interrupt stops the running one at its next step */
TEST(server_queue_and_interrupt) {
    server_proc s;
    char why[1024];
    CHECK(server_start(&s, "--queue 1 --max-steps 1000", why, sizeof why), "%s", why);
    int a = http_send(s.port, "POST", "/sdapi/v1/txt2img", LONG_JOB, NULL);
    int ok = a >= 0 && wait_state(s.port, "sampling_step", 1);
    int b = ok ? http_send(s.port, "POST", "/sdapi/v1/txt2img", SHORT_JOB, NULL) : -1;
    ok = ok && b >= 0 && wait_state(s.port, "queue_waiting", 1);
    http_resp rc_, ra, rb, rp;
    memset(&rc_, 0, sizeof rc_), memset(&ra, 0, sizeof ra), memset(&rb, 0, sizeof rb), memset(&rp, 0, sizeof rp);
    if (ok) {
        /* a full queue answers at once: a few seconds, not the long job's minutes */
        int c = http_send(s.port, "POST", "/sdapi/v1/txt2img", SHORT_JOB, NULL);
        struct timeval tv = {.tv_sec = 15};
        if (c >= 0) setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), http_read(c, &rc_);
        http(s.port, "GET", "/sdapi/v1/progress", NULL, &rp);
        http_resp ri;
        http(s.port, "POST", "/sdapi/v1/interrupt", "", &ri);
        resp_free(&ri);
    }
    if (a >= 0) http_read(a, &ra);
    if (b >= 0) http_read(b, &rb);
    int stop = server_stop(&s);
    cJSON *jp = json_of(&rp), *ja = json_of(&ra), *jb = json_of(&rb), *jc = json_of(&rc_);
    cJSON *ia = cJSON_Parse(cJSON_GetStringValue(cJSON_GetObjectItem(ja, "info")) ? cJSON_GetObjectItem(ja, "info")->valuestring : "");
    double prog = cJSON_GetNumberValue(cJSON_GetObjectItem(jp, "progress"));
    const char *ti = cJSON_GetStringValue(cJSON_GetObjectItem(jp, "textinfo"));
    char msg[600];
    snprintf(msg, sizeof msg, "A %d, B %d, C %d (%.120s), progress %.200s", ra.status, rb.status, rc_.status,
             rc_.body ? rc_.body : "", rp.body ? rp.body : "");
    int good = ok && rc_.status == 503 && cJSON_IsString(cJSON_GetObjectItem(jc, "detail")) && prog > 0 &&
               prog < 1 && ti && strstr(ti, "1 waiting") && ra.status == 200 &&
               cJSON_GetArraySize(cJSON_GetObjectItem(ja, "images")) == 0 && cJSON_IsTrue(cJSON_GetObjectItem(ia, "interrupted")) &&
               rb.status == 200 && cJSON_GetArraySize(cJSON_GetObjectItem(jb, "images")) == 1;
    cJSON_Delete(jp), cJSON_Delete(ja), cJSON_Delete(jb), cJSON_Delete(jc), cJSON_Delete(ia);
    resp_free(&ra), resp_free(&rb), resp_free(&rc_), resp_free(&rp);
    CHECK(good, "%s", msg);
    CHECK(stop == 0, "server exited %d (log %s)", stop, s.log);
}

/* SIGTERM during a job: the job stops, its client gets an answer, the waiting one a 503, exit 0 */
TEST(server_graceful_shutdown) {
    server_proc s;
    char why[1024];
    CHECK(server_start(&s, "--max-steps 1000", why, sizeof why), "%s", why);
    int a = http_send(s.port, "POST", "/sdapi/v1/txt2img", LONG_JOB, NULL);
    int ok = a >= 0 && wait_state(s.port, "sampling_step", 1);
    int b = ok ? http_send(s.port, "POST", "/sdapi/v1/txt2img", SHORT_JOB, NULL) : -1;
    ok = ok && b >= 0 && wait_state(s.port, "queue_waiting", 1);
    int stop = server_stop(&s);
    http_resp ra, rb;
    memset(&ra, 0, sizeof ra), memset(&rb, 0, sizeof rb);
    if (a >= 0) http_read(a, &ra);
    if (b >= 0) http_read(b, &rb);
    int good = ok && ra.status == 503 && rb.status == 503 && ra.body && strstr(ra.body, "shutting down");
    char msg[400];
    snprintf(msg, sizeof msg, "running job: %d %.100s; waiting job: %d %.100s", ra.status, ra.body ? ra.body : "",
             rb.status, rb.body ? rb.body : "");
    resp_free(&ra), resp_free(&rb);
    CHECK(good, "%s", msg);
    CHECK(stop == 0, "server exited %d after SIGTERM (log %s)", stop, s.log);
}

/* ---- bounded load: 8 clients x 5 requests ---- */

#define LOAD_CLIENTS 8
#define LOAD_REQUESTS 5

typedef struct {
    int port, ok, busy, other, other_status;
} load_client;

static void *load_main(void *arg) {
    load_client *c = arg;
    for (int i = 0; i < LOAD_REQUESTS; i++) {
        http_resp r;
        http(c->port, "POST", "/sdapi/v1/txt2img", SHORT_JOB, &r);
        if (r.status == 200 && r.body && strstr(r.body, "\"images\":[\"")) c->ok++;
        else if (r.status == 503) c->busy++;
        else c->other++, c->other_status = r.status;
        resp_free(&r);
    }
    return NULL;
}

TEST(server_load_bounded) {
    server_proc s;
    char why[1024];
    CHECK(server_start(&s, "--queue 1", why, sizeof why), "%s", why);
    /* one request first, so the baseline holds the model's working buffers */
    http_resp r;
    http(s.port, "POST", "/sdapi/v1/txt2img", SHORT_JOB, &r);
    resp_free(&r);
    long rss0 = server_rss_kb(&s);
    int ok = 0, busy = 0, other = 0, other_status = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    load_client cl[LOAD_CLIENTS];
    pthread_t th[LOAD_CLIENTS];
    for (int i = 0; i < LOAD_CLIENTS; i++) {
        cl[i] = (load_client){.port = s.port};
        pthread_create(&th[i], NULL, load_main, &cl[i]);
    }
    for (int i = 0; i < LOAD_CLIENTS; i++) {
        pthread_join(th[i], NULL);
        ok += cl[i].ok, busy += cl[i].busy, other += cl[i].other;
        if (cl[i].other) other_status = cl[i].other_status;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long rss1 = server_rss_kb(&s);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    http(s.port, "GET", "/sdapi/v1/progress", NULL, &r);
    int alive = r.status == 200;
    resp_free(&r);
    int stop = server_stop(&s);
    printf("     load: %d clients x %d requests: %d ok, %d busy (503), %d other in %.1f s; server RSS %ld -> %ld KiB\n",
           LOAD_CLIENTS, LOAD_REQUESTS, ok, busy, other, secs, rss0, rss1);
    CHECK(other == 0, "%d requests got neither 200 nor 503 (e.g. %d)", other, other_status);
    CHECK(ok + busy == LOAD_CLIENTS * LOAD_REQUESTS && ok > 0, "%d ok + %d busy", ok, busy);
    CHECK(alive, "the server stopped answering after the load");
    /* flat: nothing worth speaking of kept per request (ASan's quarantine grows by design) */
    if (!getenv("SDC_SANITIZED"))
        CHECK(rss1 - rss0 < 16 * 1024, "server RSS grew from %ld to %ld KiB under the load", rss0, rss1);
    CHECK(stop == 0, "server exited %d after the load (log %s)", stop, s.log);
}

/* ---- every sampler and schedule type the server lists ---- */

/* POST one txt2img of the walk (64x64, 2 steps); returns the status and, on
 * 200, the first image's base64 (malloc'd) in *b64 */
static int walk_post(int port, const char *sampler, const char *schedule, char **b64) {
    char body[512];
    snprintf(body, sizeof body,
             "{\"prompt\": \"a red cube\", \"steps\": 2, \"width\": 64, \"height\": 64, \"seed\": 21, \"cfg_scale\": 1,"
             " \"sampler_name\": \"%s\"%s%s%s}",
             sampler, schedule ? ", \"scheduler\": \"" : "", schedule ? schedule : "", schedule ? "\"" : "");
    http_resp r;
    http(port, "POST", "/sdapi/v1/txt2img", body, &r);
    cJSON *j = json_of(&r);
    const cJSON *img = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "images"), 0);
    *b64 = r.status == 200 && cJSON_IsString(img) ? strdup(img->valuestring) : NULL;
    int status = r.status == 200 && !*b64 ? -1 : r.status;
    cJSON_Delete(j), resp_free(&r);
    return status;
}

/* the same request through `sdc generate`, compared with the API's image (pixels and infotext) */
static int walk_cli_same(const char *b64, const char *sampler, const char *schedule, char *why, size_t n) {
    char cmd[2048], out[2048];
    snprintf(cmd, sizeof cmd,
             "%s generate --quiet -m '%s' -p 'a red cube' --steps 2 -W 64 -H 64 --seed 21 --guidance 1 "
             "--prompt-syntax a1111 --scheduler '%s'%s%s -o '%s'", /* the server reads A1111's syntax */
             sdc_binary(), fixture_path("models/tiny-sd"), sampler, schedule ? " --schedule " : "",
             schedule ? schedule : "", tmp_path("walk-cli.png"));
    if (run_cmd(cmd, out, sizeof out)) return snprintf(why, n, "%s: %s", cmd, out), 0;
    return same_image(b64, tmp_path("walk-cli.png"), why, n);
}

/* Every name /sdapi/v1/samplers lists (names and aliases) and every schedule
 * type /sdapi/v1/schedulers lists (names, labels, aliases) is accepted; each
 * sampler name and each schedule gives the CLI's image for the same seed;
 * a sampler with a schedule it does not take is a 422, never an image.
 * Euler a carries the schedule types it takes (Open WebUI's "Euler a" +
 * "Karras" included), the first sampler that takes each of the others. */
TEST(server_every_sampler_and_schedule) {
    server_proc s;
    char why[1024];
    CHECK(server_start(&s, NULL, why, sizeof why), "%s", why);
    http_resp r1, r2;
    http(s.port, "GET", "/sdapi/v1/samplers", NULL, &r1);
    http(s.port, "GET", "/sdapi/v1/schedulers", NULL, &r2);
    cJSON *samplers = json_of(&r1), *schedules = json_of(&r2);
    resp_free(&r1), resp_free(&r2);
    int fail = 0, requests = 0, cli = 0;
    char *b64 = NULL, *alt = NULL;
#define WALK_FAIL(...)                                  \
    do {                                                \
        test_fail_at(__FILE__, __LINE__, __VA_ARGS__); \
        fail = 1;                                       \
    } while (0)
    if (cJSON_GetArraySize(samplers) != sdc_sampler_count() || cJSON_GetArraySize(schedules) != sdc_schedule_count())
        WALK_FAIL("%d samplers, %d schedule types listed", cJSON_GetArraySize(samplers), cJSON_GetArraySize(schedules));
    const cJSON *it;
    /* each sampler by its name (== the CLI's image) and by each alias (== the name's) */
    cJSON_ArrayForEach(it, samplers) {
        if (fail) break;
        const char *name = cJSON_GetObjectItem(it, "name")->valuestring;
        int st = walk_post(s.port, name, NULL, &b64);
        requests++;
        if (st != 200) WALK_FAIL("sampler '%s': %d", name, st);
        else if (!walk_cli_same(b64, name, NULL, why, sizeof why)) WALK_FAIL("sampler '%s': %s", name, why);
        cli++;
        const cJSON *al;
        cJSON_ArrayForEach(al, cJSON_GetObjectItem(it, "aliases")) {
            if (fail) break;
            st = walk_post(s.port, al->valuestring, NULL, &alt);
            requests++;
            if (st != 200 || strcmp(alt, b64)) WALK_FAIL("alias '%s' of '%s': %d, not the name's image", al->valuestring, name, st);
            free(alt), alt = NULL;
        }
        free(b64), b64 = NULL;
    }
    /* each schedule type with every sampler: 200 where the sampler takes it, else 422 */
    cJSON_ArrayForEach(it, schedules) {
        if (fail) break;
        const char *name = cJSON_GetObjectItem(it, "name")->valuestring;
        const sdc_schedule_info *k = sdc_schedule_find(name);
        const char *carrier = NULL;
        const cJSON *sp;
        cJSON_ArrayForEach(sp, samplers) {
            if (fail) break;
            const char *sname = cJSON_GetObjectItem(sp, "name")->valuestring;
            const int takes = sdc_sampler_takes_schedule(sdc_sampler_find_a1111(sname, NULL), k);
            int st = walk_post(s.port, sname, name, &b64);
            requests++;
            if (st != (takes ? 200 : 422)) WALK_FAIL("'%s' + '%s': %d, want %d", sname, name, st, takes ? 200 : 422);
            if (!fail && takes && (!carrier || !strcmp(sname, "Euler a"))) {
                carrier = sname;
                free(alt), alt = b64, b64 = NULL;
            }
            free(b64), b64 = NULL;
        }
        if (fail) break;
        if (!carrier) {
            WALK_FAIL("no sampler takes '%s'", name);
            break;
        }
        if (!walk_cli_same(alt, carrier, name, why, sizeof why)) WALK_FAIL("'%s' + '%s': %s", carrier, name, why);
        cli++;
        /* the label and the aliases are the same schedule */
        const char *others[8] = {cJSON_GetObjectItem(it, "label")->valuestring};
        int no = 1;
        cJSON_ArrayForEach(sp, cJSON_GetObjectItem(it, "aliases")) if (no < 8) others[no++] = sp->valuestring;
        for (int o = 0; o < no && !fail; o++) {
            int st = walk_post(s.port, carrier, others[o], &b64);
            requests++;
            if (st != 200 || strcmp(b64, alt)) WALK_FAIL("'%s' + '%s': %d, not the image of '%s'", carrier, others[o], st, name);
            free(b64), b64 = NULL;
        }
        free(alt), alt = NULL;
    }
#undef WALK_FAIL
    free(b64), free(alt);
    cJSON_Delete(samplers), cJSON_Delete(schedules);
    int rc = server_stop(&s);
    if (getenv("SDC_TEST_VERBOSE")) printf("     %d requests, %d compared with the CLI\n", requests, cli);
    if (!fail) CHECK(rc == 0, "server exited %d (log %s)", rc, s.log);
}
