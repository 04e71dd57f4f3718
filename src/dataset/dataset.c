/* dataset.c - sdc_dataset_run, the `sdc dataset` runner: check or create
 * the folder's config, find what this slice already has (repairing a torn
 * tar or manifest), make the missing images batch by batch, write each one
 * durably, and merge the imagefolder metadata. Printing is the caller's job.
 *
 * Folder layout:
 *   DIR/sdc-dataset.json                     what the folder holds (see dataset_config.h)
 *   DIR/manifests/slice-I-of-N.jsonl         finished images of slice I (one metadata line each)
 *   imagefolder: DIR/train/00001234.png, DIR/train/metadata.jsonl (all slices merged)
 *   webdataset:  DIR/shard-000000.tar (00001234.png/.txt/.json members);
 *                DIR/shard-000001.tar.part while being written
 * Every file appears under its final name only when complete (temporary
 * name + fsync + rename); manifests are appended after the image is in place
 * and repaired on resume, so a kill -9 at any moment loses at most the
 * images in flight. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dataset/dataset_config.h"
#include "dataset/plan.h"
#include "dataset/durable_io.h"
#include "dataset/fingerprint.h"
#include "dataset/manifest.h"
#include "dataset/shard.h"
#include "dataset/tar_writer.h"
#include "io/png_io.h"
#include "sched/scheduler.h"
#include "sdc.h"

#define MAX_BATCH 64
#define LOCK_NAME ".sdc-lock"

void sdc_dataset_options_init(sdc_dataset_options *o) {
    memset(o, 0, sizeof *o);
    sdc_request_init(&o->req);
    o->images_per_prompt = 1;
    o->format = SDC_DATASET_IMAGEFOLDER;
    o->shard_size = 1000;
    o->batch_size = 1;
    o->nslices = 1;
}

typedef struct {
    const sdc_dataset_options *o;
    prompt_list pl;
    plan p;
    char model_name[256], scheduler[32];
    ds_identity id;
    ds_lora *loras;  /* [o->load.nloras]: id.loras */
    jbuf lora_meta;  /* the LoRAs as the metadata lines list them */
    ds_resolved res;
    sdc_model *m;
    char dir[PATH_MAX], train[PATH_MAX], mdir[PATH_MAX], manifest[PATH_MAX];
    int mfd;
    int64_t unit, u0, u1, first, end;
    uint8_t *done; /* [end - first]: 1 when the image is on disk */
    sdc_dataset_progress prog;
    double t0;
    int64_t nth;
    jbuf line;
} run_state;

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void hook(run_state *S, const char *point) {
    if (S->o->hook) S->o->hook(S->o->hook_ctx, point, S->nth);
}

static void report(run_state *S) {
    S->prog.seconds = now_s() - S->t0;
    if (S->o->progress) S->o->progress(S->o->progress_ctx, &S->prog);
    S->prog.error = NULL;
}

static void image_path(const run_state *S, int64_t j, const char *suffix, char *out, size_t n) {
    char name[40];
    manifest_name(name, sizeof name, j, ".png");
    snprintf(out, n, "%s/%s%s", S->train, name, suffix);
}

static void tar_path(const run_state *S, int64_t unit, const char *suffix, char *out, size_t n) {
    snprintf(out, n, "%s/shard-%06lld.tar%s", S->dir, (long long)unit, suffix);
}

static void meta_of(const run_state *S, int64_t j, image_meta *m) {
    sdc_request s;
    plan_request_of(&S->p, j, &s);
    m->index = j;
    m->text = s.prompts[0];
    m->negative = s.negative_prompts ? s.negative_prompts[0] : NULL;
    m->seed = s.seed;
    m->steps = s.steps ? s.steps : S->res.steps;
    m->guidance = s.guidance >= 0 ? s.guidance : S->res.guidance;
    m->scheduler = s.scheduler ? s.scheduler : S->res.scheduler;
    m->width = s.width ? s.width : S->res.width;
    m->height = s.height ? s.height : S->res.height;
    m->model = S->id.model;
    m->rng = S->id.rng;
    m->device = S->id.device;
    m->dtype = S->id.dtype;
    m->loras = S->id.nloras ? S->lora_meta.p : NULL;
}

static sdc_status load_model(run_state *S) {
    if (S->m) return SDC_OK;
    return sdc_model_load(&S->m, S->o->model, &S->o->load);
}

/* only our own lock or a config torn before its rename may be there already */
static sdc_status check_empty(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return sdc_fail(SDC_ERR_IO, "%s: cannot open folder: %s", dir, strerror(errno));
    struct dirent *e;
    const char *other = NULL;
    while ((e = readdir(d)) && !other)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, LOCK_NAME) &&
            strcmp(e->d_name, DS_CONFIG_NAME ".tmp"))
            other = e->d_name;
    sdc_status st = other ? sdc_fail(SDC_ERR_ARG, "%s is not empty and holds no %s (found '%s'): refusing to write a "
                                     "data set into it", dir, DS_CONFIG_NAME, other)
                          : SDC_OK;
    closedir(d);
    return st;
}

/* Check DIR's config against this run, or create it (loading the model for its defaults). */
static sdc_status open_config(run_state *S) {
    char path[PATH_MAX], *text;
    size_t n;
    int missing, lfd;
    snprintf(path, sizeof path, "%s/" LOCK_NAME, S->dir);
    SDC_TRY(dio_lock(path, 1, &lfd, NULL));
    snprintf(path, sizeof path, "%s/" DS_CONFIG_NAME, S->dir);
    sdc_status st = dio_read(path, &text, &n, &missing);
    if (!st && !missing) st = ds_config_check(S->dir, text, &S->id, &S->res);
    if (!st && missing) st = check_empty(S->dir);
    if (!st && missing) st = load_model(S);
    if (!st && missing) {
        sdc_model_info info;
        sdc_model_get_info(S->m, &info);
        S->res.steps = info.default_steps;
        S->res.guidance = info.default_guidance;
        S->res.width = info.default_width;
        S->res.height = info.default_height;
        snprintf(S->res.scheduler, sizeof S->res.scheduler, "%s", info.scheduler ? info.scheduler : "");
        jbuf b = {0};
        ds_config_render(&b, &S->id, &S->res);
        st = b.oom ? sdc_fail(SDC_ERR_NOMEM, "out of memory") : dio_write_atomic(path, b.p, b.n);
        jb_free(&b);
    }
    free(text);
    dio_unlock(lfd);
    return st;
}

/* Webdataset: how many images of unit u the .part already holds complete
 * (cutting a torn tail off); the whole unit when the .tar exists. */
static sdc_status scan_unit(run_state *S, int64_t u, int64_t ustart, int64_t uend, int64_t *have) {
    char tar[PATH_MAX], part[PATH_MAX];
    tar_path(S, u, "", tar, sizeof tar);
    tar_path(S, u, ".part", part, sizeof part);
    *have = 0;
    if (dio_exists(tar)) {
        *have = uend - ustart;
        return SDC_OK;
    }
    int fd = open(part, O_RDWR);
    if (fd < 0) return errno == ENOENT ? SDC_OK : sdc_fail(SDC_ERR_IO, "%s: cannot open: %s", part, strerror(errno));
    tar_member *mem;
    int nm;
    sdc_status st = tar_scan(fd, &mem, &nm, part);
    uint64_t keep = 0;
    while (!st && ustart + *have < uend && 3 * (*have) + 2 < nm) { /* whole png/txt/json triples, in index order */
        static const char *const ext[3] = {".png", ".txt", ".json"};
        int ok = 1;
        for (int x = 0; x < 3 && ok; x++) {
            char want[40];
            manifest_name(want, sizeof want, ustart + *have, ext[x]);
            ok = !strcmp(mem[3 * (*have) + x].name, want);
        }
        if (!ok) break;
        keep = mem[3 * (*have) + 2].end;
        (*have)++;
    }
    struct stat sb;
    if (!st && (fstat(fd, &sb) || ((uint64_t)sb.st_size != keep && ftruncate(fd, (off_t)keep))))
        st = sdc_fail(SDC_ERR_IO, "%s: cannot truncate: %s", part, strerror(errno));
    if (!st) st = dio_fsync(fd, part);
    free(mem);
    close(fd);
    return st;
}

static sdc_status scan_done(run_state *S) {
    if (S->o->format == SDC_DATASET_IMAGEFOLDER) {
        for (int64_t j = S->first; j < S->end; j++) {
            char p[PATH_MAX];
            image_path(S, j, ".tmp", p, sizeof p);
            if (unlink(p) && errno != ENOENT) return sdc_fail(SDC_ERR_IO, "%s: cannot remove: %s", p, strerror(errno));
            image_path(S, j, "", p, sizeof p);
            S->done[j - S->first] = (uint8_t)dio_exists(p);
        }
        return SDC_OK;
    }
    for (int64_t u = S->u0; u < S->u1; u++) {
        int64_t ustart = u * S->unit, uend = ustart + S->unit < S->p.total ? ustart + S->unit : S->p.total, have;
        SDC_TRY(scan_unit(S, u, ustart, uend, &have));
        memset(S->done + (ustart - S->first), 1, (size_t)have);
    }
    return SDC_OK;
}

/* the manifest lists exactly the images on disk, in index order */
static sdc_status repair_manifest(run_state *S) {
    manifest_sync ms;
    manifest_sync_begin(&ms, S->mfd, S->manifest);
    for (int64_t j = S->first; j < S->end; j++) {
        if (!S->done[j - S->first]) continue;
        image_meta m;
        meta_of(S, j, &m);
        S->line.n = 0;
        manifest_line(&S->line, &m);
        if (S->line.oom) ms.st = sdc_fail(SDC_ERR_NOMEM, "out of memory");
        manifest_sync_line(&ms, S->line.p, S->line.n);
        S->prog.done++;
    }
    return manifest_sync_end(&ms);
}

/* write data in two halves with the "write" hook between: a kill there leaves a torn file */
static sdc_status write_halves(run_state *S, int fd, const void *data, size_t n, const char *what,
                               const char *point) {
    SDC_TRY(dio_write_all(fd, data, n / 2, what));
    hook(S, point);
    return dio_write_all(fd, (const char *)data + n / 2, n - n / 2, what);
}

static sdc_status record(run_state *S, int64_t j, const image_meta *m) {
    S->line.n = 0;
    manifest_line(&S->line, m);
    if (S->line.oom) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    SDC_TRY(write_halves(S, S->mfd, S->line.p, S->line.n, S->manifest, "line"));
    SDC_TRY(dio_fsync(S->mfd, S->manifest));
    S->done[j - S->first] = 1;
    S->prog.done++;
    S->prog.made++;
    hook(S, "done");
    report(S);
    return SDC_OK;
}

static sdc_status write_png_file(run_state *S, int64_t j, const void *png, size_t n) {
    char tmp[PATH_MAX], final[PATH_MAX];
    image_path(S, j, ".tmp", tmp, sizeof tmp);
    image_path(S, j, "", final, sizeof final);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    if (fd < 0) return sdc_fail(SDC_ERR_IO, "%s: cannot write: %s", tmp, strerror(errno));
    sdc_status st = write_halves(S, fd, png, n, tmp, "write");
    if (!st) st = dio_fsync(fd, tmp);
    if (close(fd) && !st) st = sdc_fail(SDC_ERR_IO, "%s: close failed: %s", tmp, strerror(errno));
    if (!st && rename(tmp, final)) st = sdc_fail(SDC_ERR_IO, "%s: cannot rename into place: %s", final, strerror(errno));
    if (st) {
        unlink(tmp);
        return st;
    }
    SDC_TRY(dio_fsync_dir(S->train));
    hook(S, "file");
    return SDC_OK;
}

static sdc_status append_tar_image(run_state *S, int fd, const char *part, int64_t j, const void *png, size_t n,
                                   const image_meta *m) {
    jbuf js = {0};
    manifest_line(&js, m);
    if (js.oom) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    js.n--; /* the .json member is the metadata line without its newline */
    size_t tl = strlen(m->text), total = tar_member_size(n) + tar_member_size(tl) + tar_member_size(js.n);
    uint8_t *buf = malloc(total);
    char name[40];
    sdc_status st = buf ? SDC_OK : sdc_fail(SDC_ERR_NOMEM, "out of memory");
    size_t o = 0;
    if (!st) manifest_name(name, sizeof name, j, ".png"), st = tar_member_encode(buf + o, name, png, n);
    o += tar_member_size(n);
    if (!st) manifest_name(name, sizeof name, j, ".txt"), st = tar_member_encode(buf + o, name, m->text, tl);
    o += tar_member_size(tl);
    if (!st) manifest_name(name, sizeof name, j, ".json"), st = tar_member_encode(buf + o, name, js.p, js.n);
    if (!st) st = write_halves(S, fd, buf, total, part, "write");
    if (!st) st = dio_fsync(fd, part);
    free(buf);
    jb_free(&js);
    if (!st) hook(S, "file");
    return st;
}

static sdc_status close_tar(run_state *S, int fd, int64_t u) {
    char tar[PATH_MAX], part[PATH_MAX];
    tar_path(S, u, "", tar, sizeof tar);
    tar_path(S, u, ".part", part, sizeof part);
    struct stat sb;
    if (fstat(fd, &sb)) return sdc_fail(SDC_ERR_IO, "%s: cannot stat: %s", part, strerror(errno));
    size_t tn = tar_trailer_size((uint64_t)sb.st_size);
    uint8_t *z = calloc(1, tn);
    if (!z) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    sdc_status st = dio_write_all(fd, z, tn, part);
    free(z);
    if (!st) st = dio_fsync(fd, part);
    if (!st) hook(S, "close");
    if (!st && rename(part, tar)) st = sdc_fail(SDC_ERR_IO, "%s: cannot rename into place: %s", tar, strerror(errno));
    if (!st) st = dio_fsync_dir(S->dir);
    return st;
}

static int stop_requested(void *ctx, int step, int total) {
    (void)step, (void)total;
    const run_state *S = ctx;
    return S->o->stop && *S->o->stop;
}

static sdc_status generate(run_state *S, int64_t g, int64_t gend, sdc_image **imgs, int *n) {
    const char *pos[MAX_BATCH], *neg[MAX_BATCH];
    sdc_request r, one;
    for (int64_t j = g; j < gend; j++) {
        plan_request_of(&S->p, j, &one);
        pos[j - g] = one.prompts[0];
        neg[j - g] = one.negative_prompts ? one.negative_prompts[0] : NULL;
    }
    plan_request_of(&S->p, g, &r);
    r.prompts = pos;
    r.nprompts = (int)(gend - g);
    if (r.negative_prompts) {
        r.negative_prompts = neg;
        r.nnegative = r.nprompts;
    }
    r.progress = stop_requested;
    r.progress_ctx = S;
    SDC_TRY(load_model(S));
    return sdc_generate(S->m, &r, imgs, n);
}

/* Make the missing images of batch [g, gend) and write them in index order. */
static sdc_status make_batch(run_state *S, int64_t g, int64_t gend, int tar_fd, const char *part, int *failed) {
    int64_t missing = 0;
    for (int64_t j = g; j < gend; j++) missing += !S->done[j - S->first];
    if (!missing) return SDC_OK;
    if (*failed) { /* a webdataset shard cannot skip an image: the rest of it waits for a rerun */
        S->prog.failures += missing;
        return SDC_OK;
    }
    sdc_image *imgs;
    int n;
    sdc_status st = generate(S, g, gend, &imgs, &n);
    if (st == SDC_ERR_INTERRUPTED || st == SDC_ERR_NOMEM || st == SDC_ERR_IO) return st;
    if (st) {
        S->prog.failures += missing;
        S->prog.error = sdc_last_error();
        S->prog.error_first = g;
        S->prog.error_end = gend;
        report(S);
        *failed = S->o->format == SDC_DATASET_WEBDATASET;
        return SDC_OK;
    }
    for (int64_t j = g; j < gend && !st; j++) {
        if (S->done[j - S->first]) continue;
        void *png;
        size_t pn;
        image_meta m;
        meta_of(S, j, &m);
        S->nth++;
        const sdc_image *im = &imgs[j - g]; /* the bytes sdc_image_save_png writes */
        st = png_encode_rgb_mem(im->rgb, im->width, im->height, "parameters", im->infotext, &png, &pn);
        if (!st) {
            st = S->o->format == SDC_DATASET_IMAGEFOLDER ? write_png_file(S, j, png, pn)
                                                : append_tar_image(S, tar_fd, part, j, png, pn, &m);
            free(png);
        }
        if (!st) st = record(S, j, &m);
    }
    sdc_images_free(imgs, n);
    return st;
}

static sdc_status make_unit(run_state *S, int64_t u) {
    int64_t ustart = u * S->unit, uend = ustart + S->unit < S->p.total ? ustart + S->unit : S->p.total;
    char tar[PATH_MAX], part[PATH_MAX];
    int fd = -1, failed = 0;
    if (S->o->format == SDC_DATASET_WEBDATASET) {
        tar_path(S, u, "", tar, sizeof tar);
        tar_path(S, u, ".part", part, sizeof part);
        if (dio_exists(tar)) return SDC_OK;
        fd = open(part, O_WRONLY | O_CREAT | O_APPEND, 0666);
        if (fd < 0) return sdc_fail(SDC_ERR_IO, "%s: cannot write: %s", part, strerror(errno));
    }
    sdc_status st = SDC_OK;
    int bs = S->o->batch_size;
    for (int64_t w = ustart; w < uend && !st; w += bs) { /* batches never cross a window: fixed by the indices */
        int64_t wend = w + bs < uend ? w + bs : uend;
        for (int64_t g = w, gend; g < wend && !st; g = gend) {
            gend = plan_run_end(&S->p, g, wend);
            st = make_batch(S, g, gend, fd, part, &failed);
        }
    }
    if (!st && fd >= 0 && !failed) st = close_tar(S, fd, u);
    if (fd >= 0) close(fd);
    return st;
}

/* The identity's rng / device / dtype: NULL for the defaults, so folders made
 * before these keys existed (all defaults) keep their config lines. */
static void set_compute_identity(ds_identity *id, const sdc_dataset_options *o) {
    const char *dev = o->load.device, *dt = o->load.dtype, *rng = o->req.rng;
    int cuda = dev && !strcmp(dev, "cuda");
    id->rng = rng && strcmp(rng, "cpu") ? rng : NULL;
    id->device = dev && strcmp(dev, "cpu") ? dev : NULL;
    id->dtype = dt && strcmp(dt, cuda ? "f16" : "f32") ? dt : NULL;
}

/* Each LoRA's name, scale and content digest into the identity (a missing or
 * unreadable file fails here, before any folder is made), and the list the
 * metadata lines carry. */
static sdc_status set_lora_identity(run_state *S) {
    const sdc_dataset_options *o = S->o;
    const sdc_load_options *lo = &o->load;
    if (!lo->nloras) return SDC_OK;
    if (!(S->loras = calloc((size_t)lo->nloras, sizeof *S->loras))) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    jb_puts(&S->lora_meta, "[");
    for (int i = 0; i < lo->nloras; i++) {
        ds_lora *l = &S->loras[i];
        const char *slash = strrchr(lo->loras[i], '/');
        l->name = slash ? slash + 1 : lo->loras[i];
        l->scale = lo->lora_scales ? lo->lora_scales[i] : 1.0f;
        SDC_TRY(file_fingerprint(lo->loras[i], &l->fingerprint));
        jb_puts(&S->lora_meta, i ? ", {\"name\": " : "{\"name\": ");
        jb_str(&S->lora_meta, l->name);
        jb_puts(&S->lora_meta, ", \"scale\": ");
        jb_float(&S->lora_meta, l->scale);
        jb_puts(&S->lora_meta, "}");
    }
    jb_puts(&S->lora_meta, "]");
    if (S->lora_meta.oom) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    S->id.loras = S->loras;
    S->id.nloras = lo->nloras;
    return SDC_OK;
}

static sdc_status check_options(const sdc_dataset_options *o) {
    if (!o->model || !o->prompts || !o->out) return sdc_fail(SDC_ERR_ARG, "model, prompts file and output folder are needed");
    if (o->batch_size < 1 || o->batch_size > MAX_BATCH)
        return sdc_fail(SDC_ERR_ARG, "batch size %d out of range (1..%d)", o->batch_size, MAX_BATCH);
    if (o->shard_size < 1 || o->shard_size > PROMPTS_MAX_COUNT)
        return sdc_fail(SDC_ERR_ARG, "shard size %d out of range (1..%d)", o->shard_size, PROMPTS_MAX_COUNT);
    if (o->nslices < 1 || o->slice < 0 || o->slice >= o->nslices)
        return sdc_fail(SDC_ERR_ARG, "slice %d/%d out of range", o->slice, o->nslices);
    if (o->load.nloras < 0 || (o->load.nloras && !o->load.loras)) return sdc_fail(SDC_ERR_ARG, "bad LoRA list");
    sdc_request r = o->req; /* its settings, before any folder is made (the lines come with the file) */
    static const char *const line[1] = {""};
    r.prompts = line, r.nprompts = 1, r.batch = 1, r.batch_size = 0, r.dump = NULL;
    r.nnegative = r.negative_prompts ? 1 : 0;
    SDC_TRY(sdc_request_check(NULL, &r));
    return SDC_OK;
}

static sdc_status run(run_state *S, sdc_dataset_summary *sum) {
    const sdc_dataset_options *o = S->o;
    SDC_TRY(check_options(o));
    sdc_request def = o->req; /* the defaults lines may override, and what every image shares */
    def.nnegative = o->req.negative_prompts ? 1 : 0;
    def.progress = NULL, def.dump = NULL; /* the data set's own */
    if (def.scheduler) { /* one spelling in the config and the metadata */
        SDC_TRY(sched_canonical_name(def.scheduler, S->scheduler, sizeof S->scheduler));
        def.scheduler = S->scheduler;
    }
    if (def.schedule) { /* one spelling: Karras and Uniform as "karras", the others by their table name */
        int k = sched_schedule_find(def.schedule); /* known: check_options checked the request */
        if (k == SCHED_SCHEDULE_KARRAS || k == SCHED_SCHEDULE_UNIFORM) def.karras = k == SCHED_SCHEDULE_KARRAS;
        def.schedule = k <= SCHED_SCHEDULE_KARRAS ? NULL : sdc_schedule_at(k)->name;
    }
    SDC_TRY(prompts_file_load(o->prompts, &S->pl));
    SDC_TRY(plan_build(&S->p, &S->pl, o->images_per_prompt, o->seed, &def, o->prompts));
    struct stat msb;
    sdc_model_name_from_path(o->model, !stat(o->model, &msb) && S_ISREG(msb.st_mode), S->model_name,
                             sizeof S->model_name);
    snprintf(S->dir, sizeof S->dir, "%s", o->out);
    snprintf(S->train, sizeof S->train, "%s/train", o->out);
    snprintf(S->mdir, sizeof S->mdir, "%s/manifests", o->out);
    snprintf(S->manifest, sizeof S->manifest, "%s/slice-%d-of-%d.jsonl", S->mdir, o->slice, o->nslices);

    ds_identity *id = &S->id;
    id->model = S->model_name;
    SDC_TRY(model_fingerprint(o->model, o->load.variant, o->load.config_dir, o->load.tokenizer_dir,
                              &id->model_fingerprint));
    id->variant = o->load.variant;
    id->prompts_digest = plan_digest(&S->p);
    id->nprompts = S->pl.n;
    id->images = S->p.total;
    id->images_per_prompt = o->images_per_prompt;
    id->seed = o->seed;
    id->negative = def.negative_prompts ? def.negative_prompts[0] : NULL;
    id->steps = def.steps;
    id->guidance = def.guidance;
    id->width = def.width;
    id->height = def.height;
    id->scheduler = def.scheduler;
    id->timestep_spacing = def.timestep_spacing;
    id->karras = def.karras;
    id->schedule = def.schedule;
    id->eta = def.eta;
    id->clip_skip = def.clip_skip;
    id->format = o->format == SDC_DATASET_WEBDATASET ? "webdataset" : "imagefolder";
    id->shard_size = o->format == SDC_DATASET_WEBDATASET ? o->shard_size : 0;
    id->batch_size = o->batch_size;
    set_compute_identity(id, o);
    SDC_TRY(set_lora_identity(S));
    /* a new folder needs the model for its config anyway: load it first, so a
     * model that cannot load (no CUDA, no AVX512_BF16 ...) leaves no folder behind */
    if (!dio_exists(S->dir)) SDC_TRY(load_model(S));
    SDC_TRY(dio_mkdirs(S->dir));
    SDC_TRY(open_config(S));

    S->unit = o->format == SDC_DATASET_WEBDATASET ? o->shard_size : o->batch_size;
    shard_range((S->p.total + S->unit - 1) / S->unit, o->slice, o->nslices, &S->u0, &S->u1);
    S->first = S->u0 * S->unit;
    S->end = S->u1 * S->unit < S->p.total ? S->u1 * S->unit : S->p.total;
    if (S->end < S->first) S->end = S->first;
    sum->slice_first = S->first;
    sum->slice_end = S->end;
    SDC_TRY(dio_mkdirs(S->mdir));
    if (o->format == SDC_DATASET_IMAGEFOLDER) SDC_TRY(dio_mkdirs(S->train));
    S->mfd = open(S->manifest, O_RDWR | O_CREAT | O_APPEND, 0666);
    if (S->mfd < 0) return sdc_fail(SDC_ERR_IO, "%s: cannot open: %s", S->manifest, strerror(errno));
    if (flock(S->mfd, LOCK_EX | LOCK_NB))
        return sdc_fail(SDC_ERR_IO, "%s: slice %d/%d is being made by another process (its manifest is locked)",
                        S->dir, o->slice, o->nslices);
    if (!(S->done = calloc((size_t)(S->end - S->first) + 1, 1))) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    SDC_TRY(scan_done(S));
    SDC_TRY(repair_manifest(S));
    S->prog.total = S->end - S->first;
    sum->present = S->prog.done;
    if (S->prog.done < S->prog.total) SDC_TRY(load_model(S));
    S->t0 = now_s();
    report(S);
    sdc_status st = SDC_OK;
    for (int64_t u = S->u0; u < S->u1 && !st; u++) {
        st = make_unit(S, u);
        if (!st && o->stop && *o->stop) st = sdc_fail(SDC_ERR_INTERRUPTED, "interrupted");
    }
    sum->total = S->prog.total;
    sum->made = S->prog.made;
    sum->failures = S->prog.failures;
    sum->seconds = now_s() - S->t0;
    if (st == SDC_ERR_INTERRUPTED)
        return sdc_fail(SDC_ERR_INTERRUPTED, "interrupted after %lld new images; run the same command again to resume",
                        (long long)S->prog.made);
    SDC_TRY(st);
    if (o->format == SDC_DATASET_IMAGEFOLDER) { /* the last slice to finish lists everyone's images */
        char lock[PATH_MAX], meta[PATH_MAX];
        int lfd;
        snprintf(lock, sizeof lock, "%s/" LOCK_NAME, S->dir);
        snprintf(meta, sizeof meta, "%s/metadata.jsonl", S->train);
        SDC_TRY(dio_lock(lock, 1, &lfd, NULL));
        st = manifest_merge(S->mdir, meta, &sum->metadata_lines);
        dio_unlock(lfd);
    }
    return st;
}

sdc_status sdc_dataset_run(const sdc_dataset_options *o, sdc_dataset_summary *sum) {
    run_state *S = calloc(1, sizeof *S);
    memset(sum, 0, sizeof *sum);
    if (!S) return sdc_fail(SDC_ERR_NOMEM, "out of memory");
    S->o = o;
    S->mfd = -1;
    sdc_status st = run(S, sum);
    if (S->mfd >= 0) close(S->mfd);
    sdc_model_free(S->m);
    plan_free(&S->p);
    prompts_free(&S->pl);
    free(S->done);
    jb_free(&S->line);
    jb_free(&S->lora_meta);
    free(S->loras);
    free(S);
    return st;
}
