"""Memory: a wasm linear memory, readable and writable from Python as a buffer."""

from __future__ import annotations

from ._checks import require_instance, require_int
from ._errors import WasmError, check, take_error
from ._ffi import ffi, lib
from ._native import MemoryBase
from ._ownership import Owner, init_once
from ._store import Store
from ._types import MemoryType, take_type

__all__ = ["Memory"]


class Memory(MemoryBase, Owner):
    """A linear memory. ``memoryview(memory)`` is a zero-copy, writable view of its current bytes.

    A view keeps its length: after :meth:`grow`, take a new ``memoryview`` to
    see the new bytes (the old view stays valid; memories never move).
    ``read(offset, length)`` copies bytes out, ``write(offset, data)`` copies a
    bytes-like object in, and ``data_size`` is the size in bytes (the
    ``MemoryBase`` base class does these in C).
    """

    def __init__(self, store: Store, type: MemoryType) -> None:
        init_once(self, "_store")
        require_instance(store, Store, "store")
        require_instance(type, MemoryType, "type")
        memory = ffi.new("wasmtime_memory_t *")
        with store._lock:
            check(lib.wasmtime_memory_new(store._context(), type._to_c(), memory))
        self._bind(store, memory)

    @classmethod
    def _from_c(cls, store: Store, memory) -> "Memory":
        self = cls.__new__(cls)
        self._bind(store, ffi.new("wasmtime_memory_t *", memory[0]))
        return self

    def _bind(self, store: Store, memory) -> None:
        self._store = store
        self._memory = memory
        self._bind_memory(store._handle, int(ffi.cast("uintptr_t", memory)))
        store._track_memory(self)

    @property
    def store(self) -> Store:
        return self._store

    @property
    def type(self) -> MemoryType:
        with self._store._lock:
            return take_type(lib.wasmtime_memory_type(self._store._context(), self._memory), MemoryType,
                             lib.wasm_memorytype_delete)

    @property
    def size(self) -> int:
        """The current size, in pages."""
        with self._store._lock:
            return lib.wasmtime_memory_size(self._store._context(), self._memory)

    def __len__(self) -> int:
        return self.data_size

    def grow(self, delta: int) -> int:
        """Adds ``delta`` pages; returns the previous size in pages.

        WasmError if it cannot grow, saying what bounds it: the maximum of its type, the store's
        :class:`StoreLimits`, or the largest size a memory can have.
        """
        require_int(delta, "delta", 0, 2**64 - 1)
        previous = ffi.new("uint64_t *")
        with self._store._lock:
            error = lib.wasmtime_memory_grow(self._store._context(), self._memory, delta, previous)
            if error != ffi.NULL:
                raise self._growth_refused(delta, take_error(error))
        return previous[0]

    def _growth_refused(self, delta: int, refusal: WasmError) -> WasmError:
        """The error for a ``grow(delta)`` that wasmtime refused (``refusal``, which does not say why)."""
        memory_type, size = self.type, self.size
        wanted = size + delta
        what = f"cannot grow the memory by {_pages(delta)}, from {size} to {wanted}"
        if memory_type.maximum is not None and wanted > memory_type.maximum:
            return WasmError(f"{what}: its maximum is {_pages(memory_type.maximum)} ({memory_type})")
        limits = self._store._limits
        limit = None if limits is None else limits.memory_size
        page_size = memory_type.page_size
        if limit is not None and wanted * page_size > limit:
            return WasmError(f"{what}: the store's limits allow {limit} bytes of linear memory (StoreLimits("
                             f"memory_size={limit}), which is {_pages(limit // page_size)} of {page_size} bytes)")
        bits = 64 if memory_type.is_64 else 32
        largest = 2**bits // page_size
        if wanted > largest:
            return WasmError(f"{what}: a {bits}-bit memory has at most {_pages(largest)} of {page_size} bytes")
        return WasmError(f"{what}: {refusal}")

    def __repr__(self) -> str:
        if self._store.closed:
            return "<wasmpy.Memory (store closed)>"
        return f"<wasmpy.Memory: {self.size} pages, {self.type}>"


def _pages(count: int) -> str:
    return f"{count} page" if count == 1 else f"{count} pages"
