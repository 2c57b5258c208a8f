"""Instances of components: imports from Python, exports as Python callables and namespaces.

``wasmpy.Instance(component, imports, store)`` makes a :class:`ComponentInstance` (a subclass
of :class:`wasmpy.Instance`). Imports go through a wasmtime component linker: each Python
function becomes a host function whose C callback converts the arguments, calls it and converts
its result back: csrc/component/host.c's for simple WIT types (see _host_plan), else
``wasmpy_component_host_call`` (an ``extern "Python"`` of cffi) with the codecs.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Tuple, cast

from .._checks import require_instance
from .._errors import LinkError, Trap, WasmError, take_call_failure
from .._ffi import ffi, lib
from .._instance import Instance
from .._native import (ComponentCaller, ComponentHost, component_host_callback_address, component_set_pending,
                        component_take_pending, vectorcall_subclass)
from .._ownership import Owner
from .._signals import keep_trap_handlers_first
from .._store import Store
from ._component import Component
from ._resources import HostResource, InstanceResources, Resource, calling, check_passed, finish_call
from ._types import (ComponentItems, FuncType, InterfaceType, ListType, Primitive, RecordType, ResourceType, ResultType,
                     TupleType, has_handles)
from ._values import (_VALUE_KINDS, GENERATED_MODULE, Codecs, Err, Ok, _simple_fields, camel_case, interface_attribute,
                      namespace_member, snake_case, without_version)
from ._wasi import WASI_PREFIX, link_wasi

__all__ = ["ComponentInstance", "ComponentFunc", "ComponentExports", "InterfaceExports"]

_STACK_EXHAUSTED = 3


def _take_pending() -> Optional[BaseException]:
    """The exception a Python import raised on this thread, for the call into wasm it ended (kept in
    C, where the C path of calls drops it after a call that succeeded: wasm handled the failure)."""
    return component_take_pending()


def _codecs(component: Component) -> Codecs:
    """The codecs and generated classes of a component's types, shared by all its instances
    (so that ``Point`` is one class however many times the component is instantiated)."""
    codecs = component.__dict__.get("_codecs")
    if codecs is None:
        codecs = component.__dict__.setdefault("_codecs", Codecs())
    return codecs


def _refuse_unsupported(functype: FuncType, where: str) -> None:
    unsupported = functype.unsupported()
    if unsupported is not None:
        raise NotImplementedError(f"{where} uses the WIT type {unsupported}: wasmpy does not support "
                                  f"{unsupported.kind} values yet")


def _is_toolchain_init(name: str, interface: InterfaceType) -> bool:
    """Whether the exported interface ``name`` is the one componentize-py adds for its own use:
    ``exports`` with nothing but ``init(app-name, symbols, stub-wasi)``, which it calls while
    building the component (to load the app into the Python interpreter it snapshots); called
    again, it traps and the instance is unusable."""
    init = interface.functions.get("init")
    return (name == "exports" and len(interface.functions) == 1 and not interface.interfaces and init is not None
            and [param for param, _ in init.params] == ["app-name", "symbols", "stub-wasi"])


def listed_interfaces(items: ComponentItems) -> Dict[str, InterfaceType]:
    """The exported interfaces (of ``items``, a component's exports) an instance lists as its own:
    all but componentize-py's ``init`` interface, which stays reachable by its name only."""
    return {name: interface for name, interface in items.interfaces.items()
            if not _is_toolchain_init(name, interface)}


def _uses_handles(functype: FuncType) -> bool:
    return any(has_handles(typ) for _, typ in functype.params) or has_handles(functype.result)


class _HostFunction:
    """A Python function imported by a component: what the C callback needs to call it."""

    __slots__ = ("fn", "where", "params", "result", "top_level_result", "ok_is_plain", "lock", "resources")

    def __init__(self, fn: Callable[..., Any], functype: FuncType, codecs: Codecs, where: str, lock: Any,
                 resources: InstanceResources) -> None:
        self.fn = fn
        # The store's lock (its handle, not the Store: no cycle through the store's list of host
        # functions), held again while Python runs, so that the store refuses to close under wasm.
        self.lock = lock
        # The instance's resources when handles are among the values (their codecs need them).
        self.resources = resources if _uses_handles(functype) else None
        self.where = where
        self.params = [codecs.codec(typ) for _, typ in functype.params]
        self.result = None if functype.result is None else codecs.codec(functype.result)
        self.top_level_result = isinstance(functype.result, ResultType)
        # Whether a returned Ok(...) or Err(...) can only be the result itself, not its ok value.
        self.ok_is_plain = self.top_level_result and not isinstance(functype.result.ok, ResultType)  # type: ignore[union-attr]

    def invoke(self, args: Any, nargs: int, results: Any, nresults: int) -> None:
        with self.lock:
            if self.resources is None:
                self._invoke(args, nargs, results, nresults)
            else:
                # The host handles of the results are wasm's once the callback returns: nothing to settle.
                with calling(self.resources):
                    self._invoke(args, nargs, results, nresults)

    def invoke_at(self, args_address: int, nargs: int, results_address: int, nresults: int) -> None:
        """The whole call the Python way, for the C callback (csrc/component/host.c) when the
        arguments are not what its plan says."""
        self.invoke(ffi.cast("wasmtime_component_val_t *", args_address), nargs,
                    ffi.cast("wasmtime_component_val_t *", results_address), nresults)

    def finish_at(self, value: Any, results_address: int, nresults: int) -> None:
        """Converts and writes a value the function returned, for the C callback when it does not
        take it as it is (the codecs explain why, or convert it)."""
        self._finish(value, ffi.cast("wasmtime_component_val_t *", results_address), nresults)

    def _invoke(self, args: Any, nargs: int, results: Any, nresults: int) -> None:
        values = [codec.read(args + index) for index, codec in enumerate(self.params[:nargs])]
        if self.top_level_result:  # returning is ok; raising wasmpy.Err(value) is err
            try:
                value: Any = self.fn(*values)
            except Err as error:
                value = error
            else:
                if not (isinstance(value, (Ok, Err)) and self.ok_is_plain):  # Ok(...)/Err(...) returned as such
                    value = Ok(value)
        else:
            value = self.fn(*values)
        self._finish(value, results, nresults)

    def _finish(self, value: Any, results: Any, nresults: int) -> None:
        if self.result is None:
            if value is not None:
                raise TypeError(f"{self.where} returns nothing in WIT, but the Python function returned "
                                f"{type(value).__name__}")
            return
        prepared = self.result.prepare(value, f"the result of {self.where}")
        if nresults:
            self.result.write(prepared, results)


_HOST_ERROR = b"wasmpy: a Python import raised an exception"


def _host_call_failed(exception_type: Any, exception: Any, traceback: Any) -> Any:
    """cffi's handler for an exception that escaped the callback itself: it must still trap."""
    component_set_pending(exception)
    return lib.wasmtime_error_new(_HOST_ERROR)


@ffi.def_extern(onerror=_host_call_failed)
def wasmpy_component_host_call(data: Any, context: Any, functype: Any, args: Any, nargs: int, results: Any,
                               nresults: int) -> Any:
    try:
        ffi.from_handle(data).invoke(args, nargs, results, nresults)
    except BaseException as exception:  # noqa: B902 - every exception reaches the caller, KeyboardInterrupt too
        component_set_pending(exception)
        return lib.wasmtime_error_new(_HOST_ERROR)
    return ffi.NULL


# The C callback of the Python imports of simple WIT types (csrc/component/host.c).
_FAST_HOST_CALLBACK = ffi.cast("wasmtime_component_func_callback_t", component_host_callback_address())


def _find_interface(imports: Any, name: str) -> Any:
    """The namespace ``imports`` gives the interface ``name`` (with or without its @version)."""
    if not isinstance(imports, Mapping):
        return None
    for key in dict.fromkeys((name, without_version(name))):
        if key in imports:
            return imports[key]
    return None


class _Linker:
    """A wasmtime component linker being filled with a component's imports."""

    def __init__(self, component: Component, store: Store, codecs: Codecs, resources: InstanceResources) -> None:
        self.component = component
        self.store = store
        self.codecs = codecs
        self.resources = resources
        self.ptr = ffi.gc(lib.wasmtime_component_linker_new(component.engine._ptr),
                          lib.wasmtime_component_linker_delete)
        # The host functions' and resources' data, which must outlive every instance of the store.
        self.handles: List[Any] = []
        self.hosts: Dict[ResourceType, Tuple[HostResource, Any]] = {}  # each resource's, and its data's handle

    def define(self, imports: Any) -> None:
        items = self.component.imports
        if imports is not None and not isinstance(imports, Mapping):
            raise TypeError("a component's imports are a mapping of WIT names (interfaces such as "
                            f"'test:rich/host', world-level functions) to namespaces and functions, "
                            f"not {type(imports).__name__}")
        link_wasi(self.ptr, self.store, items.interfaces, self._check)
        root = lib.wasmtime_component_linker_root(self.ptr)
        try:
            self._add_resources(root, items.types, items.functions, imports or {}, "")
            for name, functype in items.functions.items():
                if name.startswith("["):
                    continue
                fn = namespace_member(imports or {}, name)
                if fn is None:
                    raise LinkError(f"missing import {name}: expected a Python function for WIT {functype}")
                self._add_function(root, name, fn, functype, name)
            for name, interface in items.interfaces.items():
                if name.startswith(WASI_PREFIX):
                    continue
                namespace = _find_interface(imports, name)
                if namespace is None:
                    raise LinkError(f"missing import {name}: expected a namespace (a dict, module or object) "
                                    f"with its functions ({', '.join(interface.functions) or 'none'}) under "
                                    f"{without_version(name)!r}")
                self._add_interface(root, name, interface, namespace)
        finally:
            lib.wasmtime_component_linker_instance_delete(root)

    def _add_interface(self, parent: Any, name: str, interface: InterfaceType, namespace: Any) -> None:
        encoded = name.encode()
        out = ffi.new("wasmtime_component_linker_instance_t **")
        self._check(lib.wasmtime_component_linker_instance_add_instance(parent, encoded, len(encoded), out),
                    f"cannot define the import {name}")
        try:
            self._add_resources(out[0], interface.types, interface.functions, namespace, f"{name}#")
            for function_name, functype in interface.functions.items():
                if function_name.startswith("["):  # [constructor]r, [method]r.m, [static]r.f: _add_resources
                    continue
                fn = namespace_member(namespace, function_name)
                where = f"{name}#{function_name}"
                if fn is None:
                    raise LinkError(f"missing import {where}: the namespace given for {name} has no "
                                    f"{function_name!r} or {snake_case(function_name)!r} (WIT {functype})")
                self._add_function(out[0], function_name, fn, functype, where)
            for nested_name, nested in interface.interfaces.items():
                self._add_interface(out[0], nested_name, nested, namespace_member(namespace, nested_name))
        finally:
            lib.wasmtime_component_linker_instance_delete(out[0])

    def _add_resources(self, linker_instance: Any, types: Mapping[str, Any], functions: Mapping[str, FuncType],
                       namespace: Any, where: str) -> None:
        """Defines the resources among ``types`` from their classes in ``namespace``: each its type,
        and its constructor, methods and static functions (among ``functions``) from the class. A
        resource another import defines (``use a.{thing}``) is that one again, its class needed once."""
        for type_name, resource in types.items():
            if not isinstance(resource, ResourceType) or not resource.imported:
                continue
            if resource.interface is not None and resource.interface.startswith(WASI_PREFIX):
                continue  # defined by wasmtime's WASI (link_wasi)
            host, handle = self.hosts.get(resource, (None, None))
            if host is None:
                name = resource.name or type_name
                cls = _resource_class_of(namespace, name)
                if not isinstance(cls, type):
                    shown = "nothing" if cls is None else f"a {type(cls).__name__}"
                    raise LinkError(f"missing import {where}{name}: expected a Python class under "
                                    f"{camel_case(name)!r} or {name!r} for WIT resource {name}, got {shown}")
                host = HostResource(cls, self.resources.table, self.store._handle)
                handle = ffi.new_handle(host)
                self.handles.append(handle)
                self.hosts[resource] = host, handle
                self.resources.hosts[resource] = host
            encoded = type_name.encode()
            resource_type = lib.wasmtime_component_resource_type_new_host(host.tag)
            try:
                self._check(lib.wasmtime_component_linker_instance_add_resource(
                    linker_instance, encoded, len(encoded), resource_type, lib.wasmpy_component_resource_destructor,
                    handle, ffi.NULL), f"cannot define the import {where}{type_name}")
            finally:
                lib.wasmtime_component_resource_type_delete(resource_type)
            for function_name, functype in functions.items():
                fn = _resource_function(host.cls, type_name, function_name)
                if fn is None:
                    continue
                if fn is _MISSING:
                    member = function_name.partition(".")[2]
                    raise LinkError(f"missing import {where}{function_name}: the class {host.cls.__name__} given for "
                                    f"WIT resource {type_name} has no {snake_case(member)!r} (WIT {functype})")
                self._add_function(linker_instance, function_name, fn, functype, f"{where}{function_name}")

    def _add_function(self, linker_instance: Any, name: str, fn: Any, functype: FuncType, where: str) -> None:
        if not callable(fn):
            raise LinkError(f"import {where}: expected a Python function for WIT {functype}, "
                            f"got {type(fn).__name__}")
        _refuse_unsupported(functype, f"the import {where}")
        host = _HostFunction(fn, functype, self.codecs, f"the import {where}", self.store._handle, self.resources)
        kinds, result_kind, specs = _host_plan(functype, self.codecs)
        if kinds is not None:
            # Simple WIT types: called and converted in C (csrc/component/host.c), which hands the
            # Python way (the codecs) any result it does not take as it is.
            fast = ComponentHost(self.store._handle, fn, kinds, result_kind, specs, host.invoke_at, host.finish_at)
            self.handles.append(fast)
            callback, data = _FAST_HOST_CALLBACK, ffi.cast("void *", fast.data_address())
        else:
            data = ffi.new_handle(host)
            self.handles.append(data)
            callback = lib.wasmpy_component_host_call
        encoded = name.encode()
        self._check(lib.wasmtime_component_linker_instance_add_func(
            linker_instance, encoded, len(encoded), callback, data, ffi.NULL), f"cannot define the import {where}")

    @staticmethod
    def _check(error: Any, doing: str) -> None:
        if error != ffi.NULL:
            failure = take_call_failure(2, None, ffi.new("wasmtime_error_t **", error))
            raise LinkError(f"{doing}: {failure.message if isinstance(failure, Trap) else failure}")


_MISSING = object()


def _resource_class_of(namespace: Any, name: str) -> Any:
    """The class ``namespace`` gives for the WIT resource ``name``: under its CamelCase name
    (``Thing``), its WIT name or its snake_case; None if it has none."""
    found = namespace_member(namespace, camel_case(name))
    return found if found is not None else namespace_member(namespace, name)


def _resource_function(cls: type, resource: str, wit_name: str) -> Any:
    """What the import ``wit_name`` of the resource ``resource`` calls: the class for
    ``[constructor]r``, a function calling the object's method for ``[method]r.m``, the class's
    attribute for ``[static]r.f``; _MISSING when the class lacks it, None for another function."""
    if wit_name == f"[constructor]{resource}":
        return cls
    for prefix in (f"[method]{resource}.", f"[static]{resource}."):
        if wit_name.startswith(prefix):
            member = wit_name[len(prefix):]
            found = namespace_member(cls, member)
            if found is None:
                return _MISSING
            if prefix.startswith("[static]"):
                return found
            attribute = member if hasattr(cls, member) else snake_case(member)
            # Looked up on the object, so that a subclass's override is the one wasm calls.
            return lambda self, *args: getattr(self, attribute)(*args)
    return None


class ComponentInstance(Instance):
    """An instantiated component: ``Instance(component, imports, store)``.

    ``imports`` maps WIT interface names (``"test:rich/host"``, with or without ``@version``) to
    namespaces (a dict, module or any object) whose members are named in WIT (``get-name``) or
    in snake_case (``get_name``); world-level function imports are given by name at the top of
    the mapping; a resource an interface defines is a Python class under its name (``Thing`` or
    ``thing``: see wasmpy.component._resources). An exception a Python import raises reaches
    the Python caller unchanged.
    ``store`` defaults to a new Store on the component's engine. WASI interfaces (``wasi:*``)
    come from the store's WASI configuration (its safe default when it has none).
    """

    def __init__(self, component: Component, imports: Any = None, store: Optional[Store] = None) -> None:
        if "_instance" in self.__dict__:
            raise TypeError("Instance.__init__() cannot run again on an object that is already made: "
                            "make a new Instance instead")
        require_instance(component, Component, "component")
        store = Store(component.engine) if store is None else require_instance(store, Store, "store")
        if store.engine is not component.engine:
            raise WasmError("the component and the store belong to different engines")
        self.component = component
        self.store = store
        codecs = _codecs(component)
        keep_trap_handlers_first()
        instance = ffi.new("wasmtime_component_instance_t *")
        with store._lock:
            resources = InstanceResources(store)
            linker = _Linker(component, store, codecs, resources)
            linker.define(imports)
            # Host functions' data lives as long as the store, which may still call them.
            store.__dict__.setdefault("_component_host_functions", []).extend(linker.handles)
            error = ffi.new("wasmtime_error_t **")
            status = lib.wasmpy_component_instantiate(linker.ptr, store._context(), component._ptr, instance,
                                                      store._handle.stack_needed, error)
            if status:
                raise _call_failure(store, status, error[0], "instantiating the component", instantiating=True)
        self._instance = instance
        # The exports hold the store and the wasmtime instance, not this object: no reference cycle,
        # so that dropping the last reference frees the store at once (as for modules).
        # Not the modules' Exports: Instance is the one way to instantiate both (Instance(component)
        # makes a ComponentInstance), and a component's exports are WIT functions and interfaces.
        self.exports = ComponentExports(  # type: ignore[assignment]
            _Live(store, instance, resources.classes, resources), component, codecs)

    def __repr__(self) -> str:
        return f"<wasmpy.Instance of a component: exports {', '.join(self.exports)}>"


def _call_failure(store: Store, status: int, error: Any, doing: str, instantiating: bool = False) -> BaseException:
    """The exception for a failed call or instantiation: a Python import's own exception if one
    caused it, a clear Trap when wasmtime refuses an instance that trapped before; instantiating,
    a failure without wasm frames is a LinkError (imports) or a WasmError (resource limits...)."""
    pending = _take_pending()
    raised_by_signal = store._handle.take_pending()
    if status == _STACK_EXHAUSTED:
        return RecursionError("not enough native stack left to call into wasm safely (deep recursion "
                              "between Python and wasm, or a thread with a small stack)")
    failure = store._call_failure(pending or raised_by_signal, 2, ffi.NULL, error)
    if isinstance(failure, Trap) and failure is not pending and failure is not raised_by_signal:
        if "cannot enter component instance" in failure.message:
            return Trap(f"{failure.message}: this component instance trapped (or a Python import raised) "
                        "in an earlier call, and the component model forbids entering it again; make a new "
                        "Instance of the component", failure.code, failure.frames)
        if instantiating and type(failure) is Trap and not failure.frames:  # an error, not wasm trapping
            if "import" in failure.message or "incompatible" in failure.message:
                return LinkError(f"{doing}: {failure.message}")
            return WasmError(f"{doing}: {failure.message}")
    return failure


# The result kind of a plan whose function returns nothing (csrc/component/call.c).
_NO_RESULT = 255


def _plan_kind(typ: Any) -> Optional[int]:
    """The kind csrc/component/call.c converts ``typ`` as: a wasmtime value kind for bool, the
    integers, floats, char and string, the list kind for list<u8>; None for any other type."""
    if isinstance(typ, Primitive):
        return _VALUE_KINDS.get(typ.name)
    if isinstance(typ, ListType) and typ.element == Primitive("u8"):
        return int(lib.WASMTIME_COMPONENT_LIST)
    return None


def _host_plan_kind(typ: Any, codecs: Codecs) -> Tuple[Optional[int], Any]:
    """The kind csrc/component/host.c converts ``typ`` as, and its spec: _plan_kind's, or a record
    or tuple of bool, integers, floats, char and string (records.c's), whose spec is (field kinds,
    class, attributes, field names) for a record, (item kinds,) for a tuple; (None, None) for any
    other type. ``typ``'s codec is made already (and with it a record's class)."""
    kind = _plan_kind(typ)
    if kind is not None:
        return kind, None
    if isinstance(typ, RecordType):
        simple = _simple_fields([field for _, field in typ.fields])
        if simple is not None:
            return int(lib.WASMTIME_COMPONENT_RECORD), (
                simple[0], codecs.classes[typ], tuple(snake_case(name) for name, _ in typ.fields),
                tuple(name.encode() for name, _ in typ.fields))
    elif isinstance(typ, TupleType):
        simple = _simple_fields(typ.elements)
        if simple is not None:
            return int(lib.WASMTIME_COMPONENT_TUPLE), (simple[0],)
    return None, None


def _host_plan(functype: FuncType, codecs: Codecs) -> Tuple[Optional[bytes], int, Tuple[Any, ...]]:
    """How csrc/component/host.c converts the calls of a Python import of type ``functype``: the
    kinds of its parameters, of its result, and their specs (see _host_plan_kind); None for the
    kinds when one has none (the import then goes the Python way)."""
    planned = [_host_plan_kind(typ, codecs) for _, typ in functype.params]
    result: Tuple[Optional[int], Any] = (_NO_RESULT, None)
    if functype.result is not None:
        result = _host_plan_kind(functype.result, codecs)
    if len(planned) > 16 or result[0] is None or any(kind is None for kind, _ in planned):
        return None, _NO_RESULT, ()
    return (bytes(kind for kind, _ in planned), result[0],  # type: ignore[misc]
            tuple(spec for _, spec in [*planned, result]))


def _plan(functype: FuncType, codecs: Codecs) -> Tuple[Optional[bytes], int, Tuple[Any, ...]]:
    """How csrc/component/call.c converts a call of ``functype`` without Python: _host_plan's
    kinds and specs, and lists of bool, integers, floats, char and string (list kind, spec their
    element's kind; list<u8>'s spec stays None: bytes); None for the kinds when one has none
    (every call then goes the Python way). The codecs of the types are made already."""
    def planned(typ: Any) -> Tuple[Optional[int], Any]:
        if isinstance(typ, ListType) and isinstance(typ.element, Primitive) and typ.element.name != "u8":
            return int(lib.WASMTIME_COMPONENT_LIST), int(_VALUE_KINDS[typ.element.name])
        return _host_plan_kind(typ, codecs)

    params = [planned(typ) for _, typ in functype.params]
    result: Tuple[Optional[int], Any] = (_NO_RESULT, None) if functype.result is None else planned(functype.result)
    if len(params) > 16 or result[0] is None or any(kind is None for kind, _ in params):
        return None, _NO_RESULT, ()
    return (bytes(kind for kind, _ in params), result[0],  # type: ignore[misc]
            tuple(spec for _, spec in [*params, result]))


@vectorcall_subclass  # called through vectorcall on every Python (a class statement: from 3.12 on)
class ComponentFunc(ComponentCaller, Owner):
    """An exported function of a component instance: call it with Python values.

    Its WIT type is :attr:`type` (``str()`` reads like WIT). A function returning a
    ``result<T, E>`` returns the ``T``, or raises :class:`wasmpy.Err` whose ``.value`` is the
    ``E``. A trap raises :class:`wasmpy.Trap`; after one the component instance refuses every
    later call (the component model's rule), with a Trap that says so.
    """

    def __init__(self, live: "_Live", func: Any, functype: FuncType, codecs: Codecs) -> None:
        self._store = live.store  # keeps the store, and so the function, alive
        self._func = func
        self.type = functype
        self.__name__ = snake_case(functype.name)
        self.__doc__ = f"WIT {functype}"
        self._params = [(f"argument {name!r} of {functype.name}", codecs.codec(typ)) for name, typ in functype.params]
        self._names = [snake_case(name) for name, _ in functype.params]
        self._result = None if functype.result is None else codecs.codec(functype.result)
        self._top_level_result = isinstance(functype.result, ResultType)
        # The instance's resources when handles are among the values, at any depth: guest resources
        # passed where WIT takes ownership move into wasm (closed once the call is made), host
        # resources get handles (see _resources).
        self._resources = live.resources if _uses_handles(functype) else None
        self._result_count = 0 if self._result is None else 1
        # Reused by every call: calls into a store are serialised by its lock, and a nested call (from
        # a Python import) is done with both before the outer call's wasmtime_component_func_call
        # returns and writes them. Arguments are not: an outer call's are freed after the nested one.
        self._results = ffi.NULL if self._result is None else ffi.new("wasmtime_component_val_t *")
        self._error = ffi.new("wasmtime_error_t **")
        # Calls of simple types, and lists, records and tuples of them, are converted in C
        # (csrc/component/call.c); any other call, and any value the C path does not take as it
        # is, goes through _call_slow and the codecs.
        kinds, result_kind, specs = _plan(functype, codecs)
        self._bind_component(self._store._handle, int(ffi.cast("uintptr_t", func)), kinds, result_kind, specs,
                             ComponentFunc._call_slow, ComponentFunc._c_call_failed)

    def _c_call_failed(self, status: int, error_address: int) -> BaseException:
        """The exception for a call the C path made that failed (``error_address``: its wasmtime_error_t *)."""
        return _call_failure(self._store, status, ffi.cast("wasmtime_error_t *", error_address),
                             f"calling {self.type.name}")

    def _call_slow(self, *args: Any, **keywords: Any) -> Any:
        params = self._params
        if keywords:
            args = self._bind(args, keywords)
        if len(args) != len(params):
            raise TypeError(f"{self.type.name}() takes {len(params)} argument{'s' * (len(params) != 1)} "
                            f"({self.type.signature()}), got {len(args)}")
        if self._resources is None:
            return self._convert_and_call(args, None)
        with calling(self._resources) as call:  # resources are checked against this instance's classes
            return self._convert_and_call(args, call)

    def _convert_and_call(self, args: Tuple[Any, ...], call: Any) -> Any:
        params = self._params
        prepared = [codec.prepare(value, where) for (where, codec), value in zip(params, args)]
        store = self._store
        handle = store._handle
        count = len(prepared)
        results, error = self._results, self._error
        with handle:
            if handle.closed:
                raise WasmError("the store is closed")
            if call is not None:
                check_passed(call)
            if count:
                c_args = ffi.new("wasmtime_component_val_t[]", count)
                try:
                    for index, ((_, codec), value) in enumerate(zip(params, prepared)):
                        codec.write(value, c_args + index)
                    status = lib.wasmpy_component_call(self._func, store._ctx, c_args, count, results,
                                                       self._result_count, handle.stack_needed, error)
                    if call is not None:  # before the arguments' handles are freed: it reads them
                        finish_call(call, status != _STACK_EXHAUSTED)
                finally:
                    lib.wasmpy_component_vals_delete(c_args, count)
            else:
                status = lib.wasmpy_component_call(self._func, store._ctx, ffi.NULL, 0, results, self._result_count,
                                                   handle.stack_needed, error)
            if store._wasi_ready:
                handle.flush_output()
            if status:
                raise _call_failure(store, status, error[0], f"calling {self.type.name}")
            _take_pending()  # raised by an import and handled by wasm: not a failure
            if self._result is None:
                return None
            try:
                value = self._result.read(results)
            finally:
                lib.wasmpy_component_vals_delete(results, 1)
        if self._top_level_result:
            if isinstance(value, Err):
                raise value
            return value.value
        return value

    def _bind(self, args: Tuple[Any, ...], keywords: Dict[str, Any]) -> Tuple[Any, ...]:
        bound = list(args)
        for name in self._names[len(args):]:
            if name not in keywords:
                raise TypeError(f"{self.type.name}() missing argument {name!r} ({self.type.signature()})")
            bound.append(keywords.pop(name))
        if keywords:
            raise TypeError(f"{self.type.name}() got unexpected keyword argument {next(iter(keywords))!r} "
                            f"({self.type.signature()})")
        return tuple(bound)

    def __repr__(self) -> str:
        return f"<wasmpy component function {self.type}>"


class _Live(NamedTuple):
    """A component instance as its exports need it: its store, its wasmtime instance, the
    classes of the resources it exports (by ResourceType; filled by ComponentExports), and all
    its resources (whose ``classes`` these are)."""

    store: Store
    instance: Any  # wasmtime_component_instance_t *
    classes: Dict[ResourceType, type]
    resources: InstanceResources


def _export_func(live: _Live, parent_index: Any, name: str, functype: FuncType,
                 codecs: Codecs, where: str) -> ComponentFunc:
    _refuse_unsupported(functype, f"the export {where}")
    store = live.store
    encoded = name.encode()
    with store._lock:
        index = lib.wasmtime_component_instance_get_export_index(live.instance, store._context(), parent_index,
                                                                 encoded, len(encoded))
        if index == ffi.NULL:
            raise KeyError(where)
        try:
            func = ffi.new("wasmtime_component_func_t *")
            if not lib.wasmtime_component_instance_get_func(live.instance, store._context(), index, func):
                raise KeyError(where)
        finally:
            lib.wasmtime_component_export_index_delete(index)
    return ComponentFunc(live, func, functype, codecs)


def _interface_function(live: _Live, interface: InterfaceType, name: str, codecs: Codecs) -> ComponentFunc:
    """The export ``name`` of the exported interface ``interface``."""
    store = live.store
    encoded = interface.name.encode()
    with store._lock:
        index = lib.wasmtime_component_instance_get_export_index(live.instance, store._context(), ffi.NULL,
                                                                 encoded, len(encoded))
    if index == ffi.NULL:
        raise KeyError(interface.name)
    parent = ffi.gc(index, lib.wasmtime_component_export_index_delete)
    return _export_func(live, parent, name, interface.functions[name], codecs, f"{interface.name}#{name}")


def _resource_class(live: _Live, resource: ResourceType, functions: Mapping[str, FuncType],
                    lookup: Callable[[str], ComponentFunc], module: str) -> type:
    """The class of an exported resource for one instance: its constructor, methods and static
    functions (among ``functions``, found with ``lookup`` on first use)."""
    name = resource.name or "resource"
    resolved: Dict[str, ComponentFunc] = {}

    def function(wit_name: str) -> ComponentFunc:
        found = resolved.get(wit_name)
        if found is None:
            found = resolved[wit_name] = lookup(wit_name)
        return found

    namespace: Dict[str, Any] = {"__doc__": f"WIT resource {name} (of {module})", "__module__": module,
                                 "_resource_type": resource, "_store": live.store}
    for wit_name, functype in functions.items():
        if wit_name == f"[constructor]{name}":
            def __init__(self: Resource, *args: Any, _wit: str = wit_name, **keywords: Any) -> None:
                # Refused before wasm makes a resource: one made for nothing would only be freed,
                # never dropped (its guest memory kept until the store goes).
                self._take_handle_of(None)
                # The constructor returns own<resource>, which its codec reads as this class.
                self._take_handle_of(cast(Resource, function(_wit)(*args, **keywords)))
            __init__.__doc__ = f"WIT {functype}"
            namespace["__init__"] = __init__
        elif wit_name.startswith(f"[method]{name}."):
            def method(self: Resource, *args: Any, _wit: str = wit_name, **keywords: Any) -> Any:
                return function(_wit)(self, *args, **keywords)
            method.__name__ = snake_case(wit_name.partition(".")[2])
            method.__doc__ = f"WIT {functype}"
            namespace[method.__name__] = method
        elif wit_name.startswith(f"[static]{name}."):
            def static(*args: Any, _wit: str = wit_name, **keywords: Any) -> Any:
                return function(_wit)(*args, **keywords)
            static.__name__ = snake_case(wit_name.partition(".")[2])
            static.__doc__ = f"WIT {functype}"
            namespace[static.__name__] = staticmethod(static)
    if "__init__" not in namespace:
        def no_constructor(self: Resource, *args: Any, **keywords: Any) -> None:
            raise TypeError(f"WIT resource {name} has no constructor: its objects come from the component")
        namespace["__init__"] = no_constructor
    return type(camel_case(name), (Resource,), namespace)


class InterfaceExports(types.ModuleType):
    """An exported interface (``ns:pkg/name@version``): its functions as attributes (snake_case)
    and items (WIT names), and its generated types (``Point``, ``Shape_Circle``, ``Color``).
    ``help()`` shows them with their WIT signatures."""

    def __init__(self, live: _Live, interface: InterfaceType, codecs: Codecs) -> None:
        super().__init__(interface.name, f"WIT {interface}")
        store = live.store
        encoded = interface.name.encode()
        with store._lock:
            index = lib.wasmtime_component_instance_get_export_index(live.instance, store._context(), ffi.NULL,
                                                                     encoded, len(encoded))
        if index == ffi.NULL:
            raise KeyError(interface.name)
        parent = ffi.gc(index, lib.wasmtime_component_export_index_delete)
        functions: Dict[str, ComponentFunc] = {}
        for name, functype in interface.functions.items():
            try:
                functions[name] = _export_func(live, parent, name, functype, codecs, f"{interface.name}#{name}")
            except NotImplementedError as refusal:
                functions[name] = _Refused(str(refusal), functype)  # type: ignore[assignment]
        object.__setattr__(self, "_functions", functions)
        for name, func in functions.items():
            if not name.startswith("["):  # [constructor]r, [method]r.m, [static]r.f: on the resource's class
                setattr(self, snake_case(name), func)
        for typ in interface.types.values():
            if isinstance(typ, ResourceType) and typ in live.classes:
                setattr(self, camel_case(typ.name or "resource"), live.classes[typ])
            elif isinstance(typ, ResourceType) and typ in live.resources.hosts:  # an imported one it uses
                setattr(self, camel_case(typ.name or "resource"), live.resources.hosts[typ].cls)
        for typ in interface.types.values():
            for class_name, cls in codecs.python_types(typ).items():
                if isinstance(cls, type) and cls.__module__ == GENERATED_MODULE:
                    cls.__module__ = interface.name  # where help() and reprs place it (and lists it)
                setattr(self, class_name, cls)

    def __getitem__(self, name: str) -> "ComponentFunc":
        return self._functions[name]  # type: ignore[no-any-return]

    def __iter__(self) -> Iterator[str]:
        return iter(self._functions)

    def __len__(self) -> int:
        return len(self._functions)

    def __contains__(self, name: object) -> bool:
        return name in self._functions

    def __repr__(self) -> str:
        return f"<wasmpy interface {self.__name__}: {', '.join(self._functions) or '(no functions)'}>"

    __reduce_ex__ = Owner.__reduce_ex__  # its functions live in one process's store


class _Refused:
    """An export wasmpy cannot call yet (it uses future, stream or error-context): calling it
    raises NotImplementedError naming the type."""

    def __init__(self, reason: str, functype: FuncType) -> None:
        self.reason = reason
        self.type = functype

    def __call__(self, *args: Any, **keywords: Any) -> Any:
        raise NotImplementedError(self.reason)

    def __repr__(self) -> str:
        return f"<wasmpy component function {self.type} (not supported: {self.reason})>"


class ComponentExports(Mapping):
    """A component instance's exports: world-level functions under their WIT names (items) and in
    snake_case (attributes); exported interfaces under their full name (``test:rich/api@0.1.0``),
    without the version, and as their last segment in snake_case (``exports.api``).

    The interface componentize-py adds for itself (``exports``, with its build-time ``init``) is
    not listed and is no attribute; ``exports["exports"]`` still reaches it."""

    def __init__(self, live: _Live, component: Component, codecs: Codecs) -> None:
        items = component.exports
        self._live = live
        self._codecs = codecs
        self._types = items
        self._listed = listed_interfaces(items)
        self._aliases: Dict[str, str] = {}
        for name in items.functions:
            self._aliases[snake_case(name)] = name
        for name in self._listed:
            self._aliases[without_version(name)] = name
            self._aliases[interface_attribute(name)] = name
        self._made: Dict[str, Any] = {}
        # Resource classes first: any function's results may hold handles of any of them. Those
        # the component imports (and an exported interface uses) are the Python classes given.
        for typ in items.types.values():
            if isinstance(typ, ResourceType) and not typ.imported:
                live.classes[typ] = _resource_class(
                    live, typ, items.functions,
                    lambda name: _export_func(live, ffi.NULL, name, items.functions[name], codecs, name),
                    "wasmpy.component")
        for interface in items.interfaces.values():
            for typ in interface.types.values():
                if isinstance(typ, ResourceType) and not typ.imported:
                    live.classes[typ] = _resource_class(
                        live, typ, interface.functions,
                        lambda wit_name, _i=interface: _interface_function(live, _i, wit_name, codecs),  # type: ignore[misc]
                        interface.name)
        for typ in items.types.values():
            for class_name, cls in codecs.python_types(typ).items():
                self._made.setdefault(class_name, cls)

    def _load(self, name: str) -> Any:
        made = self._made.get(name) or self._resource(name)
        if made is not None:
            return made
        items = self._types
        if name in items.functions:
            try:
                made = _export_func(self._live, ffi.NULL, name, items.functions[name], self._codecs, name)
            except NotImplementedError as refusal:
                raise NotImplementedError(str(refusal)) from None
        elif name in items.interfaces:
            made = InterfaceExports(self._live, items.interfaces[name], self._codecs)
        else:
            raise KeyError(name)
        self._made[name] = made
        return made

    def __getitem__(self, name: str) -> Any:
        return self._load(self._aliases.get(name, name))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            if name in self._types.interfaces and name not in self._listed:
                raise KeyError(name)  # componentize-py's own interface: an item, not an attribute
            return self[name]
        except KeyError:
            raise AttributeError(f"the component has no export named {name!r}; its exports are: "
                                 f"{', '.join(self) or '(none)'}") from None

    def __iter__(self) -> Iterator[str]:
        return iter([*self._types.functions, *self._listed])

    def _resource(self, name: str) -> Optional[type]:
        for typ, cls in self._live.classes.items():
            if typ.interface is None and cls.__name__ == name:
                return cls
        return None

    def __len__(self) -> int:
        return len(self._types.functions) + len(self._listed)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self._types.functions or name in self._types.interfaces
                                          or name in self._aliases)

    def __dir__(self) -> List[str]:
        return sorted(set(self._aliases) | set(dir(type(self))))

    def module_attributes(self) -> Dict[str, Any]:
        """The exports as the attributes of a Python module (what the import hook makes of a
        component): world-level functions in snake_case (and under their WIT name where that is an
        identifier), exported interfaces under their last segment (``api``), and the generated
        classes of world-level types. A function wasmpy cannot call yet (future, stream...) is
        there too, and raises NotImplementedError naming the type when called, as in interfaces."""
        items = self._types
        attributes: Dict[str, Any] = {}
        for function, functype in items.functions.items():
            try:
                value = self[function]
            except NotImplementedError as refusal:
                value = _Refused(str(refusal), functype)
            for attribute in dict.fromkeys((snake_case(function), function)):
                if attribute.isidentifier():
                    attributes.setdefault(attribute, value)
        for interface in self._listed:
            attributes.setdefault(interface_attribute(interface), self[interface])
        for typ in items.types.values():
            if isinstance(typ, ResourceType):
                names = [camel_case(typ.name or "resource")]
            else:
                names = list(self._codecs.python_types(typ))
            for class_name in names:
                attributes.setdefault(class_name, self[class_name])
        return attributes

    def __repr__(self) -> str:
        return f"<wasmpy component exports: {', '.join(self)}>"

    __reduce_ex__ = Owner.__reduce_ex__  # they live in one process's store

