"""Lists of simple WIT types (bool, integers, floats, char), which csrc/component/lists.c
converts, checked against the element-by-element rules of wasmpy/component/_values.py: the same
values come back, and what C does not take as it is (int subclasses, other sequences, bad
elements) goes the Python way with the same conversions and errors."""

from __future__ import annotations

import enum
import math
import struct
from collections import deque

import pytest

from wasmpy import Component, Instance

ELEMENTS = ["bool", "s8", "s16", "u16", "s32", "u32", "s64", "u64", "f32", "f64", "char", "string"]

# The memory and realloc of the test components' core modules (here, test_component_records.py,
# test_component_fast_plan.py): a bump allocator from address 1024, which their exports set back
# to 1024 once wasmtime no longer needs what they were given.
BUMP_ALLOCATOR = """
    (memory (export "memory") 64)
    (global $next (mut i32) (i32.const 1024))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $at i32)
      (local.set $at (i32.and (i32.add (global.get $next) (i32.sub (local.get 2) (i32.const 1)))
                              (i32.sub (i32.const 0) (local.get 2))))
      (global.set $next (i32.add (local.get $at) (local.get 3)))
      (local.get $at))
"""

# One core function echoes every list: a list lowers to (pointer, length), and the result (the
# same pair) goes back through a return area at address 0. The bump allocator starts over at each
# call, once wasmtime has copied the previous call's result out.
LISTS_WAT = """
(component
  (core module $m""" + BUMP_ALLOCATOR + """    (func (export "echo") (param i32 i32) (result i32)
      (i32.store (i32.const 0) (local.get 0))
      (i32.store (i32.const 4) (local.get 1))
      (global.set $next (i32.const 1024))
      (i32.const 0)))
  (core instance $i (instantiate $m))
  (alias core export $i "memory" (core memory $memory))
  (alias core export $i "realloc" (core func $realloc))
""" + "".join(f"""
  (func (export "echo-{name}") (param "x" (list {name})) (result (list {name}))
    (canon lift (core func $i "echo") (memory $memory) (realloc (core func $realloc)) string-encoding=utf8))
""" for name in ELEMENTS) + ")"


@pytest.fixture(scope="module")
def exports():
    return Instance(Component(LISTS_WAT)).exports


def _f32(value: float) -> float:
    return struct.unpack("f", struct.pack("f", value))[0]


ROUND_TRIPS = {
    "bool": [True, False, True],
    "s8": [-128, 0, 127], "s16": [-2**15, 7, 2**15 - 1], "u16": [0, 2**16 - 1],
    "s32": [-2**31, 2**31 - 1], "u32": [0, 2**32 - 1], "s64": [-2**63, 2**63 - 1], "u64": [0, 2**64 - 1],
    "f64": [0.0, -1.5, 1e300, math.inf], "char": ["a", "ü", "\U0001F600", "\0"],
    "string": ["", "a", "ü\0x", "\U0001F600" * 3],
}


@pytest.mark.parametrize("name", sorted(ROUND_TRIPS))
def test_lists_round_trip(exports, name):
    echo = exports[f"echo-{name}"]
    values = ROUND_TRIPS[name]
    assert echo(values) == values
    assert echo(tuple(values)) == values
    assert echo([]) == []
    many = values * 1000
    got = echo(many)
    assert got == many and type(got) is list


def test_floats(exports):
    f32 = exports["echo-f32"]
    assert f32([0.1, 1, -2, 3.5]) == [_f32(0.1), 1.0, -2.0, 3.5]  # ints are accepted, as for a float argument
    assert [type(x) for x in f32([1, 2.0])] == [float, float]
    assert math.isnan(exports["echo-f64"]([math.nan])[0])
    assert f32([1e300]) == [math.inf]  # as a single f32 argument rounds


class Number(int):
    pass


class Letter(str):
    pass


class Level(enum.IntEnum):
    LOW = 1


def test_what_c_does_not_take_as_it_is_is_converted_the_python_way(exports):
    assert exports["echo-u32"]([Number(5), 6, Level.LOW]) == [5, 6, 1]
    assert exports["echo-u32"](range(3)) == [0, 1, 2]  # any sequence
    assert exports["echo-s64"](deque([1, 2])) == [1, 2]
    assert exports["echo-char"]([Letter("x"), "y"]) == ["x", "y"]
    assert exports["echo-f64"]([Number(2)]) == [2.0]


@pytest.mark.parametrize("name, values, error, message", [
    ("u32", [1, -1], OverflowError, r"echo-u32\[1\]: -1 is out of range for u32"),
    ("s8", [0, 128], OverflowError, r"\[1\]: 128 is out of range for s8"),
    ("u64", [2**64], OverflowError, "out of range for u64"),
    ("s32", [1, True], TypeError, r"\[1\]: expected an int \(s32\), got bool"),
    ("s32", [1, 2.0], TypeError, "expected an int"),
    ("bool", [True, 1], TypeError, "expected a bool"),
    ("f64", [1.0, "2"], TypeError, "expected a float"),
    ("f64", [2**2000], OverflowError, "too large for f64"),
    ("char", ["ab"], TypeError, "one-character"),
    ("char", ["\ud800"], ValueError, "surrogate"),
    ("u32", "123", TypeError, r"expected a list \(list<u32>\), got str"),
    ("u32", 5, TypeError, "expected a list"),
    ("string", ["ok", "\udfff"], ValueError, "lone surrogate"),
])
def test_bad_elements_raise_naming_them(exports, name, values, error, message):
    with pytest.raises(error, match=message):
        exports[f"echo-{name}"](values)
    assert exports["echo-u32"]([1]) == [1]


def test_a_list_that_changes_while_it_is_converted(exports):
    class Growing(int):
        """An element whose conversion (the Python way: an int subclass) adds to the list."""

        def __int__(self):
            items.append(3)
            return 1

    items = [Growing(1), 2]
    assert exports["echo-u32"](items) == [1, 2, 3]
