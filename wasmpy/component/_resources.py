"""Resources a component defines and exports, as Python objects.

Each exported resource type becomes a class per component instance (``api.Counter``): its
constructor, methods and static functions call the instance's ``[constructor]counter``,
``[method]counter.get`` and ``[static]counter.merge``. An object holds an owned handle;
``close()`` (or leaving a ``with`` block) drops it, which runs the guest's destructor. Passing
the object where WIT takes an owned ``counter`` moves it into wasm: it is closed afterwards.
Garbage collection frees the handle without dropping the resource (that would run wasm at
whatever point the collector runs): the guest's table keeps it until the store goes, so
close resources explicitly.

Resources a Python host defines (imported resources) are not supported yet.
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar, Dict, Optional

from .._errors import WasmError, take_call_failure
from .._ffi import ffi, lib
from .._ownership import Owner
from ._types import ResourceType

__all__ = ["Resource", "reading_for"]

_STACK_EXHAUSTED = 3


class _Reading(threading.local):
    """The resource classes of the instance whose call's results this thread is reading: a
    handle becomes an object of its instance's class (codecs are shared by all instances)."""

    classes: Optional[Dict[ResourceType, type]] = None


_reading = _Reading()


class reading_for:
    """``with reading_for(classes):`` around reading a call's results."""

    __slots__ = ("classes", "previous")

    def __init__(self, classes: Dict[ResourceType, type]) -> None:
        self.classes = classes

    def __enter__(self) -> None:
        self.previous = _reading.classes
        _reading.classes = self.classes

    def __exit__(self, *exc_info: Any) -> None:
        _reading.classes = self.previous


def resource_class(resource: ResourceType) -> Optional[type]:
    """The class of ``resource`` for the instance being read (None outside a call's results)."""
    classes = _reading.classes
    return None if classes is None else classes.get(resource)


class Resource(Owner):
    """Base of the classes made for a component's resource types (see the module's docstring)."""

    _resource_type: ClassVar[ResourceType]
    _store: ClassVar[Any]  # the Store of the instance the class belongs to
    _handle: Any  # wasmtime_component_resource_any_t *, owned; None once closed or moved

    @classmethod
    def _adopt(cls, handle: Any) -> "Resource":
        """An object owning ``handle`` (a ``wasmtime_component_resource_any_t *``)."""
        made = cls.__new__(cls)
        made._handle = handle
        return made

    def _take_handle_of(self, made: "Resource") -> None:
        """Becomes the resource ``made`` (what a constructor returned)."""
        if getattr(self, "_handle", None) is not None:
            raise TypeError(f"{type(self).__name__}.__init__() cannot run again on a resource that is already "
                            "made: make a new one instead")
        self._handle, made._handle = made._handle, None

    def _require_open(self, where: str) -> None:
        if getattr(self, "_handle", None) is None:
            raise WasmError(f"{where}: the {type(self).__name__} is closed (dropped, or moved into wasm by "
                            "a call that took ownership of it)")

    @property
    def closed(self) -> bool:
        return getattr(self, "_handle", None) is None

    def close(self) -> None:
        """Drops the resource now: the guest's destructor runs. Closing again does nothing."""
        if getattr(self, "_handle", None) is None:
            return
        store = self._store
        with store._lock:
            # Read again under the lock: another thread's call may have moved it into wasm
            # (freeing the handle) or closed it since the check above.
            handle = getattr(self, "_handle", None)
            if handle is None:
                return
            if store.closed:  # the store took the resource with it
                self._forget()
                return
            error = ffi.new("wasmtime_error_t **")
            status = lib.wasmpy_component_resource_drop(store._context(), handle, store._handle.stack_needed, error)
            if status == _STACK_EXHAUSTED:
                raise RecursionError("not enough native stack left to drop the resource safely")
            self._forget()
            if status:
                raise take_call_failure(2, None, error)

    def _forget(self) -> None:
        """Frees the handle without dropping the resource: it was moved into wasm, or its store is gone."""
        handle, self._handle = getattr(self, "_handle", None), None
        if handle is not None:
            lib.wasmtime_component_resource_any_delete(handle)

    def __enter__(self) -> "Resource":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __del__(self) -> None:
        self._forget()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} resource{' (closed)' if self.closed else ''}>"
