"""Builds ``wasmpy._ffi``: cffi (API mode) over the bundled wasmtime C library.

The library comes from the ``wasmtime`` wheel (a build requirement), or from an
official wasmtime C API release directory named by ``WASMPY_WASMTIME_DIR``
(``include/`` + ``lib/``); in that case the extension is compiled against the
real headers, so the C compiler checks wasmpy's declarations in ``csrc/``.
"""

import importlib.util
import os
from pathlib import Path

from cffi import FFI

CSRC = Path(__file__).resolve().parent / "csrc"
# In dependency order: each header uses only types declared before it.
HEADERS = ["types.h", "engine.h", "error.h", "store.h", "module.h", "func.h", "memory.h",
           "global.h", "table.h", "instance.h", "wasi.h", "wat.h", "wasmpy.h",
           # The component model (wasmpy.component); callbacks.h is cdef-only (extern "Python").
           "component/types.h", "component/component.h", "component/val.h", "component/func.h",
           "component/linker.h", "component/wasi.h", "component/helpers.h", "component/callbacks.h"]


def wasmtime_library():
    """Returns (include_dir or None, library path) of the wasmtime C library to bundle."""
    release = os.environ.get("WASMPY_WASMTIME_DIR")
    if release:
        release = Path(release)
        return release / "include", release / "lib" / "libwasmtime.so"
    spec = importlib.util.find_spec("wasmtime")
    if spec is None or spec.origin is None:
        raise RuntimeError("building wasmpy needs the wasmtime==50.0.1 wheel "
                           "(a build requirement) or WASMPY_WASMTIME_DIR")
    return None, Path(spec.origin).parent / "linux-x86_64" / "_libwasmtime.so"


INCLUDE_DIR, LIBRARY = wasmtime_library()
# Shared with the wasmpy._native extension (setup.py).
BUILD_OPTIONS = dict(
    include_dirs=[str(CSRC)] + ([str(INCLUDE_DIR)] if INCLUDE_DIR else []),
    define_macros=[("WASMPY_REAL_HEADERS", "1")] if INCLUDE_DIR else [],
    library_dirs=[str(LIBRARY.parent)],
    # pthread: where glibc is older than 2.34, the stack bounds' functions (csrc/stack.h) are there.
    libraries=["pthread"],
    extra_link_args=[f"-l:{LIBRARY.name}", "-Wl,-rpath,$ORIGIN"],
)

ffibuilder = FFI()
ffibuilder.cdef("\n".join((CSRC / name).read_text() for name in HEADERS))
ffibuilder.set_source("wasmpy._ffi", '#include "api.h"\n#include "wasmpy.c"\n#include "component/component.c"\n',
                      **BUILD_OPTIONS)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
