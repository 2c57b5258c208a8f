"""Running code in a child interpreter, so that a crash fails one test instead of killing pytest."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from typing import Any

import wasmpy

PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(wasmpy.__file__)))
TESTS_DIR = os.path.dirname(os.path.abspath(__file__))


def run_python(code: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Runs ``code`` in a fresh interpreter that imports wasmpy from this checkout and the test
    modules by name; a timeout is reported as exit code -9 with the output so far."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([PACKAGE_ROOT, TESTS_DIR])
    env.pop("RUST_BACKTRACE", None)
    argv = [sys.executable, "-X", "faulthandler", "-c", textwrap.dedent(code)]
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, cwd=TESTS_DIR)
    except subprocess.TimeoutExpired as expired:
        def text(out: Any) -> str:
            return out.decode("utf-8", "replace") if isinstance(out, bytes) else (out or "")
        return subprocess.CompletedProcess(argv, -signal.SIGKILL, text(expired.stdout),
                                           text(expired.stderr) + f"\n(timed out after {timeout} s: a hang)")


def describe(proc: subprocess.CompletedProcess) -> str:
    code = proc.returncode
    how = f"exit code {code}"
    if code < 0:
        try:
            how = f"killed by {signal.Signals(-code).name} ({code})"
        except ValueError:
            how = f"killed by signal {-code}"
    return f"child {how}\n--- stdout (tail):\n{proc.stdout[-3000:]}\n--- stderr (tail):\n{proc.stderr[-4000:]}"


def assert_clean_exit(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, describe(proc)


def child_json(proc: subprocess.CompletedProcess) -> Any:
    """The JSON object the child printed last on stdout (after asserting it exited 0)."""
    assert_clean_exit(proc)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, describe(proc)
    return json.loads(lines[-1])


def count_compiles() -> list:
    """In a child: a list that gets an item for each module or component wasmpy compiles from now
    on (it compiles only in ``Module.__init__`` and ``Component.__init__``, which this wraps): the
    item is the class's name."""
    compiled: list = []

    def counting(cls: type) -> None:
        compile_it = cls.__init__

        def init(self: Any, *args: Any, **kwargs: Any) -> None:
            compiled.append(cls.__name__)
            compile_it(self, *args, **kwargs)
        cls.__init__ = init  # type: ignore[method-assign]

    counting(wasmpy.Module)
    counting(wasmpy.Component)
    return compiled


def start_rss_watchdog(limit_bytes: int = 2 << 30) -> None:
    """In a child: exit with status 99 if its RSS passes ``limit_bytes``, before the OOM killer steps in."""
    import threading
    import time

    def watch() -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        while True:
            with open("/proc/self/statm") as statm:
                rss = int(statm.read().split()[1]) * page
            if rss > limit_bytes:
                os.write(2, f"RSS watchdog: {rss >> 20} MiB, giving up\n".encode())
                os._exit(99)
            time.sleep(0.01)
    threading.Thread(target=watch, daemon=True).start()
