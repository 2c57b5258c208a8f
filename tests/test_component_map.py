"""WIT ``map<K, V>`` as Python ``dict`` (issue 15's values table), both ways.

The test component tests/components/maps.wasm (maps.wit, maps.wat and build.sh beside it)
exports test:maps/api: functions that return the map they are given, that read it themselves
(how many entries, the sum of the values), that return maps of their own (one with a key
twice), and that hand a map to the Python import test:maps/host and return what it gave back.
"""

from __future__ import annotations

import collections
import shutil
import types
from collections.abc import Mapping
from pathlib import Path

import pytest

import wasmpy
from wasmpy import Component, Engine, Instance
from wasmpy._engine import compiled_code_key
from wasmpy._ffi import ffi, lib
from wasmpy.component import HandleType, ListType, MapType, OptionType, Primitive, ResourceType, TupleType
from wasmpy.component._instance import _plan
from wasmpy.component._types import find_unsupported
from wasmpy.component._values import Codecs

from childproc import child_json, run_python

COMPONENTS = Path(__file__).resolve().parent / "components"
MAPS = COMPONENTS / "maps.wasm"
HOST = "test:maps/host@0.1.0"


class Host:
    """test:maps/host: ``tally`` doubles every count, ``regroup`` moves each group one key up and
    reverses it; both record what they were given."""

    def __init__(self):
        self.seen = []

    def tally(self, counts):
        self.seen.append(("tally", counts))
        return {name: count * 2 for name, count in counts.items()}

    def regroup(self, groups):
        self.seen.append(("regroup", groups))
        return {key + 1: names[::-1] for key, names in groups.items()}


@pytest.fixture(scope="module")
def maps():
    return Component.from_file(MAPS)


@pytest.fixture
def host():
    return Host()


@pytest.fixture
def api(maps, host):
    return Instance(maps, {"test:maps/host": host}).exports.api


# --- types ------------------------------------------------------------------------------------

def test_map_types_read_like_wit(maps):
    functions = maps.exports.interfaces["test:maps/api@0.1.0"].functions
    assert str(functions["echo-counts"]) == "echo-counts: func(counts: map<string, u32>) -> map<string, u32>"
    assert str(functions["echo-groups"]) == ("echo-groups: func(groups: map<u32, list<string>>) -> "
                                             "map<u32, list<string>>")
    assert functions["groups"].result == MapType(Primitive("u32"), ListType(Primitive("string")))
    assert str(maps.imports.interfaces[HOST].functions["tally"]) == (
        "tally: func(counts: map<string, u32>) -> map<string, u32>")


def test_help_shows_the_map_types(api):
    assert api.echo_counts.__doc__ == "WIT echo-counts: func(counts: map<string, u32>) -> map<string, u32>"


def test_map_calls_never_take_the_c_path(maps):
    """csrc/component/call.c converts only bool, numbers, char, string, and lists, records and tuples
    of them: a function with a map goes the Python way (the codecs), so no map reaches C unconverted."""
    functions = maps.exports.interfaces["test:maps/api@0.1.0"].functions
    for name in ("echo-counts", "count-entries", "groups"):
        assert _plan(functions[name], Codecs()) == (None, 255, ())


def test_a_resource_in_a_map_is_not_refused():
    # Handles are converted anywhere in a value (tests/test_component_resources.py), maps included.
    handle = HandleType(ResourceType("thing"), owned=True)
    assert find_unsupported(MapType(Primitive("string"), handle)) is None
    assert find_unsupported(MapType(Primitive("string"), Primitive("u32"))) is None


# --- values both ways -------------------------------------------------------------------------

@pytest.mark.parametrize("typ, value", [
    (ListType(MapType(Primitive("string"), OptionType(Primitive("u32")))), [{}, {"a": None, "b": 3}, {"c": 0}]),
    (MapType(Primitive("string"), MapType(Primitive("char"), Primitive("bool"))),
     {"x": {"é": True, "y": False}, "": {}}),
    (MapType(Primitive("s64"), TupleType((Primitive("f64"), Primitive("string")))),
     {-2**63: (1.5, "min"), 0: (0.0, "")}),
    (MapType(Primitive("bool"), ListType(Primitive("u8"))), {True: b"\x00\xff", False: b""}),
])
def test_maps_in_other_types_and_other_types_in_maps(typ, value):
    """Without a component: the C value the codecs make (wasmtime's allocators) reads back the
    same, and wasmtime frees it."""
    codec = Codecs().codec(typ)
    val = ffi.new("wasmtime_component_val_t *")
    codec.write(codec.prepare(value, "value"), val)
    try:
        assert codec.read(val) == value
    finally:
        lib.wasmpy_component_vals_delete(val, 1)

@pytest.mark.parametrize("counts", [{}, {"a": 1}, {"x": 0, "why": 2**32 - 1, "": 7, "naïve ✓": 3, "🦀": 4}])
def test_string_to_u32_round_trips(api, counts):
    assert api.echo_counts(counts) == counts
    assert list(api.echo_counts(counts)) == list(counts)  # in the order given
    assert api.count_entries(counts) == len(counts)
    assert api.sum_values(counts) == sum(counts.values()) % 2**32


@pytest.mark.parametrize("groups", [{}, {1: []}, {0: ["a"], 2**32 - 1: ["b", "", "ç"], 7: []}])
def test_u32_to_list_of_strings_round_trips(api, groups):
    assert api.echo_groups(groups) == groups


def test_maps_the_guest_makes(api):
    groups = api.groups()
    assert type(groups) is dict and groups == {1: ["one"], 2: ["two", "deux"]}


def test_a_large_map(api):
    counts = {f"key {index}": index for index in range(20_000)}
    assert api.echo_counts(counts) == counts
    assert api.count_entries(counts) == 20_000
    assert api.sum_values(counts) == sum(range(20_000))
    groups = {index: [str(index)] * (index % 3) for index in range(5_000)}
    assert api.echo_groups(groups) == groups


class Counts(Mapping):
    """A Mapping that is not a dict."""

    def __init__(self, items):
        self.items_ = dict(items)

    def __getitem__(self, key):
        return self.items_[key]

    def __iter__(self):
        return iter(self.items_)

    def __len__(self):
        return len(self.items_)


@pytest.mark.parametrize("make", [dict, collections.OrderedDict, types.MappingProxyType, Counts,
                                  collections.Counter])
def test_any_mapping_is_taken_and_a_dict_comes_back(api, make):
    counts = make({"b": 2, "a": 1})
    result = api.echo_counts(counts)
    assert type(result) is dict and result == {"b": 2, "a": 1} and list(result) == ["b", "a"]


@pytest.mark.parametrize("value, error, message", [
    ([("a", 1)], TypeError, r"argument 'counts' of via-tally: expected a dict \(map<string, u32>\), got list"),
    ("a", TypeError, "expected a dict"),
    (None, TypeError, "got NoneType"),
    ({1: 1}, TypeError, r"argument 'counts' of via-tally, key 1: expected a str \(string\), got int"),
    ({"a": -1}, OverflowError, r"argument 'counts' of via-tally\['a'\]: -1 is out of range for u32"),
    ({"a": 2**32}, OverflowError, "out of range for u32"),
    ({"a": "1"}, TypeError, r"via-tally\['a'\]: expected an int \(u32\), got str"),
    ({"a": True}, TypeError, "expected an int"),
    ({"\ud800": 1}, ValueError, "lone surrogate"),
])
def test_bad_maps_are_refused_before_the_call(api, host, value, error, message):
    with pytest.raises(error, match=message):
        api.via_tally(value)
    assert host.seen == []
    assert api.echo_counts({"still": 1}) == {"still": 1}  # and the instance is usable


@pytest.mark.parametrize("groups, error, message", [
    ({1: "ab"}, TypeError, r"echo-groups\[1\]: expected a list \(list<string>\), got str"),
    ({1: ["a", 2]}, TypeError, r"echo-groups\[1\]\[1\]: expected a str"),
    ({-1: []}, OverflowError, "key -1: -1 is out of range for u32"),
    ({"1": []}, TypeError, "key '1': expected an int"),
])
def test_bad_nested_values_name_where_they_are(api, groups, error, message):
    with pytest.raises(error, match=message):
        api.echo_groups(groups)


class Key(int):
    """An int whose instances are all different keys to Python, though equal as u32s."""

    __eq__ = object.__eq__
    __hash__ = object.__hash__


def test_two_keys_converting_to_one_are_refused(api, host):
    groups = {Key(1): ["a"], Key(1): ["b"]}
    assert len(groups) == 2
    with pytest.raises(ValueError, match=r"two keys of the mapping are the same u32 \(map<u32, list<string>>\)"):
        api.via_regroup(groups)
    assert host.seen == []
    assert api.echo_groups({Key(1): ["a"]}) == {1: ["a"]}


def test_a_key_twice_from_wasm_the_last_entry_wins(api, host):
    """wasmtime passes a map's entries as wasm lays them out, a key twice included
    (duplicates() is (a, 1), (b, 2), (a, 3)): the dict is what dict(pairs) makes of them, both
    as a result and as a Python import's argument."""
    assert list(api.duplicates().items()) == [("a", 3), ("b", 2)]
    assert list(api.tally_duplicates().items()) == [("a", 6), ("b", 4)]
    assert host.seen == [("tally", {"a": 3, "b": 2})]


# --- Python imports ---------------------------------------------------------------------------

def test_a_python_import_takes_and_returns_maps(api, host):
    assert api.via_tally({"x": 1, "y": 20}) == {"x": 2, "y": 40}
    assert api.via_regroup({1: ["a", "b"], 5: []}) == {2: ["b", "a"], 6: []}
    assert host.seen == [("tally", {"x": 1, "y": 20}), ("regroup", {1: ["a", "b"], 5: []})]
    assert all(type(argument) is dict for _, argument in host.seen)
    assert api.via_tally({}) == {}


def test_an_import_may_return_any_mapping(maps):
    host = {"tally": lambda counts: types.MappingProxyType({"n": len(counts)}),
            "regroup": lambda groups: collections.OrderedDict(groups)}
    api = Instance(maps, {"test:maps/host": host}).exports.api
    assert api.via_tally({"a": 1, "b": 2}) == {"n": 2}
    assert api.via_regroup({3: ["c"]}) == {3: ["c"]}


def test_a_large_map_through_an_import(api):
    counts = {str(index): index for index in range(10_000)}
    assert api.via_tally(counts) == {key: value * 2 for key, value in counts.items()}


@pytest.mark.parametrize("returned, error, message", [
    ([("a", 1)], TypeError, r"the result of the import test:maps/host@0\.1\.0#tally: expected a dict"),
    ({"a": -1}, OverflowError, r"#tally\['a'\]: -1 is out of range for u32"),
    ({2: 1}, TypeError, "key 2: expected a str"),
])
def test_bad_results_of_an_import_raise_in_the_caller(maps, returned, error, message):
    host = {"tally": lambda counts: returned, "regroup": dict}
    with pytest.raises(error, match=message):
        Instance(maps, {"test:maps/host": host}).exports.api.via_tally({"a": 1})


def test_an_exception_of_an_import_reaches_the_caller_unchanged(maps):
    class Refused(Exception):
        pass

    def tally(counts):
        raise Refused(counts)

    with pytest.raises(Refused) as raised:
        Instance(maps, {"test:maps/host": {"tally": tally, "regroup": dict}}).exports.api.via_tally({"a": 1})
    assert raised.value.args == ({"a": 1},)


# --- engines and compiled code ----------------------------------------------------------------

def test_engines_have_maps_on_unless_told_otherwise(maps):
    assert Engine.default().config["component_model_map"] is True
    without = Engine(component_model_map=False)
    assert without.config["component_model_map"] is False
    with pytest.raises(wasmpy.CompileError, match="component model map feature"):
        Component.from_file(MAPS, without)
    assert compiled_code_key(without) != compiled_code_key(Engine())


def test_compiled_code_of_engines_without_maps_loads_with_maps_not_the_other_way():
    """wasmtime records the feature in compiled code: code made with it on loads only where it
    is on (which the code key, and so the import hook's cache, tells apart)."""
    without, with_maps = Engine(component_model_map=False), Engine()
    plain = Component("(component)", without).serialize()
    assert Component.deserialize(plain, with_maps).engine is with_maps
    with pytest.raises(wasmpy.WasmError, match="cm_map"):
        Component.deserialize(Component("(component)", with_maps).serialize(), without)


def test_serialized_map_components_call_the_same(maps, host):
    loaded = Component.deserialize(maps.serialize())
    assert Instance(loaded, {"test:maps/host": host}).exports.api.via_tally({"k": 4}) == {"k": 8}


def test_component_files_are_committed_with_their_sources():
    for name in ("maps.wit", "maps.wat", "maps.wasm"):
        assert (COMPONENTS / name).is_file(), name
    assert "maps.wasm" in (COMPONENTS / "build.sh").read_text()


# --- the import hook --------------------------------------------------------------------------

HOOK_CHILD = """
import json, sys
sys.dont_write_bytecode = False  # whatever PYTHONDONTWRITEBYTECODE says
sys.path.insert(0, {directory!r})
from childproc import count_compiles
compiled = count_compiles()
import maps_demo
api = maps_demo.api
print(json.dumps({{"compiled": compiled, "echo": api.echo_groups({{1: ["a"], 2: []}}),
                  "via": api.via_tally({{"x": 3}}), "doc": api.via_tally.__doc__}}))
"""


def test_the_import_hook_loads_a_map_component_cold_then_warm(tmp_path):
    shutil.copy(MAPS, tmp_path / "maps_demo.wasm")
    (tmp_path / "test_maps").mkdir()
    (tmp_path / "test_maps" / "host.py").write_text(
        "def tally(counts):\n    return {key: value + 1 for key, value in counts.items()}\n\n"
        "def regroup(groups):\n    return groups\n")
    runs = [child_json(run_python(HOOK_CHILD.format(directory=str(tmp_path)), timeout=120)) for _ in range(2)]
    # JSON has string keys only: {1: ["a"], 2: []} comes out as {"1": ["a"], "2": []}.
    expected = {"echo": {"1": ["a"], "2": []}, "via": {"x": 4},
                "doc": "WIT via-tally: func(counts: map<string, u32>) -> map<string, u32>"}
    assert runs[0] == {"compiled": ["Component"], **expected}
    assert runs[1] == {"compiled": [], **expected}
