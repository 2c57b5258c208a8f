"""The C path of component calls (csrc/component/call.c): calls whose parameters and result are
bool, integers, floats, char or string are converted in C, from a plan made once per function;
everything else, and every value the C path does not take as it is, goes through the Python
codecs. The two ways must agree exactly: the same calls are made through both (the C path is the
ordinary call, ``ComponentFunc._call_slow`` the Python way) and their results and errors compared.
"""

from __future__ import annotations

import math
import sys
import threading
from pathlib import Path

import pytest

import wasmpy
from childproc import assert_clean_exit, run_python
from wasmpy import Component, Engine, Instance, Store
from wasmpy.component import ComponentFunc

RICH = Path(__file__).resolve().parent / "components" / "rich.wasm"


class Echo:
    """The imports of rich.wasm: each echo-* returns its argument (or what `replies` says)."""

    def __init__(self) -> None:
        self.replies: dict = {}

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)

        def echo(*args):
            reply = self.replies.get(name.replace("-", "_"))
            if reply is not None:
                return reply(*args)
            return args[0] if args else "host"
        return echo


@pytest.fixture(scope="module")
def component():
    return Component.from_file(RICH)


def make(component, host=None, store=None, log=None):
    host = host or Echo()
    imports = {"test:rich/host": host, "log": log or (lambda message: None)}
    return Instance(component, imports, store=store).exports


def outcome(call):
    """What ``call()`` gives: ("value", type, value) or ("error", type, message)."""
    try:
        value = call()
    except Exception as error:  # noqa: BLE001 - every error is compared
        return ("error", type(error), str(error))
    if isinstance(value, float) and math.isnan(value):
        return ("value", float, "nan")
    return ("value", type(value), value)


class Big(int):
    """An int subclass: the Python way converts it (int(value)); the C path passes it on."""


class Text(str):
    """A str subclass: the Python way encodes it; the C path passes it on."""


VALUES = {
    "bool": [True, False, 0, 1, None, "yes"],
    "s8": [0, -128, 127, 128, -129, True, 1.0, Big(5), "1", 2**70],
    "u8": [0, 255, 256, -1, Big(200), None],
    "s16": [-2**15, 2**15 - 1, 2**15, -2**15 - 1],
    "u16": [0, 2**16 - 1, 2**16, -1],
    "s32": [-2**31, 2**31 - 1, 2**31, -2**31 - 1, 7, False],
    "u32": [0, 2**32 - 1, 2**32, -1, Big(2**32 - 1), 3.0],
    "s64": [-2**63, 2**63 - 1, 2**63, -2**63 - 1, 2**200, -2**200],
    "u64": [0, 2**64 - 1, 2**64, -1, -2**70, Big(2**64 - 1)],
    "f32": [0.0, -0.0, 1.5, 0.1, 3.4e38, 1e39, 1e300, -1e300, math.inf, -math.inf, math.nan, 7, 2**2000, True,
            "1.0", Big(3)],
    "f64": [0.0, 0.1, 1e308, math.inf, math.nan, 2**53 + 1, 2**1024, -5, False, None],
    "char": ["a", "é", "😀", "\U0010ffff", "\ud800", "\udfff", "", "ab", 97, Text("z")],
    "string": ["", "world", "é😀" * 100, "a\x00b", "\ud800", "x\udcffy", Text("sub"), b"bytes", 3,
               "long" * 10_000],
    "bytes": [b"", b"\x00\xff" * 300, bytearray(b"abc"), memoryview(b"view"), [1, 2, 255], [256], [-1], [True],
              "text", 5, bytes(range(256))],
}


@pytest.mark.parametrize("kind", list(VALUES))
def test_both_ways_agree_on_every_simple_type(component, kind):
    exports = make(component)
    function = exports.api[f"roundtrip-{kind}"]
    for value in VALUES[kind]:
        fast = outcome(lambda: function(value))
        slow = outcome(lambda: ComponentFunc._call_slow(function, value))
        assert fast == slow, (kind, value)
        # the instance is still usable: no value trapped it
        assert outcome(lambda: function(VALUES[kind][0]))[0] == "value"


def test_results_are_the_values_given(component):
    exports = make(component)
    api = exports.api
    assert api.roundtrip_u64(2**64 - 1) == 2**64 - 1
    assert api.roundtrip_s64(-2**63) == -2**63
    assert api.roundtrip_u32(2**32 - 1) == 2**32 - 1
    assert api.roundtrip_s8(-128) == -128
    assert api.roundtrip_bool(True) is True
    assert api.roundtrip_f32(0.1) == pytest.approx(0.1) and api.roundtrip_f32(0.1) != 0.1  # rounded to f32
    assert api.roundtrip_f64(0.1) == 0.1
    assert api.roundtrip_char("😀") == "😀"
    assert api.roundtrip_string("é😀\x00") == "é😀\x00"
    assert exports.greet("world") == "Hello, world!"
    assert exports.add(2**32 - 1, 1) == 0
    assert exports.nothing() is None


def test_out_of_range_and_wrong_types_say_what(component):
    exports = make(component)
    with pytest.raises(OverflowError, match="argument 'a' of add: 4294967296 is out of range for u32"):
        exports.add(2**32, 1)
    with pytest.raises(TypeError, match="expected an int \\(u32\\), got bool"):
        exports.add(True, 1)
    with pytest.raises(ValueError, match="lone surrogate"):
        exports.greet("\udcff")  # wasmtime aborts the process on such a string
    with pytest.raises(ValueError, match="surrogate"):
        exports.api.roundtrip_char("\ud800")
    with pytest.raises(TypeError, match="takes 2 arguments"):
        exports.add(1)
    assert exports.add(a=1, b=2) == 3 and exports.add(1, b=2) == 3  # keywords: the Python way
    assert exports.greet("again") == "Hello, again!"


def python_functions_called(call):
    """The names of the Python functions of wasmpy that ``call()`` runs."""
    called = []

    def profile(frame, event, arg):
        if event == "call" and "wasmpy" in frame.f_code.co_filename:
            called.append(frame.f_code.co_name)
    sys.setprofile(profile)
    try:
        call()
    finally:
        sys.setprofile(None)
    return called


def test_calls_of_simple_types_run_no_python(component):
    """The point of the C path: no Python code of wasmpy runs for such a call (the codecs do
    without it); other calls go the Python way."""
    exports = make(component)
    nothing, greet, add, roundtrip_person = exports.nothing, exports.greet, exports.add, exports.api.roundtrip_person
    for call in (nothing, lambda: greet("world"), lambda: add(1, 2)):
        assert python_functions_called(call) == []
    roundtrip_bytes = exports.api.roundtrip_bytes  # list<u8>: in C too (its import is Python's)
    for data in (b"abc", bytearray(b"abc")):
        assert "_call_slow" not in python_functions_called(lambda: roundtrip_bytes(data))
    assert "_call_slow" in python_functions_called(lambda: roundtrip_bytes(memoryview(b"abc")))
    person = exports.api.Person("ada", 36, ["x"])  # a record with a list<string>: the Python way
    assert "_call_slow" in python_functions_called(lambda: roundtrip_person(person))
    assert "_call_slow" in python_functions_called(lambda: add(a=1, b=2))


def test_python_import_exceptions_reach_the_caller_and_the_instance_says_why(component):
    host = Echo()

    class Refusal(Exception):
        pass

    def refuse(value):
        raise Refusal(value)
    host.replies["echo_u32"] = refuse
    exports = make(component, host)
    with pytest.raises(Refusal) as raised:
        exports.api.roundtrip_u32(5)
    assert raised.value.args == (5,)
    with pytest.raises(wasmpy.Trap, match="make a new Instance"):
        exports.add(1, 2)  # the component model forbids entering an instance that trapped
    with pytest.raises(wasmpy.Trap, match="make a new Instance"):
        exports.greet("x")
    assert wasmpy.component._instance._take_pending() is None  # nothing left behind


def test_traps_are_trap_and_no_import_exception_is_left_behind(component):
    exports = make(component)
    with pytest.raises(wasmpy.Trap):
        exports.fail()
    assert wasmpy.component._instance._take_pending() is None


def test_a_python_import_may_call_into_the_store_again(component):
    """Reentrancy: an import called from wasm calls another instance of the same store (the
    store's lock is reentrant), through the C path, and its result goes back to wasm."""
    store = Store(component.engine)
    other = make(component, store=store)
    host = Echo()
    host.replies["echo_u32"] = lambda value: other.add(value, 1)
    host.replies["echo_string"] = lambda text: other.greet(text)
    exports = make(component, host, store=store)
    assert exports.api.roundtrip_u32(41) == 42
    assert exports.api.roundtrip_string("inner") == "Hello, inner!"
    assert ComponentFunc._call_slow(exports.api.roundtrip_u32, 1) == 2


def test_log_import_called_from_wasm_through_the_c_path(component):
    messages = []
    exports = make(component, log=messages.append)
    exports.call_log("hello é")
    exports.call_log("")
    assert messages == ["hello é", ""]


def test_a_closed_store_refuses_the_call(component):
    store = Store(component.engine)
    exports = make(component, store=store)
    greet = exports.greet
    store.close()
    fast = outcome(lambda: greet("x"))
    slow = outcome(lambda: ComponentFunc._call_slow(greet, "x"))
    assert fast == slow and fast[0] == "error" and "closed" in fast[2]


def test_calls_from_threads(component):
    exports = make(component)
    results = []

    def work():
        for index in range(2000):
            results.append(exports.greet(str(index)) == f"Hello, {index}!" and exports.add(index, 1) == index + 1)
    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8000 and all(results)


def test_engines_without_concurrency_support_call_the_same(component):
    engine = Engine(concurrency_support=False)
    assert engine.config["concurrency_support"] is False
    assert Engine().config["concurrency_support"] is True  # wasmtime's default
    assert Engine(reference_types=False).config["concurrency_support"] is False  # what it needs is off
    exports = make(Component.from_file(RICH, engine))
    assert exports.greet("world") == "Hello, world!" and exports.add(1, 2) == 3
    # core modules run on it too (one engine, one store for both)
    module = wasmpy.Module('(module (func (export "two") (result i32) i32.const 2))', engine)
    assert Instance(module, store=Store(engine)).exports.two() == 2


def test_many_calls_free_what_they_make():
    """Strings made for each call and results freed each time: memory stays flat over many calls
    (in a child, where the measure is not disturbed by the other tests)."""
    proc = run_python(f"""
        import resource
        from wasmpy import Component, Instance
        component = Component.from_file({str(RICH)!r})
        class Host:
            def __getattr__(self, name):
                return lambda *args: args[0] if args else "x"
        exports = Instance(component, {{"test:rich/host": Host(), "log": lambda m: None}}).exports
        def run(count):
            for index in range(count):
                assert exports.greet("w" * 200 + str(index)).startswith("Hello, ww")
                exports.api.roundtrip_string("é" * 100)
                data = b"%d" % index * 20
                assert exports.api.roundtrip_bytes(data) == data
        run(20000)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        run(100000)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        assert after - before < 8 * 1024, (before, after)  # KiB: a leak of 300 bytes a call is 30 MB
        print("ok")
    """, timeout=300)
    assert_clean_exit(proc)
    assert proc.stdout.strip().endswith("ok")
