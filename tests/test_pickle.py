"""Modules and engines travel by pickle (issue 17): to process pools, Dask workers, other machines.

A module pickles to its compiled code, the key that code is valid for and its wasm binary; the
receiving process loads the code when the key matches its engine of the same settings (no
compilation: counted here by wrapping Module.__init__, the only way wasmpy compiles) and compiles
the binary otherwise."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import pickle
import shutil

import pytest

import wasmpy
from wasmpy import Engine, Instance, Module, WasmError
from childproc import child_json, run_python
from test_user_facing import _pickled_modules

ADD = '(module (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))'

# In a child: counts compilations, then unpickles the module in PICKLE and calls add(2, 3).
CHILD = """
    import json, pickle, wasmpy
    compiled = []
    compile_module = wasmpy.Module.__init__
    def counting(self, *args, **kwargs):
        compiled.append(1)
        compile_module(self, *args, **kwargs)
    wasmpy.Module.__init__ = counting
    {prepare}
    try:
        with open({path!r}, "rb") as file:
            module = pickle.load(file)
        result = {{"add": wasmpy.Instance(module).exports.add(2, 3), "engine": dict(module.engine.config),
                   "default_engine": module.engine is wasmpy.Engine.default()}}
    except wasmpy.WasmError as error:
        result = {{"error": str(error)}}
    print(json.dumps({{"compiled": len(compiled), **result}}))
"""


def unpickle_in_a_child(path, prepare: str = "pass") -> dict:
    return child_json(run_python(CHILD.format(path=str(path), prepare=prepare), timeout=120))


def dump(obj, path):
    with open(path, "wb") as file:
        pickle.dump(obj, file)
    return path


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_a_module_round_trips_in_every_protocol(protocol):
    module = Module(ADD)
    again = pickle.loads(pickle.dumps(module, protocol))
    assert type(again) is Module and again is not module and again.engine is module.engine
    assert Instance(again).exports.add(2, 3) == 5
    assert [str(export) for export in again.exports] == [str(export) for export in module.exports]


def test_pickles_name_only_the_public_package():
    data = pickle.dumps(Module(ADD, Engine(consume_fuel=True)))
    assert {name for name in _pickled_modules(data) if name.startswith("wasmpy")} == {"wasmpy"}


def test_a_fresh_process_loads_the_compiled_code_without_compiling(tmp_path):
    result = unpickle_in_a_child(dump(Module(ADD), tmp_path / "m.pickle"))
    assert result == {"compiled": 0, "add": 5, "engine": dict(Engine.default().config), "default_engine": True}


def test_another_cpu_or_wasmtime_compiles_the_binary_again(tmp_path):
    """The key covers the CPU's features: a process that sees others compiles instead of running
    code made for another CPU."""
    path = dump(Module(ADD), tmp_path / "m.pickle")
    result = unpickle_in_a_child(path, prepare="import wasmpy._engine as e; e._cpu_flags = lambda: 'another cpu'")
    assert result["compiled"] == 1 and result["add"] == 5


def test_the_engine_settings_travel_with_the_module(tmp_path):
    engine = Engine(nan_canonicalization=True, cranelift_opt_level="none")
    result = unpickle_in_a_child(dump(Module(ADD, engine), tmp_path / "m.pickle"))
    assert result["compiled"] == 0 and result["engine"] == dict(engine.config) and not result["default_engine"]


def test_modules_of_equal_settings_unpickle_into_one_engine():
    first = pickle.loads(pickle.dumps(Module(ADD, Engine(consume_fuel=True))))
    second = pickle.loads(pickle.dumps(Module(ADD, Engine(consume_fuel=True))))
    assert first.engine is second.engine
    store = wasmpy.Store(first.engine, fuel=10_000)
    assert Instance(first, store=store).exports.add(1, 1) == Instance(second, store=store).exports.add(1, 1) == 2


def test_engines_pickle_to_their_settings():
    assert pickle.loads(pickle.dumps(Engine.default())) is Engine.default()
    assert pickle.loads(pickle.dumps(Engine())) is Engine.default()  # equal settings
    engine = Engine(consume_fuel=True)
    assert pickle.loads(pickle.dumps(engine)) is engine
    with pytest.raises(TypeError, match="dict"):
        Engine._shared(["consume_fuel"])


def test_a_module_from_a_file_reads_it_again_when_pickled(tmp_path):
    path = tmp_path / "add.wat"
    path.write_text(ADD)
    module = Module.from_file(path)
    assert "_wasm_source" in vars(module) and not isinstance(module._wasm_source, bytes)  # not kept in memory
    data = pickle.dumps(module)
    assert b"\0asm" in data
    result = unpickle_in_a_child(dump(module, tmp_path / "m.pickle"),
                                 prepare="import wasmpy._engine as e; e._cpu_flags = lambda: 'another cpu'")
    assert result["compiled"] == 1 and result["add"] == 5


def test_a_module_whose_file_changed_pickles_without_its_binary(tmp_path):
    path = tmp_path / "add.wat"
    path.write_text(ADD)
    module = Module.from_file(path)
    path.write_text(ADD.replace("i32.add", "i32.sub") + "  ")  # another size: changed
    pickled = dump(module, tmp_path / "m.pickle")
    assert unpickle_in_a_child(pickled) == {"compiled": 0, "add": 5, "engine": dict(Engine.default().config),
                                            "default_engine": True}
    result = unpickle_in_a_child(pickled, prepare="import wasmpy._engine as e; e._cpu_flags = lambda: 'other'")
    assert result["compiled"] == 0 and "carries no wasm binary" in result["error"]


def test_a_module_loaded_from_compiled_code_has_no_binary_to_fall_back_on(tmp_path):
    module = Module.deserialize(Module(ADD).serialize())
    pickled = dump(module, tmp_path / "m.pickle")
    assert unpickle_in_a_child(pickled)["add"] == 5
    result = unpickle_in_a_child(pickled, prepare="import wasmpy._engine as e; e._cpu_flags = lambda: 'other'")
    assert "compiled for another wasmtime version, engine settings or CPU" in result["error"]


def test_a_corrupt_pickle_is_a_wasm_error_not_a_crash():
    module = Module(ADD)
    engine, key, compiled, wasm = module.__reduce__()[1]
    damaged = compiled[:1000] + bytes([compiled[1000] ^ 1]) + compiled[1001:]
    with pytest.raises(WasmError, match="corrupt"):
        Module._unpickle(engine, key, damaged, None)
    assert Instance(Module._unpickle(engine, key, damaged, wasm)).exports.add(2, 3) == 5  # compiled again


def test_a_module_imported_by_the_hook_pickles(tmp_path, monkeypatch):
    shutil.copy(os.path.join(os.path.dirname(__file__), "..", "examples", "gcd", "gcd.wat"), tmp_path / "gcd_pickled.wat")
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib
    hooked = importlib.import_module("gcd_pickled")
    module = hooked.__wasm_instance__.module
    again = pickle.loads(pickle.dumps(module))
    assert Instance(again).exports.gcd(27, 6) == 3


def _pool_init(module: Module) -> None:
    global _pool_instance
    _pool_instance = Instance(module)


def _pool_add(a: int, b: int) -> int:
    return _pool_instance.exports.add(a, b)


def test_a_process_pool_gets_the_module_through_its_initializer():
    """spawn: fresh interpreters, so the module really travels by pickle."""
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=context, initializer=_pool_init,
                                                initargs=(Module(ADD),)) as pool:
        assert list(pool.map(_pool_add, range(8), range(8))) == [2 * i for i in range(8)]
