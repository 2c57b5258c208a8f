"""The C path of component calls (csrc/component/call.c) for lists of simple WIT types and for
records and tuples of simple fields: converted in C from the plan (``_instance._plan``), with
records.c's and lists.c's functions; whatever C does not take as it is goes the Python way
(``ComponentFunc._call_slow``, the codecs), which converts it or raises its own error. The two
ways must agree exactly: the same calls are made both ways and their results (values and exact
types) or errors compared.
"""

from __future__ import annotations

import math
import sys
from collections import deque

import pytest

import wasmpy.component._instance as component_instance
from childproc import assert_clean_exit, run_python
from test_component_fast import RICH, VALUES, Big, Echo, Text, make, python_functions_called
from test_component_lists import BUMP_ALLOCATOR, ELEMENTS, LISTS_WAT, ROUND_TRIPS
from test_component_records import KINDS, RECORDS_WAT, WIDE
from wasmpy import Component, Instance
from wasmpy._ffi import ffi, lib
from wasmpy._native import ComponentCaller
from wasmpy.component import ComponentFunc
from wasmpy.component._values import Codecs

# mixed(p, xs, ys, t): a record, two lists and a tuple in one call; wasm returns len(xs) + len(ys).
MIXED_WAT = """
(component
  (core module $m""" + BUMP_ALLOCATOR + """    (func (export "mixed") (param i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)
      (global.set $next (i32.const 1024))
      (i32.add (local.get 3) (local.get 5))))
  (core instance $i (instantiate $m))
  (alias core export $i "memory" (core memory $memory))
  (alias core export $i "realloc" (core func $realloc))
  (type $point' (record (field "x" s32) (field "y" s32)))
  (export $point "point" (type $point'))
  (func (export "mixed") (param "p" $point) (param "xs" (list u32)) (param "ys" (list string))
    (param "t" (tuple u8 string)) (result u32)
    (canon lift (core func $i "mixed") (memory $memory) (realloc (core func $realloc)) string-encoding=utf8))
)
"""


@pytest.fixture(scope="module")
def records():
    return Instance(Component(RECORDS_WAT)).exports


@pytest.fixture(scope="module")
def lists():
    return Instance(Component(LISTS_WAT)).exports


@pytest.fixture(scope="module")
def mixed():
    return Instance(Component(MIXED_WAT)).exports


def outcome(call):
    """What ``call()`` gives: ("value", type, repr) (repr: nan, -0.0 and the fields' types count)
    or ("error", type, message)."""
    try:
        value = call()
    except Exception as error:  # noqa: BLE001 - every error is compared
        return ("error", type(error), str(error))
    return ("value", type(value), repr(value), [type(item) for item in _items(value)])


def _items(value):
    if isinstance(value, (list, tuple)):
        return value
    return list(vars(value).values()) if hasattr(value, "__dict__") else []


def assert_both_ways_agree(function, *args):
    fast = outcome(lambda: function(*args))
    slow = outcome(lambda: ComponentFunc._call_slow(function, *args))
    assert fast == slow, (function.type.name, args)
    return fast


def test_the_plans():
    """Lists of simple elements plan as LIST with their element kind (list<u8> stays bytes, spec
    None); records and tuples of simple fields as host.c's; anything else has no plan."""
    codecs = Codecs()
    functions = Component(LISTS_WAT).exports.functions
    for name in ELEMENTS:
        functype = functions[f"echo-{name}"]
        codecs.codec(functype.params[0][1])
        kind = int(getattr(lib, f"WASMTIME_COMPONENT_{name.upper()}"))
        assert component_instance._plan(functype, codecs) == (bytes([lib.WASMTIME_COMPONENT_LIST]),
                                                              lib.WASMTIME_COMPONENT_LIST, (kind, kind))
    rich = Component.from_file(RICH).exports.interfaces["test:rich/api@0.1.0"].functions
    for name in rich:
        for typ in [t for _, t in rich[name].params] + [rich[name].result]:
            if typ is not None:
                codecs.codec(typ)
    assert component_instance._plan(rich["roundtrip-bytes"], codecs)[2] == (None, None)
    kinds, result_kind, specs = component_instance._plan(rich["roundtrip-point"], codecs)
    assert kinds == bytes([lib.WASMTIME_COMPONENT_RECORD]) and result_kind == lib.WASMTIME_COMPONENT_RECORD
    assert specs[0][1:3] == (codecs.classes[rich["roundtrip-point"].params[0][1]], ("x", "y"))
    for name in ("roundtrip-person", "roundtrip-list-result", "roundtrip-option-u32", "roundtrip-shape"):
        assert component_instance._plan(rich[name], codecs) == (None, 255, ()), name


def _records_values(records):
    """Records of every kind: valid ones, and each field replaced by each of test_component_fast's
    values of its kind (of the wrong type, a subclass, out of range, a lone surrogate...)."""
    valid = {kind: VALUES[kind][0] for kind in KINDS}
    made = [records.All(*valid.values())]
    for index, kind in enumerate(KINDS):
        for value in VALUES[kind][1:]:
            fields = list(valid.values())
            fields[index] = value
            made.append(records.All(*fields))
    return made


def test_records_of_every_kind_both_ways(records):
    for value in _records_values(records):
        assert_both_ways_agree(records.echo_all, value)


def test_tuples_of_every_kind_both_ways(records):
    for value in _records_values(records):
        items = [getattr(value, f"f_{kind}") for kind in KINDS]
        assert_both_ways_agree(records.echo_all_tuple, tuple(items))
        assert_both_ways_agree(records.echo_all_tuple, items)  # a list: taken as a tuple


def test_wide_records_and_tuples_both_ways(records):
    """More fields than C's small buffers (16) and than the flat parameters: in memory."""
    fields = ["wide"] + [VALUES[kind][0] for _, kind in WIDE[1:]]
    wide = records.Wide(*fields)
    assert assert_both_ways_agree(records.echo_wide, wide)[0] == "value"
    assert records.echo_wide(wide) == wide
    assert assert_both_ways_agree(records.echo_wide_tuple, tuple(fields))[0] == "value"
    fields[5] = 2**70
    assert assert_both_ways_agree(records.echo_wide_tuple, tuple(fields))[0] == "error"


def test_what_a_record_plan_refuses_goes_the_python_way(records):
    valid = [VALUES[kind][0] for kind in KINDS]
    as_mapping = {f"f_{kind}": value for kind, value in zip(KINDS, valid)}

    class Sub(records.All):
        pass

    other = type("Other", (), dict(as_mapping))()
    for value in (as_mapping, {"f_bool": True}, Sub(*valid), other, None, 5, "text", tuple(valid)):
        assert_both_ways_agree(records.echo_all, value)
    for value in (tuple(valid[:-1]), tuple(valid) + (1,), deque(valid), "abc", None, {}, iter(valid)):
        assert_both_ways_agree(records.echo_all_tuple, value)
    called = python_functions_called(lambda: records.echo_all(as_mapping))
    assert "_call_slow" in called
    assert records.echo_all(as_mapping) == records.All(*valid)


def _list_values(name):
    """Lists of element ``name``: valid ones (lists and tuples), and each bad value of its kind."""
    good = ROUND_TRIPS.get(name, [VALUES[name][0]])
    made = [good, tuple(good), [], good * 300]
    made += [[good[0], bad] for bad in VALUES[name][1:]]
    made += [[Big(1)], [Text("x")], range(3), deque(good), "abc", b"ab", None, 5, {1: 2}, [None]]
    return made


@pytest.mark.parametrize("name", ELEMENTS)
def test_lists_of_every_element_both_ways(lists, name):
    function = lists[f"echo-{name}"]
    for value in _list_values(name):
        assert_both_ways_agree(function, value)


@pytest.mark.parametrize("name", ELEMENTS)
def test_lists_run_no_python_when_c_takes_them(lists, name):
    function = lists[f"echo-{name}"]
    values = ROUND_TRIPS[name] if name in ROUND_TRIPS else [VALUES[name][0]]
    for value in (values, tuple(values), []):
        assert python_functions_called(lambda: function(value)) == []
        got = function(value)
        assert type(got) is list and repr(got) == repr(list(values) if value else [])
    assert "_call_slow" in python_functions_called(lambda: function(deque(values)))


def test_records_and_tuples_run_no_python_when_c_takes_them(records):
    value = _records_values(records)[0]
    echo_all, echo_all_tuple = records.echo_all, records.echo_all_tuple  # looking them up runs Python
    items = tuple(vars(value).values())
    for call in (lambda: echo_all(value), lambda: echo_all_tuple(items)):
        assert python_functions_called(call) == []
    got = records.echo_all(value)
    assert got == value and type(got) is records.All
    assert type(records.echo_all_tuple(list(vars(value).values()))) is tuple


def test_several_compound_parameters(mixed):
    point = mixed.Point(1, -2)
    xs, ys = list(range(100)), ["a", "é", ""]
    assert mixed.mixed(point, xs, ys, (7, "t")) == 103
    function = mixed.mixed
    assert python_functions_called(lambda: function(point, xs, ys, (7, "t"))) == []
    # Refused at each place in turn: the ones made before it are freed, the Python way explains.
    for args in ((point, xs, ys, (256, "t")), (point, xs, ["\ud800"], (1, "t")), (point, [-1], ys, (1, "t")),
                 ({"x": 1, "y": 2}, xs, ys, (1, "t")), (point, xs, ys, [Big(1), Text("t")]),
                 (mixed.Point(2**31, 0), xs, ys, (1, "t")), (point, (1, 2), (), (1, "t"))):
        assert_both_ways_agree(mixed.mixed, *args)
    with pytest.raises(OverflowError, match=r"argument 't' of mixed\[0\]: 256 is out of range for u8"):
        mixed.mixed(point, xs, ys, (256, "t"))
    with pytest.raises(ValueError, match=r"argument 'ys' of mixed\[0\]: the text has a lone surrogate"):
        mixed.mixed(point, xs, ["\ud800"], (1, "t"))
    assert mixed.mixed(point, xs, ys, (7, "t")) == 103


def test_calls_keep_no_references(mixed):
    point, xs, ys, items = mixed.Point(1, 2), [1, 2, 3], ["abc" * 10, "é" * 9], (1, "t" * 40)
    objects = (point, xs, ys, items, ys[0], ys[1], items[1])
    before = [sys.getrefcount(item) for item in objects]
    for _ in range(100):
        mixed.mixed(point, xs, ys, items)
        with pytest.raises(OverflowError):
            mixed.mixed(point, xs, ys, (256, "t"))
    assert [sys.getrefcount(item) for item in objects] == before


def test_an_import_that_changes_the_list_it_was_given():
    """The list an export was given changes while wasm runs (a Python import empties it): the
    strings wasmtime borrows are kept alive for the call, and it sees them as they were."""
    proc = run_python(f"""
        from test_component_fast import Echo, make
        from wasmpy import Component
        items = ["x" * 1000 + str(index) for index in range(50)]
        given = ["x" * 1000 + str(index) for index in range(50)]  # strs of its own: freed by clear()
        assert all(a is not b for a, b in zip(items, given))
        host = Echo()
        def echo_list_string(value):
            given.clear()
            return value
        host.replies["echo_list_string"] = echo_list_string
        host.replies["echo_bytes"] = lambda data: (data_given.clear(), data)[1]
        api = make(Component.from_file({str(RICH)!r}), host).api
        assert api.roundtrip_list_string(given) == items and given == []
        data_given = bytearray(b"abc" * 1000)
        assert api.roundtrip_bytes(data_given) == b"abc" * 1000 and data_given == bytearray()
        print("ok")
    """, timeout=120)
    assert_clean_exit(proc)
    assert proc.stdout.strip().endswith("ok")


def test_nested_calls_through_an_import():
    """An import of one instance calls another instance of the same store with records and lists
    (the C path again) while the outer call's arguments are still wasmtime's."""
    rich = Component.from_file(RICH)
    inner = make(rich)
    host = Echo()
    seen = []

    def echo_point(point):
        seen.append(inner.api.roundtrip_list_u32(list(range(point.x))))
        seen.append(inner.api.roundtrip_tuple((point.y, "inner", 0.5)))
        return point
    host.replies["echo_point"] = echo_point
    outer = make(rich, host, store=inner.api.roundtrip_point._store)
    assert outer.api.roundtrip_point(outer.api.Point(3, 4)) == outer.api.Point(3, 4)
    assert seen == [[0, 1, 2], (4, "inner", 0.5)]


def test_results_are_the_codecs_values(lists, records):
    got = lists["echo-f32"]([0.1, 1, math.inf])
    assert got == ComponentFunc._call_slow(lists["echo-f32"], [0.1, 1, math.inf]) and type(got[1]) is float
    assert lists["echo-char"](["a", "😀"]) == ["a", "😀"]
    assert lists["echo-bool"]([True, False]) == [True, False]
    value = _records_values(records)[0]
    got = records.echo_all_tuple(tuple(vars(value).values()))
    assert got == tuple(vars(value).values()) and [type(x) for x in got] == [type(x) for x in vars(value).values()]


@pytest.mark.parametrize("kinds, result_kind, specs, error, message", [
    (bytes([lib.WASMTIME_COMPONENT_RECORD]), 255, (None, None), TypeError, "spec of a record"),
    (bytes([lib.WASMTIME_COMPONENT_TUPLE]), 255, ((b"",), ), TypeError, "specs must be a tuple"),
    (bytes([lib.WASMTIME_COMPONENT_TUPLE]), 255, [(b"",), None], TypeError, "specs must be a tuple"),
    (bytes([lib.WASMTIME_COMPONENT_TUPLE]), 255, ((b"", 1), None), TypeError, "spec of a tuple"),
    (bytes([lib.WASMTIME_COMPONENT_LIST]), 255, ("x", None), ValueError, "spec of a list"),
    (bytes([lib.WASMTIME_COMPONENT_LIST]), 255, (int(lib.WASMTIME_COMPONENT_U8), None), ValueError, "but u8"),
    (bytes([lib.WASMTIME_COMPONENT_LIST]), 255, (99, None), ValueError, "spec of a list"),
    (bytes([lib.WASMTIME_COMPONENT_LIST]), 255, (2**80, None), OverflowError, "too large"),
    (b"", lib.WASMTIME_COMPONENT_LIST, (-1,), ValueError, "spec of a list"),
    (bytes([lib.WASMTIME_COMPONENT_VARIANT]), 255, (None, None), ValueError, "parameter kind"),
    (b"", lib.WASMTIME_COMPONENT_VARIANT, (None,), ValueError, "result kind"),
])
def test_a_plan_c_cannot_follow_is_refused_when_bound(kinds, result_kind, specs, error, message):
    store = Instance(Component(LISTS_WAT)).exports["echo-u32"]._store
    func = ffi.new("wasmtime_component_func_t *")
    caller = ComponentCaller()
    with pytest.raises(error, match=message):
        caller._bind_component(store._handle, int(ffi.cast("uintptr_t", func)), kinds, result_kind, specs,
                               lambda *args: None, lambda *args: None)


def test_many_calls_free_what_they_make():
    """Records, tuples and lists made for each call (and for calls refused half-way) and their
    results freed each time: memory stays flat over many calls (in a child)."""
    proc = run_python(f"""
        import resource
        from wasmpy import Component, Instance
        from test_component_fast_plan import MIXED_WAT
        from test_component_fast import Echo, make
        mixed = Instance(Component(MIXED_WAT)).exports
        api = make(Component.from_file({str(RICH)!r})).api
        point, xs, ys = mixed.Point(1, 2), list(range(50)), ["é" * 30, "s" * 200]
        def run(count):
            for index in range(count):
                assert mixed.mixed(point, xs, ys, (1, "t" * 100)) == 52
                try:
                    mixed.mixed(point, xs, ys, (1, "\\ud800"))
                except ValueError:
                    pass
                rich_point = api.Point(index, -index)
                assert api.roundtrip_point(rich_point) == rich_point
                assert api.roundtrip_tuple((1, "x" * 100, 2.0)) == (1, "x" * 100, 2.0)
                assert api.roundtrip_list_string(ys) == ys
        run(5000)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        run(30000)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        assert after - before < 8 * 1024, (before, after)  # KiB: a leak of 100 bytes a call is 15 MB
        print("ok")
    """, timeout=300)
    assert_clean_exit(proc)
    assert proc.stdout.strip().endswith("ok")
