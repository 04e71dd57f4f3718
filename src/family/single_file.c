/* single_file.c - load a single-file SD 1.x / SD 2.x / SDXL checkpoint
 * (see single_file.h): detect, choose the configs, find the tokenizers, map
 * every key to its diffusers name (views), load each component, and check
 * that the pieces fit together. */
#include "family/single_file.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/ops.h"
#include "family/ldm_keymap.h"
#include "io/json.h"
#include "family/clip_unet_vae.h"
#include "io/paths.h"

/* the weights objects the text encoders and the VAE borrow (the UNet owns its own) */
struct single_file_weights {
    weights te[MODEL_MAX_TEXT], vae;
    int open_te[MODEL_MAX_TEXT], open_vae;
};

void single_file_release(sdc_model *m) {
    if (!m || !m->sf) return;
    for (int i = 0; i < MODEL_MAX_TEXT; i++)
        if (m->sf->open_te[i]) weights_close(&m->sf->te[i]);
    if (m->sf->open_vae) weights_close(&m->sf->vae);
    free(m->sf);
    m->sf = NULL;
}

int file_is_pickle(const char *path) {
    unsigned char b[4] = {0};
    int fd;
    if (path_open_regular(path, &fd)) return 0; /* the load that follows says what is wrong */
    ssize_t n = read(fd, b, sizeof b);
    close(fd);
    /* torch.save: a zip archive ("PK\3\4") or, before torch 1.6, a pickle (protocol 2+: 0x80 0x0N) */
    return n == 4 && ((b[0] == 'P' && b[1] == 'K' && b[2] == 3 && b[3] == 4) || (b[0] == 0x80 && b[1] >= 2 && b[1] <= 5));
}

sdc_status sched_json_set_prediction(cJSON *sched, const char *prediction, const char *what) {
    const char *v = !strcmp(prediction, "v") || !strcmp(prediction, "v_prediction") ? "v_prediction"
                    : !strcmp(prediction, "epsilon") || !strcmp(prediction, "eps") ? "epsilon"
                    : !strcmp(prediction, "sample")                                 ? "sample"
                                                                                    : NULL;
    if (!v)
        return sdc_fail(SDC_ERR_ARG, "%s: prediction type '%s' is not one of epsilon, v (v_prediction), sample", what,
                        prediction);
    cJSON *s = cJSON_CreateString(v);
    /* diffusers reads "prediction_type" exactly; a "Prediction_Type" beside it is
     * just another key (cJSON_HasObjectItem ignores case: the replacement then failed) */
    int ok = s && (cJSON_GetObjectItemCaseSensitive(sched, "prediction_type")
                       ? cJSON_ReplaceItemInObjectCaseSensitive(sched, "prediction_type", s)
                       : cJSON_AddItemToObject(sched, "prediction_type", s));
    if (!ok) {
        cJSON_Delete(s);
        return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    }
    return SDC_OK;
}

/* ---- configs ------------------------------------------------------------ */

static sdc_status parse_builtin_json(const char *text, const char *what, cJSON **out) {
    return json_parse(text, strlen(text), what, out);
}

static sdc_status plan_builtin(single_file_plan *p, int v_prediction) {
    const builtin_pipeline *b = builtin_pipeline_for(p->det.family, v_prediction);
    p->builtin = b;
    cJSON *u;
    SDC_TRY(parse_builtin_json(b->unet_json, b->id, &u));
    sdc_status st = unet_config_from_json(u, b->id, &p->unet);
    cJSON_Delete(u);
    SDC_TRY(st);
    SDC_TRY(parse_builtin_json(b->scheduler_json, b->id, &p->sched));
    p->vae = b->vae;
    p->te = b->te;
    p->te2 = b->te2;
    p->force_zeros_for_empty_prompt = b->force_zeros_for_empty_prompt;
    return SDC_OK;
}

static sdc_status plan_from_folder(single_file_plan *p, const char *dir, const char *ckpt) {
    char f[4096];
    cJSON *j;
    snprintf(f, sizeof f, "%s/model_index.json", dir);
    if (!path_exists(f)) return sdc_fail(SDC_ERR_IO, "--config %s: not a diffusers pipeline folder (no model_index.json)", dir);
    SDC_TRY(json_load(f, &j));
    const char *cls;
    sdc_status st = json_get_str(j, "_class_name", "", &cls, f);
    const model_family *fam = st ? NULL : family_for_pipeline_class(cls);
    int sdxl = fam && !strcmp(fam->name, "sdxl");
    if (!st && !fam) st = sdc_fail(SDC_ERR_UNSUPPORTED, "%s: pipeline class '%s' is not supported", f, cls);
    if (!st && sdxl != (p->det.family == CKPT_SDXL))
        st = sdc_fail(SDC_ERR_ARG, "--config %s describes a %s but %s is an %s checkpoint", dir, cls, ckpt,
                      ckpt_family_name(p->det.family));
    if (!st) st = json_get_bool(j, "force_zeros_for_empty_prompt", 1, &p->force_zeros_for_empty_prompt, f);
    cJSON_Delete(j);
    SDC_TRY(st);
    snprintf(f, sizeof f, "%s/unet/config.json", dir);
    SDC_TRY(json_load(f, &j));
    st = unet_config_from_json(j, f, &p->unet);
    cJSON_Delete(j);
    SDC_TRY(st);
    snprintf(f, sizeof f, "%s/vae/config.json", dir);
    SDC_TRY(vae_config_load(&p->vae, f));
    snprintf(f, sizeof f, "%s/text_encoder/config.json", dir);
    SDC_TRY(clip_text_config_load(&p->te, f));
    if (sdxl) {
        snprintf(f, sizeof f, "%s/text_encoder_2/config.json", dir);
        SDC_TRY(clip_text_config_load(&p->te2, f));
        if (!p->te2.with_projection)
            return sdc_fail(SDC_ERR_FORMAT, "%s: text_encoder_2 must be a CLIPTextModelWithProjection", f);
    }
    snprintf(f, sizeof f, "%s/scheduler/scheduler_config.json", dir);
    return json_load(f, &p->sched);
}

void single_file_plan_free(single_file_plan *p) {
    cJSON_Delete(p->sched);
    p->sched = NULL;
}

sdc_status single_file_plan_make(const st_file *f, const sdc_load_options *opt, single_file_plan *p) {
    memset(p, 0, sizeof *p);
    SDC_TRY(ckpt_detect(f, &p->det));
    const char *flag = opt ? opt->prediction : NULL;
    p->config_dir = opt && opt->config_dir && *opt->config_dir ? opt->config_dir : NULL;
    sdc_status st;
    if (p->config_dir) {
        st = plan_from_folder(p, p->config_dir, f->path);
    } else {
        /* SD 2.x without other evidence: diffusers' default, stable-diffusion-2-1 (768-v) */
        int v = flag ? (!strcmp(flag, "v") || !strcmp(flag, "v_prediction"))
                     : p->det.prediction[0] ? !strcmp(p->det.prediction, "v_prediction") : p->det.family == CKPT_SD2;
        st = plan_builtin(p, v);
    }
    /* zero-terminal-SNR finetunes carry a 'ztsnr' marker tensor (ComfyUI's convention) */
    if (!st && st_find(f, "ztsnr") && !p->config_dir) {
        cJSON *t = cJSON_CreateTrue();
        if (!t) st = sdc_fail(SDC_ERR_NOMEM, "out of memory");
        else cJSON_AddItemToObject(p->sched, "rescale_betas_zero_snr", t);
    }
    /* prediction type: the flag, else the --config folder's scheduler, else the file, else the built-in */
    const char *pred = NULL, *why = NULL;
    char whybuf[160];
    if (!st && flag) {
        pred = flag, why = "--prediction";
    } else if (!st && p->config_dir) {
        why = "the scheduler config of --config";
    } else if (!st && p->det.prediction[0]) {
        pred = p->det.prediction, why = p->det.prediction_source;
    } else if (!st) {
        snprintf(whybuf, sizeof whybuf, "the built-in %s scheduler config%s", p->builtin->title,
                 p->det.family == CKPT_SD2 ? " (diffusers' default for SD 2.x files)" : "");
        why = whybuf;
    }
    if (!st && pred) st = sched_json_set_prediction(p->sched, pred, why);
    if (!st) {
        const char *cur;
        st = json_get_str(p->sched, "prediction_type", "epsilon", &cur, "scheduler config");
        if (!st) snprintf(p->prediction, sizeof p->prediction, "%s", cur);
        snprintf(p->prediction_source, sizeof p->prediction_source, "%s", why);
    }
    if (st) single_file_plan_free(p);
    return st;
}

/* ---- tokenizers --------------------------------------------------------- */

static int has_vocab(const char *dir) {
    char a[4096], b[4096];
    snprintf(a, sizeof a, "%s/vocab.json", dir);
    snprintf(b, sizeof b, "%s/merges.txt", dir);
    return path_exists(a) && path_exists(b);
}

static int try_dir(tokenizer_source *out, const char *pad, const char *fmt, const char *a, const char *b) {
    char d[4096];
    snprintf(d, sizeof d, fmt, a, b);
    if (!has_vocab(d)) return 0;
    snprintf(out->dir, sizeof out->dir, "%s", d);
    out->pad = pad;
    return 1;
}

static void cache_root(char *out, size_t n) {
    const char *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
    if (x && *x) snprintf(out, n, "%s/sdc/tokenizers", x);
    else snprintf(out, n, "%s/.cache/sdc/tokenizers", h && *h ? h : ".");
}

sdc_status single_file_find_tokenizer(const char *ckpt_path, const sdc_load_options *opt, const single_file_plan *p,
                                      int second, tokenizer_source *out) {
    const char *sub = second ? "tokenizer_2" : "tokenizer";
    /* OpenCLIP-based encoders pad with "!" whatever a plain CLIP folder says */
    const char *pad = second || p->det.te_openclip ? "!" : NULL;
    const char *tdir = opt && opt->tokenizer_dir && *opt->tokenizer_dir ? opt->tokenizer_dir : NULL;
    memset(out, 0, sizeof *out);
    if (tdir) {
        if (try_dir(out, pad, "%s/%s", tdir, sub) || (second && try_dir(out, pad, "%s/%s", tdir, "tokenizer")) ||
            try_dir(out, pad, "%s%s", tdir, ""))
            return SDC_OK;
        return sdc_fail(SDC_ERR_IO, "--tokenizer %s: no vocab.json + merges.txt in %s/%s/ or %s/", tdir, tdir, sub,
                        tdir);
    }
    if (p->config_dir && try_dir(out, NULL, "%s/%s", p->config_dir, sub)) return SDC_OK;
    char here[4096], cache[4096];
    snprintf(here, sizeof here, "%s", ckpt_path);
    char *slash = strrchr(here, '/');
    if (slash) *slash = 0;
    else snprintf(here, sizeof here, ".");
    if (try_dir(out, pad, "%s/%s", here, sub) || (second && try_dir(out, pad, "%s/%s", here, "tokenizer")))
        return SDC_OK;
    cache_root(cache, sizeof cache);
    if ((second && try_dir(out, pad, "%s/%s", cache, "clip-vit-bigg-14")) ||
        try_dir(out, pad, "%s/%s", cache, "clip-vit-large-patch14"))
        return SDC_OK;
    const char *extra = p->det.family == CKPT_SDXL
                            ? "; SDXL's second tokenizer: laion/CLIP-ViT-bigG-14-laion2B-39B-b160k's files in "
                              "tokenizer_2/ or clip-vit-bigg-14/, else the first one's are used, padded with \"!\""
                        : p->det.te_openclip ? "; SD 2.x's OpenCLIP tokenizer has the same files, sdc pads with \"!\""
                                             : "";
    return sdc_fail(SDC_ERR_IO,
                    "%s: a single-file checkpoint has no tokenizer; give --tokenizer DIR, or put vocab.json, "
                    "merges.txt, tokenizer_config.json and special_tokens_map.json of openai/clip-vit-large-patch14 "
                    "(Hugging Face hub) in %s/%s/ or %s/clip-vit-large-patch14/%s",
                    ckpt_path, here, sub, cache, extra);
}

/* ---- key maps: file names -> views under diffusers names ---------------- */

typedef enum { COMP_UNET, COMP_VAE, COMP_TE_HF, COMP_TE_OPENCLIP } comp_kind;

typedef struct {
    comp_kind kind;
    sf_component comp;
    const char *prefix; /* in the file */
    const char *label;  /* "UNet", "VAE", "text encoder", ... */
    const single_file_plan *p;
    const clip_text_config *te; /* text encoders */
} comp_desc;

/* diffusers name -> full key in the file (for messages) */
static int file_key_of(const comp_desc *c, const char *diffusers, char *out, size_t n) {
    char tmp[400];
    int ok = 0;
    switch (c->kind) {
    case COMP_UNET: ok = ldm_unet_name(&c->p->unet, diffusers, tmp, sizeof tmp); break;
    case COMP_VAE: ok = ldm_vae_name(&c->p->vae, diffusers, tmp, sizeof tmp); break;
    case COMP_TE_HF: ok = snprintf(tmp, sizeof tmp, "%s", diffusers) < (int)sizeof tmp; break;
    case COMP_TE_OPENCLIP: ok = openclip_name(diffusers, tmp, sizeof tmp); break;
    }
    return ok && snprintf(out, n, "%s%s", c->prefix, tmp) < (int)n;
}

static sdc_status shape_error(const st_tensor *t, const char *path, const char *want) {
    char s[160] = "(";
    for (int i = 0; i < t->ndim; i++)
        snprintf(s + strlen(s), sizeof s - strlen(s), i ? ", %lld" : "%lld", (long long)t->shape[i]);
    return sdc_fail(SDC_ERR_SHAPE, "%s: tensor '%s' has shape %s), expected %s", path, t->name, s, want);
}

/* OpenCLIP's fused in_proj: rows [0,D) q, [D,2D) k, [2D,3D) v -> three views */
static sdc_status add_qkv(weights *w, const st_tensor *t, const char *qname) {
    int is_w = t->ndim == 2;
    if ((t->ndim != 1 && t->ndim != 2) || t->shape[0] % 3 || (is_w && t->shape[0] != 3 * t->shape[1]))
        return shape_error(t, w->files[0].path, is_w ? "(3 x D, D): q, k, v stacked" : "(3 x D)");
    int64_t rows = t->shape[0] / 3, shp[2] = {rows, is_w ? t->shape[1] : 1};
    size_t bytes = (size_t)(rows * shp[1]) * st_dtype_size(t->dtype);
    char name[400];
    for (int k = 0; k < 3; k++) {
        snprintf(name, sizeof name, "%s", qname);
        char *q = strstr(name, "q_proj");
        if (!q) return sdc_fail(SDC_ERR_FORMAT, "internal: '%s' is not a q_proj name", qname);
        *q = "qkv"[k];
        SDC_TRY(weights_add_view(w, name, t->dtype, t->ndim, shp, (const char *)t->data + k * bytes, 0));
    }
    return SDC_OK;
}

/* OpenCLIP text_projection (D, P), applied as x @ P -> HF Linear weight (P, D) */
static sdc_status add_transposed(weights *w, const st_tensor *t, const char *name) {
    if (t->ndim != 2) return shape_error(t, w->files[0].path, "(hidden, projection)");
    int64_t D = t->shape[0], P = t->shape[1], shp[2] = {P, D};
    float *src, *dst = malloc((size_t)(D * P > 0 ? D * P : 1) * sizeof(float));
    if (!dst) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    sdc_status st = st_to_f32(t, &src);
    if (st) {
        free(dst);
        return st;
    }
    for (int64_t d = 0; d < D; d++)
        for (int64_t p = 0; p < P; p++) dst[p * D + d] = src[d * P + p];
    free(src);
    return weights_add_view(w, name, ST_F32, 2, shp, dst, 1);
}

/* HF CLIP names inside cond_stage_model.transformer.: old checkpoints lack "text_model." */
static int hf_clip_name(const char *rest, char *out, size_t n) {
    if (!strncmp(rest, "text_model.", 11)) return snprintf(out, n, "%s", rest) < (int)n;
    if (!strncmp(rest, "embeddings.", 11) || !strncmp(rest, "encoder.", 8) || !strncmp(rest, "final_layer_norm.", 17))
        return snprintf(out, n, "text_model.%s", rest) < (int)n;
    return 0;
}

static int has_prefix(const char *s, const char *p) { return p && !strncmp(s, p, strlen(p)); }

sf_map_kind single_file_map_key(const single_file_plan *p, const char *key, sf_component *comp, char *out,
                                size_t n) {
    const ckpt_info *d = &p->det;
    if (has_prefix(key, LDM_UNET_PREFIX)) {
        *comp = SF_UNET;
        return ldm_unet_to_diffusers(&p->unet, key + strlen(LDM_UNET_PREFIX), out, n) ? SF_SAME : SF_UNUSED;
    }
    if (has_prefix(key, LDM_VAE_PREFIX)) {
        *comp = SF_VAE;
        return ldm_vae_to_diffusers(&p->vae, key + strlen(LDM_VAE_PREFIX), out, n) ? SF_SAME : SF_UNUSED;
    }
    int second = has_prefix(key, d->te2_prefix);
    if (!second && !has_prefix(key, d->te_prefix)) {
        *comp = SF_NONE;
        return SF_UNUSED;
    }
    *comp = second ? SF_TE2 : SF_TE;
    const char *rest = key + strlen(second ? d->te2_prefix : d->te_prefix);
    if (!second && !d->te_openclip) return hf_clip_name(rest, out, n) ? SF_SAME : SF_UNUSED;
    const clip_text_config *c = second ? &p->te2 : &p->te;
    int layer;
    switch (openclip_to_hf(rest, out, n, &layer)) {
    case OPENCLIP_UNMAPPED: return SF_UNUSED;
    /* layers past the config's count are not used (SD 2.x keeps 23 of 24) */
    case OPENCLIP_RENAME: return layer < c->num_layers ? SF_SAME : SF_UNUSED;
    case OPENCLIP_QKV: return layer < c->num_layers ? SF_QKV : SF_UNUSED;
    case OPENCLIP_TRANSPOSE: return c->with_projection ? SF_TRANSPOSED : SF_UNUSED;
    }
    return SF_UNUSED;
}

static sdc_status add_views(weights *w, const comp_desc *c) {
    const st_file *f = &w->files[0];
    for (int i = 0; i < f->n; i++) {
        const st_tensor *t = &f->tensors[i];
        char d[400];
        sf_component k;
        sf_map_kind m = single_file_map_key(c->p, t->name, &k, d, sizeof d);
        if (m == SF_UNUSED || k != c->comp) continue;
        if (m == SF_QKV) SDC_TRY(add_qkv(w, t, d));
        else if (m == SF_TRANSPOSED) SDC_TRY(add_transposed(w, t, d));
        else SDC_TRY(weights_add_view(w, d, t->dtype, t->ndim, t->shape, t->data, 0));
    }
    return SDC_OK;
}

/* A loader's "missing tensor 'X'" / "tensor 'X' has shape ..." names the
 * diffusers name; say which key of the file that is and what it means. */
static sdc_status explain(sdc_status st, const comp_desc *c) {
    if (st != SDC_ERR_FORMAT && st != SDC_ERR_SHAPE) return st;
    const char *msg = sdc_last_error(), *q = strstr(msg, "tensor '"), *e;
    if (!q || !(e = strchr(q += 8, '\''))) return st;
    char name[400], key[500], head[600], tail[600], hint[300];
    snprintf(name, sizeof name, "%.*s", (int)(e - q), q);
    if (!file_key_of(c, name, key, sizeof key)) return st;
    snprintf(head, sizeof head, "%.*s", (int)(q - msg), msg);
    snprintf(tail, sizeof tail, "%s", e);
    if (st == SDC_ERR_FORMAT)
        snprintf(hint, sizeof hint, "the %s checkpoint is incomplete", ckpt_family_name(c->p->det.family));
    else if (c->p->builtin)
        snprintf(hint, sizeof hint, "the file's architecture differs from the built-in %s; pass --config with the "
                 "model's diffusers folder", c->p->builtin->title);
    else
        snprintf(hint, sizeof hint, "the file does not match the configs in %s", c->p->config_dir);
    return sdc_fail(st, "%s%s%s (%s parameter %s): %s", head, key, tail, c->label, name, hint);
}

static sdc_status open_mapped(weights *w, const char *path, const comp_desc *c) {
    const char *one[1] = {path};
    SDC_TRY(weights_open(w, one, 1));
    sdc_status st = add_views(w, c);
    if (st) weights_close(w);
    return st;
}

/* ---- the model ---------------------------------------------------------- */

static sdc_status load_tokenizers(sdc_model *m, const char *path, const sdc_load_options *opt,
                                  const single_file_plan *p) {
    tokenizer_source s;
    for (int i = 0; i < m->ntext; i++) {
        SDC_TRY(single_file_find_tokenizer(path, opt, p, i, &s));
        SDC_TRY(clip_tokenizer_load_pad(&m->tok[i], s.dir, s.pad));
    }
    return SDC_OK;
}

static sdc_status load_text_encoder(clip_text_model **out, op_ctx *cx, weights *w, int *opened, const char *path,
                                    const comp_desc *c) {
    SDC_TRY(open_mapped(w, path, c));
    *opened = 1;
    return explain(clip_text_load_weights(out, cx, c->te, w), c);
}

static sdc_status load_all(sdc_model *m, const char *path, const sdc_load_options *opt) {
    st_file f;
    single_file_plan p;
    SDC_TRY(st_open(&f, path));
    sdc_status st = single_file_plan_make(&f, opt, &p);
    st_close(&f);
    SDC_TRY(st);
    const ckpt_info *d = &p.det;
    if (family_for_checkpoint(d->family) != m->fam || m->ntext != (d->te2_prefix ? 2 : 1)) {
        single_file_plan_free(&p);
        return sdc_fail(SDC_ERR_ARG, "%s: an %s checkpoint, not a %s one", path, ckpt_family_name(d->family),
                        m->fam->title);
    }
    m->force_zeros_for_empty_prompt = p.force_zeros_for_empty_prompt;
    m->sched_json = p.sched;
    p.sched = NULL;
    if ((st = load_tokenizers(m, path, opt, &p))) return st;

    comp_desc te = {d->te_openclip ? COMP_TE_OPENCLIP : COMP_TE_HF, SF_TE, d->te_prefix,
                    d->family == CKPT_SDXL ? "text_encoder" : "text encoder", &p, &p.te};
    SDC_TRY(load_text_encoder(&m->te[0], m->cx, &m->sf->te[0], &m->sf->open_te[0], path, &te));
    if (m->ntext > 1) {
        comp_desc te2 = {COMP_TE_OPENCLIP, SF_TE2, d->te2_prefix, "text_encoder_2", &p, &p.te2};
        SDC_TRY(load_text_encoder(&m->te[1], m->cx, &m->sf->te[1], &m->sf->open_te[1], path, &te2));
    }
    comp_desc vae = {COMP_VAE, SF_VAE, LDM_VAE_PREFIX, "VAE", &p, NULL};
    SDC_TRY(open_mapped(&m->sf->vae, path, &vae));
    m->sf->open_vae = 1;
    SDC_TRY(explain(vae_load_weights(&m->vae, m->cx, &p.vae, &m->sf->vae), &vae));
    comp_desc unet = {COMP_UNET, SF_UNET, LDM_UNET_PREFIX, "UNet", &p, NULL};
    weights wu;
    SDC_TRY(open_mapped(&wu, path, &unet));
    SDC_TRY(explain(unet_load_weights(&m->unet, m->cx, &p.unet, &wu), &unet)); /* the UNet owns wu now */

    return cuv_check(m, path); /* the pieces must fit together, as for a folder */
}

static sdc_status refuse_pickle(const char *path) {
    if (!file_is_pickle(path)) return SDC_OK;
    return sdc_fail(SDC_ERR_UNSUPPORTED,
                    "%s: a PyTorch pickle checkpoint (.ckpt/.pt); sdc reads .safetensors only (convert it, or "
                    "download the .safetensors version)", path);
}

sdc_status single_file_family(const char *path, const model_family **fam) {
    *fam = NULL;
    SDC_TRY(refuse_pickle(path));
    st_file f;
    ckpt_info d;
    SDC_TRY(st_open(&f, path));
    sdc_status st = ckpt_detect(&f, &d);
    st_close(&f);
    SDC_TRY(st);
    if (!(*fam = family_for_checkpoint(d.family)))
        return sdc_fail(SDC_ERR_UNSUPPORTED, "%s: %s checkpoints are not supported", path, ckpt_family_name(d.family));
    return SDC_OK;
}

sdc_status single_file_load(sdc_model *m, const char *path, const sdc_load_options *opt) {
    SDC_TRY(refuse_pickle(path));
    m->sf = calloc(1, sizeof *m->sf);
    if (!m->sf) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    return load_all(m, path, opt);
}
