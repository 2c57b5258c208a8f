"""Instance: a module instantiated in a store, with its imports resolved and its exports."""

from __future__ import annotations

import dataclasses
import difflib
import weakref
from collections.abc import Mapping, Sequence
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Tuple, Union, cast

from ._checks import require_instance
from ._engine import Engine
from ._errors import LinkError, Trap, WasmError, check
from ._ffi import ffi, lib
from ._func import Func, _func_type
from ._global import Global
from ._memory import Memory
from ._module import Module
from ._native import export_func, instantiate, values_configure
from ._ownership import Owner, init_once
from ._signals import keep_trap_handlers_first
from ._store import Store
from ._table import Table
from ._tag import Tag
from ._wasi import WASI_FUNCTIONS, WASI_MODULE
from ._types import ExternType, FuncType, GlobalType, ImportType, MemoryType, TableType, TagType, ValType

__all__ = ["Instance", "Exports"]

Extern = Union[Func, Global, Memory, Table, Tag]


def extern_from_c(store: Store, item, name: str, externtype: Optional[ExternType] = None) -> Extern:
    """The wasmpy object for a ``wasmtime_extern_t``; ``externtype`` saves asking wasmtime for its type."""
    kind = item.kind
    if kind == lib.WASMTIME_EXTERN_FUNC:
        return Func._from_c(store, ffi.addressof(item.of, "func"), name,
                            externtype if isinstance(externtype, FuncType) else None)
    if kind == lib.WASMTIME_EXTERN_MEMORY:
        return Memory._from_c(store, ffi.addressof(item.of, "memory"))
    if kind == lib.WASMTIME_EXTERN_GLOBAL:
        return Global._from_c(store, ffi.addressof(item.of, "global"),
                              externtype if isinstance(externtype, GlobalType) else None)
    if kind == lib.WASMTIME_EXTERN_TABLE:
        return Table._from_c(store, ffi.addressof(item.of, "table"),
                             externtype if isinstance(externtype, TableType) else None)
    if kind == lib.WASMTIME_EXTERN_TAG:
        return Tag._from_c(store, ffi.addressof(item.of, "tag"), externtype)
    raise NotImplementedError(f"exports of kind {kind} (e.g. shared memories) are not supported yet")


def _write_extern(value: Extern, out) -> None:
    """Writes ``value`` into ``out`` (a ``wasmtime_extern_t`` or a pointer to one)."""
    if isinstance(value, Func):
        out.kind, out.of.func = lib.WASMTIME_EXTERN_FUNC, value._func[0]
    elif isinstance(value, Memory):
        out.kind, out.of.memory = lib.WASMTIME_EXTERN_MEMORY, value._memory[0]
    elif isinstance(value, Global):
        out.kind = lib.WASMTIME_EXTERN_GLOBAL
        setattr(out.of, "global", value._handle[0])  # `global` is a Python keyword
    elif isinstance(value, Table):
        out.kind, out.of.table = lib.WASMTIME_EXTERN_TABLE, value._handle[0]
    else:
        out.kind, out.of.tag = lib.WASMTIME_EXTERN_TAG, value._handle[0]


def _kind_name(externtype: ExternType) -> str:
    return {FuncType: "function", GlobalType: "global", MemoryType: "memory", TableType: "table",
            TagType: "tag"}[type(externtype)]


def _limits_fit(given_min: int, given_max: Optional[int], need_min: int, need_max: Optional[int]) -> bool:
    return given_min >= need_min and (need_max is None or (given_max is not None and given_max <= need_max))


def _type_fits(given: ExternType, needed: ExternType) -> bool:
    if isinstance(needed, (FuncType, GlobalType, TagType)):
        return given == needed
    if isinstance(needed, MemoryType):
        return (isinstance(given, MemoryType) and given.is_64 == needed.is_64 and given.shared == needed.shared
                and given.page_size_log2 == needed.page_size_log2
                and _limits_fit(given.minimum, given.maximum, needed.minimum, needed.maximum))
    return (isinstance(given, TableType) and given.element == needed.element
            and _limits_fit(given.minimum, given.maximum, needed.minimum, needed.maximum))


def _current_type(value: Extern) -> ExternType:
    """The type an extern matches now: memories and tables match by their current size."""
    if isinstance(value, Memory):
        return dataclasses.replace(value.type, minimum=value.size)
    if isinstance(value, Table):
        return TableType(value.type.element, value.size, value.type.maximum)
    return value.type


_EXACT_VALTYPES = {ValType.i32, ValType.i64, ValType.f32, ValType.f64, ValType.v128, ValType.externref}


def _exact(externtype: ExternType) -> bool:
    """Whether ValType describes the type exactly (no typed or GC references), so Python can check it."""
    if isinstance(externtype, FuncType):
        return all(t in _EXACT_VALTYPES for t in externtype.params + externtype.results)
    if isinstance(externtype, TagType):
        return all(t in _EXACT_VALTYPES for t in externtype.params)
    if isinstance(externtype, GlobalType):
        return externtype.content in _EXACT_VALTYPES
    if isinstance(externtype, TableType):
        return externtype.element in (ValType.funcref, ValType.externref)
    return True


def _resolve(store: Store, imported: ImportType, value: Any) -> Extern:
    """Turns a user-supplied import value into a wasmpy extern of ``store``, checking its type."""
    where = f"{imported.module}.{imported.name}"
    needed = imported.type
    if isinstance(value, (Func, Memory, Global, Table, Tag)):
        if value.store is not store:
            raise LinkError(f"import {where}: the {_kind_name(value.type)} belongs to a different store")
        given = _current_type(value)
        if type(given) is not type(needed) or (_exact(given) and _exact(needed) and not _type_fits(given, needed)):
            raise LinkError(f"import {where}: expected {needed}, got {given}")
        return value  # wasmtime checks what ValType cannot tell apart (e.g. typed references)
    if isinstance(needed, FuncType) and callable(value):
        return Func._for_import(store, value, needed, where)
    if isinstance(needed, GlobalType) and not needed.mutable and isinstance(value, (int, float)):
        try:
            return Global(store, needed, value)
        except (TypeError, OverflowError) as error:
            raise LinkError(f"import {where}: {error}") from None
    raise LinkError(f"import {where}: expected a {_kind_name(needed)} ({needed}), "
                    f"got {type(value).__name__}")


_MISSING = object()


def _find(namespace: Any, name: str) -> Any:
    """``namespace[name]`` for a mapping, else its attribute ``name``; _MISSING if it has none."""
    if isinstance(namespace, Mapping):
        try:
            return namespace[name]
        except KeyError:
            return _MISSING
    return getattr(namespace, name, _MISSING)


def _lookup(namespace: Any, imported: ImportType) -> Any:
    value = _find(namespace, imported.name)
    if value is _MISSING:
        raise LinkError(f"missing import {imported.module}.{imported.name}: expected a "
                        f"{_kind_name(imported.type)} ({imported.type})")
    return value


def _check_wasi_overrides(overrides: Any, imports: List[ImportType]) -> None:
    """Refuses a name in a mapping of WASI overrides that would be used by no module: neither a WASI
    function nor an import of this one (a misspelt override would otherwise silently do nothing)."""
    if not isinstance(overrides, Mapping):
        return  # an object's attributes are more than what it offers for import
    imported = {i.name for i in imports if i.module == WASI_MODULE}
    for name in overrides:
        if name not in WASI_FUNCTIONS and name not in imported:
            close = difflib.get_close_matches(str(name), WASI_FUNCTIONS | imported, n=1)
            raise LinkError(f"imports[{WASI_MODULE!r}] gives {name!r}, which is not a WASI preview 1 function "
                            f"and not imported by the module" + (f": did you mean {close[0]!r}?" if close else ""))


# Per engine, a linker holding WASI's functions (definitions, not yet of any store): defining them
# takes about 0.1 ms, more than instantiating a small program. Linkers are only read once made.
# Each is kept with the engine pointer it was made for: an Engine subclass's __hash__ and __eq__
# could find another engine's, and wasmtime aborts on a store of another engine than the linker's.
_WASI_LINKERS: "weakref.WeakKeyDictionary[Engine, Tuple[Any, Any]]" = weakref.WeakKeyDictionary()
# The type of each WASI function, asked of wasmtime once (the same in every engine).
_WASI_TYPES: Dict[str, FuncType] = {}


def _wasi_linker(engine: Engine) -> Any:
    kept = _WASI_LINKERS.get(engine)
    if kept is not None and kept[0] is engine._ptr:
        return kept[1]
    linker = ffi.gc(lib.wasmtime_linker_new(engine._ptr), lib.wasmtime_linker_delete)
    check(lib.wasmtime_linker_define_wasi(linker))
    kept = _WASI_LINKERS.setdefault(engine, (engine._ptr, linker))  # a thread that made one first wins
    return kept[1] if kept[0] is engine._ptr else linker


def _store_wasi(store: Store, imports: List[ImportType], values: List[Optional[Extern]]) -> None:
    """Fills the gaps (None) in ``values`` with the store's WASI functions for those ``imports``,
    and gives the store its WASI context, which they use."""
    linker = _wasi_linker(store.engine)
    item = ffi.new("wasmtime_extern_t *")
    wasi = WASI_MODULE.encode()
    found = []
    for index, imported in enumerate(imports):
        if values[index] is not None:
            continue
        where = f"{imported.module}.{imported.name}"
        name = imported.name.encode("utf-8", "surrogateescape")
        if not lib.wasmtime_linker_get(linker, store._context(), wasi, len(wasi), name, len(name), item):
            raise LinkError(f"missing import {where}: expected a {_kind_name(imported.type)} ({imported.type}); "
                            f"WASI preview 1 has no {imported.name!r}, so give it in imports[{WASI_MODULE!r}]")
        func = ffi.new("wasmtime_func_t *", item.of.func)
        functype = _WASI_TYPES.get(imported.name)
        if functype is None:
            functype = _WASI_TYPES[imported.name] = _func_type(store, int(ffi.cast("uintptr_t", func)))
        if functype != imported.type:
            raise LinkError(f"import {where}: the module imports it as {imported.type}, but WASI's "
                            f"{imported.name} is {functype}")
        found.append((index, func, functype))
    # After every check, so that a failed instantiation leaves store.wasi changeable; before any Func
    # of them exists, since wasm calling one in a store without its WASI context aborts the process
    # (wasmtime panics), and a failure here would leave them in its traceback's frames.
    store._ensure_wasi()
    for index, func, functype in found:
        values[index] = Func._from_c(store, func, imports[index].name, functype)


class _Plan(NamedTuple):
    """What instantiating a module needs to know, worked out once per module."""

    imports: List[ImportType]
    imports_wasi: bool
    exports: Dict[str, ExternType]
    shadowing: List[str]  # exports named like Exports' own attributes
    address: int  # of the wasmtime_module_t (the module holds the plan, and the instance the module)


def _plan(module: Module) -> _Plan:
    plan = module._instance_plan
    if plan is None:
        imports, exports = module._import_types(), module._export_types()
        plan = module._instance_plan = _Plan(imports, any(i.module == WASI_MODULE for i in imports), exports,
                                             [name for name in exports if hasattr(Exports, name)],
                                             int(ffi.cast("uintptr_t", module._ptr)))
    return plan


class Instance(Owner):
    """An instantiated module: ``Instance(module, imports, store).exports.gcd(27, 6)``.

    Given a :class:`wasmpy.Component`, it instantiates the component instead (see
    ``wasmpy.component.ComponentInstance`` for its imports and exports).

    ``imports`` is a mapping from module name to a namespace (a mapping, or any
    object with attributes: a Python module, another instance's ``exports``...),
    or a sequence of values in the module's import order. Values are
    Func/Memory/Global/Table of the same store, Python callables for function
    imports (typed from the import; annotations, when present, are checked),
    or numbers for immutable global imports. ``store`` defaults to a new Store
    on the module's engine.

    WASI imports (``wasi_snapshot_preview1``) come from the store's WASI
    (:attr:`Store.wasi`, or the safe default), except those given in
    ``imports["wasi_snapshot_preview1"]``: each function given there replaces
    WASI's, and the store's WASI provides the rest. An override is an import
    like any other: a Python callable is typed from the import (it returns
    the WASI errno, 0 for success), a Func must have the import's type, and
    what it raises reaches the caller of the wasm function unchanged. Host
    functions get no caller: one that reads or writes the guest's memory
    uses the instance's exported memory, e.g. through a variable it sets
    after instantiating. A function the module does not import is ignored
    (one namespace can serve many modules); in a mapping, a name that is
    neither a WASI preview 1 function nor imported by the module is a
    LinkError, since it would never be used. When every WASI import is
    given, the store's WASI is not used (nor is :attr:`Store.wasi` fixed).
    A sequence of imports holds the values of the non-WASI imports only,
    which all come from the store's WASI.
    """

    def __new__(cls, module: Any = None, *args: Any, **keywords: Any) -> "Instance":
        # One way to instantiate: a wasmpy.Component makes a component instance (a subclass).
        if cls is Instance and not isinstance(module, Module):
            from .component._component import Component

            if isinstance(module, Component):
                from .component._instance import ComponentInstance

                return object.__new__(ComponentInstance)
        return object.__new__(cls)

    def __init__(self, module: Module, imports: Any = None, store: Optional[Store] = None) -> None:
        init_once(self, "_instance")
        require_instance(module, Module, "module")
        store = Store(module.engine) if store is None else require_instance(store, Store, "store")
        if store.engine is not module.engine:
            raise WasmError("the module and the store belong to different engines")
        self.module = module
        self.store = store
        plan = _plan(module)
        keep_trap_handlers_first()  # before wasm runs (start functions): see wasmpy._signals
        values: List[Extern] = []
        if plan.imports or imports is not None:
            with store._lock:  # imports are made (host functions, globals) and used under one hold of it
                values = self._import_values(store, plan, imports)
                instance = self._instantiate(store, module, plan, values)
        else:
            instance = self._instantiate(store, module, plan, values)
        self._instance = instance
        self.exports = Exports(store, instance, plan.exports, plan.shadowing)
        # Imports made here (host functions, globals) live as long as the instance.
        self._imports = values

    @staticmethod
    def _instantiate(store: Store, module: Module, plan: _Plan, values: List[Extern]) -> bytes:
        """The instance (its ``wasmtime_instance_t``, as bytes), in one C call where it can."""
        instance = instantiate(store, store._handle, plan.address, values)
        if isinstance(instance, bytes):  # else NotImplemented
            return instance
        # a closed store, too little native stack: here, they raise as they always have
        with store._lock:
            externs = ffi.new("wasmtime_extern_t[]", len(values)) if values else ffi.NULL
            for index, value in enumerate(values):
                _write_extern(value, externs[index])
            made = ffi.new("wasmtime_instance_t *")
            trap, error = ffi.new("wasm_trap_t **"), ffi.new("wasmtime_error_t **")
            status = lib.wasmpy_instantiate(store._context(), module._ptr, externs, len(values), made,
                                            store._handle.stack_needed, trap, error)
            Instance._finish(store, status, trap[0], error[0])
        return ffi.buffer(made)[:]

    @staticmethod
    def _finish(store: Store, status: int, trap: Any, error: Any) -> None:
        """Delivers the WASI output a start function wrote, then raises the instantiation's failure
        (``status`` 1: ``trap``, 2: ``error``, owned; addresses or cdata), if any. csrc/values.c's
        instantiate calls it for its failures."""
        try:
            store._handle.flush_output()
        finally:
            if status:
                raise Instance._instantiation_error(store, status, trap, error)

    @staticmethod
    def _import_values(store: Store, plan: _Plan, imports: Any) -> List[Extern]:
        """The values of the module's imports, in order: those ``imports`` gives, and for the WASI
        functions it does not give, the store's WASI."""
        if imports is None:
            imports = {}
        values: List[Optional[Extern]]
        if isinstance(imports, Mapping):
            overrides = _MISSING
            if WASI_MODULE in imports:
                overrides = imports[WASI_MODULE]
                _check_wasi_overrides(overrides, plan.imports)
            values = []
            for imported in plan.imports:
                if imported.module == WASI_MODULE:
                    value = _MISSING if overrides is _MISSING else _find(overrides, imported.name)
                    values.append(None if value is _MISSING else _resolve(store, imported, value))
                    continue
                if imported.module not in imports:
                    raise LinkError(f"missing import {imported.module}.{imported.name}: expected a "
                                    f"{_kind_name(imported.type)} ({imported.type}); no namespace "
                                    f"{imported.module!r} was given")
                values.append(_resolve(store, imported, _lookup(imports[imported.module], imported)))
        elif isinstance(imports, Sequence) and not isinstance(imports, (str, bytes)):
            wanted = [imported for imported in plan.imports if imported.module != WASI_MODULE]
            if len(imports) != len(wanted):
                wasi = len(plan.imports) - len(wanted)
                raise LinkError(f"the module has {len(wanted)} imports"
                                + (f" besides its {wasi} WASI ones" if wasi else "")
                                + f", but {len(imports)} values were given")
            given = iter([_resolve(store, imported, value) for imported, value in zip(wanted, imports)])
            values = [None if imported.module == WASI_MODULE else next(given) for imported in plan.imports]
        else:
            raise TypeError("imports must be a mapping of module names to namespaces, or a sequence in "
                            f"import order, not {type(imports).__name__}")
        if plan.imports_wasi and any(value is None for value in values):
            _store_wasi(store, plan.imports, values)
        return cast(List[Extern], values)  # no gaps left

    @staticmethod
    def _instantiation_error(store: Store, status: int, trap: Any, error: Any) -> BaseException:
        failure = store._call_failure(store._handle.take_pending(), status, trap, error)
        if status != 2 or type(failure) is not Trap:  # a trap, exit or exception of the start function
            return failure
        message = failure.message  # an error: linking, or resources
        if "import" in message or "incompatible" in message:
            return LinkError(message)
        pool = store.engine.config.get("instance_pool")
        if pool is not None and "concurrent limit" in message:
            return WasmError(f"{message}: the engine's instance_pool={pool} is full; instances "
                             "hold their slots until their stores are freed (or closed), or use a larger pool")
        return WasmError(message)

    def __repr__(self) -> str:
        return f"<wasmpy.Instance: exports {', '.join(self.exports)}>"


class Exports(Mapping):  # wrappers are made on first access, so instantiating stays cheap
    """An instance's exports, by name: ``exports.gcd``, ``exports['gcd']``, ``list(exports)``, ``len(exports)``.

    Functions are :class:`Func`, memories :class:`Memory`, globals
    :class:`Global`, tables :class:`Table`. An export named like a mapping
    method (``get``, ``keys``...) hides that method from attribute access; the
    method stays reachable as ``Mapping.get(exports, name)``.
    """

    # Not the Instance itself: a cycle with it would leave freeing the store to the cyclic GC.
    # The store, the instance (its wasmtime_instance_t, as bytes) and the export types, in one slot:
    # one write to make (this class refuses attribute writes).
    __slots__ = ("__state", "__dict__")

    def __init__(self, store: Store, instance: bytes, types: Dict[str, ExternType], shadowing: List[str]) -> None:
        object.__setattr__(self, "_Exports__state", (store, instance, types))
        # Attribute access is then a plain instance-dict lookup, the fastest path for `exports.f(...)`.
        # Names that class attributes would answer first (``shadowing``) are made now.
        for name in shadowing:
            self.__dict__[name] = self.__load(name)

    def __load(self, name: str) -> Extern:
        store, instance, types = self.__state
        if type(types[name]) is FuncType:  # functions, the most common exports, are made in C
            func = export_func(store, store._handle, instance, name, types[name])
            if isinstance(func, Func):  # else NotImplemented
                return func
        encoded = name.encode("utf-8", "surrogateescape")
        item = ffi.new("wasmtime_extern_t *")
        with store._lock:
            found = lib.wasmtime_instance_export_get(store._context(),
                                                     ffi.from_buffer("wasmtime_instance_t *", instance), encoded,
                                                     len(encoded), item)
            if not found:
                raise KeyError(name)
            return extern_from_c(store, item, name, types[name])

    def __getattr__(self, name: str) -> Any:
        if name in self.__state[2]:
            value = self.__dict__[name] = self.__load(name)
            return value
        raise AttributeError(f"the instance has no export named {name!r}; its exports are: "
                             f"{', '.join(self.__state[2]) or '(none)'}")

    def __getitem__(self, name: str) -> Extern:
        try:
            return self.__dict__[name]
        except KeyError:
            if name not in self.__state[2]:
                raise
        value = self.__dict__[name] = self.__load(name)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self.__state[2])

    def __len__(self) -> int:
        return len(self.__state[2])

    def __contains__(self, name: object) -> bool:
        return name in self.__state[2]

    def __dir__(self) -> List[str]:
        return sorted(set(self.__state[2]) | set(dir(type(self))))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("exports are read-only")

    def __repr__(self) -> str:
        return "<wasmpy.Exports: " + ", ".join(f"{name}: {typ}" for name, typ in self.__state[2].items()) + ">"


values_configure(write_extern=lambda value, address: _write_extern(value, ffi.cast("wasmtime_extern_t *", address)),
                 instantiation_failed=Instance._finish)
