/* server.h - `sdc serve`: the pieces of the HTTP server and what they share.
 *   server.c       libmicrohttpd glue: routing, limits, basic auth, shutdown
 *   conn_guard.c   slow clients cut off, free slots kept, request memory budgeted
 *   job_queue.c    the one worker thread that owns the model, a bounded queue
 *   live_preview.c the live preview of the running job as a base64 PNG (/progress)
 *   api_txt2img.c  POST /sdapi/v1/txt2img and img2img (A1111 request -> job -> response)
 *   api_img2img.c  img2img / inpainting fields, A1111's overlay; txt2img's hires fix fields
 *   inpaint_prep.c A1111's pixel work: resize modes, mask blur, crop, fill, overlay
 *   api_misc.c     the small endpoints (models, samplers, progress, png-info (the library's
 *                  sdc_infotext_parse) ...)
 *   api_extra.c    what clients call besides (skip, loras, memory, cmd-flags ...)
 *   cors.c         which browser origins may call (--cors-allow-origins)
 *   sampler_map.c  A1111 sampler / schedule names <-> sdc schedulers
 *   json_util.c    replies, A1111-style errors, base64, typed JSON fields
 *   page.c         the web page at / (tools/server/page.html, embedded)
 * Handlers never touch libmicrohttpd: they fill an http_reply. */
#ifndef SDC_TOOLS_SERVER_H
#define SDC_TOOLS_SERVER_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "model_set.h"
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
    int preview_every;   /* live previews every N steps at start (0: off); needs a model with TAESD */
    const char *cors_origins; /* --cors-allow-origins: comma-separated, NULL: none */
    const char *cors_regex;   /* --cors-allow-origins-regex, NULL: none */
    const char *lora_dir;     /* --lora-dir: <lora:NAME:W> tags and /sdapi/v1/loras, NULL: none */
} server_config;

/* What a handler answers. body is malloc'd (NULL: empty). */
typedef struct {
    int status;
    char *body;
    size_t len;
    const char *content_type; /* NULL: application/json */
    const char *allow;        /* Allow header for 405 */
    int persistent_body;      /* body is static: do not free */
    int preflight;            /* an allowed CORS preflight: add the Access-Control-Allow-* headers */
} http_reply;

/* ---- the job queue (job_queue.c) ---- */

typedef struct job_queue job_queue;

/* One txt2img request as the worker runs it: n_iter calls of sdc_generate
 * with req (its strings are the request thread's, alive until jq_run
 * returns), image k of iteration i seeded req.seed + i*req.batch + k. */
typedef struct {
    sdc_request req;       /* checked with sdc_request_check before it is queued; its
                            * vae_decode is the request's override_settings.sd_vae_decode_method,
                            * NULL: the server's option */
    int n_iter;            /* 0: only make the model resident (POST /options) */
    char model_path[4096]; /* the model it runs on, made resident first */
    char model_name[256];  /* that model's name (sdc_model_info.name), set by the worker */
    int load_failed;       /* st is the model's load failure */
    /* results, filled by the worker */
    int result;            /* JQ_DONE, JQ_FULL, JQ_SHUTDOWN */
    int interrupted;       /* stopped early by /interrupt or shutdown */
    sdc_status st;         /* first failure, SDC_OK if none */
    char error[1024];
    sdc_image *images[64]; /* per iteration */
    int nimages[64];
    int iterations_done;
    int taesd_decoded;      /* the images were decoded by TAESD (A1111's "VAE Decoder": "TAESD") */
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
    int skipped;               /* the current iteration was skipped */
    double time_start;         /* CLOCK_REALTIME seconds when the job began */
    char job_timestamp[16];    /* YYYYmmddHHMMSS, A1111's format */
} jq_progress;

/* A1111's live-preview and decode options (GET/POST /sdapi/v1/options);
 * a job runs with the values in force when it starts. */
typedef struct {
    int live_previews; /* live_previews_enable */
    int every;         /* show_progress_every_n_steps: -1 none (A1111: only after the batch), 0 every step, N */
    int grid;          /* show_progress_grid: the whole batch as a grid, else its first image */
    int taesd_decode;  /* sd_vae_decode_method: 1 TAESD, 0 Full (the KL VAE) */
} jq_options;

int jq_start(job_queue **q, model_set *ms, int capacity, const jq_options *opt);
void jq_get_options(job_queue *q, jq_options *o);
void jq_set_options(job_queue *q, const jq_options *o);
/* The running job's latest live preview as base64 PNG (malloc'd), or NULL
 * when there is none (no job, previews off, none drawn yet). */
char *jq_current_image(job_queue *q);
/* Queue the job and wait for it; returns its result (JQ_FULL at once when
 * the queue is full, JQ_SHUTDOWN when the server is stopping). */
int jq_run(job_queue *q, jq_job *j);
void jq_interrupt(job_queue *q);
/* A1111's skip: the running iteration stops at its next step, the job goes
 * on with the next one (the skipped iteration has no images). */
void jq_skip(job_queue *q);
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
    model_set *models;
    int has_taesd; /* the models are loaded with --taesd: TAESD decodes and live previews */
    int pad_cond_uncond; /* A1111's option, set by POST /options (read and written with __atomic_*) */
    /* A1111's option sd_model_checkpoint: the model of jobs that name none */
    pthread_mutex_t opt_mu;
    char option_path[4096], option_title[1024];
} api_ctx;
/* the option's model: path and title copied out under opt_mu */
void api_option_checkpoint(api_ctx *a, char *path, size_t np, char *title, size_t nt);
void api_set_option_checkpoint(api_ctx *a, const ms_entry *e);

void api_txt2img(api_ctx *a, const char *body, size_t len, http_reply *r);
/* POST /sdapi/v1/img2img: txt2img's request plus A1111's img2img fields (api_img2img.c) */
void api_img2img(api_ctx *a, const char *body, size_t len, http_reply *r);
void api_sd_models(api_ctx *a, http_reply *r);
void api_samplers(api_ctx *a, http_reply *r);
void api_schedulers(api_ctx *a, http_reply *r);
void api_options_get(api_ctx *a, http_reply *r);
void api_options_post(api_ctx *a, const char *body, size_t len, http_reply *r);
/* skip_image: A1111's skip_current_image query parameter */
void api_progress(api_ctx *a, int skip_image, http_reply *r);
void api_png_info(api_ctx *a, const char *body, size_t len, http_reply *r);
/* A1111's sd_vae_decode_method value v ("Full" / "TAESD") -> *taesd; 0 with a 422 naming key */
int api_vae_decode_method(const api_ctx *a, const char *key, const char *v, int *taesd, http_reply *r);
void api_interrupt(api_ctx *a, http_reply *r);
/* api_extra.c: the endpoints A1111 clients call besides generation */
void api_skip(api_ctx *a, http_reply *r);
void api_loras(api_ctx *a, http_reply *r);
void api_refresh_checkpoints(api_ctx *a, http_reply *r);
void api_cmd_flags(api_ctx *a, http_reply *r);
void api_memory(api_ctx *a, http_reply *r);
void api_embeddings(api_ctx *a, http_reply *r);
void api_scripts(api_ctx *a, http_reply *r);
/* what clients probe for that this server has none of: [] (upscalers, sd-vae ...), {} (/internal/ping) */
void api_empty(int list, http_reply *r);

/* ---- live previews (live_preview.c) ---- */
/* images[n] as one base64 PNG: A1111's image_grid (round(sqrt(n)) rows,
 * black where the last row is short) when grid, else the first image.
 * NULL when out of memory. */
char *live_preview_b64(const sdc_image *images, int n, int grid);

/* ---- the page (page.c) ---- */
/* Fill the page's defaults (sampler, the model's size) once, before serving. */
void page_init(const sdc_model_info *info);
const char *page_html(size_t *len);

/* ---- the server (server.c) ---- */
/* Serve until SIGINT/SIGTERM (which the caller has blocked in every thread). */
int server_run(model_set *ms, const server_config *cfg);

#endif
