/* plan_run.c - a plan's images through sdc_generate, in index order. */
#include "dataset/plan_run.h"

#define MAX_BATCH 64

static sdc_status run_batch(sdc_model *m, const sdc_request *base, const plan *p, int64_t g, int64_t gend,
                            plan_image_fn on_image, void *ctx) {
    const char *pos[MAX_BATCH], *neg[MAX_BATCH];
    plan_settings s;
    for (int64_t j = g; j < gend; j++) {
        plan_settings_of(p, j, &s);
        pos[j - g] = s.prompt;
        neg[j - g] = s.negative;
    }
    plan_settings_of(p, g, &s);
    sdc_request r = *base;
    r.prompts = pos;
    r.nprompts = (int)(gend - g);
    r.batch = 1;
    r.batch_size = 0;
    r.negative_prompts = s.negative ? neg : NULL;
    r.nnegative = s.negative ? r.nprompts : 0;
    r.seed = plan_seed(p, g);
    r.steps = s.steps;
    r.guidance = s.guidance;
    r.width = s.width;
    r.height = s.height;
    r.scheduler = s.scheduler;
    sdc_image *imgs;
    int n;
    SDC_TRY(sdc_generate(m, &r, &imgs, &n));
    sdc_status st = SDC_OK;
    for (int k = 0; k < n && !st; k++) st = on_image(ctx, g + k, &imgs[k]);
    sdc_images_free(imgs, n);
    return st;
}

sdc_status plan_run(sdc_model *m, const sdc_request *base, const plan *p, plan_image_fn on_image, void *ctx) {
    int bs = base->batch_size > 0 && base->batch_size <= MAX_BATCH ? base->batch_size : 0;
    for (int64_t w = 0; w < p->total;) {
        int64_t wend;
        if (bs) {
            wend = w + bs < p->total ? w + bs : p->total;
        } else { /* one line at a time */
            int line = plan_line_of(p, w);
            wend = p->first[line + 1];
            if (wend - w > MAX_BATCH) wend = w + MAX_BATCH;
        }
        for (int64_t g = w, gend; g < wend; g = gend) {
            gend = plan_run_end(p, g, wend);
            SDC_TRY(run_batch(m, base, p, g, gend, on_image, ctx));
        }
        w = wend;
    }
    return SDC_OK;
}
