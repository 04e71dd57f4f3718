/* presets.h - `sdc generate|dataset --preset NAME`: the library's presets
 * (sdc_preset in sdc.h) applied to a request. A preset fills only what the
 * command line did not set, so explicit flags win wherever they appear. */
#ifndef SDC_TOOLS_PRESETS_H
#define SDC_TOOLS_PRESETS_H

#include <stddef.h>

#include "sdc.h"

/* Which request fields the command line set explicitly. */
typedef struct {
    int scheduler, timestep_spacing, steps, guidance, eta, width, height;
} preset_given;

/* getopt_long codes of the options a preset sets, shared by the commands
 * that take --preset so that preset_note_given knows them ('W', 'H' too) */
enum { PRESET_OPT_STEPS = 400, PRESET_OPT_GUIDANCE, PRESET_OPT_SCHED, PRESET_OPT_SPACING, PRESET_OPT_ETA };
/* Record that the command line gave option `opt`: explicit flags win over a preset. */
void preset_note_given(preset_given *g, int opt);

const sdc_preset *preset_find(const char *name);
/* "sdxl-turbo | hyper-sd-2step | hyper-sd-1step" */
const char *preset_names(void);
/* One line for --help: "Euler a, trailing, 1 step, guidance 0, 512x512" */
void preset_describe(const sdc_preset *p, char *out, size_t n);
void preset_apply(const sdc_preset *p, const preset_given *given, sdc_request *r);

#endif
