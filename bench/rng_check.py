#!/usr/bin/env python3
"""bench/rng_check.py DUMP SEED - on a machine with PyTorch and a CUDA GPU
(bench/gpu_check.sh runs it): the initial noise that `sdc generate --rng cuda`
wrote to DUMP (its --dump safetensors, tensor "noise" [B, 4, h, w], image i
seeded SEED + i) against torch.randn drawn on the GPU from a CUDA generator
with the same seeds - what a GPU user's seed means in diffusers, A1111 and
ComfyUI. Exits 0 when every value agrees within 1e-5, 1 when not, 2 when
PyTorch, safetensors or a GPU is missing."""
import sys


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        import torch
        from safetensors.torch import load_file
    except ImportError as e:
        print(f"rng_check: skipped ({e})")
        return 2
    if not torch.cuda.is_available():
        print("rng_check: skipped (torch sees no CUDA device)")
        return 2
    noise = load_file(sys.argv[1])["noise"].float()
    seed = int(sys.argv[2])
    shape = (1,) + tuple(noise.shape[1:])
    ref = torch.cat([torch.randn(shape, generator=torch.Generator("cuda").manual_seed(seed + i), device="cuda")
                     for i in range(noise.shape[0])]).cpu()
    diff = (noise - ref).abs().max().item()
    print(f"rng_check: sdc --rng cuda vs torch {torch.__version__} randn on {torch.cuda.get_device_name()}: "
          f"{tuple(noise.shape)} values, seeds {seed}..{seed + noise.shape[0] - 1}, max |diff| {diff:.3g}")
    return 0 if diff < 1e-5 else 1


if __name__ == "__main__":
    sys.exit(main())
