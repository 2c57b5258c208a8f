"""WIT values in Python: the classes made for a component's types, and the conversions both ways.

The Python shapes are componentize-py's (the guest side's), so that code and types move
between both sides: a record is a ``@dataclass`` named in CamelCase with snake_case fields,
a variant one dataclass per case (``Shape_Circle(value=...)``), an enum an ``enum.Enum``, flags
an ``enum.Flag``, an option ``T`` or None, a result ``Ok(value)`` or ``Err(value)``, a map a
``dict``.

Each type gets a codec, made once per component: ``prepare`` checks a Python value and
makes it ready (every TypeError, ValueError and OverflowError is raised there, before any C
memory exists), ``write`` fills a ``wasmtime_component_val_t`` from what ``prepare`` returned
(it cannot fail, so no half-made C value is ever left), ``read`` makes the Python value of a
C value. What ``write`` makes is allocated by wasmtime (``wasm_byte_vec_new``, the
``*_new_uninit`` vectors, ``wasmtime_component_val_new``) and freed with
``wasmtime_component_val_delete``: a host function's results must be made that way, since
wasmtime frees them, and a call's arguments are made the same way and freed after the call.

The checks also keep wasmtime from aborting the process: it aborts on a ``string`` that is not
UTF-8 and on a ``char`` that is a surrogate, which Python text can hold.
"""

from __future__ import annotations

import dataclasses
import enum
import keyword
from collections.abc import Mapping, Sequence
from typing import Any, Callable, Dict, Generic, List, Optional, Tuple, TypeVar, Union

from .._ffi import ffi, lib
from .._native import (component_pack_list, component_prepare_record, component_prepare_tuple, component_read_record,
                       component_read_tuple, component_unpack_list, component_write_record, component_write_tuple)
from ._resources import Resource, host_prepare, host_read, host_write, passing, resource_class
from ._types import (EnumType, FlagsType, HandleType, ListType, MapType, OptionType, Primitive, RecordType,
                     ResultType, TupleType, UnsupportedType, VariantType, WitType)

__all__ = ["Ok", "Err", "Some", "Codec", "Codecs", "snake_case", "camel_case"]

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Ok(Generic[T]):
    """The ``ok`` case of a WIT ``result`` inside another value (a top-level result returns its
    value instead). ``value`` is None for a result without an ok type."""

    value: T = None  # type: ignore[assignment]


class Err(Exception):
    """The ``err`` case of a WIT ``result``: raised by a call whose function returns a result
    that is an error, and raised by a Python import to return one; inside another value
    (``list<result<...>>``), a plain value. ``value`` is the error's value (None for none)."""

    def __init__(self, value: Any = None) -> None:
        super().__init__(value)
        self.value = value

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.value == self.value  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((Err, self.value)) if _hashable(self.value) else id(self)

    def __repr__(self) -> str:
        return f"Err({self.value!r})"

    def __str__(self) -> str:
        return f"the component returned an error: {self.value!r}"


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


@dataclasses.dataclass(frozen=True)
class Some(Generic[T]):
    """The ``some`` case of an option nested in an option (``option<option<u32>>``), where None
    alone could not tell the two ``none``s apart: ``Some(None)`` is some(none). A single option
    is ``T`` or None, without the wrapper."""

    value: T


def snake_case(name: str) -> str:
    """A WIT name (kebab-case) as a Python identifier: ``get-name`` -> ``get_name``; a keyword
    gets a trailing underscore (``from`` -> ``from_``), as componentize-py does."""
    identifier = name.replace("-", "_")
    return identifier + "_" if keyword.iskeyword(identifier) else identifier


def camel_case(name: str) -> str:
    """A WIT type name as a Python class name: ``point`` -> ``Point``, ``light-blue`` -> ``LightBlue``."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("-"))


def without_version(name: str) -> str:
    """A WIT interface or package name without its ``@version``: ``test:rich/api``."""
    return name.partition("@")[0]


def interface_attribute(name: str) -> str:
    """The attribute of an exported interface: its last segment in snake_case
    (``test:rich/api@0.1.0`` -> ``api``)."""
    return snake_case(without_version(name).rpartition("/")[2].rpartition(":")[2])


def namespace_member(namespace: Any, wit_name: str) -> Any:
    """``namespace``'s member for the WIT name ``wit_name`` (``get-name``), or its snake_case
    (``get_name``), as a mapping key or an attribute; None if it has neither."""
    for name in dict.fromkeys((wit_name, snake_case(wit_name))):
        if isinstance(namespace, Mapping):
            if name in namespace:
                return namespace[name]
        elif hasattr(namespace, name):
            return getattr(namespace, name)
    return None


def upper_snake_case(name: str) -> str:
    """A WIT case name as an enum member's name: ``light-blue`` -> ``LIGHT_BLUE``."""
    return name.replace("-", "_").upper()


def _describe(value: Any) -> str:
    return type(value).__name__


class Codec:
    """The conversions of one WIT type: see the module's docstring."""

    __slots__ = ("type", "prepare", "write", "read")

    def __init__(self, typ: WitType, prepare: Callable[[Any, str], Any], write: Callable[[Any, Any], None],
                 read: Callable[[Any], Any]) -> None:
        self.type = typ
        self.prepare = prepare
        self.write = write
        self.read = read


_INT_RANGES = {"s8": (-2**7, 2**7 - 1), "u8": (0, 2**8 - 1), "s16": (-2**15, 2**15 - 1), "u16": (0, 2**16 - 1),
               "s32": (-2**31, 2**31 - 1), "u32": (0, 2**32 - 1), "s64": (-2**63, 2**63 - 1), "u64": (0, 2**64 - 1)}
_VALUE_KINDS = {
    "bool": lib.WASMTIME_COMPONENT_BOOL, "s8": lib.WASMTIME_COMPONENT_S8, "u8": lib.WASMTIME_COMPONENT_U8,
    "s16": lib.WASMTIME_COMPONENT_S16, "u16": lib.WASMTIME_COMPONENT_U16, "s32": lib.WASMTIME_COMPONENT_S32,
    "u32": lib.WASMTIME_COMPONENT_U32, "s64": lib.WASMTIME_COMPONENT_S64, "u64": lib.WASMTIME_COMPONENT_U64,
    "f32": lib.WASMTIME_COMPONENT_F32, "f64": lib.WASMTIME_COMPONENT_F64, "char": lib.WASMTIME_COMPONENT_CHAR,
    "string": lib.WASMTIME_COMPONENT_STRING,
}


def _int_codec(typ: Primitive) -> Codec:
    name = typ.name
    low, high = _INT_RANGES[name]
    kind = _VALUE_KINDS[name]

    def prepare(value: Any, where: str) -> int:
        if type(value) is not int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{where}: expected an int ({name}), got {_describe(value)}")
            value = int(value)
        if not low <= value <= high:
            raise OverflowError(f"{where}: {value} is out of range for {name} ({low} to {high})")
        return value

    def write(value: int, out: Any) -> None:
        out.kind = kind
        setattr(out.of, name, value)

    def read(val: Any) -> int:
        return getattr(val.of, name)

    return Codec(typ, prepare, write, read)


def _float_codec(typ: Primitive) -> Codec:
    name = typ.name
    kind = _VALUE_KINDS[name]

    def prepare(value: Any, where: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{where}: expected a float ({name}), got {_describe(value)}")
        try:
            return float(value)
        except OverflowError:
            raise OverflowError(f"{where}: {value} is too large for {name}") from None

    def write(value: float, out: Any) -> None:
        out.kind = kind
        setattr(out.of, name, value)

    def read(val: Any) -> float:
        return getattr(val.of, name)

    return Codec(typ, prepare, write, read)


def _bool_codec(typ: Primitive) -> Codec:
    def prepare(value: Any, where: str) -> bool:
        if not isinstance(value, bool):
            raise TypeError(f"{where}: expected a bool, got {_describe(value)}")
        return value

    def write(value: bool, out: Any) -> None:
        out.kind = lib.WASMTIME_COMPONENT_BOOL
        out.of.boolean = value

    return Codec(typ, prepare, write, lambda val: bool(val.of.boolean))


def _char_codec(typ: Primitive) -> Codec:
    def prepare(value: Any, where: str) -> int:
        if not isinstance(value, str) or len(value) != 1:
            shown = f"a str of length {len(value)}" if isinstance(value, str) else _describe(value)
            raise TypeError(f"{where}: expected a one-character str (char), got {shown}")
        code = ord(value)
        if 0xD800 <= code <= 0xDFFF:  # wasmtime aborts the process on one
            raise ValueError(f"{where}: {value!r} is a surrogate, which is not a Unicode scalar value (char)")
        return code

    def write(code: int, out: Any) -> None:
        out.kind = lib.WASMTIME_COMPONENT_CHAR
        out.of.character = code

    return Codec(typ, prepare, write, lambda val: chr(val.of.character))


def encode_text(value: Any, where: str) -> bytes:
    """``value``, a str, as UTF-8: TypeError for anything else, ValueError for text with lone
    surrogates (which UTF-8 cannot hold, and wasmtime aborts on)."""
    if not isinstance(value, str):
        raise TypeError(f"{where}: expected a str (string), got {_describe(value)}")
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(f"{where}: the text has a lone surrogate ({value[error.start:error.end]!r} at "
                         f"index {error.start}), which a WIT string cannot hold") from None


def _write_bytes(name: Any, data: bytes) -> None:
    """Fills the ``wasm_name_t *`` ``name`` with a copy of ``data``, allocated by wasmtime."""
    lib.wasm_byte_vec_new(name, len(data), data)


def _read_text(name: Any) -> str:
    return ffi.unpack(ffi.cast("char *", name.data), name.size).decode("utf-8")


def _string_codec(typ: Primitive) -> Codec:
    def write(data: bytes, out: Any) -> None:
        out.kind = lib.WASMTIME_COMPONENT_STRING
        _write_bytes(ffi.addressof(out.of, "string"), data)

    return Codec(typ, encode_text, write, lambda val: _read_text(val.of.string))


# The module of a generated class until an interface namespace claims it (its name).
GENERATED_MODULE = "wasmpy.component"


def _record_class(typ: RecordType) -> type:
    fields = [(snake_case(name), Any) for name, _ in typ.fields]
    cls = dataclasses.make_dataclass(camel_case(typ.name or "record"), fields)
    cls.__doc__ = f"WIT {typ.definition()}"
    cls.__module__ = GENERATED_MODULE
    return cls


class Codecs:
    """The codecs and the generated classes of one component's types, made on first use."""

    def __init__(self) -> None:
        self._codecs: Dict[WitType, Codec] = {}
        self.classes: Dict[WitType, Any] = {}  # the generated Python type of each named WIT type

    def codec(self, typ: WitType) -> Codec:
        codec = self._codecs.get(typ)
        if codec is None:
            codec = self._codecs[typ] = self._make(typ)
        return codec

    def python_types(self, typ: WitType) -> Dict[str, Any]:
        """The generated classes ``typ`` defines, by Python name: ``{"Point": Point}``, or for a
        variant the case classes and the union (``Shape``)."""
        self.codec(typ)
        made = self.classes.get(typ)
        if made is None:
            return {}
        if isinstance(typ, VariantType):
            cases, union = made
            return {**{cls.__name__: cls for cls in cases}, camel_case(typ.name or "variant"): union}
        return {made.__name__: made}

    def _make(self, typ: WitType) -> Codec:
        if isinstance(typ, Primitive):
            if typ.name in _INT_RANGES:
                return _int_codec(typ)
            if typ.name in ("f32", "f64"):
                return _float_codec(typ)
            return {"bool": _bool_codec, "char": _char_codec, "string": _string_codec}[typ.name](typ)
        maker = {ListType: self._list, TupleType: self._tuple, RecordType: self._record,
                 VariantType: self._variant, EnumType: self._enum, FlagsType: self._flags,
                 OptionType: self._option, ResultType: self._result, HandleType: self._handle,
                 MapType: self._map}.get(type(typ))
        if maker is None:
            return self._unsupported(typ)
        return maker(typ)  # type: ignore[operator]

    @staticmethod
    def _unsupported(typ: WitType) -> Codec:
        what = typ.kind if isinstance(typ, UnsupportedType) else str(typ)

        def refuse(*args: Any) -> Any:
            raise NotImplementedError(f"wasmpy cannot convert WIT {what} values yet ({typ})")

        return Codec(typ, refuse, refuse, refuse)

    def _list(self, typ: ListType) -> Codec:
        if typ.element == Primitive("u8"):
            return self._bytes(typ)
        if isinstance(typ.element, Primitive) and typ.element.name != "string":
            return self._packed_list(typ)
        element = self.codec(typ.element)
        prepare_element, write_element, read_element = element.prepare, element.write, element.read

        def prepare(value: Any, where: str) -> List[Any]:
            _require_list(value, typ, where)
            return [prepare_element(item, f"{where}[{index}]") for index, item in enumerate(value)]

        def write(items: List[Any], out: Any) -> None:
            out.kind = lib.WASMTIME_COMPONENT_LIST
            vector = ffi.addressof(out.of, "list")
            lib.wasmtime_component_vallist_new_uninit(vector, len(items))
            data = vector.data
            for index, item in enumerate(items):
                write_element(item, data + index)

        def read(val: Any) -> List[Any]:
            vector = val.of.list
            data = vector.data
            return [read_element(data + index) for index in range(vector.size)]

        if typ.element == Primitive("string"):
            # Read in C, written element by element: packed strings would own memory until written.
            return Codec(typ, prepare, write, _read_in_c(lib.WASMTIME_COMPONENT_STRING))
        return Codec(typ, prepare, write, read)

    def _packed_list(self, typ: ListType) -> Codec:
        """list<T> of bool, integers, floats or char: converted in C (csrc/component/lists.c) where
        the values are what C takes as they are, else element by element as other lists."""
        assert isinstance(typ.element, Primitive)
        name = typ.element.name
        kind = _VALUE_KINDS[name]
        prepare_element = self.codec(typ.element).prepare
        read = _read_in_c(kind)
        as_given = chr if name == "char" else None  # the char codec's prepare gives its code point

        def prepare(value: Any, where: str) -> bytes:
            packed = component_pack_list(kind, value)
            if packed is None:  # explains what C refused, or converts it (int subclasses, other sequences)
                _require_list(value, typ, where)
                prepared = [prepare_element(item, f"{where}[{index}]") for index, item in enumerate(value)]
                packed = component_pack_list(kind, prepared if as_given is None else list(map(as_given, prepared)))
                assert packed is not None, "C refused values the Python conversion made"
            return packed

        def write(packed: bytes, out: Any) -> None:
            out.kind = lib.WASMTIME_COMPONENT_LIST
            vector = ffi.addressof(out.of, "list")
            lib.wasmtime_component_vallist_new_uninit(vector, len(packed) // _VAL_SIZE)
            ffi.memmove(vector.data, packed, len(packed))

        return Codec(typ, prepare, write, read)

    @staticmethod
    def _bytes(typ: ListType) -> Codec:
        """list<u8>: bytes (any bytes-like object, or a list of ints, as an argument)."""
        def prepare(value: Any, where: str) -> bytes:
            if isinstance(value, (bytes, bytearray, memoryview)):
                return bytes(value)
            if isinstance(value, str) or not isinstance(value, Sequence):
                raise TypeError(f"{where}: expected bytes (list<u8>), got {_describe(value)}")
            for index, item in enumerate(value):
                if isinstance(item, bool) or not isinstance(item, int):
                    raise TypeError(f"{where}[{index}]: expected an int (u8), got {_describe(item)}")
                if not 0 <= item <= 255:
                    raise OverflowError(f"{where}[{index}]: {item} is out of range for u8 (0 to 255)")
            return bytes(value)

        def write(data: bytes, out: Any) -> None:
            out.kind = lib.WASMTIME_COMPONENT_LIST
            vector = ffi.addressof(out.of, "list")
            lib.wasmtime_component_vallist_new_uninit(vector, len(data))
            elements = vector.data
            for index, byte in enumerate(data):
                element = elements[index]
                element.kind = lib.WASMTIME_COMPONENT_U8
                element.of.u8 = byte

        def read(val: Any) -> bytes:
            vector = val.of.list
            data = vector.data
            return bytes(data[index].of.u8 for index in range(vector.size))

        return Codec(typ, prepare, write, read)

    def _map(self, typ: MapType) -> Codec:
        """map<K, V>: a dict (any Mapping as an argument), its entries in wasm's order. WIT keys
        are bool, integers, char or string, whose Python values are hashable. wasmtime passes the
        entries wasm gives as they are, a key twice included: the last entry wins, as in
        ``dict(pairs)`` (tests/test_component_map.py)."""
        key, value = self.codec(typ.key), self.codec(typ.value)
        prepare_key, write_key, read_key = key.prepare, key.write, key.read
        prepare_value, write_value, read_value = value.prepare, value.write, value.read

        def prepare(mapping: Any, where: str) -> List[Tuple[Any, Any]]:
            if not isinstance(mapping, Mapping):
                raise TypeError(f"{where}: expected a dict ({typ}), got {_describe(mapping)}")
            entries = [(prepare_key(item_key, f"{where}, key {item_key!r}"),
                        prepare_value(item_value, f"{where}[{item_key!r}]"))
                       for item_key, item_value in mapping.items()]
            # Distinct Python keys may convert to one WIT key (int subclasses with their own __eq__):
            # a map with two entries for a key would reach wasm.
            if len({entry_key for entry_key, _ in entries}) != len(entries):
                raise ValueError(f"{where}: two keys of the mapping are the same {typ.key} ({typ})")
            return entries

        def write(entries: List[Tuple[Any, Any]], out: Any) -> None:
            out.kind = lib.WASMTIME_COMPONENT_MAP
            vector = ffi.addressof(out.of, "map")
            lib.wasmtime_component_valmap_new_uninit(vector, len(entries))
            data = vector.data
            for index, (entry_key, entry_value) in enumerate(entries):
                entry = data[index]
                write_key(entry_key, ffi.addressof(entry, "key"))
                write_value(entry_value, ffi.addressof(entry, "value"))

        def read(val: Any) -> Dict[Any, Any]:
            vector = val.of.map
            data = vector.data
            result = {}
            for index in range(vector.size):
                entry = data[index]
                result[read_key(ffi.addressof(entry, "key"))] = read_value(ffi.addressof(entry, "value"))
            return result

        return Codec(typ, prepare, write, read)

    def _tuple(self, typ: TupleType) -> Codec:
        codecs = [self.codec(element) for element in typ.elements]
        count = len(codecs)

        def prepare(value: Any, where: str) -> List[Any]:
            if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
                raise TypeError(f"{where}: expected a tuple ({typ}), got {_describe(value)}")
            if len(value) != count:
                raise TypeError(f"{where}: expected a tuple of {count} ({typ}), got {len(value)} items")
            return [codec.prepare(item, f"{where}[{index}]") for index, (codec, item) in enumerate(zip(codecs, value))]

        simple = _simple_fields(typ.elements)
        if simple is not None:
            return self._simple_tuple(typ, prepare, *simple)

        def write(items: List[Any], out: Any) -> None:
            out.kind = lib.WASMTIME_COMPONENT_TUPLE
            vector = ffi.addressof(out.of, "tuple")
            lib.wasmtime_component_valtuple_new_uninit(vector, count)
            data = vector.data
            for index, (codec, item) in enumerate(zip(codecs, items)):
                codec.write(item, data + index)

        def read(val: Any) -> Tuple[Any, ...]:
            data = val.of.tuple.data
            return tuple(codec.read(data + index) for index, codec in enumerate(codecs))

        return Codec(typ, prepare, write, read)

    @staticmethod
    def _simple_tuple(typ: TupleType, prepare_items: Callable[[Any, str], List[Any]], kinds: bytes,
                      as_given: List[Optional[Callable[[Any], Any]]]) -> Codec:
        """A tuple of bool, integers, floats, char and string: converted in C (csrc/component/records.c)
        where the items are what C takes as they are, else item by item as other tuples."""
        def prepare(value: Any, where: str) -> Tuple[Any, ...]:
            prepared = component_prepare_tuple(value, kinds)
            if prepared is None:  # explains what C refused, or converts it (int subclasses, other sequences)
                prepared = _given(prepare_items(value, where), as_given)
            return prepared

        def write(prepared: Tuple[Any, ...], out: Any) -> None:
            component_write_tuple(int(ffi.cast("uintptr_t", out)), kinds, prepared)

        def read(val: Any) -> Tuple[Any, ...]:
            return component_read_tuple(int(ffi.cast("uintptr_t", val)), kinds)

        return Codec(typ, prepare, write, read)

    def _record(self, typ: RecordType) -> Codec:
        cls = self.classes[typ] = _record_class(typ)
        fields = [(name, name.encode(), snake_case(name), self.codec(field_type)) for name, field_type in typ.fields]
        count = len(fields)

        def prepare(value: Any, where: str) -> List[Any]:
            prepared = []
            is_mapping = isinstance(value, Mapping)
            for name, _, attribute, codec in fields:
                if is_mapping:
                    if attribute in value:
                        item = value[attribute]
                    elif name in value:
                        item = value[name]
                    else:
                        raise TypeError(f"{where}: the mapping has no field {attribute!r} ({typ})")
                else:
                    try:
                        item = getattr(value, attribute)
                    except AttributeError:
                        raise TypeError(f"{where}: expected a {cls.__name__} (or a mapping with its fields), "
                                        f"got {_describe(value)} without a {attribute!r} attribute") from None
                prepared.append(codec.prepare(item, f"{where}.{attribute}"))
            return prepared

        simple = _simple_fields([field_type for _, field_type in typ.fields])
        if simple is not None:
            return self._simple_record(typ, cls, prepare, *simple)

        def write(items: List[Any], out: Any) -> None:
            out.kind = lib.WASMTIME_COMPONENT_RECORD
            vector = ffi.addressof(out.of, "record")
            lib.wasmtime_component_valrecord_new_uninit(vector, count)
            data = vector.data
            for index, ((_, encoded, _, codec), item) in enumerate(zip(fields, items)):
                entry = data + index
                _write_bytes(ffi.addressof(entry, "name"), encoded)
                codec.write(item, ffi.addressof(entry, "val"))

        def read(val: Any) -> Any:
            data = val.of.record.data
            return cls(*[codec.read(ffi.addressof(data[index], "val"))
                         for index, (_, _, _, codec) in enumerate(fields)])

        return Codec(typ, prepare, write, read)

    @staticmethod
    def _simple_record(typ: RecordType, cls: type, prepare_fields: Callable[[Any, str], List[Any]], kinds: bytes,
                       as_given: List[Optional[Callable[[Any], Any]]]) -> Codec:
        """A record of bool, integers, floats, char and string fields: converted in C
        (csrc/component/records.c) when the value is a ``cls`` whose fields C takes as they are,
        else field by field as other records (mappings, other objects, int subclasses...)."""
        attributes = tuple(snake_case(name) for name, _ in typ.fields)
        names = tuple(name.encode() for name, _ in typ.fields)

        def prepare(value: Any, where: str) -> Tuple[Any, ...]:
            prepared = component_prepare_record(value, cls, attributes, kinds)
            if prepared is None:  # explains what C refused, or converts it
                prepared = _given(prepare_fields(value, where), as_given)
            return prepared

        def write(prepared: Tuple[Any, ...], out: Any) -> None:
            component_write_record(int(ffi.cast("uintptr_t", out)), names, kinds, prepared)

        def read(val: Any) -> Any:
            return component_read_record(int(ffi.cast("uintptr_t", val)), kinds, cls)

        return Codec(typ, prepare, write, read)

    def _variant(self, typ: VariantType) -> Codec:
        base = camel_case(typ.name or "variant")
        classes = []
        cases = []
        for case, payload in typ.cases:
            fields = [] if payload is None else [("value", Any)]
            case_class = dataclasses.make_dataclass(f"{base}_{camel_case(case)}", fields)
            case_class.__doc__ = f"The {case} case of WIT {typ.definition()}"
            case_class.__module__ = GENERATED_MODULE
            classes.append(case_class)
            cases.append((case.encode(), None if payload is None else self.codec(payload)))
        union = Union[tuple(classes)] if len(classes) > 1 else classes[0]  # type: ignore[valid-type]
        self.classes[typ] = (classes, union)
        index_of = {cls: index for index, cls in enumerate(classes)}

        def prepare(value: Any, where: str) -> Tuple[int, Any]:
            index = index_of.get(type(value))
            if index is None:
                names = ", ".join(cls.__name__ for cls in classes)
                raise TypeError(f"{where}: expected one of {names} ({typ}), got {_describe(value)}")
            codec = cases[index][1]
            return index, None if codec is None else codec.prepare(value.value, f"{where}.value")

        def write(prepared: Tuple[int, Any], out: Any) -> None:
            index, payload = prepared
            name, codec = cases[index]
            out.kind = lib.WASMTIME_COMPONENT_VARIANT
            variant = out.of.variant
            _write_bytes(ffi.addressof(variant, "discriminant"), name)
            variant.val = ffi.NULL if codec is None else _boxed(codec, payload)

        by_name = {name: (cls, codec) for (name, codec), cls in zip(cases, classes)}

        def read(val: Any) -> Any:
            variant = val.of.variant
            cls, codec = by_name[ffi.unpack(ffi.cast("char *", variant.discriminant.data), variant.discriminant.size)]
            return cls() if codec is None else cls(codec.read(variant.val))

        return Codec(typ, prepare, write, read)

    def _enum(self, typ: EnumType) -> Codec:
        cls = enum.Enum(camel_case(typ.name or "enum"), [(upper_snake_case(case), index)  # type: ignore[misc]
                                                         for index, case in enumerate(typ.cases)])
        cls.__doc__ = f"WIT {typ.definition()}"
        cls.__module__ = GENERATED_MODULE
        self.classes[typ] = cls
        names = [case.encode() for case in typ.cases]
        by_name = {case: index for index, case in enumerate(typ.cases)}
        members = list(cls)
        member_of = {name: member for name, member in zip(names, members)}

        def prepare(value: Any, where: str) -> int:
            if isinstance(value, cls):
                return value.value
            if isinstance(value, str) and value in by_name:
                return by_name[value]
            raise TypeError(f"{where}: expected a {cls.__name__} or one of the names "
                            f"{', '.join(map(repr, typ.cases))}, got {value!r}")

        def write(index: int, out: Any) -> None:
            out.kind = lib.WASMTIME_COMPONENT_ENUM
            _write_bytes(ffi.addressof(out.of, "enumeration"), names[index])

        def read(val: Any) -> Any:
            name = val.of.enumeration
            return member_of[ffi.unpack(ffi.cast("char *", name.data), name.size)]

        return Codec(typ, prepare, write, read)

    def _flags(self, typ: FlagsType) -> Codec:
        cls = enum.Flag(camel_case(typ.name or "flags"), [(upper_snake_case(flag), 1 << index)  # type: ignore[misc]
                                                          for index, flag in enumerate(typ.flags)])
        cls.__doc__ = f"WIT {typ.definition()}"
        cls.__module__ = GENERATED_MODULE
        self.classes[typ] = cls
        names = [flag.encode() for flag in typ.flags]
        bit_of: Dict[Union[str, bytes], int] = {flag: 1 << index for index, flag in enumerate(typ.flags)}
        bit_of.update({name: 1 << index for index, name in enumerate(names)})

        def prepare(value: Any, where: str) -> List[bytes]:
            if isinstance(value, cls):
                return [name for index, name in enumerate(names) if value.value & (1 << index)]
            if isinstance(value, (set, frozenset, list, tuple)) and all(isinstance(v, str) and v in bit_of
                                                                         for v in value):
                chosen = {bit_of[v] for v in value}
                return [name for index, name in enumerate(names) if (1 << index) in chosen]
            raise TypeError(f"{where}: expected a {cls.__name__} (or a set of the names "
                            f"{', '.join(map(repr, typ.flags))}), got {value!r}")

        def write(chosen: List[bytes], out: Any) -> None:
            out.kind = lib.WASMTIME_COMPONENT_FLAGS
            vector = ffi.addressof(out.of, "flags")
            lib.wasmtime_component_valflags_new_uninit(vector, len(chosen))
            for index, name in enumerate(chosen):
                _write_bytes(vector.data + index, name)

        def read(val: Any) -> Any:
            vector = val.of.flags
            bits = 0
            for index in range(vector.size):
                name = vector.data[index]
                bits |= bit_of[ffi.unpack(ffi.cast("char *", name.data), name.size)]
            return cls(bits)

        return Codec(typ, prepare, write, read)

    def _option(self, typ: OptionType) -> Codec:
        inner = self.codec(typ.inner)
        nested = isinstance(typ.inner, OptionType)  # some(none) and none need Some() to differ

        def prepare(value: Any, where: str) -> Any:
            if value is None:
                return None
            if nested:
                if not isinstance(value, Some):
                    raise TypeError(f"{where}: expected None or Some(...) ({typ}: an option in an option "
                                    f"needs the Some wrapper), got {_describe(value)}")
                value = value.value
            return (inner.prepare(value, where),)

        def write(prepared: Any, out: Any) -> None:
            out.kind = lib.WASMTIME_COMPONENT_OPTION
            out.of.option = ffi.NULL if prepared is None else _boxed(inner, prepared[0])

        def read(val: Any) -> Any:
            payload = val.of.option
            if payload == ffi.NULL:
                return None
            value = inner.read(payload)
            return Some(value) if nested else value

        return Codec(typ, prepare, write, read)

    def _result(self, typ: ResultType) -> Codec:
        ok = None if typ.ok is None else self.codec(typ.ok)
        err = None if typ.err is None else self.codec(typ.err)

        def prepare(value: Any, where: str) -> Tuple[bool, Any]:
            if isinstance(value, Ok):
                return True, None if ok is None else ok.prepare(value.value, f"{where}.value")
            if isinstance(value, Err):
                return False, None if err is None else err.prepare(value.value, f"{where}.value")
            raise TypeError(f"{where}: expected wasmpy.Ok(...) or wasmpy.Err(...) ({typ}), got {_describe(value)}")

        def write(prepared: Tuple[bool, Any], out: Any) -> None:
            is_ok, payload = prepared
            codec = ok if is_ok else err
            out.kind = lib.WASMTIME_COMPONENT_RESULT
            result = out.of.result
            result.is_ok = is_ok
            result.val = ffi.NULL if codec is None else _boxed(codec, payload)

        def read(val: Any) -> Any:
            result = val.of.result
            codec = ok if result.is_ok else err
            value = None if codec is None or result.val == ffi.NULL else codec.read(result.val)
            return Ok(value) if result.is_ok else Err(value)

        return Codec(typ, prepare, write, read)


    @staticmethod
    def _handle(typ: HandleType) -> Codec:
        """own<R> and borrow<R>: objects of the Resource class of a resource the component exports,
        or of the Python class of one it imports (see _resources), anywhere in a value."""
        resource = typ.resource
        if resource.imported:
            return Codec(typ, lambda value, where: host_prepare(typ, value, where),
                         lambda value, out: host_write(typ, value, out), lambda val: host_read(typ, val))
        expected = camel_case(resource.name or "resource")
        owned = typ.owned

        def prepare(value: Any, where: str) -> Any:
            if not isinstance(value, Resource) or value._resource_type != resource:
                raise TypeError(f"{where}: expected a {expected} (WIT {typ}), got {_describe(value)}")
            if type(value) is not resource_class(resource):
                raise TypeError(f"{where}: expected a {expected} of this component instance, got one of another")
            value._require_open(where)
            passing(value, owned, where)  # checked again under the store's lock, before any write
            return value

        def write(value: Any, out: Any) -> None:
            # Open: check_passed saw it under the store's lock, which is still held. A value no call
            # checked is written a bool, which wasmtime refuses (never a NULL handle to clone).
            handle = getattr(value, "_handle", None)
            if handle is None:  # pragma: no cover
                out.kind = lib.WASMTIME_COMPONENT_BOOL
                out.of.boolean = False
                return
            out.kind = lib.WASMTIME_COMPONENT_RESOURCE
            out.of.resource = lib.wasmtime_component_resource_any_clone(handle)

        def read(val: Any) -> Any:
            cls = resource_class(resource)
            if cls is None:
                raise NotImplementedError(f"wasmpy cannot convert WIT {typ} values here yet (a resource handle "
                                          "given to a Python import)")
            return cls._adopt(lib.wasmtime_component_resource_any_clone(val.of.resource))

        return Codec(typ, prepare, write, read)


# What C takes for a field of a simple kind, made from what the field's codec prepared: the char
# codec gives a code point, the string codec UTF-8; the others give exact bools, ints and floats.
_AS_GIVEN: Dict[str, Callable[[Any], Any]] = {"char": chr, "string": bytes.decode}


def _simple_fields(types: Sequence[WitType]) -> Optional[Tuple[bytes, List[Optional[Callable[[Any], Any]]]]]:
    """The value kinds of the fields of a record or tuple for csrc/component/records.c, and what
    turns a field's prepared value into what C takes (None: as it is); None unless every field
    is of the simple types (bool, integers, floats, char, string)."""
    if not all(isinstance(field, Primitive) for field in types):
        return None
    names = [field.name for field in types]  # type: ignore[attr-defined]
    return bytes(_VALUE_KINDS[name] for name in names), [_AS_GIVEN.get(name) for name in names]


def _given(prepared: List[Any], as_given: List[Optional[Callable[[Any], Any]]]) -> Tuple[Any, ...]:
    return tuple(item if convert is None else convert(item) for convert, item in zip(as_given, prepared))


def _read_in_c(kind: int) -> Callable[[Any], List[Any]]:
    """The read of a codec of lists of element value kind ``kind`` (csrc/component/lists.c)."""
    def read(val: Any) -> List[Any]:
        return component_unpack_list(int(ffi.cast("uintptr_t", val)), kind)

    return read


def _require_list(value: Any, typ: ListType, where: str) -> None:
    if isinstance(value, (str, bytes, bytearray, memoryview)) or not isinstance(value, Sequence):
        raise TypeError(f"{where}: expected a list ({typ}), got {_describe(value)}")


_VAL_SIZE = ffi.sizeof("wasmtime_component_val_t")


def _boxed(codec: Codec, prepared: Any) -> Any:
    """A ``wasmtime_component_val_t *`` allocated by wasmtime holding the value: the payload of an
    option, variant or result (``wasmtime_component_val_new`` moves the value there)."""
    staging = ffi.new("wasmtime_component_val_t *")
    codec.write(prepared, staging)
    return lib.wasmtime_component_val_new(staging)

