#!/bin/sh
# Rebuilds gcd.wasm from gcd.wat with wabt's wat2wasm (Debian package wabt).
set -e
cd "$(dirname "$0")"
wat2wasm gcd.wat -o gcd.wasm
