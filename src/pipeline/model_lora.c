/* model_lora.c - LoRAs fused into a loaded model (model_lora.h). */
#include "pipeline/model_lora.h"

#include <cblas.h>

#include "lora/lora.h"

sdc_status model_fuse_loras(sdc_model *m, const sdc_load_options *opt) {
    if (!opt || opt->nloras <= 0) return SDC_OK;
    if (!opt->loras) return sdc_fail(SDC_ERR_ARG, "%d LoRAs requested but no paths given", opt->nloras);
    lora_targets t = {.w = {unet_weights(m->unet), m->te[0] ? clip_text_weights(m->te[0]) : NULL,
                            m->te[1] ? clip_text_weights(m->te[1]) : NULL},
                      .unet_cfg = unet_get_config(m->unet)};
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
