"""The runtimes compared: wasmpy and its peers, behind one small adapter interface.

Every adapter turns the same wasm bytes into an instance and describes each
operation as a Python statement plus the local names it uses (``f(1, 2)``
with ``f`` bound to wasmpy's export, ``f(s, 1, 2)`` with ``f`` and ``s``
bound to the wasmtime package's function and store, ...). The timing loops
are generated from those statements, so each runtime is called the way its
own users would call it, with no wrapper in between.

Peers are optional: a peer that cannot be imported is reported (with the
reason) and left out of the measurements.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Dict, List, Optional, Tuple

Stmt = Tuple[str, Dict[str, Any]]  # a statement and the names it uses
# A statement of the values group and its check, run once before timing (raises AssertionError if the
# runtime does not do what the statement claims).
ValuesCase = Tuple[Stmt, Callable[[], None]]

# Exactly what `pip install` needs for the peers (a `bench` extra).
PEER_REQUIREMENTS = {"wasmtime": "wasmtime==50.0.1", "pywasm3": "pywasm3==0.5.0"}

WASM3_STACK_BYTES = 64 * 1024


def _host(x: int) -> int:
    """The Python function that wasm calls in the host-call benchmarks: i32 -> i32, the identity."""
    return x


def _host_ref(x):  # type: ignore[no-untyped-def]  (wasmpy would check annotations against the import)
    """The Python function that wasm calls in the externref host-call benchmark: the identity."""
    return x


class Payload:
    """The Python object the values group hands to wasm as a reference (truthy, compared by identity)."""


PAYLOAD = Payload()
V128 = 0x0123456789ABCDEF_FEDCBA9876543210   # the v128 argument, as an int


def _check(got: Any, want: Any, what: str, identical: bool = False) -> None:
    if (got is not want) if identical else (got != want):
        raise AssertionError(f"{what} gave {got!r}, expected {want!r}")


def _run(stmt: Stmt) -> None:
    """Runs a statement once, as its timing loop will."""
    exec(stmt[0], {}, dict(stmt[1]))


class Instance:
    """One instance of a module in one runtime (in a store of its own)."""

    def call_stmt(self, export: str, args: str, name: str = "f") -> Stmt:
        """``name(args)`` (or the runtime's equivalent), with ``name`` bound to the export."""
        raise NotImplementedError

    def call(self, export: str, *args: Any) -> Any:
        raise NotImplementedError

    def memory_view(self) -> memoryview:
        """A zero-copy, writable, format 'B' view of the export ``memory``."""
        raise NotImplementedError

    def read16_stmt(self, offset: int) -> Stmt:
        raise NotImplementedError

    def write16_stmt(self, offset: int, data: bytes) -> Stmt:
        raise NotImplementedError

    def view_stmt(self) -> Optional[Stmt]:
        """A statement that takes a new zero-copy view of the memory, or None."""
        return None

    def values_case(self, key: str) -> Optional[ValuesCase]:
        """The values group's benchmark ``key`` (see suite.VALUES) on an instance of the values module:
        its statement and check, or None where the runtime has no such operation."""
        return None


class Runtime:
    name = ""
    distribution = ""           # the PyPI distribution
    requirement: Optional[str] = None
    # At most this many instantiations per round (None: no bound), for a runtime that never frees them.
    instantiate_max_ops: Optional[int] = None
    reference_types = True      # whether it loads the values module (externref, funcref, v128)
    compiles = True             # whether it compiles wasm to machine code (not an interpreter)

    def __init__(self) -> None:
        self.available = False
        self.version: Optional[str] = None
        self.error: Optional[str] = None
        try:
            self._load()
            self.available = True
        except Exception as error:  # ImportError, or a broken build of a peer
            self.error = f"{type(error).__name__}: {error}"

    def _load(self) -> None:
        raise NotImplementedError

    def _distribution_version(self) -> Optional[str]:
        try:
            from importlib.metadata import version
            return version(self.distribution)
        except Exception:
            return None

    def describe(self) -> Dict[str, Any]:
        return {"available": self.available, "version": self.version, "requirement": self.requirement,
                "error": self.error}

    # What each runtime implements.
    def instantiate(self, wasm: bytes, host: Optional[Callable[[int], int]] = None,
                    host_ref: Optional[Callable[[Any], Any]] = None) -> Instance:
        """An instance in a new store; ``host`` satisfies the import ``env.host`` (i32 -> i32) and
        ``host_ref`` the import ``env.host_ref`` (externref -> externref), if given."""
        raise NotImplementedError

    def instantiate_stmts(self, wasm: bytes) -> Dict[str, Optional[Callable[[], Stmt]]]:
        """Statements that instantiate ``wasm`` again (``new_store``: in a new store;
        ``new_store_call``: the same, then call the export ``add(1, 2)``; ``same_store``: into one
        existing store; ``with_import``: in a new store, with ``env.host`` given as a Python function),
        as factories called once per round; None when not supported."""
        raise NotImplementedError


# --- wasmpy


class WasmpyInstance(Instance):
    def __init__(self, rt: "Wasmpy", wasm: bytes, host: Optional[Callable], host_ref: Optional[Callable]) -> None:
        wasmpy = self.wasmpy = rt.wasmpy
        env = {name: fn for name, fn in (("host", host), ("host_ref", host_ref)) if fn is not None}
        imports = {"env": env} if env else None
        self.store = wasmpy.Store(rt.engine)
        self.instance = wasmpy.Instance(wasmpy.Module(wasm, rt.engine), imports, self.store)
        self.exports = self.instance.exports

    def call_stmt(self, export: str, args: str, name: str = "f") -> Stmt:
        return f"{name}({args})", {name: self.exports[export]}

    def call(self, export: str, *args: Any) -> Any:
        return self.exports[export](*args)

    def memory_view(self) -> memoryview:
        return memoryview(self.exports["memory"])

    def read16_stmt(self, offset: int) -> Stmt:
        return "m.read(o, 16)", {"m": self.exports["memory"], "o": offset}

    def write16_stmt(self, offset: int, data: bytes) -> Stmt:
        return "m.write(o, d)", {"m": self.exports["memory"], "o": offset, "d": data}

    def view_stmt(self) -> Stmt:
        return "memoryview(m)", {"m": self.exports["memory"]}

    def values_case(self, key: str) -> Optional[ValuesCase]:
        exports, Val, i32 = self.exports, self.wasmpy.Val, self.wasmpy.ValType.i32
        if key in ("externref", "anyref", "host_ref"):
            f = exports[{"externref": "ident_ref", "anyref": "ident_any", "host_ref": "callhost_ref"}[key]]
            return ("f(o)", {"f": f, "o": PAYLOAD}), lambda: _check(f(PAYLOAD), PAYLOAD, key, identical=True)
        if key == "funcref":
            f, add = exports["ident_func"], exports["add"]
            return ("f(g)", {"f": f, "g": add}), lambda: _check(f(add)(1, 2), 3, "ident_func(add)(1, 2)")
        if key == "v128":
            f = exports["ident_v128"]
            return ("f(x)", {"f": f, "x": V128}), lambda: _check(f(V128), V128, key)
        if key == "val_args":
            f, a, b = exports["add"], Val(i32, 1), Val(i32, 2)
            return ("f(a, b)", {"f": f, "a": a, "b": b}), lambda: _check(f(a, b), 3, key)
        if key == "call_vals":
            f = exports["add"]
            return ("f.call_vals(1, 2)", {"f": f}), lambda: _check(f.call_vals(1, 2), (Val(i32, 3),), key)
        g, t = exports["counter"], exports["objects"]
        if key == "global_get":
            g.value = 7
            return ("g.value", {"g": g}), lambda: _check(g.value, 7, key)
        if key == "global_set":
            stmt = "g.value = 5", {"g": g}
            return stmt, lambda: (_run(stmt), _check(g.value, 5, key))
        if key == "table_get":
            t[0] = PAYLOAD
            return ("t[0]", {"t": t}), lambda: _check(t[0], PAYLOAD, key, identical=True)
        if key == "table_set":
            t[0] = None
            stmt = "t[0] = o", {"t": t, "o": PAYLOAD}
            return stmt, lambda: (_run(stmt), _check(t[0], PAYLOAD, key, identical=True))
        return None


class Wasmpy(Runtime):
    name = "wasmpy"
    distribution = "wasmpy"
    engine_options: Dict[str, Any] = {}     # none: the default engine, as users get it

    def _load(self) -> None:
        self.wasmpy = importlib.import_module("wasmpy")
        self.version = f"{self._distribution_version() or 'source tree'} (wasmtime {self.wasmpy.WASMTIME_VERSION})"
        self.engine = self.wasmpy.Engine(**self.engine_options) if self.engine_options else None

    def instantiate(self, wasm: bytes, host: Optional[Callable] = None,
                    host_ref: Optional[Callable] = None) -> Instance:
        return WasmpyInstance(self, wasm, host, host_ref)

    def instantiate_stmts(self, wasm: bytes) -> Dict[str, Optional[Callable[[], Stmt]]]:
        wasmpy = self.wasmpy
        module = wasmpy.Module(wasm, self.engine)
        return {
            "new_store": lambda: ("I(m)", {"I": wasmpy.Instance, "m": module}),
            "new_store_call": lambda: ("I(m).exports.add(1, 2)", {"I": wasmpy.Instance, "m": module}),
            "same_store": lambda: ("I(m, None, s)",
                                   {"I": wasmpy.Instance, "m": module, "s": wasmpy.Store(self.engine)}),
            "with_import": lambda: ("I(m, {'env': {'host': h}})",
                                    {"I": wasmpy.Instance, "m": module, "h": _host}),
        }


class WasmpyNoEpoch(Wasmpy):
    """wasmpy on an engine without epoch interruption (on by default: it lets deadlines and Ctrl-C stop
    running wasm): a column of the compute group, the same engine settings as the wasmtime package's."""

    name = "wasmpy-noepoch"
    engine_options = {"epoch_interruption": False}


class WasmpyPooled(Wasmpy):
    """wasmpy on an engine with an instance pool: a column of the instantiate group."""

    name = "wasmpy-pool"
    pool_size = 1000
    engine_options = {"instance_pool": pool_size}

    def instantiate_stmts(self, wasm: bytes) -> Dict[str, Optional[Callable[[], Stmt]]]:
        # A round puts thousands of instances into one store: more than the pool holds.
        return dict(super().instantiate_stmts(wasm), same_store=None)


# --- the wasmtime package (PyPI `wasmtime`, ctypes over the same C API)


class WasmtimeInstance(Instance):
    def __init__(self, rt: "WasmtimePackage", wasm: bytes, host: Optional[Callable],
                 host_ref: Optional[Callable]) -> None:
        wasmtime = self.wasmtime = rt.wasmtime
        self.store = rt.new_store()
        module = wasmtime.Module(rt.engine, wasm)
        imports: List[Any] = []  # in import order: env.host comes first in a module importing both
        if host is not None:
            imports.append(wasmtime.Func(self.store, rt.host_type(), host))
        if host_ref is not None:
            externref = wasmtime.ValType.externref()
            imports.append(wasmtime.Func(self.store, wasmtime.FuncType([externref], [externref]), host_ref))
        self.instance = wasmtime.Instance(self.store, module, imports)
        self.exports = self.instance.exports(self.store)

    def call_stmt(self, export: str, args: str, name: str = "f") -> Stmt:
        return f"{name}(s, {args})" if args else f"{name}(s)", {name: self.exports[export], "s": self.store}

    def call(self, export: str, *args: Any) -> Any:
        return self.exports[export](self.store, *args)

    def memory_view(self) -> memoryview:
        return memoryview(self.exports["memory"].get_buffer_ptr(self.store)).cast("B")

    def read16_stmt(self, offset: int) -> Stmt:
        return "m.read(s, o, e)", {"m": self.exports["memory"], "s": self.store, "o": offset, "e": offset + 16}

    def write16_stmt(self, offset: int, data: bytes) -> Stmt:
        return "m.write(s, d, o)", {"m": self.exports["memory"], "s": self.store, "o": offset, "d": data}

    def view_stmt(self) -> Stmt:
        return "memoryview(m.get_buffer_ptr(s))", {"m": self.exports["memory"], "s": self.store}

    def values_case(self, key: str) -> Optional[ValuesCase]:
        # The package has no anyref, no v128 values and no call returning Vals.
        exports, s, Val = self.exports, self.store, self.wasmtime.Val
        if key in ("externref", "host_ref"):
            f = exports["ident_ref" if key == "externref" else "callhost_ref"]
            return ("f(s, o)", {"f": f, "s": s, "o": PAYLOAD}), lambda: _check(f(s, PAYLOAD), PAYLOAD, key,
                                                                               identical=True)
        if key == "funcref":
            f, add = exports["ident_func"], exports["add"]
            return ("f(s, g)", {"f": f, "s": s, "g": add}), lambda: _check(f(s, add)(s, 1, 2), 3,
                                                                            "ident_func(add)(1, 2)")
        if key == "val_args":
            f, a, b = exports["add"], Val.i32(1), Val.i32(2)
            return ("f(s, a, b)", {"f": f, "s": s, "a": a, "b": b}), lambda: _check(f(s, a, b), 3, key)
        g, t = exports["counter"], exports["objects"]
        if key == "global_get":
            g.set_value(s, 7)
            return ("g.value(s)", {"g": g, "s": s}), lambda: _check(g.value(s), 7, key)
        if key == "global_set":
            stmt = "g.set_value(s, 5)", {"g": g, "s": s}
            return stmt, lambda: (_run(stmt), _check(g.value(s), 5, key))
        if key == "table_get":
            t.set(s, 0, PAYLOAD)
            return ("t.get(s, 0)", {"t": t, "s": s}), lambda: _check(t.get(s, 0), PAYLOAD, key, identical=True)
        if key == "table_set":
            t.set(s, 0, None)
            stmt = "t.set(s, 0, o)", {"t": t, "s": s, "o": PAYLOAD}
            return stmt, lambda: (_run(stmt), _check(t.get(s, 0), PAYLOAD, key, identical=True))
        return None


class WasmtimePackage(Runtime):
    name = "wasmtime"
    distribution = "wasmtime"
    requirement = PEER_REQUIREMENTS["wasmtime"]

    def _load(self) -> None:
        self.wasmtime = importlib.import_module("wasmtime")
        self.version = self._distribution_version()
        self.engine = self.wasmtime.Engine(self._config())

    def _config(self) -> Any:
        return self.wasmtime.Config()  # the package's defaults, as its users get them

    def new_store(self) -> Any:
        return self.wasmtime.Store(self.engine)

    def host_type(self) -> Any:
        i32 = self.wasmtime.ValType.i32()
        return self.wasmtime.FuncType([i32], [i32])

    def instantiate(self, wasm: bytes, host: Optional[Callable] = None,
                    host_ref: Optional[Callable] = None) -> Instance:
        return WasmtimeInstance(self, wasm, host, host_ref)

    def instantiate_stmts(self, wasm: bytes) -> Dict[str, Optional[Callable[[], Stmt]]]:
        wasmtime, engine = self.wasmtime, self.engine
        module = wasmtime.Module(engine, wasm)
        base = {"I": wasmtime.Instance, "S": wasmtime.Store, "g": engine, "m": module}
        return {
            "new_store": lambda: ("I(S(g), m, [])", base),
            "new_store_call": lambda: ("s = S(g); I(s, m, []).exports(s)['add'](s, 1, 2)", base),
            "same_store": lambda: ("I(s, m, [])", dict(base, s=wasmtime.Store(engine))),
            "with_import": lambda: ("s = S(g); I(s, m, [F(s, t, h)])",
                                    dict(base, F=wasmtime.Func, t=self.host_type(), h=_host)),
        }


class WasmtimeEpoch(WasmtimePackage):
    """The wasmtime package on an engine that checks epochs, like wasmpy's default engine: a column of
    the compute group, the same engine settings as wasmpy's (no epoch ever passes its deadline)."""

    name = "wasmtime-epoch"

    def _config(self) -> Any:
        config = super()._config()
        config.epoch_interruption = True
        return config

    def new_store(self) -> Any:
        store = super().new_store()
        store.set_epoch_deadline(2**62)
        return store


# --- pywasm3 (the wasm3 interpreter)


class Wasm3Instance(Instance):
    def __init__(self, rt: "Pywasm3", wasm: bytes, host: Optional[Callable]) -> None:
        self.env = rt.wasm3.Environment()
        self.runtime = self.env.new_runtime(WASM3_STACK_BYTES)
        self.module = self.env.parse_module(wasm)
        self.runtime.load(self.module)
        if host is not None:
            self.module.link_function("env", "host", "i(i)", host)
        self._functions: Dict[str, Any] = {}
        self._view: Optional[memoryview] = None

    def _function(self, export: str) -> Any:
        if export not in self._functions:
            self._functions[export] = self.runtime.find_function(export)
        return self._functions[export]

    def call_stmt(self, export: str, args: str, name: str = "f") -> Stmt:
        return f"{name}({args})", {name: self._function(export)}

    def call(self, export: str, *args: Any) -> Any:
        return self._function(export)(*args)

    def memory_view(self) -> memoryview:
        # get_memory() allocates a Py_buffer it never frees: take one view and keep it.
        if self._view is None:
            self._view = self.runtime.get_memory(0)
        return self._view

    # pywasm3 has no read/write methods: the nearest is slicing its memoryview.
    def read16_stmt(self, offset: int) -> Stmt:
        return "bytes(v[o:e])", {"v": self.memory_view(), "o": offset, "e": offset + 16}

    def write16_stmt(self, offset: int, data: bytes) -> Stmt:
        return "v[o:e] = d", {"v": self.memory_view(), "o": offset, "e": offset + 16, "d": data}


class Pywasm3(Runtime):
    name = "pywasm3"
    distribution = "pywasm3"
    requirement = PEER_REQUIREMENTS["pywasm3"]
    # pywasm3 never frees a runtime or a module (no finalizers): every instantiation leaks its
    # stack and its linear memory, so instantiation rounds are kept short.
    instantiate_max_ops = 64
    reference_types = False     # nor SIMD, nor an API for globals and tables
    compiles = False            # an interpreter

    def _load(self) -> None:
        self.wasm3 = importlib.import_module("wasm3")
        self.version = f"{self._distribution_version()} (wasm3 {getattr(self.wasm3, 'M3_VERSION', '?')})"

    def instantiate(self, wasm: bytes, host: Optional[Callable] = None,
                    host_ref: Optional[Callable] = None) -> Instance:
        if host_ref is not None:
            raise NotImplementedError("pywasm3 has no reference types")
        return Wasm3Instance(self, wasm, host)

    def instantiate_stmts(self, wasm: bytes) -> Dict[str, Optional[Callable[[], Stmt]]]:
        # wasm3 has no separately compiled module: "instantiating" is parsing the bytes and loading
        # them into a new runtime (it compiles each function lazily, at its first call).
        env = self.wasm3.Environment()
        base = {"N": env.new_runtime, "P": env.parse_module, "w": wasm, "k": WASM3_STACK_BYTES}
        return {
            "new_store": lambda: ("N(k).load(P(w))", base),
            "new_store_call": lambda: ("r = N(k); r.load(P(w)); r.find_function('add')(1, 2)", base),
            "same_store": None,  # a wasm3 runtime cannot load a module of the same name twice
            "with_import": lambda: ("x = P(w); N(k).load(x); x.link_function('env', 'host', 'i(i)', h)",
                                    dict(base, h=_host)),
        }


def all_runtimes() -> List[Runtime]:
    """wasmpy first, then the peers (available or not)."""
    return [Wasmpy(), WasmtimePackage(), Pywasm3()]
