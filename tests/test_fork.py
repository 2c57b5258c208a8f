"""Fork safety (issue 17 item 2) beyond tests/test_safety_engine.py's fork tests (which cover a
fork after compiling, deadlines and Ctrl-C in the child, multiprocessing's fork workers) and
tests/test_memory_safety.py's store held by another thread at fork time: forks taken while
another thread is in the middle of compiling or running wasm, and WASI in forked children."""

from __future__ import annotations

from childproc import child_json
from test_safety_engine import run_with_fork_helpers

BIG = "'(module ' + ' '.join(f'(func (export \"f{i}\") (result i32) i32.const {i})' for i in range(3000)) + ')'"


def test_a_fork_while_another_thread_compiles_does_not_hang_the_childs_compiles():
    """The thread compiles in a loop (wasmtime's parallel compiler threads busy, its locks maybe
    held) while the main thread forks, several times; each child compiles, instantiates, runs."""
    proc = run_with_fork_helpers(f"""
        import threading
        BIG = {BIG}
        stop = threading.Event()
        compiled = []

        def compile_forever():
            while not stop.is_set():
                Module(BIG)
                compiled.append(1)

        thread = threading.Thread(target=compile_forever)
        thread.start()
        while not compiled:
            pass
        outcomes = []
        for _ in range(5):
            outcomes.append(in_forked_child(
                lambda: [Instance(Module(BIG)).exports.f2999(), Instance(Module(ADD)).exports.add(2, 3)]))
        stop.set()
        thread.join()
        print(json.dumps({{"outcomes": outcomes}}))
    """, timeout=240)
    assert child_json(proc) == {"outcomes": [[0, [2999, 5]]] * 5}


def test_a_fork_while_another_thread_runs_wasm_leaves_the_child_working():
    """That thread's store is unusable in the child (its lock's owner is gone); other stores,
    new ones and deadlines work there."""
    proc = run_with_fork_helpers("""
        import threading, time
        loop = Module(LOOP)
        busy_store = Store()
        spin = Instance(loop, store=busy_store).exports.spin
        busy_store.set_deadline(5)

        def runner():
            try:
                spin()
            except wasmpy.Trap:
                pass

        thread = threading.Thread(target=runner)
        thread.start()
        time.sleep(0.3)

        def work():
            outcomes = []
            try:
                Instance(loop, store=busy_store)
            except wasmpy.WasmError as error:
                outcomes.append("fork" in str(error))
            store = Store()
            store.set_deadline(0.2)
            try:
                Instance(loop, store=store).exports.spin()
            except wasmpy.Trap as trap:
                outcomes.append(trap.code.name)
            outcomes.append(Instance(Module(ADD)).exports.add(2, 3))
            return outcomes

        print(json.dumps(dict(zip(("status", "child"), in_forked_child(work)))))
        thread.join()
    """, timeout=120)
    assert child_json(proc) == {"status": 0, "child": [True, "INTERRUPT", 5]}


WASI_WRITER = """(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "line\\n")
  (func (export "write_line")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 5))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"""


def test_wasi_output_to_a_python_stream_in_a_child_forked_after_the_parent_used_wasi_is_refused_not_a_hang():
    """wasmtime-wasi writes a custom output stream (WASI output to a Python stream) from a task on
    its global tokio runtime, whose worker threads fork does not copy: once the parent has used
    WASI, fd_write to a Python stream in a forked child waited forever. It is refused there (a
    WasmError saying what works), and files and inherited output still work."""
    proc = run_with_fork_helpers(f"""
        module = Module({WASI_WRITER!r})
        written = []
        Instance(module, store=Store(wasi=wasmpy.WasiConfig(stdout=written.append))).exports.write_line()

        def work():
            outcomes = []
            try:
                Instance(module, store=Store(wasi=wasmpy.WasiConfig(stdout=[].append))).exports.write_line()
            except wasmpy.WasmError as error:
                outcomes.append("forked" in str(error) and "'inherit'" in str(error))
            path = os.path.join(__import__("tempfile").mkdtemp(), "child.txt")
            Instance(module, store=Store(wasi=wasmpy.WasiConfig(stdout=path))).exports.write_line()
            with open(path) as file:
                outcomes.append(file.read())
            return outcomes

        print(json.dumps(dict(zip(("status", "child"), in_forked_child(work, seconds=20)))))
    """, timeout=60)
    assert child_json(proc) == {"status": 0, "child": [True, "line\n"]}


def test_a_child_forked_before_any_wasi_writes_to_python_streams():
    """The refusal above is only for children of processes that used WASI."""
    proc = run_with_fork_helpers(f"""
        module = Module({WASI_WRITER!r})

        def work():
            output = []
            Instance(module, store=Store(wasi=wasmpy.WasiConfig(stdout=output.append))).exports.write_line()
            return [bytes(chunk).decode() for chunk in output]

        print(json.dumps(dict(zip(("status", "child"), in_forked_child(work, seconds=20)))))
    """, timeout=60)
    assert child_json(proc) == {"status": 0, "child": ["line\n"]}
