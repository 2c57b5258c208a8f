"""AnyRef: a reference to a wasm GC object (struct, array, i31) held by Python."""

from __future__ import annotations

from typing import Any, NoReturn

from ._checks import require_instance, require_int
from ._ffi import ffi, lib
from ._store import Store

__all__ = ["AnyRef"]


class AnyRef:
    """A non-null wasm GC reference (anyref, eqref, i31ref, structref, arrayref): a struct, an
    array or an i31.

    wasm hands these to Python as results; Python can pass them back as
    arguments of the same store, as anyref or (converted) as externref.
    ``kind`` says what it refers to: 'i31', 'struct' or 'array'.
    ``AnyRef.from_i31(store, n)`` makes an i31 one. Plain Python objects
    travel as anyref too: wasm sees them as converted externrefs, and they
    come back as themselves.
    """

    __slots__ = ("_store", "_ref", "__weakref__")
    _store: Store  # set in _take
    _ref: Any  # the rooted wasmtime_anyref_t * this object owns

    @classmethod
    def _take(cls, store: Store, ref) -> "AnyRef":
        """Wraps ``ref`` (a rooted ``wasmtime_anyref_t *`` whose root this object now owns)."""
        self = cls.__new__(cls)
        self._store, self._ref = store, ref
        return self

    @classmethod
    def from_i31(cls, store: Store, value: int) -> "AnyRef":
        """An i31 reference to ``value`` (from -2**30 to 2**31-1; stored as 31 bits)."""
        require_instance(store, Store, "store")
        require_int(value, "an i31 value", -(2**30), 2**31 - 1)
        ref = ffi.new("wasmtime_anyref_t *")
        with store._lock:
            lib.wasmtime_anyref_from_i31(store._context(), value & 0x7FFFFFFF, ref)
        return cls._take(store, ref)

    @property
    def store(self) -> Store:
        return self._store

    @property
    def kind(self) -> str:
        with self._store._lock:
            ctx = self._store._context()
            # Not wasmtime_anyref_is_i31: in wasmtime 50.0.1 it answers True for structs and arrays too.
            if lib.wasmtime_anyref_is_struct(ctx, self._ref):
                return "struct"
            if lib.wasmtime_anyref_is_array(ctx, self._ref):
                return "array"
            if lib.wasmtime_anyref_i31_get_s(ctx, self._ref, ffi.new("int32_t *")):
                return "i31"
        return "any"

    @property
    def i31(self) -> int:
        """The (signed) value of an i31 reference; TypeError for any other kind."""
        out = ffi.new("int32_t *")
        with self._store._lock:
            if not lib.wasmtime_anyref_i31_get_s(self._store._context(), self._ref, out):
                raise TypeError(f"this reference is a {self.kind}, not an i31")
        return out[0]

    def __copy__(self) -> "AnyRef":
        """Another reference to the same wasm object (with a root of its own)."""
        ref = ffi.new("wasmtime_anyref_t *")
        with self._store._lock:
            self._store._context()
            lib.wasmtime_anyref_clone(self._ref, ref)
        return AnyRef._take(self._store, ref)

    def __deepcopy__(self, memo: Any) -> "AnyRef":
        return self.__copy__()  # the wasm object itself belongs to its store, and is shared

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise TypeError("AnyRef objects cannot be pickled: they refer to a wasm object of one process's store")

    def __del__(self) -> None:
        store = getattr(self, "_store", None)
        if store is not None and not store.closed:
            lib.wasmtime_anyref_unroot(self._ref)

    def __repr__(self) -> str:
        if self._store.closed:
            return "<wasmpy.AnyRef (store closed)>"
        kind = self.kind
        return f"<wasmpy.AnyRef i31 {self.i31}>" if kind == "i31" else f"<wasmpy.AnyRef {kind}>"
