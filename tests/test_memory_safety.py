"""Regression tests for the crashes, use-after-frees, hangs and leaks of the memory-safety review
(issue 11): host results of the wrong GC type, references read after Python code ran,
re-initialised and copied handles, store lock waits and deadlocks, signal handlers calling
into their store, stores kept alive by their own externrefs, Python code in wasmtime's GC
sweep, and store locks across fork(). Whatever may crash or hang runs in a child interpreter."""

import copy
import gc
import pickle
import textwrap
import weakref

import pytest

import wasmpy
from wasmpy import AnyRef, Engine, Func, FuncType, Global, GlobalType, Instance, Memory, MemoryType, Module, Store
from wasmpy import StoreLimits, Table, TableType, Tag, TagType, ValType, WasmError

from childproc import assert_clean_exit, child_json, run_python

GC_ENGINE = dict(gc=True, function_references=True)

HOST_GC_RESULTS = """
(module
  (type $s (struct (field i32)))
  (type $a (array i32))
  (import "env" "get_array" (func $get_array (result arrayref)))
  (import "env" "get_struct" (func $get_struct (result structref)))
  (import "env" "get_i31" (func $get_i31 (result i31ref)))
  (import "env" "get_eq" (func $get_eq (result eqref)))
  (func (export "make_struct") (result anyref) (struct.new $s (i32.const 7)))
  (func (export "make_array") (result anyref) (array.new $a (i32.const 3) (i32.const 5)))
  (func (export "array_len") (result i32) (array.len (call $get_array)))
  (func (export "struct_field") (result i32) (struct.get $s 0 (ref.cast (ref $s) (call $get_struct))))
  (func (export "i31_value") (result i32) (i31.get_s (call $get_i31)))
  (func (export "eq_is_null") (result i32) (ref.is_null (call $get_eq))))
"""


# --- 1. host functions' GC-reference results are type-checked

def _gc_results_instance(answers):
    store = Store(Engine(**GC_ENGINE))
    module = Module(HOST_GC_RESULTS, store.engine)
    env = {name: (lambda name=name: answers[name]()) for name in ("get_array", "get_struct", "get_i31", "get_eq")}
    return store, Instance(module, {"env": env}, store).exports


def test_host_results_of_the_declared_gc_type_reach_wasm():
    answers = {}
    store, exports = _gc_results_instance(answers)
    answers["get_array"] = exports.make_array
    answers["get_struct"] = exports.make_struct
    answers["get_i31"] = lambda: AnyRef.from_i31(store, -4)
    answers["get_eq"] = exports.make_struct
    assert exports.array_len() == 5
    assert exports.struct_field() == 7
    assert exports.i31_value() == -4
    assert exports.eq_is_null() == 0


@pytest.mark.parametrize("function, wrong", [
    ("array_len", "struct"), ("array_len", "i31"), ("array_len", "object"),
    ("struct_field", "array"), ("struct_field", "i31"),
    ("i31_value", "struct"), ("i31_value", "object"),
    ("eq_is_null", "object"),
])
def test_host_results_of_another_gc_type_are_a_type_error_not_a_crash(function, wrong):
    # wasm would read the struct's field as the array's length, or dereference the i31's bits.
    proc = run_python(f"""
        import json
        from test_memory_safety import _gc_results_instance
        from wasmpy import AnyRef
        answers = {{}}
        store, exports = _gc_results_instance(answers)
        wrong = {{"struct": exports.make_struct, "array": exports.make_array,
                  "i31": lambda: AnyRef.from_i31(store, 12345), "object": lambda: object()}}[{wrong!r}]
        for name in ("get_array", "get_struct", "get_i31", "get_eq"):
            answers[name] = wrong
        try:
            exports.{function}()
        except TypeError as error:
            print(json.dumps({{"raised": "TypeError", "message": str(error)}}))
        """, timeout=120)
    outcome = child_json(proc)
    assert outcome["raised"] == "TypeError"
    assert "expected" in outcome["message"]


# --- 2. references are rooted before any Python code can run

REFERENCE_ROUND_TRIPS = """
(module
  (import "env" "echo" (func $echo (param externref) (result externref)))
  (import "env" "echo_any" (func $echo_any (param anyref) (result anyref)))
  (func (export "identity") (param externref) (result externref) local.get 0)
  (func (export "through_host") (param externref) (result externref) (call $echo (local.get 0)))
  (func (export "any_through_host") (param anyref) (result anyref) (call $echo_any (local.get 0)))
  (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1))))
"""


def test_references_survive_a_signal_handler_that_collects_the_store():
    # The handler runs between wasm returning a reference and Python reading it, and while a host
    # function reads its reference parameters: the references must be rooted then.
    proc = run_python(f"""
        import json, signal, time
        import wasmpy
        store = wasmpy.Store(wasmpy.Engine(gc=True, function_references=True))
        seen = []
        def echo(value):
            seen.append(value)
            return value
        module = wasmpy.Module({REFERENCE_ROUND_TRIPS!r}, store.engine)
        exports = wasmpy.Instance(module, {{"env": {{"echo": echo, "echo_any": echo}}}}, store).exports
        def collect(signum, frame):
            store.gc()
            assert exports.add(1, 2) == 3
        signal.signal(signal.SIGALRM, collect)
        signal.setitimer(signal.ITIMER_REAL, 50e-6, 50e-6)
        calls = 0
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            payload = [calls]
            for function in (exports.identity, exports.through_host, exports.any_through_host):
                result = function(payload)
                assert result is payload, (function, result, payload)
                calls += 1
        signal.setitimer(signal.ITIMER_REAL, 0)
        store.gc()
        print(json.dumps({{"calls": calls}}))
        """, timeout=120)
    assert child_json(proc)["calls"] > 100


# --- 3. objects owning C handles: one __init__, no copies

def _objects(store):
    engine = store.engine
    module = Module('(module (memory (export "m") 1) (func (export "f")))', engine)
    instance = Instance(module, {}, store)
    return {
        "store": store,
        "instance": instance,
        "memory": instance.exports.m,
        "func": instance.exports.f,
        "host func": Func(store, lambda: None, FuncType([], [])),
        "global": Global(store, GlobalType(ValType.i32, True), 1),
        "table": Table(store, TableType(ValType.funcref, 1)),
        "tag": Tag(store, TagType([ValType.i32])),
    }


@pytest.mark.parametrize("name", ["store", "instance", "memory", "func", "host func", "global", "table", "tag"])
def test_objects_owning_wasmtime_state_refuse_copies_and_pickling(name):
    obj = _objects(Store())[name]
    # __reduce__ called by hand too: object's gives the state, handle included, for a copy to free twice.
    for duplicate in (copy.copy, copy.deepcopy, pickle.dumps, lambda obj: obj.__reduce__()):
        with pytest.raises(TypeError, match="cannot be"):
            duplicate(obj)


def test_a_second_init_is_refused_everywhere():
    store = Store()
    objects = _objects(store)
    with pytest.raises(TypeError, match="cannot run again"):
        Store.__init__(store)
    with pytest.raises(TypeError, match="cannot run again"):
        Memory.__init__(objects["memory"], store, MemoryType(1))
    with pytest.raises(TypeError, match="cannot run again"):
        Func.__init__(objects["func"], store, lambda: None, FuncType([], []))
    with pytest.raises(TypeError, match="cannot run again"):
        Global.__init__(objects["global"], store, GlobalType(ValType.i32, True), 2)
    with pytest.raises(TypeError, match="cannot run again"):
        Instance.__init__(objects["instance"], Module("(module)"), {}, store)
    with pytest.raises(TypeError, match="already bound"):
        objects["func"]._bind_native(store._handle, 0, b"", b"", None, None)
    with pytest.raises(TypeError, match="already bound"):
        objects["memory"]._bind_memory(store._handle, 0, False)
    assert objects["global"].value == 1


def test_reinit_attacks_from_the_review_do_not_crash():
    proc = run_python("""
        import copy, gc, wasmpy
        from wasmpy import FuncType, Memory, MemoryType, Store, ValType
        store = Store()
        memory = Memory(store, MemoryType(1))
        view = memoryview(memory)
        try:
            Memory.__init__(memory, Store(), MemoryType(1))
        except TypeError:
            pass
        del store
        gc.collect()
        view[0:4] = b"abcd"       # the memory and its store are alive as long as the view
        assert bytes(view[0:4]) == b"abcd"
        view.release()

        store = Store()
        func = wasmpy.Func(store, lambda: 5, FuncType([], ["i32"]))
        try:
            Store.__init__(store)
        except TypeError:
            pass
        assert func() == 5

        # A host function re-initialising the Func that runs it, with a 1000-result type.
        module = wasmpy.Module('(module (import "env" "f" (func $f)) (func (export "run") call $f))')
        holder = {}
        def reenter():
            wasmpy.Func.__init__(holder["run"], store, lambda: None, FuncType([], [ValType.i32] * 1000))
        exports = wasmpy.Instance(module, {"env": {"f": reenter}}, store).exports
        holder["run"] = exports.run
        try:
            exports.run()
        except TypeError as error:
            assert "cannot run again" in str(error)
        else:
            raise AssertionError("Func.__init__ ran twice")
        print("ok")
        """)
    assert_clean_exit(proc)
    assert "ok" in proc.stdout


def test_anyref_copies_are_independent_references():
    store = Store(Engine(**GC_ENGINE))
    ref = AnyRef.from_i31(store, 9)
    duplicate = copy.copy(ref)
    deep = copy.deepcopy(ref)
    del ref
    gc.collect()
    store.gc()
    assert duplicate.i31 == 9 and deep.i31 == 9
    with pytest.raises(TypeError, match="pickled"):
        pickle.dumps(duplicate)


# --- 7. lock waits: interruptible, and deadlocks are refused

HOST_CALL = """
(module
  (import "env" "host" (func $host))
  (memory (export "memory") 1)
  (func (export "run") call $host)
  (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1))))
"""


def held_by_another_thread(seconds, code):
    """A child's code that first makes another thread hold ``store``'s lock (in a host function) for
    ``seconds``, then runs ``code``."""
    return HELD_BY_ANOTHER_THREAD.format(seconds=seconds) + textwrap.dedent(code)


HELD_BY_ANOTHER_THREAD = """
import json, os, threading, time
import wasmpy
store = wasmpy.Store()
inside = threading.Event()
def host():
    inside.set()
    time.sleep({seconds})
module = wasmpy.Module(""" + repr(HOST_CALL) + """)
exports = wasmpy.Instance(module, {{"env": {{"host": host}}}}, store).exports
threading.Thread(target=exports.run, daemon=True).start()
inside.wait()
"""


def test_waiting_for_a_store_lock_can_be_interrupted_by_ctrl_c():
    proc = run_python(held_by_another_thread(30, """
        import signal
        threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
        started = time.monotonic()
        try:
            exports.add(1, 2)  # waits for the lock
        except KeyboardInterrupt:
            print(json.dumps({"interrupted_after": time.monotonic() - started}))
        os._exit(0)
        """), timeout=60)
    assert child_json(proc)["interrupted_after"] < 20


def test_two_stores_calling_into_each_other_from_two_threads_do_not_deadlock():
    proc = run_python(f"""
        import json, threading
        import wasmpy
        barrier = threading.Barrier(2, timeout=10)
        stores = [wasmpy.Store(), wasmpy.Store()]
        exports = []
        outcomes = {{}}
        def host_of(mine):
            def host():
                barrier.wait()  # both threads hold their own store now
                return exports[1 - mine]["memory"].read(0, 4)
            return host
        module = wasmpy.Module({HOST_CALL!r})
        for index, store in enumerate(stores):
            exports.append(wasmpy.Instance(module, {{"env": {{"host": host_of(index)}}}}, store).exports)
        def run(index):
            try:
                exports[index].run()
                outcomes[index] = "ok"
            except wasmpy.WasmError as error:
                outcomes[index] = "deadlock" if "deadlock" in str(error) else str(error)
        threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for thread in threads: thread.start()
        for thread in threads: thread.join(30)
        print(json.dumps({{"alive": [t.is_alive() for t in threads], "outcomes": sorted(outcomes.values())}}))
        import os; os._exit(0)
        """, timeout=60)
    outcome = child_json(proc)
    assert outcome["alive"] == [False, False]
    assert "deadlock" in outcome["outcomes"], outcome


WASI_WRITER = """
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "hello\\n")
  (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
  (func (export "say") (result i32)
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 6))
    (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
"""


def test_wasi_output_streams_may_use_the_store_that_writes():
    # The stream used to run on wasmtime's thread while wasm waited inside fd_write with the
    # store locked: touching the store there deadlocked.
    proc = run_python(f"""
        import json, threading
        import wasmpy
        seen = []
        def stdout(data):
            seen.append([data.decode(), exports.memory.read(16, 5).decode(), exports.add(1, 2),
                         threading.current_thread() is threading.main_thread()])
            try:
                store.close()
            except wasmpy.WasmError as error:
                seen.append("close refused" if "running" in str(error) else str(error))
        store = wasmpy.Store(wasi=wasmpy.WasiConfig(stdout=stdout))
        exports = wasmpy.Instance(wasmpy.Module({WASI_WRITER!r}), store=store).exports
        errno = exports.say()
        print(json.dumps({{"errno": errno, "seen": seen}}))
        """, timeout=60)
    assert child_json(proc) == {"errno": 0, "seen": [["hello\n", "hello", 3, True], "close refused"]}


def test_an_exception_of_a_wasi_output_stream_reaches_the_caller():
    def stdout(data):
        raise ValueError("the stream is full")

    store = Store(wasi=wasmpy.WasiConfig(stdout=stdout))
    exports = Instance(Module(WASI_WRITER), store=store).exports
    with pytest.raises(ValueError, match="the stream is full"):
        exports.say()
    assert exports.add(2, 2) == 4


# --- 8. signal handlers calling into the store they interrupted

LOOP = """
(module
  (func (export "spin") (param i32) (result i32) (local i32)
    (loop $again
      (local.set 1 (i32.add (local.get 1) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get 1) (local.get 0))))
    (local.get 1))
  (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1))))
"""


def test_a_signal_handler_may_call_the_store_it_interrupted():
    proc = run_python(f"""
        import json, signal
        import wasmpy
        store = wasmpy.Store()
        exports = wasmpy.Instance(wasmpy.Module({LOOP!r}), {{}}, store).exports
        answers = []
        def handler(signum, frame):
            answers.append(exports.add(1, 2))
        signal.signal(signal.SIGALRM, handler)
        signal.setitimer(signal.ITIMER_REAL, 0.02, 0.02)
        total = 0
        while len(answers) < 20:
            total += exports.spin(50_000_000)
        signal.setitimer(signal.ITIMER_REAL, 0)
        print(json.dumps({{"answers": sorted(set(answers)), "calls": len(answers)}}))
        """, timeout=120)
    assert child_json(proc)["answers"] == [3]


def test_ctrl_c_and_deadlines_keep_working_after_a_signal_handler_raised():
    # The handler's exception ends the call; the store's epoch deadline must be armed again.
    proc = run_python(f"""
        import json, os, signal, threading
        import wasmpy
        store = wasmpy.Store()
        exports = wasmpy.Instance(wasmpy.Module({LOOP!r}), {{}}, store).exports
        interrupted = 0
        for _ in range(3):
            threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()
            try:
                exports.spin(-1)
            except KeyboardInterrupt:
                interrupted += 1
        try:
            with store.deadline(0.2):
                exports.spin(-1)
        except wasmpy.Trap as trap:
            print(json.dumps({{"interrupted": interrupted, "deadline": trap.code.name}}))
        """, timeout=60)
    assert child_json(proc) == {"interrupted": 3, "deadline": "INTERRUPT"}


# --- 9. stores are freed: cycles through externrefs, and the hidden helper instance

def test_a_store_referenced_from_its_own_externref_is_collected():
    engine = Engine()
    module = Module('(module (global (export "g") (mut externref) (ref.null extern)))', engine)

    class Holder:
        pass

    alive = []
    for _ in range(200):
        store = Store(engine)
        holder = Holder()
        holder.store = store
        Instance(module, {}, store).exports.g.value = holder
        alive.append(weakref.ref(store))
        del store, holder
    gc.collect()
    assert sum(ref() is not None for ref in alive) == 0


def test_store_cycles_through_externrefs_do_not_exhaust_memory():
    proc = run_python("""
        import gc, json
        import wasmpy
        def vm_size():
            with open("/proc/self/status") as status:
                return next(int(line.split()[1]) for line in status if line.startswith("VmSize")) * 1024
        engine = wasmpy.Engine()
        module = wasmpy.Module('(module (memory 1) (table (export "t") 4 externref))', engine)
        sizes = []
        for round in range(6):
            for _ in range(1000):
                store = wasmpy.Store(engine)
                exports = wasmpy.Instance(module, {}, store).exports
                exports.t[0] = [store, exports]  # the store, through its own table
            gc.collect()
            sizes.append(vm_size())
        print(json.dumps({"sizes": sizes}))
        """, timeout=240)
    sizes = child_json(proc)["sizes"]
    # Each leaked store would keep gigabytes of address space reserved for its memory.
    assert sizes[-1] - sizes[1] < 2 << 30, sizes


def test_a_store_with_host_functions_is_freed_without_the_cyclic_gc():
    # Each store holds gigabytes of address space, which the cyclic GC does not see.
    module = Module('(module (import "env" "f" (func $f)) (func (export "run") call $f))')
    stores = []
    gc.disable()
    try:
        for _ in range(20):
            store = Store()
            exports = Instance(module, {"env": {"f": lambda: None}}, store).exports
            exports.run()
            stores.append(weakref.ref(store))
            del store, exports
        assert [ref() for ref in stores] == [None] * 20
    finally:
        gc.enable()


def test_anyref_calls_work_under_an_instance_limit_of_one():
    engine = Engine(**GC_ENGINE)
    store = Store(engine, limits=StoreLimits(instances=1))
    module = Module('(module (func (export "f") (param anyref) (result anyref) local.get 0))', engine)
    exports = Instance(module, {}, store).exports
    payload = object()
    assert exports.f(payload) is payload
    with pytest.raises(WasmError):
        Instance(module, {}, store)  # the user's limit still holds


# --- 10. no Python code inside wasmtime's GC sweep

def test_externref_finalizers_that_use_the_store_run_after_the_sweep():
    # Each __del__ writes to the store that is collecting it, calls it, allocates in its GC heap
    # and collects it again: inside the sweep that lost half the finalizations.
    proc = run_python("""
        import gc, json
        import wasmpy
        store = wasmpy.Store()
        module = wasmpy.Module('''(module
          (memory (export "memory") 1)
          (global $g (mut externref) (ref.null extern))
          (table $t 8 externref)
          (func (export "set") (param externref) (global.set $g (local.get 0)))
          (func (export "put") (param i32 externref) (table.set $t (local.get 0) (local.get 1)))
          (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1))))''')
        exports = wasmpy.Instance(module, {}, store).exports
        finalized = []
        class Payload:
            def __del__(self):
                exports.memory.write(0, b"done")
                exports.put(len(finalized) % 8, object())
                finalized.append(exports.add(2, 3))
                store.gc()
        for i in range(300):
            exports.put(i % 8, Payload())
            exports.set(Payload())
            exports.set(None)
            if i % 3 == 0:
                store.gc()
        for slot in range(8):
            exports.put(slot, None)
        store.gc()
        gc.collect()
        print(json.dumps({"finalized": len(finalized), "answers": sorted(set(finalized)),
                          "memory": exports.memory.read(0, 4).decode()}))
        """, timeout=120)
    outcome = child_json(proc)
    assert outcome == {"finalized": 600, "answers": [5], "memory": "done"}


# --- 6. store locks across fork()

def test_a_store_held_by_another_thread_at_fork_is_unusable_in_the_child_not_a_hang():
    proc = run_python(held_by_another_thread(5, """
        pid = os.fork()
        if pid == 0:
            try:
                exports.add(1, 2)
                outcome = "called"
            except wasmpy.WasmError as error:
                outcome = "refused" if "forked" in str(error) else str(error)
            other = wasmpy.Instance(module, {"env": {"host": lambda: None}}, wasmpy.Store()).exports
            print(json.dumps({"outcome": outcome, "other store": other.add(2, 2)}), flush=True)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        os._exit(os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status >> 8)
        """), timeout=60)
    assert child_json(proc) == {"outcome": "refused", "other store": 4}


# --- found by the differential test: a wrongly typed reference stored in a global or table

TYPED_SLOTS = """
(module
  (type $unary (func (param i32)))
  (global (export "g") (mut (ref null $unary)) (ref.null $unary))
  (table (export "t") 2 (ref null $unary))
  (func (export "nullary")))
"""


def test_a_wrongly_typed_reference_in_a_global_or_table_is_a_type_error():
    engine = Engine(**GC_ENGINE)
    store = Store(engine)
    exports = Instance(Module(TYPED_SLOTS, engine), {}, store).exports
    with pytest.raises(TypeError, match="type mismatch"):
        exports.g.value = exports.nullary
    with pytest.raises(TypeError, match="type mismatch"):
        exports.t[0] = exports.nullary
    assert exports.g.value is None and exports.t[0] is None


def test_a_funcs_type_and_store_cannot_be_replaced():
    """Func.type was a writable slot, and the Python path of a call sizes the buffer of wasmtime's
    unchecked call from it: a function of sixteen results given a type of two parameters and none
    was called with f(1, 2) (its arity unlike the bound one's, so Python's path ran) and wasmtime
    wrote its results past the end of the buffer (heap corruption, then a crash)."""
    proc = run_python("""
        import json, wasmpy
        from wasmpy import FuncType, ValType
        results = " ".join(["i64"] * 16)
        body = " ".join(f"i64.const {i}" for i in range(16))
        f = wasmpy.Instance(wasmpy.Module(f'(module (func (export "f") (param i32) (result {results}) {body}))')).exports.f
        refused = []
        try:
            f.type = FuncType([ValType.i32, ValType.i32], [])
        except AttributeError:
            refused.append("type")
        try:
            f(1, 2)
            arity = None
        except TypeError as error:
            arity = "takes 1 argument" in str(error)
        other = wasmpy.Instance(wasmpy.Module('(module (func (export "g")))')).exports.g
        for name in ("_store", "_calls"):
            try:
                setattr(other, name, None)
            except AttributeError:
                refused.append(name)
        print(json.dumps({"refused": refused, "arity": arity, "results": len(f(1)), "type": str(f.type)}))
        """, timeout=120)
    result = child_json(proc)
    assert result["refused"] == ["type", "_store", "_calls"] and result["arity"] is True, result
    assert result["results"] == 16 and result["type"].startswith("func(i32) -> (i64"), result
