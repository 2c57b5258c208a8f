"""Global: a wasm global variable."""

from __future__ import annotations

from typing import Any, Optional

from ._checks import require_instance
from ._errors import check
from ._ffi import ffi, lib
from ._store import Store
from ._types import GlobalType, take_type
from ._values import from_val, val_of

__all__ = ["Global"]


class Global:
    """A global of type ``type`` holding ``value``; ``value`` is assignable when the global is mutable."""

    __slots__ = ("_store", "_global", "type", "__weakref__")

    def __init__(self, store: Store, type: GlobalType, value: Any) -> None:
        require_instance(store, Store, "store")
        require_instance(type, GlobalType, "type")
        handle = ffi.new("wasmtime_global_t *")
        with store._lock, val_of(store, type.content, value) as val:
            check(lib.wasmtime_global_new(store._context(), type._to_c(), val, handle))
        self._store, self._global, self.type = store, handle, type

    @classmethod
    def _from_c(cls, store: Store, handle, type: Optional[GlobalType] = None) -> "Global":
        """Wraps a ``wasmtime_global_t`` (copied) of ``store``, whose type is asked unless given."""
        self = cls.__new__(cls)
        self._store = store
        self._global = ffi.new("wasmtime_global_t *", handle[0])
        if type is None:
            type = take_type(lib.wasmtime_global_type(store._context(), self._global), GlobalType,
                             lib.wasm_globaltype_delete)
        self.type = type
        return self

    @property
    def store(self) -> Store:
        return self._store

    @property
    def value(self) -> Any:
        return self.get()

    @value.setter
    def value(self, value: Any) -> None:
        self.set(value)

    def get(self, exact: bool = False) -> Any:
        """The value; with ``exact``, a :class:`Val` that keeps the exact bits."""
        val = ffi.new("wasmtime_val_t *")
        with self._store._lock:
            lib.wasmtime_global_get(self._store._context(), self._global, val)
            return from_val(self._store, val, exact, self.type.content)

    def set(self, value: Any) -> None:
        """Sets the value (a Python value or a :class:`Val`); AttributeError if the global is immutable."""
        if not self.type.mutable:
            raise AttributeError(f"cannot set an immutable global ({self.type})")
        with self._store._lock, val_of(self._store, self.type.content, value) as val:
            check(lib.wasmtime_global_set(self._store._context(), self._global, val))

    def __repr__(self) -> str:
        if self._store.closed:
            return f"<wasmpy.Global {self.type} (store closed)>"
        return f"<wasmpy.Global {self.type} = {self.value!r}>"
