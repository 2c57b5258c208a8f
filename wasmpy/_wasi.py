"""WASI: what a module importing ``wasi_snapshot_preview1``, or a component importing ``wasi:*``
interfaces (WASI 0.2), may see of the world. One :class:`WasiConfig` configures both.

Every string a :class:`WasiConfig` hands to wasmtime is checked when it is
given, not when a store uses it: wasmtime's C API takes NUL-terminated UTF-8
(it refuses anything else, or for ``inherit_env`` panics and aborts the
process), so an embedded NUL, bytes that are not UTF-8 or a str holding a
lone surrogate is a ValueError, and a value of the wrong type a TypeError.
"""

from __future__ import annotations

import collections.abc
import io
import os
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence, Tuple, Union, overload

from ._errors import WasmError
from ._ffi import ffi, lib
from ._native import output_stream

__all__ = ["WasiConfig"]

# Whether a store of this process (or of the one it was forked from) gave wasmtime its WASI: then
# wasmtime-wasi's tokio runtime, whose threads write custom output streams, may have started, and
# in a forked child those threads are gone (an fd_write to a Python stream would wait forever).
_wasi_used = False
_python_streams_lost = False


def note_wasi_used() -> None:
    global _wasi_used
    _wasi_used = True


def _after_fork_in_child() -> None:
    global _python_streams_lost
    _python_streams_lost = _wasi_used


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

WASI_MODULE = "wasi_snapshot_preview1"
# The functions of WASI preview 1 (a frozen interface), all of which wasmtime provides: the names an
# override of WASI may have without the module importing them (tests/test_wasi_overrides.py checks
# each against wasmtime's linker).
WASI_FUNCTIONS = frozenset((
    "args_get", "args_sizes_get", "environ_get", "environ_sizes_get", "clock_res_get", "clock_time_get",
    "fd_advise", "fd_allocate", "fd_close", "fd_datasync", "fd_fdstat_get", "fd_fdstat_set_flags",
    "fd_fdstat_set_rights", "fd_filestat_get", "fd_filestat_set_size", "fd_filestat_set_times", "fd_pread",
    "fd_prestat_get", "fd_prestat_dir_name", "fd_pwrite", "fd_read", "fd_readdir", "fd_renumber", "fd_seek",
    "fd_sync", "fd_tell", "fd_write", "path_create_directory", "path_filestat_get", "path_filestat_set_times",
    "path_link", "path_open", "path_readlink", "path_remove_directory", "path_rename", "path_symlink",
    "path_unlink_file", "poll_oneoff", "proc_exit", "proc_raise", "sched_yield", "random_get", "sock_accept",
    "sock_recv", "sock_send", "sock_shutdown"))
INHERIT = "inherit"

PathLike = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]
Output = Union[str, PathLike, Any, Callable[[bytes], Any]]


class _HostPath(str):
    """A checked host path, exactly as wasmtime gets it; a str subclass, so that a file named
    ``inherit`` is not taken for the ``"inherit"`` setting."""

    __slots__ = ()


def _text(value: Any, what: str) -> str:
    """``value`` (str or bytes) as the text wasmtime takes: valid UTF-8, no NUL."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"{what} must be UTF-8 text for wasmtime, but {value!r} holds a lone surrogate "
                             f"(such as an undecodable byte that Python escaped)") from None
        text = value
    elif isinstance(value, bytes):
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"{what} must be UTF-8 for wasmtime, but {value!r} is not") from None
    else:
        raise TypeError(f"{what} must be str or bytes, not {type(value).__name__}")
    if "\0" in text:
        raise ValueError(f"{what} must not contain NUL characters: {value!r}")
    return text


def _host_path(path: Any, what: str) -> _HostPath:
    """``path`` (str, bytes or os.PathLike) encoded as the OS names it; it must also be UTF-8 for wasmtime."""
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"{what} must be a str, bytes or os.PathLike path, not {type(path).__name__}")
    try:
        data = os.fsencode(path)
    except UnicodeEncodeError:
        raise ValueError(f"{what} {path!r} cannot be encoded as a file name: it holds a lone surrogate") from None
    if not data:
        raise ValueError(f"{what} must not be empty")
    if b"\0" in data:
        raise ValueError(f"{what} must not contain NUL characters: {path!r}")
    try:
        return _HostPath(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ValueError(f"{what} must be UTF-8, as wasmtime opens only UTF-8 paths, but {path!r} is not") from None


def _guest_path(path: Any) -> str:
    return _text(os.fspath(path) if isinstance(path, os.PathLike) else path, "a preopen's guest path")


class _Switch:
    """A WasiConfig setting that is True or False, kept as ``_<name>`` on the config."""

    def __init__(self, doc: str) -> None:
        self.__doc__ = doc

    def __set_name__(self, owner: type, name: str) -> None:
        self.name, self.attribute = name, "_" + name

    @overload
    def __get__(self, config: None, owner: Optional[type] = None) -> "_Switch": ...

    @overload
    def __get__(self, config: "WasiConfig", owner: Optional[type] = None) -> bool: ...

    def __get__(self, config: Optional["WasiConfig"], owner: Optional[type] = None) -> Union["_Switch", bool]:
        return self if config is None else getattr(config, self.attribute)

    def __set__(self, config: "WasiConfig", value: bool) -> None:
        if not isinstance(value, bool):  # a truthy string such as "no" must not open the network
            raise TypeError(f"{self.name} must be True or False, not {type(value).__name__}")
        setattr(config, self.attribute, value)


def _inherited_env() -> Tuple[Tuple[str, str], ...]:
    """This process's environment, checked: wasmtime's own inherit_env aborts the process on non-UTF-8."""
    environ = os.environb if os.supports_bytes_environ else os.environ
    pairs = []
    for name, value in environ.items():
        try:
            pairs.append((_text(name, "name"), _text(value, "value")))
        except ValueError:
            raise ValueError(f"inherit_env=True: the environment variable {name!r} is not valid UTF-8, and "
                             f"wasmtime takes only UTF-8; pass env= with the variables the program needs") from None
    return tuple(pairs)


class WasiConfig:
    """What a WASI program gets: arguments, environment, standard streams and directories.

    The defaults are the safe ones: no arguments, no environment, standard
    streams inherited from this process, no filesystem.

    - ``argv``: the arguments (str or UTF-8 bytes), program name first.
    - ``env``: a mapping of variables (str or UTF-8 bytes); or ``inherit_env=True`` for this
      process's environment, as it is when a store first gives WASI to a module.
    - ``stdin``: ``"inherit"`` (default), bytes (the input itself), a path (str or ``os.PathLike``),
      or a file object (read at once, here).
    - ``stdout`` / ``stderr``: ``"inherit"`` (default), a path (str, bytes or ``os.PathLike``; created
      or truncated), a writable file object (binary such as ``io.BytesIO``, or text, which gets UTF-8
      decoded text), or a callable that receives bytes.
    - ``preopens``: ``(host_path, guest_path)`` or ``(host_path, guest_path, read_only)`` tuples;
      also :meth:`preopen`. The guest reaches nothing outside them.
    - ``network``: True allows every address to ``wasi:sockets``; by default every address is
      refused. But wasmtime 50 also refuses to create TCP and UDP sockets unless told to allow
      them, and its C API cannot tell it: ``create-tcp-socket`` and ``create-udp-socket`` fail
      with ``access-denied`` whatever ``network`` says, so components have no sockets yet.
      ``ip_name_lookup``: True lets components resolve host names (``wasi:sockets/ip-name-lookup``,
      which needs no ``network``); otherwise every lookup fails with ``permanent-resolver-failure``.
      wasmtime's C API has no finer allow list.
    - ``http``: True provides ``wasi:http``: outgoing requests to any host, by name or address.
      wasmtime's HTTP client resolves and connects by itself, so ``network`` and ``ip_name_lookup``
      neither limit it nor are needed. Without ``http=True`` a component importing ``wasi:http``
      fails to instantiate with a LinkError.

    The same settings apply to preview 1 modules and WASI 0.2 components in one store.

    wasmtime takes only UTF-8 text without NUL characters, paths included:
    anything else is a ValueError here, a value of the wrong type a TypeError.
    The settings can be changed (each is checked again) until a store uses them.
    """

    def __init__(self, *, argv: Optional[Sequence[Union[str, bytes]]] = None,
                 env: Optional[Mapping[Union[str, bytes], Union[str, bytes]]] = None, inherit_env: bool = False,
                 stdin: Any = INHERIT, stdout: Output = INHERIT, stderr: Output = INHERIT,
                 preopens: Iterable[Tuple[Any, ...]] = (), network: bool = False, ip_name_lookup: bool = False,
                 http: bool = False) -> None:
        self._env: Optional[Tuple[Tuple[str, str], ...]] = None
        self._inherit_env = False
        self.argv = argv
        self.env = env
        self.inherit_env = inherit_env
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self.network = network
        self.ip_name_lookup = ip_name_lookup
        self.http = http
        self._preopens: Tuple[Tuple[_HostPath, str, bool], ...] = ()
        if isinstance(preopens, (str, bytes, os.PathLike)):
            raise TypeError("preopens must be a sequence of (host_path, guest_path[, read_only]) tuples")
        for entry in preopens:
            if not isinstance(entry, (tuple, list)) or len(entry) not in (2, 3):
                raise TypeError(f"each preopen must be a (host_path, guest_path) or (host_path, guest_path, "
                                f"read_only) tuple, not {entry!r}")
            self.preopen(*entry)

    @property
    def argv(self) -> Optional[Tuple[str, ...]]:
        """The arguments, program name first; None for none at all."""
        return self._argv

    @argv.setter
    def argv(self, argv: Optional[Sequence[Union[str, bytes]]]) -> None:
        if isinstance(argv, (str, bytes)):
            raise TypeError("argv must be a sequence of arguments, not a single string")
        if argv is None:
            self._argv = None
            return
        try:
            arguments = iter(argv)
        except TypeError:
            raise TypeError(f"argv must be a sequence of str or bytes arguments, not {type(argv).__name__}") from None
        self._argv = tuple(_text(arg, "an argument") for arg in arguments)

    @property
    def env(self) -> Optional[Tuple[Tuple[str, str], ...]]:
        """The environment as ``(name, value)`` pairs; None for none (or for ``inherit_env``)."""
        return self._env

    @env.setter
    def env(self, env: Optional[Mapping[Union[str, bytes], Union[str, bytes]]]) -> None:
        if env is None:
            self._env = None
            return
        if self._inherit_env:
            raise ValueError("give env or inherit_env=True, not both")
        if not isinstance(env, collections.abc.Mapping):
            raise TypeError(f"env must be a mapping of names to values, not {type(env).__name__}")
        pairs = []
        for name, value in env.items():
            name = _text(name, "an environment name")
            if not name or "=" in name:
                raise ValueError(f"an environment name must be non-empty and without '=', not {name!r}")
            pairs.append((name, _text(value, f"the value of the environment variable {name!r}")))
        self._env = tuple(pairs)

    @property
    def inherit_env(self) -> bool:
        """True: the program sees this process's environment (checked when a store first uses it)."""
        return self._inherit_env

    @inherit_env.setter
    def inherit_env(self, inherit: bool) -> None:
        if inherit and self._env is not None:
            raise ValueError("give env or inherit_env=True, not both")
        self._inherit_env = bool(inherit)

    @property
    def stdin(self) -> Any:
        """``"inherit"``, the input as bytes, or a path."""
        return self._stdin

    @stdin.setter
    def stdin(self, stdin: Any) -> None:
        self._stdin = self._check_stdin(stdin)

    @property
    def stdout(self) -> Any:
        """``"inherit"``, a path, or what receives the output (a file's ``write`` or a callable)."""
        return self._stdout

    @stdout.setter
    def stdout(self, stdout: Output) -> None:
        self._stdout = self._check_output(stdout, "stdout")

    @property
    def stderr(self) -> Any:
        """Like :attr:`stdout`, for the error stream."""
        return self._stderr

    @stderr.setter
    def stderr(self, stderr: Output) -> None:
        self._stderr = self._check_output(stderr, "stderr")

    network = _Switch("True: ``wasi:sockets`` may use any address (wasmtime 50 creates no TCP or UDP "
                      "socket all the same; see the class docstring).")
    ip_name_lookup = _Switch("True: components may resolve host names (``wasi:sockets/ip-name-lookup``).")
    http = _Switch("True: components may make outgoing HTTP requests (``wasi:http``).")

    @property
    def preopens(self) -> Tuple[Tuple[str, str, bool], ...]:
        """The preopened directories as ``(host_path, guest_path, read_only)``; add more with :meth:`preopen`."""
        return self._preopens

    def preopen(self, host_path: PathLike, guest_path: Union[str, bytes, "os.PathLike[str]"],
                read_only: bool = False) -> None:
        """Lets the guest use the directory ``host_path`` as ``guest_path``; FileNotFoundError if it is missing."""
        host = _host_path(host_path, "a preopen's host path")
        guest = _guest_path(guest_path)
        if not os.path.isdir(host.encode("utf-8")):  # the bytes wasmtime will open
            raise FileNotFoundError(f"cannot preopen {host_path!r}: not a directory")
        self._preopens += ((host, guest, bool(read_only)),)  # a new tuple: copies of the config stay apart

    @staticmethod
    def _check_stdin(stdin: Any) -> Any:
        if isinstance(stdin, _HostPath):
            return stdin
        if type(stdin) is str and stdin == INHERIT:
            return INHERIT
        if isinstance(stdin, (bytes, bytearray, memoryview)):
            return bytes(stdin)
        if isinstance(stdin, (str, os.PathLike)):
            return _host_path(stdin, "the stdin path")
        if hasattr(stdin, "read"):  # read now, so that every store using this config sees the same input
            data = stdin.read()
            if isinstance(data, str):
                try:
                    return data.encode("utf-8")
                except UnicodeEncodeError:
                    raise ValueError("stdin: the text read holds a lone surrogate, so it is not "
                                     "valid UTF-8; read it in binary mode") from None
            try:
                return bytes(memoryview(data))
            except TypeError:
                raise TypeError(f"stdin: read() returned {type(data).__name__}, not bytes or str") from None
        raise TypeError(f"stdin must be 'inherit', bytes, a path or a binary file object, not {type(stdin).__name__}")

    @staticmethod
    def _check_output(output: Any, name: str) -> Any:
        if isinstance(output, _HostPath):
            return output
        if type(output) is str and output == INHERIT:
            return INHERIT
        if isinstance(output, (str, bytes, os.PathLike)):
            return _host_path(output, f"the {name} path")
        if isinstance(output, io.TextIOBase):  # e.g. sys.stdout or io.StringIO: write text
            return lambda data: output.write(data.decode("utf-8", "replace"))
        if hasattr(output, "write") or callable(output):
            return output
        raise TypeError(f"{name} must be 'inherit', a path, a writable binary file object or a callable, "
                        f"not {type(output).__name__}")

    def _to_c(self, handle: Any):
        """A new ``wasi_config_t *`` for the store of ``handle`` (a StoreHandle), which queues what
        wasm writes to Python streams."""
        config = lib.wasi_config_new()
        try:
            self._configure(config, handle)
        except BaseException:
            lib.wasi_config_delete(config)
            raise
        return config

    def _configure(self, config, handle: Any) -> None:
        # Every string below was checked when it was set: UTF-8, no NUL.
        argv = [ffi.new("char[]", arg.encode("utf-8")) for arg in self._argv or ()]
        if not lib.wasi_config_set_argv(config, len(argv), argv):
            raise WasmError("cannot set the WASI arguments")
        env = _inherited_env() if self._inherit_env else self._env or ()
        names = [ffi.new("char[]", name.encode("utf-8")) for name, _ in env]
        values = [ffi.new("char[]", value.encode("utf-8")) for _, value in env]
        if not lib.wasi_config_set_env(config, len(names), names, values):
            raise WasmError("cannot set the WASI environment")
        self._configure_stdin(config)
        for output, inherit, to_file, custom, name in (
                (self._stdout, lib.wasi_config_inherit_stdout, lib.wasi_config_set_stdout_file,
                 lib.wasi_config_set_stdout_custom, "stdout"),
                (self._stderr, lib.wasi_config_inherit_stderr, lib.wasi_config_set_stderr_file,
                 lib.wasi_config_set_stderr_custom, "stderr")):
            if isinstance(output, _HostPath):
                if not to_file(config, output.encode("utf-8")):
                    raise OSError(f"cannot open {output!r} for the WASI {name}")
            elif output is INHERIT:
                inherit(config)
            else:
                if _python_streams_lost:
                    raise WasmError(
                        f"WASI {name} to a Python stream cannot work in a process forked after WASI ran in its "
                        "parent: wasmtime writes such streams on its I/O threads, which fork() does not copy. Give "
                        "a file path or 'inherit', or start the process with the 'spawn' or 'forkserver' method")
                # wasmtime writes from inside fd_write, with the store locked, maybe on a thread of
                # its own: the bytes are queued and the stream called where the store is usable.
                callback, data, finalizer = output_stream(handle, output.write if hasattr(output, "write") else output)
                custom(config, ffi.cast("ssize_t (*)(void *, const unsigned char *, size_t)", callback),
                       ffi.cast("void *", data), ffi.cast("void (*)(void *)", finalizer))
        if self.network:
            lib.wasi_config_inherit_network(config)
        lib.wasi_config_allow_ip_name_lookup(config, self.ip_name_lookup)
        for host, guest, read_only in self._preopens:
            if not lib.wasi_config_preopen_dir(config, host.encode("utf-8"), guest.encode("utf-8"), not read_only):
                raise OSError(f"cannot preopen {host!r} as {guest!r}")

    def _configure_stdin(self, config) -> None:
        stdin = self._stdin
        if isinstance(stdin, _HostPath):
            if not lib.wasi_config_set_stdin_file(config, stdin.encode("utf-8")):
                raise FileNotFoundError(f"cannot open {stdin!r} for the WASI stdin")
            return
        if stdin is INHERIT:
            lib.wasi_config_inherit_stdin(config)
            return
        vec = ffi.new("wasm_byte_vec_t *")
        lib.wasm_byte_vec_new(vec, len(stdin), ffi.from_buffer(stdin))
        lib.wasi_config_set_stdin_bytes(config, vec)  # takes the bytes

    def __repr__(self) -> str:
        return (f"WasiConfig(argv={self._argv!r}, env={'inherit' if self._inherit_env else self._env!r}, "
                f"stdin={self._stdin!r}, stdout={self._stdout!r}, stderr={self._stderr!r}, "
                f"preopens={self._preopens!r}, network={self.network}, ip_name_lookup={self.ip_name_lookup}, "
                f"http={self.http})")

