/* philox.h - PyTorch's CUDA generator (torch.Generator("cuda")) and
 * torch.randn on it, float32, computed on the CPU: the noise A1111 and
 * ComfyUI GPU users' seeds stand for.
 *
 *   philox_gen g; philox_gen_seed(&g, 42); philox_randn(&g, buf, n);
 *
 * The core is two pure functions, static inline so a CUDA backend can include
 * this header and call the very same code on the device:
 *   philox4x32_10(counter, key)  Random123's Philox4x32-10, as cuRAND's
 *                                curand_Philox4x32_10 (curand_philox4x32_x.h)
 *   philox_box_muller(x, y)      cuRAND's _curand_box_muller (curand_normal.h)
 *
 * What torch does for randn(n) on CUDA (ATen/native/cuda/DistributionTemplates.h,
 * calc_execution_policy + distribution_elementwise_grid_stride_kernel with
 * curand_normal4, unroll 4; CUDAGeneratorImpl::philox_cuda_state):
 *   blocks  = min(ceil(n / 256), SMs * (maxThreadsPerSM / 256)),  T = 256 * blocks
 *   thread t (0 <= t < T) runs curand_init(seed, subsequence t, offset): counter
 *   (offset/4 as 64 bits in words 0-1, t as 64 bits in words 2-3), key (seed lo,
 *   seed hi); its k-th curand_normal4 takes philox(counter + k) = r0..r3 and
 *   gives box_muller(r0, r1) = (sin, cos), box_muller(r2, r3) = (sin, cos).
 *   Element e = component (e / T) % 4 of thread e % T's call e / (4T).
 *   The generator's offset then grows by ceil(n / 4T) * 4.
 * So while n <= T_max = 256 * SMs * (maxThreadsPerSM / 256) (one wave) element
 * i is simply sin-output of subsequence i, the same on every GPU; above it the
 * values depend on the GPU's SM count. philox_gen.max_threads holds T_max: the
 * default is an H100 SXM's (132 SMs x 2048 threads = 270336). An SD 1.x
 * 512x512 latent (16384 floats per image) fits one wave on any CUDA GPU of
 * recent years (a T4 has 40960); an SDXL 1024x1024 latent (65536)
 * fits on most (RTX 3070: 70656, A100: 221184) but not on an RTX 3060 (43008)
 * or a T4: noise from those GPUs needs their max_threads set. Beyond 2^31 - 1
 * elements torch splits the launch and this layout no longer applies.
 *
 * Precision: the Philox draws and the element layout are exact. cuRAND's
 * device Box-Muller takes sin/cos from the fast __sincosf intrinsic (absolute
 * error about 2^-21.4 = 3.6e-7 on [-pi, pi], somewhat more up to 2 pi, times
 * s <= 6.7); the host path here uses logf/sinf/cosf, within 5.4e-7 of the
 * exact value (measured over 10^6 draws). So a value may differ from a GPU's
 * in the last bits, by up to a few 1e-6 absolute (not a fixed relative
 * error: near sin(v) = 0 the relative error grows). Checked against 90 values
 * torch printed on GPUs (tests/test_philox.c): all equal to 4 decimals.
 * Compiled by nvcc for the device, philox_box_muller uses __sincosf itself
 * and so is cuRAND's arithmetic. */
#ifndef SDC_RNG_PHILOX_H
#define SDC_RNG_PHILOX_H

#include <math.h>
#include <stdint.h>

#if defined(__CUDACC__)
#define PHILOX_FN static inline __host__ __device__
#else
#define PHILOX_FN static inline
#endif

#define PHILOX_M0 0xD2511F53u /* round multipliers (Random123 PHILOX_M4x32_0/1) */
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u /* Weyl key increments (golden ratio, sqrt(3) - 1) */
#define PHILOX_W1 0xBB67AE85u

/* Philox4x32 with 10 rounds: out = philox(ctr, key); out may alias ctr. */
PHILOX_FN void philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int r = 0; r < 10; r++) {
        if (r > 0) {
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
        const uint64_t p0 = (uint64_t)PHILOX_M0 * c0, p1 = (uint64_t)PHILOX_M1 * c2;
        const uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c1 = (uint32_t)p1;
        c3 = (uint32_t)p0;
        c0 = n0;
        c2 = n2;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

/* cuRAND's float Box-Muller of two 32-bit draws: out[0] = s sin(v) (used by
 * even components), out[1] = s cos(v), u = x 2^-32 + 2^-33 in (0, 1],
 * v = y 2pi 2^-32 + pi 2^-32, s = sqrt(-2 ln u). The uint -> float conversions
 * round to nearest as the GPU's; nvcc contracts y * C + C/2 into one FMA,
 * hence fmaf. */
PHILOX_FN void philox_box_muller(uint32_t x, uint32_t y, float out[2]) {
    const float inv32 = 2.3283064e-10f;            /* CURAND_2POW32_INV: exactly 2^-32 */
    const float inv32_2pi = 2.3283064e-10f * 6.2831855f; /* CURAND_2POW32_INV_2PI */
    const float u = fmaf((float)x, inv32, inv32 / 2);
    const float v = fmaf((float)y, inv32_2pi, inv32_2pi / 2);
    const float s = sqrtf(-2.0f * logf(u));
    float sn, cs;
#if defined(__CUDA_ARCH__)
    __sincosf(v, &sn, &cs);
#else
    sn = sinf(v);
    cs = cosf(v);
#endif
    out[0] = sn * s;
    out[1] = cs * s;
}

/* The launch geometry's thread cap T_max for a GPU: 256 * SMs * (maxThreadsPerSM / 256). */
#define PHILOX_H100_SMS 132
#define PHILOX_H100_THREADS_PER_SM 2048
int64_t philox_max_threads(int sm_count, int max_threads_per_sm);

typedef struct {
    uint64_t seed;        /* the key: manual_seed(seed) */
    uint64_t offset;      /* philox_offset_per_thread_, always a multiple of 4 */
    int64_t max_threads;  /* T_max of the emulated GPU (see above) */
} philox_gen;

/* manual_seed(seed): offset 0, T_max of an H100 SXM (set max_threads after to emulate another GPU). */
void philox_gen_seed(philox_gen *g, uint64_t seed);

/* Threads one randn launch of n elements uses (T above): 256 * min(ceil(n / 256), T_max / 256). */
int64_t philox_launch_threads(const philox_gen *g, int64_t n);

/* torch.randn(n, generator=g, device="cuda", dtype=float32) into out[n]; advances
 * g->offset by ceil(n / 4T) * 4. n <= 0 draws nothing and leaves g as it is
 * (torch returns before touching the generator for empty tensors). */
void philox_randn(philox_gen *g, float *out, int64_t n);

#endif
