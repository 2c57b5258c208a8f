"""Memory: a wasm linear memory, readable and writable from Python as a buffer."""

from __future__ import annotations

from ._checks import require_instance, require_int
from ._engine import Engine, _MEMORY_RESERVATION
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
    see the new bytes (the old view stays valid: memories never move, unless the
    engine lets them, below).
    ``read(offset, length)`` copies bytes out, ``write(offset, data)`` copies a
    bytes-like object in, and ``data_size`` is the size in bytes (the
    ``MemoryBase`` base class does these in C).

    In an engine made with ``memory_may_move=True``, wasmtime may move a memory
    when it grows (map a larger region, copy, unmap the old one) if its
    maximum is above the engine's memory reservation (4 GiB by default: so
    64-bit memories, or any with a smaller ``memory_reservation``), unless its
    minimum is its maximum. ``read`` and ``write`` always find
    where it is now. A buffer view of such a memory (a ``memoryview``, or what
    is made from one: ``np.frombuffer(memory)``, ``ctypes`` ``from_buffer``...)
    would point at freed memory after a move, so while one is alive, no
    memory of its store grows past the size the viewed memory had when the
    view was taken: :meth:`grow` raises BufferError, ``memory.grow`` in wasm
    returns -1 (as at a limit of :class:`StoreLimits`, the mechanism it
    uses), and instantiating a module whose memory starts larger fails.
    Release the views (``view.release()``, ``del``) to let the store's memories
    grow again; one released on another thread while this store's wasm runs
    there takes effect when that call returns. Memories that cannot move are
    not held back by their views.
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
        may_move = store.engine.config["memory_may_move"] and _moves_when_growing(store.engine, self.type)
        self._bind_memory(store._handle, int(ffi.cast("uintptr_t", memory)), may_move)
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
            self._check_not_pinned(delta)
            error = lib.wasmtime_memory_grow(self._store._context(), self._memory, delta, previous)
            if error != ffi.NULL:
                raise self._growth_refused(delta, take_error(error))
        return previous[0]

    def _check_not_pinned(self, delta: int) -> None:
        """BufferError if buffer views of memories that may move hold the store's memories below
        the size ``grow(delta)`` asks for (see the class's docstring)."""
        pinned_size = self._store._handle.pinned_size
        if pinned_size is None or delta == 0:
            return
        size, page_size = self.size, self.type.page_size
        wanted = (size + delta) * page_size
        if wanted <= pinned_size:
            return
        whose = "of this memory" if self._buffer_exports else "of a memory of the same store"
        raise BufferError(f"cannot grow the memory by {_pages(delta)}, from {size} to {size + delta}, while a "
                          f"buffer view {whose} is alive (a memoryview, or an object made from one such as a "
                          f"numpy array): with Engine(memory_may_move=True) growing may move a memory and "
                          f"leave its views pointing at freed memory, so the store's memories cannot grow past "
                          f"{pinned_size} bytes until those views are released")

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


def _moves_when_growing(engine: Engine, memory_type: MemoryType) -> bool:
    """Whether wasmtime may move a memory of this type when it grows, in an engine with
    memory_may_move=True: wasmtime_environ's ``Memory::memory_may_move`` (wasmtime 50)."""
    if memory_type.maximum == memory_type.minimum:  # never resized (shared memories are not Memory objects)
        return False
    page_size = memory_type.page_size
    if memory_type.maximum is not None:
        largest = memory_type.maximum * page_size  # beyond 2**64 counts as 2**64 - 1 there: still above
    elif memory_type.is_64:
        largest = 2**64 - page_size
    else:
        largest = max(memory_type.minimum * page_size, 2**32)
    return largest > engine.config.get("memory_reservation", _MEMORY_RESERVATION)


def _pages(count: int) -> str:
    return f"{count} page" if count == 1 else f"{count} pages"
