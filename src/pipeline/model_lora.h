/* model_lora.h - LoRAs fused into a loaded model: the glue between the
 * model's components and lora_apply (lora/lora.h). Load-time LoRAs
 * (sdc_load_options) stay for the model's life; request LoRAs (<lora:...>
 * tags) are fused over them in a weights overlay and put back when a later
 * request names other ones. */
#ifndef SDC_PIPELINE_MODEL_LORA_H
#define SDC_PIPELINE_MODEL_LORA_H

#include "family/model.h"

/* opt->loras in order, opt->lora_report after each (sdc_model_load's step
 * after the components load). */
sdc_status model_fuse_loras(sdc_model *m, const sdc_load_options *opt);

/* One LoRA of a request: its file and the scales of the text encoders and the UNet. */
typedef struct {
    const char *path;
    float te, unet;
} model_lora_use;

/* The model's request LoRAs become exactly use[0..n) (n = 0: none): nothing
 * happens when they already are; else the overlay of the last set is
 * dropped (the weights read the load-time values again, bit for bit) and
 * the new set is fused in order. On failure the model is left without
 * request LoRAs. SDC_ERR_UNSUPPORTED on a CUDA model (its weights live on
 * the GPU; load LoRAs there with sdc_load_options). */
sdc_status model_set_request_loras(sdc_model *m, const model_lora_use *use, int n);
/* Frees what model_set_request_loras keeps (sdc_model_free). */
void model_request_loras_free(sdc_model *m);

#endif
