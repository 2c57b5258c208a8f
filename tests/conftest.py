"""Shared fixtures: a fresh store, a way to run code that may crash the interpreter, and a directory
of modules on sys.path for the import hook tests (``mods``)."""

import importlib
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import wasmpy
from childproc import PACKAGE_ROOT, run_python

CHECKOUT = Path(__file__).resolve().parent.parent


def pytest_report_header(config) -> str:
    """Which wasmpy the tests run against: an installed one, or this checkout built in place."""
    where = "this checkout" if Path(PACKAGE_ROOT).resolve() == CHECKOUT else "installed"
    return f"wasmpy under test: {Path(wasmpy.__file__).parent} ({where})"


@pytest.fixture
def store():
    """A new Store on the default engine."""
    return wasmpy.Store()


@pytest.fixture
def run_isolated():
    """Runs Python source in a child interpreter (for code that may abort or segfault the process)
    that imports the wasmpy under test, installed or built in place (tests/childproc.py).

    Returns the CompletedProcess; stdout and stderr are text.
    """

    def run(source: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return run_python(source, timeout=timeout)

    return run


class ModDir:
    """A directory on sys.path to write modules into, with per-test module names."""

    def __init__(self, path: Path, prefix: str) -> None:
        self.path = path
        self.prefix = prefix

    def name(self, base: str) -> str:
        """A module name unique to this test."""
        return f"{self.prefix}_{base}"

    def _file(self, relative: str) -> Path:
        target = self.path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def write(self, relative: str, data) -> Path:
        target = self._file(relative)
        if isinstance(data, str):
            target.write_text(textwrap.dedent(data))
        else:
            target.write_bytes(data)
        importlib.invalidate_caches()
        return target

    def wat(self, name: str, text: str, under: str = "") -> Path:
        return self.write(os.path.join(under, f"{name}.wat"), text)

    def wasm(self, name: str, text: str, under: str = "") -> Path:
        return self.write(os.path.join(under, f"{name}.wasm"), wasmpy.wat2wasm(text))

    def py(self, name: str, text: str, under: str = "") -> Path:
        return self.write(os.path.join(under, f"{name}.py"), text)

    def package(self, name: str, init: str = "") -> Path:
        self.write(os.path.join(name, "__init__.py"), init)
        return self.path / name


def _forget(root: str, names) -> None:
    root = root.rstrip(os.sep) + os.sep
    for name, module in list(sys.modules.items()):
        origin = getattr(getattr(module, "__spec__", None), "origin", None) or getattr(module, "__file__", None)
        locations = getattr(getattr(module, "__spec__", None), "submodule_search_locations", None) or []
        if name in names or (origin and str(origin).startswith(root)) or any(
                str(location).startswith(root) for location in locations):
            del sys.modules[name]
    for key in list(sys.path_importer_cache):
        if isinstance(key, str) and key.startswith(root):
            del sys.path_importer_cache[key]
    importlib.invalidate_caches()


@pytest.fixture
def mods(tmp_path, request):
    """A fresh directory at the front of sys.path; everything imported from it is forgotten afterwards."""
    directory = tmp_path / "mods"
    directory.mkdir()
    prefix = "t_" + re.sub(r"\W", "_", request.node.name)[:60]
    saved_path = list(sys.path)
    saved_modules = set(sys.modules)
    sys.path.insert(0, str(directory))
    importlib.invalidate_caches()
    try:
        yield ModDir(directory, prefix)
    finally:
        sys.path[:] = saved_path
        new = {name for name in sys.modules if name not in saved_modules and name.startswith(prefix)}
        _forget(str(tmp_path), new)
