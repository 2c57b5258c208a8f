#!/bin/sh
# Rebuilds demo.wasm from demo.rs with Debian's rustc (packages rustc and
# libstd-rust-dev-wasm32); the rustup toolchain usually on PATH lacks wasm32.
set -e
cd "$(dirname "$0")"
/usr/bin/rustc --target=wasm32-unknown-unknown --crate-type=cdylib -O -C strip=symbols demo.rs
