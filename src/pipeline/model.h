/* model.h - what a loaded pipeline holds (internal to src/pipeline). One
 * loaded model serves every request: the CLI, batches and the server. */
#ifndef SDC_PIPELINE_MODEL_H
#define SDC_PIPELINE_MODEL_H

#include <cjson/cJSON.h>

#include "nn/unet.h"
#include "nn/vae.h"
#include "sdc.h"
#include "text/clip_text_model.h"
#include "text/clip_tokenizer.h"

typedef enum { FAMILY_SD, FAMILY_SDXL } model_family;

struct sdc_model {
    op_ctx *cx; /* the backend context every component runs in (owned; freed last) */
    char *path, *name;
    model_family family;
    clip_tokenizer *tok, *tok2;  /* tok2/te2: SDXL's second (OpenCLIP bigG) encoder */
    clip_text_model *te, *te2;
    sdc_unet *unet;
    sdc_vae *vae;
    cJSON *sched_json;           /* scheduler_config.json as written */
    int force_zeros_for_empty_prompt;
    int vae_scale;               /* pixels per latent (8) */
    struct single_file_weights *sf; /* single-file checkpoints: what te/te2/vae borrow (single_file.h) */
    /* activation precision of each component on a device backend (all
     * OP_F32 on the CPU, where op_compute() decides instead) */
    op_dtype te_dt, unet_dt, vae_dt;
    /* the last request's UNet runner with its step graph, kept for the next
     * request of the same shapes when the graph's memory is small
     * (generate.c); requests on one model run one at a time */
    struct unet_runner *unet_run;
    /* the text encoders' runners (te, te2) with their graphs, kept on device
     * backends for the next request (text_conditioning.c) */
    struct clip_runner *te_run[2];
};

#endif
