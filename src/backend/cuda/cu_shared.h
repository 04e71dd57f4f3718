/* cu_shared.h - the pure arithmetic of the CUDA kernels (index maps, tile
 * schedule, online-softmax steps), written once as static inline functions
 * that nvcc compiles for the device and a C compiler for the host. The
 * kernels call them; tests/test_cuda.c runs the same functions on the CPU
 * (an emulation of the attention tile loop, a chunked im2col convolution)
 * against the ops.h reference, so this part is tested on machines without a
 * GPU. Plain C11 + CUDA C++: no CUDA types, no allocation. */
#ifndef SDC_BACKEND_CUDA_SHARED_H
#define SDC_BACKEND_CUDA_SHARED_H

#include <math.h>
#include <stdint.h>

#ifdef __CUDACC__
#define CU_HD __host__ __device__
#else
#define CU_HD
#endif

/* ---- flash attention tile schedule ----
 * A block of CU_ATT_WARPS warps takes CU_ATT_BQ query rows (16 per warp,
 * one wmma row tile each) of one (batch, head) and walks the keys in tiles
 * of cu_att_bk(dhp) rows; the head dim is zero-padded to dhp, a multiple of
 * 16 (the wmma k step). */
#define CU_ATT_WARPS 4
#define CU_ATT_BQ (16 * CU_ATT_WARPS)
#define CU_ATT_MAX_DH 160 /* larger heads take the f32 kernel */

/* Padded head dim of a tensor-core kernel instantiation, 0 when none. */
CU_HD static inline int cu_att_dh_pad(int dh) {
    if (dh <= 0 || dh > CU_ATT_MAX_DH) return 0;
    if (dh <= 32) return 32;
    if (dh <= 48) return 48;
    if (dh <= 64) return 64;
    if (dh <= 80) return 80;
    if (dh <= 96) return 96;
    if (dh <= 128) return 128;
    return 160;
}

/* Keys per tile: smaller for wide heads so shared memory stays < 100 KB. */
CU_HD static inline int cu_att_bk(int dhp) { return dhp >= 128 ? 32 : 64; }

/* Shared-memory bytes of one block (elements of 2 bytes for Q/K/V/P, floats
 * for S and O); row strides padded by 8 halves / 4 floats against bank
 * conflicts (wmma needs ldm a multiple of 8 halves / 4 floats). */
CU_HD static inline int cu_att_ld_h(int dhp) { return dhp + 8; }
CU_HD static inline int cu_att_ld_s(int bk) { return bk + 4; }
CU_HD static inline int cu_att_ld_p(int bk) { return bk + 8; }
CU_HD static inline int cu_att_ld_o(int dhp) { return dhp + 4; }
CU_HD static inline int64_t cu_att_smem_bytes(int dhp) {
    int bk = cu_att_bk(dhp);
    int64_t halves = (int64_t)(CU_ATT_BQ + 2 * bk) * cu_att_ld_h(dhp) + (int64_t)CU_ATT_BQ * cu_att_ld_p(bk);
    int64_t floats = (int64_t)CU_ATT_BQ * cu_att_ld_s(bk) + (int64_t)CU_ATT_BQ * cu_att_ld_o(dhp);
    return halves * 2 + floats * 4;
}

/* Key j is seen by query i: inside the keys, and not after i when causal. */
CU_HD static inline int cu_att_key_valid(int j, int i, int Nk, int causal) { return j < Nk && (!causal || j <= i); }

/* Causal: key tiles starting after the block's last query row are all masked. */
CU_HD static inline int cu_att_key_end(int q0, int Nq, int Nk, int causal) {
    if (!causal) return Nk;
    int last = q0 + CU_ATT_BQ - 1 < Nq - 1 ? q0 + CU_ATT_BQ - 1 : Nq - 1;
    return last + 1 < Nk ? last + 1 : Nk;
}

/* Online softmax in base 2: scores are s * scale * log2(e) (sl2).
 * Step 1: the largest valid scaled score of columns [c0,c1) of a tile whose
 * first key is j0, for query i (-inf when none is valid). */
CU_HD static inline float cu_att_tile_max(const float *s, int c0, int c1, int j0, int i, int Nk, int causal,
                                          float sl2) {
    float mx = -INFINITY;
    for (int c = c0; c < c1; c++)
        if (cu_att_key_valid(j0 + c, i, Nk, causal)) mx = fmaxf(mx, s[c] * sl2);
    return mx;
}

/* Step 2: the new running max from the old one and the tile's; returns the
 * factor exp2(m_old - m_new) that rescales the running sum and output. */
CU_HD static inline float cu_att_new_max(float m_old, float tile_max, float *m_new) {
    float m = fmaxf(m_old, tile_max);
    *m_new = m;
    if (m == -INFINITY) return 1.0f; /* nothing valid yet */
    return exp2f(m_old - m);         /* m_old = -inf gives 0 */
}

/* Step 3: s[c] <- exp2(s[c]*sl2 - m) for valid columns, 0 otherwise; returns
 * their sum. The caller then does l = l * corr + sum and O = O * corr + P V. */
CU_HD static inline float cu_att_tile_exp(float *s, int c0, int c1, int j0, int i, int Nk, int causal, float sl2,
                                          float m) {
    float sum = 0.0f;
    for (int c = c0; c < c1; c++) {
        float p = 0.0f;
        if (m != -INFINITY && cu_att_key_valid(j0 + c, i, Nk, causal)) p = exp2f(s[c] * sl2 - m);
        s[c] = p;
        sum += p;
    }
    return sum;
}

/* ---- convolution as im2col + GEMM ----
 * The column matrix of output pixels [p0, p0+np) has K = C*k*k rows and np
 * columns: col[r][p - p0] = x[c][iy][ix] with r = (c*k + ky)*k + kx, output
 * pixel p = oy*Wo + ox, iy = oy*stride - pad + ky (same for x); 0 outside. */
CU_HD static inline int64_t cu_im2col_src(int64_t r, int64_t p, int H, int W, int Wo, int k, int stride, int pad) {
    int64_t c = r / (k * k);
    int kk = (int)(r % (k * k)), ky = kk / k, kx = kk % k;
    int oy = (int)(p / Wo), ox = (int)(p % Wo);
    int iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
    if (iy < 0 || iy >= H || ix < 0 || ix >= W) return -1;
    return (c * H + iy) * W + ix;
}

/* Output pixels per im2col chunk so that the K x np column matrix fits in
 * max_elems (at least 1 pixel, a multiple of 64 when more than that fit). */
CU_HD static inline int64_t cu_conv_chunk_pixels(int64_t K, int64_t P, int64_t max_elems) {
    int64_t np = max_elems / (K > 0 ? K : 1);
    if (np >= P) return P;
    if (np > 64) np -= np % 64;
    return np > 0 ? np : 1;
}

/* ---- small index maps ---- */

/* torch nearest: src = min(floor(dst * (float)in / out), in - 1) */
CU_HD static inline int cu_nearest_src(int dst, int in, int out) {
    float sc = (float)in / (float)out;
    int s = (int)floorf((float)dst * sc);
    return s > in - 1 ? in - 1 : s;
}

/* diffusers get_timestep_embedding angle of frequency i (of half), f32.
 * The device's expf is off by up to 2 ulp, which t = 999 turns into 2e-4 rad;
 * exp in double rounded once matches the host's (correctly rounded) expf. */
CU_HD static inline float cu_timestep_angle(float t, int i, int half, float shift) {
    float e = (-9.210340371976184f * (float)i) / ((float)half - shift); /* -ln(10000) */
#ifdef __CUDA_ARCH__
    return t * (float)exp((double)e);
#else
    return t * expf(e);
#endif
}

#endif
