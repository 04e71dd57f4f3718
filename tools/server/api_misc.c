/* api_misc.c - the small A1111 endpoints: sd-models, samplers, schedulers,
 * options (GET, and a POST that accepts only this server's own model),
 * progress, png-info and interrupt. Shapes follow A1111's
 * modules/api/models.py. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "infotext_parse.h"
#include "json_util.h"
#include "sampler_map.h"
#include "server.h"

void api_sd_models(api_ctx *a, http_reply *r) {
    cJSON *list = cJSON_CreateArray(), *m = cJSON_CreateObject();
    if (list && m) {
        cJSON_AddStringToObject(m, "title", a->model_name);
        cJSON_AddStringToObject(m, "model_name", a->model_name);
        cJSON_AddNullToObject(m, "hash");
        cJSON_AddNullToObject(m, "sha256");
        cJSON_AddStringToObject(m, "filename", a->model_path);
        cJSON_AddNullToObject(m, "config");
        cJSON_AddItemToArray(list, m);
        m = NULL;
    }
    cJSON_Delete(m);
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
    if (o) {
        cJSON_AddStringToObject(o, "sd_model_checkpoint", a->model_name);
        cJSON_AddNullToObject(o, "sd_checkpoint_hash");
        cJSON_AddStringToObject(o, "sd_vae", "Automatic");
        cJSON_AddStringToObject(o, "samples_format", "png");
        cJSON_AddNumberToObject(o, "CLIP_stop_at_last_layers", 1);
        cJSON_AddNumberToObject(o, "eta_ddim", 0);
        cJSON_AddNumberToObject(o, "eta_ancestral", 1);
        cJSON_AddTrueToObject(o, "enable_pnginfo");
    }
    reply_json(r, 200, o);
}

/* Clients (Open WebUI, SillyTavern) POST the checkpoint they want; this
 * server holds one model, so only that one is accepted, other keys are ignored. */
void api_options_post(api_ctx *a, const char *body, size_t len, http_reply *r) {
    cJSON *req;
    if (!req_body_parse(body, len, "of option names and values", &req, r)) return;
    const cJSON *ck = cJSON_GetObjectItemCaseSensitive(req, "sd_model_checkpoint");
    if (ck && !cJSON_IsNull(ck)) {
        const char *want = cJSON_IsString(ck) ? ck->valuestring : NULL;
        size_t n = strlen(a->model_name);
        /* A1111 titles look like "name [hash]"; the name part is what counts */
        if (!want || strncmp(want, a->model_name, n) || (want[n] && want[n] != ' ' && want[n] != '.')) {
            cJSON_Delete(req);
            reply_invalid(r, "model not found: this server holds only '%s'", a->model_name);
            return;
        }
    }
    cJSON_Delete(req);
    reply_json(r, 200, cJSON_CreateNull());
}

/* A1111's progressapi: 0.01 + job_no/job_count + step/steps/job_count, eta from the elapsed time */
void api_progress(api_ctx *a, http_reply *r) {
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
        int o = snprintf(text, sizeof text, "Batch %d of %d, step %d of %d", p.job_no + 1, p.job_count,
                         p.sampling_step, p.sampling_steps);
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
    cJSON_AddFalseToObject(s, "skipped");
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
    cJSON_AddNullToObject(o, "current_image");
    if (has_text) cJSON_AddStringToObject(o, "textinfo", text);
    else cJSON_AddNullToObject(o, "textinfo");
    cJSON_AddNullToObject(o, "current_task");
    reply_json(r, 200, o);
}

/* The infotext of a PNG: only its chunks are read (sdc_png_decode without
 * pixels), the text is capped at SDC_PNG_TEXT_MAX bytes inflated, and comes
 * back as UTF-8 (see sdc.h), so any PNG costs about its own size. */
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
        cJSON *o = cJSON_CreateObject(), *parsed = infotext_parse(params ? params : "");
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
