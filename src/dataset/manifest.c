/* manifest.c - metadata lines, manifest repair and the metadata.jsonl merge. */
#include "dataset/manifest.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dataset/durable_io.h"

void manifest_name(char *out, size_t n, int64_t index, const char *ext) {
    snprintf(out, n, "%08lld%s", (long long)index, ext);
}

void manifest_line(jbuf *b, const image_meta *m) {
    char name[40];
    manifest_name(name, sizeof name, m->index, ".png");
    jb_puts(b, "{\"file_name\": ");
    jb_str(b, name);
    jb_puts(b, ", \"text\": ");
    jb_str(b, m->text);
    jb_printf(b, ", \"seed\": %llu, \"steps\": %d, \"guidance\": ", (unsigned long long)m->seed, m->steps);
    jb_float(b, m->guidance);
    jb_puts(b, ", \"scheduler\": ");
    jb_str(b, m->scheduler);
    jb_printf(b, ", \"width\": %d, \"height\": %d, \"model\": ", m->width, m->height);
    jb_str(b, m->model);
    jb_puts(b, ", \"negative_prompt\": ");
    jb_str(b, m->negative);
    if (m->rng) jb_puts(b, ", \"rng\": "), jb_str(b, m->rng);
    if (m->device) jb_puts(b, ", \"device\": "), jb_str(b, m->device);
    if (m->dtype) jb_puts(b, ", \"dtype\": "), jb_str(b, m->dtype);
    if (m->weights) jb_puts(b, ", \"weights\": "), jb_str(b, m->weights);
    if (m->loras) jb_puts(b, ", \"loras\": "), jb_puts(b, m->loras);
    if (m->vae_decoder) jb_puts(b, ", \"vae_decoder\": "), jb_str(b, m->vae_decoder);
    jb_puts(b, "}\n");
}

void manifest_sync_begin(manifest_sync *s, int fd, const char *path) {
    memset(s, 0, sizeof *s);
    s->fd = fd;
    s->path = path;
}

static void flush_out(manifest_sync *s) {
    if (s->st || !s->out.n) return;
    if (s->out.oom) s->st = sdc_fail(SDC_ERR_NOMEM, "out of memory");
    else s->st = dio_write_all(s->fd, s->out.p, s->out.n, s->path);
    s->out.n = 0;
}

/* does the file hold line[n] at s->off? */
static int file_has(manifest_sync *s, const char *line, size_t n) {
    if (s->off < s->rbase || s->off + n > s->rbase + s->rlen) { /* refill the window from s->off */
        size_t want = n > (1u << 20) ? n : (1u << 20);
        if (want > s->rcap) {
            char *b = realloc(s->rbuf, want);
            if (!b) {
                s->st = sdc_fail(SDC_ERR_NOMEM, "out of memory");
                return 0;
            }
            s->rbuf = b;
            s->rcap = want;
        }
        ssize_t got = pread(s->fd, s->rbuf, s->rcap, (off_t)s->off);
        if (got < 0) {
            s->st = sdc_fail(SDC_ERR_IO, "%s: read failed: %s", s->path, strerror(errno));
            return 0;
        }
        s->rbase = s->off;
        s->rlen = (size_t)got;
        if (s->off + n > s->rbase + s->rlen) return 0;
    }
    return !memcmp(s->rbuf + (s->off - s->rbase), line, n);
}

void manifest_sync_line(manifest_sync *s, const char *line, size_t n) {
    if (s->st) return;
    if (!s->diverged) {
        if (file_has(s, line, n)) {
            s->off += n;
            return;
        }
        if (s->st) return;
        s->diverged = s->changed = 1; /* everything from here on is rewritten */
        if (ftruncate(s->fd, (off_t)s->off)) {
            s->st = sdc_fail(SDC_ERR_IO, "%s: cannot truncate: %s", s->path, strerror(errno));
            return;
        }
    }
    jb_put(&s->out, line, n);
    if (s->out.n >= (1u << 20)) flush_out(s);
}

sdc_status manifest_sync_end(manifest_sync *s) {
    struct stat sb;
    if (!s->st && !s->diverged) { /* torn or extra lines after the last wanted one */
        if (fstat(s->fd, &sb)) s->st = sdc_fail(SDC_ERR_IO, "%s: cannot stat: %s", s->path, strerror(errno));
        else if ((uint64_t)sb.st_size != s->off) {
            s->changed = 1;
            if (ftruncate(s->fd, (off_t)s->off))
                s->st = sdc_fail(SDC_ERR_IO, "%s: cannot truncate: %s", s->path, strerror(errno));
        }
    }
    flush_out(s);
    if (!s->st && s->changed) s->st = dio_fsync(s->fd, s->path);
    free(s->rbuf);
    jb_free(&s->out);
    return s->st;
}

sdc_status manifest_repair(int fd, const char *path, const char *want, size_t n) {
    manifest_sync s;
    manifest_sync_begin(&s, fd, path);
    for (size_t i = 0; i < n;) {
        const char *nl = memchr(want + i, '\n', n - i);
        size_t len = nl ? (size_t)(nl - (want + i)) + 1 : n - i;
        manifest_sync_line(&s, want + i, len);
        i += len;
    }
    return manifest_sync_end(&s);
}

static int cmp_line(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

sdc_status manifest_merge(const char *manifest_dir, const char *out_path, int64_t *lines) {
    *lines = 0;
    DIR *d = opendir(manifest_dir);
    if (!d) return sdc_fail(SDC_ERR_IO, "%s: cannot open folder: %s", manifest_dir, strerror(errno));
    char **texts = NULL, **ls = NULL;
    size_t nt = 0, ct = 0, nl = 0, cl = 0;
    sdc_status st = SDC_OK;
    struct dirent *e;
    while (!st && (e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] == '.' || len < 6 || strcmp(e->d_name + len - 6, ".jsonl")) continue;
        char p[PATH_MAX], *t;
        size_t n;
        snprintf(p, sizeof p, "%s/%s", manifest_dir, e->d_name);
        if ((st = dio_read(p, &t, &n, NULL))) break;
        if (nt == ct) {
            ct = ct ? ct * 2 : 8;
            char **x = realloc(texts, ct * sizeof *x);
            if (!x) {
                free(t);
                st = sdc_fail(SDC_ERR_NOMEM, "out of memory");
                break;
            }
            texts = x;
        }
        texts[nt++] = t;
        for (char *s = t; *s;) { /* complete lines only: a torn last line is still being written */
            char *nlp = strchr(s, '\n');
            if (!nlp) break;
            *nlp = 0;
            if (!strncmp(s, "{\"file_name\": \"", 15)) {
                if (nl == cl) {
                    cl = cl ? cl * 2 : 1024;
                    char **x = realloc(ls, cl * sizeof *x);
                    if (!x) {
                        st = sdc_fail(SDC_ERR_NOMEM, "out of memory");
                        break;
                    }
                    ls = x;
                }
                ls[nl++] = s;
            }
            s = nlp + 1;
        }
    }
    closedir(d);
    jbuf out = {0};
    if (!st) {
        qsort(ls, nl, sizeof *ls, cmp_line); /* equal-width names: line order is index order */
        for (size_t i = 0; i < nl; i++) {
            size_t key = 15 + strcspn(ls[i] + 15, "\""); /* through the file name */
            if (i && !strncmp(ls[i], ls[i - 1], key + 1)) continue; /* the same image from two manifests */
            jb_puts(&out, ls[i]);
            jb_put(&out, "\n", 1);
            (*lines)++;
        }
        if (out.oom) st = sdc_fail(SDC_ERR_NOMEM, "out of memory");
    }
    if (!st) {
        char tmp[PATH_MAX], *cur = NULL;
        size_t n = 0;
        int missing = 0;
        snprintf(tmp, sizeof tmp, "%s.tmp", out_path);
        unlink(tmp); /* left by a run killed while merging */
        st = dio_read(out_path, &cur, &n, &missing);
        if (!st && (missing || n != out.n || memcmp(cur, out.p ? out.p : "", n)))
            st = dio_write_atomic(out_path, out.p ? out.p : "", out.n);
        free(cur);
    }
    jb_free(&out);
    for (size_t i = 0; i < nt; i++) free(texts[i]);
    free(texts);
    free(ls);
    return st;
}
