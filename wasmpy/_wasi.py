"""WASI preview 1: what a module importing ``wasi_snapshot_preview1`` may see of the world."""

from __future__ import annotations

import io
import os
from typing import Any, Callable, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from ._errors import WasmError
from ._ffi import ffi, lib

__all__ = ["WasiConfig"]

WASI_MODULE = "wasi_snapshot_preview1"

PathLike = Union[str, "os.PathLike[str]"]
Output = Union[str, PathLike, Any, Callable[[bytes], Any]]


def _encode(text: Union[str, bytes], what: str) -> bytes:
    if isinstance(text, bytes):
        data = text
    elif isinstance(text, str):
        data = text.encode("utf-8")
    else:
        raise TypeError(f"{what} must be str or bytes, not {type(text).__name__}")
    if b"\0" in data:
        raise ValueError(f"{what} must not contain NUL characters")
    return data


class WasiConfig:
    """What a WASI program gets: arguments, environment, standard streams and directories.

    The defaults are the safe ones: no arguments, no environment, standard
    streams inherited from this process, no filesystem.

    - ``argv``: the arguments, program name first.
    - ``env``: a mapping of variables; or ``inherit_env=True`` for this process's environment.
    - ``stdin``: ``"inherit"`` (default), bytes, a path, or a file object (read at once, here).
    - ``stdout`` / ``stderr``: ``"inherit"`` (default), a path (created or truncated), a writable
      file object (binary such as ``io.BytesIO``, or text, which gets UTF-8 decoded text), or a
      callable that receives bytes.
    - ``preopens``: ``(host_path, guest_path)`` or ``(host_path, guest_path, read_only)`` tuples;
      also :meth:`preopen`. The guest reaches nothing outside them.
    """

    def __init__(self, *, argv: Optional[Sequence[Union[str, bytes]]] = None,
                 env: Optional[Mapping[str, str]] = None, inherit_env: bool = False,
                 stdin: Any = "inherit", stdout: Output = "inherit", stderr: Output = "inherit",
                 preopens: Iterable[Tuple[Any, ...]] = ()) -> None:
        if isinstance(argv, (str, bytes)):
            raise TypeError("argv must be a sequence of arguments, not a single string")
        self.argv: Optional[List[bytes]] = None if argv is None else [_encode(a, "an argument") for a in argv]
        if env is not None and inherit_env:
            raise ValueError("give env or inherit_env=True, not both")
        self.env = None if env is None else [(_encode(k, "an environment name"), _encode(v, "an environment value"))
                                             for k, v in dict(env).items()]
        self.inherit_env = bool(inherit_env)
        self.stdin = self._check_stdin(stdin)
        self.stdout = self._check_output(stdout, "stdout")
        self.stderr = self._check_output(stderr, "stderr")
        self.preopens: List[Tuple[str, str, bool]] = []
        for entry in preopens:
            self.preopen(*entry)

    def preopen(self, host_path: PathLike, guest_path: str, read_only: bool = False) -> None:
        """Lets the guest use the directory ``host_path`` as ``guest_path``; FileNotFoundError if it is missing."""
        host = os.fspath(host_path)
        if not os.path.isdir(host):
            raise FileNotFoundError(f"cannot preopen {host!r}: not a directory")
        _encode(host, "a host path")
        _encode(guest_path, "a guest path")
        self.preopens.append((host, guest_path, bool(read_only)))

    @staticmethod
    def _check_stdin(stdin: Any) -> Any:
        if isinstance(stdin, str) and stdin == "inherit":
            return stdin
        if isinstance(stdin, (bytes, bytearray, memoryview)):
            return bytes(stdin)
        if isinstance(stdin, (str, os.PathLike)):
            return os.fspath(stdin)
        if hasattr(stdin, "read"):  # read now, so that every store using this config sees the same input
            data = stdin.read()
            return data.encode("utf-8") if isinstance(data, str) else bytes(data)
        raise TypeError(f"stdin must be 'inherit', bytes, a path or a binary file object, not {type(stdin).__name__}")

    @staticmethod
    def _check_output(output: Any, name: str) -> Any:
        if isinstance(output, str) and output == "inherit":
            return output
        if isinstance(output, (str, os.PathLike)):
            return os.fspath(output)
        if isinstance(output, io.TextIOBase):  # e.g. sys.stdout or io.StringIO: write text
            return lambda data: output.write(data.decode("utf-8", "replace"))
        if hasattr(output, "write") or callable(output):
            return output
        raise TypeError(f"{name} must be 'inherit', a path, a writable binary file object or a callable, "
                        f"not {type(output).__name__}")

    def _to_c(self, keepalive: List[Any]):
        """A new ``wasi_config_t *``; handles the C side refers to go to ``keepalive``."""
        config = lib.wasi_config_new()
        try:
            self._configure(config, keepalive)
        except BaseException:
            lib.wasi_config_delete(config)
            raise
        return config

    def _configure(self, config, keepalive: List[Any]) -> None:
        argv = [ffi.new("char[]", a) for a in self.argv or []]
        if not lib.wasi_config_set_argv(config, len(argv), argv):
            raise WasmError("cannot set the WASI arguments")
        if self.inherit_env:
            lib.wasi_config_inherit_env(config)
        else:
            names = [ffi.new("char[]", k) for k, _ in self.env or []]
            values = [ffi.new("char[]", v) for _, v in self.env or []]
            if not lib.wasi_config_set_env(config, len(names), names, values):
                raise WasmError("cannot set the WASI environment")
        self._configure_stdin(config)
        for output, inherit, to_file, custom, name in (
                (self.stdout, lib.wasi_config_inherit_stdout, lib.wasi_config_set_stdout_file,
                 lib.wasi_config_set_stdout_custom, "stdout"),
                (self.stderr, lib.wasi_config_inherit_stderr, lib.wasi_config_set_stderr_file,
                 lib.wasi_config_set_stderr_custom, "stderr")):
            if output == "inherit":
                inherit(config)
            elif isinstance(output, str):
                if not to_file(config, _encode(output, f"the {name} path")):
                    raise OSError(f"cannot open {output!r} for the WASI {name}")
            else:
                handle = ffi.new_handle(output.write if hasattr(output, "write") else output)
                keepalive.append(handle)
                custom(config, lib._wasmpy_wasi_write, handle, ffi.NULL)
        for host, guest, read_only in self.preopens:
            if not lib.wasi_config_preopen_dir(config, host.encode(), guest.encode(), not read_only):
                raise OSError(f"cannot preopen {host!r} as {guest!r}")

    def _configure_stdin(self, config) -> None:
        stdin = self.stdin
        if stdin == "inherit":
            lib.wasi_config_inherit_stdin(config)
            return
        if isinstance(stdin, str):
            if not lib.wasi_config_set_stdin_file(config, _encode(stdin, "the stdin path")):
                raise FileNotFoundError(f"cannot open {stdin!r} for the WASI stdin")
            return
        vec = ffi.new("wasm_byte_vec_t *")
        lib.wasm_byte_vec_new(vec, len(stdin), ffi.from_buffer(stdin))
        lib.wasi_config_set_stdin_bytes(config, vec)  # takes the bytes

    def __repr__(self) -> str:
        return (f"WasiConfig(argv={self.argv!r}, env={'inherit' if self.inherit_env else self.env!r}, "
                f"stdin={self.stdin!r}, stdout={self.stdout!r}, stderr={self.stderr!r}, "
                f"preopens={self.preopens!r})")


@ffi.def_extern()
def _wasmpy_wasi_write(data, buf, length):
    try:
        write = ffi.from_handle(data)
        write(ffi.unpack(ffi.cast("char *", buf), length))
        return length
    except BaseException:  # an output that fails is an I/O error for the guest
        return -1
