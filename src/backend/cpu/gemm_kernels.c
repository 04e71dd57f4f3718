/* gemm_kernels.c - the GEMM register-tile micro-kernels and the choice
 * between them. Each kernel keeps an MR x NR tile of C in registers while it
 * walks k: one vector load per NR/lanes columns of B, one broadcast per row of
 * A, one FMA per (row, vector). The ISA-specific ones carry function target
 * attributes so the program itself needs no -m flags and runs on any x86-64;
 * which one runs is decided once from cpuid (__builtin_cpu_supports). */
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/gemm.h"

#if defined(__x86_64__) || defined(__i386__)
#define SDC_X86 1
#include <immintrin.h>
#endif

/* ---- portable C: 4 x 16, written so the compiler vectorises the j loops */
static void kernel_generic(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int load_c,
                           const float *rb, const float *cb) {
    float acc[4][16];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 16; j++)
            acc[i][j] = load_c ? c[i * ldc + j] : (rb ? rb[i] : 0.0f) + (cb ? cb[j] : 0.0f);
    for (int64_t k = 0; k < kc; k++, a += 4, b += 16)
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 16; j++) acc[i][j] += a[i] * b[j];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 16; j++) c[i * ldc + j] = acc[i][j];
}

#ifdef SDC_X86

/* ---- AVX-512: MR x 32 for MR = 12 (the GEMM tile: 24 accumulators of 16
 * floats, 2 B vectors, 1 broadcast) and MR = 8 (for matrices of 8k rows,
 * e.g. V^T in attention with head sizes 40, 64, 80, 160) */
#define R12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#define R8(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)

#define K512_DECL(i) __m512 c##i##0, c##i##1;
#define K512_LD(i)                                   \
    c##i##0 = _mm512_loadu_ps(c + (i) * ldc);        \
    c##i##1 = _mm512_loadu_ps(c + (i) * ldc + 16);
#define K512_INIT(i)                                 \
    {                                                \
        __m512 r = rb ? _mm512_set1_ps(rb[i]) : z;   \
        c##i##0 = _mm512_add_ps(b0, r);              \
        c##i##1 = _mm512_add_ps(b1, r);              \
    }
#define K512_FMA(i)                                           \
    {                                                         \
        __m512 ai = _mm512_set1_ps(a[(i) * ars]);             \
        c##i##0 = _mm512_fmadd_ps(ai, b0, c##i##0);           \
        c##i##1 = _mm512_fmadd_ps(ai, b1, c##i##1);           \
    }
#define K512_ST(i)                                   \
    _mm512_storeu_ps(c + (i) * ldc, c##i##0);        \
    _mm512_storeu_ps(c + (i) * ldc + 16, c##i##1);

/* A element (i, k) at a[i * ars + k * acs]: packed slivers (ars 1, acs MR)
 * or rows read in place (ars lda, acs 1). */
#define K512_BODY(NAME, ROWS)                                                                                   \
    __attribute__((target("avx512f"), always_inline)) static inline void NAME(                                \
        int64_t kc, const float *a, int64_t ars, int64_t acs, const float *b, float *c, int64_t ldc, int load_c, \
        const float *rb, const float *cb) {                                                                     \
        ROWS(K512_DECL)                                                                                         \
        if (load_c) {                                                                                           \
            ROWS(K512_LD)                                                                                       \
        } else {                                                                                                \
            __m512 z = _mm512_setzero_ps();                                                                     \
            __m512 b0 = cb ? _mm512_loadu_ps(cb) : z, b1 = cb ? _mm512_loadu_ps(cb + 16) : z;                   \
            ROWS(K512_INIT)                                                                                     \
        }                                                                                                       \
        for (int64_t k = 0; k < kc; k++) {                                                                      \
            __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);                                         \
            _mm_prefetch((const char *)(b + 32 * 8), _MM_HINT_T0);                                              \
            ROWS(K512_FMA)                                                                                      \
            a += acs;                                                                                           \
            b += 32;                                                                                            \
        }                                                                                                       \
        ROWS(K512_ST)                                                                                           \
    }

K512_BODY(body_avx512, R12)
K512_BODY(body_avx512_8, R8)

/* ---- AVX2 + FMA: 6 x 16 (12 accumulators of 8 floats) */
#define R6(X) X(0) X(1) X(2) X(3) X(4) X(5)

__attribute__((target("avx2,fma"), always_inline)) static inline void
body_avx2(int64_t kc, const float *a, int64_t ars, int64_t acs, const float *b, float *c, int64_t ldc, int load_c,
          const float *rb, const float *cb) {
#define DECL(i) __m256 c##i##0, c##i##1;
    R6(DECL)
#undef DECL
    if (load_c) {
#define LD(i)                                        \
    c##i##0 = _mm256_loadu_ps(c + (i) * ldc);        \
    c##i##1 = _mm256_loadu_ps(c + (i) * ldc + 8);
        R6(LD)
#undef LD
    } else {
        __m256 z = _mm256_setzero_ps();
        __m256 b0 = cb ? _mm256_loadu_ps(cb) : z, b1 = cb ? _mm256_loadu_ps(cb + 8) : z;
#define INIT(i)                                               \
    {                                                         \
        __m256 r = rb ? _mm256_set1_ps(rb[i]) : z;            \
        c##i##0 = _mm256_add_ps(b0, r);                       \
        c##i##1 = _mm256_add_ps(b1, r);                       \
    }
        R6(INIT)
#undef INIT
    }
    for (int64_t k = 0; k < kc; k++) {
        __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
        _mm_prefetch((const char *)(b + 16 * 8), _MM_HINT_T0);
#define FMA(i)                                                \
    {                                                         \
        __m256 ai = _mm256_broadcast_ss(a + (i) * ars);       \
        c##i##0 = _mm256_fmadd_ps(ai, b0, c##i##0);           \
        c##i##1 = _mm256_fmadd_ps(ai, b1, c##i##1);           \
    }
        R6(FMA)
#undef FMA
        a += acs;
        b += 16;
    }
#define ST(i)                                         \
    _mm256_storeu_ps(c + (i) * ldc, c##i##0);         \
    _mm256_storeu_ps(c + (i) * ldc + 8, c##i##1);
    R6(ST)
#undef ST
}

__attribute__((target("avx512f"))) static void kernel_avx512(int64_t kc, const float *a, const float *b, float *c,
                                                             int64_t ldc, int load_c, const float *rb,
                                                             const float *cb) {
    body_avx512(kc, a, 1, 12, b, c, ldc, load_c, rb, cb);
}
__attribute__((target("avx512f"))) static void kernel_avx512_direct(int64_t kc, const float *a, int64_t lda,
                                                                    const float *b, float *c, int64_t ldc,
                                                                    int load_c, const float *rb, const float *cb) {
    body_avx512(kc, a, lda, 1, b, c, ldc, load_c, rb, cb);
}
__attribute__((target("avx512f"))) static void kernel_avx512_8(int64_t kc, const float *a, const float *b, float *c,
                                                               int64_t ldc, int load_c, const float *rb,
                                                               const float *cb) {
    body_avx512_8(kc, a, 1, 8, b, c, ldc, load_c, rb, cb);
}
__attribute__((target("avx512f"))) static void kernel_avx512_8_direct(int64_t kc, const float *a, int64_t lda,
                                                                      const float *b, float *c, int64_t ldc,
                                                                      int load_c, const float *rb, const float *cb) {
    body_avx512_8(kc, a, lda, 1, b, c, ldc, load_c, rb, cb);
}
__attribute__((target("avx2,fma"))) static void kernel_avx2(int64_t kc, const float *a, const float *b, float *c,
                                                            int64_t ldc, int load_c, const float *rb,
                                                            const float *cb) {
    body_avx2(kc, a, 1, 6, b, c, ldc, load_c, rb, cb);
}
__attribute__((target("avx2,fma"))) static void kernel_avx2_direct(int64_t kc, const float *a, int64_t lda,
                                                                   const float *b, float *c, int64_t ldc, int load_c,
                                                                   const float *rb, const float *cb) {
    body_avx2(kc, a, lda, 1, b, c, ldc, load_c, rb, cb);
}
#endif

/* Cache blocks: an A sliver (mr x kc) stays in L1 while B slivers stream
 * from a kc x nc block kept in L2; mc rows of A are packed per block. */
static const gemm_arch arch_generic = {"generic", 4, 16, 256, 512, 256, kernel_generic, NULL, 0};
#ifdef SDC_X86
static const gemm_arch arch_avx512 = {"avx512", 12, 32, 384, 480, 480, kernel_avx512, kernel_avx512_direct, 2};
static const gemm_arch arch_avx512_8 = {"avx512", 8, 32, 384, 480, 480, kernel_avx512_8, kernel_avx512_8_direct, 2};
static const gemm_arch arch_avx2 = {"avx2", 6, 16, 384, 480, 480, kernel_avx2, kernel_avx2_direct, 1};
#endif

const gemm_arch *gemm_arch_named(const char *name) {
    if (!strcmp(name, "generic")) return &arch_generic;
#ifdef SDC_X86
    __builtin_cpu_init();
    if (!strcmp(name, "avx512") && __builtin_cpu_supports("avx512f")) return &arch_avx512;
    if (!strcmp(name, "avx2") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return &arch_avx2;
#endif
    return NULL;
}

static const gemm_arch *chosen;

void gemm_arch_force(const gemm_arch *a) { __atomic_store_n(&chosen, a, __ATOMIC_RELEASE); }

const gemm_arch *gemm_arch_for_rows(const gemm_arch *a, int64_t M) {
#ifdef SDC_X86
    if (a == &arch_avx512 && M % 12 && M % 8 == 0) return &arch_avx512_8;
#endif
    return a;
}

const gemm_arch *gemm_arch_get(void) {
    const gemm_arch *a = __atomic_load_n(&chosen, __ATOMIC_ACQUIRE);
    if (a) return a;
    const char *env = getenv("SDC_GEMM_ISA");
    if (env) a = gemm_arch_named(env);
    if (!a) a = gemm_arch_named("avx512");
    if (!a) a = gemm_arch_named("avx2");
    if (!a) a = &arch_generic;
    __atomic_store_n(&chosen, a, __ATOMIC_RELEASE);
    return a;
}
