"""Values crossing the Python/wasm boundary: ranges, kinds, exact bits, references, v128, multi-value."""

import math
import struct

import pytest

import wasmpy
from wasmpy import FuncType, Val, ValType

I32_MIN, I32_MAX_U = -2**31, 2**32 - 1
I64_MIN, I64_MAX_U = -2**63, 2**64 - 1

IDENTITIES_WAT = """
(module
  ;; all-numeric signatures
  (func (export "id32") (param i32) (result i32) local.get 0)
  (func (export "id64") (param i64) (result i64) local.get 0)
  (func (export "idf32") (param f32) (result f32) local.get 0)
  (func (export "idf64") (param f64) (result f64) local.get 0)
  ;; the same with an extra externref parameter (a signature that is not all-numeric)
  (func (export "xid32") (param i32 externref) (result i32) local.get 0)
  (func (export "xid64") (param i64 externref) (result i64) local.get 0)
  (func (export "xidf32") (param f32 externref) (result f32) local.get 0)
  (func (export "xidf64") (param f64 externref) (result f64) local.get 0)
  ;; bit patterns
  (func (export "f32_bits") (param f32) (result i32) local.get 0 i32.reinterpret_f32)
  (func (export "f64_bits") (param f64) (result i64) local.get 0 i64.reinterpret_f64)
  (func (export "f32_from_bits") (param i32) (result f32) local.get 0 f32.reinterpret_i32)
  (func (export "f64_from_bits") (param i64) (result f64) local.get 0 f64.reinterpret_i64)
  (func (export "snan32") (result f32) i32.const 0x7fa00000 f32.reinterpret_i32)
  (func (export "snan64") (result f64) i64.const 0x7ff4000000000001 f64.reinterpret_i64)
  ;; i32/i64 seen as unsigned by wasm
  (func (export "u32_is_max") (param i32) (result i32) local.get 0 i32.const -1 i32.eq)
  (func (export "i64_hi") (param i64) (result i64) local.get 0 i64.const 32 i64.shr_u)
  ;; multi-value
  (func (export "swap") (param i32 i32) (result i32 i32) local.get 1 local.get 0)
  (func (export "four") (result i32 i64 f32 f64)
    i32.const -1 i64.const -2 f32.const 1.5 f64.const -2.25)
  (func (export "none"))
)
"""


@pytest.fixture(scope="module")
def ex():
    return wasmpy.Instance(wasmpy.Module(IDENTITIES_WAT)).exports


def _caller(ex, name, fast):
    """A one-argument caller of export `name`: the all-numeric one, or the one with an extra externref."""
    if fast:
        return getattr(ex, name)
    func = getattr(ex, "x" + name)
    return lambda value: func(value, None)


PATHS = pytest.mark.parametrize("fast", [True, False], ids=["numeric-signature", "mixed-signature"])


# --- i32 / i64 arguments: exact edges on both sides -------------------------------------------------

@PATHS
@pytest.mark.parametrize("value, expected", [
    (I32_MIN, I32_MIN),
    (I32_MIN + 1, I32_MIN + 1),
    (-1, -1),
    (0, 0),
    (2**31 - 1, 2**31 - 1),
    (2**31, I32_MIN),          # unsigned spelling of the same bits
    (I32_MAX_U - 1, -2),
    (I32_MAX_U, -1),
])
def test_i32_argument_in_range_comes_back_signed(ex, fast, value, expected):
    assert _caller(ex, "id32", fast)(value) == expected


@PATHS
@pytest.mark.parametrize("value", [I32_MIN - 1, I32_MAX_U + 1, -2**63, 2**64, 10**30])
def test_i32_argument_out_of_range_is_overflow_error(ex, fast, value):
    with pytest.raises(OverflowError):
        _caller(ex, "id32", fast)(value)


@PATHS
@pytest.mark.parametrize("value, expected", [
    (I64_MIN, I64_MIN),
    (I64_MIN + 1, I64_MIN + 1),
    (-1, -1),
    (0, 0),
    (2**63 - 1, 2**63 - 1),
    (2**63, I64_MIN),
    (I64_MAX_U - 1, -2),
    (I64_MAX_U, -1),
])
def test_i64_argument_in_range_comes_back_signed(ex, fast, value, expected):
    assert _caller(ex, "id64", fast)(value) == expected


@PATHS
@pytest.mark.parametrize("value", [I64_MIN - 1, I64_MAX_U + 1, -2**100, 2**100])
def test_i64_argument_out_of_range_is_overflow_error(ex, fast, value):
    with pytest.raises(OverflowError):
        _caller(ex, "id64", fast)(value)


def test_unsigned_spelling_reaches_wasm_as_the_same_bits(ex):
    assert ex.u32_is_max(I32_MAX_U) == 1
    assert ex.u32_is_max(-1) == 1
    assert ex.u32_is_max(2**31 - 1) == 0
    assert ex.i64_hi(I64_MAX_U) == 0xFFFFFFFF
    assert ex.i64_hi(2**63) == 0x80000000
    assert ex.i64_hi(-1) == 0xFFFFFFFF


@PATHS
@pytest.mark.parametrize("name", ["id32", "id64"])
@pytest.mark.parametrize("value", ["1", None, 1.0, 1.5, float("nan"), b"\x01", [1], 1j])
def test_integer_argument_of_wrong_kind_is_type_error(ex, fast, name, value):
    with pytest.raises(TypeError):
        _caller(ex, name, fast)(value)


@PATHS
@pytest.mark.parametrize("name", ["id32", "id64"])
def test_bool_is_an_int(ex, fast, name):
    assert _caller(ex, name, fast)(True) == 1
    assert _caller(ex, name, fast)(False) == 0


def test_argument_error_names_function_and_signature(ex):
    with pytest.raises(OverflowError) as info:
        ex.id32(2**32)
    assert "id32" in str(info.value) and "func(i32) -> i32" in str(info.value)
    with pytest.raises(TypeError) as info:
        ex.xid64("x", None)
    assert "xid64" in str(info.value) and "func(i64, externref) -> i64" in str(info.value)


# --- i32 / i64 host-function results: exact edges on both sides --------------------------------------

HOST_RESULT_WAT = """
(module
  (import "env" "r32" (func $r32 (result i32)))
  (import "env" "r64" (func $r64 (result i64)))
  (func (export "c32") (result i32) call $r32)
  (func (export "c64") (result i64) call $r64)
  (func (export "c32_is_max") (result i32) call $r32 i32.const -1 i32.eq))
"""


@pytest.fixture
def host_results():
    box = {}
    env = {"r32": lambda: box["value"], "r64": lambda: box["value"]}
    exports = wasmpy.Instance(wasmpy.Module(HOST_RESULT_WAT), {"env": env}).exports

    def call(name, value):
        box["value"] = value
        return getattr(exports, name)()

    return call


@pytest.mark.parametrize("value, expected", [
    (I32_MIN, I32_MIN), (I32_MIN + 1, I32_MIN + 1), (2**31 - 1, 2**31 - 1), (2**31, I32_MIN),
    (I32_MAX_U, -1), (0, 0),
])
def test_host_i32_result_in_range(host_results, value, expected):
    assert host_results("c32", value) == expected


def test_host_i32_unsigned_result_has_the_same_bits(host_results):
    assert host_results("c32_is_max", I32_MAX_U) == 1
    assert host_results("c32_is_max", -1) == 1


@pytest.mark.parametrize("value", [I32_MIN - 1, I32_MAX_U + 1])
def test_host_i32_result_out_of_range_is_overflow_error(host_results, value):
    with pytest.raises(OverflowError) as info:
        host_results("c32", value)
    assert "result" in str(info.value)


@pytest.mark.parametrize("value, expected", [
    (I64_MIN, I64_MIN), (I64_MIN + 1, I64_MIN + 1), (2**63 - 1, 2**63 - 1), (2**63, I64_MIN),
    (I64_MAX_U, -1), (0, 0),
])
def test_host_i64_result_in_range(host_results, value, expected):
    assert host_results("c64", value) == expected


@pytest.mark.parametrize("value", [I64_MIN - 1, I64_MAX_U + 1])
def test_host_i64_result_out_of_range_is_overflow_error(host_results, value):
    with pytest.raises(OverflowError):
        host_results("c64", value)


@pytest.mark.parametrize("name", ["c32", "c64"])
@pytest.mark.parametrize("value", [None, "3", 3.0, 2.5])
def test_host_integer_result_of_wrong_kind_is_type_error(host_results, name, value):
    with pytest.raises(TypeError):
        host_results(name, value)


def test_host_function_receives_signed_integers(store):
    seen = []

    def take(a: "i32", b: "i64") -> None:
        seen.append((a, b))

    module = wasmpy.Module("""
      (module (import "env" "take" (func $take (param i32 i64)))
        (func (export "go") i32.const -1 i64.const -1 call $take
                             i32.const 0x80000000 i64.const 0x8000000000000000 call $take
                             i32.const 0x7fffffff i64.const 0x7fffffffffffffff call $take))""")
    wasmpy.Instance(module, {"env": {"take": take}}, store).exports.go()
    assert seen == [(-1, -1), (I32_MIN, I64_MIN), (2**31 - 1, 2**63 - 1)]
    # Called directly from Python too, with unsigned spellings.
    host = wasmpy.Func(store, take)
    host(I32_MAX_U, I64_MAX_U)
    assert seen[-1] == (-1, -1)


# --- f32 / f64 ---------------------------------------------------------------------------------------

@PATHS
@pytest.mark.parametrize("name", ["idf32", "idf64"])
@pytest.mark.parametrize("value, expected", [
    (1, 1.0), (0, 0.0), (-7, -7.0), (True, 1.0), (1.5, 1.5), (-2.25, -2.25),
    (float("inf"), float("inf")), (float("-inf"), float("-inf")),
])
def test_floats_accept_int_and_float(ex, fast, name, value, expected):
    result = _caller(ex, name, fast)(value)
    assert type(result) is float
    assert result == expected


@PATHS
def test_f32_rounds_to_single_precision(ex, fast):
    assert _caller(ex, "idf32", fast)(1.1) == struct.unpack("<f", struct.pack("<f", 1.1))[0]
    assert _caller(ex, "idf64", fast)(0.1) == 0.1
    assert _caller(ex, "idf32", fast)(1e39) == float("inf")


@PATHS
@pytest.mark.parametrize("name", ["idf32", "idf64"])
def test_negative_zero_and_nan_survive(ex, fast, name):
    assert math.copysign(1.0, _caller(ex, name, fast)(-0.0)) == -1.0
    assert math.isnan(_caller(ex, name, fast)(float("nan")))


@PATHS
@pytest.mark.parametrize("name", ["idf32", "idf64"])
@pytest.mark.parametrize("value", ["1.0", None, b"x", 1j, [1.0]])
def test_float_argument_of_wrong_kind_is_type_error(ex, fast, name, value):
    with pytest.raises(TypeError):
        _caller(ex, name, fast)(value)


def test_float_bits_reach_wasm_exactly(ex):
    assert ex.f32_bits(1.0) & 0xFFFFFFFF == 0x3F800000
    assert ex.f32_bits(-0.0) & 0xFFFFFFFF == 0x80000000
    assert ex.f64_bits(1.0) & I64_MAX_U == 0x3FF0000000000000
    assert ex.f64_bits(-2.5) & I64_MAX_U == 0xC004000000000000
    assert ex.f32_from_bits(0x40490FDB) == struct.unpack("<f", bytes.fromhex("db0f4940"))[0]


def test_host_float_results_accept_int(store):
    module = wasmpy.Module("""
      (module (import "env" "f" (func $f (result f32 f64)))
        (func (export "go") (result f32 f64) call $f))""")
    exports = wasmpy.Instance(module, {"env": {"f": lambda: (3, -4)}}, store).exports
    assert exports.go() == (3.0, -4.0)
    bad = wasmpy.Instance(module, {"env": {"f": lambda: ("3", 1.0)}}, store).exports
    with pytest.raises(TypeError):
        bad.go()


# --- Val: exact bits, signalling NaNs ----------------------------------------------------------------

def test_signalling_nan_f32_round_trip_bit_exact(ex):
    snan = Val.from_bits(ValType.f32, 0x7FA00000)
    assert snan.bits == 0x7FA00000
    assert snan.type is ValType.f32
    (result,) = ex.idf32.call_vals(snan)
    assert isinstance(result, Val)
    assert result.type is ValType.f32
    assert result.bits == 0x7FA00000
    (as_int,) = ex.f32_bits.call_vals(snan)
    assert as_int.bits == 0x7FA00000


def test_signalling_nan_f64_round_trip_bit_exact(ex):
    snan = Val.from_bits(ValType.f64, 0x7FF4000000000001)
    (result,) = ex.idf64.call_vals(snan)
    assert result.bits == 0x7FF4000000000001
    (as_int,) = ex.f64_bits.call_vals(snan)
    assert as_int.bits == 0x7FF4000000000001


def test_signalling_nan_results_from_wasm_keep_their_bits(ex):
    assert ex.snan32.call_vals()[0].bits == 0x7FA00000
    assert ex.snan64.call_vals()[0].bits == 0x7FF4000000000001
    assert math.isnan(ex.snan32())


def test_call_vals_with_plain_values_and_integer_results(ex):
    results = ex.four.call_vals()
    assert [v.type for v in results] == [ValType.i32, ValType.i64, ValType.f32, ValType.f64]
    assert [v.bits for v in results] == [0xFFFFFFFF, 0xFFFFFFFFFFFFFFFE, 0x3FC00000, 0xC002000000000000]
    assert [v.value for v in results] == [-1, -2, 1.5, -2.25]
    (val,) = ex.id32.call_vals(I32_MAX_U)
    assert val.value == -1 and val.bits == I32_MAX_U
    assert ex.none.call_vals() == ()


def test_call_vals_rejects_val_of_another_type(ex):
    with pytest.raises(TypeError):
        ex.idf32.call_vals(Val(ValType.f64, 1.0))
    with pytest.raises(TypeError):
        ex.idf32.call_vals()


def test_val_api():
    assert Val(ValType.i32, -1).bits == 0xFFFFFFFF
    assert Val("i32", 0xFFFFFFFF).value == -1
    assert Val.from_bits("i64", -1).bits == I64_MAX_U
    assert Val.from_bits(ValType.i64, I64_MAX_U).value == -1
    assert Val(ValType.f32, 1.1).value == struct.unpack("<f", struct.pack("<f", 1.1))[0]
    assert Val(ValType.f64, 2).value == 2.0
    assert Val.from_bits(ValType.f32, 0x7FA00000) == Val.from_bits(ValType.f32, 0x7FA00000)
    assert Val.from_bits(ValType.f32, 0x7FA00000) != Val.from_bits(ValType.f32, 0x7FC00000)
    assert math.isnan(Val.from_bits(ValType.f32, 0x7FA00000).value)
    with pytest.raises(OverflowError):
        Val(ValType.i32, 2**32)
    with pytest.raises(OverflowError):
        Val.from_bits(ValType.f32, 2**32)
    with pytest.raises(TypeError):
        Val(ValType.i64, 1.0)
    with pytest.raises(TypeError):
        Val(ValType.f64, "1")
    with pytest.raises(TypeError):
        Val.from_bits(ValType.externref, 1)
    with pytest.raises(TypeError):
        Val(ValType.externref, object()).bits
    with pytest.raises(TypeError):
        Val("i33", 1)


def test_val_is_accepted_as_a_plain_call_argument(ex):
    snan = Val.from_bits(ValType.f32, 0x7FA00000)
    # Accepted by a signature that is not all-numeric ...
    assert math.isnan(ex.xidf32(snan, None))
    assert ex.xid32(Val(ValType.i32, 5), None) == 5
    # ... and so by an all-numeric one too.
    assert ex.id32(Val(ValType.i32, 5)) == 5
    assert math.isnan(ex.idf32(snan))


def test_valtype_members():
    assert [t.value for t in ValType][:7] == ["i32", "i64", "f32", "f64", "v128", "funcref", "externref"]
    assert {"anyref", "eqref", "i31ref", "structref", "arrayref", "exnref", "nullref", "nullfuncref",
            "nullexternref", "nullexnref"} <= {t.value for t in ValType}
    assert all(t.is_reference for t in ValType if t.value.endswith("ref"))
    assert ValType("i64") is ValType.i64
    assert str(ValType.externref) == "externref"
    assert ValType.parse("funcref") is ValType.funcref
    with pytest.raises(TypeError):
        ValType.parse("i128")


# --- multi-value ------------------------------------------------------------------------------------

def test_multi_value_exports_return_tuples(ex):
    assert ex.swap(1, 2) == (2, 1)
    assert type(ex.swap(1, 2)) is tuple
    assert ex.four() == (-1, -2, 1.5, -2.25)
    assert ex.none() is None
    assert ex.id32(3) == 3  # one result: the value itself, not a tuple


def test_multi_value_host_functions(store):
    module = wasmpy.Module("""
      (module
        (import "env" "split" (func $split (param i64) (result i32 i32 f64)))
        (func (export "go") (param i64) (result i32 i32 f64) local.get 0 call $split)
        (func (export "sum") (param i64) (result i32)
          (local f64)
          local.get 0 call $split local.set 1 i32.add))""")

    def split(x: "i64") -> ("i32", "i32", "f64"):
        return x >> 32, x & 0xFFFFFFFF, x / 2

    exports = wasmpy.Instance(module, {"env": {"split": split}}, store).exports
    assert exports.go(0x0000000500000007) == (5, 7, 0x0000000500000007 / 2)
    assert exports.sum(0x0000000500000007) == 12
    # A list is accepted as well as a tuple.
    listy = wasmpy.Instance(module, {"env": {"split": lambda x: [1, 2, 0.5]}}, store).exports
    assert listy.go(0) == (1, 2, 0.5)


@pytest.mark.parametrize("returned", [(1, 2), (1, 2, 3.0, 4), 5, None])
def test_multi_value_host_function_with_wrong_result_count(store, returned):
    module = wasmpy.Module("""
      (module (import "env" "f" (func $f (result i32 i32 f64)))
        (func (export "go") (result i32 i32 f64) call $f))""")
    exports = wasmpy.Instance(module, {"env": {"f": lambda: returned}}, store).exports
    with pytest.raises(TypeError):
        exports.go()


def test_direct_call_of_multi_value_host_func(store):
    func = wasmpy.Func(store, lambda a, b: (b, a, a + b), FuncType(["i32", "f64"], ["f64", "i32", "f64"]))
    assert func(2, 0.5) == (0.5, 2, 2.5)


def test_host_function_with_no_results_must_return_none(store):
    ok = wasmpy.Func(store, lambda: None, FuncType([], []))
    assert ok() is None
    bad = wasmpy.Func(store, lambda: 0, FuncType([], []))
    with pytest.raises(TypeError):
        bad()


# --- externref ---------------------------------------------------------------------------------------

EXTERNREF_WAT = """
(module
  (import "env" "see" (func $see (param externref) (result externref)))
  (global $g (export "g") (mut externref) (ref.null extern))
  (table $t (export "t") 8 externref)
  (func (export "id") (param externref) (result externref) local.get 0)
  (func (export "is_null") (param externref) (result i32) local.get 0 ref.is_null)
  (func (export "gset") (param externref) local.get 0 global.set $g)
  (func (export "gget") (result externref) global.get $g)
  (func (export "tset") (param i32 externref) local.get 0 local.get 1 table.set $t)
  (func (export "tget") (param i32) (result externref) local.get 0 table.get $t)
  (func (export "via_host") (param externref) (result externref) local.get 0 call $see)
  (func (export "pair") (param externref externref) (result externref externref) local.get 1 local.get 0))
"""


@pytest.fixture
def xref(store):
    seen = []

    def see(obj):
        seen.append(obj)
        return obj

    exports = wasmpy.Instance(wasmpy.Module(EXTERNREF_WAT), {"env": {"see": see}}, store).exports
    return exports, seen


class Token:
    """An object with no value equality: only identity can match it."""

    def __eq__(self, other):
        return False

    __hash__ = object.__hash__


@pytest.mark.parametrize("obj", [Token(), [1, 2], {"a": 1}, "text", 12345678901234567890, 0, False, (), Token])
def test_externref_round_trip_through_wasm_is_the_same_object(xref, obj):
    exports, _ = xref
    assert exports.id(obj) is obj
    assert exports.is_null(obj) == 0


def test_externref_none_is_null(xref):
    exports, seen = xref
    assert exports.id(None) is None
    assert exports.is_null(None) == 1
    assert exports.via_host(None) is None
    assert seen == [None]


def test_externref_through_host_function(xref):
    exports, seen = xref
    token = Token()
    assert exports.via_host(token) is token
    assert seen[-1] is token


def test_externref_multi_value(xref):
    exports, _ = xref
    a, b = Token(), Token()
    first, second = exports.pair(a, b)
    assert first is b and second is a


def test_externref_through_a_wasm_global(xref):
    exports, _ = xref
    token = Token()
    exports.gset(token)
    assert exports.g.value is token      # read from Python
    assert exports.gget() is token       # read from wasm
    other = Token()
    exports.g.value = other              # written from Python
    assert exports.gget() is other
    exports.g.value = None
    assert exports.gget() is None


def test_externref_through_a_host_global(store):
    token = Token()
    glob = wasmpy.Global(store, wasmpy.GlobalType(ValType.externref, True), token)
    assert glob.value is token
    other = [1]
    glob.value = other
    assert glob.value is other
    glob.value = None
    assert glob.value is None


def test_externref_through_a_wasm_table(xref):
    exports, _ = xref
    tokens = [Token() for _ in range(8)]
    for index, token in enumerate(tokens[:4]):
        exports.tset(index, token)
    for index, token in enumerate(tokens[4:], start=4):
        exports.t[index] = token
    assert all(exports.t[i] is tokens[i] for i in range(8))
    assert all(exports.tget(i) is tokens[i] for i in range(8))
    exports.t[0] = None
    assert exports.tget(0) is None


def test_externref_through_a_host_table(store):
    token = Token()
    table = wasmpy.Table(store, wasmpy.TableType(ValType.externref, 2), token)
    assert table[0] is token and table[1] is token
    other = Token()
    table.grow(2, other)
    assert table[2] is other and table[3] is other
    table[1] = None
    assert table[1] is None


def test_externref_kept_alive_while_wasm_holds_it(xref, store):
    import gc
    import weakref

    exports, _ = xref
    token = Token()
    ref = weakref.ref(token)
    exports.tset(5, token)
    del token
    gc.collect()
    store.gc()
    gc.collect()
    assert ref() is not None
    assert exports.tget(5) is ref()


def test_externref_from_host_result_survives(store):
    import gc

    module = wasmpy.Module("""
      (module
        (import "env" "make" (func $make (param i32) (result externref)))
        (table $t 64 externref)
        (func (export "keep") (param i32) local.get 0 local.get 0 call $make table.set $t)
        (func (export "get") (param i32) (result externref) local.get 0 table.get $t))""")
    made = {}

    def make(k):
        made[k] = obj = Token()
        return obj

    exports = wasmpy.Instance(module, {"env": {"make": make}}, store).exports
    for k in range(64):
        exports.keep(k)
    gc.collect()
    store.gc()
    assert all(exports.get(k) is made[k] for k in range(64))


# --- funcref -----------------------------------------------------------------------------------------

FUNCREF_WAT = """
(module
  (type $ii (func (param i32) (result i32)))
  (table $ft (export "ft") 4 funcref)
  (func $double (export "double") (param i32) (result i32) local.get 0 i32.const 2 i32.mul)
  (func $negate (param i32) (result i32) i32.const 0 local.get 0 i32.sub)
  (elem (table $ft) (i32.const 0) func $double $negate)
  (func (export "id") (param funcref) (result funcref) local.get 0)
  (func (export "is_null") (param funcref) (result i32) local.get 0 ref.is_null)
  (func (export "get") (param i32) (result funcref) local.get 0 table.get $ft)
  (func (export "set") (param i32 funcref) local.get 0 local.get 1 table.set $ft)
  (func (export "call") (param i32 i32) (result i32) local.get 1 local.get 0 call_indirect $ft (type $ii)))
"""


@pytest.fixture
def fref(store):
    return wasmpy.Instance(wasmpy.Module(FUNCREF_WAT), store=store).exports


def test_funcref_as_argument_and_result(fref):
    back = fref.id(fref.double)
    assert isinstance(back, wasmpy.Func)
    assert back.type == FuncType([ValType.i32], [ValType.i32])
    assert back(21) == 42
    assert fref.id(None) is None
    assert fref.is_null(None) == 1
    assert fref.is_null(fref.double) == 0


def test_funcref_result_from_a_table(fref):
    assert fref.get(0)(5) == 10
    assert fref.get(1)(5) == -5
    assert fref.get(2) is None
    assert fref.ft[1](7) == -7
    assert fref.ft[3] is None


def test_host_func_in_a_funcref_table(fref, store):
    host = wasmpy.Func(store, lambda x: x + 100, FuncType([ValType.i32], [ValType.i32]))
    fref.set(2, host)            # stored by wasm
    fref.ft[3] = fref.double     # stored by Python
    assert fref.call(2, 5) == 105
    assert fref.call(3, 5) == 10
    assert fref.ft[2](1) == 101
    fref.ft[2] = None
    assert fref.get(2) is None


def test_funcref_of_wrong_kind_is_type_error(fref):
    with pytest.raises(TypeError):
        fref.id(5)
    with pytest.raises(TypeError):
        fref.id(lambda x: x)
    with pytest.raises(TypeError):
        fref.ft[0] = "double"


def test_funcref_host_function_params_and_results(store):
    def pick(f: "funcref", x: "i32") -> "funcref":
        return f if x else None

    host = wasmpy.Func(store, pick)
    assert host.type == FuncType([ValType.funcref, ValType.i32], [ValType.funcref])
    target = wasmpy.Func(store, lambda x: x * 3, FuncType(["i32"], ["i32"]))
    assert host(target, 1)(4) == 12
    assert host(target, 0) is None
    assert host(None, 1) is None


def test_funcref_global(store, fref):
    glob = wasmpy.Global(store, wasmpy.GlobalType(ValType.funcref, True), fref.double)
    assert glob.value(4) == 8
    glob.value = None
    assert glob.value is None


# --- v128 --------------------------------------------------------------------------------------------

def test_v128_val_conversions():
    assert Val(ValType.v128, -1).bits == 2**128 - 1
    assert Val.from_bits(ValType.v128, 2**128 - 1).value == 2**128 - 1
    assert Val(ValType.v128, 2**127).bits == 2**127
    with pytest.raises(OverflowError):
        Val(ValType.v128, 2**128)
    with pytest.raises(OverflowError):
        Val(ValType.v128, -2**127 - 1)


def test_v128_used_inside_wasm():
    module = wasmpy.Module("""
      (module (func (export "lane") (param i32) (result i32)
        v128.const i32x4 10 20 30 40 local.get 0 i32x4.splat i32x4.add i32x4.extract_lane 2))""")
    assert wasmpy.Instance(module).exports.lane(5) == 35


V128_PROGRAM = """
import wasmpy
module = wasmpy.Module('''(module
  (func (export "id") (param v128) (result v128) local.get 0)
  (func (export "lanes") (result v128) v128.const i32x4 1 2 3 0x80000000))''')
e = wasmpy.Instance(module).exports
print(e.id(0), e.id(2**128 - 1), e.id(-1), e.id(0x0123456789abcdef0011223344556677), hex(e.lanes()))
"""


def test_v128_round_trip_through_wasm(run_isolated):
    done = run_isolated(V128_PROGRAM)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["0", str(2**128 - 1), str(2**128 - 1), str(0x0123456789abcdef0011223344556677),
                                   "0x80000000000000030000000200000001"]


def test_v128_host_function(run_isolated):
    done = run_isolated("""
        import wasmpy
        store = wasmpy.Store()
        f = wasmpy.Func(store, lambda x: x ^ (2**128 - 1), wasmpy.FuncType(['v128'], ['v128']))
        print(f(0), f(2**128 - 1))
    """)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == [str(2**128 - 1), "0"]


def test_v128_global(run_isolated):
    done = run_isolated("""
        import wasmpy
        g = wasmpy.Global(wasmpy.Store(), wasmpy.GlobalType('v128', True), 5)
        g.value = 2**128 - 1
        print(g.value)
    """)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == [str(2**128 - 1)]


def test_references_through_call_vals(xref, fref):
    exports, _ = xref
    token = Token()
    (val,) = exports.id.call_vals(token)
    assert val.type is ValType.externref and val.value is token
    (val,) = exports.id.call_vals(Val(ValType.externref, token))
    assert val.value is token
    (val,) = exports.id.call_vals(None)
    assert val.value is None
    (val,) = fref.id.call_vals(fref.double)
    assert val.type is ValType.funcref and val.value(3) == 6


# --- exnref: exception objects, as WasmException ---------------------------------------------------------

EXNREF_WAT = """
(module
  (tag $inner (export "inner") (param i32))
  (tag $outer (export "outer") (param exnref))
  (global (export "g") (mut exnref) (ref.null exn))
  (table (export "t") 2 exnref)
  (func $catch (export "caught") (param i32) (result exnref)
    (block $h (result i32 exnref)
      (try_table (catch_ref $inner $h) (throw $inner (local.get 0)))
      unreachable)
    return)
  (func (export "nested") (throw $outer (call $catch (i32.const 4))))
  (func (export "rethrow") (param exnref) local.get 0 throw_ref)
  (func (export "ident") (param exnref) (result exnref) local.get 0))
"""


@pytest.fixture
def exn(store):
    return wasmpy.Instance(wasmpy.Module(EXNREF_WAT), store=store).exports


def test_an_exnref_result_is_a_wasm_exception(exn):
    caught = exn.caught(9)
    assert isinstance(caught, wasmpy.WasmException)
    assert caught.tag == exn.inner and caught.payload == (9,)
    with pytest.raises(wasmpy.WasmException) as info:
        exn.rethrow(caught)
    assert info.value.payload == (9,)


def test_an_exnref_in_a_payload_is_a_wasm_exception(exn):
    with pytest.raises(wasmpy.WasmException) as info:
        exn.nested()
    assert info.value.tag == exn.outer
    (inner,) = info.value.payload
    assert inner.tag == exn.inner and inner.payload == (4,)


def test_a_wasm_exception_as_an_exnref_argument_global_and_table_element(exn):
    made = wasmpy.WasmException(exn.inner, (77,))
    assert exn.ident(made).payload == (77,)
    assert exn.ident(None) is None
    assert exn.ident.call_vals(made)[0].value.payload == (77,)
    exn.g.value = made
    assert exn.g.value.payload == (77,)
    exn.t[1] = made
    assert exn.t[1].payload == (77,) and exn.t[0] is None


def test_exnref_arguments_are_checked(exn, store):
    with pytest.raises(TypeError, match="WasmException"):
        exn.ident(5)
    other = wasmpy.Instance(wasmpy.Module(EXNREF_WAT)).exports
    with pytest.raises(TypeError, match="same store"):
        exn.ident(wasmpy.WasmException(other.inner, (1,)))
    with pytest.raises(TypeError, match="payload"):
        exn.g.value = wasmpy.WasmException(exn.inner, (1, 2))
    with pytest.raises(TypeError):
        exn.t[0] = wasmpy.WasmException(exn.inner, ("not an i32",))


def test_host_functions_take_and_return_exnrefs(store):
    module = wasmpy.Module("""
      (module
        (import "env" "swap" (func $swap (param exnref) (result exnref)))
        (tag $t (export "t") (param i32))
        (func (export "go") (result exnref)
          (block $h (result i32 exnref)
            (try_table (catch_ref $t $h) (throw $t (i32.const 1)))
            unreachable)
          (call $swap) (return) drop))
    """)
    seen = []

    def swap(exception):
        seen.append(exception.payload)
        return wasmpy.WasmException(exception.tag, (exception.payload[0] + 1,))

    exports = wasmpy.Instance(module, {"env": {"swap": swap}}, store).exports
    assert exports.go().payload == (2,)
    assert seen == [(1,)]
