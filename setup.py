import os
import shutil
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_ffi import BUILD_OPTIONS, LIBRARY  # noqa: E402


class BuildExtWithWasmtime(build_ext):
    """Builds the extensions and puts the wasmtime library beside them ($ORIGIN rpath)."""

    def run(self):
        super().run()
        target = Path(self.get_ext_fullpath("wasmpy._ffi")).parent / LIBRARY.name
        target.parent.mkdir(parents=True, exist_ok=True)
        # Replaced, not overwritten: processes that have the old library mapped keep it intact.
        temporary = target.with_name(target.name + ".tmp")
        shutil.copyfile(LIBRARY, temporary)
        os.replace(temporary, target)


setup(
    cffi_modules=["build_ffi.py:ffibuilder"],
    ext_modules=[Extension("wasmpy._native", ["csrc/native.c", "csrc/signals.c", "csrc/values.c"], **BUILD_OPTIONS)],
    cmdclass={"build_ext": BuildExtWithWasmtime},
)
