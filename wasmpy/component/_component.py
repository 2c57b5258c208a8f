"""Component: a compiled WebAssembly component (the component model), ready to instantiate."""

from __future__ import annotations

import hashlib
import os
from typing import Any, Optional, Union

from .._engine import COMPILE_STACK_NEEDED, Engine
from .._errors import CompileError, WasmError, check
from .._ffi import ffi, lib
from .._module import (_TRAILER_MAGIC, _TRAILER_SIZE, _ELF_HEADER_SIZE, _as_bytes, _check_status, _engine,
                       _looks_like_path, _split_serialized, error_in_file, wat2wasm)
from .._ownership import Immutable, init_once
from ._types import ComponentItems, component_items

__all__ = ["Component", "is_component"]

# A binary's preamble: magic, then version and layer. Core modules are layer 0, components layer 1.
_COMPONENT_PREAMBLE = b"\0asm\x0d\x00\x01\x00"


def is_component(source: Union[bytes, bytearray, memoryview, str]) -> bool:
    """Whether ``source`` (wasm bytes, or WAT text) is a component rather than a core module:
    its binary header's layer field is 1, or its text starts with ``(component``."""
    if isinstance(source, str):
        return _strip_wat_prefix(source).startswith("(component")
    return bytes(memoryview(source)[:8]) == _COMPONENT_PREAMBLE


def _strip_wat_prefix(text: str) -> str:
    """WAT text without its leading blanks and comments."""
    while True:
        text = text.lstrip()
        if text.startswith(";;"):
            text = text.partition("\n")[2]
        elif text.startswith("(;"):
            end = text.find(";)")
            if end < 0:
                return text
            text = text[end + 2:]
        else:
            return text


class Component(Immutable):
    """A compiled WebAssembly component: ``Instance(Component(source), imports)`` runs it.

    ``source`` is a component's binary format (any bytes-like object) or text format (a str
    starting with ``(component``). :attr:`imports` and :attr:`exports` describe it in WIT
    terms. A malformed or invalid component raises :class:`wasmpy.CompileError`. Components
    never change once made: copies are the component itself.
    """

    def __init__(self, source: Union[bytes, bytearray, memoryview, str], engine: Optional[Engine] = None) -> None:
        init_once(self, "_ptr")
        engine = _engine(engine)
        binary = self._binary(source)
        out = ffi.new("wasmtime_component_t **")
        error = ffi.new("wasmtime_error_t **")
        status = lib.wasmpy_component_new(engine._ptr, engine._compiler_ptr(), ffi.from_buffer(binary), len(binary),
                                          COMPILE_STACK_NEEDED, out, error)
        try:
            _check_status(status, error, "compile a component")
        except CompileError:
            if not binary.startswith(b"\0asm") and _looks_like_path(binary):
                raise CompileError(f"{source!r} is not wasm bytes: to compile the file, use "
                                   f"Component.from_file({os.fsdecode(binary).strip()!r})") from None
            raise
        self._set_ptr(out[0], engine)

    @staticmethod
    def _binary(source: Any) -> bytes:
        if not isinstance(source, str):
            binary = _as_bytes(source)
            if binary.startswith(b"\0asm") and not binary.startswith(_COMPONENT_PREAMBLE):
                raise CompileError("this is a core WebAssembly module, not a component: compile it with "
                                   "wasmpy.Module (or make it a component with `wasm-tools component new`)")
            return binary
        try:
            return wat2wasm(source)
        except CompileError:
            if _looks_like_path(source):
                raise CompileError(f"{source!r} is not WAT text: to compile the file, use "
                                   f"Component.from_file({source.strip()!r})") from None
            raise

    def _set_ptr(self, ptr: Any, engine: Engine) -> None:
        self.engine = engine
        self._ptr = ffi.gc(ptr, lib.wasmtime_component_delete)
        self._items: Optional[tuple] = None

    def _described(self) -> tuple:
        if self._items is None:
            self._items = component_items(self._ptr, self.engine._ptr)
        return self._items

    @property
    def imports(self) -> ComponentItems:
        """What the component imports: ``.functions`` (world-level, by WIT name), ``.interfaces``
        (by full name, ``test:rich/host@0.1.0``) and ``.types``; ``str()`` reads like WIT."""
        return self._described()[0]

    @property
    def exports(self) -> ComponentItems:
        """What the component exports, as :attr:`imports` describes its imports."""
        return self._described()[1]

    @classmethod
    def from_file(cls, path: Union[str, "os.PathLike[str]"], engine: Optional[Engine] = None) -> "Component":
        """Compiles a component's ``.wasm`` (binary) or ``.wat`` (text) file; a CompileError's
        message begins with the file."""
        with open(path, "rb") as file:
            data = file.read()
        try:
            return cls(data if data.startswith(b"\0asm") else data.decode("utf-8", "surrogateescape"), engine)
        except CompileError as error:
            raise error_in_file(error, os.fspath(path)) from None

    def serialize(self) -> bytes:
        """The compiled machine code, for :meth:`deserialize` with an engine of the same settings:
        wasmtime's format, followed by a SHA-256 of it (as :meth:`wasmpy.Module.serialize`)."""
        out = ffi.new("wasm_byte_vec_t *")
        check(lib.wasmtime_component_serialize(self._ptr, out))
        try:
            payload = ffi.unpack(ffi.cast("char *", out.data), out.size)
        finally:
            lib.wasm_byte_vec_delete(out)
        return payload + _TRAILER_MAGIC + hashlib.sha256(payload).digest()

    @classmethod
    def deserialize(cls, data: Union[bytes, bytearray, memoryview], engine: Optional[Engine] = None) -> "Component":
        """Loads what :meth:`serialize` produced (or wasmtime's own format for a component).

        The checksum catches truncated or corrupted data (WasmError); wasmtime refuses code of
        another version or settings. It is machine code run without further checks: load only
        data you produced yourself or trust as you trust a program.
        """
        data = _as_bytes(data)
        payload, digest = _split_serialized(data, len(data), data[:_ELF_HEADER_SIZE], data[-_TRAILER_SIZE:])
        if digest is not None and hashlib.sha256(data[:payload]).digest() != digest:
            raise WasmError("the serialized component is corrupt (checksum mismatch)")
        engine = _engine(engine)
        out = ffi.new("wasmtime_component_t **")
        error = ffi.new("wasmtime_error_t **")
        status = lib.wasmpy_component_deserialize(engine._ptr, ffi.from_buffer(data), payload, COMPILE_STACK_NEEDED,
                                                  out, error)
        _check_status(status, error, "load a serialized component", WasmError,
                      "cannot load the serialized component: ")
        component = cls.__new__(cls)
        component._set_ptr(out[0], engine)
        return component

    def __repr__(self) -> str:
        imports, exports = self.imports, self.exports
        names = [*exports.functions, *exports.interfaces]
        return (f"<wasmpy.Component: {len(imports.functions) + len(imports.interfaces)} imports, "
                f"exports {', '.join(names) or '(none)'}>")
