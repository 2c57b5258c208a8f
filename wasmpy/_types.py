"""WebAssembly types: value, function, global, memory and table types, imports and exports."""

from __future__ import annotations

import ast
import enum
import inspect
import typing
from dataclasses import dataclass
from typing import Any, Iterable, List, Optional, Tuple, Type, Union

from ._errors import check
from ._ffi import ffi, lib

__all__ = ["ValType", "FuncType", "GlobalType", "MemoryType", "TableType", "TagType", "ImportType",
           "ExportType", "ExternType"]


class ValType(enum.Enum):
    """A WebAssembly value type. ``ValType('i32') is ValType.i32``.

    Reference types are named by their nullable abstract form: a typed
    function reference ``(ref $t)`` reads as ``funcref``, ``(ref extern)`` as
    ``externref``, and so on.
    """

    i32 = "i32"
    i64 = "i64"
    f32 = "f32"
    f64 = "f64"
    v128 = "v128"
    funcref = "funcref"
    externref = "externref"
    anyref = "anyref"
    eqref = "eqref"
    i31ref = "i31ref"
    structref = "structref"
    arrayref = "arrayref"
    exnref = "exnref"
    nullref = "nullref"
    nullfuncref = "nullfuncref"
    nullexternref = "nullexternref"
    nullexnref = "nullexnref"

    def __str__(self) -> str:
        return self.value

    def __repr__(self) -> str:
        return f"ValType.{self.value}"

    @property
    def is_number(self) -> bool:
        return self in (ValType.i32, ValType.i64, ValType.f32, ValType.f64)

    @property
    def is_reference(self) -> bool:
        return self not in _NUMERIC_KIND

    @classmethod
    def parse(cls, spec: Union["ValType", str]) -> "ValType":
        """Accepts a ValType or its name ('i32', 'i64', 'f32', 'f64', 'v128', 'funcref', 'externref', ...)."""
        if isinstance(spec, ValType):
            return spec
        if isinstance(spec, str):
            try:
                return cls(spec)
            except ValueError:
                pass
        raise TypeError(f"not a wasm value type: {spec!r} (expected one of "
                        f"{', '.join(t.value for t in cls)})")

    def _to_c(self):
        """A new owned ``wasm_valtype_t *``."""
        if self is ValType.v128:
            return lib.wasmtime_wasm_valtype_v128()
        kind = _NUMERIC_KIND.get(self)
        if kind is not None:
            return lib.wasm_valtype_new(kind)
        valtype = ffi.new("wasmtime_valtype_t *")
        valtype.kind = lib.WASMTIME_VALTYPE_KIND_REF
        valtype.reftype.nullable = True
        valtype.reftype.heaptype.kind = _HEAP_KIND[self]
        from ._engine import Engine

        return lib.wasmtime_valtype_to_wasm(Engine.default()._ptr, valtype)

    @classmethod
    def _from_c(cls, ptr) -> "ValType":
        return cls._from_c_precisely(ptr)[0]

    @classmethod
    def _from_c_precisely(cls, ptr) -> Tuple["ValType", bool]:
        """The ValType, and whether it is exactly that: False for references it only approximates
        (non-nullable, or typed: ``(ref $t)``), whose values wasm must check."""
        valtype = ffi.new("wasmtime_valtype_t *")
        lib.wasmtime_valtype_new(ptr, valtype)
        try:
            if valtype.kind != lib.WASMTIME_VALTYPE_KIND_REF:
                return _FROM_VALTYPE_KIND[valtype.kind], True
            heap_kind = valtype.reftype.heaptype.kind
            return _FROM_HEAP_KIND[heap_kind], bool(valtype.reftype.nullable) and heap_kind in _CHECKED_HEAP_KINDS
        finally:
            lib.wasmtime_valtype_delete(valtype)


_NUMERIC_KIND = {
    ValType.i32: lib.WASM_I32,
    ValType.i64: lib.WASM_I64,
    ValType.f32: lib.WASM_F32,
    ValType.f64: lib.WASM_F64,
    ValType.v128: lib.WASMTIME_VALTYPE_KIND_V128,
}
_FROM_VALTYPE_KIND = {
    lib.WASMTIME_VALTYPE_KIND_I32: ValType.i32,
    lib.WASMTIME_VALTYPE_KIND_I64: ValType.i64,
    lib.WASMTIME_VALTYPE_KIND_F32: ValType.f32,
    lib.WASMTIME_VALTYPE_KIND_F64: ValType.f64,
    lib.WASMTIME_VALTYPE_KIND_V128: ValType.v128,
}
_HEAP_KIND = {
    ValType.externref: lib.WASMTIME_HEAPTYPE_KIND_EXTERN,
    ValType.nullexternref: lib.WASMTIME_HEAPTYPE_KIND_NOEXTERN,
    ValType.funcref: lib.WASMTIME_HEAPTYPE_KIND_FUNC,
    ValType.nullfuncref: lib.WASMTIME_HEAPTYPE_KIND_NOFUNC,
    ValType.anyref: lib.WASMTIME_HEAPTYPE_KIND_ANY,
    ValType.nullref: lib.WASMTIME_HEAPTYPE_KIND_NONE,
    ValType.eqref: lib.WASMTIME_HEAPTYPE_KIND_EQ,
    ValType.i31ref: lib.WASMTIME_HEAPTYPE_KIND_I31,
    ValType.arrayref: lib.WASMTIME_HEAPTYPE_KIND_ARRAY,
    ValType.structref: lib.WASMTIME_HEAPTYPE_KIND_STRUCT,
    ValType.exnref: lib.WASMTIME_HEAPTYPE_KIND_EXN,
    ValType.nullexnref: lib.WASMTIME_HEAPTYPE_KIND_NOEXN,
}
_FROM_HEAP_KIND = {kind: valtype for valtype, kind in _HEAP_KIND.items()}
# The nullable reference types whose values Python checks fully: any Func is a funcref, any
# object an externref or anyref, any WasmException an exnref, the bottom types hold only None.
_CHECKED_HEAP_KINDS = {_HEAP_KIND[t] for t in (ValType.funcref, ValType.externref, ValType.anyref, ValType.exnref,
                                               ValType.nullfuncref, ValType.nullexternref, ValType.nullref,
                                               ValType.nullexnref)}
_FROM_HEAP_KIND.update({
    lib.WASMTIME_HEAPTYPE_KIND_CONCRETE_FUNC: ValType.funcref,
    lib.WASMTIME_HEAPTYPE_KIND_CONCRETE_ARRAY: ValType.arrayref,
    lib.WASMTIME_HEAPTYPE_KIND_CONCRETE_STRUCT: ValType.structref,
    lib.WASMTIME_HEAPTYPE_KIND_CONCRETE_EXN: ValType.exnref,
})


_NUMBER_KINDS = {ValType.i32: lib.WASMTIME_I32, ValType.i64: lib.WASMTIME_I64, ValType.f32: lib.WASMTIME_F32,
                 ValType.f64: lib.WASMTIME_F64}


def _valtype_vec(types: Tuple[ValType, ...]):
    vec = ffi.new("wasm_valtype_vec_t *")
    if types:
        lib.wasm_valtype_vec_new(vec, len(types), ffi.new("wasm_valtype_t *[]", [t._to_c() for t in types]))
    else:
        lib.wasm_valtype_vec_new_empty(vec)
    return vec


def _vec_items(vec) -> List[Any]:
    return [vec.data[i] for i in range(vec.size)]


@dataclass(frozen=True)
class FuncType:
    """The type of a function: ``FuncType(['i32', 'i32'], ['i32'])``."""

    params: Tuple[ValType, ...]
    results: Tuple[ValType, ...]

    def __init__(self, params: Iterable[Union[ValType, str]] = (),
                 results: Iterable[Union[ValType, str]] = ()) -> None:
        object.__setattr__(self, "params", tuple(ValType.parse(p) for p in params))
        object.__setattr__(self, "results", tuple(ValType.parse(r) for r in results))

    def __str__(self) -> str:
        params = ", ".join(map(str, self.params))
        if not self.results:
            return f"func({params})"
        results = ", ".join(map(str, self.results))
        if len(self.results) > 1:
            results = f"({results})"
        return f"func({params}) -> {results}"

    def _to_c(self):
        """A new ``wasm_functype_t *`` that frees itself."""
        return ffi.gc(lib.wasm_functype_new(_valtype_vec(self.params), _valtype_vec(self.results)),
                      lib.wasm_functype_delete)

    @property
    def exact(self) -> bool:
        """False when some of its reference types are approximated by ValType (typed or
        non-nullable references, e.g. ``(ref $t)``): wasm then checks each argument's type."""
        return self.__dict__.get("_exact", True)

    @property
    def _has_references(self) -> bool:
        """Whether a parameter or result is a reference: such calls, both ways, take wasmtime's
        checked paths, which keep references rooted and check their types."""
        found = self.__dict__.get("_references")
        if found is None:
            found = any(t.is_reference for t in self.params + self.results)
            object.__setattr__(self, "_references", found)
        return found

    def _value_kinds(self) -> Tuple[bytes, bytes]:
        """Parameter and result kinds as wasmpy's C call paths read them: wasmtime_valkind_t
        numbers, 255 for what is not a number (everything, unless :attr:`exact`). Made once."""
        kinds = self.__dict__.get("_kinds")
        if kinds is None:
            exact = self.exact
            kinds = tuple(bytes(_NUMBER_KINDS.get(t, 255) if exact else 255 for t in types)
                          for types in (self.params, self.results))
            object.__setattr__(self, "_kinds", kinds)
        return kinds

    @classmethod
    def _from_c(cls, ptr) -> "FuncType":
        params = [ValType._from_c_precisely(p) for p in _vec_items(lib.wasm_functype_params(ptr))]
        results = [ValType._from_c_precisely(r) for r in _vec_items(lib.wasm_functype_results(ptr))]
        functype = cls([t for t, _ in params], [t for t, _ in results])
        object.__setattr__(functype, "_exact", all(exact for _, exact in params + results))
        return functype


@dataclass(frozen=True)
class GlobalType:
    """The type of a global: its value type and whether it is mutable."""

    content: ValType
    mutable: bool = False

    def __init__(self, content: Union[ValType, str], mutable: bool = False) -> None:
        object.__setattr__(self, "content", ValType.parse(content))
        object.__setattr__(self, "mutable", bool(mutable))

    def __str__(self) -> str:
        return f"global(mut {self.content})" if self.mutable else f"global({self.content})"

    def _to_c(self):
        return ffi.gc(lib.wasm_globaltype_new(self.content._to_c(),
                                              lib.WASM_VAR if self.mutable else lib.WASM_CONST),
                      lib.wasm_globaltype_delete)

    @classmethod
    def _from_c(cls, ptr) -> "GlobalType":
        return cls(ValType._from_c(lib.wasm_globaltype_content(ptr)),
                   lib.wasm_globaltype_mutability(ptr) == lib.WASM_VAR)


def _check_limits(minimum: int, maximum: Optional[int], bound: int, what: str) -> None:
    for name, value in (("minimum", minimum), ("maximum", maximum)):
        if value is None and name == "maximum":
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{what} {name} must be an int, not {type(value).__name__}")
        if not 0 <= value <= bound:
            raise ValueError(f"{what} {name} must be between 0 and {bound}, not {value}")
    if maximum is not None and maximum < minimum:
        raise ValueError(f"{what} maximum {maximum} is below its minimum {minimum}")


def _limits_str(minimum: int, maximum: Optional[int]) -> str:
    return f"{minimum}" if maximum is None else f"{minimum}..{maximum}"


@dataclass(frozen=True)
class MemoryType:
    """The type of a linear memory, in pages of 64 KiB (``page_size_log2`` changes the page size)."""

    minimum: int
    maximum: Optional[int] = None
    is_64: bool = False
    shared: bool = False
    page_size_log2: int = 16

    def __post_init__(self) -> None:
        _check_limits(self.minimum, self.maximum, 2**64 - 1 if self.is_64 else 2**32 - 1, "memory")
        if self.page_size_log2 not in (0, 16):
            raise ValueError("page_size_log2 must be 16 (64 KiB pages) or 0 (1-byte pages)")

    @property
    def page_size(self) -> int:
        return 1 << self.page_size_log2

    def __str__(self) -> str:
        flags = (" i64" if self.is_64 else "") + (" shared" if self.shared else "")
        return f"memory({_limits_str(self.minimum, self.maximum)}{flags})"

    def _to_c(self):
        out = ffi.new("wasm_memorytype_t **")
        check(lib.wasmtime_memorytype_new(self.minimum, self.maximum is not None, self.maximum or 0,
                                          self.is_64, self.shared, self.page_size_log2, out), ValueError)
        return ffi.gc(out[0], lib.wasm_memorytype_delete)

    @classmethod
    def _from_c(cls, ptr) -> "MemoryType":
        maximum = ffi.new("uint64_t *")
        has_maximum = lib.wasmtime_memorytype_maximum(ptr, maximum)
        return cls(lib.wasmtime_memorytype_minimum(ptr), maximum[0] if has_maximum else None,
                   lib.wasmtime_memorytype_is64(ptr), lib.wasmtime_memorytype_isshared(ptr),
                   lib.wasmtime_memorytype_page_size(ptr).bit_length() - 1)


@dataclass(frozen=True)
class TableType:
    """The type of a table: its element type and its limits, in elements."""

    element: ValType
    minimum: int
    maximum: Optional[int] = None

    def __init__(self, element: Union[ValType, str], minimum: int, maximum: Optional[int] = None) -> None:
        element = ValType.parse(element)
        if not element.is_reference:
            raise TypeError(f"table elements must be references (funcref, externref, ...), not {element}")
        _check_limits(minimum, maximum, 2**32 - 1, "table")
        object.__setattr__(self, "element", element)
        object.__setattr__(self, "minimum", minimum)
        object.__setattr__(self, "maximum", maximum)

    def __str__(self) -> str:
        return f"table({_limits_str(self.minimum, self.maximum)} {self.element})"

    def _to_c(self):
        limits = ffi.new("wasm_limits_t *", (self.minimum, 0xFFFFFFFF if self.maximum is None else self.maximum))
        return ffi.gc(lib.wasm_tabletype_new(self.element._to_c(), limits), lib.wasm_tabletype_delete)

    @classmethod
    def _from_c(cls, ptr) -> "TableType":
        limits = lib.wasm_tabletype_limits(ptr)
        return cls(ValType._from_c(lib.wasm_tabletype_element(ptr)), limits.min,
                   None if limits.max == 0xFFFFFFFF else limits.max)


@dataclass(frozen=True)
class TagType:
    """The type of an exception tag: the types of the values an exception with this tag carries."""

    params: Tuple[ValType, ...]

    def __init__(self, params: Iterable[Union[ValType, str]] = ()) -> None:
        object.__setattr__(self, "params", tuple(ValType.parse(p) for p in params))

    def __str__(self) -> str:
        return f"tag({', '.join(map(str, self.params))})"

    def _to_c(self):
        functype = FuncType(self.params, ())
        return ffi.gc(lib.wasm_tagtype_new(lib.wasm_functype_new(_valtype_vec(functype.params),
                                                                 _valtype_vec(()))),
                      lib.wasm_tagtype_delete)

    @classmethod
    def _from_c(cls, ptr) -> "TagType":
        return cls(FuncType._from_c(lib.wasm_tagtype_functype(ptr)).params)


ExternType = Union[FuncType, GlobalType, MemoryType, TableType, TagType]


def take_type(ptr, cls: Any, delete: Any) -> Any:
    """``cls``'s reading of the owned C type ``ptr``, which ``delete`` then frees."""
    try:
        return cls._from_c(ptr)
    finally:
        delete(ptr)


def externtype_from_c(ptr) -> ExternType:
    kind = lib.wasm_externtype_kind(ptr)
    if kind == lib.WASM_EXTERN_FUNC:
        return FuncType._from_c(lib.wasm_externtype_as_functype_const(ptr))
    if kind == lib.WASM_EXTERN_GLOBAL:
        return GlobalType._from_c(lib.wasm_externtype_as_globaltype_const(ptr))
    if kind == lib.WASM_EXTERN_MEMORY:
        return MemoryType._from_c(lib.wasm_externtype_as_memorytype_const(ptr))
    if kind == lib.WASM_EXTERN_TABLE:
        return TableType._from_c(lib.wasm_externtype_as_tabletype_const(ptr))
    if kind == lib.WASM_EXTERN_TAG:
        return TagType._from_c(lib.wasm_externtype_as_tagtype_const(ptr))
    raise NotImplementedError(f"extern kind {kind} is not supported yet")


@dataclass(frozen=True)
class ImportType:
    """One import of a module: ``module.name`` of type ``type``."""

    module: str
    name: str
    type: ExternType

    def __str__(self) -> str:
        return f"{self.module}.{self.name}: {self.type}"


@dataclass(frozen=True)
class ExportType:
    """One export of a module: ``name`` of type ``type``."""

    name: str
    type: ExternType

    def __str__(self) -> str:
        return f"{self.name}: {self.type}"


# --- wasm types from a host function's annotations

# What an annotation names: a ValType; int or float, which match either width; or None where
# there is no annotation.
AnnotatedType = Union[ValType, Type[int], Type[float], None]

_ABSENT = inspect.Parameter.empty
_VALTYPE_NAMES = {valtype.value: valtype for valtype in ValType}
# The Python type of each number type's values: the base an ``Annotated`` of it must have.
_PYTHON_NUMBER = {ValType.i32: int, ValType.i64: int, ValType.v128: int, ValType.f32: float, ValType.f64: float}
_PYTHON_NAMES = {"int": int, "builtins.int": int, "float": float, "builtins.float": float}
_ACCEPTED = ("int, float, typing.Annotated[int, 'i32'] (or i64, v128; Annotated[float, 'f32'] or f64), "
             "a wasm type's name ('i32', 'externref', ...) or a ValType")


def annotation_type(annotation: object) -> AnnotatedType:
    """The wasm type a parameter annotation of a host function names (TypeError if it names none).

    ``int`` and ``float`` are the spelling type checkers understand; ``typing.Annotated[int, 'i32']``
    (or ``Annotated[int, ValType.i32]``) also says which width. Names of wasm types ('i32',
    'externref', ...) and ValType members are accepted too, and so is the text of any of these
    (``from __future__ import annotations`` leaves annotations as text).
    """
    if annotation is _ABSENT:
        return None
    if isinstance(annotation, str):
        return _node_type(_parse(annotation), annotation)
    if typing.get_origin(annotation) is typing.Annotated:
        base = getattr(annotation, "__origin__", None)
        valtypes = [_metadata_valtype(item) for item in getattr(annotation, "__metadata__", ())]
        named = [valtype for valtype in valtypes if valtype is not None]
        return _annotated(base, named, annotation) if named else annotation_type(base)
    if annotation is int or annotation is float or isinstance(annotation, ValType):
        return annotation
    raise TypeError(f"annotation {_shown(annotation)} names no wasm type (accepted: {_ACCEPTED})")


def annotation_result_types(annotation: object) -> Optional[Tuple[AnnotatedType, ...]]:
    """The result types a host function's return annotation names: None if it has none, ``()``
    for ``None``, one type, or several from ``tuple[int, float]`` (``typing.Tuple``) or a tuple of
    wasm type names (``('i32', 'f64')``)."""
    if annotation is _ABSENT:
        return None
    if annotation is None or annotation is type(None):
        return ()
    if isinstance(annotation, str):
        return _node_results(_parse(annotation), annotation)
    if isinstance(annotation, tuple):
        return tuple(annotation_type(item) for item in annotation)
    if typing.get_origin(annotation) is tuple:
        items = typing.get_args(annotation)
        if len(items) == 2 and items[1] is Ellipsis:
            raise TypeError(_VARIADIC.format(_shown(annotation)))
        return tuple(annotation_type(item) for item in items)
    return (annotation_type(annotation),)


_VARIADIC = ("return annotation {} has no fixed number of results: name each result's type, "
             "as in tuple[int, float]")


def _metadata_valtype(item: object) -> Optional[ValType]:
    """The wasm type an ``Annotated`` metadata item names, if any: other items are other tools'."""
    if isinstance(item, ValType):
        return item
    return _VALTYPE_NAMES.get(item) if isinstance(item, str) else None


def _annotated(base: object, valtypes: List[ValType], annotation: object) -> ValType:
    """The wasm type of ``Annotated[base, ...]`` whose metadata names ``valtypes`` (one or more)."""
    if len(set(valtypes)) > 1:
        raise TypeError(f"annotation {_shown(annotation)} names more than one wasm type")
    valtype = valtypes[0]
    python_type = _PYTHON_NUMBER.get(valtype)
    if python_type is not None and base is not python_type:
        raise TypeError(f"annotation {_shown(annotation)} names {valtype}, whose values are Python "
                        f"{python_type.__name__}s: write Annotated[{python_type.__name__}, '{valtype}']")
    return valtype


# Annotations as text, read without evaluating them (their names need not be importable here).

def _parse(text: str) -> ast.expr:
    try:
        return ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        raise TypeError(f"annotation {text!r} names no wasm type (accepted: {_ACCEPTED})") from None


def _dotted(node: ast.expr) -> str:
    """``a.b.c`` for a name or attribute chain, else ''."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        owner = _dotted(node.value)
        return owner and f"{owner}.{node.attr}"
    return ""


def _subscript_of(node: ast.expr, names: Tuple[str, ...]) -> Optional[List[ast.expr]]:
    """The items of ``X[a, b]`` where X is one of ``names`` (possibly qualified: ``typing.X``), else None."""
    if not isinstance(node, ast.Subscript) or _dotted(node.value).rpartition(".")[2] not in names:
        return None
    return list(node.slice.elts) if isinstance(node.slice, ast.Tuple) else [node.slice]


def _text_valtype(node: ast.expr, bare_names: bool) -> Optional[ValType]:
    """The wasm type ``'i32'`` or ``ValType.i32`` (and, with ``bare_names``, ``i32``) names, if any."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return _VALTYPE_NAMES.get(node.value)
    owner, _, last = _dotted(node).rpartition(".")
    if owner == "ValType" or owner.endswith(".ValType") or (bare_names and not owner):
        return _VALTYPE_NAMES.get(last)
    return None


def _node_type(node: ast.expr, text: str, unquoted: int = 0) -> AnnotatedType:
    """:func:`annotation_type` of an annotation's text, parsed (``unquoted``: quotes taken off so far)."""
    valtype = _text_valtype(node, bare_names=True)
    if valtype is not None:
        return valtype
    if _dotted(node) in _PYTHON_NAMES:
        return _PYTHON_NAMES[_dotted(node)]
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and unquoted < 2:
        return _node_type(_parse(node.value), text, unquoted + 1)  # quoted: "'Annotated[int, \"i32\"]'"
    items = _subscript_of(node, ("Annotated",))
    if items:
        base, metadata = items[0], items[1:]
        named = [valtype for valtype in (_text_valtype(item, bare_names=False) for item in metadata)
                 if valtype is not None]
        return _annotated(_PYTHON_NAMES.get(_dotted(base)), named, text) if named else _node_type(base, text)
    raise TypeError(f"annotation {text!r} names no wasm type (accepted: {_ACCEPTED})")


def _node_results(node: ast.expr, text: str) -> Tuple[AnnotatedType, ...]:
    """:func:`annotation_result_types` of a return annotation's text, parsed."""
    if (isinstance(node, ast.Constant) and node.value is None) or _dotted(node) == "None":
        return ()
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value not in _VALTYPE_NAMES:
        return _node_results(_parse(node.value), text)  # quoted
    if isinstance(node, ast.Tuple):
        return tuple(_node_type(item, text) for item in node.elts)
    items = _subscript_of(node, ("tuple", "Tuple"))
    if items is not None:
        if len(items) == 2 and isinstance(items[1], ast.Constant) and items[1].value is Ellipsis:
            raise TypeError(_VARIADIC.format(repr(text)))
        if len(items) == 1 and isinstance(items[0], ast.Tuple) and not items[0].elts:
            return ()  # tuple[()]
        return tuple(_node_type(item, text) for item in items)
    return (_node_type(node, text),)


def _shown(annotation: object) -> str:
    return annotation.__qualname__ if isinstance(annotation, type) else repr(annotation)
