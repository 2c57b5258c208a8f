"""The store lock without an OS lock (threads waiting are handed it over, not starved), calls
through vectorcall, the epoch ticker that sleeps while no store is in use, and the GIL kept by
calls until their first tick (issue 12)."""

import textwrap
import threading

import pytest

import wasmpy

from childproc import child_json, run_python

ADD = '(module (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1))))'
SPIN = '(module (func (export "spin") (loop $again (br $again))))'


def test_the_epoch_ticker_sleeps_while_no_store_is_in_use_and_wakes_for_wasm():
    proc = run_python(f"""
        import json, time
        import wasmpy
        from wasmpy._engine import _ticker
        store = wasmpy.Store()
        add = wasmpy.Instance(wasmpy.Module({ADD!r}), {{}}, store).exports.add
        add(1, 2)
        time.sleep(0.1)  # a tick in progress ends
        before = _ticker.ticks
        time.sleep(1.0)
        idle = _ticker.ticks - before
        spin = wasmpy.Instance(wasmpy.Module({SPIN!r}), {{}}, store).exports.spin
        started = time.monotonic()
        try:
            with store.deadline(0.2):
                spin()
        except wasmpy.Trap as trap:
            print(json.dumps({{"idle ticks": idle, "trap": trap.code.name,
                               "after": time.monotonic() - started, "ticking": _ticker.ticks > before}}))
        """, timeout=60)
    outcome = child_json(proc)
    assert outcome["idle ticks"] == 0
    assert outcome["trap"] == "INTERRUPT" and outcome["ticking"]
    assert 0.15 < outcome["after"] < 5


def test_ctrl_c_stops_wasm_after_the_ticker_slept():
    proc = run_python(f"""
        import json, os, signal, threading, time
        import wasmpy
        spin = wasmpy.Instance(wasmpy.Module({SPIN!r})).exports.spin
        time.sleep(0.5)
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()
        started = time.monotonic()
        try:
            spin()
        except KeyboardInterrupt:
            print(json.dumps({{"after": time.monotonic() - started}}))
        """, timeout=60)
    assert child_json(proc)["after"] < 5


def test_a_thread_calling_in_a_loop_does_not_starve_another_of_the_store():
    # Between two calls the looping thread holds the GIL and the store is free for an instant:
    # the lock is handed over to the waiting thread rather than taken again.
    store = wasmpy.Store()
    add = wasmpy.Instance(wasmpy.Module(ADD), {}, store).exports.add
    stop = threading.Event()
    loops = []

    def hog():
        count = 0
        while not stop.is_set():
            add(count, 1)
            count += 1
        loops.append(count)

    thread = threading.Thread(target=hog)
    thread.start()
    try:
        assert [add(i, i) for i in range(2000)] == [2 * i for i in range(2000)]
    finally:
        stop.set()
        thread.join(60)
    assert not thread.is_alive() and loops[0] > 0


def test_two_threads_sharing_a_store_get_every_answer_right():
    store = wasmpy.Store()
    add = wasmpy.Instance(wasmpy.Module(ADD), {}, store).exports.add
    answers = {}

    def work(base):
        answers[base] = [add(base, i) for i in range(5000)]

    threads = [threading.Thread(target=work, args=(base,)) for base in (0, 10**6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert answers == {base: [base + i for i in range(5000)] for base in (0, 10**6)}


def test_funcs_are_called_through_vectorcall_and_keyword_arguments_are_refused():
    add = wasmpy.Instance(wasmpy.Module(ADD)).exports.add
    assert type(add).__flags__ & (1 << 11)  # Py_TPFLAGS_HAVE_VECTORCALL
    assert add(2, 3) == 5
    with pytest.raises(TypeError):
        add(2, b=3)
    with pytest.raises(TypeError, match="takes 2 arguments"):
        add(2)


# --- the GIL: kept by a call until its first tick, released at once where wasm may block

# In a child: `heartbeat` runs Python in a second thread and reports the longest time it could
# not (the GIL held elsewhere); `run` is what the main thread does meanwhile.
HEARTBEAT = """
    import json, threading, time
    import wasmpy

    def heartbeat(run):
        stop, gaps = threading.Event(), []
        def beat():
            last = time.monotonic()
            while not stop.is_set():
                time.sleep(0.002)
                now = time.monotonic()
                gaps.append(now - last)
                last = now
        thread = threading.Thread(target=beat)
        thread.start()
        time.sleep(0.05)
        started = time.monotonic()
        try:
            outcome = run()
        finally:
            stop.set()
            thread.join()
        return {"outcome": outcome, "took": time.monotonic() - started, "longest_gap": max(gaps)}
"""

def with_heartbeat(*pieces):
    """Child code: HEARTBEAT, then the pieces (each dedented on its own)."""
    return "".join(textwrap.dedent(piece) for piece in (HEARTBEAT, *pieces))


COUNT = """(module (func (export "count") (param i64) (result i64) (local i64)
    (loop $l (br_if $l (i64.lt_u (local.tee 1 (i64.add (local.get 1) (i64.const 1))) (local.get 0))))
    (local.get 1)))"""


def _spin_until_deadline(seconds):
    return f"""
        store = wasmpy.Store()
        spin = wasmpy.Instance(wasmpy.Module({SPIN!r}), {{}}, store).exports.spin
        def run():
            try:
                with store.deadline({seconds}):
                    spin()
            except wasmpy.Trap as trap:
                return trap.code.name
    """


def test_a_long_call_lets_other_threads_run_after_its_first_tick():
    proc = run_python(with_heartbeat(_spin_until_deadline(1.0), """
        print(json.dumps({"release_gil": store._handle.release_gil, **heartbeat(run)}))
        """), timeout=60)
    result = child_json(proc)
    assert result["release_gil"] is False  # this store keeps the GIL until the first tick
    assert result["outcome"] == "INTERRUPT" and result["took"] > 0.9
    assert result["longest_gap"] < 0.5, result  # a tick is 10 ms; holding it for the call would be 1 s


def test_short_calls_keep_the_gil_and_other_threads_still_run():
    proc = run_python(with_heartbeat(f"""
        add = wasmpy.Instance(wasmpy.Module({ADD!r})).exports.add
        def run():
            deadline = time.monotonic() + 1.0
            calls = 0
            while time.monotonic() < deadline:
                assert add(calls, 1) == calls + 1
                calls += 1
            return calls
        print(json.dumps(heartbeat(run)))
        """), timeout=60)
    result = child_json(proc)
    assert result["outcome"] > 1000 and result["longest_gap"] < 0.5, result


NESTED = """(module
    (import "env" "python" (func $python (param i32) (result i32)))
    (func $count (param i64) (result i64) (local i64)
        (loop $l (br_if $l (i64.lt_u (local.tee 1 (i64.add (local.get 1) (i64.const 1))) (local.get 0))))
        (local.get 1))
    (func (export "outer") (param $depth i32) (param $n i64) (result i32)
        (drop (call $count (local.get $n)))
        (i32.add (call $python (local.get $depth)) (i32.wrap_i64 (call $count (local.get $n)))))
    (func (export "count") (param i64) (result i64) (call $count (local.get 0))))"""


def test_nested_calls_across_ticks_hold_the_gil_whenever_python_runs():
    # Each level runs past ticks (the GIL released), then calls Python (which must get it back),
    # which calls wasm again: of the same store, of another store, through the C path and
    # through call_vals (cffi releases the GIL itself), with a thread contending for the GIL.
    proc = run_python(with_heartbeat(f"""
        import sys
        N = 30_000_000  # some tens of milliseconds: several ticks
        store, other = wasmpy.Store(), wasmpy.Store()
        levels = []
        def python(depth):
            levels.append(depth)
            assert sys._getframe() is not None  # Python code runs: the thread has the GIL
            if depth == 0:
                return 0
            inner = exports[depth % 2]
            via_vals = depth % 3 == 0
            result = inner.outer.call_vals(depth - 1, N)[0].value if via_vals else inner.outer(depth - 1, N)
            return int(result) - N + 1
        exports = [wasmpy.Instance(wasmpy.Module({NESTED!r}), {{"env": {{"python": python}}}}, s).exports
                   for s in (store, other)]
        def run():
            return [exports[0].outer(depth, N) for depth in range(6)]
        result = heartbeat(run)
        print(json.dumps({{**result, "levels": len(levels)}}))
        """), timeout=180)
    result = child_json(proc)
    assert result["outcome"] == [30_000_000 + depth for depth in range(6)], result
    assert result["levels"] == sum(depth + 1 for depth in range(6))
    assert result["longest_gap"] < 1.0, result


def test_a_deadline_and_ctrl_c_stop_a_nested_call_that_kept_the_gil():
    proc = run_python(f"""
        import json, os, signal, threading, time
        import wasmpy
        store = wasmpy.Store()
        spin = wasmpy.Instance(wasmpy.Module({SPIN!r}), {{}}, store).exports.spin
        def python(depth):
            if depth:
                spin()
            return 0
        outer = wasmpy.Instance(wasmpy.Module({NESTED!r}), {{"env": {{"python": python}}}}, store).exports.outer
        started = time.monotonic()
        try:
            with store.deadline(0.2):
                outer(1, 1000)
        except wasmpy.Trap as trap:
            deadline = {{"code": trap.code.name, "after": time.monotonic() - started}}
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()
        started = time.monotonic()
        try:
            outer(1, 1000)
        except KeyboardInterrupt:
            interrupted = time.monotonic() - started
        print(json.dumps({{"deadline": deadline, "interrupted": interrupted, "usable": outer(0, 5)}}))
        """, timeout=60)
    result = child_json(proc)
    assert result["deadline"]["code"] == "INTERRUPT" and 0.15 < result["deadline"]["after"] < 5
    assert 0.15 < result["interrupted"] < 5
    assert result["usable"] == 5


SLEEP_IN_WASI = """(module
    (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
    (memory (export "memory") 1)
    (func (export "sleep") (param $ns i64) (result i32)
        (i32.store8 (i32.const 8) (i32.const 0))   ;; a clock subscription
        (i32.store (i32.const 16) (i32.const 1))   ;; on the monotonic clock
        (i64.store (i32.const 24) (local.get $ns)) ;; relative timeout
        (call $poll (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128))))"""

WAIT_ON_SHARED_MEMORY = """(module (memory 1 1 shared)
    (func (export "wait") (param $ns i64) (result i32)
        (memory.atomic.wait32 (i32.const 0) (i32.const 0) (local.get $ns))))"""


@pytest.mark.parametrize("setup, call", [
    (f"""store = wasmpy.Store()
        blocking = wasmpy.Instance(wasmpy.Module({SLEEP_IN_WASI!r}), {{}}, store).exports.sleep""", "0"),
    (f"""engine = wasmpy.Engine(shared_memory=True)
        store = wasmpy.Store(engine)
        blocking = wasmpy.Instance(wasmpy.Module({WAIT_ON_SHARED_MEMORY!r}, engine), {{}}, store).exports.wait""",
     "2"),
], ids=["wasi sleep", "wait on a shared memory"])
def test_wasm_that_waits_inside_wasmtime_does_not_hold_the_gil(setup, call):
    # No epoch tick comes while wasmtime waits, so such stores release the GIL around each call.
    proc = run_python(with_heartbeat(f"""
        {setup}
        def run():
            return blocking(1_000_000_000)  # one second
        print(json.dumps({{"release_gil": store._handle.release_gil, **heartbeat(run)}}))
        """), timeout=60)
    result = child_json(proc)
    assert result["release_gil"] is True
    assert result["outcome"] == int(call) and result["took"] > 0.9, result
    assert result["longest_gap"] < 0.5, result


def test_calls_of_an_engine_without_ticks_release_the_gil_at_once():
    proc = run_python(with_heartbeat(f"""
        engine = wasmpy.Engine(epoch_interruption=False)
        store = wasmpy.Store(engine)
        count = wasmpy.Instance(wasmpy.Module({COUNT!r}, engine), {{}}, store).exports.count
        def run():
            return count(1_500_000_000)
        print(json.dumps({{"release_gil": store._handle.release_gil, **heartbeat(run)}}))
        """), timeout=120)
    result = child_json(proc)
    assert result["release_gil"] is True and result["outcome"] == 1_500_000_000
    assert result["longest_gap"] < max(0.25, result["took"] / 2), result


def test_a_store_made_with_release_gil_lets_other_threads_run_before_any_tick():
    """Ticks are made rare here (one per 30 s): a call of the default store holds the GIL for its
    whole second, one of a release_gil=True store lets the other thread run from the start."""
    proc = run_python(with_heartbeat(f"""
        from wasmpy._engine import _ticker
        _ticker.interval = 30.0
        module = wasmpy.Module({COUNT!r})
        results = {{}}
        for release_gil in (False, True):
            store = wasmpy.Store(release_gil=release_gil)
            count = wasmpy.Instance(module, {{}}, store).exports.count
            results[str(release_gil)] = heartbeat(lambda: count(1_000_000_000))
        print(json.dumps(results))
        """), timeout=120)
    results = child_json(proc)
    held, released = results["False"], results["True"]
    assert held["longest_gap"] > 0.8 * held["took"], held  # the heartbeat waited for the call
    assert released["longest_gap"] < max(0.25, released["took"] / 2), released


def test_release_gil_must_be_a_bool():
    with pytest.raises(TypeError, match="release_gil must be True or False"):
        wasmpy.Store(release_gil=1)
