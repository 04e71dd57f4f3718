/* prompts_run.c - sdc_prompts: a prompts file with its plan (which image
 * has which line, seed and settings), run through one loaded model in
 * index order (`sdc generate --prompts`). */
#include <stdlib.h>
#include <string.h>

#include "dataset/plan.h"
#include "sdc.h"

struct sdc_prompts {
    prompt_list list;
    plan p;
};

sdc_status sdc_prompts_load(sdc_prompts **out, const char *path, int images_per_prompt, uint64_t base_seed) {
    sdc_prompts *p = calloc(1, sizeof *p);
    *out = NULL;
    if (!p) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    sdc_status st = prompts_file_load(path, &p->list);
    if (!st) st = plan_build(&p->p, &p->list, images_per_prompt, base_seed, NULL, path);
    if (st) {
        sdc_prompts_free(p);
        return st;
    }
    *out = p;
    return SDC_OK;
}

int64_t sdc_prompts_images(const sdc_prompts *p) { return p->p.total; }

void sdc_prompts_free(sdc_prompts *p) {
    if (!p) return;
    plan_free(&p->p);
    prompts_free(&p->list);
    free(p);
}

/* images [g, gend) of the plan: one request, their own prompts and seeds */
static sdc_status run_batch(sdc_model *m, const plan *p, int64_t g, int64_t gend, sdc_image_fn on_image, void *ctx) {
    const char *pos[SDC_MAX_BATCH], *neg[SDC_MAX_BATCH];
    sdc_request r, one;
    for (int64_t j = g; j < gend; j++) {
        plan_request_of(p, j, &one);
        pos[j - g] = one.prompts[0];
        neg[j - g] = one.negative_prompts ? one.negative_prompts[0] : NULL;
    }
    plan_request_of(p, g, &r);
    r.prompts = pos;
    r.nprompts = (int)(gend - g);
    if (r.negative_prompts) {
        r.negative_prompts = neg;
        r.nnegative = r.nprompts;
    }
    sdc_image *imgs;
    int n;
    SDC_TRY(sdc_generate(m, &r, &imgs, &n));
    sdc_status st = SDC_OK;
    for (int k = 0; k < n && !st; k++) st = on_image(ctx, g + k, &imgs[k]);
    sdc_images_free(imgs, n);
    return st;
}

/* the LoRA tags of image j's prompt equal those of `first` (n of them) */
static int same_loras(const plan *p, int64_t j, const sdc_lora_tag *first, int n) {
    sdc_request one;
    plan_request_of(p, j, &one);
    sdc_lora_tag t[SDC_MAX_PROMPT_LORAS];
    int k;
    if (sdc_prompt_loras(one.prompts[0], NULL, t, &k)) return 0; /* a malformed tag: alone, to fail on its own */
    if (k != n) return 0;
    for (int i = 0; i < n; i++)
        if (strcmp(t[i].name, first[i].name) || t[i].te != first[i].te || t[i].unet != first[i].unet) return 0;
    return 1;
}

/* with a LoRA folder one UNet batch serves one set of <lora:...> tags: the
 * run [g, gend) ends before the first image whose prompt names other ones */
static int64_t lora_run_end(const plan *p, int64_t g, int64_t gend) {
    if (!p->base.lora_dir) return gend;
    sdc_request one;
    plan_request_of(p, g, &one);
    sdc_lora_tag first[SDC_MAX_PROMPT_LORAS];
    int n;
    if (sdc_prompt_loras(one.prompts[0], NULL, first, &n)) return g + 1;
    int64_t j = g + 1;
    while (j < gend && same_loras(p, j, first, n)) j++;
    return j;
}

sdc_status sdc_prompts_generate(sdc_model *m, const sdc_request *base, const sdc_prompts *pr, sdc_image_fn on_image,
                                void *ctx) {
    plan p = pr->p; /* the same plan with the caller's settings */
    p.base = *base;
    int bs = base->batch_size > 0 && base->batch_size <= SDC_MAX_BATCH ? base->batch_size : 0;
    for (int64_t w = 0; w < p.total;) {
        int64_t wend;
        if (bs) {
            wend = w + bs < p.total ? w + bs : p.total;
        } else { /* one line at a time */
            int line = plan_line_of(&p, w);
            wend = p.first[line + 1];
            if (wend - w > SDC_MAX_BATCH) wend = w + SDC_MAX_BATCH;
        }
        for (int64_t g = w, gend; g < wend; g = gend) {
            gend = lora_run_end(&p, g, plan_run_end(&p, g, wend));
            SDC_TRY(run_batch(m, &p, g, gend, on_image, ctx));
        }
        w = wend;
    }
    return SDC_OK;
}
