/* noise_gen.h - one image's noise source, either of the two torch generators
 * a seed can mean:
 *   NOISE_RNG_CPU   torch.Generator("cpu") (mt19937; diffusers' CPU-generator
 *                   runs, sdc's default)
 *   NOISE_RNG_CUDA  torch.Generator("cuda") (Philox; what A1111's default
 *                   "GPU" noise and ComfyUI GPU seeds mean)
 * The pipeline and the schedulers draw through noise_randn, so every draw
 * (initial latents, ancestral / TCD / LCM step noise) comes from the chosen
 * generator in the same order. */
#ifndef SDC_RNG_NOISE_GEN_H
#define SDC_RNG_NOISE_GEN_H

#include <stdint.h>

#include "core/status.h"
#include "rng/philox.h"
#include "rng/torch_rng.h"

typedef enum { NOISE_RNG_CPU = 0, NOISE_RNG_CUDA = 1 } noise_rng;

typedef struct {
    noise_rng kind;
    union {
        torch_gen cpu;
        philox_gen cuda;
    } g;
} noise_gen;

/* manual_seed(seed) on a fresh generator of `kind`. */
void noise_gen_seed(noise_gen *g, noise_rng kind, uint64_t seed);
/* torch.randn(n elements, generator=g), float32. */
void noise_randn(noise_gen *g, float *out, int64_t n);

/* "cpu" (or NULL / "") -> NOISE_RNG_CPU, "cuda" -> NOISE_RNG_CUDA;
 * anything else -> SDC_ERR_ARG naming the valid values. */
sdc_status noise_rng_parse(const char *name, noise_rng *out);
const char *noise_rng_name(noise_rng kind); /* "cpu" | "cuda" */

#endif
