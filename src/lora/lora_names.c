/* lora_names.c - which parameter a LoRA module name means. kohya writes
 * module paths with '.' replaced by '_', which cannot be undone by string
 * rules ("to_out_0" vs "proj_in"), so the table goes the other way: every
 * parameter "<module>.weight" the component took is entered under each
 * spelling a file may use (diffusers/HF path with '.' and with '_'; for the
 * UNet also the LDM/SGM path both ways, convert/ldm_keymap.h). */
#include <stdlib.h>
#include <string.h>

#include "family/ldm_keymap.h"
#include "lora/lora_internal.h"

static sdc_status add(lora_index *ix, int *cap, const char *key, const char *param) {
    if (ix->n == *cap) {
        int c = *cap ? 2 * *cap : 1024;
        lora_name *v = realloc(ix->v, (size_t)c * sizeof *v);
        if (!v) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
        ix->v = v;
        *cap = c;
    }
    if (!(ix->v[ix->n].key = strdup(key))) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    ix->v[ix->n++].param = param;
    return SDC_OK;
}

/* module and its '_' spelling */
static sdc_status add_both(lora_index *ix, int *cap, const char *module, const char *param) {
    SDC_TRY(add(ix, cap, module, param));
    if (!strchr(module, '.')) return SDC_OK;
    char u[512];
    size_t n = strlen(module);
    if (n >= sizeof u) return SDC_OK;
    for (size_t i = 0; i <= n; i++) u[i] = module[i] == '.' ? '_' : module[i];
    return add(ix, cap, u, param);
}

static int cmp_name(const void *a, const void *b) {
    const lora_name *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    if (c) return c;
    return x->param && y->param ? strcmp(x->param, y->param) : 0;
}

sdc_status lora_index_build(lora_index *ix, const weights *w, const unet_config *ldm_cfg) {
    memset(ix, 0, sizeof *ix);
    int cap = 0;
    static const char leaf[] = ".weight";
    const size_t nleaf = sizeof leaf - 1;
    sdc_status st = SDC_OK;
    for (int i = 0; !st && i < weights_slot_count(w); i++) {
        const char *p = weights_slot_name(w, i);
        size_t n = strlen(p);
        if (n <= nleaf || strcmp(p + n - nleaf, leaf) || n >= 512) continue;
        char module[512], ldm[512];
        memcpy(module, p, n - nleaf);
        module[n - nleaf] = 0;
        st = add_both(ix, &cap, module, p);
        if (!st && ldm_cfg && ldm_unet_name(ldm_cfg, module, ldm, sizeof ldm) && strcmp(ldm, module))
            st = add_both(ix, &cap, ldm, p);
    }
    if (st) {
        lora_index_free(ix);
        return st;
    }
    qsort(ix->v, (size_t)ix->n, sizeof *ix->v, cmp_name);
    /* one spelling, one parameter: drop repeats, mark clashes */
    int k = 0;
    for (int i = 0; i < ix->n; i++) {
        if (k && !strcmp(ix->v[k - 1].key, ix->v[i].key)) {
            if (ix->v[k - 1].param && strcmp(ix->v[k - 1].param, ix->v[i].param)) ix->v[k - 1].param = NULL;
            free(ix->v[i].key);
            continue;
        }
        ix->v[k++] = ix->v[i];
    }
    ix->n = k;
    return SDC_OK;
}

const char *lora_index_find(const lora_index *ix, const char *module, int *ambiguous) {
    lora_name key = {.key = (char *)module, .param = NULL};
    const lora_name *hit = ix->n ? bsearch(&key, ix->v, (size_t)ix->n, sizeof *ix->v, cmp_name) : NULL;
    if (ambiguous) *ambiguous = hit && !hit->param;
    return hit ? hit->param : NULL;
}

void lora_index_free(lora_index *ix) {
    for (int i = 0; i < ix->n; i++) free(ix->v[i].key);
    free(ix->v);
    memset(ix, 0, sizeof *ix);
}
