"""Engines and modules under adversity: configurations wasmtime refuses, instance pools the address
space cannot hold, fork(), threads with small stacks, and the ownership rules (issue #11).

Anything that could abort, crash or hang runs in a child interpreter (tests/childproc.py).
"""

from __future__ import annotations

import copy
import subprocess
import textwrap

import pytest

import wasmpy
from childproc import assert_clean_exit, child_json, describe, run_python
from wasmpy import Engine, Instance, Module, Store
from wasmpy._engine import _DEFAULT_ASYNC_STACK, _NEEDS

ADD_WAT = '(module (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))'


# --- configurations wasmtime refuses ------------------------------------------------------------------

def test_every_python_verdict_matches_wasmtime():
    """For many option combinations, Engine(...) raises ValueError exactly when wasmtime itself
    (``wasm_engine_new_with_config`` on the same resolved options, which aborts on a refusal)
    refuses them; and no accepted combination aborts. Each attempt runs in a forked child."""
    proc = run_python("""
        import itertools, json, os
        from wasmpy import Engine
        from wasmpy._engine import _FLAGS, _new_engine, _resolve

        def exit_status(attempt):
            pid = os.fork()
            if pid == 0:
                os.close(2)  # wasmtime's panic message: expected for the refused ones
                try:
                    attempt()
                except ValueError:
                    os._exit(10)
                os._exit(0)
            return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])

        flags = sorted(_FLAGS)
        combos = [{}] + [{flag: value} for flag in flags for value in (True, False)]
        combos += [dict(zip(pair, values)) for pair in itertools.combinations(flags, 2)
                   for values in itertools.product((True, False), repeat=2)]
        combos += [{"max_wasm_stack": size} for size in (1, 4096, (2 << 20) - 1, 2 << 20, (2 << 20) + 1, 2**40)]
        combos += [{**combo, "instance_pool": 1} for combo in combos[:2 * len(flags) + 1] + combos[-6:]]
        mismatches, refused, checked = [], 0, 0
        for options in combos:
            try:
                resolved = _resolve(options)
            except ValueError:
                continue  # wasmpy's own rule (a feature asked for without what it needs)
            by_wasmtime = exit_status(lambda: _new_engine(resolved))
            by_python = exit_status(lambda: Engine(**options))
            checked += 1
            refused += by_wasmtime != 0
            if by_python not in (0, 10) or (by_python == 10) != (by_wasmtime != 0):
                mismatches.append([options, by_python, by_wasmtime])
        print(json.dumps({"mismatches": mismatches, "refused": refused, "checked": checked}))
    """, timeout=600)
    result = child_json(proc)
    assert result["mismatches"] == []
    # (reference_types=False is refused only with concurrency_support=True, by wasmpy's _resolve first)
    assert result["checked"] > 1000 and result["refused"] >= 2  # the stacks too big


@pytest.mark.parametrize("options, reason", [
    ({"reference_types": False, "concurrency_support": True}, "reference_types"),
    ({"max_wasm_stack": (4 << 20), "async_stack_size": 2 << 20}, "async_stack_size"),
    ({"async_stack_size": 4096}, "async_stack_size"),
    ({"simd": False, "relaxed_simd": True}, "simd"),
])
def test_refused_configuration_says_why(options, reason):
    with pytest.raises(ValueError, match=reason):
        Engine(**options)


# The rule table of wasmpy/_engine.py, rule by rule: (refused, allowed) option pairs, where wasmtime
# itself must abort on the refused one and accept the allowed one (unless another rule of the table
# refuses that too). The pairs of _NEEDS are read from the table, so a new entry is checked here.
# wasmtime's words for each need that _NEEDS names:
NEED_REFUSALS = {
    "simd": "cannot disable the simd proposal but enable the relaxed simd proposal",
    "reference_types": "the component-model-async feature requires the wasm reference-types proposal",
}
# The one pair of _NEEDS that is wasmpy's rule, not wasmtime's: wasmtime 50 takes gc without
# function_references, and then validates typed function references all the same (GC builds on
# them), so function_references=False would not hold; wasmpy refuses the pair instead.
WASMPY_ONLY_NEEDS = {("gc", "function_references")}
# wasmtime refuses reference_types=False only with its component-model-async support on (wasmtime's
# default, not wasmpy's: concurrency_support), so the rules that need reference types are checked with it on.
_ASYNC_ON = {"reference_types": {"concurrency_support": True}}
ENGINE_RULES = [
    *[pytest.param({feature: True, need: False, **_ASYNC_ON.get(need, {})},
                   {feature: False, need: False, **_ASYNC_ON.get(need, {})}, NEED_REFUSALS[need],
                   id=f"{feature} needs {need}")
      for feature, needs in _NEEDS.items() for need in needs if (feature, need) not in WASMPY_ONLY_NEEDS],
    pytest.param({"reference_types": False, "concurrency_support": True},
                 {"reference_types": False, "concurrency_support": False}, NEED_REFUSALS["reference_types"],
                 id="reference_types off without concurrency_support"),
    pytest.param({"max_wasm_stack": 0}, {"max_wasm_stack": 1}, "max_wasm_stack size cannot be zero",
                 id="max_wasm_stack positive"),
    # (without async_stack_size, wasmpy raises it to max_wasm_stack: tests/test_stacks.py)
    pytest.param({"max_wasm_stack": 2 * _DEFAULT_ASYNC_STACK, "async_stack_size": _DEFAULT_ASYNC_STACK},
                 {"max_wasm_stack": 2 * _DEFAULT_ASYNC_STACK, "async_stack_size": 2 * _DEFAULT_ASYNC_STACK},
                 "max_wasm_stack size cannot exceed the async_stack_size", id="max_wasm_stack at most async_stack_size"),
    pytest.param({"async_stack_size": 4096}, {"async_stack_size": 512 * 1024},
                 "max_wasm_stack size cannot exceed the async_stack_size", id="async_stack_size at least max_wasm_stack"),
]

ENGINE_VERDICTS = """
    import json, os
    from wasmpy import Engine
    from wasmpy._engine import _FLAGS, _SIZES
    from wasmpy._ffi import ffi, lib

    def in_fork(attempt):
        # (exit status, stderr) of attempt() in a forked child: 0 if it returned, 10 for a
        # ValueError, -6 for an abort (wasmtime's panic message is on stderr).
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            os.dup2(write_end, 2)
            try:
                attempt()
            except ValueError:
                os._exit(10)
            os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end, errors="replace") as pipe:
            stderr = pipe.read()
        return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), stderr

    def wasmtime_config(options):
        # A config of exactly these options, with none of wasmpy's checks or defaults in between.
        config = lib.wasm_config_new()
        for name, value in options.items():
            (_FLAGS.get(name) or _SIZES[name])(config, value)
        return config

    def verdicts(options):
        by_wasmtime, stderr = in_fork(lambda: lib.wasm_engine_new_with_config(wasmtime_config(options)))
        by_wasmpy, _ = in_fork(lambda: Engine(**options))
        return {"wasmtime": by_wasmtime, "wasmtime_stderr": stderr[-2000:], "wasmpy": by_wasmpy}
"""


@pytest.mark.parametrize("refused, allowed, wasmtime_reason", ENGINE_RULES)
def test_each_rule_is_wasmtimes_own(refused, allowed, wasmtime_reason):
    """wasmtime aborts on the combination the rule refuses (and Engine raises ValueError there), and
    accepts the one it allows (and so does Engine); each attempt runs in a forked child."""
    proc = run_python(ENGINE_VERDICTS + f"""
    print(json.dumps({{"refused": verdicts({refused!r}), "allowed": verdicts({allowed!r})}}))
    """)
    result = child_json(proc)
    assert result["refused"]["wasmtime"] == -6, result["refused"]  # SIGABRT
    assert wasmtime_reason in result["refused"]["wasmtime_stderr"], result["refused"]
    assert result["refused"]["wasmpy"] == 10, result["refused"]
    # reference_types=False with concurrency_support=True is refused whatever else is off
    accepted = not (allowed.get("reference_types") is False and allowed.get("concurrency_support"))
    assert result["allowed"]["wasmtime"] == (0 if accepted else -6), result["allowed"]
    assert result["allowed"]["wasmpy"] == (0 if accepted else 10), result["allowed"]


@pytest.mark.parametrize("feature, need", sorted(WASMPY_ONLY_NEEDS))
def test_wasmpys_own_rules_keep_what_wasmtime_would_not(feature, need):
    """wasmtime accepts the pair, but validates what the switched-off need covers all the same; so
    Engine refuses the pair, and turning the need off turns the feature off with it."""
    typed_function_reference = wasmpy.wat2wasm("(module (type $t (func)) (func (param (ref $t))))")
    proc = run_python(ENGINE_VERDICTS + f"""
    engine = lib.wasm_engine_new_with_config(wasmtime_config({{{feature!r}: True, {need!r}: False}}))
    wasm = {typed_function_reference!r}
    error = lib.wasmtime_module_validate(engine, wasm, len(wasm))
    valid = error == ffi.NULL
    if not valid:
        lib.wasmtime_error_delete(error)
    print(json.dumps({{"verdicts": verdicts({{{feature!r}: True, {need!r}: False}}), "valid": valid}}))
    """)
    result = child_json(proc)
    assert result["verdicts"]["wasmtime"] == 0 and result["valid"] is True, result
    assert result["verdicts"]["wasmpy"] == 10, result
    assert Engine(**{need: False}).config[feature] is False
    with pytest.raises(wasmpy.CompileError):
        Module(typed_function_reference, Engine(**{need: False}))


def test_engines_are_made_without_child_processes(monkeypatch):
    """Regression: configurations that turn something off, sizes and instance pools were first
    tried in a child interpreter (slow, and wrong when the child's resources differ)."""
    def refuse(*args, **kwargs):
        raise AssertionError("Engine(...) started a child process")
    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)
    Engine(simd=False, consume_fuel=False, max_wasm_stack=1 << 20)
    Engine(instance_pool=2, gc=False)
    with pytest.raises(ValueError):
        Engine(reference_types=False, concurrency_support=True)


def test_the_largest_wasm_stack_works():
    engine = Engine(max_wasm_stack=2 << 20)
    assert Instance(Module(ADD_WAT, engine), store=Store(engine)).exports.add(1, 2) == 3


# --- instance pools and the address space --------------------------------------------------------------

def test_instance_pools_until_the_address_space_is_full():
    """Regression: the 4th Engine(instance_pool=10000) aborted the process (wasmtime: "failed to
    create memory pool mapping"). Now the one that does not fit raises WasmError, and the pools
    made before keep working."""
    proc = run_python("""
        import json
        import wasmpy
        engines, message = [], None
        for _ in range(100):
            try:
                engines.append(wasmpy.Engine(instance_pool=10000))
            except wasmpy.WasmError as error:
                message = str(error)
                break
        module = wasmpy.Module('(module (memory 1) (func (export "f") (result i32) i32.const 7))', engines[0])
        result = wasmpy.Instance(module, store=wasmpy.Store(engines[0])).exports.f()
        print(json.dumps({"made": len(engines), "message": message, "result": result}))
    """)
    result = child_json(proc)
    assert result["made"] >= 1 and result["result"] == 7
    assert "not enough address space for an instance pool of 10000 instances" in result["message"]


def test_forty_pools_of_a_thousand_never_abort():
    """Regression: the 32nd Engine(instance_pool=1000) aborted the process."""
    proc = run_python("""
        import json
        import wasmpy
        engines, errors = [], []
        for _ in range(40):
            try:
                engines.append(wasmpy.Engine(instance_pool=1000))
            except wasmpy.WasmError as error:
                errors.append(str(error))
        module = wasmpy.Module('(module (func (export "f") (result i32) i32.const 7))', engines[-1])
        result = wasmpy.Instance(module, store=wasmpy.Store(engines[-1])).exports.f()
        print(json.dumps({"made": len(engines), "errors": errors, "result": result}))
    """)
    result = child_json(proc)
    assert result["made"] >= 1 and result["result"] == 7
    assert result["made"] + len(result["errors"]) == 40
    assert all("not enough address space" in error for error in result["errors"])


def test_a_pool_beyond_any_address_space_is_a_wasm_error():
    """Regression: 2**32-1 instances overflowed wasmtime's size computation (abort)."""
    proc = run_python("""
        import wasmpy
        for count in (40000, 2**20, 2**32 - 1):
            try:
                wasmpy.Engine(instance_pool=count)
            except wasmpy.WasmError as error:
                assert "not enough address space" in str(error), error
            else:
                raise AssertionError(f"instance_pool={count} was made")
        print("done")
    """)
    assert_clean_exit(proc)
    assert proc.stdout.split() == ["done"]


def test_the_pool_estimate_covers_what_wasmtime_maps():
    """The address space reserved before making a pool is at least what wasmtime then maps (and
    not wildly more): wasmpy's copy of wasmtime's pool layout is right."""
    proc = run_python("""
        import json
        import wasmpy
        from wasmpy._engine import pool_address_space

        def mapped():
            with open("/proc/self/statm") as statm:
                return int(statm.read().split()[0]) * 4096

        before = mapped()
        engine = wasmpy.Engine(instance_pool=50)
        print(json.dumps({"grew": mapped() - before, "estimate": sum(pool_address_space(50))}))
    """)
    result = child_json(proc)
    assert 0.9 * result["estimate"] < result["grew"] <= result["estimate"], result


def test_pools_take_no_async_stacks():
    """wasmpy never runs wasm on wasmtime's fiber stacks, so pools do not reserve any: each would
    cost two memory mappings (of vm.max_map_count) per instance."""
    proc = run_python("""
        import json
        import wasmpy

        def mappings():
            with open("/proc/self/maps") as maps:
                return sum(1 for _ in maps)

        before = mappings()
        engine = wasmpy.Engine(instance_pool=1000)
        print(json.dumps({"new": mappings() - before}))
    """)
    assert child_json(proc)["new"] < 50


# --- fork -------------------------------------------------------------------------------------------

FORK_HELPERS = """
    import json, os, signal
    import wasmpy
    from wasmpy import Engine, Instance, Module, Store

    ADD = '(module (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))'
    MANY = '(module ' + ' '.join(f'(func (export "f{i}") (result i32) i32.const {i})' for i in range(40)) + ')'
    LOOP = '(module (func (export "spin") (loop $l (br $l))))'

    def in_forked_child(work, seconds=30):
        '''Runs work() in a forked child that is killed after `seconds`; returns its exit code
        (0: work returned; -14: the alarm, a hang) and what work() returned.'''
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
            signal.alarm(seconds)
            os.write(write_end, json.dumps(work()).encode())
            os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end) as pipe:
            output = pipe.read()
        status = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        return status, json.loads(output) if output else None
"""


def run_with_fork_helpers(code: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """run_python(code) after FORK_HELPERS."""
    return run_python(textwrap.dedent(FORK_HELPERS) + textwrap.dedent(code), timeout=timeout)


def test_compiling_in_a_forked_child_after_the_parent_compiled():
    """Regression: once the parent had compiled (wasmtime's parallel compiler threads started),
    a compile or a validation in a forked child waited forever for those threads."""
    proc = run_with_fork_helpers("""
        parallel = Engine(parallel_compilation=True)
        pooled = Engine(instance_pool=2)
        for engine in (Engine.default(), parallel, pooled):
            Module(MANY, engine)
            Module.validate(MANY, engine)

        def work():
            results = []
            for engine in (Engine.default(), parallel, pooled):
                Module.validate(MANY, engine)
                module = Module(MANY, engine)
                results.append(Instance(module, store=Store(engine)).exports.f7())
            fresh = Engine()
            results.append(Instance(Module(ADD, fresh), store=Store(fresh)).exports.add(2, 3))
            return {"results": results, "fresh_parallel": fresh.config.get("parallel_compilation"),
                    "grandchild": in_forked_child(lambda: Instance(Module(MANY)).exports.f9())}

        print(json.dumps(dict(zip(("status", "child"), in_forked_child(work)))))
    """)
    result = child_json(proc)
    assert result["status"] == 0, describe(proc)
    child = result["child"]
    assert child["results"] == [7, 7, 7, 5]
    assert child["fresh_parallel"] is False  # new engines there compile on the calling thread
    assert child["grandchild"] == [0, 9]


def test_too_big_for_the_pool_in_a_forked_child_is_still_a_compile_error():
    proc = run_with_fork_helpers("""
        pooled = Engine(instance_pool=2)
        Module(MANY, pooled)

        def work():
            try:
                Module("(module (table 30000 funcref))", pooled)
            except wasmpy.CompileError as error:
                return "pooling" in str(error)
            return "compiled"

        print(json.dumps(dict(zip(("status", "child"), in_forked_child(work)))))
    """)
    assert child_json(proc) == {"status": 0, "child": True}


def test_a_fork_before_any_compile_keeps_parallel_compilation():
    proc = run_with_fork_helpers("""
        def work():
            Module(MANY)
            return Engine().config.get("parallel_compilation")

        print(json.dumps(dict(zip(("status", "child"), in_forked_child(work)))))
    """)
    assert child_json(proc) == {"status": 0, "child": None}  # wasmtime's default: parallel


def test_deadlines_and_ctrl_c_work_in_a_forked_child():
    """Regression: the epoch ticker thread was not restarted in a forked child, so neither a
    deadline nor Ctrl-C interrupted wasm there."""
    proc = run_with_fork_helpers("""
        loop = Module(LOOP)  # compiled here, so that the child only instantiates and runs
        Instance(loop)  # the ticker runs in the parent

        def work():
            import threading
            store = Store()
            spin = Instance(loop, store=store).exports.spin
            outcomes = []
            store.set_deadline(0.2)
            try:
                spin()
            except wasmpy.Trap as trap:
                outcomes.append(trap.code.name)
            store.set_deadline(None)
            threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()
            try:
                spin()
            except KeyboardInterrupt:
                outcomes.append("KeyboardInterrupt")
            return outcomes

        print(json.dumps(dict(zip(("status", "child"), in_forked_child(work, seconds=20)))))
    """)
    assert child_json(proc) == {"status": 0, "child": ["INTERRUPT", "KeyboardInterrupt"]}


def test_multiprocessing_fork_workers_compile_and_keep_deadlines():
    proc = run_with_fork_helpers("""
        import multiprocessing

        def task(n):
            engine = Engine.default()
            total = Instance(Module(ADD, engine)).exports.add(n, 1)
            store = Store(engine)
            spin = Instance(Module(LOOP), store=store).exports.spin
            store.set_deadline(0.1)
            try:
                spin()
            except wasmpy.Trap as trap:
                return [total, trap.code.name]
            return [total, "returned"]

        if __name__ == "__main__":
            Module(MANY)  # the parent's compiler threads start
            with multiprocessing.get_context("fork").Pool(2) as pool:
                results = pool.map_async(task, range(4)).get(timeout=60)
            print(json.dumps({"results": results}))
    """)
    assert child_json(proc)["results"] == [[n + 1, "INTERRUPT"] for n in range(4)]


# --- threads with small stacks ----------------------------------------------------------------------

def test_compiling_in_a_thread_with_a_small_stack_is_a_recursion_error():
    """Regression: compiling in a thread with a 32 KiB stack segfaulted (calls and instantiation
    checked the native stack; compiling, validating and loading did not)."""
    proc = run_python("""
        import json, threading
        import wasmpy
        from wasmpy import Engine, Module

        ADD = '(module (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))'
        serial_engine = Engine(parallel_compilation=False)
        wasm = wasmpy.wat2wasm(ADD)
        serialized = Module(wasm).serialize()
        outcomes = {}

        def attempt(name, work):
            try:
                work()
                outcomes[name] = "ran"
            except RecursionError as error:
                outcomes[name] = "RecursionError: " + str(error)

        def small_stack_work():
            attempt("compile", lambda: Module(wasm))
            attempt("compile serially", lambda: Module(wasm, serial_engine))
            attempt("validate", lambda: Module.validate(wasm))
            attempt("deserialize", lambda: Module.deserialize(serialized))

        threading.stack_size(32768)
        thread = threading.Thread(target=small_stack_work)
        thread.start()
        thread.join()
        threading.stack_size(1 << 20)
        thread = threading.Thread(target=lambda: attempt("compile with 1 MiB", lambda: Module(wasm)))
        thread.start()
        thread.join()
        print(json.dumps(outcomes))
    """)
    outcomes = child_json(proc)
    assert outcomes.pop("compile with 1 MiB") == "ran"
    for name, outcome in outcomes.items():
        assert outcome.startswith("RecursionError: not enough native stack"), (name, outcome)
        assert "threading.stack_size" in outcome


# --- ownership -----------------------------------------------------------------------------------------

def test_engines_and_modules_copy_to_themselves():
    engine = Engine(consume_fuel=True)
    module = Module(ADD_WAT, engine)
    assert copy.copy(engine) is engine and copy.deepcopy(engine) is engine
    assert copy.copy(module) is module and copy.deepcopy(module) is module
    holder = copy.deepcopy({"engine": engine, "module": module})
    assert holder["engine"] is engine and holder["module"] is module


def test_engines_and_modules_refuse_a_second_init():
    engine = Engine(consume_fuel=True)
    with pytest.raises(TypeError, match="cannot run again"):
        engine.__init__()
    assert engine.config["consume_fuel"] is True
    module = Module(ADD_WAT, engine)
    with pytest.raises(TypeError, match="cannot run again"):
        module.__init__("(module)")
    store = Store(engine, fuel=1000)
    assert Instance(module, store=store).exports.add(2, 3) == 5
    loaded = Module.deserialize(module.serialize(), engine)
    with pytest.raises(TypeError, match="cannot run again"):
        loaded.__init__(ADD_WAT, engine)


def test_engine_config_is_read_only():
    engine = Engine(consume_fuel=True)
    with pytest.raises(TypeError):
        engine.config["consume_fuel"] = False  # type: ignore[index]
    assert engine.config["consume_fuel"] is True


def test_a_module_whose_compile_failed_can_be_made_again():
    """A failed __init__ leaves nothing behind, so the object is not 'already made'."""
    module = Module.__new__(Module)
    with pytest.raises(wasmpy.CompileError):
        module.__init__("(module (func (result i32)))")
    module.__init__(ADD_WAT)
    assert Instance(module).exports.add(1, 1) == 2
