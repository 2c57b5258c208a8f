"""The base of Global, Table and Tag: a handle naming an object that lives in a store."""

from __future__ import annotations

from typing import Any, Callable, ClassVar, Optional, Type

from ._checks import require_instance
from ._ffi import ffi
from ._ownership import Owner, init_once
from ._store import Store
from ._types import take_type

__all__ = ["Stored"]


class Stored(Owner):
    """A wasmtime handle (a small struct naming an object of ``store``) and the object's type.

    The store owns the object and frees it with itself; the handle, copied into
    memory Python owns, only names it, and holding the store keeps it valid.
    """

    __slots__ = ("_store", "_handle", "type", "__weakref__")

    # Set by each subclass: the handle's C type (e.g. "wasmtime_global_t"), the wasmpy type class
    # (GlobalType), and wasmtime's functions that describe an object's type and free that description.
    _C_HANDLE: ClassVar[str]
    _TYPE: ClassVar[type]
    _c_type: ClassVar[Callable[[Any, Any], Any]]
    _c_type_delete: ClassVar[Callable[[Any], None]]

    def _start(self, store: Store, type: Any) -> Any:
        """Checks the arguments of a new object and sets its fields; returns the empty handle to fill."""
        init_once(self, "_store")
        require_instance(store, Store, "store")
        require_instance(type, self._TYPE, "type")
        self._store, self._handle, self.type = store, ffi.new(f"{self._C_HANDLE} *"), type
        return self._handle

    @classmethod
    def _from_c(cls: Type["Stored"], store: Store, handle: Any, type: Optional[Any] = None) -> Any:
        """Wraps a handle (copied) of ``store``, whose type is asked unless given."""
        self = cls.__new__(cls)
        self._store = store
        self._handle = ffi.new(f"{cls._C_HANDLE} *", handle[0])
        if type is None:
            type = take_type(cls._c_type(store._context(), self._handle), cls._TYPE, cls._c_type_delete)
        self.type = type
        return self

    @property
    def store(self) -> Store:
        return self._store
