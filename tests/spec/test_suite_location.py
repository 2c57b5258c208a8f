"""Where the spec suite is read from: ``WASMPY_SPEC_SUITE`` names it, instead of ``../shared/wasm-testsuite``.

Each test runs the spec tests (test_spec.py) in a child pytest on a suite made here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import wast_runner
from childproc import PACKAGE_ROOT

SPEC_TESTS = Path(__file__).resolve().parent / "test_spec.py"
TINY_WAST = """
(module (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))
(assert_return (invoke "add" (i32.const 1) (i32.const 2)) (i32.const 3))
(assert_malformed (module quote "(func (result i32) i32.const)") "unexpected token")
"""


def run_spec_tests(suite: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {name: value for name, value in os.environ.items() if not name.startswith("PYTEST_")}
    env["WASMPY_SPEC_SUITE"] = str(suite)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [PACKAGE_ROOT, env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(SPEC_TESTS)],
                          cwd=str(cwd), env=env, capture_output=True, text=True, timeout=300)


def test_the_variable_names_the_suite(tmp_path):
    missing = wast_runner.converter_missing_reason()
    if missing:
        pytest.skip(missing)
    suite = tmp_path / "suite"
    (suite / "wasm-2.0").mkdir(parents=True)
    (suite / "wasm-2.0" / "tiny.wast").write_text(TINY_WAST)
    done = run_spec_tests(suite, tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "1 passed" in done.stdout
    assert "wasm-2.0/tiny.wast" in done.stdout
    assert "spec assertions: 3 passed, 0 failed, 0 skipped" in done.stdout


@pytest.mark.parametrize("layout", ["missing", "empty"])
def test_a_suite_asked_for_but_not_there_fails(tmp_path, layout):
    """A wrong WASMPY_SPEC_SUITE is an error: skipping would hide that the suite never ran."""
    suite = tmp_path / "suite"
    if layout == "empty":
        suite.mkdir()
    done = run_spec_tests(suite, tmp_path)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    assert "1 failed" in done.stdout
    reason = "is not a directory" if layout == "missing" else "has neither of the suite's directories"
    assert f"WASMPY_SPEC_SUITE={str(suite)!r} {reason}" in done.stdout
