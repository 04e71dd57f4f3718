/* plan.h - the global image indices of a prompts file: line i owns
 * indices [first, first + count); image j's seed is base + j, or, when its
 * line gives a seed S, S + (j - first). Settings resolve line > the base
 * request (the command line) > model default. Runs of images that may share one sdc_generate call (same
 * settings, consecutive seeds) are found here, so that which images go
 * through a UNet call together is a function of the indices alone. */
#ifndef SDC_DATASET_PLAN_H
#define SDC_DATASET_PLAN_H

#include <stdint.h>

#include "dataset/prompts_file.h"
#include "sdc.h"

typedef struct {
    const prompt_list *list;
    int64_t *first;  /* [list->n + 1]: first index of each line; first[n] = total */
    int64_t total;
    uint64_t base_seed;
    /* the settings lines override: steps, guidance, width, height, scheduler
     * (0 / < 0 / NULL: the model's default) and the negative prompt
     * (negative_prompts[0], or none); the rest as every image's */
    sdc_request base;
} plan;

/* images_per_prompt: count of lines that give none. Fails (naming the file and
 * line) when the total exceeds PROMPTS_MAX_TOTAL. */
sdc_status plan_build(plan *p, const prompt_list *l, int images_per_prompt, uint64_t base_seed,
                      const sdc_request *base, const char *what);
void plan_free(plan *p);

int plan_line_of(const plan *p, int64_t index); /* entry number of an index */
uint64_t plan_seed(const plan *p, int64_t index);
/* The request of one image: the base with its line's prompt, negative
 * prompt, seed and settings (one prompt, batch 1). Its strings point into
 * the plan's list and base. */
void plan_request_of(const plan *p, int64_t index, sdc_request *r);
/* The end of the run of images from `index` (exclusive, <= limit) that can
 * share one request: same settings and negative presence, consecutive seeds. */
int64_t plan_run_end(const plan *p, int64_t index, int64_t limit);
/* 64-bit digest of what the file's lines ask for (prompts, seeds, counts,
 * settings); the command line's defaults are left out (recorded on their own). */
uint64_t plan_digest(const plan *p);

#endif
