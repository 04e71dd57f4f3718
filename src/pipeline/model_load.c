/* model_load.c - sdc_model_load: the model's backend context, its family
 * (a diffusers folder's model_index.json pipeline class, or what a single
 * file's keys say), the family's loader, LoRAs fused, the weights uploaded
 * to the device. Anything missing or of an unknown kind is an error that
 * says which file is at fault. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "backend/ops.h"
#include "io/json.h"
#include "io/paths.h"
#include "pipeline/model_lora.h"
#include "nn/unet_runner.h"
#include "text/clip_text_runner.h"
#include "family/model.h"
#include "family/single_file.h"

/* The family of a folder: model_index.json's pipeline class. */
static sdc_status folder_family(const char *dir, const model_family **fam) {
    char p[4096];
    cJSON *idx;
    snprintf(p, sizeof p, "%s/model_index.json", dir);
    SDC_TRY(json_load(p, &idx));
    const char *cls;
    sdc_status st = json_get_str(idx, "_class_name", "", &cls, p);
    if (!st && !(*fam = family_for_pipeline_class(cls))) {
        char known[512];
        family_pipeline_classes_text(known, sizeof known);
        st = sdc_fail(SDC_ERR_UNSUPPORTED, "%s: pipeline class '%s' is not supported (%s expected)", p, cls, known);
    }
    cJSON_Delete(idx);
    return st;
}

void sdc_model_name_from_path(const char *path, int is_file, char *out, size_t n) {
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/') len--;
    size_t b = len;
    while (b > 0 && path[b - 1] != '/') b--;
    if (is_file) {
        const char *dot = memrchr(path + b, '.', len - b);
        if (dot && dot != path + b) len = (size_t)(dot - path);
    }
    snprintf(out, n, "%.*s", (int)(len - b), path + b);
}

void sdc_tune_allocator(void) { op_tune_allocator(); }

static sdc_status check_cpu_dtype(const char *dt) {
    if (!dt || !strcmp(dt, "f32") || !strcmp(dt, "bf16")) return SDC_OK;
    if (!strcmp(dt, "f16"))
        return sdc_fail(SDC_ERR_ARG, "f16 compute needs a CUDA device; the CPU computes in f32 or bf16");
    return sdc_fail(SDC_ERR_ARG, "unknown compute dtype '%s' (f32, bf16 or f16)", dt);
}

/* The device a load asks for, and the activation precision the UNet and
 * text encoders run in there. "emulated" (tests) is the CPU ops behind a
 * device boundary, with the CUDA backend's roundings for f16/bf16. */
static sdc_status parse_device(const sdc_load_options *opt, op_device *dev, op_dtype *act) {
    const char *d = opt ? opt->device : NULL, *dt = opt ? opt->dtype : NULL;
    *act = OP_F32;
    if (!d || !strcmp(d, "cpu")) {
        *dev = OP_DEV_CPU;
        return check_cpu_dtype(dt);
    }
    if (strcmp(d, "cuda") && strcmp(d, "emulated")) return sdc_fail(SDC_ERR_ARG, "unknown device '%s' (cpu or cuda)", d);
    if (dt && strcmp(dt, "f16") && strcmp(dt, "bf16") && strcmp(dt, "f32"))
        return sdc_fail(SDC_ERR_ARG, "unknown compute dtype '%s' (f16, bf16 or f32)", dt);
    *dev = strcmp(d, "cuda") ? OP_DEV_EMULATED : OP_DEV_CUDA;
    *act = !dt ? (*dev == OP_DEV_CUDA ? OP_F16 : OP_F32) : !strcmp(dt, "f16") ? OP_F16 : !strcmp(dt, "bf16") ? OP_BF16 : OP_F32;
    return SDC_OK;
}

/* The model's context: its device, threads and (CPU) compute precision. */
static sdc_status make_context(sdc_model *m, const sdc_load_options *opt, op_dtype *act) {
    op_device dev;
    SDC_TRY(parse_device(opt, &dev, act));
    SDC_TRY(op_ctx_create(&m->cx, dev, opt ? opt->threads : 0));
    const char *dt = opt ? opt->dtype : NULL;
    if (dev == OP_DEV_CPU && dt && !strcmp(dt, "bf16")) {
        op_set_compute(m->cx, OP_BF16);
        if (op_compute(m->cx) != OP_BF16)
            return sdc_fail(SDC_ERR_ARG, "bf16 compute needs a CPU with AVX512_BF16 instructions; this one has none "
                                         "(use f32)");
    }
    return SDC_OK;
}

/* Upload every component's weights once, in the precision it will run in. */
static sdc_status model_to_device(sdc_model *m, op_dtype act) {
    m->te_dt = m->unet_dt = act;
    /* diffusers upcasts an f16 VAE whose config says force_upcast (the SD 1.x
     * and SDXL VAEs overflow f16: black or NaN images); a bf16 VAE has f32's
     * range and is left in bf16, as diffusers' bf16 pipelines leave it */
    m->vae_dt = act == OP_F16 && !vae_get_config(m->vae)->fp16_safe ? OP_F32 : act;
    if (op_ctx_device(m->cx) != OP_DEV_CUDA) return SDC_OK; /* the emulated device reads weights in place */
    for (int i = 0; i < m->ntext; i++) SDC_TRY(weights_to_device(clip_text_weights(m->te[i]), m->cx, m->te_dt));
    SDC_TRY(weights_to_device(unet_weights(m->unet), m->cx, m->unet_dt));
    SDC_TRY(weights_to_device(vae_weights(m->vae), m->cx, m->vae_dt));
    return op_sync(m->cx);
}

sdc_status sdc_model_load(sdc_model **out, const char *path, const sdc_load_options *opt) {
    *out = NULL;
    int is_file = !dir_exists(path);
    struct stat sb;
    if (is_file && !path_exists(path))
        return sdc_fail(SDC_ERR_IO, stat(path, &sb) ? "%s: model not found" : "%s: not a regular file or a folder",
                        path);
    char p[4096];
    snprintf(p, sizeof p, "%s/model_index.json", path);
    if (!is_file && !path_exists(p))
        return sdc_fail(SDC_ERR_FORMAT, "%s: not a diffusers pipeline folder (no model_index.json)", path);
    sdc_model *m = calloc(1, sizeof *m);
    if (!m) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    char name[256];
    sdc_model_name_from_path(path, is_file, name, sizeof name);
    m->path = strdup(path);
    m->name = strdup(name);
    m->is_file = is_file;
    op_dtype act = OP_F32;
    sdc_status st = m->path && m->name ? make_context(m, opt, &act) : sdc_fail(SDC_ERR_NOMEM, "out of memory");
    if (!st) st = is_file ? single_file_family(path, &m->fam) : folder_family(path, &m->fam);
    if (!st) m->ntext = m->fam->ntext;
    if (!st) st = is_file ? m->fam->load_file(m, path, opt) : m->fam->load_folder(m, path, opt);
    if (!st && !is_file && opt && opt->prediction)
        st = sched_json_set_prediction(m->sched_json, opt->prediction, "--prediction");
    if (!st) st = model_fuse_loras(m, opt); /* before any request runs */
    if (!st) st = model_to_device(m, act);
    if (st) {
        sdc_model_free(m);
        return st;
    }
    *out = m;
    return SDC_OK;
}

void sdc_model_free(sdc_model *m) {
    if (!m) return;
    for (int i = 0; i < MODEL_MAX_TEXT; i++) {
        clip_tokenizer_free(m->tok[i]);
        clip_runner_free(m->te_run[i]); /* its graph reads the encoder's weights */
        clip_text_free(m->te[i]);
    }
    unet_runner_free(m->unet_run); /* its graph reads the UNet's weights */
    unet_free(m->unet);
    vae_free(m->vae);
    single_file_release(m); /* after the components that borrow its weights */
    cJSON_Delete(m->sched_json);
    op_ctx_free(m->cx); /* after everything that ran in it */
    free(m->path);
    free(m->name);
    free(m);
}
