/* dataset_config.h - DIR/sdc-dataset.json: what a data set folder holds
 * (model identity, prompts digest, seed, settings, layout), one key per
 * line. A run whose arguments render different lines is refused, naming the
 * first key that differs, so two data sets are never mixed. The "resolved"
 * line records the model defaults the images used. Keys added after the
 * first release ("device", "dtype", "rng", "loras") appear only with values
 * other than the defaults, so folders made before them still resume. */
#ifndef SDC_DATASET_DATASET_CONFIG_H
#define SDC_DATASET_DATASET_CONFIG_H

#include <stdint.h>

#include "core/status.h"
#include "dataset/jsonw.h"

#define DS_CONFIG_NAME "sdc-dataset.json"

/* A LoRA fused into the model: file name (no folder, so copies on other
 * machines agree), scale, file_fingerprint() of its contents. */
typedef struct {
    const char *name;
    float scale;
    uint64_t fingerprint;
} ds_lora;

typedef struct {
    const char *model;           /* folder name (written into every PNG) */
    uint64_t model_fingerprint;
    const char *variant;
    const char *device, *dtype;  /* NULL: cpu / the device's default precision (no line) */
    const ds_lora *loras;        /* [nloras] in the order fused; 0: none (no line) */
    int nloras;
    uint64_t prompts_digest;
    int nprompts;
    int64_t images;
    int images_per_prompt;
    uint64_t seed;
    const char *rng;             /* NULL: the cpu generator (no line) */
    const char *negative;
    int steps;                   /* 0 / < 0 / NULL: the model's default */
    float guidance;
    int width, height;
    const char *scheduler, *timestep_spacing;
    int karras;                  /* -1: the scheduler config's */
    const char *schedule;        /* a schedule type other than automatic/uniform/karras (NULL: no line) */
    float eta;
    int clip_skip;
    const char *format;
    int shard_size, batch_size;
} ds_identity;

typedef struct {
    int steps;
    float guidance;
    int width, height;
    char scheduler[32];
} ds_resolved;

/* The whole file. */
void ds_config_render(jbuf *b, const ds_identity *id, const ds_resolved *res);
/* text: the stored file. SDC_OK when its identity lines equal those of id
 * (and *res gets its resolved values); else SDC_ERR_ARG naming the first key
 * that differs with both values. dir names the folder in messages. */
sdc_status ds_config_check(const char *dir, const char *text, const ds_identity *id, ds_resolved *res);

#endif
