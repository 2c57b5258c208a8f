"""The components group: calls of a component's functions from Python, wasmpy against
``wasmtime.component`` of the ``wasmtime`` package, on the same component.

The component is the committed test component tests/components/rich.wasm (rich.wit: its
sources and build script are beside it). Its ``api`` interface's ``roundtrip-*`` exports pass
their argument to the matching ``echo-*`` import of ``host`` (a Python function here, the
identity) and return what it returned: so the record and list rows convert the value four
times (argument, import argument, import result, result), on both runtimes alike. ``call-log``
passes its string to the ``log`` import (a Python function that does nothing).

Each runtime gets the component's imports from Python in its own API; the package's calls are
``func(store, *args)``, without ``func.post_return(store)`` (wasmtime 50 calls again without it,
and leaving it out can only favour the package).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

from .timing import Case, Stmt, measure

RICH = Path(__file__).resolve().parent.parent / "tests" / "components" / "rich.wasm"
HOST = "test:rich/host@0.1.0"
API = "test:rich/api@0.1.0"
LIST_LENGTH = 1000

# key, label, where (None: the world; else the interface), export, arguments (as a function of the
# runtime's record maker), expected result (the same function of it)
CASES: List[Tuple[str, str, Any, str]] = [
    ("nothing", "nothing()  no arguments, no result", None, "nothing"),
    ("greet", 'greet("world")  string -> string', None, "greet"),
    ("add", "add(1, 2)  u32, u32 -> u32", None, "add"),
    ("record", "api.roundtrip-point(p)  record {x, y: s32}, through a Python import", API, "roundtrip-point"),
    ("list_u32", f"api.roundtrip-list-u32(xs)  list<u32> of {LIST_LENGTH:,}, through a Python import", API,
     "roundtrip-list-u32"),
    ("import", 'call-log("hello")  wasm -> a Python import taking a string', None, "call-log"),
]


def _host_functions() -> Dict[str, Callable[..., Any]]:
    """The Python imports of rich.wasm, by WIT name: each echo-* is the identity."""
    import wasmpy
    component = wasmpy.Component.from_file(RICH)
    functions = {name: (lambda *args: args[0]) for name in component.imports.interfaces[HOST].functions}
    functions["get-name"] = lambda: "host"
    return functions


# The column of wasmpy on Engine(concurrency_support=False): wasmtime's own cost of a call halves.
NO_CONCURRENCY = "wasmpy-noasync"


def _wasmpy_stmts(concurrency_support: bool = True) -> Dict[str, Stmt]:
    import wasmpy
    component = wasmpy.Component.from_file(RICH, wasmpy.Engine(concurrency_support=concurrency_support))
    exports = wasmpy.Instance(component, {HOST: _host_functions(), "log": lambda message: None}).exports
    point = exports.api.Point(1, 2)
    numbers = list(range(LIST_LENGTH))
    api = exports.api
    checks = [(exports.nothing(), None), (exports.greet("world"), "Hello, world!"), (exports.add(1, 2), 3),
              (api.roundtrip_point(point), point), (api.roundtrip_list_u32(numbers), numbers),
              (exports.call_log("hello"), None)]
    _check(checks)
    return {"nothing": ("f()", {"f": exports.nothing}), "greet": ('f("world")', {"f": exports.greet}),
            "add": ("f(1, 2)", {"f": exports.add}), "record": ("f(p)", {"f": api.roundtrip_point, "p": point}),
            "list_u32": ("f(xs)", {"f": api.roundtrip_list_u32, "xs": numbers}),
            "import": ('f("hello")', {"f": exports.call_log})}


def _package_stmts() -> Dict[str, Stmt]:
    import wasmtime
    from wasmtime import component as wc
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    component = wc.Component.from_file(engine, str(RICH))
    linker = wc.Linker(engine)
    with linker.root() as root:
        with root.add_instance(HOST) as host:
            for name, function in _host_functions().items():
                host.add_func(name, lambda store, *args, _f=function: _f(*args))
        root.add_func("log", lambda store, message: None)
    instance = linker.instantiate(store, component)
    api = instance.get_export_index(store, API)

    def func(name: str, parent: Any = None) -> Any:
        found = instance.get_func(store, instance.get_export_index(store, name, parent) if parent else name)
        if found is None:
            raise LookupError(name)
        return found

    def call(function: Any, *args: Any) -> Any:
        return function(store, *args)

    point = wc.Record()
    point.x, point.y = 1, 2
    numbers = list(range(LIST_LENGTH))
    nothing, greet, add, log = func("nothing"), func("greet"), func("add"), func("call-log")
    roundtrip_point, roundtrip_list = func("roundtrip-point", api), func("roundtrip-list-u32", api)
    got_point = call(roundtrip_point, point)
    _check([(call(nothing), None), (call(greet, "world"), "Hello, world!"), (call(add, 1, 2), 3),
            ((got_point.x, got_point.y), (1, 2)), (call(roundtrip_list, numbers), numbers), (call(log, "hello"), None)])

    def stmt(text: str, function: Any, **names: Any) -> Stmt:
        return text, {"f": function, "s": store, **names}
    return {"nothing": stmt("f(s)", nothing), "greet": stmt('f(s, "world")', greet), "add": stmt("f(s, 1, 2)", add),
            "record": stmt("f(s, p)", roundtrip_point, p=point),
            "list_u32": stmt("f(s, xs)", roundtrip_list, xs=numbers), "import": stmt('f(s, "hello")', log)}


def _check(checks: List[Tuple[Any, Any]]) -> None:
    for got, want in checks:
        if got != want:
            raise AssertionError(f"a component call returned {got!r:.80}, expected {want!r:.80}")


MAKERS = {"wasmpy": _wasmpy_stmts, "wasmtime": _package_stmts}
EXTRA_COLUMNS = {"wasmpy": (NO_CONCURRENCY, lambda: _wasmpy_stmts(concurrency_support=False))}


def components(ctx: Any) -> Any:
    from .suite import Group, _row
    made: Dict[str, Dict[str, Stmt]] = {}
    errors: Dict[str, str] = {}
    makers = [(runtime.name, MAKERS[runtime.name]) for runtime in ctx.runtimes if runtime.name in MAKERS]
    makers += [EXTRA_COLUMNS[name] for name, _ in list(makers) if name in EXTRA_COLUMNS]
    for name, maker in makers:
        try:
            made[name] = maker()
        except Exception as error:
            errors[name] = f"{type(error).__name__}: {error}"
            ctx.log(f"  {name}: cannot call the component: {errors[name]}")
    rows = []
    for key, label, _, _ in CASES:
        cases = {name: Case(lambda stmt=stmts[key]: stmt, unroll=1 if key == "list_u32" else 10)
                 for name, stmts in made.items()}
        ctx.log(f"  {label}")
        rows.append(_row(key, label, "ns", measure(cases, ctx.settings), errors))
    group = Group("components", "Component calls from Python (ns per call)", rows)
    group.notes.append(f"the same component (tests/components/rich.wasm) on both, on default engines (wasmtime's "
                       f"concurrency_support on); column {NO_CONCURRENCY}: wasmpy on "
                       "Engine(concurrency_support=False); the package's calls leave out post_return(store), which "
                       "wasmtime 50 does without")
    return group
