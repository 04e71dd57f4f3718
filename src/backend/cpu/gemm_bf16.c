/* gemm_bf16.c - the opt-in bfloat16 GEMM (op_set_compute(cx, OP_BF16)): the
 * same blocking and packers as gemm.c, then each float32 panel is rounded to
 * bfloat16 (nearest even) with pairs of k interleaved, and an MR x 32 tile
 * kernel accumulates in float32 with VDPBF16PS (AVX512_BF16), two products
 * per lane per instruction: about twice the float32 FMA rate. Products of
 * bf16-rounded operands differ from float32 by ~0.4% relative; use it for
 * speed where that is acceptable, never for the golden comparisons. */
#include <string.h>

#include "backend/cpu/gemm.h"
#include "backend/ops.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define SDC_X86 1
#endif

int gemm_bf16_available(void) {
#ifdef SDC_X86
    static int v = -1;
    if (v < 0) {
        __builtin_cpu_init();
        v = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
            __builtin_cpu_supports("avx512bf16");
    }
    return v;
#else
    return 0;
#endif
}

void op_set_compute(op_ctx *cx, op_dtype dt) {
    cx->compute = dt == OP_BF16 && gemm_bf16_available() ? OP_BF16 : OP_F32;
}
op_dtype op_compute(const op_ctx *cx) { return cx->compute; }

int gemm_use_bf16(const gemm_desc *d, const gemm_arch *ar) {
    return d->bf16 && !d->f32_only && ar->vec == 2 && ar->nr == 32 && (ar->mr == 12 || ar->mr == 8);
}

#ifdef SDC_X86
/* panel [kc][R] floats -> [ceil(kc/2)][R][2] bfloat16 (R <= 32, odd kc padded with 0) */
__attribute__((target("avx512f,avx512bw,avx512bf16"))) static void to_bf16_pairs(const float *src, int64_t kc, int R,
                                                                               uint16_t *dst) {
    const __m512i inter = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22,
                                           6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    for (int64_t k = 0; k < kc; k += 2, dst += 2 * R) {
        const float *r0 = src + k * R, *r1 = k + 1 < kc ? r0 + R : NULL;
        for (int c = 0; c < R; c += 16) {
            int n = R - c < 16 ? R - c : 16;
            __mmask16 m = (__mmask16)((1u << n) - 1);
            __m512 a = _mm512_maskz_loadu_ps(m, r0 + c), b = r1 ? _mm512_maskz_loadu_ps(m, r1 + c) : _mm512_setzero_ps();
            __m512i h = (__m512i)_mm512_cvtne2ps_pbh(b, a); /* lanes 0-15: a, 16-31: b */
            h = _mm512_permutexvar_epi16(inter, h);         /* a0 b0 a1 b1 ... */
            _mm512_mask_storeu_epi16(dst + 2 * c, (__mmask32)(n == 16 ? 0xffffffffu : (1u << (2 * n)) - 1), h);
        }
    }
}

#define R12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#define R8(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
#define KB_DECL(i) __m512 c##i##0, c##i##1;
#define KB_LD(i)                                     \
    c##i##0 = _mm512_loadu_ps(c + (i) * ldc);        \
    c##i##1 = _mm512_loadu_ps(c + (i) * ldc + 16);
#define KB_INIT(i)                                   \
    {                                                \
        __m512 r = rb ? _mm512_set1_ps(rb[i]) : z;   \
        c##i##0 = _mm512_add_ps(b0, r);              \
        c##i##1 = _mm512_add_ps(b1, r);              \
    }
#define KB_FMA(i)                                                       \
    {                                                                   \
        __m512bh ai = (__m512bh)_mm512_set1_epi32((int)a[i]);           \
        c##i##0 = _mm512_dpbf16_ps(c##i##0, ai, b0);                    \
        c##i##1 = _mm512_dpbf16_ps(c##i##1, ai, b1);                    \
    }
#define KB_ST(i)                                     \
    _mm512_storeu_ps(c + (i) * ldc, c##i##0);        \
    _mm512_storeu_ps(c + (i) * ldc + 16, c##i##1);

/* a: [kp][MR] pairs (uint32), b: [kp][32] pairs */
#define KB_KERNEL(NAME, ROWS, MRV)                                                                               \
    __attribute__((target("avx512f,avx512bw,avx512bf16"))) static void NAME(                                   \
        int64_t kp, const uint32_t *a, const uint16_t *b, float *c, int64_t ldc, int load_c, const float *rb,    \
        const float *cb) {                                                                                       \
        ROWS(KB_DECL)                                                                                            \
        if (load_c) {                                                                                            \
            ROWS(KB_LD)                                                                                          \
        } else {                                                                                                 \
            __m512 z = _mm512_setzero_ps();                                                                      \
            __m512 b0 = cb ? _mm512_loadu_ps(cb) : z, b1 = cb ? _mm512_loadu_ps(cb + 16) : z;                    \
            ROWS(KB_INIT)                                                                                        \
        }                                                                                                        \
        for (int64_t p = 0; p < kp; p++) {                                                                       \
            __m512bh b0 = (__m512bh)_mm512_loadu_si512(b), b1 = (__m512bh)_mm512_loadu_si512(b + 32);           \
            _mm_prefetch((const char *)(b + 64 * 8), _MM_HINT_T0);                                              \
            ROWS(KB_FMA)                                                                                         \
            a += MRV;                                                                                            \
            b += 64;                                                                                             \
        }                                                                                                        \
        ROWS(KB_ST)                                                                                              \
    }

KB_KERNEL(kernel_bf16_12, R12, 12)
KB_KERNEL(kernel_bf16_8, R8, 8)

typedef void (*kernel_bf16_fn)(int64_t kp, const uint32_t *a, const uint16_t *b, float *c, int64_t ldc, int load_c,
                               const float *rb, const float *cb);

sdc_status gemm_serial_bf16(const gemm_desc *d, const gemm_arch *ar, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
    int MR = ar->mr, NR = 32;
    kernel_bf16_fn kern = MR == 12 ? kernel_bf16_12 : kernel_bf16_8;
    int64_t KC = ar->kc, MC = ar->mc, NC = ar->nc;
    int64_t mc_max = MC < m1 - m0 ? MC : m1 - m0, nc_max = NC < n1 - n0 ? NC : n1 - n0;
    int64_t kc_max = KC < d->K ? KC : d->K, kp_max = (kc_max + 1) / 2;
    int64_t mcp = (mc_max + MR - 1) / MR * MR, ncp = (nc_max + NR - 1) / NR * NR;
    float *ap = d->a_packed ? NULL : cpu_scratch(0, mcp * kc_max);
    float *bp = d->b_packed ? NULL : cpu_scratch(1, ncp * kc_max);
    uint16_t *ah = (uint16_t *)cpu_scratch(7, mcp * kp_max);
    uint16_t *bh = (uint16_t *)cpu_scratch(8, ncp * kp_max);
    if ((!ap && !d->a_packed) || (!bp && !d->b_packed) || !ah || !bh) return SDC_ERR_NOMEM;
    gemm_strided adesc = {d->a_direct, d->lda, 1};
    gemm_pack_fn pack_a = d->a_direct ? gemm_pack_strided : d->pack_a;
    const void *a_ctx = d->a_direct ? (const void *)&adesc : d->a_ctx;
    for (int64_t ic = m0; ic < m1; ic += MC) {
        int64_t mc = m1 - ic < MC ? m1 - ic : MC;
        for (int64_t pc = 0; pc < d->K; pc += KC) {
            int64_t kc = d->K - pc < KC ? d->K - pc : KC, kp = (kc + 1) / 2;
            int load_c = pc > 0 || d->accumulate;
            for (int64_t ir = 0; ir < mc; ir += MR) {
                const float *as;
                if (d->a_packed) {
                    as = d->a_packed + (ic + ir) * d->K + pc * MR;
                } else {
                    if (ir == 0) pack_a(a_ctx, ic, mc, pc, kc, MR, ap);
                    as = ap + ir * kc;
                }
                to_bf16_pairs(as, kc, MR, ah + ir * 2 * kp);
            }
            for (int64_t jc = n0; jc < n1; jc += NC) {
                int64_t nc = n1 - jc < NC ? n1 - jc : NC;
                if (!d->b_packed) d->pack_b(d->b_ctx, jc, nc, pc, kc, NR, bp);
                for (int64_t jr = 0; jr < nc; jr += NR) {
                    const float *bs = d->b_packed ? d->b_packed + (jc + jr) * d->K + pc * NR : bp + jr * kc;
                    to_bf16_pairs(bs, kc, NR, bh + jr * 2 * kp);
                }
                for (int64_t ir = 0; ir < mc; ir += MR) {
                    const uint32_t *as = (const uint32_t *)(ah + ir * 2 * kp);
                    int64_t i = ic + ir, mr = mc - ir < MR ? mc - ir : MR;
                    for (int64_t jr = 0; jr < nc; jr += NR) {
                        const uint16_t *bs = bh + jr * 2 * kp;
                        int64_t j = jc + jr, nr = nc - jr < NR ? nc - jr : NR;
                        int whole = mr == MR && nr == NR && (d->c_cols <= 0 || j % d->c_cols + NR <= d->c_cols);
                        if (whole) {
                            kern(kp, as, bs, c_at(d, i, j), d->ldc, load_c, d->row_bias ? d->row_bias + i : NULL,
                                 col_bias_at(d, j));
                            continue;
                        }
                        float t[12 * 32];
                        edge_tile_fill(d, t, MR, NR, i, j, mr, nr, load_c);
                        kern(kp, as, bs, t, NR, 1, NULL, NULL);
                        edge_tile_store(d, t, NR, i, j, mr, nr);
                    }
                }
            }
        }
    }
    return SDC_OK;
}
#else
sdc_status gemm_serial_bf16(const gemm_desc *d, const gemm_arch *ar, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
    (void)d, (void)ar, (void)m0, (void)m1, (void)n0, (void)n1;
    return SDC_ERR_UNSUPPORTED;
}
#endif
