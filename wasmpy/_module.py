"""Module: compiled WebAssembly code, and the text format."""

from __future__ import annotations

import hashlib
import os
import re
import stat
import struct
from typing import Any, Dict, List, NamedTuple, Optional, Tuple, Type, TypeVar, Union

from ._checks import require_instance
from ._engine import COMPILE_STACK_NEEDED, Engine, compiled_code_key
from ._errors import CompileError, WasmError, check, error_message
from ._ffi import ffi, lib
from ._ownership import Immutable, init_once
from ._types import ExportType, ExternType, ImportType, externtype_from_c

__all__ = ["Module", "CompiledCode", "wat2wasm"]

# serialize() output: wasmtime's payload (a 64-bit ELF file), then this magic and the payload's SHA-256.
_TRAILER_MAGIC = b"wasmpy-sha256-1\0"
_TRAILER_SIZE = len(_TRAILER_MAGIC) + 32
_ELF_HEADER_SIZE = 64
_ELF_MAGIC = b"\x7fELF\x02\x01"  # 64-bit, little-endian: what wasmtime writes on x86-64
_STACK_EXHAUSTED = 3  # a wasmpy_module_* status: not run, too little native stack left


def _check_status(status: int, error_out, doing: str, kind: type = CompileError, context: str = "") -> None:
    """Raises for what a ``wasmpy_module_*`` helper returned: RecursionError for too little native
    stack (status 3), ``kind`` with ``context`` and wasmtime's message for an error (status 2)."""
    if status == _STACK_EXHAUSTED:
        raise RecursionError(f"not enough native stack left in this thread to {doing} safely (it needs "
                             f"about {COMPILE_STACK_NEEDED // 1024} KiB): do it in a thread with a bigger "
                             f"stack (threading.stack_size), or with less recursion around it")
    if status != 0:
        try:
            message = error_message(error_out[0])
        finally:
            lib.wasmtime_error_delete(error_out[0])
        raise kind(context + message)


def wat2wasm(text: Union[str, bytes]) -> bytes:
    """Translates the WebAssembly text format to the binary format; CompileError on a syntax error."""
    if isinstance(text, str):
        # A lone surrogate becomes malformed UTF-8, which the parser reports as a CompileError.
        text = text.encode("utf-8", "surrogatepass")
    elif not isinstance(text, (bytes, bytearray)):
        raise TypeError(f"wat2wasm takes str or bytes, not {type(text).__name__}")
    out = ffi.new("wasm_byte_vec_t *")
    check(lib.wasmtime_wat2wasm(ffi.from_buffer(text), len(text), out), CompileError)
    try:
        return ffi.unpack(ffi.cast("char *", out.data), out.size)
    finally:
        lib.wasm_byte_vec_delete(out)


def _as_bytes(source: Any) -> bytes:
    if isinstance(source, bytes):
        return source
    if isinstance(source, os.PathLike):
        raise TypeError(f"a module's source is wasm bytes or WAT text, not a path: to compile the file, use "
                        f"Module.from_file({source!r})")
    try:
        view = memoryview(source)
    except TypeError:
        raise TypeError("a module's source must be wasm bytes (any bytes-like object) or WAT text "
                        f"(str), not {type(source).__name__}") from None
    return view.tobytes()


def _wasm(source: Any) -> bytes:
    """The binary format of a module's source: wasm bytes as they are, WAT text translated."""
    if not isinstance(source, str):
        return _as_bytes(source)
    try:
        return wat2wasm(source)
    except CompileError as error:
        if _looks_like_path(source):
            raise CompileError(f"{source!r} is not WAT text: to compile the file, use "
                               f"Module.from_file({source.strip()!r})") from None
        raise


# What a path given as a module's source, instead of its contents, looks like.
_SOURCE_SUFFIXES = (".wasm", ".wat", ".wast")


def _looks_like_path(source: Union[str, bytes]) -> bool:
    """Whether ``source``, which failed to compile, is more likely a file's name than its contents."""
    text = os.fsdecode(source) if isinstance(source, bytes) else source
    name = text.strip()
    if not name or "\n" in name or name.startswith(("(", ";;", "\0")):
        return False
    return name.lower().endswith(_SOURCE_SUFFIXES) or os.path.isfile(name)


# A position in wasmtime's WAT syntax errors: "     --> <anon>:3:5", the line after the message.
_WAT_POSITION = re.compile(r"^(\s*--> )<anon>:(\d+):(\d+)$", re.MULTILINE)


def error_in_file(error: CompileError, path: str) -> CompileError:
    """``error``, about the contents of the file ``path``: its message begins with the file, and with
    the line and column of a WAT syntax error (``gcd.wat:3:5: unknown operator``), which one-line
    reports (the command line's) keep."""
    message = str(error)
    position = _WAT_POSITION.search(message)
    if position is None:
        return CompileError(f"{path}: {message}")
    where = f"{path}:{position[2]}:{position[3]}"
    return CompileError(f"{where}: {_WAT_POSITION.sub(lambda found: found[1] + where, message, count=1)}")


class SourceFile(NamedTuple):
    """The file a module was compiled from, as it was then: pickling reads it again if it has
    not changed since (by size and mtime, as ``.pyc`` files are checked)."""

    path: str
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: str, status: os.stat_result) -> "SourceFile":
        return cls(os.path.abspath(path), status.st_size, status.st_mtime_ns)

    def wasm(self) -> Optional[bytes]:
        """The file's wasm binary (WAT converted), or None if it changed or is gone."""
        try:
            with open(self.path, "rb") as file:
                status = os.fstat(file.fileno())
                if (status.st_size, status.st_mtime_ns) != (self.size, self.mtime_ns):
                    return None
                data = file.read()
        except OSError:
            return None
        return data if data.startswith(b"\0asm") else wat2wasm(data)


def _engine(engine: Optional[Engine]) -> Engine:
    return Engine.default() if engine is None else require_instance(engine, Engine, "engine")


_Code = TypeVar("_Code", bound="CompiledCode")


class CompiledCode(Immutable):
    """What modules and components share: compiled code that serializes, maps from a file and
    pickles. A subclass names its kind and wasmtime's functions for it, and makes itself from a
    pointer (``_loaded``)."""

    _kind: str  # "module" or "component", in messages
    _source_name: str  # what it is compiled from, in messages
    _c_type: str  # the wasmtime type, e.g. "wasmtime_module_t"
    _c_serialize: Any
    _c_deserialize: Any  # wasmpy's stack-checked helpers (csrc/wasmpy.c, csrc/component/component.c)
    _c_deserialize_file: Any
    _ptr: Any
    engine: Engine
    _wasm_source: Union[bytes, SourceFile, None]  # for pickling: see Module's docstring

    @classmethod
    def _loaded(cls: Type[_Code], ptr: Any, engine: Engine) -> _Code:
        raise NotImplementedError

    def serialize(self) -> bytes:
        """The compiled machine code, for :meth:`deserialize` with an engine of the same settings.

        It is wasmtime's own serialized format (what ``wasmtime compile`` and the
        ``wasmtime`` package's ``serialize`` write), followed by a trailer of
        wasmpy's with a SHA-256 of it, which wasmtime ignores: the ``wasmtime``
        package loads it into an engine of matching settings, and :meth:`deserialize`
        checks the digest.
        """
        out = ffi.new("wasm_byte_vec_t *")
        check(type(self)._c_serialize(self._ptr, out))
        try:
            payload = ffi.unpack(ffi.cast("char *", out.data), out.size)
        finally:
            lib.wasm_byte_vec_delete(out)
        return payload + _TRAILER_MAGIC + hashlib.sha256(payload).digest()

    @classmethod
    def deserialize(cls: Type[_Code], data: Union[bytes, bytearray, memoryview], engine: Optional[Engine] = None) -> _Code:
        """Loads compiled code: what :meth:`serialize` produced, or wasmtime's own format (a
        ``.cwasm`` from ``wasmtime compile`` or the ``wasmtime`` package) made with settings
        that match ``engine``'s.

        Data from :meth:`serialize` carries a checksum, so truncated or corrupted data
        raises WasmError instead of being run; wasmtime itself refuses code of another
        version or other settings (WasmError). It is machine code, though, run without
        further checks: load only data you produced yourself or trust as you trust a
        program, never data from an untrusted source.
        """
        data = _as_bytes(data)
        payload, digest = _split_serialized(data, len(data), data[:_ELF_HEADER_SIZE], data[-_TRAILER_SIZE:])
        if digest is not None and hashlib.sha256(data[:payload]).digest() != digest:
            raise WasmError(f"the serialized {cls._kind} is corrupt (checksum mismatch)")
        engine = _engine(engine)
        out = ffi.new(f"{cls._c_type} **")
        error = ffi.new("wasmtime_error_t **")
        status = cls._c_deserialize(engine._ptr, ffi.from_buffer(data), payload, COMPILE_STACK_NEEDED, out, error)
        _check_status(status, error, f"load a serialized {cls._kind}", WasmError,
                      f"cannot load the serialized {cls._kind}: ")
        return cls._loaded(out[0], engine)

    @classmethod
    def deserialize_file(cls: Type[_Code], path: Union[str, "os.PathLike[str]"], engine: Optional[Engine] = None) -> _Code:
        """Loads compiled code from a file (see :meth:`deserialize` for what it can hold) by
        mapping it into memory, not reading it: loading takes milliseconds and little memory
        whatever the code's size, and the pages are shared by every process that maps it.

        Only the file's layout is checked, not :meth:`serialize`'s checksum (that would
        read all of it): as for :meth:`deserialize`, load only files you trust as you
        trust a program. The file must not change while the code lives; replace it
        (write another file and rename it over this one) rather than write into it.
        """
        if not isinstance(path, (str, os.PathLike)) or not isinstance(os.fspath(path), str):
            raise TypeError(f"path must be a str or os.PathLike[str], not {type(path).__name__}")
        path = os.fspath(path)
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
        except OSError as error:
            raise WasmError(f"cannot load the serialized {cls._kind} {path}: {error.strerror}") from None
        try:
            return cls._from_descriptor(fd, path, _engine(engine))
        finally:
            os.close(fd)

    @classmethod
    def _from_descriptor(cls: Type[_Code], fd: int, path: str, engine: Engine) -> _Code:
        """:meth:`deserialize_file` of the file open as ``fd`` (which stays open), named ``path``
        in messages: what is checked is what wasmtime maps, even if something is renamed over the
        path meanwhile."""
        status_of_file = os.fstat(fd)
        if not stat.S_ISREG(status_of_file.st_mode):
            raise WasmError(f"cannot load the serialized {cls._kind} {path}: not a regular file")
        size = status_of_file.st_size
        head = os.pread(fd, _ELF_HEADER_SIZE, 0)
        tail = os.pread(fd, _TRAILER_SIZE, max(0, size - _TRAILER_SIZE))
        _split_serialized(path, size, head, tail)
        mapped = f"/proc/self/fd/{fd}" if os.path.isdir("/proc/self/fd") else path
        out = ffi.new(f"{cls._c_type} **")
        error = ffi.new("wasmtime_error_t **")
        status = cls._c_deserialize_file(engine._ptr, os.fsencode(mapped), COMPILE_STACK_NEEDED, out, error)
        _check_status(status, error, f"load a serialized {cls._kind}", WasmError,
                      f"cannot load the serialized {cls._kind} {path}: ")
        return cls._loaded(out[0], engine)

    def __reduce__(self) -> Tuple[Any, Tuple[Any, ...]]:
        source = self._wasm_source
        wasm = source.wasm() if isinstance(source, SourceFile) else source
        return (type(self)._unpickle, (self.engine, compiled_code_key(self.engine), self.serialize(), wasm))

    @classmethod
    def _unpickle(cls: Type[_Code], engine: Engine, key: str, compiled: bytes, wasm: Optional[bytes]) -> _Code:
        """Pickled code in this process: its compiled code if it was compiled for this process's
        engine of its settings and this CPU, else compiled again from its binary."""
        engine = require_instance(engine, Engine, "engine")
        if key == compiled_code_key(engine):
            try:
                code = cls.deserialize(compiled, engine)
            except WasmError:
                if wasm is None:
                    raise
            else:
                code._wasm_source = wasm
                return code
        if wasm is None:
            raise WasmError(f"the pickled {cls._kind} was compiled for another wasmtime version, engine settings or "
                            f"CPU, and carries no {cls._source_name} to compile again (it was loaded from compiled code)")
        return cls(wasm, engine)  # type: ignore[call-arg]


class Module(CompiledCode):
    """A compiled WebAssembly module, ready to be instantiated any number of times.

    ``source`` is the binary format (any bytes-like object) or the text format
    (a str). A malformed or invalid module raises :class:`CompileError`; a
    thread with too little native stack left to compile raises RecursionError.
    Modules never change once made: copies are the module itself.

    Modules pickle (to process pools, Dask workers, other machines): to their
    compiled code, the key it is valid for (wasmtime version, engine settings,
    CPU) and the wasm binary. Unpickling loads the compiled code when the key
    matches this process's engine of those settings, and compiles the binary
    otherwise. A module made from bytes keeps them for this; one made by
    :meth:`from_file` or the import hook reads its file again when pickled (if
    unchanged). Unpickling loads machine code, as :meth:`deserialize` does:
    unpickle only data you trust as you trust a program.
    """

    _kind, _source_name, _c_type = "module", "wasm binary", "wasmtime_module_t"
    _c_serialize = lib.wasmtime_module_serialize
    _c_deserialize = lib.wasmpy_module_deserialize
    _c_deserialize_file = lib.wasmpy_module_deserialize_file

    def __init__(self, source: Union[bytes, bytearray, memoryview, str], engine: Optional[Engine] = None) -> None:
        init_once(self, "_ptr")
        engine = _engine(engine)
        wasm = _wasm(source)
        out = ffi.new("wasmtime_module_t **")
        error = ffi.new("wasmtime_error_t **")
        status = lib.wasmpy_module_new(engine._ptr, engine._compiler_ptr(), ffi.from_buffer(wasm), len(wasm),
                                       COMPILE_STACK_NEEDED, out, error)
        try:
            _check_status(status, error, "compile a module")
        except CompileError:
            if not wasm.startswith(b"\0asm") and _looks_like_path(wasm):
                raise CompileError(f"{source!r} is not wasm bytes: to compile the file, use "
                                   f"Module.from_file({os.fsdecode(wasm).strip()!r})") from None
            raise
        self.engine = engine
        self._set_ptr(out[0])
        self._wasm_source = wasm

    def _set_ptr(self, ptr) -> None:
        self._ptr = ffi.gc(ptr, lib.wasmtime_module_delete)
        self._wasm_source = None
        self._imports: Optional[List[ImportType]] = None
        self._exports: Optional[Dict[str, ExternType]] = None
        self._instance_plan: Any = None  # what instantiating needs to know, made by Instance once

    @classmethod
    def from_file(cls, path: Union[str, "os.PathLike[str]"], engine: Optional[Engine] = None) -> "Module":
        """Compiles a ``.wasm`` (binary) or ``.wat`` (text) file.

        A CompileError's message begins with the file, and for WAT with the line and column
        (``gcd.wat:3:5: ...``).
        """
        with open(path, "rb") as file:
            status = os.fstat(file.fileno())
            data = file.read()
        try:
            module = cls(data if data.startswith(b"\0asm") else wat2wasm(data), engine)
        except CompileError as error:
            raise error_in_file(error, os.fspath(path)) from None
        module._wasm_source = SourceFile.of(os.fspath(path), status)
        return module

    @staticmethod
    def validate(source: Union[bytes, str], engine: Optional[Engine] = None) -> None:
        """Raises CompileError if ``source`` is not a valid module; compiles nothing."""
        engine = _engine(engine)
        wasm = _wasm(source)
        error = ffi.new("wasmtime_error_t **")
        status = lib.wasmpy_module_validate(engine._compiler_ptr(), ffi.from_buffer(wasm), len(wasm),
                                            COMPILE_STACK_NEEDED, error)
        _check_status(status, error, "validate a module")

    @property
    def imports(self) -> List[ImportType]:
        """The module's imports, in order."""
        return list(self._import_types())

    def _import_types(self) -> List[ImportType]:
        if self._imports is None:
            vec = ffi.new("wasm_importtype_vec_t *")
            lib.wasmtime_module_imports(self._ptr, vec)
            try:
                self._imports = [
                    ImportType(_name(lib.wasm_importtype_module(item)), _name(lib.wasm_importtype_name(item)),
                               externtype_from_c(lib.wasm_importtype_type(item)))
                    for item in (vec.data[i] for i in range(vec.size))
                ]
            finally:
                lib.wasm_importtype_vec_delete(vec)
        return self._imports

    @property
    def exports(self) -> List[ExportType]:
        """The module's exports, in order."""
        return [ExportType(name, externtype) for name, externtype in self._export_types().items()]

    def _export_types(self) -> Dict[str, ExternType]:
        """Export names, in order, and their types."""
        if self._exports is None:
            vec = ffi.new("wasm_exporttype_vec_t *")
            lib.wasmtime_module_exports(self._ptr, vec)
            try:
                self._exports = {
                    _name(lib.wasm_exporttype_name(item)): externtype_from_c(lib.wasm_exporttype_type(item))
                    for item in (vec.data[i] for i in range(vec.size))
                }
            finally:
                lib.wasm_exporttype_vec_delete(vec)
        return self._exports

    @classmethod
    def _loaded(cls, ptr, engine: Engine) -> "Module":
        module = cls.__new__(cls)
        module.engine = engine
        module._set_ptr(ptr)
        return module

    def __repr__(self) -> str:
        return f"<wasmpy.Module: {len(self.imports)} imports, {len(self.exports)} exports>"


def _split_serialized(what: Any, size: int, head: bytes, tail: bytes) -> Tuple[int, Optional[bytes]]:
    """Where wasmtime's payload in serialized data of ``size`` bytes ends, and the SHA-256 its
    trailer gives (None without one), from its first 64 and last 48 bytes; WasmError unless the
    data is one ELF file, whose section headers wasmtime writes last, then at most the trailer.

    This catches the accidents (other data, truncation, bytes appended) before wasmtime parses it.
    """
    where = "" if isinstance(what, bytes) else f" {what}"
    if len(head) < _ELF_HEADER_SIZE or not head.startswith(_ELF_MAGIC):
        raise WasmError(f"not a serialized module{where} (not wasmtime's compiled code)")
    section_headers, = struct.unpack_from("<Q", head, 0x28)
    entry_size, entries = struct.unpack_from("<HH", head, 0x3A)
    end = section_headers + entry_size * entries
    if end == size:
        return end, None
    if end + _TRAILER_SIZE == size and tail.startswith(_TRAILER_MAGIC):
        return end, tail[len(_TRAILER_MAGIC):]
    raise WasmError(f"the serialized module{where} is truncated or has data after it "
                    f"({size} bytes, its headers say {end} or {end + _TRAILER_SIZE})")


def _name(name) -> str:
    return ffi.unpack(ffi.cast("char *", name.data), name.size).decode("utf-8", "replace")
