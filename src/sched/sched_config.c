/* sched_config.c - scheduler configs with diffusers' from_config semantics:
 * the target class's __init__ arguments (its registry row's key table) are
 * read from the JSON when present (whatever class wrote the file) and take
 * the TARGET class's defaults when absent. Keys the target class does not
 * take are ignored. */
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "io/json.h"
#include "sched/sched_internal.h"

/* where a key's field lives: sched_config itself or the sampler's options bytes */
static unsigned char *field(sched_config *c, const sched_key *k, size_t off) {
    return (k->in_opts ? c->opts : (unsigned char *)c) + off;
}
static const unsigned char *cfield(const sched_config *c, const sched_key *k, size_t off) {
    return (k->in_opts ? c->opts : (const unsigned char *)c) + off;
}

/* the fields are copied with memcpy: an options struct is stored as bytes */
static void put_int(sched_config *c, const sched_key *k, size_t off, int v) { memcpy(field(c, k, off), &v, sizeof v); }
static void put_num(sched_config *c, const sched_key *k, double v) { memcpy(field(c, k, k->off), &v, sizeof v); }
static int get_int(const sched_config *c, const sched_key *k, size_t off) {
    int v;
    memcpy(&v, cfield(c, k, off), sizeof v);
    return v;
}
static double get_num(const sched_config *c, const sched_key *k) {
    double v;
    memcpy(&v, cfield(c, k, k->off), sizeof v);
    return v;
}

static void put_default(sched_config *c, const sched_key *k) {
    switch (k->type) {
    case SCHED_K_INT:
    case SCHED_K_BOOL: put_int(c, k, k->off, k->i); break;
    case SCHED_K_NUM: put_num(c, k, k->num); break;
    case SCHED_K_STR: snprintf((char *)field(c, k, k->off), k->size, "%s", k->str); break;
    case SCHED_K_OPT_NUM: /* None */
        put_num(c, k, 0.0);
        put_int(c, k, k->has_off, 0);
        break;
    case SCHED_K_NULLABLE: put_int(c, k, k->has_off, 0); break;
    case SCHED_K_INT_LIST: memset(field(c, k, k->off), 0, sizeof(sched_int_list)); break;
    }
}

void sched_config_defaults(const sched_def *d, sched_config *c) {
    memset(c, 0, sizeof *c);
    c->def = d;
    assert(d->opts_size <= SCHED_OPTS_SIZE);
    for (const sched_key *k = d->keys; k->key; k++) put_default(c, k);
}

int sched_takes_key(const sched_def *d, const char *key) {
    if (!d || !key) return 0;
    for (const sched_key *k = d->keys; k->key; k++)
        if (!strcmp(k->key, key)) return 1;
    return 0;
}

cJSON *sched_config_value(const sched_config *c, const char *key) {
    if (!c->def || !key) return NULL;
    for (const sched_key *k = c->def->keys; k->key; k++) {
        if (strcmp(k->key, key)) continue;
        switch (k->type) {
        case SCHED_K_INT: return cJSON_CreateNumber(get_int(c, k, k->off));
        case SCHED_K_BOOL: return cJSON_CreateBool(get_int(c, k, k->off));
        case SCHED_K_NUM: return cJSON_CreateNumber(get_num(c, k));
        case SCHED_K_STR: return cJSON_CreateString((const char *)cfield(c, k, k->off));
        case SCHED_K_OPT_NUM: return get_int(c, k, k->has_off) ? cJSON_CreateNumber(get_num(c, k)) : cJSON_CreateNull();
        case SCHED_K_NULLABLE: return get_int(c, k, k->has_off) ? cJSON_CreateTrue() : cJSON_CreateNull();
        case SCHED_K_INT_LIST: {
            sched_int_list l;
            memcpy(&l, cfield(c, k, k->off), sizeof l);
            return cJSON_CreateIntArray(l.v, l.n);
        }
        }
    }
    return NULL;
}

static sdc_status read_key(const cJSON *json, const sched_key *k, sched_config *c, const char *what) {
    switch (k->type) {
    case SCHED_K_INT: {
        long long v;
        SDC_TRY(json_get_int(json, k->key, get_int(c, k, k->off), &v, what));
        if (v < -2147483647 || v > 2147483647) return sdc_fail(SDC_ERR_FORMAT, "%s: '%s' out of range", what, k->key);
        put_int(c, k, k->off, (int)v);
        break;
    }
    case SCHED_K_NUM: {
        double v;
        SDC_TRY(json_get_num(json, k->key, get_num(c, k), &v, what));
        put_num(c, k, v);
        break;
    }
    case SCHED_K_BOOL: {
        int v;
        SDC_TRY(json_get_bool(json, k->key, get_int(c, k, k->off), &v, what));
        put_int(c, k, k->off, v);
        break;
    }
    case SCHED_K_STR: {
        const char *v;
        char *f = (char *)field(c, k, k->off);
        SDC_TRY(json_get_str(json, k->key, f, &v, what));
        if (strlen(v) >= k->size) return sdc_fail(SDC_ERR_ARG, "%s: invalid %s '%.40s'", what, k->key, v);
        if (v != f) snprintf(f, k->size, "%s", v);
        break;
    }
    case SCHED_K_OPT_NUM: {
        double v;
        put_int(c, k, k->has_off, json_has(json, k->key));
        SDC_TRY(json_get_num(json, k->key, 0.0, &v, what));
        put_num(c, k, v);
        break;
    }
    case SCHED_K_NULLABLE: put_int(c, k, k->has_off, json_has(json, k->key)); break;
    case SCHED_K_INT_LIST: {
        sched_int_list l;
        SDC_TRY(json_get_int_list(json, k->key, SCHED_INT_LIST_MAX, l.v, &l.n, what));
        memcpy(field(c, k, k->off), &l, sizeof l);
        break;
    }
    }
    return SDC_OK;
}

/* a string key's field, by name (NULL: the class has no such string key) */
static char *str_field(sched_config *c, const char *key, size_t *size) {
    for (const sched_key *k = c->def->keys; k->key; k++)
        if (k->type == SCHED_K_STR && !strcmp(k->key, key)) {
            *size = k->size;
            return (char *)field(c, k, k->off);
        }
    return NULL;
}

sdc_status sched_config_set_schedule(sched_config *c, sched_schedule k, const char *what) {
    if ((int)k < 0 || k >= SCHED_SCHEDULE_COUNT) return sdc_fail(SDC_ERR_ARG, "%s: no such schedule type", what);
    SDC_TRY(sched_check_schedule(c->def, k, what));
    c->schedule = k;
    if (k != SCHED_SCHEDULE_AUTOMATIC && sched_takes_key(c->def, "use_karras_sigmas"))
        c->use_karras_sigmas = k == SCHED_SCHEDULE_KARRAS;
    return SDC_OK;
}

sdc_status sched_config_from_json(const cJSON *json, const char *name, sched_config *cfg) {
    const sched_def *d;
    int karras = 0, by_class;
    const char *what = "scheduler config";
    if (json && !cJSON_IsObject(json)) return sdc_fail(SDC_ERR_FORMAT, "%s: not a JSON object", what);
    if (name) {
        if (!(d = sched_find(name, &karras))) return sched_unknown(name);
        if (karras) {
            char how[96];
            snprintf(how, sizeof how, "the Karras schedule ('%.60s')", name);
            SDC_TRY(sched_check_karras(d, how));
        }
    } else {
        const cJSON *cn = json ? cJSON_GetObjectItemCaseSensitive(json, "_class_name") : NULL;
        if (!cJSON_IsString(cn)) {
            char valid[512];
            sched_list_names(SCHED_LIST_NAMES, ", ", ", ", valid, sizeof valid);
            return sdc_fail(SDC_ERR_ARG, "%s: no \"_class_name\" and no scheduler name given (valid: %s)", what, valid);
        }
        if (!(d = sched_find(cn->valuestring, NULL))) {
            sched_unknown(cn->valuestring);
            return sdc_wrap(SDC_ERR_ARG, "%s: _class_name", what);
        }
    }
    /* a class name alone: the config's value of the variant key picks the row */
    by_class = !name || !strcmp(name, d->info.diffusers_class);
    if (by_class && d->variant_key) {
        const cJSON *v = json ? cJSON_GetObjectItemCaseSensitive(json, d->variant_key) : NULL;
        d = sched_variant_row(d, cJSON_IsString(v) ? v->valuestring : NULL);
    }
    sched_config c;
    sched_config_defaults(d, &c);
    for (const sched_key *k = d->keys; k->key; k++) {
        if (!json || !cJSON_GetObjectItemCaseSensitive(json, k->key)) {
            if (c.n_defaulted < SCHED_MAX_DEFAULTED) c.defaulted[c.n_defaulted++] = k->key;
            continue;
        }
        SDC_TRY(read_key(json, k, &c, what));
    }
    /* a row picked by its own name is its variant, whatever the config says ("dpmpp_2m_sde" =
     * DPMSolverMultistepScheduler.from_config(config, algorithm_type="sde-dpmsolver++")) */
    if (!by_class && d->variant_key) {
        size_t size;
        char *f = str_field(&c, d->variant_key, &size);
        if (f) snprintf(f, size, "%s", d->variant_value);
    }
    /* "DPM++ 2M Karras" = dpmpp_2m with the Karras schedule */
    if (karras) SDC_TRY(sched_config_set_schedule(&c, SCHED_SCHEDULE_KARRAS, "the Karras schedule"));
    *cfg = c;
    return SDC_OK;
}
