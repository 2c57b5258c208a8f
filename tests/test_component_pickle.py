"""Components travel by pickle as modules do (issue 17 item 1): to their compiled code, the key it
is valid for and the component's binary. A process whose engine of those settings has that key
loads the code (no compilation: counted by tests/childproc.py's count_compiles, which wraps
Component.__init__, the only way wasmpy compiles a component); any other compiles the binary."""

from __future__ import annotations

import concurrent.futures
import copy
import importlib
import multiprocessing
import pickle
import shutil
import sys

import pytest

import wasmpy
from wasmpy import Component, Engine, Instance, WasmError
from childproc import child_json, run_python
from test_component import RESOURCES, RICH, Echo
from test_user_facing import _pickled_modules

# In a child: counts compilations, then unpickles the component in PICKLE (resources.wasm, which
# imports nothing) and uses it.
CHILD = """
    import json, pickle, wasmpy
    from childproc import count_compiles
    compiled = count_compiles()
    {prepare}
    try:
        with open({path!r}, "rb") as file:
            component = pickle.load(file)
        exports = wasmpy.Instance(component).exports
        with exports.api.Counter(5) as counter:
            counter.add(2)
            total = exports.api.total(counter)
        result = {{"total": total, "engine": dict(component.engine.config),
                   "default_engine": component.engine is wasmpy.Engine.default()}}
    except wasmpy.WasmError as error:
        result = {{"error": str(error)}}
    print(json.dumps({{"compiled": compiled, **result}}))
"""


def unpickle_in_a_child(path, prepare: str = "pass") -> dict:
    return child_json(run_python(CHILD.format(path=str(path), prepare=prepare), timeout=120))


def dump(obj, path):
    with open(path, "wb") as file:
        pickle.dump(obj, file)
    return path


OTHER_CPU = "import wasmpy._engine as e; e._cpu_flags = lambda: 'another cpu'"


@pytest.fixture(scope="module")
def resources():
    return Component(RESOURCES.read_bytes())


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_a_component_round_trips_in_every_protocol(protocol):
    component = Component(RICH.read_bytes())
    again = pickle.loads(pickle.dumps(component, protocol))
    assert type(again) is Component and again is not component and again.engine is component.engine
    assert str(again.exports) == str(component.exports) and str(again.imports) == str(component.imports)
    exports = Instance(again, {"log": print, "test:rich/host": Echo()}).exports
    assert exports.add(2, 3) == 5 and exports.api.roundtrip_string("é") == "é"


def test_pickles_name_only_the_public_package(resources):
    assert {name for name in _pickled_modules(pickle.dumps(resources)) if name.startswith("wasmpy")} == {"wasmpy"}


def test_a_fresh_process_loads_the_compiled_code_without_compiling(tmp_path, resources):
    result = unpickle_in_a_child(dump(resources, tmp_path / "c.pickle"))
    assert result == {"compiled": [], "total": 7, "engine": dict(Engine.default().config), "default_engine": True}


def test_another_cpu_or_wasmtime_compiles_the_binary_again(tmp_path, resources):
    result = unpickle_in_a_child(dump(resources, tmp_path / "c.pickle"), prepare=OTHER_CPU)
    assert result["compiled"] == ["Component"] and result["total"] == 7


def test_the_engine_settings_travel_with_the_component(tmp_path):
    engine = Engine(cranelift_opt_level="none")
    result = unpickle_in_a_child(dump(Component(RESOURCES.read_bytes(), engine), tmp_path / "c.pickle"))
    assert result["compiled"] == [] and result["engine"] == dict(engine.config) and not result["default_engine"]


def test_a_component_from_a_file_reads_it_again_when_pickled(tmp_path):
    path = tmp_path / "resources.wasm"
    shutil.copy(RESOURCES, path)
    component = Component.from_file(path)
    assert not isinstance(component._wasm_source, bytes)  # not kept in memory
    result = unpickle_in_a_child(dump(component, tmp_path / "c.pickle"), prepare=OTHER_CPU)
    assert result["compiled"] == ["Component"] and result["total"] == 7


def test_a_component_from_text_pickles_its_binary(tmp_path):
    path = tmp_path / "resources.wat"
    path.write_text("(component)")
    for component in (Component("(component)"), Component.from_file(path)):
        engine, key, compiled, wasm = component.__reduce__()[1]
        assert wasm == wasmpy.wat2wasm("(component)")


def test_a_component_whose_file_changed_pickles_without_its_binary(tmp_path):
    path = tmp_path / "resources.wasm"
    shutil.copy(RESOURCES, path)
    component = Component.from_file(path)
    path.write_bytes(RICH.read_bytes())  # another size: changed
    pickled = dump(component, tmp_path / "c.pickle")
    assert unpickle_in_a_child(pickled)["total"] == 7
    result = unpickle_in_a_child(pickled, prepare=OTHER_CPU)
    assert result["compiled"] == [] and "carries no binary" in result["error"]


def test_a_component_loaded_from_compiled_code_has_no_binary_to_fall_back_on(tmp_path, resources):
    pickled = dump(Component.deserialize(resources.serialize()), tmp_path / "c.pickle")
    assert unpickle_in_a_child(pickled)["total"] == 7
    result = unpickle_in_a_child(pickled, prepare=OTHER_CPU)
    assert "compiled for another wasmtime version, engine settings or CPU" in result["error"]


def test_a_corrupt_pickle_is_a_wasm_error_not_a_crash(resources):
    engine, key, compiled, wasm = resources.__reduce__()[1]
    damaged = compiled[:1000] + bytes([compiled[1000] ^ 1]) + compiled[1001:]
    with pytest.raises(WasmError, match="corrupt"):
        Component._unpickle(engine, key, damaged, None)
    with pytest.raises(WasmError):
        Component._unpickle(engine, key, compiled[:len(compiled) // 2], None)
    again = Component._unpickle(engine, key, damaged, wasm)  # compiled again from the binary
    assert Instance(again).exports.drops() == 0
    with pytest.raises(TypeError, match="engine"):
        Component._unpickle("not an engine", key, compiled, wasm)


def test_a_modules_pickle_data_is_not_a_component(resources):
    engine, key, compiled, wasm = wasmpy.Module("(module)").__reduce__()[1]
    with pytest.raises(WasmError):
        Component._unpickle(engine, key, compiled, None)


def test_instances_and_their_parts_refuse_to_pickle_saying_what_to_send(resources):
    instance = Instance(resources)
    exports = instance.exports
    counter = exports.api.Counter(1)
    for thing in (instance, exports, exports.api, exports.drops, exports.api.total, counter, instance.store):
        with pytest.raises(TypeError, match="cannot be pickled.*send the Module or Component"):
            pickle.dumps(thing)
    assert copy.copy(resources) is resources and copy.deepcopy(resources) is resources


def test_a_component_imported_by_the_hook_pickles(tmp_path, monkeypatch):
    shutil.copy(RESOURCES, tmp_path / "resources_pickled.wasm")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        hooked = importlib.import_module("resources_pickled")
        again = pickle.loads(pickle.dumps(hooked.__wasm_instance__.component))
        assert Instance(again).exports.drops() == 0
    finally:
        sys.modules.pop("resources_pickled", None)


def test_deserialize_file_maps_compiled_code(tmp_path, resources):
    path = tmp_path / "resources.cwasm"
    path.write_bytes(resources.serialize())
    assert Instance(Component.deserialize_file(path)).exports.drops() == 0
    with pytest.raises(WasmError, match="cannot load the serialized component"):
        Component.deserialize_file(tmp_path / "absent.cwasm")
    with pytest.raises(WasmError, match="not a regular file"):
        Component.deserialize_file(tmp_path)
    (tmp_path / "module.cwasm").write_bytes(wasmpy.Module("(module)").serialize())
    with pytest.raises(WasmError):
        Component.deserialize_file(tmp_path / "module.cwasm")
    with pytest.raises(TypeError, match="path"):
        Component.deserialize_file(b"resources.cwasm")


def _pool_init(component: Component) -> None:
    global _pool_exports
    _pool_exports = Instance(component).exports


def _pool_total(start: int) -> int:
    with _pool_exports.api.Counter(start) as counter:
        return _pool_exports.api.total(counter)


def test_a_process_pool_gets_the_component_through_its_initializer(resources):
    """spawn: fresh interpreters, so the component really travels by pickle."""
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=context, initializer=_pool_init,
                                                initargs=(resources,)) as pool:
        assert list(pool.map(_pool_total, range(6))) == list(range(6))
