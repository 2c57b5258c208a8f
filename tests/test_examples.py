"""Every example's run.py, run as a user would: its own directory as cwd, a new interpreter.

The examples import their .wasm modules through the import hook, so this
checks the guide's examples end to end (gcd; import: wasm calling env.py,
which imports the wasm module back; two_modules: wasm linked to wasm; components: a
component whose WIT import is a Python module).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import wasmpy

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PACKAGE_ROOT = Path(wasmpy.__file__).resolve().parent.parent

EXPECTED = {
    "components": (
        "Size(width=1.5, height=2.0)\n"
        "circle of radius 1.0: area 3.141592653589793\n"
        "canvas: a circle of radius 1.0\n"
        "3.0 x 4.0 rectangle: area 12.0\n"
        "canvas: a 3.0 x 4.0 rectangle\n"
        "circle of radius -1.0: area 3.141592653589793\n"
        "not drawn: a circle's radius must be a positive number\n"
        "drawn: 2\n"
    ),
    "gcd": "gcd(27, 6) = 3\n",
    "import": "Hello, world!\n",
    "two_modules": "answer() returned 42\n",
}


def _base_env() -> dict:
    return {k: v for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONPYCACHEPREFIX", "PYTHONSTARTUP")}


@pytest.fixture(scope="session")
def example_env(tmp_path_factory) -> dict:
    """The environment for running examples: PYTHONPATH names the package root only if the
    installed package is not importable without it."""
    env = _base_env()
    neutral = tmp_path_factory.mktemp("neutral")
    probe = subprocess.run([sys.executable, "-c", "import wasmpy"], cwd=str(neutral), env=env,
                           capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        env["PYTHONPATH"] = str(PACKAGE_ROOT)
    return env


def test_every_example_is_listed():
    found = sorted(p.name for p in EXAMPLES.iterdir() if (p / "run.py").is_file())
    assert found == sorted(EXPECTED)


def _run(directory: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "run.py"], cwd=str(directory), env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example(name, example_env):
    env = dict(example_env, PYTHONDONTWRITEBYTECODE="1")  # leave no caches in the checkout
    result = _run(EXAMPLES / name, env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_cold_and_warm_cache(name, example_env, tmp_path):
    """A copy of the example, run twice: compiling (and writing the cache), then from the cache."""
    directory = tmp_path / name
    shutil.copytree(EXAMPLES / name, directory, ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in example_env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    cold = _run(directory, env)
    assert cold.returncode == 0, cold.stderr
    assert cold.stdout == EXPECTED[name]
    caches = sorted(p.name for p in (directory / "__pycache__").glob("*.cwasm"))
    assert caches, "the first run wrote no compiled-code cache"
    warm = _run(directory, env)
    assert warm.returncode == 0, warm.stderr
    assert warm.stdout == EXPECTED[name]
    assert sorted(p.name for p in (directory / "__pycache__").glob("*.cwasm")) == caches


def test_components_build_sh_rebuilds_the_committed_component(tmp_path):
    """examples/components/shapes.wasm is what its build.sh makes from shapes.wit and shapes.wat
    (wasm-tools from the test extra), so the example's sources are the component it runs."""
    source = EXAMPLES / "components"
    for name in ("build.sh", "shapes.wit", "shapes.wat"):
        shutil.copy2(source / name, tmp_path / name)
    tools = os.path.dirname(shutil.which("wasm-tools") or sys.executable)
    env = dict(_base_env(), PATH=f"{tools}:{os.environ.get('PATH', '')}")
    subprocess.run(["sh", str(tmp_path / "build.sh")], check=True, env=env, capture_output=True, timeout=120)
    assert (tmp_path / "shapes.wasm").read_bytes() == (source / "shapes.wasm").read_bytes()
