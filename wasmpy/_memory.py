"""Memory: a wasm linear memory, readable and writable from Python as a buffer."""

from __future__ import annotations

import builtins
from typing import Tuple, Union

from ._native import BufferExporter
from ._checks import require_instance, require_int
from ._errors import check
from ._ffi import ffi, lib
from ._store import Store
from ._types import MemoryType

__all__ = ["Memory"]


class Memory(BufferExporter):
    """A linear memory. ``memoryview(memory)`` is a zero-copy, writable view of its current bytes.

    A view keeps its length: after :meth:`grow`, take a new ``memoryview`` to
    see the new bytes (the old view stays valid; memories never move).
    """

    def __init__(self, store: Store, type: MemoryType) -> None:
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
        store._memories.add(self)

    @property
    def store(self) -> Store:
        return self._store

    @property
    def type(self) -> MemoryType:
        with self._store._lock:
            ptr = lib.wasmtime_memory_type(self._store._context(), self._memory)
        try:
            return MemoryType._from_c(ptr)
        finally:
            lib.wasm_memorytype_delete(ptr)

    @property
    def size(self) -> int:
        """The current size, in pages."""
        with self._store._lock:
            return lib.wasmtime_memory_size(self._store._context(), self._memory)

    @property
    def data_size(self) -> int:
        """The current size, in bytes."""
        with self._store._lock:
            return lib.wasmtime_memory_data_size(self._store._context(), self._memory)

    def __len__(self) -> int:
        return self.data_size

    def grow(self, delta: int) -> int:
        """Adds ``delta`` pages; returns the previous size in pages. WasmError if it cannot grow."""
        require_int(delta, "delta", 0, 2**64 - 1)
        previous = ffi.new("uint64_t *")
        with self._store._lock:
            check(lib.wasmtime_memory_grow(self._store._context(), self._memory, delta, previous))
        return previous[0]

    def _span(self, offset: int, length: int) -> Tuple[object, int]:
        """The address of [offset, offset + length), checked against the current size."""
        for name, value in (("offset", offset), ("length", length)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{name} must be an int, not {builtins.type(value).__name__}")
        ctx = self._store._context()
        size = lib.wasmtime_memory_data_size(ctx, self._memory)
        if offset < 0 or length < 0 or offset + length > size:
            raise IndexError(f"bytes {offset}..{offset + length} are out of bounds of a memory of {size} bytes")
        return lib.wasmtime_memory_data(ctx, self._memory) + offset, size

    def read(self, offset: int, length: int) -> bytes:
        """A copy of ``length`` bytes at ``offset``."""
        with self._store._lock:
            address, _ = self._span(offset, length)
            return ffi.unpack(ffi.cast("char *", address), length)

    def write(self, offset: int, data: Union[bytes, bytearray, memoryview]) -> None:
        """Copies ``data`` (any bytes-like object) to ``offset``."""
        try:
            source = memoryview(data).cast("B")
        except TypeError:
            raise TypeError(f"data must be bytes-like, not {builtins.type(data).__name__}") from None
        with self._store._lock:
            address, _ = self._span(offset, source.nbytes)
            ffi.memmove(address, source, source.nbytes)

    def _buffer_span(self) -> Tuple[int, int]:
        with self._store._lock:
            ctx = self._store._context()
            return (int(ffi.cast("uintptr_t", lib.wasmtime_memory_data(ctx, self._memory))),
                    lib.wasmtime_memory_data_size(ctx, self._memory))

    def __repr__(self) -> str:
        if self._store.closed:
            return "<wasmpy.Memory (store closed)>"
        return f"<wasmpy.Memory: {self.size} pages, {self.type}>"

