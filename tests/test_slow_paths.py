"""The C conversions of csrc/values.c: calls with references, v128 or Val arguments, call_vals, host
functions taking references, globals and tables.

They run no Python code of wasmpy; they agree with the Python path (which they hand every error to)
on every value and every message; references stay rooted while Python code runs; a conversion that
fails leaves no root behind; and they hold up under reentrancy and threads.
"""

import gc
import math
import os
import sys
import threading
import weakref

import pytest

import wasmpy
from wasmpy import AnyRef, FuncType, Val, ValType
from wasmpy._ffi import ffi, lib
from wasmpy._native import HostCall
from wasmpy._values import from_val, to_val

from childproc import assert_clean_exit, run_python

WASMPY_DIR = os.path.dirname(os.path.abspath(wasmpy.__file__))
MANY = 20  # more values than the C paths keep on the stack (8) and than native.c's fast path takes (16)

WAT = f"""
(module
  (import "env" "host_ref" (func $host_ref (param externref) (result externref)))
  (import "env" "host_v128" (func $host_v128 (param v128) (result v128)))
  (import "env" "host_three" (func $host_three (param externref externref i32) (result externref externref i32)))
  (import "env" "again" (func $again (param externref i32) (result externref)))
  (import "env" "host_any" (func $host_any (param anyref) (result anyref)))
  (type $pair (struct (field i32)))
  (global (export "g32") (mut i32) (i32.const 0))
  (global (export "gf32") (mut f32) (f32.const 0))
  (global (export "gv128") (mut v128) (v128.const i64x2 0 0))
  (global (export "gref") (mut externref) (ref.null extern))
  (global (export "gfunc") (mut funcref) (ref.null func))
  (global (export "const32") i32 (i32.const 7))
  (table $objects (export "objects") 4 externref)
  (table (export "funcs") 4 funcref)
  (elem declare func $add)
  (func $add (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
  (func (export "id32") (param i32) (result i32) local.get 0)
  (func (export "id64") (param i64) (result i64) local.get 0)
  (func (export "idf32") (param f32) (result f32) local.get 0)
  (func (export "idf64") (param f64) (result f64) local.get 0)
  (func (export "ident_v128") (param v128) (result v128) local.get 0)
  (func (export "ident_ref") (param externref) (result externref) local.get 0)
  (func (export "ident_func") (param funcref) (result funcref) local.get 0)
  (func (export "ident_null") (param nullexternref) (result nullexternref) local.get 0)
  (func (export "ident_any") (param anyref) (result anyref) local.get 0)
  (func (export "ident_eq") (param eqref) (result eqref) local.get 0)
  (func (export "new_struct") (result anyref) (struct.new $pair (i32.const 7)))
  (func (export "any_and_ref") (param anyref externref) (result anyref externref) local.get 0 local.get 1)
  (func (export "three") (param externref externref i32) (result externref externref i32)
    local.get 0 local.get 1 local.get 2)
  (func (export "mixed") (param i32 i64 f32 f64 v128 externref funcref)
                         (result i32 i64 f32 f64 v128 externref funcref)
    local.get 0 local.get 1 local.get 2 local.get 3 local.get 4 local.get 5 local.get 6)
  (func (export "many_refs") (param {"externref " * MANY}) (result {"externref " * MANY})
    {" ".join(f"local.get {i}" for i in range(MANY))})
  (func (export "many_i32") (param {"i32 " * MANY}) (result {"i32 " * MANY})
    {" ".join(f"local.get {i}" for i in range(MANY))})
  ;; the object in objects[0], which it clears: the result is then its only reference
  (func (export "take") (result funcref externref) (local externref)
    (local.set 0 (table.get $objects (i32.const 0)))
    (table.set $objects (i32.const 0) (ref.null extern))
    ref.func $add
    local.get 0)
  (func (export "callhost_ref") (param externref) (result externref) local.get 0 call $host_ref)
  (func (export "callhost_any") (param anyref) (result anyref) local.get 0 call $host_any)
  (func (export "callhost_v128") (param v128) (result v128) local.get 0 call $host_v128)
  (func (export "callhost_three") (param externref externref i32) (result externref externref i32)
    local.get 0 local.get 1 local.get 2 call $host_three)
  (func (export "recurse") (param externref i32) (result externref) local.get 0 local.get 1 call $again))
"""


class Token:
    """An object wasm holds by reference: only identity can match it, and it can be weakly referenced."""

    def __eq__(self, other):
        return self is other

    __hash__ = object.__hash__


class Host:
    """The module's imports; ``three`` returns what ``three_result`` says, ``again`` calls back into wasm."""

    def __init__(self):
        self.exports = None
        self.three_result = None
        self.seen = []

    def host_ref(self, x):
        self.seen.append(x)
        return x

    def host_v128(self, x):
        return x ^ (2**128 - 1)

    def host_any(self, x):
        self.seen.append(x)
        return x

    def host_three(self, a, b, n):
        return self.three_result if self.three_result is not None else (b, a, n + 1)

    def again(self, obj, depth):
        if depth == 0:
            return obj
        inner = Token()
        assert self.exports.recurse(inner, depth - 1) is inner  # reenters the same function
        return obj

    def imports(self):
        return {"env": {"host_ref": self.host_ref, "host_v128": self.host_v128, "host_three": self.host_three,
                        "again": self.again, "host_any": self.host_any}}


@pytest.fixture
def host():
    return Host()


@pytest.fixture
def ex(store, host):
    exports = wasmpy.Instance(wasmpy.Module(WAT), host.imports(), store).exports
    host.exports = exports
    return exports


def wasmpy_functions_called(action):
    """The names of wasmpy's Python functions that run while ``action()`` does (this thread), after
    a first run (which loads the exports it uses)."""
    return [name for name in cffi_and_wasmpy_calls(action) if not name.startswith("cffi ")]


# --- the C paths run no Python code of wasmpy

def test_reference_v128_and_val_calls_run_no_python_code(ex):
    obj, add = Token(), ex.add
    a, b = Val(ValType.i32, 1), Val(ValType.i32, 2)
    calls = {
        "externref": lambda: ex.ident_ref(obj),
        "null externref": lambda: ex.ident_ref(None),
        "funcref argument": lambda: ex.ident_func(None),
        "v128": lambda: ex.ident_v128(2**100 + 5),
        "Val arguments": lambda: add(a, b),
        "every kind": lambda: ex.mixed(1, 2, 3.0, 4.0, 5, obj, add),
        "funcref": lambda: ex.ident_func(add),
        "a Python object as anyref": lambda: ex.ident_any(obj),
        "more values than the fast path takes": lambda: ex.many_i32(*range(MANY)),
        "more references than the stack buffers hold": lambda: ex.many_refs(*[obj] * MANY),
    }
    for what, call in calls.items():
        assert wasmpy_functions_called(call) == [], what


def test_call_vals_runs_only_its_own_python_frame(ex):
    assert wasmpy_functions_called(lambda: ex.add.call_vals(1, 2)) == ["call_vals"]
    assert ex.add.call_vals(1, 2) == (Val(ValType.i32, 3),)


def test_host_functions_with_references_and_v128_run_no_python_code_of_wasmpy(ex, host):
    obj = Token()
    assert wasmpy_functions_called(lambda: ex.callhost_ref(obj)) == []
    assert wasmpy_functions_called(lambda: ex.callhost_v128(5)) == []
    assert wasmpy_functions_called(lambda: ex.callhost_three(obj, None, 1)) == []
    assert wasmpy_functions_called(lambda: ex.callhost_any(obj)) == []
    assert ex.callhost_ref(obj) is obj and host.seen[-1] is obj
    assert ex.callhost_v128(5) == 5 ^ (2**128 - 1)
    assert ex.callhost_three(obj, None, 1) == (None, obj, 2)
    assert ex.callhost_any(obj) is obj and host.seen[-1] is obj


def test_globals_and_tables_run_only_their_accessor(ex):
    obj = Token()
    g, t = ex.g32, ex.objects
    assert wasmpy_functions_called(lambda: setattr(g, "value", 5)) == ["set"]
    assert wasmpy_functions_called(lambda: g.value) == ["get"]
    assert wasmpy_functions_called(lambda: t.__setitem__(1, obj)) == ["__setitem__"]
    assert wasmpy_functions_called(lambda: t[1]) == ["__getitem__"]
    assert g.value == 5 and t[1] is obj and t[-3] is obj


def cffi_and_wasmpy_calls(action):
    """The cffi functions and the Python functions of wasmpy that ``action()`` calls (this thread)."""
    action()
    called = []

    def profile(frame, event, arg):
        if event == "c_call" and type(getattr(arg, "__self__", None)).__name__ in ("Lib", "FFI"):
            called.append(f"cffi {arg.__name__}")
        elif event == "call" and frame.f_code.co_filename.startswith(WASMPY_DIR):
            called.append(frame.f_code.co_name)

    sys.setprofile(profile)
    try:
        action()
    finally:
        sys.setprofile(None)
    return called


def test_instantiation_and_host_functions_take_one_c_call_each(store, host):
    module = wasmpy.Module(WAT)
    called = cffi_and_wasmpy_calls(lambda: wasmpy.Instance(module, host.imports(), store))
    assert [name for name in called if name.startswith("cffi")] == []
    assert "_write_extern" not in called
    assert called.count("_make_host") == 5  # one per host function import, each a C call
    plain = wasmpy.Module("(module (memory (export \"memory\") 1) (func (export \"f\")))")
    assert [name for name in cffi_and_wasmpy_calls(lambda: wasmpy.Instance(plain, None, store).exports.f())
            if name.startswith("cffi")] == []  # the export is made in C too
    f = wasmpy.Func(store, host.host_ref, FuncType(["externref"], ["externref"]))
    assert f(Token()).__class__ is Token


def test_instantiation_failures_as_before(store):
    trapping = wasmpy.Module("""(module (func $start unreachable) (start $start))""")
    with pytest.raises(wasmpy.Trap) as trapped:
        wasmpy.Instance(trapping, None, store)
    assert trapped.value.code == wasmpy.TrapCode.UNREACHABLE
    needing = wasmpy.Module("""(module (import "env" "f" (func (param i32))))""")
    with pytest.raises(wasmpy.LinkError, match="env.f"):
        wasmpy.Instance(needing, {"env": {"f": lambda: None}}, store)
    with pytest.raises(wasmpy.LinkError, match="missing import env.f"):
        wasmpy.Instance(needing, {"env": {}}, store)
    closed = wasmpy.Store()
    closed.close()
    with pytest.raises(wasmpy.WasmError, match="the store is closed"):
        wasmpy.Instance(trapping, None, closed)
    with pytest.raises(wasmpy.WasmError, match="the store is closed"):
        wasmpy.Instance(needing, {"env": {"f": lambda x: None}}, closed)


# --- the same values, and the same errors, as the Python path

class SmallInt(int):
    pass


class Indexable:
    def __index__(self):
        return 3


VALUES = {
    "id32": [0, -1, 2**31, 2**32 - 1, 2**32, -2**31, -2**31 - 1, True, SmallInt(7), Indexable(), 1.5, "1",
             None, 10**30, Val(ValType.i32, 5), Val.from_bits(ValType.i32, 0xFFFFFFFF), Val(ValType.i64, 5)],
    "id64": [0, -1, 2**63, 2**64 - 1, 2**64, -2**63, -2**63 - 1, False, SmallInt(-7), Indexable(), 2.0,
             Val(ValType.i64, -1), Val(ValType.i32, 1)],
    "idf32": [1.5, 1, -0.0, math.inf, math.nan, 1e300, 2**200, 10**400, True, SmallInt(3), "x", None,
              Val.from_bits(ValType.f32, 0x7FA00000), Val(ValType.f64, 1.0)],
    "idf64": [1.5, 7, -0.0, math.inf, math.nan, 2**1023, 10**400, False, "x",
              Val.from_bits(ValType.f64, 0x7FF4000000000001)],
    "ident_v128": [0, 1, -1, 2**64, 2**128 - 1, 2**128, -2**127, -2**127 - 1, -2**64, True, SmallInt(9), 1.0,
                   "x", Val(ValType.v128, 2**127), Val(ValType.i64, 1)],
    "ident_ref": [None, "text", 0, Val(ValType.externref, None), Val(ValType.i32, 1), Val(ValType.anyref, None)],
    "ident_func": [None, "add", 5, Val(ValType.funcref, None)],
    "ident_null": [None, 0, "x", Val(ValType.nullexternref, None)],
    "ident_any": [None, "text", 0, Val(ValType.anyref, None), Val(ValType.i32, 1)],
    "ident_eq": [None, "text", Val(ValType.eqref, None)],
}


def outcome(action):
    """What ``action()`` returned (Vals by type and bits, references by identity), or what it raised."""
    try:
        result = action()
    except Exception as error:
        return type(error), str(error)
    return described(result)


def described(value):
    if isinstance(value, tuple):
        return tuple(described(item) for item in value)
    if isinstance(value, Val):
        return ("Val", value.type, value.bits if not value.type.is_reference else described(value.value))
    if isinstance(value, float):
        return ("float", value.hex())
    if isinstance(value, wasmpy.Func):
        return ("Func", value.type, value(20, 22))
    if isinstance(value, AnyRef):
        return ("AnyRef", value.store, value.kind, value.i31 if value.kind == "i31" else None)
    if value is None or isinstance(value, (int, str)):
        return value
    return ("object", id(value))


@pytest.mark.parametrize("export", sorted(VALUES))
def test_every_value_and_error_as_the_python_path(ex, store, export):
    func = getattr(ex, export)
    other_store_func = wasmpy.Instance(wasmpy.Module(WAT), Host().imports()).exports.add
    values = [ex.add if value == "add" else value for value in VALUES[export]]
    if export == "ident_func":
        values += [ex.add, other_store_func, Val(ValType.funcref, ex.add)]
    if export in ("ident_ref", "ident_any", "ident_eq", "ident_null"):
        values += [Token(), AnyRef.from_i31(store, 5), ex.new_struct(), Val(ValType.externref, Token()),
                   Val(ValType.anyref, Token()), ex.add, AnyRef.from_i31(other_store_func.store, 1)]
    for value in values:
        assert outcome(lambda: func(value)) == outcome(lambda: func._call_slow(value)), value
        assert outcome(lambda: func.call_vals(value)) == outcome(lambda: func._call_vals_slow(value)), value
    # a wrong number of arguments, and keywords
    assert outcome(lambda: func()) == outcome(lambda: func._call_slow())
    assert outcome(lambda: func(1, 2)) == outcome(lambda: func._call_slow(1, 2))
    assert outcome(lambda: func(x=1)) == outcome(lambda: func._call_slow(x=1))
    assert outcome(lambda: func.call_vals()) == outcome(lambda: func._call_vals_slow())


def test_mixed_signatures_as_the_python_path(ex):
    obj = Token()
    args = [1, 2, 3.5, 4.25, 2**100, obj, ex.add]
    assert outcome(lambda: ex.mixed(*args)) == outcome(lambda: ex.mixed._call_slow(*args))
    assert outcome(lambda: ex.mixed.call_vals(*args)) == outcome(lambda: ex.mixed._call_vals_slow(*args))
    for index, bad in enumerate(["x", 2**64, "x", None, -2**128, ex.add, obj]):
        wrong = args[:index] + [bad] + args[index + 1:]
        assert outcome(lambda: ex.mixed(*wrong)) == outcome(lambda: ex.mixed._call_slow(*wrong)), index
    refs = [Token() for _ in range(MANY)]
    assert ex.many_refs(*refs) == tuple(refs)
    assert all(got is want for got, want in zip(ex.many_refs(*refs), refs))
    assert ex.many_i32(*range(-5, MANY - 5)) == tuple(range(-5, MANY - 5))
    assert outcome(lambda: ex.many_i32(*range(MANY - 1), "x")) == outcome(
        lambda: ex.many_i32._call_slow(*range(MANY - 1), "x"))


@pytest.mark.parametrize("name, values", [
    ("g32", [5, -1, 2**32 - 1, 2**32, True, 1.5, "x", Indexable(), Val(ValType.i32, 3), Val(ValType.f32, 1.0)]),
    ("gf32", [1.5, 3, math.nan, 10**400, "x", Val.from_bits(ValType.f32, 0x7FA00000)]),
    ("gv128", [0, -1, 2**128 - 1, 2**128, "x", Val(ValType.v128, 2**100)]),
    ("gref", [None, "text", Token(), Val(ValType.externref, 4), Val(ValType.i32, 4)]),
    ("gfunc", [None, "add", "x", 4]),
])
def test_globals_as_the_python_path(ex, name, values):
    g = getattr(ex, name)
    for value in values:
        value = ex.add if value == "add" else value
        fast = outcome(lambda: setattr(g, "value", value)), outcome(lambda: g.value), outcome(lambda: g.get(True))
        slow = outcome(lambda: g._set_in_python(value)), outcome(lambda: g._get_in_python(False)), outcome(
            lambda: g._get_in_python(True))
        assert fast == slow, value


def test_tables_as_the_python_path(ex):
    obj = Token()
    for table, value in ((ex.objects, obj), (ex.funcs, ex.add), (ex.objects, Val(ValType.i32, 1)), (ex.funcs, "x")):
        for index in (0, 3, -1, -4, 4, -5, True, 2**63 - 1, -2**63, 2**70, -2**70, 1.0, "0", Indexable()):
            fast = outcome(lambda: table.__setitem__(index, value)), outcome(lambda: table[index])
            slow = outcome(lambda: table._setitem_in_python(index, value)), outcome(
                lambda: table._getitem_in_python(index))
            assert fast == slow, (table, value, index)


def host_outcomes(store, functype, fn, args):
    """What the C conversions (HostCall) and the Python path (invoke_checked) of a host function of
    ``functype`` make of ``fn`` called with ``args``: each outcome, and the results stored."""
    from wasmpy._func import _HostFunction

    host = _HostFunction(store, fn, functype)
    outcomes = []
    for invoke in (HostCall(host, fn, host._store, functype.params, functype.results), host.invoke_checked):
        vals = ffi.new("wasmtime_val_t[]", max(len(args), 1))
        results = ffi.new("wasmtime_val_t[]", max(len(functype.results), 1))
        for index, (valtype, value) in enumerate(zip(functype.params, args)):
            vals[index] = to_val(store, valtype, value)[0]
        address = int(ffi.cast("uintptr_t", vals))
        with store._lock:
            done = outcome(lambda: invoke(address, int(ffi.cast("uintptr_t", results))))
            stored = [described(from_val(store, results + i)) for i in range(len(functype.results))] \
                if done is None else None
            for index in range(len(args)):
                lib.wasmtime_val_unroot(vals + index)
        outcomes.append((done, stored))
    return outcomes


@pytest.mark.parametrize("result", [
    (None, None, 1), ("a", "b", -1), ("a", "b", 2**32), ("a", "b", "x"), ("a", "b"), ["a", "b", 3], ("a", "b", 3, 4),
    5, None, "text", (Val(ValType.externref, 1), None, Val(ValType.i32, 2)), (None, None, Val(ValType.i64, 2)),
])
def test_host_results_as_the_python_path(store, result):
    functype = FuncType(["externref", "externref", "i32"], ["externref", "externref", "i32"])
    fast, slow = host_outcomes(store, functype, lambda a, b, n: result, ["x", None, 1])
    assert fast == slow


def test_host_arguments_as_the_python_path(store):
    obj = Token()
    functype = FuncType(["i32", "i64", "f32", "f64", "v128", "externref", "funcref"], ["externref"])
    fast, slow = host_outcomes(store, functype, lambda *args: (repr(args),), [-1, 2**63, 1.5, -0.0, 2**127, obj, None])
    assert fast == slow and fast[0] is None


# --- roots

def test_a_bad_argument_leaves_no_root(ex, store):
    first, second = Token(), Token()
    alive = [weakref.ref(first), weakref.ref(second)]
    with pytest.raises(TypeError, match=r"three\(\) argument 3: expected an int for i32, got str"):
        ex.three(first, second, "bad")
    with pytest.raises(OverflowError, match="argument 3"):
        ex.three(first, second, 2**40)
    del first, second
    store.gc()
    gc.collect()
    assert [ref() for ref in alive] == [None, None]


def test_an_interrupted_conversion_leaves_no_root(ex, store):
    class Interrupting:
        def __index__(self):
            raise KeyboardInterrupt

    first = Token()
    alive = weakref.ref(first)
    with pytest.raises(KeyboardInterrupt):
        ex.three(first, None, Interrupting())
    del first
    store.gc()
    gc.collect()
    assert alive() is None


def test_a_bad_host_result_leaves_no_root(ex, host, store):
    first, second = Token(), Token()
    alive = [weakref.ref(first), weakref.ref(second)]
    host.three_result = (first, second, "bad")
    with pytest.raises(TypeError, match="result 3"):
        ex.callhost_three(None, None, 1)
    host.three_result = None
    del first, second
    store.gc()
    gc.collect()
    assert [ref() for ref in alive] == [None, None]


def test_host_arguments_stay_rooted_while_python_runs(ex, store, host):
    def collect_then_return(x):
        store.gc()
        gc.collect()
        return x

    host.host_ref = collect_then_return
    exports = wasmpy.Instance(wasmpy.Module(WAT), host.imports(), store).exports
    assert exports.callhost_ref(Token()).__class__ is Token


def test_results_stay_rooted_while_python_converts_the_others():
    # take() returns (funcref, externref): the funcref goes to Python's conversion, which collects
    # first; the externref, read after it, is then the object's only reference.
    proc = run_python("""
        import gc
        import wasmpy
        from wasmpy import _values
        from test_slow_paths import WAT, Host, Token

        store = wasmpy.Store()
        host = Host()
        ex = wasmpy.Instance(wasmpy.Module(WAT), host.imports(), store).exports
        python_from_val = _values.from_val

        def collecting(*args, **kwargs):
            store.gc()
            gc.collect()
            return python_from_val(*args, **kwargs)

        _values.from_val = collecting
        for _ in range(200):
            ex.objects[0] = Token()
            func, obj = ex.take()
            assert type(obj) is Token and func(1, 2) == 3, (func, obj)
        print("ok")
    """, timeout=300)
    assert_clean_exit(proc)
    assert proc.stdout.strip().endswith("ok")


# --- reentrancy, threads, closed stores

def test_host_function_reenters_the_same_function(ex):
    obj = Token()
    assert ex.recurse(obj, 50) is obj


def test_threads_share_a_store_and_its_functions(ex, store):
    failures = []
    other = wasmpy.Instance(wasmpy.Module(WAT), Host().imports()).exports

    def work(exports, seed):
        try:
            for i in range(300):
                obj = Token()
                assert exports.ident_ref(obj) is obj
                assert exports.callhost_ref(obj) is obj
                assert exports.mixed(i, -i, 0.5, seed, 2**100 + i, obj, None)[4:6] == (2**100 + i, obj)
                assert exports.add.call_vals(i, seed) == (Val(ValType.i32, i + seed),)
                exports.objects[seed % 4] = obj  # a slot of this thread's own
                assert exports.objects[seed % 4] is obj
                exports.g32.value = i
                assert isinstance(exports.g32.value, int)
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=work, args=(ex if n % 2 else other, n)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_a_closed_store_raises_as_before(ex, store):
    g, t, ident_ref, ident_v128, add = ex.g32, ex.objects, ex.ident_ref, ex.ident_v128, ex.add
    store.close()
    for action in (lambda: ident_ref(None), lambda: add.call_vals(1, 2), lambda: g.value,
                   lambda: setattr(g, "value", 1), lambda: t[0], lambda: t.__setitem__(0, None),
                   lambda: ident_v128(1)):
        with pytest.raises(wasmpy.WasmError, match="the store is closed"):
            action()


def test_anyref_conversions_cost_no_fuel_and_keep_the_deadline():
    engine = wasmpy.Engine(consume_fuel=True)
    store = wasmpy.Store(engine, fuel=10**9)
    host = Host()
    ex = wasmpy.Instance(wasmpy.Module(WAT, engine), host.imports(), store).exports
    obj = Token()

    def fuel_of(call):
        before = store.fuel
        call()
        return before - store.fuel

    assert fuel_of(lambda: ex.ident_any(obj)) == fuel_of(lambda: ex.ident_any(None))
    assert fuel_of(lambda: ex.callhost_any(obj)) == fuel_of(lambda: ex.callhost_any(None))
    store.fuel = fuel_of(lambda: ex.any_and_ref(None, None))  # exactly what the call itself needs
    assert ex.any_and_ref(obj, obj) == (obj, obj)
    assert store.fuel == 0
    store.fuel = 10**6
    store.set_deadline(3600)
    deadline = store._handle.deadline_ns
    assert ex.callhost_any(obj) is obj
    assert store._handle.deadline_ns == deadline


def test_func_checks_a_functions_annotations_once_per_type(store):
    def typed(x: "externref") -> "externref":
        return x

    functype = FuncType(["externref"], ["externref"])
    called = wasmpy_functions_called(lambda: wasmpy.Func(store, typed, functype))
    assert "check_annotations" not in called and "_make_host" in called
    with pytest.raises(wasmpy.LinkError, match="annotated"):
        wasmpy.Func(store, typed, FuncType(["i32"], ["externref"]))
    with pytest.raises(wasmpy.LinkError, match="annotated"):  # a mismatch is not remembered as a fit
        wasmpy.Func(store, typed, FuncType(["i32"], ["externref"]))
