"""Typing: wasmpy is a typed package (``py.typed``, and ``_native.pyi`` for its C extension).

- mypy --strict accepts examples/typed/ as a user's code (wasmpy found as an installed package,
  which needs the py.typed marker), and the example runs;
- the public surface has types, not Any: mypy's reveal_type over it;
- the stubs match the built extension (mypy's stubtest);
- the package's own code passes mypy (``mypy wasmpy``);
- host functions take the annotations type checkers accept: int and float, typing.Annotated[int,
  'i32'] (and the other value types), tuple[...] of results, as objects or as text.

The mypy tests skip only if mypy (in the test extra) is not installed.
"""

from __future__ import annotations

import __future__
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Annotated, Optional, Tuple

import pytest

import wasmpy
from wasmpy import Func, FuncType, LinkError, Store, ValType

PACKAGE_DIR = Path(wasmpy.__file__).resolve().parent
TYPED_EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "typed"


# --- the package as type checkers see it


def test_the_package_ships_its_types():
    """The marker and the stubs are beside the modules, wherever wasmpy is installed from."""
    assert (PACKAGE_DIR / "py.typed").is_file()
    assert (PACKAGE_DIR / "_native.pyi").is_file()


@pytest.fixture(scope="module")
def mypy(tmp_path_factory):
    """Runs mypy in a child process on the given arguments, with this wasmpy importable as an
    installed package is (by its directory on the path, not as source files given to mypy)."""
    pytest.importorskip("mypy", reason="mypy is not installed (pip install -e '.[test]')")
    cache = tmp_path_factory.mktemp("mypy-cache")

    def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if k not in ("MYPYPATH", "PYTHONPATH")}
        env["PYTHONPATH"] = str(PACKAGE_DIR.parent)
        return subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(cache), *args], cwd=str(cwd),
                              env=env, capture_output=True, text=True, timeout=600)

    return run


def test_typed_example_passes_mypy_strict(mypy, tmp_path):
    result = mypy("--strict", str(TYPED_EXAMPLE / "tour.py"), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success" in result.stdout


TOUR_OUTPUT = """\
['env.log: func(i32)']
['memory: memory(1..2)', 'add: func(i32, i32) -> i32', 'divmod: func(i32, i32) -> (i32, i32)', 'shout: func(i32)']
add(1, 2) + 1 = 4
divmod(17, 5) = 3 2
wasm says 42
b'hello' 1 131072 131072
cannot grow the memory by 1 page, from 2 to 3: its maximum is 2 pages (memory(1..2))
func(i32) -> i32 42
arith: 5 (3, 2)
TrapCode.OUT_OF_FUEL
exit status 3 3
"""


def test_typed_example_runs():
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(PYTHONPATH=str(PACKAGE_DIR.parent), PYTHONDONTWRITEBYTECODE="1")  # no caches in the checkout
    result = subprocess.run([sys.executable, "tour.py"], cwd=str(TYPED_EXAMPLE), env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout == TOUR_OUTPUT


# Expressions of the public surface (the names are set up in PROBE_SETUP) and a part of the type
# mypy must find for each: none may be Any.
PUBLIC_SURFACE = {
    "memory.read(0, 4)": "bytes",
    "memory.data_size": "int",
    "memory.size": "int",
    "memory.grow(1)": "int",
    "memoryview(memory)": "memoryview",
    "len(memory)": "int",
    "func(1, 2)": "object",
    "func.type": "FuncType",
    "exports['add']": "Func",
    "trap.code": "TrapCode",
    "trap.frames": "Frame",
    "exit_trap.code": "int",
    "exception.tag": "Tag",
    "exception.payload": "object, ...]",
    "module.imports": "ImportType",
    "module.exports": "ExportType",
    "module.serialize()": "bytes",
    "module.engine": "Engine",
    "wasmpy.Module.from_file('m.wat')": "Module",
    "wasmpy.wat2wasm('(module)')": "bytes",
    "wasmpy.__version__": "str",
    "wasmpy.WASMTIME_VERSION": "str",
    "wasmpy.TrapCode.OUT_OF_FUEL": "TrapCode",
    "wasmpy.ValType.parse('i32')": "ValType",
    "store.fuel": "int",
    "store.engine": "Engine",
    "wasmpy.run(module)": "int",
}

PROBE_SETUP = """\
import wasmpy

store = wasmpy.Store()
memory = wasmpy.Memory(store, wasmpy.MemoryType(1))
module = wasmpy.Module("(module)")
exports = wasmpy.Instance(module).exports
func = wasmpy.Func(store, print, wasmpy.FuncType(["i32", "i32"]))
trap = wasmpy.Trap("trapped")
exit_trap = wasmpy.ExitTrap(3)
exception = wasmpy.WasmException(wasmpy.Tag(store, wasmpy.TagType()), ())
"""


def test_public_surface_has_types_not_any(mypy, tmp_path):
    probe = tmp_path / "probe.py"
    expressions = list(PUBLIC_SURFACE)
    probe.write_text(PROBE_SETUP + "".join(f"reveal_type({expression})\n" for expression in expressions))
    first_line = PROBE_SETUP.count("\n") + 1
    result = mypy("--strict", "--show-traceback", str(probe), cwd=tmp_path)
    revealed = {int(line): text for line, text in
                re.findall(r'^.*probe\.py:(\d+): note: Revealed type is "(.*)"$', result.stdout, re.M)}
    assert len(revealed) == len(expressions), result.stdout + result.stderr
    for index, expression in enumerate(expressions):
        found = revealed[first_line + index]
        assert "Any" not in found and PUBLIC_SURFACE[expression] in found, (expression, found)


def test_the_package_passes_mypy(mypy, tmp_path):
    """The package's own code type-checks (it ships py.typed, so users' checkers read it): mypy
    run as ``mypy -p wasmpy`` on the package found on the path, checkout or site-packages alike
    (from a directory of its own: in site-packages, ``mypy wasmpy`` there would also read what
    lies beside the package, such as typing_extensions.py, as sources)."""
    result = mypy("-p", "wasmpy", cwd=tmp_path)
    output = result.stdout + result.stderr
    # 0: no errors, 1: errors; anything else (a crash, a usage error) checked nothing.
    assert result.returncode in (0, 1) and re.search(r"^(Success|Found \d+ errors?)", result.stdout, re.M), output
    errors = [line for line in result.stdout.splitlines() if re.match(r"^[^:]+:\d+: error:", line)]
    assert not errors, "\n".join(errors)


def test_native_stubs_match_the_extension(mypy, tmp_path):
    """stubtest compares wasmpy/_native.pyi with the built module: every class, method and
    function, with its parameters. (It also reports what the extension has and the stub lacks.)"""
    config = tmp_path / "mypy.ini"
    # Only the stubs are checked here (test_the_package_passes_mypy checks the package's sources).
    config.write_text("[mypy]\n[mypy-wasmpy.*]\nignore_errors = True\n[mypy-wasmpy._native]\nignore_errors = False\n")
    allowlist = tmp_path / "allowlist.txt"
    # Python lists the buffer protocol's methods only from 3.12 on; type checkers need them on every version.
    allowlist.write_text("" if sys.version_info >= (3, 12) else
                         "wasmpy._native.MemoryBase.__buffer__\nwasmpy._native.MemoryBase.__release_buffer__\n")
    env = {k: v for k, v in os.environ.items() if k not in ("MYPYPATH", "PYTHONPATH")}
    env["PYTHONPATH"] = str(PACKAGE_DIR.parent)
    result = subprocess.run([sys.executable, "-m", "mypy.stubtest", "wasmpy._native", "--mypy-config-file",
                             str(config), "--allowlist", str(allowlist)], cwd=str(tmp_path), env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr


# --- annotations type checkers accept, on host functions


@pytest.mark.parametrize("annotation, valtype", [
    (Annotated[int, "i32"], ValType.i32),
    (Annotated[int, "i64"], ValType.i64),
    (Annotated[float, "f32"], ValType.f32),
    (Annotated[float, "f64"], ValType.f64),
    (Annotated[int, "v128"], ValType.v128),
    (Annotated[int, ValType.i64], ValType.i64),
    (Annotated[object, "externref"], ValType.externref),
    (Annotated[Optional[Func], "funcref"], ValType.funcref),
    (Annotated[int, "a comment for another tool", "i32"], ValType.i32),
])
def test_annotated_names_the_wasm_type_of_a_func(store, annotation, valtype):
    def host(value):
        return value

    host.__annotations__ = {"value": annotation, "return": annotation}
    assert Func(store, host).type == FuncType([valtype], [valtype])


def _from_text(source: str, name: str):
    """The function ``name`` defined by ``source`` under ``from __future__ import annotations``, whose
    annotations are therefore text."""
    namespace = {"Annotated": Annotated, "Tuple": Tuple, "ValType": ValType, "wasmpy": wasmpy}
    code = compile(textwrap.dedent(source), "<test>", "exec", flags=__future__.annotations.compiler_flag,
                   dont_inherit=True)
    exec(code, namespace)
    return namespace[name]


def test_annotated_as_text(store):
    host = _from_text("""
        import typing
        def host(a: Annotated[int, 'i32'], b: typing.Annotated[float, ValType.f64],
                 c: 'Annotated[int, "i64"]') -> tuple[Annotated[int, 'i32'], Annotated[float, wasmpy.ValType.f32]]:
            return a, b
    """, "host")
    assert Func(store, host).type == FuncType(["i32", "f64", "i64"], ["i32", "f32"])


def test_int_and_float_annotations_are_checked_against_an_import():
    module = wasmpy.Module('(module (import "env" "f" (func (param i32 f64) (result i64 f32))))')

    def fits(a: int, b: float) -> tuple[int, float]:
        return a, b

    def wrong(a: float, b: float) -> tuple[int, float]:
        return int(a), b

    wasmpy.Instance(module, {"env": {"f": fits}})
    with pytest.raises(LinkError, match=r"env\.f is annotated \(float, float\) -> int, float"):
        wasmpy.Instance(module, {"env": {"f": wrong}})


def test_annotated_is_checked_against_an_import():
    module = wasmpy.Module('(module (import "env" "f" (func (param i32) (result i32))))')

    def wide(a: Annotated[int, "i64"]) -> Annotated[int, "i32"]:
        return a

    with pytest.raises(LinkError, match=r"env\.f is annotated \(i64\) -> i32, but the import is declared "
                                        r"func\(i32\) -> i32"):
        wasmpy.Instance(module, {"env": {"f": wide}})
    wide_text = _from_text("def wide(a: Annotated[int, 'i64']) -> Annotated[int, 'i32']:\n    return a\n", "wide")
    with pytest.raises(LinkError, match=r"annotated \(i64\) -> i32"):
        wasmpy.Instance(module, {"env": {"f": wide_text}})


def test_a_tuple_of_results_as_text_and_as_objects(store):
    def pair(a: Annotated[int, "i32"]) -> Tuple[Annotated[int, "i64"], Annotated[float, "f64"]]:
        return a, 0.5

    none = _from_text("def none(a: Annotated[int, 'i32']) -> tuple[()]:\n    return None\n", "none")
    assert Func(store, pair).type == FuncType(["i32"], ["i64", "f64"])
    assert Func(store, pair)(7) == (7, 0.5)
    assert Func(store, none).type == FuncType(["i32"], [])


@pytest.mark.parametrize("annotation, message", [
    (Annotated[float, "i32"], r"names i32, whose values are Python ints: write Annotated\[int, 'i32'\]"),
    (Annotated[int, "f64"], r"names f64, whose values are Python floats"),
    (Annotated[str, "i64"], r"names i64, whose values are Python ints"),
    (Annotated[int, "i32", "i64"], r"names more than one wasm type"),
    ("Annotated[float, 'i32']", r"names i32, whose values are Python ints"),
    (bool, r"annotation bool names no wasm type \(accepted: int, float, typing\.Annotated\[int, 'i32'\]"),
])
def test_an_annotation_that_contradicts_itself_or_names_nothing(store, annotation, message):
    def host(value):
        return None

    host.__annotations__ = {"value": annotation}
    with pytest.raises(TypeError, match=message):
        Func(store, host)
    module = wasmpy.Module('(module (import "env" "f" (func (param i32))))')
    with pytest.raises(LinkError, match=r"^env\.f: "):
        wasmpy.Instance(module, {"env": {"f": host}})


def test_results_of_no_fixed_number_are_refused(store):
    def many(a: Annotated[int, "i32"]) -> tuple[int, ...]:
        return (a,)

    with pytest.raises(TypeError, match=r"no fixed number of results: name each result's type"):
        Func(store, many)


def test_int_alone_leaves_the_width_to_say(store):
    def host(a: int) -> int:
        return a

    with pytest.raises(TypeError, match=r"cannot tell the wasm type of parameter 'a' of .*host: annotate it with "
                                        r"its wasm type, such as Annotated\[int, 'i32'\]"):
        Func(store, host)
    assert Func(store, host, FuncType(["i64"], ["i64"]))(2**40) == 2**40
