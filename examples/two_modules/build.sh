#!/bin/sh
# Rebuilds one.wasm (Debian's rustc with libstd-rust-dev-wasm32; the rustup
# toolchain usually on PATH lacks wasm32) and two.wasm (wabt's wat2wasm).
set -e
cd "$(dirname "$0")"
/usr/bin/rustc --target=wasm32-unknown-unknown --crate-type=cdylib -O -C strip=symbols one.rs
wat2wasm two.wat -o two.wasm
