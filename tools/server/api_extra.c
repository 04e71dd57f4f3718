/* api_extra.c - the A1111 endpoints clients call besides generation: skip,
 * loras (the --lora-dir folder), refresh-checkpoints (the --models-dir
 * folder read again), cmd-flags (this server's settings under A1111's flag
 * names), memory (the process's RSS; device memory is not reported yet),
 * embeddings and scripts (sdc has none: A1111's empty shapes). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_util.h"
#include "server.h"

void api_skip(api_ctx *a, http_reply *r) {
    jq_skip(a->queue);
    reply_json(r, 200, cJSON_CreateNull()); /* A1111's skip returns None */
}

/* A1111's Lora extension: [{name, alias, path, metadata}]; alias is the
 * training's ss_output_name when the file has one, as A1111's default */
void api_loras(api_ctx *a, http_reply *r) {
    cJSON *list = cJSON_CreateArray();
    if (!a->cfg->lora_dir) {
        reply_json(r, 200, list);
        return;
    }
    sdc_lora_file *f;
    int n;
    if (sdc_lora_scan(a->cfg->lora_dir, &f, &n)) {
        cJSON_Delete(list);
        reply_error(r, 500, "RuntimeError", "%s", sdc_last_error());
        return;
    }
    for (int i = 0; list && i < n; i++) {
        cJSON *o = cJSON_CreateObject(), *meta = cJSON_Parse(f[i].metadata_json);
        if (!o) break;
        if (!cJSON_IsObject(meta)) cJSON_Delete(meta), meta = cJSON_CreateObject();
        const cJSON *alias = cJSON_GetObjectItemCaseSensitive(meta, "ss_output_name");
        cJSON_AddStringToObject(o, "name", f[i].name);
        cJSON_AddStringToObject(o, "alias",
                                cJSON_IsString(alias) && *alias->valuestring ? alias->valuestring : f[i].name);
        cJSON_AddStringToObject(o, "path", f[i].path);
        cJSON_AddItemToObject(o, "metadata", meta);
        cJSON_AddItemToArray(list, o);
    }
    sdc_lora_files_free(f, n);
    reply_json(r, 200, list);
}

void api_refresh_checkpoints(api_ctx *a, http_reply *r) {
    char err[1024];
    if (!ms_rescan(a->models, err, sizeof err)) {
        reply_error(r, 500, "RuntimeError", "%s", err);
        return;
    }
    reply_json(r, 200, cJSON_CreateNull());
}

static void add_str(cJSON *o, const char *k, const char *v) {
    if (v) cJSON_AddStringToObject(o, k, v);
    else cJSON_AddNullToObject(o, k);
}

/* A1111 answers vars(cmd_opts); these are sdc's settings under the names of
 * the A1111 flags that mean the same (credentials never leave the server) */
void api_cmd_flags(api_ctx *a, http_reply *r) {
    const server_config *c = a->cfg;
    cJSON *o = cJSON_CreateObject();
    if (o) {
        cJSON_AddTrueToObject(o, "api");
        cJSON_AddFalseToObject(o, "nowebui");
        cJSON_AddBoolToObject(o, "listen",
                              strcmp(c->host, "127.0.0.1") && strcmp(c->host, "localhost") && strcmp(c->host, "::1"));
        add_str(o, "server_name", c->host);
        cJSON_AddNumberToObject(o, "port", c->port);
        cJSON_AddBoolToObject(o, "api_auth",
                              c->auth != NULL); /* A1111 prints the secret; sdc says whether there is one */
        add_str(o, "cors_allow_origins", c->cors_origins);
        add_str(o, "cors_allow_origins_regex", c->cors_regex);
        ms_read_lock(a->models);
        add_str(o, "ckpt_dir", ms_dir(a->models));
        add_str(o, "ckpt", ms_resident(a->models)->path);
        cJSON_AddBoolToObject(o, "use_cpu", !strcmp(ms_info(a->models)->device, "cpu"));
        ms_read_unlock(a->models);
        add_str(o, "lora_dir", c->lora_dir);
        cJSON_AddNullToObject(o, "embeddings_dir");
        cJSON_AddNullToObject(o, "hypernetwork_dir");
        cJSON_AddNumberToObject(o, "api_server_stop", 0);
    }
    reply_json(r, 200, o);
}

/* a "Key:   N kB" line of a /proc file, in bytes (-1: absent) */
static double proc_kb(const char *path, const char *key) {
    FILE *f = fopen(path, "r");
    char line[256];
    double v = -1;
    size_t k = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, k) && line[k] == ':') v = atof(line + k + 1) * 1024.0;
    if (f) fclose(f);
    return v;
}

/* A1111: ram {free, used, total} with used the process's RSS and free
 * total - used (psutil's arithmetic there); cuda {error} without a GPU */
void api_memory(api_ctx *a, http_reply *r) {
    cJSON *o = cJSON_CreateObject(), *ram = cJSON_CreateObject(), *cuda = cJSON_CreateObject();
    if (!o || !ram || !cuda) {
        cJSON_Delete(o), cJSON_Delete(ram), cJSON_Delete(cuda);
        reply_error(r, 500, "MemoryError", "out of memory");
        return;
    }
    double rss = proc_kb("/proc/self/status", "VmRSS"), total = proc_kb("/proc/meminfo", "MemTotal");
    if (rss < 0 || total <= 0) {
        cJSON_AddStringToObject(ram, "error", "/proc is not readable");
    } else {
        cJSON_AddNumberToObject(ram, "free", total - rss);
        cJSON_AddNumberToObject(ram, "used", rss);
        cJSON_AddNumberToObject(ram, "total", total);
    }
    ms_read_lock(a->models);
    int on_cpu = !strcmp(ms_info(a->models)->device, "cpu");
    ms_read_unlock(a->models);
    cJSON_AddStringToObject(cuda, "error", on_cpu ? "unavailable" : "device memory is not reported by sdc yet");
    cJSON_AddItemToObject(o, "ram", ram);
    cJSON_AddItemToObject(o, "cuda", cuda);
    reply_json(r, 200, o);
}

void api_embeddings(api_ctx *a, http_reply *r) {
    (void)a;
    cJSON *o = cJSON_CreateObject();
    if (o) {
        cJSON_AddItemToObject(o, "loaded", cJSON_CreateObject());
        cJSON_AddItemToObject(o, "skipped", cJSON_CreateObject());
    }
    reply_json(r, 200, o);
}

void api_scripts(api_ctx *a, http_reply *r) {
    (void)a;
    cJSON *o = cJSON_CreateObject();
    if (o) {
        cJSON_AddItemToObject(o, "txt2img", cJSON_CreateArray());
        cJSON_AddItemToObject(o, "img2img", cJSON_CreateArray());
    }
    reply_json(r, 200, o);
}
