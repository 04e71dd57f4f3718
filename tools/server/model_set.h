/* model_set.h - the checkpoints `sdc serve` offers (--models-dir) and the one
 * resident model. A1111's checkpoint list: every diffusers folder
 * (model_index.json) and every .safetensors file in the folder and its
 * subfolders, named as A1111 names them (title: the path relative to the
 * folder, model_name: that without extension, '/' as '_'). One model is
 * active; with keep 1 (the default) it is the only one loaded: a switch
 * frees it before loading the new (peak memory of one model), and a failed
 * load loads it again. With keep N the last N models used stay loaded (the
 * least recently used is freed first), so switching among them is free.
 * Request threads read under ms_read_lock; only the queue's worker
 * switches (ms_switch), so the worker reads without the lock. */
#ifndef SDC_TOOLS_SERVER_MODEL_SET_H
#define SDC_TOOLS_SERVER_MODEL_SET_H

#include <stddef.h>

#include "sdc.h"

typedef struct {
    char *title;      /* "sub/name.safetensors", "folder" */
    char *model_name; /* "sub_name", "folder" */
    char *stem;       /* "name" (A1111's name_for_extra) */
    char *path;       /* absolute */
} ms_entry;

typedef struct model_set model_set;

#define MS_MAX_KEEP 8

/* dir: --models-dir (NULL: only `initial`). initial: the model to load first
 * (NULL: the first listed). lo is kept (it must outlive the set). keep:
 * models kept loaded (1..MS_MAX_KEEP). 0 with a message in err when the
 * folder cannot be read or the model not loaded. */
int ms_open(model_set **out, const char *dir, const char *initial, const sdc_load_options *lo, int keep, char *err,
            size_t n);
void ms_free(model_set *ms);
/* Read the folder again (/refresh-checkpoints); the resident model stays listed. */
int ms_rescan(model_set *ms, char *err, size_t n);

void ms_read_lock(model_set *ms);
void ms_read_unlock(model_set *ms);
/* under the read lock (or on the worker): */
int ms_count(const model_set *ms);
const ms_entry *ms_at(const model_set *ms, int i);
const ms_entry *ms_resident(const model_set *ms); /* the active model's entry (path NULL: none) */
sdc_model *ms_model(const model_set *ms);         /* NULL when a switch left none loaded */
const sdc_model_info *ms_info(const model_set *ms);
const char *ms_dir(const model_set *ms);
/* A1111's get_closet_checkpoint_match: an exact title, model_name or stem,
 * else the shortest title containing name (also without a " [hash]"). */
const ms_entry *ms_find(const model_set *ms, const char *name);

/* Worker only: make the model at path resident (nothing when it is).
 * Takes the write lock while it swaps. */
sdc_status ms_switch(model_set *ms, const char *path);

#endif
