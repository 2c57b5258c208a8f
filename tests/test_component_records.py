"""Records and tuples of simple WIT fields (bool, integers, floats, char, string), which
csrc/component/records.c converts, checked against the field-by-field rules of
wasmpy/component/_values.py: the same values come back, and what C does not take as it is
(mappings, other objects, int subclasses, bad fields) goes the Python way with the same
conversions and errors. Records with other fields (rich.wasm's person) keep the Python codec."""

from __future__ import annotations

import dataclasses
import enum
import math
import types
from collections import deque
from pathlib import Path

import pytest

from wasmpy import Component, Instance
from wasmpy.component import ComponentFunc
from wasmpy._ffi import ffi, lib
from wasmpy._native import (component_prepare_record, component_prepare_tuple, component_read_record,
                            component_read_tuple, component_write_record, component_write_tuple)

from childproc import assert_clean_exit, run_python
from test_component_lists import BUMP_ALLOCATOR, _f32

KINDS = ["bool", "s8", "u8", "s16", "u16", "s32", "u32", "s64", "u64", "f32", "f64", "char", "string"]
# More fields than the C code's small buffers hold (16), and more flat values than the canonical
# ABI passes as parameters (16): wasm gets the record in memory.
WIDE = [("from", "string")] + [(f"w{index}", kind) for index, kind in enumerate(KINDS * 2)]

# (size, alignment, flat type, store instruction) of each kind in the canonical ABI's memory layout.
_LAYOUT = {"bool": (1, "i32", "i32.store8"), "s8": (1, "i32", "i32.store8"), "u8": (1, "i32", "i32.store8"),
           "s16": (2, "i32", "i32.store16"), "u16": (2, "i32", "i32.store16"), "s32": (4, "i32", "i32.store"),
           "u32": (4, "i32", "i32.store"), "char": (4, "i32", "i32.store"), "f32": (4, "f32", "f32.store"),
           "s64": (8, "i64", "i64.store"), "u64": (8, "i64", "i64.store"), "f64": (8, "f64", "f64.store")}


def _flat_echo(name: str, kinds: list[str]) -> str:
    """A core function taking a record (or tuple) of `kinds` as flat parameters (the canonical
    ABI's way for up to 16 flat values) and returning it through a return area at address 0, in
    its memory layout (each field at its alignment; a string is a pointer and a length)."""
    params, body, offset, local = [], [], 0, 0
    for kind in kinds:
        if kind == "string":
            offset = (offset + 3) & ~3
            params += ["i32", "i32"]
            body += [f"(i32.store offset={offset} (i32.const 0) (local.get {local}))",
                     f"(i32.store offset={offset + 4} (i32.const 0) (local.get {local + 1}))"]
            local, offset = local + 2, offset + 8
            continue
        size, flat, store = _LAYOUT[kind]
        offset = (offset + size - 1) & ~(size - 1)
        params.append(flat)
        body.append(f"({store} offset={offset} (i32.const 0) (local.get {local}))")
        local, offset = local + 1, offset + size
    return (f'(func (export "{name}") (param {" ".join(params)}) (result i32)\n      ' + "\n      ".join(body) +
            '\n      (global.set $next (i32.const 1024)) (i32.const 0))')


def _fields(pairs: list[tuple[str, str]]) -> str:
    return " ".join(f'(field "{name}" {kind})' for name, kind in pairs)


_LIFT = "(memory $memory) (realloc (core func $realloc)) string-encoding=utf8"

# echo-all echoes a record, and echo-all-tuple a tuple, of every kind (14 flat values: flat
# parameters); echo-wide and echo-wide-tuple more (wasm gets a pointer to them and returns it,
# the record's memory layout being that of the return area); echo-points a list of records.
RECORDS_WAT = f"""
(component
  (core module $m{BUMP_ALLOCATOR}    {_flat_echo("echo-all", KINDS)}
    (func (export "echo-in-memory") (param i32) (result i32)
      (global.set $next (i32.const 1024))
      (local.get 0))
    (func (export "echo-list") (param i32 i32) (result i32)
      (i32.store (i32.const 0) (local.get 0))
      (i32.store (i32.const 4) (local.get 1))
      (global.set $next (i32.const 1024))
      (i32.const 0)))
  (core instance $i (instantiate $m))
  (alias core export $i "memory" (core memory $memory))
  (alias core export $i "realloc" (core func $realloc))
  (type $all' (record {_fields([(f"f-{kind}", kind) for kind in KINDS])}))
  (export $all "all" (type $all'))
  (type $wide' (record {_fields(WIDE)}))
  (export $wide "wide" (type $wide'))
  (func (export "echo-all") (param "x" $all) (result $all) (canon lift (core func $i "echo-all") {_LIFT}))
  (func (export "echo-all-tuple") (param "x" (tuple {" ".join(KINDS)})) (result (tuple {" ".join(KINDS)}))
    (canon lift (core func $i "echo-all") {_LIFT}))
  (func (export "echo-wide") (param "x" $wide) (result $wide) (canon lift (core func $i "echo-in-memory") {_LIFT}))
  (func (export "echo-wide-tuple") (param "x" (tuple {" ".join(kind for _, kind in WIDE)}))
    (result (tuple {" ".join(kind for _, kind in WIDE)})) (canon lift (core func $i "echo-in-memory") {_LIFT}))
  (func (export "echo-points") (param "x" (list $all)) (result (list $all))
    (canon lift (core func $i "echo-list") {_LIFT}))
)
"""

RICH = Path(__file__).resolve().parent / "components" / "rich.wasm"


@pytest.fixture(scope="module")
def exports():
    return Instance(Component(RECORDS_WAT)).exports


# Two values per kind, at the ends of its range where it has them.
VALUES = {
    "bool": [True, False], "s8": [-128, 127], "u8": [0, 255], "s16": [-2**15, 2**15 - 1], "u16": [0, 2**16 - 1],
    "s32": [-2**31, 2**31 - 1], "u32": [0, 2**32 - 1], "s64": [-2**63, 2**63 - 1], "u64": [0, 2**64 - 1],
    "f32": [-1.5, math.inf], "f64": [1e300, -0.0], "char": ["\0", "\U0001F600"], "string": ["", "ü\0x" * 50],
}


def _all(exports, which: int):
    return exports.All(*[VALUES[kind][which] for kind in KINDS])


@pytest.mark.parametrize("which", [0, 1])
def test_a_record_of_every_kind_round_trips(exports, which):
    value = _all(exports, which)
    got = exports.echo_all(value)
    assert got == value and type(got) is exports.All
    assert [type(getattr(got, f"f_{kind}")) for kind in KINDS] == [type(VALUES[kind][which]) for kind in KINDS]
    assert exports.echo_all_tuple(tuple(VALUES[kind][which] for kind in KINDS)) == dataclasses.astuple(value)
    # C takes all of them as they are (none went the Python way).
    kinds = bytes(getattr(lib, f"WASMTIME_COMPONENT_{kind.upper()}") for kind in KINDS)
    attributes = tuple(f"f_{kind}" for kind in KINDS)
    assert component_prepare_record(value, exports.All, attributes, kinds) == dataclasses.astuple(value)


def test_floats_and_ints_for_floats(exports):
    got = exports.echo_all(dataclasses.replace(_all(exports, 0), f_f32=0.1, f_f64=3))
    assert got.f_f32 == _f32(0.1) and got.f_f64 == 3.0 and type(got.f_f64) is float
    assert math.isnan(exports.echo_all(dataclasses.replace(_all(exports, 0), f_f64=math.nan)).f_f64)
    assert exports.echo_all(dataclasses.replace(_all(exports, 0), f_f32=1e300)).f_f32 == math.inf  # as cffi rounds


def test_wide_records_and_tuples(exports):
    values = [VALUES[kind][index % 2] for index, (_, kind) in enumerate(WIDE)]
    wide = exports.Wide(*values)
    assert wide.from_ == values[0]  # a keyword field gets an underscore
    assert exports.echo_wide(wide) == wide
    assert exports.echo_wide({"from": values[0], **{f"w{i}": v for i, v in enumerate(values[1:])}}) == wide
    assert exports.echo_wide_tuple(values) == tuple(values)


def test_records_in_a_list(exports):
    records = [_all(exports, index % 2) for index in range(50)]
    assert exports.echo_points(records) == records
    assert exports.echo_points([]) == []


class Number(int):
    pass


class Text(str):
    def encode(self, *args, **kwargs):  # the Python way calls it: C must not read the str itself
        return "encoded".encode(*args, **kwargs)


class Level(enum.IntEnum):
    LOW = 1


def test_what_c_does_not_take_as_it_is_is_converted_the_python_way(exports):
    expected = _all(exports, 0)
    fields = dataclasses.asdict(expected)
    assert exports.echo_all(fields) == expected  # a mapping, by snake_case names
    assert exports.echo_all({f"f-{kind}": fields[f"f_{kind}"] for kind in KINDS}) == expected  # or WIT names
    assert exports.echo_all(types.SimpleNamespace(**fields)) == expected  # any object with the attributes
    subclass = dataclasses.make_dataclass("Sub", [], bases=(exports.All,))
    assert exports.echo_all(subclass(**fields)) == expected
    converted = exports.echo_all(dataclasses.replace(expected, f_u32=Number(7), f_s64=Level.LOW,
                                                     f_f64=Number(2), f_string=Text("ignored")))
    assert (converted.f_u32, converted.f_s64, converted.f_f64, converted.f_string) == (7, 1, 2.0, "encoded")
    assert type(converted.f_u32) is int and type(converted.f_f64) is float
    items = list(dataclasses.astuple(expected))
    assert exports.echo_all_tuple(deque(items)) == tuple(items)  # any sequence
    assert exports.echo_all_tuple(items[:5] + [Number(3)] + items[6:])[5] == 3


@pytest.mark.parametrize("field, value, error, message", [
    ("u8", 256, OverflowError, r"of echo-all\.f_u8: 256 is out of range for u8 \(0 to 255\)"),
    ("s8", -129, OverflowError, r"\.f_s8: -129 is out of range for s8"),
    ("u64", -1, OverflowError, r"\.f_u64: -1 is out of range for u64"),
    ("s64", 2**63, OverflowError, r"\.f_s64: .* is out of range for s64"),
    ("s32", True, TypeError, r"\.f_s32: expected an int \(s32\), got bool"),
    ("u16", 1.0, TypeError, r"\.f_u16: expected an int \(u16\), got float"),
    ("bool", 1, TypeError, r"\.f_bool: expected a bool, got int"),
    ("f64", "1", TypeError, r"\.f_f64: expected a float \(f64\), got str"),
    ("f32", 2**2000, OverflowError, r"\.f_f32: .* is too large for f32"),
    ("char", "ab", TypeError, r"\.f_char: expected a one-character str \(char\), got a str of length 2"),
    ("char", "\ud800", ValueError, r"\.f_char: '\\ud800' is a surrogate"),
    ("string", "a\udc80", ValueError, r"\.f_string: the text has a lone surrogate"),
    ("string", b"bytes", TypeError, r"\.f_string: expected a str \(string\), got bytes"),
])
def test_bad_fields_raise_naming_them(exports, field, value, error, message):
    record = dataclasses.replace(_all(exports, 0), **{f"f_{field}": value})
    with pytest.raises(error, match=message) as raised:
        exports.echo_all(record)
    assert str(raised.value).startswith(f"argument 'x' of echo-all.f_{field}: ")
    items = list(dataclasses.astuple(_all(exports, 0)))
    items[KINDS.index(field)] = value
    with pytest.raises(error, match=rf"echo-all-tuple\[{KINDS.index(field)}\]"):
        exports.echo_all_tuple(items)
    assert exports.echo_all(_all(exports, 1)) == _all(exports, 1)  # the instance is still usable


def test_missing_fields_and_other_values_raise(exports):
    record = _all(exports, 0)
    del record.f_s16
    with pytest.raises(TypeError, match=r"expected a All \(or a mapping with its fields\), got All without a 'f_s16'"):
        exports.echo_all(record)
    with pytest.raises(TypeError, match=r"the mapping has no field 'f_bool'"):
        exports.echo_all({})
    with pytest.raises(TypeError, match=r"expected a tuple of 13 \(tuple<bool, .*>\), got 12 items"):
        exports.echo_all_tuple(list(dataclasses.astuple(_all(exports, 0)))[:-1])
    with pytest.raises(TypeError, match=r"expected a tuple \(tuple<bool"):
        exports.echo_all_tuple("not a tuple")


def test_an_attribute_that_raises_reaches_the_caller(exports):
    class Broken(Exception):
        pass

    class Faulty:
        def __getattr__(self, name):
            raise Broken(name)

    with pytest.raises(Broken, match="f_bool"):
        exports.echo_all(Faulty())


# --- A Python import (rich.wasm: api.roundtrip-* calls host's echo-*) ---------------------------

@pytest.fixture(scope="module")
def rich():
    return Component.from_file(RICH)


def _api(rich, **host):
    """rich.wasm's api, its host imports the identity but for those given (snake_case names)."""
    class Host:
        def __getattr__(self, name):
            if name in host:
                return host[name]
            if not name.startswith("echo_"):
                raise AttributeError(name)
            return lambda *args: args[0] if len(args) == 1 else args

        def get_name(self):
            return "host"

    return Instance(rich, {"log": lambda message: None, "test:rich/host": Host()}).exports.api


def test_records_through_a_python_import(rich):
    seen = []
    api = _api(rich, echo_point=lambda point: seen.append(point) or point)
    assert api.roundtrip_point(api.Point(1, -2)) == api.Point(1, -2)
    assert type(seen[0]).__name__ == "Point" and (seen[0].x, seen[0].y) == (1, -2)
    assert api.roundtrip_tuple((255, "ü", 0.5)) == (255, "ü", 0.5)
    assert api.roundtrip_two(7, "seven") == (7, "seven")
    # person has a list<string>: the Python codec, both ways.
    person = api.Person(name="ann", age=30, tags=["a", "b"])
    assert api.roundtrip_person(person) == person
    assert api.roundtrip_person({"name": "bo", "age": 1, "tags": []}) == api.Person("bo", 1, [])


def test_which_records_c_converts(rich, monkeypatch):
    """Point (two s32) goes through C both ways: as an argument with the codec's C functions (or
    without the codec, in the C path of the call: csrc/component/call.c), as an import's result in
    the import's C callback (csrc/component/host.c, which calls them without the codec); person
    (with a list<string>) keeps the Python codec."""
    import wasmpy.component._values as values
    prepared = []

    def spy(value, cls, attributes, kinds):
        prepared.append(cls.__name__)
        return component_prepare_record(value, cls, attributes, kinds)

    monkeypatch.setattr(values, "component_prepare_record", spy)
    api = _api(rich)
    assert api.roundtrip_point(api.Point(1, 2)) == api.Point(1, 2)
    assert prepared == []
    assert ComponentFunc._call_slow(api.roundtrip_point, api.Point(1, 2)) == api.Point(1, 2)
    assert prepared == ["Point"]
    assert api.roundtrip_person(api.Person("ann", 30, ["a"])) == api.Person("ann", 30, ["a"])
    assert prepared == ["Point"]


def test_what_an_import_returns_the_python_way(rich):
    api = _api(rich, echo_point=lambda point: {"x": point.y, "y": point.x})
    assert api.roundtrip_point(api.Point(1, 2)) == api.Point(2, 1)
    api = _api(rich, echo_point=lambda point: api.Point(Number(point.x), 5))  # api's Point, not host's
    assert api.roundtrip_point(api.Point(1, 2)) == api.Point(1, 5)
    api = _api(rich, echo_tuple=lambda items: [Number(items[0]), *items[1:]])
    assert api.roundtrip_tuple((1, "x", 2.0)) == (1, "x", 2.0)


def test_bad_results_of_an_import_raise_in_the_caller(rich):
    api = _api(rich, echo_point=lambda point: dataclasses.replace(point, y=2**31))
    with pytest.raises(OverflowError, match=r"the result of the import test:rich/host@0.1.0#echo-point\.y: "
                                            r"2147483648 is out of range for s32"):
        api.roundtrip_point(api.Point(1, 2))
    api = _api(rich, echo_tuple=lambda items: (items[0], "\udc80", items[2]))
    with pytest.raises(ValueError, match=r"echo-tuple\[1\]: the text has a lone surrogate"):
        api.roundtrip_tuple((1, "x", 2.0))


# --- What reaches C is checked; what it makes is freed -------------------------------------

def _address(val) -> int:
    return int(ffi.cast("uintptr_t", val))


def check_the_c_functions() -> None:
    """The C functions refuse what they do not convert, and leave nothing half-made (run in a
    child by the test below: a missing check would crash)."""
    point = dataclasses.make_dataclass("Point", ["x", "y"])
    kinds = bytes([lib.WASMTIME_COMPONENT_S32, lib.WASMTIME_COMPONENT_STRING])
    assert component_prepare_record(point(1, "a"), point, ("x", "y"), kinds) == (1, "a")
    assert component_prepare_record(point(1, 2), point, ("x", "y"), kinds) is None  # not a str
    assert component_prepare_tuple([1, "a"], kinds) == (1, "a")
    assert component_prepare_tuple([1, "a", 3], kinds) is None
    with pytest.raises(ValueError, match="a field kind it does not convert"):
        component_prepare_tuple((1,), bytes([lib.WASMTIME_COMPONENT_LIST]))
    with pytest.raises(TypeError, match="attributes must be a tuple"):
        component_prepare_record(point(1, "a"), point, ("x",), kinds)
    with pytest.raises(TypeError, match="attributes must be str"):
        component_prepare_record(point(1, "a"), point, ("x", 2), kinds)
    with pytest.raises(TypeError):
        component_prepare_record(point(1, "a"), "not a class", ("x", "y"), kinds)

    val = ffi.new("wasmtime_component_val_t *")
    with pytest.raises(ValueError, match="a null address"):
        component_write_record(0, (b"x", b"y"), kinds, (1, "a"))
    with pytest.raises(ValueError, match="a null address"):
        component_read_tuple(0, kinds)
    with pytest.raises(TypeError, match="the address must be an int"):
        component_read_record(None, kinds, point)
    with pytest.raises(TypeError, match="names must be a tuple"):
        component_write_record(_address(val), (b"x",), kinds, (1, "a"))
    with pytest.raises(TypeError, match="names must be bytes"):
        component_write_record(_address(val), (b"x", "y"), kinds, (1, "a"))
    with pytest.raises(TypeError, match="prepared must be a tuple"):
        component_write_tuple(_address(val), kinds, [1, "a"])
    with pytest.raises(ValueError, match="field 1 is not a value prepare makes"):
        component_write_record(_address(val), (b"x", b"y"), kinds, (1, 2))
    with pytest.raises(ValueError, match="field 0 is not a value prepare makes"):
        component_write_tuple(_address(val), kinds, (2**40, "a"))
    assert val.kind == lib.WASMTIME_COMPONENT_BOOL  # nothing was made
    with pytest.raises(ValueError, match="not a record of 2 fields"):
        component_read_record(_address(val), kinds, point)
    with pytest.raises(ValueError, match="not a tuple of 2 items"):
        component_read_tuple(_address(val), kinds)

    component_write_record(_address(val), (b"x", b"y"), kinds, (-5, "text"))
    try:
        assert val.kind == lib.WASMTIME_COMPONENT_RECORD
        assert component_read_record(_address(val), kinds, point) == point(-5, "text")
        with pytest.raises(SystemError, match="a field of another kind"):
            component_read_record(_address(val), kinds[::-1], point)
        with pytest.raises(ValueError, match="not a record of 1 fields"):
            component_read_record(_address(val), kinds[:1], point)
        with pytest.raises(ValueError, match="not a tuple"):
            component_read_tuple(_address(val), kinds)
    finally:
        lib.wasmpy_component_vals_delete(val, 1)
    component_write_tuple(_address(val), kinds, (3, ""))
    try:
        assert component_read_tuple(_address(val), kinds) == (3, "")
    finally:
        lib.wasmpy_component_vals_delete(val, 1)


def test_the_c_functions_check_their_arguments():
    proc = run_python("""
        import test_component_records
        test_component_records.check_the_c_functions()
        print("ok")
    """, timeout=120)
    assert_clean_exit(proc)
    assert proc.stdout.strip().endswith("ok")


def test_many_calls_free_what_they_make():
    """Records and tuples made for each call (strings and field names copied) and the results are
    freed: memory stays flat over many calls (in a child, undisturbed by the other tests)."""
    proc = run_python(f"""
        import resource
        from wasmpy import Component, Instance
        from test_component_records import RECORDS_WAT, _all, _api
        exports = Instance(Component(RECORDS_WAT)).exports
        api = _api(Component.from_file({str(RICH)!r}))
        value, point = _all(exports, 1), api.Point(1, 2)
        items = (True, 1, 2, 3, 4, 5, 6, 7, 8, 1.0, 2.0, "c", "é" * 100)
        def run(count):
            for index in range(count):
                assert exports.echo_all(value).f_string == value.f_string
                assert exports.echo_all_tuple(items)[-1] == items[-1]
                assert api.roundtrip_point(point) == point
                assert api.roundtrip_tuple((1, "x" * 100, 2.0))[0] == 1
        run(5000)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        run(30000)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        assert after - before < 8 * 1024, (before, after)  # KiB: a leak of 300 bytes a call is 9 MB
        print("ok")
    """, timeout=300)
    assert_clean_exit(proc)
    assert proc.stdout.strip().endswith("ok")
