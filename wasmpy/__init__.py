"""wasmpy: WebAssembly that feels native in Python, over wasmtime's C API.

>>> import wasmpy
>>> module = wasmpy.Module('(module (func (export "add") (param i32 i32) (result i32)'
...                        ' local.get 0 local.get 1 i32.add))')
>>> wasmpy.Instance(module).exports.add(1, 2)
3
"""

import threading

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

WASMTIME_VERSION = "50.0.1"

install_import_hook()
_signals.wrap_faulthandler()
_native.set_main_thread(threading.main_thread().ident)
_native.set_errors(WasmError, WasmException)

__all__ = [
    "Engine", "Store", "StoreLimits", "Module", "Instance", "Exports", "Func", "Memory", "Global", "Table",
    "Tag", "ValType", "Val", "AnyRef", "FuncType", "GlobalType", "MemoryType", "TableType", "TagType",
    "ImportType", "ExportType", "WasiConfig", "run", "ExitTrap", "wat2wasm", "install_import_hook",
    "configure_import_hook", "uninstall_import_hook", "hook_store", "WasmImportError", "WasmError",
    "CompileError", "LinkError", "Trap", "WasmException", "TrapCode", "Frame", "WASMTIME_VERSION",
]
