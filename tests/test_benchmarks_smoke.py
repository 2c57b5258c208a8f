"""Smoke tests of the benchmark suite: ``python -m benchmarks --quick`` runs to the end and writes its JSON.

Figures are never checked against any bound (a test machine is too noisy for
that): only that the run succeeds and that the JSON has its parts.

The child runs the ``benchmarks`` package of this checkout the way ``python -m``
does (runpy, ``__main__``), with the wasmpy this test imports ahead of the
checkout on ``sys.path``: after a plain ``pip install .`` the checkout's own
``wasmpy/`` has no compiled extension, and must not shadow the installed one.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import wasmpy

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_ROOT = Path(wasmpy.__file__).resolve().parent.parent
TIMEOUT = 900  # seconds: a quick run takes well under a minute, but test machines can be slow

EXPECTED = {
    "calls": ["noop", "add_i32", "add_i64", "add_f64", "sum5_i32", "two_results", "ident_i32", "host_call",
              "host_overhead"],
    "values": ["externref", "anyref", "funcref", "v128", "val_args", "call_vals", "host_ref", "global_get",
               "global_set", "table_get", "table_set"],
    "compute": ["fib30", "nbody", "fnv1a_1mib", "lz4_fast", "lz4_hc"],
    "memory": ["read_1mib", "write_1mib", "read16", "write16", "slice16", "new_view"],
    "instantiate": ["new_store", "new_store_call", "same_store", "with_import"],
    "components": ["nothing", "greet", "add", "record", "list_u32", "import"],
}


def run_benchmarks(cwd: Path, *args: str, prelude: str = "", path: str = "") -> subprocess.CompletedProcess:
    """``python -m benchmarks ARGS`` in a child interpreter (``prelude``: code to run first; ``path``:
    its PATH, if given)."""
    code = "\n".join([
        "import runpy, sys",
        f"sys.path[:0] = [{str(PACKAGE_ROOT)!r}, {str(ROOT)!r}]",
        prelude,
        f"sys.argv = ['benchmarks', *{list(args)!r}]",
        "runpy.run_module('benchmarks', run_name='__main__', alter_sys=True)",
    ])
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if path:
        env["PATH"] = path
    return subprocess.run([sys.executable, "-c", code], cwd=str(cwd), env=env, capture_output=True, text=True,
                          timeout=TIMEOUT)


def check_ran(done: subprocess.CompletedProcess) -> None:
    assert done.returncode == 0, f"exit status {done.returncode}\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"


def test_quick_run_writes_every_group(tmp_path):
    out = tmp_path / "bench.json"
    done = run_benchmarks(tmp_path, "--quick", "--json", str(out))
    check_ran(done)
    figures = json.loads(out.read_text())
    for key in ("schema", "meta", "runtimes", "groups", "targets", "import_cache"):
        assert key in figures, key
    assert figures["meta"]["quick"] is True
    assert figures["runtimes"]["wasmpy"]["available"] is True
    for peer in ("wasmtime", "pywasm3"):  # optional: reported either way
        assert "available" in figures["runtimes"][peer]
        assert figures["runtimes"][peer]["requirement"]
    assert set(figures["groups"]) == {"calls", "values", "compute", "memory", "instantiate", "threads",
                                      "components"}
    for group, keys in EXPECTED.items():
        benchmarks = figures["groups"][group]["benchmarks"]
        for key in keys:
            assert key in benchmarks, (group, key)
            median = benchmarks[key]["median_ns"]["wasmpy"]
            assert isinstance(median, (int, float)), (group, key, benchmarks[key])
    assert "speedup" in figures["groups"]["threads"]["runtimes"]["wasmpy"]
    assert {target["name"] for target in figures["targets"]} >= {
        "add_vs_pywasm3", "add_vs_wasmtime", "host_call_vs_pywasm3", "fib30_vs_wasmtime", "fib30_vs_wasmtime_epoch",
        "nbody_noepoch_vs_wasmtime", "read16_ns", "instantiate_pooled_us",
        "instantiate_us", "import_cache_ratio", "component_nothing_vs_wasmtime", "component_greet_vs_wasmtime"}
    assert "ratio" in figures["import_cache"]
    assert (tmp_path / "bench.import_cache.json").exists()
    picture = (tmp_path / "bench.svg").read_text(encoding="utf-8")
    assert picture.startswith("<svg") and "add(1, 2)" in picture
    assert "Targets of the Performance issue" in done.stdout


def test_only_one_group_without_import_cache(tmp_path):
    out = tmp_path / "calls.json"
    done = run_benchmarks(tmp_path, "--quick", "--only", "calls", "--skip-import-cache", "--json", str(out))
    check_ran(done)
    figures = json.loads(out.read_text())
    assert set(figures["groups"]) == {"calls"}
    assert "skipped" in figures["import_cache"]
    assert not (tmp_path / "calls.import_cache.json").exists()


def test_missing_peers_are_reported_not_fatal(tmp_path):
    out = tmp_path / "alone.json"
    # None in sys.modules makes `import wasmtime` and `import wasm3` raise ImportError.
    done = run_benchmarks(tmp_path, "--quick", "--only", "calls", "--only", "instantiate", "--json", str(out),
                          prelude="sys.modules['wasmtime'] = sys.modules['wasm3'] = None")
    check_ran(done)
    assert "MISSING" in done.stdout
    figures = json.loads(out.read_text())
    for peer in ("wasmtime", "pywasm3"):
        assert figures["runtimes"][peer]["available"] is False
        assert figures["runtimes"][peer]["error"]
    assert set(figures["groups"]["calls"]["benchmarks"]["add_i32"]["median_ns"]) == {"wasmpy"}


@pytest.mark.skipif(shutil.which("valgrind") is None,
                    reason="valgrind is not installed: --instructions counts with callgrind (apt-get install valgrind)")
def test_instructions_quick_run(tmp_path):
    out = tmp_path / "instructions.json"
    done = run_benchmarks(tmp_path, "--instructions", "--quick", "--json", str(out))
    check_ran(done)
    assert "Instructions per operation" in done.stdout
    figures = json.loads(out.read_text())
    assert figures["schema"] == "wasmpy-benchmarks-instructions/1"
    assert figures["instructions"]["wasmpy_ticker"] == "frozen"
    benchmarks = figures["instructions"]["benchmarks"]
    for key in [*EXPECTED["calls"], *EXPECTED["values"], "read16", "write16", "new_store", "with_import"]:
        assert key in benchmarks, key
        per_op = benchmarks[key]["instructions"]["wasmpy"]["per_op"]
        assert isinstance(per_op, (int, float)) and per_op > 0, (key, benchmarks[key])
    for peer in ("wasmtime", "pywasm3"):  # optional: counted when installed
        if figures["runtimes"][peer]["available"]:
            assert benchmarks["add_i32"]["instructions"][peer]["per_op"] > 0


def test_instructions_without_valgrind_says_so(tmp_path):
    # A PATH with only this Python's directory: no valgrind on it (the child is started by full path).
    done = run_benchmarks(tmp_path, "--instructions", "--quick", path=str(tmp_path))
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert "valgrind is not installed" in done.stderr
    assert "Traceback" not in done.stderr
    assert not list(tmp_path.glob("*.json"))  # nothing written without --json, and nothing counted
