/* cublas_emu.cc - cuBLAS and cuBLASLt GEMMs on the CUDA emulator. Checked
 * the way the libraries check (leading dimensions, type combinations,
 * transposes) plus what a GPU would only show as garbage or a crash: every
 * operand must lie inside one device allocation, and cuBLASLt operands must
 * be aligned as the heuristic was promised. Column-major; products of
 * operands rounded to the operand type (TF32 when asked), summed in f32. */
#include <stdio.h>
#include <stdlib.h>

#include <vector>

#include "cublas_emu.h"
#include "cuda_emu_internal.h"

struct cu_emu_blas {
    cudaStream_t stream;
};
struct cu_emu_lt_desc {
    cublasComputeType_t comp;
    cublasOperation_t ta, tb;
    cublasLtEpilogue_t epi;
    const void *bias;
    int bias_type; /* -1: the D type */
};
struct cu_emu_lt_layout {
    cudaDataType_t type;
    uint64_t rows, cols;
    int64_t ld;
};
struct cu_emu_lt_pref {
    size_t ws;
    uint32_t align[4]; /* A, B, C, D */
};

const char *cublasGetStatusString(cublasStatus_t s) {
    switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    }
    return "CUBLAS_STATUS_UNKNOWN";
}

static size_t type_size(cudaDataType_t t) { return t == CUDA_R_32F ? 4 : 2; }
static bool type_known(int t) { return t == CUDA_R_32F || t == CUDA_R_16F || t == CUDA_R_16BF; }

static cu_emu::elem_t elem(cudaDataType_t t) {
    return t == CUDA_R_32F ? cu_emu::ELEM_F32 : t == CUDA_R_16F ? cu_emu::ELEM_F16 : cu_emu::ELEM_BF16;
}
static float load(const void *p, cudaDataType_t t, size_t i) { return cu_emu::elem_load(p, elem(t), i); }
static void store(void *p, cudaDataType_t t, size_t i, float v) { cu_emu::elem_store(p, elem(t), i, v); }

struct gemm_args {
    cublasOperation_t ta, tb;
    int m, n, k;
    float alpha, beta;
    const void *A, *B, *C;
    void *D;
    cudaDataType_t at, bt, ct, dt;
    int64_t lda, ldb, ldc, ldd;
    int64_t sa, sb, sc, sd;
    int batch;
    bool tf32;
    const void *bias;
    cudaDataType_t biast;
};

/* the extent in elements of a column-major rows x cols matrix with leading dimension ld */
static size_t extent(int64_t rows, int64_t cols, int64_t ld) {
    return rows && cols ? (size_t)((cols - 1) * ld + rows) : 0;
}

static bool operand_ok(const char *fn, const char *name, const void *p, cudaDataType_t t, int64_t rows, int64_t cols,
                       int64_t ld, int64_t stride, int batch) {
    size_t el = extent(rows, cols, ld);
    if (!el) return true;
    size_t bytes = (el + (size_t)(stride * (batch - 1))) * type_size(t);
    if (!cu_emu::is_device(p, bytes)) {
        cu_emu::warn("%s: %s (%lld x %lld, ld %lld, %d batch(es) %lld apart) at %p is not inside one device allocation",
                     fn, name, (long long)rows, (long long)cols, (long long)ld, batch, (long long)stride, p);
        return false;
    }
    return true;
}

/* validate, then enqueue D = alpha op(A) op(B) + beta C (+ bias per row) */
static cublasStatus_t gemm(const char *fn, cudaStream_t s, gemm_args g) {
    int64_t ar = g.ta == CUBLAS_OP_N ? g.m : g.k, ac = g.ta == CUBLAS_OP_N ? g.k : g.m;
    int64_t br = g.tb == CUBLAS_OP_N ? g.k : g.n, bc = g.tb == CUBLAS_OP_N ? g.n : g.k;
    if (g.m < 0 || g.n < 0 || g.k < 0 || g.batch < 0 || g.lda < (ar > 1 ? ar : 1) || g.ldb < (br > 1 ? br : 1) ||
        g.ldc < (g.m > 1 ? g.m : 1) || g.ldd < (g.m > 1 ? g.m : 1)) {
        cu_emu::warn("%s: invalid value (m=%d n=%d k=%d lda=%lld ldb=%lld ldc=%lld)", fn, g.m, g.n, g.k,
                     (long long)g.lda, (long long)g.ldb, (long long)g.ldc);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    if (g.m == 0 || g.n == 0 || g.batch == 0) return CUBLAS_STATUS_SUCCESS;
    if (!operand_ok(fn, "A", g.A, g.at, ar, ac, g.lda, g.sa, g.batch) ||
        !operand_ok(fn, "B", g.B, g.bt, br, bc, g.ldb, g.sb, g.batch) ||
        (g.beta != 0.0f && !operand_ok(fn, "C", g.C, g.ct, g.m, g.n, g.ldc, g.sc, g.batch)) ||
        !operand_ok(fn, "D", g.D, g.dt, g.m, g.n, g.ldd, g.sd, g.batch) ||
        (g.bias && !operand_ok(fn, "bias", g.bias, g.biast, g.m, 1, g.m, 0, 1)))
        return CUBLAS_STATUS_INVALID_VALUE;
    cudaError_t e = cu_emu::enqueue(s, fn, [g] {
        std::vector<float> a((size_t)g.m * g.k), b((size_t)g.n * g.k);
        for (int bi = 0; bi < g.batch; bi++) {
            const char *A = (const char *)g.A + (size_t)(g.sa * bi) * type_size(g.at);
            const char *B = (const char *)g.B + (size_t)(g.sb * bi) * type_size(g.bt);
            const char *C = (const char *)g.C + (size_t)(g.sc * bi) * type_size(g.ct);
            char *D = (char *)g.D + (size_t)(g.sd * bi) * type_size(g.dt);
            /* a[i][l] = op(A)(i, l), b[j][l] = op(B)(l, j) */
            for (int i = 0; i < g.m; i++)
                for (int l = 0; l < g.k; l++) {
                    float v = load(A, g.at, g.ta == CUBLAS_OP_N ? (size_t)(i + l * g.lda) : (size_t)(l + i * g.lda));
                    a[(size_t)i * g.k + l] = g.tf32 ? cu_emu::tf32_round(v) : v;
                }
            for (int j = 0; j < g.n; j++)
                for (int l = 0; l < g.k; l++) {
                    float v = load(B, g.bt, g.tb == CUBLAS_OP_N ? (size_t)(l + j * g.ldb) : (size_t)(j + l * g.ldb));
                    b[(size_t)j * g.k + l] = g.tf32 ? cu_emu::tf32_round(v) : v;
                }
            for (int j = 0; j < g.n; j++)
                for (int i = 0; i < g.m; i++) {
                    const float *ai = &a[(size_t)i * g.k], *bj = &b[(size_t)j * g.k];
                    float acc = 0.0f;
                    for (int l = 0; l < g.k; l++) acc += ai[l] * bj[l];
                    float v = g.alpha * acc;
                    if (g.beta != 0.0f) v += g.beta * load(C, g.ct, (size_t)(i + j * g.ldc));
                    if (g.bias) v += load(g.bias, g.biast, (size_t)i);
                    store(D, g.dt, (size_t)(i + j * g.ldd), v);
                }
        }
        return cudaSuccess;
    });
    return e == cudaSuccess ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_EXECUTION_FAILED;
}

/* the cublasGemmEx type table for f32 compute: A = B in {16F, 16BF, 32F}; C the same or 32F; TF32 on 32F only */
static bool gemm_types_ok(cudaDataType_t at, cudaDataType_t bt, cudaDataType_t ct, cublasComputeType_t comp) {
    if (!type_known(at) || at != bt || !type_known(ct)) return false;
    if (comp == CUBLAS_COMPUTE_32F_FAST_TF32) return at == CUDA_R_32F && ct == CUDA_R_32F;
    if (comp != CUBLAS_COMPUTE_32F) return false;
    return ct == at || ct == CUDA_R_32F;
}

cublasStatus_t cublasCreate(cublasHandle_t *h) {
    *h = new cu_emu_blas();
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy(cublasHandle_t h) {
    delete h;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s) {
    h->stream = s;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetWorkspace(cublasHandle_t h, void *ws, size_t bytes) {
    if (bytes && !cu_emu::is_device(ws, bytes)) return CUBLAS_STATUS_INVALID_VALUE;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                          int k, const void *alpha, const void *A, cudaDataType_t at, int lda,
                                          long long sa, const void *B, cudaDataType_t bt, int ldb, long long sb,
                                          const void *beta, void *C, cudaDataType_t ct, int ldc, long long sc,
                                          int batch, cublasComputeType_t comp, cublasGemmAlgo_t algo) {
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!gemm_types_ok(at, bt, ct, comp)) {
        cu_emu::warn("cublasGemmEx: types A %d B %d C %d with compute %d are not supported", at, bt, ct, comp);
        return CUBLAS_STATUS_NOT_SUPPORTED;
    }
    /* alpha and beta are floats for f32 compute (host pointer mode) */
    gemm_args g = {ta, tb, m, n, k, *(const float *)alpha, *(const float *)beta, A, B, C, C, at, bt, ct, ct,
                   lda, ldb, ldc, ldc, sa, sb, sc, sc, batch, comp == CUBLAS_COMPUTE_32F_FAST_TF32, NULL, CUDA_R_32F};
    return gemm("cublasGemmEx", h->stream, g);
}

cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                            const void *alpha, const void *A, cudaDataType_t at, int lda, const void *B,
                            cudaDataType_t bt, int ldb, const void *beta, void *C, cudaDataType_t ct, int ldc,
                            cublasComputeType_t comp, cublasGemmAlgo_t algo) {
    return cublasGemmStridedBatchedEx(h, ta, tb, m, n, k, alpha, A, at, lda, 0, B, bt, ldb, 0, beta, C, ct, ldc, 0, 1,
                                      comp, algo);
}

/* ---- cuBLASLt ---- */

cublasStatus_t cublasLtCreate(cublasLtHandle_t *h) { return cublasCreate(h); }
cublasStatus_t cublasLtDestroy(cublasLtHandle_t h) { return cublasDestroy(h); }

cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *d, cublasComputeType_t comp, cudaDataType_t scale) {
    if (scale != CUDA_R_32F || (comp != CUBLAS_COMPUTE_32F && comp != CUBLAS_COMPUTE_32F_FAST_TF32))
        return CUBLAS_STATUS_NOT_SUPPORTED;
    *d = new cu_emu_lt_desc{comp, CUBLAS_OP_N, CUBLAS_OP_N, CUBLASLT_EPILOGUE_DEFAULT, NULL, -1};
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t d) {
    delete d;
    return CUBLAS_STATUS_SUCCESS;
}

template <class T>
static bool attr(const void *v, size_t n, T *out) {
    if (n != sizeof(T)) return false;
    memcpy(out, v, n);
    return true;
}

cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t a, const void *v,
                                              size_t n) {
    int32_t i32 = 0;
    bool ok = false;
    switch (a) {
    case CUBLASLT_MATMUL_DESC_TRANSA:
        ok = attr(v, n, &i32) && (i32 == CUBLAS_OP_N || i32 == CUBLAS_OP_T);
        if (ok) d->ta = (cublasOperation_t)i32;
        break;
    case CUBLASLT_MATMUL_DESC_TRANSB:
        ok = attr(v, n, &i32) && (i32 == CUBLAS_OP_N || i32 == CUBLAS_OP_T);
        if (ok) d->tb = (cublasOperation_t)i32;
        break;
    case CUBLASLT_MATMUL_DESC_EPILOGUE: {
        uint32_t e = 0;
        ok = attr(v, n, &e) && (e == CUBLASLT_EPILOGUE_DEFAULT || e == CUBLASLT_EPILOGUE_BIAS);
        if (ok) d->epi = (cublasLtEpilogue_t)e;
        break;
    }
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER: ok = attr(v, n, &d->bias); break;
    case CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE:
        ok = attr(v, n, &i32) && type_known(i32);
        if (ok) d->bias_type = i32;
        break;
    }
    if (!ok) cu_emu::warn("cublasLtMatmulDescSetAttribute(%d): bad value or size %zu", (int)a, n);
    return ok ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE;
}

cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *l, cudaDataType_t t, uint64_t rows, uint64_t cols,
                                          int64_t ld) {
    if (!type_known(t) || ld < (int64_t)(rows > 1 ? rows : 1)) return CUBLAS_STATUS_INVALID_VALUE;
    *l = new cu_emu_lt_layout{t, rows, cols, ld};
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t l) {
    delete l;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *p) {
    *p = new cu_emu_lt_pref{0, {256, 256, 256, 256}};
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t p) {
    delete p;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t p,
                                                    cublasLtMatmulPreferenceAttributes_t a, const void *v, size_t n) {
    switch (a) {
    case CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES: return attr(v, n, &p->ws) ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE;
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES:
        return attr(v, n, &p->align[a - CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES]) ? CUBLAS_STATUS_SUCCESS
                                                                                     : CUBLAS_STATUS_INVALID_VALUE;
    }
    return CUBLAS_STATUS_INVALID_VALUE;
}

/* op(A) is m x k, op(B) k x n, C and D m x n */
static bool lt_shapes(cublasLtMatmulDesc_t d, cublasLtMatrixLayout_t a, cublasLtMatrixLayout_t b,
                      cublasLtMatrixLayout_t c, cublasLtMatrixLayout_t dl, int64_t *m, int64_t *n, int64_t *k) {
    int64_t am = d->ta == CUBLAS_OP_N ? (int64_t)a->rows : (int64_t)a->cols;
    int64_t ak = d->ta == CUBLAS_OP_N ? (int64_t)a->cols : (int64_t)a->rows;
    int64_t bk = d->tb == CUBLAS_OP_N ? (int64_t)b->rows : (int64_t)b->cols;
    int64_t bn = d->tb == CUBLAS_OP_N ? (int64_t)b->cols : (int64_t)b->rows;
    *m = am, *n = bn, *k = ak;
    return ak == bk && (int64_t)dl->rows == am && (int64_t)dl->cols == bn && c->rows == dl->rows &&
           c->cols == dl->cols && a->type == b->type && c->type == dl->type &&
           gemm_types_ok(a->type, b->type, dl->type, d->comp);
}

cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t h, cublasLtMatmulDesc_t d, cublasLtMatrixLayout_t a,
                                              cublasLtMatrixLayout_t b, cublasLtMatrixLayout_t c,
                                              cublasLtMatrixLayout_t dl, cublasLtMatmulPreference_t p, int want,
                                              cublasLtMatmulHeuristicResult_t *res, int *found) {
    *found = 0;
    int64_t m, n, k;
    if (!h || want < 1) return CUBLAS_STATUS_INVALID_VALUE;
    if (!lt_shapes(d, a, b, c, dl, &m, &n, &k)) {
        cu_emu::warn("cublasLtMatmulAlgoGetHeuristic: operand shapes or types do not fit together");
        return CUBLAS_STATUS_NOT_SUPPORTED;
    }
    int bt = d->bias_type < 0 ? (int)dl->type : d->bias_type;
    if (d->epi == CUBLASLT_EPILOGUE_BIAS && bt != (int)dl->type && bt != CUDA_R_32F) return CUBLAS_STATUS_NOT_SUPPORTED;
    memset(res, 0, sizeof *res);
    /* the algorithm remembers the alignments it was chosen for: cublasLtMatmul checks the operands keep to them */
    for (int i = 0; i < 4; i++) res->algo.data[i] = p->align[i];
    res->algo.data[4] = 0x454d55; /* "EMU": an algorithm this emulator handed out */
    res->state = CUBLAS_STATUS_SUCCESS;
    res->wavesCount = 1.0f;
    *found = 1;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmul(cublasLtHandle_t h, cublasLtMatmulDesc_t d, const void *alpha, const void *A,
                              cublasLtMatrixLayout_t la, const void *B, cublasLtMatrixLayout_t lb, const void *beta,
                              const void *C, cublasLtMatrixLayout_t lc, void *D, cublasLtMatrixLayout_t ld,
                              const cublasLtMatmulAlgo_t *algo, void *ws, size_t wsbytes, cudaStream_t s) {
    int64_t m, n, k;
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!lt_shapes(d, la, lb, lc, ld, &m, &n, &k)) return CUBLAS_STATUS_NOT_SUPPORTED;
    if (algo && algo->data[4] != 0x454d55) return CUBLAS_STATUS_INVALID_VALUE;
    const void *ptrs[4] = {A, B, C, D};
    const char *names = "ABCD";
    for (int i = 0; algo && i < 4; i++)
        if (algo->data[i] && (uintptr_t)ptrs[i] % algo->data[i]) {
            cu_emu::warn("cublasLtMatmul: %c at %p is not %llu-byte aligned as the heuristic was told", names[i],
                         ptrs[i], (unsigned long long)algo->data[i]);
            return CUBLAS_STATUS_INVALID_VALUE;
        }
    if (wsbytes && !cu_emu::is_device(ws, wsbytes)) return CUBLAS_STATUS_INVALID_VALUE;
    bool bias = d->epi == CUBLASLT_EPILOGUE_BIAS;
    if (bias && !d->bias) return CUBLAS_STATUS_INVALID_VALUE;
    gemm_args g = {d->ta, d->tb, (int)m, (int)n, (int)k, *(const float *)alpha, *(const float *)beta, A, B, C, D,
                   la->type, lb->type, lc->type, ld->type, la->ld, lb->ld, lc->ld, ld->ld, 0, 0, 0, 0, 1,
                   d->comp == CUBLAS_COMPUTE_32F_FAST_TF32, bias ? d->bias : NULL,
                   (cudaDataType_t)(d->bias_type < 0 ? (int)ld->type : d->bias_type)};
    return gemm("cublasLtMatmul", s, g);
}
