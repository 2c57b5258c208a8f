"""wasmpy: WebAssembly that feels native in Python, over wasmtime's C API.

>>> import wasmpy
>>> module = wasmpy.Module('(module (func (export "add") (param i32 i32) (result i32)'
...                        ' local.get 0 local.get 1 i32.add))')
>>> wasmpy.Instance(module).exports.add(1, 2)
3
"""

import os
import threading
import typing
from typing import TYPE_CHECKING

try:
    from . import _ffi  # noqa: F401
except ImportError as error:  # pragma: no cover - only in an unbuilt source tree
    raise ImportError(
        "wasmpy's compiled extension is missing: this looks like an unbuilt source tree. "
        "Install wasmpy (pip install .) and run from outside the checkout, or build it in place "
        "(pip install -e .)") from error

from . import _native, _signals
from ._anyref import AnyRef
from ._engine import Engine
from ._errors import CompileError, ExitTrap, Frame, LinkError, Trap, TrapCode, WasmError, WasmException
from ._func import Func
from ._global import Global
from ._hook import (WasmImportError, configure_import_hook, hook_store, install_import_hook,
                    uninstall_import_hook)
from ._instance import Exports, Instance
from ._memory import Memory
from ._module import Module, wat2wasm
from ._run import run
from ._store import Store, StoreLimits
from ._table import Table
from ._tag import Tag
from ._types import ExportType, FuncType, GlobalType, ImportType, MemoryType, TableType, TagType, ValType
from ._values import Val
from ._wasi import WasiConfig
from .component import Component, Err, Ok

WASMTIME_VERSION = "50.0.1"

__version__: str  # wasmpy's version, read when first asked for (see __getattr__)

install_import_hook()
_signals.wrap_faulthandler()
# The main thread is running, so it has an ident (typeshed allows None, for a thread not yet started).
_native.set_main_thread(typing.cast(int, threading.main_thread().ident))
_native.set_errors(WasmError, WasmException)

__all__ = [
    "Engine", "Store", "StoreLimits", "Module", "Instance", "Exports", "Func", "Memory", "Global", "Table",
    "Tag", "ValType", "Val", "AnyRef", "FuncType", "GlobalType", "MemoryType", "TableType", "TagType",
    "ImportType", "ExportType", "WasiConfig", "run", "ExitTrap", "wat2wasm", "install_import_hook",
    "configure_import_hook", "uninstall_import_hook", "hook_store", "WasmImportError", "WasmError",
    "CompileError", "LinkError", "Trap", "WasmException", "TrapCode", "Frame", "WASMTIME_VERSION",
    "Component", "Ok", "Err",
]


def _read_version(package_dir: str = os.path.dirname(os.path.abspath(__file__))) -> str:
    """The installed distribution's version; in a checkout used without installing it, the version its
    pyproject.toml declares; "0+unknown" if neither says."""
    from importlib import metadata

    try:
        return metadata.version("wasmpy")
    except metadata.PackageNotFoundError:
        pass
    try:
        import tomllib

        with open(os.path.join(os.path.dirname(package_dir), "pyproject.toml"), "rb") as file:
            project = tomllib.load(file).get("project", {})
    except (ImportError, OSError, ValueError):  # no tomllib before 3.11; no or a broken pyproject.toml
        project = {}
    version = project.get("version")
    return version if project.get("name") == "wasmpy" and isinstance(version, str) else "0+unknown"


if not TYPE_CHECKING:  # type checkers see the declaration above, and no attribute made up at run time
    def __getattr__(name: str) -> str:
        # Reading the metadata costs about as much as the rest of `import wasmpy`: done when asked.
        if name == "__version__":
            version = globals()["__version__"] = _read_version()
            return version
        raise AttributeError(f"module 'wasmpy' has no attribute {name!r}")


def _present_as_public(names: typing.Iterable[str]) -> None:
    """Names the public classes and functions ``wasmpy.X``, as users know them: in reprs, tracebacks
    (``wasmpy.LinkError: ...``), pickles and documentation.

    A class's own annotations are text (``from __future__ import annotations``), which
    ``typing.get_type_hints`` looks up in the module ``__module__`` names: they are evaluated
    first, where the class is defined, so that they still resolve.
    """
    for name in names:
        item = globals()[name]
        if isinstance(item, type):
            own = item.__dict__.get("__annotations__")
            if own:
                hints = typing.get_type_hints(item, include_extras=True)
                item.__annotations__ = {key: hints[key] for key in own}
        if isinstance(item, type) or callable(item):
            item.__module__ = __name__


_present_as_public(__all__)
