/* api_misc.c - the small A1111 endpoints: sd-models, samplers, schedulers,
 * options (GET, and a POST whose sd_model_checkpoint switches the model),
 * progress, png-info and interrupt. Shapes follow A1111's
 * modules/api/models.py. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json_util.h"
#include "sampler_map.h"
#include "server.h"

void api_option_checkpoint(api_ctx *a, char *path, size_t np, char *title, size_t nt) {
    pthread_mutex_lock(&a->opt_mu);
    if (path) snprintf(path, np, "%s", a->option_path);
    if (title) snprintf(title, nt, "%s", a->option_title);
    pthread_mutex_unlock(&a->opt_mu);
}

void api_set_option_checkpoint(api_ctx *a, const ms_entry *e) {
    pthread_mutex_lock(&a->opt_mu);
    snprintf(a->option_path, sizeof a->option_path, "%s", e->path);
    snprintf(a->option_title, sizeof a->option_title, "%s", e->title);
    pthread_mutex_unlock(&a->opt_mu);
}

/* A1111's checkpoint list; hash and sha256 stay null as in A1111 until it has
 * hashed a file (hashing gigabytes at every listing is not worth it) */
void api_sd_models(api_ctx *a, http_reply *r) {
    cJSON *list = cJSON_CreateArray();
    ms_read_lock(a->models);
    for (int i = 0; list && i < ms_count(a->models); i++) {
        const ms_entry *e = ms_at(a->models, i);
        cJSON *m = cJSON_CreateObject();
        if (!m) break;
        cJSON_AddStringToObject(m, "title", e->title);
        cJSON_AddStringToObject(m, "model_name", e->model_name);
        cJSON_AddNullToObject(m, "hash");
        cJSON_AddNullToObject(m, "sha256");
        cJSON_AddStringToObject(m, "filename", e->path);
        cJSON_AddNullToObject(m, "config");
        cJSON_AddItemToArray(list, m);
    }
    ms_read_unlock(a->models);
    reply_json(r, 200, list);
}

void api_samplers(api_ctx *a, http_reply *r) {
    (void)a;
    cJSON *list = cJSON_CreateArray();
    for (int i = 0; list && i < sdc_sampler_count(); i++) {
        const sdc_sampler_info *s = sdc_sampler_at(i);
        cJSON *o = cJSON_CreateObject();
        if (!o) break;
        cJSON_AddStringToObject(o, "name", s->a1111_name);
        cJSON *al = cJSON_AddArrayToObject(o, "aliases");
        for (int k = 0; s->a1111_aliases && s->a1111_aliases[k]; k++)
            cJSON_AddItemToArray(al, cJSON_CreateString(s->a1111_aliases[k]));
        cJSON *opt = cJSON_AddObjectToObject(o, "options");
        if (s->a1111_option_key)
            cJSON_AddBoolToObject(opt, s->a1111_option_key, !strcmp(s->a1111_option_value, "true"));
        cJSON_AddItemToArray(list, o);
    }
    reply_json(r, 200, list);
}

/* exactly the schedule types txt2img accepts: the library's table */
void api_schedulers(api_ctx *a, http_reply *r) {
    (void)a;
    cJSON *list = cJSON_CreateArray();
    for (int i = 0; list && i < sdc_schedule_count(); i++) {
        const sdc_schedule_info *s = sdc_schedule_at(i);
        cJSON *o = cJSON_CreateObject();
        if (!o) break;
        cJSON_AddStringToObject(o, "name", s->name);
        cJSON_AddStringToObject(o, "label", s->label);
        if (s->aliases) {
            cJSON *al = cJSON_AddArrayToObject(o, "aliases");
            for (int k = 0; s->aliases[k]; k++) cJSON_AddItemToArray(al, cJSON_CreateString(s->aliases[k]));
        } else {
            cJSON_AddNullToObject(o, "aliases");
        }
        cJSON_AddNumberToObject(o, "default_rho", s->default_rho);
        cJSON_AddBoolToObject(o, "need_inner_model", s->need_inner_model);
        cJSON_AddItemToArray(list, o);
    }
    reply_json(r, 200, list);
}

void api_options_get(api_ctx *a, http_reply *r) {
    cJSON *o = cJSON_CreateObject();
    char title[1024];
    api_option_checkpoint(a, NULL, 0, title, sizeof title);
    if (o) {
        cJSON_AddStringToObject(o, "sd_model_checkpoint", title);
        cJSON_AddNullToObject(o, "sd_checkpoint_hash");
        cJSON_AddStringToObject(o, "sd_vae", "Automatic");
        cJSON_AddStringToObject(o, "samples_format", "png");
        cJSON_AddNumberToObject(o, "CLIP_stop_at_last_layers", 1);
        cJSON_AddNumberToObject(o, "eta_ddim", 0);
        cJSON_AddNumberToObject(o, "eta_ancestral", 1);
        cJSON_AddTrueToObject(o, "enable_pnginfo");
        jq_options q;
        jq_get_options(a->queue, &q);
        cJSON_AddBoolToObject(o, "live_previews_enable", q.live_previews);
        cJSON_AddNumberToObject(o, "show_progress_every_n_steps", q.every);
        cJSON_AddBoolToObject(o, "show_progress_grid", q.grid);
        cJSON_AddStringToObject(o, "show_progress_type", "TAESD"); /* sdc's only preview method */
        cJSON_AddStringToObject(o, "sd_vae_decode_method", a->has_taesd && q.taesd_decode ? "TAESD" : "Full");
        cJSON_AddBoolToObject(o, "pad_cond_uncond", __atomic_load_n(&a->pad_cond_uncond, __ATOMIC_RELAXED));
    }
    reply_json(r, 200, o);
}

/* sd_vae_decode_method: "Full" or "TAESD" (which needs the model's TAESD); 0 with a 422 reply otherwise */
int api_vae_decode_method(const api_ctx *a, const char *key, const char *v, int *taesd, http_reply *r) {
    if (!strcmp(v, "Full")) {
        *taesd = 0;
        return 1;
    }
    if (!strcmp(v, "TAESD") && a->has_taesd) {
        *taesd = 1;
        return 1;
    }
    if (!strcmp(v, "TAESD"))
        reply_invalid(r, "%s: TAESD needs a server started with --taesd", key);
    else
        reply_invalid(r, "%s: expected Full or TAESD, got '%.40s'", key, v);
    return 0;
}

/* the live-preview and decode options, checked all before any is applied */
static int options_previews(api_ctx *a, const cJSON *req, http_reply *r) {
    jq_options o;
    jq_get_options(a->queue, &o);
    const char *method = NULL;
    if (!field_bool(req, "live_previews_enable", &o.live_previews, r) ||
        !field_int(req, "show_progress_every_n_steps", -1, SDC_MAX_STEPS, &o.every, r) ||
        !field_bool(req, "show_progress_grid", &o.grid, r) || !field_string(req, "sd_vae_decode_method", &method, r))
        return 0;
    if (method && !api_vae_decode_method(a, "sd_vae_decode_method", method, &o.taesd_decode, r)) return 0;
    jq_set_options(a->queue, &o);
    return 1;
}

/* Clients (Open WebUI, SillyTavern, webuiapi's util_set_model) POST the
 * checkpoint they want: it is loaded (behind the jobs already queued) before
 * the answer, as A1111 does, and becomes the model of later jobs. An unknown
 * name is a 422, a model that fails to load a 500 naming why (the previous
 * model stays). The live-preview options and sd_vae_decode_method
 * are applied to jobs that start afterwards; other keys are ignored. */
void api_options_post(api_ctx *a, const char *body, size_t len, http_reply *r) {
    cJSON *req;
    if (!req_body_parse(body, len, "of option names and values", &req, r)) return;
    const cJSON *ck = cJSON_GetObjectItemCaseSensitive(req, "sd_model_checkpoint");
    if (ck && !cJSON_IsNull(ck)) {
        const char *want = cJSON_IsString(ck) ? ck->valuestring : NULL;
        jq_job *j = calloc(1, sizeof *j);
        ms_entry e = {0};
        char title[1024];
        ms_read_lock(a->models);
        const ms_entry *f = want && j ? ms_find(a->models, want) : NULL;
        if (f) {
            snprintf(j->model_path, sizeof j->model_path, "%s", f->path);
            snprintf(title, sizeof title, "%s", f->title);
        }
        ms_read_unlock(a->models);
        if (!j) {
            reply_error(r, 500, "MemoryError", "out of memory");
        } else if (!f) {
            reply_invalid(r, "model '%.200s' not found (see /sdapi/v1/sd-models)", want ? want : "(not a string)");
        } else {
            int res = jq_run(a->queue, j); /* n_iter 0: load only */
            if (res == JQ_FULL) {
                reply_error(r, 503, "HTTPException", "the queue is full (%d jobs waiting); try again later",
                            a->cfg->queue);
            } else if (res == JQ_SHUTDOWN) {
                reply_error(r, 503, "HTTPException", "the server is shutting down");
            } else if (j->st) {
                reply_error(r, 500, "RuntimeError", "cannot load '%s': %s", title, j->error);
            } else {
                e.path = j->model_path, e.title = title;
                api_set_option_checkpoint(a, &e);
            }
        }
        free(j);
        if (r->status) {
            cJSON_Delete(req);
            return;
        }
    }
    if (!options_previews(a, req, r)) {
        cJSON_Delete(req);
        return;
    }
    const cJSON *pad = cJSON_GetObjectItemCaseSensitive(req, "pad_cond_uncond"); /* kept for later requests */
    if (pad && !cJSON_IsNull(pad) && !cJSON_IsBool(pad)) {
        cJSON_Delete(req);
        reply_invalid(r, "pad_cond_uncond: expected true or false");
        return;
    }
    if (cJSON_IsBool(pad)) __atomic_store_n(&a->pad_cond_uncond, cJSON_IsTrue(pad), __ATOMIC_RELAXED);
    cJSON_Delete(req);
    reply_json(r, 200, cJSON_CreateNull());
}

/* A1111's progressapi: 0.01 + job_no/job_count + step/steps/job_count, eta from the elapsed time */
void api_progress(api_ctx *a, int skip_image, http_reply *r) {
    jq_progress p;
    jq_get_progress(a->queue, &p);
    double progress = 0, eta = 0;
    char text[160];
    int has_text = 0;
    if (p.busy && p.job_count > 0) {
        progress = 0.01 + (double)p.job_no / p.job_count;
        if (p.sampling_steps > 0) progress += (double)p.sampling_step / p.sampling_steps / p.job_count;
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        double elapsed = (double)t.tv_sec + 1e-9 * (double)t.tv_nsec - p.time_start;
        eta = elapsed / progress - elapsed;
        if (progress > 1) progress = 1;
        int o = snprintf(text, sizeof text, "Batch %d of %d", p.job_no + 1, p.job_count);
        if (p.sampling_steps > 0)
            o += snprintf(text + o, sizeof text - (size_t)o, ", step %d of %d", p.sampling_step, p.sampling_steps);
        if (p.waiting) snprintf(text + o, sizeof text - (size_t)o, ", %d waiting", p.waiting);
        has_text = 1;
    } else if (p.waiting) {
        snprintf(text, sizeof text, "%d waiting", p.waiting);
        has_text = 1;
    }
    cJSON *o = cJSON_CreateObject(), *s = o ? cJSON_CreateObject() : NULL;
    if (!s) {
        cJSON_Delete(o);
        reply_json(r, 500, NULL);
        return;
    }
    cJSON_AddNumberToObject(o, "progress", progress);
    cJSON_AddNumberToObject(o, "eta_relative", isfinite(eta) ? eta : 0);
    cJSON_AddBoolToObject(s, "skipped", p.busy && p.skipped);
    cJSON_AddBoolToObject(s, "interrupted", p.interrupted);
    cJSON_AddFalseToObject(s, "stopping_generation");
    cJSON_AddStringToObject(s, "job", p.busy ? "txt2img" : "");
    cJSON_AddNumberToObject(s, "job_count", p.busy ? p.job_count : 0);
    cJSON_AddStringToObject(s, "job_timestamp", p.job_timestamp[0] ? p.job_timestamp : "0");
    cJSON_AddNumberToObject(s, "job_no", p.busy ? p.job_no : 0);
    cJSON_AddNumberToObject(s, "sampling_step", p.busy ? p.sampling_step : 0);
    cJSON_AddNumberToObject(s, "sampling_steps", p.busy ? p.sampling_steps : 0);
    cJSON_AddNumberToObject(s, "queue_waiting", p.waiting);
    cJSON_AddItemToObject(o, "state", s);
    char *img = skip_image ? NULL : jq_current_image(a->queue);
    if (img) cJSON_AddStringToObject(o, "current_image", img);
    else cJSON_AddNullToObject(o, "current_image");
    free(img);
    if (has_text) cJSON_AddStringToObject(o, "textinfo", text);
    else cJSON_AddNullToObject(o, "textinfo");
    cJSON_AddNullToObject(o, "current_task");
    reply_json(r, 200, o);
}

/* The infotext of a PNG: only its chunks are read (sdc_png_decode without
 * pixels), the text is capped at SDC_PNG_TEXT_MAX bytes inflated, and comes
 * back as UTF-8 (see sdc.h), so any PNG costs about its own size. */
/* the library's parse of an infotext as A1111's png-info "parameters" object; NULL when out of memory */
static cJSON *infotext_object(const char *text) {
    sdc_infotext it;
    if (sdc_infotext_parse(text, &it)) return NULL;
    cJSON *o = cJSON_CreateObject();
    for (int i = 0; o && i < it.n; i++)
        if (!cJSON_AddStringToObject(o, it.keys[i], it.values[i])) cJSON_Delete(o), o = NULL;
    sdc_infotext_free(&it);
    return o;
}

void api_png_info(api_ctx *a, const char *body, size_t len, http_reply *r) {
    (void)a;
    cJSON *req;
    const char *img = NULL;
    if (!req_body_parse(body, len, "{\"image\": \"<base64 PNG>\"}", &req, r)) return;
    if (!field_string(req, "image", &img, r)) {
        cJSON_Delete(req);
        return;
    }
    if (!img) {
        cJSON_Delete(req);
        reply_invalid(r, "image: field required");
        return;
    }
    if (!strncmp(img, "data:", 5)) { /* data:image/png;base64,.... */
        const char *comma = strchr(img, ',');
        img = comma ? comma + 1 : img + strlen(img);
    }
    uint8_t *png = NULL;
    size_t png_n = 0;
    char *params = NULL;
    if (b64_decode(img, strlen(img), &png, &png_n)) {
        reply_invalid(r, "image: not valid base64");
    } else if (sdc_png_decode(png, png_n, NULL, NULL, NULL, &params)) {
        reply_invalid(r, "image: %s (this server reads PNG infotexts only)", sdc_last_error());
    } else {
        cJSON *o = cJSON_CreateObject(), *parsed = infotext_object(params);
        if (o && parsed) {
            cJSON_AddStringToObject(o, "info", params ? params : "");
            cJSON_AddItemToObject(o, "items", cJSON_CreateObject());
            cJSON_AddItemToObject(o, "parameters", parsed);
            parsed = NULL;
        }
        cJSON_Delete(parsed);
        reply_json(r, 200, o);
    }
    free(params);
    free(png);
    cJSON_Delete(req);
}

void api_empty(int list, http_reply *r) { reply_json(r, 200, list ? cJSON_CreateArray() : cJSON_CreateObject()); }

void api_interrupt(api_ctx *a, http_reply *r) {
    jq_interrupt(a->queue);
    reply_json(r, 200, cJSON_CreateObject());
}
