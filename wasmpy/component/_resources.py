"""Resources as Python objects: those a component exports, and those Python defines for it.

Each exported resource type becomes a class per component instance (``api.Counter``): its
constructor, methods and static functions call the instance's ``[constructor]counter``,
``[method]counter.get`` and ``[static]counter.merge``. An object holds an owned handle;
``close()`` (or leaving a ``with`` block) drops it, which runs the guest's destructor. Passing
the object where WIT takes an owned ``counter`` moves it into wasm: it is closed afterwards.
Garbage collection frees the handle without dropping the resource (that would run wasm at
whatever point the collector runs): the guest's table keeps it until the store goes, so
close resources explicitly.

A resource the component imports is a Python class the imports give under the resource's name
(``Thing`` or ``thing``): ``[constructor]thing`` calls the class, ``[method]thing.get`` the
object's ``get``, ``[static]thing.make`` the class's ``make``. Its objects go to wasm as handles
whose representation is their index in the store's :class:`HostTable`, which keeps them alive
while wasm holds them; a handle wasm gives back (a borrow, or an owned handle it hands over)
is the same object again. When wasm drops the last owned handle of an object, the object's
``close()`` runs if it has one. Two instances in one store given the same class share its
objects: one can pass to the other what it got.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from typing import Any, ClassVar, Dict, List, Optional, Tuple, Type, cast

from .._errors import WasmError, take_call_failure
from .._ffi import ffi, lib
from .._native import component_set_pending
from .._ownership import Owner
from ._types import HandleType, ResourceType

__all__ = ["Resource", "HostResource", "HostTable", "InstanceResources", "calling", "check_passed", "finish_call",
           "host_tag"]

_STACK_EXHAUSTED = 3
_REP_LIMIT = 2**32  # representations are u32


class HostTable:
    """The Python objects wasm holds as handles of host resources, in one store, by representation.

    An object has one representation while wasm holds it (however many handles): an entry
    counts its owned handles and the borrows lent for calls in progress, and goes when both
    are none. Used under the store's lock only."""

    def __init__(self) -> None:
        self._entries: Dict[int, List[Any]] = {}  # rep -> [object, owned handles, borrows lent]
        self._reps: Dict[int, int] = {}  # id(object) -> rep
        self._next = 1

    def __len__(self) -> int:
        return len(self._entries)

    def lend(self, obj: Any, owned: bool) -> int:
        """The representation of ``obj`` for a handle wasm is given (owned, or a borrow)."""
        rep = self._reps.get(id(obj))
        if rep is None:
            if len(self._entries) >= _REP_LIMIT - 1:
                raise OverflowError("wasm holds 2**32 - 1 host resources in this store: no representation is left")
            rep = self._next
            while rep in self._entries:
                rep = rep % (_REP_LIMIT - 1) + 1
            self._next = rep % (_REP_LIMIT - 1) + 1
            self._entries[rep] = [obj, 0, 0]
            self._reps[id(obj)] = rep
        self._entries[rep][1 if owned else 2] += 1
        return rep

    def get(self, rep: int) -> Any:
        """The object of a handle wasm gave Python."""
        entry = self._entries.get(rep)
        if entry is None:
            raise WasmError(f"wasm passed a host resource handle whose representation ({rep}) wasmpy does not know")
        return entry[0]

    def unlend(self, rep: int, owned: bool) -> Tuple[Any, bool]:
        """``rep`` has one handle (owned, or a borrow) fewer: its object (None for a representation
        it does not know), and whether that was its last owned handle."""
        entry = self._entries.get(rep)
        if entry is None:
            return None, False
        index = 1 if owned else 2
        if entry[index] == 0:  # none of that kind: nothing to take back
            return entry[0], False
        entry[index] -= 1
        last = owned and entry[1] == 0
        if entry[1] == 0 and entry[2] == 0:
            del self._entries[rep]
            del self._reps[id(entry[0])]
        return entry[0], last


def host_table(store: Any) -> HostTable:
    """The HostTable of ``store`` (made on first use: one per store, shared by its instances)."""
    table = store.__dict__.get("_host_resources")
    if table is None:
        table = store.__dict__.setdefault("_host_resources", HostTable())
    return table  # type: ignore[no-any-return]


# One tag per class (wasmtime's host resource type): the same class in two instances of a store
# is one resource type, so that an object may go from one to the other. No lock (a fork could
# leave one held): dict.setdefault is atomic, and a number drawn by a losing thread goes unused.
_tags: "weakref.WeakKeyDictionary[type, int]" = weakref.WeakKeyDictionary()
_next_tag = itertools.count(1)


def host_tag(cls: type) -> int:
    """The u32 type tag of the host resource class ``cls``."""
    tag = _tags.get(cls)
    if tag is None:
        tag = _tags.setdefault(cls, next(_next_tag))
        if tag >= _REP_LIMIT:
            raise OverflowError("2**32 - 1 host resource classes were used in this process: no tag is left")
    return tag


class HostResource:
    """A resource a component imports, in one instance: the Python class that defines it (the
    data of its destructor, which outlives every instance of the store)."""

    __slots__ = ("cls", "tag", "table", "lock")

    def __init__(self, cls: type, table: HostTable, lock: Any) -> None:
        self.cls = cls
        self.tag = host_tag(cls)
        self.table = table
        self.lock = lock  # the store's handle, held again while close() runs

    def destroy(self, rep: int) -> None:
        """wasm dropped an owned handle: the object's close() runs if it was the last."""
        with self.lock:
            obj, last = self.table.unlend(rep, owned=True)
            if last:
                close = getattr(obj, "close", None)
                if close is not None:
                    close()


_DESTRUCTOR_ERROR = b"wasmpy: the close() of a Python host resource raised an exception"


def _destructor_failed(exception_type: Any, exception: Any, traceback: Any) -> Any:
    component_set_pending(exception)
    return lib.wasmtime_error_new(_DESTRUCTOR_ERROR)


@ffi.def_extern(onerror=_destructor_failed)
def wasmpy_component_resource_destructor(data: Any, context: Any, rep: int) -> Any:
    try:
        ffi.from_handle(data).destroy(rep)
    except BaseException as exception:  # noqa: B902 - it reaches the Python caller of the call that dropped it
        component_set_pending(exception)
        return lib.wasmtime_error_new(_DESTRUCTOR_ERROR)
    return ffi.NULL


class InstanceResources:
    """The resources of one component instance, as its calls' values need them: the classes of
    the resources it exports (by ResourceType, filled once its exports are made), the
    HostResource of those it imports, the store's HostTable, and the store's context."""

    __slots__ = ("classes", "hosts", "table", "context")

    def __init__(self, store: Any) -> None:
        self.classes: Dict[ResourceType, type] = {}
        self.hosts: Dict[ResourceType, HostResource] = {}
        self.table = host_table(store)
        self.context = store._ctx  # a plain address: no reference to the store (no cycle)


class _Call:
    """The handles of one call in progress on this thread: its instance's resources, the guest
    resources passed ((object, owned, where) each: those owned move into wasm and are closed
    after the call), and the host resource handles made for it ((handle, rep, owned) each,
    settled after the call)."""

    __slots__ = ("resources", "passed", "lent", "previous")

    def __init__(self, resources: InstanceResources) -> None:
        self.resources = resources
        self.passed: List[Tuple["Resource", bool, str]] = []
        self.lent: List[Tuple[Any, int, bool]] = []
        self.previous: Optional[_Call] = None  # the call this one is nested in (from a Python import)


class _Current(threading.local):
    call: Optional[_Call] = None


_current = _Current()


class calling:
    """``with calling(resources) as call:`` around converting a call's values (codecs are
    shared by all instances of a component: this tells them which instance's)."""

    __slots__ = ("call",)

    def __init__(self, resources: InstanceResources) -> None:
        self.call = _Call(resources)

    def __enter__(self) -> _Call:
        self.call.previous = _current.call
        _current.call = self.call
        return self.call

    def __exit__(self, *exc_info: Any) -> None:
        _current.call = self.call.previous


def resource_class(resource: ResourceType) -> Optional[Type[Resource]]:
    """The class of ``resource`` for the instance being called (None outside a call)."""
    call = _current.call
    # The classes are Resource subclasses (component/_instance.py's _resource_class makes them),
    # held as plain types by InstanceResources.classes and _Live.classes.
    return None if call is None else cast("Optional[Type[Resource]]", call.resources.classes.get(resource))


def passing(resource: "Resource", owned: bool, where: str) -> None:
    """``resource`` (a guest resource) is an argument of the call being prepared (``owned``: it
    moves into wasm)."""
    call = _current.call
    if call is not None:
        call.passed.append((resource, owned, where))


def check_passed(call: _Call) -> None:
    """Under the store's lock, before the arguments are written (which cannot fail then): every
    guest resource passed is still open (another thread may have closed it since it was
    prepared), and none moves into wasm twice or is also lent."""
    seen: Dict[int, bool] = {}
    for resource, owned, where in call.passed:
        resource._require_open(where)
        if id(resource) in seen and (owned or seen[id(resource)]):
            raise ValueError(f"{where}: this {type(resource).__name__} is already passed to this call, which "
                             "takes ownership of it: a resource moves into wasm once")
        seen[id(resource)] = owned or seen.get(id(resource), False)


def finish_call(call: _Call, ran: bool) -> None:
    """After a call into wasm: the guest resources it moved are closed (``ran``: wasm was
    entered), the borrows of host objects it lent are returned, and the owned host handles wasm
    did not take (a call that failed first) no longer count."""
    if ran:
        for resource, owned, _ in call.passed:
            if owned:
                resource._forget()
    if not call.lent:
        return
    context = call.resources.context
    table = call.resources.table
    for handle, rep, owned in call.lent:
        # Fails for an owned handle wasm took (it is no longer in the store's table): that one counts.
        error = lib.wasmtime_component_resource_any_drop(context, handle)
        if error != ffi.NULL:
            lib.wasmtime_error_delete(error)
        else:
            table.unlend(rep, owned)


def _host(resource: ResourceType, where: str) -> Tuple[_Call, HostResource]:
    call = _current.call
    host = None if call is None else call.resources.hosts.get(resource)
    if host is None:  # pragma: no cover - every call of an instance with host resources sets it
        raise WasmError(f"{where}: no Python class is known for the WIT resource {resource} here")
    return call, host  # type: ignore[return-value]


def host_prepare(typ: HandleType, value: Any, where: str) -> Any:
    """An object of the Python class of an imported resource, checked."""
    _, host = _host(typ.resource, where)
    if not isinstance(value, host.cls):
        raise TypeError(f"{where}: expected a {host.cls.__name__} (WIT {typ}), got {type(value).__name__}")
    return value


def host_write(typ: HandleType, value: Any, out: Any) -> None:
    """Fills ``out`` with a new handle of ``value`` (under the store's lock). It cannot fail: if
    wasmtime refuses the handle, ``out`` is left a bool, which wasmtime's type check refuses, and
    the reason is the exception the caller gets."""
    call, host = _host(typ.resource, "passing a host resource")
    resources = call.resources
    owned = typ.owned
    out.kind = lib.WASMTIME_COMPONENT_BOOL
    out.of.boolean = False
    try:
        rep = resources.table.lend(value, owned)
    except OverflowError as exception:
        component_set_pending(exception)
        return
    made = lib.wasmtime_component_resource_host_new(owned, rep, host.tag)
    handle = ffi.new("wasmtime_component_resource_any_t **")
    error = lib.wasmtime_component_resource_host_to_any(resources.context, made, handle)
    lib.wasmtime_component_resource_host_delete(made)
    if error != ffi.NULL:
        resources.table.unlend(rep, owned)
        component_set_pending(take_call_failure(2, None, ffi.new("wasmtime_error_t **", error)))
        return
    out.kind = lib.WASMTIME_COMPONENT_RESOURCE
    out.of.resource = handle[0]
    call.lent.append((handle[0], rep, owned))


def host_read(typ: HandleType, val: Any) -> Any:
    """The object of a handle wasm gave Python: a borrow's is still wasm's; an owned handle's is
    Python's now (taken out of the table, without close())."""
    call, host = _host(typ.resource, "reading a host resource")
    resources = call.resources
    made = ffi.new("wasmtime_component_resource_host_t **")
    error = lib.wasmtime_component_resource_any_to_host(resources.context, val.of.resource, made)
    if error != ffi.NULL:
        raise take_call_failure(2, None, ffi.new("wasmtime_error_t **", error))
    rep = lib.wasmtime_component_resource_host_rep(made[0])
    lib.wasmtime_component_resource_host_delete(made[0])
    if not typ.owned:
        return resources.table.get(rep)
    obj, _ = resources.table.unlend(rep, owned=True)
    if obj is None:
        raise WasmError(f"wasm passed a host resource handle whose representation ({rep}) wasmpy does not know")
    return obj


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

    def _take_handle_of(self, made: Optional["Resource"]) -> None:
        """Becomes the resource ``made`` (what a constructor returned); None: only checks that
        this object is not made already."""
        if getattr(self, "_handle", None) is not None:
            raise TypeError(f"{type(self).__name__}.__init__() cannot run again on a resource that is already "
                            "made: make a new one instead")
        if made is not None:
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
