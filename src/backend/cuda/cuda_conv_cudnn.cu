/* cuda_conv_cudnn.cu - convolutions through cuDNN where it is present: the
 * build needs only cudnn.h (SDC_HAVE_CUDNN, from the Makefile), the library
 * is opened at run time (libcudnn.so.9), so an sdc built here runs on a GPU
 * machine without cuDNN and takes the im2col + cuBLAS path there. cuDNN
 * picks an implicit-GEMM (or Winograd/FFT) kernel for the shape; operands
 * f16/bf16 with f32 accumulation on tensor cores, f32 on TF32 tensor cores
 * as PyTorch does by default (cu_conv_allow_tf32; plain FMA when off). One
 * plan per shape: descriptors, the
 * algorithm cuDNN's heuristics rank first within the workspace bound, and
 * its workspace, which lives in scratch slot 3 (sized by the first step,
 * so a captured step does not grow it). Any refusal by cuDNN for a shape
 * sends that shape to the fallback for good and keeps the first message for
 * cu_cudnn_status(). SDC_CUDNN=0 turns it off. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_common.cuh"

static int g_use = 1; /* cu_conv_use_cudnn */
static int g_tf32 = -1; /* cu_conv_allow_tf32; -1: from SDC_TF32 (default on) */

int cu_conv_tf32(void) {
    if (g_tf32 < 0) {
        const char *e = getenv("SDC_TF32");
        g_tf32 = !(e && !strcmp(e, "0"));
    }
    return g_tf32;
}

int cu_conv_allow_tf32(int on) {
    int was = cu_conv_tf32();
    g_tf32 = on;
    return was;
}
static char g_note[256] = "cuDNN: not tried yet";

#ifdef SDC_HAVE_CUDNN
#include <cudnn.h>
#include <dlfcn.h>

#define WS_LIMIT ((size_t)256 << 20)

static struct {
    int tried, ok;
    void *lib;
    cudnnHandle_t h;
    size_t (*version)(void);
    const char *(*err)(cudnnStatus_t);
    cudnnStatus_t (*create)(cudnnHandle_t *);
    cudnnStatus_t (*set_stream)(cudnnHandle_t, cudaStream_t);
    cudnnStatus_t (*tensor_create)(cudnnTensorDescriptor_t *);
    cudnnStatus_t (*tensor_set)(cudnnTensorDescriptor_t, cudnnTensorFormat_t, cudnnDataType_t, int, int, int, int);
    cudnnStatus_t (*tensor_destroy)(cudnnTensorDescriptor_t);
    cudnnStatus_t (*filter_create)(cudnnFilterDescriptor_t *);
    cudnnStatus_t (*filter_set)(cudnnFilterDescriptor_t, cudnnDataType_t, cudnnTensorFormat_t, int, int, int, int);
    cudnnStatus_t (*filter_destroy)(cudnnFilterDescriptor_t);
    cudnnStatus_t (*conv_create)(cudnnConvolutionDescriptor_t *);
    cudnnStatus_t (*conv_set)(cudnnConvolutionDescriptor_t, int, int, int, int, int, int, cudnnConvolutionMode_t,
                              cudnnDataType_t);
    cudnnStatus_t (*conv_math)(cudnnConvolutionDescriptor_t, cudnnMathType_t);
    cudnnStatus_t (*conv_destroy)(cudnnConvolutionDescriptor_t);
    cudnnStatus_t (*algos)(cudnnHandle_t, const cudnnTensorDescriptor_t, const cudnnFilterDescriptor_t,
                           const cudnnConvolutionDescriptor_t, const cudnnTensorDescriptor_t, const int, int *,
                           cudnnConvolutionFwdAlgoPerf_t *);
    cudnnStatus_t (*forward)(cudnnHandle_t, const void *, const cudnnTensorDescriptor_t, const void *,
                             const cudnnFilterDescriptor_t, const void *, const cudnnConvolutionDescriptor_t,
                             cudnnConvolutionFwdAlgo_t, void *, size_t, const void *, const cudnnTensorDescriptor_t,
                             void *);
} D;

static int sym(void **fn, const char *name) {
    *fn = dlsym(D.lib, name);
    if (!*fn) snprintf(g_note, sizeof g_note, "cuDNN: %s not found in the library", name);
    return *fn != NULL;
}

/* Open the library once; 1 when cuDNN 9 is usable. */
static int load(void) {
    if (D.tried) return D.ok;
    D.tried = 1;
    const char *env = getenv("SDC_CUDNN");
    if (env && !strcmp(env, "0")) {
        snprintf(g_note, sizeof g_note, "cuDNN: off (SDC_CUDNN=0)");
        return 0;
    }
    D.lib = dlopen("libcudnn.so.9", RTLD_NOW | RTLD_LOCAL);
    if (!D.lib) D.lib = dlopen("libcudnn.so", RTLD_NOW | RTLD_LOCAL);
    if (!D.lib) {
        snprintf(g_note, sizeof g_note, "cuDNN: libcudnn.so.9 not found (%s)", dlerror());
        return 0;
    }
    int ok = sym((void **)&D.version, "cudnnGetVersion") && sym((void **)&D.err, "cudnnGetErrorString") &&
             sym((void **)&D.create, "cudnnCreate") && sym((void **)&D.set_stream, "cudnnSetStream") &&
             sym((void **)&D.tensor_create, "cudnnCreateTensorDescriptor") &&
             sym((void **)&D.tensor_set, "cudnnSetTensor4dDescriptor") &&
             sym((void **)&D.tensor_destroy, "cudnnDestroyTensorDescriptor") &&
             sym((void **)&D.filter_create, "cudnnCreateFilterDescriptor") &&
             sym((void **)&D.filter_set, "cudnnSetFilter4dDescriptor") &&
             sym((void **)&D.filter_destroy, "cudnnDestroyFilterDescriptor") &&
             sym((void **)&D.conv_create, "cudnnCreateConvolutionDescriptor") &&
             sym((void **)&D.conv_set, "cudnnSetConvolution2dDescriptor") &&
             sym((void **)&D.conv_math, "cudnnSetConvolutionMathType") &&
             sym((void **)&D.conv_destroy, "cudnnDestroyConvolutionDescriptor") &&
             sym((void **)&D.algos, "cudnnGetConvolutionForwardAlgorithm_v7") &&
             sym((void **)&D.forward, "cudnnConvolutionForward");
    if (!ok) return 0;
    size_t v = D.version();
    if (v / 10000 != CUDNN_MAJOR) {
        snprintf(g_note, sizeof g_note, "cuDNN: library version %zu, built against %d.x: not used", v, CUDNN_MAJOR);
        return 0;
    }
    cudnnStatus_t s = D.create(&D.h);
    if (s == CUDNN_STATUS_SUCCESS) s = D.set_stream(D.h, cu__stream_get());
    if (s != CUDNN_STATUS_SUCCESS) {
        snprintf(g_note, sizeof g_note, "cuDNN %zu: cudnnCreate: %s", v, D.err(s));
        return 0;
    }
    snprintf(g_note, sizeof g_note, "cuDNN %zu.%zu.%zu", v / 10000, v / 100 % 100, v % 100);
    D.ok = 1;
    return 1;
}

typedef struct {
    int B, C, H, W, O, k, stride, pad, at, tf32;
    int ok; /* 0: cuDNN refused this shape, use the fallback */
    cudnnTensorDescriptor_t xd, yd;
    cudnnFilterDescriptor_t wd;
    cudnnConvolutionDescriptor_t cd;
    cudnnConvolutionFwdAlgo_t algo;
    size_t ws;
} conv_plan;

#define PLANS 128
static conv_plan g_plans[PLANS];
static int g_nplans;

static cudnnDataType_t dnn_type(cu_dtype t) {
    return t == CU_F16 ? CUDNN_DATA_HALF : t == CU_BF16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
}

/* first refusal of a shape: kept for cu_cudnn_status, the shape falls back */
static conv_plan *refuse(conv_plan *p, const char *what, cudnnStatus_t s) {
    snprintf(g_note, sizeof g_note, "cuDNN: %s refused C=%d O=%d k=%d stride=%d %s: %s (im2col + cuBLAS there)", what,
             p->C, p->O, p->k, p->stride, cu_dtype_name((cu_dtype)p->at), D.err(s));
    p->ok = 0;
    return p;
}

static conv_plan *plan_get(int B, int C, int H, int W, int O, int k, int stride, int pad, cu_dtype at) {
    int tf32 = at == CU_F32 && cu_conv_tf32();
    for (int i = 0; i < g_nplans; i++) {
        conv_plan *p = &g_plans[i];
        if (p->B == B && p->C == C && p->H == H && p->W == W && p->O == O && p->k == k && p->stride == stride &&
            p->pad == pad && p->at == (int)at && p->tf32 == tf32)
            return p;
    }
    if (g_nplans == PLANS) return NULL; /* more shapes than a model has: the rest fall back */
    conv_plan *p = &g_plans[g_nplans++];
    memset(p, 0, sizeof *p);
    p->B = B, p->C = C, p->H = H, p->W = W, p->O = O, p->k = k, p->stride = stride, p->pad = pad, p->at = (int)at;
    p->tf32 = tf32;
    cudnnDataType_t ty = dnn_type(at);
    int Ho = (H + 2 * pad - k) / stride + 1, Wo = (W + 2 * pad - k) / stride + 1;
    cudnnStatus_t s;
    if ((s = D.tensor_create(&p->xd)) || (s = D.tensor_create(&p->yd)) || (s = D.filter_create(&p->wd)) ||
        (s = D.conv_create(&p->cd)))
        return refuse(p, "descriptor creation", s);
    if ((s = D.tensor_set(p->xd, CUDNN_TENSOR_NCHW, ty, B, C, H, W)) ||
        (s = D.tensor_set(p->yd, CUDNN_TENSOR_NCHW, ty, B, O, Ho, Wo)) ||
        (s = D.filter_set(p->wd, ty, CUDNN_TENSOR_NCHW, O, C, k, k)) ||
        (s = D.conv_set(p->cd, pad, pad, stride, stride, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT)) ||
        /* PyTorch's choices: tensor-op math for 16-bit data; for float32 the
         * default math (TF32 tensor cores on Ampere and later) when TF32 is
         * allowed, else FMA only */
        (s = D.conv_math(p->cd, at != CU_F32 ? CUDNN_TENSOR_OP_MATH : tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH)))
        return refuse(p, "the descriptors", s);
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int n = 0;
    if ((s = D.algos(D.h, p->xd, p->wd, p->cd, p->yd, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, perf)))
        return refuse(p, "the algorithm heuristics", s);
    for (int i = 0; i < n; i++)
        if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= WS_LIMIT &&
            (at != CU_F32 || tf32 || perf[i].mathType == CUDNN_FMA_MATH)) {
            /* the algorithm was ranked with this math type; together they
             * pick the kernel (what PyTorch sets before running it too) */
            if ((s = D.conv_math(p->cd, perf[i].mathType))) return refuse(p, "the algorithm's math type", s);
            p->algo = perf[i].algo;
            p->ws = perf[i].memory;
            p->ok = 1;
            return p;
        }
    return refuse(p, "every algorithm (workspace bound or status)", CUDNN_STATUS_NOT_SUPPORTED);
}

/* y = conv(x, w), no bias; *done = 0 when cuDNN is not used for it */
sdc_status cu__conv_cudnn(const void *x, cu_dtype at, int B, int C, int H, int W, const void *w, int O, int k,
                          int stride, int pad, void *y, int *done) {
    const char *op = "cu_conv2d (cuDNN)";
    *done = 0;
    if (!g_use || !load()) return SDC_OK;
    conv_plan *p = plan_get(B, C, H, W, O, k, stride, pad, at);
    if (!p || !p->ok) return SDC_OK;
    void *ws = NULL;
    if (p->ws) SDC_TRY(cu__scratch(3, p->ws, &ws, op));
    float one = 1.0f, zero = 0.0f;
    cudnnStatus_t s = D.forward(D.h, &one, p->xd, x, p->wd, w, p->cd, p->algo, ws, p->ws, &zero, p->yd, y);
    /* cuDNN 9 reports a category plus a detail (e.g. NOT_SUPPORTED_SHAPE):
     * any refusal, whatever its detail, sends the shape to the fallback */
    int cat = CUDNN_STATUS_CATEGORY((int)s);
    if (cat == CUDNN_STATUS_NOT_SUPPORTED || cat == CUDNN_STATUS_BAD_PARAM) {
        refuse(p, "cudnnConvolutionForward", s);
        return SDC_OK;
    }
    if (s != CUDNN_STATUS_SUCCESS) return sdc_fail(SDC_ERR_IO, "%s: %s", op, D.err(s));
    *done = 1;
    return SDC_OK;
}

const char *cu_cudnn_status(void) {
    if (g_use && cu_ready()) load();
    return g_note;
}

#else /* built without cudnn.h */

sdc_status cu__conv_cudnn(const void *x, cu_dtype at, int B, int C, int H, int W, const void *w, int O, int k,
                          int stride, int pad, void *y, int *done) {
    (void)x, (void)at, (void)B, (void)C, (void)H, (void)W, (void)w, (void)O, (void)k, (void)stride, (void)pad, (void)y;
    *done = 0;
    return SDC_OK;
}

const char *cu_cudnn_status(void) {
    snprintf(g_note, sizeof g_note, "cuDNN: not in this build (cudnn.h was not found when it was built)");
    return g_note;
}

#endif

int cu_conv_use_cudnn(int on) {
    int was = g_use;
    g_use = on;
    return was;
}
