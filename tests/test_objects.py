"""Engine, Store, Module, Instance/Exports, Memory, Global, Table, wat2wasm."""

from collections.abc import Mapping

import pytest

import wasmpy
from wasmpy import (Engine, ExportType, Func, FuncType, Global, GlobalType, ImportType, Instance, Memory,
                    MemoryType, Module, Store, Table, TableType, ValType)

PAGE = 65536


# --- Engine -----------------------------------------------------------------------------------------

def test_engine_default_is_shared():
    assert Engine.default() is Engine.default()
    assert isinstance(Engine.default(), Engine)
    assert Store().engine is Engine.default()
    assert Module("(module)").engine is Engine.default()


def test_engine_accepts_documented_options():
    engine = Engine(consume_fuel=True, epoch_interruption=True, max_wasm_stack=1 << 20,
                    cranelift_opt_level="speed", parallel_compilation=False, simd=True, threads=True,
                    gc=True, tail_call=True, multi_value=True, bulk_memory=True)
    assert engine.config["consume_fuel"] is True
    assert engine.config["max_wasm_stack"] == 1 << 20
    assert engine is not Engine.default()


def test_engine_unknown_option_is_type_error():
    with pytest.raises(TypeError) as info:
        Engine(consume_fuell=True)
    assert "consume_fuell" in str(info.value)


def test_engine_option_value_checks():
    with pytest.raises(TypeError):
        Engine(simd=1)
    with pytest.raises(TypeError):
        Engine(max_wasm_stack="big")
    with pytest.raises(ValueError):
        Engine(cranelift_opt_level="fast")


REC_WAT = """
(module (func $r (export "r") (param i32) (result i32) (local i64 i64 i64 i64 i64 i64 i64 i64)
  local.get 0 i32.eqz if (result i32) i32.const 0
  else local.get 0 i32.const 1 i32.sub call $r i32.const 1 i32.add end))
"""


@pytest.mark.parametrize("level", ["none", "speed", "speed_and_size"])
def test_engine_opt_levels_compile_working_code(level):
    engine = Engine(cranelift_opt_level=level)
    assert Instance(Module(REC_WAT, engine), store=Store(engine)).exports.r(100) == 100


def test_engine_max_wasm_stack():
    small = Engine(max_wasm_stack=16 * 1024)
    assert Instance(Module(REC_WAT, small), store=Store(small)).exports.r(10) == 10
    with pytest.raises(wasmpy.Trap) as info:
        Instance(Module(REC_WAT, small), store=Store(small)).exports.r(2000)
    assert info.value.code is wasmpy.TrapCode.STACK_OVERFLOW
    assert Instance(Module(REC_WAT)).exports.r(2000) == 2000  # the default stack is deeper


@pytest.mark.parametrize("flag, wat", [
    ("simd", '(module (func (result i32) v128.const i32x4 1 2 3 4 i32x4.extract_lane 1))'),
    ("multi_value", '(module (func (result i32 i32) i32.const 1 i32.const 2))'),
    ("threads", '(module (memory 1 1 shared))'),
    ("gc", '(module (type $s (struct (field i32))) (func (result i32) i32.const 7 struct.new $s struct.get $s 0))'),
    ("tail_call", '(module (func $f (result i32) return_call $g) (func $g (result i32) i32.const 5))'),
])
def test_engine_feature_flags(flag, wat):
    extra = {"relaxed_simd": False} if flag == "simd" else {}
    Module(wat, Engine(**{flag: True}))
    with pytest.raises(wasmpy.CompileError):
        Module(wat, Engine(**{flag: False}, **extra))


@pytest.mark.parametrize("config", ["simd=False", "max_wasm_stack=0", "reference_types=False"])
def test_engine_rejected_configuration_is_a_python_error(run_isolated, config):
    done = run_isolated(f"""
        import wasmpy
        try:
            engine = wasmpy.Engine({config})
        except (ValueError, TypeError) as error:
            print("rejected")
        else:
            print("accepted")
    """)
    assert done.returncode == 0, done.stderr[-500:]
    assert done.stdout.split() in (["rejected"], ["accepted"])


def test_engine_instance_pool_option_checks():
    with pytest.raises(TypeError):
        Engine(instance_pool="10")
    with pytest.raises(TypeError):
        Engine(instance_pool=True)
    with pytest.raises(ValueError):
        Engine(instance_pool=0)
    assert Engine(instance_pool=None).config.get("instance_pool") is None


POOLED_WAT = """
(module
  (memory (export "memory") 1 4)
  (data (i32.const 8) "seed")
  (table (export "table") 2 funcref)
  (global $g (export "g") (mut i32) (i32.const 1))
  (func (export "scribble") (param i32) (i32.store (local.get 0) (i32.const -1)) (global.set $g (i32.const 99)))
  (func (export "peek") (param i32) (result i32) (i32.load (local.get 0))))
"""


@pytest.fixture(scope="module")
def pooled():
    engine = Engine(instance_pool=4)
    return engine, Module(POOLED_WAT, engine)


def test_pooled_instances_work_like_others(pooled):
    engine, module = pooled
    exports = Instance(module).exports
    assert bytes(memoryview(exports.memory)[8:12]) == b"seed"
    exports.memory.grow(3)
    assert exports.memory.size == 4
    with pytest.raises(wasmpy.WasmError):
        exports.memory.grow(1)
    assert len(exports.table) == 2 and exports.g.value == 1


def test_a_reused_pool_slot_starts_afresh(pooled):
    engine, module = pooled
    for _ in range(10):  # more rounds than slots: each slot is used again
        store = Store(engine)
        exports = Instance(module, store=store).exports
        assert exports.memory.size == 1 and exports.g.value == 1
        assert exports.peek(8) == int.from_bytes(b"seed", "little")
        assert exports.peek(1000) == 0
        exports.memory.grow(1)
        assert exports.peek(PAGE + 16) == 0
        for address in (8, 1000, PAGE + 16):
            exports.scribble(address)
        store.close()


def test_a_module_too_big_for_a_pool_slot_is_a_compile_error(pooled):
    engine, _ = pooled
    with pytest.raises(wasmpy.CompileError, match="pooling"):
        Module("(module (table 30000 funcref))", engine)


def test_a_full_pool_is_a_clear_error_until_a_slot_is_freed(pooled):
    engine, module = pooled
    stores = [Store(engine) for _ in range(4)]
    for store in stores:
        Instance(module, store=store)
    with pytest.raises(wasmpy.WasmError, match="instance_pool=4"):
        Instance(module, store=Store(engine))
    stores.pop().close()
    assert Instance(module, store=Store(engine)).exports.peek(8) != 0


# --- Store -------------------------------------------------------------------------------------------

def test_store_engine():
    engine = Engine()
    assert Store(engine).engine is engine
    assert Store(engine=None).engine is Engine.default()
    with pytest.raises(TypeError):
        Store("engine")
    with pytest.raises(TypeError):
        Store(None, 100)  # fuel is keyword-only


def test_store_fuel():
    engine = Engine(consume_fuel=True)
    store = Store(engine, fuel=1000)
    assert store.fuel == 1000
    module = Module('(module (func (export "f") (result i32) i32.const 1 i32.const 2 i32.add))', engine)
    assert Instance(module, store=store).exports.f() == 3
    assert 0 < store.fuel < 1000
    store.fuel = 7
    assert store.fuel == 7


def test_store_fuel_needs_consume_fuel():
    with pytest.raises(wasmpy.WasmError):
        Store(fuel=10)
    with pytest.raises(ValueError):
        Store(Engine(consume_fuel=True), fuel=-1)


def test_store_limits_memory():
    store = Store(limits=wasmpy.StoreLimits(memory_size=2 * PAGE))
    memory = Memory(store, MemoryType(1))
    assert memory.grow(1) == 1
    with pytest.raises(wasmpy.WasmError):
        memory.grow(1)
    exports = Instance(Module('(module (memory (export "m") 1) (func (export "grow") (param i32) (result i32) '
                              'local.get 0 memory.grow))'),
                       store=Store(limits=wasmpy.StoreLimits(memory_size=2 * PAGE))).exports
    assert exports.grow(1) == 1
    assert exports.grow(1) == -1
    with pytest.raises(wasmpy.WasmError):
        Instance(Module("(module (memory 3))"), store=Store(limits=wasmpy.StoreLimits(memory_size=2 * PAGE)))
    with pytest.raises(TypeError):
        Store(limits={"memory_size": 1})


def test_instance_store_must_share_the_modules_engine():
    with pytest.raises(wasmpy.WasmError):
        Instance(Module("(module)", Engine()), store=Store())


# --- Module ------------------------------------------------------------------------------------------

MODULE_WAT = """
(module
  (import "env" "f" (func (param i32 i64) (result f32)))
  (import "env" "mem" (memory 1 2))
  (import "other" "g" (global (mut f64)))
  (import "other" "t" (table 3 externref))
  (func (export "run") (result i32) i32.const 42)
  (memory (export "memory") 2 5)
  (global (export "answer") i32 (i32.const 42))
  (table (export "table") 4 funcref))
"""


def test_module_imports():
    imports = Module(MODULE_WAT).imports
    assert [(i.module, i.name) for i in imports] == [("env", "f"), ("env", "mem"), ("other", "g"), ("other", "t")]
    assert all(isinstance(i, ImportType) for i in imports)
    assert imports[0].type == FuncType(["i32", "i64"], ["f32"])
    assert imports[1].type == MemoryType(1, 2)
    assert imports[2].type == GlobalType(ValType.f64, True)
    assert imports[3].type == TableType(ValType.externref, 3)


def test_module_exports():
    exports = Module(MODULE_WAT).exports
    assert [e.name for e in exports] == ["run", "memory", "answer", "table"]
    assert all(isinstance(e, ExportType) for e in exports)
    assert exports[0].type == FuncType([], ["i32"])
    assert exports[1].type.minimum == 2 and exports[1].type.maximum == 5
    assert exports[2].type == GlobalType("i32", False)
    assert exports[3].type == TableType("funcref", 4)


@pytest.mark.parametrize("convert", [bytes, bytearray, memoryview], ids=["bytes", "bytearray", "memoryview"])
def test_module_from_bytes_like(convert):
    wasm = wasmpy.wat2wasm('(module (func (export "f") (result i32) i32.const 9))')
    assert Instance(Module(convert(wasm))).exports.f() == 9


def test_module_from_wat_text_and_engine():
    engine = Engine()
    module = Module('(module (func (export "f") (result i64) i64.const -5))', engine)
    assert module.engine is engine
    assert Instance(module, store=Store(engine)).exports.f() == -5


def test_module_bad_source_type():
    with pytest.raises(TypeError):
        Module(42)
    with pytest.raises(TypeError):
        Module("(module)", engine="default")


def test_module_from_file(tmp_path):
    wat_path = tmp_path / "m.wat"
    wat_path.write_text('(module (func (export "f") (result i32) i32.const 7))')
    wasm_path = tmp_path / "m.wasm"
    wasm_path.write_bytes(wasmpy.wat2wasm('(module (func (export "f") (result i32) i32.const 8))'))
    assert Instance(Module.from_file(wat_path)).exports.f() == 7
    assert Instance(Module.from_file(str(wasm_path))).exports.f() == 8
    engine = Engine(consume_fuel=True)
    assert Module.from_file(wasm_path, engine).engine is engine


def test_module_from_file_errors(tmp_path):
    bad = tmp_path / "bad.wat"
    bad.write_text("(module (func (result i32)))")
    with pytest.raises(wasmpy.CompileError) as info:
        Module.from_file(bad)
    assert "bad.wat" in str(info.value)
    garbage = tmp_path / "garbage.wasm"
    garbage.write_bytes(b"\0asm\x01\0\0\0\xff\xff")
    with pytest.raises(wasmpy.CompileError):
        Module.from_file(garbage)
    with pytest.raises(FileNotFoundError):
        Module.from_file(tmp_path / "missing.wasm")


def test_serialize_deserialize_round_trip():
    module = Module(MODULE_WAT.replace('(import "other" "t" (table 3 externref))', ""))
    data = module.serialize()
    assert isinstance(data, bytes) and len(data) > 0
    again = Module.deserialize(data)
    assert again.engine is Engine.default()
    assert [(e.name, e.type) for e in again.exports] == [(e.name, e.type) for e in module.exports]
    assert [(i.module, i.name, i.type) for i in again.imports] == [(i.module, i.name, i.type)
                                                                   for i in module.imports]
    simple = Module.deserialize(Module('(module (func (export "f") (result i32) i32.const 77))').serialize())
    assert Instance(simple).exports.f() == 77
    assert Instance(Module.deserialize(bytearray(simple.serialize()))).exports.f() == 77


def test_deserialize_with_an_engine():
    engine = Engine(consume_fuel=True)
    data = Module('(module (func (export "f") (result i32) i32.const 3))', engine).serialize()
    module = Module.deserialize(data, engine)
    assert module.engine is engine
    assert Instance(module, store=Store(engine, fuel=100)).exports.f() == 3


# --- wat2wasm ----------------------------------------------------------------------------------------

def test_wat2wasm():
    assert wasmpy.wat2wasm("(module)") == b"\0asm\x01\0\0\0"
    wasm = wasmpy.wat2wasm('(module (func (export "f")))')
    assert isinstance(wasm, bytes) and wasm.startswith(b"\0asm")
    assert [e.name for e in Module(wasm).exports] == ["f"]
    assert wasmpy.wat2wasm(b"(module)") == b"\0asm\x01\0\0\0"
    with pytest.raises(wasmpy.CompileError):
        wasmpy.wat2wasm("(module (func $f (call $nowhere)))")
    with pytest.raises(TypeError):
        wasmpy.wat2wasm(42)


# --- Instance and Exports ----------------------------------------------------------------------------

EXPORTS_WAT = """
(module
  (func (export "f") (result i32) i32.const 1)
  (memory (export "mem") 1)
  (global (export "glob") (mut i64) (i64.const -9))
  (table (export "tab") 2 funcref)
  (func (export "with-dash") (result i32) i32.const 2))
"""


def test_instance_exports_access(store):
    instance = Instance(Module(EXPORTS_WAT), store=store)
    exports = instance.exports
    assert instance.store is store
    assert list(exports) == ["f", "mem", "glob", "tab", "with-dash"]
    assert len(exports) == 5
    assert exports.f is exports["f"]
    assert exports.f() == 1
    assert exports["with-dash"]() == 2
    assert isinstance(exports.mem, Memory)
    assert isinstance(exports.glob, Global) and exports.glob.value == -9
    assert isinstance(exports.tab, Table) and exports.tab.size == 2
    assert isinstance(exports.f, Func)
    assert "f" in exports and "g" not in exports
    with pytest.raises(AttributeError):
        exports.missing
    with pytest.raises(KeyError):
        exports["missing"]
    with pytest.raises(AttributeError):
        exports.f = None


def test_instance_default_store_and_arguments():
    instance = Instance(Module(EXPORTS_WAT))
    assert isinstance(instance.store, Store)
    assert instance.store.engine is Engine.default()
    with pytest.raises(TypeError):
        Instance(EXPORTS_WAT)
    with pytest.raises(TypeError):
        Instance(Module(EXPORTS_WAT), store="store")


def test_instances_are_independent(store):
    module = Module('(module (global $g (mut i32) (i32.const 0)) '
                    '(func (export "inc") (result i32) global.get $g i32.const 1 i32.add global.set $g global.get $g))')
    a, b = Instance(module, store=store), Instance(module, store=store)
    assert [a.exports.inc(), a.exports.inc(), b.exports.inc()] == [1, 2, 1]


def test_export_named_like_an_internal_attribute(store):
    exports = Instance(Module('(module (func (export "_items") (result i32) i32.const 1) '
                              '(func (export "other") (result i32) i32.const 2))'), store=store).exports
    assert len(exports) == 2
    assert list(exports) == ["_items", "other"]
    assert exports["other"]() == 2
    assert exports._items() == 1


def test_exports_with_mapping_method_names_as_import_namespace(store):
    provider = Instance(Module('(module (func (export "get") (param i32) (result i32) local.get 0 i32.const 1 '
                               'i32.add) (func (export "keys") (result i32) i32.const 3))'), store=store)
    assert provider.exports.get(1) == 2          # attribute access gives the export
    consumer = Module('(module (import "kv" "get" (func $get (param i32) (result i32))) '
                      '(func (export "go") (param i32) (result i32) local.get 0 call $get))')
    assert Instance(consumer, {"kv": provider.exports}, store).exports.go(41) == 42
    # the shadowed mapping methods stay reachable through the class, as documented
    assert sorted(Mapping.keys(provider.exports)) == ["get", "keys"]


# --- Memory ------------------------------------------------------------------------------------------

def test_memory_basics(store):
    memory = Memory(store, MemoryType(1, 3))
    assert memory.size == 1
    assert memory.data_size == PAGE
    assert memory.type == MemoryType(1, 3)
    assert memory.read(0, 8) == bytes(8)
    memory.write(100, b"hello")
    assert memory.read(100, 5) == b"hello"
    memory.write(PAGE - 2, bytearray(b"\x01\x02"))
    assert memory.read(PAGE - 2, 2) == b"\x01\x02"
    memory.write(0, memoryview(b"xyz"))
    assert memory.read(0, 3) == b"xyz"


def test_memory_grow(store):
    memory = Memory(store, MemoryType(1, 3))
    assert memory.grow(0) == 1
    assert memory.grow(1) == 1
    assert memory.size == 2 and memory.data_size == 2 * PAGE
    assert memory.grow(1) == 2
    with pytest.raises(wasmpy.WasmError):
        memory.grow(1)  # past the maximum
    assert memory.size == 3
    with pytest.raises(ValueError):
        memory.grow(-1)
    with pytest.raises(TypeError):
        memory.grow(1.0)


def test_memory_read_write_bounds(store):
    memory = Memory(store, MemoryType(1))
    with pytest.raises(IndexError):
        memory.read(PAGE - 3, 4)
    with pytest.raises(IndexError):
        memory.write(PAGE - 1, b"ab")
    with pytest.raises(IndexError):
        memory.read(-1, 1)
    assert memory.read(PAGE, 0) == b""
    with pytest.raises(TypeError):
        memory.write(0, "text")


def test_memory_type_checks(store):
    with pytest.raises(ValueError):
        MemoryType(2, 1)
    with pytest.raises(TypeError):
        Memory(store, "1 page")
    with pytest.raises(TypeError):
        Memory(None, MemoryType(1))


def test_memoryview_zero_copy_and_writable(store):
    memory = Memory(store, MemoryType(1))
    view = memoryview(memory)
    assert len(view) == PAGE and view.nbytes == PAGE
    assert not view.readonly
    assert view.format == "B"
    view[10:14] = b"abcd"
    assert memory.read(10, 4) == b"abcd"
    memory.write(20, b"xy")
    assert bytes(view[20:22]) == b"xy"   # the same bytes, not a copy
    view.release()


def test_memoryview_after_grow(store):
    memory = Memory(store, MemoryType(1))
    old = memoryview(memory)
    memory.grow(2)
    new = memoryview(memory)
    assert len(old) == PAGE          # a view keeps its length
    assert len(new) == 3 * PAGE      # a new view has the new length
    new[3 * PAGE - 1] = 0x5A
    assert memory.read(3 * PAGE - 1, 1) == b"\x5a"
    old[0] = 1
    assert new[0] == 1


MEMORY_WAT = """
(module
  (memory (export "mem") 1 8)
  (func (export "load") (param i32) (result i32) local.get 0 i32.load8_u)
  (func (export "load32") (param i32) (result i32) local.get 0 i32.load)
  (func (export "store") (param i32 i32) local.get 0 local.get 1 i32.store8)
  (func (export "grow") (param i32) (result i32) local.get 0 memory.grow)
  (func (export "size") (result i32) memory.size))
"""


def test_memoryview_shared_with_wasm(store):
    exports = Instance(Module(MEMORY_WAT), store=store).exports
    view = memoryview(exports.mem)
    view[5] = 42
    assert exports.load(5) == 42
    view[8:12] = (0x12345678).to_bytes(4, "little")
    assert exports.load32(8) == 0x12345678
    exports.store(7, 99)
    assert view[7] == 99


def test_memory_growth_by_wasm_seen_through_new_memoryview(store):
    exports = Instance(Module(MEMORY_WAT), store=store).exports
    assert exports.grow(2) == 1
    assert exports.mem.size == 3
    assert exports.mem.data_size == 3 * PAGE
    view = memoryview(exports.mem)
    assert len(view) == 3 * PAGE
    view[3 * PAGE - 1] = 7
    assert exports.load(3 * PAGE - 1) == 7
    exports.store(2 * PAGE + 5, 11)
    assert view[2 * PAGE + 5] == 11
    # and growth from Python is seen by wasm
    assert exports.mem.grow(1) == 3
    assert exports.size() == 4
    assert len(memoryview(exports.mem)) == 4 * PAGE
    with pytest.raises(wasmpy.Trap):
        exports.load(5 * PAGE)


def test_memory_import_type_checks(store):
    small = Memory(store, MemoryType(1))
    with pytest.raises(wasmpy.LinkError) as info:
        Instance(Module('(module (import "env" "mem" (memory 2)))'), {"env": {"mem": small}}, store)
    assert "env.mem" in str(info.value)
    with pytest.raises(wasmpy.LinkError):
        Instance(Module('(module (import "env" "mem" (memory 1 2)))'), {"env": {"mem": small}}, store)
    bounded = Memory(store, MemoryType(2, 2))
    Instance(Module('(module (import "env" "mem" (memory 1 4)))'), {"env": {"mem": bounded}}, store)


# --- Global ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("valtype, initial, update, expected", [
    (ValType.i32, 5, 2**32 - 1, -1),
    (ValType.i64, -3, 2**63, -2**63),
    (ValType.f32, 1.5, 3, 3.0),
    (ValType.f64, 0.1, -2.5, -2.5),
])
def test_global_mutable(store, valtype, initial, update, expected):
    glob = Global(store, GlobalType(valtype, True), initial)
    assert glob.value == initial
    assert glob.type == GlobalType(valtype, True)
    glob.value = update
    assert glob.value == expected


def test_global_immutable(store):
    glob = Global(store, GlobalType("i64", False), 2**64 - 1)
    assert glob.value == -1
    with pytest.raises(AttributeError):
        glob.value = 1
    assert glob.value == -1


def test_global_value_checks(store):
    glob = Global(store, GlobalType(ValType.i32, True), 0)
    with pytest.raises(OverflowError):
        glob.value = 2**32
    with pytest.raises(OverflowError):
        glob.value = -2**31 - 1
    with pytest.raises(TypeError):
        glob.value = "1"
    with pytest.raises(TypeError):
        glob.value = 1.0
    with pytest.raises(OverflowError):
        Global(store, GlobalType(ValType.i64, False), 2**64)
    with pytest.raises(TypeError):
        Global(store, "i32", 0)


def test_global_exact_bits(store):
    glob = Global(store, GlobalType(ValType.f32, True), wasmpy.Val.from_bits(ValType.f32, 0x7FA00000))
    assert glob.get(exact=True).bits == 0x7FA00000


def test_wasm_global_shared_with_python(store):
    exports = Instance(Module("""
      (module (global $g (export "g") (mut i32) (i32.const 10))
        (global (export "c") f64 (f64.const 2.5))
        (func (export "inc") global.get $g i32.const 1 i32.add global.set $g)
        (func (export "get") (result i32) global.get $g))"""), store=store).exports
    exports.inc()
    assert exports.g.value == 11
    exports.g.value = 100
    assert exports.get() == 100
    assert exports.c.value == 2.5
    with pytest.raises(AttributeError):
        exports.c.value = 1.0


def test_global_import(run_isolated):
    done = run_isolated("""
        import wasmpy
        store = wasmpy.Store()
        g = wasmpy.Global(store, wasmpy.GlobalType('i32', True), 3)
        module = wasmpy.Module('(module (import "env" "g" (global (mut i32))) (func (export "inc") '
                               'global.get 0 i32.const 1 i32.add global.set 0))')
        wasmpy.Instance(module, {"env": {"g": g}}, store).exports.inc()
        print(g.value)
    """)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["4"]


def test_global_import_of_wrong_type_is_link_error(store):
    glob = Global(store, GlobalType("i32", True), 3)
    with pytest.raises(wasmpy.LinkError) as info:
        Instance(Module('(module (import "env" "g" (global (mut i64))))'), {"env": {"g": glob}}, store)
    assert "env.g" in str(info.value)
    with pytest.raises(wasmpy.LinkError):
        Instance(Module('(module (import "env" "g" (global i32)))'), {"env": {"g": glob}}, store)


# --- Table -------------------------------------------------------------------------------------------

def test_table_funcref(store):
    double = Func(store, lambda x: 2 * x, FuncType(["i32"], ["i32"]))
    table = Table(store, TableType(ValType.funcref, 2, 4))
    assert table.size == 2
    assert table.type == TableType("funcref", 2, 4)
    assert table[0] is None and table[1] is None
    table[1] = double
    assert table[1](4) == 8
    assert table[-1](5) == 10
    assert table.grow(1, double) == 2
    assert table.size == 3
    assert table[2](6) == 12
    assert table.grow(1) == 3
    assert table[3] is None
    with pytest.raises(wasmpy.WasmError):
        table.grow(1)  # past the maximum
    with pytest.raises(IndexError):
        table[4]
    with pytest.raises(IndexError):
        table[4] = double
    with pytest.raises(TypeError):
        table["0"]


def test_table_init(store):
    marker = object()
    table = Table(store, TableType(ValType.externref, 3), init=marker)
    assert [table[i] is marker for i in range(3)] == [True, True, True]
    assert Table(store, TableType(ValType.externref, 1))[0] is None
    with pytest.raises(TypeError):
        Table(store, TableType(ValType.funcref, 1), init=5)
    with pytest.raises(TypeError):
        TableType(ValType.i32, 1)
    with pytest.raises(ValueError):
        TableType(ValType.funcref, 2, 1)


def test_wasm_table_shared_with_python(store):
    exports = Instance(Module("""
      (module (type $t (func (result i32))) (table (export "tab") 2 funcref)
        (func $seven (result i32) i32.const 7) (elem (i32.const 0) $seven)
        (func (export "call") (param i32) (result i32) local.get 0 call_indirect (type $t))
        (func (export "size") (result i32) table.size))"""), store=store).exports
    assert exports.tab[0]() == 7
    exports.tab[1] = Func(store, lambda: 8, FuncType([], ["i32"]))
    assert exports.call(1) == 8
    assert exports.tab.grow(3) == 2
    assert exports.size() == 5
    with pytest.raises(wasmpy.Trap):
        exports.call(4)


def test_table_import(store):
    table = Table(store, TableType("funcref", 1))
    table[0] = Func(store, lambda: 99, FuncType([], ["i32"]))
    module = Module('(module (import "env" "t" (table 1 funcref)) (type $t (func (result i32))) '
                    '(func (export "c") (result i32) i32.const 0 call_indirect (type $t)))')
    assert Instance(module, {"env": {"t": table}}, store).exports.c() == 99
    with pytest.raises(wasmpy.LinkError):
        Instance(Module('(module (import "env" "t" (table 1 externref)))'), {"env": {"t": table}}, store)
