/* lora_file.c - read a LoRA .safetensors file into modules: each key is
 * split into component prefix, module and part (down, up, alpha), in any of
 * the key families listed in lora.h. Resolving the module against the model
 * is lora_names.c's job; this file only knows how keys are spelled. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lora/lora_internal.h"

const char *lora_comp_name(lora_comp c) {
    static const char *names[] = {"unet", "text_encoder", "text_encoder_2"};
    return c >= 0 && c < LORA_NCOMP ? names[c] : "?";
}

static int ends_with(const char *s, size_t n, const char *suffix) {
    size_t k = strlen(suffix);
    return n >= k && !memcmp(s + n - k, suffix, k);
}

static int starts_with(const char *s, const char *prefix) { return !strncmp(s, prefix, strlen(prefix)); }

/* The part a key names and the length of its stem (the key without the part). */
static int split_part(const char *key, size_t *stem, int *attn_proc) {
    static const struct { const char *suffix; int part; } rules[] = {
        {".lora_down.weight", LORA_DOWN}, {".lora_up.weight", LORA_UP},
        {".lora_A.weight", LORA_DOWN},    {".lora_B.weight", LORA_UP},
        {".lora_linear_layer.down.weight", LORA_DOWN}, {".lora_linear_layer.up.weight", LORA_UP},
        {".lora.down.weight", LORA_DOWN}, {".lora.up.weight", LORA_UP},
        {".alpha", LORA_ALPHA},
        /* attention-processor naming: <attn>[.processor].to_q_lora.down.weight */
        {"_lora.down.weight", LORA_DOWN}, {"_lora.up.weight", LORA_UP},
    };
    size_t n = strlen(key);
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++)
        if (ends_with(key, n, rules[i].suffix)) {
            *stem = n - strlen(rules[i].suffix);
            *attn_proc = rules[i].suffix[0] == '_';
            return rules[i].part;
        }
    return -1;
}

/* UNet modules a prefix-less (old diffusers attn-processor) key may start with */
static int is_unet_path(const char *s) {
    return starts_with(s, "down_blocks.") || starts_with(s, "mid_block.") || starts_with(s, "up_blocks.");
}

/* Component and the offset of the module in stem; -1 for an unknown prefix. */
static int split_prefix(const char *stem, lora_comp *comp, size_t *off) {
    static const struct { const char *prefix; lora_comp comp; } rules[] = {
        {"lora_unet_", LORA_UNET},  {"lora_te1_", LORA_TE1},  {"lora_te2_", LORA_TE2}, {"lora_te_", LORA_TE1},
        {"unet.", LORA_UNET},       {"text_encoder_2.", LORA_TE2}, {"text_encoder.", LORA_TE1},
    };
    static const char peft[] = "base_model.model.";
    size_t skip = starts_with(stem, peft) ? strlen(peft) : 0;
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++)
        if (starts_with(stem + skip, rules[i].prefix)) {
            *comp = rules[i].comp;
            *off = skip + strlen(rules[i].prefix);
            if (starts_with(stem + *off, peft)) *off += strlen(peft);
            return 0;
        }
    if (is_unet_path(stem + skip)) {
        *comp = LORA_UNET;
        *off = skip;
        return 0;
    }
    return -1;
}

/* "<attn>[.processor].to_q" -> "<attn>.to_q" (UNet) or "<attn>.q_proj" (CLIP) */
static char *attn_proc_module(const char *m, size_t n, lora_comp comp) {
    static const char *leaves[][3] = {{"to_q", "to_q", "q_proj"},
                                      {"to_k", "to_k", "k_proj"},
                                      {"to_v", "to_v", "v_proj"},
                                      {"to_out", "to_out.0", "out_proj"}};
    const char *dot = NULL;
    for (size_t i = n; i > 0; i--)
        if (m[i - 1] == '.') {
            dot = m + i - 1;
            break;
        }
    if (!dot) return NULL;
    size_t head = (size_t)(dot - m), leaf = n - head - 1;
    if (head >= 10 && !memcmp(m + head - 10, ".processor", 10)) head -= 10;
    for (size_t i = 0; i < 4; i++)
        if (strlen(leaves[i][0]) == leaf && !memcmp(dot + 1, leaves[i][0], leaf)) {
            const char *to = leaves[i][comp == LORA_UNET ? 1 : 2];
            char *s = malloc(head + strlen(to) + 2);
            if (s) sprintf(s, "%.*s.%s", (int)head, m, to);
            return s;
        }
    return NULL;
}

typedef struct {
    lora_comp comp;
    char *module;
    int part;
    const st_tensor *t;
} item;

static int cmp_item(const void *a, const void *b) {
    const item *x = a, *y = b;
    if (x->comp != y->comp) return (int)x->comp - (int)y->comp;
    int c = strcmp(x->module, y->module);
    if (c) return c;
    if (x->part != y->part) return x->part - y->part;
    return strcmp(x->t->name, y->t->name);
}

static int cmp_module(const void *a, const void *b) {
    return strcmp(((const lora_module *)a)->key, ((const lora_module *)b)->key);
}

static sdc_status classify(const st_file *f, const st_tensor *t, item *it) {
    const char *key = t->name;
    size_t stem, off;
    int attn_proc;
    int part = split_part(key, &stem, &attn_proc);
    if (part < 0)
        return sdc_fail(SDC_ERR_UNSUPPORTED,
                        "%s: tensor '%s' is not a LoRA weight (expected .lora_down/.lora_up/.alpha, .lora_A/.lora_B "
                        "or .lora.down/.lora.up; LoHa, LoKr, DoRA and full-weight diffs are not supported)",
                        f->path, key);
    char *s = strndup(key, stem);
    if (!s) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    lora_comp comp;
    if (split_prefix(s, &comp, &off)) {
        free(s);
        return sdc_fail(SDC_ERR_FORMAT,
                        "%s: LoRA key '%s' has an unknown prefix (expected lora_unet_, lora_te_, lora_te1_, lora_te2_, "
                        "unet., text_encoder. or text_encoder_2.)", f->path, key);
    }
    char *module = attn_proc ? attn_proc_module(s + off, stem - off, comp) : strdup(s + off);
    free(s);
    if (!module) {
        if (attn_proc)
            return sdc_fail(SDC_ERR_FORMAT, "%s: LoRA key '%s': an attention-processor LoRA must name to_q, to_k, "
                            "to_v or to_out", f->path, key);
        return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    }
    if (!*module) {
        free(module);
        return sdc_fail(SDC_ERR_FORMAT, "%s: LoRA key '%s' names no module", f->path, key);
    }
    *it = (item){comp, module, part, t};
    return SDC_OK;
}

/* Fold the sorted items into modules; every module needs one down and one up. */
static sdc_status group(const st_file *f, item *v, int n, lora_module *mods, int *nmods) {
    int k = 0;
    for (int i = 0, j; i < n; i = j) {
        lora_module *m = &mods[k++];
        *nmods = k;
        memset(m, 0, sizeof *m);
        m->comp = v[i].comp;
        m->module = v[i].module; /* the module owns the string now */
        v[i].module = NULL;
        m->key = v[i].t->name;
        for (j = i; j < n && (j == i || (v[j].comp == m->comp && !strcmp(v[j].module, m->module))); j++) {
            const st_tensor *t = v[j].t;
            if (m->t[v[j].part])
                return sdc_fail(SDC_ERR_FORMAT, "%s: LoRA keys '%s' and '%s' are the same part of one module",
                                f->path, m->t[v[j].part]->name, t->name);
            m->t[v[j].part] = t;
            if (strcmp(t->name, m->key) < 0) m->key = t->name;
        }
    }
    qsort(mods, (size_t)k, sizeof *mods, cmp_module);
    for (int i = 0; i < k; i++) {
        const lora_module *m = &mods[i];
        if (!m->t[LORA_DOWN] || !m->t[LORA_UP])
            return sdc_fail(SDC_ERR_FORMAT, "%s: LoRA key '%s' has no matching %s weight", f->path, m->key,
                            m->t[LORA_DOWN] ? "up" : "down");
    }
    return SDC_OK;
}

sdc_status lora_file_modules(const st_file *f, lora_module **out, int *n) {
    *out = NULL;
    *n = 0;
    if (f->n == 0) return sdc_fail(SDC_ERR_FORMAT, "%s: the LoRA file holds no tensors", f->path);
    item *v = calloc((size_t)f->n, sizeof *v);
    lora_module *mods = calloc((size_t)f->n, sizeof *mods);
    sdc_status st = v && mods ? SDC_OK : sdc_fail(SDC_ERR_NOMEM, "out of memory");
    int nv = 0, nm = 0;
    for (int i = 0; !st && i < f->n; i++) /* f->tensors is sorted: the first bad key is reported */
        if (!(st = classify(f, &f->tensors[i], &v[nv]))) nv++;
    if (!st) {
        qsort(v, (size_t)nv, sizeof *v, cmp_item);
        st = group(f, v, nv, mods, &nm);
    }
    for (int i = 0; v && i < nv; i++) free(v[i].module);
    free(v);
    if (st) {
        lora_modules_free(mods, nm);
        return st;
    }
    *out = mods;
    *n = nm;
    return SDC_OK;
}

void lora_modules_free(lora_module *m, int n) {
    for (int i = 0; m && i < n; i++) free(m[i].module);
    free(m);
}
