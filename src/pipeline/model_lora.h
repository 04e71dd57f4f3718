/* model_lora.h - the LoRAs of sdc_load_options fused into a loaded model:
 * the glue between the model's components and lora_apply (lora/lora.h). */
#ifndef SDC_PIPELINE_MODEL_LORA_H
#define SDC_PIPELINE_MODEL_LORA_H

#include "family/model.h"

/* opt->loras in order, opt->lora_report after each (sdc_model_load's step
 * after the components load). */
sdc_status model_fuse_loras(sdc_model *m, const sdc_load_options *opt);

#endif
