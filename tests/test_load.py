"""Loading compiled code: Module.deserialize_file (mapped, not read), and interoperating with
the ``wasmtime`` package's serialized format (``.cwasm``) both ways."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import wasmtime

import wasmpy
from wasmpy import Engine, Instance, Module, WasmError

from childproc import assert_clean_exit, child_json, run_python

ADD_WAT = '(module (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))'


def package_engine(epoch_interruption: bool = True) -> wasmtime.Engine:
    """A ``wasmtime`` package engine whose settings match wasmpy's ``Engine(epoch_interruption=...)``:
    wasmpy's memories never move (views of them stay valid), so its code is compiled for that."""
    config = wasmtime.Config()
    config.epoch_interruption = epoch_interruption
    config.memory_may_move = False
    enable_component_model_map(config)
    return wasmtime.Engine(config)


def enable_component_model_map(config: wasmtime.Config) -> None:
    """wasmpy's engines take components with map types (component_model_map), which wasmtime
    records in compiled code: the package's Config has no property for it."""
    wasmtime._bindings.wasmtime_config_wasm_component_model_map_set(config.ptr(), True)


def package_artifact(engine: wasmtime.Engine, wat: str = ADD_WAT) -> bytes:
    return bytes(wasmtime.Module(engine, wat).serialize())


def add(module: Module) -> int:
    return Instance(module).exports.add(2, 3)


def test_deserialize_file_round_trip(tmp_path):
    path = tmp_path / "add.cwasm"
    path.write_bytes(Module(ADD_WAT).serialize())
    assert add(Module.deserialize_file(path)) == 5
    assert add(Module.deserialize_file(str(path), Engine.default())) == 5


def test_deserialize_file_keeps_working_after_the_file_is_replaced(tmp_path):
    path = tmp_path / "add.cwasm"
    path.write_bytes(Module(ADD_WAT).serialize())
    module = Module.deserialize_file(path)
    replacement = tmp_path / "other.cwasm"
    replacement.write_bytes(Module('(module (func (export "g")))').serialize())
    os.replace(replacement, path)  # the mapping keeps the old file's pages
    assert add(module) == 5


def test_package_artifact_loads_in_wasmpy(tmp_path):
    artifact = package_artifact(package_engine())
    assert add(Module.deserialize(artifact)) == 5
    path = tmp_path / "add.cwasm"
    path.write_bytes(artifact)
    assert add(Module.deserialize_file(path)) == 5
    without_epochs = Engine(epoch_interruption=False)
    assert add(Module.deserialize(package_artifact(package_engine(False)), without_epochs)) == 5


@pytest.mark.parametrize("via_file", [False, True])
def test_wasmpy_artifact_loads_in_the_package(tmp_path, via_file):
    engine = package_engine()
    data = Module(ADD_WAT).serialize()
    if via_file:
        path = tmp_path / "add.cwasm"
        path.write_bytes(data)
        module = wasmtime.Module.deserialize_file(engine, str(path))
    else:
        module = wasmtime.Module.deserialize(engine, data)
    store = wasmtime.Store(engine)
    store.set_epoch_deadline(1 << 40)  # the package's deadline is 0 epochs: interrupted at once
    assert wasmtime.Instance(store, module, []).exports(store)["add"](store, 2, 3) == 5


def test_package_defaults_do_not_match(tmp_path):
    """The package's Config() lets memories move and has no epoch checks: wasmtime refuses its code
    for wasmpy's engines, and wasmpy's for the package's defaults, with a message saying which."""
    with pytest.raises(WasmError, match="epoch interruption|memory may move"):
        Module.deserialize(package_artifact(wasmtime.Engine()))
    with pytest.raises(WasmError, match="memory may move"):
        Module.deserialize(package_artifact(package_engine(False).__class__(_may_move_config())),
                           Engine(epoch_interruption=False))
    with pytest.raises(wasmtime.WasmtimeError, match="memory may move"):
        wasmtime.Module.deserialize(wasmtime.Engine(_may_move_config()),
                                    Module(ADD_WAT, Engine(epoch_interruption=False)).serialize())


@pytest.mark.parametrize("via_file", [False, True])
def test_package_default_config_matches_memory_may_move(tmp_path, via_file):
    """The package's default Config() (memories may move, no epoch checks, no map types) is
    Engine(memory_may_move=True, epoch_interruption=False, component_model_map=False): code loads
    both ways, and memory
    held by a view stays usable."""
    engine = Engine(memory_may_move=True, epoch_interruption=False, component_model_map=False)
    wat = ADD_WAT[:-1] + '(memory (export "memory") 1))'
    artifact = package_artifact(wasmtime.Engine(), wat)
    path = tmp_path / "add.cwasm"
    path.write_bytes(artifact)
    module = Module.deserialize_file(path, engine) if via_file else Module.deserialize(artifact, engine)
    exports = Instance(module).exports
    assert exports.add(2, 3) == 5
    with memoryview(exports.memory) as view:
        view[0] = 1
        assert exports.memory.grow(1) == 1  # a 32-bit memory within the 4 GiB reservation never moves
    package = wasmtime.Engine()
    loaded = wasmtime.Module.deserialize(package, Module(wat, engine).serialize())
    store = wasmtime.Store(package)
    assert wasmtime.Instance(store, loaded, []).exports(store)["add"](store, 2, 3) == 5
    with pytest.raises(WasmError, match="epoch interruption"):
        Module.deserialize(artifact, Engine(memory_may_move=True))


def _may_move_config() -> wasmtime.Config:
    config = wasmtime.Config()
    config.memory_may_move = True
    return config


def test_deserialize_file_other_settings_is_wasm_error(tmp_path):
    path = tmp_path / "fuel.cwasm"
    path.write_bytes(Module(ADD_WAT, Engine(consume_fuel=True)).serialize())
    with pytest.raises(WasmError, match="fuel"):
        Module.deserialize_file(path)


def _bad_files(good: bytes) -> dict:
    return {
        "empty": b"",
        "wasm": wasmpy.wat2wasm(ADD_WAT),
        "garbage": os.urandom(len(good)),
        "truncated-header": good[:30],
        "truncated-half": good[:len(good) // 2],
        "truncated-last-byte": good[:-1],
        "appended": good + b"extra",
    }


@pytest.mark.parametrize("kind", list(_bad_files(b"x" * 100)))
def test_deserialize_file_bad_file_is_wasm_error(tmp_path, kind):
    path = tmp_path / f"{kind}.cwasm"
    path.write_bytes(_bad_files(Module(ADD_WAT).serialize())[kind])
    with pytest.raises(WasmError, match=str(path)):
        Module.deserialize_file(path)


def test_deserialize_file_not_a_regular_file(tmp_path):
    with pytest.raises(WasmError, match="No such file"):
        Module.deserialize_file(tmp_path / "absent.cwasm")
    with pytest.raises(WasmError, match="not a regular file"):
        Module.deserialize_file(tmp_path)
    fifo = tmp_path / "fifo.cwasm"
    os.mkfifo(fifo)
    with pytest.raises(WasmError, match="not a regular file"):  # without waiting for a writer
        Module.deserialize_file(fifo)


def test_deserialize_file_argument_types(tmp_path):
    with pytest.raises(TypeError, match="path"):
        Module.deserialize_file(b"add.cwasm")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="path"):
        Module.deserialize_file(3)  # type: ignore[arg-type]


def test_serialized_trailer_is_checked():
    data = bytearray(Module(ADD_WAT).serialize())
    data[len(data) // 2] ^= 0xFF
    with pytest.raises(WasmError, match="checksum"):
        Module.deserialize(bytes(data))


def test_mismatched_artifacts_never_crash(tmp_path):
    """Other settings, a package default engine's code, garbage and truncation: all clean WasmErrors,
    checked out of process, where a crash shows."""
    good = Module(ADD_WAT).serialize()
    files = dict(_bad_files(good), fuel=Module(ADD_WAT, Engine(consume_fuel=True)).serialize(),
                 package_default=package_artifact(wasmtime.Engine()))
    for name, data in files.items():
        (tmp_path / f"{name}.cwasm").write_bytes(data)
    proc = run_python(f"""
        import json, pathlib, wasmpy
        results = {{}}
        for path in sorted(pathlib.Path({str(tmp_path)!r}).glob("*.cwasm")):
            for load in (lambda: wasmpy.Module.deserialize(path.read_bytes()),
                         lambda: wasmpy.Module.deserialize_file(path)):
                try:
                    load()
                    results[path.stem] = "loaded"
                except wasmpy.WasmError:
                    results.setdefault(path.stem, "WasmError")
        print(json.dumps(results))
    """, timeout=120)
    assert_clean_exit(proc)
    assert child_json(proc) == {name: "WasmError" for name in files}
