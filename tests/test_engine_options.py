"""Engine options for what real programs' launchers set (issue 14, item 5): wasmtime's own
compilation cache, the memory reservation, guard and growth sizes, copy-on-write memory
images, a profiler and Cranelift flags. Each test shows the option reaching wasmtime by what it
changes, not only that Engine takes it.

Whatever measures the process (its address space, its mappings, files named by its pid) runs in a
child interpreter (tests/childproc.py).
"""

from __future__ import annotations

import json
import os
import pickle
import struct
from pathlib import Path

import pytest

from childproc import child_json, run_python
from test_safety_engine import ENGINE_VERDICTS
from wasmpy import Engine, Instance, Module, Store, WasmError
from wasmpy._engine import _CRANELIFT_FLAGS, OPTIONS
from wasmpy._hook import cache_path

MiB = 1 << 20
GiB = 1 << 30


# --- cache ----------------------------------------------------------------------------------------------

def answer_wat(answer: int) -> str:
    """A module whose many functions make compiling it worth caching; f() returns ``answer``."""
    functions = "".join(f'(func (export "f{i}") (param i32) (result i32) (i32.mul (local.get 0) (i32.const {i})))'
                        for i in range(50))
    return f'(module (func (export "f") (result i32) (i32.const {answer})) {functions})'


def compile_in_a_child(cache_dir: Path, answer: int) -> int:
    """In a fresh process: compiles answer_wat(answer) with Engine(cache=cache_dir); what f() returns."""
    return child_json(run_python(f"""
        import json
        from wasmpy import Engine, Instance, Module, Store
        engine = Engine(cache={str(cache_dir)!r})
        module = Module({answer_wat(answer)!r}, engine)
        print(json.dumps({{"f": Instance(module, store=Store(engine)).exports.f()}}))
    """))["f"]


def cache_entries(cache_dir: Path):
    return sorted(path for path in cache_dir.rglob("*") if path.is_file() and path.parent.name != cache_dir.name
                  and not path.name.endswith(".stats"))


def test_the_cache_serves_a_second_compile_in_another_process(tmp_path):
    """The first process fills the cache directory; the second loads its module from there. To tell
    a load from a compile, the entry is swapped for another module's (one whose f returns 2): the
    second process, compiling the module whose f returns 1, gets the cached code, which returns 2."""
    first, other = tmp_path / "cache", tmp_path / "other"
    assert compile_in_a_child(first, 1) == 1
    entries = cache_entries(first)
    assert len(entries) == 1, entries  # the compiled module, beside wasmtime's own bookkeeping
    assert compile_in_a_child(other, 2) == 2
    [other_entry] = cache_entries(other)
    entries[0].write_bytes(other_entry.read_bytes())
    assert compile_in_a_child(first, 1) == 2  # served from the cache, not compiled
    assert cache_entries(first) == entries


def test_without_the_cache_nothing_is_written(tmp_path):
    result = child_json(run_python(f"""
        import json, os
        from wasmpy import Engine, Module
        os.chdir({str(tmp_path)!r})
        Module({answer_wat(1)!r}, Engine())
        print(json.dumps({{"files": os.listdir(".")}}))
    """))
    assert result["files"] == []


def test_a_cache_directory_with_quotes_and_backslashes(tmp_path):
    """wasmpy passes the directory to wasmtime in a TOML file it writes: the path must survive quoting."""
    directory = tmp_path / 'a "quoted" \\ dir \u00e9\x7f'
    assert compile_in_a_child(directory, 3) == 3
    assert len(cache_entries(directory)) == 1


def test_the_cache_path_is_absolute_in_the_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert Engine(cache="relative").config["cache"] == str(tmp_path / "relative")
    assert "cache" not in Engine().config and Engine(cache=None).config["cache"] is None


@pytest.mark.parametrize("value, error, words", [
    (5, TypeError, "cache takes a directory"),
    (b"/tmp/x", TypeError, "cache takes a directory"),
    ("/tmp/with\0nul", ValueError, "NUL"),
    ("/tmp/\udcff", ValueError, "UTF-8"),
])
def test_bad_cache_values(value, error, words):
    with pytest.raises(error, match=words):
        Engine(cache=value)


def test_a_cache_directory_wasmtime_cannot_make_is_a_value_error(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(ValueError, match="failed to create cache directory"):
        Engine(cache=tmp_path / "file")


# --- memory sizes ---------------------------------------------------------------------------------------

# Children measuring their address space use one malloc arena: a thread's first allocation (the
# epoch ticker's, say) would otherwise reserve a 64 MiB arena of its own at any moment, inside a
# measurement.
ONE_ARENA = """
    import ctypes
    M_ARENA_MAX = -8
    assert ctypes.CDLL(None).mallopt(M_ARENA_MAX, 1) == 1
"""

MEMORY_CHILD = ONE_ARENA + """
    import json
    from wasmpy import Engine, Instance, Module, Store

    WAT = '(module (memory (export "m") 1) (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))'

    def address_space():
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize"))

    def measure(**options):
        '''What a one-page memory of an Engine(**options) reserves, and how many pages it grows to.'''
        engine = Engine(**options)
        module = Module(WAT, engine)
        before = address_space()
        grow = Instance(module, store=Store(engine)).exports.grow
        reserved = address_space() - before
        pages, step = 1, 1 << 15
        while step:
            if grow(step) != -1:
                pages += step
            else:
                step //= 2
        return {"reserved": reserved, "pages": pages}
"""


def measure_memories(cases):
    return child_json(run_python(MEMORY_CHILD + f"""
    print(json.dumps({{name: measure(**options) for name, options in {cases!r}.items()}}))
    """))


def test_memory_reservation_guard_and_growth_reach_wasmtime():
    result = measure_memories({
        "default": {},
        "1 MiB": {"memory_reservation": MiB},
        "1 MiB, no guard": {"memory_reservation": MiB, "memory_guard_size": 0},
        "1 GiB guard": {"memory_guard_size": GiB},
        "growth 1 MiB": {"memory_reservation": 0, "memory_reservation_for_growth": MiB},
        "growth 4 MiB, no guard": {"memory_reservation": 0, "memory_reservation_for_growth": 4 * MiB,
                                   "memory_guard_size": 0},
    })
    print(json.dumps(result, indent=1))
    default_guard = 32 * MiB  # before the memory and after it
    assert result["default"] == {"reserved": 4 * GiB + 2 * default_guard, "pages": 65536}
    assert result["1 MiB"] == {"reserved": MiB + 2 * default_guard, "pages": 16}  # it never moves
    assert result["1 MiB, no guard"] == {"reserved": MiB, "pages": 16}
    assert result["1 GiB guard"] == {"reserved": 4 * GiB + 2 * GiB, "pages": 65536}
    # a memory more than its reservation holds gets the growth room beyond its first page
    assert result["growth 1 MiB"] == {"reserved": 64 * 1024 + MiB + 2 * default_guard, "pages": 17}
    assert result["growth 4 MiB, no guard"] == {"reserved": 64 * 1024 + 4 * MiB, "pages": 65}


POOL_CHILD = ONE_ARENA + """
    import json
    import wasmpy
    from wasmpy._engine import pool_address_space

    def mapped():
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[0]) * 4096

    options = {options!r}
    before = mapped()
    engine = wasmpy.Engine(instance_pool=50, **options)
    grew = mapped() - before
    grow = wasmpy.Instance(wasmpy.Module(
        '(module (memory 1) (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))', engine),
        store=wasmpy.Store(engine)).exports.grow
    pages, step = 1, 1 << 15
    while step:
        if grow(step) != -1:
            pages += step
        else:
            step //= 2
    estimate = sum(pool_address_space(50, options.get("memory_reservation"), options.get("memory_guard_size", 32 << 20)))
    print(json.dumps({{"grew": grew, "estimate": estimate, "pages": pages}}))
"""


@pytest.mark.parametrize("options, pages", [
    ({}, 65536),
    ({"memory_reservation": 64 * MiB}, 1024),
    ({"memory_reservation": 64 * MiB, "memory_guard_size": 64 * 1024}, 1024),
    ({"memory_reservation": 8 * GiB, "memory_guard_size": 0}, 65536),
], ids=["default", "64 MiB", "64 MiB, 64 KiB guard", "8 GiB, no guard"])
def test_instance_pools_follow_the_memory_sizes(options, pages):
    """The pool's slots shrink and grow with memory_reservation and memory_guard_size (wasmpy's
    estimate of the address space it maps stays right), and its memories hold the reservation."""
    result = child_json(run_python(POOL_CHILD.format(options=options)))
    assert 0.9 * result["estimate"] < result["grew"] <= result["estimate"], result
    assert result["pages"] == pages, result


def test_wasmtime_aborts_on_a_pool_bigger_than_the_reservation():
    """Why wasmpy sets the pool's maximum memory size to memory_reservation: wasmtime refuses (by
    aborting) a pool whose memories may grow past the reservation, 4 GiB by default."""
    proc = run_python(ENGINE_VERDICTS + """
    from wasmpy._engine import _POOL_TOTALS

    def pooled_engine():
        config = wasmtime_config({"memory_reservation": 1 << 20})
        pooling = lib.wasmtime_pooling_allocation_config_new()
        for set_total in _POOL_TOTALS:
            set_total(pooling, 1)
        lib.wasmtime_pooling_allocation_config_total_stacks_set(pooling, 0)
        lib.wasmtime_pooling_allocation_strategy_set(config, pooling)
        lib.wasm_engine_new_with_config(config)

    status, stderr = in_fork(pooled_engine)
    wasmpy_status, _ = in_fork(lambda: Engine(instance_pool=1, memory_reservation=1 << 20))
    print(json.dumps({"wasmtime": status, "stderr": stderr[-2000:], "wasmpy": wasmpy_status}))
    """)
    result = child_json(proc)
    assert result["wasmtime"] == -6 and "exceeds the configured memory reservation" in result["stderr"], result
    assert result["wasmpy"] == 0, result


def test_a_pool_too_big_for_the_address_space_with_these_sizes_is_a_wasm_error():
    with pytest.raises(WasmError, match="memory_reservation"):
        Engine(instance_pool=2**20, memory_reservation=64 * GiB)


@pytest.mark.parametrize("name", ["memory_reservation", "memory_guard_size", "memory_reservation_for_growth"])
@pytest.mark.parametrize("value, error", [(-1, ValueError), ((1 << 47) + 1, ValueError), (2**64, ValueError),
                                          (1.0, TypeError), (True, TypeError), ("1", TypeError), (None, TypeError)])
def test_bad_memory_sizes(name, value, error):
    with pytest.raises(error, match=name):
        Engine(**{name: value})


# --- copy-on-write memory images ------------------------------------------------------------------------

@pytest.mark.parametrize("cow", [True, False])
def test_memory_init_cow_reaches_wasmtime(cow):
    """With copy-on-write images (the default), a memory's data segments are mapped from an image
    wasmtime keeps in a memfd; without, they are copied in and no such mapping exists."""
    result = child_json(run_python(f"""
        import json
        from wasmpy import Engine, Instance, Module, Store
        engine = Engine(memory_init_cow={cow!r})
        memory = Instance(Module('(module (memory (export "m") 1) (data (i32.const 0) "copy on write"))', engine),
                          store=Store(engine)).exports.m
        with open("/proc/self/maps") as maps:
            images = [line for line in maps if "wasm-memory-image" in line]
        print(json.dumps({{"images": len(images), "data": bytes(memoryview(memory)[:13]).decode()}}))
    """))
    assert result["data"] == "copy on write"
    assert (result["images"] > 0) is cow, result


# --- profiler -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("profiler", ["perfmap", "jitdump", "none", None])
def test_the_profiler_writes_its_file(tmp_path, profiler):
    result = child_json(run_python(f"""
        import json, os
        from wasmpy import Engine, Instance, Module, Store
        os.chdir({str(tmp_path)!r})
        engine = Engine(profiler={profiler!r})
        exports = Instance(Module('(module (func $answer (export "answer") (result i32) (i32.const 42)))', engine),
                           store=Store(engine)).exports
        assert exports.answer() == 42
        perf_map = f"/tmp/perf-{{os.getpid()}}.map"
        found = {{"perf map": os.path.exists(perf_map), "jitdump": os.path.exists(f"jit-{{os.getpid()}}.dump")}}
        if found["perf map"]:
            with open(perf_map) as lines:
                found["perf map lines"] = lines.read()
            os.unlink(perf_map)
        print(json.dumps(found))
    """))
    assert result["perf map"] is (profiler == "perfmap"), result
    assert result["jitdump"] is (profiler == "jitdump"), result
    if profiler == "perfmap":
        assert "answer" in result["perf map lines"], result


@pytest.mark.parametrize("value, error", [("vtune", ValueError), ("perf", ValueError), (True, TypeError),
                                          (1, TypeError)])
def test_bad_profilers(value, error):
    with pytest.raises(error, match="profiler"):
        Engine(profiler=value)


def test_profiler_none_is_the_default():
    assert Engine(profiler=None).config["profiler"] is None
    assert "profiler" not in Engine().config


# --- Cranelift flags ------------------------------------------------------------------------------------

def text_section(serialized: bytes) -> bytes:
    """The machine code (the .text section) of a serialized module: wasmtime's ELF artifact."""
    elf = serialized[serialized.find(b"\x7fELF"):]
    section_headers, = struct.unpack_from("<Q", elf, 0x28)
    entry_size, count, names_index = struct.unpack_from("<HHH", elf, 0x3A)

    def section(index):  # (name offset, file offset, size) of a 64-bit section header
        header = struct.unpack_from("<IIQQQQIIQQ", elf, section_headers + index * entry_size)
        return header[0], header[4], header[5]

    names_offset = section(names_index)[1]
    for index in range(count):
        name, offset, size = section(index)
        start = names_offset + name
        if elf[start:elf.index(b"\0", start)] == b".text":
            return elf[offset:offset + size]
    raise AssertionError("no .text section")


# Bounds-checked loads (a small reservation) and SIMD: code each flag below changes.
FLAG_WAT = """(module (memory 1)
  (func (export "load") (param i32) (result i32) (i32.load (local.get 0)))
  (func (export "add") (param v128 v128) (result v128) (i32x4.add (local.get 0) (local.get 1))))"""


def machine_code(**options) -> bytes:
    return text_section(Module(FLAG_WAT, Engine(memory_reservation=MiB, **options)).serialize())


@pytest.mark.parametrize("flags", [{"enable_heap_access_spectre_mitigation": False}, {"has_avx": False},
                                   {"regalloc_algorithm": "single_pass"}])
def test_cranelift_flags_change_the_machine_code(flags):
    assert machine_code() == machine_code()  # compiling is deterministic
    assert machine_code(cranelift_flags=flags) != machine_code()


def test_every_allowed_cranelift_flag_compiles_working_code():
    """Every name and value of the allow-list reaches wasmtime without an abort (in a child) and
    compiles code that runs."""
    cases = [{flag: value} for flag, values in _CRANELIFT_FLAGS.items() for value in values]
    result = child_json(run_python(f"""
        import json
        from wasmpy import Engine, Instance, Module, Store
        ran = 0
        for flags in {cases!r}:
            engine = Engine(cranelift_flags=flags, memory_reservation=1 << 20)
            exports = Instance(Module({FLAG_WAT!r}, engine), store=Store(engine)).exports
            assert exports.load(0) == 0 and exports.add(1, 2) == 3
            ran += 1
        print(json.dumps({{"ran": ran}}))
    """))
    assert result["ran"] == len(cases) > 20


@pytest.mark.parametrize("flags, error, words", [
    ({"no_such_setting": True}, ValueError, "unknown or unsupported Cranelift setting 'no_such_setting'"),
    ({"preserve_frame_pointers": False}, ValueError, "unknown or unsupported"),  # wasmtime's backtraces need it
    ({"has_avx512bitalg": True}, ValueError, "only lets one be turned off"),  # wasmtime would emit it anyway
    ({"enable_verifier": "true"}, ValueError, "enable_verifier takes True or False"),
    ({"enable_verifier": 1}, ValueError, "enable_verifier takes True or False"),
    ({"regalloc_algorithm": "fast"}, ValueError, "'backtracking' or 'single_pass'"),
    ({1: True}, TypeError, "setting names are strings"),
    ([("enable_verifier", True)], TypeError, "takes a dict"),
    ("enable_verifier", TypeError, "takes a dict"),
])
def test_bad_cranelift_flags(flags, error, words):
    with pytest.raises(error) as info:
        Engine(cranelift_flags=flags)
    assert words in str(info.value)


def test_an_unknown_cranelift_flag_is_an_error_where_wasmtime_aborts():
    """wasmtime aborts the process on a setting name it does not know; Engine raises ValueError
    (each attempt in a forked child)."""
    proc = run_python(ENGINE_VERDICTS + """
    def raw_flag():
        config = lib.wasm_config_new()
        lib.wasmtime_config_cranelift_flag_set(config, b"no_such_setting", b"true")
        lib.wasm_engine_new_with_config(config)

    status, stderr = in_fork(raw_flag)
    wasmpy_status, _ = in_fork(lambda: Engine(cranelift_flags={"no_such_setting": True}))
    print(json.dumps({"wasmtime": status, "stderr": stderr[-2000:], "wasmpy": wasmpy_status}))
    """)
    result = child_json(proc)
    assert result["wasmtime"] == -6 and "No existing setting named 'no_such_setting'" in result["stderr"], result
    assert result["wasmpy"] == 10, result


def test_a_cranelift_flag_name_that_only_looks_allowed_is_refused_not_an_abort():
    """A str subclass whose hash and == match an allowed name passed the allow-list, and its own
    text ("no_such_setting") reached wasmtime, which aborted the process; names are checked, and
    passed on, as the str they hold (a StrEnum still works)."""
    proc = run_python("""
        import enum, json
        from wasmpy import Engine

        class LooksAllowed(str):
            def __hash__(self):
                return hash("enable_verifier")

            def __eq__(self, other):
                return True

        try:
            Engine(cranelift_flags={LooksAllowed("no_such_setting"): True})
            refused = None
        except ValueError as error:
            refused = str(error)
        Verifier = enum.StrEnum("Verifier", {"ON": "enable_verifier"})
        engine = Engine(cranelift_flags={Verifier.ON: False})
        print(json.dumps({"refused": refused, "flags": dict(engine.config["cranelift_flags"]),
                          "type": type(next(iter(engine.config["cranelift_flags"]))).__name__}))
        """, timeout=120)
    result = child_json(proc)
    assert "unknown or unsupported Cranelift setting 'no_such_setting'" in result["refused"], result
    assert result["flags"] == {"enable_verifier": False} and result["type"] == "str", result


def test_cranelift_flags_are_kept_read_only_and_in_name_order():
    engine = Engine(cranelift_flags={"regalloc_checker": True, "enable_verifier": True})
    assert list(engine.config["cranelift_flags"]) == ["enable_verifier", "regalloc_checker"]
    with pytest.raises(TypeError):
        engine.config["cranelift_flags"]["enable_verifier"] = False  # type: ignore[index]
    same = Engine(cranelift_flags={"enable_verifier": True, "regalloc_checker": True})
    assert repr(same.config) == repr(engine.config)
    assert Engine(**engine.config).config == engine.config


# --- every option ---------------------------------------------------------------------------------------

NEW_OPTIONS = {
    "async_stack_size": 4 * MiB,
    "memory_reservation": 64 * MiB,
    "memory_guard_size": 64 * 1024,
    "memory_reservation_for_growth": 0,
    "memory_init_cow": False,
    "profiler": "perfmap",
    "cranelift_flags": {"has_avx": False},
}


def test_every_option_is_listed_and_documented():
    for name in [*NEW_OPTIONS, "cache", "max_wasm_stack"]:
        assert name in OPTIONS
        assert f"``{name}``" in (Engine.__doc__ or ""), name


@pytest.mark.parametrize("name", sorted(set(NEW_OPTIONS) - {"profiler"}))  # (which would write /tmp/perf-PID.map)
def test_options_that_change_compiled_code_change_the_import_hooks_key(name, tmp_path):
    """The import hook's cache (and wasmpy run's) is keyed by Engine.config: code compiled with
    other settings is never loaded for these."""
    source = str(tmp_path / "module.wasm")
    assert cache_path(source, Engine(**{name: NEW_OPTIONS[name]})) != cache_path(source, Engine())


def test_the_new_options_make_a_working_engine_together(tmp_path):
    engine = Engine(**{**NEW_OPTIONS, "profiler": None}, cache=tmp_path / "cache")
    module = Module('(module (memory (export "m") 1) (func (export "f") (result i32) (i32.const 7)))', engine)
    assert Instance(module, store=Store(engine)).exports.f() == 7
    assert engine.config["memory_reservation"] == 64 * MiB and os.path.isdir(tmp_path / "cache")


def test_engines_with_the_new_options_pickle_to_another_process(tmp_path):
    """Engines pickle to their settings (with modules): another process makes the same engine."""
    engine = Engine(**{**NEW_OPTIONS, "profiler": None}, cache=tmp_path / "cache", max_wasm_stack=3 * MiB)
    data = pickle.dumps(engine)
    assert pickle.loads(data) is engine
    result = child_json(run_python(f"""
        import json, pickle
        engine = pickle.loads({data!r})
        print(json.dumps({{"config": repr(sorted(engine.config.items()))}}))
    """))
    assert result["config"] == repr(sorted(engine.config.items()))


def test_options_that_leave_compiled_code_alone_keep_the_key(tmp_path):
    """Where code is cached, whether a profiler sees it and how many threads compile it do not
    change the code: modules compiled with them share the hook's cache (and pickles load)."""
    source = str(tmp_path / "module.wasm")
    for options in ({"cache": tmp_path / "cache"}, {"profiler": "none"}, {"parallel_compilation": False}):
        assert cache_path(source, Engine(**options)) == cache_path(source, Engine()), options


def test_sizes_given_as_int_subclasses_are_checked_as_the_numbers_they_hold():
    """An int subclass whose comparisons lie passed the range checks and wasmtime's own rules
    (max_wasm_stack at most async_stack_size), and wasmtime aborted the process on the engine;
    sizes are taken as the exact ints they hold."""
    proc = run_python("""
        import json
        from wasmpy import Engine

        class Liar(int):
            def __le__(self, other):
                return True

            def __ge__(self, other):
                return True

            def __lt__(self, other):
                return False

            def __gt__(self, other):
                return False

        refused = []
        for options in ({"max_wasm_stack": Liar(2**40)}, {"memory_guard_size": Liar(2**62)},
                        {"instance_pool": Liar(2**40)}):
            try:
                Engine(**options)
            except ValueError as error:
                refused.append(str(error).split(" must ")[0])
        engine = Engine(max_wasm_stack=Liar(1 << 20))
        print(json.dumps({"refused": refused, "type": type(engine.config["max_wasm_stack"]).__name__}))
        """, timeout=120)
    assert child_json(proc) == {"refused": ["Engine option max_wasm_stack", "Engine option memory_guard_size",
                                            "Engine option instance_pool"], "type": "int"}
