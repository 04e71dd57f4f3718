/* api_txt2img.c - POST /sdapi/v1/txt2img: AUTOMATIC1111's request
 * (StableDiffusionTxt2ImgProcessingAPI: its fields and defaults; unknown
 * fields are ignored) -> one queued job -> A1111's TextToImageResponse
 * {images: [base64 PNG with the "parameters" infotext], parameters: the
 * request with defaults filled in, info: a JSON string (Processed.js())}. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api_img2img.h"
#include "json_util.h"
#include "sampler_map.h"
#include "server.h"

#define SEED_MAX 9007199254740991.0 /* 2^53 - 1: the largest integer a JSON number carries exactly */

/* A1111's defaults (modules/processing.py, modules/api/models.py) */
static cJSON *default_parameters(void) {
    cJSON *p = cJSON_CreateObject();
    if (!p) return NULL;
    cJSON_AddStringToObject(p, "prompt", "");
    cJSON_AddStringToObject(p, "negative_prompt", "");
    cJSON_AddNullToObject(p, "styles");
    cJSON_AddNumberToObject(p, "seed", -1);
    cJSON_AddNumberToObject(p, "subseed", -1);
    cJSON_AddNumberToObject(p, "subseed_strength", 0);
    cJSON_AddNumberToObject(p, "seed_resize_from_h", -1);
    cJSON_AddNumberToObject(p, "seed_resize_from_w", -1);
    cJSON_AddNullToObject(p, "sampler_name");
    cJSON_AddNullToObject(p, "scheduler");
    cJSON_AddNumberToObject(p, "batch_size", 1);
    cJSON_AddNumberToObject(p, "n_iter", 1);
    cJSON_AddNumberToObject(p, "steps", 50);
    cJSON_AddNumberToObject(p, "cfg_scale", 7.0);
    cJSON_AddNumberToObject(p, "width", 512);
    cJSON_AddNumberToObject(p, "height", 512);
    cJSON_AddNullToObject(p, "restore_faces");
    cJSON_AddNullToObject(p, "tiling");
    cJSON_AddFalseToObject(p, "do_not_save_samples");
    cJSON_AddFalseToObject(p, "do_not_save_grid");
    cJSON_AddNullToObject(p, "eta");
    cJSON_AddNullToObject(p, "override_settings");
    cJSON_AddStringToObject(p, "sampler_index", sampler_default()->a1111_name);
    cJSON_AddNullToObject(p, "script_name");
    cJSON_AddItemToObject(p, "script_args", cJSON_CreateArray());
    cJSON_AddTrueToObject(p, "send_images");
    cJSON_AddFalseToObject(p, "save_images");
    cJSON_AddItemToObject(p, "alwayson_scripts", cJSON_CreateObject());
    return p;
}

/* the request as A1111 echoes it: every field, the sent value where there is one */
static cJSON *echo_parameters(const cJSON *req) {
    cJSON *p = default_parameters();
    if (!p) return NULL;
    for (cJSON *f = p->child; f; f = f->next) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, f->string);
        if (!v || cJSON_IsNull(v)) continue;
        cJSON *copy = cJSON_Duplicate(v, 1);
        if (copy) cJSON_ReplaceItemViaPointer(p, f, copy), f = copy;
    }
    return p;
}

static uint64_t random_seed(void) {
    uint32_t v = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    if (!f || fread(&v, sizeof v, 1, f) != 1) v = (uint32_t)time(NULL) ^ (uint32_t)getpid();
    if (f) fclose(f);
    return v % 4294967294u; /* A1111: random.randrange(4294967294) */
}

typedef struct {
    const char *prompt, *negative, *sampler_name, *schedule_name;
    const char *checkpoint; /* override_settings.sd_model_checkpoint, NULL: the option's */
    int restore_afterwards; /* override_settings_restore_afterwards (A1111's default true) */
    double cfg_json;        /* cfg_scale as sent (a double: its decimals as written) */
    const char *rng; /* sdc's --rng for override_settings.randn_source; NULL: cpu */
    const char *vae_decode; /* override_settings.sd_vae_decode_method: "full", "taesd"; NULL: the server's */
    double seed;
    int steps, width, height, batch, n_iter, send_images, clip_skip;
    int pad_cond_uncond; /* /options' pad_cond_uncond, or override_settings' */
    float cfg, eta;
    const sdc_sampler_info *sampler;
    const sdc_schedule_info *schedule; /* NULL: Automatic */
} t2i_request;

/* The server's limits against the values the job will run with, whatever
 * set them: the request, override_settings, or A1111's defaults for what
 * the request leaves out (steps 50, 512x512: a server started with
 * --max-steps 20 refuses {"prompt": "x"} rather than run 50 steps). */
static int within_limits(const server_config *c, const cJSON *req, const t2i_request *t, http_reply *r) {
    struct {
        const char *name, *flag;
        int value, limit;
    } k[] = {{"steps", "--max-steps", t->steps, c->max_steps},
             {"width", "--max-size", t->width, c->max_side},
             {"height", "--max-size", t->height, c->max_side}};
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        if (k[i].value <= k[i].limit) continue;
        int sent = cJSON_GetObjectItemCaseSensitive(req, k[i].name) != NULL;
        reply_invalid(r, "%s %d%s is more than this server's %s %d", k[i].name, k[i].value,
                      sent ? "" : " (the default when the request leaves it out)", k[i].flag, k[i].limit);
        return 0;
    }
    return 1;
}

/* every field checked before anything is queued; 0 with a 4xx reply on the first bad one */
static int parse_request(const api_ctx *a, const cJSON *req, t2i_request *t, http_reply *r) {
    const server_config *c = a->cfg;
    *t = (t2i_request){.prompt = "",
                       .negative = "",
                       .seed = -1,
                       .steps = 50,
                       .width = 512,
                       .height = 512,
                       .batch = 1,
                       .n_iter = 1,
                       .send_images = 1,
                       .cfg = 7.0f,
                       .eta = 0.0f,
                       .cfg_json = 7.0,
                       .restore_afterwards = 1,
                       .pad_cond_uncond = __atomic_load_n(&a->pad_cond_uncond, __ATOMIC_RELAXED)};
    const char *sampler_index = NULL;
    if (!field_string(req, "prompt", &t->prompt, r) || !field_string(req, "negative_prompt", &t->negative, r) ||
        !field_int(req, "steps", 1, c->max_steps, &t->steps, r) ||
        !field_number(req, "cfg_scale", 0, 100, &t->cfg, r) || !field_int(req, "width", 8, c->max_side, &t->width, r) ||
        !field_int(req, "height", 8, c->max_side, &t->height, r) ||
        !field_int(req, "batch_size", 1, c->max_images, &t->batch, r) ||
        !field_int(req, "n_iter", 1, c->max_images, &t->n_iter, r) || !field_number(req, "eta", 0, 1, &t->eta, r) ||
        !field_bool(req, "send_images", &t->send_images, r) ||
        !field_string(req, "sampler_name", &t->sampler_name, r) ||
        !field_string(req, "sampler_index", &sampler_index, r) ||
        !field_string(req, "scheduler", &t->schedule_name, r) ||
        !field_bool(req, "override_settings_restore_afterwards", &t->restore_afterwards, r))
        return 0;
    const cJSON *cfgv = cJSON_GetObjectItemCaseSensitive(req, "cfg_scale");
    if (cJSON_IsNumber(cfgv)) t->cfg_json = cfgv->valuedouble;
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(req, "seed");
    if (seed && !cJSON_IsNull(seed)) {
        double d = cJSON_IsNumber(seed) ? seed->valuedouble : NAN;
        if (!isfinite(d) || d != floor(d) || d < -1 || d > SEED_MAX) {
            reply_invalid(r, "seed: expected -1 (random) or an integer in 0..%.0f", SEED_MAX);
            return 0;
        }
        t->seed = d;
    }
    if (t->width % 8 || t->height % 8) {
        reply_invalid(r, "width and height must be multiples of 8, got %dx%d", t->width, t->height);
        return 0;
    }
    if ((long)t->batch * t->n_iter > c->max_images) {
        reply_invalid(r, "batch_size x n_iter = %d images, more than this server's limit of %d",
                      t->batch * t->n_iter, c->max_images);
        return 0;
    }
    const cJSON *ovr = cJSON_GetObjectItemCaseSensitive(req, "override_settings");
    if (ovr && !cJSON_IsNull(ovr)) {
        if (!cJSON_IsObject(ovr)) {
            reply_invalid(r, "override_settings: expected an object");
            return 0;
        }
        if (!field_int(ovr, "CLIP_stop_at_last_layers", 1, SDC_MAX_CLIP_SKIP, &t->clip_skip, r) ||
            !field_bool(ovr, "pad_cond_uncond", &t->pad_cond_uncond, r))
            return 0;
        if (!field_string(ovr, "sd_model_checkpoint", &t->checkpoint, r)) return 0;
        /* A1111's "Random number generator source": GPU is torch's CUDA generator, NV its CPU
         * emulation of it (the same noise for latents), CPU torch's CPU generator */
        const char *src = NULL;
        if (!field_string(ovr, "randn_source", &src, r)) return 0;
        if (src) {
            if (!strcmp(src, "GPU") || !strcmp(src, "NV")) t->rng = "cuda";
            else if (!strcmp(src, "CPU")) t->rng = "cpu";
            else {
                reply_invalid(r, "override_settings.randn_source: expected GPU, CPU or NV, got '%.40s'", src);
                return 0;
            }
        }
        const char *method = NULL;
        int taesd;
        if (!field_string(ovr, "sd_vae_decode_method", &method, r)) return 0;
        if (method) {
            if (!api_vae_decode_method(a, "override_settings.sd_vae_decode_method", method, &taesd, r)) return 0;
            t->vae_decode = taesd ? "taesd" : "full";
        }
    }
    /* A1111: sampler_name, else sampler_index (default: sampler_default); a schedule in the name is the legacy
     * spelling */
    const char *sname = t->sampler_name && *t->sampler_name ? t->sampler_name
                        : sampler_index && *sampler_index   ? sampler_index
                                                            : sampler_default()->a1111_name;
    const sdc_schedule_info *automatic = sdc_schedule_find("automatic");
    t->schedule = NULL;
    if (!(t->sampler = sampler_find(sname, &t->schedule))) {
        const char *why = sampler_missing(sname);
        if (why) reply_error(r, 400, "HTTPException", "Sampler not available: '%.100s' is %s", sname, why);
        else reply_error(r, 400, "HTTPException", "Sampler not found: '%.100s' (see /sdapi/v1/samplers)", sname);
        return 0;
    }
    if (t->schedule_name && *t->schedule_name) {
        const sdc_schedule_info *k = sdc_schedule_find(t->schedule_name);
        if (!k) {
            reply_error(r, 400, "HTTPException", "Scheduler not found: '%.100s' (see /sdapi/v1/schedulers)",
                        t->schedule_name);
            return 0;
        }
        if (k != automatic) t->schedule = k; /* Automatic keeps a legacy name's Karras */
    }
    if (t->schedule && !sdc_sampler_takes_schedule(t->sampler, t->schedule)) {
        char names[512];
        sampler_takers(t->schedule, names, sizeof names);
        reply_invalid(r, "scheduler %s applies to the %s samplers, not to %s", t->schedule->label, names,
                      t->sampler->a1111_name);
        return 0;
    }
    return within_limits(c, req, t, r);
}

/* A Python float as json.dumps writes it: the shortest text that reads back
 * as the same double, with ".0" on whole numbers (A1111's cfg_scale is a
 * float: 7 is "7.0") */
static cJSON *python_float(double v) {
    char b[40];
    if (!isfinite(v)) return cJSON_CreateNull();
    for (int p = 1; p <= 17; p++) {
        snprintf(b, sizeof b, "%.*g", p, v);
        if (strtod(b, NULL) == v) break;
    }
    if (!strpbrk(b, ".eEn")) strcat(b, ".0");
    return cJSON_CreateRaw(b);
}

static cJSON *info_object(const api_ctx *a, const t2i_request *t, const jq_job *j, int nimg, char **infotexts,
                          const char *timestamp) {
    (void)a;
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    int total = t->batch * t->n_iter;
    cJSON *all_prompts = cJSON_AddArrayToObject(o, "all_prompts");
    cJSON *all_neg = cJSON_AddArrayToObject(o, "all_negative_prompts");
    cJSON *all_seeds = cJSON_AddArrayToObject(o, "all_seeds");
    cJSON *all_sub = cJSON_AddArrayToObject(o, "all_subseeds");
    for (int i = 0; i < total; i++) {
        cJSON_AddItemToArray(all_prompts, cJSON_CreateString(t->prompt));
        cJSON_AddItemToArray(all_neg, cJSON_CreateString(t->negative));
        cJSON_AddItemToArray(all_seeds, cJSON_CreateNumber((double)(j->req.seed + (uint64_t)i)));
        cJSON_AddItemToArray(all_sub, cJSON_CreateNumber((double)(j->req.seed + (uint64_t)i)));
    }
    cJSON_AddStringToObject(o, "prompt", t->prompt);
    cJSON_AddStringToObject(o, "negative_prompt", t->negative);
    cJSON_AddNumberToObject(o, "seed", (double)j->req.seed);
    cJSON_AddNumberToObject(o, "subseed", (double)j->req.seed);
    cJSON_AddNumberToObject(o, "subseed_strength", 0);
    cJSON_AddNumberToObject(o, "width", t->width);
    cJSON_AddNumberToObject(o, "height", t->height);
    cJSON_AddStringToObject(o, "sampler_name", t->sampler->a1111_name);
    cJSON_AddItemToObject(o, "cfg_scale", python_float(t->cfg_json));
    cJSON_AddNumberToObject(o, "steps", t->steps);
    cJSON_AddNumberToObject(o, "batch_size", t->batch);
    cJSON_AddFalseToObject(o, "restore_faces");
    cJSON_AddNullToObject(o, "face_restoration_model");
    cJSON_AddStringToObject(o, "sd_model_name", j->model_name);
    cJSON_AddNullToObject(o, "sd_model_hash");
    cJSON_AddNullToObject(o, "sd_vae_name");
    cJSON_AddNullToObject(o, "sd_vae_hash");
    cJSON_AddNumberToObject(o, "seed_resize_from_w", -1);
    cJSON_AddNumberToObject(o, "seed_resize_from_h", -1);
    if (j->req.init_image || j->req.hires_strength > 0)
        cJSON_AddNumberToObject(o, "denoising_strength", j->req.init_image ? j->req.strength : j->req.hires_strength);
    else
        cJSON_AddNullToObject(o, "denoising_strength");
    cJSON *extra = cJSON_AddObjectToObject(o, "extra_generation_params");
    if (t->schedule) cJSON_AddStringToObject(extra, "Schedule type", t->schedule->label);
    if (j->taesd_decoded) cJSON_AddStringToObject(extra, "VAE Decoder", "TAESD");
    cJSON_AddNumberToObject(o, "index_of_first_image", 0);
    cJSON *its = cJSON_AddArrayToObject(o, "infotexts");
    for (int i = 0; i < nimg; i++) cJSON_AddItemToArray(its, cJSON_CreateString(infotexts[i]));
    cJSON_AddItemToObject(o, "styles", cJSON_CreateArray());
    cJSON_AddStringToObject(o, "job_timestamp", timestamp);
    cJSON_AddNumberToObject(o, "clip_skip", t->clip_skip ? t->clip_skip : 1);
    cJSON_AddFalseToObject(o, "is_using_inpainting_conditioning");
    cJSON_AddStringToObject(o, "version", "sdc");
    cJSON_AddBoolToObject(o, "interrupted", j->interrupted);
    return o;
}

/* the finished job -> A1111's response (PNG encoding happens here, off the worker) */
static void build_response(const api_ctx *a, const cJSON *req, const t2i_request *t, jq_job *j, const i2i_prep *ip,
                           http_reply *r) {
    char *infotexts[64];
    int nimg = 0;
    cJSON *out = cJSON_CreateObject(), *images = out ? cJSON_AddArrayToObject(out, "images") : NULL;
    if (!images) goto oom;
    for (int it = 0; it < j->iterations_done; it++)
        for (int k = 0; k < j->nimages[it]; k++) {
            const sdc_image *im = &j->images[it][k];
            infotexts[nimg++] = im->infotext;
            if (ip && !i2i_finish(ip, &j->images[it][k])) goto oom; /* A1111's overlay outside the mask */
            if (!t->send_images) continue;
            void *png;
            size_t png_n;
            if (sdc_image_encode_png(im, &png, &png_n)) {
                cJSON_Delete(out);
                reply_error(r, 500, "RuntimeError", "%s", sdc_last_error());
                return;
            }
            char *b64 = b64_encode(png, png_n);
            free(png);
            cJSON *s = b64 ? cJSON_CreateString(b64) : NULL;
            free(b64);
            if (!s) goto oom;
            cJSON_AddItemToArray(images, s);
        }
    cJSON *params = echo_parameters(req);
    if (params) cJSON_ReplaceItemInObjectCaseSensitive(params, "cfg_scale", python_float(t->cfg_json));
    if (params) i2i_echo(params, req, ip != NULL);
    cJSON_AddItemToObject(out, "parameters", params);
    cJSON *info = info_object(a, t, j, nimg, infotexts, j->job_timestamp);
    char *info_s = info ? cJSON_PrintUnformatted(info) : NULL;
    cJSON_Delete(info);
    if (!info_s) goto oom;
    cJSON_AddStringToObject(out, "info", info_s);
    free(info_s);
    reply_json(r, 200, out);
    return;
oom:
    cJSON_Delete(out);
    reply_error(r, 500, "MemoryError", "out of memory while building the response");
}

/* txt2img, or img2img (ip: its init image, mask and overlay) */
static void generate(api_ctx *a, const char *body, size_t len, i2i_prep *ip, http_reply *r) {
    cJSON *req;
    if (!req_body_parse(body, len, NULL, &req, r)) return;
    t2i_request t;
    if (!parse_request(a, req, &t, r)) {
        cJSON_Delete(req);
        return;
    }
    jq_job *j = calloc(1, sizeof *j);
    if (!j) {
        cJSON_Delete(req);
        reply_error(r, 500, "MemoryError", "out of memory");
        return;
    }
    const char *prompt[1] = {t.prompt}, *negative[1] = {t.negative}; /* alive until jq_run returns */
    sdc_request *q = &j->req;
    sdc_request_init(q);
    q->prompts = prompt, q->nprompts = 1;
    if (*t.negative) q->negative_prompts = negative, q->nnegative = 1; /* "" is what sdc encodes without one */
    q->seed = t.seed < 0 ? random_seed() : (uint64_t)t.seed;
    q->steps = t.steps, q->width = t.width, q->height = t.height, q->batch = t.batch;
    q->guidance = t.cfg, q->eta = t.eta, q->clip_skip = t.clip_skip, q->rng = t.rng;
    q->scheduler = t.sampler->name;
    q->prompt_syntax = "a1111"; /* A1111's prompts: its syntax, its chunks, its clip skip */
    q->pad_cond_uncond = t.pad_cond_uncond;
    q->schedule = t.schedule ? t.schedule->name : NULL;
    q->vae_decode = t.vae_decode;
    q->lora_dir = a->cfg->lora_dir;
    j->n_iter = t.n_iter;
    if (ip ? !i2i_parse(req, t.width, t.height, q, ip, r) : !hires_parse(req, q, r)) {
        free(j);
        cJSON_Delete(req);
        return;
    }
    /* the model: override_settings' checkpoint, else the option's; checked now
     * when it is the resident one, else by the worker once it is loaded */
    char title[1024];
    api_option_checkpoint(a, j->model_path, sizeof j->model_path, title, sizeof title);
    ms_entry chosen = {0};
    ms_read_lock(a->models);
    const ms_entry *e = t.checkpoint && *t.checkpoint ? ms_find(a->models, t.checkpoint) : NULL;
    if (e) {
        snprintf(j->model_path, sizeof j->model_path, "%s", e->path);
        snprintf(title, sizeof title, "%s", e->title);
    }
    int checked = 1;
    const char *resident = ms_resident(a->models)->path;
    if (!(t.checkpoint && *t.checkpoint && !e) && resident && ms_model(a->models) && !strcmp(resident, j->model_path))
        checked = !sdc_request_check(ms_model(a->models), q);
    ms_read_unlock(a->models);
    if ((t.checkpoint && *t.checkpoint && !e) || !checked) { /* refused before it waits in the queue */
        if (!checked) reply_error(r, 422, "HTTPException", "%s", sdc_last_error());
        else
            reply_invalid(r,
                          "override_settings.sd_model_checkpoint: model '%.200s' not found (see /sdapi/v1/sd-models)",
                          t.checkpoint);
        free(j);
        if (ip) i2i_free(ip);
        cJSON_Delete(req);
        return;
    }
    int res = jq_run(a->queue, j);
    if (res == JQ_FULL) {
        reply_error(r, 503, "HTTPException", "the queue is full (%d jobs waiting); try again later", a->cfg->queue);
    } else if (res == JQ_SHUTDOWN || (j->interrupted && !j->iterations_done && jq_stopping(a->queue))) {
        reply_error(r, 503, "HTTPException", "the server is shutting down");
    } else if (j->load_failed) {
        reply_error(r, 500, "RuntimeError", "cannot load '%s': %s", title, j->error);
    } else if (j->st) {
        int client = j->st == SDC_ERR_ARG || j->st == SDC_ERR_UNSUPPORTED;
        reply_error(r, client ? 422 : 500, client ? "HTTPException" : "RuntimeError", "%s", j->error);
    } else {
        build_response(a, req, &t, j, ip, r);
        if (e && !t.restore_afterwards) { /* the override stays the option, as in A1111 */
            chosen.path = j->model_path, chosen.title = title;
            api_set_option_checkpoint(a, &chosen);
        }
    }
    jq_job_free_images(j);
    free(j);
    if (ip) i2i_free(ip);
    cJSON_Delete(req);
}

void api_txt2img(api_ctx *a, const char *body, size_t len, http_reply *r) { generate(a, body, len, NULL, r); }

void api_img2img(api_ctx *a, const char *body, size_t len, http_reply *r) {
    i2i_prep p;
    memset(&p, 0, sizeof p);
    generate(a, body, len, &p, r);
}
