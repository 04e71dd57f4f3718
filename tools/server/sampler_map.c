/* sampler_map.c - the A1111 samplers sdc runs (the library's registry, with
 * A1111's own names and aliases from modules/sd_samplers_*.py), and the ones
 * A1111 has that diffusers does not implement, refused with the reason. */
#include "sampler_map.h"

#include <stdio.h>
#include <strings.h>

const sdc_sampler_info *sampler_find(const char *name, const sdc_schedule_info **schedule) {
    int karras;
    const sdc_sampler_info *s = sdc_sampler_find_a1111(name, &karras);
    if (s && karras) *schedule = sdc_schedule_find("karras");
    return s;
}

const sdc_sampler_info *sampler_default(void) {
    for (int i = 0; i < sdc_sampler_count(); i++)
        if (sdc_sampler_at(i)->a1111_default) return sdc_sampler_at(i);
    return sdc_sampler_at(0);
}

/* A1111 samplers with no diffusers scheduler for sdc to be equal to (or, DPM++ SDE, one sdc lacks) */
static const struct {
    const char *name, *alias, *why;
} k_missing[] = {
    {"DPM++ 2S a", "k_dpmpp_2s_a",
     "k-diffusion's ancestral single-step sampler, which diffusers does not implement (sdc's \"DPM++ 2S\" is "
     "diffusers' DPMSolverSinglestepScheduler, not ancestral)"},
    {"DPM++ 2S a Karras", "k_dpmpp_2s_a_ka", "k-diffusion's ancestral single-step sampler, which diffusers does not implement"},
    {"DPM++ SDE", "k_dpmpp_sde",
     "k-diffusion's DPM++ SDE with Brownian-tree noise (diffusers' DPMSolverSDEScheduler), which sdc does not implement"},
    {"DPM++ 3M SDE", "k_dpmpp_3m_sde", "k-diffusion's third-order SDE sampler, which diffusers does not implement"},
    {"DPM fast", "k_dpm_fast", "k-diffusion's DPM-Solver fast, which diffusers does not implement"},
    {"DPM adaptive", "k_dpm_ad", "k-diffusion's adaptive DPM-Solver, which diffusers does not implement"},
    {"Restart", "restart", "A1111's Restart sampler, which diffusers does not implement"},
    {"DDIM CFG++", "ddim_cfgpp", "A1111's DDIM CFG++, which diffusers does not implement"},
};

const char *sampler_missing(const char *name) {
    for (size_t i = 0; name && i < sizeof k_missing / sizeof k_missing[0]; i++)
        if (!strcasecmp(name, k_missing[i].name) || !strcasecmp(name, k_missing[i].alias)) return k_missing[i].why;
    return NULL;
}

void sampler_takers(const sdc_schedule_info *k, char *out, size_t n) {
    int total = 0, i, j = 0;
    for (i = 0; i < sdc_sampler_count(); i++) total += sdc_sampler_takes_schedule(sdc_sampler_at(i), k);
    size_t o = 0;
    out[0] = 0;
    for (i = 0; i < sdc_sampler_count() && o < n; i++) {
        const sdc_sampler_info *s = sdc_sampler_at(i);
        if (!sdc_sampler_takes_schedule(s, k)) continue;
        o += (size_t)snprintf(out + o, n - o, "%s%s", !j ? "" : j == total - 1 ? " and " : ", ", s->a1111_name);
        j++;
    }
}
