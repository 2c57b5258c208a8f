"""WASI functions overridden one by one: what ``imports["wasi_snapshot_preview1"]`` (and, for
:func:`wasmpy.run` and the import hook, their ways of giving it) replaces, while the store's WASI,
wasmtime's, provides the rest.

tests/wasi/nap.c (built by tests/wasi/build.sh) sleeps with nanosleep (poll_oneoff) and lists a
directory with readdir (fd_readdir); the tests replace those with Python functions that read and
write its memory, and its output still goes through WASI's fd_write.
"""

from __future__ import annotations

import gc
import importlib
import importlib.util
import io
import struct
import sys
import weakref
from pathlib import Path

import pytest

import wasmpy
from wasmpy import _hook
from wasmpy._ffi import ffi, lib
from wasmpy._wasi import WASI_FUNCTIONS, WASI_MODULE
from childproc import child_json, run_python

NAP = Path(__file__).resolve().parent / "wasi" / "nap.wasm"

# WASI preview 1's layouts and numbers (wasi_snapshot_preview1.witx).
SUBSCRIPTION_SIZE, EVENT_SIZE = 48, 32
EVENTTYPE_CLOCK = 0
FILETYPE_REGULAR_FILE = 4
ERRNO_SUCCESS, ERRNO_INVAL, ERRNO_IO, ERRNO_NOTSUP = 0, 28, 29, 58


@pytest.fixture(scope="module")
def nap() -> wasmpy.Module:
    return wasmpy.Module.from_file(NAP)


def poll_oneoff_that_records(exports, requested):
    """A poll_oneoff that sleeps not at all: it records each clock subscription's
    ``(clock id, timeout in ns, flags)`` in ``requested`` and reports every one as done."""

    def poll_oneoff(subscriptions: int, events: int, count: int, written: int) -> int:
        memory = exports.memory
        for index in range(count):
            entry = memory.read(subscriptions + index * SUBSCRIPTION_SIZE, SUBSCRIPTION_SIZE)
            userdata, tag = struct.unpack_from("<QB", entry)
            assert tag == EVENTTYPE_CLOCK, "nap only sleeps"
            clock, timeout, _precision, flags = struct.unpack_from("<I4xQQH", entry, 16)
            requested.append((clock, timeout, flags))
            # event: userdata, errno, type, then fd_readwrite (unused for clocks)
            memory.write(events + index * EVENT_SIZE, struct.pack("<QHB5xQH6x", userdata, 0, EVENTTYPE_CLOCK, 0, 0))
        memory.write(written, struct.pack("<I", count))
        return ERRNO_SUCCESS

    return poll_oneoff


def fd_readdir_listing(exports, names, calls):
    """An fd_readdir that lists ``names`` (bytes) in that order for any directory, from the cookie
    on and cut at the buffer's end, as WASI does; each call's ``(fd, cookie)`` goes to ``calls``."""

    def fd_readdir(fd: int, buffer: int, length: int, cookie: int, used: int) -> int:
        calls.append((fd, cookie))
        entries = b"".join(struct.pack("<QQIB3x", index + 1, 1000 + index, len(name), FILETYPE_REGULAR_FILE) + name
                           for index, name in enumerate(names) if index >= cookie)[:length]
        exports.memory.write(buffer, entries)
        exports.memory.write(used, struct.pack("<I", len(entries)))
        return ERRNO_SUCCESS

    return fd_readdir


class Later:
    """Exports to be set once the instance exists: host functions get no caller."""

    memory: wasmpy.Memory


def instantiate(module, overrides, **wasi):
    """An instance of ``module`` in a store with ``WasiConfig(**wasi)``, WASI overridden by
    ``overrides(later)`` (``later.memory`` is set once it is instantiated)."""
    later = Later()
    store = wasmpy.Store(wasi=wasmpy.WasiConfig(**wasi))
    instance = wasmpy.Instance(module, {WASI_MODULE: overrides(later)}, store)
    later.memory = instance.exports.memory
    return instance


def start(instance) -> int:
    try:
        instance.exports._start()
    except wasmpy.ExitTrap as exit:
        return exit.code
    return 0


# --- the C program: poll_oneoff and fd_readdir from Python, the rest from wasmtime's WASI


def test_c_program_with_python_poll_oneoff_and_fd_readdir(nap, tmp_path):
    (tmp_path / "real.txt").write_text("not listed: fd_readdir is Python's")
    requested, listed = [], []
    out = io.BytesIO()
    instance = instantiate(nap, lambda later: {
        "poll_oneoff": poll_oneoff_that_records(later, requested),
        "fd_readdir": fd_readdir_listing(later, [b".", b"..", b"zeta", b"alpha"], listed),
    }, argv=["nap", "3600", "/data"], stdout=out, preopens=[(tmp_path, "/data")])
    assert start(instance) == 0
    # An hour's sleep, asked of Python's poll_oneoff; opening /data (path_open) and writing (fd_write) are WASI's.
    assert requested == [(0, 3600 * 10**9, 0)]
    assert out.getvalue() == b"sleeping 3600 s\nawake\nentry zeta\nentry alpha\n"
    assert listed and all(fd > 3 for fd, _ in listed)  # the directory WASI's path_open opened


def test_c_program_keeps_wasi_readdir_when_only_poll_oneoff_is_given(nap, tmp_path):
    (tmp_path / "real.txt").write_text("listed by wasmtime's fd_readdir")
    requested = []
    out = io.BytesIO()
    instance = instantiate(nap, lambda later: {"poll_oneoff": poll_oneoff_that_records(later, requested)},
                           argv=["nap", "3600", "/data"], stdout=out, preopens=[(tmp_path, "/data")])
    assert start(instance) == 0
    assert requested == [(0, 3600 * 10**9, 0)]
    assert out.getvalue() == b"sleeping 3600 s\nawake\nentry real.txt\n"


def test_an_override_returns_a_wasi_errno(nap, tmp_path):
    out, err = io.BytesIO(), io.BytesIO()
    instance = instantiate(nap, lambda later: {"poll_oneoff": lambda *args: ERRNO_NOTSUP,
                                               "fd_readdir": lambda *args: ERRNO_IO},
                           argv=["nap", "1"], stdout=out, stderr=err)
    assert start(instance) == 1
    assert out.getvalue() == b"sleeping 1 s\n"
    assert err.getvalue() == b"nap: nanosleep: Not supported\n"

    err = io.BytesIO()
    instance = instantiate(nap, lambda later: {"poll_oneoff": poll_oneoff_that_records(later, []),
                                               "fd_readdir": lambda *args: ERRNO_IO},
                           argv=["nap", "1", "/data"], stdout=io.BytesIO(), stderr=err, preopens=[(tmp_path, "/data")])
    assert start(instance) == 1
    assert err.getvalue() == b"nap: cannot list /data: I/O error\n"  # wasi-libc's opendir reads first


def test_what_an_override_raises_reaches_the_caller_unchanged(nap):
    class Interrupted(Exception):
        pass

    raised = Interrupted("no sleeping here")

    def poll_oneoff(*args):
        raise raised

    out = io.BytesIO()
    instance = instantiate(nap, lambda later: {"poll_oneoff": poll_oneoff}, argv=["nap", "5"], stdout=out)
    with pytest.raises(Interrupted) as caught:
        instance.exports._start()
    assert caught.value is raised
    assert out.getvalue() == b"sleeping 5 s\n"  # WASI's output before it is delivered


def test_run_takes_overrides_and_gives_them_the_programs_exports(nap, tmp_path):
    requested, listed = [], []
    out = io.BytesIO()

    def imports(exports):
        return {WASI_MODULE: {"poll_oneoff": poll_oneoff_that_records(exports, requested),
                              "fd_readdir": fd_readdir_listing(exports, [b"only"], listed)}}

    assert wasmpy.run(NAP, ["nap", "7", "/d"], imports=imports, stdout=out, preopens=[(tmp_path, "/d")]) == 0
    assert requested == [(0, 7 * 10**9, 0)]
    assert out.getvalue() == b"sleeping 7 s\nawake\nentry only\n"

    # A mapping is taken as it is; a function needing no memory can be given that way.
    err = io.BytesIO()
    assert wasmpy.run(nap, ["nap", "1"], imports={WASI_MODULE: {"poll_oneoff": lambda *args: ERRNO_INVAL}},
                      stdout=io.BytesIO(), stderr=err) == 1
    assert err.getvalue() == b"nap: nanosleep: Not supported\n"  # what wasi-libc makes of any failure


def test_run_checks_its_imports_argument(nap):
    with pytest.raises(TypeError, match="imports must be a mapping"):
        wasmpy.run(nap, imports=[1])
    with pytest.raises(TypeError, match="must return a mapping"):
        wasmpy.run(nap, imports=lambda exports: None)
    with pytest.raises(wasmpy.LinkError, match="poll_onoff.*did you mean 'poll_oneoff'"):
        wasmpy.run(nap, imports={WASI_MODULE: {"poll_onoff": lambda *args: 0}})


RUN_WITH_START_WAT = """
(module
  (import "wasi_snapshot_preview1" "sched_yield" (func $yield (result i32)))
  (memory (export "memory") 1)
  (func $init (drop (call $yield)))
  (start $init)
  (func (export "_start")))
"""


def test_run_exports_are_not_there_before_the_instance(tmp_path):
    seen = []

    def imports(exports):
        def sched_yield() -> int:
            seen.append(repr(exports))
            exports.memory  # a start function runs before instantiation ends
            return 0
        return {WASI_MODULE: {"sched_yield": sched_yield}}

    with pytest.raises(wasmpy.WasmError, match="not instantiated"):
        wasmpy.run(wasmpy.Module(RUN_WITH_START_WAT), imports=imports)
    assert seen == ["<wasmpy.run exports: not yet>"]


# --- the import hook: a Python module named wasi_snapshot_preview1, as for other namespaces


@pytest.fixture
def hook_settings(monkeypatch):
    monkeypatch.setattr(_hook, "_wasi", _hook._wasi)


def test_hook_takes_overrides_from_a_python_module_named_wasi_snapshot_preview1(mods, hook_settings, tmp_path):
    name = mods.name("nap")
    mods.write(f"{name}.wasm", NAP.read_bytes())
    mods.py(WASI_MODULE, f"""
        import struct, sys
        requested = []

        def poll_oneoff(subscriptions, events, count, written):
            memory = sys.modules[{name!r}].memory
            entry = memory.read(subscriptions, 48)
            requested.append(struct.unpack_from("<Q", entry, 24)[0])
            memory.write(events, struct.pack("<QHB5xQH6x", struct.unpack_from("<Q", entry)[0], 0, 0, 0, 0))
            memory.write(written, struct.pack("<I", 1))
            return 0

        def helper():  # not a WASI function: the hook looks up only what the module imports
            raise AssertionError("never called")
        """)
    out = io.BytesIO()
    wasmpy.configure_import_hook(wasi=wasmpy.WasiConfig(argv=["nap", "42"], stdout=out))
    module = importlib.import_module(name)
    module._start()
    assert sys.modules[WASI_MODULE].requested == [42 * 10**9]
    assert out.getvalue() == b"sleeping 42 s\nawake\n"


def test_hook_without_a_wasi_snapshot_preview1_module_gives_all_of_wasi(mods, hook_settings):
    assert importlib.util.find_spec(WASI_MODULE) is None
    name = mods.name("yielder")
    mods.wat(name, """(module (import "wasi_snapshot_preview1" "sched_yield" (func $y (result i32)))
                              (memory (export "memory") 1)  ;; WASI functions need it, even those not using it
                              (func (export "go") (result i32) (call $y)))""")
    assert importlib.import_module(name).go() == 0


def test_hook_refuses_a_wasi_override_of_another_store(mods, hook_settings):
    mods.py(WASI_MODULE, """
        import wasmpy
        sched_yield = wasmpy.Func(wasmpy.Store(), lambda: 0, wasmpy.FuncType([], [wasmpy.ValType.i32]))
        """)
    name = mods.name("yielder")
    mods.wat(name, """(module (import "wasi_snapshot_preview1" "sched_yield" (func $y (result i32))))""")
    with pytest.raises(wasmpy.LinkError, match="imports WASI, so it gets a store.*sched_yield.*another store"):
        importlib.import_module(name)


# --- edge cases, in WAT

ECHO_WAT = """
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (memory (export "memory") 1)
  ;; fills `length` bytes at `at` with `byte`: what a Python random_get calls back into
  (func (export "fill") (param $at i32) (param $length i32) (param $byte i32)
    (memory.fill (local.get $at) (local.get $byte) (local.get $length)))
  ;; random_get(64, 4), then writes those 4 bytes and a newline to stdout; returns both errnos
  (func (export "random_line") (result i32 i32)
    (local $random i32)
    (local.set $random (call $random_get (i32.const 64) (i32.const 4)))
    (i32.store8 (i32.const 68) (i32.const 10))
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 5))
    (local.get $random)
    (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
  (func (export "now") (result i32 i64)
    (call $clock (i32.const 1) (i64.const 1) (i32.const 128))
    (i64.load (i32.const 128))))
"""


@pytest.fixture(scope="module")
def echo() -> wasmpy.Module:
    return wasmpy.Module(ECHO_WAT)


def test_an_override_calls_back_into_wasm(echo):
    out = io.BytesIO()
    calls = []

    def random_get(at: int, length: int) -> int:
        calls.append((at, length))
        later.memory  # the exports are there
        exports.fill(at, length, ord("x"))  # reentrant: wasm -> Python -> wasm, on the store's lock
        return ERRNO_SUCCESS

    later = Later()
    instance = wasmpy.Instance(echo, {WASI_MODULE: {"random_get": random_get}},
                               wasmpy.Store(wasi=wasmpy.WasiConfig(stdout=out)))
    exports = instance.exports
    later.memory = exports.memory
    assert exports.random_line() == (ERRNO_SUCCESS, ERRNO_SUCCESS)
    assert calls == [(64, 4)]
    assert out.getvalue() == b"xxxx\n"
    status, now = exports.now()  # WASI's own clock_time_get
    assert status == ERRNO_SUCCESS and now > 0


def test_a_func_override_and_an_errno(echo, store):
    clock = wasmpy.Func(store, lambda clock, precision, at: ERRNO_INVAL,
                        wasmpy.FuncType([wasmpy.ValType.i32, wasmpy.ValType.i64, wasmpy.ValType.i32],
                                        [wasmpy.ValType.i32]))
    exports = wasmpy.Instance(echo, {WASI_MODULE: {"clock_time_get": clock}}, store).exports
    assert exports.now() == (ERRNO_INVAL, 0)


def test_an_override_of_the_wrong_type_is_a_link_error(echo, store):
    wrong = wasmpy.Func(store, lambda at: 0, wasmpy.FuncType([wasmpy.ValType.i32], [wasmpy.ValType.i32]))
    with pytest.raises(wasmpy.LinkError, match=r"wasi_snapshot_preview1.random_get: expected func\(i32, i32\) -> i32"):
        wasmpy.Instance(echo, {WASI_MODULE: {"random_get": wrong}}, store)

    def annotated(at: "i64", length: "i32") -> "i32":
        return 0
    with pytest.raises(wasmpy.LinkError, match="random_get"):
        wasmpy.Instance(echo, {WASI_MODULE: {"random_get": annotated}}, store)
    with pytest.raises(wasmpy.LinkError, match="random_get: expected a function"):
        wasmpy.Instance(echo, {WASI_MODULE: {"random_get": 3}}, store)
    with pytest.raises(wasmpy.LinkError, match="belongs to a different store"):
        other = wasmpy.Func(wasmpy.Store(), lambda at, length: 0,
                            wasmpy.FuncType([wasmpy.ValType.i32, wasmpy.ValType.i32], [wasmpy.ValType.i32]))
        wasmpy.Instance(echo, {WASI_MODULE: {"random_get": other}}, store)
    store.wasi = wasmpy.WasiConfig()  # none of these failures gave the store its WASI


def test_a_wasi_import_of_a_type_wasi_does_not_have(store):
    module = wasmpy.Module("""(module (import "wasi_snapshot_preview1" "fd_write" (func (param i32) (result i32)))
                                      (import "wasi_snapshot_preview1" "sched_yield" (func (result i32))))""")
    with pytest.raises(wasmpy.LinkError, match=r"imports it as func\(i32\) -> i32, but WASI's fd_write is "
                                               r"func\(i32, i32, i32, i32\) -> i32"):
        wasmpy.Instance(module, {}, store)
    store.wasi = wasmpy.WasiConfig()  # still changeable: checked before WASI is set up
    # Given in Python, it takes the module's type: WASI's does not matter.
    wasmpy.Instance(module, {WASI_MODULE: {"fd_write": lambda fd: 0}}, store)


def test_an_override_the_module_does_not_import_is_ignored(echo, store):
    out = io.BytesIO()
    store.wasi = wasmpy.WasiConfig(stdout=out)
    never = lambda *args: pytest.fail("not imported, so never called")  # noqa: E731
    exports = wasmpy.Instance(echo, {WASI_MODULE: {"poll_oneoff": never, "path_rename": never}}, store).exports
    assert exports.random_line()[1] == ERRNO_SUCCESS
    assert len(out.getvalue()) == 5


def test_a_name_neither_wasi_nor_imported_is_refused_in_a_mapping(echo, store):
    with pytest.raises(wasmpy.LinkError, match="'random_gte', which is not a WASI preview 1 function and not "
                                               "imported by the module: did you mean 'random_get'"):
        wasmpy.Instance(echo, {WASI_MODULE: {"random_gte": lambda at, length: 0}}, store)
    with pytest.raises(wasmpy.LinkError, match="'x'.*not a WASI preview 1 function"):
        wasmpy.Instance(echo, {WASI_MODULE: {"x": 1}}, store)

    class Namespace:  # attributes: only those the module imports are looked up
        unrelated = 1

        @staticmethod
        def random_get(at: int, length: int) -> int:
            return ERRNO_IO
    assert wasmpy.Instance(echo, {WASI_MODULE: Namespace}, store).exports.random_line()[0] == ERRNO_IO


def test_an_import_wasi_does_not_define(store):
    module = wasmpy.Module("""(module (import "wasi_snapshot_preview1" "vendor_extension" (func (result i32)))
                                      (import "wasi_snapshot_preview1" "sched_yield" (func (result i32)))
                                      (memory (export "memory") 1)
                                      (func (export "both") (result i32 i32) (call 0) (call 1)))""")
    with pytest.raises(wasmpy.LinkError, match="missing import wasi_snapshot_preview1.vendor_extension: expected a "
                                               r"function \(func\(\) -> i32\); WASI preview 1 has no 'vendor_extension'"):
        wasmpy.Instance(module, {}, store)
    exports = wasmpy.Instance(module, {WASI_MODULE: {"vendor_extension": lambda: 7}}, store).exports
    assert exports.both() == (7, ERRNO_SUCCESS)


def test_every_wasi_import_given_leaves_the_stores_wasi_unused(echo, store):
    exports = wasmpy.Instance(echo, {WASI_MODULE: {"fd_write": lambda *args: ERRNO_IO,
                                                   "random_get": lambda *args: 0,
                                                   "clock_time_get": lambda *args: ERRNO_NOTSUP}}, store).exports
    assert exports.random_line() == (0, ERRNO_IO)
    store.wasi = wasmpy.WasiConfig()  # no WASI context was made, as before overrides were partial
    wasmpy.Instance(echo, {WASI_MODULE: {"random_get": lambda *args: 0}}, store)
    with pytest.raises(wasmpy.WasmError, match="in use"):
        store.wasi = None


def test_a_sequence_gives_the_other_imports_and_all_of_wasi_comes_from_the_store(store):
    module = wasmpy.Module("""(module (import "env" "seven" (func (result i32)))
                                      (import "wasi_snapshot_preview1" "sched_yield" (func (result i32)))
                                      (memory (export "memory") 1)
                                      (func (export "both") (result i32 i32) (call 0) (call 1)))""")
    assert wasmpy.Instance(module, [lambda: 7], store).exports.both() == (7, 0)
    with pytest.raises(wasmpy.LinkError, match="the module has 1 imports besides its 1 WASI ones, but 2 values"):
        wasmpy.Instance(module, [lambda: 7, lambda: 0], store)


def test_wasi_functions_are_wasmtimes():
    """WASI_FUNCTIONS (the names an override may have that a module does not import) are those
    wasmtime's linker defines."""
    engine = wasmpy.Engine.default()
    store = wasmpy.Store(engine)
    linker = ffi.gc(lib.wasmtime_linker_new(engine._ptr), lib.wasmtime_linker_delete)
    assert lib.wasmtime_linker_define_wasi(linker) == ffi.NULL
    item = ffi.new("wasmtime_extern_t *")

    def defined(name: str) -> bool:
        return lib.wasmtime_linker_get(linker, store._context(), WASI_MODULE.encode(), len(WASI_MODULE),
                                       name.encode(), len(name), item)

    assert len(WASI_FUNCTIONS) == 46
    assert all(defined(name) for name in WASI_FUNCTIONS)
    assert not defined("vendor_extension")


# --- in a child: a store without a WasiConfig, and WASI functions used beside overrides


def test_overrides_in_a_store_without_wasi_config_inherit_stdout():
    """The store's WASI is the safe default, as without overrides: stdout is this process's."""
    proc = run_python(f"""
        import json, wasmpy, test_wasi_overrides as t
        store = wasmpy.Store()
        assert store.wasi is None
        exports = wasmpy.Instance(wasmpy.Module(t.ECHO_WAT), {{"{WASI_MODULE}": {{
            "random_get": lambda at, length: exports.fill(at, length, ord("y")) or 0}}}}, store).exports
        status = exports.random_line()
        import sys; sys.stdout.flush()
        print(json.dumps({{"status": status}}))
        """, timeout=120)
    result = child_json(proc)
    assert result == {"status": [0, 0]}
    assert proc.stdout.startswith("yyyy\n")


def test_the_wasi_linker_of_an_engine_is_made_once_and_freed_with_it():
    from wasmpy import _instance
    engine = wasmpy.Engine(cranelift_opt_level="none")
    module = wasmpy.Module(ECHO_WAT, engine)
    for _ in range(2):
        exports = wasmpy.Instance(module, {}, wasmpy.Store(engine)).exports
        assert exports.random_line()[0] == ERRNO_SUCCESS
    assert engine in _instance._WASI_LINKERS
    gone = weakref.ref(engine)
    del engine, module, exports
    gc.collect()
    assert gone() is None


def test_threads_instantiate_wasi_programs_at_once():
    proc = run_python("""
        import io, json, threading, wasmpy, test_wasi_overrides as t
        module = wasmpy.Module(t.ECHO_WAT, wasmpy.Engine())  # a new engine: its WASI linker is made here
        barrier, outputs, errors = threading.Barrier(4), [], []

        def work():
            try:
                barrier.wait()
                for _ in range(50):
                    out = io.BytesIO()
                    exports = wasmpy.Instance(module, {"wasi_snapshot_preview1": {
                        "random_get": lambda at, length: 0}}, wasmpy.Store(module.engine,
                        wasi=wasmpy.WasiConfig(stdout=out))).exports
                    exports.random_line()
                    outputs.append(len(out.getvalue()))
            except BaseException as error:
                errors.append(repr(error))

        threads = [threading.Thread(target=work) for _ in range(4)]
        for thread in threads: thread.start()
        for thread in threads: thread.join()
        print(json.dumps({"outputs": sorted(set(outputs)), "count": len(outputs), "errors": errors}))
        """, timeout=180)
    assert child_json(proc) == {"outputs": [5], "count": 200, "errors": []}


def test_instantiating_with_overrides_in_a_closed_store_is_an_error_not_a_crash():
    proc = run_python(f"""
        import json, wasmpy, test_wasi_overrides as t
        module = wasmpy.Module(t.ECHO_WAT)
        messages = []
        for imports in ({{}}, {{"{WASI_MODULE}": {{"random_get": lambda at, length: 0}}}}):
            store = wasmpy.Store()
            store.close()
            try:
                wasmpy.Instance(module, imports, store)
            except wasmpy.WasmError as error:
                messages.append(type(error).__name__)
        print(json.dumps({{"raised": messages}}))
        """, timeout=120)
    assert child_json(proc) == {"raised": ["WasmError", "WasmError"]}


def test_a_failed_instantiation_leaves_no_wasi_function_of_a_store_without_wasi():
    """A WASI function of a store whose WASI context was never set aborted the process when wasm
    called it (wasmtime panics: "wasi context must be populated"). Instantiation took WASI's
    functions before setting the store's WASI up, so when that failed (a stdout it cannot open)
    or a later import did not link, they lived on in the exception's traceback."""
    proc = run_python(f"""
        import gc, json, wasmpy
        USER = '''(module (import "env" "y" (func $y (result i32))) (memory (export "memory") 1)
                    (func (export "go") (result i32) call $y))'''
        cases = [
            ('(module (import "{WASI_MODULE}" "sched_yield" (func (result i32))) (memory (export "memory") 1))',
             wasmpy.WasiConfig(stdout="/nonexistent/wasmpy/dir/out.txt")),
            ('''(module (import "{WASI_MODULE}" "sched_yield" (func (result i32)))
                        (import "{WASI_MODULE}" "fd_write" (func (param i32) (result i32)))
                        (memory (export "memory") 1))''', None),
        ]
        outcomes = []
        for wat, config in cases:
            store = wasmpy.Store(wasi=config)
            try:
                wasmpy.Instance(wasmpy.Module(wat), {{}}, store)
            except (OSError, wasmpy.LinkError) as error:
                failure = error  # its traceback keeps the frames' locals
                leftovers = [o for o in gc.get_objects() if isinstance(o, wasmpy.Func) and o.store is store]
                for func in leftovers:
                    user = wasmpy.Instance(wasmpy.Module(USER), {{"env": {{"y": func}}}}, store)
                    outcomes.append(user.exports.go())  # wasi's sched_yield returns 0 once WASI is set up
                outcomes.append(type(failure).__name__)
        print(json.dumps({{"outcomes": outcomes}}))
        """, timeout=120)
    assert child_json(proc)["outcomes"] == ["OSError", "LinkError"]


def test_an_engine_subclass_equal_to_another_engine_gets_its_own_wasi_linker():
    """The engines' WASI linkers were found by the engine's hash and ==: an Engine subclass equal
    to the default engine got that engine's linker, and wasmtime aborted the process ("cannot use
    a store with a different engine than a linker was created with")."""
    proc = run_python(f"""
        import json, wasmpy

        class EqualToAll(wasmpy.Engine):
            def __hash__(self):
                return hash(wasmpy.Engine.default())

            def __eq__(self, other):
                return True

        wat = '''(module (import "{WASI_MODULE}" "sched_yield" (func $y (result i32)))
                         (memory (export "memory") 1)
                         (func (export "run") (result i32) call $y))'''
        results = [wasmpy.Instance(wasmpy.Module(wat)).exports.run()]  # the default engine's linker
        engine = EqualToAll(memory_may_move=True)
        results.append(wasmpy.Instance(wasmpy.Module(wat, engine), store=wasmpy.Store(engine)).exports.run())
        print(json.dumps({{"results": results}}))
        """, timeout=120)
    assert child_json(proc) == {"results": [0, 0]}
