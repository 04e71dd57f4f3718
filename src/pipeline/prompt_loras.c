/* prompt_loras.c - AUTOMATIC1111's <lora:NAME:W> tags (prompt_loras.h,
 * sdc.h: sdc_prompt_loras). A1111 finds extra-network tags with the pattern
 * <(\w+):([^>]+)>, replaces each with "" and splits its arguments at ':'
 * (an argument with '=' is named); its Lora network reads NAME, then the
 * text encoders' multiplier (default 1), then the UNet's (default: the text
 * encoders'), or te= and unet=. sdc reads the same; the tags are found
 * as sdc_prompt_networks_parse finds them (a1111_network_tag_at). */
#include "pipeline/prompt_loras.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/a1111_prompt.h"

#define MAX_SCALE 100.0 /* as --lora's SCALE */

static sdc_status parse_scale(const char *s, size_t n, const char *tag, float *out) {
    char b[64], *end;
    if (n == 0 || n >= sizeof b)
        return sdc_fail(SDC_ERR_ARG, "LoRA tag '%s': '%.*s' is not a number", tag, (int)(n < 60 ? n : 60), s);
    memcpy(b, s, n);
    b[n] = 0;
    double v = strtod(b, &end);
    while (isspace((unsigned char)*end)) end++;
    if (end == b || *end || !isfinite(v) || fabs(v) > MAX_SCALE)
        return sdc_fail(SDC_ERR_ARG, "LoRA tag '%s': '%s' is not a scale in -%g..%g", tag, b, MAX_SCALE, MAX_SCALE);
    *out = (float)v;
    return SDC_OK;
}

/* args (between "TYPE:" and '>', n bytes) of the tag text `tag` -> t */
static sdc_status parse_args(const char *args, size_t n, const char *tag, sdc_lora_tag *t) {
    int npos = 0, have_te = 0, have_unet = 0;
    float pos[2] = {1, 1}, te = 1, unet = 1;
    for (size_t a = 0; a <= n;) {
        size_t b = a;
        while (b < n && args[b] != ':') b++;
        const char *item = args + a, *eq = memchr(item, '=', b - a);
        size_t len = b - a;
        if (eq && npos > 0) { /* named: te=, unet=, dyn= (A1111 reads names after the first item) */
            size_t kl = (size_t)(eq - item);
            if (kl == 2 && !strncmp(item, "te", 2)) {
                SDC_TRY(parse_scale(eq + 1, len - kl - 1, tag, &te));
                have_te = 1;
            } else if (kl == 4 && !strncmp(item, "unet", 4)) {
                SDC_TRY(parse_scale(eq + 1, len - kl - 1, tag, &unet));
                have_unet = 1;
            } else if (kl == 3 && !strncmp(item, "dyn", 3))
                return sdc_fail(SDC_ERR_UNSUPPORTED, "LoRA tag '%s': dyn= (rank truncation) is not supported", tag);
            else return sdc_fail(SDC_ERR_ARG, "LoRA tag '%s': unknown argument '%.*s'", tag, (int)kl, item);
        } else if (npos == 0) {
            if (!len || len >= sizeof t->name) return sdc_fail(SDC_ERR_ARG, "LoRA tag '%s' has no usable name", tag);
            memcpy(t->name, item, len);
            t->name[len] = 0;
            npos++;
        } else if (npos <= 2) {
            SDC_TRY(parse_scale(item, len, tag, &pos[npos - 1]));
            npos++;
        } else {
            return sdc_fail(SDC_ERR_UNSUPPORTED, "LoRA tag '%s': a fourth argument (dyn) is not supported", tag);
        }
        a = b + 1;
    }
    t->te = have_te ? te : pos[0];
    t->unet = have_unet ? unet : npos > 2 ? pos[1] : t->te;
    return SDC_OK;
}

sdc_status sdc_prompt_loras(const char *prompt, char **stripped, sdc_lora_tag *tags, int *ntags) {
    size_t n = strlen(prompt);
    char *out = stripped ? malloc(n + 1) : NULL;
    if (stripped && !out) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    size_t o = 0;
    int k = 0;
    sdc_status st = SDC_OK;
    for (size_t i = 0; i < n && !st;) {
        size_t w = 0, gti = a1111_network_tag_at(prompt, n, i, &w);
        const char *gt = gti ? prompt + gti : NULL;
        if (!gt) {
            if (out) out[o++] = prompt[i];
            i++;
            continue;
        }
        size_t tl = (size_t)(w - i - 1), end = (size_t)(gt - prompt) + 1;
        char tag[160];
        snprintf(tag, sizeof tag, "%.*s%s", (int)(end - i < 120 ? end - i : 120), prompt + i,
                 end - i > 120 ? "..." : "");
        if ((tl == 4 && !strncmp(prompt + i + 1, "lora", 4)) || (tl == 4 && !strncmp(prompt + i + 1, "lyco", 4))) {
            if (k == SDC_MAX_PROMPT_LORAS)
                st = sdc_fail(SDC_ERR_ARG, "more than %d LoRA tags in one prompt", SDC_MAX_PROMPT_LORAS);
            else if (!(st = parse_args(prompt + w + 1, (size_t)(gt - prompt) - w - 1, tag, &tags[k]))) k++;
        } else if (tl == 8 && !strncmp(prompt + i + 1, "hypernet", 8)) {
            st = sdc_fail(SDC_ERR_UNSUPPORTED, "'%s': hypernetworks are not supported", tag);
        } else { /* another extra network's tag, or text: kept */
            if (out) memcpy(out + o, prompt + i, end - i), o += end - i;
        }
        i = end;
    }
    if (st) {
        free(out);
        return st;
    }
    if (out) out[o] = 0, *stripped = out;
    *ntags = k;
    return SDC_OK;
}

static int same_tags(const sdc_lora_tag *a, int na, const sdc_lora_tag *b, int nb) {
    if (na != nb) return 0;
    for (int i = 0; i < na; i++)
        if (strcmp(a[i].name, b[i].name) || a[i].te != b[i].te || a[i].unet != b[i].unet) return 0;
    return 1;
}

sdc_status prompt_loras_begin(sdc_model *m, const sdc_request *r, prompt_loras *pl) {
    memset(pl, 0, sizeof *pl);
    pl->req = *r;
    pl->orig = r;
    if (!r->lora_dir) return m ? model_set_request_loras(m, NULL, 0) : SDC_OK;
    sdc_lora_tag first[SDC_MAX_PROMPT_LORAS], tags[SDC_MAX_PROMPT_LORAS];
    int nfirst = 0, any = 0;
    sdc_status st = SDC_OK;
    if (!(pl->stripped = calloc((size_t)(r->nprompts > 0 ? r->nprompts : 1), sizeof *pl->stripped)))
        return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    for (int p = 0; !st && p < r->nprompts; p++) {
        int nt;
        if ((st = sdc_prompt_loras(r->prompts[p], &pl->stripped[p], p ? tags : first, &nt))) break;
        if (p == 0) nfirst = nt;
        else if (!same_tags(first, nfirst, tags, nt))
            st = sdc_fail(SDC_ERR_ARG,
                          "prompts 1 and %d name different LoRA tags; one request fuses one set of LoRAs "
                          "(send them as separate requests)",
                          p + 1);
        any |= nt > 0;
    }
    for (int i = 0; !st && i < nfirst; i++) {
        st = sdc_lora_find(r->lora_dir, first[i].name, pl->paths[i], sizeof pl->paths[i]);
        pl->use[i] = (model_lora_use){.path = pl->paths[i], .te = first[i].te, .unet = first[i].unet};
    }
    pl->nuse = st ? 0 : nfirst;
    if (!st && any) pl->req.prompts = (const char *const *)pl->stripped;
    if (!st && m) st = model_set_request_loras(m, pl->use, pl->nuse);
    if (st) prompt_loras_end(pl);
    return st;
}

/* every infotext starts with the prompt and a newline (infotext.c): the
 * stripped prompt there becomes the prompt as written */
sdc_status prompt_loras_infotexts(const prompt_loras *pl, sdc_image *imgs, int n) {
    if (pl->req.prompts == pl->orig->prompts) return SDC_OK;
    for (int i = 0; i < n; i++) {
        int p = i / (pl->orig->batch > 0 ? pl->orig->batch : 1);
        if (p >= pl->orig->nprompts) break;
        const char *s = pl->stripped[p], *o = pl->orig->prompts[p], *it = imgs[i].infotext;
        size_t ls = strlen(s);
        if (!it || strncmp(it, s, ls) || it[ls] != '\n') continue;
        char *nt = malloc(strlen(o) + strlen(it + ls) + 1);
        if (!nt) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
        strcpy(nt, o);
        strcat(nt, it + ls);
        free(imgs[i].infotext);
        imgs[i].infotext = nt;
    }
    return SDC_OK;
}

void prompt_loras_end(prompt_loras *pl) {
    if (pl->stripped)
        for (int p = 0; p < pl->orig->nprompts; p++) free(pl->stripped[p]);
    free(pl->stripped);
    pl->stripped = NULL;
}
