/* noise_gen.c - dispatch between torch's CPU and CUDA generators. */
#include "rng/noise_gen.h"

#include <string.h>

void noise_gen_seed(noise_gen *g, noise_rng kind, uint64_t seed) {
    g->kind = kind;
    if (kind == NOISE_RNG_CUDA)
        philox_gen_seed(&g->g.cuda, seed);
    else
        torch_gen_seed(&g->g.cpu, seed);
}

void noise_randn(noise_gen *g, float *out, int64_t n) {
    if (g->kind == NOISE_RNG_CUDA)
        philox_randn(&g->g.cuda, out, n);
    else
        torch_randn(&g->g.cpu, out, n);
}

sdc_status noise_rng_parse(const char *name, noise_rng *out) {
    if (!name || !name[0] || !strcmp(name, "cpu")) {
        *out = NOISE_RNG_CPU;
        return SDC_OK;
    }
    if (!strcmp(name, "cuda")) {
        *out = NOISE_RNG_CUDA;
        return SDC_OK;
    }
    return sdc_fail(SDC_ERR_ARG, "unknown rng '%s' (valid: cpu, cuda)", name);
}

const char *noise_rng_name(noise_rng kind) { return kind == NOISE_RNG_CUDA ? "cuda" : "cpu"; }
