/* plan.c - index arithmetic over a prompts file: which line, seed and
 * settings each global image index has, and which neighbours it may be
 * batched with. Pure functions of the file and the command line. */
#include "dataset/plan.h"

#include <stdlib.h>
#include <string.h>

#include "dataset/hash.h"

sdc_status plan_build(plan *p, const prompt_list *l, int images_per_prompt, uint64_t base_seed,
                      const sdc_request *base, const char *what) {
    memset(p, 0, sizeof *p);
    if (images_per_prompt < 1 || images_per_prompt > PROMPTS_MAX_COUNT)
        return sdc_fail(SDC_ERR_ARG, "images per prompt %d out of range (1..%d)", images_per_prompt, PROMPTS_MAX_COUNT);
    p->first = malloc(((size_t)l->n + 1) * sizeof(int64_t));
    if (!p->first) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    int64_t t = 0;
    for (int i = 0; i < l->n; i++) {
        p->first[i] = t;
        t += l->e[i].count ? l->e[i].count : images_per_prompt;
        if (t > PROMPTS_MAX_TOTAL) {
            free(p->first);
            p->first = NULL;
            return sdc_fail(SDC_ERR_ARG, "%s:%d: more than %lld images in all (file names have 8 digits)", what,
                            l->e[i].line, (long long)PROMPTS_MAX_TOTAL);
        }
    }
    p->first[l->n] = t;
    p->total = t;
    p->list = l;
    p->base_seed = base_seed;
    if (base) p->base = *base;
    else sdc_request_init(&p->base);
    return SDC_OK;
}

void plan_free(plan *p) {
    free(p->first);
    memset(p, 0, sizeof *p);
}

int plan_line_of(const plan *p, int64_t index) {
    int lo = 0, hi = p->list->n - 1; /* last line whose first <= index */
    while (lo < hi) {
        int mid = lo + (hi - lo + 1) / 2;
        if (p->first[mid] <= index) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

uint64_t plan_seed(const plan *p, int64_t index) {
    int i = plan_line_of(p, index);
    const prompt_entry *e = &p->list->e[i];
    return e->has_seed ? e->seed + (uint64_t)(index - p->first[i]) : p->base_seed + (uint64_t)index;
}

void plan_request_of(const plan *p, int64_t index, sdc_request *r) {
    const prompt_entry *e = &p->list->e[plan_line_of(p, index)];
    const sdc_request *b = &p->base;
    *r = *b;
    r->prompts = (const char *const *)&e->prompt;
    r->nprompts = 1;
    r->batch = 1;
    r->batch_size = 0;
    if (e->negative) {
        r->negative_prompts = (const char *const *)&e->negative;
        r->nnegative = 1;
    } else {
        r->nnegative = b->negative_prompts ? 1 : 0;
    }
    r->seed = plan_seed(p, index);
    r->steps = e->steps ? e->steps : b->steps;
    r->guidance = e->guidance >= 0 ? e->guidance : b->guidance;
    r->width = e->width ? e->width : b->width;
    r->height = e->height ? e->height : b->height;
    r->scheduler = e->scheduler ? e->scheduler : b->scheduler;
}

static int same_str(const char *a, const char *b) { return a == b || (a && b && !strcmp(a, b)); }

/* one UNet call can hold both: same settings, a negative prompt for both or neither */
static int batchable(const sdc_request *a, const sdc_request *b) {
    return a->steps == b->steps && a->guidance == b->guidance && a->width == b->width && a->height == b->height &&
           same_str(a->scheduler, b->scheduler) && !a->negative_prompts == !b->negative_prompts;
}

int64_t plan_run_end(const plan *p, int64_t index, int64_t limit) {
    if (limit > p->total) limit = p->total;
    int i = plan_line_of(p, index);
    sdc_request s0, s;
    plan_request_of(p, index, &s0);
    int64_t end = p->first[i + 1];
    while (end < limit) { /* the next line joins when it batches and its seeds continue */
        plan_request_of(p, end, &s);
        if (!batchable(&s0, &s) || plan_seed(p, end) != plan_seed(p, end - 1) + 1) break;
        end = p->first[plan_line_of(p, end) + 1];
    }
    return end < limit ? end : limit;
}

uint64_t plan_digest(const plan *p) {
    uint64_t h = hash_u64(HASH_INIT, (uint64_t)p->list->n);
    for (int i = 0; i < p->list->n; i++) { /* what each line asks for; flags are recorded on their own */
        const prompt_entry *e = &p->list->e[i];
        uint32_t g;
        memcpy(&g, &e->guidance, 4);
        h = hash_str(h, e->prompt);
        h = hash_str(h, e->negative);
        h = hash_u64(h, e->has_seed ? e->seed : ~0ull);
        h = hash_u64(h, (uint64_t)e->steps);
        h = hash_u64(h, g);
        h = hash_u64(h, (uint64_t)e->width);
        h = hash_u64(h, (uint64_t)e->height);
        h = hash_str(h, e->scheduler);
        h = hash_u64(h, (uint64_t)e->count);
    }
    return h;
}
