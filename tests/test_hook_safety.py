"""The import hook under stress and attack: stores freed with their modules, a cache that
cannot be turned against the importer, and export names that cannot break a module.

Each test writes its modules into its own temporary directory on sys.path, under
module names of its own; the ``mods`` fixture forgets them afterwards, and the
``hook_settings`` fixture puts :func:`wasmpy.configure_import_hook`'s settings back.
Whatever could hang or eat memory on a broken hook runs in a child interpreter.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import pydoc
import stat
import sys
import threading
import weakref
from pathlib import Path

import pytest

import wasmpy
from wasmpy import _hook
from childproc import child_json, run_python

TRIPLE_WAT = '(module (func (export "f") (param i32) (result i32) (i32.mul (local.get 0) (i32.const 3))))'
# What a planted cache file runs instead of TRIPLE_WAT, if it is loaded.
PLANTED_WAT = '(module (func (export "f") (param i32) (result i32) (i32.const 99)))'


@pytest.fixture
def hook_settings(monkeypatch):
    """configure_import_hook's settings, put back afterwards; the cache is written (as without -B)."""
    for setting in ("_wasi", "_cache_enabled", "_cache_dir"):
        monkeypatch.setattr(_hook, setting, getattr(_hook, setting))
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    monkeypatch.setattr(sys, "pycache_prefix", None)


def import_fresh(name: str):
    sys.modules.pop(name, None)
    importlib.invalidate_caches()
    return importlib.import_module(name)


def cache_file(source: Path) -> Path:
    return Path(_hook.cache_path(str(source), wasmpy.Engine.default()))


PLANTED = wasmpy.Module(PLANTED_WAT).serialize()


def plant_cache(source: Path, artifact: Path) -> None:
    """Writes PLANTED at ``artifact``, and beside ``source``'s cache file a sidecar the hook accepts
    for it (right source, engine and wasmtime, and ``artifact``'s identity as os.stat sees it)."""
    artifact.write_bytes(PLANTED)
    record = {"engine": _hook._cache_tag(wasmpy.Engine.default()), "wasmtime": wasmpy.WASMTIME_VERSION,
              **_hook._source_proof(source.stat(), source.read_bytes()), **_hook._artifact_identity(artifact.stat())}
    Path(f"{cache_file(source)}.meta").write_bytes(_hook._SIDECAR_MAGIC + json.dumps(record).encode())


# --- item 9: each module's store is freed with it


PLAIN_WAT = '(module (memory (export "memory") 1) (func (export "value") (result i32) (i32.const 7)))'


def test_modules_get_stores_of_their_own(mods):
    one, two = mods.name("one"), mods.name("two")
    mods.write(f"{one}.wat", PLAIN_WAT)
    mods.write(f"{two}.wat", PLAIN_WAT)
    first, second = importlib.import_module(one), importlib.import_module(two)
    stores = {id(first.__wasm_instance__.store), id(second.__wasm_instance__.store), id(wasmpy.hook_store())}
    assert len(stores) == 3
    assert first.memory.store is first.__wasm_instance__.store


def test_reload_frees_the_old_store(mods):
    """The old instance is freed with its store as soon as nothing refers to it (no cyclic GC needed)."""
    name = mods.name("plain")
    mods.write(f"{name}.wat", PLAIN_WAT)
    module = importlib.import_module(name)
    old_store = weakref.ref(module.__wasm_instance__.store)
    old_value = module.value
    importlib.reload(module)
    assert module.value() == 7 and old_value() == 7  # the old exports keep their store alive
    assert old_store() is not None
    del old_value
    assert old_store() is None
    assert module.__wasm_instance__.store is not wasmpy.hook_store()


def test_reload_of_a_module_with_host_functions_frees_the_old_store(mods):
    env, name = mods.name("env"), mods.name("user")
    mods.write(f"{env}.py", "def twice(x):\n    return 2 * x\n")
    mods.write(f"{name}.wat", f"""
        (module (import "{env}" "twice" (func $twice (param i32) (result i32)))
          (func (export "value") (result i32) (call $twice (i32.const 21))))
    """)
    module = importlib.import_module(name)
    old_store = weakref.ref(module.__wasm_instance__.store)
    importlib.reload(module)
    assert module.value() == 42
    gc.collect()  # a store's host functions refer back to it: a cycle
    assert old_store() is None


def test_a_module_joins_the_store_of_the_wasm_module_it_links_to(mods):
    one, two = mods.name("one"), mods.name("two")
    mods.write(f"{one}.wat", PLAIN_WAT)
    mods.write(f"{two}.wat", f"""
        (module (import "{one}" "value" (func $value (result i32)))
          (import "{one}" "memory" (memory 1))
          (func (export "ask") (result i32) (i32.add (call $value) (i32.load (i32.const 0)))))
    """)
    importer = importlib.import_module(two)
    exporter = sys.modules[one]
    assert importer.__wasm_instance__.store is exporter.__wasm_instance__.store
    exporter.memory.write(0, (35).to_bytes(4, "little"))
    assert importer.ask() == 42

    # Reloading the exporter gives it a new store; the importer keeps the old exports, and their store.
    old_store = weakref.ref(exporter.__wasm_instance__.store)
    importlib.reload(exporter)
    assert exporter.__wasm_instance__.store is not old_store()
    assert importer.ask() == 42
    # Reloading the importer links it to the new exports; nothing then holds the old store.
    importlib.reload(importer)
    assert importer.__wasm_instance__.store is exporter.__wasm_instance__.store
    assert importer.ask() == 7
    gc.collect()
    assert old_store() is None


@pytest.mark.parametrize("make_store", ["wasmpy.hook_store()", "wasmpy.Store()",
                                        "wasmpy.Store(wasmpy.Engine(cranelift_opt_level='none'))"],
                         ids=["hook-store", "new-store", "other-engine"])
def test_a_module_joins_the_store_of_objects_python_made(mods, make_store):
    """Any store, not only hook_store(): the importer is instantiated where its imports live
    (compiled for that store's engine)."""
    env, name = mods.name("env"), mods.name("user")
    mods.write(f"{env}.py", f"""
import wasmpy
store = {make_store}
memory = wasmpy.Memory(store, wasmpy.MemoryType(1))
memory.write(0, (42).to_bytes(4, "little"))
""")
    mods.write(f"{name}.wat", f"""
        (module (import "{env}" "memory" (memory 1))
          (func (export "load") (result i32) (i32.load (i32.const 0))))
    """)
    module = importlib.import_module(name)
    assert module.load() == 42
    assert module.__wasm_instance__.store is sys.modules[env].store
    assert module.__wasm_instance__.module.engine is sys.modules[env].store.engine


def test_imports_from_two_stores_are_a_link_error(mods):
    env, name = mods.name("env"), mods.name("user")
    mods.write(f"{env}.py", """
import wasmpy
first = wasmpy.Memory(wasmpy.Store(), wasmpy.MemoryType(1))
second = wasmpy.Memory(wasmpy.Store(), wasmpy.MemoryType(1))
""")
    mods.write(f"{name}.wat", f'(module (import "{env}" "first" (memory 1)) (import "{env}" "second" (memory 1)))')
    with pytest.raises(wasmpy.LinkError, match=f"{env}.first and {env}.second.*different stores"):
        importlib.import_module(name)
    assert name not in sys.modules


def test_a_wasi_module_importing_objects_of_a_store_is_a_link_error(mods):
    env, name = mods.name("env"), mods.name("user")
    mods.write(f"{env}.py", "import wasmpy\nmemory = wasmpy.Memory(wasmpy.hook_store(), wasmpy.MemoryType(1))\n")
    mods.write(f"{name}.wat", f"""
        (module (import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
          (import "{env}" "memory" (memory 1)))
    """)
    with pytest.raises(wasmpy.LinkError, match=f"imports WASI.*{env}.memory.*another store"):
        importlib.import_module(name)


def test_twelve_thousand_reloads_keep_working_in_bounded_memory(tmp_path):
    """Before, every reload added an instance to one shared store that was never freed (4.4 GB of
    address space each), and the 10 001st failed: "instance count too high"."""
    (tmp_path / "reloaded_many.wat").write_text(PLAIN_WAT)
    proc = run_python(f"""
        import importlib, json, sys
        import wasmpy
        sys.dont_write_bytecode = False  # loading from the cache is faster than compiling
        sys.path.insert(0, {str(tmp_path)!r})
        import reloaded_many

        def status():
            with open("/proc/self/status") as lines:
                return {{line.split(":")[0]: int(line.split()[1]) << 10 for line in lines
                        if line.startswith(("VmSize:", "VmRSS:"))}}

        for _ in range(500):  # warm up allocators and caches
            importlib.reload(reloaded_many)
        before = status()
        for count in range(12_000):
            importlib.reload(reloaded_many)
            assert reloaded_many.value() == 7, count
        print(json.dumps({{"before": before, "after": status()}}))
    """, timeout=300)
    result = child_json(proc)
    before, after = result["before"], result["after"]
    assert after["VmSize"] - before["VmSize"] < 16 << 30, result  # leaked, it was 4.4 GB a reload
    assert after["VmRSS"] - before["VmRSS"] < 64 << 20, result  # leaked, it was 21 KB a reload


# --- item 11: the compiled-code cache is opened as CPython opens .pyc files


def _imported_triple(mods, base: str = "triple"):
    name = mods.name(base)
    source = mods.write(f"{name}.wasm", wasmpy.wat2wasm(TRIPLE_WAT))
    return name, source


def test_symlink_at_the_temporary_name_is_not_followed(mods, hook_settings, tmp_path):
    name, source = _imported_triple(mods)
    cache = cache_file(source)
    cache.parent.mkdir()
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    temporary = Path(f"{cache}.{os.getpid()}.{threading.get_ident()}.tmp")
    temporary.symlink_to(victim)
    assert importlib.import_module(name).f(14) == 42
    assert victim.read_bytes() == b"precious"
    assert temporary.is_symlink()  # left alone: someone else's file; this import simply caches nothing
    assert not cache.exists()


def test_symlink_at_the_cache_name_is_not_read_nor_written_through(mods, hook_settings, tmp_path):
    name, source = _imported_triple(mods)
    cache = cache_file(source)
    cache.parent.mkdir()
    target = tmp_path / "planted"
    plant_cache(source, target)
    cache.symlink_to(target)
    assert importlib.import_module(name).f(14) == 42  # compiled from source, not the planted code
    assert target.read_bytes() == PLANTED
    assert not cache.is_symlink() and cache.is_file()  # replaced by a real cache file
    assert import_fresh(name).f(1) == 3


def test_fifo_at_the_cache_name_does_not_hang(tmp_path):
    (tmp_path / "fifo_cached.wat").write_text(TRIPLE_WAT)
    proc = run_python(f"""
        import json, os, sys
        import wasmpy
        from wasmpy import _hook
        sys.dont_write_bytecode = False
        cache = _hook.cache_path({str(tmp_path / "fifo_cached.wat")!r}, wasmpy.Engine.default())
        os.makedirs(os.path.dirname(cache))
        os.mkfifo(cache)  # opening it to read would wait for a writer that never comes
        sys.path.insert(0, {str(tmp_path)!r})
        import fifo_cached
        print(json.dumps({{"f": fifo_cached.f(5), "regular": os.path.isfile(cache)}}))
    """, timeout=60)
    assert child_json(proc) == {"f": 15, "regular": True}


def test_dev_zero_at_the_cache_name_does_not_eat_memory(tmp_path):
    (tmp_path / "zero_cached.wat").write_text(TRIPLE_WAT)
    proc = run_python(f"""
        import json, os, sys
        import wasmpy
        from wasmpy import _hook
        from childproc import start_rss_watchdog
        start_rss_watchdog(1 << 30)
        sys.dont_write_bytecode = False
        cache = _hook.cache_path({str(tmp_path / "zero_cached.wat")!r}, wasmpy.Engine.default())
        os.makedirs(os.path.dirname(cache))
        os.symlink("/dev/zero", cache)  # read to its end, it has none
        sys.path.insert(0, {str(tmp_path)!r})
        import zero_cached
        print(json.dumps({{"f": zero_cached.f(5), "regular": os.path.isfile(cache) and not os.path.islink(cache)}}))
    """, timeout=120)
    assert child_json(proc) == {"f": 15, "regular": True}


@pytest.mark.parametrize("source_mode", [0o600, 0o640, 0o644, 0o444], ids=lambda mode: f"{mode:o}")
def test_cache_file_mode_follows_the_source_as_pyc_files_do(mods, hook_settings, source_mode):
    """A private source gets a private cache (CPython: the source's mode, owner-writable, less the umask)."""
    name, source = _imported_triple(mods, f"mode{source_mode:o}")
    source.chmod(source_mode)
    umask = os.umask(0o022)
    try:
        assert importlib.import_module(name).f(2) == 6
    finally:
        os.umask(umask)
        source.chmod(0o644)
    assert stat.S_IMODE(cache_file(source).stat().st_mode) == (source_mode | 0o200) & 0o666 & ~0o022


def test_cache_false_reads_and_writes_nothing(mods, hook_settings):
    name, source = _imported_triple(mods)
    wasmpy.configure_import_hook(cache=False)
    module = importlib.import_module(name)
    assert module.f(14) == 42
    assert module.__cached__ is None and module.__spec__.cached is None
    assert not (mods.path / "__pycache__").exists()

    cache = cache_file(source)
    cache.parent.mkdir()
    plant_cache(source, cache)
    assert import_fresh(name).f(14) == 42  # not read
    assert cache.read_bytes() == PLANTED  # nor written
    # The planted file is one the cache would load: what cache=False protected against.
    wasmpy.configure_import_hook(cache=True)
    assert import_fresh(name).f(14) == 99


def test_cache_dir_moves_the_cache(mods, hook_settings, tmp_path, monkeypatch):
    private = tmp_path / "private-cache"
    monkeypatch.setattr(sys, "pycache_prefix", str(tmp_path / "prefix"))  # cache_dir wins over it
    monkeypatch.chdir(tmp_path)
    wasmpy.configure_import_hook(cache_dir="private-cache")  # relative to the working directory now
    name, source = _imported_triple(mods)
    module = importlib.import_module(name)
    assert module.f(3) == 9
    cache = Path(module.__cached__)
    assert cache == private / str(source.parent).lstrip(os.sep) / cache.name and cache.is_file()
    assert not (mods.path / "__pycache__").exists() and not (tmp_path / "prefix").exists()

    def no_compiling(self, *args, **kwargs):
        raise AssertionError("compiled although the cache directory holds a valid cache file")

    with monkeypatch.context() as patch:
        patch.setattr(wasmpy.Module, "__init__", no_compiling)
        assert import_fresh(name).f(4) == 12
    wasmpy.configure_import_hook(cache_dir=None)
    assert cache_file(source).parent == tmp_path / "prefix" / str(source.parent).lstrip(os.sep)


def test_configure_import_hook_changes_only_what_is_given(hook_settings, tmp_path):
    config = wasmpy.WasiConfig(argv=["tool"])
    wasmpy.configure_import_hook(wasi=config)
    wasmpy.configure_import_hook(cache=False)
    wasmpy.configure_import_hook(cache_dir=tmp_path)
    assert (_hook._wasi, _hook._cache_enabled, _hook._cache_dir) == (config, False, str(tmp_path))
    wasmpy.configure_import_hook(wasi=None, cache=True, cache_dir=None)
    assert (_hook._wasi, _hook._cache_enabled, _hook._cache_dir) == (None, True, None)


@pytest.mark.parametrize("arguments, message", [
    ({"cache": "no"}, "cache must be True or False"),
    ({"cache": 0}, "cache must be True or False"),
    ({"cache_dir": b"/tmp"}, "cache_dir must be a str"),
    ({"cache_dir": 3}, "cache_dir must be a str"),
    ({"wasi": {"argv": []}}, "wasi must be a wasmpy.WasiConfig"),
    ({"cache": False, "cache_dir": 3}, "cache_dir must be a str"),
])
def test_configure_import_hook_checks_its_arguments(hook_settings, arguments, message):
    with pytest.raises(TypeError, match=message):
        wasmpy.configure_import_hook(**arguments)
    assert (_hook._wasi, _hook._cache_enabled, _hook._cache_dir) == (None, True, None)  # nothing changed


# --- item 12: exports with Python's special names


DUNDER_NAMES = ["__class__", "__dict__", "__spec__", "__getattr__", "__loader__", "__name__", "__path__",
                "__file__", "__doc__", "__cached__", "__package__", "__builtins__", "__all__", "__dir__",
                "__wasm_instance__", "__init__", "__"]


def test_dunder_exports_do_not_break_import_or_reload(mods):
    name = mods.name("dunders")
    functions = "\n".join(f'(func (export "{export}") (result i32) (i32.const {index}))'
                          for index, export in enumerate(DUNDER_NAMES))
    source = mods.write(f"{name}.wat", f"""
        (module {functions}
          (global (export "__version__") i32 (i32.const 5))
          (func (export "value") (result i32) (i32.const 42)))
    """)
    module = importlib.import_module(name)
    for _ in range(2):
        assert module.__name__ == name and module.__spec__.name == name
        assert module.__file__ == str(source) and type(module).__name__ == "module"
        assert isinstance(module.__wasm_instance__, wasmpy.Instance)
        assert module.value() == 42
        with pytest.raises(AttributeError):
            module.absent  # noqa: B018  (no wasm __getattr__ answers it)
        assert "value" in dir(module)
        assert "WebAssembly module" in module.__doc__
        assert "__getattr__: func() -> i32" in pydoc.render_doc(module, renderer=pydoc.plaintext)
        namespace: dict = {}
        exec(f"from {name} import *", namespace)
        assert namespace["value"]() == 42
        exports = module.__wasm_instance__.exports
        assert [exports[export]() for export in DUNDER_NAMES] == list(range(len(DUNDER_NAMES)))
        assert exports["__version__"].value == 5
        module = importlib.reload(module)
