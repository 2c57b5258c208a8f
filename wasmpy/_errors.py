"""Exceptions, and the one place where wasmtime errors and traps become them."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

from ._ffi import ffi, lib

if TYPE_CHECKING:
    from ._tag import Tag

__all__ = ["WasmError", "CompileError", "LinkError", "Trap", "ExitTrap", "WasmException", "TrapCode", "Frame"]


class WasmError(Exception):
    """Base class of every error wasmpy raises about WebAssembly."""


class CompileError(WasmError):
    """A module is malformed or invalid; the message is the engine's."""


class LinkError(WasmError, ImportError):
    """An import is missing or has the wrong type."""


class TrapCode(enum.IntEnum):
    """Why WebAssembly code trapped (wasmtime's ``wasmtime_trap_code_t``)."""

    STACK_OVERFLOW = 0
    MEMORY_OUT_OF_BOUNDS = 1
    HEAP_MISALIGNED = 2
    TABLE_OUT_OF_BOUNDS = 3
    INDIRECT_CALL_TO_NULL = 4
    BAD_SIGNATURE = 5
    INTEGER_OVERFLOW = 6
    INTEGER_DIVISION_BY_ZERO = 7
    BAD_CONVERSION_TO_INTEGER = 8
    UNREACHABLE = 9
    INTERRUPT = 10
    OUT_OF_FUEL = 11
    ATOMIC_WAIT_NON_SHARED_MEMORY = 12
    NULL_REFERENCE = 13
    ARRAY_OUT_OF_BOUNDS = 14
    ALLOCATION_TOO_LARGE = 15
    CAST_FAILURE = 16
    CANNOT_ENTER_COMPONENT = 17
    NO_ASYNC_RESULT = 18
    UNHANDLED_TAG = 19
    CONTINUATION_ALREADY_CONSUMED = 20
    DISABLED_OPCODE = 21

    # Python 3.11 made an IntEnum print as its number; a trap code reads better by name on every version.
    def __str__(self) -> str:
        return f"{type(self).__name__}.{self.name}"

    def __format__(self, spec: str) -> str:
        return str(self) if not spec else int.__format__(self, spec)


@dataclass(frozen=True)
class Frame:
    """One frame of a wasm backtrace."""

    module: Optional[str]
    function: Optional[str]
    func_index: int
    func_offset: Optional[int]  # None where wasmtime does not know it
    module_offset: Optional[int]

    def __str__(self) -> str:
        module = self.module or "<module>"
        function = self.function or f"<func {self.func_index}>"
        where = "?" if self.module_offset is None else f"{self.module_offset:#x}"
        return f"{module}!{function} @ {where}"


class Trap(WasmError):
    """WebAssembly code trapped.

    ``code`` is a :class:`TrapCode`, or None when the trap has no code (for
    example one raised by the embedder); ``frames`` is the wasm backtrace,
    innermost first.
    """

    code: Optional[TrapCode]

    def __init__(self, message: str, code: Optional[TrapCode] = None,
                 frames: Optional[List[Frame]] = None) -> None:
        message = _cause(message)
        super().__init__(message)
        self.message = message
        self.code = code
        self.frames = frames or []

    def __str__(self) -> str:
        if not self.frames:
            return self.message
        return self.message + "\nwasm backtrace:\n" + "\n".join(f"  {frame}" for frame in self.frames)


class ExitTrap(Trap):
    """A WASI program called ``proc_exit``; ``code`` is its exit status."""

    code: int  # type: ignore[assignment]  # the exit status, not a TrapCode

    def __init__(self, code: int, frames: Optional[List[Frame]] = None) -> None:
        super().__init__(f"exit status {code}", None, frames)
        self.code = code

    def __reduce__(self) -> Tuple[type, Tuple[int, List[Frame]], Dict[str, object]]:
        # Made again from its own arguments: the message alone (its args) is not one.
        return type(self), (self.code, self.frames), self.__dict__


class WasmException(Trap):
    """WebAssembly code threw an exception (``throw``) that no wasm code caught.

    ``tag`` is the exception's :class:`Tag` and ``payload`` the tuple of its
    values, as Python values; ``frames`` is the wasm backtrace. A WasmException
    is also the Python value of an ``exnref`` (an exception object wasm holds),
    and one of the store's tags may be passed to wasm where it takes an exnref.

    A host function may raise one, ``raise WasmException(tag, (1, 2.5))``
    with a Tag of its store: it is thrown into the calling wasm code, which
    can catch it (``try_table``). With any other tag it passes through wasm
    as any Python exception does.
    """

    # The payload and its values as wasm had them (Val), for exceptions wasm made: exception_from_exnref.
    _exact_payload: Optional[Tuple[Tuple[object, ...], Tuple[object, ...]]] = None

    def __init__(self, tag: Tag, payload: Tuple[object, ...], frames: Optional[List[Frame]] = None) -> None:
        super().__init__(f"wasm exception: tag {getattr(tag, 'type', tag)}, payload {payload!r}", None, frames)
        self.tag = tag
        self.payload = payload


def _cause(message: str) -> str:
    """wasmtime's message without the backtrace it embeds (Trap.frames has it).

    A chain of causes ("0: memory fault at ...", "1: wasm trap: out of bounds
    memory access") becomes the last cause, with the others in parentheses.
    """
    head, _, rest = message.partition("Caused by:")
    if head.startswith("error while executing at wasm backtrace"):
        head = ""  # the backtrace, which Trap.frames holds
    lines = [line.strip() for line in (head + "\n" + rest).splitlines()]
    causes = [re.sub(r"^\d+: ", "", line) for line in lines if line]
    causes = [cause[len("wasm trap: "):] if cause.startswith("wasm trap: ") else cause for cause in causes]
    if len(causes) <= 1:
        return causes[0] if causes else ""
    return f"{causes[-1]} ({'; '.join(causes[:-1])})"


def _take_name(vec) -> str:
    """Decodes and frees an owned ``wasm_name_t``."""
    try:
        return ffi.unpack(ffi.cast("char *", vec.data), vec.size).decode("utf-8", "replace").rstrip("\0")
    finally:
        lib.wasm_byte_vec_delete(vec)


def _borrowed_name(name) -> Optional[str]:
    if name == ffi.NULL:
        return None
    return ffi.unpack(ffi.cast("char *", name.data), name.size).decode("utf-8", "replace")


def _offset(value: int) -> Optional[int]:
    return None if value == _UNKNOWN_OFFSET else value


_UNKNOWN_OFFSET = 2**64 - 1


def _take_frames(vec) -> List[Frame]:
    try:
        return [
            Frame(
                module=_borrowed_name(lib.wasmtime_frame_module_name(frame)),
                function=_borrowed_name(lib.wasmtime_frame_func_name(frame)),
                func_index=lib.wasm_frame_func_index(frame),
                func_offset=_offset(lib.wasm_frame_func_offset(frame)),
                module_offset=_offset(lib.wasm_frame_module_offset(frame)),
            )
            for frame in (vec.data[i] for i in range(vec.size))
        ]
    finally:
        lib.wasm_frame_vec_delete(vec)


def error_message(error) -> str:
    """The message of a ``wasmtime_error_t``, which stays owned by the caller."""
    message = ffi.new("wasm_name_t *")
    lib.wasmtime_error_message(error, message)
    return _take_name(message)


def take_error(error, kind: type = WasmError) -> WasmError:
    """Turns an owned ``wasmtime_error_t`` into an exception of class ``kind`` and frees it."""
    try:
        return kind(error_message(error))
    finally:
        lib.wasmtime_error_delete(error)


def take_trap(trap) -> Trap:
    """Turns an owned ``wasm_trap_t`` into a :class:`Trap` and frees it."""
    try:
        message = ffi.new("wasm_message_t *")
        lib.wasm_trap_message(trap, message)
        text = _take_name(message)
        code_out = ffi.new("wasmtime_trap_code_t *")
        code = None
        if lib.wasmtime_trap_code(trap, code_out):
            try:
                code = TrapCode(code_out[0])
            except ValueError:
                code = None
        frames = ffi.new("wasm_frame_vec_t *")
        lib.wasm_trap_trace(trap, frames)
        return Trap(text, code, _take_frames(frames))
    finally:
        lib.wasm_trap_delete(trap)


def check(error, kind: type = WasmError) -> None:
    """Raises the exception for a ``wasmtime_error_t`` result, if it is not NULL."""
    if error != ffi.NULL:
        raise take_error(error, kind)


def check_value(error) -> None:
    """:func:`check` for storing a value (globals, tables): wasmtime's refusal of the value's type
    is a TypeError, as for a call's arguments."""
    if error != ffi.NULL:
        exception = take_error(error)
        if "type mismatch" in str(exception):
            raise TypeError(str(exception)) from None
        raise exception


def take_call_failure(status: int, trap_out, error_out) -> WasmError:
    """The exception for a failed call or instantiation (``wasmpy_call`` status 1 or 2)."""
    if status == 1:
        return take_trap(trap_out[0])
    error = error_out[0]
    try:
        frames = ffi.new("wasm_frame_vec_t *")
        lib.wasmtime_error_wasm_trace(error, frames)
        exit_status = ffi.new("int *")
        if lib.wasmtime_error_exit_status(error, exit_status):
            return ExitTrap(exit_status[0], _take_frames(frames))
        return Trap(error_message(error), None, _take_frames(frames))
    finally:
        lib.wasmtime_error_delete(error)
