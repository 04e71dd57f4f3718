/* server.h - `sdc serve`: the pieces of the HTTP server and what they share.
 *   server.c       libmicrohttpd glue: routing, limits, basic auth, shutdown
 *   conn_guard.c   slow clients cut off, free slots kept, request memory budgeted
 *   job_queue.c    the one worker thread that owns the model, a bounded queue
 *   api_txt2img.c  POST /sdapi/v1/txt2img and img2img (A1111 request -> job -> response)
 *   api_img2img.c  img2img / inpainting fields, A1111's overlay; txt2img's hires fix fields
 *   inpaint_prep.c A1111's pixel work: resize modes, mask blur, crop, fill, overlay
 *   api_misc.c     the small endpoints (models, samplers, progress, png-info ...)
 *   sampler_map.c  A1111 sampler / schedule names <-> sdc schedulers
 *   infotext_parse.c  A1111 "parameters" text back into fields
 *   json_util.c    replies, A1111-style errors, base64, typed JSON fields
 *   page.c         the web page at / (tools/server/page.html, embedded)
 * Handlers never touch libmicrohttpd: they fill an http_reply. */
#ifndef SDC_TOOLS_SERVER_H
#define SDC_TOOLS_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "sdc.h"

typedef struct {
    const char *host;    /* bind address (default 127.0.0.1) */
    int port;            /* 0: any free port (printed) */
    const char *auth;    /* "user:pass[,user:pass...]" or NULL */
    int queue;           /* jobs that may wait behind the running one */
    int max_side;        /* width/height limit */
    int max_steps;
    int max_images;      /* batch_size * n_iter limit */
    size_t max_body;     /* request body limit in bytes */
    size_t max_request_memory; /* what requests in flight may hold at once, bytes (conn_guard.c) */
    int max_connections;
    int client_timeout;  /* seconds a client may take to send its request headers */
    int quiet;           /* no per-request log lines */
} server_config;

/* What a handler answers. body is malloc'd (NULL: empty). */
typedef struct {
    int status;
    char *body;
    size_t len;
    const char *content_type; /* NULL: application/json */
    const char *allow;        /* Allow header for 405 */
    int persistent_body;      /* body is static: do not free */
} http_reply;

/* ---- the job queue (job_queue.c) ---- */

typedef struct job_queue job_queue;

/* One txt2img request as the worker runs it: n_iter calls of sdc_generate
 * with req (its strings are the request thread's, alive until jq_run
 * returns), image k of iteration i seeded req.seed + i*req.batch + k. */
typedef struct {
    sdc_request req;       /* checked with sdc_request_check before it is queued */
    int n_iter;
    /* results, filled by the worker */
    int result;            /* JQ_DONE, JQ_FULL, JQ_SHUTDOWN */
    int interrupted;       /* stopped early by /interrupt or shutdown */
    sdc_status st;         /* first failure, SDC_OK if none */
    char error[1024];
    sdc_image *images[64]; /* per iteration */
    int nimages[64];
    int iterations_done;
    char job_timestamp[16]; /* when it began, YYYYmmddHHMMSS */
    int done;
} jq_job;

enum { JQ_DONE = 0, JQ_FULL, JQ_SHUTDOWN };

typedef struct {
    int busy;                  /* a job is running */
    int job_count, job_no;     /* iterations of the running job, current one */
    int sampling_step, sampling_steps;
    int waiting;               /* jobs queued behind it */
    int interrupted;
    double time_start;         /* CLOCK_REALTIME seconds when the job began */
    char job_timestamp[16];    /* YYYYmmddHHMMSS, A1111's format */
} jq_progress;

int jq_start(job_queue **q, sdc_model *m, int capacity);
/* Queue the job and wait for it; returns its result (JQ_FULL at once when
 * the queue is full, JQ_SHUTDOWN when the server is stopping). */
int jq_run(job_queue *q, jq_job *j);
void jq_interrupt(job_queue *q);
int jq_stopping(job_queue *q);
void jq_get_progress(job_queue *q, jq_progress *p);
/* Interrupt the running job, fail the waiting ones, join the worker; later
 * jq_run calls answer JQ_SHUTDOWN at once. jq_free once no thread uses q. */
void jq_stop(job_queue *q);
void jq_free(job_queue *q);
void jq_job_free_images(jq_job *j);

/* ---- the API (api_*.c) ---- */

typedef struct {
    const server_config *cfg;
    job_queue *queue;
    sdc_model *model;
    const char *model_name;  /* folder name, as the infotext's "Model:" */
    const char *model_path;  /* absolute path */
    sdc_model_info info;
} api_ctx;

void api_txt2img(api_ctx *a, const char *body, size_t len, http_reply *r);
/* POST /sdapi/v1/img2img: txt2img's request plus A1111's img2img fields (api_img2img.c) */
void api_img2img(api_ctx *a, const char *body, size_t len, http_reply *r);
void api_sd_models(api_ctx *a, http_reply *r);
void api_samplers(api_ctx *a, http_reply *r);
void api_schedulers(api_ctx *a, http_reply *r);
void api_options_get(api_ctx *a, http_reply *r);
void api_options_post(api_ctx *a, const char *body, size_t len, http_reply *r);
void api_progress(api_ctx *a, http_reply *r);
void api_png_info(api_ctx *a, const char *body, size_t len, http_reply *r);
void api_interrupt(api_ctx *a, http_reply *r);
/* what clients probe for that this server has none of: [] (upscalers, sd-vae ...), {} (/internal/ping) */
void api_empty(int list, http_reply *r);

/* ---- the page (page.c) ---- */
/* Fill the page's defaults (sampler, the model's size) once, before serving. */
void page_init(const sdc_model_info *info);
const char *page_html(size_t *len);

/* ---- the server (server.c) ---- */
/* Serve until SIGINT/SIGTERM (which the caller has blocked in every thread). */
int server_run(sdc_model *m, const char *model_path, const server_config *cfg);

#endif
