"""Component: a compiled WebAssembly component (the component model), ready to instantiate."""

from __future__ import annotations

import os
from typing import Any, Optional, Union

from .._engine import COMPILE_STACK_NEEDED, Engine
from .._errors import CompileError
from .._ffi import ffi, lib
from .._module import (CompiledCode, SourceFile, _as_bytes, _check_status, _engine, _looks_like_path, error_in_file,
                       wat2wasm)
from .._ownership import init_once
from ._types import ComponentItems, component_items

__all__ = ["Component", "is_component"]

# A binary's preamble: magic, then version and layer. Core modules are layer 0, components layer 1.
_COMPONENT_PREAMBLE = b"\0asm\x0d\x00\x01\x00"


def is_component(source: Union[bytes, bytearray, memoryview, str]) -> bool:
    """Whether ``source`` (wasm bytes, or WAT text) is a component rather than a core module:
    its binary header's layer field is 1, or its text starts with ``(component``."""
    if isinstance(source, str):
        return bool(text_is_component(source, complete=True))
    return bytes(memoryview(source)[:8]) == _COMPONENT_PREAMBLE


def text_is_component(text: str, complete: bool) -> Optional[bool]:
    """Whether the WAT ``text`` is a component (its first token after blanks and comments is
    ``(component``); None when ``text`` is the beginning of a file (not ``complete``) too short
    to tell, so that the import hook can decide from a file's first bytes."""
    at = 0
    while True:
        while at < len(text) and text[at] in " \t\r\n":
            at += 1
        if text.startswith(";;", at):
            end = text.find("\n", at)
            if end < 0:
                return False if complete else None
            at = end + 1
        elif text.startswith("(;", at):
            end = _block_comment_end(text, at)
            if end < 0:
                return False if complete else None
            at = end
        else:
            rest = text[at:at + len("(component") + 1]
            if not complete and len(rest) <= len("(component"):
                return None if "(component".startswith(rest) else False
            return rest.startswith("(component") and (len(rest) == len("(component") or not _is_idchar(rest[-1]))


def _block_comment_end(text: str, start: int) -> int:
    """Where the block comment at ``start`` ends (after its ``;)``): they nest; -1 if it does not."""
    depth, at = 0, start
    while at < len(text):
        if text.startswith("(;", at):
            depth, at = depth + 1, at + 2
        elif text.startswith(";)", at):
            depth, at = depth - 1, at + 2
            if depth == 0:
                return at
        else:
            at += 1
    return -1


def _is_idchar(char: str) -> bool:
    return char.isalnum() or char in "!#$%&'*+-./:<=>?@\\^_`|~"


class Component(CompiledCode):
    """A compiled WebAssembly component: ``Instance(Component(source), imports)`` runs it.

    ``source`` is a component's binary format (any bytes-like object) or text format (a str
    starting with ``(component``). :attr:`imports` and :attr:`exports` describe it in WIT
    terms. A malformed or invalid component raises :class:`wasmpy.CompileError`. Components
    never change once made: copies are the component itself.

    Components pickle as :class:`wasmpy.Module` does: to their compiled code, the key it is
    valid for (wasmtime version, engine settings, CPU) and the component's binary. Unpickling
    loads the compiled code when the key matches this process's engine of those settings, and
    compiles the binary otherwise; one made by :meth:`from_file` or the import hook reads its
    file again when pickled (if unchanged). Unpickle only data you trust as you trust a program.
    """

    _kind, _source_name, _c_type = "component", "binary", "wasmtime_component_t"
    _c_serialize = lib.wasmtime_component_serialize
    _c_deserialize = lib.wasmpy_component_deserialize
    _c_deserialize_file = lib.wasmpy_component_deserialize_file

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
        self._wasm_source = binary

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
        self._wasm_source = None

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
            status = os.fstat(file.fileno())
            data = file.read()
        try:
            component = cls(data if data.startswith(b"\0asm") else data.decode("utf-8", "surrogateescape"), engine)
        except CompileError as error:
            raise error_in_file(error, os.fspath(path)) from None
        component._wasm_source = SourceFile.of(os.fspath(path), status)
        return component

    @classmethod
    def _loaded(cls, ptr: Any, engine: Engine) -> "Component":
        component = cls.__new__(cls)
        component._set_ptr(ptr, engine)
        return component

    def __repr__(self) -> str:
        imports, exports = self.imports, self.exports
        names = [*exports.functions, *exports.interfaces]
        return (f"<wasmpy.Component: {len(imports.functions) + len(imports.interfaces)} imports, "
                f"exports {', '.join(names) or '(none)'}>")
