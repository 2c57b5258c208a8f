"""How much the import hook's compiled-code cache saves: `import big` cold vs warm.

Generates a WebAssembly module of a few megabytes (thousands of non-trivial
functions, written as WAT and converted with wasmpy.wat2wasm) into a
temporary directory, then times ``import big`` in new interpreters:

- cold: the cache file is deleted before each round, so the import compiles
  (and writes the cache, as a first import does);
- warm: the cache file is there, so the import only loads it.

Each round is a new process; the figure is the median over the rounds of the
time of the ``import big`` statement itself, measured inside the child (the
child's whole wall-clock time is recorded too). Prints both and the ratio,
and writes the figures as JSON.

    python -m benchmarks.import_cache [--rounds 5] [--functions 4000] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

import wasmpy

from . import RESULTS, SCRATCH

HERE = Path(__file__).resolve().parent
DEFAULT_JSON = SCRATCH / "import_cache.json"
RESULTS_JSON = RESULTS / "import_cache.json"  # the committed figures (python -m benchmarks --refresh)
PACKAGE_ROOT = Path(wasmpy.__file__).resolve().parent.parent
TARGET_RATIO = 20.0
MIN_MODULE_BYTES = 2 * 1024 * 1024

CHILD = """\
import json, sys, time
sys.path.insert(0, {directory!r})
import wasmpy
start = time.perf_counter()
import big
elapsed = time.perf_counter() - start
print(json.dumps({{"import_s": elapsed, "result": big.run(3, 4)}}))
"""


def _function(index: int, rng: random.Random) -> str:
    """A function with straight-line integer mixing, a loop, memory traffic and a call."""
    k = [rng.randrange(1, 2**31) for _ in range(48)]
    lines = [
        f"  (func $f{index} (param $a i32) (param $b i32) (result i32)",
        "    (local $c i32) (local $d i64) (local $i i32)",
        f"    (local.set $c (i32.xor (local.get $a) (i32.const {k[0]})))",
        "    (local.set $d (i64.extend_i32_u (local.get $b)))",
    ]
    for j in range(1, 41, 4):
        lines += [
            f"    (local.set $c (i32.add (i32.mul (local.get $c) (i32.const {k[j]})) (i32.const {k[j + 1]})))",
            f"    (local.set $c (i32.xor (local.get $c) (i32.shr_u (local.get $c) (i32.const {k[j + 2] % 31 + 1}))))",
            f"    (local.set $d (i64.add (i64.mul (local.get $d) (i64.const {k[j + 3]}))"
            f" (i64.extend_i32_u (local.get $c))))",
        ]
    lines += [
        "    (local.set $i (i32.and (local.get $b) (i32.const 7)))",
        "    (block $done",
        "      (loop $again",
        "        (br_if $done (i32.eqz (local.get $i)))",
        f"        (local.set $c (i32.rotl (i32.add (local.get $c) (local.get $i)) (i32.const {k[41] % 31 + 1})))",
        f"        (i32.store (i32.and (i32.mul (local.get $i) (i32.const {k[42]})) (i32.const 0xfffc))"
        f" (local.get $c))",
        "        (local.set $i (i32.sub (local.get $i) (i32.const 1)))",
        "        (br $again)))",
        f"    (if (i32.gt_u (i32.and (local.get $c) (i32.const 0xff)) (i32.const {k[43] % 256}))",
        f"      (then (local.set $c (i32.add (local.get $c) (i32.load (i32.const {k[44] % 65532 & ~3}))))))",
    ]
    if index:
        lines.append(f"    (local.set $c (i32.add (local.get $c) (call $f{index - 1} (local.get $c)"
                     f" (i32.wrap_i64 (local.get $d)))))")
    lines.append("    (i32.xor (local.get $c) (i32.wrap_i64 (i64.shr_u (local.get $d) (i64.const 17)))))")
    return "\n".join(lines)


def generate_wat(functions: int, seed: int = 1) -> str:
    rng = random.Random(seed)
    body = [_function(index, rng) for index in range(functions)]
    # Only a little is exported: the import's own work is compiling, not wrapping exports.
    return "\n".join([
        "(module",
        '  (memory (export "memory") 1)',
        *body,
        f'  (func (export "run") (param i32 i32) (result i32) (call $f{min(functions - 1, 50)}'
        " (local.get 0) (local.get 1))))",
    ])


def _child_env() -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")}
    env["PYTHONPATH"] = os.pathsep.join([str(PACKAGE_ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


def _import_once(directory: Path, env: Dict[str, str]) -> Dict[str, float]:
    code = CHILD.format(directory=str(directory))
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"the child interpreter failed:\n{done.stderr}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    figures["process_s"] = wall
    return figures


def _cache_files(directory: Path) -> List[Path]:
    return sorted((directory / "__pycache__").glob("big.wasm.*.cwasm"))  # the artifact, not its .meta sidecar


def run(rounds: int, functions: int, json_path: Path, keep: bool = False) -> Dict[str, object]:
    directory = Path(tempfile.mkdtemp(prefix="wasmpy-import-cache-"))
    try:
        started = time.perf_counter()
        wasm = wasmpy.wat2wasm(generate_wat(functions))
        (directory / "big.wasm").write_bytes(wasm)
        print(f"generated big.wasm: {len(wasm):,} bytes, {functions} functions "
              f"({time.perf_counter() - started:.1f} s) in {directory}")
        if len(wasm) < MIN_MODULE_BYTES:
            print(f"warning: the module is smaller than {MIN_MODULE_BYTES:,} bytes; use more --functions")
        env = _child_env()

        cold: List[Dict[str, float]] = []
        for index in range(rounds):
            shutil.rmtree(directory / "__pycache__", ignore_errors=True)
            cold.append(_import_once(directory, env))
            print(f"  cold {index + 1}/{rounds}: import {cold[-1]['import_s'] * 1000:8.1f} ms"
                  f"  (process {cold[-1]['process_s'] * 1000:8.1f} ms)")
        caches = _cache_files(directory)
        if len(caches) != 1:
            raise RuntimeError(f"expected one cache file after a cold import, found {caches}")
        warm: List[Dict[str, float]] = []
        for index in range(rounds):
            warm.append(_import_once(directory, env))
            print(f"  warm {index + 1}/{rounds}: import {warm[-1]['import_s'] * 1000:8.1f} ms"
                  f"  (process {warm[-1]['process_s'] * 1000:8.1f} ms)")
        results = {r["result"] for r in cold + warm}
        if len(results) != 1:
            raise RuntimeError(f"cold and warm imports disagree: big.run(3, 4) gave {sorted(results)}")

        cold_s = statistics.median(r["import_s"] for r in cold)
        warm_s = statistics.median(r["import_s"] for r in warm)
        cold_process_s = statistics.median(r["process_s"] for r in cold)
        warm_process_s = statistics.median(r["process_s"] for r in warm)
        ratio = cold_s / warm_s
        figures = {
            "benchmark": "import_cache",
            "module_bytes": len(wasm),
            "functions": functions,
            "cache_bytes": caches[0].stat().st_size,
            "rounds": rounds,
            "cold_import_s": cold_s,
            "warm_import_s": warm_s,
            "ratio": ratio,
            "target_ratio": TARGET_RATIO,
            "meets_target": ratio >= TARGET_RATIO,
            "cold_process_s": cold_process_s,
            "warm_process_s": warm_process_s,
            "process_ratio": cold_process_s / warm_process_s,
            "cold_rounds_import_s": [r["import_s"] for r in cold],
            "warm_rounds_import_s": [r["import_s"] for r in warm],
            "cold_rounds_process_s": [r["process_s"] for r in cold],
            "warm_rounds_process_s": [r["process_s"] for r in warm],
            "python": sys.version.split()[0],
            "wasmtime": wasmpy.WASMTIME_VERSION,
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
        }
        print(f"cold import (median of {rounds}): {cold_s * 1000:9.1f} ms")
        print(f"warm import (median of {rounds}): {warm_s * 1000:9.1f} ms")
        print(f"ratio cold/warm: {ratio:.1f}x (target: at least {TARGET_RATIO:.0f}x)"
              f"{'' if ratio >= TARGET_RATIO else '  -- BELOW TARGET'}")
        print(f"whole process, cold/warm: {cold_process_s * 1000:.0f} ms / {warm_process_s * 1000:.0f} ms "
              f"= {cold_process_s / warm_process_s:.1f}x")
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(figures, indent=2) + "\n")
        print(f"wrote {json_path}")
        return figures
    finally:
        if keep:
            print(f"kept {directory}")
        else:
            shutil.rmtree(directory, ignore_errors=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.import_cache", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="new processes per measurement (default 5)")
    parser.add_argument("--functions", type=int, default=4000,
                        help="functions in the generated module (default 4000, over 2 MB)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON,
                        help=f"where to write the figures (default {DEFAULT_JSON.relative_to(HERE.parent)})")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.functions < 1:
        parser.error("--rounds and --functions must be positive")
    run(args.rounds, args.functions, args.json, args.keep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
