"""The import hook: ``import name`` loads ``name.wasm`` or ``name.wat`` found on sys.path.

It plugs into Python's own machinery: a :class:`importlib.machinery.FileFinder`
path hook that knows one more kind of file, so search order, packages,
``importlib.util.find_spec`` and ``importlib.reload`` behave as for any module.
Python's own files win: in one directory, ``name.py`` (or an extension
module) is imported rather than ``name.wasm``, and ``name.wasm`` rather than
``name.wat``.

A file may hold a core module or a component (told by the binary's layer field, or by WAT text
that starts with ``(component``): see :class:`WasmLoader` for what each becomes, and
:func:`configure_import_hook` for where their imports come from.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import importlib
import importlib.abc
import importlib.machinery
import json
import os
import pkgutil
import stat
import sys
import threading
from collections.abc import Mapping
from types import ModuleType
from typing import Any, Dict, Iterator, List, Optional, Tuple, Type, Union, cast

from ._checks import require_instance
from ._engine import Engine, compiled_code_key
from ._errors import CompileError, LinkError, WasmError
from ._func import Func
from ._global import Global
from ._instance import Instance
from ._memory import Memory
from ._module import Module, SourceFile, error_in_file
from ._store import Store
from ._table import Table
from ._tag import Tag
from ._types import ImportType
from ._wasi import WASI_MODULE, WasiConfig
from .component._component import Component, is_component, text_is_component
from .component._instance import ComponentInstance, listed_interfaces
from .component._values import interface_attribute, namespace_member, snake_case, without_version

__all__ = ["install_import_hook", "uninstall_import_hook", "configure_import_hook", "compile_to_cache",
           "WasmImportError", "hook_store", "component_import_module", "WORLD_IMPORTS_MODULE"]

WASM_SUFFIXES = [".wasm", ".wat"]
# The cache's sidecar (``<artifact>.meta``): this magic line, then JSON saying what proves the
# artifact beside it current; never more than _SIDECAR_LIMIT bytes.
_SIDECAR_MAGIC = b"wasmpy-cache-2\n"
_SIDECAR_LIMIT = 4096


class WasmImportError(CompileError, ImportError):
    """A ``.wasm`` or ``.wat`` file found by ``import`` is malformed or invalid."""


class _Unchanged(enum.Enum):
    """The default of :func:`configure_import_hook`'s arguments: the setting stays as it is."""

    UNCHANGED = "unchanged"

    def __repr__(self) -> str:
        return "unchanged"


_UNCHANGED = _Unchanged.UNCHANGED

_store: Optional[Store] = None
_store_lock = threading.Lock()
_wasi: Optional[WasiConfig] = None
_cache_enabled = True
_cache_dir: Optional[str] = None
_component_imports: Dict[str, Any] = {}

# Where a component's world-level function imports (``import log: func(...)`` in its world) come
# from, as core modules' imports of the namespace "env" do (see component_import_module).
WORLD_IMPORTS_MODULE = "env"
# The interfaces wasmtime's WASI 0.2 gives a component (from its store's WASI configuration).
_WASI_INTERFACES = "wasi:"


def configure_import_hook(*, wasi: Union[Optional[WasiConfig], _Unchanged] = _UNCHANGED,
                          cache: Union[bool, _Unchanged] = _UNCHANGED,
                          cache_dir: Union[str, "os.PathLike[str]", None, _Unchanged] = _UNCHANGED,
                          component_imports: Union[Mapping, None, _Unchanged] = _UNCHANGED) -> None:
    """Sets how the import hook loads modules; each setting given changes, the others stay.

    ``wasi`` is what modules that import WASI (``wasi_snapshot_preview1``) get.
    By default (``wasi=None``) each such module gets the safe default: its name
    as the only argument, no environment, standard streams inherited, no
    filesystem. WASI functions are overridden one by one as other imports are
    resolved, from a Python module of the namespace's name: when a module
    named ``wasi_snapshot_preview1`` can be imported, each of its attributes
    named like a WASI function the wasm module imports replaces that function
    (a Python function gets the import's type and returns the WASI errno),
    and WASI provides the rest.

    ``cache=False`` turns the compiled-code cache off: nothing is read from it
    or written to it, and every import compiles. ``cache=True`` (the default)
    turns it back on.

    ``cache_dir`` puts the cache in a directory of your choosing, mirroring the
    source tree under it as ``sys.pycache_prefix`` does (which the hook
    honours too, when no ``cache_dir`` is set); ``cache_dir=None`` (the
    default) keeps it in ``__pycache__`` beside each source. The cache holds
    native code that is run without further checks, trusted like a ``.pyc``:
    whoever can write it can run code in your process. For modules in
    directories others can write to, use a ``cache_dir`` only you can write
    to, or ``cache=False``.

    ``component_imports`` gives components what they import, instead of the Python modules the
    hook would import for them: a mapping, as ``wasmpy.Instance(component, imports)`` takes,
    of WIT interface names (``"test:rich/host"``, with or without ``@version``) to namespaces
    (a dict, module or object whose members are named in WIT or snake_case), and of world-level
    function names to functions. It applies to every component the hook loads; what it does not
    name comes from Python modules: interface ``ns:pkg/iface@version`` from the module
    ``ns_pkg.iface`` (see :func:`component_import_module`), world-level functions from the
    module ``env`` (``WORLD_IMPORTS_MODULE``). WASI interfaces (``wasi:*``) always come from
    the component's store, with the ``wasi`` setting above (or its safe default).
    ``component_imports=None`` clears it. The mapping is copied.

    Call this before the import: modules already imported keep what they got.
    """
    global _wasi, _cache_enabled, _cache_dir, _component_imports
    # Every argument is checked before any setting changes.
    if wasi is not _UNCHANGED and wasi is not None:
        require_instance(wasi, WasiConfig, "wasi")
    if cache is not _UNCHANGED and not isinstance(cache, bool):
        raise TypeError(f"cache must be True or False, not {type(cache).__name__}")
    if cache_dir is not _UNCHANGED and cache_dir is not None:
        if not isinstance(cache_dir, (str, os.PathLike)) or not isinstance(os.fspath(cache_dir), str):
            raise TypeError(f"cache_dir must be a str or os.PathLike[str] path, or None, "
                            f"not {type(cache_dir).__name__}")
        cache_dir = os.path.abspath(os.fspath(cache_dir))  # what it means now, whatever the cwd later
    if component_imports is not _UNCHANGED and component_imports is not None:
        if not isinstance(component_imports, Mapping):
            raise TypeError(f"component_imports must be a mapping of WIT names to namespaces and functions, "
                            f"or None, not {type(component_imports).__name__}")
        for key in component_imports:
            if not isinstance(key, str):
                raise TypeError(f"component_imports' keys are WIT names (str), not {type(key).__name__}")
    if wasi is not _UNCHANGED:
        _wasi = wasi
    if cache is not _UNCHANGED:
        _cache_enabled = cache
    if cache_dir is not _UNCHANGED:
        _cache_dir = cache_dir
    if component_imports is not _UNCHANGED:
        _component_imports = dict(component_imports or {})


def hook_store() -> Store:
    """A store shared by Python code that makes wasm objects for hook-loaded modules to import.

    Each module the hook loads is instantiated in a store of its own, which is
    freed with the module (``importlib.reload`` makes a new one), unless its
    imports belong to a store: wasm links only within one store, so a module
    that imports another hook-loaded module's exports, or memories, tables,
    globals or functions Python code made, joins the store they belong to.
    This store is the one to make such objects in, e.g.
    ``wasmpy.Memory(wasmpy.hook_store(), wasmpy.MemoryType(1))``; any other
    store works the same way. A module's own store is
    ``module.__wasm_instance__.store``.

    Calls into a store from several threads are serialised by its lock.
    """
    global _store
    if _store is None:
        with _store_lock:
            if _store is None:
                _store = Store(Engine.default())
    return _store


def _is_dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__")


class WasmLoader(importlib.abc.FileLoader):
    """Loads a WebAssembly module or component file as a Python module whose attributes are its exports.

    The instance is ``module.__wasm_instance__``; each export is also a module
    attribute, except exports named like Python's special names (beginning and
    ending with ``__``, such as ``__name__``, ``__spec__`` or ``__getattr__``),
    which would break the module: those are reachable only as
    ``module.__wasm_instance__.exports["__name__"]``.

    A component's attributes are its world-level functions (in snake_case, and under their
    WIT name too where that is an identifier), its exported interfaces as namespaces under
    their last segment in snake_case (``test:rich/api@0.1.0`` is ``module.api``; the full names
    are keys of ``module.__wasm_instance__.exports``) and its world-level generated types.
    The module's docstring (``help(module)``) lists its exports and imports in WIT.
    """

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Optional[ModuleType]:
        return None

    def exec_module(self, module: ModuleType) -> None:
        name = module.__name__
        compiled = _compile(self.path, Engine.default(), name, kind=None)
        if isinstance(compiled, Component):
            self._exec_component(module, compiled)
            return
        imports_wasi = any(i.module == WASI_MODULE for i in compiled.imports)
        wanted = [i for i in compiled.imports if i.module != WASI_MODULE]  # those Python gives
        namespaces = {i.module: _import_namespace(i.module, compiled, name) for i in wanted}
        values = [_import_value(namespaces[i.module], i) for i in wanted]
        if imports_wasi:
            for imported, value in _wasi_overrides(compiled):
                wanted.append(imported)
                values.append(value)
        store = _store_for(name, wanted, values, imports_wasi)
        if store.engine is not compiled.engine:  # joining a store of another engine
            # kind=Module (_compile's default): load_cached makes a Module or raises.
            compiled = cast(Module, _compile(self.path, store.engine, name))
        given: Dict[str, Dict[str, Any]] = {}  # the values looked up once, by namespace and name
        for imported, value in zip(wanted, values):
            given.setdefault(imported.module, {})[imported.name] = value
        instance = Instance(compiled, given, store)
        initialize = instance.exports["_initialize"] if "_initialize" in instance.exports else None
        if isinstance(initialize, Func):  # a WASI reactor; a command's _start is left to the caller
            initialize()
        setattr(module, "__wasm_instance__", instance)  # attributes ModuleType does not declare
        module.__doc__ = _describe(self.path, compiled)
        # Where the compiled code is cached, as for a .py file's .pyc (whether or not it was written).
        cached = cache_path(self.path, store.engine) if _cache_enabled else None
        setattr(module, "__cached__", cached)
        if module.__spec__ is not None:
            module.__spec__.cached = cached
        for export, item in instance.exports.items():
            if not _is_dunder(export):
                setattr(module, export, item)

    def _exec_component(self, module: ModuleType, compiled: Component) -> None:
        name = module.__name__
        imports, origins = _component_imports_of(name, compiled)
        if any(interface.startswith(_WASI_INTERFACES) for interface in compiled.imports.interfaces):
            store = Store(compiled.engine, wasi=_wasi if _wasi is not None else WasiConfig(argv=[name]))
        else:
            store = Store(compiled.engine)
        instance = ComponentInstance(compiled, imports, store)
        setattr(module, "__wasm_instance__", instance)
        cached = cache_path(self.path, compiled.engine, component=True) if _cache_enabled else None
        setattr(module, "__cached__", cached)
        if module.__spec__ is not None:
            module.__spec__.cached = cached
        for attribute, value in instance.exports.module_attributes().items():
            if not _is_dunder(attribute):
                setattr(module, attribute, value)
        module.__doc__ = _describe_component(self.path, name, compiled, origins)

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


def _wasi_overrides(compiled: Module) -> List[Tuple[ImportType, Any]]:
    """The WASI imports of ``compiled`` that a Python module named ``wasi_snapshot_preview1`` (if
    there is one) gives, with its values: these replace WASI's functions, as other namespaces'
    modules give their imports."""
    try:
        namespace = importlib.import_module(WASI_MODULE)
    except ModuleNotFoundError as error:
        if error.name != WASI_MODULE:
            raise  # something else is missing, inside a module that does exist
        return []
    found = [(i, getattr(namespace, i.name, _MISSING)) for i in compiled.imports if i.module == WASI_MODULE]
    return [(imported, value) for imported, value in found if value is not _MISSING]


_MISSING = object()


def _import_value(namespace: ModuleType, imported: ImportType) -> Any:
    """The attribute an import names, looked up once (it decides the store, then is linked)."""
    value = getattr(namespace, imported.name, _MISSING)
    if value is _MISSING:
        raise LinkError(f"missing import {imported.module}.{imported.name}: expected {imported.type}, "
                        f"but module {imported.module!r} has no attribute {imported.name!r}")
    return value


_STORE_BOUND = (Func, Memory, Global, Table, Tag)


def _store_for(name: str, wanted: List[ImportType], values: List[Any], imports_wasi: bool) -> Store:
    """The store to instantiate module ``name`` in: the one its imports belong to, else a new one.

    A new store per module is what lets a module's instance be freed with it;
    wasmtime frees instances only with their store.
    """
    owners: Dict[int, Tuple[Store, str]] = {}  # store id -> (store, the first import from it)
    for imported, value in zip(wanted, values):
        if isinstance(value, _STORE_BOUND):
            owners.setdefault(id(value.store), (value.store, f"{imported.module}.{imported.name}"))
    if imports_wasi:
        if owners:
            _, where = next(iter(owners.values()))
            raise LinkError(f"{name} imports WASI, so it gets a store (and a sandbox) of its own, but it also "
                            f"imports {where}, which belongs to another store: wasm links only within one store")
        return Store(Engine.default(), wasi=_wasi if _wasi is not None else WasiConfig(argv=[name]))
    if len(owners) > 1:
        (_, first), (_, second) = list(owners.values())[:2]
        raise LinkError(f"{name} imports {first} and {second}, which belong to different stores: "
                        "wasm links only within one store")
    if owners:
        store, _ = next(iter(owners.values()))
        return store
    return Store(Engine.default())


def component_import_module(interface: str) -> str:
    """The Python module the import hook imports a component's interface from, when
    ``configure_import_hook(component_imports=...)`` does not give it: ``ns:pkg/iface`` (with or
    without ``@version``) comes from ``ns_pkg.iface`` (a module ``iface`` in the package
    ``ns_pkg``, its names in snake_case: ``my-org:http-tools/fetch-api`` is
    ``my_org_http_tools.fetch_api``); an interface named without a package (``import foo:
    interface {...}`` in a world) from the module ``foo``."""
    package, slash, last = without_version(interface).rpartition("/")
    if not slash:
        return snake_case(last)
    return f"{snake_case(package.replace(':', '-'))}.{snake_case(last)}"


def _given(name: str, snake: bool) -> Any:
    """What ``configure_import_hook(component_imports=...)`` gives the import ``name``, if anything."""
    for key in dict.fromkeys((name, without_version(name), snake_case(name) if snake else name)):
        if key in _component_imports:
            return _component_imports[key]
    return _MISSING


_GIVEN_BY_CONFIGURATION = "configure_import_hook(component_imports=...)"


def _component_imports_of(importer: str, compiled: Component) -> Tuple[Dict[str, Any], Dict[str, str]]:
    """What component ``importer`` imports, as ``Instance`` takes it, and where each import came
    from (for its docstring): configure_import_hook's ``component_imports``, else the Python
    modules named by :func:`component_import_module` and ``WORLD_IMPORTS_MODULE``."""
    items = compiled.imports
    imports: Dict[str, Any] = {}
    origins: Dict[str, str] = {}
    world_module: Any = None
    for function, functype in items.functions.items():
        value = _given(function, snake=True)
        if value is not _MISSING:
            imports[function], origins[function] = value, _GIVEN_BY_CONFIGURATION
            continue
        if world_module is None:
            wanted = ", ".join(f"{f} (WIT {t})" for f, t in items.functions.items()
                               if _given(f, snake=True) is _MISSING)
            world_module = _component_namespace(WORLD_IMPORTS_MODULE, importer, f"the functions {wanted}")
        value = namespace_member(world_module, function)
        if value is None:
            raise LinkError(f"missing import {function}: {importer} imports the function {function} (WIT {functype}), "
                            f"but module {WORLD_IMPORTS_MODULE!r} has no attribute {snake_case(function)!r}")
        imports[function], origins[function] = value, f"module {WORLD_IMPORTS_MODULE}"
    for interface_name, interface in items.interfaces.items():
        if interface_name.startswith(_WASI_INTERFACES):
            origins[interface_name] = "the store's WASI"
            continue
        value = _given(interface_name, snake=False)
        if value is not _MISSING:
            imports[interface_name], origins[interface_name] = value, _GIVEN_BY_CONFIGURATION
            continue
        module_name = component_import_module(interface_name)
        namespace = _component_namespace(module_name, importer, f"the interface {interface_name}")
        for function, functype in interface.functions.items():
            # [constructor]r, [method]r.m, [static]r.f are the resource's class's (the linker checks them).
            if not function.startswith("[") and namespace_member(namespace, function) is None:
                raise LinkError(f"missing import {interface_name}#{function}: {importer} imports it (WIT {functype}), "
                                f"but module {module_name!r} has no attribute {snake_case(function)!r}")
        imports[interface_name], origins[interface_name] = namespace, f"module {module_name}"
    return imports, origins


def _component_namespace(module_name: str, importer: str, wanted: str) -> Any:
    """The Python module ``module_name``, imported for ``importer``'s imports ``wanted``."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name is None or not (module_name == error.name or module_name.startswith(error.name + ".")):
            raise  # something else is missing, inside a module that does exist
        raise LinkError(f"{importer} imports {wanted}, but there is no Python module named {module_name!r} to "
                        f"give it (the import hook's rule), and configure_import_hook(component_imports=...) "
                        f"gives none") from None


def _describe_component(path: str, name: str, compiled: Component, origins: Dict[str, str]) -> str:
    """The docstring of a hook-loaded component: its exports and imports in WIT, with the Python
    names of the exports and where each import came from (as ``// comments``)."""
    exports, imports = compiled.exports, compiled.imports
    lines = [f"WebAssembly component {os.path.basename(path)}", "", "Exports (WIT), as attributes of this module:"]
    lines += [f"    {typ.definition() if hasattr(typ, 'definition') else typ};" for typ in exports.types.values()]
    for function, functype in exports.functions.items():
        attribute = snake_case(function)
        lines.append(f"    {functype};" + ("" if attribute == function else f"  // {name}.{attribute}"))
    listed = listed_interfaces(exports)
    for interface_name, interface in listed.items():
        attribute = interface_attribute(interface_name)
        lines.append(_indented(str(interface).replace("{", f"{{  // {name}.{attribute}", 1)))
    if len(lines) == 3:
        lines.append("    (none)")
    for interface_name in exports.interfaces.keys() - listed.keys():
        lines.append(f"    // not listed: {interface_name}, componentize-py's own (its init ran when the component "
                     "was built)")
    if imports.functions or imports.interfaces or imports.types:
        lines += ["", "Imports (WIT), and where they come from:"]
        lines += [f"    {typ.definition() if hasattr(typ, 'definition') else typ};" for typ in imports.types.values()]
        lines += [f"    {functype};  // from {origins[function]}" for function, functype in imports.functions.items()]
        for interface_name, interface in imports.interfaces.items():
            lines.append(_indented(str(interface).replace("{", f"{{  // from {origins[interface_name]}", 1)))
    return "\n".join(lines)


def _indented(text: str) -> str:
    return "    " + text.replace("\n", "\n    ")


def _describe(path: str, compiled: Module) -> str:
    lines = [f"WebAssembly module {os.path.basename(path)}", "", "Exports:"]
    lines += [f"    {export.name}: {export.type}" for export in compiled.exports] or ["    (none)"]
    if compiled.imports:
        lines += ["", "Imports:"] + [f"    {i.module}.{i.name}: {i.type}" for i in compiled.imports]
    return "\n".join(lines)


# --- compiled-code cache, like .pyc files
#
# The cache holds native code that wasmtime runs without checking it further, so it is trusted as
# a .pyc is: whoever can write it can run code in this process. Each entry is two files: the
# artifact (Module.serialize's or Component.serialize's output, which wasmtime maps rather than
# wasmpy reading it; a component's named <source>.<tag>.component.cwasm) and a sidecar
# (<artifact>.meta) recording the source's size, mtime and digest, the engine key, the wasmtime
# version, the kind of code and the artifact's inode, size and mtime; these guard against accidents (a stale
# source, an artifact replaced, truncated or written into since), not attacks. The artifact is not
# hashed on load, so damage that keeps its size and mtime (a failing disk) goes unnoticed, as for a
# .pyc. Its files are opened as CPython opens .pyc files, so that nothing planted at a cache path
# (a symlink, a FIFO, a device) makes the import overwrite another file, hang or read without end.

_O_BINARY = getattr(os, "O_BINARY", 0)  # Windows: no newline translation
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


Compiled = Union[Module, Component]
# What the sidecar calls each kind of compiled code; a module's sidecar says nothing (as before
# components), which means a module.
_KINDS: Dict[type, str] = {Module: "module", Component: "component"}


def _compile(path: str, engine: Engine, name: str, write_cache: Optional[bool] = None,
             kind: Optional[Type[Compiled]] = Module) -> Compiled:
    """Compiles ``path``, or loads it from the cache; writes the cache unless told not to.

    ``write_cache`` defaults to whether the cache is on and ``not sys.dont_write_bytecode``;
    with the cache off (``configure_import_hook(cache=False)``) nothing is read from it either.
    ``kind`` is Module or Component, or None for what the file holds.
    """
    try:
        return load_cached(path, engine, write_cache, kind)
    except CompileError as error:
        raise WasmImportError(f"cannot import {name}: {error}", name=name, path=path) from None


def load_cached(path: str, engine: Engine, write_cache: Optional[bool] = None,
                kind: Optional[Type[Compiled]] = None) -> Compiled:
    """The module or component (``kind``: Module or Component; None: what the file holds) in
    the file ``path``, from the import hook's cache if that is current, else compiled
    (CompileError naming the file) and cached unless ``write_cache`` is False (None: whether
    the cache is on and ``not sys.dont_write_bytecode``); for imports (:func:`_compile`),
    ``wasmpy.run`` and the command line.

    A warm load reads the sidecar (a few hundred bytes) and maps the artifact; the source is
    read and hashed only when its size or mtime differ from the sidecar's.
    """
    if write_cache is None:
        write_cache = _cache_enabled and not sys.dont_write_bytecode
    with open(path, "rb") as file:
        status = os.fstat(file.fileno())
        if kind is None:
            kind = Component if holds_component(file) else Module
        cache = cache_path(path, engine, component=kind is Component)
        source: Optional[bytes] = None
        if _cache_enabled:
            cached, source = _read_cache(cache, file, status, engine, write_cache, kind)
            if cached is not None:
                cached._wasm_source = SourceFile.of(path, status)
                return cached
        if source is None:
            source = file.read()
    try:
        compiled = kind(source, engine) if source.startswith(b"\0asm") else kind(
            source.decode("utf-8", "replace"), engine)
    except CompileError as error:
        raise error_in_file(error, path) from None
    if write_cache:
        _write_cache(cache, _source_proof(status, source), compiled, status.st_mode)
    compiled._wasm_source = SourceFile.of(path, status)
    return compiled


_SNIFF_SIZE = 4096


def holds_component(file: Any) -> bool:
    """Whether the open file holds a component (else a core module), from its first bytes: a
    binary's layer field, or the first token of WAT text after its comments (read on as far as
    they go); the file is left at its start."""
    head = b""
    size = _SNIFF_SIZE
    try:
        while True:
            chunk = file.read(size)
            head += chunk
            if head.startswith(b"\0asm") or len(head) < 4 and chunk and b"\0asm".startswith(head):
                if len(head) >= 8 or not chunk:
                    return is_component(head[:8])
            else:
                verdict = text_is_component(head.decode("utf-8", "replace"), complete=not chunk)
                if verdict is not None:
                    return verdict
            size *= 2  # a long leading comment is read in O(its length)
    finally:
        file.seek(0)


def _source_proof(status: os.stat_result, source: bytes) -> Dict[str, Any]:
    """What the sidecar records of the source: its size and mtime (checked first, as for a .pyc),
    and its SHA-256 (checked only when those differ, so that a touched but unchanged file, e.g. a
    fresh checkout, still loads from the cache)."""
    return {"source_size": status.st_size, "source_mtime_ns": status.st_mtime_ns,
            "source_sha256": hashlib.sha256(source).hexdigest()}


def compile_to_cache(path: str, engine: Optional[Engine] = None) -> Optional[str]:
    """Fills the import hook's cache for ``path``, a module's or a component's (whichever the
    file holds; ``wasmpy compile`` does this for modules); returns the cache file.

    It writes where the hook looks (see :func:`cache_path`), even while the hook's
    cache is turned off, as ``py_compile`` writes a ``.pyc`` whatever
    ``sys.dont_write_bytecode`` says. None if the cache could not be written
    (e.g. a read-only directory).
    """
    engine = engine or Engine.default()
    compiled = load_cached(path, engine, True, None)  # compiles if stale; a CompileError names the file
    cache = cache_path(path, engine, component=isinstance(compiled, Component))
    return cache if os.path.exists(cache) else None


def cache_path(source_path: str, engine: Engine, component: bool = False) -> str:
    """Where the compiled code of ``source_path`` is cached (of the component it holds, if
    ``component``: a module's and a component's code have names of their own, never mixed).

    Under ``configure_import_hook(cache_dir=...)``, else under ``sys.pycache_prefix``,
    the source's directory is mirrored; otherwise it is ``__pycache__`` beside the source.
    """
    head, tail = os.path.split(os.path.abspath(source_path))
    filename = f"{tail}.{_cache_tag(engine)}.{'component.' if component else ''}cwasm"
    prefix = _cache_dir or sys.pycache_prefix
    if prefix:
        return os.path.join(prefix, os.path.splitdrive(head)[1].lstrip(os.sep), filename)
    return os.path.join(head, "__pycache__", filename)


def _cache_tag(engine: Engine) -> str:
    """Names what changes compiled code: wasmtime's version, the engine settings, the CPU."""
    return "wasmtime-" + compiled_code_key(engine)[:16]


def _open_regular_file(path: str) -> Optional[Tuple[int, os.stat_result]]:
    """A descriptor of ``path`` and its status if it is a regular file (not a symlink, FIFO or
    device), else None; the caller closes it. O_NONBLOCK makes opening a FIFO return at once
    instead of waiting for a writer."""
    try:
        fd = os.open(path, os.O_RDONLY | _O_NOFOLLOW | _O_NONBLOCK | _O_CLOEXEC | _O_BINARY)
    except OSError:  # absent, a symlink (ELOOP), unreadable...
        return None
    try:
        status = os.fstat(fd)
    except OSError:
        os.close(fd)
        return None
    if not stat.S_ISREG(status.st_mode):
        os.close(fd)
        return None
    return fd, status


def _read_sidecar(path: str) -> Optional[Dict[str, Any]]:
    """The sidecar's record, or None if it is absent, not a regular file, too long or malformed."""
    opened = _open_regular_file(path)
    if opened is None:
        return None
    fd, status = opened
    try:
        if status.st_size > _SIDECAR_LIMIT:
            return None
        data = os.read(fd, _SIDECAR_LIMIT + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    if not data.startswith(_SIDECAR_MAGIC):
        return None
    try:
        record = json.loads(data[len(_SIDECAR_MAGIC):].decode("utf-8"))
    except ValueError:  # JSON or UTF-8
        return None
    return record if isinstance(record, dict) else None


def _artifact_identity(status: os.stat_result) -> Dict[str, int]:
    """What tells the artifact wasmpy wrote from any other file later put or written at its path:
    it is written once, then renamed into place, and never changed, so a file put there since
    has another inode, and one written into has another mtime (not the ctime: renaming sets it)."""
    return {"artifact_inode": status.st_ino, "artifact_size": status.st_size,
            "artifact_mtime_ns": status.st_mtime_ns}


def _read_cache(cache: str, file: Any, status: os.stat_result, engine: Engine, refresh: bool,
                kind: Type[Compiled]) -> Tuple[Optional[Compiled], Optional[bytes]]:
    """The cached module or component (``kind``) for the source open as ``file`` (of status
    ``status``), or None when the cache is absent, stale, foreign, of the other kind or damaged;
    and the source if it had to be read (else None).
    With ``refresh``, a sidecar whose source size or mtime were out of date but whose digest
    matched is rewritten, so that the next import does not read the source again."""
    from . import WASMTIME_VERSION

    record = _read_sidecar(cache + ".meta")
    if (record is None or record.get("engine") != _cache_tag(engine) or record.get("wasmtime") != WASMTIME_VERSION
            or record.get("kind", "module") != _KINDS[kind]):
        return None, None
    source = None
    if (record.get("source_size"), record.get("source_mtime_ns")) != (status.st_size, status.st_mtime_ns):
        source = file.read()
        if record.get("source_sha256") != hashlib.sha256(source).hexdigest():
            return None, source  # compiled from other source: rebuild
    opened = _open_regular_file(cache)
    if opened is None:
        return None, source
    fd, artifact_status = opened
    try:
        if any(record.get(key) != value for key, value in _artifact_identity(artifact_status).items()):
            return None, source  # replaced or written to since: rebuild
        try:
            compiled = kind._from_descriptor(fd, cache, engine)
        except WasmError:
            return None, source  # made by another wasmtime, or damaged in its layout: rebuild
    finally:
        os.close(fd)
    if source is not None and refresh:
        _write_sidecar(cache, _source_proof(status, source), engine, artifact_status, status.st_mode, kind)
    return compiled, source


def _write_atomically(path: str, data: bytes, mode: int) -> Optional[os.stat_result]:
    """Writes ``path`` atomically, as CPython writes a ``.pyc`` (``importlib._bootstrap_external``);
    the written file's status, or None if it could not be written.

    The temporary file is created exclusively and never through a symlink, so that nothing
    planted at its name is followed or overwritten; ``os.replace`` then renames it over ``path``
    (replacing whatever is there, a symlink included, rather than writing through it).
    """
    temporary = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC | _O_BINARY, mode)
    except OSError:  # a read-only directory, or something already at the temporary name
        return None
    try:
        with open(fd, "wb") as file:
            file.write(data)
            file.flush()
            status = os.fstat(file.fileno())
        os.replace(temporary, path)
        return status
    except OSError:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        return None


def _write_cache(cache: str, source_proof: Dict[str, Any], compiled: Compiled, source_mode: int) -> None:
    """Writes the artifact (what Module.serialize gives: wasmtime's own format, mapped when
    loaded), then its sidecar, each atomically; their mode is the source's, made writable by the
    owner, less the umask. A reader that finds the new artifact with the old sidecar (between the
    two renames) sees another inode, and compiles."""
    try:
        os.makedirs(os.path.dirname(cache), exist_ok=True)
    except OSError:  # e.g. a file where the directory would be: no cache
        return
    artifact = _write_atomically(cache, compiled.serialize(), (source_mode | 0o200) & 0o666)
    if artifact is not None:
        _write_sidecar(cache, source_proof, compiled.engine, artifact, source_mode, type(compiled))


def _write_sidecar(cache: str, source_proof: Dict[str, Any], engine: Engine, artifact: os.stat_result,
                   source_mode: int, kind: Type[Compiled]) -> None:
    """Writes what proves the artifact at ``cache`` (of status ``artifact``, a ``kind``'s compiled
    code) current, atomically."""
    from . import WASMTIME_VERSION

    record = {"engine": _cache_tag(engine), "wasmtime": WASMTIME_VERSION, **source_proof,
              **_artifact_identity(artifact)}
    if kind is not Module:  # a module's sidecar says nothing of its kind, as before components
        record["kind"] = _KINDS[kind]
    _write_atomically(cache + ".meta", _SIDECAR_MAGIC + json.dumps(record).encode(), (source_mode | 0o200) & 0o666)


# --- installing the hook

def _loader_details():
    machinery = importlib.machinery
    return [
        (machinery.ExtensionFileLoader, machinery.EXTENSION_SUFFIXES),
        (machinery.SourceFileLoader, machinery.SOURCE_SUFFIXES),
        (machinery.SourcelessFileLoader, machinery.BYTECODE_SUFFIXES),
        (WasmLoader, WASM_SUFFIXES),
    ]


# What pkgutil.iter_modules asks of each finder (a functools.singledispatch function): there since
# Python 3.4 but undocumented, so typeshed does not declare it.
_iter_importer_modules: functools._SingleDispatchCallable[Iterator[Tuple[str, bool]]] = getattr(
    pkgutil, "iter_importer_modules")


class WasmFileFinder(importlib.machinery.FileFinder):
    """Python's directory finder, made by the hook: it knows ``.wasm`` and ``.wat`` files too."""


def _iter_modules(finder: WasmFileFinder, prefix: str = "") -> Iterator[Tuple[str, bool]]:
    """``pkgutil.iter_modules`` for the hook's directories: Python's modules, then the wasm ones."""
    python_modules = _iter_importer_modules.dispatch(importlib.machinery.FileFinder)
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


_iter_importer_modules.register(WasmFileFinder, _iter_modules)
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
