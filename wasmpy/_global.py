"""Global: a wasm global variable."""

from __future__ import annotations

from typing import Any, Optional

from ._errors import check_value
from ._ffi import ffi, lib
from ._native import global_get, global_set
from ._store import Store
from ._stored import Stored
from ._types import GlobalType
from ._values import from_val, val_of

__all__ = ["Global"]


class Global(Stored):
    """A global of type ``type`` holding ``value``; ``value`` is assignable when the global is mutable."""

    __slots__ = ("_address",)  # of the handle, for the C conversions (csrc/values.c)
    _C_HANDLE = "wasmtime_global_t"
    _TYPE = GlobalType
    _c_type = staticmethod(lib.wasmtime_global_type)
    _c_type_delete = staticmethod(lib.wasm_globaltype_delete)

    def __init__(self, store: Store, type: GlobalType, value: Any) -> None:
        handle = self._start(store, type)
        self._address = int(ffi.cast("uintptr_t", handle))
        with store._lock, val_of(store, type.content, value) as val:
            check_value(lib.wasmtime_global_new(store._context(), type._to_c(), val, handle))

    @classmethod
    def _from_c(cls, store: Store, handle: Any, type: Optional[GlobalType] = None) -> "Global":
        self = super()._from_c(store, handle, type)
        self._address = int(ffi.cast("uintptr_t", self._handle))
        return self

    def get(self, exact: bool = False) -> Any:
        """The value; with ``exact``, a :class:`Val` that keeps the exact bits."""
        store = self._store
        value = global_get(store, store._handle, self._address, exact, self.type.content)
        # NotImplemented: C leaves it to the Python path (a closed store; or the value itself).
        return self._get_in_python(exact) if value is NotImplemented else value

    def set(self, value: Any) -> None:
        """Sets the value (a Python value or a :class:`Val`); AttributeError if the global is immutable."""
        if not self.type.mutable:
            raise AttributeError(f"cannot set an immutable global ({self.type})")
        store = self._store
        if global_set(store, store._handle, self._address, self.type.content, value) is NotImplemented:
            self._set_in_python(value)

    value = property(get, set, doc="The value (a Python value); assignable when the global is mutable.")

    def _get_in_python(self, exact: bool) -> Any:
        val = ffi.new("wasmtime_val_t *")
        with self._store._lock:
            lib.wasmtime_global_get(self._store._context(), self._handle, val)
            return from_val(self._store, val, exact, self.type.content)

    def _set_in_python(self, value: Any) -> None:
        with self._store._lock, val_of(self._store, self.type.content, value) as val:
            check_value(lib.wasmtime_global_set(self._store._context(), self._handle, val))

    def __repr__(self) -> str:
        if self._store.closed:
            return f"<wasmpy.Global {self.type} (store closed)>"
        return f"<wasmpy.Global {self.type} = {self.value!r}>"
