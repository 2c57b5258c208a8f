"""Table: a wasm table of function or extern references."""

from __future__ import annotations

import builtins
import operator
from typing import Any, Optional

from ._checks import require_int
from ._errors import check_value
from ._ffi import ffi, lib
from ._native import table_get, table_set
from ._store import Store
from ._stored import Stored
from ._types import TableType
from ._values import from_val, val_of

__all__ = ["Table"]


class Table(Stored):
    """A table of references: ``table[i]`` reads and ``table[i] = value`` writes an element.

    funcref tables hold :class:`Func` or None, externref tables any Python
    object or None. Negative indices count from the end, as for lists.
    """

    __slots__ = ("_address",)  # of the handle, for the C conversions (csrc/values.c)
    _C_HANDLE = "wasmtime_table_t"
    _TYPE = TableType
    _c_type = staticmethod(lib.wasmtime_table_type)
    _c_type_delete = staticmethod(lib.wasm_tabletype_delete)

    def __init__(self, store: Store, type: TableType, init: Any = None) -> None:
        handle = self._start(store, type)
        self._address = int(ffi.cast("uintptr_t", handle))
        with store._lock, val_of(store, type.element, init) as val:
            check_value(lib.wasmtime_table_new(store._context(), type._to_c(), val, handle))

    @classmethod
    def _from_c(cls, store: Store, handle: Any, type: Optional[TableType] = None) -> "Table":
        self = super()._from_c(store, handle, type)
        self._address = int(ffi.cast("uintptr_t", self._handle))
        return self

    @property
    def size(self) -> int:
        with self._store._lock:
            return lib.wasmtime_table_size(self._store._context(), self._handle)

    def __len__(self) -> int:
        return self.size

    def grow(self, delta: int, init: Any = None) -> int:
        """Adds ``delta`` elements set to ``init``; returns the previous size. WasmError if it cannot."""
        require_int(delta, "delta", 0, 2**64 - 1)
        previous = ffi.new("uint64_t *")
        with self._store._lock, val_of(self._store, self.type.element, init) as val:
            check_value(lib.wasmtime_table_grow(self._store._context(), self._handle, delta, val, previous))
        return previous[0]

    def _index(self, index: Any) -> int:
        try:
            index = operator.index(index)
        except TypeError:
            raise TypeError(f"table indices must be integers, not {builtins.type(index).__name__}") from None
        size = lib.wasmtime_table_size(self._store._context(), self._handle)
        if index < 0:
            index += size
        if not 0 <= index < size:
            raise IndexError(f"table index out of range (size {size})")
        return index

    def __getitem__(self, index: int) -> Any:
        store = self._store
        value = table_get(store, store._handle, self._address, index)
        # NotImplemented: C leaves it to the Python path (an index to explain, a closed store; or the
        # element itself).
        return self._getitem_in_python(index) if value is NotImplemented else value

    def __setitem__(self, index: int, value: Any) -> None:
        store = self._store
        if table_set(store, store._handle, self._address, self.type.element, index, value) is NotImplemented:
            self._setitem_in_python(index, value)

    def _getitem_in_python(self, index: int) -> Any:
        val = ffi.new("wasmtime_val_t *")
        with self._store._lock:
            if not lib.wasmtime_table_get(self._store._context(), self._handle, self._index(index), val):
                raise IndexError("table index out of range")
            return from_val(self._store, val)

    def _setitem_in_python(self, index: int, value: Any) -> None:
        with self._store._lock:
            position = self._index(index)
            with val_of(self._store, self.type.element, value) as val:
                check_value(lib.wasmtime_table_set(self._store._context(), self._handle, position, val))

    def __repr__(self) -> str:
        return f"<wasmpy.Table {self.type}>"
