"""wasm traps with faulthandler (or another fault handler) installed in any order: a trap is a Trap,
and Python's own crashes still get faulthandler's traceback and kill the process by the signal.

Every scenario runs in a child interpreter (in the wrong order a trap kills it).
``childproc.run_python`` starts children with ``-X faulthandler``; the scenarios where faulthandler
comes later need a child without it, started here.
"""

from __future__ import annotations

import faulthandler
import json
import os
import signal
import subprocess
import sys
import textwrap
from typing import NamedTuple

import pytest

import wasmpy
from childproc import PACKAGE_ROOT, TESTS_DIR, describe, run_python

# The signals wasmtime's trap handler takes on x86-64 Linux: SIGSEGV (an out-of-bounds load), SIGFPE
# (the division instruction's own divide-by-zero fault) and SIGILL (`unreachable` is ud2).
WAT = """(module (memory 1)
  (func (export "load") (result i32) i32.const 100000 i32.load)
  (func (export "divide") (param i32) (result i32) i32.const 1 local.get 0 i32.div_u)
  (func (export "unreachable") unreachable))"""
ALL_TRAPS = ["MEMORY_OUT_OF_BOUNDS", "INTEGER_DIVISION_BY_ZERO", "UNREACHABLE"]

PRELUDE = f'''
import faulthandler, json, sys, threading
import wasmpy

WAT = {WAT!r}
MODULE = wasmpy.Module(WAT)


def traps(instance=None):
    """The trap codes of the three faulting exports (None where no Trap came)."""
    exports = (instance or wasmpy.Instance(MODULE)).exports
    codes = []
    for call in (exports.load, lambda: exports.divide(0), exports.unreachable):
        try:
            call()
        except wasmpy.Trap as trap:
            codes.append(trap.code.name)
        else:
            codes.append(None)
    return codes


def report(early, new):
    print(json.dumps({{"early": early, "new": new}}), flush=True)


def crash():
    """A fault that is not wasm's: Python's own segfault."""
    import ctypes
    ctypes.string_at(0)
'''


class Order(NamedTuple):
    faulthandler_at_startup: bool  # python -X faulthandler
    before_import: str             # runs before wasmpy is imported
    body: str                      # reports the traps of an early and a new instance, then crashes
    dumped: bool = True            # faulthandler is enabled at the crash


ORDERS = {
    "enable after import": Order(False, "", """
        early = wasmpy.Instance(MODULE)  # the engine and the instance exist before faulthandler
        faulthandler.enable()
        report(traps(early), traps())
        crash()
    """),
    "enable before import": Order(False, "import faulthandler; faulthandler.enable()", """
        report(traps(), traps())
        crash()
    """),
    "-X faulthandler": Order(True, "", """
        report(traps(), traps())
        crash()
    """),
    "enable, disable, enable after import": Order(False, "", """
        early = wasmpy.Instance(MODULE)
        faulthandler.enable()
        codes = traps(early)
        assert faulthandler.disable()
        codes += traps(early)
        faulthandler.enable()
        faulthandler.enable()  # a second enable() while enabled installs nothing
        report(codes + traps(early), traps())
        crash()
    """),
    "-X faulthandler, then disable, enable, disable, enable": Order(True, "", """
        early = wasmpy.Instance(MODULE)
        codes = traps(early)
        for _ in range(2):
            assert faulthandler.disable()
            codes += traps(early)
            faulthandler.enable()
            codes += traps(early)
        report(codes, traps())
        crash()
    """),
    "enable after import, then disable": Order(False, "", """
        early = wasmpy.Instance(MODULE)
        faulthandler.enable()
        codes = traps(early)
        faulthandler.disable()
        report(codes + traps(early), traps())
        crash()
    """, dumped=False),
    "-X faulthandler, then disable": Order(True, "", """
        early = wasmpy.Instance(MODULE)
        faulthandler.disable()
        report(traps(early), traps())
        crash()
    """, dumped=False),
    "enable() without wasmpy's wrapper, then instantiate": Order(
        False, "import faulthandler; unwrapped_enable = faulthandler.enable", """
        early = wasmpy.Instance(MODULE)
        unwrapped_enable()  # taken before wasmpy was imported: only instantiation notices
        new = traps()
        report(traps(early), new)
        crash()
    """),
    "enable after import, crash in a host function called by wasm": Order(False, "", """
        early = wasmpy.Instance(MODULE)
        faulthandler.enable()
        calls_crash = wasmpy.Instance(wasmpy.Module(
            '(module (import "host" "crash" (func $crash)) (func (export "run") call $crash))'),
            {"host": {"crash": crash}})
        report(traps(early), traps())
        calls_crash.exports.run()  # a fault while wasm is on the stack, but not in wasm code
    """),
    "enable after import, traps in another thread": Order(False, "", """
        early = wasmpy.Instance(MODULE)
        faulthandler.enable()
        seen = []
        thread = threading.Thread(target=lambda: seen.extend([traps(early), traps()]))
        thread.start()
        thread.join()
        report(*seen)
        crash()
    """),
}


def run_child(order: Order, timeout: float = 120) -> subprocess.CompletedProcess:
    """Runs the order's code in a child, with or without ``-X faulthandler``."""
    code = textwrap.dedent(order.before_import) + PRELUDE + textwrap.dedent(order.body)
    if order.faulthandler_at_startup:
        return run_python(code, timeout=timeout)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([PACKAGE_ROOT, TESTS_DIR])
    for name in ("PYTHONFAULTHANDLER", "RUST_BACKTRACE"):
        env.pop(name, None)
    argv = [sys.executable, "-c", code]
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, cwd=TESTS_DIR)
    except subprocess.TimeoutExpired as expired:
        def text(out) -> str:
            return out.decode("utf-8", "replace") if isinstance(out, bytes) else (out or "")
        return subprocess.CompletedProcess(argv, -signal.SIGKILL, text(expired.stdout),
                                           text(expired.stderr) + f"\n(timed out after {timeout} s: a hang)")


def reported(proc: subprocess.CompletedProcess) -> dict:
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, describe(proc)
    return json.loads(lines[-1])


def assert_crashed(proc: subprocess.CompletedProcess, dumped: bool) -> None:
    """The child died by SIGSEGV from crash(), with faulthandler's traceback exactly once if ``dumped``."""
    assert proc.returncode == -signal.SIGSEGV, describe(proc)
    dumps = proc.stderr.count("Fatal Python error: Segmentation fault")
    if dumped:
        assert dumps == 1 and "in string_at" in proc.stderr and "in crash" in proc.stderr, describe(proc)
    else:
        assert dumps == 0, describe(proc)


@pytest.mark.parametrize("name", list(ORDERS))
def test_wasm_traps_and_python_crashes(name):
    order = ORDERS[name]
    proc = run_child(order)
    seen = reported(proc)
    assert seen["new"] == ALL_TRAPS, describe(proc)
    assert seen["early"] == ALL_TRAPS * (len(seen["early"]) // len(ALL_TRAPS)) != [], describe(proc)
    assert_crashed(proc, order.dumped)


@pytest.mark.parametrize("faulthandler_at_startup", [False, True])
def test_next_to_another_copy_of_wasmtime(faulthandler_at_startup):
    """The wasmtime package's own trap handler (another copy of wasmtime, which calls the handler it
    replaced directly) installed over wasmpy's: both kinds of traps work, crashes still reach
    faulthandler once."""
    proc = run_child(Order(faulthandler_at_startup, "", """
        import wasmtime
        early = wasmpy.Instance(MODULE)
        faulthandler.enable()
        engine = wasmtime.Engine()  # installs that copy's handler over wasmpy's
        store = wasmtime.Store(engine)
        other = wasmtime.Instance(store, wasmtime.Module(engine, WAT), [])
        def other_trap():
            try:
                other.exports(store)["load"](store)
            except wasmtime.Trap as trap:
                return str(trap.trap_code)
        before = other_trap()
        codes = traps(early)
        new = traps()  # instantiation puts wasmpy's wasmtime handler first again, over the other copy's
        report(codes + traps(early), new)
        print(json.dumps({"other": [before, other_trap()]}), flush=True)
        crash()
    """))
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 2, describe(proc)
    assert lines[0] == {"early": ALL_TRAPS * 2, "new": ALL_TRAPS}, describe(proc)
    assert lines[1]["other"] == ["TrapCode.MEMORY_OUT_OF_BOUNDS"] * 2, describe(proc)
    assert_crashed(proc, dumped=True)


def test_many_handlers_installed_over_one_another_is_an_error():
    """Past the handlers wasmpy can keep track of, instantiation fails with a clear error instead
    of leaving traps to kill the process."""
    proc = run_child(Order(False, "", """
        import ctypes, signal
        libc = ctypes.CDLL(None)
        handler_type = ctypes.CFUNCTYPE(None, ctypes.c_int)
        # Plain handlers: each replaces whatever is installed, and wasmpy covers it again.
        handlers = [handler_type(lambda signum: None) for _ in range(12)]
        libc.signal.restype = ctypes.c_void_p
        libc.signal.argtypes = [ctypes.c_int, handler_type]
        errors = []
        for handler in handlers:
            libc.signal(signal.SIGSEGV, handler)
            try:
                wasmpy.Instance(MODULE)
            except RuntimeError as error:
                errors.append(str(error))
        print(json.dumps({"errors": errors}), flush=True)
    """))
    assert proc.returncode == 0, describe(proc)
    errors = reported(proc)["errors"]
    assert len(errors) == 12 - 8 and "wasm traps would kill the process" in errors[0], describe(proc)


def test_in_process_under_pytest_faulthandler(store):
    """The test suite itself runs under pytest's faulthandler (enabled after conftest imports wasmpy)."""
    enabled_here = not faulthandler.is_enabled()
    if enabled_here:  # pytest ran with -p no:faulthandler
        faulthandler.enable(file=sys.__stderr__)
    try:
        exports = wasmpy.Instance(wasmpy.Module(WAT), store=store).exports
        codes = []
        for call in (exports.load, lambda: exports.divide(0), exports.unreachable):
            with pytest.raises(wasmpy.Trap) as caught:
                call()
            codes.append(caught.value.code.name)
        assert codes == ALL_TRAPS
    finally:
        if enabled_here:
            faulthandler.disable()
