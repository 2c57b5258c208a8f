"""The C path of Python imports of components (csrc/component/host.c): an import whose
parameters and result are bool, integers, floats, char, string or list<u8> is called from wasm
and converted in C; a result C does not take as it is goes through the Python codecs, and every
other import keeps the cffi callback of wasmpy/component/_instance.py. The two ways must agree
exactly: the same calls are made with the import linked each way and their values and errors
compared (rich.wasm's ``roundtrip-*`` exports call the ``echo-*`` imports).
"""

from __future__ import annotations

import threading

import pytest

import wasmpy
import wasmpy.component._instance as component_instance
from childproc import assert_clean_exit, run_python
from test_component_fast import RICH, VALUES, Big, Echo, Text, outcome, python_functions_called
from wasmpy import Component, Instance, Store
from wasmpy._native import ComponentHost, component_host_callback_address

WAYS = ("c", "python")


@pytest.fixture(scope="module")
def component():
    return Component.from_file(RICH)


def make(component, way, host=None, log=None, store=None):
    """rich.wasm's exports, its Python imports linked the C way or the Python way (whose plan is
    none); the exports go through the C path of calls either way."""
    imports = {"test:rich/host": host or Echo(), "log": log or (lambda message: None)}
    if way == "c":
        return Instance(component, imports, store=store).exports
    planned = component_instance._host_plan
    component_instance._host_plan = lambda functype, codecs: (None, component_instance._NO_RESULT, ())
    try:
        return Instance(component, imports, store=store).exports
    finally:
        component_instance._host_plan = planned


def first_valid(kind):
    return VALUES[kind][0]


@pytest.mark.parametrize("kind", list(VALUES))
def test_both_ways_pass_the_same_arguments(component, kind):
    """What wasm passes an import reaches the Python function as the same Python value."""
    received = {}
    for way in WAYS:
        host = Echo()
        seen = received.setdefault(way, [])

        def record(value, seen=seen):
            seen.append((type(value), repr(value)))  # repr: nan == nan
            return value
        host.replies[f"echo_{kind}"] = record
        roundtrip = make(component, way, host).api[f"roundtrip-{kind}"]
        for value in VALUES[kind]:
            try:
                roundtrip(value)
            except (TypeError, ValueError, OverflowError):
                pass  # refused by the export before wasm runs: the import never sees it
    assert received["c"] == received["python"] and received["c"]
    for typ, value in received["c"]:  # exact types: a bytes for list<u8>, a str for char and string
        assert typ in (bool, int, float, str, bytes), (kind, typ, value)


@pytest.mark.parametrize("kind", list(VALUES))
def test_both_ways_agree_on_every_result(component, kind):
    """An import returning each value (valid, out of range, of the wrong type, a subclass): the
    same value, or the same error raised by the export's call, both ways."""
    for value in VALUES[kind]:
        outcomes = {}
        for way in WAYS:
            host = Echo()
            host.replies[f"echo_{kind}"] = lambda _, value=value: value
            exports = make(component, way, host)
            outcomes[way] = outcome(lambda: exports.api[f"roundtrip-{kind}"](first_valid(kind)))
        assert outcomes["c"] == outcomes["python"], (kind, value)
    assert component_instance._take_pending() is None  # nothing left behind


# What imports taking and returning records and tuples of simple fields return, made from their
# argument (of the import's own record class): values C takes, values the codecs convert, errors.
COMPOUND_RESULTS = {
    "point": (lambda p: p, lambda p: type(p)(-2**31, 2**31 - 1), lambda p: type(p)(2**31, 0),
              lambda p: type(p)("a", 1), lambda p: type(p)(Big(1), 2), lambda p: type(p)(True, 2),
              lambda p: type(p)(1.0, 2), lambda p: {"x": 1, "y": 2}, lambda p: {"x": 1}, lambda p: (1, 2),
              lambda p: None, lambda p: type("Other", (), {"x": 1, "y": 2})()),
    "tuple": (lambda t: t, lambda t: [1, "a", 2.0], lambda t: (256, "a", 1.0), lambda t: (1, "\ud800", 1.0),
              lambda t: (1, "a"), lambda t: "abc", lambda t: (1, Text("x"), 1.0), lambda t: (True, "a", 1.0),
              lambda t: (1, "a", Big(2)), lambda t: (1, "a", 2**2000), lambda t: (1, "é" * 1000, -0.0)),
    "two": (lambda a, b: (a, b), lambda a, b: (2**32, b), lambda a, b: [a, b * 3], lambda a, b: (a, None)),
}
COMPOUND_ARGUMENTS = {"point": lambda api: (api.Point(-5, 7),), "tuple": lambda api: ((255, "é😀", 0.5),),
                      "two": lambda api: (2**32 - 1, "b")}


@pytest.mark.parametrize("kind", list(COMPOUND_RESULTS))
def test_both_ways_agree_on_records_and_tuples(component, kind):
    """Records and tuples of simple fields, as parameters (what the function receives) and as
    results (what the export's caller gets, or the error it raises)."""
    for reply in COMPOUND_RESULTS[kind]:
        outcomes = {}
        for way in WAYS:
            received = []
            host = Echo()

            def echo(*args, reply=reply, received=received):
                received.append(repr(args))
                return reply(*args)
            host.replies[f"echo_{kind}"] = echo
            api = make(component, way, host).api
            outcomes[way] = outcome(lambda: api[f"roundtrip-{kind}"](*COMPOUND_ARGUMENTS[kind](api))), received
        assert outcomes["c"] == outcomes["python"], (kind, outcomes)
        assert outcomes["c"][1], kind  # the import was called
    assert component_instance._take_pending() is None


def test_results_are_the_values_returned(component):
    host = Echo()
    host.replies.update(echo_u64=lambda _: 2**64 - 1, echo_s8=lambda _: -128, echo_f32=lambda _: 0.1,
                        echo_string=lambda _: "é😀\x00" * 50, echo_bytes=lambda _: bytearray(b"\x00\xff"),
                        echo_char=lambda _: "😀", echo_bool=lambda _: False)
    api = make(component, "c", host).api
    assert api.roundtrip_u64(1) == 2**64 - 1
    assert api.roundtrip_s8(1) == -128
    assert api.roundtrip_f32(1.0) == pytest.approx(0.1) and api.roundtrip_f32(1.0) != 0.1  # rounded to f32
    assert api.roundtrip_string("x") == "é😀\x00" * 50
    assert api.roundtrip_bytes(b"x") == b"\x00\xff"
    assert api.roundtrip_char("a") == "😀"
    assert api.roundtrip_bool(True) is False


def test_simple_imports_run_no_python_of_wasmpy(component):
    """The point of the C path: calling such an import runs no Python code of wasmpy; a result C
    does not take runs the codecs only (the function is called once); other imports go the
    Python way."""
    calls = []
    host = Echo()
    host.replies["echo_u32"] = lambda value: calls.append(value) or value
    host.replies["echo_s32"] = lambda value: calls.append(value) or Big(value)
    exports = make(component, "c", host)
    api, call_log = exports.api, exports.call_log  # the exports made first: their making runs Python
    for function in (api.roundtrip_u32, api.roundtrip_string, api.roundtrip_bytes, api.roundtrip_s32,
                     api.roundtrip_point, api.roundtrip_tuple, api.roundtrip_person):
        assert function
    assert python_functions_called(lambda: api.roundtrip_u32(5)) == []
    assert python_functions_called(lambda: api.roundtrip_string("x")) == []
    assert python_functions_called(lambda: call_log("x")) == []
    assert python_functions_called(lambda: api.roundtrip_bytes(b"x")) == []
    called = python_functions_called(lambda: api.roundtrip_s32(7))
    assert "finish_at" in called and "wasmpy_component_host_call" not in called
    assert calls == [5, 7]
    point = api.Point(1, 2)
    for call in (lambda: api.roundtrip_point(point), lambda: api.roundtrip_tuple((1, "a", 2.0))):
        # records and tuples of simple fields: the import in C, and the export (csrc/component/call.c)
        assert python_functions_called(call) == []
    host.replies["echo_point"] = lambda value: {"x": 1, "y": 2}  # a mapping: the codecs convert it
    called = python_functions_called(lambda: api.roundtrip_point(point))
    assert "finish_at" in called and "wasmpy_component_host_call" not in called
    person = api.Person("ann", 3, ["a"])  # list<string>: the Python way
    assert "wasmpy_component_host_call" in python_functions_called(lambda: api.roundtrip_person(person))
    python_api = make(component, "python", host).api
    assert python_api.roundtrip_u32
    assert "wasmpy_component_host_call" in python_functions_called(lambda: python_api.roundtrip_u32(5))


def test_two_parameters_and_a_void_import(component):
    messages = []
    for way in WAYS:
        exports = make(component, way, log=messages.append)
        exports.call_log("hello é")
        exports.call_log("")
    assert messages == ["hello é", "", "hello é", ""]
    for way in WAYS:
        exports = make(component, way, log=lambda message: 5)
        with pytest.raises(TypeError, match="returns nothing in WIT, but the Python function returned int"):
            exports.call_log("x")


@pytest.mark.parametrize("raised", [ValueError("bad"), KeyboardInterrupt(), wasmpy.Err("err"), SystemExit(3)])
def test_exceptions_reach_the_caller_unchanged(component, raised):
    def refuse(value):
        raise raised
    for way in WAYS:
        host = Echo()
        host.replies["echo_string"] = refuse
        exports = make(component, way, host)
        with pytest.raises(type(raised)) as caught:
            exports.api.roundtrip_string("x")
        assert caught.value is raised
        assert any(entry.name == "refuse" for entry in caught.traceback)
        with pytest.raises(wasmpy.Trap, match="make a new Instance"):
            exports.api.roundtrip_u32(1)  # the component model forbids entering an instance that trapped
        assert component_instance._take_pending() is None


def test_an_import_calling_an_export_of_its_own_instance(component):
    """Reentrancy, which the component model forbids but wasmtime lets through for these
    functions: whatever it gives, it gives it both ways."""
    results = {}
    for way in WAYS:
        host = Echo()
        box = {}
        host.replies["echo_u32"] = lambda value: box["exports"].add(value, 1)
        host.replies["echo_string"] = lambda text: box["exports"].api.roundtrip_u32(len(text)) and text + "!"
        exports = box["exports"] = make(component, way, host)
        results[way] = [outcome(lambda: exports.api.roundtrip_u32(3)), outcome(lambda: exports.add(1, 2)),
                        outcome(lambda: exports.api.roundtrip_string("ab"))]
    assert results["c"] == results["python"]
    assert results["c"][0] == ("value", int, 4)


def test_an_import_calling_another_instance_of_the_store(component):
    store = Store(component.engine)
    other = make(component, "c", store=store)
    host = Echo()
    host.replies["echo_u32"] = lambda value: other.api.roundtrip_u32(value) + 1
    exports = make(component, "c", host, store=store)
    assert exports.api.roundtrip_u32(41) == 42


@pytest.mark.parametrize("release_gil", [False, True])
def test_calls_from_threads(component, release_gil):
    """Threads calling imports through one instance (the store's lock serialises them), with
    the GIL kept or released around each call into wasm."""
    store = Store(component.engine, release_gil=release_gil)
    messages = []
    exports = make(component, "c", log=messages.append, store=store)
    results = []

    def work(number):
        for index in range(1000):
            text = f"{number}-{index}"
            results.append(exports.api.roundtrip_string(text) == text and exports.api.roundtrip_u64(index) == index)
            exports.call_log(text)
    threads = [threading.Thread(target=work, args=(number,)) for number in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4000 and all(results)
    assert sorted(messages) == sorted(f"{number}-{index}" for number in range(4) for index in range(1000))


def test_a_store_releasing_the_gil_raises_the_same(component):
    store = Store(component.engine, release_gil=True)
    host = Echo()
    host.replies["echo_u8"] = lambda value: 256
    exports = make(component, "c", host, store=store)
    with pytest.raises(OverflowError, match="256 is out of range for u8"):
        exports.api.roundtrip_u8(1)


def test_component_host_checks_its_arguments(component):
    handle = Store(component.engine)._handle
    fn = print
    with pytest.raises(TypeError):
        ComponentHost(object(), fn, b"", 255, (None,), fn, fn)
    with pytest.raises(TypeError, match="callable"):
        ComponentHost(handle, 5, b"", 255, (None,), fn, fn)
    with pytest.raises(ValueError, match="too many"):
        ComponentHost(handle, fn, bytes(17), 255, (None,), fn, fn)
    with pytest.raises(ValueError, match="parameter kind"):
        ComponentHost(handle, fn, b"\x20", 255, (None,), fn, fn)
    with pytest.raises(ValueError, match="result kind"):
        ComponentHost(handle, fn, b"", 100, (None,), fn, fn)
    with pytest.raises(TypeError, match="one item per parameter"):
        ComponentHost(handle, fn, b"\x00", 255, (None,), fn, fn)
    with pytest.raises(TypeError, match="the spec of a record must be a tuple of 4 items"):
        ComponentHost(handle, fn, b"\x0e", 255, (None, None), fn, fn)
    with pytest.raises(TypeError, match="the spec of a tuple must be a tuple of 1 items"):
        ComponentHost(handle, fn, b"", 15, ((b"", 1),), fn, fn)
    assert ComponentHost(handle, fn, b"\x00", 255, (None, None), fn, fn).data_address() != 0
    assert component_host_callback_address() != 0


def test_many_calls_free_what_they_make():
    """Strings and bytes returned by imports are copied for wasmtime, which frees them: memory
    stays flat over many calls (in a child, where the measure is not disturbed)."""
    proc = run_python(f"""
        import resource
        from wasmpy import Component, Instance
        component = Component.from_file({str(RICH)!r})
        class Host:
            def __getattr__(self, name):
                return lambda *args: args[0] if args else "x"
        api = Instance(component, {{"test:rich/host": Host(), "log": lambda m: None}}).exports.api
        def run(count):
            for index in range(count):
                text = "é" * 100 + str(index)
                assert api.roundtrip_string(text) == text
                data = b"%d" % index * 20
                assert api.roundtrip_bytes(data) == data
        run(20000)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        run(100000)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        assert after - before < 8 * 1024, (before, after)  # KiB: a leak of 200 bytes a call is 20 MB
        print("ok")
    """, timeout=300)
    assert_clean_exit(proc)
    assert proc.stdout.strip().endswith("ok")


def test_a_dropped_instance_frees_its_imports():
    """The store keeps its imports' C objects, and frees them with itself (a cycle through the
    Python function included)."""
    proc = run_python(f"""
        import gc, weakref
        from wasmpy import Component, Instance, Store
        component = Component.from_file({str(RICH)!r})
        class Host:
            def __getattr__(self, name):
                return lambda *args: args[0] if args else "x"
        box = []
        def log(message):
            box.append(message)
        store = Store(component.engine)
        exports = Instance(component, {{"test:rich/host": Host(), "log": log}}, store=store).exports
        box.append(exports)  # a cycle: log -> box -> exports -> the store -> the import's C object -> log
        exports.call_log("a")
        dropped = weakref.ref(log)
        del log, box, exports, store
        gc.collect()
        assert dropped() is None
        print("ok")
    """, timeout=120)
    assert_clean_exit(proc)
    assert proc.stdout.strip().endswith("ok")


# An export that runs `n` rounds of a loop (long enough for ticks of the epoch, at which a call
# keeping the GIL releases it), then calls the Python import `tick` and returns what it returned.
SPIN_WAT = """
(component
  (import "tick" (func $tick (param "x" u32) (result u32)))
  (core func $tick_lowered (canon lower (func $tick)))
  (core module $m
    (import "host" "tick" (func $tick (param i32) (result i32)))
    (func (export "spin") (param $n i32) (result i32)
      (local $i i32)
      (block $done
        (loop $again
          (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $again)))
      (call $tick (local.get $n))))
  (core instance $i (instantiate $m (with "host" (instance (export "tick" (func $tick_lowered))))))
  (func (export "spin") (param "n" u32) (result u32) (canon lift (core func $i "spin"))))
"""


def test_an_import_called_after_ticks_released_the_gil():
    """wasm running long releases the GIL at a tick; the import called after that takes it back
    (and other threads ran meanwhile). In a child: a mistake there crashes or hangs."""
    proc = run_python(f"""
        import threading, time
        from wasmpy import Component, Instance, Store
        component = Component({SPIN_WAT!r})
        for release_gil in (False, True):
            counted, seen = [], []
            def tick(n):
                seen.append(len(counted))  # how far the other thread got while wasm ran
                return n + 1
            spin = Instance(component, {{"tick": tick}}, Store(component.engine, release_gil=release_gil)).exports.spin
            stop = threading.Event()
            def count():
                while not stop.is_set():
                    counted.append(1)
                    time.sleep(0)
            other = threading.Thread(target=count)
            other.start()
            try:
                assert spin(1) == 2
                # Longer and longer calls, until one runs past a tick with the other thread running
                # meanwhile: how long that takes depends on the machine, not on what is checked.
                ran_during, n = False, 1 << 20
                while not ran_during and n < 1 << 30:
                    before = len(counted)
                    assert spin(n) == n + 1, n
                    ran_during = seen[-1] > before
                    n *= 2
                assert spin(1) == 2
            finally:
                stop.set()
                other.join()
            assert ran_during, release_gil  # the other thread ran while wasm did
        print("ok")
    """, timeout=120)
    assert_clean_exit(proc)
    assert proc.stdout.strip().endswith("ok")


def test_the_c_callback_called_directly():
    """The callback as wasmtime calls it, on values made here: the plan's kinds go through C,
    arguments of other kinds (wasmtime never passes them) the whole call the Python way, a result
    C does not take the codecs' way, and an exception is kept for the call it ends. In a child:
    a mistake there crashes."""
    proc = run_python("""
        from wasmpy import Engine, Store
        from wasmpy._ffi import ffi, lib
        from wasmpy._native import ComponentHost, component_host_callback_address, component_take_pending
        calls = []
        class Refusal(Exception):
            pass
        def fn(value):
            calls.append(("fn", value))
            if value == 0:
                raise Refusal("zero")
            return value + 1 if value < 100 else str(value)
        store = Store(Engine())
        host = ComponentHost(store._handle, fn, bytes([lib.WASMTIME_COMPONENT_U32]), lib.WASMTIME_COMPONENT_U32,
                             (None, None), lambda args, nargs, results, nresults: calls.append(("invoke", nargs)),
                             lambda value, results, nresults: calls.append(("finish", value, nresults)))
        callback = ffi.cast("wasmtime_component_func_callback_t", component_host_callback_address())
        data = ffi.cast("void *", host.data_address())
        args = ffi.new("wasmtime_component_val_t[1]")
        results = ffi.new("wasmtime_component_val_t[1]")
        def call(kind, value):
            args[0].kind = kind
            args[0].of.u32 = value
            return callback(data, ffi.NULL, ffi.NULL, args, 1, results, 1)
        assert call(lib.WASMTIME_COMPONENT_U32, 41) == ffi.NULL
        assert results[0].kind == lib.WASMTIME_COMPONENT_U32 and results[0].of.u32 == 42
        assert call(lib.WASMTIME_COMPONENT_S32, 5) == ffi.NULL
        assert call(lib.WASMTIME_COMPONENT_U32, 500) == ffi.NULL
        assert calls == [("fn", 41), ("invoke", 1), ("fn", 500), ("finish", "500", 1)], calls
        error = call(lib.WASMTIME_COMPONENT_U32, 0)
        assert error != ffi.NULL
        lib.wasmtime_error_delete(error)
        raised = component_take_pending()
        assert type(raised) is Refusal and raised.__traceback__ is not None
        assert store._handle.depth == 0  # the callback gave the store's lock back every time
        print("ok")
    """, timeout=120)
    assert_clean_exit(proc)
    assert proc.stdout.strip().endswith("ok")
