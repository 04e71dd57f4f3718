/* cli.h - shared pieces of the command-line program: strict number
 * parsing, usage errors (exit 2) and the subcommands' entry points. */
#ifndef SDC_TOOLS_CLI_H
#define SDC_TOOLS_CLI_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "sdc.h"

#define EXIT_USAGE 2
#define CLI_MAX_LORAS 16

/* Each prints "sdc: ..." to stderr and returns 0 on a bad value. */
int cli_int(const char *flag, const char *s, long lo, long hi, int *out);
int cli_u64(const char *flag, const char *s, uint64_t *out);
int cli_float(const char *flag, const char *s, double lo, double hi, float *out);
/* --device and --dtype (shared by generate and serve): checks the value
 * against the choices and stores it; returns 0 (after the usage message)
 * on a bad one. */
int cli_device(const char *cmd, const char *s, const char **out);
int cli_dtype(const char *cmd, const char *s, const char **out);
/* --weights q8 (generate, dataset, serve): sdc_load_options.weights */
int cli_weights(const char *cmd, const char *s, const char **out);
/* --lora PATH[:SCALE] (generate and dataset): the text after the last ':'
 * is a scale in [-100, 100] when it is a number, else part of the path.
 * paths / scales are laid out for sdc_load_options.loras / lora_scales. */
typedef struct {
    char buf[CLI_MAX_LORAS][PATH_MAX];
    const char *paths[CLI_MAX_LORAS];
    float scales[CLI_MAX_LORAS];
    int n;
} cli_loras;
/* Appends arg to l; returns 0 (after the usage message) when it is malformed
 * or l is full. */
int cli_lora(const char *cmd, const char *arg, cli_loras *l);
/* The model a command uses without -m (default_model.c): $SDC_MODEL, else
 * the demo model CLI_DEMO_MODEL beside the program (models/, or ../models
 * and ../../models from build folders of the source tree), else installed under the data
 * folder (make install: $(PREFIX)/share/sdc/models). NULL when none is
 * there; *source says which it was. */
#define CLI_DEMO_MODEL "sdc-shapes-64"
const char *cli_default_model(char *out, size_t n, const char **source);
/* model itself, or the default (named on stderr unless quiet: "cmd: model
 * PATH (where from)"); NULL after a message when there is none. */
const char *cli_model_or_default(const char *cmd, const char *model, int quiet, char *buf, size_t n);
/* Print "sdc: <msg>" and a hint to run --help; returns EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* --from-png (from_png.c): FILE's infotext parsed into *it and applied to r
 * (r's prompts then point into it), what it cannot carry over printed;
 * 0 after a message when FILE has none. */
int from_png_load(const char *path, sdc_infotext *it, sdc_request *r);
/* A warning when m is not the model the infotext names. */
void from_png_check_model(const sdc_infotext *it, const sdc_model *m);

int cmd_generate(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_dataset(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_convert(int argc, char **argv);

#endif
