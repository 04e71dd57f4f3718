/* cudnn_emu.h - the cuDNN 9 convolution calls the CUDA backend makes, on
 * the CPU emulator (cuda_emu.h). The backend opens libcudnn.so.9 with
 * dlopen at run time; here dlopen and dlsym, for that library only, hand
 * out the emulator's functions (cudnn_emu.cc), so the backend's cuDNN path
 * runs as it would on a GPU machine with cuDNN installed.
 * SDC_CUDA_EMU_CUDNN=0 makes the library "missing". */
#ifndef SDC_CUDA_EMU_CUDNN_H
#define SDC_CUDA_EMU_CUDNN_H

#include <dlfcn.h>

#include "cuda_emu.h"

#define CUDNN_MAJOR 9
#define CUDNN_MINOR 19
#define CUDNN_PATCHLEVEL 0
#define CUDNN_STATUS_CATEGORY(full_error_code) ((full_error_code) / 1000 * 1000)

typedef enum {
    CUDNN_STATUS_SUCCESS = 0,
    CUDNN_STATUS_BAD_PARAM = 2000,
    CUDNN_STATUS_BAD_PARAM_NULL_POINTER = 2002,
    CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER = 2003,
    CUDNN_STATUS_BAD_PARAM_SIZE_INSUFFICIENT = 2006,
    CUDNN_STATUS_NOT_SUPPORTED = 3000,
    CUDNN_STATUS_NOT_SUPPORTED_SHAPE = 3002,
    CUDNN_STATUS_INTERNAL_ERROR = 4000,
    CUDNN_STATUS_EXECUTION_FAILED = 5000,
} cudnnStatus_t;
typedef enum { CUDNN_DATA_FLOAT = 0, CUDNN_DATA_HALF = 2, CUDNN_DATA_BFLOAT16 = 9 } cudnnDataType_t;
typedef enum { CUDNN_DEFAULT_MATH = 0, CUDNN_TENSOR_OP_MATH = 1, CUDNN_FMA_MATH = 3 } cudnnMathType_t;
typedef enum { CUDNN_TENSOR_NCHW = 0 } cudnnTensorFormat_t;
typedef enum { CUDNN_CONVOLUTION = 0, CUDNN_CROSS_CORRELATION = 1 } cudnnConvolutionMode_t;
typedef enum { CUDNN_NON_DETERMINISTIC = 0, CUDNN_DETERMINISTIC = 1 } cudnnDeterminism_t;
typedef enum {
    CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM = 0,
    CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM = 1,
    CUDNN_CONVOLUTION_FWD_ALGO_COUNT = 8
} cudnnConvolutionFwdAlgo_t;
typedef struct {
    cudnnConvolutionFwdAlgo_t algo;
    cudnnStatus_t status;
    float time;
    size_t memory;
    cudnnDeterminism_t determinism;
    cudnnMathType_t mathType;
    int reserved[3];
} cudnnConvolutionFwdAlgoPerf_t;

typedef struct cu_emu_dnn *cudnnHandle_t;
typedef struct cu_emu_dnn_tensor *cudnnTensorDescriptor_t;
typedef struct cu_emu_dnn_filter *cudnnFilterDescriptor_t;
typedef struct cu_emu_dnn_conv *cudnnConvolutionDescriptor_t;

/* dlopen/dlsym as the backend calls them: libcudnn.so* is the emulator's, anything else the system's */
void *cu_emu_dlopen(const char *file, int mode);
void *cu_emu_dlsym(void *lib, const char *name);
#define dlopen(file, mode) cu_emu_dlopen(file, mode)
#define dlsym(lib, name) cu_emu_dlsym(lib, name)

#endif
