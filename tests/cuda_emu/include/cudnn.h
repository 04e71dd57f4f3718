/* the CUDA emulator stands in for cudnn.h (tests/cuda_emu/cudnn_emu.h) */
#include "../cudnn_emu.h"
