"""The README's examples, written for a type checker: ``mypy --strict`` accepts this file.

What only the wasm module knows is stated where it enters Python:

- host functions are annotated with ``int`` and ``float``, or with
  ``Annotated[int, 'i32']`` where the width matters (``Func`` needs it);
- ``exports["name"]`` is a Func, Memory, Global, Table or Tag: ``isinstance``
  says which; ``exports.name`` is typed ``Any``, as a module's attributes are,
  so a variable's annotation can state the export's signature once;
- calling a Func returns an ``object`` (None, a value, or a tuple): narrow it;
- a module the import hook loads (``arith``) is described by a stub beside it
  (``arith.pyi``), as an extension module would be.

Run it with ``python tour.py``; tests/test_typing.py type-checks and runs it.
"""

from typing import Annotated, Callable

import wasmpy

import arith  # arith.wat, loaded by the import hook

TOUR = """
(module
  (import "env" "log" (func $log (param i32)))
  (memory (export "memory") 1 2)
  (func (export "add") (param i32 i32) (result i32)
    local.get 0 local.get 1 i32.add)
  (func (export "divmod") (param i32 i32) (result i32 i32)
    (i32.div_u (local.get 0) (local.get 1))
    (i32.rem_u (local.get 0) (local.get 1)))
  (func (export "shout") (param i32) (call $log (local.get 0))))
"""

SPIN = '(module (func (export "run") (loop $forever (br $forever))))'

EXIT_3 = """
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (call $exit (i32.const 3))))
"""


def log(value: int) -> None:  # int matches the import's i32 (or an i64): checked when linking
    print("wasm says", value)


def twice(value: Annotated[int, "i32"]) -> Annotated[int, "i32"]:  # a Func made from it is i32 -> i32
    return 2 * value


def function(exports: wasmpy.Exports, name: str) -> wasmpy.Func:
    """The exported function ``name``: a TypeError, rather than a surprise later, if it is not one."""
    export = exports[name]
    if not isinstance(export, wasmpy.Func):
        raise TypeError(f"export {name!r} is a {type(export).__name__}, not a function")
    return export


def tour() -> None:
    module = wasmpy.Module(TOUR)
    print([str(i) for i in module.imports])
    print([str(e) for e in module.exports])

    instance = wasmpy.Instance(module, {"env": {"log": log}})
    exports = instance.exports
    add = exports["add"]
    assert isinstance(add, wasmpy.Func)
    total = add(1, 2)
    assert isinstance(total, int)
    print("add(1, 2) + 1 =", total + 1)

    divmod_: Callable[[int, int], tuple[int, int]] = exports.divmod
    quotient, remainder = divmod_(17, 5)
    print("divmod(17, 5) =", quotient, remainder)
    function(exports, "shout")(42)

    memory = exports["memory"]
    assert isinstance(memory, wasmpy.Memory)
    view = memoryview(memory)
    view[0:5] = b"hello"
    data: bytes = memory.read(0, 5)
    print(data, memory.grow(1), len(memoryview(memory)), memory.data_size)
    try:
        memory.grow(1)
    except wasmpy.WasmError as error:
        print(error)  # ... its maximum is 2 pages (memory(1..2))

    doubled = wasmpy.Func(instance.store, twice)
    print(doubled.type, doubled(21))

    print("arith:", arith.add(2, 3), arith.divmod(17, 5))


def untrusted() -> None:
    engine = wasmpy.Engine(consume_fuel=True)
    module = wasmpy.Module(SPIN, engine)
    store = wasmpy.Store(engine, fuel=10_000, limits=wasmpy.StoreLimits(memory_size=64 << 20, instances=1))
    run = function(wasmpy.Instance(module, store=store).exports, "run")
    try:
        with store.deadline(2.0):
            run()
    except wasmpy.Trap as trap:
        print(trap.code)  # TrapCode.OUT_OF_FUEL


def wasi() -> None:
    module = wasmpy.Module(EXIT_3)
    status: int = wasmpy.run(module)
    store = wasmpy.Store(wasi=wasmpy.WasiConfig(argv=["exit3"]))
    start = function(wasmpy.Instance(module, store=store).exports, "_start")
    try:
        start()
    except wasmpy.ExitTrap as exit:
        print("exit status", status, exit.code)  # an int, the status


if __name__ == "__main__":
    tour()
    untrusted()
    wasi()
