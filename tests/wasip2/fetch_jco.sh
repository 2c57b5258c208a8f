#!/bin/sh
# Fetches, from npm's @bytecodealliance/jco (Apache-2.0 WITH LLVM-exception), what the WASI 0.2
# tests use that nobody here wrote:
#   wasi_snapshot_preview1.command.wasm  the WASI preview 1 adapter that makes a wasm32-wasi
#                                        command a wasi:cli/command component (build.sh)
#   wit/                                 the WASI 0.2.12 WIT packages jco bundles (wasi-http and
#                                        what it uses), with their licence (wit/LICENSE.md)
# JCO_VERSION picks the release (default: the one these files came from).
set -eu
cd "$(dirname "$0")"
version="${JCO_VERSION:-1.35.0}"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
(cd "$scratch" && npm pack --silent "@bytecodealliance/jco@$version" >/dev/null && tar xzf ./*.tgz)
cp "$scratch/package/lib/wasi_snapshot_preview1.command.wasm" .
rm -rf wit
mkdir -p wit/deps
cp "$scratch/package/lib/wit/builtin/LICENSE.md" wit/LICENSE.md
for package in wasi-http wasi-io wasi-clocks wasi-random wasi-cli wasi-filesystem wasi-sockets; do
    mkdir -p "wit/deps/$package"
    cp "$scratch/package/lib/wit/builtin/0.2.12/$package/package.wit" "wit/deps/$package/"
done
echo "jco $version: $(wc -c < wasi_snapshot_preview1.command.wasm) bytes of adapter, $(ls wit/deps | wc -l) WIT packages"
