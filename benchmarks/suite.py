"""The benchmark groups: calls, values, compute, memory, instantiate, threads, components (components.py).

Each group measures wasmpy and the available peers on the same wasm bytes
(see modules.py) and returns a Group: rows of per-runtime medians, with the
raw figures for the JSON. Only public API is used, so the figures keep their
meaning whatever wasmpy's call path is made of.
"""

from __future__ import annotations

import functools
import hashlib
import os
import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

from . import modules
from .components import components
from .runtimes import Instance, Pywasm3, Runtime, WasmpyNoEpoch, WasmpyPooled, WasmtimeEpoch, _host, _host_ref
from .timing import Case, Result, Settings, measure

MIB = 1 << 20
NBODY_STEPS = 200_000
HASH_ROUNDS = 8
FIB_N = 30
FIB_RESULT = 832040
LZ4_BYTES = 512 * 1024      # of generated text, compressed and decompressed by the LZ4 kernel
LZ4_SEED = 20241
LZ4_HC_LEVEL = 9
NBODY_ENERGY_1000 = -0.169087605234606   # after nbody_init(); nbody_advance(1000, 0.01)

MEMCPY = "memcpy"  # the baseline column of the memory group: the same statement on a plain bytearray


@dataclass
class Row:
    key: str
    label: str
    unit: str                                   # how figures are shown: ns, µs, ms or GB/s
    medians: Dict[str, Optional[float]]         # ns per operation, per runtime (None: failed)
    results: Dict[str, Any] = field(default_factory=dict)   # raw figures per runtime, for the JSON
    bytes_per_op: int = 0                       # for GB/s
    errors: Dict[str, str] = field(default_factory=dict)

    def to_json(self) -> Dict[str, Any]:
        return {"label": self.label, "unit": self.unit, "bytes_per_op": self.bytes_per_op or None,
                "median_ns": self.medians, "results": self.results, "errors": self.errors or None}


@dataclass
class Group:
    name: str
    title: str
    rows: List[Row]
    notes: List[str] = field(default_factory=list)
    extra: Dict[str, Any] = field(default_factory=dict)   # group-specific figures
    seconds: float = 0.0

    def row(self, key: str) -> Optional[Row]:
        return next((row for row in self.rows if row.key == key), None)

    def to_json(self) -> Dict[str, Any]:
        return {"title": self.title, "seconds": self.seconds, "notes": self.notes,
                "benchmarks": {row.key: row.to_json() for row in self.rows}, **self.extra}


class Context:
    """The runtimes (available ones), the settings, and a log of what went wrong on the way."""

    def __init__(self, runtimes: List[Runtime], settings: Settings, quick: bool, log: Callable[[str], None]):
        self.runtimes = [rt for rt in runtimes if rt.available]
        self.settings = settings
        self.quick = quick
        self.log = log

    def with_columns(self, *extra: Runtime) -> List[Runtime]:
        """The runtimes, plus the available ones of ``extra``: runtimes in other settings, shown as
        columns of their own (the unavailable ones are logged)."""
        runtimes = list(self.runtimes)
        for runtime in extra:
            if runtime.available:
                runtimes.append(runtime)
            else:
                self.log(f"  no {runtime.name} column: {runtime.error}")
        return runtimes

    def instances(self, module: str, host: Optional[Callable] = None,
                  runtimes: Optional[List[Runtime]] = None, host_ref: Optional[Callable] = None) -> Dict[str, Any]:
        """An instance of ``module`` per runtime (an error string where instantiation failed)."""
        out: Dict[str, Any] = {}
        for rt in self.runtimes if runtimes is None else runtimes:
            try:
                out[rt.name] = rt.instantiate(modules.wasm(module), host, host_ref)
            except Exception as error:
                out[rt.name] = f"{type(error).__name__}: {error}"
                self.log(f"  {rt.name}: cannot instantiate {module}: {out[rt.name]}")
        return out


def _row(key: str, label: str, unit: str, results: Dict[str, Result], errors: Dict[str, str],
         bytes_per_op: int = 0) -> Row:
    errors = dict(errors)
    for name, result in results.items():
        if result.error is not None:
            errors[name] = result.error
    medians = {name: (result.median_ns if result.error is None else None) for name, result in results.items()}
    for name in errors:
        medians.setdefault(name, None)
    return Row(key, label, unit, medians, {name: result.to_json() for name, result in results.items()},
               bytes_per_op, errors)


def _checked_cases(instances: Dict[str, Any], check: Callable[[Instance], None],
                   make: Callable[[Instance], Callable], **case_options: Any):
    """Cases for the instances whose results are right; errors (failed check or instantiation) apart."""
    cases: Dict[str, Case] = {}
    errors: Dict[str, str] = {}
    for name, inst in instances.items():
        if isinstance(inst, str):
            errors[name] = inst
            continue
        try:
            check(inst)
            cases[name] = Case(make(inst), **case_options)
        except Exception as error:
            errors[name] = f"{type(error).__name__}: {error}"
    return cases, errors


def _expect(got: Any, want: Any, what: str) -> None:
    if isinstance(got, list):
        got = tuple(got)
    if got != want:
        raise AssertionError(f"{what} returned {got!r}, expected {want!r}")


# --- calls

CALLS = [
    # key, label, export, arguments (as written in the timed statement), expected result
    ("noop", "noop()", "noop", (), None),
    ("add_i32", "add(1, 2)  i32", "add", (1, 2), 3),
    ("add_i64", "add64(1, 2)  i64", "add64", (1, 2), 3),
    ("add_f64", "addf(1.0, 2.0)  f64", "addf", (1.0, 2.0), 3.0),
    ("sum5_i32", "sum5(1, 2, 3, 4, 5)  5 x i32", "sum5", (1, 2, 3, 4, 5), 15),
    ("two_results", "two() -> (i32, i32)", "two", (), (1, 2)),
    ("ident_i32", "ident(1)  plain call, i32 -> i32", "ident", (1,), 1),
    ("host_call", "callhost(1)  wasm -> Python -> wasm", "callhost", (1,), 1),
]
RELATIVE_TO_ADD = ["add_i64", "add_f64", "sum5_i32", "two_results"]


def calls(ctx: Context) -> Group:
    instances = ctx.instances("calls", host=_host)
    rows: List[Row] = []
    for key, label, export, values, want in CALLS:
        args = ", ".join(map(repr, values))

        def check(inst: Instance, export=export, values=values, want=want) -> None:
            _expect(inst.call(export, *values), want, f"{export}({', '.join(map(repr, values))})")

        cases, errors = _checked_cases(instances, check,
                                       lambda inst, export=export, args=args: lambda: inst.call_stmt(export, args))
        ctx.log(f"  {label}")
        rows.append(_row(key, label, "ns", measure(cases, ctx.settings), errors))
    group = Group("calls", "Calls from Python (ns per call)", rows)
    plain, host = group.row("ident_i32"), group.row("host_call")
    overhead = {name: (host.medians[name] - plain.medians[name])
                if host.medians.get(name) is not None and plain.medians.get(name) is not None else None
                for name in host.medians}
    group.rows.append(Row("host_overhead", "  host call overhead (callhost - ident)", "ns", overhead))
    add = group.row("add_i32")
    relative = {}
    for name in add.medians:
        relative[name] = {key: (group.row(key).medians.get(name) / add.medians[name])
                          if add.medians.get(name) and group.row(key).medians.get(name) else None
                          for key in RELATIVE_TO_ADD}
    group.extra["relative_to_add"] = relative
    wasmpy_relative = relative.get("wasmpy", {})
    if wasmpy_relative:
        group.notes.append("wasmpy, time relative to add(1, 2): " + ", ".join(
            f"{key} {value:.2f}x" for key, value in wasmpy_relative.items() if value is not None))
    group.notes.append("the Python host function is the identity, def host(x): return x; each timed "
                       "loop repeats the call 10 times per iteration")
    return group


# --- values: the calls and accesses that convert more than numbers

VALUES = [
    # key, label (the wasmpy statement; each runtime's adapter gives its own, see Instance.values_case)
    ("externref", "ident_ref(obj)  externref -> externref"),
    ("anyref", "ident_any(obj)  anyref -> anyref, a Python object"),
    ("funcref", "ident_func(add)  funcref -> funcref"),
    ("v128", "ident_v128(x)  v128 -> v128"),
    ("val_args", "add(Val(i32, 1), Val(i32, 2))  Val arguments"),
    ("call_vals", "add.call_vals(1, 2) -> (Val,)"),
    ("host_ref", "callhost_ref(obj)  wasm -> Python -> wasm, externref"),
    ("global_get", "counter.value  i32 global, get"),
    ("global_set", "counter.value = 5  i32 global, set"),
    ("table_get", "objects[0]  externref table, get"),
    ("table_set", "objects[0] = obj  externref table, set"),
]


def values_instances(ctx: "Context") -> Dict[str, Any]:
    """An instance of the values module per runtime that has reference types (the others are logged)."""
    runtimes = [rt for rt in ctx.runtimes if rt.reference_types]
    for rt in ctx.runtimes:
        if not rt.reference_types:
            ctx.log(f"  no {rt.name} column: it has no reference types or SIMD")
    return ctx.instances("values", runtimes=runtimes, host_ref=_host_ref)


def values(ctx: Context) -> Group:
    instances = values_instances(ctx)
    rows: List[Row] = []
    for key, label in VALUES:
        cases: Dict[str, Case] = {}
        errors: Dict[str, str] = {}
        for name, inst in instances.items():
            if isinstance(inst, str):
                errors[name] = inst
                continue
            try:
                found = inst.values_case(key)
                if found is None:
                    continue
                stmt, check = found
                check()
                cases[name] = Case(lambda stmt=stmt: stmt)
            except Exception as error:
                errors[name] = f"{type(error).__name__}: {error}"
        ctx.log(f"  {label}")
        rows.append(_row(key, label, "ns", measure(cases, ctx.settings), errors))
    group = Group("values", "References, v128, Val, globals and tables (ns per operation)", rows)
    group.notes.append("obj is a plain Python object, the host function the identity; '-': the runtime has no "
                       "such operation (the wasmtime package: no anyref, v128 or call returning Vals); "
                       "pywasm3 loads no module with reference types or SIMD")
    return group


# --- compute

def compute(ctx: Context) -> Group:
    steps = NBODY_STEPS // 10 if ctx.quick else NBODY_STEPS
    # wasmpy's default engine checks epochs (for deadlines and Ctrl-C), the wasmtime package's does not:
    # a column for each in the other's settings compares the bindings on the same engine settings.
    peers = {rt.name for rt in ctx.runtimes}
    runtimes = ctx.with_columns(WasmpyNoEpoch(), *([WasmtimeEpoch()] if "wasmtime" in peers else []))
    settings = Settings(ctx.settings.rounds, max(ctx.settings.round_ns, 50_000_000 if not ctx.quick else 0),
                        ctx.settings.budget_ns * 2, ctx.settings.min_rounds)
    rows: List[Row] = []

    # fib(30), recursive i32
    instances = ctx.instances("fib", runtimes=runtimes)
    cases, errors = _checked_cases(
        instances, lambda inst: _expect(inst.call("fib", 20), 6765, "fib(20)"),
        lambda inst: lambda: inst.call_stmt("fib", str(FIB_N)), unroll=1)
    ctx.log(f"  fib({FIB_N})")
    results = measure(cases, settings)
    for name, inst in instances.items():  # checked after the timing: fib(30) takes long in an interpreter
        if name in cases and results[name].error is None:
            try:
                _expect(inst.call("fib", FIB_N), FIB_RESULT, f"fib({FIB_N})")
            except Exception as error:
                results[name].error = str(error)
    rows.append(_row("fib30", f"fib({FIB_N})  recursive i32", "ms", results, errors))

    # n-body (C -> wasm, f64)
    instances = ctx.instances("nbody", runtimes=runtimes)

    def nbody_check(inst: Instance) -> None:
        inst.call("nbody_init")
        inst.call("nbody_advance", 1000, 0.01)
        _expect(round(inst.call("nbody_energy"), 12), round(NBODY_ENERGY_1000, 12), "nbody energy after 1000 steps")

    def nbody_stmt(inst: Instance):
        def make():  # from the initial state each time: init(); advance(steps, 0.01)
            init, init_names = inst.call_stmt("nbody_init", "", name="i")
            run, run_names = inst.call_stmt("nbody_advance", f"{steps}, 0.01")
            return f"{init}; {run}", {**init_names, **run_names}
        return make

    cases, errors = _checked_cases(instances, nbody_check, nbody_stmt, unroll=1)
    ctx.log(f"  nbody {steps:,} steps")
    results = measure(cases, settings)
    energies = {}
    for name in cases:
        inst = instances[name]
        inst.call("nbody_init")
        inst.call("nbody_advance", steps, 0.01)
        energies[name] = inst.call("nbody_energy")
    if len(set(energies.values())) > 1:
        ctx.log(f"  warning: the runtimes disagree on the n-body energy: {energies}")
    rows.append(_row("nbody", f"nbody {steps:,} steps  (C -> wasm, f64)", "ms", results, errors))

    # FNV-1a 64 over a 1 MiB buffer in linear memory (C -> wasm)
    instances = ctx.instances("hash", runtimes=runtimes)
    pointers: Dict[str, int] = {}

    def hash_check(inst: Instance) -> None:
        inst.call("fill", MIB, 12345)
        pointers[id(inst)] = inst.call("buffer")
        _expect(inst.call("fnv1a64", pointers[id(inst)], 0, 1) % 2**64, 0xcbf29ce484222325, "fnv1a64 of nothing")

    cases, errors = _checked_cases(
        instances, hash_check,
        lambda inst: lambda: inst.call_stmt("fnv1a64", f"{pointers[id(inst)]}, {MIB}, {HASH_ROUNDS}"), unroll=1)
    ctx.log(f"  FNV-1a over 1 MiB x {HASH_ROUNDS}")
    results = measure(cases, settings)
    hashes = {name: instances[name].call("fnv1a64", pointers[id(instances[name])], MIB, HASH_ROUNDS) % 2**64
              for name in cases}
    if len(set(hashes.values())) > 1:
        ctx.log(f"  warning: the runtimes disagree on the hash: {hashes}")
    rows.append(_row("fnv1a_1mib", f"FNV-1a 64, 1 MiB x {HASH_ROUNDS}  (C -> wasm)", "ms", results, errors,
                     bytes_per_op=MIB * HASH_ROUNDS))

    # LZ4, a real program (the LZ4 library, C -> wasm32-wasi): the fast compressor, and LZ4 HC
    lz4_bytes = LZ4_BYTES // 8 if ctx.quick else LZ4_BYTES
    compiled = [rt for rt in runtimes if rt.compiles]
    for rt in runtimes:
        if not rt.compiles:
            ctx.log(f"  no {rt.name} column for LZ4: an interpreter takes seconds per run")
    instances = ctx.instances("lz4", runtimes=compiled)
    for name, inst in instances.items():
        if isinstance(inst, str):
            continue
        try:
            inst.call("_initialize")  # a WASI reactor: its constructors first
            _expect(inst.call("lz4bench_setup", lz4_bytes, LZ4_SEED), 0, "lz4bench_setup")
        except Exception as error:
            instances[name] = f"{type(error).__name__}: {error}"
    lz4_results: Dict[str, Dict[str, int]] = {}
    for key, level, label in (("lz4_fast", 0, "LZ4 fast compress + decompress"),
                              ("lz4_hc", LZ4_HC_LEVEL, f"LZ4 fast, then HC level {LZ4_HC_LEVEL}, + decompress")):
        def lz4_check(inst: Instance, level=level) -> None:
            if inst.call("lz4bench_run", level) < 0:
                raise AssertionError(f"lz4bench_run({level}) failed: the data did not come back")

        cases, errors = _checked_cases(
            instances, lz4_check, lambda inst, level=level: lambda: inst.call_stmt("lz4bench_run", str(level)),
            unroll=1)
        ctx.log(f"  {label}, {lz4_bytes // 1024} KiB")
        rows.append(_row(key, f"{label}, {lz4_bytes // 1024} KiB  (C -> wasm)", "ms", measure(cases, settings),
                         errors, bytes_per_op=lz4_bytes))
        lz4_results[key] = {name: instances[name].call("lz4bench_run", level) for name in cases}
        if len(set(lz4_results[key].values())) > 1:
            ctx.log(f"  warning: the runtimes disagree on {key}: {lz4_results[key]}")

    group = Group("compute", "Computation (ms per run)", rows)
    group.notes.append(f"the default engines differ: wasmpy's checks an epoch deadline in every function and "
                       f"loop (for deadlines and Ctrl-C), the wasmtime package's does not. Same settings: "
                       f"wasmpy/{WasmtimeEpoch.name} (both check) and {WasmpyNoEpoch.name}/wasmtime (neither "
                       f"does); see the targets")
    group.extra["checks"] = {"nbody_energy": energies, "fnv1a64": {k: hex(v) for k, v in hashes.items()},
                             "nbody_steps": steps, "hash_rounds": HASH_ROUNDS, "lz4": lz4_results,
                             "lz4_bytes": lz4_bytes}
    agreed = (len(set(energies.values())) <= 1 and len(set(hashes.values())) <= 1
              and all(len(set(results.values())) <= 1 for results in lz4_results.values()))
    group.notes.append("kernels: benchmarks/kernels/*.c, clang --target=wasm32 -O2 -nostdlib; lz4: the LZ4 "
                       "library and a driver (kernels/lz4/), clang --target=wasm32-wasi -O2 (build.sh); each "
                       "runtime ran the same bytes and agreed on the results"
                       if agreed else "WARNING: the runtimes disagreed on a result (see the JSON)")
    epoch_cost = {row.key: row.medians["wasmpy"] / row.medians[WasmpyNoEpoch.name] - 1 for row in rows
                  if row.medians.get("wasmpy") and row.medians.get(WasmpyNoEpoch.name)}
    if epoch_cost:
        group.notes.append("epoch checks cost wasmpy (time with / without - 1): " + ", ".join(
            f"{key} {cost:+.0%}" for key, cost in epoch_cost.items()))
    return group


# --- memory

def memory(ctx: Context) -> Group:
    instances = ctx.instances("memory")
    views: Dict[str, memoryview] = {}
    errors: Dict[str, str] = {}
    for name, inst in list(instances.items()):
        if isinstance(inst, str):
            errors[name] = inst
            continue
        try:
            view = inst.memory_view()
            if view.format != "B" or view.readonly or view.nbytes < MIB + 4096:
                raise AssertionError(f"unexpected view: format {view.format}, {view.nbytes} bytes, "
                                     f"readonly {view.readonly}")
            view[:] = bytes(view.nbytes)       # touch every page before timing
            views[name] = view
        except Exception as error:
            errors[name] = f"{type(error).__name__}: {error}"
            del instances[name]
    plain = memoryview(bytearray(MIB + 64 * 1024))
    data = bytes(range(256)) * (MIB // 256)
    offset, small = 4096, b"0123456789abcdef"
    rows: List[Row] = []

    def bulk(key: str, label: str, stmt: str) -> None:
        cases = {name: Case(lambda view=view: (stmt, {"v": view, "n": MIB, "d": data}), unroll=1)
                 for name, view in views.items()}
        cases[MEMCPY] = Case(lambda: (stmt, {"v": plain, "n": MIB, "d": data}), unroll=1)
        ctx.log(f"  {label}")
        rows.append(_row(key, label, "GB/s", measure(cases, ctx.settings), errors, bytes_per_op=MIB))

    bulk("read_1mib", "read 1 MiB: bytes(view[0:1 MiB])", "bytes(v[0:n])")
    bulk("write_1mib", "write 1 MiB: view[0:1 MiB] = data", "v[0:n] = d")
    for name, view in views.items():
        if bytes(view[0:MIB]) != data:
            errors[name] = "the bytes written through the view did not read back"

    def small_row(key: str, label: str, make: Callable[[str, Instance], Optional[Callable]],
                  baseline: Optional[Callable] = None) -> None:
        cases: Dict[str, Case] = {}
        for name, inst in instances.items():
            factory = make(name, inst) if name in views else None
            if factory is not None:
                cases[name] = Case(factory)
        if baseline is not None:
            cases[MEMCPY] = Case(baseline)
        ctx.log(f"  {label}")
        rows.append(_row(key, label, "ns", measure(cases, ctx.settings), errors))

    for view in views.values():
        view[offset:offset + 16] = small
    small_row("read16", "memory.read(offset, 16)",
              lambda name, inst: lambda: inst.read16_stmt(offset))
    small_row("write16", "memory.write(offset, 16 bytes)",
              lambda name, inst: lambda: inst.write16_stmt(offset, small))
    small_row("slice16", "bytes(view[offset:offset+16])",
              lambda name, inst: lambda: ("bytes(v[o:e])", {"v": views[name], "o": offset, "e": offset + 16}),
              baseline=lambda: ("bytes(v[o:e])", {"v": plain, "o": offset, "e": offset + 16}))
    small_row("new_view", "memoryview(memory)  a new view",
              lambda name, inst: inst.view_stmt if inst.view_stmt() is not None else None,
              baseline=lambda: ("memoryview(v)", {"v": plain.obj}))
    for name, view in views.items():
        try:
            _expect(bytes(view[offset:offset + 16]), small, "the 16 bytes written")
        except AssertionError as error:
            errors[name] = str(error)
    group = Group("memory", "Memory (GB/s for 1 MiB copies, ns otherwise)", rows)
    group.notes.append(f"column {MEMCPY}: the same statement on a plain Python bytearray (the speed of memcpy "
                       "and of a bytes copy); GB/s = 10^9 bytes/s")
    if "pywasm3" in instances:
        group.notes.append("pywasm3 has no memory.read/write: its rows use slices of its memoryview; "
                           "its get_memory() leaks a buffer per call, so it has no 'new view' figure")
    if "wasmtime" in instances:
        group.notes.append("wasmtime package: memory.read(store, start, stop) returns a bytearray; "
                           "its view is memoryview(memory.get_buffer_ptr(store))")
    return group


# --- instantiate

INSTANTIATE = [
    ("new_store", "small module, in a new store", "small"),
    ("new_store_call", "  the same, then call its add(1, 2)", "small"),
    ("same_store", "small module, into one existing store", "small"),
    ("with_import", "small module + a Python import, new store", "small_import"),
]


STORE_INSTANCES = 5000


def instantiate(ctx: Context) -> Group:
    rows: List[Row] = []
    runtimes = ctx.with_columns(WasmpyPooled())
    for key, label, module in INSTANTIATE:
        cases: Dict[str, Case] = {}
        errors: Dict[str, str] = {}
        for rt in runtimes:
            try:
                factory = rt.instantiate_stmts(modules.wasm(module))[key]
                if factory is None:
                    continue
                limit = rt.instantiate_max_ops
                if key == "same_store":  # a store holds at most 10,000 instances (wasmtime's default)
                    limit = min(limit or STORE_INSTANCES, STORE_INSTANCES)
                cases[rt.name] = Case(factory, unroll=1, max_ops=limit, gc_enabled=True, collect=True)
            except Exception as error:
                errors[rt.name] = f"{type(error).__name__}: {error}"
        ctx.log(f"  {label}")
        rows.append(_row(key, label, "µs", measure(cases, ctx.settings), errors))
    group = Group("instantiate", "Instantiating an already compiled module (µs)", rows)
    group.notes.append(f"column {WasmpyPooled.name}: wasmpy on Engine(instance_pool={WasmpyPooled.pool_size}), "
                       "which takes each instance's memory and tables from a pool reserved once")
    group.notes.append("the cyclic GC stays on while timing (freeing the instances is part of the cost), and "
                       "runs before each round; 'one existing store': a new store per round, all the round's "
                       f"instances (at most {STORE_INSTANCES:,}) in it")
    if any(rt.name == "pywasm3" for rt in ctx.runtimes):
        group.notes.append("pywasm3 has no compiled module: its figure is parse_module(bytes) + new_runtime() "
                           "+ load() (functions compile lazily, at their first call); it never frees a "
                           f"runtime, so its rounds are at most {Pywasm3.instantiate_max_ops} instantiations")
    return group


# --- threads

def _fib_job(inst: Instance, count: int) -> None:
    for _ in range(count):
        if inst.call("fib", FIB_N) != FIB_RESULT:
            raise AssertionError(f"fib({FIB_N}) gave a wrong result")


THREAD_WORK_NS = 40_000_000     # about this much work per thread (whole fib(30) calls)
CONTROL = "control: hashlib"    # the machine's own parallel speed-up, with C code that releases the GIL


def threads(ctx: Context) -> Group:
    """Two threads, each with its own store, running fib(30) calls, against the same calls one after the
    other; the control is hashlib.sha256 over a big buffer (which releases the GIL), in the same rounds."""
    work_ns = THREAD_WORK_NS // 4 if ctx.quick else THREAD_WORK_NS
    rounds = max(2, min(ctx.settings.rounds, 2 if ctx.quick else 9))
    jobs: Dict[str, List[Callable[[], None]]] = {}
    calls: Dict[str, int] = {}
    errors: Dict[str, str] = {}
    for rt in ctx.runtimes:
        try:
            pair = [rt.instantiate(modules.wasm("fib")), rt.instantiate(modules.wasm("fib"))]
            for inst in pair:
                _expect(inst.call("fib", 20), 6765, "fib(20)")
            start = time.perf_counter_ns()
            _expect(pair[0].call("fib", FIB_N), FIB_RESULT, f"fib({FIB_N})")
            count = max(1, round(work_ns / (time.perf_counter_ns() - start)))
            calls[rt.name] = count

            jobs[rt.name] = [functools.partial(_fib_job, inst, count) for inst in pair]
        except Exception as error:
            errors[rt.name] = f"{type(error).__name__}: {error}"
    data = bytes(4 << 20)
    start = time.perf_counter_ns()
    hashlib.sha256(data).digest()
    blocks = max(1, round(work_ns / (time.perf_counter_ns() - start)))
    calls[CONTROL] = blocks

    def control() -> None:
        for _ in range(blocks):
            hashlib.sha256(data).digest()

    jobs[CONTROL] = [control, control]

    def run_pair(pair: List[Callable[[], None]], failures: List[BaseException]) -> Tuple[int, int]:
        def guarded(fn: Callable[[], None]) -> None:
            try:
                fn()
            except BaseException as error:
                failures.append(error)
        start = time.perf_counter_ns()
        for fn in pair:
            guarded(fn)
        one_after_other = time.perf_counter_ns() - start
        workers = [threading.Thread(target=guarded, args=(fn,)) for fn in pair]
        start = time.perf_counter_ns()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        return one_after_other, time.perf_counter_ns() - start

    sequential: Dict[str, List[int]] = {name: [] for name in jobs}
    parallel: Dict[str, List[int]] = {name: [] for name in jobs}
    ctx.log(f"  2 threads x about {work_ns / 1e6:g} ms of fib({FIB_N}) each, {rounds} rounds")
    order = list(jobs)
    for index in range(rounds):
        shift = index % len(order)
        for name in order[shift:] + order[:shift]:
            if name in errors:
                continue
            failures: List[BaseException] = []
            one_after_other, at_once = run_pair(jobs[name], failures)
            if failures:
                errors[name] = f"{type(failures[0]).__name__}: {failures[0]}"
                continue
            sequential[name].append(one_after_other)
            parallel[name].append(at_once)
    figures: Dict[str, Any] = {}
    for name in jobs:
        if name in errors or not sequential[name]:
            continue
        speedups = [s / p for s, p in zip(sequential[name], parallel[name])]
        control_speedups = [s / p for s, p in zip(sequential[CONTROL], parallel[CONTROL])]
        figures[name] = {"calls_per_thread": calls[name],
                         "sequential_ms": statistics.median(sequential[name]) / 1e6,
                         "parallel_ms": statistics.median(parallel[name]) / 1e6,
                         "speedup": statistics.median(speedups),
                         # this round's speed-up over the control's in the same round
                         "speedup_vs_control": statistics.median(
                             [a / b for a, b in zip(speedups, control_speedups)]) if control_speedups else None,
                         "rounds_speedup": speedups,
                         "rounds_sequential_ms": [t / 1e6 for t in sequential[name]],
                         "rounds_parallel_ms": [t / 1e6 for t in parallel[name]]}
    group = Group("threads", f"Threads: 2 threads, each with its own store, running fib({FIB_N}) calls", [],
                  extra={"runtimes": figures, "errors": errors or None, "fib_n": FIB_N, "rounds": rounds,
                         "control": f"{CONTROL}: sha256 of {len(data) >> 20} MiB x {blocks} per thread"})
    group.notes.append(f"speed-up = one after the other / both at once (median of the per-round ratios); "
                       f"{os.cpu_count()} CPUs, so at most {min(2, os.cpu_count() or 1)}x; the control "
                       f"(sha256 of {len(data) >> 20} MiB x {blocks}, which releases the GIL) is what this "
                       "machine allows at the moment")
    return group


GROUPS: Dict[str, Callable[[Context], Group]] = {
    "calls": calls, "values": values, "compute": compute, "memory": memory, "instantiate": instantiate,
    "threads": threads, "components": components,
}
