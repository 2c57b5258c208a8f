"""examples/parallel (issue 17): the same hashes sequentially, with threads, with a process pool
(the module pickled to spawned workers) and with Dask (when ``distributed`` is installed: the
``dist`` extra, which the test extra includes)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from test_examples import example_env  # noqa: F401  (a fixture)

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "parallel"


def test_every_way_gives_the_same_hashes(example_env):  # noqa: F811
    result = subprocess.run([sys.executable, "parallel.py", "--rounds", "2", "--workers", "2"], cwd=str(EXAMPLE),
                            env=dict(example_env, PYTHONDONTWRITEBYTECODE="1"), capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert [line.split(":")[0].strip() for line in lines[:4]] == ["sequential", "threads", "process pool", "dask"]
    assert "all ways agree on all 64 chunks" in lines[-1]
    try:
        import distributed  # noqa: F401
    except ImportError:
        pytest.skip("Dask's distributed is not installed (pip install 'wasmpy[dist]'): its way was skipped")
    assert "skipped" not in lines[3], lines[3]


def test_the_hashes_are_fnv1a(monkeypatch):
    """The kernel is 64-bit FNV-1a: checked against Python's own on one chunk, two rounds."""
    monkeypatch.syspath_prepend(str(EXAMPLE))
    import parallel

    chunk = parallel.make_chunks(count=1, size=1000)[0]
    expected = 0xCBF29CE484222325
    for _ in range(2):
        for byte in chunk:
            expected = ((expected ^ byte) * 0x100000001B3) & 0xFFFF_FFFF_FFFF_FFFF
    assert parallel.Hasher(parallel.load_module())(chunk, 2) == expected
    assert parallel.with_threads(parallel.load_module(), [chunk] * 4, 2, 2) == [expected] * 4
