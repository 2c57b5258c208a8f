"""Error kinds: WasmError and its subclasses, traps with codes and backtraces, argument errors."""

import pytest

import wasmpy
from wasmpy import CompileError, Engine, Instance, LinkError, Module, Store, Trap, TrapCode, WasmError, WasmException


# --- hierarchy ----------------------------------------------------------------------------------------

def test_exception_hierarchy():
    assert issubclass(WasmError, Exception)
    assert issubclass(CompileError, WasmError)
    assert issubclass(LinkError, WasmError)
    assert issubclass(LinkError, ImportError)
    assert issubclass(Trap, WasmError)
    assert issubclass(WasmException, Trap)
    assert not issubclass(CompileError, LinkError) and not issubclass(Trap, CompileError)


def test_trap_code_members():
    for name in ["UNREACHABLE", "MEMORY_OUT_OF_BOUNDS", "INTEGER_DIVISION_BY_ZERO", "STACK_OVERFLOW",
                 "OUT_OF_FUEL", "INTERRUPT", "INTEGER_OVERFLOW", "BAD_CONVERSION_TO_INTEGER",
                 "INDIRECT_CALL_TO_NULL", "BAD_SIGNATURE", "TABLE_OUT_OF_BOUNDS"]:
        assert isinstance(getattr(TrapCode, name), TrapCode)
    assert len(set(TrapCode)) == len(TrapCode.__members__)


# --- CompileError -------------------------------------------------------------------------------------

@pytest.mark.parametrize("wat", [
    "(modul",                                            # syntax
    "(module (func (result i32)))",                      # type error: nothing on the stack
    "(module (func $f (call $nowhere)))",                # unknown name
    '(module (func (export "f") (param i32) (result i64) local.get 0))',  # wrong result type
    "(module (func i32.const 1 i32.const 2))",           # values left on the stack
])
def test_bad_wat_is_compile_error(wat):
    with pytest.raises(CompileError) as info:
        Module(wat)
    assert str(info.value)


def test_wat2wasm_syntax_error_is_compile_error():
    with pytest.raises(CompileError) as info:
        wasmpy.wat2wasm("(module (func (i32.const)))")
    assert str(info.value)


@pytest.mark.parametrize("wasm", [
    b"",
    b"hello world",
    b"\0asm",                                     # truncated header
    b"\0asm\x02\0\0\0",                           # unknown version
    b"\0asm\x01\0\0\0\xff",                       # bad section id
    b"\0asm\x01\0\0\0\x01\x05\x01\x60\x00",       # truncated type section
])
def test_invalid_wasm_is_compile_error(wasm):
    with pytest.raises(CompileError):
        Module(wasm)


def test_invalid_but_well_formed_wasm_is_compile_error():
    wasm = bytearray(wasmpy.wat2wasm('(module (func (export "f") (result i32) i32.const 1))'))
    # i32.const 1 (0x41 0x01) -> i64.const 1 (0x42 0x01): valid encoding, invalid typing.
    index = wasm.rindex(b"\x41\x01\x0b")
    wasm[index] = 0x42
    with pytest.raises(CompileError):
        Module(bytes(wasm))


def test_compile_error_is_catchable_as_wasm_error():
    with pytest.raises(WasmError):
        Module("(module (func (result i32)))")


# --- LinkError ----------------------------------------------------------------------------------------

CALLBACK_WAT = '(module (import "env" "callback" (func (param i32) (result i32))))'


def test_missing_import_namespace(store):
    for imports in (None, {}, {"other": {"callback": lambda x: x}}):
        with pytest.raises(LinkError) as info:
            Instance(Module(CALLBACK_WAT), imports, store)
        assert "env.callback" in str(info.value)
        assert "func(i32) -> i32" in str(info.value)


def test_missing_import_field(store):
    with pytest.raises(LinkError) as info:
        Instance(Module(CALLBACK_WAT), {"env": {"callbak": lambda x: x}}, store)
    assert "env.callback" in str(info.value)
    with pytest.raises(ImportError):  # LinkError is an ImportError
        Instance(Module(CALLBACK_WAT), {"env": object()}, store)


def test_import_func_of_wrong_type(store):
    wrong = wasmpy.Func(store, lambda x: x, wasmpy.FuncType(["i64"], ["i64"]))
    with pytest.raises(LinkError) as info:
        Instance(Module(CALLBACK_WAT), {"env": {"callback": wrong}}, store)
    message = str(info.value)
    assert "env.callback" in message
    assert "func(i32) -> i32" in message      # expected
    assert "func(i64) -> i64" in message      # given


def test_import_annotation_mismatch(store):
    def callback(x: "f64") -> "i32":
        return 0

    with pytest.raises(LinkError) as info:
        Instance(Module(CALLBACK_WAT), {"env": {"callback": callback}}, store)
    message = str(info.value)
    assert "env.callback" in message and "func(i32) -> i32" in message and "f64" in message


@pytest.mark.parametrize("value", [42, "callback", None, [1]])
def test_import_of_wrong_kind(store, value):
    with pytest.raises(LinkError) as info:
        Instance(Module(CALLBACK_WAT), {"env": {"callback": value}}, store)
    assert "env.callback" in str(info.value)


def test_import_memory_given_for_function(store):
    memory = wasmpy.Memory(store, wasmpy.MemoryType(1))
    with pytest.raises(LinkError) as info:
        Instance(Module(CALLBACK_WAT), {"env": {"callback": memory}}, store)
    assert "env.callback" in str(info.value)


def test_import_from_another_store(store):
    other = Store()
    func = wasmpy.Func(other, lambda x: x, wasmpy.FuncType(["i32"], ["i32"]))
    with pytest.raises(LinkError) as info:
        Instance(Module(CALLBACK_WAT), {"env": {"callback": func}}, store)
    assert "env.callback" in str(info.value)


# --- Traps ---------------------------------------------------------------------------------------------

TRAPS_WAT = """
(module $traps
  (memory 1)
  (type $v (func))
  (table 2 funcref)
  (elem (i32.const 0) $takes_i32)
  (func $takes_i32 (param i32))
  (func $unreachable (export "unreachable") unreachable)
  (func $outer (export "outer") call $middle)
  (func $middle call $unreachable)
  (func $div (export "div") (param i32 i32) (result i32) local.get 0 local.get 1 i32.div_s)
  (func $rem64 (export "rem64") (param i64 i64) (result i64) local.get 0 local.get 1 i64.rem_u)
  (func $load (export "load") (param i32) (result i32) local.get 0 i32.load)
  (func $store (export "store") (param i32) local.get 0 i32.const 1 i32.store)
  (func $recurse (export "recurse") (param i32) (result i32)
    local.get 0 i32.const 1 i32.add call $recurse)
  (func $trunc (export "trunc") (param f64) (result i32) local.get 0 i32.trunc_f64_s)
  (func $call (export "call_indirect") (param i32) local.get 0 call_indirect (type $v))
  (func (export "nameless") unreachable))
"""


@pytest.fixture
def traps(store):
    return Instance(Module(TRAPS_WAT), store=store).exports


def _trap(call, *args):
    with pytest.raises(Trap) as info:
        call(*args)
    assert isinstance(info.value, WasmError)
    return info.value


def test_unreachable(traps):
    trap = _trap(traps.unreachable)
    assert trap.code is TrapCode.UNREACHABLE
    assert "unreachable" in str(trap)


@pytest.mark.parametrize("name, args", [("div", (1, 0)), ("div", (0, 0)), ("rem64", (2**64 - 1, 0))])
def test_division_by_zero(traps, name, args):
    assert _trap(getattr(traps, name), *args).code is TrapCode.INTEGER_DIVISION_BY_ZERO


def test_integer_overflow(traps):
    assert _trap(traps.div, -2**31, -1).code is TrapCode.INTEGER_OVERFLOW
    assert traps.div(-2**31, 1) == -2**31


@pytest.mark.parametrize("name, address", [
    ("load", 65536), ("load", 65533), ("load", 2**32 - 1), ("store", 65536), ("store", 65535), ("store", -1),
])
def test_memory_out_of_bounds(traps, name, address):
    trap = _trap(getattr(traps, name), address)
    assert trap.code is TrapCode.MEMORY_OUT_OF_BOUNDS
    assert "out of bounds" in str(trap)


def test_memory_in_bounds_edge(traps):
    assert traps.load(65532) == 0
    traps.store(65532)
    assert traps.load(65532) == 1


def test_stack_overflow(traps):
    trap = _trap(traps.recurse, 0)
    assert trap.code is TrapCode.STACK_OVERFLOW
    assert len(trap.frames) > 1
    assert all(frame.function == "recurse" for frame in trap.frames)


def test_bad_conversion_to_integer(traps):
    assert _trap(traps.trunc, float("nan")).code is TrapCode.BAD_CONVERSION_TO_INTEGER
    assert _trap(traps.trunc, 1e10).code is TrapCode.INTEGER_OVERFLOW
    assert traps.trunc(-2.9) == -2


def test_indirect_call_traps(traps):
    assert _trap(traps.call_indirect, 1).code is TrapCode.INDIRECT_CALL_TO_NULL
    assert _trap(traps.call_indirect, 0).code is TrapCode.BAD_SIGNATURE
    assert _trap(traps.call_indirect, 2).code is TrapCode.TABLE_OUT_OF_BOUNDS


def test_trap_frames_have_names_and_offsets(traps):
    trap = _trap(traps.outer)
    assert trap.code is TrapCode.UNREACHABLE
    assert [frame.function for frame in trap.frames] == ["unreachable", "middle", "outer"]  # innermost first
    for frame in trap.frames:
        assert isinstance(frame, wasmpy.Frame)
        assert frame.module == "traps"
        assert isinstance(frame.func_index, int) and isinstance(frame.func_offset, int)
        assert isinstance(frame.module_offset, int) and frame.module_offset > 0
    assert len({frame.func_index for frame in trap.frames}) == 3
    assert "unreachable" in str(trap) and "middle" in str(trap)


def test_trap_frames_without_names(store):
    exports = Instance(Module('(module (func (export "f") unreachable))'), store=store).exports
    trap = _trap(exports.f)
    assert len(trap.frames) == 1
    assert trap.frames[0].function is None
    assert trap.frames[0].module is None
    assert trap.frames[0].func_index == 0


def test_instance_usable_after_trap(traps):
    for _ in range(3):
        _trap(traps.div, 1, 0)
        assert traps.div(7, 2) == 3


def test_trap_in_start_function(store):
    with pytest.raises(Trap) as info:
        Instance(Module("(module (func $start unreachable) (start $start))"), store=store)
    assert info.value.code is TrapCode.UNREACHABLE


def test_trap_through_host_frames(store):
    """A trap raised by wasm called from a host function keeps its code at the outer caller."""
    holder = {}
    module = Module("""
      (module (import "env" "host" (func $host))
        (func (export "outer") call $host)
        (func (export "inner") (result i32) i32.const 1 i32.const 0 i32.div_u))""")
    exports = Instance(module, {"env": {"host": lambda: holder["inner"]() and None}}, store).exports
    holder["inner"] = exports.inner
    with pytest.raises(Trap) as info:
        exports.outer()
    assert info.value.code is TrapCode.INTEGER_DIVISION_BY_ZERO


FUEL_WAT = """
(module
  (func (export "spin") (loop br 0))
  (func (export "count") (param i32) (result i32)
    (local i32)
    (block (loop
      local.get 1 local.get 0 i32.ge_u br_if 1
      local.get 1 i32.const 1 i32.add local.set 1 br 0))
    local.get 1))
"""


def test_out_of_fuel():
    engine = Engine(consume_fuel=True)
    store = Store(engine, fuel=10_000)
    exports = Instance(Module(FUEL_WAT, engine), store=store).exports
    trap = _trap(exports.spin)
    assert trap.code is TrapCode.OUT_OF_FUEL
    assert store.fuel == 0
    store.fuel = 1_000_000
    assert exports.count(1000) == 1000        # refuelled: runs again
    assert store.fuel < 1_000_000


def test_out_of_fuel_with_empty_tank():
    engine = Engine(consume_fuel=True)
    exports = Instance(Module(FUEL_WAT, engine), store=Store(engine)).exports
    assert _trap(exports.count, 1).code is TrapCode.OUT_OF_FUEL


def test_interrupt_by_deadline():
    store = Store()
    exports = Instance(Module(FUEL_WAT), store=store).exports
    with store.deadline(0.05):
        assert _trap(exports.spin).code is TrapCode.INTERRUPT


# --- serialized modules ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def serialized():
    return Module('(module (func (export "f") (result i32) i32.const 1))').serialize()


@pytest.mark.parametrize("cut", [0, 1, 16, 48, 100, -100, -1])
def test_deserialize_truncated_is_wasm_error(serialized, cut):
    with pytest.raises(WasmError):
        Module.deserialize(serialized[:cut])


@pytest.mark.parametrize("where", [0, 20, 60, 500, -50, -1])
def test_deserialize_corrupted_is_wasm_error(serialized, where):
    data = bytearray(serialized)
    data[where] ^= 0xFF
    with pytest.raises(WasmError):
        Module.deserialize(bytes(data))


def test_deserialize_other_data_is_wasm_error(serialized):
    with pytest.raises(WasmError):
        Module.deserialize(wasmpy.wat2wasm("(module)"))
    with pytest.raises(WasmError):
        Module.deserialize(serialized + b"extra")
    with pytest.raises(WasmError):
        Module.deserialize(serialized, Engine(consume_fuel=True))  # incompatible engine settings


# --- argument errors -----------------------------------------------------------------------------------

def test_argument_error_kinds(store):
    exports = Instance(Module('(module (func (export "f") (param i32 f64 externref funcref)))'),
                       store=store).exports
    exports.f(1, 1.0, object(), None)
    with pytest.raises(OverflowError):
        exports.f(2**32, 1.0, None, None)
    with pytest.raises(TypeError):
        exports.f(1.0, 1.0, None, None)
    with pytest.raises(TypeError):
        exports.f(1, "1.0", None, None)
    with pytest.raises(TypeError):
        exports.f(1, 1.0, None, 5)
    with pytest.raises(TypeError) as info:
        exports.f(1, 1.0, None)
    assert "f()" in str(info.value) and "func(i32, f64, externref, funcref)" in str(info.value)


def test_funcref_from_another_store_is_rejected(store):
    exports = Instance(Module('(module (func (export "f") (param funcref)))'), store=store).exports
    foreign = wasmpy.Func(Store(), lambda: None, wasmpy.FuncType())
    with pytest.raises((WasmError, TypeError)):
        exports.f(foreign)


def test_trap_without_code():
    trap = Trap("made by hand")
    assert trap.code is None
    assert trap.frames == []
    assert str(trap) == "made by hand"
    assert isinstance(trap, WasmError)


def test_import_annotated_with_an_unknown_type_is_link_error(store):
    def callback(x: "i33") -> "i32":
        return x

    with pytest.raises(LinkError) as info:
        Instance(Module(CALLBACK_WAT), {"env": {"callback": callback}}, store)
    assert "env.callback" in str(info.value)


# --- wasm exceptions ------------------------------------------------------------------------------------

EXCEPTIONS_WAT = """
(module
  (import "env" "host" (func $host (param i32)))
  (tag $e (export "e") (param i32 f64))
  (tag $wide (export "wide") (param i64 f32 externref))
  (func (export "throw") (param i32) local.get 0 f64.const 2.5 throw $e)
  (func (export "throw_wide") (param i64 externref) local.get 0 f32.const 0.5 local.get 1 throw $wide)
  (func (export "trap") unreachable)
  (func (export "catch_host") (param i32) (result i32 f64)
    (block $caught (result i32 f64)
      (try_table (catch $e $caught) (call $host (local.get 0)))
      (return (i32.const -1) (f64.const 0)))))
"""


@pytest.fixture
def thrower(store):
    """An instance whose host function does what the test puts in ``actions[argument]``."""
    actions = {}

    def host(argument):
        action = actions.get(argument)
        if action is not None:
            action()

    instance = Instance(Module(EXCEPTIONS_WAT), {"env": {"host": host}}, store)
    instance.actions = actions
    return instance


@pytest.mark.parametrize("path", ["fast", "slow"])
def test_an_uncaught_wasm_exception_carries_its_tag_and_payload(thrower, path):
    exports = thrower.exports
    with pytest.raises(WasmException) as info:
        exports.throw(7) if path == "fast" else exports.throw.call_vals(7)
    assert info.value.tag == exports.e
    assert info.value.payload == (7, 2.5)
    assert info.value.code is None and info.value.frames
    assert str(info.value).startswith("wasm exception: tag tag(i32, f64), payload (7, 2.5)")


def test_exception_payloads_of_every_kind(thrower):
    marker = object()
    with pytest.raises(WasmException) as info:
        thrower.exports.throw_wide(-2**63, marker)
    assert info.value.tag == thrower.exports.wide
    assert info.value.payload[:2] == (-2**63, 0.5) and info.value.payload[2] is marker


def test_the_store_works_after_an_uncaught_exception(thrower):
    with pytest.raises(WasmException):
        thrower.exports.throw(1)
    with pytest.raises(Trap) as info:
        thrower.exports.trap()
    assert type(info.value) is Trap and info.value.code is TrapCode.UNREACHABLE
    assert thrower.exports.catch_host(0) == (-1, 0.0)


def test_an_exception_thrown_by_a_start_function(store):
    module = Module('(module (tag $t (param i32)) (func $start i32.const 5 throw $t) (start $start))')
    with pytest.raises(WasmException) as info:
        Instance(module, store=store)
    assert info.value.payload == (5,)


def test_wasm_catches_an_exception_thrown_by_wasm_under_a_host_function(thrower):
    thrower.actions[1] = lambda: thrower.exports.throw(10)
    assert thrower.exports.catch_host(1) == (10, 2.5)


def test_wasm_catches_a_wasm_exception_raised_by_a_host_function(thrower):
    def throw():
        raise WasmException(thrower.exports.e, (99, 1.5))

    thrower.actions[2] = throw
    assert thrower.exports.catch_host(2) == (99, 1.5)


def test_an_uncaught_exception_raised_by_a_host_function_reaches_python(thrower):
    def throw():
        raise WasmException(thrower.exports.wide, (1, 2.0, None))  # not caught by catch_host

    thrower.actions[3] = throw
    with pytest.raises(WasmException) as info:
        thrower.exports.catch_host(3)
    assert info.value.tag == thrower.exports.wide and info.value.payload == (1, 2.0, None)


def test_a_payload_that_does_not_fit_the_tag_is_a_type_error(thrower):
    def throw():
        raise WasmException(thrower.exports.e, (99,))

    thrower.actions[4] = throw
    with pytest.raises(TypeError, match="payload"):
        thrower.exports.catch_host(4)


def test_an_exception_with_another_stores_tag_passes_through_as_a_python_exception(thrower):
    other = Instance(Module(EXCEPTIONS_WAT), {"env": {"host": lambda x: None}})
    raised = WasmException(other.exports.e, (1, 2.0))

    def throw():
        raise raised

    thrower.actions[5] = throw
    with pytest.raises(WasmException) as info:
        thrower.exports.catch_host(5)
    assert info.value is raised
