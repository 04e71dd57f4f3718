#!/bin/sh
# Install what `make fuzz` builds with: the libraries sdc links (install-deps.sh),
# Debian's clang and its compiler-rt (libFuzzer, the sanitizer runtimes).
# Skips apt when they are there.
# `make test` does not call this: without clang its fuzz step skips itself.
set -e
"$(dirname "$0")/install-deps.sh"
PKGS="clang libclang-rt-14-dev"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "installing:$missing"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
