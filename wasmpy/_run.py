"""wasmpy.run: run a WASI command, a preview 1 module or a WASI 0.2 component, the way ``wasmtime run`` does."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any, Callable, Mapping, Optional, Sequence, Union, cast

from ._engine import Engine
from ._errors import ExitTrap, WasmError
from ._func import Func
from ._instance import Instance
from ._module import Module
from ._store import Store
from ._types import FuncType
from ._wasi import WasiConfig
from .component import Component, ComponentInstance, Err
from .component._types import ResultType

__all__ = ["run"]

# The interface a wasi:cli/command component exports, without its version (any 0.2.x).
RUN_INTERFACE = "wasi:cli/run"


def program_name(path: Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]) -> str:
    """argv[0] for the program at ``path``: its file name, any byte that is not UTF-8 replaced
    (WASI arguments are UTF-8, and a file's name need not be)."""
    return os.fsencode(os.path.basename(os.fspath(path))).decode("utf-8", "replace")


def command_export(component: Component, name: str) -> str:
    """The name of the ``wasi:cli/run`` interface ``component`` exports (with its version, e.g.
    ``wasi:cli/run@0.2.12``); a TypeError naming what it exports if it is not a WASI command."""
    exports = component.exports
    for interface_name, interface in exports.interfaces.items():
        if interface_name.partition("@")[0] != RUN_INTERFACE:
            continue
        run = interface.functions.get("run")
        if run is None or run.params or run.result != ResultType(None, None):
            raise TypeError(f"{name} exports {interface_name}, but not as WASI defines it (run: func() -> result): "
                            f"it has {', '.join(map(str, interface.functions.values())) or 'no functions'}")
        return interface_name
    exported = [*exports.functions, *exports.interfaces]
    what = f"this one's exports are {', '.join(exported)}" if exported else "this one exports nothing"
    raise TypeError(f"{name} is not a WASI command: a wasi:cli/command component exports {RUN_INTERFACE}, "
                    f"and {what}")


def run_command(exports: Mapping[str, Any], export: str) -> int:
    """Calls ``run`` of the instance's ``export`` (:func:`command_export`'s name) and returns the
    exit code, as ``wasmtime run`` does: 0 if it returns ok, 1 if it returns an error, the code of
    a ``wasi:cli/exit`` call."""
    try:
        exports[export]["run"]()
    except Err:
        return 1
    except ExitTrap as exit:
        return exit.code
    return 0


class ProgramExports(Mapping[str, Any]):
    """The exports of the program :func:`run` runs, which its imports can reach: ``exports.memory``,
    ``exports["memory"]``... They are there once the program is instantiated (before, a WasmError):
    the Python functions it imports are called while ``_start`` (or a component's ``run``) runs,
    when they are."""

    __slots__ = ("_exports",)

    def __init__(self) -> None:
        self._exports: Optional[Mapping[str, Any]] = None

    def _ready(self) -> Mapping[str, Any]:
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


def run(target: Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]", Module, Component],
        argv: Optional[Sequence[Union[str, bytes]]] = None, *, imports: Optional[Imports] = None,
        **wasi_options: Any) -> int:
    """Runs a WASI command and returns its exit code: a preview 1 module's ``_start``, or a
    WASI 0.2 ``wasi:cli/command`` component's ``wasi:cli/run@0.2.x`` ``run``.

    ``target`` is a path (str, bytes or ``os.PathLike``; ``.wasm`` or ``.wat``,
    of a module or a component), a Module or a Component. A path's compiled
    code comes from the import hook's cache when
    it is current and goes there otherwise, as ``wasmpy run`` and ``import``
    do (``configure_import_hook`` sets where, or turns the cache off;
    ``sys.dont_write_bytecode`` keeps it from being written). ``argv`` defaults to the file's name (any byte of it that is
    not UTF-8 replaced, as WASI takes UTF-8 only); ``wasi_options`` are those
    of :class:`WasiConfig`, for a module and a component alike.

    The exit code: 0 when ``_start`` returns, or ``run`` returns ok; 1 when
    ``run`` returns an error; ``n`` for ``proc_exit(n)``, or for a component
    calling ``wasi:cli/exit``'s ``exit-with-code(n)`` (``exit(ok)`` is 0,
    ``exit(err)`` 1). A C program made a component by the WASI preview 1
    adapter exits with 0 or 1 only: the adapter turns ``proc_exit(n)`` into
    ``exit(err)`` for every non-zero ``n``, as it imports only ``exit``
    (wasmtime itself reports status 1 for it too). A component that exports no
    ``wasi:cli/run`` is a TypeError naming what it exports.

    ``imports`` maps module names to namespaces, as :class:`Instance`'s does:
    the program's other imports, and in ``imports["wasi_snapshot_preview1"]``
    WASI functions that replace WASI's one by one (the configured WASI
    provides the rest); for a component, its non-WASI imports by WIT name.
    Host functions get no caller, so functions that use
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
    compiled: Union[Module, Component]
    if isinstance(target, (Module, Component)):
        compiled, name = target, type(target).__name__.lower()
    elif isinstance(target, (str, bytes, os.PathLike)):
        from ._hook import load_cached  # the hook is built on this module's layer, not below it

        compiled = load_cached(os.fsdecode(target), Engine.default())  # a module or a component
        name = program_name(target)
    else:
        raise TypeError(f"run() takes a path, a wasmpy.Module or a wasmpy.Component, not {type(target).__name__}")
    config = WasiConfig(argv=[name] if argv is None else argv, **wasi_options)
    if isinstance(compiled, Component):
        export = command_export(compiled, name)
    else:
        start = next((item for item in compiled.exports if item.name == "_start"), None)
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
    store = Store(compiled.engine, wasi=config)
    if isinstance(compiled, Component):
        command = ComponentInstance(compiled, given, store)
        exports._exports = command.exports
        return run_command(command.exports, export)
    instance = Instance(compiled, given, store)
    exports._exports = instance.exports
    try:
        cast(Func, instance.exports["_start"])()  # a function: checked in the module's exports above
    except ExitTrap as exit:
        return exit.code
    return 0
