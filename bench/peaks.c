/* peaks.c - this CPU's arithmetic limits, from register-only loops of
 * independent chains (no memory traffic): AVX-512 FMA (fp32), VDPBF16PS
 * (bf16 products, fp32 sums) and VPDPBUSD (int8 products, int32 sums) in
 * its AVX512-VNNI and AVX-VNNI forms. What the GEMM kernels are measured
 * against (bench_gemm, bench_pipeline). */
#include <stdio.h>

#include "bench_common.h"

static const char *const k_names[BENCH_NPEAKS] = {"AVX-512 FMA fp32", "VDPBF16PS bf16", "VPDPBUSD int8 (AVX512-VNNI)",
                                                  "VPDPBUSD int8 (AVX-VNNI, 256-bit)"};
const char *bench_peak_name(int k) { return k >= 0 && k < BENCH_NPEAKS ? k_names[k] : "?"; }

#if defined(__x86_64__)
#include <immintrin.h>
#include <omp.h>

#define CH(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
__attribute__((target("avx512f"))) static float fma_loop(long n) {
    __m512 b = _mm512_set1_ps(1.0000001f), c = _mm512_set1_ps(1e-7f);
#define DF(i) __m512 a##i = _mm512_set1_ps((float)(i));
#define FF(i) a##i = _mm512_fmadd_ps(a##i, b, c);
#define SF(i) s = _mm512_add_ps(s, a##i);
    CH(DF)
    for (long k = 0; k < n; k++) { CH(FF) }
    __m512 s = _mm512_setzero_ps();
    CH(SF)
    return _mm512_reduce_add_ps(s);
}
__attribute__((target("avx512f,avx512bf16"))) static float bf16_loop(long n) {
    __m512bh b = (__m512bh)_mm512_set1_epi16(0x3f80);
#define DB(i) __m512 a##i = _mm512_set1_ps((float)(i));
#define FB(i) a##i = _mm512_dpbf16_ps(a##i, b, b);
    CH(DB)
    for (long k = 0; k < n; k++) { CH(FB) }
    __m512 s = _mm512_setzero_ps();
    CH(SF)
    return _mm512_reduce_add_ps(s);
}
__attribute__((target("avx512f,avx512vnni"))) static float vnni_loop(long n) {
    __m512i b = _mm512_set1_epi32(0x01010101), c = _mm512_set1_epi32(0x02020202);
#define DV(i) __m512i a##i = _mm512_set1_epi32(i);
#define FV(i) a##i = _mm512_dpbusd_epi32(a##i, b, c);
#define SV(i) s = _mm512_add_epi32(s, a##i);
    CH(DV)
    for (long k = 0; k < n; k++) { CH(FV) }
    __m512i s = _mm512_setzero_si512();
    CH(SV)
    return (float)_mm512_reduce_add_epi32(s);
}
__attribute__((target("avx2,avxvnni"))) static float avxvnni_loop(long n) {
    __m256i b = _mm256_set1_epi32(0x01010101), c = _mm256_set1_epi32(0x02020202);
#define DW(i) __m256i a##i = _mm256_set1_epi32(i);
#define FW(i) a##i = _mm256_dpbusd_avx_epi32(a##i, b, c);
#define SW(i) s = _mm256_add_epi32(s, a##i);
    CH(DW)
    for (long k = 0; k < n; k++) { CH(FW) }
    __m256i s = _mm256_setzero_si256();
    CH(SW)
    return (float)_mm256_extract_epi32(s, 0);
}

void bench_arith_peaks(int threads, double gops[BENCH_NPEAKS]) {
    __builtin_cpu_init();
    int have[BENCH_NPEAKS] = {__builtin_cpu_supports("avx512f") != 0, __builtin_cpu_supports("avx512bf16") != 0,
                              __builtin_cpu_supports("avx512vnni") != 0, __builtin_cpu_supports("avxvnni") != 0};
    /* operations per loop iteration: 12 chains x lanes x products per lane x 2 */
    static const double ops[BENCH_NPEAKS] = {12 * 16 * 2, 12 * 16 * 2 * 2, 12 * 16 * 4 * 2, 12 * 8 * 4 * 2};
    long n = 30000000;
    int T = threads > 0 ? threads : 1;
    for (int kind = 0; kind < BENCH_NPEAKS; kind++) {
        gops[kind] = 0;
        if (!have[kind] || !have[0]) continue;
        double best = 1e30;
        volatile float sink = 0;
        for (int r = 0; r < 3; r++) {
            double t0 = bench_now();
#pragma omp parallel num_threads(T)
            {
                float v = kind == 0 ? fma_loop(n) : kind == 1 ? bf16_loop(n) : kind == 2 ? vnni_loop(n) : avxvnni_loop(n);
#pragma omp atomic
                sink += v;
            }
            double t = bench_now() - t0;
            if (t < best) best = t;
        }
        gops[kind] = (double)T * n * ops[kind] / best / 1e9;
    }
}
#else
void bench_arith_peaks(int threads, double gops[BENCH_NPEAKS]) {
    (void)threads;
    for (int k = 0; k < BENCH_NPEAKS; k++) gops[k] = 0;
}
#endif
