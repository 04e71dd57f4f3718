/* the CUDA emulator stands in for cublas_v2.h (tests/cuda_emu/cuda_emu.h) */
#include "../cuda_emu.h"
#include "../cublas_emu.h"
