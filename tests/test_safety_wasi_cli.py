"""Issue #11, item 12: every string WasiConfig hands to wasmtime is checked first, and ``wasmpy run``
reports each bad input as one line, never a traceback.

wasmtime's WASI C API takes NUL-terminated UTF-8 for everything: arguments, environment, the
preopens' host and guest paths and the standard streams' paths (and its ``inherit_env`` panics,
aborting the process, on a variable that is not UTF-8). So a WasiConfig accepts str, bytes and
os.PathLike paths, and refuses the rest with a TypeError or ValueError when it is given.

The WASI programs are those of tests/wasi (see test_wasi.py).
"""

import io
import json
import os
import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest

import wasmpy
from childproc import describe, run_python
from test_cli import assert_one_line_error, child_env, wasmpy_cli
from test_wasi import PROGRAMS, lines_with, load, make_tree, wc_line

NOT_UTF8 = b"caf\xe9"  # Latin-1 "café": a valid file name, but not UTF-8
SURROGATE_ESCAPED = os.fsdecode(NOT_UTF8)  # how Python spells that name as str: 'caf\udce9'


class BytesPath:
    """An os.PathLike whose path is bytes (as os.DirEntry from os.scandir(bytes) is)."""

    def __init__(self, path: bytes) -> None:
        self.path = path

    def __fspath__(self) -> bytes:
        return self.path


def run(name, *args, **options):
    """Runs program ``name``; returns (exit code, stdout text, stderr text)."""
    out, err = io.BytesIO(), io.BytesIO()
    code = wasmpy.run(load(name), argv=[name, *args], stdin=b"", stdout=out, stderr=err, **options)
    return code, out.getvalue().decode(), err.getvalue().decode()


def assert_clear_value_error(info, *words):
    """A plain ValueError naming the problem: not a UnicodeError, whose message says nothing of wasmtime."""
    assert not isinstance(info.value, UnicodeError), repr(info.value)
    for word in words:
        assert word in str(info.value), str(info.value)


# --- preopens: bytes and os.PathLike paths work end to end

@pytest.mark.parametrize("kind", ["bytes", "bytes PathLike", "DirEntry"])
def test_preopen_host_path_as_bytes(tmp_path, kind):
    data = make_tree(tmp_path / "data")
    raw = os.fsencode(data)
    host = {"bytes": raw, "bytes PathLike": BytesPath(raw),
            "DirEntry": next(e for e in os.scandir(os.fsencode(tmp_path)) if e.name == b"data")}[kind]
    code, out, err = run("files", "/data", preopens=[(host, "/data")])
    assert code == 0, err
    assert "wrote 26 bytes to /data/output.txt" in out
    assert (data / "output.txt").read_text() == "HELLO, FILES!\nSECOND LINE\n"


@pytest.mark.parametrize("guest", [b"/data", PurePosixPath("/data")], ids=["bytes", "PurePosixPath"])
def test_preopen_guest_path_as_bytes_or_path(tmp_path, guest):
    data = make_tree(tmp_path / "data")
    config = wasmpy.WasiConfig(argv=["files", "/data"], stdout=io.BytesIO(), stderr=io.BytesIO())
    config.preopen(os.fsencode(data), guest, read_only=False)
    wasmpy.Instance(load("files"), store=wasmpy.Store(wasi=config)).exports._start()
    assert (data / "output.txt").read_text() == "HELLO, FILES!\nSECOND LINE\n"


def test_preopen_of_a_utf8_directory_given_as_bytes(tmp_path):
    data = make_tree(tmp_path / "données")
    code, out, err = run("files", "/d", preopens=[(os.fsencode(data), "/d")])
    assert code == 0, err
    assert (data / "output.txt").exists()


# --- preopens: what wasmtime cannot take is refused, clearly, when it is given

@pytest.mark.parametrize("spelling", ["bytes", "surrogate-escaped str"])
def test_a_host_path_that_is_not_utf8_is_a_value_error(tmp_path, spelling):
    raw = os.fsencode(tmp_path) + b"/" + NOT_UTF8
    os.mkdir(raw)  # it exists: only its name is in the way
    host = raw if spelling == "bytes" else os.fsdecode(raw)
    with pytest.raises(ValueError) as info:
        wasmpy.WasiConfig(preopens=[(host, "/data")])
    assert_clear_value_error(info, "UTF-8", "host path")
    with pytest.raises(ValueError) as info:
        wasmpy.WasiConfig().preopen(BytesPath(raw), "/data")
    assert_clear_value_error(info, "UTF-8")


def test_a_host_path_with_a_lone_surrogate_is_a_value_error(tmp_path):
    with pytest.raises(ValueError) as info:
        wasmpy.WasiConfig().preopen(str(tmp_path) + "/\ud800", "/data")  # no byte spells it
    assert_clear_value_error(info, "surrogate")


def test_a_host_path_with_nul_is_a_value_error(tmp_path):
    """Before, os.path.isdir said False for it: a misleading FileNotFoundError."""
    for host in (str(tmp_path) + "\0/x", os.fsencode(tmp_path) + b"\0", BytesPath(os.fsencode(tmp_path) + b"\0")):
        with pytest.raises(ValueError, match="NUL"):
            wasmpy.WasiConfig().preopen(host, "/data")


@pytest.mark.parametrize("guest", [NOT_UTF8, "/" + SURROGATE_ESCAPED, "/da\0ta", b"/da\0ta"],
                         ids=["not-utf8-bytes", "surrogate", "nul-str", "nul-bytes"])
def test_a_bad_guest_path_is_a_value_error_at_once(tmp_path, guest):
    with pytest.raises(ValueError) as info:
        wasmpy.WasiConfig(preopens=[(str(tmp_path), guest)])
    assert_clear_value_error(info, "guest path")


def test_preopen_paths_of_a_wrong_type_are_type_errors(tmp_path):
    for host, guest in ((3, "/data"), (None, "/data"), (str(tmp_path), 3), (str(tmp_path), None)):
        with pytest.raises(TypeError):
            wasmpy.WasiConfig().preopen(host, guest)


def test_malformed_preopen_lists_are_type_errors(tmp_path):
    host = str(tmp_path)
    for preopens in ((host, "/data"), [host], [(host,)], [(host, "/data", True, 4)]):
        with pytest.raises(TypeError, match="preopen"):
            wasmpy.WasiConfig(preopens=preopens)


# --- arguments and environment

def test_argv_of_utf8_bytes_and_text_reach_the_program():
    code, out, _ = run("args_env", "ünï".encode(), "plain")
    assert code == 0
    assert lines_with(out, "arg ") == ["args_env", "ünï", "plain"]


@pytest.mark.parametrize("argument", [NOT_UTF8, SURROGATE_ESCAPED, "a\0b", b"a\0b"],
                         ids=["not-utf8-bytes", "surrogate", "nul-str", "nul-bytes"])
def test_a_bad_argument_is_a_value_error_at_once(argument):
    with pytest.raises(ValueError) as info:
        wasmpy.WasiConfig(argv=["prog", argument])
    assert_clear_value_error(info, "argument")


def test_argv_of_a_wrong_type_is_a_type_error():
    for argv in (42, ["prog", 42], ["prog", None], ["prog", Path("x")]):
        with pytest.raises(TypeError):
            wasmpy.WasiConfig(argv=argv)


def test_env_of_utf8_bytes_reaches_the_program():
    code, out, _ = run("args_env", env={b"NAME": "välue".encode(), "TEXT": "ö"})
    assert code == 0
    assert sorted(lines_with(out, "env ")) == ["NAME=välue", "TEXT=ö"]


@pytest.mark.parametrize("env", [{"A": NOT_UTF8}, {NOT_UTF8: "x"}, {"A": SURROGATE_ESCAPED}, {"A": "x\0y"},
                                 {"A\0B": "x"}, {"A=B": "x"}, {"": "x"}],
                         ids=["value-not-utf8", "name-not-utf8", "surrogate", "nul-value", "nul-name",
                              "equals-in-name", "empty-name"])
def test_a_bad_environment_variable_is_a_value_error(env):
    with pytest.raises(ValueError) as info:
        wasmpy.WasiConfig(env=env)
    assert_clear_value_error(info, "environment")


def test_env_of_a_wrong_type_is_a_type_error():
    for env in (42, ["AB"], [("A", "B")], {"A": 1}, {1: "A"}):
        with pytest.raises(TypeError):
            wasmpy.WasiConfig(env=env)


def test_inherit_env_with_a_variable_that_is_not_utf8_is_a_value_error_not_an_abort():
    """wasmtime's own inherit_env panics on it (Result::unwrap in std::env::vars), aborting the process."""
    proc = run_python(f"""
        import io, json, os, wasmpy
        os.environb[b"WASMPY_TEST_NOT_UTF8"] = {NOT_UTF8!r}
        os.environ["WASMPY_TEST_FINE"] = "fine"
        config = wasmpy.WasiConfig(argv=["args_env"], inherit_env=True, stdout=io.BytesIO())
        try:
            wasmpy.Instance(wasmpy.Module.from_file({str(PROGRAMS / "args_env.wasm")!r}),
                            store=wasmpy.Store(wasi=config))
        except ValueError as error:
            print(json.dumps({{"error": str(error), "type": type(error).__name__}}))
        del os.environ["WASMPY_TEST_NOT_UTF8"]
        out = io.BytesIO()
        wasmpy.run({str(PROGRAMS / "args_env.wasm")!r}, inherit_env=True, stdout=out)
        print(json.dumps({{"fine": "env WASMPY_TEST_FINE=fine" in out.getvalue().decode()}}))
        """, timeout=120)
    assert proc.returncode == 0, describe(proc)
    error, fine = (json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{"))
    assert error["type"] == "ValueError" and "WASMPY_TEST_NOT_UTF8" in error["error"], error
    assert fine == {"fine": True}


# --- standard streams

@pytest.mark.parametrize("kind", ["bytes", "bytes PathLike"])
def test_stdout_and_stderr_to_a_bytes_path(tmp_path, kind):
    out, err = os.fsencode(tmp_path / "out.txt"), os.fsencode(tmp_path / "err.txt")
    wrap = bytes if kind == "bytes" else BytesPath
    assert wasmpy.run(load("exit3"), argv=["exit3"], stdout=wrap(out), stderr=wrap(err)) == 3
    assert (tmp_path / "out.txt").read_text() == "about to exit\n"
    assert (tmp_path / "err.txt").read_text() == "exit3: exiting with status 3\n"


def test_stdin_from_a_bytes_path_like_is_read_as_a_file_not_taken_as_data(tmp_path):
    data = b"one two\nthree\n"
    (tmp_path / "input.txt").write_bytes(data)
    out = io.BytesIO()
    assert wasmpy.run(load("wc"), argv=["wc"], stdin=BytesPath(os.fsencode(tmp_path / "input.txt")), stdout=out) == 0
    assert out.getvalue().decode() == wc_line(data)


def test_a_file_named_inherit_is_a_file(tmp_path, monkeypatch):
    """Only the string "inherit" means inherit: a path object naming a file "inherit" names that file."""
    monkeypatch.chdir(tmp_path)
    Path("inherit").write_bytes(b"from the file\n")
    out = io.BytesIO()
    assert wasmpy.run(load("wc"), argv=["wc"], stdin=Path("inherit"), stdout=out) == 0
    assert out.getvalue().decode() == wc_line(b"from the file\n")
    assert wasmpy.run(load("hello"), argv=["hello"], stdout=Path("inherit")) == 0
    assert Path("inherit").read_text() == "Hello, WASI!\n"


@pytest.mark.parametrize("stream", ["stdin", "stdout", "stderr"])
@pytest.mark.parametrize("path", ["not-utf8", "surrogate", "nul", "empty"])
def test_a_bad_stream_path_is_a_value_error(tmp_path, stream, path):
    base = os.fsencode(tmp_path)
    value = {"not-utf8": BytesPath(base + b"/" + NOT_UTF8), "surrogate": os.fsdecode(base + b"/" + NOT_UTF8),
             "nul": str(tmp_path / "a\0b"), "empty": ""}[path]
    if stream != "stdin" and path == "not-utf8":
        value = value.path  # stdout and stderr also take plain bytes as a path (stdin takes them as data)
    with pytest.raises(ValueError) as info:
        wasmpy.WasiConfig(**{stream: value})
    assert_clear_value_error(info, stream)


def test_stdin_text_file_with_a_lone_surrogate_is_a_value_error():
    with pytest.raises(ValueError) as info:
        wasmpy.WasiConfig(stdin=io.StringIO("bad \udce9"))
    assert_clear_value_error(info, "stdin")


def test_stdin_read_that_returns_no_bytes_is_a_type_error():
    class Odd:
        def read(self):
            return 5  # bytes(5) would be five NUL bytes
    with pytest.raises(TypeError, match="read"):
        wasmpy.WasiConfig(stdin=Odd())


# --- nothing reaches C unchecked: settings changed later are checked too

def test_changed_settings_are_checked_like_given_ones(tmp_path):
    config = wasmpy.WasiConfig(argv=["args_env"], stdout=io.BytesIO())
    with pytest.raises(ValueError):
        config.argv = ["args_env", NOT_UTF8]
    with pytest.raises(ValueError):
        config.env = {"A": "x\0y"}
    with pytest.raises(TypeError):
        config.stdout = 42
    with pytest.raises(ValueError):
        config.stderr = str(tmp_path / "a\0b")
    with pytest.raises(ValueError):
        config.inherit_env, config.env = True, {"A": "1"}
    with pytest.raises(AttributeError):
        config.preopens.append((b"/", "/", False))  # preopens grow through preopen() only
    with pytest.raises(AttributeError):
        config.preopens = [(b"/", "/", False)]
    assert config.argv == ("args_env",) and config.preopens == ()


def test_changed_settings_reach_the_program():
    out = io.BytesIO()
    config = wasmpy.WasiConfig(argv=["first"])
    config.argv = [b"args_env", b"second"]
    config.env = {b"K": b"V"}
    config.stdout = out.write
    wasmpy.Instance(load("args_env"), store=wasmpy.Store(wasi=config)).exports._start()
    assert out.getvalue().decode().splitlines() == ["arg args_env", "arg second", "env K=V"]


def test_a_copy_of_a_config_gets_its_own_preopens(tmp_path):
    import copy
    config = wasmpy.WasiConfig()
    duplicate = copy.copy(config)
    duplicate.preopen(tmp_path, "/data")
    assert config.preopens == () and len(duplicate.preopens) == 1


# --- wasmpy.run

def test_run_takes_a_bytes_path():
    out = io.BytesIO()
    assert wasmpy.run(os.fsencode(PROGRAMS / "args_env.wasm"), stdout=out) == 0
    assert lines_with(out.getvalue().decode(), "arg ") == ["args_env.wasm"]


def test_run_names_a_file_that_is_not_utf8_with_replacement_characters(tmp_path):
    raw = os.fsencode(tmp_path) + b"/" + NOT_UTF8 + b".wasm"
    with open(raw, "wb") as file:
        file.write((PROGRAMS / "args_env.wasm").read_bytes())
    out = io.BytesIO()
    assert wasmpy.run(raw, stdout=out) == 0
    assert lines_with(out.getvalue().decode(), "arg ") == ["caf\ufffd.wasm"]


def test_run_of_something_that_is_not_a_path_is_a_type_error():
    with pytest.raises(TypeError, match="a path, a wasmpy.Module or a wasmpy.Component, not int"):
        wasmpy.run(42)


def test_run_refuses_a_start_that_is_not_a_function_before_instantiating():
    module = wasmpy.Module('(module (global (export "_start") i32 (i32.const 0)) (memory 1) '
                           '(func $boom unreachable) (start $boom))')
    with pytest.raises(TypeError, match="_start"):  # not the Trap of the start function
        wasmpy.run(module)


# --- wasmpy run: each user error is one line and a non-zero status, never a traceback

CLI_WAT = """
(module
  (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
  (func (export "add64") (param i64 i64) (result i64) (i64.add (local.get 0) (local.get 1)))
  (func (export "half") (param f64) (result f64) (f64.mul (local.get 0) (f64.const 0.5)))
  (func (export "vec") (param v128) (result v128) (local.get 0))
  (func (export "ref") (param externref) (result i32) (i32.const 0))
  (func (export "trap") unreachable)
  (func $recurse (export "recurse") (call $recurse))
  (func (export "spin") (loop $forever (br $forever)))
  (global (export "answer") i32 (i32.const 42))
  (memory (export "memory") 1))
"""


def readable(value):
    """A test id for a parameter that is a string or a list of them."""
    return value if isinstance(value, str) else " ".join(value)


@pytest.fixture
def cli_wat(tmp_path):
    path = tmp_path / "cli.wat"
    path.write_text(CLI_WAT)
    return path


@pytest.mark.parametrize("export, args, words", [
    ("add", ["99999999999999999999", "1"], ["out of range", "i32"]),
    ("add", ["4294967296", "1"], ["out of range"]),
    ("add", ["-2147483649", "1"], ["out of range"]),
    ("add64", ["18446744073709551616", "1"], ["out of range", "i64"]),
    ("vec", [str(2**128)], ["out of range", "v128"]),
    ("add", ["one", "2"], ["'one'", "integer"]),
    ("add", ["1.5", "2"], ["integer"]),
    ("half", ["abc"], ["'abc'", "number"]),
    ("add", ["1"], ["takes 2 arguments"]),
    ("add", ["1", "2", "3"], ["takes 2 arguments"]),
    ("ref", ["1"], ["externref"]),
    ("missing", [], ["missing", "add"]),
    ("answer", [], ["global", "not a function"]),
    ("memory", [], ["memory", "not a function"]),
], ids=readable)
def test_invoke_usage_errors_are_one_line_with_status_2(cli_wat, export, args, words):
    result = wasmpy_cli("run", "--invoke", export, cli_wat, *args)
    assert_one_line_error(result)
    assert result.returncode == 2, result
    assert result.stderr.startswith("wasmpy: error: "), result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


@pytest.mark.parametrize("export, args, output", [
    ("add", ["4294967295", "1"], "0"), ("add", ["-2147483648", "0"], "-2147483648"),
    ("add64", ["0xffffffffffffffff", "1"], "0"), ("half", ["0x1.8p3"], "6.0"), ("half", ["-inf"], "-inf"),
    ("vec", [str(2**128 - 1)], str(2**128 - 1)),
], ids=readable)
def test_invoke_accepts_the_whole_range(cli_wat, export, args, output):
    result = wasmpy_cli("run", "--invoke", export, cli_wat, *args)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == output


@pytest.mark.parametrize("args, words", [
    (["--invoke", "trap"], ["unreachable"]),
    (["--invoke", "recurse"], ["call stack exhausted"]),
    (["--invoke", "spin", "--fuel", "10000"], ["fuel"]),
    (["--invoke", "spin", "--timeout", "0.2"], ["deadline"]),
], ids=readable)
def test_a_trap_is_one_line_with_the_trap_status(cli_wat, args, words):
    result = wasmpy_cli("run", *args[2:], *args[:2], cli_wat, timeout=60)
    assert_one_line_error(result)
    assert result.returncode == 134  # like wasmtime run: as an abort would end the process
    assert "backtrace" not in result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


def test_a_module_without_start_is_a_usage_error(cli_wat):
    result = wasmpy_cli("run", cli_wat)
    assert_one_line_error(result)
    assert result.returncode == 2
    assert "--invoke" in result.stderr


@pytest.mark.parametrize("case", ["missing", "directory", "malformed", "syntax", "missing-import"])
def test_file_and_module_errors_are_one_line_with_status_1(tmp_path, case):
    path = tmp_path / "module.wat"
    if case == "directory":
        path.mkdir()
    elif case == "malformed":
        path = tmp_path / "module.wasm"
        path.write_bytes(b"\0asm\x01\0\0\0garbage")
    elif case == "syntax":
        path.write_text('(module (func (export "_start")')
    elif case == "missing-import":
        path.write_text('(module (import "env" "f" (func)) (func (export "_start")))')
    result = wasmpy_cli("run", path, cwd=tmp_path)
    assert_one_line_error(result)
    assert result.returncode == 1, result
    assert ("env.f" if case == "missing-import" else "module.wa") in result.stderr


def test_fuel_beyond_what_a_store_holds_is_a_usage_error(cli_wat):
    result = wasmpy_cli("run", "--fuel", str(2**64), "--invoke", "add", cli_wat, "1", "2")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "--fuel" in result.stderr


def cli_bytes(*args, cwd=None):
    """Runs ``python -m wasmpy`` with arguments that may be bytes (not UTF-8), as a shell can pass them."""
    return subprocess.run([sys.executable, "-m", "wasmpy", *args], capture_output=True, text=True,
                          env=child_env(), cwd=cwd, timeout=120)


@pytest.mark.parametrize("where", ["argument", "env", "dir", "dir-guest"])
def test_an_argument_wasi_cannot_carry_is_a_usage_error(tmp_path, where):
    hello = os.fsencode(PROGRAMS / "hello.wasm")
    odd_dir = os.fsencode(tmp_path) + b"/" + NOT_UTF8
    os.mkdir(odd_dir)
    args = {"argument": [hello, NOT_UTF8], "env": [b"--env", b"A=" + NOT_UTF8, hello],
            "dir": [b"--dir", odd_dir, hello], "dir-guest": [b"--dir", os.fsencode(tmp_path) + b"::/" + NOT_UTF8,
                                                              hello]}[where]
    result = cli_bytes(b"run", *args, cwd=tmp_path)
    assert_one_line_error(result)
    assert result.returncode == 2, result
    assert "UTF-8" in result.stderr
    assert result.stdout == ""  # the program did not run


def test_a_program_file_named_in_latin1_runs(tmp_path):
    raw = os.fsencode(tmp_path) + b"/" + NOT_UTF8 + b".wasm"
    with open(raw, "wb") as file:
        file.write((PROGRAMS / "args_env.wasm").read_bytes())
    result = cli_bytes(b"run", raw, b"x", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert lines_with(result.stdout, "arg ") == ["caf\ufffd.wasm", "x"]


def test_a_closed_stdout_ends_quietly(cli_wat):
    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody will read: writing gets EPIPE (Python ignores SIGPIPE)
    try:
        result = subprocess.run([sys.executable, "-m", "wasmpy", "run", "--invoke", "add", str(cli_wat), "1", "2"],
                                stdout=write_end, stderr=subprocess.PIPE, text=True, env=child_env(), timeout=120)
    finally:
        os.close(write_end)
    assert result.returncode == 1
    assert result.stderr == ""  # no traceback, no "Exception ignored" at exit
