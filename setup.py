"""Builds wasmpy's two extensions and bundles the wasmtime C library beside them.

``wasmpy._ffi`` (cffi, see build_ffi.py) is always built on the stable ABI.
``wasmpy._native`` (csrc/native.c, signals.c, ticker.c, values.c, output.c) is built for
the running Python, unless ``NATIVE_LIMITED_API`` below names a limited-API version: then
it is built on the stable ABI too, and the wheel is one ``cp311-abi3`` wheel
for every supported Python (tools/build_wheel.sh accepts either kind).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import List, Optional

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_ffi import BUILD_OPTIONS, LIBRARY  # noqa: E402

# The one switch for a single wheel: the Py_LIMITED_API value _native keeps to, 0x030B0000 (Python
# 3.11, the oldest supported): one cp311-abi3 build serves 3.11 and every later Python. None builds
# it on the full C API, for the running Python only.
NATIVE_LIMITED_API: Optional[int] = 0x030B0000


def _without_absolute_rpath(argument: str) -> Optional[str]:
    """A linker argument without the run-time search paths it names other than ``$ORIGIN...``
    (None if nothing is left): Python's own link flags can carry the build machine's library
    directory (pyenv's and conda's do), which the extensions neither need nor may keep."""
    if not argument.startswith("-Wl,"):
        return argument
    kept: List[str] = []
    parts = argument[len("-Wl,"):].split(",")
    index = 0
    while index < len(parts):
        part = parts[index]
        if part in ("-rpath", "--rpath", "-R") and index + 1 < len(parts):
            path, index = parts[index + 1], index + 2
        elif part.startswith(("-rpath=", "--rpath=")):
            path, index = part.split("=", 1)[1], index + 1
        elif part.startswith("-R") and len(part) > 2:
            path, index = part[2:], index + 1
        else:
            kept.append(part)
            index += 1
            continue
        if path.startswith("$ORIGIN"):
            kept += ["-rpath", path]
    return "-Wl," + ",".join(kept) if kept else None


class BuildExtWithWasmtime(build_ext):
    """Builds the extensions with ``$ORIGIN`` as their only run-time search path and puts the
    wasmtime library beside them."""

    def build_extensions(self) -> None:
        linker = [_without_absolute_rpath(argument) for argument in self.compiler.linker_so]
        self.compiler.linker_so = [argument for argument in linker if argument is not None]
        super().build_extensions()

    def run(self) -> None:
        super().run()
        target = Path(self.get_ext_fullpath("wasmpy._ffi")).parent / LIBRARY.name
        target.parent.mkdir(parents=True, exist_ok=True)
        # Replaced, not overwritten: processes that have the old library mapped keep it intact.
        temporary = target.with_name(target.name + ".tmp")
        shutil.copyfile(LIBRARY, temporary)
        os.replace(temporary, target)


def _native_extension() -> Extension:
    options = dict(BUILD_OPTIONS)
    if NATIVE_LIMITED_API is not None:
        options["define_macros"] = [*options["define_macros"], ("Py_LIMITED_API", hex(NATIVE_LIMITED_API))]
        options["py_limited_api"] = True
    return Extension("wasmpy._native", ["csrc/native.c", "csrc/signals.c", "csrc/ticker.c", "csrc/values.c", "csrc/output.c"], **options)


def _wheel_options() -> dict:
    if NATIVE_LIMITED_API is None:
        return {}
    major, minor = NATIVE_LIMITED_API >> 24, (NATIVE_LIMITED_API >> 16) & 0xFF
    return {"bdist_wheel": {"py_limited_api": f"cp{major}{minor}"}}


setup(
    cffi_modules=["build_ffi.py:ffibuilder"],
    ext_modules=[_native_extension()],
    cmdclass={"build_ext": BuildExtWithWasmtime},
    options=_wheel_options(),
)
