/* registry.c - the samplers sdc implements: SCHED_ROWS names each one's
 * row (`const sched_def sched_NAME`, defined in its own file). Adding a
 * sampler is its file plus its name here. The order is the order of every
 * list (help texts, error messages, A1111's /sdapi/v1/samplers).
 *
 * Name lookups for the library (sched_find) and its callers (sdc_sampler_*). */
#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "sched/sched_internal.h"

/* clang-format off */
#define SCHED_ROWS(X)                                                                                   \
    X(dpmpp_2m) X(dpmpp_2m_sde) X(dpmpp_2s) X(euler_a) X(euler) X(lms) X(heun) X(dpm2) X(dpm2_a)      \
    X(lcm) X(ddim) X(pndm) X(unipc) X(tcd) X(deis)
/* clang-format on */

#define DECLARE_ROW(n) extern const sched_def sched_##n;
#define ROW(n) &sched_##n,
SCHED_ROWS(DECLARE_ROW)
static const sched_def *const k_rows[] = {SCHED_ROWS(ROW)};
#define N_ROWS ((int)(sizeof k_rows / sizeof k_rows[0]))

int sched_count(void) { return N_ROWS; }
const sched_def *sched_at(int i) { return i >= 0 && i < N_ROWS ? k_rows[i] : NULL; }
const sdc_sampler_info *sched_info(const sched_def *d) { return &d->info; }

/* sdc names: case-insensitive, '-' == '_' */
static int name_eq(const char *a, const char *b) {
    for (; *a && *b; a++, b++) {
        int x = tolower((unsigned char)*a), y = tolower((unsigned char)*b);
        if (x == '-') x = '_';
        if (y == '-') y = '_';
        if (x != y) return 0;
    }
    return *a == *b;
}

static int in_list(const char *name, const char *const *list, int (*eq)(const char *, const char *)) {
    for (; list && *list; list++)
        if (eq(name, *list)) return 1;
    return 0;
}

static int ci_eq(const char *a, const char *b) { return !strcasecmp(a, b); }

/* A1111 looks names and aliases up case-insensitively */
static int is_a1111_name(const sched_def *d, const char *name) {
    return ci_eq(name, d->info.a1111_name) || in_list(name, d->info.a1111_aliases, ci_eq);
}

static int is_name(const sched_def *d, const char *name) {
    return name_eq(name, d->info.name) || in_list(name, d->info.aliases, name_eq) ||
           !strcmp(name, d->info.diffusers_class) || is_a1111_name(d, name);
}

static const sched_def *find_a1111(const char *name) {
    for (int i = 0; i < N_ROWS; i++)
        if (is_a1111_name(k_rows[i], name)) return k_rows[i];
    return NULL;
}

/* A1111 before 1.9 folded the schedule into the name: "DPM++ 2M Karras", alias "k_dpmpp_2m_ka" */
static const sched_def *find_legacy_karras(const char *name) {
    char base[64];
    size_t n = strlen(name);
    if (n < sizeof base && n > 7 && !strcasecmp(name + n - 7, " Karras")) {
        memcpy(base, name, n - 7);
        base[n - 7] = 0;
    } else if (n < sizeof base && n > 3 && !strcasecmp(name + n - 3, "_ka")) {
        memcpy(base, name, n - 3);
        base[n - 3] = 0;
    } else {
        return NULL;
    }
    return find_a1111(base);
}

const sched_def *sched_find(const char *name, int *karras) {
    if (karras) *karras = 0;
    if (!name) return NULL;
    for (int i = 0; i < N_ROWS; i++)
        if (is_name(k_rows[i], name)) return k_rows[i];
    const sched_def *d = karras ? find_legacy_karras(name) : NULL;
    if (d) *karras = 1;
    return d;
}

/* the first row of d's class (the one a bare class name finds) */
static const sched_def *class_first(const sched_def *d) {
    for (int i = 0; i < N_ROWS; i++)
        if (!strcmp(k_rows[i]->info.diffusers_class, d->info.diffusers_class)) return k_rows[i];
    return d;
}

static void join(const char *const *names, int k, const char *sep, const char *last_sep, char *out, size_t n) {
    size_t o = 0;
    if (n) out[0] = 0;
    for (int i = 0; i < k && o < n; i++)
        o += (size_t)snprintf(out + o, n - o, "%s%s", i == 0 ? "" : i == k - 1 ? last_sep : sep, names[i]);
}

void sched_list_names(int which, const char *sep, const char *last_sep, char *out, size_t n) {
    const char *names[64];
    int k = 0;
    for (int i = 0; i < N_ROWS && k < 64; i++) {
        const sdc_sampler_info *s = &k_rows[i]->info;
        switch (which) {
        case SCHED_LIST_NAMES: names[k++] = s->name; break;
        case SCHED_LIST_CLASSES:
            if (class_first(k_rows[i]) == k_rows[i]) names[k++] = s->diffusers_class;
            break;
        case SCHED_LIST_A1111: names[k++] = s->a1111_name; break;
        case SCHED_LIST_KARRAS:
            if (s->karras_ok) names[k++] = s->name;
            break;
        }
    }
    join(names, k, sep, last_sep, out, n);
}

void sched_list_takers(sched_schedule sk, const char *sep, const char *last_sep, char *out, size_t n) {
    const char *names[64];
    int k = 0;
    for (int i = 0; i < N_ROWS && k < 64; i++)
        if (k_rows[i]->info.schedules & SCHED_SCHEDULE_BIT(sk)) names[k++] = k_rows[i]->info.name;
    join(names, k, sep, last_sep, out, n);
}

const sched_def *sched_variant_row(const sched_def *d, const char *value) {
    if (!d->variant_key) return d;
    if (!value) { /* the key's default in the class's table */
        for (const sched_key *k = d->keys; k->key; k++)
            if (!strcmp(k->key, d->variant_key)) value = k->str;
    }
    for (int i = 0; value && i < N_ROWS; i++) {
        const sched_def *r = k_rows[i];
        if (r->variant_value && !strcmp(r->variant_value, value) &&
            !strcmp(r->info.diffusers_class, d->info.diffusers_class))
            return r;
    }
    return d;
}

sdc_status sched_check_schedule(const sched_def *d, sched_schedule k, const char *what) {
    if (d->info.schedules & SCHED_SCHEDULE_BIT(k)) return SDC_OK;
    char names[256];
    sched_list_takers(k, ", ", " and ", names, sizeof names);
    return sdc_fail(SDC_ERR_ARG, "%s applies to %s, not to %s", what, names, d->info.name);
}

sdc_status sched_unknown(const char *name) {
    char names[512], classes[1024], a1111[512];
    sched_list_names(SCHED_LIST_NAMES, ", ", ", ", names, sizeof names);
    sched_list_names(SCHED_LIST_CLASSES, ", ", ", ", classes, sizeof classes);
    sched_list_names(SCHED_LIST_A1111, ", ", ", ", a1111, sizeof a1111);
    return sdc_fail(SDC_ERR_ARG, "unknown scheduler '%s' (valid: %s, the diffusers classes %s, or A1111's names %s)",
                    name ? name : "(null)", names, classes, a1111);
}

sdc_status sched_check_karras(const sched_def *d, const char *what) {
    if (d->info.karras_ok) return SDC_OK;
    char names[256];
    sched_list_names(SCHED_LIST_KARRAS, ", ", " and ", names, sizeof names);
    return sdc_fail(SDC_ERR_ARG, "%s applies to %s, not to %s", what, names, d->info.name);
}

sdc_status sched_canonical_name(const char *name, char *out, size_t n) {
    int karras;
    const sched_def *d = sched_find(name, &karras);
    if (!d) return sched_unknown(name);
    if (karras) {
        char how[96];
        snprintf(how, sizeof how, "the Karras schedule ('%.60s')", name);
        SDC_TRY(sched_check_karras(d, how));
    }
    int len = snprintf(out, n, karras ? "%s Karras" : "%s", karras ? d->info.a1111_name : d->info.name);
    if (len < 0 || (size_t)len >= n) return sdc_fail(SDC_ERR_ARG, "scheduler name '%.60s' too long", name);
    return SDC_OK;
}

/* ---- the public view (sdc.h) ---- */

int sdc_sampler_count(void) { return N_ROWS; }

const sdc_sampler_info *sdc_sampler_at(int i) { return i >= 0 && i < N_ROWS ? &k_rows[i]->info : NULL; }

const sdc_sampler_info *sdc_sampler_find(const char *name) {
    const sched_def *d = sched_find(name, NULL);
    return d ? &d->info : NULL;
}

const sdc_sampler_info *sdc_sampler_find_a1111(const char *name, int *karras) {
    if (karras) *karras = 0;
    if (!name) return NULL;
    const sched_def *d = find_a1111(name);
    if (d) return &d->info;
    if (!(d = find_legacy_karras(name)) || !d->info.karras_ok) return NULL;
    if (karras) *karras = 1;
    return &d->info;
}
