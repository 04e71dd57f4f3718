#!/usr/bin/env bash
# bench/gpu_check.sh - everything issue 8 asks of a GPU machine, in one run of
# about 8 minutes that always ends with a summary:
#   1. build: make -j16 B=build/gpu (CUDA is found automatically)
#   2. tests: build/gpu/test_sdc cuda (the CUDA op tests and every
#      case_*_cuda_png: PSNR >= 35 dB against the CPU goldens), verbose
#   3. bench_cuda: the ops at SD 1.5 / SDXL shapes and the GEMM ceiling;
#      --rng cuda noise against torch.randn on the GPU (bench/rng_check.py)
#   4. make_random_model: full-size random-weight SD 1.5 and SDXL (f16) from
#      the carried configs, in the background while 2-3 run (timed);
#      meanwhile bench_pipeline on a tiny model on the CPU and on cuda: the
#      GFLOP counted per stage must be the same (flops_same)
#   5. bench_pipeline --device cuda: SD 1.5 512x512 (text, UNet, step with
#      CFG, VAE, one image with CFG; per-op device profile), SDXL-Turbo
#      512x512 1 step end to end (text encoders + 1 UNet + VAE decode; again
#      with --dtype bf16, where the VAE runs in bf16 instead of f32),
#      SDXL 1024x1024 one step with CFG (profiled) and a 2-step image with
#      CFG (its peak device memory: the 12 GB goal); every stage with its
#      TFLOP/s beside the f16 GEMM ceiling measured in the same process
#      and SD 1.5's UNet steps again op by op (--graphs 0): what the step
#      graphs save
#   6. a full-size SDXL step at 512x512 on cuda and on the CPU (sdc generate
#      --dump both, bench_compare): ||gpu - cpu|| / ||cpu|| per tensor
#   7. throughput, batch 8: SD 1.5 512x512 (20 steps, CFG) and, if time is
#      left, SDXL-Turbo 512x512 (1 step), images/s
# Steps 5-7 run most important first: SDXL-Turbo, SDXL 1024, SD 1.5, the
# SDXL step against the CPU, batch 8, then the bf16 and no-graph comparisons.
# Each step runs under `timeout` with the smaller of its own limit and what
# is left of SDC_GPU_DEADLINE (default 470 s); a step that does not fit is
# reported as skipped. Output: $OUT (or build/gpu) gets gpu_check.log (all),
# gpu_check_summary.txt, and one <step>.txt per step.
#
# Prepare on the development machine, then make the device call:
#   bash bench/gpu_prep.sh    # build/gpu-configs (from ../shared/configs), build/gpu-debs
#   run(command="bash bench/gpu_check.sh", carry=["build/gpu-debs", "build/gpu-configs"], timeout_s=560)
# What to read: gpu_check_summary.txt. "ceiling:" is the cuBLAS f16 GEMM
# (bench_cuda's, and each bench_pipeline process measures its own);
# each bench line gives ms, GFLOP, TFLOP/s and % of that ceiling; "outside
# GEMMs/attention" is the share of a step not spent in GEMMs, convolutions
# or attention (measured with a sync after every op, so also shown against
# the unsynchronised step time); "rel.err" lines compare cuda with the CPU.
#
# Machines without sdc's C libraries (the device image has nvcc but maybe not
# libcjson-dev & co.): the carried .debs (build/gpu-debs, or SDC_GPU_DEBS)
# are unpacked into build/gpu/deps and put on the include/library paths. If
# the full build still fails, the CUDA test and benchmark are linked alone
# from the objects that did build.
#
# Without a GPU (e.g. to try the script on a development machine) the device
# steps report "no CUDA device", the multi-GB models are not written, and the
# summary still comes. Knobs for such tries: SDC_GPU_BUILD (build dir),
# SDC_GPU_JOBS, SDC_GPU_CONFIGS (config folders, default build/gpu-configs),
# SDC_GPU_MODELS (where models go, default /tmp/sdc-gpu-models),
# SDC_GPU_WRITE_MODELS=1/0 (force/skip writing them), SDC_GPU_DEVICE=cpu
# (run the pipeline steps on the CPU: only sensible with tiny configs),
# SDC_GPU_BATCH_STEPS (steps of the SD 1.5 throughput run, default 20).
set -u
cd "$(dirname "$0")/.."
B=${SDC_GPU_BUILD:-build/gpu}
J=${SDC_GPU_JOBS:-16}
CONFIGS=${SDC_GPU_CONFIGS:-build/gpu-configs}
MODELS=${SDC_GPU_MODELS:-/tmp/sdc-gpu-models}
DEV=${SDC_GPU_DEVICE:-cuda}
DEADLINE=${SDC_GPU_DEADLINE:-470}
BATCH_STEPS=${SDC_GPU_BATCH_STEPS:-20}
LOGDIR=${OUT:-$B}
mkdir -p "$LOGDIR" "$B" "$MODELS"
LOG=$LOGDIR/gpu_check.log
SUMMARY=$LOGDIR/gpu_check_summary.txt
exec > >(tee "$LOG") 2>&1
T0=$(date +%s)
stamp() { echo "[$(($(date +%s) - T0))s] $*"; }
left() { echo $((DEADLINE - ($(date +%s) - T0))); }

declare -A RC SECS
ORDER=()
# step NAME LIMIT CMD...: CMD under timeout min(LIMIT, time left), its output
# in the log and in $LOGDIR/NAME.txt; RC[NAME] = exit status, "timeout" or "skipped"
step() {
    local name=$1 limit=$2 l t rc
    shift 2
    ORDER+=("$name")
    l=$(left)
    if [ "$l" -lt 20 ]; then
        stamp "$name: skipped (the ${DEADLINE} s budget is spent)"
        RC[$name]=skipped
        return 1
    fi
    [ "$limit" -gt "$l" ] && limit=$l
    stamp "$name (limit ${limit} s): $*"
    t=$(date +%s)
    timeout -k 5 "$limit" "$@" 2>&1 | tee "$LOGDIR/$name.txt"
    rc=${PIPESTATUS[0]}
    SECS[$name]=$(($(date +%s) - t))
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        RC[$name]=timeout
        stamp "$name: TIMEOUT after ${limit} s"
    else
        RC[$name]=$rc
        stamp "$name: rc=$rc in ${SECS[$name]} s"
    fi
    return "$rc"
}

stamp "gpu_check: $(uname -m), $(nproc) cores, $(free -g 2>/dev/null | awk '/^Mem:/{print $2 " GiB RAM"}')"
GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 | head -3
# a driver older than the toolkit fails every CUDA call ("driver version is insufficient")
nvidia-smi 2>/dev/null | grep -m1 -o 'CUDA Version: *[0-9.]*' | sed 's/^/driver supports /'
NVCC=$(command -v nvcc 2>/dev/null || ls /usr/local/cuda/bin/nvcc 2>/dev/null || true)
[ -n "$NVCC" ] && "$NVCC" --version | tail -2
[ -z "$GPU" ] && stamp "no GPU visible to nvidia-smi: the device steps will report it"

# ---- sdc's C libraries: the system's, or the carried debs
probe() { printf '#include <cjson/cJSON.h>\n#include <spng.h>\n#include <utf8proc.h>\n#include <microhttpd.h>\n#include <cblas.h>\nint main(void){return 0;}\n' |
          cc -x c - -o "$B/probe" -lopenblas -lcjson -lspng -lutf8proc -lmicrohttpd 2>/dev/null; }
if ! probe; then
    DEBS=${SDC_GPU_DEBS:-build/gpu-debs}
    if ls "$DEBS"/*.deb >/dev/null 2>&1; then
        stamp "system lacks sdc's libraries: unpacking $(ls "$DEBS"/*.deb | wc -l) debs from $DEBS into $B/deps"
        R=$PWD/$B/deps
        mkdir -p "$R"
        for f in "$DEBS"/*.deb; do dpkg-deb -x "$f" "$R" 2>/dev/null || dpkg -x "$f" "$R"; done
        L=$R/usr/lib/x86_64-linux-gnu
        export C_INCLUDE_PATH="$R/usr/include:$R/usr/include/x86_64-linux-gnu/openblas-pthread${C_INCLUDE_PATH:+:$C_INCLUDE_PATH}"
        export LIBRARY_PATH="$L:$L/openblas-pthread${LIBRARY_PATH:+:$LIBRARY_PATH}"
        export LD_LIBRARY_PATH="$L:$L/openblas-pthread${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
        export PATH="$PATH:$R/usr/bin"
        probe && stamp "libraries found after unpacking" || stamp "WARNING: libraries still incomplete"
    else
        stamp "WARNING: sdc's C libraries missing and no debs carried (bench/gpu_prep.sh makes them)"
    fi
fi

# ---- cuDNN: its header for the build (CUDNN_INC) and its library at run time,
# where the image has them outside CUDA's folders (e.g. in PyTorch's wheels);
# without them convolutions take im2col + cuBLAS, which the summary says
CUDA_DIR=$(dirname "$(dirname "${NVCC:-/usr/local/cuda/bin/nvcc}")")
if [ ! -f "$CUDA_DIR/include/cudnn.h" ] && [ -z "${CUDNN_INC:-}" ]; then
    H=$(find /usr /opt -name cudnn.h -path '*include*' 2>/dev/null | head -1)
    [ -n "$H" ] && export CUDNN_INC=$(dirname "$H") && stamp "cudnn.h: $H"
fi
if ! ldconfig -p 2>/dev/null | grep -q 'libcudnn.so.9' && [ ! -e "$CUDA_DIR/lib64/libcudnn.so.9" ]; then
    L=$(find /usr /opt -name 'libcudnn.so.9' 2>/dev/null | head -1)
    [ -n "$L" ] && export LD_LIBRARY_PATH="$(dirname "$L")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" && stamp "libcudnn: $L"
fi

# ---- 1. build
PROGS="$B/sdc $B/test_sdc $B/bench_cuda $B/bench_pipeline $B/bench_compare $B/make_random_model"
step build 240 bash -c "make -k -j$J B=$B $PROGS > $B/build.log 2>&1"
grep -E "warning|error" "$B/build.log" | head -40
TEST_BIN=$B/test_sdc BENCH_BIN=$B/bench_cuda
if [ ! -x "$TEST_BIN" ] || [ ! -x "$BENCH_BIN" ]; then
    stamp "full build incomplete: linking the CUDA test and benchmark alone"
    CU_LIBS="-L${CUDA_HOME:-/usr/local/cuda}/lib64 -Wl,-rpath,${CUDA_HOME:-/usr/local/cuda}/lib64 -lcublasLt -lcublas -lcudart -lstdc++"
    CORE="$(ls $B/obj/src/backend/cpu/*.o $B/obj/src/core/*.o $B/obj/src/backend/cuda/*.cu.o 2>/dev/null | tr '\n' ' ')"
    cc -fopenmp -o $B/test_cuda_only $B/obj/tests/main.o $B/obj/tests/test_cuda.o $CORE -lopenblas -lm -lpthread $CU_LIBS \
        && TEST_BIN=$B/test_cuda_only
    cc -fopenmp -o $B/bench_cuda_only $B/obj/bench/bench_cuda.o $CORE -lopenblas -lm -lpthread $CU_LIBS \
        && BENCH_BIN=$B/bench_cuda_only
fi

# ---- 4 (background). full-size random-weight models; written once per machine
SD15=$MODELS/sd15 SDXL=$MODELS/sdxl
WRITE=${SDC_GPU_WRITE_MODELS:-}
[ -z "$WRITE" ] && { [ -n "$GPU" ] && WRITE=1 || WRITE=0; }
have_model() { [ -f "$1/model_index.json" ] && [ -n "$(ls "$1"/unet/*.safetensors 2>/dev/null)" ]; }
write_model() { # name limit: times make_random_model into $LOGDIR/models_<name>.txt
    local t=$(date +%s) rc
    if have_model "$MODELS/$1"; then
        echo "$1: already in $MODELS/$1 (not rewritten)" > "$LOGDIR/models_$1.txt"
        return 0
    fi
    rm -rf "$MODELS/$1"
    timeout "$2" "$B/make_random_model" --config "$CONFIGS/$1" -o "$MODELS/$1" > "$LOGDIR/models_$1.txt" 2>&1
    rc=$?
    echo "$1: make_random_model rc=$rc in $(($(date +%s) - t)) s ($(du -sh "$MODELS/$1" 2>/dev/null | cut -f1))" >> "$LOGDIR/models_$1.txt"
    return $rc
}
MODELS_PID=
if [ "$WRITE" = 1 ] && [ -x "$B/make_random_model" ]; then
    stamp "models: writing $SD15 and $SDXL in the background (OMP_NUM_THREADS=8, while the tests run)"
    (export OMP_NUM_THREADS=8; write_model sd15 90; write_model sdxl 180) &
    MODELS_PID=$!
else
    stamp "models: not written (SDC_GPU_WRITE_MODELS=${SDC_GPU_WRITE_MODELS:-unset}, GPU '${GPU}'); using what is in $MODELS"
fi

# ---- 2. tests, 3. ops benchmark and ceiling
if [ -x "$TEST_BIN" ]; then
    step tests 180 env SDC_TEST_VERBOSE=1 SDC_BIN="$B/sdc" "$TEST_BIN" cuda
else
    ORDER+=(tests); RC[tests]="not built"
fi
if [ -x "$BENCH_BIN" ]; then
    step bench_cuda 100 "$BENCH_BIN"
else
    ORDER+=(bench_cuda); RC[bench_cuda]="not built"
fi

# --rng cuda against PyTorch's own CUDA generator (the image's python3 has
# torch): the noise of two 64x64 latents, drawn by sdc on the CPU
if [ -x "$B/sdc" ] && command -v python3 >/dev/null; then
    step rng_cuda_vs_torch 60 bash -c "$B/sdc generate -m tests/fixtures/models/tiny-sd -p x --rng cuda --steps 1 \
        -W 512 -H 512 --batch 2 --seed 1234 --quiet -o $B/rng.png --dump $B/rng.safetensors > /dev/null &&
        python3 bench/rng_check.py $B/rng.safetensors 1234"
fi

# FLOPs are counted by the CPU ops themselves and by the dispatcher for cuda
# (src/backend/ops.c): the same work must count the same on both. A tiny
# model at 512x512 (seconds), which also tries the device profile early.
stage_flops() { awk '/ GFLOP /{for (i = 2; i <= NF; i++) if ($i == "GFLOP") print substr($0, 1, 26) "|" $(i - 1)}' "$1"; }
flops_table() { # stage, GFLOP on the CPU, GFLOP on the device
    paste -d'|' <(stage_flops "$LOGDIR/flops_cpu.txt") <(stage_flops "$LOGDIR/flops_on_$DEV.txt") |
        awk -F'|' '{printf "%s %10s %10s\n", $1, $2, $4}'
}
TINY="-m tests/fixtures/models/tiny-sd -W 512 -H 512 --reps 1 --stages text,unet,cfg,vae"
if step flops_cpu 60 "$B/bench_pipeline" --device cpu $TINY && step flops_on_$DEV 60 "$B/bench_pipeline" --device "$DEV" $TINY --profile 1; then
    if [ "$(stage_flops "$LOGDIR/flops_cpu.txt")" = "$(stage_flops "$LOGDIR/flops_on_$DEV.txt")" ]; then
        RC[flops_same]=0
        stamp "flops_same: every stage counts the same GFLOP on cpu and $DEV"
    else
        RC[flops_same]=1
        stamp "flops_same: DIFFERENT GFLOP counts (cpu | $DEV):"
        flops_table
    fi
else
    RC[flops_same]=skipped
fi
ORDER+=(flops_same)

if [ -n "$MODELS_PID" ]; then
    stamp "models: waiting for make_random_model"
    wait "$MODELS_PID"
    RC[models]=$?
    cat "$LOGDIR"/models_sd15.txt "$LOGDIR"/models_sdxl.txt 2>/dev/null | grep -E "rc=|already"
    stamp "models: done (rc=${RC[models]})"
fi
ORDER+=(models)
[ -z "${RC[models]:-}" ] && RC[models]="not written"

# ---- 5-7, most important first (a step that no longer fits the budget is
# skipped): the issue's timings, the full-size SDXL step against the CPU,
# throughput, then the comparisons (bf16 VAE, no graphs)
BP="$B/bench_pipeline --device $DEV"
TURBO="--steps 1 --guidance 0 --scheduler euler_a --timestep-spacing trailing"
# 5. pipeline benchmarks (each process loads its model: a few seconds)
step sdxl_turbo_512 100 $BP -m "$SDXL" -W 512 -H 512 $TURBO --reps 3 --stages text,unet,vae,image
step sdxl_1024_cfg 120 $BP -m "$SDXL" -W 1024 -H 1024 --reps 3 --profile 1 --steps 2 --stages cfg,image
step sd15_512 90 $BP -m "$SD15" -W 512 -H 512 --steps 1 --reps 3 --profile 1 --stages text,unet,cfg,vae,image

# 6. full-size SDXL step: cuda against the CPU (same request, CPU-generator noise)
GEN="-m $SDXL -p \"a photo of an astronaut riding a horse on mars\" -W 512 -H 512 $TURBO --seed 1 --quiet"
CMP_NAMES="prompt_embeds pooled_prompt_embeds unet_out_1 noise_pred_1 latents_1 decoded image"
if step sdxl_step_$DEV 90 bash -c "$B/sdc generate $GEN --device $DEV -o $MODELS/step_$DEV.png --dump $MODELS/step_$DEV.safetensors"; then
    if step sdxl_step_ref_cpu 150 bash -c "$B/sdc generate $GEN --device cpu -o $MODELS/step_ref_cpu.png --dump $MODELS/step_ref_cpu.safetensors"; then
        step sdxl_compare 30 "$B/bench_compare" "$MODELS/step_ref_cpu.safetensors" "$MODELS/step_$DEV.safetensors" $CMP_NAMES
    else
        ORDER+=(sdxl_compare)
        RC[sdxl_compare]=skipped
    fi
else
    stamp "sdxl_step_ref_cpu, sdxl_compare: skipped (the $DEV run failed)"
    ORDER+=(sdxl_step_ref_cpu sdxl_compare)
    RC[sdxl_step_ref_cpu]=skipped RC[sdxl_compare]=skipped
fi

# 7. throughput, batch 8
step sd15_batch8 120 $BP -m "$SD15" -W 512 -H 512 --steps "$BATCH_STEPS" --reps 2 --batch 8 --stages batch,images
step sdxl_turbo_batch8 90 $BP -m "$SDXL" -W 512 -H 512 $TURBO --reps 2 --batch 8 --stages batch,images

# comparisons: --dtype bf16 (the VAE decodes in bf16 too; f16 must upcast it
# to f32: diffusers' rules), and UNet steps op by op (what step graphs save)
step sdxl_turbo_512_bf16 80 $BP -m "$SDXL" -W 512 -H 512 $TURBO --dtype bf16 --reps 3 --stages vae,image
step sd15_512_nograph 60 $BP -m "$SD15" -W 512 -H 512 --reps 3 --graphs 0 --stages unet,cfg

# ---- summary
{
    echo
    echo "==== gpu_check summary ===="
    echo "gpu:        ${GPU:-none visible (nvidia-smi)}; bench device: $DEV"
    for s in "${ORDER[@]}"; do printf '%-18s %s%s\n' "$s:" "${RC[$s]}" "${SECS[$s]:+ (${SECS[$s]} s)}"; done
    echo "-- build: $(grep -cE 'warning' "$B/build.log" 2>/dev/null) warning lines (log $B/build.log)"
    if [ -f "$LOGDIR/tests.txt" ]; then
        echo "-- tests: $(grep -cE '^ok ' "$LOGDIR/tests.txt") ok, $(grep -cE '^FAIL ' "$LOGDIR/tests.txt") FAIL, $(grep -cE '^skip ' "$LOGDIR/tests.txt") skip"
        grep -E '^FAIL ' "$LOGDIR/tests.txt" | sed 's/^/   /'
        grep -m3 -iE 'no CUDA device|skip.*cuda' "$LOGDIR/tests.txt" | sed 's/^/   /'
    fi
    [ -f "$LOGDIR/flops_on_$DEV.txt" ] && echo "-- GFLOP per stage, tiny SD at 512x512, cpu | $DEV:" &&
        flops_table | sed 's/^/   /'
    [ -f "$LOGDIR/rng_cuda_vs_torch.txt" ] && grep -E '^rng_check' "$LOGDIR/rng_cuda_vs_torch.txt" | sed 's/^/-- /'
    [ -f "$LOGDIR/bench_cuda.txt" ] && grep -m2 -E '^ceiling:|^bench_cuda:' "$LOGDIR/bench_cuda.txt" | sed 's/^/-- bench_cuda: /'
    for m in sd15 sdxl; do [ -f "$LOGDIR/models_$m.txt" ] && grep -E 'rc=|already' "$LOGDIR/models_$m.txt" | sed 's/^/-- models: /'; done
    for s in sd15_512 sd15_512_nograph sdxl_turbo_512 sdxl_turbo_512_bf16 sdxl_1024_cfg sd15_batch8 sdxl_turbo_batch8; do
        f=$LOGDIR/$s.txt
        [ -f "$f" ] || continue
        echo "-- $s"
        grep -E '^(device|ceiling|SGEMM|convolutions|bench_pipeline):|^UNet steps of|^  capture failed' "$f" | sed 's/^/   /'
        grep -E ' (ms|s) +[0-9.]+ GFLOP|^throughput:|: synchronised|outside GEMMs|^peak device memory' "$f" | sed 's/^ */   /'
    done
    for s in sdxl_step_$DEV sdxl_step_ref_cpu; do
        [ -f "$LOGDIR/$s.txt" ] && grep -iE 'error|no CUDA|fail' "$LOGDIR/$s.txt" | head -3 | sed "s/^/-- $s: /"
    done
    if [ -f "$LOGDIR/sdxl_compare.txt" ]; then
        echo "-- full-size SDXL 512x512 step, $DEV vs CPU (rel.err = ||$DEV - cpu|| / ||cpu||):"
        grep -vE '^reference' "$LOGDIR/sdxl_compare.txt" | sed 's/^/   /'
    fi
    NOTOK=
    for s in "${ORDER[@]}"; do [ "${RC[$s]}" = 0 ] || [ "$s" = models ] || NOTOK="$NOTOK $s"; done
    echo "verdict:    ${NOTOK:+not ok:}${NOTOK:-every step ok}"
    echo "elapsed:    $(($(date +%s) - T0)) s (budget ${DEADLINE} s)"
} | tee "$SUMMARY"
# exit 0 only when every step ran and succeeded (bench_cuda exits 0 without a device: the others do not)
for s in "${ORDER[@]}"; do [ "${RC[$s]}" = 0 ] || [ "$s" = models ] || exit 1; done
