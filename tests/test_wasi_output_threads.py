"""WASI output streams given to wasmtime are written and freed on wasmtime's own threads (tokio's
workers): those must never wait for the GIL. While the interpreter finalizes, CPython 3.11-3.13
ends a thread that waits for it with pthread_exit(), whose unwinding through wasmtime's Rust
frames aborted the process ("panic in a function that cannot unwind", about one run in several
hundred of a program that wrote to a Python stream just before exiting); at other times the
worker only stalled while some Python thread held the GIL.

Each test holds the GIL in the main thread (a ``ctypes.PyDLL`` call keeps it) while the stream's
callbacks run elsewhere: with callbacks that took the GIL, the child hangs and times out."""

from __future__ import annotations

import pytest

from childproc import child_json, run_python

WRITER = """
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "line\\n")
  ;; writes "line\\n" `count` times to fd 1 and after each to fd 2
  (func (export "write_lines") (param $count i32)
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 5))
    (loop $again
      (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
      (drop (call $fd_write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 8)))
      (br_if $again (local.tee $count (i32.sub (local.get $count) (i32.const 1)))))))
"""


def test_wasm_writing_to_a_python_stream_does_not_wait_for_the_gil(tmp_path):
    """stdout goes to a Python stream, stderr to a file that wasmtime writes itself: the file
    fills while the main thread holds the GIL, and stdout gets every line afterwards. (The
    engine has no epoch ticks: at a tick, queued output is delivered, which needs the GIL.)"""
    proc = run_python(f"""
        import ctypes, io, json, os, sys, threading, time, wasmpy
        sys.setswitchinterval(100)  # a thread waiting for the GIL does not ask for it for 100 s
        libc = ctypes.PyDLL(None)   # its calls keep the GIL
        libc.usleep.argtypes = [ctypes.c_uint]
        err_path = {str(tmp_path / "err.txt")!r}
        out = io.BytesIO()
        engine = wasmpy.Engine(epoch_interruption=False)
        store = wasmpy.Store(engine, wasi=wasmpy.WasiConfig(stdout=out, stderr=err_path))
        instance = wasmpy.Instance(wasmpy.Module({WRITER!r}, engine=engine), store=store)
        writer = threading.Thread(target=instance.exports.write_lines, args=(200,))
        writer.start()
        deadline = time.monotonic() + 60
        while os.path.getsize(err_path) == 0 and time.monotonic() < deadline:
            time.sleep(0.001)
        written = []
        for _ in range(300):  # up to 30 s, holding the GIL all along
            libc.usleep(100_000)
            fd = libc.open(err_path.encode(), os.O_RDONLY)
            size = libc.lseek(fd, 0, os.SEEK_END)
            libc.close(fd)
            written.append(size)
            if size == 200 * 5:
                break
        writer.join()
        print(json.dumps({{"written_with_the_gil_held": written[-1], "stdout": out.getvalue().count(b"line")}}))
        """, timeout=120)
    result = child_json(proc)
    assert result == {"written_with_the_gil_held": 1000, "stdout": 200}


def test_a_stream_freed_on_a_thread_that_is_not_pythons_needs_no_gil():
    """wasmtime frees its streams wherever its last reference goes, often a tokio worker: the
    finalizer is run here on a bare pthread while the main thread holds the GIL."""
    proc = run_python("""
        import ctypes, io, json, wasmpy
        from wasmpy import _native
        libc = ctypes.PyDLL(None)  # its calls keep the GIL
        libc.pthread_create.argtypes = [ctypes.POINTER(ctypes.c_ulong), ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        libc.pthread_join.argtypes = [ctypes.c_ulong, ctypes.c_void_p]
        store = wasmpy.Store()
        freed = []
        for write in (io.BytesIO().write, print):
            callback, data, finalizer = _native.output_stream(store._handle, write)
            thread = ctypes.c_ulong()
            assert libc.pthread_create(ctypes.byref(thread), None, finalizer, data) == 0
            assert libc.pthread_join(thread.value, None) == 0
            freed.append(True)
        del store
        print(json.dumps({"freed": freed}))
        """, timeout=60)
    assert child_json(proc) == {"freed": [True, True]}


@pytest.mark.parametrize("repeat", range(3))
def test_a_program_that_writes_to_a_python_stream_just_before_exit_exits_cleanly(repeat):
    """The shape of the rare abort: a last write, the store freed, the interpreter finalizing
    at once (a dozen runs per child to give the race a chance; it is not needed to pass)."""
    program = "\n".join([
        "import io, wasmpy",
        "out = io.BytesIO()",
        "store = wasmpy.Store(wasi=wasmpy.WasiConfig(stdout=out, stderr=out))",
        f"wasmpy.Instance(wasmpy.Module({WRITER!r}), store=store).exports.write_lines(3)",
        "del store",
    ])
    proc = run_python(f"""
        import json, subprocess, sys
        codes = [subprocess.run([sys.executable, "-c", {program!r}]).returncode for _ in range(12)]
        print(json.dumps({{"codes": codes}}))
        """, timeout=240)
    assert child_json(proc) == {"codes": [0] * 12}
