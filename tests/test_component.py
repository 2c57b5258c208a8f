"""The component model: wasmpy.Component, instances of components, WIT values both ways.

The test component tests/components/rich.wasm (sources and build.sh beside it) exports, in
its interface test:rich/api, one ``roundtrip-*`` function per WIT type that passes its
argument to the matching ``echo-*`` import of test:rich/host and returns what that import
returned: each value goes Python -> wasm (an argument), wasm -> Python (an import's argument),
Python -> wasm (the import's result) and wasm -> Python (the export's result).
"""

import copy
import dataclasses
import enum
import os
import pickle
import types
from pathlib import Path

import pytest

import wasmpy
from wasmpy import Component, Err, Instance, Ok
from wasmpy.component import ComponentInstance, Some

from childproc import assert_clean_exit, run_python

COMPONENTS = Path(__file__).resolve().parent / "components"
RICH = COMPONENTS / "rich.wasm"
RESOURCES = COMPONENTS / "resources.wasm"
DUMMY = COMPONENTS / "dummy.wasm"


class Echo:
    """test:rich/host: every echo-* returns its argument; records what it was given."""

    def __init__(self):
        self.seen = []

    def __getattr__(self, name):
        if not name.startswith("echo_"):
            raise AttributeError(name)

        def echo(value):
            self.seen.append((name, value))
            return value
        return echo

    def echo_two(self, a, b):
        return (a, b)

    def get_name(self):
        return "host"


@pytest.fixture(scope="module")
def rich():
    return Component.from_file(RICH)


@pytest.fixture
def host():
    return Echo()


@pytest.fixture
def log():
    return []


@pytest.fixture
def exports(rich, host, log):
    return Instance(rich, {"log": log.append, "test:rich/host": host}).exports


@pytest.fixture
def api(exports):
    return exports.api


# --- Component ------------------------------------------------------------------------------

def test_compiles_from_bytes_file_and_text(rich):
    assert isinstance(Component(RICH.read_bytes()), Component)
    assert isinstance(Component(bytearray(RICH.read_bytes())), Component)
    text = Component('(component (core module $m (func (export "f"))) (core instance $i (instantiate $m))'
                     ' (func (export "f") (canon lift (core func $i "f"))))')
    assert str(text.exports.functions["f"]) == "f: func()"


def test_is_component_reads_the_layer_field():
    from wasmpy.component import is_component
    assert is_component(RICH.read_bytes()) and is_component(memoryview(RICH.read_bytes()))
    assert not is_component(wasmpy.wat2wasm("(module)"))
    assert is_component(";; a comment\n  (; block ;) (component)") and not is_component("(module)")


RESOURCE_WAT = """
(component
  (type $r (resource (rep i32)))
  (core func $new (canon resource.new $r))
  (core module $m
    (import "" "new" (func $new (param i32) (result i32)))
    (func (export "make") (result i32) (call $new (i32.const 7))))
  (core instance $i (instantiate $m (with "" (instance (export "new" (func $new))))))
  (export $r-export "thing" (type $r))
  (func (export "make") (result (own $r-export)) (canon lift (core func $i "make"))))
"""


def test_a_world_level_resource_without_constructor():
    component = Component(RESOURCE_WAT)
    assert str(component.exports.functions["make"]) == "make: func() -> thing"
    exports = Instance(component).exports
    thing = exports.make()
    assert type(thing) is exports.Thing and not thing.closed
    with pytest.raises(TypeError, match="has no constructor"):
        exports.Thing()
    thing.close()
    assert thing.closed
    thing.close()  # again: nothing


def test_a_core_module_or_garbage_is_a_compile_error():
    with pytest.raises(wasmpy.CompileError, match="core WebAssembly module, not a component"):
        Component(wasmpy.wat2wasm("(module)"))
    with pytest.raises(wasmpy.CompileError):
        Component(b"\0asm\x0d\x00\x01\x00garbage")
    with pytest.raises(wasmpy.CompileError, match="from_file"):
        Component("missing.wasm")
    with pytest.raises(TypeError):
        Component(42)


def test_imports_and_exports_read_like_wit(rich):
    exports = rich.exports
    assert str(exports.functions["greet"]) == "greet: func(name: string) -> string"
    assert str(exports.functions["nothing"]) == "nothing: func()"
    api = exports.interfaces["test:rich/api@0.1.0"]
    assert str(api.functions["roundtrip-shape"]) == "roundtrip-shape: func(x: shape) -> shape"
    assert str(api.functions["roundtrip-list-result"]) == (
        "roundtrip-list-result: func(x: list<result<u32, string>>) -> list<result<u32, string>>")
    assert str(api.functions["roundtrip-empty-result"]) == "roundtrip-empty-result: func(x: result) -> result"
    assert str(api.functions["roundtrip-tuple"]) == (
        "roundtrip-tuple: func(x: tuple<u8, string, f64>) -> tuple<u8, string, f64>")
    assert api.types["point"].definition() == "record point { x: s32, y: s32 }"
    assert api.types["shape"].definition() == "variant shape { circle(f64), rectangle(point), empty }"
    assert api.types["color"].definition() == "enum color { red, green, light-blue }"
    assert api.types["permissions"].definition() == "flags permissions { read, write, exec }"
    text = str(api)
    assert text.startswith("interface test:rich/api@0.1.0 {\n  record point { x: s32, y: s32 };")
    assert "  roundtrip-option-string: func(x: option<string>) -> option<string>;" in text
    imports = rich.imports
    assert list(imports.functions) == ["log"]
    assert str(imports.functions["log"]) == "log: func(message: string)"
    assert "echo-point: func(x: point) -> point" in str(imports.interfaces["test:rich/host@0.1.0"])
    assert "5 exports" not in repr(rich) and "test:rich/api@0.1.0" in repr(rich)


def test_serialize_and_deserialize(rich, host, log):
    data = rich.serialize()
    loaded = Component.deserialize(data)
    assert Instance(loaded, {"log": log.append, "test:rich/host": host}).exports.greet("again") == "Hello, again!"
    with pytest.raises(wasmpy.WasmError, match="corrupt"):
        Component.deserialize(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(wasmpy.WasmError):
        Component.deserialize(b"not compiled code")


def test_components_are_immutable_and_copy_to_themselves(rich):
    assert copy.copy(rich) is rich and copy.deepcopy(rich) is rich
    with pytest.raises(TypeError, match="cannot run again"):
        rich.__init__(RICH.read_bytes())


# --- Instances and exports ------------------------------------------------------------------

def test_instance_is_the_same_class_as_for_modules(rich, host, log):
    instance = Instance(rich, {"log": log.append, "test:rich/host": host})
    assert isinstance(instance, wasmpy.Instance) and isinstance(instance, ComponentInstance)
    assert instance.component is rich and isinstance(instance.store, wasmpy.Store)
    assert isinstance(Instance(wasmpy.Module("(module)")), wasmpy.Instance)  # modules as before
    with pytest.raises(TypeError):
        copy.copy(instance)
    with pytest.raises(TypeError):
        pickle.dumps(instance)


def test_world_functions(exports, log):
    assert exports.add(2, 3) == 5
    assert exports["add"](4, 5) == 9
    assert exports.greet("world") == "Hello, world!"
    assert exports.greet(name="keywords") == "Hello, keywords!"
    assert exports.nothing() is None
    exports.call_log("to the host")
    exports["call-log"]("twice")
    assert log == ["to the host", "twice"]
    assert str(exports.greet.type) == "greet: func(name: string) -> string"
    assert exports.greet.__doc__ == "WIT greet: func(name: string) -> string"


def test_exports_mapping(exports):
    assert list(exports) == ["nothing", "add", "greet", "fail", "call-log", "test:rich/api@0.1.0"]
    assert len(exports) == 6
    assert "call-log" in exports and "call_log" in exports and "api" in exports
    assert exports["test:rich/api@0.1.0"] is exports.api is exports["test:rich/api"] is exports["api"]
    assert "greet" in dir(exports) and "call_log" in dir(exports)
    with pytest.raises(AttributeError, match="no export named 'missing'"):
        exports.missing
    with pytest.raises(KeyError):
        exports["missing"]


def test_an_interface_is_a_namespace_with_its_types(api):
    assert isinstance(api, types.ModuleType)
    assert api["roundtrip-u32"] is api.roundtrip_u32
    assert "roundtrip-bool" in api and len(api) == 29
    assert dataclasses.is_dataclass(api.Point) and api.Point.__name__ == "Point"
    assert [field.name for field in dataclasses.fields(api.Person)] == ["name", "age", "tags"]
    assert issubclass(api.Color, enum.Enum) and [m.name for m in api.Color] == ["RED", "GREEN", "LIGHT_BLUE"]
    assert issubclass(api.Permissions, enum.Flag)
    assert api.Shape_Circle(1.0).value == 1.0 and api.Shape_Empty() == api.Shape_Empty()
    assert "record point { x: s32, y: s32 }" in api.__doc__
    assert "roundtrip-greet" not in api


def test_generated_classes_are_shared_by_instances(rich, host, log):
    first = Instance(rich, {"log": log.append, "test:rich/host": host}).exports.api
    second = Instance(rich, {"log": log.append, "test:rich/host": host}).exports.api
    assert first.Point is second.Point
    assert second.roundtrip_point(first.Point(1, 2)) == first.Point(1, 2)


def test_help_shows_wit_signatures(api):
    import pydoc
    text = pydoc.render_doc(api, renderer=pydoc.plaintext)
    assert "roundtrip-greet" not in text
    assert "roundtrip_string: func(x: string) -> string" in text or "roundtrip-string: func(x: string)" in text
    assert "class Point" in text


# --- Values both ways -----------------------------------------------------------------------

ROUNDTRIPS = [
    ("bool", [True, False]),
    ("s8", [-128, 0, 127]), ("u8", [0, 255]), ("s16", [-2**15, 2**15 - 1]), ("u16", [0, 2**16 - 1]),
    ("s32", [-2**31, 2**31 - 1]), ("u32", [0, 2**32 - 1]), ("s64", [-2**63, 2**63 - 1]), ("u64", [0, 2**64 - 1]),
    ("f32", [0.0, 1.5, -2.25, float("inf")]), ("f64", [0.1, -1e300, float("-inf")]),
    ("char", ["a", "é", "\U0001F600", "\0"]),
    ("string", ["", "héllo", "\U0001F600 emoji", "nul\0inside", "x" * 100_000]),
    ("list_u32", [[], [1, 2, 2**32 - 1], list(range(1000))]),
    ("list_string", [[], ["a", "", "ü"]]),
    ("tuple", [(1, "x", 2.5), (255, "", -0.0)]),
    ("option_u32", [None, 0, 7]), ("option_string", [None, "", "s"]),
    ("list_result", [[], [Ok(1), Err("no"), Ok(2**32 - 1)]]),
]


@pytest.mark.parametrize("kind, values", ROUNDTRIPS, ids=[kind for kind, _ in ROUNDTRIPS])
def test_values_round_trip(api, host, kind, values):
    roundtrip = getattr(api, f"roundtrip_{kind}")
    for value in values:
        host.seen.clear()
        result = roundtrip(value)
        assert result == value and type(result) is type(value)
        (name, seen), = host.seen  # the import received it as the same Python value
        assert name == f"echo_{kind}" and seen == value and type(seen) is type(value)


def test_floats(api):
    assert api.roundtrip_f32(0.1) == pytest.approx(0.1, rel=1e-7) and api.roundtrip_f32(0.1) != 0.1
    assert api.roundtrip_f64(3) == 3.0 and type(api.roundtrip_f64(3)) is float
    nan = api.roundtrip_f64(float("nan"))
    assert nan != nan


def test_bytes(api, host):
    assert api.roundtrip_bytes(b"\0\xffabc") == b"\0\xffabc"
    assert host.seen == [("echo_bytes", b"\0\xffabc")]
    assert api.roundtrip_bytes(bytearray(b"xy")) == b"xy"
    assert api.roundtrip_bytes(memoryview(b"view")) == b"view"
    assert api.roundtrip_bytes([1, 2, 255]) == b"\x01\x02\xff"
    assert api.roundtrip_bytes(b"") == b""


def test_records(api, host):
    point = api.Point(x=1, y=-2)
    assert api.roundtrip_point(point) == point
    assert api.roundtrip_point({"x": 3, "y": 4}) == api.Point(3, 4)  # a mapping of the fields
    assert api.roundtrip_point(types.SimpleNamespace(x=5, y=6)) == api.Point(5, 6)  # any object with them
    person = api.Person(name="ann", age=30, tags=["a", "b"])
    assert api.roundtrip_person(person) == person
    # The import's Person is host's record type, a class of the same name and fields.
    name, seen = host.seen[-1]
    assert seen == api.Person("ann", 30, ["a", "b"]) and type(seen).__name__ == "Person"


def test_variants(api):
    for value in (api.Shape_Circle(2.5), api.Shape_Rectangle(api.Point(1, 2)), api.Shape_Empty()):
        assert api.roundtrip_shape(value) == value
    match api.roundtrip_shape(api.Shape_Rectangle(api.Point(3, 4))):
        case api.Shape_Rectangle(value=api.Point(x=x, y=y)):
            assert (x, y) == (3, 4)
        case _:
            pytest.fail("no match")


def test_enums_and_flags(api):
    assert api.roundtrip_color(api.Color.LIGHT_BLUE) is api.Color.LIGHT_BLUE
    assert api.roundtrip_color("green") is api.Color.GREEN  # the WIT name
    both = api.Permissions.READ | api.Permissions.EXEC
    assert api.roundtrip_permissions(both) == both
    assert api.roundtrip_permissions(api.Permissions(0)) == api.Permissions(0)
    assert api.roundtrip_permissions({"write"}) == api.Permissions.WRITE


def test_results(api, host):
    assert api.roundtrip_result(Ok(5)) == 5  # a top-level result returns its ok value...
    with pytest.raises(Err) as raised:  # ...or raises its err
        api.roundtrip_result(Err("bad"))
    assert raised.value.value == "bad" and raised.value == Err("bad")
    assert host.seen[-1] == ("echo_result", Err("bad"))  # an argument stays a value
    assert api.roundtrip_empty_result(Ok()) is None
    with pytest.raises(Err) as raised:
        api.roundtrip_empty_result(Err())
    assert raised.value.value is None
    assert isinstance(Err("x"), Exception) and repr(Err("x")) == "Err('x')" and repr(Ok(1)) == "Ok(value=1)"


def test_a_python_import_returns_or_raises_a_result(rich, log):
    class Host(Echo):
        def echo_result(self, value):
            if isinstance(value, Ok) and value.value == 13:
                raise Err("unlucky")
            return value.value if isinstance(value, Ok) else value

    api = Instance(rich, {"log": log.append, "test:rich/host": Host()}).exports.api
    assert api.roundtrip_result(Ok(12)) == 12  # the import returned a plain value: ok
    with pytest.raises(Err, match="unlucky"):
        api.roundtrip_result(Ok(13))  # the import raised Err: err, which the export returns
    with pytest.raises(Err) as raised:
        api.roundtrip_result(Err("passed through"))  # the import returned an Err value
    assert raised.value.value == "passed through"


def test_several_arguments_and_none(api):
    assert api.roundtrip_two(7, "seven") == (7, "seven")
    assert api.roundtrip_two(b="b", a=1) == (1, "b")
    assert api.roundtrip_get_name() == "host"


# --- Argument checks: every refusal is a Python exception before any C ----------------------

@pytest.mark.parametrize("kind, value, error", [
    ("u8", 256, OverflowError), ("u8", -1, OverflowError), ("s8", -129, OverflowError),
    ("u32", 2**32, OverflowError), ("s64", 2**63, OverflowError), ("u64", -1, OverflowError),
    ("u32", 1.0, TypeError), ("u32", True, TypeError), ("u32", "1", TypeError), ("bool", 1, TypeError),
    ("f64", "1.0", TypeError), ("f64", 2**2000, OverflowError),
    ("char", "ab", TypeError), ("char", "", TypeError), ("char", 65, TypeError), ("char", "\ud800", ValueError),
    ("string", b"bytes", TypeError), ("string", "lone \udc80 surrogate", ValueError), ("string", None, TypeError),
    ("bytes", "text", TypeError), ("bytes", [256], OverflowError), ("bytes", [1.0], TypeError),
    ("list_u32", [1, -1], OverflowError), ("list_u32", "123", TypeError), ("list_u32", 5, TypeError),
    ("list_string", ["ok", "\udfff"], ValueError),
    ("tuple", (1, "x"), TypeError), ("tuple", (256, "x", 1.0), OverflowError), ("tuple", "abc", TypeError),
    ("point", {"x": 1}, TypeError), ("point", {"x": 1, "y": 2**31}, OverflowError), ("point", 5, TypeError),
    ("shape", "circle", TypeError), ("color", "purple", TypeError), ("color", 1, TypeError),
    ("permissions", {"delete"}, TypeError), ("permissions", 3, TypeError),
    ("option_u32", -1, OverflowError), ("result", 5, TypeError), ("result", Ok("five"), TypeError),
    ("list_result", [5], TypeError),
])
def test_bad_arguments_raise(api, host, kind, value, error):
    with pytest.raises(error):
        getattr(api, f"roundtrip_{kind}")(value)
    assert host.seen == []  # refused before the call
    assert api.roundtrip_u32(1) == 1  # and the instance is still usable


def test_messages_name_the_argument(api, exports):
    with pytest.raises(OverflowError, match=r"argument 'x' of roundtrip-u8: 256 is out of range for u8 \(0 to 255\)"):
        api.roundtrip_u8(256)
    with pytest.raises(ValueError, match="lone surrogate"):
        exports.greet("\ud83d")
    with pytest.raises(TypeError, match=r"greet\(\) takes 1 argument \(func\(name: string\) -> string\), got 2"):
        exports.greet("a", "b")
    with pytest.raises(TypeError, match="unexpected keyword argument 'nme'"):
        exports.greet("x", nme="y")
    with pytest.raises(TypeError, match="missing argument .name."):
        exports.greet(nme="x")


def test_bad_results_of_an_import_raise_in_the_caller(rich, log):
    class Bad(Echo):
        def echo_u8(self, value):
            return 300

        def echo_string(self, value):
            return "\udc80"

        def echo_char(self, value):
            return "\ud800"

        def get_name(self):
            return b"bytes"

    make = lambda: Instance(rich, {"log": log.append, "test:rich/host": Bad()}).exports.api  # noqa: E731
    with pytest.raises(OverflowError, match="the result of the import test:rich/host@0.1.0#echo-u8"):
        make().roundtrip_u8(1)
    with pytest.raises(ValueError, match="lone surrogate"):
        make().roundtrip_string("ok")
    with pytest.raises(ValueError, match="surrogate"):
        make().roundtrip_char("a")
    with pytest.raises(TypeError, match="expected a str"):
        make().roundtrip_get_name()


# --- Imports --------------------------------------------------------------------------------

HOST_FUNCTIONS = ["echo-" + kind.replace("_", "-") for kind, _ in ROUNDTRIPS] + [
    "echo-bytes", "echo-point", "echo-person", "echo-shape", "echo-color", "echo-permissions", "echo-result",
    "echo-empty-result", "echo-two", "get-name"]


def test_imports_by_wit_or_snake_case_name_in_dicts_modules_and_objects(rich):
    by_wit_name = {name: (lambda *args: args[0]) for name in HOST_FUNCTIONS}
    by_wit_name["get-name"] = lambda: "dict"
    module = types.ModuleType("host")
    for name in HOST_FUNCTIONS:
        setattr(module, name.replace("-", "_"), lambda *args: args[0])
    module.get_name = lambda: "module"
    for namespace, expected in ((by_wit_name, "dict"), (module, "module"), (Echo(), "host")):
        api = Instance(rich, {"log": print, "test:rich/host": namespace}).exports.api  # without the @version
        assert api.roundtrip_get_name() == expected
        assert api.roundtrip_u32(1) == 1
    seen = []
    versioned = Instance(rich, {"log": seen.append, "test:rich/host@0.1.0": Echo()}).exports
    versioned.call_log("versioned")
    assert seen == ["versioned"]


def test_missing_imports_are_link_errors(rich):
    with pytest.raises(wasmpy.LinkError, match="missing import log"):
        Instance(rich, {"test:rich/host": Echo()})
    with pytest.raises(wasmpy.LinkError, match="missing import test:rich/host@0.1.0: expected a namespace"):
        Instance(rich, {"log": print})
    with pytest.raises(wasmpy.LinkError, match=r"host@0.1.0 has no 'echo-s8' or 'echo_s8' \(WIT echo-s8: func"):
        Instance(rich, {"log": print, "test:rich/host": {"echo-bool": bool}})
    with pytest.raises(wasmpy.LinkError, match="expected a Python function"):
        Instance(rich, {"log": "not callable", "test:rich/host": Echo()})
    with pytest.raises(TypeError, match="mapping of WIT names"):
        Instance(rich, [print])
    assert issubclass(wasmpy.LinkError, ImportError)


def test_exceptions_of_imports_reach_the_caller_unchanged(rich):
    class Boom(Exception):
        pass

    failure = Boom("from the host")

    class Host(Echo):
        def echo_string(self, value):
            raise failure

    def log(message):
        raise KeyError(message)

    exports = Instance(rich, {"log": log, "test:rich/host": Host()}).exports
    with pytest.raises(Boom) as raised:
        exports.api.roundtrip_string("x")
    assert raised.value is failure
    exports = Instance(rich, {"log": log, "test:rich/host": Host()}).exports
    with pytest.raises(KeyError, match="message"):
        exports.call_log("message")


def test_an_import_returning_for_a_function_without_result(rich):
    exports = Instance(rich, {"log": lambda message: 42, "test:rich/host": Echo()}).exports
    with pytest.raises(TypeError, match="returns nothing in WIT"):
        exports.call_log("x")


# --- Traps ----------------------------------------------------------------------------------

def test_a_trap_then_the_instance_refuses_calls_clearly(exports):
    with pytest.raises(wasmpy.Trap, match="unreachable"):
        exports.fail()
    with pytest.raises(wasmpy.Trap, match="cannot enter component instance.*make a new Instance"):
        exports.add(1, 2)


def test_after_an_import_raised_the_instance_refuses_calls(rich):
    class Host(Echo):
        def echo_u32(self, value):
            raise RuntimeError("no")

    api = Instance(rich, {"log": print, "test:rich/host": Host()}).exports.api
    with pytest.raises(RuntimeError):
        api.roundtrip_u32(1)
    with pytest.raises(wasmpy.Trap, match="cannot enter component instance"):
        api.roundtrip_u8(1)


def test_a_closed_store(rich, host, log):
    instance = Instance(rich, {"log": log.append, "test:rich/host": host})
    add = instance.exports.add
    instance.store.close()
    with pytest.raises(wasmpy.WasmError, match="closed"):
        add(1, 2)


def test_a_store_of_another_engine(rich):
    with pytest.raises(wasmpy.WasmError, match="different engines"):
        Instance(rich, {}, wasmpy.Store(wasmpy.Engine()))


# --- Type reflection with a WIT-only component (--dummy: every export traps) -----------------

def test_dummy_component_reflects_types_and_traps():
    dummy = Component.from_file(DUMMY)
    assert str(dummy.exports.functions["greet"]) == "greet: func(name: string) -> string"
    exports = Instance(dummy, {"log": print, "test:rich/host": Echo()}).exports
    with pytest.raises(wasmpy.Trap):
        exports.greet("x")


# --- What the component model has and wasmpy cannot convert yet -------------------------------

ASYNC_WAT = """
(component
  (type $s (stream u8))
  (type $f (future u32))
  (core module $m
    (func (export "f") (param i32))
    (func (export "g") (param i32)))
  (core instance $i (instantiate $m))
  (func (export "takes-stream") (param "s" $s) (canon lift (core func $i "f")))
  (func (export "takes-future") (param "f" $f) (canon lift (core func $i "g"))))
"""


def test_future_stream_and_error_context_are_refused_naming_the_type():
    # An engine compiles components with stream or future types only with concurrency_support (on by default).
    with pytest.raises(wasmpy.CompileError, match="requires the component model async feature"):
        Component(ASYNC_WAT, wasmpy.Engine(concurrency_support=False))
    component = Component(ASYNC_WAT)
    functions = component.exports.functions
    assert str(functions["takes-stream"]) == "takes-stream: func(s: stream<u8>)"
    assert str(functions["takes-future"]) == "takes-future: func(f: future<u32>)"
    exports = Instance(component).exports
    # error-context needs a component model feature wasmtime leaves off: such components do not compile.
    for name, kind in (("takes-stream", "stream"), ("takes-future", "future")):
        with pytest.raises(NotImplementedError, match=f"WIT type {kind}.*does not support {kind} values"):
            exports[name]


# --- The abort cases of the issue, in child processes: a crash would end only the child ------

ABORT_CASES = {
    "string not UTF-8": "exports.greet('\\udcff')",
    "surrogate char": "exports.api.roundtrip_char('\\udbff')",
    "surrogate char from an import": "bad_char()",
    "future value": "wasmpy.Instance(wasmpy.Component(ASYNC_WAT)).exports['takes-future']",
}


@pytest.mark.parametrize("case", list(ABORT_CASES))
def test_abort_cases_are_python_exceptions(case):
    code = f"""
import wasmpy
from wasmpy import Instance, Component
ASYNC_WAT = {ASYNC_WAT!r}
class Host:
    def __getattr__(self, name):
        if not name.startswith(("echo_", "get_")):
            raise AttributeError(name)
        return lambda *args: args[0] if args else "x"
    def echo_char(self, value):
        return "\\ud800"
rich = Component.from_file({str(RICH)!r})
exports = Instance(rich, {{"log": print, "test:rich/host": Host()}}).exports
def bad_char():
    exports.api.roundtrip_char("a")
try:
    {ABORT_CASES[case]}
except (ValueError, NotImplementedError) as error:
    print("raised", type(error).__name__)
"""
    result = run_python(code, timeout=120)
    assert_clean_exit(result)
    assert "raised" in result.stdout


# Calls wasi:cli/environment's get-arguments and returns how many arguments it got.
WASI_WAT = """
(component
  (import "wasi:cli/environment@0.2.0" (instance $env
    (export "get-arguments" (func (result (list string))))))
  (core module $memory
    (memory (export "memory") 1)
    (global $next (mut i32) (i32.const 1024))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $at i32)
      (local.set $at (global.get $next))
      (global.set $next (i32.add (global.get $next) (i32.and (i32.add (local.get 3) (i32.const 7)) (i32.const -8))))
      (local.get $at)))
  (core instance $memory (instantiate $memory))
  (alias export $env "get-arguments" (func $get-arguments))
  (core func $get-arguments (canon lower (func $get-arguments) (memory (core memory $memory "memory"))
                                     (realloc (core func $memory "realloc"))))
  (core instance $env-core (export "get-arguments" (func $get-arguments)))
  (core module $main
    (import "env" "get-arguments" (func $get-arguments (param i32)))
    (import "memory" "memory" (memory 1))
    (func (export "count") (result i32)
      (call $get-arguments (i32.const 16))
      (i32.load (i32.const 20))))
  (core instance $main (instantiate $main (with "env" (instance $env-core)) (with "memory" (instance $memory))))
  (func (export "argument-count") (result u32) (canon lift (core func $main "count"))))
"""


def test_a_component_importing_wasi_gets_the_stores_wasi():
    """wasmtime aborts the process when a component calls WASI in a store without a WASI context:
    the store's WASI configuration (or its safe default: no arguments) is given to it."""
    result = run_python(f"""
import wasmpy
component = wasmpy.Component({WASI_WAT!r})
print(str(component.imports))
print("default", wasmpy.Instance(component).exports.argument_count())
store = wasmpy.Store(wasi=wasmpy.WasiConfig(argv=["prog", "a", "b"]))
print("configured", wasmpy.Instance(component, store=store).exports.argument_count())
""", timeout=120)
    assert_clean_exit(result)
    assert "default 0" in result.stdout and "configured 3" in result.stdout
    assert "interface wasi:cli/environment@0.2.0 {\n  get-arguments: func() -> list<string>;" in result.stdout


def test_component_files_are_committed_with_their_sources():
    for name in ("rich.wit", "rich.wat", "gen_rich_wat.py", "build.sh", "rich.wasm", "dummy.wasm",
                 "resources.wit", "resources.wat", "resources.wasm"):
        assert (COMPONENTS / name).is_file(), name
    assert os.access(COMPONENTS / "build.sh", os.X_OK)
    assert RICH.read_bytes()[:8] == b"\0asm\x0d\x00\x01\x00"


def test_option_in_an_option_needs_some():
    nested = """
(component
  (core module $m
    (memory (export "memory") 1)
    (func (export "f") (param i32 i32 i32) (result i32)
      (i32.store8 (i32.const 8) (local.get 0))
      (i32.store8 (i32.const 12) (local.get 1))
      (i32.store (i32.const 16) (local.get 2))
      i32.const 8))
  (core instance $i (instantiate $m))
  (func (export "echo") (param "x" (option (option u32))) (result (option (option u32)))
    (canon lift (core func $i "f") (memory (core memory $i "memory")))))
"""
    echo = Instance(Component(nested)).exports.echo
    assert echo(None) is None
    assert echo(Some(None)) == Some(None)
    assert echo(Some(5)) == Some(5)
    with pytest.raises(TypeError, match="needs the Some wrapper"):
        echo(5)


# --- Python code inside a call: the store, reentry, deadlines --------------------------------

CHILD_HOST = """
class Host:
    def __getattr__(self, name):
        if not name.startswith(("echo_", "get_")):
            raise AttributeError(name)
        return lambda *args: args[0] if args else "x"
"""

def test_a_python_import_cannot_close_the_store_under_wasm(rich):
    result = run_python(CHILD_HOST + f"""
import wasmpy
from wasmpy import Component, Instance
store = wasmpy.Store()
def log(message):
    store.close()
exports = Instance(Component.from_file({str(RICH)!r}), {{"log": log, "test:rich/host": Host()}}, store).exports
try:
    exports.call_log("x")
except wasmpy.WasmError as error:
    print("refused:", error)
print("closed after:", store.closed)
""", timeout=120)
    assert_clean_exit(result)
    assert "refused: cannot close the store while its wasm code is running" in result.stdout
    assert "closed after: False" in result.stdout


def test_a_python_import_calling_back_into_its_instance(rich):
    result = run_python(CHILD_HOST + f"""
import wasmpy
from wasmpy import Component, Instance
exports = None
def log(message):
    print("inner", exports.add(1, 2))
exports = Instance(Component.from_file({str(RICH)!r}), {{"log": log, "test:rich/host": Host()}}).exports
try:
    exports.call_log("x")
except wasmpy.Trap as error:
    print("trap:", error.message)
""", timeout=120)
    assert_clean_exit(result)
    assert "trap:" in result.stdout or "inner 3" in result.stdout


LOOP_WAT = """
(component
  (core module $m (func (export "spin") (loop br 0)))
  (core instance $i (instantiate $m))
  (func (export "spin") (canon lift (core func $i "spin"))))
"""


def test_a_deadline_interrupts_a_component():
    store = wasmpy.Store()
    spin = Instance(Component(LOOP_WAT), store=store).exports.spin
    with store.deadline(0.05), pytest.raises(wasmpy.Trap) as raised:
        spin()
    assert raised.value.code == wasmpy.TrapCode.INTERRUPT


def test_no_reference_cycle_keeps_a_store_alive(rich, host, log):
    """Dropping the last reference to an instance frees its store at once, not at the next GC."""
    import gc
    import weakref
    gc.disable()
    try:
        instance = Instance(rich, {"log": log.append, "test:rich/host": host})
        instance.exports.api.roundtrip_u32(1)
        instance.exports.greet("x")
        store = weakref.ref(instance.store)
        del instance
        assert store() is None
    finally:
        gc.enable()


def test_unbounded_recursion_through_an_import_ends_in_an_exception(rich):
    """Python -> wasm -> Python -> ...: wasm's stack limit (a Trap), Python's (RecursionError) or
    wasmpy's native stack check (RecursionError) ends it, whichever comes first; never a crash."""
    result = run_python(CHILD_HOST + f"""
import wasmpy
from wasmpy import Component, Instance
exports = None
def log(message):
    exports.call_log(message)
exports = Instance(Component.from_file({str(RICH)!r}), {{"log": log, "test:rich/host": Host()}}).exports
try:
    exports.call_log("again")
except (RecursionError, wasmpy.Trap) as error:
    print("ended:", type(error).__name__, str(error).splitlines()[0])
""", timeout=300)
    assert_clean_exit(result)
    assert "ended: RecursionError" in result.stdout or "ended: Trap call stack exhausted" in result.stdout


def test_compiled_code_of_a_module_and_a_component_do_not_mix(rich):
    result = run_python(f"""
import wasmpy
component = wasmpy.Component.from_file({str(RICH)!r})
module = wasmpy.Module("(module)")
for load, data in ((wasmpy.Module.deserialize, component.serialize()),
                   (wasmpy.Component.deserialize, module.serialize())):
    try:
        load(data)
    except wasmpy.WasmError as error:
        print("refused")
""", timeout=120)
    assert_clean_exit(result)
    assert result.stdout.split() == ["refused", "refused"]


def test_an_instance_is_made_once(rich, host, log):
    instance = Instance(rich, {"log": log.append, "test:rich/host": host})
    with pytest.raises(TypeError, match="cannot run again"):
        instance.__init__(rich, {"log": log.append, "test:rich/host": host})


def test_calls_from_threads_are_serialised_by_the_store(rich, host, log):
    import threading
    api = Instance(rich, {"log": log.append, "test:rich/host": Echo()}).exports.api
    failures = []

    def work(offset):
        try:
            for index in range(300):
                assert api.roundtrip_list_string([str(offset), str(index)]) == [str(offset), str(index)]
        except BaseException as error:  # noqa: B902
            failures.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_from_file_reads_component_text(tmp_path):
    path = tmp_path / "spin.wat"
    path.write_text(LOOP_WAT)
    assert list(Component.from_file(path).exports.functions) == ["spin"]
    broken = tmp_path / "broken.wat"
    broken.write_text("(component (func))")
    with pytest.raises(wasmpy.CompileError, match="broken.wat"):
        Component.from_file(broken)


def test_build_sh_rebuilds_the_committed_components(tmp_path):
    """The committed .wasm files are what their sources make (wasm-tools from the test extra)."""
    import shutil
    import subprocess
    import sys
    for name in ("rich.wit", "gen_rich_wat.py", "build.sh", "resources.wit", "resources.wat", "maps.wit", "maps.wat",
                 "host_resources.wit", "host_resources.wat"):
        shutil.copy2(COMPONENTS / name, tmp_path / name)
    tools = os.path.dirname(shutil.which("wasm-tools") or sys.executable)
    environment = {**os.environ, "PYTHON": sys.executable, "PATH": f"{tools}:{os.environ.get('PATH', '')}"}
    subprocess.run(["sh", str(tmp_path / "build.sh")], check=True, env=environment, capture_output=True)
    for name in ("rich.wat", "rich.wasm", "dummy.wasm", "resources.wasm", "maps.wasm", "host_resources.wasm"):
        assert (tmp_path / name).read_bytes() == (COMPONENTS / name).read_bytes(), name


START_TRAPS_WAT = """
(component
  (core module $m (func $start unreachable) (start $start))
  (core instance $i (instantiate $m)))
"""


def test_instantiation_failures():
    limited = wasmpy.Store(limits=wasmpy.StoreLimits(instances=0))
    with pytest.raises(wasmpy.WasmError, match="resource limit exceeded") as raised:
        Instance(Component(LOOP_WAT), store=limited)
    assert not isinstance(raised.value, wasmpy.Trap)
    with pytest.raises(wasmpy.Trap, match="unreachable"):  # a core module's start function trapping
        Instance(Component(START_TRAPS_WAT))


# --- Resources the component exports ----------------------------------------------------------

@pytest.fixture
def counters():
    return Instance(Component.from_file(RESOURCES)).exports


def test_resource_types_read_like_wit():
    api = Component.from_file(RESOURCES).exports.interfaces["test:resources/api@0.1.0"]
    assert str(api.functions["[static]counter.merge"]) == (
        "[static]counter.merge: func(a: borrow<counter>, b: counter) -> counter")
    assert "  resource counter;" in str(api)


def test_a_resource_class_with_constructor_methods_and_statics(counters):
    api = counters.api
    Counter = api.Counter
    assert issubclass(Counter, wasmpy.component.Resource) and Counter.__module__ == "test:resources/api@0.1.0"
    counter = Counter(5)
    assert counter.get() == 5
    counter.add(3)
    assert counter.get() == 8 and api.total(counter) == 8  # a borrow: still usable after
    other = Counter(start=10)
    merged = Counter.merge(counter, other)  # `other` is owned: it moves into wasm
    assert merged.get() == 18 and type(merged) is Counter
    assert other.closed and not counter.closed
    assert counters.drops() == 1  # the guest dropped `other`
    with pytest.raises(wasmpy.WasmError, match="the Counter is closed"):
        other.get()
    assert "[method]counter.get" in api and not hasattr(api, "[method]counter.get")
    assert Counter.get.__doc__ == "WIT [method]counter.get: func(self: borrow<counter>) -> u32"


def test_closing_a_resource_runs_the_guests_destructor(counters):
    Counter = counters.api.Counter
    with Counter(1) as counter:
        assert counter.get() == 1
    assert counter.closed and counters.drops() == 1
    second = Counter(2)
    second.close()
    second.close()
    assert counters.drops() == 2
    third = Counter(3)
    del third  # garbage collection frees the handle only: wasm code never runs from a collection
    assert counters.drops() == 2


def test_resources_are_checked_before_the_call(counters):
    api = counters.api
    with pytest.raises(TypeError, match="expected a Counter"):
        api.total(5)
    other = Instance(Component.from_file(RESOURCES)).exports.api.Counter(1)
    with pytest.raises(TypeError, match="expected a Counter"):  # another instance's counter
        api.total(other)
    with pytest.raises(TypeError, match="cannot run again"):
        counter = api.Counter(1)
        counter.__init__(2)
    with pytest.raises(TypeError):
        copy.copy(api.Counter(1))


def test_resources_after_their_store_is_closed(counters):
    counter = counters.api.Counter(1)
    counters.api.Counter._store.close()
    counter.close()  # the store took it with it: nothing to drop
    assert counter.closed


def test_closing_a_resource_while_another_thread_moves_it_into_wasm():
    # close() and a call taking ownership race for one handle: each must see the other's outcome
    # under the store's lock (a handle read before it was a use-after-free: "unknown handle index").
    result = run_python(f"""
import sys, threading
import wasmpy
from wasmpy import Component, Instance
sys.setswitchinterval(1e-6)
exports = Instance(Component.from_file({str(RESOURCES)!r})).exports
Counter = exports.api.Counter
keep = Counter(0)
outcomes = {{"merged": 0, "closed first": 0}}
for _ in range(3000):
    counter = Counter(1)
    closer = threading.Thread(target=counter.close)
    closer.start()
    try:
        Counter.merge(keep, counter).close()
        outcomes["merged"] += 1
    except wasmpy.WasmError as error:
        assert not isinstance(error, wasmpy.Trap) and "the Counter is closed" in str(error), repr(error)
        outcomes["closed first"] += 1
    closer.join()
    assert counter.closed
print(outcomes)
""", timeout=240)
    assert_clean_exit(result)


def test_a_resource_a_component_imports_is_a_python_class():
    # Python defines it (tests/test_component_resources.py): a class under its name, or a LinkError.
    wat = """
(component
  (import "test:host/things" (instance $things (export "thing" (type (sub resource)))))
)
"""
    with pytest.raises(wasmpy.LinkError, match="missing import test:host/things#thing: expected a Python class "
                                               "under 'Thing' or 'thing'"):
        Instance(Component(wat), {"test:host/things": {}})

    class Thing:
        pass

    assert list(Instance(Component(wat), {"test:host/things": {"Thing": Thing}}).exports) == []
