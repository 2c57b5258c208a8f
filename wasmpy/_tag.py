"""Tag: a wasm exception tag."""

from __future__ import annotations

from typing import Optional

from ._checks import require_instance
from ._errors import check
from ._ffi import ffi, lib
from ._store import Store
from ._types import TagType, take_type

__all__ = ["Tag"]


class Tag:
    """An exception tag of type ``type``: wasm throws and catches exceptions by tag.

    Two Tag objects are equal when they are the same tag of the same store.
    """

    __slots__ = ("_store", "_tag", "type", "__weakref__")

    def __init__(self, store: Store, type: TagType) -> None:
        require_instance(store, Store, "store")
        require_instance(type, TagType, "type")
        handle = ffi.new("wasmtime_tag_t *")
        with store._lock:
            check(lib.wasmtime_tag_new(store._context(), type._to_c(), handle))
        self._store, self._tag, self.type = store, handle, type

    @classmethod
    def _from_c(cls, store: Store, handle, type: Optional[TagType] = None) -> "Tag":
        """Wraps a ``wasmtime_tag_t`` (copied) of ``store``, whose type is asked unless given."""
        self = cls.__new__(cls)
        self._store = store
        self._tag = ffi.new("wasmtime_tag_t *", handle[0])
        if type is None:
            type = take_type(lib.wasmtime_tag_type(store._context(), self._tag), TagType,
                             lib.wasm_tagtype_delete)
        self.type = type
        return self

    @property
    def store(self) -> Store:
        return self._store

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Tag):
            return NotImplemented
        if other._store is not self._store:
            return False
        with self._store._lock:
            return bool(lib.wasmtime_tag_eq(self._store._context(), self._tag, other._tag))

    def __hash__(self) -> int:
        return hash((id(self._store), str(self.type)))

    def __repr__(self) -> str:
        return f"<wasmpy.Tag {self.type}>"
