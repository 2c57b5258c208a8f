"""wasmpy.run: run a WASI command module the way ``wasmtime run`` does."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any, Callable, Mapping, Optional, Sequence, Union

from ._engine import Engine
from ._errors import ExitTrap, WasmError
from ._instance import Exports, Instance
from ._module import Module
from ._store import Store
from ._types import FuncType
from ._wasi import WasiConfig

__all__ = ["run"]


def program_name(path: Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]) -> str:
    """argv[0] for the program at ``path``: its file name, any byte that is not UTF-8 replaced
    (WASI arguments are UTF-8, and a file's name need not be)."""
    return os.fsencode(os.path.basename(os.fspath(path))).decode("utf-8", "replace")


class ProgramExports(Mapping[str, Any]):
    """The exports of the program :func:`run` runs, which its imports can reach: ``exports.memory``,
    ``exports["memory"]``... They are there once the program is instantiated (before, a WasmError):
    the Python functions it imports are called while ``_start`` runs, when they are."""

    __slots__ = ("_exports",)

    def __init__(self) -> None:
        self._exports: Optional[Exports] = None

    def _ready(self) -> Exports:
        if self._exports is None:
            raise WasmError("the program's exports are not there yet: it is not instantiated")
        return self._exports

    def __getattr__(self, name: str) -> Any:
        if name == "_exports" or name.startswith("__"):  # unset slot (a copy); probes for special methods
            raise AttributeError(name)
        return getattr(self._ready(), name)

    def __getitem__(self, name: str) -> Any:
        return self._ready()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._ready())

    def __len__(self) -> int:
        return len(self._ready())

    def __repr__(self) -> str:
        return f"<wasmpy.run exports: {', '.join(self._exports) if self._exports is not None else 'not yet'}>"


Imports = Union[Mapping[str, Any], Callable[[ProgramExports], Mapping[str, Any]]]


def run(target: Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]", Module],
        argv: Optional[Sequence[Union[str, bytes]]] = None, *, imports: Optional[Imports] = None,
        **wasi_options: Any) -> int:
    """Instantiates a WASI command module, runs its ``_start`` and returns the exit code.

    ``target`` is a path (str, bytes or ``os.PathLike``; ``.wasm`` or ``.wat``)
    or a Module. A path's compiled code comes from the import hook's cache when
    it is current and goes there otherwise, as ``wasmpy run`` and ``import``
    do (``configure_import_hook`` sets where, or turns the cache off;
    ``sys.dont_write_bytecode`` keeps it from being written). ``argv`` defaults to the file's name (any byte of it that is
    not UTF-8 replaced, as WASI takes UTF-8 only); ``wasi_options`` are those
    of :class:`WasiConfig`. 0 means ``_start`` returned normally.

    ``imports`` maps module names to namespaces, as :class:`Instance`'s does:
    the program's other imports, and in ``imports["wasi_snapshot_preview1"]``
    WASI functions that replace WASI's one by one (the configured WASI
    provides the rest). Host functions get no caller, so functions that use
    the program's memory or exports are made by a callable given instead:
    ``run`` calls it with the program's exports (:class:`ProgramExports`,
    usable once the program is instantiated) and takes the mapping it returns::

        def imports(exports):
            def poll_oneoff(subscriptions, events, count, written):
                memory = exports.memory
                ...
                return 0  # the WASI errno
            return {"wasi_snapshot_preview1": {"poll_oneoff": poll_oneoff}}

        wasmpy.run("app.wasm", imports=imports)
    """
    if isinstance(target, Module):
        module, name = target, "module"
    elif isinstance(target, (str, bytes, os.PathLike)):
        from ._hook import load_cached  # the hook is built on this module's layer, not below it

        module = load_cached(os.fsdecode(target), Engine.default())
        name = program_name(target)
    else:
        raise TypeError(f"run() takes a path or a wasmpy.Module, not {type(target).__name__}")
    config = WasiConfig(argv=[name] if argv is None else argv, **wasi_options)
    start = next((item for item in module.exports if item.name == "_start"), None)
    if start is None or not isinstance(start.type, FuncType):
        raise TypeError(f"{name} is not a WASI command: it exports no _start function")
    exports = ProgramExports()
    if imports is None:
        given: Mapping[str, Any] = {}
    elif isinstance(imports, Mapping):
        given = imports
    elif callable(imports):
        given = imports(exports)
        if not isinstance(given, Mapping):
            raise TypeError(f"the imports callable must return a mapping of module names to namespaces, "
                            f"not {type(given).__name__}")
    else:
        raise TypeError(f"imports must be a mapping of module names to namespaces, or a callable returning "
                        f"one, not {type(imports).__name__}")
    instance = Instance(module, given, Store(module.engine, wasi=config))
    exports._exports = instance.exports
    try:
        instance.exports["_start"]()
    except ExitTrap as exit:
        return exit.code
    return 0
