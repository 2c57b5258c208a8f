"""The ``wasmpy`` command line: run, inspect and compile WebAssembly modules and components."""

from __future__ import annotations

import argparse
import os
import resource
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union, cast

from ._engine import Engine
from ._errors import ExitTrap, Trap, WasmError
from ._func import Func
from ._hook import compile_to_cache, configure_import_hook, holds_component, load_cached
from ._instance import Instance
from ._module import Module
from ._run import command_export, program_name, run_command
from ._store import Store
from ._types import FuncType, ValType
from ._wasi import WasiConfig
from .component import Component, ComponentInstance
from .component._types import InterfaceType

# Like `wasmtime run`: a trap ends the process as an abort would.
TRAP_EXIT_STATUS = 134


class CommandError(Exception):
    """A one-line error for the user: the file or the wasm failed (exit status 1)."""

    status = 1


class UsageError(CommandError):
    """The command line asks for what cannot be done as written (exit status 2, as argparse's errors)."""

    status = 2


# The most fuel a store holds (wasmtime counts it in a u64).
MAX_FUEL = 2**64 - 1

# Integer parameter types and their widths: an argument may be written signed or unsigned,
# as Func calls accept it (wasm reads the same bits either way).
INTEGER_BITS = {ValType.i32: 32, ValType.i64: 64, ValType.v128: 128}


def _directory(spec: str) -> Tuple[str, str]:
    host, _, guest = spec.partition("::")
    return host, guest or host


def _env_pair(spec: str) -> Tuple[str, str]:
    name, equals, value = spec.partition("=")
    if not equals or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {spec!r}")
    return name, value


def _fuel(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 0 <= value <= MAX_FUEL:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 2**64-1, got {text!r}")
    return value


# Units --max-wasm-stack takes after its number: 8M, 16MiB, 512k...
_BYTE_UNITS = {"": 1, "k": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gib": 1 << 30}


def _stack_bytes(text: str) -> int:
    number = text.strip().lower()
    digits = number.rstrip("kmgib")
    unit = _BYTE_UNITS.get(number[len(digits):]) if not digits.lower().startswith("0x") else None
    try:
        value = int(number, 0) if unit is None else int(digits, 0) * unit
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of bytes (like 16777216, 0x1000000 or 16M), "
                                         f"got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of bytes, got {text!r}")
    return value


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


class _VersionAction(argparse.Action):
    """``--version``: prints wasmpy's version and wasmtime's, and exits (the version is read only then)."""

    def __init__(self, option_strings: Sequence[str], dest: str, help: Optional[str] = None) -> None:
        super().__init__(option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, nargs=0, help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: Optional[str] = None) -> None:
        from . import WASMTIME_VERSION, __version__

        print(f"wasmpy {__version__} (wasmtime {WASMTIME_VERSION})")
        parser.exit()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wasmpy", description="Run and inspect WebAssembly modules.")
    parser.add_argument("--version", action=_VersionAction, help="print wasmpy's version and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = commands.add_parser("run", help="run a WASI program, or call one export",
                              description="Runs FILE's _start (a WASI command), or the wasi:cli/run of a "
                                          "WASI 0.2 command component, and exits with its status, or with "
                                          "--invoke calls one export of a module with ARGS and prints the results.")
    run.add_argument("--dir", action="append", default=[], type=_directory, metavar="HOST[::GUEST]",
                     help="give the program the directory HOST, as GUEST (default: the same path)")
    run.add_argument("--dir-ro", action="append", default=[], type=_directory, metavar="HOST[::GUEST]",
                     help="like --dir, read-only")
    run.add_argument("--env", action="append", default=[], type=_env_pair, metavar="NAME=VALUE",
                     help="set an environment variable for the program")
    run.add_argument("--invoke", metavar="NAME",
                     help="call export NAME with ARGS instead of running _start (modules only)")
    run.add_argument("--fuel", type=_fuel, metavar="N", help="stop the program after N units of fuel")
    run.add_argument("--timeout", type=_positive_seconds, metavar="SECONDS",
                     help="stop the program after SECONDS of wall-clock time")
    run.add_argument("--max-wasm-stack", type=_stack_bytes, metavar="BYTES",
                     help="the most stack the program's wasm may use (Engine's max_wasm_stack; K, M and G "
                          "suffixes: 16M); the main thread's stack limit is raised to fit it if need be")
    run.add_argument("--no-interrupt", action="store_true",
                     help="compile without epoch checks: faster, but neither Ctrl-C nor --timeout can stop "
                          "the program (Engine's epoch_interruption=False)")
    _cache_option(run)
    run.add_argument("file", metavar="FILE", help="a .wasm or .wat file (a module or a component)")
    run.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS", help="the program's arguments")

    inspect = commands.add_parser("inspect", help="list a module's imports and exports, or a component's world",
                                  description="Lists FILE's imports and exports with their types; for a "
                                              "component, its world in WIT.")
    inspect.add_argument("file", metavar="FILE", help="a .wasm or .wat file (a module or a component)")

    compile_ = commands.add_parser("compile", help="fill the import hook's compiled-code cache",
                                   description="Compiles each FILE (a module or a component) into the __pycache__ the import hook reads.")
    compile_.add_argument("--no-interrupt", action="store_true",
                          help="compile for `wasmpy run --no-interrupt` (Engine's epoch_interruption=False)")
    _cache_option(compile_)
    compile_.add_argument("files", nargs="+", metavar="FILE", help="a .wasm or .wat file")
    return parser


def _cache_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cache", metavar="DIR",
                        help="keep compiled code under DIR, as configure_import_hook(cache_dir=DIR) "
                             "(default: __pycache__ beside each file, or sys.pycache_prefix)")


def _engine(options: argparse.Namespace) -> Engine:
    """The engine for ``options``: only the options given are set, so that the default one has the
    import hook's engine key, and both read and fill the same cache."""
    config: Dict[str, Any] = {}
    if getattr(options, "fuel", None) is not None:
        config["consume_fuel"] = True
    if getattr(options, "max_wasm_stack", None) is not None:
        config["max_wasm_stack"] = options.max_wasm_stack
    if options.no_interrupt:
        config["epoch_interruption"] = False
    try:
        return Engine(**config)
    except ValueError as error:
        raise UsageError(str(error)) from None


def _fit_main_stack(engine: Engine) -> None:
    """Raises this process's RLIMIT_STACK (its soft limit, within the hard one) to fit ``engine``'s
    calls into wasm, which ``wasmpy run`` makes from the main thread: that thread's stack grows on
    demand up to the limit (8 MiB by default), and wasmpy's stack guard refuses a call that the
    stack might not hold. When the hard limit is too low, the call's RecursionError says so."""
    needed = engine._stack_needed + (1 << 20)  # and the command line's own frames above the call
    soft, hard = resource.getrlimit(resource.RLIMIT_STACK)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        return
    resource.setrlimit(resource.RLIMIT_STACK, (needed, hard))


def _check_file(path: str) -> None:
    if os.path.isdir(path):
        raise CommandError(f"{path}: is a directory, not a .wasm or .wat file")
    if not os.path.isfile(path):
        raise CommandError(f"{path}: no such file")


def _load_program(path: str, engine: Engine) -> Union[Module, Component]:
    """``path``'s module or component from the import hook's cache when it is current, else
    compiled (and cached)."""
    _check_file(path)
    try:
        return load_cached(path, engine)
    except OSError as error:
        raise CommandError(f"{path}: {error.strerror or error}") from None


def _load(path: str) -> Union[Module, Component]:
    _check_file(path)
    try:
        with open(path, "rb") as file:
            kind = Component if holds_component(file) else Module
        return kind.from_file(path)
    except OSError as error:
        raise CommandError(f"{path}: {error.strerror or error}") from None


def _parse_argument(text: str, valtype: ValType, export: str, position: int) -> Any:
    """The value of command-line argument ``text`` for a ``valtype`` parameter; UsageError if it has none."""
    where = f"{export}: argument {position} ({valtype})"
    bits = INTEGER_BITS.get(valtype)
    if bits is not None:
        try:
            value = int(text, 0)
        except ValueError:
            raise UsageError(f"{where}: {text!r} is not an integer (write it like 42, -7 or 0x2a)") from None
        if not -2**(bits - 1) <= value <= 2**bits - 1:
            raise UsageError(f"{where}: {text} is out of range (from -2**{bits - 1} to 2**{bits}-1)")
        return value
    if valtype in (ValType.f32, ValType.f64):
        try:
            # hexadecimal as the text format writes exact floats (0x1.8p3); fromhex alone would read "abc"
            is_hex = text.strip().lstrip("+-").lower().startswith("0x")
            return float.fromhex(text) if is_hex else float(text)
        except ValueError:
            raise UsageError(f"{where}: {text!r} is not a number "
                             f"(write it like 1.5, -2e10, inf, nan or 0x1.8p3)") from None
    raise UsageError(f"{where}: {valtype} values cannot be written on the command line")


def _function_type(module: Module, export: str) -> FuncType:
    """The type of the function ``module`` exports as ``export``; UsageError if there is none."""
    for item in module.exports:
        if item.name == export:
            if not isinstance(item.type, FuncType):
                kind = type(item.type).__name__.replace("Type", "").lower()
                raise UsageError(f"export {export!r} is a {kind}, not a function: --invoke calls functions only")
            return item.type
    functions = sorted(item.name for item in module.exports if isinstance(item.type, FuncType))
    raise UsageError(f"there is no exported function named {export!r} "
                     f"(exported functions: {', '.join(functions) or 'none'})")


def _run(options: argparse.Namespace) -> int:
    if options.no_interrupt and options.timeout is not None:
        raise UsageError("--timeout needs epoch checks, which --no-interrupt turns off")
    engine = _engine(options)
    _fit_main_stack(engine)
    compiled = _load_program(options.file, engine)
    name = program_name(options.file)
    call_args: List[Any] = []
    if isinstance(compiled, Component):
        if options.invoke is not None:
            raise UsageError(f"{name} is a component: --invoke calls a module's exports only")
        try:
            export = command_export(compiled, name)
        except TypeError as error:
            raise UsageError(str(error)) from None
        program_args: List[str] = options.args
    elif options.invoke is None:
        start = next((item for item in compiled.exports if item.name == "_start"), None)
        if start is None or not isinstance(start.type, FuncType):
            raise UsageError(f"{name} exports no _start function; use --invoke NAME to call an export")
        program_args = options.args
    else:
        functype = _function_type(compiled, options.invoke)
        if len(options.args) != len(functype.params):
            raise UsageError(f"{options.invoke} takes {len(functype.params)} arguments ({functype}), "
                             f"got {len(options.args)}")
        call_args = [_parse_argument(text, valtype, options.invoke, position)
                     for position, (text, valtype) in enumerate(zip(options.args, functype.params), 1)]
        program_args = []
    for option, directories in (("--dir", options.dir), ("--dir-ro", options.dir_ro)):
        for host, _ in directories:
            if not os.path.isdir(host):
                raise CommandError(f"{option} {host}: no such directory")
    try:
        wasi = WasiConfig(argv=[name] + program_args, env=dict(options.env),
                          preopens=[(h, g, False) for h, g in options.dir] + [(h, g, True) for h, g in options.dir_ro])
    except (TypeError, ValueError) as error:  # an argument, variable or path that WASI cannot carry
        raise UsageError(str(error)) from None
    store = Store(engine, fuel=options.fuel, wasi=wasi)
    if options.timeout is not None:
        store.set_deadline(options.timeout)
    try:
        if isinstance(compiled, Component):
            return run_command(ComponentInstance(compiled, None, store).exports, export)
        instance = Instance(compiled, {}, store)
        if options.invoke is None:
            cast(Func, instance.exports["_start"])()  # a function: checked in the module's exports above
        else:
            # A WASI reactor is set up before any other export is called (item access: an export
            # may be named like a method of the exports, e.g. get).
            exports = instance.exports
            if options.invoke != "_initialize" and "_initialize" in exports:
                initialize = exports["_initialize"]
                if isinstance(initialize, Func):
                    initialize()
            # A function: _function_type checked it in the module's exports.
            _print_results(cast(Func, instance.exports[options.invoke])(*call_args))
        return 0
    except ExitTrap as exit:
        return exit.code
    except Trap as trap:  # the message without the wasm backtrace: one line, as for every error
        message = trap.message.strip().splitlines()
        print(f"wasmpy: error: {name}: {message[0] if message else 'trap'}", file=sys.stderr)
        return TRAP_EXIT_STATUS


def _print_results(results: Any) -> None:
    if results is None:
        return
    for result in results if isinstance(results, tuple) else (results,):
        print(result)
    sys.stdout.flush()  # here, where a closed pipe is caught, rather than at exit


def _inspect(options: argparse.Namespace) -> int:
    compiled = _load(options.file)
    if isinstance(compiled, Component):
        _print_world(options.file, compiled)
        return 0
    module = compiled
    rows: List[Tuple[str, str, str]] = [("import", f"{i.module}.{i.name}", str(i.type)) for i in module.imports]
    rows += [("export", e.name, str(e.type)) for e in module.exports]
    print(f"{options.file}: {len(module.imports)} imports, {len(module.exports)} exports")
    if rows:
        width = max(len(name) for _, name, _ in rows)
        for kind, name, typ in rows:
            print(f"  {kind}  {name:<{width}}  {typ}")
    return 0


def _print_world(path: str, component: Component) -> None:
    """Prints ``component``'s world, WIT-like: its imports, then its exports, each interface with
    its types and functions (the world has no name in the binary: ``root``, as wasm-tools calls it)."""
    imports, exports = component.imports, component.exports
    count = {side: len(items.functions) + len(items.interfaces) for side, items in (("in", imports), ("ex", exports))}
    print(f"{path}: a component: {count['in']} imports, {count['ex']} exports")
    print("world root {")
    for kind, items in (("import", imports), ("export", exports)):
        for typ in items.types.values():
            definition = getattr(typ, "definition", None)
            print(f"  {definition() if definition else typ};")
        for func in items.functions.values():
            print(f"  {kind} {func};")
        for interface in items.interfaces.values():
            print("  " + _interface_item(kind, interface).replace("\n", "\n  "))
    print("}")


def _interface_item(kind: str, interface: InterfaceType) -> str:
    """``import NAME { ... }`` for an interface: its WIT text, ``interface NAME { ... }``, with
    what the world does with it in place of the first word."""
    return f"{kind} {str(interface)[len('interface '):]}"


def _compile(options: argparse.Namespace) -> int:
    engine = _engine(options)
    for path in options.files:
        _check_file(path)
        try:
            cache = compile_to_cache(path, engine)  # a module's or a component's; only when not current
        except OSError as error:
            raise CommandError(f"{path}: {error.strerror or error}") from None
        print(f"{path} -> {cache}" if cache is not None and os.path.isfile(cache + ".meta")
              else f"{path}: compiled, but its cache directory is not writable")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the command line ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    options = _parser().parse_args(argv)
    if getattr(options, "cache", None) is not None:
        configure_import_hook(cache_dir=options.cache)
    handler = {"run": _run, "inspect": _inspect, "compile": _compile}[options.command]
    try:
        return handler(options)
    except BrokenPipeError:  # whoever read our output stopped (``| head``): stop quietly, as other tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so that the exit flush fails no more
        return 1
    except CommandError as error:
        _report(error)
        return error.status
    except (WasmError, OSError, RecursionError) as error:  # RecursionError: not enough native stack
        _report(error)
        return 1
    except KeyboardInterrupt:
        return 130


def _report(error: BaseException) -> None:
    """Prints ``error`` as one line on stderr."""
    message = str(error).strip().splitlines()
    print(f"wasmpy: error: {message[0] if message else type(error).__name__}", file=sys.stderr)
