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


# _native is built on the limited API of Python 3.11, so that one abi3 build of it (as of cffi's _ffi)
# serves 3.11 and every later Python: the wheel is tagged cp311-abi3.
NATIVE_OPTIONS = dict(BUILD_OPTIONS, define_macros=[*BUILD_OPTIONS["define_macros"], ("Py_LIMITED_API", "0x030B0000")])

setup(
    cffi_modules=["build_ffi.py:ffibuilder"],
    ext_modules=[Extension("wasmpy._native", ["csrc/native.c", "csrc/signals.c", "csrc/ticker.c"],
                           py_limited_api=True, **NATIVE_OPTIONS)],
    cmdclass={"build_ext": BuildExtWithWasmtime},
    options={"bdist_wheel": {"py_limited_api": "cp311"}},
)
