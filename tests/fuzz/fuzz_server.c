/* fuzz_server.c - the server's request handlers (tools/server/api_*.c) on
 * any body, without libmicrohttpd or a model: the first byte picks the
 * endpoint, the rest is the body. txt2img runs against a stand-in job queue
 * that "generates" one 8x8 image per iteration with the prompt as its
 * infotext, so the whole reply path (PNG, base64, info JSON) runs. Every
 * reply must be a 2xx/4xx/5xx status with a body that is valid UTF-8 and
 * parses as JSON (anything else aborts: a finding). */
#include <stdlib.h>
#include <string.h>

#include "../../tools/server/json_util.h"
#include "../../tools/server/server.h"
#include "fuzz_util.h"

/* ---- the stand-in job queue (job_queue.c's interface) ---- */

struct job_queue {
    int interrupt;
};

int jq_start(job_queue **q, sdc_model *m, int capacity) {
    (void)m, (void)capacity;
    *q = calloc(1, sizeof **q);
    return *q ? 0 : -1;
}

int jq_run(job_queue *q, jq_job *j) {
    (void)q;
    for (int it = 0; it < j->n_iter && it < 64; it++) {
        sdc_image *im = calloc(1, sizeof *im);
        im->width = im->height = 8;
        im->rgb = calloc(8 * 8 * 3, 1);
        im->seed = j->seed + (uint64_t)it;
        im->infotext = strdup(j->prompt ? j->prompt : "");
        j->images[it] = im;
        j->nimages[it] = 1;
        j->iterations_done = it + 1;
    }
    memcpy(j->job_timestamp, "20240101000000", 15);
    return j->result = JQ_DONE;
}

void jq_interrupt(job_queue *q) { q->interrupt = 1; }
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
    g_api.model_name = "tiny-sd";
    g_api.model_path = "/models/tiny-sd";
    if (jq_start(&g_api.queue, NULL, 1)) abort();
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
    case 3: api_progress(&g_api, &r); break;
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
