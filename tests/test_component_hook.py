"""The import hook loads components (issue 15 item 5): ``import rich`` finds ``rich.wasm`` (a
component by its header's layer field) or ``rich.wat`` starting with ``(component``.

Its imports come from Python modules named by the hook's rule (interface ``ns:pkg/iface`` from
``ns_pkg.iface``, world-level functions from ``env``) or from ``configure_import_hook(
component_imports=...)``; its compiled code is cached as a module's is, under a name of its own.
The committed test components (tests/components/) are copied into temporary directories.
"""

from __future__ import annotations

import importlib
import json
import os
import pydoc
import shutil
import sys
from pathlib import Path

import pytest

import wasmpy
from wasmpy import _hook
from wasmpy.component import ComponentInstance, InterfaceExports
from wasmpy.component._component import text_is_component

from childproc import child_json, run_python
from test_component import ASYNC_WAT, DUMMY, RESOURCES, RICH, WASI_WAT, Echo
from test_hook import CORRUPTIONS, SIDECAR_CORRUPTIONS, import_fresh

# The Python modules rich.wasm's imports come from, by the hook's rule.
ENV_PY = """
logged = []

def log(message):
    logged.append(message)
"""
HOST_PY = """
def __getattr__(name):
    if name.startswith("echo_"):  # every echo-* returns its argument
        return lambda value: value
    raise AttributeError(name)

def echo_two(a, b):
    return (a, b)

def get_name():
    return "host module"
"""


def write_project(directory: Path, name: str = "rich", source: Path = RICH, imports: bool = True) -> Path:
    """``directory`` with the component ``source`` as ``name.wasm`` and, if ``imports``, the Python
    modules of its imports (``env.py``, ``test_rich/host.py``)."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, directory / f"{name}.wasm")
    if imports:
        (directory / "env.py").write_text(ENV_PY)
        (directory / "test_rich").mkdir(exist_ok=True)
        (directory / "test_rich" / "host.py").write_text(HOST_PY)
    return directory / f"{name}.wasm"


# In a child: imports the component `rich` from DIRECTORY, counting compilations.
CHILD = """
import json, sys, wasmpy
sys.dont_write_bytecode = False  # whatever PYTHONDONTWRITEBYTECODE says
sys.path.insert(0, {directory!r})
from childproc import count_compiles
compiled = count_compiles()
{prepare}
import rich, env
api = rich.api
point = api.roundtrip_point(api.Point(1, 2))
rich.call_log("logged")
print(json.dumps({{"compiled": compiled, "add": rich.add(2, 3), "greet": rich.greet("world"),
                  "point": [point.x, point.y], "name": api.roundtrip_get_name(), "logged": env.logged,
                  "cached": rich.__cached__, "instance": type(rich.__wasm_instance__).__name__}}))
"""


def import_in_a_child(directory: Path, prepare: str = "") -> dict:
    return child_json(run_python(CHILD.format(directory=str(directory), prepare=prepare), timeout=120))


@pytest.fixture
def writing_cache(monkeypatch):
    """Compiled code is cached (the test environment sets PYTHONDONTWRITEBYTECODE=1)."""
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    monkeypatch.setattr(sys, "pycache_prefix", None)


@pytest.fixture
def hook_settings():
    """Puts the hook's settings back as they were after the test."""
    saved = (_hook._wasi, _hook._cache_enabled, _hook._cache_dir, dict(_hook._component_imports))
    yield
    _hook._wasi, _hook._cache_enabled, _hook._cache_dir, _hook._component_imports = saved


@pytest.fixture
def rich(mods, writing_cache):
    """rich.wasm, under a name of this test, imported with its imports' Python modules."""
    name = mods.name("rich")
    write_project(mods.path, name)
    importlib.invalidate_caches()
    return importlib.import_module(name)


def cache_of(source: Path) -> Path:
    return Path(_hook.cache_path(str(source), wasmpy.Engine.default(), component=True))


def assert_loads_from_cache(name: str, monkeypatch):
    """Imports ``name`` again with compiling made impossible: it must come from a valid cache file."""
    def no_compiling(self, *args, **kwargs):
        raise AssertionError("compiled although a valid cache file should exist")

    with monkeypatch.context() as patch:
        patch.setattr(wasmpy.Component, "__init__", no_compiling)
        patch.setattr(wasmpy.Module, "__init__", no_compiling)
        return import_fresh(name)


# --- a fresh process, cold then warm


def test_a_fresh_process_imports_a_component_cold_then_warm_without_compiling(tmp_path):
    source = write_project(tmp_path / "project")
    cold = import_in_a_child(tmp_path / "project")
    warm = import_in_a_child(tmp_path / "project")
    expected = {"add": 5, "greet": "Hello, world!", "point": [1, 2], "name": "host module", "logged": ["logged"],
                "cached": str(cache_of(source)), "instance": "ComponentInstance"}
    assert cold == {"compiled": ["Component"], **expected}
    assert warm == {"compiled": [], **expected}
    assert cache_of(source).name.endswith(".component.cwasm") and cache_of(source).parent.name == "__pycache__"


def test_a_warm_component_import_maps_the_cache_and_reads_only_the_sidecar(rich, monkeypatch):
    """What a warm import reads: the source's first bytes (to tell a component from a module), the
    sidecar, and the artifact only through wasmtime's mapping."""
    source = Path(rich.__file__)
    cache = cache_of(source)
    assert cache.is_file() and Path(str(cache) + ".meta").is_file()
    read = []
    original_read = os.read

    def counting_read(fd, size):
        data = original_read(fd, size)
        read.append(len(data))
        return data
    monkeypatch.setattr(os, "read", counting_read)
    assert assert_loads_from_cache(rich.__name__, monkeypatch).add(1, 2) == 3
    assert sum(read) == Path(str(cache) + ".meta").stat().st_size


# --- the module: exports, help(), the instance


def test_exports_are_attributes(rich):
    assert rich.add(2, 3) == 5 and rich.greet("you") == "Hello, you!"
    assert rich.call_log is rich.__wasm_instance__.exports["call-log"] and not hasattr(rich, "call-log")
    assert isinstance(rich.__wasm_instance__, ComponentInstance)
    assert isinstance(rich.api, InterfaceExports)
    assert rich.api is rich.__wasm_instance__.exports["test:rich/api@0.1.0"]
    assert rich.api.roundtrip_color(rich.api.Color.LIGHT_BLUE) is rich.api.Color.LIGHT_BLUE
    assert rich.api.roundtrip_shape(rich.api.Shape_Circle(1.5)) == rich.api.Shape_Circle(1.5)
    assert rich.api.roundtrip_bytes(b"\0\1") == b"\0\1"
    with pytest.raises(wasmpy.Err) as raised:
        rich.api.roundtrip_result(wasmpy.Err("no"))
    assert raised.value.value == "no"
    with pytest.raises(wasmpy.Trap):
        rich.fail()


def test_help_shows_wit_signatures(rich):
    name = rich.__name__
    text = pydoc.render_doc(rich, renderer=pydoc.plaintext)
    assert f"{name} - WebAssembly component {name}.wasm" in text
    for line in ("add: func(a: u32, b: u32) -> u32;", f"call-log: func(message: string);  // {name}.call_log",
                 f"interface test:rich/api@0.1.0 {{  // {name}.api", "roundtrip-point: func(x: point) -> point;",
                 "record point { x: s32, y: s32 };", "log: func(message: string);  // from module env",
                 "interface test:rich/host@0.1.0 {  // from module test_rich.host",
                 "echo-shape: func(x: shape) -> shape;"):
        assert line in text, line
    assert text.index("Exports (WIT)") < text.index("roundtrip-bool") < text.index("Imports (WIT)")
    assert text.index("Imports (WIT)") < text.index("echo-bool")


def test_world_level_resources_and_types_are_attributes(mods, writing_cache):
    name = mods.name("resources")
    write_project(mods.path, name, RESOURCES, imports=False)
    module = importlib.import_module(name)
    with module.api.Counter(3) as counter:
        counter.add(4)
        assert counter.get() == 7 == module.api.total(counter)
    assert module.drops() == 1
    assert "Imports" not in module.__doc__  # it imports nothing


def test_functions_wasmpy_cannot_call_are_refused_when_called(mods, writing_cache):
    name = mods.name("stream")
    mods.write(f"{name}.wat", ASYNC_WAT)
    module = importlib.import_module(name)
    with pytest.raises(NotImplementedError, match="WIT type stream"):
        module.takes_stream(None)
    assert "takes-stream: func(s: stream<u8>);  //" in module.__doc__


def test_reload_makes_a_new_instance(rich):
    instance = rich.__wasm_instance__
    assert importlib.reload(rich).add(1, 1) == 2 and rich.__wasm_instance__ is not instance


# --- telling components from modules


@pytest.mark.parametrize("text, expected", [
    ("(component)", True), ("  \n(component $c)", True), (";; a comment\n(component)", True),
    ("(; block (; nested ;) ;) (component)", True), ("(module)", False), ("(componentx)", False),
    (";; (component)\n(module)", False), ("(; (component) ;)(module)", False), ("", False),
])
def test_component_text_is_told_from_module_text(text, expected):
    assert text_is_component(text, complete=True) is expected
    assert wasmpy.component.is_component(text) is expected


def test_the_beginning_of_a_file_may_be_too_short_to_tell():
    assert text_is_component(";; a comment without its end", complete=False) is None
    assert text_is_component("(; unfinished", complete=False) is None
    assert text_is_component("(compo", complete=False) is None
    assert text_is_component("(module", complete=False) is False


def test_a_component_in_wat_after_a_long_comment(mods, writing_cache):
    name = mods.name("commented")
    mods.write(f"{name}.wat", ";; " + "x" * 20000 + "\n(; " + "y" * 10000 + " ;)\n" + ASYNC_WAT)
    assert "takes-stream" in importlib.import_module(name).__wasm_instance__.exports


def test_a_module_and_a_component_of_one_name_in_two_directories(tmp_path):
    """Each loads from its own cache, under a name of its kind, in fresh processes."""
    component_dir, module_dir = tmp_path / "component", tmp_path / "module"
    write_project(component_dir, "twin")
    module_dir.mkdir()
    (module_dir / "twin.wasm").write_bytes(wasmpy.wat2wasm(
        '(module (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.sub))'))
    code = """
import json, sys
sys.dont_write_bytecode = False
sys.path.insert(0, {directory!r})
from childproc import count_compiles
compiled = count_compiles()
import twin
print(json.dumps({{"compiled": compiled, "add": twin.add(5, 3), "cached": twin.__cached__}}))
"""
    runs = [child_json(run_python(code.format(directory=str(directory)), timeout=120))
            for directory in (component_dir, module_dir, component_dir, module_dir)]
    assert [run["compiled"] for run in runs] == [["Component"], ["Module"], [], []]
    assert [run["add"] for run in runs] == [8, 2, 8, 2]
    assert runs[0]["cached"].endswith(".component.cwasm") and not runs[1]["cached"].endswith(".component.cwasm")


def test_a_modules_cache_at_a_components_cache_path_is_not_loaded(rich, monkeypatch):
    """A module's artifact and sidecar put where a component's are (as if its name collided):
    the sidecar does not say "component", so the hook compiles."""
    source = Path(rich.__file__)
    cache = cache_of(source)
    good = cache.read_bytes()
    module_source = source.with_name("plain.wat")
    module_source.write_text("(module)")
    module_cache = Path(_hook.compile_to_cache(str(module_source)))
    assert not module_cache.name.endswith(".component.cwasm")
    record = json.loads(Path(str(module_cache) + ".meta").read_bytes()[len(_hook._SIDECAR_MAGIC):])
    assert "kind" not in record  # as module sidecars were before components
    shutil.copy(module_cache, cache)
    record.update(_hook._source_proof(source.stat(), source.read_bytes()), **_hook._artifact_identity(cache.stat()))
    Path(str(cache) + ".meta").write_bytes(_hook._SIDECAR_MAGIC + json.dumps(record).encode())
    assert import_fresh(rich.__name__).add(2, 2) == 4
    assert cache.read_bytes() == good
    assert assert_loads_from_cache(rich.__name__, monkeypatch).add(3, 3) == 6


def test_compile_to_cache_compiles_a_component(tmp_path):
    source = write_project(tmp_path, "rich", imports=False)
    cache = _hook.compile_to_cache(str(source))
    assert cache == str(cache_of(source))
    assert wasmpy.Component.deserialize_file(cache).exports.functions.keys() >= {"add", "greet"}


# --- stale and damaged caches


def test_a_changed_component_is_compiled_again(rich, monkeypatch):
    source = Path(rich.__file__)
    cache = cache_of(source)
    old = cache.read_bytes()
    shutil.copy(DUMMY, source)  # the same world; its exports trap
    module = importlib.reload(rich)
    with pytest.raises(wasmpy.Trap):
        module.add(1, 2)
    assert cache.read_bytes() != old
    with pytest.raises(wasmpy.Trap):
        assert_loads_from_cache(rich.__name__, monkeypatch).add(1, 2)


@pytest.mark.parametrize("corruption", ["empty", "truncated-half", "foreign-random", "trailing-garbage",
                                        "bit-flip-elf-header", "bit-flip-middle"])
def test_a_damaged_cache_is_ignored_and_rewritten(rich, monkeypatch, corruption):
    cache = cache_of(Path(rich.__file__))
    good = cache.read_bytes()
    cache.write_bytes(CORRUPTIONS[corruption](good))
    assert import_fresh(rich.__name__).add(20, 22) == 42
    assert cache.read_bytes() == good
    assert assert_loads_from_cache(rich.__name__, monkeypatch).add(1, 1) == 2


@pytest.mark.parametrize("corruption", ["absent", "truncated", "not-json", "other-wasmtime", "other-engine",
                                        "other-artifact", "other-source"])
def test_a_damaged_sidecar_is_ignored_and_rewritten(rich, monkeypatch, corruption):
    sidecar = Path(str(cache_of(Path(rich.__file__))) + ".meta")
    damage = SIDECAR_CORRUPTIONS[corruption]
    if damage is None:
        sidecar.unlink()
    else:
        sidecar.write_bytes(damage(sidecar.read_bytes()))
    assert import_fresh(rich.__name__).add(20, 22) == 42
    assert assert_loads_from_cache(rich.__name__, monkeypatch).add(1, 1) == 2


def test_a_damaged_cache_in_a_fresh_process(tmp_path):
    """Out of process, where a crash would show: damaged artifacts are compiled again."""
    source = write_project(tmp_path / "project")
    import_in_a_child(tmp_path / "project")
    cache = cache_of(source)
    good = cache.read_bytes()
    for damaged in (good[:len(good) // 3], CORRUPTIONS["bit-flip-middle"](good), os.urandom(len(good))):
        cache.write_bytes(damaged)
        assert import_in_a_child(tmp_path / "project")["compiled"] == ["Component"]
        assert cache.read_bytes() == good


def test_the_cache_off_compiles_every_time(tmp_path):
    source = write_project(tmp_path / "project")
    prepare = "wasmpy.configure_import_hook(cache=False)"
    assert import_in_a_child(tmp_path / "project", prepare)["compiled"] == ["Component"]
    assert import_in_a_child(tmp_path / "project", prepare)["compiled"] == ["Component"]
    assert not cache_of(source).exists()


# --- where imports come from


def test_imports_by_the_rule_from_a_package_and_a_module(rich):
    env = sys.modules["env"]
    rich.call_log("hello")
    assert env.logged == ["hello"]
    assert rich.api.roundtrip_two(1, "b") == (1, "b")
    assert rich.api.roundtrip_get_name() == "host module"


@pytest.mark.parametrize("interface, module", [
    ("test:rich/host@0.1.0", "test_rich.host"), ("test:rich/host", "test_rich.host"),
    ("my-org:http-tools/fetch-api@1.2.3", "my_org_http_tools.fetch_api"), ("a:b:c/d", "a_b_c.d"),
    ("local-thing", "local_thing"), ("x:y/import", "x_y.import_"),
])
def test_the_rule_naming_an_interfaces_module(interface, module):
    assert _hook.component_import_module(interface) == module


def test_component_imports_give_what_modules_would(mods, writing_cache, hook_settings):
    """No env.py, no test_rich package: configure_import_hook gives both, by either name form."""
    logged = []
    host = Echo()
    wasmpy.configure_import_hook(component_imports={"test:rich/host@0.1.0": host, "log": logged.append})
    name = mods.name("rich")
    write_project(mods.path, name, imports=False)
    module = importlib.import_module(name)
    module.call_log("given")
    assert logged == ["given"] and module.api.roundtrip_u8(7) == 7 and host.seen == [("echo_u8", 7)]
    assert "interface test:rich/host@0.1.0 {  // from configure_import_hook(component_imports=...)" in module.__doc__
    assert "log: func(message: string);  // from configure_import_hook(component_imports=...)" in module.__doc__


def test_component_imports_win_over_modules_and_take_unversioned_names(rich, hook_settings):
    other = Echo()
    other.get_name = lambda: "configured"
    wasmpy.configure_import_hook(component_imports={"test:rich/host": other})
    again = importlib.reload(rich)
    assert again.api.roundtrip_get_name() == "configured"
    again.call_log("from env")  # not configured: still from env.py
    assert sys.modules["env"].logged == ["from env"]
    wasmpy.configure_import_hook(component_imports=None)
    assert importlib.reload(rich).api.roundtrip_get_name() == "host module"


def test_component_imports_are_checked(hook_settings):
    with pytest.raises(TypeError, match="mapping"):
        wasmpy.configure_import_hook(component_imports=[("log", print)])
    with pytest.raises(TypeError, match="keys are WIT names"):
        wasmpy.configure_import_hook(component_imports={1: print})
    given = {"log": print}
    wasmpy.configure_import_hook(component_imports=given)
    given["later"] = print
    assert _hook._component_imports == {"log": print}  # copied


def test_a_missing_interface_module_names_the_interface_and_the_module(mods, writing_cache):
    name = mods.name("rich")
    write_project(mods.path, name)
    shutil.rmtree(mods.path / "test_rich")
    with pytest.raises(wasmpy.LinkError) as raised:
        importlib.import_module(name)
    assert isinstance(raised.value, ImportError)
    message = str(raised.value)
    assert "the interface test:rich/host@0.1.0" in message and "no Python module named 'test_rich.host'" in message
    assert name in message and "component_imports" in message


def test_a_missing_world_module_names_the_functions_and_the_module(mods, writing_cache):
    name = mods.name("rich")
    write_project(mods.path, name)
    (mods.path / "env.py").unlink()
    with pytest.raises(wasmpy.LinkError, match=r"imports the functions log \(WIT log: func\(message: string\)\), "
                                               r"but there is no Python module named 'env'"):
        importlib.import_module(name)


def test_a_missing_function_names_the_module_it_was_looked_for_in(mods, writing_cache):
    name = mods.name("rich")
    write_project(mods.path, name)
    (mods.path / "test_rich" / "host.py").write_text("def get_name():\n    return 'x'\n")
    with pytest.raises(wasmpy.LinkError, match=r"missing import test:rich/host@0.1.0#echo-bool: .*module "
                                               r"'test_rich.host' has no attribute 'echo_bool'"):
        importlib.import_module(name)
    (mods.path / "env.py").write_text("")
    del sys.modules["env"]
    with pytest.raises(wasmpy.LinkError, match="module 'env' has no attribute 'log'"):
        import_fresh(name)


def test_an_error_inside_an_imports_module_is_not_hidden(mods, writing_cache):
    name = mods.name("rich")
    write_project(mods.path, name)
    (mods.path / "env.py").write_text("import a_module_that_does_not_exist\n")
    with pytest.raises(ModuleNotFoundError, match="a_module_that_does_not_exist"):
        importlib.import_module(name)


def test_a_malformed_component_is_an_import_error_naming_the_file(mods, writing_cache):
    name = mods.name("broken")
    path = mods.write(f"{name}.wasm", RICH.read_bytes()[:100])
    with pytest.raises(wasmpy.WasmImportError, match=f"cannot import {name}: {path}"):
        importlib.import_module(name)


# --- WASI


WASI_CHILD = """
import sys, wasmpy
sys.path.insert(0, {directory!r})
{prepare}
import wasi_args
print("arguments", wasi_args.argument_count())
print("from", [line for line in wasi_args.__doc__.splitlines() if "wasi:cli" in line])
"""


@pytest.mark.parametrize("prepare, count", [
    ("", 1), ("wasmpy.configure_import_hook(wasi=wasmpy.WasiConfig(argv=['a', 'b', 'c']))", 3)])
def test_a_component_importing_wasi_gets_the_hooks_wasi(tmp_path, prepare, count):
    """The safe default (its name as the only argument) or configure_import_hook's WasiConfig;
    never wasmtime's abort for a WASI import without a WASI context."""
    (tmp_path / "wasi_args.wat").write_text(WASI_WAT)
    result = run_python(WASI_CHILD.format(directory=str(tmp_path), prepare=prepare), timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"arguments {count}" in result.stdout
    assert "interface wasi:cli/environment@0.2.0 {  // from the store's WASI" in result.stdout
