/* single_file.h - a single-file checkpoint (SD 1.x / SD 2.x / SDXL in the
 * original LDM/SGM layout, as A1111, ComfyUI and Civitai use) loaded into an
 * sdc_model. The file's keys are mapped to the engine's diffusers names as
 * views into the file's mapping (nothing is copied except OpenCLIP's
 * transposed text_projection and what weights.c widens from f16/bf16), so
 * the components load with their ordinary *_load_weights entries. The
 * architecture comes from the built-in real-family configs
 * (builtin_configs.h) or from a diffusers folder (config_dir), the
 * tokenizers from a search path (single_file_find_tokenizer). */
#ifndef SDC_FAMILY_SINGLE_FILE_H
#define SDC_FAMILY_SINGLE_FILE_H

#include <cjson/cJSON.h>

#include "family/checkpoint_detect.h"
#include "family/model.h"

/* Everything decided about a file before any weight is read (also what
 * `sdc info` reports). */
typedef struct {
    ckpt_info det;
    const builtin_pipeline *builtin; /* NULL when config_dir supplied the configs */
    const char *config_dir;          /* borrowed from the load options */
    unet_config unet;
    vae_config vae;
    clip_text_config te, te2; /* te2: SDXL only */
    cJSON *sched;             /* scheduler_config.json, prediction_type already resolved; owned */
    int force_zeros_for_empty_prompt;
    char prediction[16];          /* what the scheduler will use: "epsilon" / "v_prediction" / "sample" */
    char prediction_source[128];  /* why */
} single_file_plan;

sdc_status single_file_plan_make(const st_file *f, const sdc_load_options *opt, single_file_plan *p);
void single_file_plan_free(single_file_plan *p);

/* The engine name of one key of the file: which component it belongs to and
 * how it becomes that component's parameter (or SF_UNUSED: EMA copies, the
 * layers and projection a config leaves out, anything unknown). */
typedef enum { SF_NONE = -1, SF_UNET, SF_VAE, SF_TE, SF_TE2 } sf_component;
typedef enum {
    SF_UNUSED,
    SF_SAME,      /* the tensor as stored, under `out` */
    SF_QKV,       /* OpenCLIP in_proj: three row blocks -> out (q_proj) and its k_proj / v_proj twins */
    SF_TRANSPOSED /* OpenCLIP text_projection, transposed -> out */
} sf_map_kind;
sf_map_kind single_file_map_key(const single_file_plan *p, const char *key, sf_component *comp, char *out,
                                size_t n);

/* The family a checkpoint belongs to, from its header (what ckpt_detect
 * finds; a file that is no checkpoint is refused with what it is). */
sdc_status single_file_family(const char *path, const model_family **fam);
/* path: a .safetensors checkpoint of m->fam with m->ntext text encoders,
 * loaded into m (its context already made; sdc_model_free cleans up after a
 * failure). The families' load_file. */
sdc_status single_file_load(sdc_model *m, const char *path, const sdc_load_options *opt);
/* Close what the text encoders and the VAE borrowed; call after freeing them. */
void single_file_release(sdc_model *m);

/* Where a tokenizer of a single file comes from, in this order:
 *   1. opt->tokenizer_dir D: D/tokenizer[_2]/, else D/ itself
 *   2. opt->config_dir C: C/tokenizer[_2]/ (its pad token is trusted)
 *   3. beside the checkpoint: <dir of file>/tokenizer[_2]/
 *   4. the cache: ${XDG_CACHE_HOME:-~/.cache}/sdc/tokenizers/clip-vit-large-patch14/
 *      (SDXL's second: .../clip-vit-bigg-14/ first)
 * The second SDXL tokenizer may also come from the first one's folder: both
 * are the CLIP BPE vocabulary, the OpenCLIP side pads with "!" (pad below).
 * second: SDXL's tokenizer_2. */
typedef struct {
    char dir[4096];
    const char *pad; /* pad token override ("!" for OpenCLIP encoders), or NULL */
} tokenizer_source;
sdc_status single_file_find_tokenizer(const char *ckpt_path, const sdc_load_options *opt, const single_file_plan *p,
                                      int second, tokenizer_source *out);

/* Set prediction_type in a scheduler config: "epsilon", "v" / "v_prediction"
 * or "sample"; `what` names the source of the value in errors. */
sdc_status sched_json_set_prediction(cJSON *sched, const char *prediction, const char *what);

/* 1 when the file starts like a PyTorch pickle / zip (.ckpt, .pt, .bin). */
int file_is_pickle(const char *path);

#endif
