/* model_set.c - the checkpoint list and the resident model (model_set.h). */
#include "model_set.h"

#include <dirent.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_DEPTH 3
#define MAX_MODELS 4096

/* a loaded model that is not the active one (--keep-models) */
typedef struct {
    ms_entry e;
    sdc_model *m;
    sdc_model_info info;
} parked_model;

struct model_set {
    pthread_rwlock_t lock;
    char *dir; /* absolute, NULL without --models-dir */
    const sdc_load_options *lo;
    ms_entry *e;
    int n, cap;
    ms_entry cur; /* the active model's entry (owned) */
    sdc_model *model;
    sdc_model_info info;
    int keep;                         /* models kept loaded, the active one included */
    parked_model parked[MS_MAX_KEEP]; /* the others, least recently used first */
    int nparked;
};

static void entry_free(ms_entry *e) {
    free(e->title), free(e->model_name), free(e->stem), free(e->path);
    memset(e, 0, sizeof *e);
}

static int has_suffix(const char *s, const char *suf) {
    size_t n = strlen(s), k = strlen(suf);
    return n > k && !strcasecmp(s + n - k, suf);
}

/* an entry for path, named by rel (its path relative to the models folder) */
static int entry_make(ms_entry *e, const char *path, const char *rel, int is_file) {
    memset(e, 0, sizeof *e);
    char stem[1024];
    sdc_model_name_from_path(path, is_file, stem, sizeof stem);
    e->title = strdup(rel);
    e->path = strdup(path);
    e->stem = strdup(stem);
    /* A1111: os.path.splitext(name.replace("/", "_"))[0] */
    e->model_name = strdup(rel);
    if (e->model_name) {
        for (char *p = e->model_name; *p; p++)
            if (*p == '/' || *p == '\\') *p = '_';
        char *dot = strrchr(e->model_name, '.');
        if (is_file && dot && dot != e->model_name) *dot = 0;
    }
    if (!e->title || !e->path || !e->stem || !e->model_name) return entry_free(e), 0;
    return 1;
}

static int entry_copy(ms_entry *d, const ms_entry *s) {
    d->title = strdup(s->title), d->model_name = strdup(s->model_name), d->stem = strdup(s->stem);
    d->path = strdup(s->path);
    if (!d->title || !d->model_name || !d->stem || !d->path) return entry_free(d), 0;
    return 1;
}

static int push(ms_entry **v, int *n, int *cap, const ms_entry *e) {
    if (*n == *cap) {
        ms_entry *g = realloc(*v, (size_t)(*cap = *cap ? 2 * *cap : 16) * sizeof *g);
        if (!g) return 0;
        *v = g;
    }
    (*v)[(*n)++] = *e;
    return 1;
}

static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int walk(const char *abs, const char *rel, int depth, ms_entry **v, int *n, int *cap) {
    DIR *d = opendir(abs);
    if (!d) return depth > 0; /* an unreadable subfolder is skipped */
    char **names = NULL;
    int k = 0, kc = 0, ok = 1;
    for (struct dirent *de; ok && (de = readdir(d));) {
        if (de->d_name[0] == '.') continue;
        if (k == kc) {
            char **g = realloc(names, (size_t)(kc = kc ? 2 * kc : 32) * sizeof *g);
            if (!g) ok = 0;
            else names = g;
        }
        if (ok && !(names[k++] = strdup(de->d_name))) ok = 0;
    }
    closedir(d);
    if (ok) qsort(names, (size_t)k, sizeof *names, cmp_name);
    for (int i = 0; ok && i < k && *n < MAX_MODELS; i++) {
        char p[PATH_MAX], r[PATH_MAX], mi[PATH_MAX + 32];
        struct stat sb;
        if ((size_t)snprintf(p, sizeof p, "%s/%s", abs, names[i]) >= sizeof p) continue;
        snprintf(r, sizeof r, "%s%s%s", rel, *rel ? "/" : "", names[i]);
        if (stat(p, &sb)) continue;
        ms_entry e;
        if (S_ISDIR(sb.st_mode)) {
            snprintf(mi, sizeof mi, "%s/model_index.json", p);
            if (!access(mi, R_OK)) ok = entry_make(&e, p, r, 0) && push(v, n, cap, &e);
            else if (depth < MAX_DEPTH) ok = walk(p, r, depth + 1, v, n, cap);
        } else if (S_ISREG(sb.st_mode) && has_suffix(names[i], ".safetensors")) {
            ok = entry_make(&e, p, r, 1) && push(v, n, cap, &e);
        }
    }
    for (int i = 0; i < k; i++) free(names[i]);
    free(names);
    return ok;
}

/* the same file or folder (a link into the models folder is its target) */
static int same_file(const char *a, const char *b) {
    struct stat x, y;
    if (!strcmp(a, b)) return 1;
    return !stat(a, &x) && !stat(b, &y) && x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

static int cmp_title(const void *a, const void *b) {
    return strcasecmp(((const ms_entry *)a)->title, ((const ms_entry *)b)->title);
}

/* the folder's models, and the resident one when it lives elsewhere */
static int scan(model_set *ms, ms_entry **v, int *n, char *err, size_t en) {
    int cap = 0;
    *v = NULL;
    *n = 0;
    int ok = 1;
    if (ms->dir) {
        struct stat sb;
        if (stat(ms->dir, &sb) || !S_ISDIR(sb.st_mode)) {
            snprintf(err, en, "--models-dir %s: not a readable folder", ms->dir);
            return 0;
        }
        ok = walk(ms->dir, "", 0, v, n, &cap);
        if (ok) qsort(*v, (size_t)*n, sizeof **v, cmp_title);
    }
    int have = 0;
    for (int i = 0; ok && ms->cur.path && i < *n; i++) have |= same_file((*v)[i].path, ms->cur.path);
    if (ok && ms->cur.path && !have) {
        ms_entry e;
        ok = entry_copy(&e, &ms->cur) && push(v, n, &cap, &e);
    }
    if (!ok) {
        for (int i = 0; i < *n; i++) entry_free(&(*v)[i]);
        free(*v);
        *v = NULL, *n = 0;
        snprintf(err, en, "out of memory while listing %s", ms->dir);
    }
    return ok;
}

static void list_free(ms_entry *v, int n) {
    for (int i = 0; i < n; i++) entry_free(&v[i]);
    free(v);
}

/* load path as the resident model (the caller holds the write lock or is alone) */
static sdc_status load(model_set *ms, const char *path) {
    sdc_model *m;
    sdc_status lst = sdc_model_load(&m, path, ms->lo);
    if (lst) return lst;
    ms_entry e = {0};
    const ms_entry *known = NULL;
    for (int i = 0; i < ms->n; i++)
        if (!known && same_file(ms->e[i].path, path)) known = &ms->e[i];
    struct stat sb;
    int is_file = !stat(path, &sb) && S_ISREG(sb.st_mode);
    char name[1024];
    if (!known) { /* outside the folder: named as a folder (its name) or a file (name.ext) */
        const char *b = strrchr(path, '/');
        snprintf(name, sizeof name, "%s", b && b[1] ? b + 1 : path);
    }
    if (known ? !entry_copy(&e, known) : !entry_make(&e, path, name, is_file)) {
        sdc_model_free(m);
        return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    }
    entry_free(&ms->cur);
    ms->cur = e;
    ms->model = m;
    sdc_model_get_info(m, &ms->info);
    return SDC_OK;
}

int ms_open(model_set **out, const char *dir, const char *initial, const sdc_load_options *lo, int keep, char *err,
            size_t n) {
    *out = NULL;
    model_set *ms = calloc(1, sizeof *ms);
    if (!ms) return snprintf(err, n, "out of memory"), 0;
    pthread_rwlock_init(&ms->lock, NULL);
    ms->lo = lo;
    ms->keep = keep < 1 ? 1 : keep > MS_MAX_KEEP ? MS_MAX_KEEP : keep;
    if (dir && !(ms->dir = realpath(dir, NULL))) {
        snprintf(err, n, "--models-dir %s: not a readable folder", dir);
        ms_free(ms);
        return 0;
    }
    if (!scan(ms, &ms->e, &ms->n, err, n)) {
        ms_free(ms);
        return 0;
    }
    char *abs = initial ? realpath(initial, NULL) : NULL;
    const char *first = abs ? abs : initial ? initial : ms->n ? ms->e[0].path : NULL;
    if (!first) {
        snprintf(err, n, "--models-dir %s has no model (diffusers folders or .safetensors files)", ms->dir);
        ms_free(ms);
        return 0;
    }
    sdc_status st = load(ms, first);
    free(abs);
    if (st) {
        snprintf(err, n, "%s", sdc_last_error());
        ms_free(ms);
        return 0;
    }
    list_free(ms->e, ms->n); /* listed again with the resident model among them */
    ms->e = NULL, ms->n = 0;
    if (!scan(ms, &ms->e, &ms->n, err, n)) {
        ms_free(ms);
        return 0;
    }
    *out = ms;
    return 1;
}

void ms_free(model_set *ms) {
    if (!ms) return;
    sdc_model_free(ms->model);
    for (int i = 0; i < ms->nparked; i++) {
        sdc_model_free(ms->parked[i].m);
        entry_free(&ms->parked[i].e);
    }
    list_free(ms->e, ms->n);
    entry_free(&ms->cur);
    free(ms->dir);
    pthread_rwlock_destroy(&ms->lock);
    free(ms);
}

int ms_rescan(model_set *ms, char *err, size_t n) {
    ms_entry *v;
    int k;
    pthread_rwlock_rdlock(&ms->lock); /* cur is read; the worker may not swap meanwhile */
    int ok = scan(ms, &v, &k, err, n);
    pthread_rwlock_unlock(&ms->lock);
    if (!ok) return 0;
    pthread_rwlock_wrlock(&ms->lock);
    ms_entry *old = ms->e;
    int oldn = ms->n;
    ms->e = v, ms->n = k;
    pthread_rwlock_unlock(&ms->lock);
    list_free(old, oldn);
    return 1;
}

void ms_read_lock(model_set *ms) { pthread_rwlock_rdlock(&ms->lock); }
void ms_read_unlock(model_set *ms) { pthread_rwlock_unlock(&ms->lock); }
int ms_count(const model_set *ms) { return ms->n; }
const ms_entry *ms_at(const model_set *ms, int i) { return i >= 0 && i < ms->n ? &ms->e[i] : NULL; }
const ms_entry *ms_resident(const model_set *ms) { return &ms->cur; }
sdc_model *ms_model(const model_set *ms) { return ms->model; }
const sdc_model_info *ms_info(const model_set *ms) { return &ms->info; }
const char *ms_dir(const model_set *ms) { return ms->dir; }

const ms_entry *ms_find(const model_set *ms, const char *name) {
    if (!name || !*name) return NULL;
    for (int i = 0; i < ms->n; i++) {
        const ms_entry *e = &ms->e[i];
        if (!strcmp(e->title, name) || !strcmp(e->model_name, name) || !strcmp(e->stem, name)) return e;
    }
    char bare[1024];
    snprintf(bare, sizeof bare, "%s", name);
    char *br = strstr(bare, " [");
    for (int pass = 0; pass < 2; pass++) {
        const char *s = pass ? bare : name;
        if (pass && !br) break;
        if (pass) *br = 0;
        const ms_entry *best = NULL;
        for (int i = 0; i < ms->n; i++)
            if (strstr(ms->e[i].title, s) && (!best || strlen(ms->e[i].title) < strlen(best->title))) best = &ms->e[i];
        if (best) return best;
    }
    return NULL;
}

/* the active model into a parked slot (the caller made room) */
static void park_active(model_set *ms) {
    parked_model *p = &ms->parked[ms->nparked++];
    p->e = ms->cur, p->m = ms->model, p->info = ms->info;
    memset(&ms->cur, 0, sizeof ms->cur);
    ms->model = NULL;
}

/* parked slot i becomes the active model (the active one must be parked or freed) */
static void unpark(model_set *ms, int i) {
    parked_model p = ms->parked[i];
    memmove(&ms->parked[i], &ms->parked[i + 1], (size_t)(ms->nparked - i - 1) * sizeof p);
    ms->nparked--;
    ms->cur = p.e, ms->model = p.m, ms->info = p.info;
}

sdc_status ms_switch(model_set *ms, const char *path) {
    if (ms->cur.path && !strcmp(ms->cur.path, path)) return SDC_OK;
    char old[PATH_MAX];
    snprintf(old, sizeof old, "%s", ms->cur.path ? ms->cur.path : "");
    pthread_rwlock_wrlock(&ms->lock);
    int hit = -1;
    for (int i = 0; i < ms->nparked && hit < 0; i++)
        if (!strcmp(ms->parked[i].e.path, path)) hit = i;
    if (hit >= 0) { /* kept loaded: no load, the active one is kept in its place */
        parked_model was = {.e = ms->cur, .m = ms->model, .info = ms->info};
        unpark(ms, hit);
        ms->parked[ms->nparked++] = was;
        pthread_rwlock_unlock(&ms->lock);
        return SDC_OK;
    }
    int parked = 0;
    if (ms->keep > 1 && ms->model) {
        if (ms->nparked == ms->keep - 1) { /* the least recently used goes first */
            sdc_model_free(ms->parked[0].m);
            entry_free(&ms->parked[0].e);
            memmove(&ms->parked[0], &ms->parked[1], (size_t)(ms->nparked - 1) * sizeof ms->parked[0]);
            ms->nparked--;
        }
        park_active(ms);
        parked = 1;
    } else {
        sdc_model_free(ms->model); /* first: one model's memory at a time */
        ms->model = NULL;
    }
    sdc_status st = load(ms, path);
    if (st) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", sdc_last_error());
        sdc_status back = SDC_OK;
        if (parked) unpark(ms, ms->nparked - 1);
        else back = *old ? load(ms, old) : SDC_ERR_IO;
        if (back) { /* no model: the next job loads its own; info's strings were the model's */
            entry_free(&ms->cur);
            ms->info = (sdc_model_info){.name = "", .family = "", .prediction = "", .scheduler = "", .device = "none"};
        }
        pthread_rwlock_unlock(&ms->lock);
        return sdc_fail(st, "%s%s", msg, back ? " (and the previous model could not be loaded again)" : "");
    }
    pthread_rwlock_unlock(&ms->lock);
    return SDC_OK;
}
