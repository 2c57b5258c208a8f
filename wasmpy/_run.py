"""wasmpy.run: run a WASI command module the way ``wasmtime run`` does."""

from __future__ import annotations

import os
from typing import Any, Optional, Sequence, Union

from ._errors import ExitTrap
from ._instance import Instance
from ._module import Module
from ._store import Store
from ._wasi import WasiConfig

__all__ = ["run"]


def run(target: Union[str, "os.PathLike[str]", Module], argv: Optional[Sequence[str]] = None,
        **wasi_options: Any) -> int:
    """Instantiates a WASI command module, runs its ``_start`` and returns the exit code.

    ``target`` is a path (``.wasm`` or ``.wat``) or a Module. ``argv`` defaults
    to the file's name; ``wasi_options`` are those of :class:`WasiConfig`.
    0 means ``_start`` returned normally.
    """
    if isinstance(target, Module):
        module, name = target, "module"
    else:
        module, name = Module.from_file(target), os.path.basename(os.fspath(target))
    store = Store(module.engine, wasi=WasiConfig(argv=[name] if argv is None else argv, **wasi_options))
    instance = Instance(module, {}, store)
    if "_start" not in instance.exports:
        raise TypeError(f"{name} is not a WASI command: it exports no _start function")
    try:
        instance.exports["_start"]()
    except ExitTrap as exit:
        return exit.code
    return 0
