/* dataset_config.c - render and check DIR/sdc-dataset.json. */
#include "dataset/dataset_config.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "io/json.h"

/* settings first, so a changed flag is reported by name before the prompts digest */
static void identity(jbuf *b, const ds_identity *id) {
    jb_puts(b, "{\n  \"sdc_dataset\": 1,\n  \"model\": ");
    jb_str(b, id->model);
    jb_printf(b, ",\n  \"model_fingerprint\": \"%016llx\",\n  \"variant\": ", (unsigned long long)id->model_fingerprint);
    jb_str(b, id->variant);
    jb_puts(b, ",\n  \"format\": ");
    jb_str(b, id->format);
    jb_printf(b, ",\n  \"shard_size\": %d,\n  \"batch_size\": %d,\n", id->shard_size, id->batch_size);
    jb_printf(b, "  \"images_per_prompt\": %d,\n  \"seed\": %llu,\n  \"negative_prompt\": ", id->images_per_prompt,
              (unsigned long long)id->seed);
    jb_str(b, id->negative);
    jb_puts(b, ",\n  \"steps\": ");
    if (id->steps) jb_printf(b, "%d", id->steps);
    else jb_puts(b, "null");
    jb_puts(b, ",\n  \"guidance\": ");
    if (id->guidance >= 0) jb_float(b, id->guidance);
    else jb_puts(b, "null");
    jb_puts(b, ",\n  \"width\": ");
    if (id->width) jb_printf(b, "%d", id->width);
    else jb_puts(b, "null");
    jb_puts(b, ",\n  \"height\": ");
    if (id->height) jb_printf(b, "%d", id->height);
    else jb_puts(b, "null");
    jb_puts(b, ",\n  \"scheduler\": ");
    jb_str(b, id->scheduler);
    jb_puts(b, ",\n  \"timestep_spacing\": ");
    jb_str(b, id->timestep_spacing);
    jb_puts(b, ",\n  \"karras\": ");
    jb_puts(b, id->karras < 0 ? "null" : id->karras ? "true" : "false");
    jb_puts(b, ",\n  \"eta\": ");
    jb_float(b, id->eta);
    jb_printf(b, ",\n  \"clip_skip\": %d,\n", id->clip_skip);
    jb_printf(b, "  \"prompts_digest\": \"%016llx\",\n  \"prompts\": %d,\n  \"images\": %lld,\n",
              (unsigned long long)id->prompts_digest, id->nprompts, (long long)id->images);
}

void ds_config_render(jbuf *b, const ds_identity *id, const ds_resolved *res) {
    identity(b, id);
    jb_printf(b, "  \"resolved\": {\"steps\": %d, \"guidance\": ", res->steps);
    jb_float(b, res->guidance);
    jb_printf(b, ", \"width\": %d, \"height\": %d, \"scheduler\": ", res->width, res->height);
    jb_str(b, res->scheduler);
    jb_puts(b, "}\n}\n");
}

/* one line of text at *p (without its newline) into out[n]; advances *p */
static void next_line(const char **p, char *out, size_t n) {
    const char *s = *p, *e = strchr(s, '\n');
    size_t len = e ? (size_t)(e - s) : strlen(s);
    snprintf(out, n, "%.*s", (int)(len < n ? len : n - 1), s);
    *p = e ? e + 1 : s + len;
}

sdc_status ds_config_check(const char *dir, const char *text, const ds_identity *id, ds_resolved *res) {
    jbuf want = {0};
    identity(&want, id);
    if (want.oom) {
        jb_free(&want);
        return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    }
    const char *a = want.p, *b = text;
    sdc_status st = SDC_OK;
    while (*a) {
        char la[1024], lb[1024];
        next_line(&a, la, sizeof la);
        next_line(&b, lb, sizeof lb);
        if (strcmp(la, lb)) {
            const char *key = strchr(la, '"'), *colon = strstr(la, ": ");
            const char *vb = strstr(lb, ": ");
            int same_key = colon && vb && (colon - la) == (vb - lb) && !strncmp(la, lb, (size_t)(colon - la));
            if (same_key && key) {
                int kl = (int)(colon - key);
                char va[512], vv[512];
                snprintf(va, sizeof va, "%s", colon + 2);
                snprintf(vv, sizeof vv, "%s", vb + 2);
                size_t x = strlen(va), y = strlen(vv);
                if (x && va[x - 1] == ',') va[x - 1] = 0;
                if (y && vv[y - 1] == ',') vv[y - 1] = 0;
                const char *hint = !strncmp(key, "\"prompts_digest\"", 16)      ? " (the prompts file differs)"
                                   : !strncmp(key, "\"model_fingerprint\"", 19) ? " (the model files differ)"
                                                                                 : "";
                st = sdc_fail(SDC_ERR_ARG, "%s holds a different data set: it was made with %.*s %s, this run has %s%s "
                              "(use another --out folder, or the original arguments)", dir, kl - 2, key + 1, vv, va,
                              hint);
            } else {
                st = sdc_fail(SDC_ERR_ARG, "%s/%s is not a data set config this sdc can continue (line '%s')", dir,
                              DS_CONFIG_NAME, lb);
            }
            break;
        }
    }
    jb_free(&want);
    SDC_TRY(st);
    cJSON *j;
    char what[1100];
    snprintf(what, sizeof what, "%s/%s", dir, DS_CONFIG_NAME);
    SDC_TRY(json_parse(text, strlen(text), what, &j));
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(j, "resolved");
    long long steps = 0, w = 0, h = 0;
    double g = 0;
    const char *sched = NULL;
    st = r ? SDC_OK : sdc_fail(SDC_ERR_FORMAT, "%s: no \"resolved\" object", what);
    if (!st) st = json_get_int(r, "steps", 0, &steps, what);
    if (!st) st = json_get_num(r, "guidance", 0, &g, what);
    if (!st) st = json_get_int(r, "width", 0, &w, what);
    if (!st) st = json_get_int(r, "height", 0, &h, what);
    if (!st) st = json_get_str(r, "scheduler", "", &sched, what);
    if (!st && (steps < 1 || w < 8 || h < 8 || !*sched || strlen(sched) >= sizeof res->scheduler))
        st = sdc_fail(SDC_ERR_FORMAT, "%s: \"resolved\" values are out of range", what);
    if (!st) {
        res->steps = (int)steps;
        res->guidance = (float)g;
        res->width = (int)w;
        res->height = (int)h;
        snprintf(res->scheduler, sizeof res->scheduler, "%s", sched);
    }
    cJSON_Delete(j);
    return st;
}
