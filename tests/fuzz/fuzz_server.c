/* fuzz_server.c - the server's request handlers (tools/server/api_*.c) on
 * any body, without libmicrohttpd or a model: the first byte picks the
 * endpoint, the rest is the body. txt2img runs against a stand-in job queue
 * that "generates" one 8x8 image per iteration with the prompt as its
 * infotext, so the whole reply path (PNG, base64, info JSON) runs. Every
 * reply must be a 2xx/4xx/5xx status with a body that is valid UTF-8 and
 * parses as JSON (anything else aborts: a finding). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../tools/server/json_util.h"
#include "../../tools/server/model_set.h"
#include "../../tools/server/server.h"
#include "fuzz_util.h"

/* ---- the stand-in job queue (job_queue.c's interface) ---- */

struct job_queue {
    int interrupt;
    jq_options opt;
};

int jq_start(job_queue **q, model_set *ms, int capacity, const jq_options *opt) {
    (void)ms, (void)capacity;
    *q = calloc(1, sizeof **q);
    if (*q) (*q)->opt = *opt;
    return *q ? 0 : -1;
}
void jq_get_options(job_queue *q, jq_options *o) { *o = q->opt; }
void jq_set_options(job_queue *q, const jq_options *o) { q->opt = *o; }
char *jq_current_image(job_queue *q) {
    (void)q;
    return NULL;
}

int jq_run(job_queue *q, jq_job *j) {
    (void)q;
    const char *prompt = j->req.nprompts > 0 && j->req.prompts ? j->req.prompts[0] : "";
    for (int it = 0; it < j->n_iter && it < 64; it++) {
        sdc_image *im = calloc(1, sizeof *im);
        im->width = im->height = 8;
        im->rgb = calloc(8 * 8 * 3, 1);
        im->seed = j->req.seed + (uint64_t)it;
        im->infotext = strdup(prompt ? prompt : "");
        j->images[it] = im;
        j->nimages[it] = 1;
        j->iterations_done = it + 1;
    }
    memcpy(j->job_timestamp, "20240101000000", 15);
    return j->result = JQ_DONE;
}

void jq_interrupt(job_queue *q) { q->interrupt = 1; }
void jq_skip(job_queue *q) { (void)q; }
int jq_stopping(job_queue *q) {
    (void)q;
    return 0;
}
void jq_get_progress(job_queue *q, jq_progress *p) {
    (void)q;
    memset(p, 0, sizeof *p);
}
void jq_stop(job_queue *q) { (void)q; }
void jq_free(job_queue *q) { free(q); }
void jq_job_free_images(jq_job *j) {
    for (int i = 0; i < 64; i++) {
        sdc_images_free(j->images[i], j->nimages[i]);
        j->images[i] = NULL;
        j->nimages[i] = 0;
    }
}

/* ---- the harness ---- */

static server_config g_cfg = {.max_side = 2048, .max_steps = 150, .max_images = 16, .max_body = 16u << 20};
static api_ctx g_api;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    g_api.cfg = &g_cfg;
    /* the real model set with the tiny model (requests are checked against it); the
     * queue above stands in for the worker */
    static sdc_load_options lo;
    char err[512];
    const char *model = getenv("SDC_FUZZ_MODEL") ? getenv("SDC_FUZZ_MODEL") : "tests/fixtures/models/tiny-sd";
    if (!ms_open(&g_api.models, NULL, model, &lo, 1, err, sizeof err)) {
        fprintf(stderr, "fuzz_server: %s (run from the repository root or set SDC_FUZZ_MODEL)\n", err);
        abort();
    }
    pthread_mutex_init(&g_api.opt_mu, NULL);
    api_set_option_checkpoint(&g_api, ms_resident(g_api.models));
    jq_options opt = {.every = 10, .grid = 1};
    if (jq_start(&g_api.queue, g_api.models, 1, &opt)) abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    if (n < 1) return 0;
    char *body = malloc(n); /* the body as server.c hands it over: NUL-terminated */
    memcpy(body, data + 1, n - 1);
    body[n - 1] = 0;
    http_reply r = {0};
    switch (data[0] % 6) {
    case 0: api_txt2img(&g_api, body, n - 1, &r); break;
    case 1: api_png_info(&g_api, body, n - 1, &r); break;
    case 2: api_options_post(&g_api, body, n - 1, &r); break;
    case 3: api_progress(&g_api, 0, &r); break;
    case 4: api_samplers(&g_api, &r); break;
    default: api_interrupt(&g_api, &r); break;
    }
    if (r.status < 200 || r.status > 599) abort();
    if (r.body) {
        fuzz_require_utf8(r.body, r.len, "a reply");
        cJSON *j = cJSON_ParseWithLength(r.body, r.len);
        if (!j) abort();
        cJSON_Delete(j);
    }
    if (!r.persistent_body) free(r.body);
    free(body);
    return 0;
}
