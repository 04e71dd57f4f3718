/* the CUDA emulator stands in for cublasLt.h (tests/cuda_emu/cuda_emu.h) */
#include "../cuda_emu.h"
#include "../cublas_emu.h"
