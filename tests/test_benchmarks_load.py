"""Smoke tests of ``python -m benchmarks.load`` and ``python -m benchmarks.epoch_cost`` (issue 14), and of
the LZ4 kernel they and the compute group run: quick modes run to the end and write their figures, and
the kernel in the repository is what its build script makes of its committed sources.

No figure is checked against a bound (a test machine is too noisy for that).
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
KERNELS = ROOT / "benchmarks" / "kernels"
TIMEOUT = 900


def run_module(cwd: Path, module: str, *args: str) -> subprocess.CompletedProcess:
    """``python -m MODULE ARGS`` from this checkout, with the wasmpy these tests import first on the path."""
    code = "\n".join([
        "import runpy, sys",
        f"sys.path[:0] = [{str(PACKAGE_ROOT)!r}, {str(ROOT)!r}]",
        f"sys.argv = [{module!r}, *{list(args)!r}]",
        f"runpy.run_module({module!r}, run_name='__main__', alter_sys=True)",
    ])
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", code], cwd=str(cwd), env=env, capture_output=True, text=True,
                          timeout=TIMEOUT)
    assert done.returncode == 0, f"exit status {done.returncode}\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done


def test_load_quick_run_measures_every_step_and_keeps_its_cache(tmp_path):
    cache, out = tmp_path / "cache", tmp_path / "load.json"
    done = run_module(tmp_path, "benchmarks.load", "--quick", "--cache", str(cache), "--json", str(out))
    figures = json.loads(out.read_text())
    steps = figures["steps"]
    assert set(steps) == {"python", "wasmpy_import", "wasmtime_import", "hook", "wasmpy_deserialize_file",
                          "wasmtime_deserialize_file"}
    for step in ("hook", "wasmpy_deserialize_file", "wasmtime_deserialize_file"):
        assert steps[step]["load_s"] > 0 and steps[step]["peak_kib"] >= steps[step]["peak_before_kib"] > 0, step
    for step in ("wasmpy_import", "wasmtime_import"):
        assert steps[step]["library_import_s"] > 0, step
    assert 0 < figures["code_bytes"]["hook"] < figures["artifact_bytes"]["hook"]
    assert 0 < figures["code_bytes"]["wasmtime"] < figures["artifact_bytes"]["wasmtime"]
    assert figures["big_enough"] is False  # --quick: a small module, and the report says so
    assert "not the benchmark's size" in done.stdout
    for key in ("time_ratio", "rss_ratio", "meets_time", "meets_rss"):
        assert key in figures["targets"], key
    assert "package_compile_s" in figures["built"]
    # A second run reuses the module and both artifacts: nothing is generated or compiled again.
    run_module(tmp_path, "benchmarks.load", "--quick", "--cache", str(cache), "--json", str(out))
    again = json.loads(out.read_text())
    assert "generate_s" not in again["built"] and "package_compile_s" not in again["built"]
    assert again["code_bytes"] == figures["code_bytes"]


def test_text_section_of_an_artifact(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent.parent))  # plain `pytest` puts no checkout there
    from benchmarks.load import text_section_bytes

    def module(functions: int) -> wasmpy.Module:
        body = " ".join(f'(func (export "f{i}") (result i32) (i32.const {i}))' for i in range(functions))
        return wasmpy.Module(f"(module {body})")

    small, big = module(1), module(3000)
    sizes = []
    for name, module in (("small", small), ("big", big)):
        path = tmp_path / f"{name}.cwasm"
        path.write_bytes(module.serialize())
        sizes.append(text_section_bytes(path))
        assert 0 < sizes[-1] < path.stat().st_size
    assert sizes[0] < sizes[1]


def test_epoch_cost_quick_run(tmp_path):
    out = tmp_path / "epoch.json"
    done = run_module(tmp_path, "benchmarks.epoch_cost", "--quick", "--rounds", "1", "--json", str(out))
    figures = json.loads(out.read_text())
    from benchmarks.epoch_cost import LEVELS, VARIANTS
    assert figures["variants"] == [variant.name for variant in VARIANTS]
    for variant in VARIANTS:
        assert set(figures["wall_ms"][variant.name]) == set(LEVELS)
        assert all(ms > 0 for ms in figures["wall_ms"][variant.name].values())
        assert figures["compile"][variant.name]["code_bytes"] > 0
        if variant.baseline is not None:
            assert variant.baseline in figures["variants"], variant
    # epoch checks are machine code of their own: more of it than without
    assert figures["compile"]["wasmpy"]["code_bytes"] > figures["compile"]["wasmpy-noepoch"]["code_bytes"]
    assert "wasmtime-fuel" in done.stdout


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed (apt-get install valgrind)")
def test_epoch_cost_counts_instructions_of_a_run():
    # The wasmtime package's windows are found among all its ctypes calls (see instructions()): the
    # harder case; wasmpy's are its one C API entry point. One child, a minute or two under valgrind.
    from benchmarks.epoch_cost import BY_NAME, LEVELS, instructions

    counts = instructions([BY_NAME["wasmtime-epoch"]], 8 * 1024, lambda line: None)["wasmtime-epoch"]
    assert set(counts) == set(LEVELS)
    # HC compression runs the fast compressor first, then more: more instructions
    assert 100_000 < counts["lz4_fast"] < counts["lz4_hc"], counts


def test_lz4_kernel_round_trips_in_every_engine():
    wasm = (KERNELS / "lz4.wasm").read_bytes()
    results = set()
    for engine in (wasmpy.Engine.default(), wasmpy.Engine(epoch_interruption=False)):
        exports = wasmpy.Instance(wasmpy.Module(wasm, engine), None, wasmpy.Store(engine)).exports
        exports["_initialize"]()
        assert exports["lz4bench_setup"](64 * 1024, 7) == 0
        assert exports["lz4bench_setup"](0, 7) == -1 and exports["lz4bench_setup"](64 << 20, 7) == -1
        assert exports["lz4bench_setup"](64 * 1024, 7) == 0
        result = exports["lz4bench_run"](9)
        assert result >= 0  # negative: the data did not come back
        fast, hc = exports["lz4bench_fast_size"](), exports["lz4bench_hc_size"]()
        assert 0 < hc < fast < 64 * 1024  # text compresses, HC better than fast
        results.add(result)
    assert len(results) == 1


@pytest.mark.skipif(shutil.which("clang") is None or shutil.which("wasm-ld") is None
                    or not Path("/usr/lib/wasm32-wasi/libc.a").exists(),
                    reason="needs clang, wasm-ld and wasi-libc (apt-get install clang lld wasi-libc)")
def test_lz4_kernel_is_built_from_its_sources(tmp_path):
    copy = tmp_path / "kernels"
    shutil.copytree(KERNELS, copy)
    for built in copy.glob("*.wasm"):
        built.unlink()
    subprocess.run(["sh", str(copy / "build.sh")], check=True, capture_output=True, timeout=300)
    for name in ("lz4.wasm", "nbody.wasm", "hash.wasm"):
        assert (copy / name).read_bytes() == (KERNELS / name).read_bytes(), name
