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
    if (id->device) jb_puts(b, ",\n  \"device\": "), jb_str(b, id->device);
    if (id->dtype) jb_puts(b, ",\n  \"dtype\": "), jb_str(b, id->dtype);
    if (id->nloras) { /* one line, so a differing LoRA is reported as the whole list */
        jb_puts(b, ",\n  \"loras\": [");
        for (int i = 0; i < id->nloras; i++) {
            jb_puts(b, i ? ", {\"name\": " : "{\"name\": ");
            jb_str(b, id->loras[i].name);
            jb_puts(b, ", \"scale\": ");
            jb_float(b, id->loras[i].scale);
            jb_printf(b, ", \"fingerprint\": \"%016llx\"}", (unsigned long long)id->loras[i].fingerprint);
        }
        jb_puts(b, "]");
    }
    jb_puts(b, ",\n  \"format\": ");
    jb_str(b, id->format);
    jb_printf(b, ",\n  \"shard_size\": %d,\n  \"batch_size\": %d,\n", id->shard_size, id->batch_size);
    jb_printf(b, "  \"images_per_prompt\": %d,\n  \"seed\": %llu,\n", id->images_per_prompt,
              (unsigned long long)id->seed);
    if (id->rng) jb_puts(b, "  \"rng\": "), jb_str(b, id->rng), jb_puts(b, ",\n");
    jb_puts(b, "  \"negative_prompt\": ");
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
    if (id->schedule) jb_puts(b, ",\n  \"schedule\": "), jb_str(b, id->schedule);
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

/* the line at *p (without its newline): its start and length; advances *p */
static const char *next_line(const char **p, size_t *len) {
    const char *s = *p, *e = strchr(s, '\n');
    *len = e ? (size_t)(e - s) : strlen(s);
    *p = e ? e + 1 : s + *len;
    return s;
}

/* `  "key": value,` into key and value (without the comma); 0 when the line is not one key */
static int split_line(const char *line, char *key, size_t kn, char *val, size_t vn) {
    const char *colon = strstr(line, "\": ");
    if (strncmp(line, "  \"", 3) || !colon || colon < line + 3) return 0;
    snprintf(key, kn, "%.*s", (int)(colon - line - 3), line + 3);
    snprintf(val, vn, "%s", colon + 3);
    size_t x = strlen(val);
    if (x && val[x - 1] == ',') val[x - 1] = 0;
    return 1;
}

/* does the config text have a top-level line for key? */
static int has_key(const char *text, const char *key) {
    char needle[300];
    snprintf(needle, sizeof needle, "\n  \"%s\": ", key);
    return strstr(text, needle) != NULL;
}

/* keys written only with values other than their defaults */
static int is_optional(const char *key) {
    return !strcmp(key, "rng") || !strcmp(key, "device") || !strcmp(key, "dtype") || !strcmp(key, "loras");
}

/* la (this run's line) differs from lb (the stored one) */
static sdc_status difference(const char *dir, const char *want, const char *text, const char *la, const char *lb) {
    char ka[256], kb[256], va[4096], vb[4096];
    int a = split_line(la, ka, sizeof ka, va, sizeof va), b = split_line(lb, kb, sizeof kb, vb, sizeof vb);
    if (a && b && !strcmp(ka, kb)) {
        const char *hint = !strcmp(ka, "prompts_digest")      ? " (the prompts file differs)"
                           : !strcmp(ka, "model_fingerprint") ? " (the model files differ)"
                                                              : "";
        return sdc_fail(SDC_ERR_ARG, "%s holds a different data set: it was made with %s %s, this run has %s%s "
                        "(use another --out folder, or the original arguments)", dir, ka, vb, va, hint);
    }
    /* a key only one side has: the optional keys are written only when not the default */
    if (a && b && is_optional(kb) && !has_key(want, kb))
        return sdc_fail(SDC_ERR_ARG, "%s holds a different data set: it was made with %s %s, this run has none (the "
                        "default) (use another --out folder, or the original arguments)", dir, kb, vb);
    if (a && b && is_optional(ka) && !has_key(text, ka))
        return sdc_fail(SDC_ERR_ARG, "%s holds a different data set: it was made with no %s (the default), this run "
                        "has %s (use another --out folder, or the original arguments)", dir, ka, va);
    if (a && b)
        return sdc_fail(SDC_ERR_ARG, "%s/%s is not a data set config this sdc can continue: it has '%s: %s' where this "
                        "run has '%s: %s'", dir, DS_CONFIG_NAME, kb, vb, ka, va);
    return sdc_fail(SDC_ERR_ARG, "%s/%s is not a data set config this sdc can continue (line '%s')", dir,
                    DS_CONFIG_NAME, lb);
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
    while (*a) { /* whole lines: a long negative prompt or LoRA list may differ only at its end */
        size_t na, nb;
        const char *pa = next_line(&a, &na), *pb = next_line(&b, &nb);
        if (na != nb || memcmp(pa, pb, na)) {
            char la[4400], lb[4400];
            snprintf(la, sizeof la, "%.*s", (int)(na < sizeof la ? na : sizeof la - 1), pa);
            snprintf(lb, sizeof lb, "%.*s", (int)(nb < sizeof lb ? nb : sizeof lb - 1), pb);
            st = difference(dir, want.p, text, la, lb);
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
