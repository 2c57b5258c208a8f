"""Engine(memory_may_move=True): memories may move when they grow, and buffer views never point at
freed memory. A view of a memory that may move holds its store's memories at their size until it is
released (see Memory's docstring). Scenarios that would touch unmapped memory run in a child process."""

from __future__ import annotations

import ctypes
import gc
import textwrap

import pytest

import wasmpy
from wasmpy import Engine, Instance, Memory, MemoryType, Module, Store, StoreLimits
from wasmpy import _hook

from childproc import assert_clean_exit, child_json, run_python

# An engine whose memories move at their first growth: a memory reservation of one page.
MOVING_ENGINE = """
import ctypes, gc, json, threading
import wasmpy

WAT = '''(module
  (import "host" "call" (func $call))
  (memory (export "memory") 1)
  (func (export "grow") (param i32) (result i32) local.get 0 memory.grow)
  (func (export "call_then_grow") (param i32) (result i32) call $call local.get 0 memory.grow)
  (func (export "load") (param i32) (result i32) local.get 0 i32.load8_u)
  (func (export "store") (param i32 i32) local.get 0 local.get 1 i32.store8))'''

def moving_engine(reservation_for_growth=2 << 30):
    return wasmpy.Engine(memory_may_move=True, memory_reservation=65536,
                         memory_reservation_for_growth=reservation_for_growth)

def instance(engine=None, host_call=lambda: None, limits=None):
    engine = engine or moving_engine()
    store = wasmpy.Store(engine, limits=limits)
    return wasmpy.Instance(wasmpy.Module(WAT, engine), {"host": {"call": host_call}}, store)

def address(memory):
    view = memoryview(memory)
    try:
        return ctypes.addressof(ctypes.c_char.from_buffer(view))
    finally:
        view.release()
"""


def run_moving(code: str) -> dict:
    proc = run_python(MOVING_ENGINE + textwrap.dedent(code), timeout=120)
    assert_clean_exit(proc)
    return child_json(proc)


def test_option_is_a_checked_bool_off_by_default_and_in_the_cache_key():
    assert Engine().config["memory_may_move"] is False
    assert Engine(memory_may_move=True).config["memory_may_move"] is True
    with pytest.raises(TypeError, match="memory_may_move takes True or False"):
        Engine(memory_may_move=1)
    assert _hook._cache_tag(Engine(memory_may_move=True)) != _hook._cache_tag(Engine())
    assert _hook._cache_tag(Engine(memory_may_move=False)) == _hook._cache_tag(Engine())


GROW_WAT = """(module (memory (export "memory") 1)
  (func (export "grow") (param i32) (result i32) local.get 0 memory.grow))"""


@pytest.mark.parametrize("engine_options", [{}, {"memory_may_move": True}])
def test_memories_that_cannot_move_are_not_held_back_by_views(engine_options):
    """memory_may_move=False, and 32-bit memories under the default 4 GiB reservation with True:
    they grow in place, so views neither stop growth nor go stale."""
    engine = Engine(**engine_options)
    memory = Instance(Module(GROW_WAT, engine)).exports.memory
    view = memoryview(memory)
    address = ctypes.addressof(ctypes.c_char.from_buffer(view))
    assert memory.store._handle.pinned_size is None
    assert Instance(Module(GROW_WAT, engine)).exports.grow(1) == 1
    assert memory.grow(2) == 1
    view[0] = 5
    assert memory.read(0, 1) == b"\x05"
    with memoryview(memory) as grown:
        assert len(grown) == 3 * 65536
        assert ctypes.addressof(ctypes.c_char.from_buffer(grown)) == address
    view.release()


def test_a_memory_whose_minimum_is_its_maximum_is_not_held_back():
    memory = Memory(Store(Engine(memory_may_move=True, memory64=True)), MemoryType(1, 1, is_64=True))
    with memoryview(memory):
        assert memory.store._handle.pinned_size is None


def test_a_64_bit_memory_may_move_even_with_the_default_reservation():
    engine = Engine(memory_may_move=True, memory64=True)
    memory = Memory(Store(engine), MemoryType(1, is_64=True))
    with memoryview(memory):
        assert memory.store._handle.pinned_size == 65536
        with pytest.raises(BufferError, match="while a buffer view of this memory is alive"):
            memory.grow(1)
    assert memory.store._handle.pinned_size is None
    assert memory.grow(1) == 1


def test_memory_moves_and_read_write_follow_it():
    """Without views the memory grows and moves; read, write and wasm agree on its bytes after."""
    result = run_moving("""
        inst = instance()
        memory = inst.exports.memory
        memory.write(7, b"\\x2a")  # caches nothing: read and write find the memory each time
        before = address(memory)
        grown = inst.exports.grow(2)
        inst.exports.store(70000, 9)
        memory.write(8, b"\\x2b")
        print(json.dumps({"grown": grown, "moved": address(memory) != before, "kept": memory.read(7, 1).hex(),
                          "wasm_sees_write": inst.exports.load(8), "read_sees_wasm": memory.read(70000, 1).hex(),
                          "size": memory.data_size}))
    """)
    assert result == {"grown": 1, "moved": True, "kept": "2a", "wasm_sees_write": 0x2b, "read_sees_wasm": "09",
                      "size": 3 * 65536}


def test_wasm_growth_is_refused_while_a_view_is_alive():
    """memory.grow returns -1 while a memoryview (or a ctypes array made from one, as numpy's
    frombuffer does) is alive; the view stays usable, and once released the memory grows again."""
    result = run_moving("""
        inst = instance()
        memory = inst.exports.memory
        results = {}
        for kind in ("memoryview", "ctypes"):
            view = memoryview(memory) if kind == "memoryview" else (ctypes.c_char * 65536).from_buffer(memory)
            results[kind] = [inst.exports.grow(2), memory.store._handle.pinned_size]
            view[3] = b"\\x05" if kind == "ctypes" else 5
            results[kind].append(inst.exports.load(3))
            del view
            gc.collect()
        results["after"] = [memory.store._handle.pinned_size, inst.exports.grow(2), memory.data_size]
        print(json.dumps(results))
    """)
    assert result == {"memoryview": [-1, 65536, 5], "ctypes": [-1, 65536, 5], "after": [None, 1, 3 * 65536]}


def test_python_growth_is_refused_while_a_view_is_alive():
    result = run_moving("""
        inst = instance()
        memory = inst.exports.memory
        view = memoryview(memory)
        try:
            memory.grow(1)
            refusal = None
        except BufferError as error:
            refusal = str(error)
        view[0] = 1  # still the memory's bytes
        view.release()
        print(json.dumps({"refusal": refusal, "grown": memory.grow(1), "first": memory.read(0, 1).hex()}))
    """)
    assert result["refusal"].startswith("cannot grow the memory by 1 page, from 1 to 2, while a buffer view of "
                                        "this memory is alive")
    assert "memory_may_move=True" in result["refusal"] and "65536 bytes" in result["refusal"]
    assert result["grown"] == 1 and result["first"] == "01"


def test_a_view_taken_in_a_host_function_holds_while_wasm_continues():
    """A view taken inside a host function and kept after it returns stops the rest of the same call
    from moving the memory; one released before the host function returns does not."""
    result = run_moving("""
        kept = []
        mode = {"keep": True}
        def host_call():
            view = memoryview(inst.exports.memory)
            view[1] = 6
            if mode["keep"]:
                kept.append(view)
            else:
                view.release()
        inst = instance(host_call=host_call)
        results = {"kept": inst.exports.call_then_grow(2), "value": kept[0][1]}
        kept.pop().release()
        mode["keep"] = False
        results["released"] = inst.exports.call_then_grow(2)
        results["loaded"] = inst.exports.load(1)
        print(json.dumps(results))
    """)
    assert result == {"kept": -1, "value": 6, "released": 1, "loaded": 6}


def test_a_view_released_on_another_thread_while_wasm_runs_counts_when_the_call_returns():
    result = run_moving("""
        release = threading.Event()
        released = threading.Event()
        def host_call():  # wasm of this store is on the stack here, in the main thread
            release.set()
            released.wait(30)
        inst = instance(host_call=host_call)
        memory = inst.exports.memory
        def holder():
            view = memoryview(memory)
            release.wait(30)
            view.release()
            released.set()
        thread = threading.Thread(target=holder)
        thread.start()
        while memory.store._handle.pinned_size is None:
            threading.Event().wait(0.001)
        during = inst.exports.call_then_grow(2)
        thread.join()
        print(json.dumps({"during": during, "pinned": memory.store._handle.pinned_size,
                          "after": inst.exports.grow(2)}))
    """)
    assert result == {"during": -1, "pinned": None, "after": 1}


def test_views_hold_back_the_other_memories_of_the_store_and_keep_its_limits():
    result = run_moving("""
        from wasmpy import Memory, MemoryType, StoreLimits
        inst = instance(limits=StoreLimits(memory_size=8 * 65536))
        memory = inst.exports.memory
        other = Memory(memory.store, MemoryType(1))
        results = {}
        with memoryview(memory):
            try:
                other.grow(1)
            except BufferError as error:
                results["other"] = str(error)
            try:
                wasmpy.Instance(wasmpy.Module('(module (memory 2))', memory.store.engine), store=memory.store)
            except wasmpy.WasmError as error:
                results["instantiate"] = str(error)
        results["other_grown"] = other.grow(1)
        try:
            other.grow(20)
        except wasmpy.WasmError as error:
            results["limit"] = str(error)
        print(json.dumps(results))
    """)
    assert "while a buffer view of a memory of the same store is alive" in result["other"]
    assert "memory minimum size of 2 pages exceeds memory limits" in result["instantiate"]
    assert result["other_grown"] == 1
    assert "StoreLimits(memory_size=524288)" in result["limit"]


def test_views_outliving_their_store_and_cycles():
    """A view keeps its store alive after everything else is gone; a view in a garbage cycle with
    its Memory lets the store's memories grow again once collected."""
    result = run_moving("""
        inst = instance()
        view = memoryview(inst.exports.memory)
        store = inst.exports.memory.store
        view[0] = 3
        del inst, store
        gc.collect()
        first = view[0]
        view.release()

        inst = instance()
        class Holder:
            pass
        holder = Holder()
        holder.memory = inst.exports.memory
        holder.view = memoryview(holder.memory)
        holder.self = holder
        pinned = inst.exports.memory.store._handle.pinned_size
        del holder
        gc.collect()
        print(json.dumps({"first": first, "pinned": pinned, "after": inst.exports.memory.store._handle.pinned_size,
                          "grown": inst.exports.grow(2)}))
    """)
    assert result == {"first": 3, "pinned": 65536, "after": None, "grown": 1}


def test_random_views_and_growth_never_see_freed_memory():
    """Views taken and released at random while wasm and Python grow a memory that moves whenever
    it grows past its capacity (one page more than its size): each live view still shows the
    memory's bytes, and the store is pinned exactly while one is alive."""
    result = run_moving("""
        import random
        rng = random.Random(1414)
        inst = instance(moving_engine(reservation_for_growth=65536))
        memory = inst.exports.memory
        views, moves, refused, grown, pin_mismatches = [], 0, 0, 0, 0
        for step in range(600):
            action = rng.choice(["view", "ctypes", "release", "release", "wasm", "wasm", "python"])
            before = address(memory) if not views else None
            if action == "view":
                views.append(memoryview(memory))
            elif action == "ctypes":
                views.append((ctypes.c_char * memory.data_size).from_buffer(memory))
            elif action == "release" and views:
                view = views.pop(rng.randrange(len(views)))
                if isinstance(view, memoryview):
                    view.release()
                del view
            elif action == "wasm":
                result = inst.exports.grow(2)
                refused += result == -1
                grown += result != -1
            elif action == "python":
                try:
                    memory.grow(2)
                    grown += 1
                except BufferError:
                    refused += 1
            if before is not None and not views:
                moves += address(memory) != before
            for index, view in enumerate(views):
                offset = rng.randrange(len(view))
                value = (step + index) % 255 + 1
                view[offset] = value if isinstance(view, memoryview) else bytes([value])
                assert inst.exports.load(offset) == value, (step, offset)
            pin_mismatches += (memory.store._handle.pinned_size is not None) != bool(views)
            if memory.data_size > 200 * 65536:  # a fresh memory, to keep moving small ones
                while views:
                    view = views.pop()
                    if isinstance(view, memoryview):
                        view.release()
                    del view
                inst = instance(moving_engine(reservation_for_growth=65536))
                memory = inst.exports.memory
        print(json.dumps({"moves": moves, "refused": refused, "grown": grown, "pin_mismatches": pin_mismatches}))
    """)
    assert result["pin_mismatches"] == 0
    assert result["moves"] >= 20 and result["refused"] >= 20 and result["grown"] >= 20, result


def test_store_limits_still_apply_without_memory_may_move():
    """StoreLimits now go through the store's handle (which combines them with views' pins)."""
    store = Store(limits=StoreLimits(memory_size=2 * 65536))
    memory = Memory(store, MemoryType(1))
    assert memory.grow(1) == 1
    with pytest.raises(wasmpy.WasmError, match="StoreLimits"):
        memory.grow(1)
    gc.collect()


WASI_SCHED_YIELD = """(module (import "wasi_snapshot_preview1" "sched_yield" (func $y (result i32)))
  (memory (export "memory") 1) (func (export "run") (result i32) call $y))"""


@pytest.mark.parametrize("use", ["view_then_grow", "wasi_instance"])
def test_a_stores_engine_cannot_be_replaced(use):
    """Store.engine was a plain attribute, and what the store does was worked out from it: with a
    store of a moving engine given a non-moving one, a Memory's views did not pin the store and
    were left pointing at freed memory when it moved (SIGSEGV); with another engine, a WASI
    module of that engine took its WASI functions from the other engine's linker, and wasmtime
    aborted the process. The store's engine is the one it was made with."""
    proc = run_python(f"""
        import json, wasmpy
        moving = wasmpy.Engine(memory_may_move=True, memory_reservation=65536, memory_guard_size=0,
                               memory_reservation_for_growth=0)
        store = wasmpy.Store(moving)
        try:
            store.engine = wasmpy.Engine()
            replaced = "replaced"
        except AttributeError:
            replaced = "refused"
        outcome = None
        if {use!r} == "view_then_grow":
            memory = wasmpy.Memory(store, wasmpy.MemoryType(1, 100))
            view = memoryview(memory)
            try:
                memory.grow(50)
            except BufferError:
                outcome = "BufferError"
            view[len(view) - 1] = 1
            view.release()
        else:
            module = wasmpy.Module({WASI_SCHED_YIELD!r}, store.engine)
            outcome = wasmpy.Instance(module, store=store).exports.run()
        print(json.dumps({{"replaced": replaced, "engine": store.engine is moving, "outcome": outcome}}))
        """, timeout=120)
    assert child_json(proc) == {"replaced": "refused", "engine": True,
                                "outcome": "BufferError" if use == "view_then_grow" else 0}


def test_an_engines_config_cannot_be_replaced():
    """Engine.config was a plain attribute, from which a Memory learns whether it may move: an
    engine whose config was replaced by one saying memory_may_move=False made views that did not
    pin their store, left pointing at freed memory when the memory moved (SIGSEGV)."""
    proc = run_python("""
        import json, wasmpy
        moving = wasmpy.Engine(memory_may_move=True, memory_reservation=65536, memory_guard_size=0,
                               memory_reservation_for_growth=0)
        try:
            moving.config = dict(moving.config, memory_may_move=False)
            replaced = "replaced"
        except AttributeError:
            replaced = "refused"
        memory = wasmpy.Memory(wasmpy.Store(moving), wasmpy.MemoryType(1, 100))
        view = memoryview(memory)
        try:
            memory.grow(50)
            outcome = None
        except BufferError:
            outcome = "BufferError"
        view[len(view) - 1] = 1
        view.release()
        print(json.dumps({"replaced": replaced, "may_move": moving.config["memory_may_move"], "outcome": outcome}))
        """, timeout=120)
    assert child_json(proc) == {"replaced": "refused", "may_move": True, "outcome": "BufferError"}
