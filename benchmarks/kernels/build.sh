#!/bin/sh
# Rebuilds the committed kernels: NAME.c -> NAME.wasm (freestanding wasm32, every symbol exported).
# Needs clang and wasm-ld (Debian/Ubuntu: apt-get install -y clang lld).
set -eu
cd "$(dirname "$0")"
CLANG=${CLANG:-clang}
for source in nbody.c hash.c; do
    "$CLANG" --target=wasm32 -O2 -nostdlib -Wl,--no-entry -Wl,--export-all -o "${source%.c}.wasm" "$source"
    echo "built ${source%.c}.wasm ($(wc -c < "${source%.c}.wasm") bytes)"
done
