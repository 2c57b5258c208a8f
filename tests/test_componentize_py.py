"""A component built by a real toolchain, componentize-py (issue 16 items 4 and 5): the guest
tests/componentize-py/app.py, world ``app`` of tests/componentize-py/wit/world.wit, called from
Python through the import hook, in fresh processes that load its compiled code from the cache.

The component (about 18 MB) is not committed: it is built once into pytest's cache directory
(``.pytest_cache/d/componentize-py/``, beside the checkout's pyproject.toml, so that a second run of
the suite, installed or in place, finds it), under a key made of the sources and componentize-py's
version; its compiled code goes where the hook caches it, ``__pycache__/`` beside it. Without
componentize-py (``pip install -e '.[components]'``) these tests skip. The tests of how wasmpy
hides componentize-py's own ``exports`` interface need no componentize-py: they use WAT.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import os
import pydoc
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import wasmpy
from wasmpy import _hook

from childproc import child_json, describe, run_python
from test_cli import child_env, wasmpy_cli

# Not componentize_py/: tests/ is on sys.path, where that would be a namespace package of its name.
SOURCES = Path(__file__).parent / "componentize-py"
SOURCE_FILES = ("wit/world.wit", "app.py", "api.py")
WORLD = "app"
NAME = "cpy_app"  # the component's file, cpy_app.wasm, and so its module


def _componentize_py_version() -> str | None:
    try:
        return importlib.metadata.version("componentize-py")
    except importlib.metadata.PackageNotFoundError:
        return None


needs_componentize_py = pytest.mark.skipif(
    _componentize_py_version() is None,
    reason="componentize-py is not installed (the components extra: pip install -e '.[components]')")

# test:cpy/host@0.1.0, the interface the guest imports, by the hook's rule: the module test_cpy.host.
HOST_PY = """
import wasmpy

def get_name():
    return "Python host"

def read_sensor(key):
    if key != "temperature":
        raise wasmpy.Err(f"no sensor named {key}")
    return {"label": key, "value": 21.5}
"""


def _key() -> str:
    version = str(_componentize_py_version())
    digest = hashlib.sha256(version.encode())
    for relative in SOURCE_FILES:
        digest.update(b"\0" + relative.encode() + b"\0" + (SOURCES / relative).read_bytes())
    return f"{version}-{digest.hexdigest()[:16]}"


def _cache_root(config: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = getattr(config, "cache", None)  # None when pytest runs with -p no:cacheprovider: build each time
    if cache is not None:
        return Path(cache.mkdir("componentize-py"))
    return tmp_path_factory.mktemp("componentize-py")


def _build(target: Path) -> None:
    """Builds the component into ``target`` unless it is there: from copies of the sources (the
    checkout may be read-only, and componentize-py leaves __pycache__ behind), into a temporary
    file that is then linked into place, so that concurrent runs never see half a component and
    the first one built stays (its compiled code stays valid)."""
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        sources = Path(scratch) / "src"
        for relative in SOURCE_FILES:
            (sources / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(SOURCES / relative, sources / relative)
        built = Path(scratch) / f"{NAME}.wasm"
        # componentize-py's own command line, in a child: it is a native extension of its own.
        command = [sys.executable, "-c", "import sys; from componentize_py import script; sys.exit(script())",
                   "-d", str(sources / "wit"), "-w", WORLD, "componentize", "-p", str(sources), "app",
                   "-o", str(built)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=scratch,
                                env=child_env(PYTHONDONTWRITEBYTECODE="1"))
        assert result.returncode == 0 and built.is_file(), describe(result)
        try:
            os.link(built, target)
        except FileExistsError:  # another run built it meanwhile
            pass


@pytest.fixture(scope="module")
def project(pytestconfig, tmp_path_factory) -> Path:
    """A directory holding cpy_app.wasm, built by componentize-py (or found built), the Python
    module of its import (test_cpy/host.py), and the component's compiled code in the hook's
    cache (filled by ``wasmpy compile``, in a process of its own, if it was not current)."""
    root = _cache_root(pytestconfig, tmp_path_factory)
    directory = root / _key()
    for stale in root.iterdir() if root.is_dir() else ():
        if stale.is_dir() and stale.name != directory.name:  # other sources or another componentize-py
            shutil.rmtree(stale, ignore_errors=True)
    source = directory / f"{NAME}.wasm"
    _build(source)
    host = directory / "test_cpy" / "host.py"
    if not host.is_file() or host.read_text() != HOST_PY:
        host.parent.mkdir(exist_ok=True)
        host.write_text(HOST_PY)
    warming = wasmpy_cli("compile", source, env=child_env(PYTHONDONTWRITEBYTECODE=None), timeout=600)
    assert warming.returncode == 0, describe(warming)
    assert warming.stdout.strip().endswith(".component.cwasm"), warming.stdout
    return directory


# In a fresh child: imports the component with compiling counted, and calls it.
CHILD = """
import dataclasses, json, sys, wasmpy
sys.path.insert(0, {directory!r})
from childproc import count_compiles
compiled = count_compiles()
import cpy_app
api = cpy_app.api
out = {{"compiled": compiled, "cached": cpy_app.__cached__}}

moved = api.move_point(api.Point(x=1, y=2), 10, 20)
out["point"] = [type(moved).__name__, dataclasses.is_dataclass(moved), moved == api.Point(11, 22)]
out["areas"] = [api.area(api.Shape_Circle(2.0)), api.area(api.Shape_Rectangle(api.Point(3, 4))),
                api.area(api.Shape_Empty())]
out["color"] = [api.next_color(api.Color.GREEN).name, api.next_color(api.Color.LIGHT_BLUE).name]
access = api.without_write(api.Access.READ | api.Access.WRITE | api.Access.EXECUTE)
out["access"] = [type(access).__name__, [member.name for member in api.Access if member in access]]
out["parsed"] = api.parse_number("42")
errors = []
for call in (lambda: api.parse_number("forty-two"), lambda: api.require_positive(-3),
             lambda: api.sensor("pressure")):
    try:
        call()
    except wasmpy.Err as error:
        errors.append(error.value)
out["errors"] = errors
out["positive"] = api.require_positive(3)
out["greeting"] = api.greet()  # calls the Python import test:cpy/host#get-name
reading = api.sensor("temperature")  # the import's record comes back through the guest
out["reading"] = [type(reading).__name__, reading.label, reading.value]
with api.Counter(3) as counter, api.Counter(10) as other:
    counter.add(4)
    with api.Counter.merge(counter, other) as merged:
        out["counters"] = [counter.get(), other.get(), merged.get()]
print(json.dumps(out))
"""


@needs_componentize_py
def test_a_fresh_process_with_a_warm_cache_calls_the_component(project):
    """Dataclasses in and out, variants, enums, flags, wasmpy.Err for error results (the guest's
    own, and the Python import's passing through the guest), the Python import, the resource;
    the WASI 0.2 imports come from the hook's safe default; nothing is compiled."""
    result = child_json(run_python(CHILD.format(directory=str(project)), timeout=300))
    source = project / f"{NAME}.wasm"
    assert result == {
        "compiled": [],
        "cached": _hook.cache_path(str(source), wasmpy.Engine.default(), component=True),
        "point": ["Point", True, True],
        "areas": [12.0, 12.0, 0.0],
        "color": ["LIGHT_BLUE", "RED"],
        "access": ["Access", ["READ", "EXECUTE"]],
        "parsed": 42,
        "errors": ["not a number: 'forty-two'", "-3 is not positive", "no sensor named pressure"],
        "positive": None,
        "greeting": "Hello, Python host, from componentize-py!",
        "reading": ["Reading", "TEMPERATURE", 43.0],
        "counters": [7, 10, 17],
    }


LISTING_CHILD = """
import json, pydoc, sys, wasmpy
sys.path.insert(0, {directory!r})
import cpy_app
exports = cpy_app.__wasm_instance__.exports
toolchain = exports["exports"]
print(json.dumps({{"listed": list(exports), "length": len(exports), "dir": [n for n in dir(exports) if "export" in n],
                  "module": [n for n in dir(cpy_app) if not n.startswith("__")],
                  "attribute": hasattr(exports, "exports"), "reachable": list(toolchain),
                  "component": list(cpy_app.__wasm_instance__.component.exports.interfaces),
                  "help": pydoc.render_doc(cpy_app, renderer=pydoc.plaintext)}}))
"""


@needs_componentize_py
def test_componentize_pys_init_interface_is_not_listed(project):
    """What componentize-py exports for itself (``export exports: interface { ... init: func(...) }``,
    which it calls while building; called again it traps) is neither an export the instance lists,
    an attribute, nor in help(); it stays reachable by its name, and the component says it has it."""
    result = child_json(run_python(LISTING_CHILD.format(directory=str(project)), timeout=300))
    assert result["listed"] == ["test:cpy/api@0.1.0"] and result["length"] == 1
    assert result["dir"] == [] and result["module"] == ["api"] and result["attribute"] is False
    assert result["reachable"] == ["init"]
    assert sorted(result["component"]) == ["exports", "test:cpy/api@0.1.0"]
    text = result["help"]
    assert "interface test:cpy/api@0.1.0 {  // cpy_app.api" in text
    assert "init: func(" not in text and "record symbols" not in text
    assert "// not listed: exports, componentize-py's own" in text
    assert "interface test:cpy/host@0.1.0 {  // from module test_cpy.host" in text
    assert "interface wasi:cli/environment@0.2.9 {  // from the store's WASI" in text


# --- componentize-py's init interface, told apart without componentize-py


def toolchain_wat(extra: str = "") -> str:
    """A component exporting ``run`` and an interface ``exports`` with componentize-py's ``init``
    (its ``symbols`` simplified) and, if ``extra`` names one, a function of the user's own."""
    extra_func = (f'(func ${extra} (result u32) (canon lift (core func $i "run")))' if extra else "")
    extra_export = f'(export "{extra}" (func ${extra}))' if extra else ""
    return f"""
(component
  (core module $m
    (memory (export "memory") 1)
    (func (export "realloc") (param i32 i32 i32 i32) (result i32) i32.const 1024)
    (func (export "init") (param i32 i32 i32 i32) (result i32) i32.const 0)
    (func (export "run") (result i32) i32.const 7))
  (core instance $i (instantiate $m))
  (func $init (param "app-name" string) (param "symbols" u32) (param "stub-wasi" bool)
    (result (result (error string)))
    (canon lift (core func $i "init") (memory (core memory $i "memory")) (realloc (core func $i "realloc"))))
  {extra_func}
  (instance $toolchain (export "init" (func $init)) {extra_export})
  (export "exports" (instance $toolchain))
  (func $run (result u32) (canon lift (core func $i "run")))
  (export "run" (func $run)))
"""


def test_the_init_interface_is_hidden_from_an_instance():
    exports = wasmpy.Instance(wasmpy.Component(toolchain_wat())).exports
    assert list(exports) == ["run"] and len(exports) == 1 and exports.run() == 7
    assert "exports" not in dir(exports) and not hasattr(exports, "exports")
    with pytest.raises(AttributeError, match="no export named 'exports'; its exports are: run"):
        exports.exports
    assert "exports" in exports and list(exports["exports"]) == ["init"]
    assert exports["exports"].init("app", 0, False) is None


def test_an_interface_of_the_users_named_exports_is_listed():
    """Only componentize-py's (nothing but its init) is hidden."""
    exports = wasmpy.Instance(wasmpy.Component(toolchain_wat(extra="version"))).exports
    assert list(exports) == ["run", "exports"] and exports.exports.version() == 7


def test_the_hook_leaves_the_init_interface_out_of_the_module_and_its_help(mods):
    name = mods.name("toolchain")
    mods.write(f"{name}.wat", toolchain_wat())
    module = importlib.import_module(name)
    assert [attribute for attribute in dir(module) if not attribute.startswith("__")] == ["run"]
    text = pydoc.render_doc(module, renderer=pydoc.plaintext)
    assert "run: func() -> u32;" in text and "init: func(" not in text
    assert "// not listed: exports, componentize-py's own" in text
