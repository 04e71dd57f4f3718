/* presets.c - the library's presets (sdc_preset_*) on the command line: see
 * presets.h. The recipes themselves live in src/sched/presets.c. */
#include "presets.h"

#include <stdio.h>
#include <string.h>

const sdc_preset *preset_find(const char *name) { return sdc_preset_find(name); }

const char *preset_names(void) {
    static char names[256]; /* written once, by the first caller (the commands are single-threaded) */
    if (!names[0]) {
        size_t o = 0;
        for (int i = 0; i < sdc_preset_count() && o < sizeof names; i++)
            o += (size_t)snprintf(names + o, sizeof names - o, "%s%s", i ? " | " : "", sdc_preset_at(i)->name);
    }
    return names;
}

void preset_describe(const sdc_preset *p, char *out, size_t n) {
    int o = snprintf(out, n, "%s", p->sampler->a1111_name);
    if (p->timestep_spacing) o += snprintf(out + o, n - (size_t)o, ", %s", p->timestep_spacing);
    o += snprintf(out + o, n - (size_t)o, ", %d step%s, guidance %g", p->steps, p->steps == 1 ? "" : "s",
                  (double)p->guidance);
    if (p->eta >= 0.0f) o += snprintf(out + o, n - (size_t)o, ", eta %.1f", (double)p->eta);
    if (p->size) snprintf(out + o, n - (size_t)o, ", %dx%d", p->size, p->size);
}

void preset_apply(const sdc_preset *p, const preset_given *g, sdc_request *r) {
    if (!g->scheduler) r->scheduler = p->sampler->name;
    if (!g->timestep_spacing && p->timestep_spacing) r->timestep_spacing = p->timestep_spacing;
    if (!g->steps) r->steps = p->steps;
    if (!g->guidance) r->guidance = p->guidance;
    if (!g->eta && p->eta >= 0.0f) r->eta = p->eta;
    if (!g->width && p->size) r->width = p->size;
    if (!g->height && p->size) r->height = p->size;
}

void preset_note_given(preset_given *g, int opt) {
    switch (opt) {
    case PRESET_OPT_SCHED: g->scheduler = 1; break;
    case PRESET_OPT_SPACING: g->timestep_spacing = 1; break;
    case PRESET_OPT_STEPS: g->steps = 1; break;
    case PRESET_OPT_GUIDANCE: g->guidance = 1; break;
    case PRESET_OPT_ETA: g->eta = 1; break;
    case 'W': g->width = 1; break;
    case 'H': g->height = 1; break;
    default: break;
    }
}
