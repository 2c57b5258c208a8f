"""The ``wasmpy`` command line: run, inspect and compile WebAssembly modules."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, List, Optional, Sequence, Tuple

from ._engine import Engine
from ._errors import ExitTrap, Trap, WasmError
from ._hook import compile_to_cache
from ._instance import Instance
from ._module import Module
from ._store import Store
from ._types import FuncType, ValType
from ._wasi import WasiConfig

# Like `wasmtime run`: a trap ends the process as an abort would.
TRAP_EXIT_STATUS = 134


class CommandError(Exception):
    """A one-line error for the user (exit status 1)."""


def _directory(spec: str) -> Tuple[str, str]:
    host, _, guest = spec.partition("::")
    return host, guest or host


def _env_pair(spec: str) -> Tuple[str, str]:
    name, equals, value = spec.partition("=")
    if not equals or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {spec!r}")
    return name, value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative number, got {text!r}")
    return value


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wasmpy", description="Run and inspect WebAssembly modules.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = commands.add_parser("run", help="run a WASI program, or call one export",
                              description="Runs FILE's _start (a WASI command) and exits with its status, "
                                          "or with --invoke calls one export with ARGS and prints the results.")
    run.add_argument("--dir", action="append", default=[], type=_directory, metavar="HOST[::GUEST]",
                     help="give the program the directory HOST, as GUEST (default: the same path)")
    run.add_argument("--dir-ro", action="append", default=[], type=_directory, metavar="HOST[::GUEST]",
                     help="like --dir, read-only")
    run.add_argument("--env", action="append", default=[], type=_env_pair, metavar="NAME=VALUE",
                     help="set an environment variable for the program")
    run.add_argument("--invoke", metavar="NAME", help="call export NAME with ARGS instead of running _start")
    run.add_argument("--fuel", type=_non_negative_int, metavar="N", help="stop the program after N units of fuel")
    run.add_argument("--timeout", type=_positive_seconds, metavar="SECONDS",
                     help="stop the program after SECONDS of wall-clock time")
    run.add_argument("file", metavar="FILE", help="a .wasm or .wat file")
    run.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS", help="the program's arguments")

    inspect = commands.add_parser("inspect", help="list a module's imports and exports",
                                  description="Lists FILE's imports and exports with their types.")
    inspect.add_argument("file", metavar="FILE", help="a .wasm or .wat file")

    compile_ = commands.add_parser("compile", help="fill the import hook's compiled-code cache",
                                   description="Compiles each FILE into the __pycache__ the import hook reads.")
    compile_.add_argument("files", nargs="+", metavar="FILE", help="a .wasm or .wat file")
    return parser


def _load(path: str, engine: Optional[Engine] = None) -> Module:
    if not os.path.isfile(path):
        raise CommandError(f"{path}: no such file")
    try:
        return Module.from_file(path, engine)
    except OSError as error:
        raise CommandError(f"{path}: {error.strerror or error}") from None


def _parse_argument(text: str, valtype: ValType) -> Any:
    try:
        if valtype in (ValType.f32, ValType.f64):
            return float(text)
        if valtype in (ValType.i32, ValType.i64, ValType.v128):
            return int(text, 0)
    except ValueError:
        raise CommandError(f"cannot read {text!r} as {valtype}") from None
    raise CommandError(f"cannot pass a {valtype} argument from the command line")


def _run(options: argparse.Namespace) -> int:
    engine = Engine(consume_fuel=options.fuel is not None)
    module = _load(options.file, engine)
    for host, _ in options.dir + options.dir_ro:
        if not os.path.isdir(host):
            raise CommandError(f"--dir {host}: no such directory")
    name = os.path.basename(options.file)
    wasi = WasiConfig(argv=[name] + ([] if options.invoke else options.args), env=dict(options.env),
                      preopens=[(h, g, False) for h, g in options.dir] + [(h, g, True) for h, g in options.dir_ro])
    store = Store(engine, fuel=options.fuel, wasi=wasi)
    if options.timeout is not None:
        store.set_deadline(options.timeout)
    try:
        instance = Instance(module, {}, store)
        if options.invoke is None:
            return _start(instance, name)
        _invoke(instance, options.invoke, options.args)
        return 0
    except ExitTrap as exit:
        return exit.code
    except Trap as trap:
        print(f"wasmpy: {name}: {trap}", file=sys.stderr)
        return TRAP_EXIT_STATUS


def _start(instance: Instance, name: str) -> int:
    if "_start" not in instance.exports:
        raise CommandError(f"{name} exports no _start function; use --invoke NAME to call an export")
    instance.exports["_start"]()
    return 0


def _invoke(instance: Instance, export: str, args: Sequence[str]) -> None:
    func = instance.exports.get(export)
    if func is None or not isinstance(func.type, FuncType):
        raise CommandError(f"there is no exported function named {export!r}")
    params = func.type.params
    if len(args) != len(params):
        raise CommandError(f"{export} takes {len(params)} arguments ({func.type}), got {len(args)}")
    results = func(*[_parse_argument(text, valtype) for text, valtype in zip(args, params)])
    if results is None:
        return
    for result in results if isinstance(results, tuple) else (results,):
        print(result)


def _inspect(options: argparse.Namespace) -> int:
    module = _load(options.file)
    rows: List[Tuple[str, str, str]] = [("import", f"{i.module}.{i.name}", str(i.type)) for i in module.imports]
    rows += [("export", e.name, str(e.type)) for e in module.exports]
    print(f"{options.file}: {len(module.imports)} imports, {len(module.exports)} exports")
    if rows:
        width = max(len(name) for _, name, _ in rows)
        for kind, name, typ in rows:
            print(f"  {kind}  {name:<{width}}  {typ}")
    return 0


def _compile(options: argparse.Namespace) -> int:
    for path in options.files:
        _load(path)  # reports a missing or malformed file like the other commands
        cache = compile_to_cache(path)
        print(f"{path} -> {cache}" if cache else f"{path}: compiled, but its cache directory is not writable")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    options = _parser().parse_args(argv)
    handler = {"run": _run, "inspect": _inspect, "compile": _compile}[options.command]
    try:
        return handler(options)
    except (CommandError, WasmError, OSError) as error:
        message = str(error).strip().splitlines()
        print(f"wasmpy: error: {message[0] if message else type(error).__name__}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
