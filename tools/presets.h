/* presets.h - `sdc generate|dataset --preset NAME`: the settings of the fast recipes
 * (the model cards' own diffusers calls). A preset fills only what the
 * command line did not set, so explicit flags win wherever they appear. */
#ifndef SDC_TOOLS_PRESETS_H
#define SDC_TOOLS_PRESETS_H

#include "sdc.h"

typedef struct {
    const char *name;
    const char *scheduler;        /* sdc scheduler name */
    const char *timestep_spacing; /* NULL: the scheduler config's */
    int steps;
    float guidance;
    float eta;                    /* < 0: leave */
    int size;                     /* width = height; 0: the model's native size */
    const char *recipe;           /* one line for --help */
} sdc_preset;

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
void preset_apply(const sdc_preset *p, const preset_given *given, sdc_request *r);

#endif
