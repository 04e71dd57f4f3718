/* model_lora.c - LoRAs fused into a loaded model (model_lora.h). */
#include "pipeline/model_lora.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "lora/lora.h"
#include "nn/unet_runner.h"
#include "text/clip_text_runner.h"

/* the request LoRAs fused now (model.h: sdc_model.req_loras) */
struct model_req_loras {
    char *path[SDC_MAX_PROMPT_LORAS];
    float te[SDC_MAX_PROMPT_LORAS], unet[SDC_MAX_PROMPT_LORAS];
    int n;
};

static lora_targets targets_of(sdc_model *m) {
    return (lora_targets){.w = {unet_weights(m->unet), m->te[0] ? clip_text_weights(m->te[0]) : NULL,
                                m->te[1] ? clip_text_weights(m->te[1]) : NULL},
                          .unet_cfg = unet_get_config(m->unet)};
}

sdc_status model_fuse_loras(sdc_model *m, const sdc_load_options *opt) {
    if (!opt || opt->nloras <= 0) return SDC_OK;
    if (!opt->loras) return sdc_fail(SDC_ERR_ARG, "%d LoRAs requested but no paths given", opt->nloras);
    lora_targets t = targets_of(m);
    /* the float64 fuse is OpenBLAS's (its thread count is the process's) */
    openblas_set_num_threads(op_ctx_threads(m->cx));
    for (int i = 0; i < opt->nloras; i++) {
        const char *path = opt->loras[i];
        float scale = opt->lora_scales ? opt->lora_scales[i] : 1.0f;
        if (!path) return sdc_fail(SDC_ERR_ARG, "LoRA %d has no path", i + 1);
        lora_counts c;
        SDC_TRY(lora_apply(&t, path, scale, &c));
        if (opt->lora_report) {
            sdc_lora_report r = {.path = path, .scale = scale, .modules = c.total, .unet = c.comp[LORA_UNET],
                                 .te1 = c.comp[LORA_TE1], .te2 = c.comp[LORA_TE2]};
            opt->lora_report(opt->lora_report_ctx, &r);
        }
    }
    return SDC_OK;
}

static int same_set(const struct model_req_loras *cur, const model_lora_use *use, int n) {
    int have = cur ? cur->n : 0;
    if (have != n) return 0;
    for (int i = 0; i < n; i++)
        if (strcmp(cur->path[i], use[i].path) || cur->te[i] != use[i].te || cur->unet[i] != use[i].unet) return 0;
    return 1;
}

/* back to the load-time weights; the kept step graphs read the old pointers */
static void drop_overlay(sdc_model *m) {
    lora_targets t = targets_of(m);
    for (int c = 0; c < LORA_NCOMP; c++)
        if (t.w[c]) weights_overlay_drop(t.w[c]);
    unet_runner_free(m->unet_run);
    m->unet_run = NULL;
    for (int i = 0; i < MODEL_MAX_TEXT; i++) {
        clip_runner_free(m->te_run[i]);
        m->te_run[i] = NULL;
    }
    if (m->req_loras)
        for (int i = 0; i < m->req_loras->n; i++) free(m->req_loras->path[i]);
    if (m->req_loras) m->req_loras->n = 0;
}

sdc_status model_set_request_loras(sdc_model *m, const model_lora_use *use, int n) {
    if (n < 0 || n > SDC_MAX_PROMPT_LORAS)
        return sdc_fail(SDC_ERR_ARG, "%d LoRAs in one request (at most %d)", n, SDC_MAX_PROMPT_LORAS);
    if (same_set(m->req_loras, use, n)) return SDC_OK;
    if (n && op_ctx_device(m->cx) == OP_DEV_CUDA)
        return sdc_fail(SDC_ERR_UNSUPPORTED, "LoRA tags need a model on the CPU: a CUDA model's weights live on the "
                                             "GPU; fuse the LoRA at load time instead (--lora PATH:SCALE)");
    drop_overlay(m);
    if (!n) return SDC_OK;
    if (!m->req_loras && !(m->req_loras = calloc(1, sizeof *m->req_loras)))
        return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    lora_targets t = targets_of(m);
    for (int c = 0; c < LORA_NCOMP; c++)
        if (t.w[c]) weights_overlay_begin(t.w[c]);
    openblas_set_num_threads(op_ctx_threads(m->cx));
    sdc_status st = SDC_OK;
    for (int i = 0; !st && i < n; i++) {
        const float s[LORA_NCOMP] = {use[i].unet, use[i].te, use[i].te};
        st = lora_apply_scaled(&t, use[i].path, s, NULL);
        if (!st && !(m->req_loras->path[i] = strdup(use[i].path))) st = sdc_fail(SDC_ERR_NOMEM, "out of memory");
        if (!st) {
            m->req_loras->te[i] = use[i].te, m->req_loras->unet[i] = use[i].unet;
            m->req_loras->n = i + 1;
        }
    }
    if (st) drop_overlay(m); /* the message stays sdc_last_error() */
    return st;
}

void model_request_loras_free(sdc_model *m) {
    if (!m->req_loras) return;
    for (int i = 0; i < m->req_loras->n; i++) free(m->req_loras->path[i]);
    free(m->req_loras);
    m->req_loras = NULL;
}
