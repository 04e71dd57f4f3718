/* backend_cpu.c - the CPU ops as a backend table for the dispatcher. */
#include "backend/backend.h"
#include "backend/cpu/cpu_ops.h"

const op_backend op_backend_cpu = {
    .name = "cpu", .host_memory = 1, .alloc = cpu_alloc, .free = cpu_free, .upload = cpu_upload,
    .download = cpu_download, .copy = cpu_copy, .copy_2d = cpu_copy_2d, .affine = cpu_affine,
    .pad_zero = cpu_pad_zero, .gather_rows = cpu_gather_rows, .linear_t = cpu_linear_t, .conv2d_t = cpu_conv2d_t,
    .conv2d_fused = cpu_conv2d_fused,
    .group_norm = cpu_group_norm, .layer_norm = cpu_layer_norm, .silu = cpu_silu, .gelu = cpu_gelu,
    .quick_gelu = cpu_quick_gelu, .relu = cpu_relu, .tanh_clamp = cpu_tanh_clamp, .geglu = cpu_geglu, .add = cpu_add, .scale = cpu_scale,
    .add_channel_bias = cpu_add_channel_bias, .attention = cpu_attention, .upsample_nearest = cpu_upsample_nearest,
    .nchw_to_nhwc = cpu_nchw_to_nhwc, .nhwc_to_nchw = cpu_nhwc_to_nchw, .timestep_embedding = cpu_timestep_embedding};
