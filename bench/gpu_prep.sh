#!/bin/sh
# bench/gpu_prep.sh - run on the development machine (the one with ../shared
# and a Debian package mirror) before a device run of bench/gpu_check.sh.
# The GPU machine gets only the working tree plus the ignored paths named in
# `carry`, and has no network and no ../shared, so this puts there:
#   build/gpu-configs/{sd15,sdxl}  the diffusers config folders (configs,
#                                  tokenizers, scheduler; ~5 MB) that
#                                  make_random_model turns into full-size
#                                  random-weight models on the device
#   build/gpu-debs/*.deb           sdc's C libraries (bench/gpu_debs.sh), in
#                                  case the device image lacks them
# and prints the device call. Idempotent; the configs are copied afresh.
set -e
cd "$(dirname "$0")/.."
SHARED=${SDC_SHARED:-../shared}
mkdir -p build/gpu-configs
for m in sd15 sdxl; do
    if [ ! -f "$SHARED/configs/$m/model_index.json" ]; then
        echo "gpu_prep: $SHARED/configs/$m is missing" >&2
        exit 1
    fi
    rm -rf "build/gpu-configs/$m"
    cp -r "$SHARED/configs/$m" "build/gpu-configs/$m"
done
if ls build/gpu-debs/*.deb >/dev/null 2>&1 && [ -z "${SDC_GPU_REFRESH_DEBS:-}" ]; then
    echo "gpu_prep: build/gpu-debs already holds $(ls build/gpu-debs/*.deb | wc -l) debs (SDC_GPU_REFRESH_DEBS=1 to fetch again)"
else
    sh bench/gpu_debs.sh build/gpu-debs
fi
du -sh build/gpu-configs build/gpu-debs
echo "carry total: $(du -scm build/gpu-configs build/gpu-debs | tail -1 | cut -f1) MiB (the limit is 64 MiB)"
cat <<'EOF'
before it, on this machine: make test-cuda-emu (every CUDA test on the CPU emulator, ~4 minutes):
device time is too short to find there what the emulator finds here.
device call (one run, ~8 minutes):
  run(command="bash bench/gpu_check.sh", carry=["build/gpu-debs", "build/gpu-configs"], timeout_s=560)
then read gpu_check_summary.txt (and gpu_check.log, one .txt per step) among the returned files.
EOF
