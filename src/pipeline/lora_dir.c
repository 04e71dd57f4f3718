/* lora_dir.c - a folder of LoRA files as AUTOMATIC1111's Lora folder: every
 * NAME.safetensors in it or its subfolders, known by NAME (sdc.h:
 * sdc_lora_find, sdc_lora_scan). Walks are bounded in depth and count. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/safetensors.h"
#include "sdc.h"

#define MAX_DEPTH 3 /* subfolder levels below the folder */
#define MAX_FILES 4096
#define EXT ".safetensors"

typedef struct {
    char **path;
    int n, cap;
} path_list;

static int has_ext(const char *name) {
    size_t n = strlen(name), e = strlen(EXT);
    return n > e && !strcmp(name + n - e, EXT);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* every .safetensors below dir (hidden entries skipped), depth-first in sorted order per folder */
static sdc_status walk(const char *dir, int depth, path_list *out) {
    DIR *d = opendir(dir);
    if (!d) return depth ? SDC_OK : sdc_fail(SDC_ERR_IO, "%s: cannot open the LoRA folder", dir);
    char **names = NULL;
    int n = 0, cap = 0;
    sdc_status st = SDC_OK;
    for (struct dirent *e; !st && (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) {
            char **g = realloc(names, (size_t)(cap = cap ? 2 * cap : 32) * sizeof *g);
            if (!g) st = sdc_fail(SDC_ERR_NOMEM, "out of memory");
            else names = g;
        }
        if (!st && !(names[n++] = strdup(e->d_name))) st = sdc_fail(SDC_ERR_NOMEM, "out of memory");
    }
    closedir(d);
    if (!st) qsort(names, (size_t)n, sizeof *names, cmp_str);
    /* the folder's own files first, so that DIR/NAME.safetensors wins over a subfolder's */
    for (int pass = 0; pass < 2 && !st; pass++)
        for (int i = 0; i < n && !st && out->n < MAX_FILES; i++) {
            char p[4096];
            struct stat sb;
            if ((size_t)snprintf(p, sizeof p, "%s/%s", dir, names[i]) >= sizeof p || stat(p, &sb)) continue;
            if (pass == 0 && S_ISREG(sb.st_mode) && has_ext(names[i])) {
                if (out->n == out->cap) {
                    char **g = realloc(out->path, (size_t)(out->cap = out->cap ? 2 * out->cap : 64) * sizeof *g);
                    if (!g) {
                        st = sdc_fail(SDC_ERR_NOMEM, "out of memory");
                        break;
                    }
                    out->path = g;
                }
                if (!(out->path[out->n] = strdup(p))) st = sdc_fail(SDC_ERR_NOMEM, "out of memory");
                else out->n++;
            } else if (pass == 1 && S_ISDIR(sb.st_mode) && depth < MAX_DEPTH) {
                st = walk(p, depth + 1, out);
            }
        }
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    return st;
}

static void list_free(path_list *l) {
    for (int i = 0; i < l->n; i++) free(l->path[i]);
    free(l->path);
}

/* NAME of dir/.../NAME.safetensors */
static void stem(const char *path, char *out, size_t n) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    snprintf(out, n, "%.*s", (int)(strlen(b) - strlen(EXT)), b);
}

sdc_status sdc_lora_find(const char *dir, const char *name, char *path, size_t n) {
    if (!dir || !*dir) return sdc_fail(SDC_ERR_ARG, "LoRA '%s' asked for, but no LoRA folder is set", name);
    if (!*name || name[0] == '.' || strchr(name, '/') || strchr(name, '\\'))
        return sdc_fail(SDC_ERR_ARG, "LoRA '%.200s' not found in %s (a LoRA is named by its file name)", name, dir);
    path_list l = {0};
    sdc_status st = walk(dir, 0, &l);
    int found = 0;
    for (int i = 0; !st && !found && i < l.n; i++) {
        char s[4096];
        stem(l.path[i], s, sizeof s);
        if (!strcmp(s, name)) {
            if ((size_t)snprintf(path, n, "%s", l.path[i]) >= n)
                st = sdc_fail(SDC_ERR_ARG, "%s: path too long", l.path[i]);
            found = 1;
        }
    }
    list_free(&l);
    if (!st && !found) st = sdc_fail(SDC_ERR_ARG, "LoRA '%.200s' not found in %s", name, dir);
    return st;
}

sdc_status sdc_lora_scan(const char *dir, sdc_lora_file **files, int *n) {
    *files = NULL;
    *n = 0;
    path_list l = {0};
    SDC_TRY(walk(dir, 0, &l));
    sdc_lora_file *f = calloc((size_t)(l.n ? l.n : 1), sizeof *f);
    sdc_status st = f ? SDC_OK : sdc_fail(SDC_ERR_NOMEM, "out of memory");
    for (int i = 0; !st && i < l.n; i++) {
        char s[4096];
        stem(l.path[i], s, sizeof s);
        f[i].name = strdup(s);
        f[i].path = l.path[i];
        l.path[i] = NULL;
        st_file sf;
        /* a file that does not open as safetensors is still listed (its load will say why) */
        if (!st_open(&sf, f[i].path)) {
            f[i].metadata_json = strdup(sf.metadata_json ? sf.metadata_json : "{}");
            st_close(&sf);
        } else {
            f[i].metadata_json = strdup("{}");
        }
        if (!f[i].name || !f[i].metadata_json) st = sdc_fail(SDC_ERR_NOMEM, "out of memory");
    }
    int count = l.n;
    list_free(&l);
    if (st) {
        sdc_lora_files_free(f, count);
        return st;
    }
    *files = f;
    *n = count;
    return SDC_OK;
}

void sdc_lora_files_free(sdc_lora_file *files, int n) {
    for (int i = 0; files && i < n; i++) {
        free(files[i].name);
        free(files[i].path);
        free(files[i].metadata_json);
    }
    free(files);
}
