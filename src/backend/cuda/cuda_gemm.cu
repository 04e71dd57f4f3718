/* cuda_gemm.cu - the GEMM-backed ops: cu_linear (cuBLASLt, bias fused in the
 * epilogue, plain cuBLAS as fallback), cu_conv2d (one batched GEMM for 1x1
 * convolutions; others through cuDNN where it loads, cuda_conv_cudnn.cu,
 * else bounded-chunk im2col + GEMM) and the reference
 * GEMM the benchmark measures the ceiling with. Row-major tensors are
 * handed to column-major cuBLAS as their transposes: y[M,N] = x W^T is
 * y^T[N,M] = W[N,K] (op T of the K x N column-major view) . x^T. */
#include <stdint.h>
#include <string.h>

#include "backend/cuda/cu_shared.h"
#include "backend/cuda/cuda_common.cuh"

static cudaDataType_t cuda_type(cu_dtype t) {
    return t == CU_F16 ? CUDA_R_16F : t == CU_BF16 ? CUDA_R_16BF : CUDA_R_32F;
}

/* largest power of two dividing the address, up to 256 (cuBLASLt assumes 256 unless told) */
static unsigned align_of(const void *p) {
    uintptr_t a = (uintptr_t)p;
    unsigned al = 256;
    while (al > 1 && (a % al)) al >>= 1;
    return al;
}

/* y[i] += b[(i / inner) % nb]: bias per GEMM column (inner = 1) or per conv channel plane */
static sdc_status add_bias(void *y, cu_dtype at, const void *b, cu_dtype wt, int64_t n, int64_t inner, int64_t nb,
                           const char *op) {
    int64_t rows = n / nb, planes = n / inner;
    CU_DISPATCH(at, T, CU_DISPATCH(wt, WT, {
        if (inner == 1)
            cu_bias_rows_kernel<T, WT><<<cu__row_blocks(rows), cu__row_threads(nb), 0, cu__stream_get()>>>(
                (T *)y, (const WT *)b, rows, nb);
        else
            cu_bias_planes_kernel<T, WT><<<cu__row_blocks(planes), cu__row_threads(inner), 0, cu__stream_get()>>>(
                (T *)y, (const WT *)b, planes, inner, nb);
    }));
    CU_LAUNCH_CK(op);
    return SDC_OK;
}

/* A GEMM writes its operands' own dtype or f32: cuBLAS has no other combination. */
static sdc_status out_type_ok(cu_dtype at, cu_dtype yt, const char *op) {
    if (yt == at || yt == CU_F32) return SDC_OK;
    return sdc_fail(SDC_ERR_ARG, "%s: %s operands give %s or f32, not %s", op, cu_dtype_name(at), cu_dtype_name(at),
                    cu_dtype_name(yt));
}

/* The weight in the activation dtype: itself, or converted into scratch slot 1. */
static sdc_status weight_as(const void *w, cu_dtype wt, cu_dtype at, int64_t n, const void **out, const char *op) {
    if (wt == at) {
        *out = w;
        return SDC_OK;
    }
    void *s = NULL;
    SDC_TRY(cu__scratch(1, (size_t)n * cu_dtype_size(at), &s, op));
    SDC_TRY(cu_convert(s, at, w, wt, n));
    *out = s;
    return SDC_OK;
}

/* ---- cuBLASLt plans, cached by shape, dtype, bias and operand alignment ---- */

typedef struct {
    int64_t M, N, K;
    int at, yt, bias;
    unsigned al[4];
    int valid, ok;
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t la, lb, lc;
    cublasLtMatmulAlgo_t algo;
} lt_plan;

#define PLANS 256
static lt_plan g_plans[PLANS];
static int g_nplans, g_next_evict;

static void plan_destroy(lt_plan *p) {
    if (!p->valid) return;
    if (p->desc) cublasLtMatmulDescDestroy(p->desc);
    if (p->la) cublasLtMatrixLayoutDestroy(p->la);
    if (p->lb) cublasLtMatrixLayoutDestroy(p->lb);
    if (p->lc) cublasLtMatrixLayoutDestroy(p->lc);
    memset(p, 0, sizeof *p);
}

/* Build (or find) the plan; p->ok = 0 when cuBLASLt offers no algorithm. */
static sdc_status plan_get(int64_t M, int64_t N, int64_t K, cu_dtype at, cu_dtype yt, const void *bias,
                           const unsigned al[4], lt_plan **out) {
    for (int i = 0; i < g_nplans; i++) {
        lt_plan *p = &g_plans[i];
        if (p->valid && p->M == M && p->N == N && p->K == K && p->at == (int)at && p->yt == (int)yt && p->bias == !!bias &&
            !memcmp(p->al, al, sizeof p->al)) {
            *out = p;
            return SDC_OK;
        }
    }
    lt_plan *p;
    if (g_nplans < PLANS) p = &g_plans[g_nplans++];
    else {
        p = &g_plans[g_next_evict];
        g_next_evict = (g_next_evict + 1) % PLANS;
        plan_destroy(p);
    }
    memset(p, 0, sizeof *p);
    p->M = M, p->N = N, p->K = K, p->at = (int)at, p->yt = (int)yt, p->bias = !!bias;
    memcpy(p->al, al, sizeof p->al);
    p->valid = 1;
    const char *op = "cu_linear";
    cudaDataType_t ty = cuda_type(at), yty = cuda_type(yt);
    CUBLAS_CK(op, cublasLtMatmulDescCreate(&p->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    CUBLAS_CK(op, cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
    CUBLAS_CK(op, cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
    if (bias) {
        cublasLtEpilogue_t ep = CUBLASLT_EPILOGUE_BIAS;
        CUBLAS_CK(op, cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &ep, sizeof ep));
        CUBLAS_CK(op, cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &yty, sizeof yty));
        /* the heuristic reads the bias pointer's alignment from it (cublasLt.h);
         * the plan is kept per bias alignment, al[3] */
        CUBLAS_CK(op, cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
    }
    CUBLAS_CK(op, cublasLtMatrixLayoutCreate(&p->la, ty, (uint64_t)K, (uint64_t)N, K)); /* W: K x N, op T */
    CUBLAS_CK(op, cublasLtMatrixLayoutCreate(&p->lb, ty, (uint64_t)K, (uint64_t)M, K)); /* x^T: K x M */
    CUBLAS_CK(op, cublasLtMatrixLayoutCreate(&p->lc, yty, (uint64_t)N, (uint64_t)M, N)); /* y^T: N x M, in yt */
    cublasLtMatmulPreference_t pref;
    CUBLAS_CK(op, cublasLtMatmulPreferenceCreate(&pref));
    size_t ws = 0;
    cu__lt_workspace(&ws);
    uint32_t a0 = al[0], a1 = al[1], a2 = al[2];
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws);
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &a0, sizeof a0);
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &a1, sizeof a1);
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &a2, sizeof a2);
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &a2, sizeof a2);
    cublasLtMatmulHeuristicResult_t res;
    int found = 0;
    cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(cu__lt(), p->desc, p->la, p->lb, p->lc, p->lc, pref, 1, &res, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    if (st == CUBLAS_STATUS_SUCCESS && found > 0) {
        p->algo = res.algo;
        p->ok = 1;
    }
    *out = p;
    return SDC_OK;
}

/* y[M,N] (yt) = x[M,K] W[N,K]^T (at) through cublasGemmEx (no bias) */
static sdc_status gemm_ex(const void *x, const void *W, void *y, cu_dtype at, cu_dtype yt, int64_t M, int64_t N,
                          int64_t K, const char *op) {
    float one = 1.0f, zero = 0.0f;
    cudaDataType_t ty = cuda_type(at);
    CUBLAS_CK(op, cublasGemmEx(cu__cublas(), CUBLAS_OP_T, CUBLAS_OP_N, (int)N, (int)M, (int)K, &one, W, ty, (int)K, x,
                               ty, (int)K, &zero, y, cuda_type(yt), (int)N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    return SDC_OK;
}

sdc_status cu_linear(const void *x, cu_dtype at, int64_t M, int64_t K, const void *W, const void *b, cu_dtype wt,
                     int64_t N, void *y) {
    return cu_linear_ex(x, at, M, K, W, wt, b, wt, N, y, at);
}

sdc_status cu_linear_ex(const void *x, cu_dtype at, int64_t M, int64_t K, const void *W, cu_dtype wt, const void *b,
                        cu_dtype bt, int64_t N, void *y, cu_dtype yt) {
    const char *op = "cu_linear";
    CU_READY(op);
    if (!cu__dtype_ok(at) || !cu__dtype_ok(wt) || !cu__dtype_ok(bt) || !cu__dtype_ok(yt) || M < 0 || K <= 0 ||
        N <= 0 || M > INT32_MAX || N > INT32_MAX ||
        K > INT32_MAX || (M && (!x || !W || !y)))
        return sdc_fail(SDC_ERR_ARG, "%s: bad argument (M=%lld K=%lld N=%lld)", op, (long long)M, (long long)K,
                        (long long)N);
    SDC_TRY(out_type_ok(at, yt, op));
    if (M == 0) return SDC_OK;
    const void *Wa = NULL;
    SDC_TRY(weight_as(W, wt, at, N * K, &Wa, op));
    int fuse = b && bt == yt; /* the epilogue reads the bias in the output's dtype */
    unsigned al[4] = {align_of(Wa), align_of(x), align_of(y), fuse ? align_of(b) : 256};
    lt_plan *p = NULL;
    SDC_TRY(plan_get(M, N, K, at, yt, fuse ? b : NULL, al, &p));
    int done = 0;
    if (p->ok) {
        if (fuse) CUBLAS_CK(op, cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &b, sizeof b));
        float one = 1.0f, zero = 0.0f;
        size_t ws = 0;
        void *wsp = cu__lt_workspace(&ws);
        cublasStatus_t st = cublasLtMatmul(cu__lt(), p->desc, &one, Wa, p->la, x, p->lb, &zero, y, p->lc, y, p->lc,
                                           &p->algo, wsp, ws, cu__stream_get());
        if (st == CUBLAS_STATUS_SUCCESS) done = 1;
        else if (st == CUBLAS_STATUS_NOT_SUPPORTED) p->ok = 0; /* this shape takes cublasGemmEx from now on */
        else return cu__fail_cublas(st, op, "cublasLtMatmul");
    }
    if (!done) {
        SDC_TRY(gemm_ex(x, Wa, y, at, yt, M, N, K, op));
        fuse = 0;
    }
    if (b && !fuse) SDC_TRY(add_bias(y, yt, b, bt, M * N, 1, N, op));
    return SDC_OK;
}

/* ---- convolution ---- */

#define IM2COL_MAX_ELEMS ((int64_t)32 << 20) /* 64 MiB of f16 columns */

/* float32 convolutions on TF32 tensor cores (10-bit mantissa operands,
 * float32 range and accumulation) unless turned off: PyTorch's default for
 * cuDNN convolutions (torch.backends.cudnn.allow_tf32), so what diffusers'
 * float32 VAE decode on a GPU computes; float32 matrix products stay exact
 * float32 (PyTorch's matmul default). */
static cublasComputeType_t conv_compute(cu_dtype at) {
    return at == CU_F32 && cu_conv_tf32() ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
}

template <typename T>
__global__ void im2col_kernel(const T *x, T *col, int64_t K, int64_t np, int64_t p0, int H, int W, int Wo, int k,
                              int stride, int pad) {
    int64_t n = K * np;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = i / np, pp = i % np;
        int64_t s = cu_im2col_src(r, p0 + pp, H, W, Wo, k, stride, pad);
        col[i] = s < 0 ? T(0.0f) : x[s];
    }
}

sdc_status cu_conv2d(const void *x, cu_dtype at, int B, int C, int H, int W, const void *w, const void *b,
                     cu_dtype wt, int O, int k, int stride, int pad, void *y) {
    return cu_conv2d_ex(x, at, B, C, H, W, w, wt, b, wt, O, k, stride, pad, y, at);
}

sdc_status cu_conv2d_ex(const void *x, cu_dtype at, int B, int C, int H, int W, const void *w, cu_dtype wt,
                        const void *b, cu_dtype bt, int O, int k, int stride, int pad, void *y, cu_dtype yt) {
    const char *op = "cu_conv2d";
    CU_READY(op);
    int gemm1x1 = k == 1 && stride == 1 && pad == 0;
    if (yt != at && !gemm1x1)
        return sdc_fail(SDC_ERR_ARG, "%s: an output type of its own only for 1x1 convolutions", op);
    SDC_TRY(out_type_ok(at, yt, op));
    if (!cu__dtype_ok(at) || !cu__dtype_ok(wt) || !cu__dtype_ok(bt) || !cu__dtype_ok(yt) || B <= 0 || C <= 0 || H <= 0 || W <= 0 || O <= 0 || k <= 0 ||
        stride <= 0 || pad < 0 || !x || !w || !y || H + 2 * pad < k || W + 2 * pad < k)
        return sdc_fail(SDC_ERR_ARG, "%s: bad argument (B=%d C=%d H=%d W=%d O=%d k=%d stride=%d pad=%d)", op, B, C, H,
                        W, O, k, stride, pad);
    int Ho = (H + 2 * pad - k) / stride + 1, Wo = (W + 2 * pad - k) / stride + 1;
    int64_t P = (int64_t)Ho * Wo, K = (int64_t)C * k * k, HW = (int64_t)H * W;
    if (P > INT32_MAX || K > INT32_MAX) return sdc_fail(SDC_ERR_ARG, "%s: too large (P=%lld K=%lld)", op, (long long)P, (long long)K);
    size_t es = cu_dtype_size(at);
    const void *Wa = NULL;
    SDC_TRY(weight_as(w, wt, at, (int64_t)O * K, &Wa, op));
    cudaDataType_t ty = cuda_type(at);
    float one = 1.0f, zero = 0.0f;
    cublasHandle_t h = cu__cublas();
    if (gemm1x1) {
        /* y_b^T[P,O] = x_b^T[P,C] . W^T[C,O] for every image at once */
        CUBLAS_CK(op, cublasGemmStridedBatchedEx(h, CUBLAS_OP_N, CUBLAS_OP_N, (int)P, O, C, &one, x, ty, (int)P,
                                                 (long long)C * HW, Wa, ty, C, 0, &zero, y, cuda_type(yt), (int)P,
                                                 (long long)O * P, B, conv_compute(at), CUBLAS_GEMM_DEFAULT));
    } else {
        int done = 0;
        SDC_TRY(cu__conv_cudnn(x, at, B, C, H, W, Wa, O, k, stride, pad, y, &done));
        if (done) goto bias;
        int64_t np = cu_conv_chunk_pixels(K, P, IM2COL_MAX_ELEMS);
        void *col = NULL;
        SDC_TRY(cu__scratch(0, (size_t)(K * np) * es, &col, op));
        for (int bi = 0; bi < B; bi++) {
            const char *xb = (const char *)x + (size_t)bi * C * HW * es;
            char *yb = (char *)y + (size_t)bi * O * P * es;
            for (int64_t p0 = 0; p0 < P; p0 += np) {
                int64_t n = P - p0 < np ? P - p0 : np;
                CU_DISPATCH(at, T, {
                    im2col_kernel<T><<<cu__blocks(K * n, 256), 256, 0, cu__stream_get()>>>(
                        (const T *)xb, (T *)col, K, n, p0, H, W, Wo, k, stride, pad);
                });
                CU_LAUNCH_CK(op);
                /* y_b^T[p0:p0+n, O] (ld P) = col^T[n, K] . W^T[K, O] */
                CUBLAS_CK(op, cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, (int)n, O, (int)K, &one, col, ty, (int)n, Wa,
                                           ty, (int)K, &zero, yb + (size_t)p0 * es, ty, (int)P, conv_compute(at),
                                           CUBLAS_GEMM_DEFAULT));
            }
        }
    }
bias:
    if (b) SDC_TRY(add_bias(y, yt, b, bt, (int64_t)B * O * P, P, O, op));
    return SDC_OK;
}

sdc_status cu_gemm_reference(const void *a, const void *b, void *c, cu_dtype at, int M, int N, int K) {
    CU_READY("cu_gemm_reference");
    if (!cu__dtype_ok(at) || M <= 0 || N <= 0 || K <= 0 || !a || !b || !c)
        return sdc_fail(SDC_ERR_ARG, "cu_gemm_reference: bad argument");
    return gemm_ex(a, b, c, at, at, M, N, K, "cu_gemm_reference");
}
