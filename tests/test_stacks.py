"""Deep wasm stacks (issue 14, item 3): ``max_wasm_stack`` above wasmtime's 2 MiB async stack,
the native-stack guard that refuses a call the calling thread's stack cannot hold (with an error
that says how big a stack to get), the main thread's RLIMIT_STACK, threads sized with
``threading.stack_size``, and ``wasmpy run --max-wasm-stack``.

Each test that runs deep recursion runs in a child interpreter whose stack limit the test sets
(the main thread's stack grows up to RLIMIT_STACK, and a thread's default size comes from it).
"""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
import textwrap
from typing import Optional

import pytest

from childproc import PACKAGE_ROOT, TESTS_DIR, child_json, describe, run_python
from test_cli import assert_one_line_error
from test_safety_engine import ENGINE_VERDICTS
from wasmpy import Engine

MiB = 1 << 20

# down(n) recurses n deep and returns n; depth() is how deep the last recursion went (a trap
# leaves it at the depth reached). Four i64 locals live across the call make the frames bigger.
DEEP_WAT = """(module
  (global $depth (mut i32) (i32.const 0))
  (func $down (export "down") (param $n i32) (result i32)
    (local $a i64) (local $b i64) (local $c i64) (local $d i64)
    (global.set $depth (i32.add (global.get $depth) (i32.const 1)))
    (local.set $a (i64.extend_i32_u (local.get $n)))
    (local.set $b (i64.mul (local.get $a) (i64.const 3)))
    (local.set $c (i64.mul (local.get $b) (i64.const 5)))
    (local.set $d (i64.mul (local.get $c) (i64.const 7)))
    (if (result i32) (i32.eqz (local.get $n)) (then (i32.const 0))
      (else (i32.add
        (i32.add (call $down (i32.sub (local.get $n) (i32.const 1))) (i32.const 1))
        (i32.wrap_i64 (i64.sub (i64.add (local.get $a) (local.get $b)) (i64.add (local.get $b) (local.get $a))))))))
  (func (export "depth") (result i32) (global.get $depth))
  (func (export "reset") (global.set $depth (i32.const 0))))"""

# The children's common part: DEPTH_8MIB is a recursion depth whose frames take 8 MiB, measured
# as four times the depth at which a 2 MiB max_wasm_stack overflows (in a thread big enough).
PRELUDE = f"""
import json, re, resource, threading
from wasmpy import Engine, Instance, Module, Store, Trap, TrapCode

WAT = {DEEP_WAT!r}

def exports(engine):
    return Instance(Module(WAT, engine), store=Store(engine)).exports

def in_thread(work, stack_size):
    outcome = []
    def run():
        try:
            outcome.append(work())
        except BaseException as error:
            outcome.append(f"{{type(error).__name__}}: {{error}}")
    threading.stack_size(stack_size)
    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    threading.stack_size(0)
    return outcome[0]

def overflow_depth(engine):
    functions = exports(engine)
    try:
        functions.down(2**31 - 1)
    except Trap as trap:
        assert trap.code is TrapCode.STACK_OVERFLOW, trap
    return functions.depth()

DEPTH_2MIB = in_thread(lambda: overflow_depth(Engine(max_wasm_stack=2 << 20)), 4 << 20)
DEPTH_8MIB = 4 * DEPTH_2MIB
deep = Engine(max_wasm_stack=16 << 20)

def recurse_8mib():
    return exports(deep).down(DEPTH_8MIB)
"""


def deep_child(body: str) -> str:
    """A child's code: PRELUDE, then ``body`` (dedented)."""
    return PRELUDE + textwrap.dedent(body)


def run_child(code: str, stack_limit: Optional[int] = None, hard_limit: Optional[int] = None,
              timeout: float = 300) -> subprocess.CompletedProcess:
    """Runs ``code`` in a fresh interpreter (as childproc.run_python), started with its main thread's
    stack limit (RLIMIT_STACK) set to ``stack_limit`` bytes, and the hard limit to ``hard_limit``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([PACKAGE_ROOT, TESTS_DIR])

    def limit_stack() -> None:
        soft, hard = resource.getrlimit(resource.RLIMIT_STACK)
        resource.setrlimit(resource.RLIMIT_STACK, (stack_limit or soft, hard_limit or hard))

    return subprocess.run([sys.executable, "-X", "faulthandler", "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=TESTS_DIR, preexec_fn=limit_stack)


def test_the_depth_measure_is_sound():
    """The children's yardstick: a 2 MiB stack holds thousands of these frames, and frames 8 MiB
    deep overflow the default max_wasm_stack (512 KiB) and a 2 MiB one alike."""
    result = child_json(run_python(deep_child("""
        def attempt(engine):
            try:
                return exports(engine).down(DEPTH_8MIB)
            except Trap as trap:
                return trap.code.name
        print(json.dumps({"depth": DEPTH_2MIB, "default": in_thread(lambda: attempt(Engine()), 4 << 20),
                          "2 MiB": in_thread(lambda: attempt(Engine(max_wasm_stack=2 << 20)), 4 << 20)}))
    """)))
    assert result["depth"] > 10_000, result
    assert result["default"] == result["2 MiB"] == "STACK_OVERFLOW", result


def test_8_mib_deep_recursion_in_the_main_thread_with_a_big_stack_limit():
    result = child_json(run_child(deep_child("""
        print(json.dumps({"depth": DEPTH_8MIB, "returned": recurse_8mib()}))
    """), stack_limit=32 * MiB))
    assert result["returned"] == result["depth"], result


def test_the_main_thread_is_refused_until_its_stack_limit_is_raised():
    """With the usual 8 MiB RLIMIT_STACK, a call that may use 16 MiB of stack is refused with an
    error naming the limit and the size to raise it to; raised in the process, the same call runs
    (the guard looks at the stack's bounds again before refusing)."""
    result = child_json(run_child(deep_child("""
        try:
            recurse_8mib()
            refusal = None
        except RecursionError as error:
            refusal = str(error)
        size = int(re.search(r"threading.stack_size\\((\\d+)\\)", refusal).group(1))
        resource.setrlimit(resource.RLIMIT_STACK, (size, resource.getrlimit(resource.RLIMIT_STACK)[1]))
        print(json.dumps({"refusal": refusal, "size": size, "depth": DEPTH_8MIB, "returned": recurse_8mib()}))
    """), stack_limit=8 * MiB))
    refusal = result["refusal"]
    assert refusal.startswith("not enough native stack left to call into wasm safely"), refusal
    assert "need 16.2 MiB left" in refusal, refusal
    assert re.search(r"of this thread's 8(\.0)? MiB stack is left", refusal), refusal
    assert "RLIMIT_STACK" in refusal and "ulimit -s" in refusal, refusal
    assert 16 * MiB < result["size"] <= 20 * MiB, result
    assert result["returned"] == result["depth"], result


def test_lowering_the_main_threads_stack_limit_after_a_call_refuses_deep_calls():
    result = child_json(run_child(deep_child("""
        functions = exports(deep)
        functions.down(10)  # the guard reads the main thread's stack bounds: 32 MiB
        resource.setrlimit(resource.RLIMIT_STACK, (8 * 1024 * 1024, resource.getrlimit(resource.RLIMIT_STACK)[1]))
        try:
            outcome = functions.down(DEPTH_8MIB)
        except RecursionError as error:
            outcome = type(error).__name__
        print(json.dumps({"outcome": outcome}))
    """), stack_limit=32 * MiB))
    assert result == {"outcome": "RecursionError"}


def test_8_mib_deep_recursion_in_a_thread_sized_with_threading_stack_size():
    result = child_json(run_child(deep_child("""
        print(json.dumps({"depth": DEPTH_8MIB, "returned": in_thread(recurse_8mib, 18 << 20)}))
    """), stack_limit=8 * MiB))
    assert result["returned"] == result["depth"], result


def test_a_thread_too_small_is_told_the_stack_size_that_works():
    """A thread whose stack cannot hold max_wasm_stack gets a RecursionError (never a crash) that
    names the threading.stack_size to use; a thread started after it runs the same call."""
    result = child_json(run_child(deep_child("""
        refusal = in_thread(recurse_8mib, 4 << 20)
        size = int(re.search(r"threading.stack_size\\((\\d+)\\)", refusal).group(1))
        shallow = exports(Engine())
        small = in_thread(lambda: shallow.down(100), 256 << 10)  # less than 512 KiB and the margin
        print(json.dumps({"refusal": refusal, "size": size, "small": small, "depth": DEPTH_8MIB,
                          "returned": in_thread(recurse_8mib, size)}))
    """), stack_limit=8 * MiB))
    refusal = result["refusal"]
    assert refusal.startswith("RecursionError: not enough native stack left to call into wasm safely"), refusal
    assert "A thread's stack is sized when it starts" in refusal, refusal
    assert "RLIMIT_STACK" not in refusal, refusal
    assert result["small"].startswith("RecursionError: not enough native stack"), result
    assert "768 KiB left" in result["small"], result
    assert result["returned"] == result["depth"], result


@pytest.mark.parametrize("size", [(2 * MiB) + 1, 4 * MiB, 16 * MiB, 64 * MiB, 1 << 30])
def test_large_wasm_stacks_are_accepted(size):
    engine = Engine(max_wasm_stack=size)
    assert engine.config["max_wasm_stack"] == size
    assert engine.config["async_stack_size"] == size  # what wasmtime needs beside it
    assert engine._stack_needed == size + 256 * 1024


def test_the_default_engine_sets_no_async_stack_size():
    """The import hook's cache key is made of Engine.config: engines that need no async_stack_size
    keep the key they had."""
    assert "async_stack_size" not in Engine().config
    assert "async_stack_size" not in Engine(max_wasm_stack=2 * MiB).config


def test_a_64_mib_wasm_stack_runs_in_a_big_enough_thread():
    result = child_json(run_child(deep_child("""
        huge = Engine(max_wasm_stack=64 << 20)
        depth = 4 * DEPTH_8MIB  # 32 MiB of frames
        print(json.dumps({"depth": depth, "returned": in_thread(lambda: exports(huge).down(depth), 66 << 20)}))
    """), stack_limit=8 * MiB))
    assert result["returned"] == result["depth"], result


@pytest.mark.parametrize("options, error, words", [
    ({"max_wasm_stack": 0}, ValueError, "max_wasm_stack must be from 1 to 1073741824 bytes (1 GiB), not 0"),
    ({"max_wasm_stack": -1}, ValueError, "must be from 1 to"),
    ({"max_wasm_stack": (1 << 30) + 1}, ValueError, "must be from 1 to 1073741824 bytes"),
    ({"max_wasm_stack": 2**64}, ValueError, "must be from 1 to"),
    ({"max_wasm_stack": 1.5}, TypeError, "takes a size in bytes (an int)"),
    ({"max_wasm_stack": True}, TypeError, "takes a size in bytes (an int)"),
    ({"max_wasm_stack": "16M"}, TypeError, "takes a size in bytes (an int)"),
    ({"async_stack_size": 0}, ValueError, "async_stack_size must be from 1 to"),
    ({"async_stack_size": 4096}, ValueError, "max_wasm_stack size cannot exceed the async_stack_size"),
    ({"max_wasm_stack": 16 * MiB, "async_stack_size": 8 * MiB}, ValueError,
     "max_wasm_stack=16777216, async_stack_size=8388608"),
])
def test_nonsense_stack_sizes_are_refused_clearly(options, error, words):
    with pytest.raises(error) as info:
        Engine(**options)
    assert words in str(info.value)


def test_an_explicit_async_stack_size_is_kept():
    engine = Engine(max_wasm_stack=4 * MiB, async_stack_size=8 * MiB)
    assert engine.config["async_stack_size"] == 8 * MiB


def test_wasmtime_itself_needs_the_async_stack_size():
    """Why wasmpy sets async_stack_size: wasmtime aborts on max_wasm_stack=4 MiB alone, which
    Engine accepts. Each attempt runs in a forked child."""
    proc = run_python(ENGINE_VERDICTS + """
    print(json.dumps(verdicts({"max_wasm_stack": 4 << 20})))
    """)
    result = child_json(proc)
    assert result["wasmtime"] == -6, result
    assert "max_wasm_stack size cannot exceed the async_stack_size" in result["wasmtime_stderr"], result
    assert result["wasmpy"] == 0, result


# --- the command line ---------------------------------------------------------------------------------

def wasmpy_run(tmp_path, *args, stack_limit: int = 8 * MiB, hard_limit: Optional[int] = None):
    """``python -m wasmpy run ARGS`` started with the given RLIMIT_STACK (default: the usual 8 MiB)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [PACKAGE_ROOT, env.get("PYTHONPATH")]))

    def limit_stack() -> None:
        hard = resource.getrlimit(resource.RLIMIT_STACK)[1]
        resource.setrlimit(resource.RLIMIT_STACK, (stack_limit, hard_limit or hard))

    return subprocess.run([sys.executable, "-m", "wasmpy", "run", *map(str, args)], capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=300, preexec_fn=limit_stack)


@pytest.fixture(scope="module")
def depth_8mib():
    return child_json(run_python(deep_child("print(json.dumps({'depth': DEPTH_8MIB}))")))["depth"]


def test_wasmpy_run_recurses_8_mib_deep_from_the_main_thread(tmp_path, depth_8mib):
    """From the usual 8 MiB stack limit: wasmpy run raises it to fit --max-wasm-stack."""
    (tmp_path / "deep.wat").write_text(DEEP_WAT)
    done = wasmpy_run(tmp_path, "--max-wasm-stack", "16M", "--invoke", "down", "deep.wat", depth_8mib)
    assert done.returncode == 0, describe(done)
    assert done.stdout.split() == [str(depth_8mib)]
    # without the option, the same recursion overflows the default wasm stack
    shallow = wasmpy_run(tmp_path, "--invoke", "down", "deep.wat", depth_8mib)
    assert shallow.returncode == 134 and "call stack exhausted" in shallow.stderr, describe(shallow)


def test_wasmpy_run_explains_a_stack_limit_it_cannot_raise(tmp_path):
    """A hard RLIMIT_STACK below what --max-wasm-stack needs: a one-line error, never a crash."""
    (tmp_path / "deep.wat").write_text(DEEP_WAT)
    done = wasmpy_run(tmp_path, "--max-wasm-stack", "16M", "--invoke", "down", "deep.wat", 10,
                      stack_limit=8 * MiB, hard_limit=8 * MiB)
    assert_one_line_error(done)
    assert done.returncode == 1, describe(done)
    assert "not enough native stack" in done.stderr and "RLIMIT_STACK" in done.stderr, done.stderr


@pytest.mark.parametrize("text", ["67108864", "64M", "64MiB", "65536k", "0x4000000"])
def test_wasmpy_run_takes_stack_sizes_up_to_64_mib_and_more(tmp_path, text):
    (tmp_path / "deep.wat").write_text(DEEP_WAT)
    done = wasmpy_run(tmp_path, "--max-wasm-stack", text, "--invoke", "down", "deep.wat", 1000)
    assert done.returncode == 0, describe(done)
    assert done.stdout.split() == ["1000"]


@pytest.mark.parametrize("text, words", [("2G", "max_wasm_stack must be from 1 to"), ("0", "positive number"),
                                         ("lots", "number of bytes"), ("1.5M", "number of bytes")])
def test_wasmpy_run_refuses_nonsense_stack_sizes(tmp_path, text, words):
    (tmp_path / "deep.wat").write_text(DEEP_WAT)
    done = wasmpy_run(tmp_path, "--max-wasm-stack", text, "--invoke", "down", "deep.wat", 1)
    assert done.returncode == 2, describe(done)
    assert words in done.stderr, done.stderr
