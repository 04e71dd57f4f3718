/* philox.c - the CUDA generator's state and torch's element -> (thread,
 * call, component) layout for randn; the arithmetic lives in philox.h. */
#include "rng/philox.h"

#define PHILOX_BLOCK 256 /* block_size_bound in DistributionTemplates.h */
#define PHILOX_UNROLL 4  /* curand_normal4 yields 4 floats per call */

int64_t philox_max_threads(int sm_count, int max_threads_per_sm) {
    if (sm_count < 1 || max_threads_per_sm < PHILOX_BLOCK) return PHILOX_BLOCK;
    return (int64_t)PHILOX_BLOCK * sm_count * (max_threads_per_sm / PHILOX_BLOCK);
}

void philox_gen_seed(philox_gen *g, uint64_t seed) {
    g->seed = seed;
    g->offset = 0;
    g->max_threads = philox_max_threads(PHILOX_H100_SMS, PHILOX_H100_THREADS_PER_SM);
}

int64_t philox_launch_threads(const philox_gen *g, int64_t n) {
    const int64_t cap_blocks = g->max_threads >= PHILOX_BLOCK ? g->max_threads / PHILOX_BLOCK : 1;
    int64_t blocks = (n + PHILOX_BLOCK - 1) / PHILOX_BLOCK;
    if (blocks > cap_blocks) blocks = cap_blocks;
    if (blocks < 1) blocks = 1;
    return blocks * PHILOX_BLOCK;
}

void philox_randn(philox_gen *g, float *out, int64_t n) {
    if (n <= 0) return;
    const int64_t T = philox_launch_threads(g, n);
    const uint64_t calls = (uint64_t)((n - 1) / (T * PHILOX_UNROLL) + 1);
    const uint64_t base = g->offset / 4; /* skipahead(offset) with offset % 4 == 0: counter += offset / 4 */
    const uint32_t key[2] = {(uint32_t)g->seed, (uint32_t)(g->seed >> 32)};
    /* One Philox block per (thread, call) feeds up to 4 elements, T apart. */
    for (uint64_t k = 0; k < calls; k++) {
        const int64_t first = (int64_t)k * T * PHILOX_UNROLL;
        for (int64_t t = 0; t < T && first + t < n; t++) {
            const uint64_t c = base + k;
            const uint32_t ctr[4] = {(uint32_t)c, (uint32_t)(c >> 32), (uint32_t)t, (uint32_t)((uint64_t)t >> 32)};
            uint32_t r[4];
            float bm[2];
            philox4x32_10(ctr, key, r);
            philox_box_muller(r[0], r[1], bm);
            out[first + t] = bm[0];
            if (first + T + t < n) out[first + T + t] = bm[1];
            if (first + 2 * T + t < n) {
                philox_box_muller(r[2], r[3], bm);
                out[first + 2 * T + t] = bm[0];
                if (first + 3 * T + t < n) out[first + 3 * T + t] = bm[1];
            }
        }
    }
    g->offset += calls * 4; /* counter_offset, already a multiple of 4 */
}
