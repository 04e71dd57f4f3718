/* checkpoint_detect.c - tell the family of a single-file checkpoint from its
 * header, or say what the file is instead (see checkpoint_detect.h). */
#include "family/checkpoint_detect.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/json.h"

static int starts(const char *s, const char *p) { return !strncmp(s, p, strlen(p)); }

static int has_key(const st_file *f, const char *name) { return st_find(f, name) != NULL; }

/* the highest "<digits>" index after `marker` in keys with prefix `pfx`, + 1 */
static int count_layers(const st_file *f, const char *pfx, const char *marker) {
    int n = 0;
    for (int i = 0; i < f->n; i++) {
        const char *k = f->tensors[i].name;
        if (!starts(k, pfx)) continue;
        const char *m = strstr(k + strlen(pfx), marker);
        if (!m) continue;
        int L = atoi(m + strlen(marker));
        if (L + 1 > n) n = L + 1;
    }
    return n;
}

/* A file that is not a full checkpoint: say what it looks like. */
static sdc_status not_a_checkpoint(const st_file *f) {
    int lora = 0, vae = 0, unet = 0, te = 0, emb = 0, ctrl = 0;
    const char *example = NULL;
    for (int i = 0; i < f->n; i++) {
        const char *k = f->tensors[i].name;
        if (strstr(k, "lora_down") || strstr(k, "lora_up") || strstr(k, "lora_A.") || strstr(k, "lora_B.") ||
            strstr(k, ".hada_w1_") || strstr(k, ".lokr_w1") || starts(k, "lora_unet_") || starts(k, "lora_te")) {
            if (!lora++) example = k;
        }
        if (!strcmp(k, "encoder.conv_in.weight") || !strcmp(k, "decoder.conv_in.weight")) vae = 1;
        if (!strcmp(k, "time_embedding.linear_1.weight") || !strcmp(k, "input_blocks.0.0.weight")) unet = 1;
        if (starts(k, "text_model.") || starts(k, "transformer.resblocks.")) te = 1;
        if (!strcmp(k, "emb_params") || !strcmp(k, "clip_l") || !strcmp(k, "clip_g") || starts(k, "string_to_param"))
            emb = 1;
        if (starts(k, "control_model.") || starts(k, "controlnet_")) ctrl = 1;
    }
    if (lora)
        return sdc_fail(SDC_ERR_FORMAT,
                        "%s: this is a LoRA (%d tensors such as '%s'), not a checkpoint; pass it with --lora "
                        "FILE[:SCALE] and give the base model with -m",
                        f->path, lora, example);
    if (ctrl) return sdc_fail(SDC_ERR_UNSUPPORTED, "%s: this is a ControlNet, not a text-to-image checkpoint", f->path);
    if (emb)
        return sdc_fail(SDC_ERR_UNSUPPORTED, "%s: this is a textual-inversion embedding, not a checkpoint", f->path);
    if (vae)
        return sdc_fail(SDC_ERR_FORMAT,
                        "%s: this is a VAE on its own (%d tensors), not a checkpoint; a single-file checkpoint holds "
                        "the UNet (model.diffusion_model.*), the VAE (first_stage_model.*) and the text encoder(s)",
                        f->path, f->n);
    if (unet)
        return sdc_fail(SDC_ERR_FORMAT,
                        "%s: this is a UNet on its own, not a checkpoint; pass the diffusers pipeline folder or a "
                        "full single-file checkpoint",
                        f->path);
    if (te)
        return sdc_fail(SDC_ERR_FORMAT, "%s: this is a text encoder on its own, not a checkpoint", f->path);
    char first[3][80] = {"", "", ""};
    for (int i = 0; i < f->n && i < 3; i++) snprintf(first[i], sizeof first[i], "%s", f->tensors[i].name);
    return sdc_fail(SDC_ERR_FORMAT,
                    "%s: not a Stable Diffusion checkpoint: none of its %d tensors (e.g. '%s'%s%s%s%s) is under "
                    "model.diffusion_model., first_stage_model., cond_stage_model. (SD 1.x/2.x) or "
                    "conditioner.embedders. (SDXL)",
                    f->path, f->n, first[0], f->n > 1 ? ", '" : "", first[1], f->n > 1 ? "'" : "",
                    f->n > 2 ? ", ..." : "");
}

/* ComfyUI (supported_models.SD20.model_type): a 768-v SD 2.x UNet has a
 * wide spread in this LayerNorm bias, the epsilon 512-base one does not. */
int ckpt_sd2_looks_v(const st_file *f, int *known) {
    const st_tensor *t = st_find(f, LDM_UNET_PREFIX "output_blocks.11.1.transformer_blocks.0.norm1.bias");
    *known = 0;
    if (!t || t->ndim != 1 || t->numel < 2) return 0;
    float *x;
    if (st_to_f32(t, &x)) return 0;
    double m = 0, v = 0;
    for (int64_t i = 0; i < t->numel; i++) m += x[i];
    m /= (double)t->numel;
    for (int64_t i = 0; i < t->numel; i++) v += (x[i] - m) * (x[i] - m);
    free(x);
    *known = 1;
    return sqrt(v / (double)t->numel) > 0.09;
}

/* Stability's ModelSpec metadata (modelspec.prediction_type / .architecture) */
static void metadata_prediction(const st_file *f, ckpt_info *d) {
    if (!f->metadata_json) return;
    cJSON *j;
    if (json_parse(f->metadata_json, strlen(f->metadata_json), f->path, &j)) return;
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "modelspec.prediction_type");
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "modelspec.architecture");
    if (cJSON_IsString(p)) {
        const char *s = p->valuestring;
        if (!strcmp(s, "v") || !strcmp(s, "v_prediction") || !strcmp(s, "v-prediction"))
            snprintf(d->prediction, sizeof d->prediction, "v_prediction");
        else if (!strcmp(s, "epsilon") || !strcmp(s, "eps"))
            snprintf(d->prediction, sizeof d->prediction, "epsilon");
        if (d->prediction[0]) snprintf(d->prediction_source, sizeof d->prediction_source, "modelspec metadata");
    } else if (cJSON_IsString(a) && d->family == CKPT_SD2) {
        size_t n = strlen(a->valuestring);
        int v = n > 2 && !strcmp(a->valuestring + n - 2, "-v");
        snprintf(d->prediction, sizeof d->prediction, "%s", v ? "v_prediction" : "epsilon");
        snprintf(d->prediction_source, sizeof d->prediction_source, "modelspec architecture '%.40s'",
                 a->valuestring);
    }
    cJSON_Delete(j);
}

sdc_status ckpt_detect(const st_file *f, ckpt_info *d) {
    memset(d, 0, sizeof *d);
    int64_t n_clip = 0, n_openclip = 0, n_sgm0 = 0, n_sgm1 = 0, n_refiner = 0;
    for (int i = 0; i < f->n; i++) {
        const char *k = f->tensors[i].name;
        if (starts(k, LDM_UNET_PREFIX)) d->n_unet++;
        else if (starts(k, LDM_VAE_PREFIX)) d->n_vae++;
        else if (starts(k, LDM_CLIP_PREFIX)) n_clip++;
        else if (starts(k, LDM_OPENCLIP_PREFIX)) n_openclip++;
        else if (starts(k, SGM_CLIP_PREFIX)) n_sgm0++;
        else if (starts(k, SGM_OPENCLIP_PREFIX)) n_sgm1++;
        else if (starts(k, "conditioner.embedders.0.model.")) n_refiner++;
        else if (starts(k, "model_ema.")) d->n_ema++;
        else d->n_other++;
    }
    if (!d->n_unet && !d->n_vae && !n_clip && !n_openclip && !n_sgm0 && !n_sgm1 && !n_refiner)
        return not_a_checkpoint(f);
    if (n_refiner && !n_sgm1)
        return sdc_fail(SDC_ERR_UNSUPPORTED,
                        "%s: this is an SDXL refiner checkpoint (conditioner.embedders.0.model.*); sdc runs "
                        "text-to-image base models", f->path);
    if (n_sgm1 || n_sgm0) {
        d->family = CKPT_SDXL;
        d->te_prefix = SGM_CLIP_PREFIX;
        d->te2_prefix = SGM_OPENCLIP_PREFIX;
        d->n_te = n_sgm0;
        d->n_te2 = n_sgm1;
        d->te_layers = count_layers(f, SGM_CLIP_PREFIX, "encoder.layers.");
        d->te2_layers = count_layers(f, SGM_OPENCLIP_PREFIX, "transformer.resblocks.");
        if (!n_sgm0 || !n_sgm1)
            return sdc_fail(SDC_ERR_FORMAT,
                            "%s: SDXL checkpoint without its %s text encoder (no %s* tensors); both "
                            "conditioner.embedders.0 (CLIP ViT-L) and .1 (OpenCLIP ViT-bigG) are needed",
                            f->path, n_sgm0 ? "second" : "first", n_sgm0 ? SGM_OPENCLIP_PREFIX : SGM_CLIP_PREFIX);
    } else if (n_openclip) {
        d->family = CKPT_SD2;
        d->te_prefix = LDM_OPENCLIP_PREFIX;
        d->te_openclip = 1;
        d->n_te = n_openclip;
        d->te_layers = count_layers(f, LDM_OPENCLIP_PREFIX, "transformer.resblocks.");
    } else if (n_clip) {
        d->family = CKPT_SD1;
        d->te_prefix = LDM_CLIP_PREFIX;
        d->n_te = n_clip;
        d->te_layers = count_layers(f, LDM_CLIP_PREFIX, "encoder.layers.");
    } else {
        return sdc_fail(SDC_ERR_FORMAT,
                        "%s: checkpoint without a text encoder: no cond_stage_model.transformer.* (SD 1.x), "
                        "cond_stage_model.model.* (SD 2.x) or conditioner.embedders.* (SDXL) tensors",
                        f->path);
    }
    if (!d->n_unet)
        return sdc_fail(SDC_ERR_FORMAT, "%s: %s checkpoint without its UNet (no " LDM_UNET_PREFIX "* tensors)",
                        f->path, ckpt_family_name(d->family));
    if (!d->n_vae)
        return sdc_fail(SDC_ERR_FORMAT,
                        "%s: %s checkpoint without its VAE (no " LDM_VAE_PREFIX "* tensors); sdc needs the VAE in "
                        "the file", f->path, ckpt_family_name(d->family));

    const st_tensor *conv_in = st_find(f, LDM_UNET_PREFIX "input_blocks.0.0.weight");
    if (!conv_in || conv_in->ndim != 4)
        return sdc_fail(SDC_ERR_FORMAT, "%s: missing tensor '" LDM_UNET_PREFIX "input_blocks.0.0.weight' (the UNet's "
                        "conv_in, a 4-d convolution kernel)", f->path);
    d->unet_in_channels = (int)conv_in->shape[1];
    if (d->unet_in_channels != 4)
        return sdc_fail(SDC_ERR_UNSUPPORTED,
                        "%s: the UNet takes %d input channels (an inpainting or instruct-pix2pix model); sdc runs "
                        "text-to-image models (4 channels)", f->path, d->unet_in_channels);
    for (int i = 0; i < f->n && !d->context_dim; i++) {
        const st_tensor *t = &f->tensors[i];
        static const char sfx[] = ".attn2.to_k.weight";
        size_t n = strlen(t->name), k = sizeof sfx - 1;
        if (starts(t->name, LDM_UNET_PREFIX) && n > k && !strcmp(t->name + n - k, sfx) && t->ndim == 2)
            d->context_dim = (int)t->shape[1];
    }

    if (has_key(f, "v_pred")) {
        snprintf(d->prediction, sizeof d->prediction, "v_prediction");
        snprintf(d->prediction_source, sizeof d->prediction_source, "the file's 'v_pred' marker tensor");
        return SDC_OK;
    }
    metadata_prediction(f, d);
    if (!d->prediction[0] && d->family == CKPT_SD2) {
        int known, v = ckpt_sd2_looks_v(f, &known);
        if (known) {
            snprintf(d->prediction, sizeof d->prediction, "%s", v ? "v_prediction" : "epsilon");
            snprintf(d->prediction_source, sizeof d->prediction_source,
                     "SD 2.x UNet statistics (output_blocks.11 norm1.bias spread %s 0.09)", v ? ">" : "<=");
        }
    }
    return SDC_OK;
}
