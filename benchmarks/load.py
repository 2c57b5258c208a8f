"""Loading big compiled code: wasmpy's warm import and ``deserialize_file`` against the wasmtime package's.

Builds, into a cache under build/benchmarks/load/ (never committed), a module
with more than 50 MB of machine code (generated WAT, the functions of
import_cache.generate_wat), fills wasmpy's import-hook cache with it (one
compilation, in a child that imports it) and compiles it once more with the
``wasmtime`` package, on a configuration that matches wasmpy's default engine
(epoch interruption on, memories that never move), writing the package's own
``Module.serialize()`` beside it. Both artifacts are kept for later runs and
rebuilt when missing.

Then, in fresh processes, several rounds in turns, it measures:

- ``hook``: ``import big`` through wasmpy's import hook, its cache filled (the
  import makes the default Engine, maps the cached artifact and instantiates it);
- ``wasmpy_deserialize_file``: ``wasmpy.Module.deserialize_file`` of the
  hook's artifact, on an Engine made beforehand;
- ``wasmtime_deserialize_file``: the package's ``Module.deserialize_file`` of
  its own artifact, on an Engine made beforehand;
- ``wasmpy_import`` / ``wasmtime_import``: ``import wasmpy`` / ``import wasmtime``
  alone, and ``python``: an interpreter that does nothing, for what each
  process's figures include.

Each child times its step itself (``time.perf_counter``: the operation only,
not the library's import or the Engine, which are timed apart) and reads its
peak resident memory, ``VmHWM`` of /proc/self/status, at the end: that peak is
the whole process's (interpreter, libraries and the load). The figures are
medians over the rounds; the targets (issue 14): the warm import within 2x of
the package's ``deserialize_file`` time and within 1.5x of its peak RSS.

    python -m benchmarks.load [--rounds 5] [--functions 64000] [--cache DIR] [--json PATH] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from . import SCRATCH

HERE = Path(__file__).resolve().parent
CACHE = SCRATCH / "load"            # the generated module and both artifacts, kept between runs
DEFAULT_JSON = SCRATCH / "load.json"
DEFAULT_FUNCTIONS = 64_000          # about 55 MB of machine code (about 870 bytes each)
QUICK_FUNCTIONS = 300
MIN_CODE_BYTES = 50_000_000         # the "at least 50 MB of code": the artifact's .text section
TARGET_TIME_RATIO = 2.0
TARGET_RSS_RATIO = 1.5
CHILD_TIMEOUT = 900                 # seconds: a cold import compiles the whole module

# One child per measurement: argv[1] is a JSON object {"step": ..., "directory": ..., "artifact": ...}.
CHILD = r"""
import json, sys, time
perf = time.perf_counter

def peak_kib():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None

job = json.loads(sys.argv[1])
step = job["step"]
out = {}
if step == "python":
    pass
elif step in ("wasmpy_import", "hook", "wasmpy_deserialize_file"):
    start = perf()
    import wasmpy
    out["library_import_s"] = perf() - start
    if step == "hook":
        sys.path.insert(0, job["directory"])
        out["peak_before_kib"] = peak_kib()
        start = perf()
        import big
        out["load_s"] = perf() - start
        out["peak_kib"] = peak_kib()
        out["result"] = big.run(3, 4)
    elif step == "wasmpy_deserialize_file":
        start = perf()
        engine = wasmpy.Engine.default()
        out["engine_s"] = perf() - start
        out["peak_before_kib"] = peak_kib()
        start = perf()
        module = wasmpy.Module.deserialize_file(job["artifact"], engine)
        out["load_s"] = perf() - start
        out["peak_kib"] = peak_kib()
        start = perf()
        instance = wasmpy.Instance(module)
        out["instantiate_s"] = perf() - start
        out["result"] = instance.exports.run(3, 4)
elif step in ("wasmtime_import", "wasmtime_deserialize_file"):
    start = perf()
    import wasmtime
    out["library_import_s"] = perf() - start
    if step == "wasmtime_deserialize_file":
        start = perf()
        config = wasmtime.Config()
        config.epoch_interruption = True
        config.memory_may_move = False
        engine = wasmtime.Engine(config)
        out["engine_s"] = perf() - start
        out["peak_before_kib"] = peak_kib()
        start = perf()
        module = wasmtime.Module.deserialize_file(engine, job["artifact"])
        out["load_s"] = perf() - start
        out["peak_kib"] = peak_kib()
        start = perf()
        store = wasmtime.Store(engine)
        store.set_epoch_deadline(2**62)
        instance = wasmtime.Instance(store, module, [])
        out["instantiate_s"] = perf() - start
        out["result"] = instance.exports(store)["run"](store, 3, 4)
else:
    raise SystemExit(f"unknown step {step!r}")
out.setdefault("peak_kib", peak_kib())
print(json.dumps(out))
"""

STEPS = ["python", "wasmpy_import", "wasmtime_import", "hook", "wasmpy_deserialize_file",
         "wasmtime_deserialize_file"]
WHAT = {
    "python": "an interpreter that does nothing (its start-up memory)",
    "wasmpy_import": "import wasmpy",
    "wasmtime_import": "import wasmtime (the package)",
    "hook": "import big, warm (after import wasmpy): default Engine + map the cache + instantiate",
    "wasmpy_deserialize_file": "wasmpy.Module.deserialize_file (Engine made before)",
    "wasmtime_deserialize_file": "wasmtime.Module.deserialize_file (Engine made before)",
}


def text_section_bytes(artifact: Path) -> int:
    """The size of the ELF ``.text`` section of a wasmtime artifact: the machine code."""
    with open(artifact, "rb") as file:
        header = file.read(64)
        section_headers, = struct.unpack_from("<Q", header, 0x28)
        entry_size, entries, names_index = struct.unpack_from("<HHH", header, 0x3A)
        file.seek(section_headers)
        table = file.read(entry_size * entries)
        sections = [struct.unpack_from("<IIQQQQ", table, index * entry_size) for index in range(entries)]
        names = sections[names_index]
        file.seek(names[4])
        strings = file.read(names[5])
    for name_offset, _kind, _flags, _address, _offset, size in sections:
        if strings[name_offset:strings.index(b"\0", name_offset)] == b".text":
            return size
    raise RuntimeError(f"{artifact} has no .text section")


def _child_env() -> Dict[str, str]:
    import wasmpy
    package_root = str(Path(wasmpy.__file__).resolve().parent.parent)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")}
    env["PYTHONPATH"] = os.pathsep.join([package_root] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


def _child(job: Dict[str, Any], env: Dict[str, str]) -> Dict[str, Any]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(job)], env=env, capture_output=True, text=True,
                          timeout=CHILD_TIMEOUT)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"the child ({job['step']}) failed:\n{done.stderr[-4000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    figures["process_s"] = wall
    return figures


def _hook_artifacts(directory: Path) -> List[Path]:
    return sorted((directory / "__pycache__").glob("big.wasm.*.cwasm"))   # not the .meta sidecars


def prepare(functions: int, cache: Path = CACHE, log=print) -> Dict[str, Any]:
    """The module, wasmpy's (hook) artifact and the package's artifact, in ``cache``: built if missing."""
    import wasmpy
    import wasmtime
    from importlib.metadata import version

    from .import_cache import generate_wat

    directory = cache / f"functions-{functions}"
    directory.mkdir(parents=True, exist_ok=True)
    source = directory / "big.wasm"
    built: Dict[str, float] = {}
    if not source.exists():
        started = time.perf_counter()
        wasm = wasmpy.wat2wasm(generate_wat(functions))
        partial = source.with_suffix(".wasm.partial")
        partial.write_bytes(wasm)
        os.replace(partial, source)
        built["generate_s"] = time.perf_counter() - started
        log(f"generated {source} ({len(wasm):,} bytes) in {built['generate_s']:.0f} s")
    env = _child_env()
    # The first import compiles and fills the hook's cache (a stale one is rebuilt the same way).
    started = time.perf_counter()
    first = _child({"step": "hook", "directory": str(directory)}, env)
    built["first_import_s"] = time.perf_counter() - started
    artifacts = _hook_artifacts(directory)
    if not artifacts:
        raise RuntimeError(f"the import did not fill the hook's cache in {directory / '__pycache__'}")
    hook_artifact = max(artifacts, key=lambda path: path.stat().st_mtime_ns)   # the current engine's
    log(f"first import (fills the hook's cache if empty or stale): {first['load_s']:.1f} s")

    package_version = version("wasmtime")
    package_artifact = directory / f"big.wasmtime-package-{package_version}.cwasm"
    if not package_artifact.exists():
        started = time.perf_counter()
        config = wasmtime.Config()
        config.epoch_interruption = True    # wasmpy's default engine's settings
        config.memory_may_move = False
        engine = wasmtime.Engine(config)
        data = wasmtime.Module.from_file(engine, str(source)).serialize()
        partial = package_artifact.with_suffix(".partial")
        partial.write_bytes(data)
        os.replace(partial, package_artifact)
        built["package_compile_s"] = time.perf_counter() - started
        log(f"compiled it with the wasmtime package: {len(data):,} bytes in {built['package_compile_s']:.0f} s")
    return {"directory": directory, "source": source, "hook_artifact": hook_artifact,
            "package_artifact": package_artifact, "package_version": package_version,
            "wasmpy_wasmtime": wasmpy.WASMTIME_VERSION, "built": built, "first_result": first["result"]}


def _median(rounds: List[Dict[str, Any]], key: str) -> Optional[float]:
    values = [r[key] for r in rounds if r.get(key) is not None]
    return statistics.median(values) if values else None


def run(rounds: int, functions: int, json_path: Optional[Path], cache: Path = CACHE, log=print) -> Dict[str, Any]:
    prepared = prepare(functions, cache, log)
    code_bytes = {"hook": text_section_bytes(prepared["hook_artifact"]),
                  "wasmtime": text_section_bytes(prepared["package_artifact"])}
    big_enough = min(code_bytes.values()) >= MIN_CODE_BYTES
    log(f"machine code (.text): wasmpy's artifact {code_bytes['hook'] / 1e6:.1f} MB "
        f"({prepared['hook_artifact'].stat().st_size / 1e6:.1f} MB file), the package's "
        f"{code_bytes['wasmtime'] / 1e6:.1f} MB ({prepared['package_artifact'].stat().st_size / 1e6:.1f} MB file)"
        + ("" if big_enough else f"  -- under {MIN_CODE_BYTES / 1e6:.0f} MB: not the benchmark's size"))
    env = _child_env()
    jobs = {
        "python": {}, "wasmpy_import": {}, "wasmtime_import": {},
        "hook": {"directory": str(prepared["directory"])},
        "wasmpy_deserialize_file": {"artifact": str(prepared["hook_artifact"])},
        "wasmtime_deserialize_file": {"artifact": str(prepared["package_artifact"])},
    }
    measured: Dict[str, List[Dict[str, Any]]] = {step: [] for step in STEPS}
    for index in range(rounds):
        order = STEPS[index % len(STEPS):] + STEPS[:index % len(STEPS)]    # turns: no step always first
        for step in order:
            measured[step].append(_child({"step": step, **jobs[step]}, env))
        log(f"  round {index + 1}/{rounds}: import big {measured['hook'][-1]['load_s'] * 1000:.1f} ms, "
            f"wasmpy deserialize_file {measured['wasmpy_deserialize_file'][-1]['load_s'] * 1000:.1f} ms, "
            f"wasmtime deserialize_file {measured['wasmtime_deserialize_file'][-1]['load_s'] * 1000:.1f} ms")
    results = {r.get("result") for step in ("hook", "wasmpy_deserialize_file", "wasmtime_deserialize_file")
               for r in measured[step]} | {prepared["first_result"]}
    if len(results) != 1:
        raise RuntimeError(f"the loaded modules disagree: run(3, 4) gave {sorted(results)}")

    steps: Dict[str, Dict[str, Any]] = {}
    for step in STEPS:
        figures = {"what": WHAT[step]}
        for key in ("load_s", "library_import_s", "engine_s", "instantiate_s", "process_s", "peak_kib",
                    "peak_before_kib"):
            median = _median(measured[step], key)
            if median is not None:
                figures[key] = median
        figures["rounds"] = measured[step]
        steps[step] = figures
    hook, package = steps["hook"], steps["wasmtime_deserialize_file"]
    time_ratio = hook["load_s"] / package["load_s"]
    rss_ratio = hook["peak_kib"] / package["peak_kib"]
    document = {
        "benchmark": "load",
        "functions": functions,
        "module_bytes": prepared["source"].stat().st_size,
        "code_bytes": code_bytes,
        "artifact_bytes": {"hook": prepared["hook_artifact"].stat().st_size,
                           "wasmtime": prepared["package_artifact"].stat().st_size},
        "big_enough": big_enough,
        "rounds": rounds,
        "steps": steps,
        "targets": {
            "time_ratio": time_ratio, "target_time_ratio": TARGET_TIME_RATIO,
            "meets_time": time_ratio <= TARGET_TIME_RATIO,
            "rss_ratio": rss_ratio, "target_rss_ratio": TARGET_RSS_RATIO,
            "meets_rss": rss_ratio <= TARGET_RSS_RATIO,
            "deserialize_file_time_ratio": steps["wasmpy_deserialize_file"]["load_s"] / package["load_s"],
            "deserialize_file_rss_ratio": steps["wasmpy_deserialize_file"]["peak_kib"] / package["peak_kib"],
            # what the hook's import does, in the package: a new Store and Instance after deserialize_file
            "time_ratio_with_instance": hook["load_s"] / (package["load_s"] + package["instantiate_s"]),
        },
        "built": prepared["built"],
        "python": sys.version.split()[0],
        "wasmtime": prepared["wasmpy_wasmtime"],
        "wasmtime_package": prepared["package_version"],
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }
    log("")
    log(report(document))
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(document, indent=2) + "\n")
        log(f"wrote {json_path}")
    return document


def report(document: Dict[str, Any]) -> str:
    """The figures as a table, then the targets."""
    lines = [f"median of {document['rounds']} fresh processes each; peak RSS = the process's VmHWM at the end",
             f"{'step':<26} {'time':>10} {'library':>9} {'engine':>8} {'instance':>9} {'peak RSS':>10} "
             f"{'its step':>9} {'process':>9}  what"]
    for step, figures in document["steps"].items():
        def ms(key: str) -> str:
            return f"{figures[key] * 1000:.1f} ms" if key in figures else "-"
        added = (f"{(figures['peak_kib'] - figures['peak_before_kib']) / 1024:+5.1f} MiB"
                 if "peak_before_kib" in figures else "-")
        lines.append(f"{step:<26} {ms('load_s'):>10} {ms('library_import_s'):>9} {ms('engine_s'):>8} "
                     f"{ms('instantiate_s'):>9} {figures['peak_kib'] / 1024:6.0f} MiB {added:>9} "
                     f"{ms('process_s'):>9}  {figures['what']}")
    targets = document["targets"]
    lines += [
        "",
        f"warm import / package deserialize_file, time: {targets['time_ratio']:.2f}x "
        f"(target at most {targets['target_time_ratio']:g}x){'' if targets['meets_time'] else '  -- MISSED'}",
        f"warm import / package deserialize_file, peak RSS: {targets['rss_ratio']:.2f}x "
        f"(target at most {targets['target_rss_ratio']:g}x){'' if targets['meets_rss'] else '  -- MISSED'}",
        f"wasmpy deserialize_file / package deserialize_file: time {targets['deserialize_file_time_ratio']:.2f}x, "
        f"peak RSS {targets['deserialize_file_rss_ratio']:.2f}x",
        f"warm import / package deserialize_file + Store + Instance (what the import does): "
        f"{targets['time_ratio_with_instance']:.2f}x",
        "'time' excludes the library's import ('library') and, for deserialize_file, the Engine ('engine') "
        "and instantiating after it ('instance'); "
        "the hook's includes its Engine and instantiating; peak RSS includes the interpreter and the library, "
        "'its step' is what the step added to it (median peak after minus median peak before the step)",
    ]
    if not document["big_enough"]:
        lines.append(f"NOTE: under {MIN_CODE_BYTES / 1e6:.0f} MB of machine code: not the benchmark's size "
                     "(--quick or a small --functions)")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, help="fresh processes per measurement (default 5, 1 with --quick)")
    parser.add_argument("--functions", type=int,
                        help=f"functions in the generated module (default {DEFAULT_FUNCTIONS:,}, over "
                        f"{MIN_CODE_BYTES / 1e6:.0f} MB of code; {QUICK_FUNCTIONS} with --quick)")
    parser.add_argument("--quick", action="store_true", help="a small module and one round: a smoke test")
    parser.add_argument("--cache", type=Path, default=CACHE,
                        help=f"where the module and its artifacts are built and kept (default "
                        f"{CACHE.relative_to(HERE.parent)})")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON,
                        help=f"where to write the figures (default {DEFAULT_JSON.relative_to(HERE.parent)})")
    args = parser.parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 5)
    functions = args.functions or (QUICK_FUNCTIONS if args.quick else DEFAULT_FUNCTIONS)
    if rounds < 1 or functions < 1:
        parser.error("--rounds and --functions must be positive")
    try:
        import wasmtime  # noqa: F401
    except ImportError as error:
        print(f"python -m benchmarks.load needs the wasmtime package ({error}): pip install 'wasmtime==50.0.1'",
              file=sys.stderr)
        return 2
    run(rounds, functions, args.json, args.cache, lambda line: print(line, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
