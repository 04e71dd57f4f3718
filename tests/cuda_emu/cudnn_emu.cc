/* cudnn_emu.cc - cuDNN's legacy convolution API on the CUDA emulator: the
 * calls cuda_conv_cudnn.cu looks up with dlsym, checked as cuDNN checks
 * them (descriptor shapes that do not fit together, a workspace smaller
 * than the algorithm asked for, operands outside their allocation) and
 * computed directly: NCHW cross-correlation, f32 sums, TF32 operands for
 * f32 data under the default math type (what an Ampere-or-newer GPU does). */
#include <stdio.h>
#include <stdlib.h>

#include <vector>

#include "cudnn_emu.h"
#include "cuda_emu_internal.h"
#undef dlopen
#undef dlsym

struct cu_emu_dnn {
    cudaStream_t stream;
};
struct cu_emu_dnn_tensor {
    int set;
    cudnnDataType_t type;
    int n, c, h, w;
};
struct cu_emu_dnn_filter {
    int set;
    cudnnDataType_t type;
    int k, c, h, w;
};
struct cu_emu_dnn_conv {
    int set;
    int pad_h, pad_w, u, v, dil_h, dil_w;
    cudnnMathType_t math;
};

static size_t dnn_size(cudnnDataType_t t) { return t == CUDNN_DATA_FLOAT ? 4 : 2; }
static bool dnn_type_ok(int t) { return t == CUDNN_DATA_FLOAT || t == CUDNN_DATA_HALF || t == CUDNN_DATA_BFLOAT16; }

static cu_emu::elem_t dnn_elem(cudnnDataType_t t) {
    return t == CUDNN_DATA_FLOAT ? cu_emu::ELEM_F32 : t == CUDNN_DATA_HALF ? cu_emu::ELEM_F16 : cu_emu::ELEM_BF16;
}
static float dnn_load(const void *p, cudnnDataType_t t, size_t i) { return cu_emu::elem_load(p, dnn_elem(t), i); }
static void dnn_store(void *p, cudnnDataType_t t, size_t i, float v) { cu_emu::elem_store(p, dnn_elem(t), i, v); }

static size_t dnn_version(void) { return CUDNN_MAJOR * 10000 + CUDNN_MINOR * 100 + CUDNN_PATCHLEVEL; }

static const char *dnn_error(cudnnStatus_t s) {
    switch (s) {
    case CUDNN_STATUS_SUCCESS: return "CUDNN_STATUS_SUCCESS";
    case CUDNN_STATUS_BAD_PARAM: return "CUDNN_STATUS_BAD_PARAM";
    case CUDNN_STATUS_BAD_PARAM_NULL_POINTER: return "CUDNN_STATUS_BAD_PARAM_NULL_POINTER";
    case CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER: return "CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER";
    case CUDNN_STATUS_BAD_PARAM_SIZE_INSUFFICIENT: return "CUDNN_STATUS_BAD_PARAM_SIZE_INSUFFICIENT";
    case CUDNN_STATUS_NOT_SUPPORTED: return "CUDNN_STATUS_NOT_SUPPORTED";
    case CUDNN_STATUS_NOT_SUPPORTED_SHAPE: return "CUDNN_STATUS_NOT_SUPPORTED_SHAPE";
    case CUDNN_STATUS_INTERNAL_ERROR: return "CUDNN_STATUS_INTERNAL_ERROR";
    case CUDNN_STATUS_EXECUTION_FAILED: return "CUDNN_STATUS_EXECUTION_FAILED";
    }
    return "CUDNN_STATUS_UNKNOWN";
}

static cudnnStatus_t dnn_create(cudnnHandle_t *h) {
    if (!h) return CUDNN_STATUS_BAD_PARAM_NULL_POINTER;
    *h = new cu_emu_dnn();
    return CUDNN_STATUS_SUCCESS;
}
static cudnnStatus_t dnn_set_stream(cudnnHandle_t h, cudaStream_t s) {
    if (!h) return CUDNN_STATUS_BAD_PARAM_NULL_POINTER;
    h->stream = s;
    return CUDNN_STATUS_SUCCESS;
}

static cudnnStatus_t tensor_create(cudnnTensorDescriptor_t *d) {
    *d = new cu_emu_dnn_tensor();
    return CUDNN_STATUS_SUCCESS;
}
static cudnnStatus_t tensor_set(cudnnTensorDescriptor_t d, cudnnTensorFormat_t f, cudnnDataType_t t, int n, int c,
                                int h, int w) {
    if (!d || f != CUDNN_TENSOR_NCHW || !dnn_type_ok(t) || n <= 0 || c <= 0 || h <= 0 || w <= 0)
        return CUDNN_STATUS_BAD_PARAM;
    *d = cu_emu_dnn_tensor{1, t, n, c, h, w};
    return CUDNN_STATUS_SUCCESS;
}
static cudnnStatus_t tensor_destroy(cudnnTensorDescriptor_t d) {
    delete d;
    return CUDNN_STATUS_SUCCESS;
}
static cudnnStatus_t filter_create(cudnnFilterDescriptor_t *d) {
    *d = new cu_emu_dnn_filter();
    return CUDNN_STATUS_SUCCESS;
}
static cudnnStatus_t filter_set(cudnnFilterDescriptor_t d, cudnnDataType_t t, cudnnTensorFormat_t f, int k, int c,
                                int h, int w) {
    if (!d || f != CUDNN_TENSOR_NCHW || !dnn_type_ok(t) || k <= 0 || c <= 0 || h <= 0 || w <= 0)
        return CUDNN_STATUS_BAD_PARAM;
    *d = cu_emu_dnn_filter{1, t, k, c, h, w};
    return CUDNN_STATUS_SUCCESS;
}
static cudnnStatus_t filter_destroy(cudnnFilterDescriptor_t d) {
    delete d;
    return CUDNN_STATUS_SUCCESS;
}
static cudnnStatus_t conv_create(cudnnConvolutionDescriptor_t *d) {
    *d = new cu_emu_dnn_conv();
    return CUDNN_STATUS_SUCCESS;
}
static cudnnStatus_t conv_set(cudnnConvolutionDescriptor_t d, int ph, int pw, int u, int v, int dh, int dw,
                              cudnnConvolutionMode_t mode, cudnnDataType_t compute) {
    if (!d || ph < 0 || pw < 0 || u <= 0 || v <= 0 || dh <= 0 || dw <= 0 || !dnn_type_ok(compute))
        return CUDNN_STATUS_BAD_PARAM;
    if (mode != CUDNN_CROSS_CORRELATION || dh != 1 || dw != 1) return CUDNN_STATUS_NOT_SUPPORTED; /* not emulated */
    cudnnMathType_t math = d->math;
    *d = cu_emu_dnn_conv{1, ph, pw, u, v, dh, dw, math};
    return CUDNN_STATUS_SUCCESS;
}
static cudnnStatus_t conv_math(cudnnConvolutionDescriptor_t d, cudnnMathType_t m) {
    if (!d || (m != CUDNN_DEFAULT_MATH && m != CUDNN_TENSOR_OP_MATH && m != CUDNN_FMA_MATH)) return CUDNN_STATUS_BAD_PARAM;
    d->math = m;
    return CUDNN_STATUS_SUCCESS;
}
static cudnnStatus_t conv_destroy(cudnnConvolutionDescriptor_t d) {
    delete d;
    return CUDNN_STATUS_SUCCESS;
}

/* the descriptors describe one convolution: y = conv(x, w) */
static cudnnStatus_t fits(const cu_emu_dnn_tensor *x, const cu_emu_dnn_filter *w, const cu_emu_dnn_conv *c,
                          const cu_emu_dnn_tensor *y) {
    if (!x || !w || !c || !y || !x->set || !w->set || !c->set || !y->set) return CUDNN_STATUS_BAD_PARAM;
    int ho = (x->h + 2 * c->pad_h - w->h) / c->u + 1, wo = (x->w + 2 * c->pad_w - w->w) / c->v + 1;
    if (x->c != w->c || y->n != x->n || y->c != w->k || y->h != ho || y->w != wo || x->type != w->type ||
        y->type != x->type || x->h + 2 * c->pad_h < w->h || x->w + 2 * c->pad_w < w->w) {
        cu_emu::warn("cuDNN: descriptors do not fit: x %dx%dx%dx%d, w %dx%dx%dx%d, y %dx%dx%dx%d (expected %dx%d)", x->n,
                     x->c, x->h, x->w, w->k, w->c, w->h, w->w, y->n, y->c, y->h, y->w, ho, wo);
        return CUDNN_STATUS_BAD_PARAM;
    }
    return CUDNN_STATUS_SUCCESS;
}

/* a workspace the size of a quarter of x, so the backend's workspace handling is exercised */
static size_t precomp_ws(const cu_emu_dnn_tensor *x) {
    return ((size_t)x->n * x->c * x->h * x->w * dnn_size(x->type) / 4 + 255) / 256 * 256;
}

static cudnnStatus_t algos(cudnnHandle_t h, const cudnnTensorDescriptor_t x, const cudnnFilterDescriptor_t w,
                           const cudnnConvolutionDescriptor_t c, const cudnnTensorDescriptor_t y, const int want,
                           int *got, cudnnConvolutionFwdAlgoPerf_t *perf) {
    if (!h || !got || !perf || want < 1) return CUDNN_STATUS_BAD_PARAM;
    cudnnStatus_t s = fits(x, w, c, y);
    if (s) return s;
    cudnnConvolutionFwdAlgoPerf_t p[2];
    memset(p, 0, sizeof p);
    p[0].algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM;
    p[0].memory = precomp_ws(x);
    p[0].mathType = c->math;
    p[1].algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
    p[1].memory = 0;
    p[1].mathType = CUDNN_FMA_MATH;
    *got = want < 2 ? want : 2;
    for (int i = 0; i < *got; i++) perf[i] = p[i];
    return CUDNN_STATUS_SUCCESS;
}

static cudnnStatus_t forward(cudnnHandle_t h, const void *alpha, const cudnnTensorDescriptor_t xd, const void *x,
                             const cudnnFilterDescriptor_t wd, const void *w, const cudnnConvolutionDescriptor_t cd,
                             cudnnConvolutionFwdAlgo_t algo, void *ws, size_t ws_bytes, const void *beta,
                             const cudnnTensorDescriptor_t yd, void *y) {
    if (!h || !alpha || !beta || !x || !w || !y) return CUDNN_STATUS_BAD_PARAM_NULL_POINTER;
    cudnnStatus_t s = fits(xd, wd, cd, yd);
    if (s) return s;
    size_t need = algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM ? precomp_ws(xd)
                  : algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM      ? 0
                                                                         : (size_t)-1;
    if (need == (size_t)-1) return CUDNN_STATUS_NOT_SUPPORTED;
    if (ws_bytes < need || (need && !cu_emu::is_device(ws, need))) {
        cu_emu::warn("cudnnConvolutionForward: workspace of %zu bytes at %p, the algorithm needs %zu in device memory",
                     ws_bytes, ws, need);
        return CUDNN_STATUS_BAD_PARAM_SIZE_INSUFFICIENT;
    }
    cu_emu_dnn_tensor X = *xd, Y = *yd;
    cu_emu_dnn_filter W = *wd;
    cu_emu_dnn_conv C = *cd;
    size_t es = dnn_size(X.type), nx = (size_t)X.n * X.c * X.h * X.w, nw = (size_t)W.k * W.c * W.h * W.w,
           ny = (size_t)Y.n * Y.c * Y.h * Y.w;
    if (!cu_emu::is_device(x, nx * es) || !cu_emu::is_device(w, nw * es) || !cu_emu::is_device(y, ny * es)) {
        cu_emu::warn("cudnnConvolutionForward: x, w or y is not inside one device allocation");
        return CUDNN_STATUS_BAD_PARAM;
    }
    float a = *(const float *)alpha, b = *(const float *)beta;
    bool tf32 = X.type == CUDNN_DATA_FLOAT && C.math == CUDNN_DEFAULT_MATH && algo != CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
    cudaError_t e = cu_emu::enqueue(h->stream, "cudnnConvolutionForward", [=] {
        std::vector<float> fx(nx), fw(nw);
        for (size_t i = 0; i < nx; i++) fx[i] = tf32 ? cu_emu::tf32_round(dnn_load(x, X.type, i)) : dnn_load(x, X.type, i);
        for (size_t i = 0; i < nw; i++) fw[i] = tf32 ? cu_emu::tf32_round(dnn_load(w, W.type, i)) : dnn_load(w, W.type, i);
        for (int n = 0; n < Y.n; n++)
            for (int o = 0; o < Y.c; o++)
                for (int i = 0; i < Y.h; i++)
                    for (int j = 0; j < Y.w; j++) {
                        float acc = 0.0f;
                        for (int c = 0; c < X.c; c++)
                            for (int r = 0; r < W.h; r++) {
                                int yy = i * C.u - C.pad_h + r;
                                if (yy < 0 || yy >= X.h) continue;
                                const float *xr = &fx[(((size_t)n * X.c + c) * X.h + yy) * X.w];
                                const float *wr = &fw[(((size_t)o * W.c + c) * W.h + r) * W.w];
                                for (int q = 0; q < W.w; q++) {
                                    int xx = j * C.v - C.pad_w + q;
                                    if (xx >= 0 && xx < X.w) acc += xr[xx] * wr[q];
                                }
                            }
                        size_t yi = (((size_t)n * Y.c + o) * Y.h + i) * Y.w + j;
                        float v = a * acc;
                        if (b != 0.0f) v += b * dnn_load(y, Y.type, yi);
                        dnn_store(y, Y.type, yi, v);
                    }
        return cudaSuccess;
    });
    return e == cudaSuccess ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_EXECUTION_FAILED;
}

static const struct {
    const char *name;
    void *fn;
} k_syms[] = {
    {"cudnnGetVersion", (void *)dnn_version},
    {"cudnnGetErrorString", (void *)dnn_error},
    {"cudnnCreate", (void *)dnn_create},
    {"cudnnSetStream", (void *)dnn_set_stream},
    {"cudnnCreateTensorDescriptor", (void *)tensor_create},
    {"cudnnSetTensor4dDescriptor", (void *)tensor_set},
    {"cudnnDestroyTensorDescriptor", (void *)tensor_destroy},
    {"cudnnCreateFilterDescriptor", (void *)filter_create},
    {"cudnnSetFilter4dDescriptor", (void *)filter_set},
    {"cudnnDestroyFilterDescriptor", (void *)filter_destroy},
    {"cudnnCreateConvolutionDescriptor", (void *)conv_create},
    {"cudnnSetConvolution2dDescriptor", (void *)conv_set},
    {"cudnnSetConvolutionMathType", (void *)conv_math},
    {"cudnnDestroyConvolutionDescriptor", (void *)conv_destroy},
    {"cudnnGetConvolutionForwardAlgorithm_v7", (void *)algos},
    {"cudnnConvolutionForward", (void *)forward},
};

static char k_lib; /* the emulated library's handle */

void *cu_emu_dlopen(const char *file, int mode) {
    if (file && !strncmp(file, "libcudnn.so", 11)) {
        const char *e = getenv("SDC_CUDA_EMU_CUDNN");
        if (e && !strcmp(e, "0")) return dlopen("libcudnn-absent-in-the-cuda-emulator.so", mode); /* fails, with dlerror */
        return &k_lib;
    }
    return dlopen(file, mode);
}

void *cu_emu_dlsym(void *lib, const char *name) {
    if (lib != &k_lib) return dlsym(lib, name);
    for (auto &s : k_syms)
        if (!strcmp(s.name, name)) return s.fn;
    return NULL;
}
