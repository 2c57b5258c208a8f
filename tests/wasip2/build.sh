#!/bin/sh
# Rebuilds command.wasm: command.c compiled by clang with Debian's wasi-libc, made a
# wasi:cli/command component by jco's WASI preview 1 adapter (fetch_jco.sh fetches it).
set -eu
cd "$(dirname "$0")"
clang --target=wasm32-wasi -O2 command.c -o command.core.wasm
wasm-tools component new command.core.wasm --adapt wasi_snapshot_preview1=wasi_snapshot_preview1.command.wasm -o command.wasm
rm command.core.wasm
wasm-tools validate command.wasm
