"""Store: the world in which instances, functions, memories, globals and tables live."""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import os
import time
import weakref
from dataclasses import dataclass
from typing import Any, Iterator, Optional

from ._checks import require_instance, require_int
from ._engine import Engine, native_stack_shortage
from ._errors import Trap, TrapCode, WasmError, check, take_call_failure
from ._ffi import ffi, lib
from ._native import StoreHandle, after_fork_in_child, epoch_check_address, release_dropped
from ._ownership import Owner, init_once
from ._wasi import WasiConfig, note_wasi_used

__all__ = ["Store", "StoreLimits"]


@dataclass(frozen=True)
class StoreLimits:
    """Bounds on what a store's instances may allocate; None means no bound."""

    memory_size: Optional[int] = None
    table_elements: Optional[int] = None
    instances: Optional[int] = None
    tables: Optional[int] = None
    memories: Optional[int] = None

    def _apply(self, handle: StoreHandle) -> None:
        """Makes these the limits of the store of ``handle``, which keeps them: it lowers
        ``memory_size`` further while buffer views pin the store (see Memory)."""
        values = []
        for name in ("memory_size", "table_elements", "instances", "tables", "memories"):
            value = getattr(self, name)
            values.append(-1 if value is None else require_int(value, f"StoreLimits.{name}", 0, 2**63 - 1))
        handle.set_limits(*values)


_EPOCH_CHECK = ffi.cast("wasmtime_error_t *(*)(wasmtime_context_t *, void *, uint64_t *, "
                        "wasmtime_update_deadline_kind_t *)", epoch_check_address())
_DEADLINE_MESSAGE = "wasmpy: deadline exceeded"  # as csrc/native.c words it
_FOREVER = 100 * 365 * 24 * 3600  # seconds: further deadlines are none at all
_STACK_EXHAUSTED = 3  # a wasmpy_call status: not called, too little native stack left


def call_failure(pending: Optional[BaseException], status: int, trap: Any, error: Any) -> BaseException:
    """The exception for a failed call (``status`` 1: ``trap``, 2: ``error``, owned; addresses or
    cdata): the exception ``pending`` a host function or signal handler raised, if one caused it."""
    if status == _STACK_EXHAUSTED:
        return RecursionError("not enough native stack left to call into wasm safely (deep recursion "
                              "between Python and wasm, or a thread with a small stack)")
    if isinstance(trap, int):
        trap, error = ffi.cast("wasm_trap_t *", trap), ffi.cast("wasmtime_error_t *", error)
    exception = take_call_failure(status, ffi.new("wasm_trap_t **", trap), ffi.new("wasmtime_error_t **", error))
    if pending is not None:
        return pending
    if isinstance(exception, Trap) and exception.code is None and _DEADLINE_MESSAGE in exception.message:
        exception.code = TrapCode.INTERRUPT
        exception.message = "deadline exceeded"
        exception.args = (exception.message,)
    return exception


class Store(Owner):
    """Owns the instances, functions, memories, globals and tables created in it.

    Everything created in a store keeps it alive; the store's memory is freed
    when the last of them is gone, or at once with :meth:`close` (or ``with``).
    A store is used by one thread at a time: calls from several threads are
    serialised by the store's lock.

    A call into wasm keeps the GIL until the first epoch tick that comes while
    it runs (ticks come every 10 ms), then lets other Python threads run: short
    calls stay cheap and long ones run in parallel. ``release_gil=True`` makes
    every call of this store release the GIL at once (a few hundred
    nanoseconds per call), for calls of a millisecond or so made from several
    threads, one store per thread, that should run in parallel from their
    first instruction. Stores with WASI, engines without epoch interruption and
    engines with shared memories always release it at once.
    """

    def __init__(self, engine: Optional[Engine] = None, *, fuel: Optional[int] = None,
                 limits: Optional[StoreLimits] = None, wasi: Any = None, release_gil: bool = False) -> None:
        init_once(self, "_handle")
        engine = Engine.default() if engine is None else require_instance(engine, Engine, "engine")
        if not isinstance(release_gil, bool):
            raise TypeError(f"release_gil must be True or False, not {type(release_gil).__name__}")
        if limits is not None:
            require_instance(limits, StoreLimits, "limits")
        self._engine = engine
        # The handle owns the wasmtime store (deleted when the handle closes or is freed), its
        # reentrant lock (wasm may call a host function that calls back into this store), the
        # exception a host function raised, and the objects wasmtime refers to by address.
        handle = StoreHandle(int(ffi.cast("uintptr_t", lib.wasmtime_store_new(engine._ptr, ffi.NULL, ffi.NULL))))
        self._handle = self._lock = handle
        self._ctx: Any = ffi.cast("wasmtime_context_t *", handle.context)
        handle.stack_needed = engine._stack_needed
        # Calls keep the GIL until their first epoch tick, unless nothing would tick or their wasm
        # may wait inside wasmtime, where no tick comes (shared memories; WASI, once configured).
        handle.release_gil = release_gil or not engine.interruptible or bool(engine.config.get("shared_memory"))
        if engine.interruptible:  # the check runs at every tick of the engine's epoch
            lib.wasmtime_store_epoch_deadline_callback(self._store_ptr(), _EPOCH_CHECK, ffi.cast("void *", id(handle)),
                                                       ffi.NULL)
            lib.wasmtime_context_set_epoch_deadline(self._ctx, 1)
        self._memories: "Optional[weakref.WeakSet[Any]]" = None  # made with the first Memory
        self._wasi_ready = False
        self._wasi_http = False  # whether the WASI context has wasi:http (WasiConfig(http=True))
        self._gc_bridge: Any = None  # exports converting externref <-> anyref, made when needed
        self._limits = limits
        self._wasi: Optional[WasiConfig] = None
        if wasi is not None:
            self.wasi = wasi
        if limits is not None:
            limits._apply(handle)
        if fuel is not None:
            self.fuel = fuel

    def _store_ptr(self) -> Any:
        """The ``wasmtime_store_t *`` (owned by the handle): WasmError once closed."""
        return ffi.cast("wasmtime_store_t *", self._handle.store)

    def _allow_helper_instance(self) -> None:
        """Makes room in :class:`StoreLimits` ``instances`` for wasmpy's own helper instance."""
        limits = self._limits
        if limits is not None and limits.instances is not None:
            dataclasses.replace(limits, instances=limits.instances + 1)._apply(self._handle)

    @property
    def engine(self) -> Engine:
        """The engine the store was made with (wasmtime's store belongs to it: it cannot change)."""
        return self._engine

    @property
    def wasi(self) -> Optional[WasiConfig]:
        """The WASI configuration of the store's instances.

        None means the safe default: no arguments, no environment, standard
        streams inherited, no filesystem. It can be changed only until a
        module that imports WASI is instantiated in the store (with some WASI
        function not overridden in its imports).
        """
        return self._wasi

    @wasi.setter
    def wasi(self, config: Optional[WasiConfig]) -> None:
        if config is not None:
            require_instance(config, WasiConfig, "wasi")
        if self._wasi_ready:
            raise WasmError("this store's WASI context is in use by its instances; WASI settings belong "
                            "to a store, so use a new Store for different ones")
        self._wasi = config

    def _ensure_wasi(self) -> None:
        """Gives the store its WASI context, once: preview 1 modules and components share it."""
        if self._wasi_ready:
            return
        settings = self._wasi or WasiConfig()
        config = settings._to_c(self._handle)
        check(lib.wasmtime_context_set_wasi(self._context(), config))  # takes the config
        # What the context has, not what the WasiConfig says now: it may change after this.
        self._wasi_http = settings.http
        if settings.http:
            lib.wasmtime_context_set_wasi_http(self._ctx)
        note_wasi_used()
        self._handle.release_gil = True  # WASI calls block (reads, sleeps) where no epoch tick comes
        self._wasi_ready = True

    def _track_memory(self, memory: Any) -> None:
        """Remembers ``memory`` (weakly), so that :meth:`close` can refuse while views of it are alive."""
        if self._memories is None:
            self._memories = weakref.WeakSet()
        self._memories.add(memory)

    def _context(self):
        if self._handle.closed:
            raise WasmError("the store is closed")
        return self._ctx

    def _failure(self, status: int, trap_out, error_out) -> BaseException:
        """The exception for a failed call: a host function's own exception if one caused it."""
        return self._call_failure(self._handle.take_pending(), status, trap_out[0], error_out[0])

    def _call_failure(self, pending: Optional[BaseException], status: int, trap: Any, error: Any) -> BaseException:
        """:func:`call_failure` for a call into this store: an exception wasm threw and did not
        catch becomes a :class:`WasmException`."""
        if status == _STACK_EXHAUSTED:
            return native_stack_shortage(self.engine._stack_needed)
        failure = call_failure(pending, status, trap, error)
        if isinstance(failure, Trap) and failure is not pending:
            with self._lock:
                if not self.closed and lib.wasmtime_context_has_exception(self._ctx):
                    from ._tag import take_wasm_exception  # it makes Tags and values, which need this module

                    return take_wasm_exception(self, failure.frames)
        return failure

    @property
    def fuel(self) -> int:
        """The fuel left (needs ``Engine(consume_fuel=True)``); assignable."""
        self._require_fuel()
        out = ffi.new("uint64_t *")
        with self._lock:
            check(lib.wasmtime_context_get_fuel(self._context(), out))
        return out[0]

    @fuel.setter
    def fuel(self, value: int) -> None:
        require_int(value, "fuel", 0, 2**64 - 1)
        self._require_fuel()
        with self._lock:
            check(lib.wasmtime_context_set_fuel(self._context(), value))

    def _require_fuel(self) -> None:
        if not self.engine.config.get("consume_fuel"):
            raise WasmError("fuel needs an engine made with consume_fuel=True: "
                            "Store(Engine(consume_fuel=True), fuel=...)")

    def set_deadline(self, seconds: Optional[float]) -> None:
        """Interrupts wasm of this store (``Trap`` with code ``TrapCode.INTERRUPT``) once ``seconds``
        have passed from now, in this call or a later one; None removes the deadline.

        Needs an interruptible engine (the default); the precision is about 10 ms.
        """
        if seconds is None:
            self._handle.deadline_ns = 0
            return
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool):
            raise TypeError(f"seconds must be a number or None, not {type(seconds).__name__}")
        if not seconds >= 0:
            raise ValueError(f"seconds must not be negative, not {seconds}")
        if not self.engine.interruptible:
            raise WasmError("deadlines need an engine with epoch_interruption=True (the default)")
        if seconds > _FOREVER:  # inf and the like: no deadline
            self._handle.deadline_ns = 0
            return
        self._handle.deadline_ns = time.monotonic_ns() + max(1, int(seconds * 1e9))

    @contextlib.contextmanager
    def deadline(self, seconds: float) -> Iterator[None]:
        """``with store.deadline(seconds):`` interrupts wasm running too long in the block."""
        previous = self._handle.deadline_ns
        self.set_deadline(seconds)
        try:
            yield
        finally:
            self._handle.deadline_ns = previous

    def add_fuel(self, fuel: int) -> int:
        """Adds fuel and returns the new amount (see :attr:`fuel`)."""
        require_int(fuel, "fuel", 0, 2**64 - 1)
        with self._lock:
            self.fuel = min(self.fuel + fuel, 2**64 - 1)
            return self.fuel

    def gc(self) -> None:
        """Collects unreachable wasm GC objects and externrefs now (and releases their Python objects)."""
        check(ffi.cast("wasmtime_error_t *", self._handle.gc()))

    def close(self) -> None:
        """Frees the store now; using anything of it afterwards raises WasmError."""
        with self._lock:
            if self.closed:
                return
            if self._memories is not None and any(memory._buffer_exports for memory in self._memories):
                raise BufferError("cannot close the store: a memoryview of one of its memories is alive")
            self._handle.close()

    @property
    def closed(self) -> bool:
        handle = getattr(self, "_handle", None)  # None: cleared by Python's GC, with the store
        return handle is None or handle.closed

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<wasmpy.Store{' (closed)' if self.closed else ''}>"


def _release_after_collection(phase: str, info: Any) -> None:
    # A collection that broke a cycle through a store deleted it: the objects its externrefs held
    # are released here, where Python code may run, rather than inside wasmtime's sweep.
    if phase == "stop":
        release_dropped()


gc.callbacks.append(_release_after_collection)
os.register_at_fork(after_in_child=after_fork_in_child)

