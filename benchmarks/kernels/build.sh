#!/bin/sh
# Rebuilds the committed kernels: NAME.c -> NAME.wasm (freestanding wasm32, every symbol exported),
# and lz4/ -> lz4.wasm (LZ4 and a driver, wasm32-wasi against wasi-libc, a reactor importing nothing).
# Needs clang, wasm-ld and wasi-libc (Debian/Ubuntu: apt-get install -y clang lld wasi-libc).
set -eu
cd "$(dirname "$0")"
CLANG=${CLANG:-clang}
for source in nbody.c hash.c; do
    "$CLANG" --target=wasm32 -O2 -nostdlib -Wl,--no-entry -Wl,--export-all -o "${source%.c}.wasm" "$source"
    echo "built ${source%.c}.wasm ($(wc -c < "${source%.c}.wasm") bytes)"
done
"$CLANG" --target=wasm32-wasi --sysroot="${WASI_SYSROOT:-/usr}" -O2 -DNDEBUG -mexec-model=reactor -Wl,--strip-all \
    -Wl,--export=lz4bench_setup,--export=lz4bench_run,--export=lz4bench_fast_size,--export=lz4bench_hc_size \
    -o lz4.wasm lz4/lz4bench.c lz4/lz4.c lz4/lz4hc.c
echo "built lz4.wasm ($(wc -c < lz4.wasm) bytes)"
