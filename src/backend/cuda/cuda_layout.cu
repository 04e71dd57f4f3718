/* cuda_layout.cu - the copies the model code asks for instead of touching
 * activations itself (ops.h: op_copy_2d, op_affine, op_pad_zero,
 * op_gather_rows): block copies, y = a*x + b, zero padding of planes and
 * row gathers, plus the row bias the backend adds after a GEMM, on the
 * backend stream in any activation dtype. */
#include "backend/cuda/cuda_common.cuh"

#define GRID_LOOP(i, n) \
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (n); i += (int64_t)gridDim.x * blockDim.x)

sdc_status cu_copy_2d(void *dst, int64_t dst_ld, const void *src, int64_t src_ld, int64_t rows, int64_t cols,
                      cu_dtype at) {
    const char *op = "cu_copy_2d";
    CU_READY(op);
    if (!cu__dtype_ok(at) || rows < 0 || cols < 0 || dst_ld < cols || src_ld < cols)
        return sdc_fail(SDC_ERR_ARG, "%s: bad argument (rows=%lld cols=%lld)", op, (long long)rows, (long long)cols);
    if (!rows || !cols) return SDC_OK;
    size_t es = cu_dtype_size(at);
    CU_CK(op, cudaMemcpy2DAsync(dst, (size_t)dst_ld * es, src, (size_t)src_ld * es, (size_t)cols * es, (size_t)rows,
                                cudaMemcpyDeviceToDevice, cu__stream_get()));
    return SDC_OK;
}

template <typename T>
__global__ void affine_kernel(T *y, const T *x, float a, float b, int64_t n) {
    /* __fmul_rn / __fadd_rn: one rounding per operation, as the CPU op */
    GRID_LOOP(i, n) cu_st(y + i, __fadd_rn(__fmul_rn(a, cu_ld(x + i)), b));
}

sdc_status cu_affine(void *y, const void *x, float a, float b, cu_dtype at, int64_t n) {
    const char *op = "cu_affine";
    CU_READY(op);
    if (!cu__dtype_ok(at) || n < 0 || (n && (!x || !y))) return sdc_fail(SDC_ERR_ARG, "%s: bad argument", op);
    if (!n) return SDC_OK;
    CU_DISPATCH(at, T, {
        affine_kernel<T><<<cu__blocks(n, 256), 256, 0, cu__stream_get()>>>((T *)y, (const T *)x, a, b, n);
    });
    CU_LAUNCH_CK(op);
    return SDC_OK;
}

/* one output row (plane p, row oy) per block iteration */
template <typename T>
__global__ void pad_zero_kernel(const T *x, T *y, int64_t BC, int H, int W, int Ho, int Wo) {
    CU_ROWS(q, BC * Ho) {
        int64_t p = q / Ho;
        int oy = (int)(q - p * Ho);
        const T *xr = oy < H ? x + (p * H + oy) * W : nullptr; /* rows past H are all padding */
        T *yr = y + q * Wo;
        CU_COLS(ox, Wo) yr[ox] = xr && ox < W ? xr[ox] : T(0.0f);
    }
}

sdc_status cu_pad_zero(const void *x, void *y, cu_dtype at, int64_t BC, int H, int W, int Ho, int Wo) {
    const char *op = "cu_pad_zero";
    CU_READY(op);
    if (!cu__dtype_ok(at) || BC < 0 || H < 0 || W < 0 || Ho < H || Wo < W)
        return sdc_fail(SDC_ERR_ARG, "%s: bad argument (%dx%d -> %dx%d)", op, H, W, Ho, Wo);
    int64_t n = BC * Ho * Wo;
    if (!n) return SDC_OK;
    CU_DISPATCH(at, T, {
        pad_zero_kernel<T><<<cu__row_blocks(BC * Ho), cu__row_threads(Wo), 0, cu__stream_get()>>>(
            (const T *)x, (T *)y, BC, H, W, Ho, Wo);
    });
    CU_LAUNCH_CK(op);
    return SDC_OK;
}

template <typename T>
__global__ void gather_rows_kernel(T *dst, const T *src, int64_t cols, const int64_t *rows, int64_t n) {
    GRID_LOOP(i, n * cols) dst[i] = src[rows[i / cols] * cols + i % cols];
}

sdc_status cu_gather_rows(void *dst, const void *src, cu_dtype at, int64_t cols, const int64_t *rows_host,
                          int64_t n) {
    const char *op = "cu_gather_rows";
    CU_READY(op);
    if (!cu__dtype_ok(at) || cols < 0 || n < 0 || (n && !rows_host)) return sdc_fail(SDC_ERR_ARG, "%s: bad argument", op);
    if (!n || !cols) return SDC_OK;
    void *d_rows;
    SDC_TRY(cu__scratch(2, (size_t)n * sizeof(int64_t), &d_rows, op));
    CU_CK(op, cudaMemcpyAsync(d_rows, rows_host, (size_t)n * sizeof(int64_t), cudaMemcpyHostToDevice,
                              cu__stream_get()));
    CU_DISPATCH(at, T, {
        gather_rows_kernel<T><<<cu__blocks(n * cols, 256), 256, 0, cu__stream_get()>>>(
            (T *)dst, (const T *)src, cols, (const int64_t *)d_rows, n);
    });
    CU_LAUNCH_CK(op);
    return SDC_OK;
}

sdc_status cu_add_row_bias(void *y, const void *b, cu_dtype at, int64_t rows, int64_t cols) {
    const char *op = "cu_add_row_bias";
    CU_READY(op);
    if (!cu__dtype_ok(at) || rows < 0 || cols < 0 || (rows && cols && (!y || !b)))
        return sdc_fail(SDC_ERR_ARG, "%s: bad argument", op);
    int64_t n = rows * cols;
    if (!n) return SDC_OK;
    CU_DISPATCH(at, T, {
        cu_bias_rows_kernel<T, T><<<cu__row_blocks(rows), cu__row_threads(cols), 0, cu__stream_get()>>>(
            (T *)y, (const T *)b, rows, cols);
    });
    CU_LAUNCH_CK(op);
    return SDC_OK;
}
