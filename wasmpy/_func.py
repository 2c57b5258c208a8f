"""Func: wasm functions called from Python, and Python functions called from wasm."""

from __future__ import annotations

import inspect
import weakref
from typing import Any, Callable, Dict, List, NamedTuple, NoReturn, Optional, Tuple, Union

from ._checks import require_instance
from ._engine import Engine
from ._errors import LinkError, Trap, WasmError, WasmException
from ._ffi import ffi, lib
from ._native import (Caller, FuncCall, HostFunc, bind_func, checked_host_trampoline_address, host_trampoline_address,
                      make_host_func, values_configure, vectorcall_subclass)
from ._ownership import Owner, init_once
from ._store import Store
from ._tag import throw_into_wasm
from ._types import FuncType, ValType, annotation_result_types, annotation_type, take_type
from ._values import check_reference, from_val, read_raw, read_raw_val, to_val, val_of, write_raw

__all__ = ["Func"]


@vectorcall_subclass  # called through vectorcall on every Python (a class statement: from 3.12 on)
class Func(Caller, Owner):
    """A WebAssembly function, callable from Python.

    ``Func(store, fn, type=None)`` makes a Python callable into a wasm function
    that wasm can import or hold in a table. Its type is ``type`` (a FuncType)
    or, failing that, taken from ``fn``'s annotations (``Annotated[int, 'i32']``,
    ``Annotated[float, 'f64']``..., or 'i32', 'i64', 'f32', 'f64', 'v128',
    'funcref', 'externref' or ValType members; the return annotation is one
    type, ``tuple[...]`` of types, or None).

    Calling a Func converts and checks the arguments (i32 takes ints from
    -2**31 to 2**32-1, i64 from -2**63 to 2**64-1, f32/f64 take int or float,
    externref any object, funcref a Func or None), and returns None, one value,
    or a tuple of values. Integer results come back signed. Signatures of
    numbers only are called without leaving C (the ``Caller`` base class);
    the rest convert in C too (``FuncCall``, csrc/values.c), which hands
    what it does not convert, and every error, to the Python path here.
    """

    __slots__ = ("_store", "_calls", "type", "name", "__weakref__")
    _store: Store  # these three set in C (make_host_func, bind_func)
    _calls: FuncCall
    type: FuncType
    name: str

    def __setattr__(self, name: str, value: Any) -> None:
        # Set once, in C: calls are made for the type and store the function was bound with, and
        # Python's path sizes the buffers of wasmtime's unchecked calls from ``type``.
        if name in ("_store", "_calls", "type"):
            raise AttributeError(f"cannot set {name!r}: a Func's type and store do not change")
        object.__setattr__(self, name, value)

    def __init__(self, store: Store, fn: Callable[..., Any], type: Optional[FuncType] = None) -> None:
        init_once(self, "_store")
        require_instance(store, Store, "store")
        self._make_host(store, fn, _host_type(fn, type))

    @classmethod
    def _for_import(cls, store: Store, fn: Callable[..., Any], functype: FuncType, where: str) -> "Func":
        """A host function for the import ``where`` of type ``functype``; LinkError if ``fn`` does not fit."""
        _check_annotations_once(fn, functype, where)
        self = cls.__new__(cls)
        self._make_host(store, fn, functype)
        return self

    def _make_host(self, store: Store, fn: Callable[..., Any], functype: FuncType) -> None:
        """Makes ``fn`` a host function of ``store`` and binds this Func to it, in one C call: native.c's
        trampolines call ``fn`` (checked ones, through wasmtime_func_new, for signatures with
        references), and HostCall (csrc/values.c) does the conversions they leave, with the
        _HostFunction as its Python path."""
        signature = _host_signature(store.engine, functype)
        make_host_func(self, store, fn, functype, signature.address, signature.params, signature.results,
                       _HostFunction(store, fn, functype), getattr(fn, "__name__", "host function"))

    @classmethod
    def _from_c(cls, store: Store, func, name: str = "wasm function", functype: Optional[FuncType] = None) -> "Func":
        """Wraps a ``wasmtime_func_t`` (copied) of ``store``, whose type is asked unless given."""
        if functype is None:
            functype = _func_type(store, int(ffi.cast("uintptr_t", func)))
        self = cls.__new__(cls)
        self._bind(store, func, functype, name)
        return self

    def _bind(self, store: Store, func, functype: FuncType, name: str) -> None:
        """Sets the attributes and the call paths for the ``wasmtime_func_t *`` ``func`` (copied): the
        numeric fast path (Caller) for exactly known signatures of numbers, which trusts the types it
        is given, and FuncCall for everything it does not take (csrc/values.c, which does this for
        funcref results too)."""
        bind_func(self, store, int(ffi.cast("uintptr_t", func)), functype, name)

    @property
    def _func(self) -> Any:
        """The ``wasmtime_func_t *`` (valid while this Func lives)."""
        return ffi.cast("wasmtime_func_t *", self._calls.address)

    @property
    def store(self) -> Store:
        return self._store

    def _call_slow(self, *args: Any, **keywords: Any) -> Any:
        """The Python path of ``__call__``: every signature, Val arguments, and every error."""
        if keywords:
            raise TypeError(f"{self.name}() takes no keyword arguments (given: {', '.join(keywords)}): "
                            f"wasm parameters are positional ({self.type})")
        results = self._call_generic(args, exact=False)
        if not results:
            return None
        return results[0] if len(results) == 1 else results

    def call_vals(self, *args: Any) -> Tuple[Any, ...]:
        """Calls with arguments that may be :class:`Val` (exact bits), and returns every result as a Val."""
        return self._calls.call_vals(self, *args)

    def _call_vals_slow(self, *args: Any) -> Tuple[Any, ...]:
        """The Python path of :meth:`call_vals`."""
        return self._call_generic(args, exact=True)

    def _call_generic(self, args: Tuple[Any, ...], exact: bool) -> Tuple[Any, ...]:
        params, results = self.type.params, self.type.results
        if len(args) != len(params):
            raise self._arity_error(args)
        if self.type._has_references:
            return self._call_checked(args, exact)
        store = self._store
        read = read_raw_val if exact else read_raw
        buf = ffi.new("wasmtime_val_raw_t[]", max(len(params), len(results), 1))
        trap, error = ffi.new("wasm_trap_t **"), ffi.new("wasmtime_error_t **")
        try:
            for index, (valtype, arg) in enumerate(zip(params, args)):
                write_raw(valtype, buf[index], arg)
        except (TypeError, OverflowError):
            raise self._argument_error(args) from None
        with store._lock:
            status = lib.wasmpy_call(store._context(), self._func, buf, len(buf), store._handle.stack_needed, trap,
                                     error)
            try:
                store._handle.flush_output()
            finally:
                if status:
                    raise store._failure(status, trap, error)
        return tuple(read(valtype, buf[index]) for index, valtype in enumerate(results))

    def _call_checked(self, args: Tuple[Any, ...], exact: bool) -> Tuple[Any, ...]:
        """Calls through wasmtime's checked path: for typed references, which ValType only
        approximates, wasmtime verifies that each argument has the right type."""
        params, results = self.type.params, self.type.results
        store = self._store
        arguments = ffi.new("wasmtime_val_t[]", max(len(params), 1))
        outputs = ffi.new("wasmtime_val_t[]", max(len(results), 1))
        trap, error = ffi.new("wasm_trap_t **"), ffi.new("wasmtime_error_t **")
        with store._lock:
            made = 0
            try:
                for index, (valtype, arg) in enumerate(zip(params, args)):
                    try:
                        with val_of(store, valtype, arg) as val:
                            lib.wasmtime_val_clone(val, ffi.addressof(arguments, index))
                    except (TypeError, OverflowError):
                        raise self._argument_error(args) from None
                    made += 1
                status = lib.wasmpy_call_checked(store._context(), self._func, arguments, len(params), outputs,
                                                 len(results), store._handle.stack_needed, trap, error)
            finally:
                for index in range(made):
                    lib.wasmtime_val_unroot(ffi.addressof(arguments, index))
            try:
                store._handle.flush_output()
            finally:
                if status:
                    failure = store._failure(status, trap, error)
                    raise TypeError(f"{self.name}(): {failure} ({self.type})") if status == 2 and isinstance(
                        failure, Trap) and "type mismatch" in failure.message else failure
                # The results stay rooted until read, whatever Python code ran meanwhile.
                values = _read_vals(store, outputs, len(results), exact)
            return values

    def _call_failed(self, status: int, trap: int, error: int, checked: bool) -> NoReturn:
        """Raises the exception of a call FuncCall made that failed (``status`` 1: the trap, 2: the
        error at its address), as the Python path does: after delivering the WASI output written,
        with the store's lock held."""
        store = self._store
        try:
            store._handle.flush_output()
        finally:
            failure = store._call_failure(store._handle.take_pending(), status, trap, error)
            if checked and status == 2 and isinstance(failure, Trap) and "type mismatch" in failure.message:
                raise TypeError(f"{self.name}(): {failure} ({self.type})")
            raise failure

    def _arity_error(self, args: Tuple[Any, ...]) -> TypeError:
        count = len(self.type.params)
        return TypeError(f"{self.name}() takes {count} argument{'s' if count != 1 else ''} "
                         f"({self.type}), but {len(args)} were given")

    def _argument_error(self, args: Tuple[Any, ...]) -> Exception:
        scratch = ffi.new("wasmtime_val_raw_t *")
        for index, (valtype, arg) in enumerate(zip(self.type.params, args)):
            try:
                if valtype.is_reference:
                    check_reference(self._store, valtype, arg)
                else:
                    write_raw(valtype, scratch[0], arg)
            except (TypeError, OverflowError) as error:
                return type(error)(f"{self.name}() argument {index + 1}: {error} ({self.type})")
        return TypeError(f"{self.name}(): invalid arguments {args!r} ({self.type})")

    def __repr__(self) -> str:
        return f"<wasmpy.Func {self.name}: {self.type}>"


def _read_vals(store: Store, vals, count: int, exact: bool) -> Tuple[Any, ...]:
    """The Python values of ``count`` owned ``wasmtime_val_t``: each is unrooted, even if one fails."""
    values = []
    try:
        for index in range(count):
            values.append(from_val(store, ffi.addressof(vals, index), exact))
    finally:
        for index in range(len(values) + 1, count):
            lib.wasmtime_val_unroot(ffi.addressof(vals, index))
    return tuple(values)


# The types of functions wasm handed over, by the function's wasmtime_func_t: a store id, never reused,
# and a VMFuncRef that lives as long as its store (asking wasmtime costs a hundred times a lookup).
_FUNC_TYPES: Dict[bytes, FuncType] = {}
_FUNC_TYPES_KEPT = 4096  # beyond that many functions, start over


def _func_type(store: Store, address: int) -> FuncType:
    """The type of the ``wasmtime_func_t`` of ``store`` at ``address``, asked of wasmtime once."""
    func = ffi.cast("wasmtime_func_t *", address)
    key = ffi.buffer(func)[:]
    functype = _FUNC_TYPES.get(key)
    if functype is None:
        functype = take_type(lib.wasmtime_func_type(store._context(), func), FuncType, lib.wasm_functype_delete)
        if len(_FUNC_TYPES) >= _FUNC_TYPES_KEPT:
            _FUNC_TYPES.clear()
        _FUNC_TYPES[key] = functype
    return functype


class _HostSignature(NamedTuple):
    c_type: Any  # wasm_functype_t *, freed with this
    address: int  # of c_type
    params: bytes
    results: bytes


_HOST_SIGNATURES_KEPT = 1024  # per engine: beyond that many distinct signatures, start over


def _host_signature(engine: Engine, functype: FuncType) -> _HostSignature:
    """The C type and value kinds of host functions of type ``functype``, made once per engine.

    One ``wasm_functype_t`` per engine: wasmtime registers it with the first
    engine that uses it, and it must not meet another.
    """
    cache = engine._host_signatures
    signature = cache.get(functype)
    if signature is None:
        if len(cache) >= _HOST_SIGNATURES_KEPT:
            cache.clear()
        c_type = functype._to_c()
        signature = cache[functype] = _HostSignature(c_type, int(ffi.cast("uintptr_t", c_type)),
                                                     *functype._value_kinds())
    return signature


# --- host functions: Python called from wasm.

class _HostFunction:
    """The Python path of a host function: the conversions HostCall (csrc/values.c) hands over, and
    every error."""

    __slots__ = ("_store", "fn", "params", "results")

    def __init__(self, store: Store, fn: Callable[..., Any], functype: FuncType) -> None:
        # Weakly: the store keeps this object (through its handle), and a reference back would make
        # every store with a host function a cycle, freed only by the cyclic GC. Wasm runs only
        # through a Func of the store, which holds the store.
        self._store = weakref.ref(store)
        self.fn = fn
        self.params = functype.params
        self.results = functype.results

    @property
    def store(self) -> Store:
        store = self._store()
        if store is None:
            raise WasmError("the store of this host function is gone")
        return store

    def invoke_checked(self, args_address: int, results_address: int) -> None:
        """Calls the function with the ``wasmtime_val_t`` arguments at ``args_address`` (borrowed:
        wasmtime keeps them rooted) and stores its results at ``results_address`` (owned by wasmtime
        once stored; it checks their types)."""
        store = self.store
        args = ffi.cast("wasmtime_val_t *", args_address)
        result = self.fn(*[from_val(store, args + i, owned=False) for i in range(len(self.params))])
        self.write_checked_results(result, results_address)

    def write_checked_results(self, result: Any, results_address: int) -> None:
        """Checks the results of the function and stores them, as ``wasmtime_val_t``, at
        ``results_address``."""
        store = self.store
        vals: List[Any] = []
        try:
            self._convert_results(result, lambda index, valtype, value: vals.append(to_val(store, valtype, value)))
        except BaseException:
            for val in vals:
                lib.wasmtime_val_unroot(val)
            raise
        results = ffi.cast("wasmtime_val_t *", results_address)
        for index, val in enumerate(vals):
            results[index] = val[0]  # the root moves to wasmtime

    def rethrow(self, exception: WasmException) -> Optional[int]:
        """The trap (its address) that throws ``exception`` into the calling wasm code, or None if its
        tag is not of this store (it then passes through wasm as any Python exception does)."""
        return throw_into_wasm(self.store, exception)

    def _result_tuple(self, result: Any) -> Tuple[Any, ...]:
        count = len(self.results)
        if count == 0:
            if result is not None:
                raise TypeError(f"host function {_name(self.fn)} has no results, but returned {result!r}")
            return ()
        if count == 1:
            return (result,)
        if not isinstance(result, (tuple, list)) or len(result) != count:
            raise TypeError(f"host function {_name(self.fn)} must return a tuple of {count} values, "
                            f"got {result!r}")
        return tuple(result)

    def _convert_results(self, result: Any, convert: Callable[[int, ValType, Any], None]) -> None:
        """Calls ``convert(index, valtype, value)`` for each result; its TypeError or OverflowError
        comes back naming the result."""
        for index, (valtype, value) in enumerate(zip(self.results, self._result_tuple(result))):
            try:
                convert(index, valtype, value)
            except (TypeError, OverflowError) as error:
                raise type(error)(f"host function {_name(self.fn)} result {index + 1}: {error}") from None

    def write_results(self, result: Any, address: int) -> None:
        """Checks the (numeric) results of the function and stores them at ``address``."""
        values = ffi.cast("wasmtime_val_raw_t *", address)
        self._convert_results(result, lambda index, valtype, value: write_raw(valtype, values[index], value))


def _name(fn: Any) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)


# --- types from annotations

def annotation_matches(annotated: Union[ValType, type, None], declared: ValType) -> bool:
    if annotated is None or annotated is declared:
        return True
    if annotated is int:
        return declared in (ValType.i32, ValType.i64)
    if annotated is float:
        return declared in (ValType.f32, ValType.f64)
    return False


def _annotations(signature: inspect.Signature) -> Tuple[List[Tuple[str, Any]], Any]:
    params = [(p.name, annotation_type(p.annotation)) for p in signature.parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return params, annotation_result_types(signature.return_annotation)


def check_annotations(fn: Callable[..., Any], functype: FuncType, where: str) -> None:
    """Raises LinkError if ``fn``'s annotations contradict ``functype`` (absent ones match anything)."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins without a signature: nothing to check
        return
    try:
        params, results = _annotations(signature)
    except TypeError as error:  # an annotation that names no wasm type
        raise LinkError(f"{where}: {error}") from None
    annotated = [t for _, t in params]
    low, high = _positional_range(signature)
    if not low <= len(functype.params) <= high:
        takes = f"{low}" if low == high else f"{low} to {high}" if high < 2**31 else f"at least {low}"
        raise LinkError(f"{where} takes {takes} positional parameters, but the import is {functype}")
    mismatch = any(not annotation_matches(a, d) for a, d in zip(annotated, functype.params))
    if results is not None:
        mismatch = mismatch or len(results) != len(functype.results) or any(
            not annotation_matches(a, d) for a, d in zip(results, functype.results))
    if mismatch:
        shown = ", ".join(_show(t) for t in annotated)
        shown_results = "" if results is None else " -> " + ", ".join(_show(t) for t in results)
        raise LinkError(f"{where} is annotated ({shown}){shown_results}, but the import is declared "
                        f"{functype}")


# Functions already found to fit a type: instantiating a module again checks its imports again. The
# FuncTypes (a module's, the same objects at every instantiation) are kept by identity: hashing one
# hashes each of its ValTypes, in Python.
_FITTING: "weakref.WeakKeyDictionary[Callable[..., Any], Dict[int, FuncType]]" = weakref.WeakKeyDictionary()
_FITTING_KEPT = 64  # types per function: beyond that many, start over


def _check_annotations_once(fn: Callable[..., Any], functype: FuncType, where: str) -> None:
    """check_annotations, remembered for functions that can be weakly referenced."""
    try:
        fitting = _FITTING.get(fn)
    except TypeError:  # not weakly referenceable (e.g. some builtins) or unhashable
        check_annotations(fn, functype, where)
        return
    if fitting is not None and fitting.get(id(functype)) is functype:
        return
    check_annotations(fn, functype, where)
    try:
        fitting = _FITTING.setdefault(fn, {})
    except TypeError:
        return
    if len(fitting) >= _FITTING_KEPT:
        fitting.clear()
    fitting[id(functype)] = functype


def _positional_range(signature: inspect.Signature) -> Tuple[int, int]:
    """How many positional arguments a function accepts, at least and at most."""
    parameters = signature.parameters.values()
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    low = sum(1 for p in positional if p.default is p.empty)
    if any(p.kind == p.VAR_POSITIONAL for p in parameters):
        return low, 2**31
    return low, len(positional)


def _show(annotated: Any) -> str:
    if annotated is None:
        return "?"
    return annotated.__name__ if isinstance(annotated, type) and not isinstance(annotated, ValType) else str(annotated)


_NAME_THE_TYPE = ("annotate it with its wasm type, such as Annotated[int, 'i32'] or Annotated[float, 'f64'] "
                  "(int and float leave the width open) or 'i32', or pass type=FuncType(...)")


def _host_type(fn: Callable[..., Any], functype: Optional[FuncType]) -> FuncType:
    if not callable(fn):
        raise TypeError(f"Func needs a callable, not {type(fn).__name__}")
    if functype is not None:
        if not isinstance(functype, FuncType):
            raise TypeError(f"type must be a wasmpy.FuncType, not {type(functype).__name__}")
        _check_annotations_once(fn, functype, _name(fn))
        return functype
    params, results = _annotations(inspect.signature(fn))
    for name, annotated in params:
        if not isinstance(annotated, ValType):
            raise TypeError(f"cannot tell the wasm type of parameter {name!r} of {_name(fn)}: {_NAME_THE_TYPE}")
    for annotated in results or ():
        if not isinstance(annotated, ValType):
            raise TypeError(f"cannot tell the wasm result type of {_name(fn)}: {_NAME_THE_TYPE}")
    return FuncType([t for _, t in params], results or ())


values_configure(func=Func, call=Func._call_slow, call_vals=Func._call_vals_slow, call_failed=Func._call_failed,
                 func_types=_FUNC_TYPES, func_type=_func_type, host_func=HostFunc,
                 host_trampolines=(host_trampoline_address(), checked_host_trampoline_address()))
