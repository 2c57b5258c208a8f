"""Shared fixtures: a fresh store, and a way to run code that may crash the interpreter."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import wasmpy

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def store():
    """A new Store on the default engine."""
    return wasmpy.Store()


@pytest.fixture
def run_isolated():
    """Runs Python source in a child interpreter (for code that may abort or segfault the process).

    Returns the CompletedProcess; stdout and stderr are text.
    """

    def run(source: str, timeout: float = 120) -> subprocess.CompletedProcess:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        return subprocess.run([sys.executable, "-c", textwrap.dedent(source)], cwd=str(ROOT), env=env,
                              capture_output=True, text=True, timeout=timeout)

    return run
