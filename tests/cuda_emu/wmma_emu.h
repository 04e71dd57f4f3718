/* wmma_emu.h - nvcuda::wmma on the CPU emulator (cuda_emu.h). A fragment is
 * warp-wide on a GPU and its element-to-lane map is unspecified; here every
 * lane holds the whole tile, which gives the same results for code that
 * only loads, multiplies, fills and stores fragments (and for element-wise
 * loops over x[0..num_elements)). Loads and stores are warp-collective: a
 * warp barrier first, so no lane stores a tile before every lane has loaded
 * what it needs (a warp on a GPU executes them together). The documented alignment rules of
 * load/store are checked: a 256-bit aligned pointer and a leading
 * dimension of a multiple of 16 bytes. */
#ifndef SDC_CUDA_EMU_WMMA_H
#define SDC_CUDA_EMU_WMMA_H

#include "cuda_emu.h"

namespace nvcuda {
namespace wmma {
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

template <class Use, int M, int N, int K> struct frag_shape;
template <int M, int N, int K> struct frag_shape<matrix_a, M, N, K> { enum { rows = M, cols = K }; };
template <int M, int N, int K> struct frag_shape<matrix_b, M, N, K> { enum { rows = K, cols = N }; };
template <int M, int N, int K> struct frag_shape<accumulator, M, N, K> { enum { rows = M, cols = N }; };

template <class Use, int M, int N, int K, class T, class Layout = void>
struct fragment {
    typedef T element_type;
    enum { rows = frag_shape<Use, M, N, K>::rows, cols = frag_shape<Use, M, N, K>::cols };
    static constexpr int num_elements = rows * cols;
    T x[rows * cols]; /* row-major tile */
};

template <class T>
static inline void collective_begin(const void *p, unsigned ldm, const char *what) {
    cu_emu::sync_warp();
    if ((uintptr_t)p % 32) cu_emu::fault("wmma::%s: pointer %p is not 256-bit aligned", what, p);
    if ((ldm * sizeof(T)) % 16) cu_emu::fault("wmma::%s: ldm %u is not a multiple of 16 bytes", what, ldm);
}

template <class Use, int M, int N, int K, class T, class L, class V>
static inline void fill_fragment(fragment<Use, M, N, K, T, L> &f, const V &v) {
    for (int i = 0; i < f.num_elements; i++) f.x[i] = v;
}

/* row-major in memory: element (r, c) at p[r * ldm + c]; column-major: p[c * ldm + r] */
template <class Use, int M, int N, int K, class T, class S>
static inline void load_matrix_sync(fragment<Use, M, N, K, T, row_major> &f, const S *p, unsigned ldm) {
    collective_begin<S>(p, ldm, "load_matrix_sync");
    for (int r = 0; r < f.rows; r++)
        for (int c = 0; c < f.cols; c++) f.x[r * f.cols + c] = p[(size_t)r * ldm + c];
}
template <class Use, int M, int N, int K, class T, class S>
static inline void load_matrix_sync(fragment<Use, M, N, K, T, col_major> &f, const S *p, unsigned ldm) {
    collective_begin<S>(p, ldm, "load_matrix_sync");
    for (int r = 0; r < f.rows; r++)
        for (int c = 0; c < f.cols; c++) f.x[r * f.cols + c] = p[(size_t)c * ldm + r];
}
template <int M, int N, int K, class T>
static inline void load_matrix_sync(fragment<accumulator, M, N, K, T, void> &f, const T *p, unsigned ldm, layout_t l) {
    collective_begin<T>(p, ldm, "load_matrix_sync");
    for (int r = 0; r < M; r++)
        for (int c = 0; c < N; c++) f.x[r * N + c] = l == mem_row_major ? p[(size_t)r * ldm + c] : p[(size_t)c * ldm + r];
}
template <int M, int N, int K, class T>
static inline void store_matrix_sync(T *p, const fragment<accumulator, M, N, K, T, void> &f, unsigned ldm, layout_t l) {
    collective_begin<T>(p, ldm, "store_matrix_sync");
    for (int r = 0; r < M; r++)
        for (int c = 0; c < N; c++) (l == mem_row_major ? p[(size_t)r * ldm + c] : p[(size_t)c * ldm + r]) = f.x[r * N + c];
}

/* d = a b + c, products and sums in f32. Every lane of a warp multiplies
 * the same tiles: the first computes, the others find its result in the
 * warp's memo (keyed by the operands' bytes, so it cannot be stale). */
template <int M, int N, int K, class T, class LA, class LB, class TC>
static inline void mma_sync(fragment<accumulator, M, N, K, TC, void> &d, const fragment<matrix_a, M, N, K, T, LA> &a,
                            const fragment<matrix_b, M, N, K, T, LB> &b, const fragment<accumulator, M, N, K, TC, void> &c) {
    cu_emu::mma_memo *memo = cu_emu::mma_memo_of_warp();
    const size_t na = sizeof a.x, nb = sizeof b.x, nc = sizeof c.x;
    static_assert(sizeof a.x + sizeof b.x + sizeof c.x <= sizeof memo->key && sizeof d.x <= sizeof memo->out,
                  "memo too small for this fragment shape");
    if (memo && memo->nkey == na + nb + nc && !memcmp(memo->key, a.x, na) && !memcmp(memo->key + na, b.x, nb) &&
        !memcmp(memo->key + na + nb, c.x, nc)) {
        memcpy(d.x, memo->out, sizeof d.x);
        return;
    }
    if (memo) {
        memcpy(memo->key, a.x, na);
        memcpy(memo->key + na, b.x, nb);
        memcpy(memo->key + na + nb, c.x, nc);
        memo->nkey = 0; /* valid once out is written */
    }
    float fa[M * K], fbt[N * K], out[M * N];
    for (int i = 0; i < M * K; i++) fa[i] = (float)a.x[i];
    for (int k = 0; k < K; k++)
        for (int j = 0; j < N; j++) fbt[j * K + k] = (float)b.x[k * N + j];
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float s = (float)c.x[i * N + j];
            for (int k = 0; k < K; k++) s += fa[i * K + k] * fbt[j * K + k];
            out[i * N + j] = s;
        }
    for (int i = 0; i < M * N; i++) d.x[i] = (TC)out[i];
    if (memo) {
        memcpy(memo->out, d.x, sizeof d.x);
        memo->nkey = na + nb + nc;
    }
}
} // namespace wmma
} // namespace nvcuda

#endif
