"""The command line, ``python -m wasmpy``: run, inspect, compile.

    wasmpy run [--dir HOST[::GUEST]] [--dir-ro HOST[::GUEST]] [--env K=V] [--invoke NAME]
               [--fuel N] [--timeout SECONDS] FILE.wasm|FILE.wat [ARGS...]   (a module or a component)
    wasmpy inspect FILE
    wasmpy compile FILE

Each test runs the command line in a child process. The WASI programs are those of
tests/wasi (see test_wasi.py); the WASI 0.2 command components those of test_wasip2_command.py.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import wasmpy
from childproc import PACKAGE_ROOT, assert_clean_exit, child_json, run_python
from test_wasip2_command import COMMAND, RICH, command_wat
from wasmpy import _hook

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = ROOT / "tests" / "wasi"


def child_env(**changes):
    """This process's environment, with the wasmpy under test importable (not an unbuilt checkout's);
    a value of None removes a variable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [PACKAGE_ROOT, env.get("PYTHONPATH")]))
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def wasmpy_cli(*args, input=None, env=None, cwd=None, timeout=120):
    """Runs ``python -m wasmpy ARGS``; the CompletedProcess has text stdout and stderr."""
    return subprocess.run([sys.executable, "-m", "wasmpy", *map(str, args)], input=input, capture_output=True,
                          text=True, env=env or child_env(), cwd=cwd, timeout=timeout)


def program(name):
    return str(PROGRAMS / f"{name}.wasm")


def assert_one_line_error(result):
    assert result.returncode not in (0, None), result
    assert "Traceback" not in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def make_tree(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "input.txt").write_text("Hello, files!\nsecond line\n")
    (root / "a.txt").write_text("a")
    return root


# --- run: WASI programs

def test_run_hello(tmp_path):
    result = wasmpy_cli("run", program("hello"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Hello, WASI!\n"
    assert result.stderr == ""


def test_run_passes_arguments(tmp_path):
    result = wasmpy_cli("run", program("args_env"), "one", "two words", "", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    args = [line[4:] for line in result.stdout.splitlines() if line.startswith("arg ")]
    assert "args_env" in args[0]  # the program's name comes first
    assert args[1:] == ["one", "two words", ""]


def test_run_options_after_the_file_belong_to_the_program(tmp_path):
    result = wasmpy_cli("run", program("args_env"), "--env", "X=1", "--help", "-v", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    args = [line[4:] for line in result.stdout.splitlines() if line.startswith("arg ")]
    assert args[1:] == ["--env", "X=1", "--help", "-v"]
    assert "env X=1" not in result.stdout


def test_run_sets_environment_variables(tmp_path):
    result = wasmpy_cli("run", "--env", "GREETING=hello there", "--env", "EMPTY=", "--env", "EQ=a=b",
                        program("args_env"), cwd=tmp_path, env=child_env(WASMPY_TEST_HOST_ONLY="secret"))
    assert result.returncode == 0, result.stderr
    env = sorted(line[4:] for line in result.stdout.splitlines() if line.startswith("env "))
    assert env == ["EMPTY=", "EQ=a=b", "GREETING=hello there"]  # and nothing of the host's environment


def test_run_reads_stdin(tmp_path):
    data = "the quick brown fox\njumps over\n\n  the lazy dog"
    result = wasmpy_cli("run", program("wc"), input=data, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["3", "9", str(len(data))]


def test_run_exit_status_propagates(tmp_path):
    result = wasmpy_cli("run", program("exit3"), cwd=tmp_path)
    assert result.returncode == 3
    assert result.stdout == "about to exit\n"
    assert "exit3: exiting with status 3" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("status", [0, 1, 42])
def test_run_a_wat_command(tmp_path, status):
    path = tmp_path / "exiter.wat"
    path.write_text(f"""
    (module
      (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
      (memory (export "memory") 1)
      (func (export "_start") (call $exit (i32.const {status})) unreachable))
    """)
    result = wasmpy_cli("run", path, cwd=tmp_path)
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr


def test_run_dir_host_guest(tmp_path):
    data = make_tree(tmp_path / "data")
    result = wasmpy_cli("run", "--dir", f"{data}::/data", program("files"), "/data", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "listing /data: 2 entries" in result.stdout
    assert "wrote 26 bytes to /data/output.txt" in result.stdout
    assert (data / "output.txt").read_text() == "HELLO, FILES!\nSECOND LINE\n"


def test_run_dir_host_only_uses_the_same_path(tmp_path):
    data = make_tree(tmp_path / "data")
    result = wasmpy_cli("run", "--dir", data, program("files"), data, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (data / "output.txt").read_text() == "HELLO, FILES!\nSECOND LINE\n"


def test_run_several_dirs(tmp_path):
    first, second = make_tree(tmp_path / "first"), make_tree(tmp_path / "second")
    result = wasmpy_cli("run", "--dir", f"{first}::/one", "--dir", f"{second}::/two", program("files"), "/two",
                        cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (second / "output.txt").exists() and not (first / "output.txt").exists()


def test_run_dir_ro(tmp_path):
    data = make_tree(tmp_path / "data")
    result = wasmpy_cli("run", "--dir-ro", f"{data}::/data", program("files"), "/data", cwd=tmp_path)
    assert result.returncode == 1  # files.c: it could list and read, not write
    assert "read 26 bytes from /data/input.txt" in result.stdout
    assert "cannot write /data/output.txt" in result.stderr
    assert not (data / "output.txt").exists()


def test_run_dir_ro_beside_dir(tmp_path):
    ro, rw = make_tree(tmp_path / "ro"), make_tree(tmp_path / "rw")
    result = wasmpy_cli("run", "--dir-ro", f"{ro}::/ro", "--dir", f"{rw}::/rw", program("escape"),
                        "/ro/new.txt", "/rw/new.txt", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "write /ro/new.txt: open denied" in result.stdout
    assert "write /rw/new.txt: open ok" in result.stdout
    assert not (ro / "new.txt").exists() and (rw / "new.txt").exists()


def test_run_without_dir_sees_no_files(tmp_path):
    make_tree(tmp_path / "data")
    result = wasmpy_cli("run", program("files"), ".", cwd=tmp_path / "data")
    assert result.returncode == 1
    assert "cannot list ." in result.stderr
    assert not (tmp_path / "data" / "output.txt").exists()


def test_run_dir_does_not_allow_escapes(tmp_path):
    data = make_tree(tmp_path / "data")
    (tmp_path / "secret.txt").write_text("secret")
    (data / "link").symlink_to("../secret.txt")
    result = wasmpy_cli("run", "--dir", f"{data}::/data", program("escape"), "/data/../secret.txt",
                        "/data/link", str(tmp_path / "secret.txt"), "/data/../new.txt", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "open ok" not in result.stdout
    assert result.stdout.count("open denied") == 8
    assert (tmp_path / "secret.txt").read_text() == "secret" and not (tmp_path / "new.txt").exists()


# --- run --invoke

ARITH_WAT = """
(module
  (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
  (func (export "divmod") (param i32 i32) (result i32 i32)
    (i32.div_u (local.get 0) (local.get 1))
    (i32.rem_u (local.get 0) (local.get 1)))
  (func (export "nothing"))
  (func (export "spin") (loop $forever (br $forever)))
  (func (export "_start") (loop $forever (br $forever)))
  (memory (export "memory") 1))
"""


@pytest.fixture
def arith(tmp_path):
    path = tmp_path / "arith.wat"
    path.write_text(ARITH_WAT)
    return path


def test_invoke_prints_the_result(arith):
    result = wasmpy_cli("run", "--invoke", "add", arith, "2", "40")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "42"


def test_invoke_with_negative_arguments(arith):
    result = wasmpy_cli("run", "--invoke", "add", arith, "-7", "2")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "-5"


def test_invoke_prints_several_results(arith):
    result = wasmpy_cli("run", "--invoke", "divmod", arith, "17", "5")
    assert result.returncode == 0, result.stderr
    assert re.findall(r"-?\d+", result.stdout) == ["3", "2"]


def test_invoke_without_results(arith):
    result = wasmpy_cli("run", "--invoke", "nothing", arith)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


@pytest.mark.parametrize("args", [["add", "1"], ["add", "1", "2", "3"], ["add", "one", "2"], ["missing"]],
                         ids=["too-few", "too-many", "not-a-number", "no-such-export"])
def test_invoke_errors(arith, args):
    result = wasmpy_cli("run", "--invoke", args[0], arith, *args[1:])
    assert_one_line_error(result)


# --- run --fuel, --timeout

def test_fuel_stops_an_endless_loop(arith):
    result = wasmpy_cli("run", "--fuel", "100000", "--invoke", "spin", arith, timeout=60)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "fuel" in result.stderr.lower()


def test_enough_fuel_lets_a_program_finish(tmp_path):
    result = wasmpy_cli("run", "--fuel", "100000000", program("hello"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Hello, WASI!\n"


def test_timeout_stops_an_endless_loop(arith):
    result = wasmpy_cli("run", "--timeout", "0.5", arith, timeout=60)  # its _start never returns
    assert result.returncode != 0
    assert "Traceback" not in result.stderr


def test_a_long_timeout_lets_a_program_finish(tmp_path):
    result = wasmpy_cli("run", "--timeout", "60", program("hello"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Hello, WASI!\n"


# --- inspect

INSPECT_WAT = """
(module
  (import "env" "log" (func (param i32 i64)))
  (import "env" "offset" (global i32))
  (import "env" "counter" (global (mut i64)))
  (import "host" "mem" (memory 1 4))
  (import "host" "funcs" (table 2 funcref))
  (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
  (func (export "pair") (param f32) (result f64 i32) (f64.const 1) (i32.const 2))
  (global (export "answer") i32 (i32.const 42))
  (global (export "level") (mut f64) (f64.const 0.5))
  (table (export "table") 3 externref)
  (export "memory" (memory 0)))
"""


def test_inspect_lists_imports_and_exports_with_types(tmp_path):
    path = tmp_path / "many.wat"
    path.write_text(INSPECT_WAT)
    module = wasmpy.Module.from_file(path)
    result = wasmpy_cli("inspect", path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(module.imports) == 5 and len(module.exports) == 6
    for item in module.imports:
        assert any(item.module in line and item.name in line and str(item.type) in line for line in lines), \
            (str(item), result.stdout)
    for item in module.exports:
        assert any(item.name in line and str(item.type) in line for line in lines), (str(item), result.stdout)


def test_inspect_a_wasi_program():
    module = wasmpy.Module.from_file(program("files"))
    result = wasmpy_cli("inspect", program("files"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for item in module.imports:
        assert item.module == "wasi_snapshot_preview1"
        assert any(item.name in line and str(item.type) in line for line in lines), (str(item), result.stdout)
    for item in module.exports:
        assert any(item.name in line and str(item.type) in line for line in lines), (str(item), result.stdout)


# --- compile

def test_compile_fills_the_import_hook_cache(tmp_path):
    path = tmp_path / "cached_gcd.wat"
    path.write_text('(module (func (export "gcd") (param i32 i32) (result i32) local.get 0))')
    cache = Path(_hook.cache_path(str(path), wasmpy.Engine.default()))
    assert not cache.exists()
    env = child_env(PYTHONDONTWRITEBYTECODE=None)
    result = wasmpy_cli("compile", path, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert cache.is_file() and cache.stat().st_size > 0
    inode = cache.stat().st_ino
    # the import hook in another process takes the cache as it is (a bad one would be rewritten)
    check = subprocess.run([sys.executable, "-c", "import wasmpy, cached_gcd; print(cached_gcd.gcd(7, 3))"],
                           capture_output=True, text=True, cwd=tmp_path,
                           env=dict(env, PYTHONPATH=os.pathsep.join([PACKAGE_ROOT, str(tmp_path)])), timeout=120)
    assert check.returncode == 0, check.stderr
    assert check.stdout == "7\n"
    assert cache.stat().st_ino == inode


def test_compile_a_wasm_file(tmp_path):
    path = tmp_path / "hello.wasm"
    path.write_bytes(Path(program("hello")).read_bytes())
    result = wasmpy_cli("compile", path, env=child_env(PYTHONDONTWRITEBYTECODE=None), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert Path(_hook.cache_path(str(path), wasmpy.Engine.default())).is_file()


# --- help, usage errors and one-line errors

@pytest.mark.parametrize("args", [["--help"], ["-h"], ["run", "--help"], ["inspect", "--help"],
                                  ["compile", "--help"]])
def test_help(args):
    result = wasmpy_cli(*args)
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout.lower()


def test_help_lists_the_commands_and_run_options():
    top = wasmpy_cli("--help").stdout
    for command in ("run", "inspect", "compile"):
        assert command in top
    run_help = wasmpy_cli("run", "--help").stdout
    for option in ("--dir", "--dir-ro", "--env", "--invoke", "--fuel", "--timeout"):
        assert option in run_help


@pytest.mark.parametrize("args", [
    [], ["frobnicate"], ["run"], ["run", "--bogus", "hello.wasm"], ["run", "--fuel", "lots", "hello.wasm"],
    ["run", "--timeout", "soon", "hello.wasm"], ["run", "--env", "NO_EQUALS_SIGN", "hello.wasm"],
    ["run", "--dir"], ["inspect"], ["compile"], ["--no-such-option"],
], ids=lambda args: " ".join(args) or "nothing")
def test_bad_arguments_exit_2_with_usage(args):
    result = wasmpy_cli(*args)
    assert result.returncode == 2, result
    assert "usage:" in result.stderr.lower()
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["run", "inspect", "compile"])
def test_missing_file_is_a_one_line_error(tmp_path, command):
    missing = tmp_path / "missing.wasm"
    result = wasmpy_cli(command, missing, cwd=tmp_path)
    assert_one_line_error(result)
    assert "missing.wasm" in result.stderr


@pytest.mark.parametrize("option", ["--dir", "--dir-ro"])
@pytest.mark.parametrize("spec", ["{missing}", "{missing}::/data"])
def test_missing_dir_is_a_one_line_error(tmp_path, option, spec):
    missing = tmp_path / "no-such-dir"
    result = wasmpy_cli("run", option, spec.format(missing=missing), program("hello"), cwd=tmp_path)
    assert_one_line_error(result)
    assert "no-such-dir" in result.stderr
    assert result.stdout == ""  # the program did not run


def test_a_file_given_as_dir_is_an_error(tmp_path):
    (tmp_path / "plain.txt").write_text("not a directory")
    result = wasmpy_cli("run", "--dir", tmp_path / "plain.txt", program("hello"), cwd=tmp_path)
    assert_one_line_error(result)
    assert result.stdout == ""


@pytest.mark.parametrize("command", ["run", "inspect", "compile"])
def test_malformed_module_is_an_error_without_traceback(tmp_path, command):
    bad = tmp_path / "bad.wasm"
    bad.write_bytes(b"\0asm\x01\0\0\0garbage")
    result = wasmpy_cli(command, bad, cwd=tmp_path)
    assert result.returncode not in (0, 2)
    assert "Traceback" not in result.stderr
    assert "bad.wasm" in result.stderr


def test_run_a_module_without_start_is_an_error(tmp_path):
    path = tmp_path / "lib.wat"
    path.write_text('(module (func (export "f")))')
    result = wasmpy_cli("run", path, cwd=tmp_path)
    assert_one_line_error(result)


def test_a_trap_is_reported_without_traceback(tmp_path):
    path = tmp_path / "trap.wat"
    path.write_text('(module (memory (export "memory") 1) (func (export "_start") unreachable))')
    result = wasmpy_cli("run", path, cwd=tmp_path)
    assert result.returncode not in (0, 2)
    assert "Traceback" not in result.stderr
    assert "unreachable" in result.stderr


# --- the cache, shared with the import hook; engine options

CACHED_WAT = '(module (func (export "gcd") (param i32 i32) (result i32) local.get 0))'


def count_compiles(tmp_path, *commands, then_import=None):
    """Runs each command line (``wasmpy.main``) in one fresh process, then optionally imports
    ``then_import`` through the hook; how many modules each of them compiled, and their statuses."""
    proc = run_python(f"""
        import json, sys, wasmpy
        from wasmpy._cli import main
        sys.dont_write_bytecode = False
        sys.path.insert(0, {str(tmp_path)!r})
        from childproc import count_compiles
        compiled = count_compiles()
        counts, statuses = [], []
        for argv in {[list(map(str, command)) for command in commands]!r}:
            before = len(compiled)
            statuses.append(main(argv))
            counts.append(len(compiled) - before)
        if {then_import!r}:
            before = len(compiled)
            __import__({then_import!r})
            counts.append(len(compiled) - before)
        print(json.dumps({{"counts": counts, "statuses": statuses}}))
    """, timeout=120)
    assert_clean_exit(proc)
    return child_json(proc)


def test_compile_compiles_once_and_not_again_when_current(tmp_path):
    path = tmp_path / "once_gcd.wat"
    path.write_text(CACHED_WAT)
    result = count_compiles(tmp_path, ["compile", path], ["compile", path], then_import="once_gcd")
    assert result == {"counts": [1, 0, 0], "statuses": [0, 0]}


def test_compile_fills_the_cache_of_a_component_too(tmp_path):
    """A component (told by its header) gets the hook's component cache; importing it then compiles nothing."""
    shutil.copy(Path(__file__).resolve().parent / "components" / "rich.wasm", tmp_path / "compiled_rich.wasm")
    path = tmp_path / "compiled_rich.wasm"
    result = count_compiles(tmp_path, ["compile", path], ["compile", path])
    assert result == {"counts": [1, 0], "statuses": [0, 0]}
    assert Path(_hook.cache_path(str(path), wasmpy.Engine.default(), component=True)).is_file()
    assert not Path(_hook.cache_path(str(path), wasmpy.Engine.default())).exists()


def test_run_reads_and_fills_the_hooks_cache(tmp_path):
    compiled_first, run_first = tmp_path / "compiled_first.wat", tmp_path / "run_first.wat"
    compiled_first.write_text(CACHED_WAT)
    run_first.write_text(CACHED_WAT)
    result = count_compiles(tmp_path, ["compile", compiled_first], ["run", "--invoke", "gcd", compiled_first, 6, 4],
                            ["run", "--invoke", "gcd", run_first, 6, 4], then_import="run_first")
    # run takes what compile wrote, and the hook what run wrote: one engine key for the same options
    assert result == {"counts": [1, 0, 1, 0], "statuses": [0, 0, 0]}


def test_cache_option_puts_the_cache_in_a_directory(tmp_path):
    path = tmp_path / "elsewhere_gcd.wat"
    path.write_text(CACHED_WAT)
    cache_dir = tmp_path / "cache"
    result = wasmpy_cli("compile", "--cache", cache_dir, path, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    expected = cache_dir / str(tmp_path).lstrip(os.sep) / Path(_hook.cache_path(str(path), wasmpy.Engine())).name
    assert result.stdout.strip() == f"{path} -> {expected}"
    assert expected.is_file() and not (tmp_path / "__pycache__").exists()
    counts = count_compiles(tmp_path, ["run", "--cache", cache_dir, "--invoke", "gcd", path, 8, 2])
    assert counts == {"counts": [0], "statuses": [0]}


REACTOR_WAT = """(module (global $ready (mut i32) (i32.const 0))
  (func (export "_initialize") (global.set $ready (i32.const 40)))
  (func (export "get") (result i32) (i32.add (global.get $ready) (i32.const 2)))
  (func (export "keys") (result i32) (i32.add (global.get $ready) (i32.const 3)))
  (func (export "items") (param i32) (result i32) (local.get 0)))"""


@pytest.mark.parametrize("export, args, printed", [("get", [], "42"), ("keys", [], "43"), ("items", [7], "7")])
def test_invoke_initializes_a_reactor_and_takes_any_export_name(tmp_path, export, args, printed):
    path = tmp_path / "reactor.wat"
    path.write_text(REACTOR_WAT)
    result = wasmpy_cli("run", "--invoke", export, path, *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [printed]


DEEP_WAT = """(module (func $down (export "down") (param i32) (result i32)
  (if (result i32) (i32.eqz (local.get 0)) (then (i32.const 0))
    (else (i32.add (i32.const 1) (call $down (i32.sub (local.get 0) (i32.const 1))))))))"""


def test_max_wasm_stack_option_reaches_the_engine(tmp_path):
    path = tmp_path / "deep.wat"
    path.write_text(DEEP_WAT)
    assert wasmpy_cli("run", "--invoke", "down", path, 2000, cwd=tmp_path).stdout.split() == ["2000"]
    small = wasmpy_cli("run", "--max-wasm-stack", 16384, "--invoke", "down", path, 2000, cwd=tmp_path)
    assert small.returncode == 134 and "call stack exhausted" in small.stderr, small
    too_big = wasmpy_cli("run", "--max-wasm-stack", 1 << 40, "--invoke", "down", path, 1, cwd=tmp_path)
    assert_one_line_error(too_big)
    assert "max_wasm_stack" in too_big.stderr
    not_a_number = wasmpy_cli("run", "--max-wasm-stack", "lots", "--invoke", "down", path, 1, cwd=tmp_path)
    assert not_a_number.returncode == 2 and "number of bytes" in not_a_number.stderr


def test_no_interrupt_compiles_without_epoch_checks(tmp_path):
    """The code --no-interrupt caches has no epoch checks: the wasmtime package, with epoch
    interruption off (and memories that never move and map types, as wasmpy's), loads it."""
    import wasmtime
    from test_load import enable_component_model_map

    path = tmp_path / "quick.wat"
    path.write_text(CACHED_WAT)
    assert count_compiles(tmp_path, ["compile", "--no-interrupt", path],
                          ["run", "--no-interrupt", "--invoke", "gcd", path, 9, 3]) == {"counts": [1, 0],
                                                                                       "statuses": [0, 0]}
    cache = Path(_hook.cache_path(str(path), wasmpy.Engine(epoch_interruption=False)))
    assert cache != Path(_hook.cache_path(str(path), wasmpy.Engine()))
    config = wasmtime.Config()
    config.memory_may_move = False
    enable_component_model_map(config)
    engine = wasmtime.Engine(config)
    store = wasmtime.Store(engine)
    instance = wasmtime.Instance(store, wasmtime.Module.deserialize_file(engine, str(cache)), [])
    assert instance.exports(store)["gcd"](store, 9, 3) == 9
    both = wasmpy_cli("run", "--no-interrupt", "--timeout", 1, "--invoke", "gcd", path, 1, 2, cwd=tmp_path)
    assert both.returncode == 2 and "--no-interrupt" in both.stderr


# --- WASI 0.2 command components (tests/wasip2; the WAT commands of test_wasip2_command)

def test_run_a_command_component_with_args_and_stdout(tmp_path):
    result = wasmpy_cli("run", COMMAND, "echo", "one", "two words", "--env", cwd=tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (0, "one\ntwo words\n--env\n", "")


def test_run_a_command_component_names_it_in_argv0(tmp_path):
    result = wasmpy_cli("run", COMMAND, cwd=tmp_path)
    assert result.returncode == 1  # its usage (status 2), made 1 by the preview 1 adapter
    assert result.stderr.startswith("usage: command.wasm ")


def test_run_a_command_component_with_stdin(tmp_path):
    result = wasmpy_cli("run", COMMAND, "upper", input="shout\n", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, "SHOUT\n"), result.stderr


def test_run_a_command_component_with_env(tmp_path):
    env = child_env(WASMPY_TEST_HOST_ONLY="secret")
    result = wasmpy_cli("run", "--env", "GREETING=hello there", COMMAND, "env", "GREETING", env=env, cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, "hello there\n"), result.stderr
    hidden = wasmpy_cli("run", COMMAND, "env", "WASMPY_TEST_HOST_ONLY", env=env, cwd=tmp_path)
    assert (hidden.returncode, hidden.stdout) == (1, "")  # unset (status 3, made 1 by the adapter)


@pytest.mark.parametrize("body, status", [
    ("(i32.const 0)", 0),
    ("(i32.const 1)", 1),  # run returns err
    ("(call $exit (i32.const 1)) (i32.const 0)", 1),
    ("(call $exit_with_code (i32.const 42)) (i32.const 0)", 42),
], ids=["ok", "err", "exit(err)", "exit-with-code(42)"])
def test_run_a_command_component_exits_with_its_status(tmp_path, body, status):
    path = tmp_path / "exiter.wat"
    path.write_text(command_wat(body, tell=False))
    result = wasmpy_cli("run", path, cwd=tmp_path)
    assert (result.returncode, result.stderr) == (status, "")


def test_run_a_command_component_exit_status_through_the_adapter(tmp_path):
    assert wasmpy_cli("run", COMMAND, "exit", "0", cwd=tmp_path).returncode == 0
    assert wasmpy_cli("run", COMMAND, "exit", "5", cwd=tmp_path).returncode == 1  # the adapter's exit(err)


def test_run_a_command_component_with_dir_ro_and_dir(tmp_path):
    data = make_tree(tmp_path / "data")
    read = wasmpy_cli("run", "--dir-ro", f"{data}::/data", COMMAND, "cat", "/data/a.txt", cwd=tmp_path)
    assert (read.returncode, read.stdout) == (0, "a"), read.stderr
    refused = wasmpy_cli("run", "--dir-ro", f"{data}::/data", COMMAND, "write", "/data/a.txt", "lost", cwd=tmp_path)
    assert refused.returncode == 1 and refused.stdout.startswith("cannot write /data/a.txt")
    assert (data / "a.txt").read_text() == "a"
    written = wasmpy_cli("run", "--dir", f"{data}::/data", COMMAND, "write", "/data/b.txt", "made", cwd=tmp_path)
    assert written.returncode == 0, written.stdout + written.stderr
    assert (data / "b.txt").read_text() == "made"


def test_run_a_component_that_is_not_a_command_is_a_usage_error(tmp_path):
    result = wasmpy_cli("run", RICH, cwd=tmp_path)
    assert_one_line_error(result)
    assert result.returncode == 2
    assert "rich.wasm is not a WASI command" in result.stderr and "greet" in result.stderr, result.stderr


def test_invoke_on_a_component_is_a_usage_error(tmp_path):
    result = wasmpy_cli("run", "--invoke", "add", RICH, "1", "2", cwd=tmp_path)
    assert_one_line_error(result)
    assert result.returncode == 2 and "component" in result.stderr


def test_a_command_component_with_imports_the_shell_cannot_give_is_an_error(tmp_path):
    path = tmp_path / "needs_tell.wat"
    path.write_text(command_wat("(i32.const 0)"))
    result = wasmpy_cli("run", path, cwd=tmp_path)
    assert_one_line_error(result)
    assert result.returncode == 1 and "tell" in result.stderr


@pytest.mark.parametrize("options, body, message", [
    ([], "unreachable", "unreachable"),
    (["--fuel", "1000"], "(loop $again (br $again)) unreachable", "fuel"),
], ids=["trap", "fuel"])
def test_a_trap_in_a_command_component_is_one_line(tmp_path, options, body, message):
    path = tmp_path / "trapper.wat"
    path.write_text(command_wat(body, tell=False))
    result = wasmpy_cli("run", *options, path, cwd=tmp_path)
    assert_one_line_error(result)
    assert result.returncode == 134 and message in result.stderr, result.stderr


def test_inspect_a_command_component_prints_its_world():
    component = wasmpy.Component.from_file(COMMAND)
    result = wasmpy_cli("inspect", COMMAND)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"{COMMAND}: a component: 15 imports, 1 exports"
    assert lines[1] == "world root {" and lines[-1] == "}"
    at = lines.index("  import wasi:cli/exit@0.2.12 {")
    assert lines[at + 1:at + 4] == ["    exit: func(status: result);", "  }", "  import wasi:io/error@0.2.12 {"]
    assert lines[-4:-1] == ["  export wasi:cli/run@0.2.12 {", "    run: func() -> result;", "  }"]
    for name, interface in component.imports.interfaces.items():
        assert f"  import {name} {{" in lines
        for func in interface.functions.values():
            assert f"    {func};" in lines, (str(func), result.stdout)


def test_inspect_a_component_prints_world_level_functions():
    component = wasmpy.Component.from_file(RICH)
    result = wasmpy_cli("inspect", RICH)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "  import log: func(message: string);" in lines
    assert "  export greet: func(name: string) -> string;" in lines
    assert "  export test:rich/api@0.1.0 {" in lines
    assert lines.index("  import log: func(message: string);") < lines.index("  export nothing: func();")
    for func in component.exports.interfaces["test:rich/api@0.1.0"].functions.values():
        assert f"    {func};" in lines, str(func)
