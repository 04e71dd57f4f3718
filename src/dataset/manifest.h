/* manifest.h - the per-image metadata line (Hugging Face ImageFolder's
 * metadata.jsonl format) and the manifests built from it: each slice of a
 * data set appends one line per finished image to its own manifest; on
 * resume the manifest is repaired to list exactly the finished images; the
 * imagefolder metadata.jsonl is the merge of all manifests. */
#ifndef SDC_DATASET_MANIFEST_H
#define SDC_DATASET_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "dataset/jsonw.h"

typedef struct {
    int64_t index;
    const char *text, *negative; /* negative NULL: none */
    uint64_t seed;
    int steps;
    float guidance;
    const char *scheduler;
    int width, height;
    const char *model;
    const char *rng, *device, *dtype; /* NULL: the defaults (not written, as in the data set's config) */
    const char *weights;              /* NULL: as stored; "q8" */
    const char *loras; /* NULL: none; else a JSON array [{"name": ..., "scale": ...}, ...] written as is */
    const char *vae_decoder; /* "TAESD", or NULL: the KL VAE (not written) */
} image_meta;

/* "00001234" + ext (".png", ".txt", ".json") into out[n] */
void manifest_name(char *out, size_t n, int64_t index, const char *ext);
/* {"file_name": "00001234.png", "text": ..., "seed", "steps", "guidance",
 *  "scheduler", "width", "height", "model", "negative_prompt"[, "rng",
 *  "device", "dtype", "weights", "loras", "vae_decoder" (each only when set)]} and a newline */
void manifest_line(jbuf *b, const image_meta *m);

/* Make the file open as fd (O_APPEND) hold exactly the lines given, streaming
 * (a slice may list millions of images): lines that match the file are kept;
 * at the first that differs the file is cut and the rest appended; a longer
 * file is cut at the end; fsync'ed when anything changed.
 *   manifest_sync s; manifest_sync_begin(&s, fd, path);
 *   for each line: manifest_sync_line(&s, line, n);   st = manifest_sync_end(&s); */
typedef struct {
    int fd;
    const char *path;
    uint64_t off;     /* file bytes confirmed so far */
    int diverged, changed;
    char *rbuf;       /* read window [rbase, rbase + rlen) of the file */
    size_t rcap, rlen;
    uint64_t rbase;
    jbuf out;         /* lines waiting to be appended */
    sdc_status st;
} manifest_sync;
void manifest_sync_begin(manifest_sync *s, int fd, const char *path);
void manifest_sync_line(manifest_sync *s, const char *line, size_t n);
sdc_status manifest_sync_end(manifest_sync *s);
/* The same for a whole text of lines want[n]. */
sdc_status manifest_repair(int fd, const char *path, const char *want, size_t n);
/* Merge the complete lines of every *.jsonl in manifest_dir, ordered by file
 * name, each image once, into out_path (atomically, only when it changes).
 * *lines gets the number of images listed. */
sdc_status manifest_merge(const char *manifest_dir, const char *out_path, int64_t *lines);

#endif
