"""Where ``python -m benchmarks`` writes (issue 13, item 7): build/benchmarks/ by default, the
committed benchmarks/results/ only with ``--refresh``, which takes a full run only.

Each run uses a copy of the benchmarks package in a temporary directory, so that its
``results/`` and ``build/`` are the copy's: the checkout's committed figures are never at stake.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict

import pytest

from childproc import PACKAGE_ROOT

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
TIMEOUT = 900  # seconds: a --rounds 1 run takes a few seconds, but test machines can be slow


@pytest.fixture
def copy(tmp_path) -> Path:
    """A copy of the benchmarks package, in a directory of its own (the copy's 'checkout')."""
    shutil.copytree(BENCHMARKS, tmp_path / "benchmarks", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def run(copy: Path, *args: str) -> subprocess.CompletedProcess:
    """``python -m benchmarks ARGS`` on the copy, with the wasmpy under test."""
    env = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    env["PYTHONPATH"] = os.pathsep.join([PACKAGE_ROOT, str(copy)])
    return subprocess.run([sys.executable, "-m", "benchmarks", *args], cwd=str(copy), env=env,
                          capture_output=True, text=True, timeout=TIMEOUT)


def committed(copy: Path) -> Dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted((copy / "benchmarks" / "results").iterdir())}


def test_a_run_writes_to_build_not_to_the_committed_figures(copy):
    """Regression: every run, --quick included, overwrote benchmarks/results/."""
    before = committed(copy)
    done = run(copy, "--quick", "--only", "calls", "--only", "import_cache", "--import-cache-rounds", "1")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert committed(copy) == before
    scratch = copy / "build" / "benchmarks"
    assert sorted(path.name for path in scratch.iterdir()) == [
        "latest.import_cache.json", "latest.json", "latest.svg"]
    assert f"wrote {scratch / 'latest.json'}" in done.stdout


@pytest.mark.parametrize("extra", [["--quick"], ["--only", "calls"], ["--skip-import-cache"],
                                   ["--json", "elsewhere.json"], ["--instructions"]])
def test_refresh_takes_a_full_run_only(copy, extra):
    before = committed(copy)
    done = run(copy, "--refresh", *extra)
    assert done.returncode == 2, done.stdout[-3000:] + done.stderr[-3000:]
    expected = "--instructions takes only" if extra == ["--instructions"] else "--refresh writes the committed figures"
    assert expected in done.stderr
    assert committed(copy) == before
    assert not (copy / "build").exists()


def test_refresh_writes_the_committed_figures(copy):
    before = committed(copy)
    done = run(copy, "--refresh", "--rounds", "1", "--import-cache-rounds", "1")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    after = committed(copy)
    assert sorted(after) == sorted(before) == ["import_cache.json", "latest.json", "latest.svg"]
    assert all(after[name] != before[name] for name in after)
    assert not (copy / "build").exists()
