# rewrite.sed - the two pieces of CUDA syntax C++ cannot parse, turned into
# calls of the CUDA emulator (cuda_emu.h), one line at a time:
#   kernel<T><<<grid, block, smem, stream>>>(args)
#     -> cu_emu::launch("kernel<T>", grid, block, smem, stream)(&kernel<T>)(args)
#   extern __shared__ __align__(128) unsigned char smem[];
#     -> unsigned char *smem = (unsigned char *)cu_emu::dyn_smem();
s/([A-Za-z_][A-Za-z0-9_]*(<[^;]*>)?)<<<(.*)>>>\(/cu_emu::launch("\1", \3)(\&\1)(/
s/extern __shared__ (__align__\([0-9]+\) )?([A-Za-z_][A-Za-z0-9_ ]*[A-Za-z0-9_]) +([A-Za-z_][A-Za-z0-9_]*)\[\];/\2 *\3 = (\2 *)cu_emu::dyn_smem();/
