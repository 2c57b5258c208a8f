"""The reference side of tests/test_differential.py: a wasm module run through the ``wasmtime``
package, recorded as plain (JSON-able) data.

This side also makes the plan: which export to call in which order, with which arguments, so
that wasmpy (see ``test_differential.replay_in_wasmpy``) does exactly the same things.

wasmtime-py's own API converts only i32, i64, f32, f64, externref and funcref values, and reads
floats through C doubles (which quiets signalling NaNs). Calls, globals and tables therefore go
through its raw ctypes bindings of the C API (``wasmtime._ffi``), with numbers as bit patterns,
which reach v128 and every GC reference too. It is the same wasmtime 50.0.1 as wasmpy's through
another binding, so a difference is a binding bug: wasmpy's (or this module's).

The shared vocabulary:

- value descriptors: ``["i32", bits]`` (also i64, f32, f64, v128; unsigned bit patterns),
  ``["null"]``, ``["i31", n]``, ``["struct"]``, ``["array"]``, ``["any"]`` (an anyref that is a
  converted externref), ``["func"]``, ``["extern", n]`` (host object number n), ``["extern", "any"]``
  (an externref that is a converted GC reference), ``["exn", tag, payload]`` (tag: the name of the
  exported tag, or None);
- argument specs: numbers as above, ``["null"]``, ``["i31", n]``, ``["extern", n]`` (a new host
  object n), ``["pool", i]`` (the i-th reference a step produced), ``["func", name]`` (an export);
- steps: ``["read", global]``, ``["call", func, [args]]``, ``["set", global, spec]``;
- outcomes: ``{"ok": [descriptors]}``, ``{"trap": code}`` (a wasmtime_trap_code_t, or None),
  ``{"exception": descriptor}`` (wasm threw and did not catch), ``{"rejected": message}`` (an
  argument or value of the wrong type, refused before anything ran), ``{"error": message}``.
"""

from __future__ import annotations

import ctypes
import hashlib
import random
from ctypes import byref
from typing import Any, Dict, List, Optional, Sequence, Tuple

import wasmtime
from wasmtime import _ffi as ffi

# The engine features both sides turn on (wasmpy Engine options; wasmtime.Config's are "wasm_" + name).
FEATURES = ("gc", "reference_types", "function_references", "exceptions", "multi_value", "bulk_memory",
            "simd", "tail_call", "memory64", "multi_memory")

# The store limit on memory, GC heaps included, on both sides: smith's memories are at most 1 MiB,
# but its GC initializers ask for arrays of gigabytes, which take seconds to fail without it.
MEMORY_LIMIT = 16 << 20

# Numbers of wasmtime's C headers (wasmtime/val.h, wasmtime/types/val.h) that the bindings leave out.
_VAL_KINDS = {0: "i32", 1: "i64", 2: "f32", 3: "f64", 4: "v128", 5: "funcref", 6: "externref", 7: "anyref",
              8: "exnref"}
_VAL_KIND_NUMBERS = {name: number for number, name in _VAL_KINDS.items()}
_VALTYPE_KIND_REF = 5
HEAP_TYPES = ("extern", "noextern", "func", "concrete_func", "nofunc", "any", "none", "eq", "i31", "array",
              "concrete_array", "struct", "concrete_struct", "exn", "concrete_exn", "noexn")
# The val kind (family) of each heap type's values.
_HEAP_FAMILY = {"extern": "externref", "noextern": "externref", "func": "funcref", "concrete_func": "funcref",
                "nofunc": "funcref", "exn": "exnref", "concrete_exn": "exnref", "noexn": "exnref"}
# What kinds of non-null values each heap type may hold (descriptor heads), for choosing arguments.
HEAP_ACCEPTS = {
    "extern": ("extern",), "func": ("func",), "concrete_func": ("func",),
    "any": ("i31", "struct", "array", "any"), "eq": ("i31", "struct", "array"), "i31": ("i31",),
    "array": ("array",), "concrete_array": ("array",), "struct": ("struct",), "concrete_struct": ("struct",),
    "exn": ("exn",), "concrete_exn": ("exn",),
}

NUMBER_KINDS = ("i32", "i64", "f32", "f64", "v128")
_M32, _M64 = (1 << 32) - 1, (1 << 64) - 1
# Host objects are plain numbers (the externref's data pointer): nothing to finalize.
_NO_FINALIZER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)()


# --------------------------------------------------------------------------- types

def describe_valtype(ptr: Any) -> str:
    """A ``wasm_valtype_t *`` as a neutral name: 'i32' ... 'v128', or 'ref [null ]HEAP'."""
    valtype = ffi.wasmtime_valtype_t()
    ffi.wasmtime_valtype_new(ptr, byref(valtype))
    try:
        if valtype.kind != _VALTYPE_KIND_REF:
            return _VAL_KINDS[valtype.kind]
        heap = HEAP_TYPES[valtype.reftype.heaptype.kind]
        return f"ref null {heap}" if valtype.reftype.nullable else f"ref {heap}"
    finally:
        ffi.wasmtime_valtype_delete(byref(valtype))


def parse_valtype(name: str) -> Tuple[str, bool, Optional[str]]:
    """('i32', False, None) or ('ref', nullable, heap) for a name from describe_valtype."""
    if not name.startswith("ref "):
        return name, False, None
    parts = name.split()
    return "ref", parts[1] == "null", parts[-1]


def _valtypes(vec_ptr: Any) -> List[str]:
    vec = vec_ptr.contents
    return [describe_valtype(vec.data[i]) for i in range(vec.size)]


def _func_type(ctx: Any, func: Any) -> Tuple[List[str], List[str]]:
    functype = ffi.wasmtime_func_type(ctx, byref(func))
    try:
        return _valtypes(ffi.wasm_functype_params(functype)), _valtypes(ffi.wasm_functype_results(functype))
    finally:
        ffi.wasm_functype_delete(functype)


def _global_type(ctx: Any, global_: Any) -> Tuple[str, bool]:
    globaltype = ffi.wasmtime_global_type(ctx, byref(global_))
    try:
        content = describe_valtype(ffi.wasm_globaltype_content(globaltype))
        return content, ffi.wasm_globaltype_mutability(globaltype) == ffi.WASM_VAR.value
    finally:
        ffi.wasm_globaltype_delete(globaltype)


def _table_element(ctx: Any, table: Any) -> str:
    tabletype = ffi.wasmtime_table_type(ctx, byref(table))
    try:
        return describe_valtype(ffi.wasm_tabletype_element(tabletype))
    finally:
        ffi.wasm_tabletype_delete(tabletype)


# --------------------------------------------------------------------------- arguments

_F32_SPECIALS = (0, 0x80000000, 0x3F800000, 0xBF800000, 0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00000,
                 0x7FA00000, 0x7F800001, 0xFFFFFFFF, 0x00000001, 0x7F7FFFFF, 0x4B000000)
_F64_SPECIALS = (0, 1 << 63, 0x3FF0000000000000, 0xBFF0000000000000, 0x7FF0000000000000, 0xFFF0000000000000,
                 0x7FF8000000000000, 0xFFF8000000000000, 0x7FF4000000000000, 0x7FF0000000000001, _M64, 1,
                 0x7FEFFFFFFFFFFFFF, 0x4330000000000000)


def number_bits(rng: random.Random, kind: str) -> int:
    """A bit pattern for a number of ``kind``: edge cases (NaNs with payloads, signalling ones,
    infinities, extremes) and random values."""
    width = {"i32": 32, "i64": 64, "f32": 32, "f64": 64, "v128": 128}[kind]
    mask = (1 << width) - 1
    pick = rng.random()
    if kind in ("f32", "f64") and pick < 0.5:
        return rng.choice(_F32_SPECIALS if kind == "f32" else _F64_SPECIALS)
    if pick < 0.3:
        return rng.choice((0, 1, 2, mask, mask >> 1, (mask >> 1) + 1, 7, 100, 65535, 65536)) & mask
    if pick < 0.6:
        return rng.randrange(-1000, 1000) & mask
    return rng.getrandbits(width)


class Planner:
    """Chooses arguments: numbers from a seeded RNG, and for references null, i31, new host
    objects, exported functions, or references earlier steps produced (the pool)."""

    def __init__(self, rng: random.Random, func_names: Sequence[str]) -> None:
        self.rng = rng
        self.func_names = list(func_names)
        self.pool_kinds: List[str] = []  # the descriptor head of each pool entry
        self.next_host_object = 1

    def argument(self, valtype: str) -> Optional[list]:
        """An argument spec for a value of ``valtype``; None if there is none to give (a
        non-nullable reference with nothing that could fit)."""
        kind, nullable, heap = parse_valtype(valtype)
        if kind != "ref":
            return [kind, number_bits(self.rng, kind)]
        accepts = HEAP_ACCEPTS.get(heap, ())
        choices: List[list] = []
        if "i31" in accepts:
            choices.append(["i31", self.rng.randrange(-(2**30), 2**30)])
        if "extern" in accepts:
            choices.append(["extern", self.next_host_object])
        if "func" in accepts and self.func_names:
            choices.append(["func", self.rng.choice(self.func_names)])
        fitting = [i for i, head in enumerate(self.pool_kinds) if head in accepts]
        if fitting:
            # the newest entries most often: they are what the previous calls made
            choices.append(["pool", fitting[-1 - min(int(self.rng.expovariate(0.7)), len(fitting) - 1)]])
        if nullable and (not choices or self.rng.random() < 0.3):
            return ["null"]
        if not choices:
            return None
        choice = self.rng.choice(choices)
        if choice[0] == "extern":
            self.next_host_object += 1
        return choice


def pooled(outcome: Dict[str, Any]) -> List[int]:
    """Which values of a step's outcome join the pool, in order: the non-null references of an
    ``ok`` outcome (of a call or a read). Both sides keep the pool by this rule."""
    return [index for index, value in enumerate(outcome.get("ok", ()))
            if value[0] not in NUMBER_KINDS and value[0] != "null"]


# --------------------------------------------------------------------------- the reference run

def reference_engine() -> wasmtime.Engine:
    """An engine with the settings of wasmpy's ``Engine(consume_fuel=True)`` and FEATURES: epoch
    checks and memories that do not move, as every wasmpy engine's by default. (Its stores get
    MEMORY_LIMIT.)"""
    config = wasmtime.Config()
    for feature in FEATURES:
        setattr(config, "wasm_" + feature, True)
    config.consume_fuel = True
    # wasmpy's engines check epochs by default, which changes the code, and so how deep wasm
    # recursion goes before the stack overflows (each run's store gets a deadline it never reaches)
    config.epoch_interruption = True
    config.memory_may_move = False
    return wasmtime.Engine(config)


class ReferenceRun:
    """One module through the wasmtime package: makes the plan while running it, and records
    every outcome (see :func:`run_reference`)."""

    def __init__(self, engine: wasmtime.Engine, module: wasmtime.Module, rng: random.Random, fuel: int) -> None:
        self.module, self.fuel = module, fuel
        self.store = wasmtime.Store(engine)
        self.store.set_epoch_deadline(1 << 62)
        self.store.set_limits(memory_size=MEMORY_LIMIT)
        self.ctx = self.store._context()
        self.instance = ffi.wasmtime_instance_t()
        self.funcs: Dict[str, wasmtime.Func] = {}
        self.globals: Dict[str, wasmtime.Global] = {}
        self.tables: Dict[str, wasmtime.Table] = {}
        self.memories: Dict[str, wasmtime.Memory] = {}
        self.tags: List[Tuple[str, Any]] = []  # exported tags (wasmtime_tag_t), to name an exception's tag
        self.planner = Planner(rng, [])
        self.pool: List[Any] = []  # rooted wasmtime_val_t copies: the plan's pool
        self.skipped = 0  # calls not made: an argument nobody can give

    # ----- values

    def describe(self, val: Any) -> list:
        """The descriptor of a ``wasmtime_val_t`` (left rooted)."""
        kind = _VAL_KINDS.get(val.kind)
        if kind == "i32" or kind == "f32":  # floats by their integer member: no conversion to double
            return [kind, val.of.i32 & _M32]
        if kind == "i64" or kind == "f64":
            return [kind, val.of.i64 & _M64]
        if kind == "v128":
            return ["v128", int.from_bytes(bytes(val.of.v128), "little")]
        if kind == "funcref":
            return ["null"] if val.of.funcref.store_id == 0 else ["func"]
        if kind == "externref":
            if val.of.externref.store_id == 0:
                return ["null"]
            data = ffi.wasmtime_externref_data(self.ctx, byref(val.of.externref))
            return ["extern", data if data else "any"]  # no host data: made by extern.convert_any
        if kind == "anyref":
            ref = val.of.anyref
            if ref.store_id == 0:
                return ["null"]
            if ffi.wasmtime_anyref_is_struct(self.ctx, byref(ref)):
                return ["struct"]
            if ffi.wasmtime_anyref_is_array(self.ctx, byref(ref)):
                return ["array"]
            # not wasmtime_anyref_is_i31: in 50.0.1 it also answers True for structs and arrays
            i31 = ctypes.c_int32()
            if ffi.wasmtime_anyref_i31_get_s(self.ctx, byref(ref), byref(i31)):
                return ["i31", i31.value]
            return ["any"]
        if kind == "exnref":
            if val.of.exnref.store_id == 0:
                return ["null"]
            return self.describe_exception(val.of.exnref)
        raise AssertionError(f"wasmtime_val_t of unknown kind {val.kind}")

    def describe_exception(self, exnref: Any) -> list:
        tag = ffi.wasmtime_tag_t()
        error = ffi.wasmtime_exnref_tag(self.ctx, byref(exnref), byref(tag))
        if error:
            raise wasmtime.WasmtimeError._from_ptr(error)
        name = next((n for n, t in self.tags if ffi.wasmtime_tag_eq(self.ctx, byref(t), byref(tag))), None)
        payload = []
        for index in range(ffi.wasmtime_exnref_field_count(self.ctx, byref(exnref))):
            field = ffi.wasmtime_val_t()
            error = ffi.wasmtime_exnref_field(self.ctx, byref(exnref), index, byref(field))
            if error:
                raise wasmtime.WasmtimeError._from_ptr(error)
            payload.append(self.describe(field))
            ffi.wasmtime_val_unroot(byref(field))
        return ["exn", name, payload]

    def make(self, spec: list, valtype: str) -> Any:
        """A ``wasmtime_val_t`` for an argument spec, of ``valtype``'s family (to unroot after use)."""
        val = ffi.wasmtime_val_t()
        head = spec[0]
        if head in NUMBER_KINDS:
            val.kind = _VAL_KIND_NUMBERS[head]
            bits = spec[1]
            if head in ("i32", "f32"):
                val.of.i32 = ctypes.c_int32(bits).value
            elif head in ("i64", "f64"):
                val.of.i64 = ctypes.c_int64(bits).value
            else:
                ctypes.memmove(val.of.v128, bits.to_bytes(16, "little"), 16)
            return val
        kind, _, heap = parse_valtype(valtype)
        assert kind == "ref", (spec, valtype)
        val.kind = _VAL_KIND_NUMBERS[_HEAP_FAMILY.get(heap, "anyref")]
        if head == "null":
            pass  # store_id 0 is null in every family
        elif head == "i31":
            ffi.wasmtime_anyref_from_i31(self.ctx, spec[1] & 0x7FFFFFFF, byref(val.of.anyref))
        elif head == "extern":
            if not ffi.wasmtime_externref_new(self.ctx, spec[1], _NO_FINALIZER, byref(val.of.externref)):
                raise wasmtime.WasmtimeError("cannot allocate an externref")
        elif head == "pool":
            ffi.wasmtime_val_clone(byref(self.pool[spec[1]]), byref(val))
        elif head == "func":
            val.of.funcref = self.funcs[spec[1]]._func
        else:
            raise AssertionError(f"unknown argument spec {spec}")
        return val

    def keep(self, vals: Sequence[Any], outcome: Dict[str, Any]) -> None:
        """Adds the references of an outcome to the pool (see :func:`pooled`)."""
        for index in pooled(outcome):
            copy = ffi.wasmtime_val_t()
            ffi.wasmtime_val_clone(byref(vals[index]), byref(copy))
            self.pool.append(copy)
            self.planner.pool_kinds.append(outcome["ok"][index][0])

    # ----- outcomes

    def failure(self, error: Any, trap: Any) -> Dict[str, Any]:
        """The outcome of a failed call or instantiation (frees the error or trap)."""
        exnref = ffi.wasmtime_exnref_t()
        if ffi.wasmtime_context_take_exception(self.ctx, byref(exnref)):
            outcome: Dict[str, Any] = {"exception": self.describe_exception(exnref)}
            ffi.wasmtime_exnref_unroot(byref(exnref))
        elif trap:
            code = ffi.wasmtime_trap_code_t()
            outcome = {"trap": code.value if ffi.wasmtime_trap_code(trap, byref(code)) else None}
        else:
            outcome = {"error": _error_line(error)}
            error = None  # freed by WasmtimeError
        if trap:
            ffi.wasm_trap_delete(trap)
        if error:
            ffi.wasmtime_error_delete(error)
        return outcome

    def fuel_used(self) -> int:
        return self.fuel - self.store.get_fuel()

    # ----- steps

    def instantiate(self) -> Dict[str, Any]:
        trap = ctypes.POINTER(ffi.wasm_trap_t)()
        self.store.set_fuel(self.fuel)
        error = ffi.wasmtime_instance_new(self.ctx, self.module.ptr(), None, 0, byref(self.instance), byref(trap))
        if error or trap:
            return self.failure(error, trap)
        return {"ok": []}

    def exports(self) -> List[list]:
        """[name, kind, type] of every export; remembers the functions, globals, tables, memories and tags."""
        described = []
        for name, item in self.instance_exports():
            if isinstance(item, wasmtime.Func):
                self.funcs[name] = item
                described.append([name, "func", list(_func_type(self.ctx, item._func))])
            elif isinstance(item, wasmtime.Global):
                self.globals[name] = item
                described.append([name, "global", list(_global_type(self.ctx, item._global))])
            elif isinstance(item, wasmtime.Table):
                self.tables[name] = item
                described.append([name, "table", _table_element(self.ctx, item._table)])
            elif isinstance(item, wasmtime.Memory):
                self.memories[name] = item
                described.append([name, "memory", None])
            elif isinstance(item, wasmtime.Tag):
                self.tags.append((name, item._tag))
                described.append([name, "tag", None])
            else:
                described.append([name, type(item).__name__, None])
        self.planner.func_names = list(self.funcs)
        return described

    def instance_exports(self) -> List[Tuple[str, Any]]:
        exports = wasmtime.Instance._from_raw(self.instance).exports(self.store)
        return list(zip(exports, exports.by_index))

    def call(self, name: str, args: List[list]) -> Dict[str, Any]:
        func = self.funcs[name]
        params, results = _func_type(self.ctx, func._func)
        arg_vals = (ffi.wasmtime_val_t * max(len(params), 1))()
        made = 0
        result_vals = (ffi.wasmtime_val_t * max(len(results), 1))()
        try:
            for index, (spec, valtype) in enumerate(zip(args, params)):
                arg_vals[index] = self.make(spec, valtype)
                made += 1
            trap = ctypes.POINTER(ffi.wasm_trap_t)()
            self.store.set_fuel(self.fuel)
            error = ffi.wasmtime_func_call(self.ctx, byref(func._func), arg_vals, len(params), result_vals,
                                           len(results), byref(trap))
        finally:
            for index in range(made):
                ffi.wasmtime_val_unroot(byref(arg_vals[index]))
        if error or trap:
            outcome = self.failure(error, trap)
            if "error" in outcome and "type mismatch" in outcome["error"]:
                outcome = {"rejected": outcome["error"]}
            return outcome
        vals = [result_vals[i] for i in range(len(results))]
        outcome = {"ok": [self.describe(val) for val in vals]}
        self.keep(vals, outcome)
        for val in vals:
            ffi.wasmtime_val_unroot(byref(val))
        return outcome

    def read(self, name: str) -> Dict[str, Any]:
        val = ffi.wasmtime_val_t()
        ffi.wasmtime_global_get(self.ctx, byref(self.globals[name]._global), byref(val))
        outcome = {"ok": [self.describe(val)]}
        self.keep([val], outcome)
        ffi.wasmtime_val_unroot(byref(val))
        return outcome

    def set(self, name: str, spec: list) -> Dict[str, Any]:
        global_ = self.globals[name]
        val = self.make(spec, _global_type(self.ctx, global_._global)[0])
        try:
            error = ffi.wasmtime_global_set(self.ctx, byref(global_._global), byref(val))
        finally:
            ffi.wasmtime_val_unroot(byref(val))
        if error:
            return {"rejected": _error_line(error)}
        return {"ok": []}

    def final_state(self) -> Dict[str, Any]:
        """Every exported global's value, memory's size and hash, and table's size and elements."""
        state: Dict[str, Any] = {}
        for name, global_ in self.globals.items():
            val = ffi.wasmtime_val_t()
            ffi.wasmtime_global_get(self.ctx, byref(global_._global), byref(val))
            state["global " + name] = self.describe(val)
            ffi.wasmtime_val_unroot(byref(val))
        for name, memory in self.memories.items():
            size = ffi.wasmtime_memory_data_size(self.ctx, byref(memory._memory))
            data = ctypes.string_at(ffi.wasmtime_memory_data(self.ctx, byref(memory._memory)), size)
            state["memory " + name] = [size, hashlib.sha256(data).hexdigest()]
        for name, table in self.tables.items():
            size = ffi.wasmtime_table_size(self.ctx, byref(table._table))
            elements = []
            for index in range(size):
                val = ffi.wasmtime_val_t()
                assert ffi.wasmtime_table_get(self.ctx, byref(table._table), index, byref(val))
                elements.append(self.describe(val))
                ffi.wasmtime_val_unroot(byref(val))
            state["table " + name] = [size, run_lengths(elements)]
        return state

    def close(self) -> None:
        """Releases the pool's roots while the store lives, then the store."""
        for val in self.pool:
            ffi.wasmtime_val_unroot(byref(val))
        self.pool.clear()
        self.store = None


def _error_line(error: Any) -> str:
    """What an owned ``wasmtime_error_t`` says (it is freed): the last line of its message, the
    root cause (an error of running wasm reads "error while executing at wasm backtrace: ...
    Caused by: ...")."""
    lines = [line.strip() for line in str(wasmtime.WasmtimeError._from_ptr(error)).splitlines()]
    return next((line for line in reversed(lines) if line), "")


def run_lengths(elements: List[list]) -> List[list]:
    """A table's elements as [count, descriptor] runs (tables are mostly runs of one value)."""
    runs: List[list] = []
    for element in elements:
        if runs and runs[-1][1] == element:
            runs[-1][0] += 1
        else:
            runs.append([1, element])
    return runs


def run_reference(engine: wasmtime.Engine, data: bytes, seed: str, fuel: int, rounds: int) -> Dict[str, Any]:
    """Runs module ``data`` in the wasmtime package and returns the trace: the plan (steps, with
    their arguments) and every outcome, for wasmpy to replay and match.

    Each step runs with ``fuel`` fuel (so that infinite loops stop, identically on both sides):
    first every exported global is read, then ``rounds`` times every exported function is
    called (in export order), and each mutable global set with probability 0.3; last, the final
    state of every global, memory and table."""
    rng = random.Random(seed)
    trace: Dict[str, Any] = {"seed": seed, "fuel": fuel}
    try:
        module = wasmtime.Module(engine, data)
    except wasmtime.WasmtimeError as error:
        trace["compile"] = str(error).splitlines()[0]
        return trace
    trace["compile"] = "ok"
    run = ReferenceRun(engine, module, rng, fuel)
    try:
        outcome = run.instantiate()
        trace["instantiate"] = [outcome, run.fuel_used()]
        if "ok" not in outcome:
            return trace
        trace["exports"] = exports = run.exports()
        steps: List[list] = []
        trace["steps"] = steps

        def record(step: list, outcome: Dict[str, Any], fuel_used: int) -> None:
            steps.append([step, outcome, fuel_used])

        for name in run.globals:
            record(["read", name], run.read(name), 0)
        mutable = [name for name, kind, info in exports if kind == "global" and info[1]]
        funcs = [(name, info[0]) for name, kind, info in exports if kind == "func"]
        for _ in range(rounds):
            for name, params in funcs:
                args = [run.planner.argument(valtype) for valtype in params]
                if any(arg is None for arg in args):
                    run.skipped += 1
                    continue
                outcome = run.call(name, args)
                record(["call", name, args], outcome, run.fuel_used())
            for name in mutable:
                if rng.random() < 0.3:
                    spec = run.planner.argument(_global_type(run.ctx, run.globals[name]._global)[0])
                    if spec is not None:
                        record(["set", name, spec], run.set(name, spec), 0)
        trace["skipped"] = run.skipped
        trace["final"] = run.final_state()
        return trace
    finally:
        run.close()
