"""Conversions between Python values and wasm values (``wasmtime_val_t`` and raw)."""

from __future__ import annotations

import contextlib
import operator
from typing import Any, Iterator

from ._errors import WasmError, WasmException, check_value
from ._ffi import ffi, lib
from ._native import StoreHandle, externref_drop_address, kept_object, values_configure
from ._anyref import AnyRef
from ._types import ValType

__all__ = ["Val"]

_INT_RANGES = {ValType.i32: 32, ValType.i64: 64, ValType.v128: 128}

# Each reference type belongs to one family: its values share one representation.
_FAMILY = {
    ValType.funcref: "func", ValType.nullfuncref: "func",
    ValType.externref: "extern", ValType.nullexternref: "extern",
    ValType.anyref: "any", ValType.eqref: "any", ValType.i31ref: "any", ValType.structref: "any",
    ValType.arrayref: "any", ValType.nullref: "any",
    ValType.exnref: "exn", ValType.nullexnref: "exn",
}
_NULL_ONLY = (ValType.nullfuncref, ValType.nullexternref, ValType.nullref, ValType.nullexnref)


def _check_null_only(valtype: ValType, value: Any) -> None:
    if value is None:
        return
    if valtype in _NULL_ONLY:
        raise TypeError(f"{valtype} holds only None (the null reference), got {type(value).__name__}")
    family = _FAMILY[valtype]
    if family == "any" and valtype is not ValType.anyref and not isinstance(value, AnyRef):
        raise TypeError(f"expected a wasmpy.AnyRef or None for {valtype}, got {type(value).__name__}")
    if family == "exn" and not isinstance(value, WasmException):
        raise TypeError(f"expected a wasmpy.WasmException or None for {valtype}, got {type(value).__name__}")


def check_reference(store, valtype: ValType, value: Any) -> None:
    """Raises what write_raw would for a reference argument, without creating anything."""
    if isinstance(value, Val):
        if value.type is not valtype:
            raise TypeError(f"expected {valtype}, got a Val of type {value.type}")
        value = value._payload
    _check_null_only(valtype, value)
    if _FAMILY[valtype] == "func" and value is not None:
        _check_func(store, value)
    if _FAMILY[valtype] == "exn" and value is not None and getattr(value.tag, "store", None) is not store:
        raise TypeError("a WasmException passed to wasm needs a Tag of the same store")


def _integer(value: Any, valtype: ValType) -> int:
    """Checks an integer argument and returns its two's-complement bit pattern."""
    if isinstance(value, float):
        raise TypeError(f"expected an int for {valtype}, got float")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"expected an int for {valtype}, got {type(value).__name__}") from None
    bits = _INT_RANGES[valtype]
    if not -(1 << (bits - 1)) <= value < (1 << bits):
        raise OverflowError(f"{value} is out of range for {valtype} "
                            f"(accepted: -2**{bits - 1} to 2**{bits}-1)")
    return value & ((1 << bits) - 1)


def _signed(bits: int, width: int) -> int:
    return bits - (1 << width) if bits >> (width - 1) else bits


def _real(value: Any, valtype: ValType) -> float:
    if isinstance(value, float):
        return value
    if isinstance(value, int):
        return float(value)
    raise TypeError(f"expected a float or int for {valtype}, got {type(value).__name__}")


def _float_bits(value: float, valtype: ValType) -> int:
    scratch = ffi.new("wasmtime_val_raw_t *")
    if valtype is ValType.f32:
        scratch.f32 = value
        return scratch.i32 & 0xFFFFFFFF
    scratch.f64 = value
    return scratch.i64 & 0xFFFFFFFFFFFFFFFF


def _float_from_bits(bits: int, valtype: ValType) -> float:
    scratch = ffi.new("wasmtime_val_raw_t *")
    if valtype is ValType.f32:
        scratch.i32 = _signed(bits, 32)
        return scratch.f32
    scratch.i64 = _signed(bits, 64)
    return scratch.f64


class Val:
    """A wasm value with an explicit type.

    Plain Python values are enough for most calls; ``Val`` is for exact bit
    patterns (signalling NaNs, for instance) and for naming a value's type::

        Val(ValType.f32, 1.5)
        Val.from_bits(ValType.f32, 0x7FA00000)   # a signalling NaN, kept bit for bit
        func.call_vals(...)                      # results as Val, with .bits

    Numeric values keep their bit pattern (``bits``, unsigned); ``value`` is the
    Python value (signed int, float, int for v128, object for references).
    """

    __slots__ = ("type", "_payload")

    def __init__(self, type: ValType | str, value: Any) -> None:
        self.type = ValType.parse(type)
        if self.type in (ValType.f32, ValType.f64):
            self._payload = _float_bits(_real(value, self.type), self.type)
        elif self.type in _INT_RANGES:
            self._payload = _integer(value, self.type)
        else:
            self._payload = value

    @classmethod
    def from_bits(cls, type: ValType | str, bits: int) -> "Val":
        """A numeric value from its bit pattern (an unsigned or signed int of the type's width)."""
        valtype = ValType.parse(type)
        width = {ValType.f32: 32, ValType.f64: 64}.get(valtype) or _INT_RANGES.get(valtype)
        if width is None:
            raise TypeError(f"{valtype} has no bit pattern")
        val = cls.__new__(cls)
        val.type = valtype
        val._payload = _integer(bits, {32: ValType.i32, 64: ValType.i64, 128: ValType.v128}[width])
        return val

    @property
    def bits(self) -> int:
        """The unsigned bit pattern of a numeric value."""
        if self.type.is_reference:
            raise TypeError(f"{self.type} values have no bit pattern")
        return self._payload

    @property
    def value(self) -> Any:
        if self.type is ValType.i32:
            return _signed(self._payload, 32)
        if self.type is ValType.i64:
            return _signed(self._payload, 64)
        if self.type in (ValType.f32, ValType.f64):
            return _float_from_bits(self._payload, self.type)
        return self._payload

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Val):
            return NotImplemented
        if self.type.is_reference:
            return self.type is other.type and self._payload is other._payload
        return self.type is other.type and self._payload == other._payload

    def __hash__(self) -> int:
        return hash((self.type, id(self._payload) if self.type.is_reference else self._payload))

    def __repr__(self) -> str:
        if self.type in (ValType.f32, ValType.f64):
            return f"Val({self.type}, {self.value!r}, bits={self._payload:#x})"
        return f"Val({self.type}, {self.value!r})"


# --- externref: wasm holds a reference to the Python object itself, listed by its store (so that
# Python's GC sees it) and released after wasmtime's GC drops it, through a C finalizer (safe at
# interpreter exit, unlike a Python callback).

_EXTERNREF_DROP = ffi.cast("void (*)(void *)", externref_drop_address())


def _new_externref(store, obj: Any, out) -> None:
    # On failure wasmtime has already run the finalizer, which releases the reference.
    data = ffi.cast("void *", store._handle.keep_for_externref(obj))
    if not lib.wasmtime_externref_new(store._context(), data, _EXTERNREF_DROP, out):
        raise WasmError("cannot allocate an externref: the store's GC heap is exhausted")


def _externref_object(store, ref) -> Any:
    """The Python object a (rooted) externref holds; an AnyRef for one that wraps a wasm GC reference."""
    data = lib.wasmtime_externref_data(store._context(), ref)
    if data == ffi.NULL:  # made by extern.convert_any
        return AnyRef._take(store, _bridge_call(store, "to_any", ref))
    return kept_object(int(ffi.cast("uintptr_t", data)))


# --- externref <-> anyref: wasm converts between them (any.convert_extern, extern.convert_any), the
# C API cannot, so each store that needs it gets a tiny helper instance. Python objects then travel
# as anyref too, and GC references as externref.

_BRIDGE_WAT = """(module
  (func (export "to_any") (param externref) (result anyref) local.get 0 any.convert_extern)
  (func (export "to_extern") (param anyref) (result externref) local.get 0 extern.convert_any))"""

# For each helper: its argument's kind and union member, and its result's (with the C type to hold it).
_BRIDGE = {
    "to_any": ("WASMTIME_EXTERNREF", "externref", "anyref", "wasmtime_anyref_t *"),
    "to_extern": ("WASMTIME_ANYREF", "anyref", "externref", "wasmtime_externref_t *"),
}


def _bridge_call(store, name: str, ref):
    """Calls helper ``name`` on a rooted reference (borrowed); returns the result, rooted (owned).

    The references stay rooted throughout (wasmtime's checked call roots its results), so no
    collection can free them, whatever Python code runs meanwhile."""
    kind, member, result_member, result_type = _BRIDGE[name]
    argument, result = ffi.new("wasmtime_val_t *"), ffi.new("wasmtime_val_t *")
    trap, error = ffi.new("wasm_trap_t **"), ffi.new("wasmtime_error_t **")
    with _unmetered(store):
        bridge = store._gc_bridge
        if bridge is None:
            from ._instance import Instance
            from ._module import Module

            engine = store.engine
            if engine._gc_bridge_module is None:
                engine._gc_bridge_module = Module(_BRIDGE_WAT, engine)
            store._allow_helper_instance()
            bridge = store._gc_bridge = Instance(engine._gc_bridge_module, {}, store).exports
        argument.kind = getattr(lib, kind)
        clone = lib.wasmtime_externref_clone if member == "externref" else lib.wasmtime_anyref_clone
        clone(ref, ffi.addressof(argument.of, member))
        try:
            status = lib.wasmpy_call_checked(store._context(), bridge[name]._func, argument, 1, result, 1,
                                             store._handle.stack_needed, trap, error)
        finally:
            lib.wasmtime_val_unroot(argument)
    if status:
        raise store._failure(status, trap, error)
    out = ffi.new(result_type)
    out[0] = getattr(result.of, result_member)  # the root moves to ``out``
    return out


@contextlib.contextmanager
def _unmetered(store) -> Iterator[None]:
    """Runs the block (a helper call) on none of the store's fuel and past its deadline: converting a
    value is not the guest's computation, and reading a value must not run out of fuel or time."""
    handle = store._handle
    deadline, handle.deadline_ns = handle.deadline_ns, 0
    fuel = None
    if store.engine.config.get("consume_fuel"):
        fuel = ffi.new("uint64_t *")
        lib.wasmtime_context_get_fuel(store._context(), fuel)
        lib.wasmtime_context_set_fuel(store._context(), 2**63)
    try:
        yield
    finally:
        handle.deadline_ns = deadline
        if fuel is not None:
            lib.wasmtime_context_set_fuel(store._context(), fuel[0])


def _check_func(store, value: Any):
    from ._func import Func

    if not isinstance(value, Func):
        raise TypeError(f"expected a wasmpy.Func or None for funcref, got {type(value).__name__}")
    if value._store is not store:
        raise WasmError("the function belongs to a different store")
    return value


# --- raw values (wasmtime_val_raw_t) of numbers and v128: calls without references, both ways.
# Signatures with references take wasmtime's checked paths (wasmtime_val_t), which keep every
# reference rooted while Python code runs and check the types of what a host function returns.

def write_raw(valtype: ValType, raw, value: Any) -> None:
    """Stores the number ``value`` into the raw slot ``raw``."""
    if isinstance(value, Val):
        if value.type is not valtype:
            raise TypeError(f"expected {valtype}, got a Val of type {value.type}")
        return _write_bits(valtype, raw, value._payload)
    if valtype is ValType.f32:
        raw.f32 = _real(value, valtype)
    elif valtype is ValType.f64:
        raw.f64 = _real(value, valtype)
    else:
        _write_bits(valtype, raw, _integer(value, valtype))


def _write_bits(valtype: ValType, raw, bits: int) -> None:
    if valtype in (ValType.i32, ValType.f32):
        raw.i32 = _signed(bits, 32)
    elif valtype in (ValType.i64, ValType.f64):
        raw.i64 = _signed(bits, 64)
    else:
        ffi.memmove(raw.v128, bits.to_bytes(16, "little"), 16)


def _object_as_anyref(store, value: Any) -> AnyRef:
    ref = ffi.new("wasmtime_externref_t *")
    _new_externref(store, value, ref)
    try:
        return AnyRef._take(store, _bridge_call(store, "to_any", ref))
    finally:
        lib.wasmtime_externref_unroot(ref)


def read_raw(valtype: ValType, raw) -> Any:
    """The Python number in the raw slot ``raw``."""
    if valtype is ValType.i32:
        return raw.i32
    if valtype is ValType.i64:
        return raw.i64
    if valtype is ValType.f32:
        return raw.f32
    if valtype is ValType.f64:
        return raw.f64
    return int.from_bytes(ffi.buffer(raw.v128, 16), "little")


def _anyref_value(store, anyref: AnyRef) -> Any:
    """A Python object that wasm converted to anyref comes back as itself; GC objects as AnyRef."""
    if anyref.kind != "any":
        return anyref
    ref = _bridge_call(store, "to_extern", anyref._ref)
    try:
        return _externref_object(store, ref)
    finally:
        lib.wasmtime_externref_unroot(ref)


def read_raw_val(valtype: ValType, raw) -> Val:
    """Like read_raw, but keeps exact bits in a Val."""
    if valtype in (ValType.i32, ValType.f32):
        bits = raw.i32 & 0xFFFFFFFF
    elif valtype in (ValType.i64, ValType.f64):
        bits = raw.i64 & 0xFFFFFFFFFFFFFFFF
    else:
        bits = int.from_bytes(ffi.buffer(raw.v128, 16), "little")
    return Val.from_bits(valtype, bits)


# --- wasmtime_val_t, used by globals and tables.

_VAL_KIND = {
    ValType.i32: lib.WASMTIME_I32,
    ValType.i64: lib.WASMTIME_I64,
    ValType.f32: lib.WASMTIME_F32,
    ValType.f64: lib.WASMTIME_F64,
    ValType.v128: lib.WASMTIME_V128,
}
_FAMILY_VAL_KIND = {"func": lib.WASMTIME_FUNCREF, "extern": lib.WASMTIME_EXTERNREF, "any": lib.WASMTIME_ANYREF,
                    "exn": lib.WASMTIME_EXNREF}
_FROM_VAL_KIND = {kind: valtype for valtype, kind in _VAL_KIND.items()}
_FROM_VAL_KIND.update({lib.WASMTIME_FUNCREF: ValType.funcref, lib.WASMTIME_EXTERNREF: ValType.externref,
                       lib.WASMTIME_ANYREF: ValType.anyref, lib.WASMTIME_EXNREF: ValType.exnref})


@contextlib.contextmanager
def val_of(store, valtype: ValType, value: Any) -> Iterator[Any]:
    """``with val_of(store, valtype, value) as val:`` a ``wasmtime_val_t *`` holding ``value``,
    whose reference (if any) is released after the block."""
    val = to_val(store, valtype, value)
    try:
        yield val
    finally:
        lib.wasmtime_val_unroot(val)


def to_val(store, valtype: ValType, value: Any):
    """A new ``wasmtime_val_t *`` holding ``value``, which may own a root (see val_of)."""
    val = ffi.new("wasmtime_val_t *")
    if isinstance(value, Val):
        if value.type is not valtype:
            raise TypeError(f"expected {valtype}, got a Val of type {value.type}")
        if valtype.is_reference:
            value = value._payload
    if not valtype.is_reference:
        val.kind = _VAL_KIND[valtype]
        write_raw(valtype, ffi.cast("wasmtime_val_raw_t *", ffi.addressof(val.of)), value)
        return val
    _check_null_only(valtype, value)
    family = _FAMILY[valtype]
    if family not in _FAMILY_VAL_KIND:
        raise NotImplementedError(f"{valtype} values are not supported in globals and tables yet")
    val.kind = _FAMILY_VAL_KIND[family]
    if value is None:
        return val  # store_id 0 is the null reference
    if family == "any":
        anyref = value if isinstance(value, AnyRef) else _object_as_anyref(store, value)
        _check_kind(store, valtype, anyref)
        lib.wasmtime_anyref_clone(anyref._ref, ffi.addressof(val.of, "anyref"))
    elif family == "extern" and isinstance(value, AnyRef):  # a GC reference, as an externref
        _check_kind(store, valtype, value)
        val.of.externref = _bridge_call(store, "to_extern", value._ref)[0]  # the root moves to ``val``
    elif family == "extern":
        _new_externref(store, value, ffi.addressof(val.of, "externref"))
    elif family == "exn":
        from ._tag import new_exnref

        new_exnref(store, value, ffi.addressof(val.of, "exnref"))
    else:
        val.of.funcref = _check_func(store, value)._func[0]
    return val


# What each abstract GC reference type holds (AnyRef.kind): wasmtime checks what reaches wasm,
# this explains the mistake first.
_KINDS = {ValType.i31ref: ("i31",), ValType.structref: ("struct",), ValType.arrayref: ("array",),
          ValType.eqref: ("i31", "struct", "array")}


def _check_kind(store, valtype: ValType, anyref: AnyRef) -> None:
    if anyref.store is not store:
        raise TypeError("the reference belongs to a different store")
    kinds = _KINDS.get(valtype)
    if kinds is not None and anyref.kind not in kinds:
        shown = "a Python object" if anyref.kind == "any" else f"a {anyref.kind} reference"
        raise TypeError(f"expected {' or '.join(kinds)} reference for {valtype}, got {shown}")


def from_val(store, val, exact: bool = False, declared: Any = None, owned: bool = True) -> Any:
    """The Python value (or with ``exact``, the Val) of a ``wasmtime_val_t *``; unroots it if ``owned``.

    ``declared`` is the ValType the value was declared with (a Val of an eqref global is
    an eqref Val, though wasmtime hands the value over as an anyref)."""
    try:
        valtype = _FROM_VAL_KIND.get(val.kind)
        if valtype is None:
            raise NotImplementedError(f"wasm values of kind {val.kind} are not supported yet")
        if valtype is ValType.externref:
            value = None if val.of.externref.store_id == 0 else _externref_object(
                store, ffi.addressof(val.of, "externref"))
        elif valtype is ValType.anyref:
            value = None
            if val.of.anyref.store_id != 0:
                ref = ffi.new("wasmtime_anyref_t *")
                lib.wasmtime_anyref_clone(ffi.addressof(val.of, "anyref"), ref)
                value = _anyref_value(store, AnyRef._take(store, ref))
        elif valtype is ValType.funcref:
            from ._func import Func

            value = None if val.of.funcref.store_id == 0 else Func._from_c(
                store, ffi.addressof(val.of, "funcref"))
        elif valtype is ValType.exnref:
            from ._tag import exception_from_exnref

            value = None if val.of.exnref.store_id == 0 else exception_from_exnref(
                store, ffi.addressof(val.of, "exnref"))
        else:
            raw = ffi.cast("wasmtime_val_raw_t *", ffi.addressof(val.of))
            return read_raw_val(valtype, raw) if exact else read_raw(valtype, raw)
        return Val(declared or valtype, value) if exact else value
    finally:
        if owned:
            lib.wasmtime_val_unroot(val)


# --- csrc/values.c converts numbers, v128, null references, Python objects as externref or anyref, and
# funcrefs in C, and hands each other value to these (the one place where each conversion and its
# errors live).

def _write_val(store, valtype: ValType, value: Any, address: int) -> None:
    """to_val, for the ``wasmtime_val_t`` at ``address`` (the root, if any, moves there)."""
    ffi.cast("wasmtime_val_t *", address)[0] = to_val(store, valtype, value)[0]


def _read_val(store, address: int, exact: bool, declared: Any, owned: bool) -> Any:
    """from_val, of the ``wasmtime_val_t`` at ``address``."""
    return from_val(store, ffi.cast("wasmtime_val_t *", address), exact, declared, owned)


def _value_refused(address: int) -> None:
    """Raises what wasmtime's refusal to store a value (the owned ``wasmtime_error_t`` at ``address``) means."""
    check_value(ffi.cast("wasmtime_error_t *", address))


values_configure(store_handle=StoreHandle, val=Val, valtype=ValType, anyref=AnyRef, kept_object=kept_object,
                 externref_drop=externref_drop_address(), write_val=_write_val, read_val=_read_val,
                 value_refused=_value_refused)
