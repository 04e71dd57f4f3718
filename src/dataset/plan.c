/* plan.c - index arithmetic over a prompts file: which line, seed and
 * settings each global image index has, and which neighbours it may be
 * batched with. Pure functions of the file and the command line. */
#include "dataset/plan.h"

#include <stdlib.h>
#include <string.h>

#include "dataset/hash.h"

sdc_status plan_build(plan *p, const prompt_list *l, int images_per_prompt, uint64_t base_seed,
                      const plan_defaults *def, const char *what) {
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
    if (def) p->def = *def;
    else p->def.guidance = -1.0f;
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

void plan_settings_of(const plan *p, int64_t index, plan_settings *s) {
    const prompt_entry *e = &p->list->e[plan_line_of(p, index)];
    s->prompt = e->prompt;
    s->negative = e->negative ? e->negative : p->def.negative;
    s->steps = e->steps ? e->steps : p->def.steps;
    s->guidance = e->guidance >= 0 ? e->guidance : p->def.guidance;
    s->width = e->width ? e->width : p->def.width;
    s->height = e->height ? e->height : p->def.height;
    s->scheduler = e->scheduler ? e->scheduler : p->def.scheduler;
}

static int same_str(const char *a, const char *b) { return a == b || (a && b && !strcmp(a, b)); }

static int batchable(const plan_settings *a, const plan_settings *b) {
    return a->steps == b->steps && a->guidance == b->guidance && a->width == b->width && a->height == b->height &&
           same_str(a->scheduler, b->scheduler) && !a->negative == !b->negative;
}

int64_t plan_run_end(const plan *p, int64_t index, int64_t limit) {
    if (limit > p->total) limit = p->total;
    int i = plan_line_of(p, index);
    plan_settings s0, s;
    plan_settings_of(p, index, &s0);
    int64_t end = p->first[i + 1];
    while (end < limit) { /* the next line joins when it batches and its seeds continue */
        plan_settings_of(p, end, &s);
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
