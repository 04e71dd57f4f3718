/* the CUDA emulator stands in for mma.h (tests/cuda_emu/wmma_emu.h) */
#include "../wmma_emu.h"
