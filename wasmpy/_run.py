"""wasmpy.run: run a WASI command module the way ``wasmtime run`` does."""

from __future__ import annotations

import os
from typing import Any, Optional, Sequence, Union

from ._errors import ExitTrap
from ._instance import Instance
from ._module import Module
from ._store import Store
from ._types import FuncType
from ._wasi import WasiConfig

__all__ = ["run"]


def program_name(path: Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]) -> str:
    """argv[0] for the program at ``path``: its file name, any byte that is not UTF-8 replaced
    (WASI arguments are UTF-8, and a file's name need not be)."""
    return os.fsencode(os.path.basename(os.fspath(path))).decode("utf-8", "replace")


def run(target: Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]", Module],
        argv: Optional[Sequence[Union[str, bytes]]] = None, **wasi_options: Any) -> int:
    """Instantiates a WASI command module, runs its ``_start`` and returns the exit code.

    ``target`` is a path (str, bytes or ``os.PathLike``; ``.wasm`` or ``.wat``)
    or a Module. ``argv`` defaults to the file's name (any byte of it that is
    not UTF-8 replaced, as WASI takes UTF-8 only); ``wasi_options`` are those
    of :class:`WasiConfig`. 0 means ``_start`` returned normally.
    """
    if isinstance(target, Module):
        module, name = target, "module"
    elif isinstance(target, (str, bytes, os.PathLike)):
        module = Module.from_file(target)
        name = program_name(target)
    else:
        raise TypeError(f"run() takes a path or a wasmpy.Module, not {type(target).__name__}")
    config = WasiConfig(argv=[name] if argv is None else argv, **wasi_options)
    start = next((item for item in module.exports if item.name == "_start"), None)
    if start is None or not isinstance(start.type, FuncType):
        raise TypeError(f"{name} is not a WASI command: it exports no _start function")
    instance = Instance(module, {}, Store(module.engine, wasi=config))
    try:
        instance.exports["_start"]()
    except ExitTrap as exit:
        return exit.code
    return 0
