"""The import hook: ``import name`` loads ``name.wasm`` or ``name.wat`` found on sys.path.

It plugs into Python's own machinery: a :class:`importlib.machinery.FileFinder`
path hook that knows one more kind of file, so search order, packages,
``importlib.util.find_spec`` and ``importlib.reload`` behave as for any module.
Python's own files win: in one directory, ``name.py`` (or an extension
module) is imported rather than ``name.wasm``, and ``name.wasm`` rather than
``name.wat``.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.abc
import importlib.machinery
import os
import pkgutil
import platform
import sys
import threading
from types import ModuleType
from typing import Any, Dict, Iterator, Optional, Tuple

from ._checks import require_instance
from ._engine import Engine
from ._errors import CompileError, LinkError, WasmError
from ._instance import Instance
from ._module import Module
from ._store import Store
from ._wasi import WASI_MODULE, WasiConfig

__all__ = ["install_import_hook", "uninstall_import_hook", "configure_import_hook", "compile_to_cache",
           "WasmImportError", "hook_store"]

WASM_SUFFIXES = [".wasm", ".wat"]
_CACHE_MAGIC = b"wasmpy-cache-1\0"
_DIGEST_SIZE = 32


class WasmImportError(CompileError, ImportError):
    """A ``.wasm`` or ``.wat`` file found by ``import`` is malformed or invalid."""


_store: Optional[Store] = None
_store_lock = threading.Lock()
_wasi: Optional[WasiConfig] = None


def configure_import_hook(*, wasi: Optional[WasiConfig] = None) -> None:
    """Sets what the import hook gives modules that import WASI (``wasi_snapshot_preview1``).

    By default each such module gets the safe default: its name as the only
    argument, no environment, standard streams inherited, no filesystem.
    Call this before the import; ``wasi=None`` restores the default.
    """
    global _wasi
    if wasi is not None:
        require_instance(wasi, WasiConfig, "wasi")
    _wasi = wasi


def hook_store() -> Store:
    """The store shared by the modules the import hook loads, so that they can link to each other.

    Calls into it from several threads are serialised by the store's lock. A
    module that imports WASI gets a store of its own instead, since WASI state
    (arguments, environment, open files) belongs to a store.
    """
    global _store
    if _store is None:
        with _store_lock:
            if _store is None:
                _store = Store(Engine.default())
    return _store


class WasmLoader(importlib.abc.FileLoader):
    """Loads a WebAssembly module file as a Python module whose attributes are its exports."""

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Optional[ModuleType]:
        return None

    def exec_module(self, module: ModuleType) -> None:
        store = hook_store()
        compiled = _compile(self.path, store.engine, module.__name__)
        names = dict.fromkeys(i.module for i in compiled.imports if i.module != WASI_MODULE)
        if len(names) < len({i.module for i in compiled.imports}):
            # WASI state belongs to a store: each WASI module gets a store, and a sandbox, of its own.
            store = Store(store.engine, wasi=_wasi if _wasi is not None else WasiConfig(argv=[module.__name__]))
        namespaces = {name: _import_namespace(name, compiled, module.__name__) for name in names}
        instance = Instance(compiled, namespaces, store)
        if "_initialize" in instance.exports:  # a WASI reactor; a command's _start is left to the caller
            instance.exports["_initialize"]()
        module.__wasm_instance__ = instance
        module.__doc__ = _describe(self.path, compiled)
        # Where the compiled code is cached, as for a .py file's .pyc (whether or not it was written).
        module.__cached__ = cache_path(self.path, store.engine)
        if module.__spec__ is not None:
            module.__spec__.cached = module.__cached__
        for name, item in instance.exports.items():
            setattr(module, name, item)

    def get_source(self, fullname: str) -> Optional[str]:
        return None

    def get_code(self, fullname: str) -> None:
        return None


def _import_namespace(name: str, compiled: Module, importer: str) -> Any:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name is None or not (name == error.name or name.startswith(error.name + ".")):
            raise  # something else is missing, inside a module that does exist
        wanted = ", ".join(f"{i.module}.{i.name} ({i.type})" for i in compiled.imports if i.module == name)
        raise LinkError(f"{importer} imports {wanted}, but there is no module named {name!r}") from None


def _describe(path: str, compiled: Module) -> str:
    lines = [f"WebAssembly module {os.path.basename(path)}", "", "Exports:"]
    lines += [f"    {export.name}: {export.type}" for export in compiled.exports] or ["    (none)"]
    if compiled.imports:
        lines += ["", "Imports:"] + [f"    {i.module}.{i.name}: {i.type}" for i in compiled.imports]
    return "\n".join(lines)


# --- compiled-code cache, like .pyc files

def _compile(path: str, engine: Engine, name: str, write_cache: Optional[bool] = None) -> Module:
    """Compiles ``path``, or loads it from the cache; writes the cache unless told not to.

    ``write_cache`` defaults to ``not sys.dont_write_bytecode``.
    """
    with open(path, "rb") as file:
        source = file.read()
    digest = hashlib.sha256(source).digest()
    cache = cache_path(path, engine)
    cached = _read_cache(cache, digest, engine)
    if cached is not None:
        return cached
    try:
        compiled = Module(source, engine) if source.startswith(b"\0asm") else Module(
            source.decode("utf-8", "replace"), engine)
    except CompileError as error:
        raise WasmImportError(f"cannot import {name} from {path}: {error}", name=name, path=path) from None
    if not sys.dont_write_bytecode if write_cache is None else write_cache:
        _write_cache(cache, digest, compiled)
    return compiled


def compile_to_cache(path: str, engine: Optional[Engine] = None) -> Optional[str]:
    """Fills the import hook's cache for ``path`` (as ``wasmpy compile`` does); returns the cache file.

    None if the cache could not be written (e.g. a read-only directory).
    """
    engine = engine or Engine.default()
    _compile(path, engine, os.path.splitext(os.path.basename(path))[0], write_cache=True)
    cache = cache_path(path, engine)
    return cache if os.path.exists(cache) else None


def cache_path(source_path: str, engine: Engine) -> str:
    """Where the compiled code of ``source_path`` is cached (honours ``sys.pycache_prefix``)."""
    head, tail = os.path.split(os.path.abspath(source_path))
    filename = f"{tail}.{_cache_tag(engine)}.cwasm"
    if sys.pycache_prefix:
        return os.path.join(sys.pycache_prefix, head.lstrip(os.sep), filename)
    return os.path.join(head, "__pycache__", filename)


_cache_tags: Dict[str, str] = {}


def _cache_tag(engine: Engine) -> str:
    """Names what changes compiled code: wasmtime's version, the engine settings, the CPU."""
    settings = repr(sorted(engine.config.items()))
    tag = _cache_tags.get(settings)
    if tag is None:
        from . import WASMTIME_VERSION

        key = repr((WASMTIME_VERSION, settings, platform.machine(), _cpu_flags()))
        tag = _cache_tags[settings] = "wasmtime-" + hashlib.sha256(key.encode()).hexdigest()[:16]
    return tag


def _cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _read_cache(cache: str, digest: bytes, engine: Engine) -> Optional[Module]:
    try:
        with open(cache, "rb") as file:
            data = file.read()
    except OSError:
        return None
    header = len(_CACHE_MAGIC) + _DIGEST_SIZE
    if not data.startswith(_CACHE_MAGIC) or data[len(_CACHE_MAGIC):header] != digest:
        return None  # foreign, truncated, or compiled from other source: rebuild
    try:
        return Module.deserialize(data[header:], engine)
    except WasmError:
        return None  # corrupt, or made by another wasmtime: rebuild


def _write_cache(cache: str, digest: bytes, compiled: Module) -> None:
    temporary = f"{cache}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        os.makedirs(os.path.dirname(cache), exist_ok=True)
        with open(temporary, "wb") as file:
            file.write(_CACHE_MAGIC + digest + compiled.serialize())
        os.replace(temporary, cache)
    except OSError:  # a read-only directory just means no cache
        try:
            os.unlink(temporary)
        except OSError:
            pass


# --- installing the hook

def _loader_details():
    machinery = importlib.machinery
    return [
        (machinery.ExtensionFileLoader, machinery.EXTENSION_SUFFIXES),
        (machinery.SourceFileLoader, machinery.SOURCE_SUFFIXES),
        (machinery.SourcelessFileLoader, machinery.BYTECODE_SUFFIXES),
        (WasmLoader, WASM_SUFFIXES),
    ]


class WasmFileFinder(importlib.machinery.FileFinder):
    """Python's directory finder, made by the hook: it knows ``.wasm`` and ``.wat`` files too."""


def _iter_modules(finder: WasmFileFinder, prefix: str = "") -> Iterator[Tuple[str, bool]]:
    """``pkgutil.iter_modules`` for the hook's directories: Python's modules, then the wasm ones."""
    python_modules = pkgutil.iter_importer_modules.dispatch(importlib.machinery.FileFinder)
    seen = set()
    for name, is_package in python_modules(finder, prefix):
        seen.add(name)
        yield name, is_package
    try:
        filenames = sorted(os.listdir(finder.path or "."))
    except OSError:
        return
    for filename in filenames:
        stem, suffix = os.path.splitext(filename)
        if suffix in WASM_SUFFIXES and stem.isidentifier() and prefix + stem not in seen:
            seen.add(prefix + stem)
            yield prefix + stem, False


pkgutil.iter_importer_modules.register(WasmFileFinder, _iter_modules)
_path_hook = WasmFileFinder.path_hook(*_loader_details())


def _is_file_finder_hook(hook: Any) -> bool:
    return getattr(hook, "__qualname__", "").startswith("FileFinder.path_hook")


def install_import_hook() -> None:
    """Makes ``import name`` find ``name.wasm`` / ``name.wat`` (done by ``import wasmpy``)."""
    if _path_hook in sys.path_hooks:
        return
    position = next((i for i, hook in enumerate(sys.path_hooks) if _is_file_finder_hook(hook)),
                    len(sys.path_hooks))
    sys.path_hooks.insert(position, _path_hook)
    _forget_finders()


def uninstall_import_hook() -> None:
    """Undoes :func:`install_import_hook`; modules already imported stay."""
    while _path_hook in sys.path_hooks:
        sys.path_hooks.remove(_path_hook)
    _forget_finders()


def _forget_finders() -> None:
    """Drops cached directory finders, so that the next import makes them with the current hooks."""
    for path, finder in list(sys.path_importer_cache.items()):
        if isinstance(finder, importlib.machinery.FileFinder) or finder is None:
            del sys.path_importer_cache[path]
