#!/bin/sh
# bench/gpu_debs.sh - run on a Debian machine with network (a developer's):
# downloads the .deb files of sdc's C libraries (OpenBLAS, cJSON, libspng,
# utf8proc, libmicrohttpd, xxd) into DIR (default build/gpu-debs), for a GPU
# machine that has nvcc but neither these libraries nor internet. Name DIR in
# the device run's `carry`; bench/gpu_check.sh unpacks them when the build
# needs them (never into /).
set -e
DIR=${1:-build/gpu-debs}
mkdir -p "$DIR"
cd "$DIR"
apt-get download libopenblas-dev libopenblas-pthread-dev libopenblas0-pthread libopenblas0 libgfortran5 \
    libquadmath0 libcjson-dev libcjson1 libspng-dev libspng0 libutf8proc-dev libutf8proc2 libmicrohttpd-dev \
    libmicrohttpd12 xxd 2>&1 | grep -v '^W: Download is performed unsandboxed' || true
ls -1 *.deb | wc -l | xargs echo "debs in $DIR:"
