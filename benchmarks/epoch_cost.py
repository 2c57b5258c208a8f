"""What epoch checks cost a real program, and what wasmtime 50's settings change: ``python -m benchmarks.epoch_cost``.

The program is LZ4 (kernels/lz4/: the LZ4 library and a driver, C -> wasm32-wasi,
kernels/build.sh) compressing and decompressing 512 KiB of generated text, with
LZ4's fast compressor and with its high-compression one at level 9. It runs on
wasmpy (its default engine, which checks epochs, and ``epoch_interruption=False``)
and on the ``wasmtime`` package in the settings that could make the checks
cheaper or replace them (see VARIANTS): the package reaches every option of
wasmtime's C API, so each setting is tried there, against the package's own
defaults, and wasmpy's two columns say whether the binding adds anything.

Per variant: the time of one run (the CPU time of the thread that runs it,
which a loaded machine blurs less than wall-clock time; median over rounds in
which the variants take turns, in one process), and with ``--instructions`` the
instructions of one run counted by callgrind (deterministic: what a loaded
machine cannot blur), the compile time of the module and the size of its
compiled code. Ratios are against the same binding without epoch checks.

    python -m benchmarks.epoch_cost [--rounds 11] [--instructions] [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from . import SCRATCH

HERE = Path(__file__).resolve().parent
KERNEL = HERE / "kernels" / "lz4.wasm"
DEFAULT_JSON = SCRATCH / "epoch_cost.json"
DATA_BYTES = 512 * 1024
QUICK_DATA_BYTES = 32 * 1024
DATA_SEED = 20241
HC_LEVEL = 9
LEVELS = {"lz4_fast": 0, "lz4_hc": HC_LEVEL}   # lz4bench_run's argument: 0 = the fast compressor only
CALLGRIND_TIMEOUT = 1800
RUN_INSTRUCTIONS_AT_LEAST = 100_000   # a run of the kernel (millions), not a call that converts values


@dataclass(frozen=True)
class Variant:
    name: str
    what: str
    binding: str                                 # "wasmpy" or "wasmtime" (the package)
    options: Dict[str, Any] = field(default_factory=dict)
    baseline: Optional[str] = None               # the variant its ratios are against


VARIANTS = [
    Variant("wasmpy", "wasmpy's default engine: epoch checks on (deadlines, Ctrl-C)", "wasmpy",
            baseline="wasmpy-noepoch"),
    Variant("wasmpy-noepoch", "wasmpy, Engine(epoch_interruption=False)", "wasmpy", {"epoch_interruption": False}),
    Variant("wasmtime", "the wasmtime package's defaults: no epoch checks", "wasmtime"),
    Variant("wasmtime-epoch", "the package, epoch_interruption", "wasmtime", {"epoch_interruption": True},
            baseline="wasmtime"),
    Variant("wasmtime-nomove", "the package, memory_may_move=False (as wasmpy's engines)", "wasmtime",
            {"memory_may_move": False}, baseline="wasmtime"),
    Variant("wasmtime-epoch-nomove", "the package in wasmpy's settings: epochs, memory_may_move=False", "wasmtime",
            {"epoch_interruption": True, "memory_may_move": False}, baseline="wasmtime-nomove"),
    Variant("wasmtime-epoch-size", "epochs, cranelift_opt_level='speed_and_size'", "wasmtime",
            {"epoch_interruption": True, "cranelift_opt_level": "speed_and_size"}, baseline="wasmtime-size"),
    Variant("wasmtime-size", "cranelift_opt_level='speed_and_size', no epochs", "wasmtime",
            {"cranelift_opt_level": "speed_and_size"}, baseline="wasmtime"),
    Variant("wasmtime-epoch-nosignals", "epochs, signals_based_traps=False (explicit bounds checks)", "wasmtime",
            {"epoch_interruption": True, "signals_based_traps": False}, baseline="wasmtime-nosignals"),
    Variant("wasmtime-nosignals", "signals_based_traps=False, no epochs", "wasmtime",
            {"signals_based_traps": False}, baseline="wasmtime"),
    Variant("wasmtime-fuel", "fuel instead of epochs (consume_fuel, a store with 2**62 fuel)", "wasmtime",
            {"consume_fuel": True}, baseline="wasmtime"),
]
BY_NAME = {variant.name: variant for variant in VARIANTS}


class Loaded:
    """The LZ4 kernel instantiated in one variant: ``run(level)`` calls ``lz4bench_run``."""

    def __init__(self, variant: Variant, wasm: Optional[bytes] = None, artifact: Optional[Path] = None) -> None:
        self.variant = variant
        if variant.binding == "wasmpy":
            import wasmpy
            self.engine = wasmpy.Engine(**variant.options) if variant.options else wasmpy.Engine.default()
            self.module = (wasmpy.Module(wasm, self.engine) if artifact is None
                           else wasmpy.Module.deserialize_file(artifact, self.engine))
            exports = wasmpy.Instance(self.module, None, wasmpy.Store(self.engine)).exports
            self._call: Callable[..., Any] = lambda name, *args: exports[name](*args)
        else:
            import wasmtime
            config = wasmtime.Config()
            for name, value in variant.options.items():
                setattr(config, name, value)
            self.engine = wasmtime.Engine(config)
            self.module = (wasmtime.Module(self.engine, wasm) if artifact is None
                           else wasmtime.Module.deserialize_file(self.engine, str(artifact)))
            store = wasmtime.Store(self.engine)
            if variant.options.get("epoch_interruption"):
                store.set_epoch_deadline(2**62)
            if variant.options.get("consume_fuel"):
                store.set_fuel(2**62)
            exports = wasmtime.Instance(store, self.module, []).exports(store)
            self._call = lambda name, *args: exports[name](store, *args)
        self._call("_initialize")
        self.functions = {name: self._function(name) for name in ("lz4bench_run",)}

    def _function(self, name: str) -> Callable[..., Any]:
        call = self._call
        return lambda *args: call(name, *args)

    def setup(self, size: int) -> None:
        if self._call("lz4bench_setup", size, DATA_SEED) != 0:
            raise RuntimeError(f"{self.variant.name}: lz4bench_setup({size}) failed")

    def run(self, level: int) -> int:
        result = self.functions["lz4bench_run"](level)
        if result < 0:
            raise RuntimeError(f"{self.variant.name}: lz4bench_run({level}) failed with {result}")
        return result

    def serialize(self) -> bytes:
        return self.module.serialize()


def _timed(fn: Callable[[], Any]) -> float:
    """The CPU time of the calling thread, where wasm runs, in ms: on a loaded machine it leaves out the
    time the thread waits for a CPU, which wall-clock time does not."""
    start = time.thread_time_ns()
    fn()
    return (time.thread_time_ns() - start) / 1e6


def compile_figures(wasm: bytes, variants: List[Variant], repeats: int) -> Dict[str, Dict[str, float]]:
    """Per variant: the median CPU time (of all threads) to compile and instantiate the kernel (ms)
    and the size of its machine code (the
    artifact's .text section: the artifact's own size moves in whole pages)."""
    from .load import text_section_bytes
    out: Dict[str, Dict[str, float]] = {}
    times: Dict[str, List[float]] = {variant.name: [] for variant in variants}
    with tempfile.TemporaryDirectory(prefix="wasmpy-epoch-cost-") as tmp:
        for _ in range(repeats):
            for variant in variants:
                start = time.process_time_ns()   # every thread's: wasmtime compiles in parallel
                loaded = Loaded(variant, wasm)
                times[variant.name].append((time.process_time_ns() - start) / 1e6)
                artifact = Path(tmp) / "artifact.cwasm"
                artifact.write_bytes(loaded.serialize())
                out[variant.name] = {"code_bytes": text_section_bytes(artifact)}
    for variant in variants:
        out[variant.name]["compile_cpu_ms"] = statistics.median(times[variant.name])
    return out


def wall_clock(wasm: bytes, variants: List[Variant], size: int, rounds: int,
               log: Callable[[str], None]) -> Tuple[Dict[str, Dict[str, float]], Dict[str, Any]]:
    """Per variant and row: the median ms (thread CPU time) of one run, the variants taking turns in
    each round."""
    loaded = {}
    for variant in variants:
        loaded[variant.name] = Loaded(variant, wasm)
        loaded[variant.name].setup(size)
    results = {row: {name: inst.run(level) for name, inst in loaded.items()} for row, level in LEVELS.items()}
    for row, by_variant in results.items():
        if len(set(by_variant.values())) != 1:
            raise RuntimeError(f"the variants disagree on {row}: {by_variant}")
    samples: Dict[str, Dict[str, List[float]]] = {row: {name: [] for name in loaded} for row in LEVELS}
    names = list(loaded)
    for index in range(rounds):
        order = names[index % len(names):] + names[:index % len(names)]
        for row, level in LEVELS.items():
            for name in order:
                samples[row][name].append(_timed(lambda: loaded[name].run(level)))
        log(f"  round {index + 1}/{rounds}")
    medians = {row: {name: statistics.median(values) for name, values in by_name.items()}
               for row, by_name in samples.items()}
    return medians, {"samples_ms": samples, "results": {row: next(iter(v.values())) for row, v in results.items()}}


CALLGRIND_CHILD = """
import sys
sys.path[:0] = {paths!r}
from benchmarks.epoch_cost import BY_NAME, KERNEL, LEVELS, Loaded
loaded = Loaded(BY_NAME[{variant!r}], KERNEL.read_bytes())
loaded.setup({size})
for level in LEVELS.values():
    loaded.run(level)
"""


def _callgrind_total(path: Path) -> int:
    for line in path.read_text().splitlines():
        if line.startswith("totals:") or line.startswith("summary:"):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in the callgrind dump {path}")


def instructions(variants: List[Variant], size: int, log: Callable[[str], None]) -> Dict[str, Dict[str, int]]:
    """Per variant and row: the instructions of one run, counted by callgrind in a child interpreter
    that compiles the kernel (under valgrind: valgrind's CPU has other features than the host's, so
    wasmtime refuses code compiled outside) and collects only inside the C API function the binding
    calls wasm through, with a dump after each call: ``_initialize``, setup, then one per row."""
    from .instructions import valgrind_path
    import wasmpy
    valgrind = valgrind_path()
    paths = [str(Path(wasmpy.__file__).resolve().parent.parent), str(HERE.parent)]
    out: Dict[str, Dict[str, int]] = {}
    with tempfile.TemporaryDirectory(prefix="wasmpy-epoch-cost-") as tmp:
        for variant in variants:
            dumps = Path(tmp) / f"{variant.name}.callgrind"
            code = CALLGRIND_CHILD.format(paths=paths, variant=variant.name, size=size)
            # The function each binding calls wasm through (--dump-after takes no wildcard): the
            # package's ctypes calls show in callgrind as libffi's ffi_call (not as the C API's names),
            # so its windows are all its C calls, of which a run's are the last big ones.
            entry = "wasmtime_func_call_unchecked" if variant.binding == "wasmpy" else "ffi_call"
            command = [valgrind, "--tool=callgrind", "--collect-atstart=no", f"--toggle-collect={entry}",
                       f"--dump-after={entry}", f"--callgrind-out-file={dumps}", sys.executable, "-c", code]
            started = time.perf_counter()
            done = subprocess.run(command, capture_output=True, text=True, timeout=CALLGRIND_TIMEOUT)
            if done.returncode != 0:
                raise RuntimeError(f"callgrind ({variant.name}) failed:\n{done.stderr[-3000:]}")
            numbered = sorted(Path(tmp).glob(f"{variant.name}.callgrind.*"), key=lambda p: int(p.suffix[1:]))
            counts = [count for count in map(_callgrind_total, numbered) if count >= RUN_INSTRUCTIONS_AT_LEAST]
            if len(counts) < len(LEVELS):
                raise RuntimeError(f"{variant.name}: {len(counts)} callgrind windows of a run, expected at least "
                                   f"{len(LEVELS)}")
            counts = counts[-len(LEVELS):]
            out[variant.name] = dict(zip(LEVELS, counts))
            log(f"  {variant.name}: " + ", ".join(f"{row} {count / 1e6:.1f} M" for row, count in out[variant.name].items())
                + f"  ({time.perf_counter() - started:.0f} s)")
    return out


def _ratio(figures: Dict[str, float], variant: Variant) -> Optional[float]:
    if variant.baseline is None or variant.baseline not in figures or variant.name not in figures:
        return None
    return figures[variant.name] / figures[variant.baseline]


def paired_ratios(samples: Dict[str, Dict[str, List[float]]]) -> Dict[str, Dict[str, float]]:
    """Per variant with a baseline and row: the median over rounds of its time over its baseline's in
    the same round (the machine's load drifts less within a round than across them)."""
    out: Dict[str, Dict[str, float]] = {}
    for variant in VARIANTS:
        if variant.baseline is None:
            continue
        for row, by_name in samples.items():
            if variant.name in by_name and variant.baseline in by_name:
                out.setdefault(variant.name, {})[row] = statistics.median(
                    a / b for a, b in zip(by_name[variant.name], by_name[variant.baseline]))
    return out


def report(document: Dict[str, Any]) -> str:
    variants = [BY_NAME[name] for name in document["variants"]]
    lines = [f"LZ4 on {document['data_bytes'] // 1024} KiB of text (fast: compress + decompress; hc: the same, "
             f"then LZ4 HC level {HC_LEVEL} + decompress); 'x': against the baseline variant (for times: "
             "the median over rounds of the two times' ratio in the same round)"]
    header = f"{'variant':<26}"
    for row in LEVELS:
        header += f" {row + ' ms':>12} {'x':>6}"
        if document.get("instructions"):
            header += f" {row + ' Minstr':>16} {'x':>6}"
    header += f" {'compile CPU':>11} {'.text bytes':>11}  baseline"
    lines.append(header)
    for variant in variants:
        line = f"{variant.name:<26}"
        for row in LEVELS:
            wall = {name: figures[row] for name, figures in document["wall_ms"].items()}
            ratio = document["wall_ratios"].get(variant.name, {}).get(row)
            line += f" {wall[variant.name]:12.2f} {'' if ratio is None else f'{ratio:.3f}':>6}"
            if document.get("instructions"):
                counts = {name: figures[row] for name, figures in document["instructions"].items()}
                ratio = _ratio(counts, variant)
                line += f" {counts[variant.name] / 1e6:16.1f} {'' if ratio is None else f'{ratio:.3f}':>6}"
        built = document["compile"][variant.name]
        line += f" {built['compile_cpu_ms']:11.1f} {built['code_bytes']:11,}  {variant.baseline or ''}"
        lines.append(line)
    lines += ["", *[f"  {variant.name}: {variant.what}" for variant in variants],
              "  compile CPU: ms of CPU time, all threads, for Module(wasm) + instantiation, median; .text bytes: the machine code in the "
              "compiled artifact"]
    return "\n".join(lines)


def run(rounds: int, with_instructions: bool, quick: bool, json_path: Optional[Path],
        log: Callable[[str], None] = print) -> Dict[str, Any]:
    wasm = KERNEL.read_bytes()
    size = QUICK_DATA_BYTES if quick else DATA_BYTES
    variants = VARIANTS
    log(f"compiling the kernel ({len(wasm):,} bytes) in {len(variants)} variants")
    compiled = compile_figures(wasm, variants, 1 if quick else 5)
    log(f"timing, {rounds} rounds")
    wall, details = wall_clock(wasm, variants, size, rounds, log)
    wall_by_variant = {variant.name: {row: wall[row][variant.name] for row in LEVELS} for variant in variants}
    document: Dict[str, Any] = {
        "benchmark": "epoch_cost", "kernel": str(KERNEL.relative_to(HERE.parent)), "kernel_bytes": len(wasm),
        "data_bytes": size, "hc_level": HC_LEVEL, "rounds": rounds, "quick": quick,
        "variants": [variant.name for variant in variants],
        "what": {variant.name: {"what": variant.what, "binding": variant.binding, "options": variant.options,
                                "baseline": variant.baseline} for variant in variants},
        "wall_ms": wall_by_variant, "wall_ratios": paired_ratios(details["samples_ms"]),
        "compile": compiled, "details": details,
        "python": sys.version.split()[0], "machine": platform.machine(), "cpus": os.cpu_count(),
    }
    if with_instructions:
        log("counting instructions with callgrind (a child per variant, about a minute each)")
        try:
            document["instructions"] = instructions(variants, size, log)
        except Exception as error:   # keep the timings
            document["instructions_error"] = f"{type(error).__name__}: {error}"
            log(f"!! counting failed: {document['instructions_error']}")
    log("")
    log(report(document))
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(document, indent=2) + "\n")
        log(f"wrote {json_path}")
    return document


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.epoch_cost", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, help="timing rounds (default 11, 2 with --quick)")
    parser.add_argument("--instructions", action="store_true", help="also count instructions with callgrind")
    parser.add_argument("--quick", action="store_true", help="32 KiB of data and few rounds: a smoke test")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON,
                        help=f"where to write the figures (default {DEFAULT_JSON.relative_to(HERE.parent)})")
    args = parser.parse_args(argv)
    rounds = args.rounds or (2 if args.quick else 11)
    if rounds < 1:
        parser.error("--rounds must be positive")
    try:
        import wasmtime  # noqa: F401
    except ImportError as error:
        print(f"python -m benchmarks.epoch_cost needs the wasmtime package ({error}): "
              "pip install 'wasmtime==50.0.1'", file=sys.stderr)
        return 2
    run(rounds, args.instructions, args.quick, args.json, lambda line: print(line, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
