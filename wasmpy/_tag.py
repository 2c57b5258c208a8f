"""Tag: a wasm exception tag."""

from __future__ import annotations

import contextlib
from typing import List, Optional

from ._errors import Frame, WasmException, check
from ._ffi import ffi, lib
from ._store import Store
from ._stored import Stored
from ._types import TagType
from ._values import from_val, val_of

__all__ = ["Tag", "exception_from_exnref", "new_exnref", "take_wasm_exception", "throw_into_wasm"]


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


def _is_tag_of(store: Store, tag: object) -> bool:
    return isinstance(tag, Tag) and tag.store is store


def exception_from_exnref(store: Store, exnref, frames: Optional[List[Frame]] = None) -> WasmException:
    """The :class:`WasmException` a (borrowed) ``wasmtime_exnref_t *`` of ``store`` stands for."""
    with store._lock:
        context = store._context()
        handle = ffi.new("wasmtime_tag_t *")
        check(lib.wasmtime_exnref_tag(context, exnref, handle))
        tag = Tag._from_c(store, handle)
        exact = []
        for index, valtype in enumerate(tag.type.params):
            val = ffi.new("wasmtime_val_t *")
            check(lib.wasmtime_exnref_field(context, exnref, index, val))
            exact.append(from_val(store, val, exact=True, declared=valtype))
    payload = tuple(value.value for value in exact)
    exception = WasmException(tag, payload, frames)
    # The payload as wasm had it, bit for bit (Python floats quiet f32 NaNs), for when the exception
    # goes back into wasm with the same payload.
    exception._exact_payload = (payload, tuple(exact))
    return exception


def new_exnref(store: Store, exception: WasmException, out) -> None:
    """Fills ``out`` (a ``wasmtime_exnref_t *``, for the caller to unroot) with a new exception object
    of ``store`` for ``exception``; TypeError if its tag is not a Tag of ``store`` or the payload does
    not fit the tag's type."""
    tag = exception.tag
    if not _is_tag_of(store, tag):
        raise TypeError("a WasmException passed to wasm needs a Tag of the same store")
    params = tag.type.params
    payload = tuple(exception.payload)
    exact = getattr(exception, "_exact_payload", None)
    if exact is not None and exact[0] is exception.payload:  # unchanged since wasm made it
        payload = exact[1]
    if len(payload) != len(params):
        raise TypeError(f"a WasmException of tag {tag.type} needs {len(params)} payload values, "
                        f"not {len(payload)}")
    with store._lock:
        fields = ffi.new("wasmtime_val_t[]", max(len(params), 1))
        with contextlib.ExitStack() as converted:
            for index, (valtype, value) in enumerate(zip(params, payload)):
                fields[index] = converted.enter_context(val_of(store, valtype, value))[0]
            check(lib.wasmtime_exnref_new(store._context(), tag._handle, fields, len(params), out))


def take_wasm_exception(store: Store, frames: List[Frame]) -> WasmException:
    """The :class:`WasmException` for the exception a call into ``store`` left pending (there is one)."""
    exnref = ffi.new("wasmtime_exnref_t *")
    with store._lock:
        if not lib.wasmtime_context_take_exception(store._context(), exnref):
            raise RuntimeError("no pending wasm exception to take")
        try:
            return exception_from_exnref(store, exnref, frames)
        finally:
            lib.wasmtime_exnref_unroot(exnref)


def throw_into_wasm(store: Store, exception: WasmException) -> Optional[int]:
    """Makes ``exception`` the pending exception of ``store`` and returns the trap (its address) that
    a host function returns to throw it; None if its tag is not a Tag of ``store``.

    TypeError if the payload does not fit the tag's type.
    """
    if not _is_tag_of(store, exception.tag):
        return None
    exnref = ffi.new("wasmtime_exnref_t *")
    with store._lock:
        new_exnref(store, exception, exnref)
        trap = lib.wasmtime_context_set_exception(store._context(), exnref)  # takes the exnref
    return int(ffi.cast("uintptr_t", trap))
