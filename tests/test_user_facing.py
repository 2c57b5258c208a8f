"""What a user meets first: the version, the names of classes, how trap codes print, and the
messages of common mistakes (keyword arguments, a path where a module's source goes, a WAT
syntax error, a memory grown past its maximum)."""

from __future__ import annotations

import copy
import enum
import importlib
import importlib.metadata
import io
import os
import pickle
import subprocess
import sys
import traceback
import typing
from pathlib import Path

import pytest

import wasmpy
from wasmpy import CompileError, LinkError, Module, Store, Trap, TrapCode, WasmError

PACKAGE_ROOT = Path(wasmpy.__file__).resolve().parent.parent


def wasmpy_cli(*args: object, cwd: Path) -> subprocess.CompletedProcess:
    """``python -m wasmpy ARGS`` with this wasmpy importable."""
    env = dict(os.environ, PYTHONPATH=str(PACKAGE_ROOT))
    return subprocess.run([sys.executable, "-m", "wasmpy", *map(str, args)], cwd=str(cwd), env=env,
                          capture_output=True, text=True, timeout=120)


# --- the version


def test_version_is_the_installed_distributions():
    assert wasmpy.__version__ == importlib.metadata.version("wasmpy")


def test_version_of_a_checkout_that_is_not_installed(tmp_path, monkeypatch):
    def not_installed(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    package = tmp_path / "wasmpy"
    package.mkdir()
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "wasmpy"\nversion = "7.8.9"\n')
    assert wasmpy._read_version(str(package)) == "7.8.9"
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "something-else"\nversion = "1.0"\n')
    assert wasmpy._read_version(str(package)) == "0+unknown"
    (tmp_path / "pyproject.toml").unlink()
    assert wasmpy._read_version(str(package)) == "0+unknown"


def test_version_on_the_command_line(tmp_path):
    result = wasmpy_cli("--version", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"wasmpy {wasmpy.__version__} (wasmtime {wasmpy.WASMTIME_VERSION})\n"


def test_version_is_listed_in_help(tmp_path):
    assert "--version" in wasmpy_cli("--help", cwd=tmp_path).stdout


# --- public classes are wasmpy.X


PUBLIC = [name for name in wasmpy.__all__ if callable(getattr(wasmpy, name))]


@pytest.mark.parametrize("name", PUBLIC)
def test_public_names_belong_to_wasmpy(name):
    item = getattr(wasmpy, name)
    assert item.__module__ == "wasmpy"
    if isinstance(item, type):
        if not issubclass(item, enum.Enum):  # enums show as <enum 'ValType'>
            assert repr(item) == f"<class 'wasmpy.{name}'>"
        typing.get_type_hints(item)  # their annotations, text, still resolve


def test_a_traceback_names_wasmpy_linkerror():
    module = Module('(module (import "env" "f" (func)))')
    with pytest.raises(LinkError) as info:
        wasmpy.Instance(module)
    assert traceback.format_exception_only(info.type, info.value)[-1].startswith("wasmpy.LinkError: ")


def _pickled_modules(data: bytes) -> set:
    """The modules a pickle names its classes by (as unpickling it looks them up)."""
    found = set()

    class Recorder(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> object:
            found.add(module)
            return super().find_class(module, name)

    Recorder(io.BytesIO(data)).load()
    return found


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_pickles_name_wasmpy(protocol):
    frame = wasmpy.Frame("m", "f", 1, 2, 3)
    values = [TrapCode.OUT_OF_FUEL, wasmpy.ValType.i64, wasmpy.FuncType(["i32"], ["f64"]),
              wasmpy.MemoryType(1, 2), wasmpy.StoreLimits(memory_size=1 << 20), frame,
              Trap("boom", TrapCode.UNREACHABLE, [frame]), LinkError("missing"), CompileError("bad")]
    for value in values:
        data = pickle.dumps(value, protocol)
        assert {module for module in _pickled_modules(data) if module.startswith("wasmpy")} == {"wasmpy"}, value
        assert b"wasmpy._" not in data, value
        again = pickle.loads(data)
        assert type(again) is type(value)
        assert str(again) == str(value)
    trap = pickle.loads(pickle.dumps(values[6], protocol))
    assert (trap.code, trap.frames, trap.message) == (TrapCode.UNREACHABLE, [frame], "boom")


def test_exit_trap_pickles_as_itself():
    exit = pickle.loads(pickle.dumps(wasmpy.ExitTrap(3)))
    assert (type(exit), exit.code, str(exit), exit.args) == (wasmpy.ExitTrap, 3, "exit status 3", ("exit status 3",))


def test_owners_still_refuse_copies_and_pickles(store):
    memory = wasmpy.Memory(store, wasmpy.MemoryType(1))
    for owner in (store, memory):
        for attempt in (copy.copy, copy.deepcopy, pickle.dumps):
            with pytest.raises(TypeError, match="cannot be (copied|pickled)"):
                attempt(owner)
    module = Module("(module)")
    assert copy.copy(module) is module and copy.deepcopy(module.engine) is module.engine


# --- trap codes print by name


def test_trap_code_prints_by_name():
    code = TrapCode.OUT_OF_FUEL
    assert str(code) == f"{code}" == "%s" % code == "TrapCode.OUT_OF_FUEL"
    assert (code == 11, int(code), f"{code:d}", f"{code:>3}") == (True, 11, "11", " 11")
    assert repr(code) == "<TrapCode.OUT_OF_FUEL: 11>"


def test_a_trap_prints_its_code_by_name(capsys):
    engine = wasmpy.Engine(consume_fuel=True)
    module = Module('(module (func (export "run") (loop $l (br $l))))', engine)
    store = Store(engine, fuel=1000)
    with pytest.raises(Trap) as info:
        wasmpy.Instance(module, store=store).exports["run"]()
    print(info.value.code)
    assert capsys.readouterr().out == "TrapCode.OUT_OF_FUEL\n"


# --- keyword arguments


@pytest.mark.parametrize("signature", ["(param i32 i32) (result i32)", "(param externref i32)"])
def test_keyword_arguments_name_the_function(signature):
    module = Module(f'(module (func (export "add") {signature} unreachable))')
    add = wasmpy.Instance(module).exports["add"]
    for args, keywords in (((1,), {"b": 2}), ((), {"a": 1, "b": 2})):
        with pytest.raises(TypeError) as info:
            add(*args, **keywords)
        message = str(info.value)
        assert message.startswith(f"add() takes no keyword arguments (given: {', '.join(keywords)}): wasm "
                                  "parameters are positional (func("), message
        assert "_call_slow" not in message


def test_keyword_arguments_to_a_host_func(store):
    func = wasmpy.Func(store, lambda a: a, wasmpy.FuncType(["i32"], ["i32"]))
    with pytest.raises(TypeError, match=r"^<lambda>\(\) takes no keyword arguments \(given: a\)"):
        func(a=1)


# --- WAT errors name the file, the line and the column

BAD_WAT = '(module\n  (func (export "f")\n    i32.add2))\n'  # line 3, column 5: no such instruction


def test_a_wat_syntax_error_names_the_file_line_and_column(tmp_path):
    path = tmp_path / "bad.wat"
    path.write_text(BAD_WAT)
    with pytest.raises(CompileError) as info:
        Module.from_file(path)
    lines = str(info.value).splitlines()
    assert lines[0] == f"{path}:3:5: unknown operator or unexpected token"
    assert lines[1].strip() == f"--> {path}:3:5"
    assert "i32.add2" in lines[3]  # the line itself, as wasmtime shows it


def test_a_wat_name_error_names_the_file_line_and_column(tmp_path):
    path = tmp_path / "names.wat"
    path.write_text("(module\n  (func $f (call $nowhere)))\n")
    with pytest.raises(CompileError, match=rf"^{path}:2:18: unknown func: failed to find name `\$nowhere`"):
        Module.from_file(str(path))


def test_an_invalid_binary_still_names_the_file(tmp_path):
    path = tmp_path / "bad.wasm"
    path.write_bytes(b"\0asm\x01\0\0\0\x01\xff")
    with pytest.raises(CompileError, match=rf"^{path}: "):
        Module.from_file(path)


@pytest.mark.parametrize("command", ["run", "inspect", "compile"])
def test_the_command_line_keeps_the_line_and_column(tmp_path, command):
    (tmp_path / "bad.wat").write_text(BAD_WAT)
    result = wasmpy_cli(command, "bad.wat", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == "wasmpy: error: bad.wat:3:5: unknown operator or unexpected token\n"


def test_an_import_error_keeps_the_line_and_column(mods):
    name = mods.name("bad")
    path = mods.wat(name, BAD_WAT)
    with pytest.raises(wasmpy.WasmImportError) as info:
        importlib.import_module(name)
    assert str(info.value).startswith(f"cannot import {name}: {path}:3:5: unknown operator")


# --- a memory grown past what it may be


def test_growing_past_the_maximum_says_what_it_is():
    memory = wasmpy.Instance(Module('(module (memory (export "m") 1 3))')).exports["m"]
    with pytest.raises(WasmError, match=r"^cannot grow the memory by 5 pages, from 1 to 6: its maximum is "
                                        r"3 pages \(memory\(1\.\.3\)\)$"):
        memory.grow(5)
    assert memory.grow(2) == 1
    with pytest.raises(WasmError, match=r"by 1 page, from 3 to 4: its maximum is 3 pages"):
        memory.grow(1)


def test_growing_past_the_store_limits_says_what_they_are():
    store = Store(limits=wasmpy.StoreLimits(memory_size=3 << 16))
    memory = wasmpy.Memory(store, wasmpy.MemoryType(1))
    with pytest.raises(WasmError, match=r"from 1 to 5: the store's limits allow 196608 bytes of linear memory "
                                        r"\(StoreLimits\(memory_size=196608\), which is 3 pages of 65536 bytes\)"):
        memory.grow(4)


def test_growing_past_what_a_memory_can_be():
    memory = wasmpy.Memory(Store(), wasmpy.MemoryType(1))
    with pytest.raises(WasmError, match=r"from 1 to 65537: a 32-bit memory has at most 65536 pages of 65536 bytes"):
        memory.grow(65536)


# --- a path where a module's source goes


def test_a_path_as_wat_text_points_to_from_file():
    with pytest.raises(CompileError, match=r"^'gcd\.wasm' is not WAT text: to compile the file, use "
                                           r"Module\.from_file\('gcd\.wasm'\)$"):
        Module("gcd.wasm")
    with pytest.raises(CompileError, match=r"Module\.from_file\('examples/gcd/gcd\.wat'\)"):
        Module.validate("examples/gcd/gcd.wat")


def test_a_path_without_a_suffix_points_to_from_file_if_it_exists(tmp_path):
    program = tmp_path / "program"
    program.write_bytes(wasmpy.wat2wasm("(module)"))
    with pytest.raises(CompileError, match=r"use Module\.from_file"):
        Module(str(program))
    with pytest.raises(CompileError) as info:
        Module(str(tmp_path / "absent"))  # no such file, no suffix: just WAT that does not parse
    assert "from_file" not in str(info.value)


def test_a_path_as_wasm_bytes_or_a_path_object_points_to_from_file():
    with pytest.raises(CompileError, match=r"^b'gcd\.wasm' is not wasm bytes: to compile the file, use "
                                           r"Module\.from_file\('gcd\.wasm'\)$"):
        Module(b"gcd.wasm")
    with pytest.raises(TypeError, match=r"not a path: to compile the file, use Module\.from_file\(Posix"):
        Module(Path("gcd.wasm"))


def test_wat_that_does_not_parse_is_not_taken_for_a_path():
    with pytest.raises(CompileError) as info:
        Module("(module (func)")
    assert "from_file" not in str(info.value)
