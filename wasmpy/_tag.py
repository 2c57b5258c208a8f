"""Tag: a wasm exception tag."""

from __future__ import annotations

from ._errors import check
from ._ffi import lib
from ._store import Store
from ._stored import Stored
from ._types import TagType

__all__ = ["Tag"]


class Tag(Stored):
    """An exception tag of type ``type``: wasm throws and catches exceptions by tag.

    Two Tag objects are equal when they are the same tag of the same store.
    """

    __slots__ = ()
    _C_HANDLE = "wasmtime_tag_t"
    _TYPE = TagType
    _c_type = staticmethod(lib.wasmtime_tag_type)
    _c_type_delete = staticmethod(lib.wasm_tagtype_delete)

    def __init__(self, store: Store, type: TagType) -> None:
        handle = self._start(store, type)
        with store._lock:
            check(lib.wasmtime_tag_new(store._context(), type._to_c(), handle))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Tag):
            return NotImplemented
        if other._store is not self._store:
            return False
        with self._store._lock:
            return bool(lib.wasmtime_tag_eq(self._store._context(), self._handle, other._handle))

    def __hash__(self) -> int:
        return hash((id(self._store), str(self.type)))

    def __repr__(self) -> str:
        return f"<wasmpy.Tag {self.type}>"
