/* prompts_file.h - the prompts file read by `sdc generate --prompts` and
 * `sdc dataset`: plain text (one prompt per line) or JSONL (one object per
 * line: prompt and optional negative_prompt, seed, steps, guidance, width,
 * height, scheduler, count). Every error names the file and the line. */
#ifndef SDC_DATASET_PROMPTS_FILE_H
#define SDC_DATASET_PROMPTS_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

/* Bounds that keep a data set's indices in 8-digit file names. */
#define PROMPTS_MAX_COUNT 1000000        /* images of one line */
#define PROMPTS_MAX_TOTAL 100000000LL    /* images of one file */

/* One line of the file. Unset optional fields are 0 / -1 / NULL; the caller
 * fills them from its flags and the model's defaults. */
typedef struct {
    char *prompt;
    char *negative;   /* NULL: not given (an explicit "" is kept) */
    int has_seed;
    uint64_t seed;    /* this line's image k uses seed + k */
    int steps;        /* 0: unset */
    float guidance;   /* < 0: unset */
    int width, height; /* 0: unset */
    char *scheduler;  /* NULL: unset; else an sdc name (a diffusers class name is normalised) */
    int count;        /* 0: unset (the caller's images per prompt) */
    int line;         /* 1-based line number in the file */
} prompt_entry;

typedef struct {
    prompt_entry *e;
    int n;
    int jsonl; /* 1 when the file was read as JSONL */
} prompt_list;

/* JSONL when the name ends in .jsonl or the first non-blank line starts with
 * '{'; otherwise text (blank lines skipped, a trailing \r dropped). */
sdc_status prompts_file_load(const char *path, prompt_list *out);
/* Same on a buffer; `what` names the source in messages. */
sdc_status prompts_parse(const char *buf, size_t len, const char *what, int force_jsonl, prompt_list *out);
void prompts_free(prompt_list *l);

#endif
