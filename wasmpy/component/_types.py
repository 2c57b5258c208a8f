"""WIT types: what a component's functions take and return, read from wasmtime's type reflection.

Every type is an immutable Python object whose ``str()`` is its WIT spelling (``list<u8>``,
``result<u32, string>``, ``point`` for a named record). Named types (records, variants, enums,
flags, resources) carry their WIT name: wasmtime's types carry none, so the name is recovered
by comparing the type with the type exports of the instance it belongs to
(``wasmtime_component_valtype_equal``), once, when a component's types are read.

The value conversions (``_values.py``) work from these objects only: no type reflection
happens per call.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

from .._ffi import ffi, lib

__all__ = ["WitType", "Primitive", "ListType", "TupleType", "RecordType", "VariantType", "EnumType",
           "FlagsType", "OptionType", "ResultType", "ResourceType", "HandleType", "MapType", "UnsupportedType",
           "FuncType", "InterfaceType", "ComponentItems"]


class WitType:
    """Base of the WIT types."""

    def __str__(self) -> str:  # pragma: no cover - every subclass has its own
        raise NotImplementedError


@dataclass(frozen=True, eq=True)
class Primitive(WitType):
    """bool, s8 ... u64, f32, f64, char, string."""

    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, eq=True)
class ListType(WitType):
    element: WitType

    def __str__(self) -> str:
        return f"list<{self.element}>"


@dataclass(frozen=True, eq=True)
class TupleType(WitType):
    elements: Tuple[WitType, ...]

    def __str__(self) -> str:
        return f"tuple<{', '.join(map(str, self.elements))}>"


@dataclass(frozen=True, eq=True)
class RecordType(WitType):
    """A record; ``name`` is None when wasmtime's types do not say (an anonymous use)."""

    name: Optional[str]
    fields: Tuple[Tuple[str, WitType], ...]

    def __str__(self) -> str:
        return self.name or self.definition()

    def definition(self) -> str:
        body = ", ".join(f"{name}: {typ}" for name, typ in self.fields)
        return f"record {self.name or '<anonymous>'} {{ {body} }}"


@dataclass(frozen=True, eq=True)
class VariantType(WitType):
    name: Optional[str]
    cases: Tuple[Tuple[str, Optional[WitType]], ...]

    def __str__(self) -> str:
        return self.name or self.definition()

    def definition(self) -> str:
        body = ", ".join(case if payload is None else f"{case}({payload})" for case, payload in self.cases)
        return f"variant {self.name or '<anonymous>'} {{ {body} }}"


@dataclass(frozen=True, eq=True)
class EnumType(WitType):
    name: Optional[str]
    cases: Tuple[str, ...]

    def __str__(self) -> str:
        return self.name or self.definition()

    def definition(self) -> str:
        return f"enum {self.name or '<anonymous>'} {{ {', '.join(self.cases)} }}"


@dataclass(frozen=True, eq=True)
class FlagsType(WitType):
    name: Optional[str]
    flags: Tuple[str, ...]

    def __str__(self) -> str:
        return self.name or self.definition()

    def definition(self) -> str:
        return f"flags {self.name or '<anonymous>'} {{ {', '.join(self.flags)} }}"


@dataclass(frozen=True, eq=True)
class OptionType(WitType):
    inner: WitType

    def __str__(self) -> str:
        return f"option<{self.inner}>"


@dataclass(frozen=True, eq=True)
class ResultType(WitType):
    ok: Optional[WitType]
    err: Optional[WitType]

    def __str__(self) -> str:
        if self.ok is None and self.err is None:
            return "result"
        if self.err is None:
            return f"result<{self.ok}>"
        return f"result<{'_' if self.ok is None else self.ok}, {self.err}>"


@dataclass(frozen=True, eq=True)
class ResourceType(WitType):
    """A resource type, as a component's instance type exports it: its name, and the interface
    (instance) that exports it (two interfaces may each have a resource of the same name).
    ``imported``: the component imports it (Python defines it); an exported interface that uses
    it (``use host.{thing}``) has this same ResourceType, not one of its own."""

    name: Optional[str]
    interface: Optional[str] = None
    imported: bool = False

    def __str__(self) -> str:
        return self.name or "<resource>"

    def definition(self) -> str:
        return f"resource {self}"


@dataclass(frozen=True, eq=True)
class HandleType(WitType):
    """``own<R>`` (written ``R`` in WIT) or ``borrow<R>``."""

    resource: ResourceType
    owned: bool

    def __str__(self) -> str:
        return str(self.resource) if self.owned else f"borrow<{self.resource}>"


@dataclass(frozen=True, eq=True)
class MapType(WitType):
    """``map<K, V>``: a Python dict. Only engines with ``component_model_map`` (on by default)
    compile components that use one."""

    key: WitType
    value: WitType

    def __str__(self) -> str:
        return f"map<{self.key}, {self.value}>"


@dataclass(frozen=True, eq=True)
class UnsupportedType(WitType):
    """future, stream, error-context, and kinds wasmpy does not declare: types wasmpy cannot
    convert yet. A function that takes or returns one is refused (NotImplementedError naming
    the type) when it is looked up or imported."""

    spelling: str
    kind: str  # "future", "stream", "error-context", "type kind N"

    def __str__(self) -> str:
        return self.spelling


@dataclass(frozen=True)
class FuncType:
    """A component function's type: ``str()`` reads like WIT, ``greet: func(name: string) -> string``."""

    name: str
    params: Tuple[Tuple[str, WitType], ...]
    result: Optional[WitType]
    is_async: bool = False

    def signature(self) -> str:
        """The type without the name: ``func(name: string) -> string``."""
        params = ", ".join(f"{name}: {typ}" for name, typ in self.params)
        kind = "async func" if self.is_async else "func"
        return f"{kind}({params})" + ("" if self.result is None else f" -> {self.result}")

    def unsupported(self) -> Optional[UnsupportedType]:
        """The first type this function uses that wasmpy cannot convert (None: it can convert all)."""
        for _, typ in self.params:
            found = find_unsupported(typ)
            if found is not None:
                return found
        return None if self.result is None else find_unsupported(self.result)

    def __str__(self) -> str:
        return f"{self.name}: {self.signature()}"


@dataclass(frozen=True)
class InterfaceType:
    """An imported or exported instance (a WIT interface such as ``test:rich/host@0.1.0``):
    its functions and its named types, in the order the component lists them."""

    name: str
    functions: Mapping[str, FuncType]
    types: Mapping[str, WitType]
    interfaces: Mapping[str, "InterfaceType"] = field(default_factory=dict)

    def __str__(self) -> str:
        lines = [f"interface {self.name} {{"]
        for typ in self.types.values():
            definition = getattr(typ, "definition", None)
            lines.append(f"  {definition() if definition else typ};")
        lines += [f"  {func};" for func in self.functions.values()]
        lines += ["  " + str(nested).replace("\n", "\n  ") for nested in self.interfaces.values()]
        return "\n".join(lines) + "\n}"


@dataclass(frozen=True)
class ComponentItems:
    """A component's imports or exports: world-level functions, and interfaces, by WIT name."""

    functions: Mapping[str, FuncType]
    interfaces: Mapping[str, InterfaceType]
    types: Mapping[str, WitType]

    def __str__(self) -> str:
        parts = [f"{typ.definition() if hasattr(typ, 'definition') else typ};" for typ in self.types.values()]
        parts += [f"{func};" for func in self.functions.values()]
        parts += [str(interface) for interface in self.interfaces.values()]
        return "\n".join(parts)


def find_unsupported(typ: WitType) -> Optional[UnsupportedType]:
    """The first type in ``typ`` that wasmpy cannot convert yet (None if there is none):
    future, stream, error-context."""
    if isinstance(typ, UnsupportedType):
        return typ
    children: Tuple[Optional[WitType], ...] = ()
    if isinstance(typ, ListType):
        children = (typ.element,)
    elif isinstance(typ, TupleType):
        children = typ.elements
    elif isinstance(typ, RecordType):
        children = tuple(t for _, t in typ.fields)
    elif isinstance(typ, VariantType):
        children = tuple(t for _, t in typ.cases)
    elif isinstance(typ, OptionType):
        children = (typ.inner,)
    elif isinstance(typ, ResultType):
        children = (typ.ok, typ.err)
    elif isinstance(typ, MapType):
        children = (typ.key, typ.value)
    for child in children:
        found = None if child is None else find_unsupported(child)
        if found is not None:
            return found
    return None


def has_handles(typ: Optional[WitType]) -> bool:
    """Whether a value of ``typ`` may hold a resource handle (own or borrow), at any depth."""
    if isinstance(typ, HandleType):
        return True
    if not dataclasses.is_dataclass(typ) or isinstance(typ, ResourceType):
        return False
    # Every field of a composite type's dataclass: its element types, or (name, type) pairs.
    for part in dataclasses.fields(typ):
        value = getattr(typ, part.name)
        for child in value if isinstance(value, tuple) else (value,):
            if any(has_handles(t) for t in (child if isinstance(child, tuple) else (child,))):
                return True
    return False


# ------------------------------------------------------------------------------------------
# Reading wasmtime's types

_PRIMITIVES = {
    lib.WASMTIME_COMPONENT_VALTYPE_BOOL: "bool", lib.WASMTIME_COMPONENT_VALTYPE_S8: "s8",
    lib.WASMTIME_COMPONENT_VALTYPE_S16: "s16", lib.WASMTIME_COMPONENT_VALTYPE_S32: "s32",
    lib.WASMTIME_COMPONENT_VALTYPE_S64: "s64", lib.WASMTIME_COMPONENT_VALTYPE_U8: "u8",
    lib.WASMTIME_COMPONENT_VALTYPE_U16: "u16", lib.WASMTIME_COMPONENT_VALTYPE_U32: "u32",
    lib.WASMTIME_COMPONENT_VALTYPE_U64: "u64", lib.WASMTIME_COMPONENT_VALTYPE_F32: "f32",
    lib.WASMTIME_COMPONENT_VALTYPE_F64: "f64", lib.WASMTIME_COMPONENT_VALTYPE_CHAR: "char",
    lib.WASMTIME_COMPONENT_VALTYPE_STRING: "string",
}
_NAMEABLE = (lib.WASMTIME_COMPONENT_VALTYPE_RECORD, lib.WASMTIME_COMPONENT_VALTYPE_VARIANT,
             lib.WASMTIME_COMPONENT_VALTYPE_ENUM, lib.WASMTIME_COMPONENT_VALTYPE_FLAGS)
_HANDLES = (lib.WASMTIME_COMPONENT_VALTYPE_OWN, lib.WASMTIME_COMPONENT_VALTYPE_BORROW)


def _text(pointer: Any, length: int) -> str:
    return ffi.unpack(pointer, length).decode("utf-8", "replace")


class _Names:
    """The named types in scope while an instance's types are read: (owned C type, name) pairs,
    and (owned C type, ResourceType) pairs for resources.

    A resource is named by comparing resource types (``wasmtime_component_resource_type_equal``);
    the others by comparing value types. ``imported``: the resources of the component's imports,
    while its exports are read (shared by every scope), with the entries that own their C types."""

    def __init__(self, parent: Optional["_Names"] = None, interface: Optional[str] = None,
                 imported: Optional[List[Tuple[Any, ResourceType, Any]]] = None) -> None:
        self.parent = parent
        self.interface = interface
        self.imported: List[Tuple[Any, ResourceType, Any]] = (parent.imported if parent is not None
                                                              else [] if imported is None else imported)
        self.valtypes: List[Tuple[Any, str]] = []
        self.resources: List[Tuple[Any, ResourceType]] = []

    def add_resource(self, resource: Any, name: str, importing: bool, owner: Any) -> ResourceType:
        """Names the ``wasmtime_component_resource_type_t *`` ``resource`` (owned by ``owner``) in
        this scope: the ResourceType of an import it is (an export using an imported resource),
        or a new one."""
        for known, typ, _ in self.imported:
            if lib.wasmtime_component_resource_type_equal(known, resource):
                break
        else:
            typ = ResourceType(name, self.interface, importing)
            if importing:
                self.imported.append((resource, typ, owner))
        self.resources.append((resource, typ))
        return typ

    def name_of(self, valtype: Any) -> Optional[str]:
        scope: Optional[_Names] = self
        while scope is not None:
            for known, name in scope.valtypes:
                if lib.wasmtime_component_valtype_equal(known, valtype):
                    return name
            scope = scope.parent
        return None

    def resource(self, resource: Any) -> ResourceType:
        """The ResourceType of a ``wasmtime_component_resource_type_t *`` in scope."""
        scope: Optional[_Names] = self
        while scope is not None:
            for known, typ in scope.resources:
                if lib.wasmtime_component_resource_type_equal(known, resource):
                    return typ
            scope = scope.parent
        for known, typ, _ in self.imported:
            if lib.wasmtime_component_resource_type_equal(known, resource):
                return typ
        return ResourceType(None)


def _owned_valtype() -> Any:
    """A ``wasmtime_component_valtype_t`` for wasmtime to fill in, freed with what it owns."""
    return ffi.gc(ffi.new("wasmtime_component_valtype_t *"), lib.wasmtime_component_valtype_delete)


def valtype_from_c(valtype: Any, names: _Names) -> WitType:
    """The WitType of a ``wasmtime_component_valtype_t *`` (borrowed)."""
    kind = valtype.kind
    primitive = _PRIMITIVES.get(kind)
    if primitive is not None:
        return Primitive(primitive)
    name = names.name_of(valtype) if kind in _NAMEABLE else None
    of = valtype.of
    if kind == lib.WASMTIME_COMPONENT_VALTYPE_LIST:
        element = _owned_valtype()
        lib.wasmtime_component_list_type_element(of.list, element)
        return ListType(valtype_from_c(element, names))
    if kind == lib.WASMTIME_COMPONENT_VALTYPE_TUPLE:
        elements = []
        for index in range(lib.wasmtime_component_tuple_type_types_count(of.tuple)):
            element = _owned_valtype()
            lib.wasmtime_component_tuple_type_types_nth(of.tuple, index, element)
            elements.append(valtype_from_c(element, names))
        return TupleType(tuple(elements))
    name_out, length_out = ffi.new("const char **"), ffi.new("size_t *")
    if kind == lib.WASMTIME_COMPONENT_VALTYPE_RECORD:
        fields = []
        for index in range(lib.wasmtime_component_record_type_field_count(of.record)):
            field_type = _owned_valtype()
            lib.wasmtime_component_record_type_field_nth(of.record, index, name_out, length_out, field_type)
            fields.append((_text(name_out[0], length_out[0]), valtype_from_c(field_type, names)))
        return RecordType(name, tuple(fields))
    if kind == lib.WASMTIME_COMPONENT_VALTYPE_VARIANT:
        cases = []
        has_payload = ffi.new("bool *")
        for index in range(lib.wasmtime_component_variant_type_case_count(of.variant)):
            payload = _owned_valtype()
            lib.wasmtime_component_variant_type_case_nth(of.variant, index, name_out, length_out, has_payload, payload)
            case = _text(name_out[0], length_out[0])
            cases.append((case, valtype_from_c(payload, names) if has_payload[0] else None))
        return VariantType(name, tuple(cases))
    if kind == lib.WASMTIME_COMPONENT_VALTYPE_ENUM:
        count = lib.wasmtime_component_enum_type_names_count(of.enum_)
        enum_cases = []
        for index in range(count):
            lib.wasmtime_component_enum_type_names_nth(of.enum_, index, name_out, length_out)
            enum_cases.append(_text(name_out[0], length_out[0]))
        return EnumType(name, tuple(enum_cases))
    if kind == lib.WASMTIME_COMPONENT_VALTYPE_FLAGS:
        flags = []
        for index in range(lib.wasmtime_component_flags_type_names_count(of.flags)):
            lib.wasmtime_component_flags_type_names_nth(of.flags, index, name_out, length_out)
            flags.append(_text(name_out[0], length_out[0]))
        return FlagsType(name, tuple(flags))
    if kind == lib.WASMTIME_COMPONENT_VALTYPE_OPTION:
        inner = _owned_valtype()
        lib.wasmtime_component_option_type_ty(of.option, inner)
        return OptionType(valtype_from_c(inner, names))
    if kind == lib.WASMTIME_COMPONENT_VALTYPE_RESULT:
        ok, err = _owned_valtype(), _owned_valtype()
        has_ok = lib.wasmtime_component_result_type_ok(of.result, ok)
        has_err = lib.wasmtime_component_result_type_err(of.result, err)
        return ResultType(valtype_from_c(ok, names) if has_ok else None,
                          valtype_from_c(err, names) if has_err else None)
    if kind in _HANDLES:
        owned = kind == lib.WASMTIME_COMPONENT_VALTYPE_OWN
        resource = of.own if owned else of.borrow
        return HandleType(names.resource(resource), owned)
    if kind == lib.WASMTIME_COMPONENT_VALTYPE_FUTURE:
        inner = _owned_valtype()
        has_inner = lib.wasmtime_component_future_type_ty(of.future, inner)
        return UnsupportedType(f"future<{valtype_from_c(inner, names)}>" if has_inner else "future", "future")
    if kind == lib.WASMTIME_COMPONENT_VALTYPE_STREAM:
        inner = _owned_valtype()
        has_inner = lib.wasmtime_component_stream_type_ty(of.stream, inner)
        return UnsupportedType(f"stream<{valtype_from_c(inner, names)}>" if has_inner else "stream", "stream")
    if kind == lib.WASMTIME_COMPONENT_VALTYPE_ERROR_CONTEXT:
        return UnsupportedType("error-context", "error-context")
    if kind == lib.WASMTIME_COMPONENT_VALTYPE_MAP:
        key, value = _owned_valtype(), _owned_valtype()
        lib.wasmtime_component_map_type_key(of.map, key)
        lib.wasmtime_component_map_type_value(of.map, value)
        return MapType(valtype_from_c(key, names), valtype_from_c(value, names))
    # A kind this wasmtime has and wasmpy does not declare (none in 50.0.1): refused, never guessed at.
    return UnsupportedType(f"<type kind {kind}>", f"type kind {kind}")


def functype_from_c(name: str, functype: Any, names: _Names) -> FuncType:
    """The FuncType of a ``wasmtime_component_func_type_t *`` (borrowed)."""
    params = []
    name_out, length_out = ffi.new("const char **"), ffi.new("size_t *")
    for index in range(lib.wasmtime_component_func_type_param_count(functype)):
        param_type = _owned_valtype()
        lib.wasmtime_component_func_type_param_nth(functype, index, name_out, length_out, param_type)
        params.append((_text(name_out[0], length_out[0]), valtype_from_c(param_type, names)))
    result_type = _owned_valtype()
    has_result = lib.wasmtime_component_func_type_result(functype, result_type)
    return FuncType(name, tuple(params), valtype_from_c(result_type, names) if has_result else None,
                    bool(lib.wasmtime_component_func_type_async(functype)))


class _Entries:
    """The (name, owned wasmtime_component_item_t) entries of a component type's imports or
    exports, or of an instance type's exports."""

    def __init__(self, count: int, nth: Any) -> None:
        self.items: List[Tuple[str, Any]] = []
        name_out, length_out = ffi.new("const char **"), ffi.new("size_t *")
        extern_out = ffi.new("wasmtime_component_extern_t **")
        for index in range(count):
            if not nth(index, name_out, length_out, extern_out):
                continue
            name = _text(name_out[0], length_out[0])
            extern = ffi.gc(extern_out[0], lib.wasmtime_component_extern_delete)
            item = ffi.gc(ffi.new("wasmtime_component_item_t *"), lib.wasmtime_component_item_delete)
            lib.wasmtime_component_extern_type(extern, item)
            self.items.append((name, item))


def _read_items(entries: _Entries, engine_ptr: Any, names: _Names, importing: bool) -> Tuple[
        Dict[str, FuncType], Dict[str, InterfaceType], Dict[str, WitType]]:
    """Functions, interfaces and named types of a list of items, named in the scope ``names``
    (``importing``: they are the component's imports)."""
    resources: Dict[str, ResourceType] = {}
    for name, item in entries.items:  # the named types first: functions refer to them
        if item.kind == lib.WASMTIME_COMPONENT_ITEM_TYPE:
            names.valtypes.append((ffi.addressof(item.of, "type"), name))
        elif item.kind == lib.WASMTIME_COMPONENT_ITEM_RESOURCE:
            resources[name] = names.add_resource(item.of.resource, name, importing, entries)
    functions: Dict[str, FuncType] = {}
    interfaces: Dict[str, InterfaceType] = {}
    types: Dict[str, WitType] = {}
    for name, item in entries.items:
        kind = item.kind
        if kind == lib.WASMTIME_COMPONENT_ITEM_COMPONENT_FUNC:
            functions[name] = functype_from_c(name, item.of.component_func, names)
        elif kind == lib.WASMTIME_COMPONENT_ITEM_COMPONENT_INSTANCE:
            instance = item.of.component_instance
            nested = _Entries(lib.wasmtime_component_instance_type_export_count(instance, engine_ptr),
                              functools.partial(lib.wasmtime_component_instance_type_export_nth, instance, engine_ptr))
            nested_functions, nested_interfaces, nested_types = _read_items(nested, engine_ptr, _Names(names, name),
                                                                            importing)
            interfaces[name] = InterfaceType(name, nested_functions, nested_types, nested_interfaces)
        elif kind == lib.WASMTIME_COMPONENT_ITEM_TYPE:
            typ = valtype_from_c(ffi.addressof(item.of, "type"), names)
            types[name] = typ
        elif kind == lib.WASMTIME_COMPONENT_ITEM_RESOURCE:
            types[name] = resources[name]
        # core modules, core functions and nested component types are not Python-callable: left out
    return functions, interfaces, types


def component_items(component_ptr: Any, engine_ptr: Any) -> Tuple[ComponentItems, ComponentItems]:
    """(imports, exports) of a ``wasmtime_component_t *``."""
    component_type = ffi.gc(lib.wasmtime_component_type(component_ptr), lib.wasmtime_component_type_delete)
    described: List[ComponentItems] = []
    imported: List[Tuple[Any, ResourceType, Any]] = []  # the exports' resources are compared with these
    for count, nth in ((lib.wasmtime_component_type_import_count, lib.wasmtime_component_type_import_nth),
                       (lib.wasmtime_component_type_export_count, lib.wasmtime_component_type_export_nth)):
        entries = _Entries(count(component_type, engine_ptr), functools.partial(nth, component_type, engine_ptr))
        importing = not described
        functions, interfaces, types = _read_items(entries, engine_ptr, _Names(imported=imported), importing)
        described.append(ComponentItems(functions, interfaces, types))
    return described[0], described[1]
