/* torch_rng.h - bit-exact re-implementation of PyTorch's CPU generator
 * (torch.Generator("cpu"), torch 1.13) and of torch.randn on it.
 *
 *   torch_gen g; torch_gen_seed(&g, 42); torch_randn(&g, buf, n);
 *
 * mt19937 as in ATen/core/MT19937RNGEngine.h (seeded with seed & 0xffffffff;
 * the full 64-bit seed is only remembered), float uniforms from 24 bits of
 * one 32-bit draw, double uniforms from 53 bits of two draws (hi << 32 | lo).
 * randn of n >= 16 elements: n float uniforms, Box-Muller 16 at a time with
 * the AVX2 kernel's Cephes polynomials (avx_mathfun.h), the last 16 redrawn
 * and recomputed when n % 16 != 0. n < 16: the double-precision scalar path
 * with the generator's cached second normal. */
#ifndef SDC_RNG_TORCH_RNG_H
#define SDC_RNG_TORCH_RNG_H

#include <stdint.h>

typedef struct {
    uint32_t state[624];
    int left;
    uint32_t next;
    uint64_t seed;
    int has_next_double;     /* torch's next_double_normal_sample_ */
    double next_double;
} torch_gen;

void torch_gen_seed(torch_gen *g, uint64_t seed); /* manual_seed(seed) */
uint32_t torch_gen_random(torch_gen *g);          /* one 32-bit draw */
uint64_t torch_gen_random64(torch_gen *g);        /* two draws, first in the high half */

/* torch.randn(n elements, generator=g), float32, as the AVX2 build computes it. */
void torch_randn(torch_gen *g, float *out, int64_t n);

/* The same draw as torch's non-vectorised kernel (ATEN_CPU_CAPABILITY=default):
 * identical below 16 elements, uses libm logf/cosf/sinf above. */
void torch_randn_default_kernel(torch_gen *g, float *out, int64_t n);

#endif
