/* weights_component.c - a diffusers component's safetensors file(s) opened
 * as one weights object (nn/weights.h: weights_open_component). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/json.h"
#include "io/paths.h"
#include "nn/weights.h"

/* Open every distinct shard named in an index file's weight_map. */
static sdc_status open_index(weights *w, const char *dir, const char *index) {
    cJSON *j;
    SDC_TRY(json_load(index, &j));
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(j, "weight_map");
    if (!cJSON_IsObject(map)) {
        cJSON_Delete(j);
        return sdc_fail(SDC_ERR_FORMAT, "%s: no 'weight_map' object", index);
    }
    int cap = cJSON_GetArraySize(map), n = 0;
    char **paths = calloc((size_t)(cap ? cap : 1), sizeof(char *));
    sdc_status st = paths ? SDC_OK : sdc_fail(SDC_ERR_NOMEM, "out of memory");
    for (const cJSON *e = map->child; e && !st; e = e->next) {
        if (!cJSON_IsString(e) || strchr(e->valuestring, '/')) {
            st = sdc_fail(SDC_ERR_FORMAT, "%s: bad shard name for '%s'", index, e->string);
            break;
        }
        int seen = 0;
        char full[4096];
        snprintf(full, sizeof full, "%s/%s", dir, e->valuestring);
        for (int i = 0; i < n && !seen; i++) seen = !strcmp(paths[i], full);
        if (!seen && !(paths[n++] = strdup(full))) st = sdc_fail(SDC_ERR_NOMEM, "out of memory");
    }
    cJSON_Delete(j);
    if (!st) st = weights_open(w, (const char *const *)paths, n);
    for (int i = 0; i < n; i++) free(paths[i]);
    free(paths);
    return st;
}

sdc_status weights_open_component(weights *w, const char *dir, const char *base, const char *variant) {
    char p[4096];
    memset(w, 0, sizeof *w);
    if (!dir_exists(dir)) return sdc_fail(SDC_ERR_IO, "%s: component folder not found", dir);
    for (int pass = variant ? 0 : 1; pass < 2; pass++) {
        const char *v = pass == 0 ? variant : NULL;
        if (v) snprintf(p, sizeof p, "%s/%s.%s.safetensors", dir, base, v);
        else snprintf(p, sizeof p, "%s/%s.safetensors", dir, base);
        if (path_exists(p)) {
            const char *one[1] = {p};
            return weights_open(w, one, 1);
        }
        if (v) snprintf(p, sizeof p, "%s/%s.safetensors.index.%s.json", dir, base, v);
        else snprintf(p, sizeof p, "%s/%s.safetensors.index.json", dir, base);
        if (path_exists(p)) return open_index(w, dir, p);
    }
    snprintf(p, sizeof p, "%s/%s.bin", dir, base);
    if (path_exists(p))
        return sdc_fail(SDC_ERR_UNSUPPORTED,
                        "%s: only PyTorch pickle weights (.bin) found; sdc reads .safetensors (download the "
                        "safetensors files of this model, or convert them)", dir);
    return sdc_fail(SDC_ERR_IO, "%s: no %s.safetensors found", dir, base);
}
