/* model_inspect.c - sdc_model_inspect (`sdc info`): what a folder or a
 * single file is, from its configs and safetensors headers only (no weight
 * is converted, nothing is computed). Single files go through the same
 * detection, config choice and key map as loading (single_file.h), so what
 * is reported is what a load would use. */
#include <assert.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "family/family.h"
#include "family/single_file.h"
#include "io/json.h"
#include "io/paths.h"
#include "sched/scheduler.h"
#include "sdc.h"

static int ends(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* Modules LoRA trainers target (kohya, PEFT): the UNet transformers' q/k/v/out,
 * feed-forward and proj_in/proj_out; the text encoders' attention and MLP. */
static int lora_target(const char *name) {
    static const char *unet[] = {".to_q.weight", ".to_k.weight", ".to_v.weight", ".to_out.0.weight",
                                 ".ff.net.0.proj.weight", ".ff.net.2.weight", ".proj_in.weight", ".proj_out.weight"};
    static const char *te[] = {".self_attn.q_proj.weight", ".self_attn.k_proj.weight", ".self_attn.v_proj.weight",
                               ".self_attn.out_proj.weight", ".mlp.fc1.weight", ".mlp.fc2.weight"};
    if (strstr(name, "attentions.")) /* UNet transformer blocks (the VAE's mid attention is not targeted) */
        for (size_t i = 0; i < sizeof unet / sizeof unet[0]; i++)
            if (ends(name, unet[i])) return !strncmp(name, "down_blocks", 11) || !strncmp(name, "up_blocks", 9) ||
                                            !strncmp(name, "mid_block", 9);
    if (!strncmp(name, "text_model.encoder.layers.", 26))
        for (size_t i = 0; i < sizeof te / sizeof te[0]; i++)
            if (ends(name, te[i])) return 1;
    return 0;
}

typedef struct {
    sdc_component_report *c;
    unsigned dtypes; /* bit per st_dtype */
} acc;

static void account(acc *a, const st_tensor *t, const char *engine_name, int modules) {
    a->c->params += t->numel;
    a->c->tensors++;
    a->c->bytes += (int64_t)t->nbytes;
    a->dtypes |= 1u << t->dtype;
    a->c->lora_targets += lora_target(engine_name) * modules;
}

static void finish(acc *a) {
    a->c->dtypes[0] = 0;
    for (int d = 0; d < 32; d++)
        if (a->dtypes & (1u << d))
            snprintf(a->c->dtypes + strlen(a->c->dtypes), sizeof a->c->dtypes - strlen(a->c->dtypes), "%s%s",
                     a->c->dtypes[0] ? "+" : "", st_dtype_name((st_dtype)d));
}

static int64_t file_size(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 ? (int64_t)sb.st_size : 0;
}

/* scheduler kind, prediction and default size shared by both kinds of model */
static sdc_status describe_sched(sdc_model_report *r, const cJSON *sched, const unet_config *u, int vae_blocks) {
    sched_config sc;
    SDC_TRY(sched_config_from_json(sched, NULL, &sc));
    snprintf(r->scheduler, sizeof r->scheduler, "%s", sched_info(sc.def)->name);
    snprintf(r->scheduler_class, sizeof r->scheduler_class, "%s", sched_info(sc.def)->diffusers_class);
    snprintf(r->prediction, sizeof r->prediction, "%s", sc.prediction_type);
    r->width = r->height = u->sample_size * (1 << (vae_blocks - 1));
    return SDC_OK;
}

static void set_family(sdc_model_report *r, ckpt_family f) {
    static const char *ids[] = {"sd1", "sd2", "sdxl"};
    snprintf(r->family, sizeof r->family, "%s", ids[f]);
    snprintf(r->family_title, sizeof r->family_title, "%s", ckpt_family_name(f));
}

static sdc_status inspect_single(const char *path, const sdc_load_options *opt, sdc_model_report *r) {
    if (file_is_pickle(path))
        return sdc_fail(SDC_ERR_UNSUPPORTED, "%s: a PyTorch pickle checkpoint; sdc reads .safetensors only", path);
    st_file f;
    single_file_plan p;
    SDC_TRY(st_open(&f, path));
    sdc_status st = single_file_plan_make(&f, opt, &p);
    if (st) {
        st_close(&f);
        return st;
    }
    r->single_file = 1;
    r->file_bytes = file_size(path);
    set_family(r, p.det.family);
    snprintf(r->pipeline, sizeof r->pipeline, "%s",
             p.det.family == CKPT_SDXL ? "StableDiffusionXLPipeline" : "StableDiffusionPipeline");
    if (p.builtin) snprintf(r->configs, sizeof r->configs, "built-in %s (%s)", p.builtin->title, p.builtin->id);
    else snprintf(r->configs, sizeof r->configs, "%.150s", p.config_dir);
    st = describe_sched(r, p.sched, &p.unet, p.vae.nblocks);
    snprintf(r->prediction_source, sizeof r->prediction_source, "%s", p.prediction_source);

    static const char *names[] = {"unet", "vae", "text_encoder", "text_encoder_2"};
    const char *prefixes[] = {LDM_UNET_PREFIX, LDM_VAE_PREFIX, p.det.te_prefix, p.det.te2_prefix};
    r->ncomp = p.det.family == CKPT_SDXL ? 4 : 3;
    acc a[4];
    for (int i = 0; i < r->ncomp; i++) {
        a[i] = (acc){.c = &r->comp[i]};
        snprintf(r->comp[i].name, sizeof r->comp[i].name, "%s", names[i]);
        snprintf(r->comp[i].source, sizeof r->comp[i].source, "%s*", prefixes[i]);
    }
    for (int i = 0; i < f.n && !st; i++) {
        const st_tensor *t = &f.tensors[i];
        char name[400];
        sf_component c;
        sf_map_kind k = single_file_map_key(&p, t->name, &c, name, sizeof name);
        if (k == SF_UNUSED) {
            if (!strncmp(t->name, "model_ema.", 10)) r->ema_tensors++;
            else r->ignored_tensors++;
            continue;
        }
        account(&a[c], t, name, k == SF_QKV ? 3 : 1); /* in_proj is q, k and v */
    }
    for (int i = 0; i < r->ncomp; i++) finish(&a[i]);
    r->ntokenizers = p.det.family == CKPT_SDXL ? 2 : 1;
    for (int i = 0; i < r->ntokenizers; i++) {
        tokenizer_source ts;
        if (single_file_find_tokenizer(path, opt, &p, i, &ts)) {
            snprintf(r->tokenizer[i], sizeof r->tokenizer[i], "not found: %s", sdc_last_error());
        } else {
            snprintf(r->tokenizer[i], sizeof r->tokenizer[i], "%.560s%s", ts.dir, ts.pad ? " (pad \"!\")" : "");
            r->tokenizers_found++;
        }
    }
    single_file_plan_free(&p);
    st_close(&f);
    return st;
}

static sdc_status inspect_component_dir(sdc_model_report *r, const char *root, const char *name, const char *base,
                                        const char *variant) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    weights w;
    SDC_TRY(weights_open_component(&w, dir, base, variant));
    assert(r->ncomp < (int)(sizeof r->comp / sizeof r->comp[0]) && "a family with more components than a report holds");
    sdc_component_report *c = &r->comp[r->ncomp++];
    snprintf(c->name, sizeof c->name, "%s", name);
    acc a = {.c = c};
    for (int i = 0; i < w.nfiles; i++) {
        const st_file *f = &w.files[i];
        r->file_bytes += file_size(f->path);
        const char *slash = strrchr(f->path, '/');
        if (i == 0) snprintf(c->source, sizeof c->source, "%s/%.60s", name, slash ? slash + 1 : f->path);
        else if (i == 1) snprintf(c->source + strlen(c->source), sizeof c->source - strlen(c->source), " (+%d shards)",
                                  w.nfiles - 1);
        for (int k = 0; k < f->n; k++) account(&a, &f->tensors[k], f->tensors[k].name, 1);
    }
    finish(&a);
    weights_close(&w);
    return SDC_OK;
}

static sdc_status inspect_folder(const char *path, const sdc_load_options *opt, sdc_model_report *r) {
    char p[4096];
    cJSON *idx = NULL, *sched = NULL, *uj = NULL;
    snprintf(p, sizeof p, "%s/model_index.json", path);
    if (!path_exists(p)) return sdc_fail(SDC_ERR_FORMAT, "%s: not a diffusers pipeline folder (no model_index.json)", path);
    SDC_TRY(json_load(p, &idx));
    const char *cls;
    const model_family *fam = NULL;
    sdc_status st = json_get_str(idx, "_class_name", "", &cls, p);
    if (!st && !(fam = family_for_pipeline_class(cls)))
        st = sdc_fail(SDC_ERR_UNSUPPORTED, "%s: pipeline class '%s' is not supported", p, cls);
    if (!st) snprintf(r->pipeline, sizeof r->pipeline, "%s", cls);
    cJSON_Delete(idx);
    SDC_TRY(st);
    clip_text_config te;
    vae_config vae;
    unet_config unet;
    snprintf(p, sizeof p, "%s/text_encoder/config.json", path);
    SDC_TRY(clip_text_config_load(&te, p));
    /* the single-file layout a folder of the family would have: SD 2.x is
     * the SD pipeline with an OpenCLIP (erf gelu) text encoder */
    ckpt_family layout = CKPT_SD1;
    if (!fam->owns_checkpoint(CKPT_SD1)) layout = CKPT_SDXL;
    else if (te.act == CLIP_ACT_GELU) layout = CKPT_SD2;
    set_family(r, layout);
    snprintf(r->configs, sizeof r->configs, "the folder's config files");
    snprintf(p, sizeof p, "%s/vae/config.json", path);
    SDC_TRY(vae_config_load(&vae, p));
    snprintf(p, sizeof p, "%s/unet/config.json", path);
    SDC_TRY(json_load(p, &uj));
    st = unet_config_from_json(uj, p, &unet);
    cJSON_Delete(uj);
    SDC_TRY(st);
    snprintf(p, sizeof p, "%s/scheduler/scheduler_config.json", path);
    SDC_TRY(json_load(p, &sched));
    snprintf(r->prediction_source, sizeof r->prediction_source, "the folder's scheduler config");
    if (opt && opt->prediction) {
        st = sched_json_set_prediction(sched, opt->prediction, "--prediction");
        snprintf(r->prediction_source, sizeof r->prediction_source, "--prediction");
    }
    if (!st) st = describe_sched(r, sched, &unet, vae.nblocks);
    cJSON_Delete(sched);
    SDC_TRY(st);
    const char *variant = opt ? opt->variant : NULL;
    SDC_TRY(inspect_component_dir(r, path, "unet", "diffusion_pytorch_model", variant));
    SDC_TRY(inspect_component_dir(r, path, "vae", "diffusion_pytorch_model", variant));
    for (int i = 0; i < fam->ntext; i++) {
        char te_dir[32];
        snprintf(te_dir, sizeof te_dir, i ? "text_encoder_%d" : "text_encoder", i + 1);
        SDC_TRY(inspect_component_dir(r, path, te_dir, "model", variant));
    }
    return SDC_OK;
}

sdc_status sdc_model_inspect(const char *path, const sdc_load_options *opt, sdc_model_report *r) {
    memset(r, 0, sizeof *r);
    sdc_status st;
    if (dir_exists(path)) st = inspect_folder(path, opt, r);
    else if (path_exists(path)) st = inspect_single(path, opt, r);
    else {
        struct stat sb;
        return sdc_fail(SDC_ERR_IO, stat(path, &sb) ? "%s: model not found" : "%s: not a regular file or a folder",
                        path);
    }
    for (int i = 0; i < r->ncomp; i++) r->lora_targets += r->comp[i].lora_targets;
    return st;
}
