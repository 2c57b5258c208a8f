"""The import hook: ``import name`` loads ``name.wasm`` / ``name.wat`` found on sys.path.

Every test writes its modules into its own temporary directory (the ``mods``
fixture), under module names prefixed with the test's name, and the fixture
puts sys.path, sys.modules and sys.path_importer_cache back afterwards.
Anything that changes interpreter-wide state in a way that is hard to undo
(a fresh ``import wasmpy``, ``python -I``, a crash) runs in a subprocess.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import math
import os
import pkgutil
import pydoc
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
from pathlib import Path

import pytest

import wasmpy
from wasmpy import _hook

PACKAGE_ROOT = str(Path(wasmpy.__file__).resolve().parent.parent)

GCD_WAT = """\
(module
  (func (export "gcd") (param $a i32) (param $b i32) (result i32)
    (local $t i32)
    (block $done
      (loop $again
        (br_if $done (i32.eqz (local.get $b)))
        (local.set $t (i32.rem_u (local.get $a) (local.get $b)))
        (local.set $a (local.get $b))
        (local.set $b (local.get $t))
        (br $again)))
    (local.get $a)))
"""


def const_wat(value: int, export: str = "value") -> str:
    return f'(module (func (export "{export}") (result i32) (i32.const {value})))'


# --- fixtures and helpers


@pytest.fixture
def writing_cache(monkeypatch):
    """Compiled code is cached (the test environment sets PYTHONDONTWRITEBYTECODE=1)."""
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    monkeypatch.setattr(sys, "pycache_prefix", None)


def subprocess_env(**extra: str) -> dict:
    """An environment for a child interpreter that can import this wasmpy and writes caches."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")}
    env["PYTHONPATH"] = os.pathsep.join([PACKAGE_ROOT] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.update(extra)
    return env


def run_python(code: str, *args: str, cwd=None, env=None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args, "-c", textwrap.dedent(code)], cwd=cwd,
                          env=subprocess_env() if env is None else env, capture_output=True, text=True,
                          timeout=timeout)


def engine():
    return wasmpy.hook_store().engine


def import_fresh(name: str):
    sys.modules.pop(name, None)
    importlib.invalidate_caches()
    return importlib.import_module(name)


def assert_loads_from_cache(name: str, monkeypatch) -> object:
    """Imports ``name`` again with compilation made impossible: it must come from a valid cache file."""
    def no_compiling(self, *args, **kwargs):
        raise AssertionError("compiled from source although a valid cache file should exist")

    with monkeypatch.context() as patch:
        patch.setattr(wasmpy.Module, "__init__", no_compiling)
        return import_fresh(name)


# --- 1. the hook is installed by `import wasmpy`; exports are attributes


def test_import_wasm_finds_wasm_file(mods):
    name = mods.name("gcd")
    mods.wasm(name, GCD_WAT)
    module = importlib.import_module(name)
    assert module.gcd(27, 6) == 3
    assert module.gcd(0, 5) == 5
    assert module.__file__ == str(mods.path / f"{name}.wasm")
    assert sys.modules[name] is module


def test_import_wat_file(mods):
    name = mods.name("gcd")
    mods.wat(name, GCD_WAT)
    module = importlib.import_module(name)
    assert module.gcd(27, 6) == 3
    assert module.__file__ == str(mods.path / f"{name}.wat")


def test_import_statement(mods):
    name = mods.name("gcd")
    mods.wasm(name, GCD_WAT)
    namespace: dict = {}
    exec(f"import {name}\nresult = {name}.gcd(27, 6)", namespace)
    assert namespace["result"] == 3


def test_import_submodule_of_package(mods):
    package = mods.name("pkg")
    mods.package(package)
    mods.wasm("mod", GCD_WAT, under=package)
    module = importlib.import_module(f"{package}.mod")
    assert module.gcd(27, 6) == 3
    assert module.__name__ == f"{package}.mod"
    assert module.__package__ == package
    assert getattr(sys.modules[package], "mod") is module


def test_import_submodule_of_namespace_package(mods):
    package = mods.name("ns")
    mods.wat("mod", GCD_WAT, under=package)  # no __init__.py
    module = importlib.import_module(f"{package}.mod")
    assert module.gcd(12, 18) == 6


def test_import_wasmpy_installs_the_hook(tmp_path):
    """In a fresh interpreter: before `import wasmpy` a .wasm is not importable, afterwards it is,
    even from a directory whose finder was cached before."""
    (tmp_path / "fresh_gcd.wasm").write_bytes(wasmpy.wat2wasm(GCD_WAT))
    (tmp_path / "fresh_plain.py").write_text("x = 1\n")
    result = run_python(f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        import fresh_plain  # caches a finder for the directory, made without the hook
        try:
            import fresh_gcd
        except ModuleNotFoundError:
            print("not before")
        import wasmpy
        import fresh_gcd
        print(fresh_gcd.gcd(27, 6))
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["not", "before", "3"]


def test_install_is_idempotent_and_uninstall_works(mods):
    assert _hook._path_hook in sys.path_hooks
    count = sys.path_hooks.count(_hook._path_hook)
    wasmpy.install_import_hook()
    wasmpy.install_import_hook()
    assert sys.path_hooks.count(_hook._path_hook) == count == 1
    # The hook comes before Python's own directory finder, which would otherwise take every directory.
    default_hooks = [i for i, hook in enumerate(sys.path_hooks)
                     if hook is not _hook._path_hook and _hook._is_file_finder_hook(hook)]
    assert all(sys.path_hooks.index(_hook._path_hook) < i for i in default_hooks)

    before, after = mods.name("before"), mods.name("after")
    mods.wat(before, const_wat(1))
    mods.wat(after, const_wat(2))
    loaded = importlib.import_module(before)
    wasmpy.uninstall_import_hook()
    try:
        assert _hook._path_hook not in sys.path_hooks
        with pytest.raises(ModuleNotFoundError):
            importlib.import_module(after)
        assert loaded.value() == 1  # modules already imported stay usable
    finally:
        wasmpy.install_import_hook()
    assert importlib.import_module(after).value() == 2


# --- 2. imports satisfied from importlib.import_module(module_name)


CALLBACK_IMPORTER = """\
(module
  (import "{env}" "callback" (func $cb (param i32 i32) (result i32)))
  (func (export "run") (param i32 i32) (result i32)
    (call $cb (local.get 0) (local.get 1))))
"""


def test_import_from_python_module(mods):
    env, user = mods.name("env"), mods.name("user")
    mods.py(env, """
        calls = []
        def callback(a, b):
            calls.append((a, b))
            return a * 10 + b
    """)
    mods.wat(user, CALLBACK_IMPORTER.format(env=env))
    module = importlib.import_module(user)
    assert module.run(4, 2) == 42
    assert sys.modules[env].calls == [(4, 2)]


def test_import_from_module_literally_named_env(mods):
    """The issue's own names: demo imports env.callback (the fixture forgets `env` afterwards)."""
    if "env" in sys.modules:
        pytest.skip("a module named env is already imported")
    mods.py("env", "def callback(a, b):\n    return a + b\n")
    user = mods.name("demo")
    mods.wat(user, CALLBACK_IMPORTER.format(env="env"))
    try:
        assert importlib.import_module(user).run(40, 2) == 42
    finally:
        sys.modules.pop("env", None)


def test_python_function_takes_type_from_the_import(mods):
    env, user = mods.name("env"), mods.name("user")
    mods.py(env, """
        seen = []
        def mix(a, b, c, d):
            seen.append((type(a), type(b), type(c), type(d)))
            return a + b + c + d
        scale = lambda x: x * 2.5
        class Negate:
            def __call__(self, x):
                return -x
        negate = Negate()
    """)
    mods.wat(user, f"""
        (module
          (import "{env}" "mix" (func $mix (param i32 i64 f32 f64) (result f64)))
          (import "{env}" "scale" (func $scale (param f64) (result f64)))
          (import "{env}" "negate" (func $negate (param i64) (result i64)))
          (func (export "mix") (param i32 i64 f32 f64) (result f64)
            (call $mix (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
          (func (export "scale") (param f64) (result f64) (call $scale (local.get 0)))
          (func (export "negate") (param i64) (result i64) (call $negate (local.get 0))))
    """)
    module = importlib.import_module(user)
    assert module.mix(1, 2, 0.5, 0.25) == 3.75
    assert sys.modules[env].seen == [(int, int, float, float)]
    assert module.scale(2.0) == 5.0
    assert module.negate(2**40) == -(2**40)
    assert [str(i.type) for i in module.__wasm_instance__.module.imports] == [
        "func(i32, i64, f32, f64) -> f64", "func(f64) -> f64", "func(i64) -> i64"]


def test_import_from_package(mods):
    package, user = mods.name("pkg"), mods.name("user")
    mods.package(package, "def callback(a, b):\n    return a - b\n")
    mods.py("sub", "def callback(a, b):\n    return a * b\n", under=package)
    mods.wat(user, CALLBACK_IMPORTER.format(env=package))
    mods.wat(user + "2", CALLBACK_IMPORTER.format(env=f"{package}.sub"))
    assert importlib.import_module(user).run(50, 8) == 42
    assert importlib.import_module(user + "2").run(6, 7) == 42


def test_import_from_extension_module(mods):
    import math

    user = mods.name("user")
    mods.wat(user, """
        (module
          (import "math" "gcd" (func $gcd (param i64 i64) (result i64)))
          (func (export "gcd") (param i64 i64) (result i64) (call $gcd (local.get 0) (local.get 1))))
    """)
    assert importlib.import_module(user).gcd(27, 6) == 3
    # math is an extension module (.so) in most builds, built in in some; both are fine.
    assert math.__spec__.origin is not None


def test_import_from_another_wasm_module(mods):
    lib_name, user = mods.name("lib"), mods.name("user")
    mods.wasm(lib_name, GCD_WAT)
    mods.wat(user, f"""
        (module
          (import "{lib_name}" "gcd" (func $gcd (param i32 i32) (result i32)))
          (func (export "lcm") (param i32 i32) (result i32)
            (i32.div_u (i32.mul (local.get 0) (local.get 1)) (call $gcd (local.get 0) (local.get 1)))))
    """)
    assert importlib.import_module(user).lcm(4, 6) == 12
    assert lib_name in sys.modules


def test_memory_and_table_from_python_module(mods):
    env, user = mods.name("env"), mods.name("user")
    mods.py(env, """
        import wasmpy
        store = wasmpy.hook_store()
        memory = wasmpy.Memory(store, wasmpy.MemoryType(1))
        memory.write(8, (1234).to_bytes(4, "little"))
        def seven():
            return 7
        table = wasmpy.Table(store, wasmpy.TableType("funcref", 1),
                             wasmpy.Func(store, seven, wasmpy.FuncType([], ["i32"])))
    """)
    mods.wat(user, f"""
        (module
          (import "{env}" "memory" (memory 1))
          (import "{env}" "table" (table 1 funcref))
          (type $t (func (result i32)))
          (func (export "load") (param i32) (result i32) (i32.load (local.get 0)))
          (func (export "call0") (result i32) (call_indirect (type $t) (i32.const 0))))
    """)
    module = importlib.import_module(user)
    assert module.load(8) == 1234
    assert module.call0() == 7


@pytest.mark.parametrize("annotations", [
    "a: 'i32', b: 'i32') -> 'i32'",
    "a: wasmpy.ValType.i32, b: wasmpy.ValType.i32) -> wasmpy.ValType.i32",
    "a: int, b: int) -> int",
    "a, b: int) -> 'i32'",
    "a: 'i32', b)",
], ids=["strings", "valtype", "int", "partial", "no-return"])
def test_matching_annotations_are_accepted(mods, annotations):
    env, user = mods.name("env"), mods.name("user")
    mods.py(env, f"import wasmpy\n\ndef callback({annotations}:\n    return a + b\n")
    mods.wat(user, CALLBACK_IMPORTER.format(env=env))
    assert importlib.import_module(user).run(40, 2) == 42


@pytest.mark.parametrize("declared, annotations", [
    ("i64 f32) (result f64", "a: 'i64', b: 'f32') -> 'f64'"),
    ("i64 f32) (result f64", "a: int, b: float) -> float"),
    ("i64 f32) (result f64", "a: wasmpy.ValType.i64, b: wasmpy.ValType.f32) -> wasmpy.ValType.f64"),
    ("f64) (result i32", "a: float) -> int"),
], ids=["strings", "int-float", "valtype", "float-int"])
def test_annotations_of_each_kind_are_checked_ok(mods, declared, annotations):
    env, user = mods.name("env"), mods.name("user")
    mods.py(env, f"import wasmpy\n\ndef callback({annotations}:\n    return 1\n")
    mods.wat(user, f'(module (import "{env}" "callback" (func (param {declared}))))')
    assert importlib.import_module(user).__wasm_instance__ is not None


@pytest.mark.parametrize("annotations, shown", [
    ("a: 'i64', b: 'i32') -> 'i32'", "i64"),
    ("a: float, b: int) -> int", "float"),
    ("a: wasmpy.ValType.f32, b: 'i32') -> 'i32'", "f32"),
    ("a: 'i32', b: 'i32') -> 'f64'", "f64"),
    ("a: 'i32', b: 'i32') -> None", "->"),
], ids=["i64-param", "float-param", "valtype-param", "result", "no-result"])
def test_mismatched_annotation_is_an_import_error(mods, annotations, shown):
    env, user = mods.name("env"), mods.name("user")
    mods.py(env, f"import wasmpy\n\ndef callback({annotations}:\n    return a + b\n")
    mods.wat(user, CALLBACK_IMPORTER.format(env=env))
    with pytest.raises(ImportError) as excinfo:
        importlib.import_module(user)
    message = str(excinfo.value)
    assert isinstance(excinfo.value, wasmpy.LinkError)
    assert f"{env}.callback" in message
    assert "func(i32, i32) -> i32" in message  # the declared type
    assert shown in message  # the annotated one
    assert user not in sys.modules


def test_wrong_parameter_count_is_an_import_error(mods):
    env, user = mods.name("env"), mods.name("user")
    mods.py(env, "def callback(a: 'i32') -> 'i32':\n    return a\n")
    mods.wat(user, CALLBACK_IMPORTER.format(env=env))
    with pytest.raises(wasmpy.LinkError, match=re.escape(f"{env}.callback")):
        importlib.import_module(user)


def test_string_annotations_under_future_import(mods):
    env, user = mods.name("env"), mods.name("user")
    mods.py(env, """
        from __future__ import annotations
        from wasmpy import ValType
        def callback(a: int, b: ValType.i32) -> 'i32':
            return a + b
    """)
    mods.wat(user, CALLBACK_IMPORTER.format(env=env))
    assert importlib.import_module(user).run(40, 2) == 42


def test_string_annotation_mismatch_under_future_import(mods):
    env, user = mods.name("env"), mods.name("user")
    mods.py(env, """
        from __future__ import annotations
        def callback(a: float, b: 'i32') -> 'i32':
            return 0
    """)
    mods.wat(user, CALLBACK_IMPORTER.format(env=env))
    with pytest.raises(ImportError, match=re.escape(f"{env}.callback")):
        importlib.import_module(user)


def test_module_qualified_valtype_annotation_under_future_import(mods):
    env, user = mods.name("env"), mods.name("user")
    mods.py(env, """
        from __future__ import annotations
        import wasmpy
        def callback(a: wasmpy.ValType.i32, b: wasmpy.ValType.i32) -> wasmpy.ValType.i32:
            return a + b
    """)
    mods.wat(user, CALLBACK_IMPORTER.format(env=env))
    assert importlib.import_module(user).run(40, 2) == 42


def test_exception_in_python_import_reaches_caller(mods):
    env, user = mods.name("env"), mods.name("user")
    mods.py(env, """
        class Boom(Exception):
            pass
        def callback(a, b):
            raise Boom(a, b)
    """)
    mods.wat(user, CALLBACK_IMPORTER.format(env=env))
    module = importlib.import_module(user)
    with pytest.raises(sys.modules[env].Boom) as excinfo:
        module.run(1, 2)
    assert excinfo.value.args == (1, 2)


# --- 3. the circular example: demo imports env.callback, env imports demo


def test_circular_import_python_reads_wasm_memory(mods):
    demo, env = mods.name("demo"), mods.name("env")
    mods.wat(demo, f"""
        (module
          (import "{env}" "callback" (func $cb (param i32 i32) (result i32)))
          (memory (export "memory") 1)
          (data (i32.const 16) "Hello, world!")
          (func (export "test") (result i32)
            (call $cb (i32.const 16) (i32.const 13))))
    """)
    mods.py(env, f"""
        import {demo}

        messages = []

        def callback(msg_p: 'i32', msg_len: 'i32') -> 'i32':
            mv = memoryview({demo}.memory)
            messages.append(bytes(mv[msg_p:msg_p + msg_len]).decode('utf-8'))
            return 42
    """)
    module = importlib.import_module(demo)
    assert module.test() == 42
    assert sys.modules[env].messages == ["Hello, world!"]
    assert getattr(sys.modules[env], demo) is module


def test_circular_import_with_rust_built_demo_wasm(mods):
    """The guide's own demo.wasm (compiled from Rust), with env.py under a per-test name."""
    demo_wasm = Path(__file__).resolve().parent.parent / "examples" / "import" / "demo.wasm"
    if not demo_wasm.exists():
        pytest.skip("examples/import/demo.wasm is not there")
    data = demo_wasm.read_bytes()
    imports = [(i.module, i.name) for i in wasmpy.Module(data).imports]
    assert imports == [("env", "callback")]
    if "env" in sys.modules:
        pytest.skip("a module named env is already imported")
    demo = mods.name("demo")
    mods.write(f"{demo}.wasm", data)
    mods.py("env", f"""
        import {demo} as demo
        messages = []
        def callback(msg_p: 'i32', msg_len: 'i32') -> 'i32':
            mv = memoryview(demo.memory)
            messages.append(bytes(mv[msg_p:(msg_p + msg_len)]).decode('utf-8'))
            return 42
    """)
    try:
        module = importlib.import_module(demo)
        module.test()
        assert sys.modules["env"].messages == ["Hello, world!"]
    finally:
        sys.modules.pop("env", None)


# --- 4. wasm-to-wasm linking: the exporter's own objects, one store


def _one_two(mods):
    one, two = mods.name("one"), mods.name("two")
    mods.wat(one, """
        (module
          (memory (export "memory") 1)
          (data (i32.const 100) "\\2a\\00\\00\\00")
          (table (export "table") 2 funcref)
          (func $seven (result i32) (i32.const 7))
          (elem (i32.const 1) $seven)
          (func (export "bar") (result i32) (i32.const 100)))
    """)
    mods.wat(two, f"""
        (module
          (import "{one}" "bar" (func $bar (result i32)))
          (import "{one}" "memory" (memory 0))
          (import "{one}" "table" (table 1 funcref))
          (type $t (func (result i32)))
          (func (export "ask") (result i32) (i32.load (call $bar)))
          (func (export "store") (param i32 i32) (i32.store (local.get 0) (local.get 1)))
          (func (export "call") (param i32) (result i32) (call_indirect (type $t) (local.get 0))))
    """)
    return one, two


def test_wasm_to_wasm_exports_are_handed_over(mods):
    one_name, two_name = _one_two(mods)
    two = importlib.import_module(two_name)
    one = sys.modules[one_name]
    assert two.ask() == 42
    # The very objects `one` exports: `two` joins the store of `one` (wasm links only within a store).
    handed = two.__wasm_instance__._imports
    assert handed[0] is one.bar
    assert handed[1] is one.memory
    assert handed[2] is one.table
    store = one.__wasm_instance__.store
    assert isinstance(store, wasmpy.Store)
    assert two.__wasm_instance__.store is store
    for item in (one.bar, one.memory, one.table, two.ask):
        assert item.store is store
    # Shared, not copied: writes through one side are seen from the other.
    memoryview(one.memory)[100:104] = (7).to_bytes(4, "little")
    assert two.ask() == 7
    two.store(200, 99)
    assert one.memory.read(200, 4) == (99).to_bytes(4, "little")
    assert two.call(1) == 7
    one.table[0] = one.bar
    assert two.call(0) == 100


GLOBAL_CASES = {
    "wasm": ("""
        (module (global (export "g") (mut i32) (i32.const 9)))
    """, '(import "{one}" "g" (global $g (mut i32)))'),
    "python-number": ("""
        g = 9
    """, '(import "{one}" "g" (global $g i32))'),
}


@pytest.mark.parametrize("case", sorted(GLOBAL_CASES))
def test_global_import_is_linked(tmp_path, case):
    exporter, importer_decl = GLOBAL_CASES[case]
    if case == "wasm":
        (tmp_path / "glob_one.wat").write_text(textwrap.dedent(exporter))
    else:
        (tmp_path / "glob_one.py").write_text(textwrap.dedent(exporter))
    (tmp_path / "glob_two.wat").write_text(
        f'(module {importer_decl.format(one="glob_one")} (func (export "get") (result i32) global.get $g))')
    result = run_python(f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        import wasmpy, glob_two, glob_one
        print(glob_two.get())
        if isinstance(glob_one.g, wasmpy.Global):
            assert glob_two.__wasm_instance__._imports[0] is glob_one.g
            glob_one.g.value = 11
            print(glob_two.get())
    """)
    assert result.returncode == 0, f"exit status {result.returncode}\n{result.stderr[-2000:]}"
    assert result.stdout.split()[0] == "9"


def test_exported_global_is_a_wasmpy_global(mods):
    name = mods.name("glob")
    mods.wat(name, '(module (global (export "g") (mut i64) (i64.const -5)) (global (export "c") f64 (f64.const 1.5)))')
    module = importlib.import_module(name)
    assert isinstance(module.g, wasmpy.Global)
    assert module.g.value == -5
    module.g.value = 6
    assert module.g.value == 6
    assert isinstance(module.c, wasmpy.Global) and module.c.value == 1.5
    assert str(module.g.type) == "global(mut i64)"


def test_threads_calling_hook_exports_are_serialised(mods):
    counter, env, user = mods.name("counter"), mods.name("env"), mods.name("user")
    mods.wat(counter, """
        (module
          (memory (export "memory") 1)
          ;; a non-atomic read-modify-write loop: lost updates if two threads ran it at once
          (func (export "bump") (param $n i32)
            (block $done
              (loop $again
                (br_if $done (i32.eqz (local.get $n)))
                (i32.store (i32.const 0) (i32.add (i32.load (i32.const 0)) (i32.const 1)))
                (local.set $n (i32.sub (local.get $n) (i32.const 1)))
                (br $again))))
          (func (export "count") (result i32) (i32.load (i32.const 0))))
    """)
    mods.py(env, "def triple(x):\n    return 3 * x\n")
    mods.wasm(mods.name("gcd"), GCD_WAT)
    mods.wat(user, f"""
        (module
          (import "{env}" "triple" (func $triple (param i64) (result i64)))
          (func (export "triple_plus") (param i64 i64) (result i64)
            (i64.add (call $triple (local.get 0)) (local.get 1))))
    """)
    bump = importlib.import_module(counter)
    gcd = importlib.import_module(mods.name("gcd")).gcd
    triple_plus = importlib.import_module(user).triple_plus

    threads_count, rounds, per_call = 8, 50, 20000
    barrier = threading.Barrier(threads_count)
    errors = []

    def work(seed: int) -> None:
        try:
            barrier.wait()
            for i in range(rounds):
                bump.bump(per_call)
                a, b = (seed + 1) * 6 * (i + 1), (seed + 1) * 4
                if gcd(a, b) != math.gcd(a, b):
                    errors.append(("gcd", seed, i))
                if triple_plus(seed + i, seed) != 3 * (seed + i) + seed:
                    errors.append(("triple_plus", seed, i))
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert bump.count() == threads_count * rounds * per_call


def test_threads_importing_concurrently(mods):
    names = [mods.name(f"m{i}") for i in range(6)]
    for i, name in enumerate(names):
        mods.wat(name, const_wat(i))
    shared = mods.name("shared")
    mods.wat(shared, GCD_WAT)
    results, errors = {}, []
    barrier = threading.Barrier(len(names))

    def work(i: int) -> None:
        try:
            barrier.wait()
            results[i] = (importlib.import_module(names[i]).value(), importlib.import_module(shared).gcd(27, 6))
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(names))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert results == {i: (i, 3) for i in range(len(names))}


# --- 5. exports are wasmpy objects; help() and dir() show them with their types


ALL_KINDS_WAT = GCD_WAT.rstrip()[:-1] + """
  (memory (export "memory") 2 3)
  (global (export "counter") (mut i32) (i32.const 5))
  (table (export "table") 4 funcref))
"""


def test_exports_are_wasmpy_objects(mods):
    name = mods.name("kinds")
    mods.wat(name, ALL_KINDS_WAT)
    module = importlib.import_module(name)
    assert isinstance(module.gcd, wasmpy.Func)
    assert isinstance(module.memory, wasmpy.Memory)
    assert isinstance(module.counter, wasmpy.Global)
    assert isinstance(module.table, wasmpy.Table)
    view = memoryview(module.memory)
    assert len(view) == 2 * 65536
    view[10:15] = b"hello"
    assert module.memory.read(10, 5) == b"hello"
    assert module.table.size == 4
    assert module.counter.value == 5
    assert isinstance(module.__wasm_instance__, wasmpy.Instance)


def test_dir_and_help_show_exports_with_types(mods, monkeypatch):
    name = mods.name("kinds")
    mods.wat(name, ALL_KINDS_WAT)
    module = importlib.import_module(name)
    assert {"gcd", "memory", "counter", "table"} <= set(dir(module))

    for text in (pydoc.render_doc(module), pydoc.render_doc(module, renderer=pydoc.plaintext)):
        assert "gcd: func(i32, i32) -> i32" in text
        assert "memory: memory(2" in text
        assert "counter: global(mut i32)" in text
        assert "table: table(4" in text

    shown = []
    monkeypatch.setattr(pydoc, "pager", lambda text, *title: shown.append(text))
    help(module)
    assert any("gcd: func(i32, i32) -> i32" in page for page in shown)


def test_pkgutil_lists_wasm_modules_beside_python_ones(mods):
    wasm, wat, both, python = (mods.name(base) for base in ("binary", "text", "both", "python"))
    mods.wasm(wasm, TRIPLE_WAT)
    mods.wat(wat, TRIPLE_WAT)
    mods.wat(both, TRIPLE_WAT)
    mods.py(both, "")
    mods.py(python, "")
    mods.write("not-an-identifier.wasm", wasmpy.wat2wasm(TRIPLE_WAT))
    pkg = mods.package(mods.name("pkg"))
    mods.wat("inner", TRIPLE_WAT, under=pkg.name)
    found = list(pkgutil.iter_modules([str(mods.path)]))
    names = [info.name for info in found]
    assert sorted(names) == sorted([wasm, wat, both, python, pkg.name])
    assert {info.name: info.ispkg for info in found}[pkg.name] is True
    assert [info.name for info in pkgutil.iter_modules([str(pkg)])] == ["inner"]
    assert f"{pkg.name}.inner" in [info.name for info in pkgutil.walk_packages([str(mods.path)])]


def test_doc_lists_imports(mods):
    env, user = mods.name("env"), mods.name("user")
    mods.py(env, "def callback(a, b):\n    return 0\n")
    mods.wat(user, CALLBACK_IMPORTER.format(env=env))
    module = importlib.import_module(user)
    doc = pydoc.render_doc(module, renderer=pydoc.plaintext)
    assert "run: func(i32, i32) -> i32" in doc
    assert f"{env}.callback: func(i32, i32) -> i32" in doc


# --- 7. the compiled-code cache


TRIPLE_WAT = '(module (func (export "f") (param i32) (result i32) (i32.mul (local.get 0) (i32.const 3))))'


def _cached_module(mods, writing_cache):
    name = mods.name("cached")
    source = mods.wasm(name, TRIPLE_WAT)
    module = importlib.import_module(name)
    assert module.f(14) == 42
    return name, source, Path(_hook.cache_path(str(source), engine()))


def _sidecar(cache: Path) -> Path:
    return Path(f"{cache}.meta")


def _assert_valid_cache(cache: Path, source: Path) -> None:
    """The artifact is wasmtime's format (loadable on its own), and its sidecar proves it current."""
    wasmpy.Module.deserialize(cache.read_bytes(), engine())
    sidecar = _sidecar(cache).read_bytes()
    assert sidecar.startswith(_hook._SIDECAR_MAGIC) and len(sidecar) < 1024
    record = json.loads(sidecar[len(_hook._SIDECAR_MAGIC):])
    assert record == {"engine": _hook._cache_tag(engine()), "wasmtime": wasmpy.WASMTIME_VERSION,
                      **_hook._source_proof(source.stat(), source.read_bytes()),
                      **_hook._artifact_identity(cache.stat())}


def test_cache_written_to_pycache_next_to_source(mods, writing_cache, monkeypatch):
    name, source, cache = _cached_module(mods, writing_cache)
    assert cache.parent == source.parent / "__pycache__"
    assert cache.name.startswith(f"{name}.wasm.")
    assert cache.exists()
    _assert_valid_cache(cache, source)
    assert sorted(p.name for p in cache.parent.iterdir()) == [cache.name, _sidecar(cache).name]  # no temporaries
    assert assert_loads_from_cache(name, monkeypatch).f(5) == 15


def test_module_cached_names_the_cache_file(mods, writing_cache):
    name, source, cache = _cached_module(mods, writing_cache)
    module = sys.modules[name]
    assert module.__cached__ == module.__spec__.cached == str(cache)
    assert cache.exists()


def test_cache_is_used_in_a_new_process(tmp_path):
    (tmp_path / "proc_cached.wat").write_text(GCD_WAT)
    code = f"""
        import sys, wasmpy
        sys.path.insert(0, {str(tmp_path)!r})
        compiled = []
        original = wasmpy.Module.__init__
        def spy(self, *args, **kwargs):
            compiled.append(1)
            original(self, *args, **kwargs)
        wasmpy.Module.__init__ = spy
        import proc_cached
        print(proc_cached.gcd(27, 6), len(compiled))
    """
    first, second = run_python(code), run_python(code)
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert first.stdout.split() == ["3", "1"]
    assert second.stdout.split() == ["3", "0"]


def test_cache_path_depends_on_engine_config(tmp_path):
    source = str(tmp_path / "x.wasm")
    default = wasmpy.Engine()
    same_config = wasmpy.Engine()
    fuel = wasmpy.Engine(consume_fuel=True)
    other = wasmpy.Engine(cranelift_opt_level="none")
    paths = {_hook.cache_path(source, e) for e in (default, fuel, other)}
    assert len(paths) == 3
    assert _hook.cache_path(source, default) == _hook.cache_path(source, same_config)
    assert _hook.cache_path(source, engine()) == _hook.cache_path(source, default)
    for path in paths:
        assert Path(path).parent == tmp_path / "__pycache__"


def test_cache_path_of_a_new_engine_at_a_recycled_address(tmp_path):
    source = str(tmp_path / "x.wasm")
    default_path = _hook.cache_path(source, wasmpy.Engine())
    fuel_path = _hook.cache_path(source, wasmpy.Engine(consume_fuel=True))
    assert default_path != fuel_path
    # Engines come and go; a freed engine's address is reused for the next one made.
    reused = 0
    for _ in range(50):
        default_engine = wasmpy.Engine()
        assert _hook.cache_path(source, default_engine) == default_path
        address = id(default_engine)
        del default_engine
        fuel_engine = wasmpy.Engine(consume_fuel=True)
        reused += id(fuel_engine) == address
        assert _hook.cache_path(source, fuel_engine) == fuel_path
        del fuel_engine
    assert reused, "no Engine reused a freed address: the test did not test what it is for"


def test_dont_write_bytecode_writes_no_cache(mods, monkeypatch):
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    monkeypatch.setattr(sys, "pycache_prefix", None)
    name = mods.name("nocache")
    source = mods.wasm(name, TRIPLE_WAT)
    assert importlib.import_module(name).f(2) == 6
    assert not Path(_hook.cache_path(str(source), engine())).exists()
    assert not (mods.path / "__pycache__").exists()


def test_dont_write_bytecode_in_a_new_process(tmp_path):
    (tmp_path / "envcache.wat").write_text(GCD_WAT)
    code = f"""
        import sys, wasmpy
        sys.path.insert(0, {str(tmp_path)!r})
        import envcache
        print(envcache.gcd(27, 6))
    """
    result = run_python(code, env=subprocess_env(PYTHONDONTWRITEBYTECODE="1"))
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "__pycache__").exists()
    result = run_python(code, "-B")
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "__pycache__").exists()
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert list((tmp_path / "__pycache__").glob("envcache.wat.*"))


def test_pycache_prefix(mods, tmp_path, monkeypatch):
    prefix = tmp_path / "prefix"
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    monkeypatch.setattr(sys, "pycache_prefix", str(prefix))
    name = mods.name("prefixed")
    source = mods.wasm(name, TRIPLE_WAT)
    assert importlib.import_module(name).f(3) == 9
    cache = Path(_hook.cache_path(str(source), engine()))
    expected_dir = prefix / str(mods.path.resolve()).lstrip(os.sep)
    assert cache.parent == expected_dir
    assert cache.exists()
    assert not (mods.path / "__pycache__").exists()
    _assert_valid_cache(cache, source)
    assert assert_loads_from_cache(name, monkeypatch).f(4) == 12


def test_read_only_directory_means_no_cache():
    """In a child that cannot write the directory: as root (who writes anywhere), it first becomes nobody."""
    # Not under tmp_path, which only its owner may enter.
    directory = Path(tempfile.mkdtemp(prefix="wasmpy-readonly-"))
    try:
        (directory / "readonly_mod.wasm").write_bytes(wasmpy.wat2wasm(TRIPLE_WAT))
        directory.chmod(0o555)
        result = run_python(f"""
            import os, sys, wasmpy
            from wasmpy import _hook
            sys.path.insert(0, {str(directory)!r})
            if os.geteuid() == 0:
                os.setgid(65534)
                os.setuid(65534)
            assert not os.access({str(directory)!r}, os.W_OK)
            import readonly_mod
            print(readonly_mod.f(1), os.path.exists(_hook.cache_path(readonly_mod.__file__, wasmpy.Engine.default())))
        """)
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == ["3", "False"]
        assert sorted(os.listdir(directory)) == ["readonly_mod.wasm"]
    finally:
        directory.chmod(0o755)
        shutil.rmtree(directory)


@pytest.mark.parametrize("how", ["prefix-under-a-file", "pycache-is-a-file", "cache-is-a-directory"])
def test_unwritable_cache_location_means_no_cache(mods, tmp_path, monkeypatch, how):
    """Works as root too: cache locations that cannot be written whatever the permissions."""
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    monkeypatch.setattr(sys, "pycache_prefix", None)
    name = mods.name("unwritable")
    source = mods.wasm(name, TRIPLE_WAT)
    if how == "prefix-under-a-file":
        blocker = tmp_path / "not-a-directory"
        blocker.write_text("")
        monkeypatch.setattr(sys, "pycache_prefix", str(blocker / "prefix"))
    elif how == "pycache-is-a-file":
        (mods.path / "__pycache__").write_text("")
    cache = Path(_hook.cache_path(str(source), engine()))
    if how == "cache-is-a-directory":
        cache.mkdir(parents=True)
    assert importlib.import_module(name).f(7) == 21
    assert import_fresh(name).f(8) == 24  # and again, with the unusable location still there
    if how == "prefix-under-a-file":
        assert not cache.exists() and blocker.read_text() == ""
    elif how == "pycache-is-a-file":
        assert (mods.path / "__pycache__").is_file()
    else:
        assert cache.is_dir()
    leftovers = [p for p in tmp_path.rglob("*.tmp")]
    assert leftovers == []


def test_stale_cache_is_rebuilt(mods, writing_cache, monkeypatch):
    name, source, cache = _cached_module(mods, writing_cache)
    old = cache.read_bytes()
    source.write_bytes(wasmpy.wat2wasm(TRIPLE_WAT.replace("i32.const 3", "i32.const 5")))
    module = importlib.reload(sys.modules[name])
    assert module.f(2) == 10
    assert cache.read_bytes() != old
    _assert_valid_cache(cache, source)
    assert assert_loads_from_cache(name, monkeypatch).f(3) == 15


def test_stale_cache_same_size_and_mtime_is_rebuilt(mods, writing_cache, monkeypatch):
    """Size and mtime are checked first, as for .pyc files, but the source's digest decides when
    they differ; the same size and mtime with other contents is what no cache (a .pyc neither)
    detects without reading the source, so this one is a mismatch of the mtime alone."""
    name, source, cache = _cached_module(mods, writing_cache)
    stat_before = source.stat()
    new = wasmpy.wat2wasm(TRIPLE_WAT.replace("i32.const 3", "i32.const 4"))
    assert len(new) == stat_before.st_size
    source.write_bytes(new)
    os.utime(source, ns=(stat_before.st_atime_ns, stat_before.st_mtime_ns + 1))
    assert import_fresh(name).f(2) == 8
    _assert_valid_cache(cache, source)


def test_touched_source_loads_from_the_cache(mods, writing_cache, monkeypatch):
    """A source whose mtime changed but not its contents (a fresh checkout) is hashed once, found
    current, and not compiled again."""
    name, source, cache = _cached_module(mods, writing_cache)
    os.utime(source, ns=(source.stat().st_atime_ns, source.stat().st_mtime_ns + 10**9))
    assert assert_loads_from_cache(name, monkeypatch).f(5) == 15


def test_warm_import_reads_neither_the_artifact_nor_the_source(mods, writing_cache, monkeypatch):
    """What a warm import reads: the sidecar, and the artifact only through wasmtime's mapping."""
    name, source, cache = _cached_module(mods, writing_cache)
    read = []
    original_read = os.read

    def counting_read(fd, size):
        data = original_read(fd, size)
        read.append(len(data))
        return data
    monkeypatch.setattr(os, "read", counting_read)
    monkeypatch.setattr(hashlib, "sha256", lambda *args: pytest.fail("hashed something on a warm import"))
    assert assert_loads_from_cache(name, monkeypatch).f(5) == 15
    assert sum(read) == _sidecar(cache).stat().st_size


def _bit_flip(data: bytes, position: int) -> bytes:
    flipped = bytearray(data)
    flipped[position % len(flipped)] ^= 0x10
    return bytes(flipped)


# Damage to the artifact, written into it in place (the sidecar then names another mtime and ctime).
CORRUPTIONS = {
    "empty": lambda data: b"",
    "truncated-in-header": lambda data: data[:20],
    "truncated-half": lambda data: data[:len(data) // 2],
    "truncated-last-byte": lambda data: data[:-1],
    "foreign-random": lambda data: os.urandom(len(data)),
    "foreign-text": lambda data: b"this is not a cache file\n" * 10,
    "trailing-garbage": lambda data: data + b"\0garbage",
    "bit-flip-magic": lambda data: _bit_flip(data, 3),
    "bit-flip-elf-header": lambda data: _bit_flip(data, 0x28),
    "bit-flip-middle": lambda data: _bit_flip(data, len(data) // 2),
    "bit-flip-last": lambda data: _bit_flip(data, len(data) - 1),
}
# Damage to the sidecar.
SIDECAR_CORRUPTIONS = {
    "absent": None,
    "empty": lambda data: b"",
    "truncated": lambda data: data[:len(data) // 2],
    "bit-flip-magic": lambda data: _bit_flip(data, 3),
    "not-json": lambda data: _hook._SIDECAR_MAGIC + b"{not json",
    "not-an-object": lambda data: _hook._SIDECAR_MAGIC + b"[1, 2]",
    "not-utf-8": lambda data: _hook._SIDECAR_MAGIC + b"\xff\xfe",
    "too-long": lambda data: data + b" " * 5000,
    "other-wasmtime": lambda data: data.replace(wasmpy.WASMTIME_VERSION.encode(), b"0.0.1"),
    "other-engine": lambda data: data.replace(b'"engine": "wasmtime-', b'"engine": "wasmtime-0'),
    "other-artifact": lambda data: data.replace(b'"artifact_inode": ', b'"artifact_inode": 1'),
    "other-source": lambda data: data.replace(b'"source_size": ', b'"source_size": 1'),
}


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_bad_cache_file_is_rebuilt(mods, writing_cache, monkeypatch, corruption):
    name, source, cache = _cached_module(mods, writing_cache)
    good = cache.read_bytes()
    cache.write_bytes(CORRUPTIONS[corruption](good))
    module = import_fresh(name)
    assert module.f(10) == 30
    _assert_valid_cache(cache, source)
    assert cache.read_bytes() == good  # rewritten valid
    assert assert_loads_from_cache(name, monkeypatch).f(11) == 33


@pytest.mark.parametrize("corruption", list(SIDECAR_CORRUPTIONS))
def test_bad_sidecar_is_rebuilt(mods, writing_cache, monkeypatch, corruption):
    name, source, cache = _cached_module(mods, writing_cache)
    sidecar = _sidecar(cache)
    damage = SIDECAR_CORRUPTIONS[corruption]
    if damage is None:
        sidecar.unlink()
    else:
        damaged = damage(sidecar.read_bytes())
        assert damaged != sidecar.read_bytes()
        sidecar.write_bytes(damaged)
    assert import_fresh(name).f(10) == 30
    _assert_valid_cache(cache, source)
    assert assert_loads_from_cache(name, monkeypatch).f(11) == 33


def test_cache_from_another_engine_config_is_rebuilt(mods, writing_cache, monkeypatch):
    """An artifact whose sidecar proves it current, but whose machine code was made for other engine
    settings (as if the engine key collided): wasmtime refuses it, and the hook compiles."""
    name, source, cache = _cached_module(mods, writing_cache)
    good = cache.read_bytes()
    foreign = cache.with_name("foreign.tmp")
    foreign.write_bytes(wasmpy.Module(source.read_bytes(), wasmpy.Engine(consume_fuel=True)).serialize())
    os.replace(foreign, cache)
    record = json.loads(_sidecar(cache).read_bytes()[len(_hook._SIDECAR_MAGIC):])
    record.update(_hook._artifact_identity(cache.stat()))
    _sidecar(cache).write_bytes(_hook._SIDECAR_MAGIC + json.dumps(record).encode())
    assert import_fresh(name).f(1) == 3
    assert cache.read_bytes() == good


def test_bad_cache_file_in_a_new_process(tmp_path):
    """A corrupt cache never crashes the interpreter (checked out of process, where a crash shows)."""
    (tmp_path / "proc_corrupt.wasm").write_bytes(wasmpy.wat2wasm(GCD_WAT))
    code = f"""
        import sys, glob, wasmpy
        sys.path.insert(0, {str(tmp_path)!r})
        import proc_corrupt
        print(proc_corrupt.gcd(27, 6))
    """
    first = run_python(code)
    assert first.returncode == 0, first.stderr
    [cache] = (tmp_path / "__pycache__").glob("proc_corrupt.wasm.*.cwasm")
    good = cache.read_bytes()
    for corrupt in (good[:len(good) // 3], _bit_flip(good, len(good) // 3), os.urandom(len(good))):
        cache.write_bytes(corrupt)
        result = run_python(code)
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == ["3"]
        assert cache.read_bytes() == good


# --- 8. like Python's own imports


def test_search_follows_sys_path_order(mods, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir(), second.mkdir()
    a, b = mods.name("a"), mods.name("b")
    (first / f"{a}.wat").write_text(const_wat(1))
    (second / f"{a}.wat").write_text(const_wat(2))
    (first / f"{b}.wasm").write_bytes(wasmpy.wat2wasm(const_wat(1)))
    (second / f"{b}.py").write_text("def value():\n    return 2\n")  # an earlier directory beats the kind
    sys.path[0:0] = [str(first), str(second)]
    importlib.invalidate_caches()
    assert importlib.import_module(a).value() == 1
    assert importlib.import_module(b).value() == 1

    c = mods.name("c")
    (first / f"{c}.wat").write_text(const_wat(1))
    (second / f"{c}.wat").write_text(const_wat(2))
    sys.path.remove(str(second))
    sys.path.insert(0, str(second))
    importlib.invalidate_caches()
    assert importlib.import_module(c).value() == 2


def test_no_implicit_current_directory(tmp_path):
    (tmp_path / "cwd_mod.wasm").write_bytes(wasmpy.wat2wasm(GCD_WAT))
    code = f"""
        import importlib, importlib.util, os, sys
        sys.path.append({PACKAGE_ROOT!r})
        import wasmpy
        assert '' not in sys.path and os.getcwd() not in sys.path, sys.path
        print(importlib.util.find_spec("cwd_mod") is None)
        try:
            import cwd_mod
        except ModuleNotFoundError:
            print("not importable")
        sys.path.insert(0, os.getcwd())
        importlib.invalidate_caches()
        import cwd_mod
        print(cwd_mod.gcd(27, 6))
    """
    result = run_python(code, "-I", cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "not", "importable", "3"]


def test_cwd_not_searched_when_not_on_sys_path(mods, tmp_path, monkeypatch):
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    name = mods.name("incwd")
    (elsewhere / f"{name}.wasm").write_bytes(wasmpy.wat2wasm(GCD_WAT))
    monkeypatch.chdir(elsewhere)
    sys.path[:] = [p for p in sys.path if p not in ("", ".", str(elsewhere))]
    importlib.invalidate_caches()
    assert importlib.util.find_spec(name) is None
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(name)
    sys.path.insert(0, "")  # as `python -c` and the REPL do
    importlib.invalidate_caches()
    assert importlib.import_module(name).gcd(27, 6) == 3


def test_find_spec(mods):
    name = mods.name("spec")
    path = mods.wasm(name, GCD_WAT)
    spec = importlib.util.find_spec(name)
    assert spec is not None
    assert spec.name == name
    assert spec.origin == str(path)
    assert spec.has_location
    assert isinstance(spec.loader, importlib.abc.Loader)
    assert isinstance(spec.loader, _hook.WasmLoader)
    assert name not in sys.modules  # finding is not importing
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.gcd(27, 6) == 3

    package = mods.name("pkg")
    mods.package(package)
    mods.wat("inner", GCD_WAT, under=package)
    inner = importlib.util.find_spec(f"{package}.inner")
    assert inner is not None and inner.origin == str(mods.path / package / "inner.wat")
    assert importlib.util.find_spec(mods.name("absent")) is None


def test_reload_gives_a_fresh_instance(mods):
    name = mods.name("reloaded")
    mods.wat(name, """
        (module
          (global $n (export "n") (mut i32) (i32.const 5))
          (memory (export "memory") 1)
          (func (export "inc") (result i32)
            (global.set $n (i32.add (global.get $n) (i32.const 1)))
            (global.get $n)))
    """)
    module = importlib.import_module(name)
    assert module.inc() == 6 and module.inc() == 7
    module.memory.write(0, b"dirty")
    old_instance, old_inc = module.__wasm_instance__, module.inc
    reloaded = importlib.reload(module)
    assert reloaded is module is sys.modules[name]
    assert module.__wasm_instance__ is not old_instance
    assert module.n.value == 5  # the mutable global starts again
    assert module.memory.read(0, 5) == b"\0" * 5
    assert module.inc() == 6
    assert old_inc() == 8  # the old instance lives on independently


def test_reload_picks_up_new_source(mods):
    name = mods.name("edited")
    path = mods.wat(name, const_wat(1))
    module = importlib.import_module(name)
    assert module.value() == 1
    path.write_text(const_wat(2))
    importlib.invalidate_caches()
    assert importlib.reload(module).value() == 2


def test_py_wins_over_wasm_and_wasm_over_wat(mods):
    both, wasm_wat, three = mods.name("both"), mods.name("wasmwat"), mods.name("three")
    mods.py(both, "kind = 'py'\n")
    mods.wasm(both, const_wat(1))
    mods.wasm(wasm_wat, const_wat(1))
    mods.wat(wasm_wat, const_wat(2))
    mods.py(three, "kind = 'py'\n")
    mods.wasm(three, const_wat(1))
    mods.wat(three, const_wat(2))
    assert importlib.import_module(both).kind == "py"
    assert importlib.import_module(wasm_wat).value() == 1
    assert importlib.import_module(three).kind == "py"
    assert importlib.util.find_spec(wasm_wat).origin.endswith(".wasm")


def test_package_directory_wins_over_wasm(mods):
    name = mods.name("pkgwins")
    mods.package(name, "kind = 'package'\n")
    mods.wasm(name, const_wat(1))
    assert importlib.import_module(name).kind == "package"


@pytest.mark.parametrize("failure", [
    "malformed-wasm", "wat-syntax", "invalid-module", "no-such-module", "no-such-field", "wrong-type",
    "annotation", "start-trap", "start-raises",
])
def test_failing_import_leaves_nothing_in_sys_modules(mods, failure):
    name, env = mods.name("failing"), mods.name("env")
    mods.py(env, """
        def callback(a, b):
            return 0
        def annotated(a: 'f64', b: 'i32') -> 'i32':
            return 0
        def boom():
            raise KeyError('from start')
        number = 3
    """)
    sources = {
        "malformed-wasm": b"\0asm\x01\0\0\0\x01\xff\xff",
        "wat-syntax": "(module (func (export \"f\") (result i32) i32.const))",
        "invalid-module": "(module (func (export \"f\") (result i32) (i64.const 1)))",
        "no-such-module": f'(module (import "{mods.name("absent")}" "f" (func)))',
        "no-such-field": f'(module (import "{env}" "absent" (func)))',
        "wrong-type": f'(module (import "{env}" "number" (func)))',
        "annotation": f'(module (import "{env}" "annotated" (func (param i32 i32) (result i32))))',
        "start-trap": "(module (func $start unreachable) (start $start))",
        "start-raises": f'(module (import "{env}" "boom" (func $boom)) (start $boom))',
    }
    source = sources[failure]
    if isinstance(source, bytes):
        mods.write(f"{name}.wasm", source)
    else:
        mods.wat(name, source)
    with pytest.raises(Exception):
        importlib.import_module(name)
    assert name not in sys.modules
    # and it fails the same way again, rather than half-succeeding
    with pytest.raises(Exception):
        importlib.import_module(name)
    assert name not in sys.modules


def test_failing_submodule_is_not_left_on_the_package(mods):
    package = mods.name("pkg")
    mods.package(package)
    mods.wat("broken", "(module (func", under=package)
    with pytest.raises(wasmpy.WasmImportError):
        importlib.import_module(f"{package}.broken")
    assert f"{package}.broken" not in sys.modules
    assert not hasattr(sys.modules[package], "broken")


# --- 9. errors name the file


def test_malformed_wasm_is_a_wasm_import_error(mods):
    name = mods.name("malformed")
    path = mods.write(f"{name}.wasm", b"\0asm\x01\0\0\0\x01\xff")
    with pytest.raises(wasmpy.WasmImportError) as excinfo:
        importlib.import_module(name)
    error = excinfo.value
    assert isinstance(error, ImportError)
    assert isinstance(error, wasmpy.CompileError)
    assert str(path) in str(error)
    # the engine's own message
    try:
        wasmpy.Module(path.read_bytes())
    except wasmpy.CompileError as engine_error:
        engine_message = str(engine_error)
    assert engine_message.splitlines()[0] in str(error)
    assert error.name == name
    assert error.path == str(path)


def test_empty_wasm_file_is_a_wasm_import_error(mods):
    name = mods.name("empty")
    path = mods.write(f"{name}.wasm", b"")
    with pytest.raises(wasmpy.WasmImportError, match=re.escape(str(path))):
        importlib.import_module(name)


def test_wat_syntax_error_is_a_wasm_import_error(mods):
    name = mods.name("syntax")
    path = mods.wat(name, '(module\n  (func (export "f") (result i32)\n    i32.const))\n')
    with pytest.raises(wasmpy.WasmImportError) as excinfo:
        importlib.import_module(name)
    message = str(excinfo.value)
    assert isinstance(excinfo.value, ImportError)
    assert str(path) in message
    with pytest.raises(wasmpy.CompileError) as engine_error:
        wasmpy.wat2wasm(path.read_text())
    assert str(engine_error.value).splitlines()[0] in message


def test_invalid_module_is_a_wasm_import_error(mods):
    name = mods.name("invalid")
    # well-formed (wat2wasm does not validate) but invalid: an i64 where an i32 result is declared
    path = mods.wasm(name, '(module (func (export "f") (result i32) (i64.const 1)))')
    with pytest.raises(wasmpy.WasmImportError) as excinfo:
        importlib.import_module(name)
    assert str(path) in str(excinfo.value)
    assert "type mismatch" in str(excinfo.value)



def test_missing_import_module_names_field_and_type(mods):
    name, absent = mods.name("user"), mods.name("absent")
    mods.wat(name, f'(module (import "{absent}" "callback" (func (param i32 i64) (result f32))))')
    with pytest.raises(wasmpy.LinkError) as excinfo:
        importlib.import_module(name)
    assert isinstance(excinfo.value, ImportError)
    assert f"{absent}.callback" in str(excinfo.value)
    assert "func(i32, i64) -> f32" in str(excinfo.value)


def test_missing_import_field_names_field_and_type(mods):
    name, env = mods.name("user"), mods.name("env")
    mods.py(env, "other = 1\n")
    mods.wat(name, f'(module (import "{env}" "callback" (func (param i32 i64) (result f32))))')
    with pytest.raises(wasmpy.LinkError) as excinfo:
        importlib.import_module(name)
    assert isinstance(excinfo.value, ImportError)
    assert f"{env}.callback" in str(excinfo.value)
    assert "func(i32, i64) -> f32" in str(excinfo.value)


def test_missing_import_from_wasm_module_names_field_and_type(mods):
    one, two = mods.name("one"), mods.name("two")
    mods.wat(one, const_wat(1))
    mods.wat(two, f'(module (import "{one}" "missing" (memory 1)))')
    with pytest.raises(wasmpy.LinkError) as excinfo:
        importlib.import_module(two)
    assert f"{one}.missing" in str(excinfo.value)
    assert "memory(1)" in str(excinfo.value)


def test_wrong_kind_of_import_names_field_and_type(mods):
    one, two = mods.name("one"), mods.name("two")
    mods.wat(one, const_wat(1))
    mods.wat(two, f'(module (import "{one}" "value" (func (param i32) (result i32))))')
    with pytest.raises(wasmpy.LinkError) as excinfo:
        importlib.import_module(two)
    message = str(excinfo.value)
    assert f"{one}.value" in message
    assert "func(i32) -> i32" in message and "func() -> i32" in message


def test_missing_dotted_import_module_names_field_and_type(mods):
    name, absent = mods.name("user"), mods.name("absentpkg")
    mods.wat(name, f'(module (import "{absent}.sub" "callback" (func (param i32))))')
    with pytest.raises(wasmpy.LinkError) as excinfo:
        importlib.import_module(name)
    assert f"{absent}.sub.callback" in str(excinfo.value)
    assert "func(i32)" in str(excinfo.value)


def test_error_inside_imported_python_module_is_not_masked(mods):
    """A ModuleNotFoundError raised *inside* the namespace module is its own error, not 'no module'."""
    name, env = mods.name("user"), mods.name("env")
    mods.py(env, f"import {mods.name('nested_absent')}\n")
    mods.wat(name, f'(module (import "{env}" "f" (func)))')
    with pytest.raises(ModuleNotFoundError) as excinfo:
        importlib.import_module(name)
    assert excinfo.value.name == mods.name("nested_absent")


def test_trap_in_start_function_propagates(mods):
    name = mods.name("trapping")
    mods.wat(name, "(module (func $start unreachable) (start $start))")
    with pytest.raises(wasmpy.Trap) as excinfo:
        importlib.import_module(name)
    assert excinfo.value.code == wasmpy.TrapCode.UNREACHABLE
    assert name not in sys.modules


def test_exception_from_python_in_start_function_propagates(mods):
    name, env = mods.name("starting"), mods.name("env")
    mods.py(env, """
        class StartError(Exception):
            pass
        def boom():
            raise StartError("in start")
    """)
    mods.wat(name, f'(module (import "{env}" "boom" (func $boom)) (start $boom))')
    with pytest.raises(Exception) as excinfo:
        importlib.import_module(name)
    assert type(excinfo.value).__name__ == "StartError"
    assert name not in sys.modules


def test_start_function_runs_at_import(mods):
    name, env = mods.name("starting"), mods.name("env")
    mods.py(env, "calls = []\ndef hello(x):\n    calls.append(x)\n")
    mods.wat(name, f'(module (import "{env}" "hello" (func $h (param i32))) '
                   f'(func $start (call $h (i32.const 7))) (start $start))')
    importlib.import_module(name)
    assert sys.modules[env].calls == [7]
