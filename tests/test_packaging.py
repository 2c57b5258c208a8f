"""What a wheel carries (issue 13): the compiled extensions must run on the oldest glibc the bundled
wasmtime library allows (2.28: the wheel's manylinux_2_28 tag) and must look for libraries only
beside themselves (``$ORIGIN``), not in a directory of the machine that built them. And the tests'
child interpreters must import the wasmpy under test, not an unbuilt checkout beside it.

The ELF files are read here, without binutils: the version requirements (``.gnu.version_r``) and
the dynamic section's run-time search paths.
"""

from __future__ import annotations

import re
import struct
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

import wasmpy
import test_cli
from childproc import child_json, run_python

PACKAGE = Path(wasmpy.__file__).resolve().parent
EXTENSIONS = sorted(path for path in PACKAGE.glob("_*.so") if path.name != "_libwasmtime.so")
BUNDLED_LIBRARY = PACKAGE / "_libwasmtime.so"
OLDEST_GLIBC = (2, 28)  # what the bundled wasmtime library needs, so the wheel can claim no older

SHT_DYNAMIC, SHT_GNU_VERNEED = 6, 0x6FFFFFFE
DT_NULL, DT_RPATH, DT_RUNPATH = 0, 15, 29


class Elf:
    """The parts of a 64-bit little-endian ELF shared object that these tests read."""

    def __init__(self, path: Path) -> None:
        self.data = path.read_bytes()
        assert self.data[:4] == b"\x7fELF" and self.data[4] == 2 and self.data[5] == 1, f"{path}: not ELF64 LE"
        section_offset, = struct.unpack_from("<Q", self.data, 0x28)
        entry_size, count, _ = struct.unpack_from("<HHH", self.data, 0x3A)
        # (type, offset, size, link) of each section
        self.sections = [struct.unpack_from("<4xI16xQQI", self.data, section_offset + index * entry_size)
                         for index in range(count)]

    def _string(self, table: int, offset: int) -> str:
        start = self.sections[table][1] + offset
        return self.data[start:self.data.index(b"\0", start)].decode()

    def search_paths(self) -> List[str]:
        """The DT_RPATH and DT_RUNPATH entries, split at ':'."""
        paths: List[str] = []
        for kind, offset, size, link in self.sections:
            if kind != SHT_DYNAMIC:
                continue
            for entry in range(offset, offset + size, 16):
                tag, value = struct.unpack_from("<qQ", self.data, entry)
                if tag == DT_NULL:
                    break
                if tag in (DT_RPATH, DT_RUNPATH):
                    paths += self._string(link, value).split(":")
        return paths

    def needed_versions(self) -> Dict[str, List[str]]:
        """Each shared library the object needs versioned symbols of, with those versions."""
        needs: Dict[str, List[str]] = {}
        for kind, offset, _, link in self.sections:
            if kind != SHT_GNU_VERNEED:
                continue
            need = offset
            while True:
                _, aux_count, file_name, aux, next_need = struct.unpack_from("<HHIII", self.data, need)
                versions = needs.setdefault(self._string(link, file_name), [])
                entry = need + aux
                for _ in range(aux_count):
                    _, _, _, name, next_aux = struct.unpack_from("<IHHII", self.data, entry)
                    versions.append(self._string(link, name))
                    entry += next_aux
                if not next_need:
                    break
                need += next_need
        return needs


def glibc_versions(path: Path) -> List[Tuple[int, ...]]:
    """The GLIBC_x.y[.z] symbol versions that ``path`` needs, from any of glibc's libraries."""
    return [tuple(int(part) for part in version[len("GLIBC_"):].split("."))
            for versions in Elf(path).needed_versions().values()
            for version in versions if re.fullmatch(r"GLIBC_[0-9.]+", version)]


def test_the_package_has_its_extensions():
    names = {path.name.split(".")[0] for path in EXTENSIONS}
    assert names == {"_ffi", "_native"}, EXTENSIONS
    assert BUNDLED_LIBRARY.is_file()


@pytest.mark.parametrize("library", [*EXTENSIONS, BUNDLED_LIBRARY], ids=lambda path: path.name)
def test_no_glibc_newer_than_the_bundled_library_allows(library):
    """Regression: pthread_getattr_np@GLIBC_2.32 and pthread_attr_getstack@GLIBC_2.34 (csrc/stack.h)
    made the extensions, and so the wheel, need glibc 2.34."""
    versions = glibc_versions(library)
    assert versions, f"{library.name}: no glibc versions found (the reader is wrong?)"
    too_new = sorted({version for version in versions if version > OLDEST_GLIBC})
    assert too_new == [], f"{library.name} needs " + ", ".join("GLIBC_" + ".".join(map(str, v)) for v in too_new)


def test_the_bundled_library_sets_the_oldest_glibc():
    """The bound above is the bundled wasmtime library's own: if an update of wasmtime moves it,
    OLDEST_GLIBC (and tools/build_wheel.sh's check) must move with it."""
    assert max(glibc_versions(BUNDLED_LIBRARY)) == OLDEST_GLIBC


@pytest.mark.parametrize("library", EXTENSIONS, ids=lambda path: path.name)
def test_extensions_look_for_libraries_only_beside_themselves(library):
    """Regression: the extensions' RUNPATH began with the build machine's Python library directory
    (from Python's own link flags), ahead of $ORIGIN."""
    assert Elf(library).search_paths() == ["$ORIGIN"]


def test_the_extensions_load_the_bundled_library():
    """$ORIGIN is enough: in a child, the wasmtime library mapped is the package's own."""
    result = child_json(run_python("""
        import json
        import wasmpy
        with open("/proc/self/maps") as maps:
            paths = sorted({line.split()[-1] for line in maps if "libwasmtime" in line})
        print(json.dumps({"paths": paths}))
    """))
    assert result["paths"] == [str(BUNDLED_LIBRARY)]


def test_the_stack_bounds_work_in_the_main_thread_and_in_other_threads():
    """The stack bounds come from pthread_getattr_np's old version now: calls run in the main thread
    and in a thread with a 2 MiB stack (a call needs 768 KiB left by default), and one that needs
    more than the thread has (2 MiB of wasm stack and a margin) is refused."""
    result = child_json(run_python("""
        import json, threading
        import wasmpy
        add = wasmpy.Instance(wasmpy.Module(
            '(module (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))')).exports.add
        engine = wasmpy.Engine(max_wasm_stack=2 << 20)
        deep = wasmpy.Instance(wasmpy.Module('(module (func (export "f")))', engine),
                               store=wasmpy.Store(engine)).exports.f
        outcomes = {"main": add(1, 2)}

        def in_thread():
            outcomes["thread"] = add(2, 3)
            try:
                deep()
                outcomes["deep"] = "ran"
            except RecursionError:
                outcomes["deep"] = "RecursionError"

        threading.stack_size(2 << 20)
        thread = threading.Thread(target=in_thread)
        thread.start()
        thread.join()
        print(json.dumps(outcomes))
    """))
    assert result == {"main": 3, "thread": 5, "deep": "RecursionError"}


@pytest.mark.parametrize("how", ["run_isolated", "run_python", "test_cli.child_env"])
def test_child_interpreters_import_the_wasmpy_under_test(how, run_isolated, tmp_path):
    """Regression: run_isolated and the CLI tests put the checkout first on PYTHONPATH, so against
    an installed wheel their children imported the checkout's unbuilt wasmpy/ and failed."""
    code = "import wasmpy; print(wasmpy.__file__)"
    if how == "run_isolated":
        done = run_isolated(code)
    elif how == "run_python":
        done = run_python(code)
    else:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                              env=test_cli.child_env(), timeout=120)
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()).resolve() == Path(wasmpy.__file__).resolve()


def test_the_metadata_names_both_licenses():
    """The wheel bundles the wasmtime C library, whose licence (Apache-2.0 WITH LLVM-exception)
    must travel with it (tools/build_wheel.sh checks that both files are in the wheel and sdist)."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        metadata = distribution("wasmpy").metadata
    except PackageNotFoundError:
        pytest.skip("wasmpy is imported from a checkout that is not installed: no metadata to read")
    assert metadata["License-Expression"] == "Apache-2.0 AND (Apache-2.0 WITH LLVM-exception)"
    assert sorted(metadata.get_all("License-File")) == ["LICENSE", "licenses/wasmtime-LICENSE"]
