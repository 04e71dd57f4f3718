#!/usr/bin/env bash
# bench/gpu_check.sh - the one-shot check of the CUDA backend on a GPU machine:
# build (make -j16 B=build/gpu), the CUDA tests (test_sdc cuda, verbose: every
# op's measured error beside its tolerance), then bench_cuda (ops at SD 1.5 /
# SDXL shapes beside the cuBLAS GEMM ceiling). Everything goes to
# $OUT/gpu_check.log (or build/gpu/gpu_check.log) and a summary closes it.
# Bounded: build ~2-3 min on 16 cores, tests < 2 min, bench < 3 min.
#
# Machines without sdc's C libraries (the device image has nvcc but maybe not
# libcjson-dev & co.): carry the .debs made by bench/gpu_debs.sh (default
# build/gpu-debs, or SDC_GPU_DEBS); they are unpacked into build/gpu/deps and
# put on the include/library paths. If the full build still fails, the CUDA
# test and benchmark are linked alone from the objects that did build (they
# need only the backend, the harness and OpenBLAS).
set -u
cd "$(dirname "$0")/.."
B=${SDC_GPU_BUILD:-build/gpu}  # overridable only to try the script elsewhere
J=${SDC_GPU_JOBS:-16}
LOGDIR=${OUT:-$B}
mkdir -p "$LOGDIR" "$B"
LOG=$LOGDIR/gpu_check.log
exec > >(tee "$LOG") 2>&1
T0=$(date +%s)
stamp() { echo "[$(($(date +%s) - T0))s] $*"; }

stamp "gpu_check: $(uname -m), $(nproc) cores"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 | head -3
NVCC=$(command -v nvcc 2>/dev/null || ls /usr/local/cuda/bin/nvcc 2>/dev/null || true)
[ -n "$NVCC" ] && "$NVCC" --version | tail -2

# sdc's C libraries: the system's, or the carried debs
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
        stamp "WARNING: sdc's C libraries missing and no debs carried (bench/gpu_debs.sh makes them)"
    fi
fi

stamp "build: make -j$J B=$B (CUDA auto)"
make -k -j$J B=$B $B/sdc $B/test_sdc $B/bench_cuda > "$B/build.log" 2>&1
BUILD_RC=$?
grep -E "warning|error" "$B/build.log" | head -40
stamp "build rc=$BUILD_RC"
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

TEST_RC=-1
if [ -x "$TEST_BIN" ]; then
    stamp "tests: SDC_TEST_VERBOSE=1 $TEST_BIN cuda"
    SDC_TEST_VERBOSE=1 SDC_BIN=$B/sdc timeout 240 "$TEST_BIN" cuda
    TEST_RC=$?
    stamp "tests rc=$TEST_RC"
fi
BENCH_RC=-1
if [ -x "$BENCH_BIN" ]; then
    stamp "benchmark: $BENCH_BIN"
    timeout 200 "$BENCH_BIN"
    BENCH_RC=$?
    stamp "benchmark rc=$BENCH_RC"
fi

echo
echo "==== gpu_check summary ===="
echo "gpu:       $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)"
echo "build:     rc=$BUILD_RC (log $B/build.log)"
echo "tests:     rc=$TEST_RC ($(grep -cE '^ok ' "$LOG") ok, $(grep -cE '^FAIL ' "$LOG") FAIL, $(grep -cE '^skip ' "$LOG") skip)"
grep -E '^FAIL ' "$LOG" | sed 's/^/           /'
echo "bench:     rc=$BENCH_RC; $(grep -m1 '^ceiling:' "$LOG")"
echo "elapsed:   $(($(date +%s) - T0)) s"
[ "$TEST_RC" = 0 ] && [ "$BENCH_RC" = 0 ]
