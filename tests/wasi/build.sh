#!/bin/sh
# Rebuilds the WASI test programs (*.c -> *.wasm) in this directory; the
# .wasm files are committed, so the tests do not need the toolchain.
#
# Debian 12: apt-get install clang lld wasi-libc libclang-rt-dev-wasm32
# (Debian's wasi-libc puts its sysroot under /usr: /usr/include/wasm32-wasi and
# /usr/lib/wasm32-wasi). With wasi-sdk instead, set WASI_SYSROOT to its sysroot
# (e.g. /opt/wasi-sdk/share/wasi-sysroot) and CC to its clang.
#
# The programs print no floating-point numbers, so printf comes from wasi-libc's
# smaller libc-printscan-no-floating-point; symbols are stripped.
set -eu
cd "$(dirname "$0")"
CC=${CC:-clang}
WASI_SYSROOT=${WASI_SYSROOT:-/usr}
for source in *.c; do
    "$CC" --target=wasm32-wasi --sysroot="$WASI_SYSROOT" -O2 -Wall -Wextra -Werror \
        -Wl,--strip-all -o "${source%.c}.wasm" "$source" -lc-printscan-no-floating-point
    echo "built ${source%.c}.wasm ($(wc -c < "${source%.c}.wasm") bytes)"
done
