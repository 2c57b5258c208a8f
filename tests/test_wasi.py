"""WASI preview 1: real C programs (tests/wasi/*.c, built by tests/wasi/build.sh) driven through the API.

The programs:

- ``hello``: prints ``Hello, WASI!``.
- ``wc``: reads stdin, prints ``lines words bytes`` like ``wc``.
- ``files DIR``: lists DIR (sorted), reads ``DIR/input.txt``, writes its uppercase to ``DIR/output.txt``;
  exit status 1 with a message on stderr if any step fails.
- ``args_env``: prints ``arg X`` for each argument and ``env NAME=VALUE`` for each variable.
- ``exit3``: prints ``about to exit``, says so on stderr, then ``exit(3)``.
- ``escape PATH...``: for each PATH prints ``read PATH: open ok`` or ``read PATH: open denied (ERRNO)``,
  then the same for ``write`` (open for writing, creating the file if missing).
"""

import functools
import importlib
import io
import os
import shutil
import sys
from pathlib import Path

import pytest

from childproc import child_json, run_python

import wasmpy

PROGRAMS = Path(__file__).resolve().parent / "wasi"
MESSAGE = "Hello, WASI!\n"


@functools.lru_cache(maxsize=None)
def load(name: str) -> wasmpy.Module:
    """The compiled test program ``name`` (compiled once per test session)."""
    return wasmpy.Module.from_file(PROGRAMS / f"{name}.wasm")


def run(name, *args, argv=None, stdin=b"", **options):
    """Runs program ``name`` with ``args``; returns (exit code, stdout text, stderr text)."""
    out, err = io.BytesIO(), io.BytesIO()
    argv = [name, *args] if argv is None else argv
    code = wasmpy.run(load(name), argv=argv, stdin=stdin, stdout=out, stderr=err, **options)
    return code, out.getvalue().decode(), err.getvalue().decode()


DIRECT_OPEN_WAT = """
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; open(path at 1024, path_len) in preopen fd 3, following symlinks; returns the WASI errno (0: opened)
  (func (export "open_read") (param $len i32) (result i32)
    (call $path_open (i32.const 3) (i32.const 1) (i32.const 1024) (local.get $len)
                     (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 0)))
  (func (export "open_create") (param $len i32) (result i32)
    (call $path_open (i32.const 3) (i32.const 1) (i32.const 1024) (local.get $len)
                     (i32.const 1) (i64.const 64) (i64.const 0) (i32.const 0) (i32.const 0))))
"""
WASI_EBADF = 8


def wc_line(data: bytes) -> str:
    """What ``wc`` prints for ``data``."""
    return "%7d %7d %7d\n" % (data.count(b"\n"), len(data.split()), len(data))


def lines_with(output: str, prefix: str):
    return [line[len(prefix):] for line in output.splitlines() if line.startswith(prefix)]


def escape(*paths, preopens=()):
    """Runs ``escape`` on ``paths``; returns {(mode, path): result}, result being "ok" or the errno name."""
    code, out, err = run("escape", *paths, preopens=preopens)
    assert code == 0, err
    results = {}
    for line in out.splitlines():
        head, _, outcome = line.rpartition(": ")
        mode, _, path = head.partition(" ")
        results[mode, path] = "ok" if outcome == "open ok" else outcome[len("open denied ("):-1]
    assert len(results) == 2 * len(paths), out
    return results


# --- running programs

def test_hello_through_run_with_a_path():
    out = io.BytesIO()
    assert wasmpy.run(str(PROGRAMS / "hello.wasm"), stdout=out) == 0
    assert out.getvalue() == MESSAGE.encode()


def test_run_accepts_a_path_object_and_a_module():
    out = io.BytesIO()
    assert wasmpy.run(PROGRAMS / "hello.wasm", stdout=out) == 0
    assert wasmpy.run(load("hello"), stdout=out) == 0
    assert out.getvalue() == MESSAGE.encode() * 2


def test_run_of_a_path_uses_the_compiled_code_cache(tmp_path):
    """Compiled once, then loaded from the cache the import hook and `wasmpy run` use."""
    program = tmp_path / "hello.wasm"
    shutil.copy(PROGRAMS / "hello.wasm", program)
    proc = run_python(f"""
        import io, json, pathlib, sys, wasmpy
        sys.dont_write_bytecode = False  # whatever PYTHONDONTWRITEBYTECODE says
        wasmpy.configure_import_hook(cache_dir={str(tmp_path / "cache")!r})
        compiled = []
        compile_module = wasmpy.Module.__init__
        def counting(self, *args, **kwargs):
            compiled.append(1)
            compile_module(self, *args, **kwargs)
        wasmpy.Module.__init__ = counting
        runs = []
        for _ in range(2):
            out = io.BytesIO()
            runs.append([wasmpy.run({str(program)!r}, stdout=out), out.getvalue().decode(), len(compiled)])
        print(json.dumps({{"runs": runs, "cached": [p.name for p in pathlib.Path({str(tmp_path / "cache")!r}).rglob("*.cwasm")]}}))
        """, timeout=120)
    result = child_json(proc)
    assert result["runs"] == [[0, MESSAGE, 1], [0, MESSAGE, 1]]  # the second run compiled nothing
    assert len(result["cached"]) == 1 and result["cached"][0].startswith("hello.wasm.")


def test_hello_through_store_and_instance():
    out = io.BytesIO()
    store = wasmpy.Store(wasi=wasmpy.WasiConfig(argv=["hello"], stdout=out))
    instance = wasmpy.Instance(load("hello"), store=store)
    assert "_start" in instance.exports
    assert instance.exports._start() is None  # main returned 0: no proc_exit, no exception
    assert out.getvalue() == MESSAGE.encode()


def test_the_store_keeps_its_wasi_config():
    config = wasmpy.WasiConfig(argv=["x"])
    assert wasmpy.Store(wasi=config).wasi is config
    assert wasmpy.Store().wasi is None
    with pytest.raises(TypeError):
        wasmpy.Store(wasi={"argv": ["x"]})


def test_run_refuses_a_module_without_start():
    with pytest.raises(TypeError, match="_start"):
        wasmpy.run(wasmpy.Module('(module (func (export "main")))'))


# --- arguments

def test_argv_reaches_the_program_unchanged():
    argv = ["prog", "one", "two words", "", "ünïcödé", "--flag=x", "*"]
    code, out, _ = run("args_env", argv=argv)
    assert code == 0
    assert lines_with(out, "arg ") == argv


def test_argv_accepts_bytes():
    code, out, _ = run("args_env", argv=[b"prog", b"raw bytes"])
    assert lines_with(out, "arg ") == ["prog", "raw bytes"]


def test_run_defaults_argv_to_the_file_name():
    out = io.BytesIO()
    assert wasmpy.run(str(PROGRAMS / "args_env.wasm"), stdout=out) == 0
    assert lines_with(out.getvalue().decode(), "arg ") == ["args_env.wasm"]


def test_argv_must_be_a_sequence_of_strings():
    with pytest.raises(TypeError):
        wasmpy.WasiConfig(argv="prog arg")
    with pytest.raises(TypeError):
        wasmpy.WasiConfig(argv=["prog", 3])
    with pytest.raises(ValueError):
        wasmpy.WasiConfig(argv=["prog", "nul\0inside"])


# --- environment

def test_explicit_env_is_exactly_what_the_program_sees(monkeypatch):
    monkeypatch.setenv("WASMPY_TEST_HOST_ONLY", "not for the guest")
    env = {"LANG": "C", "EMPTY": "", "WITH_EQUALS": "a=b=c", "UNICODE": "ö"}
    code, out, _ = run("args_env", env=env)
    assert code == 0
    assert sorted(lines_with(out, "env ")) == sorted(f"{k}={v}" for k, v in env.items())


def test_no_env_by_default(monkeypatch):
    monkeypatch.setenv("WASMPY_TEST_HOST_ONLY", "not for the guest")
    assert os.environ  # the host has variables; the guest must see none of them
    code, out, _ = run("args_env")
    assert code == 0
    assert lines_with(out, "env ") == []


def test_inherit_env_passes_the_process_environment(monkeypatch):
    monkeypatch.setenv("WASMPY_TEST_INHERITED", "value from the host")
    code, out, _ = run("args_env", inherit_env=True)
    assert code == 0
    seen = lines_with(out, "env ")
    assert "WASMPY_TEST_INHERITED=value from the host" in seen
    monkeypatch.setenv("PATH", "/wasmpy/test/bin:/usr/bin")
    assert "PATH=/wasmpy/test/bin:/usr/bin" in lines_with(run("args_env", inherit_env=True)[1], "env ")


def test_env_and_inherit_env_are_exclusive():
    with pytest.raises(ValueError):
        wasmpy.WasiConfig(env={"A": "1"}, inherit_env=True)


# --- stdin

WC_INPUT = b"the quick brown fox\njumps over\n\n  the lazy dog"


def test_stdin_bytes():
    code, out, _ = run("wc", stdin=WC_INPUT)
    assert (code, out) == (0, wc_line(WC_INPUT))
    assert out.split() == ["3", "9", str(len(WC_INPUT))]


def test_stdin_empty():
    assert run("wc", stdin=b"")[:2] == (0, wc_line(b""))


def test_stdin_bytearray_and_memoryview():
    assert run("wc", stdin=bytearray(WC_INPUT))[1] == wc_line(WC_INPUT)
    assert run("wc", stdin=memoryview(WC_INPUT))[1] == wc_line(WC_INPUT)


def test_stdin_path(tmp_path):
    data = WC_INPUT * 100 + bytes(range(256))  # and binary data
    path = tmp_path / "input.bin"
    path.write_bytes(data)
    assert run("wc", stdin=str(path))[:2] == (0, wc_line(data))
    assert run("wc", stdin=path)[:2] == (0, wc_line(data))


def test_stdin_missing_path(tmp_path):
    with pytest.raises(OSError):
        run("wc", stdin=str(tmp_path / "missing.txt"))


def test_stdin_binary_file_object(tmp_path):
    path = tmp_path / "input.txt"
    path.write_bytes(WC_INPUT)
    with open(path, "rb") as file:
        assert run("wc", stdin=file)[:2] == (0, wc_line(WC_INPUT))
    assert run("wc", stdin=io.BytesIO(WC_INPUT))[:2] == (0, wc_line(WC_INPUT))


def test_stdin_large():
    data = b"word " * 200_000 + b"\n"
    assert run("wc", stdin=data)[1] == wc_line(data)


def test_stdin_of_a_wrong_type():
    with pytest.raises(TypeError):
        wasmpy.WasiConfig(stdin=42)


# --- stdout and stderr

def test_stdout_to_a_path_truncates(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old content that is longer than the new one\n" * 10)
    assert wasmpy.run(load("hello"), argv=["hello"], stdout=str(path)) == 0
    assert path.read_text() == MESSAGE
    assert wasmpy.run(load("hello"), argv=["hello"], stdout=path) == 0  # a Path works too
    assert path.read_text() == MESSAGE


def test_stdout_to_a_path_in_a_missing_directory(tmp_path):
    with pytest.raises(OSError):
        wasmpy.run(load("hello"), argv=["hello"], stdout=str(tmp_path / "missing" / "out.txt"))


def test_stdout_to_a_callable():
    chunks = []
    assert wasmpy.run(load("wc"), argv=["wc"], stdin=WC_INPUT, stdout=chunks.append) == 0
    assert chunks and all(isinstance(chunk, bytes) for chunk in chunks)
    assert b"".join(chunks).decode() == wc_line(WC_INPUT)


def test_stdout_to_a_binary_file(tmp_path):
    path = tmp_path / "out.bin"
    with open(path, "wb") as file:
        assert wasmpy.run(load("hello"), argv=["hello"], stdout=file) == 0
    assert path.read_text() == MESSAGE


def test_stderr_is_separate_from_stdout(tmp_path):
    out, err = io.BytesIO(), io.BytesIO()
    assert wasmpy.run(load("exit3"), argv=["exit3"], stdout=out, stderr=err) == 3
    assert out.getvalue() == b"about to exit\n"
    assert err.getvalue() == b"exit3: exiting with status 3\n"


def test_stderr_to_a_path_and_to_a_callable(tmp_path):
    path, chunks = tmp_path / "err.txt", []
    assert wasmpy.run(load("exit3"), argv=["exit3"], stdout=io.BytesIO(), stderr=str(path)) == 3
    assert path.read_text() == "exit3: exiting with status 3\n"
    assert wasmpy.run(load("exit3"), argv=["exit3"], stdout=io.BytesIO(), stderr=chunks.append) == 3
    assert b"".join(chunks) == b"exit3: exiting with status 3\n"


def test_inherited_streams_are_the_process_file_descriptors(capfd):
    assert wasmpy.run(load("exit3"), argv=["exit3"]) == 3
    captured = capfd.readouterr()
    assert captured.out == "about to exit\n"
    assert captured.err == "exit3: exiting with status 3\n"


def test_output_of_a_wrong_type():
    with pytest.raises(TypeError):
        wasmpy.WasiConfig(stdout=42)
    with pytest.raises(TypeError):
        wasmpy.WasiConfig(stderr=object())


# --- exit status

def test_exit_status_through_run():
    assert run("exit3")[0] == 3
    assert run("hello")[0] == 0


def test_exit_status_through_exit_trap():
    out = io.BytesIO()
    store = wasmpy.Store(wasi=wasmpy.WasiConfig(argv=["exit3"], stdout=out, stderr=io.BytesIO()))
    instance = wasmpy.Instance(load("exit3"), store=store)
    with pytest.raises(wasmpy.ExitTrap) as info:
        instance.exports._start()
    assert info.value.code == 3
    assert isinstance(info.value, wasmpy.Trap) and isinstance(info.value, wasmpy.WasmError)
    assert out.getvalue() == b"about to exit\n"  # exit() flushed stdio before proc_exit


PROC_EXIT_WAT = """
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (call $exit (i32.const %d)) unreachable))
"""


@pytest.mark.parametrize("status", [0, 1, 42, 125])
def test_proc_exit_status_from_wat(tmp_path, status):
    path = tmp_path / "exiter.wat"
    path.write_text(PROC_EXIT_WAT % status)
    assert wasmpy.run(str(path)) == status
    instance = wasmpy.Instance(wasmpy.Module(PROC_EXIT_WAT % status), store=wasmpy.Store(wasi=wasmpy.WasiConfig()))
    with pytest.raises(wasmpy.ExitTrap) as info:
        instance.exports._start()
    assert info.value.code == status


# --- preopened directories

def make_tree(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "input.txt").write_text("Hello, files!\nsecond line\n")
    (root / "b.txt").write_text("b")
    (root / "a.txt").write_text("a")
    (root / "sub").mkdir()
    return root


def test_preopen_read_and_write(tmp_path):
    data = make_tree(tmp_path / "data")
    code, out, err = run("files", "/data", preopens=[(str(data), "/data")])
    assert code == 0, err
    assert out.splitlines() == [
        "listing /data: 4 entries", "  a.txt", "  b.txt", "  input.txt", "  sub",
        "read 26 bytes from /data/input.txt",
        "wrote 26 bytes to /data/output.txt",
    ]
    assert (data / "output.txt").read_text() == "HELLO, FILES!\nSECOND LINE\n"
    assert (data / "input.txt").read_text() == "Hello, files!\nsecond line\n"


def test_preopen_with_path_objects_and_the_preopen_method(tmp_path):
    data = make_tree(tmp_path / "data")
    config = wasmpy.WasiConfig(argv=["files", "/mnt/here"], stdout=io.BytesIO(), stderr=io.BytesIO())
    config.preopen(data, "/mnt/here")
    instance = wasmpy.Instance(load("files"), store=wasmpy.Store(wasi=config))
    instance.exports._start()
    assert (data / "output.txt").read_text() == "HELLO, FILES!\nSECOND LINE\n"


def test_several_preopens(tmp_path):
    first, second = make_tree(tmp_path / "first"), make_tree(tmp_path / "second")
    (second / "input.txt").write_text("other\n")
    preopens = [(str(first), "/one"), (str(second), "/two", False)]
    assert run("files", "/two", preopens=preopens)[0] == 0
    assert (second / "output.txt").read_text() == "OTHER\n"
    assert not (first / "output.txt").exists()


def test_preopen_of_a_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError):
        wasmpy.WasiConfig(preopens=[(str(tmp_path / "missing"), "/data")])
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(FileNotFoundError):
        wasmpy.WasiConfig().preopen(tmp_path / "file", "/data")


def test_a_directory_that_is_not_preopened_is_unreachable(tmp_path):
    data = make_tree(tmp_path / "data")
    code, out, err = run("files", str(data))  # the host path, without a preopen
    assert code == 1
    assert "cannot list" in err
    assert not (data / "output.txt").exists()


# --- the safe default: a store without a WasiConfig

def test_default_store_has_no_arguments_and_no_environment(capfd, monkeypatch):
    monkeypatch.setenv("WASMPY_TEST_HOST_ONLY", "not for the guest")
    instance = wasmpy.Instance(load("args_env"), store=wasmpy.Store())
    instance.exports._start()
    assert capfd.readouterr().out == ""  # no "arg" and no "env" line at all


def test_default_instance_store_is_safe_too(capfd):
    instance = wasmpy.Instance(load("args_env"))  # no store given: a new Store, no WasiConfig
    instance.exports._start()
    assert capfd.readouterr().out == ""


def test_default_store_has_no_filesystem(capfd):
    """files.c with no argument works on '/': in a store without a WasiConfig that fails."""
    instance = wasmpy.Instance(load("files"), store=wasmpy.Store())
    with pytest.raises(wasmpy.ExitTrap) as info:
        instance.exports._start()
    assert info.value.code == 1
    captured = capfd.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("files: cannot list /:")


def test_default_store_has_no_preopened_descriptor():
    exports = wasmpy.Instance(wasmpy.Module(DIRECT_OPEN_WAT), store=wasmpy.Store()).exports
    for path in [b".", b"etc/passwd", b"/etc/passwd", b"tmp"]:
        exports.memory.write(1024, path)
        assert exports.open_read(len(path)) == WASI_EBADF, path
        assert exports.open_create(len(path)) == WASI_EBADF, path


def test_default_config_cannot_list_root(capfd):
    store = wasmpy.Store(wasi=wasmpy.WasiConfig(argv=["files", "/"]))
    instance = wasmpy.Instance(load("files"), store=store)
    with pytest.raises(wasmpy.ExitTrap) as info:
        instance.exports._start()
    assert info.value.code == 1
    captured = capfd.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("files: cannot list /:")


def test_run_without_preopens_cannot_reach_any_host_path(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    results = escape(str(secret), "/", "/etc/passwd", str(tmp_path / "new.txt"))
    assert "ok" not in results.values(), results
    assert not (tmp_path / "new.txt").exists()


# --- safety: nothing outside a preopen is reachable

@pytest.fixture
def sandbox(tmp_path):
    """tmp_path/box (to preopen) holding inside.txt, sub/ and symlinks; tmp_path/secret.txt and outside/ beside it."""
    box = tmp_path / "box"
    (box / "sub").mkdir(parents=True)
    (box / "inside.txt").write_text("inside")
    (tmp_path / "secret.txt").write_text("secret")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "file.txt").write_text("outside")
    (box / "link_relative").symlink_to("../secret.txt")
    (box / "link_absolute").symlink_to(tmp_path / "secret.txt")
    (box / "link_dir").symlink_to(tmp_path / "outside")
    (box / "sub" / "link_up").symlink_to("../../outside")
    (box / "link_dangling_out").symlink_to("../created_through_link.txt")
    (box / "link_inside").symlink_to("inside.txt")
    return tmp_path


def assert_outside_untouched(root: Path) -> None:
    assert (root / "secret.txt").read_text() == "secret"
    assert (root / "outside" / "file.txt").read_text() == "outside"
    assert sorted(p.name for p in root.iterdir()) == ["box", "outside", "secret.txt"]
    assert sorted(p.name for p in (root / "outside").iterdir()) == ["file.txt"]


@pytest.mark.parametrize("guest", ["/box", "/"])
def test_files_inside_the_preopen_are_reachable(sandbox, guest):
    """The control for the tests below: the same program does open what it may."""
    prefix = guest.rstrip("/")
    paths = [f"{prefix}/inside.txt", f"{prefix}/link_inside", f"{prefix}/sub/../inside.txt"]
    results = escape(*paths, f"{prefix}/created.txt", preopens=[(str(sandbox / "box"), guest)])
    for path in paths:
        assert results["read", path] == "ok" and results["write", path] == "ok"
    assert results["write", f"{prefix}/created.txt"] == "ok"
    assert (sandbox / "box" / "created.txt").exists()
    assert_outside_untouched(sandbox)


@pytest.mark.parametrize("guest", ["/box", "/"])
def test_dotdot_escapes_are_refused(sandbox, guest):
    prefix = guest.rstrip("/")
    paths = [f"{prefix}/../secret.txt", f"{prefix}/sub/../../secret.txt", f"{prefix}/../outside/file.txt",
             f"{prefix}/../new.txt", f"{prefix}/sub/../../outside/new.txt", f"{prefix}/..", "../secret.txt"]
    results = escape(*paths, preopens=[(str(sandbox / "box"), guest)])
    assert "ok" not in results.values(), results
    assert_outside_untouched(sandbox)


@pytest.mark.parametrize("guest", ["/box", "/", "HOST"])
def test_absolute_host_paths_are_refused(sandbox, guest):
    """A host path means nothing to the guest: it is outside the preopen, or relative to it."""
    guest = str(sandbox / "box") if guest == "HOST" else guest  # even a preopen named like its host path
    paths = [str(sandbox / "secret.txt"), str(sandbox / "outside" / "file.txt"), str(sandbox / "new.txt"),
             "/etc/passwd", "/etc/wasmpy-test-created"]
    results = escape(*paths, preopens=[(str(sandbox / "box"), guest)])
    assert "ok" not in results.values(), results
    assert_outside_untouched(sandbox)
    assert not os.path.exists("/etc/wasmpy-test-created")


@pytest.mark.parametrize("guest", ["/box", "/"])
def test_symlinks_pointing_outside_are_refused(sandbox, guest):
    prefix = guest.rstrip("/")
    paths = [f"{prefix}/link_relative", f"{prefix}/link_absolute", f"{prefix}/link_dir/file.txt",
             f"{prefix}/link_dir/new.txt", f"{prefix}/sub/link_up/file.txt", f"{prefix}/link_dangling_out"]
    results = escape(*paths, preopens=[(str(sandbox / "box"), guest)])
    assert "ok" not in results.values(), results
    assert_outside_untouched(sandbox)


def test_listing_through_a_symlink_to_outside_is_refused(sandbox):
    box = sandbox / "box"
    code, out, err = run("files", "/box/link_dir", preopens=[(str(box), "/box")])
    assert code == 1
    assert "cannot list" in err
    assert "file.txt" not in out




def test_escapes_are_refused_by_the_host_not_only_by_libc(sandbox):
    """Raw path_open calls (no wasi-libc path handling) on the preopened descriptor."""
    config = wasmpy.WasiConfig(preopens=[(str(sandbox / "box"), "/box")])
    exports = wasmpy.Instance(wasmpy.Module(DIRECT_OPEN_WAT), store=wasmpy.Store(wasi=config)).exports

    def attempt(opener, path):
        data = path.encode()
        exports.memory.write(1024, data)
        return opener(len(data))

    assert attempt(exports.open_read, "inside.txt") == 0
    assert attempt(exports.open_create, "created.txt") == 0
    for path in ["../secret.txt", "sub/../../secret.txt", str(sandbox / "secret.txt"), "/etc/passwd",
                 "link_relative", "link_absolute", "link_dir/file.txt", "..", "../new.txt"]:
        assert attempt(exports.open_read, path) != 0, path
        assert attempt(exports.open_create, path) != 0, path
    for path in ["../new.txt", "link_dangling_out", "link_dir/new.txt", str(sandbox / "new.txt")]:
        assert attempt(exports.open_create, path) != 0, path
    assert_outside_untouched(sandbox)


# --- read-only preopens

@pytest.mark.parametrize("guest", ["/box", "/"])
def test_read_only_preopen_refuses_writes_and_creation(sandbox, guest):
    box = sandbox / "box"
    prefix = guest.rstrip("/")
    paths = [f"{prefix}/inside.txt", f"{prefix}/link_inside", f"{prefix}/new.txt", f"{prefix}/sub/new.txt"]
    results = escape(*paths, preopens=[(str(box), guest, True)])
    assert results["read", f"{prefix}/inside.txt"] == "ok"
    assert results["read", f"{prefix}/link_inside"] == "ok"
    for path in paths:
        assert results["write", path] != "ok", results
    assert (box / "inside.txt").read_text() == "inside"
    assert not (box / "new.txt").exists() and not (box / "sub" / "new.txt").exists()


def test_read_only_preopen_lets_files_read_but_not_write(tmp_path):
    data = make_tree(tmp_path / "data")
    (data / "output.txt").write_text("keep me")
    code, out, err = run("files", "/data", preopens=[(str(data), "/data", True)])
    assert code == 1
    assert "read 26 bytes from /data/input.txt" in out
    assert err.startswith("files: cannot write /data/output.txt:")
    assert (data / "output.txt").read_text() == "keep me"  # not even truncated


def test_read_only_preopen_refuses_creation(tmp_path):
    data = make_tree(tmp_path / "data")
    code, _, err = run("files", "/data", preopens=[(str(data), "/data", True)])
    assert code == 1
    assert not (data / "output.txt").exists()
    config = wasmpy.WasiConfig()
    config.preopen(data, "/data", read_only=True)
    direct = wasmpy.Instance(wasmpy.Module(DIRECT_OPEN_WAT), store=wasmpy.Store(wasi=config)).exports
    direct.memory.write(1024, b"created.txt")
    assert direct.open_create(len(b"created.txt")) != 0
    direct.memory.write(1024, b"input.txt")
    assert direct.open_read(len(b"input.txt")) == 0
    assert not (data / "created.txt").exists()


def test_read_only_and_writable_preopens_side_by_side(tmp_path):
    ro, rw = make_tree(tmp_path / "ro"), make_tree(tmp_path / "rw")
    preopens = [(str(ro), "/ro", True), (str(rw), "/rw")]
    results = escape("/ro/new.txt", "/rw/new.txt", preopens=preopens)
    assert results["write", "/ro/new.txt"] != "ok"
    assert results["write", "/rw/new.txt"] == "ok"
    assert not (ro / "new.txt").exists() and (rw / "new.txt").exists()


# --- one store, several WASI instances

def test_store_wasi_can_change_until_a_module_uses_it():
    first, second = io.BytesIO(), io.BytesIO()
    store = wasmpy.Store(wasi=wasmpy.WasiConfig(argv=["first"], stdout=first))
    store.wasi = wasmpy.WasiConfig(argv=["second"], stdout=second)
    wasmpy.Instance(load("args_env"), store=store).exports._start()
    assert first.getvalue() == b""
    assert second.getvalue() == b"arg second\n"


def test_changing_store_wasi_after_use_is_refused_and_leaves_instances_alone(tmp_path):
    data = make_tree(tmp_path / "data")
    first_out = io.BytesIO()
    store = wasmpy.Store(wasi=wasmpy.WasiConfig(argv=["escape", "/data/input.txt"], stdout=first_out))
    earlier = wasmpy.Instance(load("escape"), store=store)
    with pytest.raises(wasmpy.WasmError, match="new Store"):
        store.wasi = wasmpy.WasiConfig(argv=["other", "/data/input.txt"], stdout=io.BytesIO(),
                                       preopens=[(str(data), "/data")])
    wasmpy.Instance(load("args_env"), store=store)
    earlier.exports._start()
    # the earlier instance was given no filesystem: it must not gain the refused preopen
    assert first_out.getvalue() == (b"read /data/input.txt: open denied (ENOTCAPABLE)\n"
                                    b"write /data/input.txt: open denied (ENOTCAPABLE)\n")


# --- WASI modules through the import hook

@pytest.fixture
def hook_dir(tmp_path, monkeypatch):
    """A directory on sys.path for wasm modules; what is imported from it is forgotten afterwards."""
    directory = tmp_path / "hooked"
    directory.mkdir()
    monkeypatch.syspath_prepend(str(directory))
    before = set(sys.modules)
    yield directory
    wasmpy.configure_import_hook(wasi=None)
    for name in set(sys.modules) - before:
        del sys.modules[name]


def test_hook_command_start_is_not_run_at_import(hook_dir, capfd):
    (hook_dir / "wasi_hello_cmd.wasm").write_bytes((PROGRAMS / "hello.wasm").read_bytes())
    module = importlib.import_module("wasi_hello_cmd")
    assert capfd.readouterr().out == ""
    module._start()
    assert capfd.readouterr().out == MESSAGE


def test_hook_command_default_argv_is_the_module_name(hook_dir, capfd, monkeypatch):
    monkeypatch.setenv("WASMPY_TEST_HOST_ONLY", "not for the guest")
    (hook_dir / "wasi_args_cmd.wasm").write_bytes((PROGRAMS / "args_env.wasm").read_bytes())
    module = importlib.import_module("wasi_args_cmd")
    module._start()
    assert capfd.readouterr().out == "arg wasi_args_cmd\n"  # and no environment


def test_hook_command_exit_status(hook_dir, capfd):
    (hook_dir / "wasi_exit_cmd.wasm").write_bytes((PROGRAMS / "exit3.wasm").read_bytes())
    module = importlib.import_module("wasi_exit_cmd")
    with pytest.raises(wasmpy.ExitTrap) as info:
        module._start()
    assert info.value.code == 3
    capfd.readouterr()


def test_hook_with_a_configured_wasi(hook_dir, tmp_path):
    data = make_tree(tmp_path / "data")
    out = io.BytesIO()
    wasmpy.configure_import_hook(wasi=wasmpy.WasiConfig(argv=["files", "/data"], stdout=out,
                                                        preopens=[(str(data), "/data")]))
    (hook_dir / "wasi_files_cmd.wasm").write_bytes((PROGRAMS / "files.wasm").read_bytes())
    module = importlib.import_module("wasi_files_cmd")
    assert out.getvalue() == b""
    module._start()
    assert b"wrote 26 bytes to /data/output.txt" in out.getvalue()
    assert (data / "output.txt").read_text() == "HELLO, FILES!\nSECOND LINE\n"


def test_hook_two_commands_keep_their_own_argv(hook_dir, capfd):
    for name in ("wasi_first_cmd", "wasi_second_cmd"):
        (hook_dir / f"{name}.wasm").write_bytes((PROGRAMS / "args_env.wasm").read_bytes())
    first = importlib.import_module("wasi_first_cmd")
    importlib.import_module("wasi_second_cmd")
    first._start()
    assert capfd.readouterr().out == "arg wasi_first_cmd\n"


REACTOR_WAT = """
(module
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $init_calls (export "init_calls") (mut i32) (i32.const 0))
  (global $argc (export "argc") (mut i32) (i32.const -1))
  ;; records how often it ran and what WASI argv it saw: argv pointers at 16, strings at 256
  (func (export "_initialize")
    (global.set $init_calls (i32.add (global.get $init_calls) (i32.const 1)))
    (drop (call $args_sizes_get (i32.const 0) (i32.const 4)))
    (global.set $argc (i32.load (i32.const 0)))
    (drop (call $args_get (i32.const 16) (i32.const 256))))
  (func (export "double") (param i32) (result i32) (i32.mul (local.get 0) (i32.const 2))))
"""


def test_hook_reactor_initialize_runs_once_at_import(hook_dir):
    (hook_dir / "wasi_reactor.wat").write_text(REACTOR_WAT)
    module = importlib.import_module("wasi_reactor")
    assert module.init_calls.value == 1
    assert module.argc.value == 1
    name = b"wasi_reactor\0"
    assert module.memory.read(256, len(name)) == name  # the default argv: the module name
    assert module.double(21) == 42
    assert importlib.import_module("wasi_reactor") is module  # a second import runs nothing
    assert module.init_calls.value == 1


def test_hook_reactor_reload_initializes_a_fresh_instance(hook_dir):
    (hook_dir / "wasi_reactor_reload.wat").write_text(REACTOR_WAT)
    module = importlib.import_module("wasi_reactor_reload")
    old_global = module.init_calls
    reloaded = importlib.reload(module)
    assert reloaded.init_calls.value == 1
    assert old_global.value == 1


def test_hook_command_start_wat_not_run(hook_dir):
    (hook_dir / "wasi_start_flag.wat").write_text("""
    (module
      (import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
      (memory (export "memory") 1)
      (global (export "started") (mut i32) (i32.const 0))
      (func (export "_start") (global.set 0 (i32.const 1))))
    """)
    module = importlib.import_module("wasi_start_flag")
    assert module.started.value == 0
    module._start()
    assert module.started.value == 1
