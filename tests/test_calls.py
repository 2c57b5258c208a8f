"""Calls in both directions: Func, host functions, imports, and Python exceptions through wasm frames."""

import threading
import traceback
import types

import pytest

import wasmpy
from wasmpy import Func, FuncType, LinkError, ValType


class HostError(Exception):
    """Raised by host functions in these tests."""


def _frame_names(exception):
    return [frame.name for frame in traceback.extract_tb(exception.__traceback__)]


# --- Func from Python callables ----------------------------------------------------------------------

def test_func_type_from_string_annotations(store):
    def add(a: "i32", b: "i64", c: "f32", d: "f64") -> "f64":
        return a + b + c + d

    func = Func(store, add)
    assert isinstance(func, Func)
    assert func.type == FuncType([ValType.i32, ValType.i64, ValType.f32, ValType.f64], [ValType.f64])
    assert func.type.params == (ValType.i32, ValType.i64, ValType.f32, ValType.f64)
    assert func.type.results == (ValType.f64,)
    assert func(1, 2, 0.5, 0.25) == 3.75


def test_func_type_from_valtype_annotations_and_tuple_result(store):
    def divmod_(a: ValType.i32, b: ValType.i32) -> (ValType.i32, ValType.i32):
        return divmod(a, b)

    func = Func(store, divmod_)
    assert func.type == FuncType(["i32", "i32"], ["i32", "i32"])
    assert func(17, 5) == (3, 2)


def test_func_without_results(store):
    calls = []

    def note(x: "i32") -> None:
        calls.append(x)

    func = Func(store, note)
    assert func.type == FuncType(["i32"], [])
    assert func(7) is None
    assert calls == [7]


def test_func_with_explicit_type_ignores_missing_annotations(store):
    func = Func(store, lambda a, b: a * b, FuncType([ValType.i64, ValType.i64], [ValType.i64]))
    assert func.type == FuncType(["i64", "i64"], ["i64"])
    assert func(2**31, 2) == 2**32
    assert func(2**62, 2) == -2**63  # wraps like wasm's i64: the result comes back signed


def test_func_type_strings():
    assert str(FuncType(["i32", "i64"], ["f32"])) == "func(i32, i64) -> f32"
    assert str(FuncType([], [])) == "func()"
    assert str(FuncType(["f64"], ["i32", "i32"])) == "func(f64) -> (i32, i32)"
    assert FuncType(["i32"], ["i32"]) == FuncType([ValType.i32], [ValType.i32])
    assert FuncType(["i32"], ["i32"]) != FuncType(["i64"], ["i32"])


def test_func_without_annotations_or_type_is_type_error(store):
    with pytest.raises(TypeError):
        Func(store, lambda x: x)

    def plain_int(x: int) -> int:
        return x

    with pytest.raises(TypeError):  # int does not say which width
        Func(store, plain_int)


def test_func_bad_arguments(store):
    with pytest.raises(TypeError):
        Func(store, 42)
    with pytest.raises(TypeError):
        Func(None, lambda: None, FuncType([], []))
    with pytest.raises(TypeError):
        Func(store, lambda: None, "func()")

    def bad(x: "i33"):
        pass

    with pytest.raises(TypeError):
        Func(store, bad)


def test_func_explicit_type_contradicting_annotations_is_link_error(store):
    def f(x: "i32") -> "i32":
        return x

    with pytest.raises(LinkError):
        Func(store, f, FuncType(["f64"], ["i32"]))


# --- calling exports --------------------------------------------------------------------------------

CALLS_WAT = """
(module
  (func (export "nothing"))
  (func (export "one") (result i32) i32.const 1)
  (func (export "two") (param i32) (result i32 i64) local.get 0 i64.const 2)
  (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add)
  (func (export "mixed") (param i32 externref) (result externref) local.get 1)
  (func (export "many") (param i32 i64 f32 f64 i32 i64 f32 f64 i32 i64) (result f64)
    local.get 0 f64.convert_i32_s local.get 1 f64.convert_i64_s f64.add
    local.get 2 f64.promote_f32 f64.add local.get 3 f64.add
    local.get 4 f64.convert_i32_s f64.add local.get 5 f64.convert_i64_s f64.add
    local.get 6 f64.promote_f32 f64.add local.get 7 f64.add
    local.get 8 f64.convert_i32_s f64.add local.get 9 f64.convert_i64_s f64.add))
"""


@pytest.fixture(scope="module")
def calls():
    return wasmpy.Instance(wasmpy.Module(CALLS_WAT)).exports


def test_call_results_none_value_tuple(calls):
    assert calls.nothing() is None
    assert calls.one() == 1
    assert calls.two(5) == (5, 2)
    assert calls.add(2, 3) == 5
    assert calls.many(1, 2, 3.0, 4.0, 5, 6, 7.0, 8.0, 9, 10) == 55.0


def test_export_func_type(calls):
    assert calls.two.type == FuncType(["i32"], ["i32", "i64"])
    assert calls.nothing.type == FuncType()
    assert calls.mixed.type == FuncType(["i32", "externref"], ["externref"])


@pytest.mark.parametrize("name, args, signature", [
    ("add", (), "func(i32, i32) -> i32"),
    ("add", (1,), "func(i32, i32) -> i32"),
    ("add", (1, 2, 3), "func(i32, i32) -> i32"),
    ("nothing", (1,), "func()"),
    ("mixed", (1,), "func(i32, externref) -> externref"),
    ("mixed", (1, None, None), "func(i32, externref) -> externref"),
])
def test_wrong_number_of_arguments_is_type_error_naming_function_and_signature(calls, name, args, signature):
    with pytest.raises(TypeError) as info:
        getattr(calls, name)(*args)
    message = str(info.value)
    assert name in message
    assert signature in message
    assert str(len(args)) in message


def test_wrong_number_of_arguments_to_a_host_func(store):
    def scale(x: "f64", y: "f64") -> "f64":
        return x * y

    func = Func(store, scale)
    with pytest.raises(TypeError) as info:
        func(1.0)
    assert "scale" in str(info.value) and "func(f64, f64) -> f64" in str(info.value)
    with pytest.raises(TypeError):
        func.call_vals(1.0, 2.0, 3.0)


# --- host functions called from wasm -----------------------------------------------------------------

def test_host_function_typed_from_the_import_declaration(store):
    module = wasmpy.Module("""
      (module (import "env" "combine" (func $c (param i64 f32) (result f64)))
        (func (export "go") (param i64 f32) (result f64) local.get 0 local.get 1 call $c))""")
    got = []

    def combine(a, b):
        got.append((a, b))
        return a + b

    exports = wasmpy.Instance(module, {"env": {"combine": combine}}, store).exports
    assert exports.go(-2**63, 0.5) == float(-2**63) + 0.5
    assert got == [(-2**63, 0.5)]
    assert type(got[0][0]) is int and type(got[0][1]) is float


def test_reentrant_calls_in_one_store(store):
    module = wasmpy.Module("""
      (module
        (import "env" "up" (func $up (param i32) (result i32)))
        (func (export "down") (param i32) (result i32)
          local.get 0 i32.eqz if (result i32) i32.const 0
          else local.get 0 i32.const 1 i32.sub call $up i32.const 1 i32.add end))""")
    holder = {}
    exports = wasmpy.Instance(module, {"env": {"up": lambda n: holder["down"](n)}}, store).exports
    holder["down"] = exports.down
    assert exports.down(50) == 50


def test_call_indirect_of_a_host_function_in_a_table(store):
    module = wasmpy.Module("""
      (module (type $t (func (param i32) (result i32)))
        (import "env" "table" (table 1 funcref))
        (func (export "go") (param i32) (result i32) local.get 0 i32.const 0 call_indirect (type $t)))""")
    table = wasmpy.Table(store, wasmpy.TableType("funcref", 1))
    table[0] = Func(store, lambda x: x - 1, FuncType(["i32"], ["i32"]))
    assert wasmpy.Instance(module, {"env": {"table": table}}, store).exports.go(10) == 9


# --- imports: the ways to give them -------------------------------------------------------------------

IMPORTS_WAT = """
(module
  (import "env" "f" (func $f (param i32) (result i32)))
  (import "env" "mem" (memory 1))
  (func (export "call") (param i32) (result i32) local.get 0 call $f)
  (func (export "peek") (param i32) (result i32) local.get 0 i32.load8_u))
"""


@pytest.fixture
def imports_module():
    return wasmpy.Module(IMPORTS_WAT)


def _check_linked(instance, memory, factor):
    memory.write(3, b"\x2a")
    assert instance.exports.call(7) == 7 * factor
    assert instance.exports.peek(3) == 42


def test_imports_from_dict(imports_module, store):
    memory = wasmpy.Memory(store, wasmpy.MemoryType(1))
    instance = wasmpy.Instance(imports_module, {"env": {"f": lambda x: x * 2, "mem": memory}}, store)
    _check_linked(instance, memory, 2)


def test_imports_from_simple_namespace(imports_module, store):
    memory = wasmpy.Memory(store, wasmpy.MemoryType(1))
    env = types.SimpleNamespace(f=lambda x: x * 3, mem=memory)
    _check_linked(wasmpy.Instance(imports_module, {"env": env}, store), memory, 3)


def test_imports_from_python_module(imports_module, store):
    env = types.ModuleType("env")
    env.f = lambda x: x * 4
    env.mem = wasmpy.Memory(store, wasmpy.MemoryType(2))
    _check_linked(wasmpy.Instance(imports_module, {"env": env}, store), env.mem, 4)


def test_imports_from_another_instances_exports(imports_module, store):
    provider = wasmpy.Instance(wasmpy.Module("""
      (module (memory (export "mem") 1)
        (func (export "f") (param i32) (result i32) local.get 0 i32.const 5 i32.mul))"""), store=store)
    instance = wasmpy.Instance(imports_module, {"env": provider.exports}, store)
    _check_linked(instance, provider.exports.mem, 5)


@pytest.mark.parametrize("kind", [list, tuple])
def test_imports_as_sequence_in_import_order(imports_module, store, kind):
    memory = wasmpy.Memory(store, wasmpy.MemoryType(1))
    instance = wasmpy.Instance(imports_module, kind([lambda x: x * 6, memory]), store)
    _check_linked(instance, memory, 6)


def test_imports_as_func_objects(imports_module, store):
    memory = wasmpy.Memory(store, wasmpy.MemoryType(1))
    func = Func(store, lambda x: x * 7, FuncType(["i32"], ["i32"]))
    _check_linked(wasmpy.Instance(imports_module, {"env": {"f": func, "mem": memory}}, store), memory, 7)


def test_imports_sequence_of_wrong_length_is_link_error(imports_module, store):
    with pytest.raises(LinkError):
        wasmpy.Instance(imports_module, [lambda x: x], store)


def test_imports_of_wrong_container_type(imports_module, store):
    with pytest.raises(TypeError):
        wasmpy.Instance(imports_module, 42, store)


def test_immutable_global_import_from_a_number(run_isolated):
    done = run_isolated("""
        import wasmpy
        module = wasmpy.Module('(module (import "env" "g" (global i64)) '
                               '(func (export "get") (result i64) global.get 0))')
        print(wasmpy.Instance(module, {"env": {"g": 2**64 - 1}}).exports.get())
    """)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["-1"]


def test_immutable_global_import_from_out_of_range_number_is_link_error(store):
    # Rejected before anything reaches wasmtime.
    module = wasmpy.Module('(module (import "env" "g" (global i32)))')
    with pytest.raises(LinkError) as info:
        wasmpy.Instance(module, {"env": {"g": 2**32}}, store)
    assert "env.g" in str(info.value)


def test_mutable_global_import_needs_a_global(store):
    module = wasmpy.Module('(module (import "env" "g" (global (mut i32))))')
    with pytest.raises(LinkError) as info:
        wasmpy.Instance(module, {"env": {"g": 5}}, store)
    assert "env.g" in str(info.value)


# --- annotation checks on imported callables ---------------------------------------------------------

CALLBACK_WAT = """
(module (import "env" "callback" (func $cb (param i64 f32) (result i32)))
  (func (export "go") (param i64 f32) (result i32) local.get 0 local.get 1 call $cb))
"""


@pytest.fixture(scope="module")
def callback_module():
    return wasmpy.Module(CALLBACK_WAT)


def test_matching_annotations_are_accepted(callback_module, store):
    def exact(a: "i64", b: "f32") -> "i32":
        return a + int(b)

    def loose(a: int, b: float) -> int:
        return a - int(b)

    def partial(a, b: "f32"):
        return 9

    assert wasmpy.Instance(callback_module, {"env": {"callback": exact}}, store).exports.go(40, 2.0) == 42
    assert wasmpy.Instance(callback_module, {"env": {"callback": loose}}, store).exports.go(40, 2.0) == 38
    assert wasmpy.Instance(callback_module, {"env": {"callback": partial}}, store).exports.go(0, 0) == 9


def _mismatch(a: "i32", b: "f32") -> "i32":
    return 0


def _result_mismatch(a: "i64", b: "f32") -> "i64":
    return 0


def _float_for_int(a: float, b: float) -> int:
    return 0


def _too_many(a: "i64", b: "f32", c: "i32") -> "i32":
    return 0


def _no_result(a: "i64", b: "f32") -> None:
    return None


@pytest.mark.parametrize("callback", [_mismatch, _result_mismatch, _float_for_int, _too_many, _no_result])
def test_annotation_mismatch_is_link_error_naming_the_import(callback_module, store, callback):
    with pytest.raises(LinkError) as info:
        wasmpy.Instance(callback_module, {"env": {"callback": callback}}, store)
    message = str(info.value)
    assert "env.callback" in message
    assert "func(i64, f32) -> i32" in message
    assert isinstance(info.value, ImportError)


def test_annotation_mismatch_message_shows_the_annotations(callback_module, store):
    with pytest.raises(LinkError) as info:
        wasmpy.Instance(callback_module, {"env": {"callback": _mismatch}}, store)
    assert "i32" in str(info.value).split("but")[0]


def test_a_callable_that_fitted_one_import_is_still_checked_against_another(callback_module, store):
    def callback(a: "i64", b: "f32") -> "i32":
        return 7

    other = wasmpy.Module('(module (import "env" "callback" (func (param i32 f32) (result i32))))')
    for _ in range(2):  # the second round finds the first round's checks remembered
        assert wasmpy.Instance(callback_module, {"env": {"callback": callback}}, store).exports.go(0, 0) == 7
        with pytest.raises(LinkError, match="env.callback"):
            wasmpy.Instance(other, {"env": {"callback": callback}}, store)


def test_callables_that_cannot_be_weakly_referenced_are_checked_every_time(store):
    module = wasmpy.Module('(module (import "env" "f" (func (param f64) (result f64))) '
                           '(func (export "go") (param f64) (result f64) local.get 0 call 0))')
    for _ in range(2):
        assert wasmpy.Instance(module, {"env": {"f": abs}}, store).exports.go(-2.5) == 2.5
    with pytest.raises(LinkError):
        wasmpy.Instance(module, {"env": {"f": divmod}}, store)


def test_one_functype_serves_host_functions_of_several_engines():
    functype = FuncType(["i32"], ["i32"])
    wat = ('(module (import "env" "f" (func (param i32) (result i32))) '
           '(func (export "go") (param i32) (result i32) local.get 0 call 0))')
    for engine in (wasmpy.Engine(), wasmpy.Engine(epoch_interruption=False), wasmpy.Engine()):
        store = wasmpy.Store(engine)
        double = Func(store, lambda x: 2 * x, functype)
        assert double(21) == 42
        assert wasmpy.Instance(wasmpy.Module(wat, engine), [double], store).exports.go(5) == 10


def test_unannotated_callable_with_wrong_arity_is_link_error(callback_module, store):
    with pytest.raises(LinkError) as info:
        wasmpy.Instance(callback_module, {"env": {"callback": lambda a: 0}}, store)
    assert "env.callback" in str(info.value)


def test_varargs_callable_is_accepted(callback_module, store):
    exports = wasmpy.Instance(callback_module, {"env": {"callback": lambda *args: len(args)}}, store).exports
    assert exports.go(1, 2.0) == 2


def test_callable_with_defaulted_extra_parameter_is_accepted(callback_module, store):
    exports = wasmpy.Instance(callback_module, {"env": {"callback": lambda a, b, c=100: a + c}}, store).exports
    assert exports.go(1, 2.0) == 101


FUTURE_SOURCE = """
from __future__ import annotations

def split(x: 'i64') -> ('i32', 'i32'):
    return x >> 32, x & 0xFFFFFFFF

def scalar(x: 'i32', y: ValType.f64) -> 'f64':
    return x + y
"""


def _future_namespace():
    namespace = {"ValType": ValType}
    exec(compile(FUTURE_SOURCE, "<future annotations>", "exec"), namespace)
    return namespace


def test_postponed_annotations_single_result(store):
    func = Func(store, _future_namespace()["scalar"])
    assert func.type == FuncType(["i32", "f64"], ["f64"])
    assert func(1, 0.5) == 1.5


def test_postponed_annotations_tuple_result(store):
    func = Func(store, _future_namespace()["split"])
    assert func.type == FuncType(["i64"], ["i32", "i32"])
    assert func(0x0000000500000007) == (5, 7)


# --- Python exceptions through wasm frames ------------------------------------------------------------

RAISE_WAT = """
(module
  (import "env" "host" (func $host (param i32) (result i32)))
  (func (export "run") (param i32) (result i32) local.get 0 call $host))
"""


def test_host_exception_reaches_caller_unchanged(store):
    error = HostError("boom")

    def raising_host(x):
        raise error

    exports = wasmpy.Instance(wasmpy.Module(RAISE_WAT), {"env": {"host": raising_host}}, store).exports
    with pytest.raises(HostError) as info:
        exports.run(1)
    assert info.value is error
    assert info.value.args == ("boom",)
    assert "raising_host" in _frame_names(info.value)  # the traceback still reaches the raise


def test_store_still_works_after_a_host_exception(store):
    def maybe(x):
        if x < 0:
            raise HostError(x)
        return x + 1

    exports = wasmpy.Instance(wasmpy.Module(RAISE_WAT), {"env": {"host": maybe}}, store).exports
    for _ in range(3):
        with pytest.raises(HostError):
            exports.run(-1)
        assert exports.run(1) == 2


@pytest.mark.parametrize("exception_type", [ValueError, KeyError, ZeroDivisionError, KeyboardInterrupt,
                                            SystemExit, wasmpy.Trap, wasmpy.WasmError])
def test_any_exception_type_passes_through(store, exception_type):
    error = exception_type("x")

    def host(x):
        raise error

    exports = wasmpy.Instance(wasmpy.Module(RAISE_WAT), {"env": {"host": host}}, store).exports
    with pytest.raises(exception_type) as info:
        exports.run(0)
    assert info.value is error


def test_host_result_conversion_errors_reach_the_caller(store):
    exports = wasmpy.Instance(wasmpy.Module(RAISE_WAT), {"env": {"host": lambda x: "nope"}}, store).exports
    with pytest.raises(TypeError):
        exports.run(0)
    assert wasmpy.Instance(wasmpy.Module(RAISE_WAT), {"env": {"host": lambda x: x}}, store).exports.run(4) == 4


def test_host_exception_from_a_direct_call(store):
    error = HostError()

    def host():
        raise error

    func = Func(store, host, FuncType([], ["i32"]))
    with pytest.raises(HostError) as info:
        func()
    assert info.value is error
    with pytest.raises(HostError):
        func.call_vals()


NESTED_WAT = """
(module
  (import "env" "outer" (func $outer (param i32) (result i32)))
  (import "env" "inner" (func $inner (param i32) (result i32)))
  (func $a (export "a") (param i32) (result i32) local.get 0 call $outer i32.const 1 i32.add)
  (func $b (export "b") (param i32) (result i32) local.get 0 call $inner i32.const 1 i32.add))
"""


def test_exception_through_nested_wasm_frames(store):
    """Python -> wasm -> Python -> wasm -> Python raising."""
    error = HostError("deep")
    holder = {}

    def outer(x):
        return holder["b"](x) * 10

    def inner(x):
        if x < 0:
            raise error
        return x

    exports = wasmpy.Instance(wasmpy.Module(NESTED_WAT), {"env": {"outer": outer, "inner": inner}}, store).exports
    holder["b"] = exports.b
    assert exports.a(3) == 41
    with pytest.raises(HostError) as info:
        exports.a(-1)
    assert info.value is error
    names = _frame_names(info.value)
    assert "outer" in names and "inner" in names
    assert names.index("outer") < names.index("inner")
    assert exports.a(4) == 51


def test_exception_caught_by_an_outer_host_function(store):
    holder = {}

    def outer(x):
        try:
            return holder["b"](x)
        except HostError as error:
            return error.args[0]

    def inner(x):
        raise HostError(x * 100)

    exports = wasmpy.Instance(wasmpy.Module(NESTED_WAT), {"env": {"outer": outer, "inner": inner}}, store).exports
    holder["b"] = exports.b
    assert exports.a(2) == 201
    assert exports.a(3) == 301


def test_exception_across_two_stores(store):
    """A host function of one store calling into another store whose host function raises."""
    other = wasmpy.Store()
    error = HostError()

    def raising(x):
        raise error

    inner = wasmpy.Instance(wasmpy.Module(RAISE_WAT), {"env": {"host": raising}}, other).exports
    outer = wasmpy.Instance(wasmpy.Module(RAISE_WAT), {"env": {"host": lambda x: inner.run(x)}}, store).exports
    with pytest.raises(HostError) as info:
        outer.run(1)
    assert info.value is error


def test_exception_from_a_start_function(store):
    error = HostError("start")

    def host():
        raise error

    module = wasmpy.Module('(module (import "env" "init" (func $init)) (start $init))')
    with pytest.raises(HostError) as info:
        wasmpy.Instance(module, {"env": {"init": host}}, store)
    assert info.value is error


def test_exception_through_call_indirect_and_funcref(store):
    error = HostError()

    def host(x):
        raise error

    module = wasmpy.Module("""
      (module (type $t (func (param i32) (result i32))) (table $tab 1 funcref)
        (func (export "put") (param funcref) i32.const 0 local.get 0 table.set $tab)
        (func (export "go") (param i32) (result i32) local.get 0 i32.const 0 call_indirect (type $t)))""")
    exports = wasmpy.Instance(module, store=store).exports
    exports.put(Func(store, host, FuncType(["i32"], ["i32"])))
    with pytest.raises(HostError) as info:
        exports.go(1)
    assert info.value is error


def test_exceptions_from_several_threads_each_with_its_own_store():
    module = wasmpy.Module(NESTED_WAT)
    workers, rounds = 8, 100
    barrier = threading.Barrier(workers)
    outcomes = [None] * workers

    def work(k):
        store = wasmpy.Store()
        raised = {}
        holder = {}

        def outer(x):
            return holder["b"](x) + k

        def inner(x):
            if x % 3 == 0:
                raised[x] = HostError(k, x)
                raise raised[x]
            return x * 2

        exports = wasmpy.Instance(module, {"env": {"outer": outer, "inner": inner}}, store).exports
        holder["b"] = exports.b
        barrier.wait()
        results = []
        for x in range(rounds):
            try:
                results.append(("ok", exports.a(x)))
            except HostError as error:
                results.append(("raised", error is raised[x] and error.args == (k, x)))
            except BaseException as error:  # anything else is a failure, reported below
                results.append(("unexpected", repr(error)))
        outcomes[k] = results

    threads = [threading.Thread(target=work, args=(k,)) for k in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for k, results in enumerate(outcomes):
        expected = [("raised", True) if x % 3 == 0 else ("ok", x * 2 + 1 + k + 1) for x in range(rounds)]
        assert results == expected, f"thread {k}"
