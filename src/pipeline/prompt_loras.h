/* prompt_loras.h - A1111's <lora:NAME:W> tags in a request's prompts: found
 * and removed before the text encoders see the prompt, resolved to files of
 * sdc_request.lora_dir, and fused into the model for the request
 * (model_set_request_loras). The infotexts keep the prompts as written. */
#ifndef SDC_PIPELINE_PROMPT_LORAS_H
#define SDC_PIPELINE_PROMPT_LORAS_H

#include "family/model.h"
#include "pipeline/model_lora.h"

typedef struct {
    sdc_request req;         /* the request with the tags removed from its prompts */
    const sdc_request *orig; /* the caller's */
    char **stripped;         /* req.prompts (owned), NULL when no prompt had a tag */
    model_lora_use use[SDC_MAX_PROMPT_LORAS];
    char paths[SDC_MAX_PROMPT_LORAS][4096];
    int nuse;
} prompt_loras;

/* r->lora_dir NULL: nothing is parsed (tags stay text, as in diffusers) and
 * request LoRAs of an earlier call are put back. Otherwise every prompt's
 * tags are parsed and looked up; all prompts of one request must name the
 * same LoRAs (one set of weights serves one UNet batch). m NULL: check only. */
sdc_status prompt_loras_begin(sdc_model *m, const sdc_request *r, prompt_loras *pl);
/* The infotexts of images made from pl->req, rewritten to the prompts as written. */
sdc_status prompt_loras_infotexts(const prompt_loras *pl, sdc_image *imgs, int n);
void prompt_loras_end(prompt_loras *pl);

#endif
