#!/bin/sh
# Install the Debian packages sdc builds against (compiler, OpenBLAS, cJSON,
# libspng, zlib, utf8proc). Skips apt when everything is already there.
set -e
PKGS="build-essential pkg-config libopenblas-dev libcjson-dev libspng-dev zlib1g-dev libutf8proc-dev"
# sdc serve: libmicrohttpd, xxd (embeds the web page); its browser test: chromium
PKGS="$PKGS libmicrohttpd-dev xxd chromium"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# the browser test's node/npm: the machine's own when present (Debian's npm conflicts with other builds)
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || missing="$missing nodejs npm"
[ -z "$missing" ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "installing:$missing"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
