/* model.h - what a loaded model holds: src/family loads it, src/pipeline
 * runs it. One loaded model serves every request (the CLI, batches, the
 * server), one request at a time. */
#ifndef SDC_FAMILY_MODEL_H
#define SDC_FAMILY_MODEL_H

#include <cjson/cJSON.h>

#include "family/family.h"
#include "nn/taesd.h"
#include "nn/unet.h"
#include "nn/vae.h"
#include "sdc.h"
#include "text/clip_text_model.h"
#include "text/clip_tokenizer.h"

#define MODEL_MAX_TEXT 2 /* text encoders (SDXL: CLIP ViT-L and OpenCLIP bigG) */

struct sdc_model {
    op_ctx *cx; /* the backend context every component runs in (owned; freed last) */
    char *path, *name;
    int is_file;              /* a single-file checkpoint (else a diffusers folder) */
    const model_family *fam;
    int ntext;                /* text encoders: tok[i] feeds te[i] */
    clip_tokenizer *tok[MODEL_MAX_TEXT];
    clip_text_model *te[MODEL_MAX_TEXT];
    sdc_unet *unet;
    sdc_vae *vae;
    sdc_taesd *taesd;         /* sdc_load_options.taesd, or NULL: decodes and draws previews */
    cJSON *sched_json;        /* scheduler_config.json as written */
    int force_zeros_for_empty_prompt;
    int vae_scale;            /* pixels per latent (8) */
    struct single_file_weights *sf; /* single-file checkpoints: what te/vae borrow (single_file.h) */
    /* activation precision of each component on a device backend (all
     * OP_F32 on the CPU, where op_compute() decides instead) */
    op_dtype te_dt, unet_dt, vae_dt, taesd_dt;
    /* the last request's UNet runner with its step graph, kept for the next
     * request of the same shapes when the graph's memory is small
     * (generate.c); requests on one model run one at a time */
    struct unet_runner *unet_run;
    /* the text encoders' runners with their graphs, kept on device backends
     * for the next request (clip_unet_vae.c) */
    struct clip_runner *te_run[MODEL_MAX_TEXT];
};

#endif
