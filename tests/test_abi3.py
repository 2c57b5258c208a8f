"""One build of ``wasmpy._native`` for every supported Python (issue 13, item 2): it is built on the
limited API of 3.11 (``_native.abi3.so``), needs nothing of CPython outside the stable ABI but the
two vectorcall functions that 3.11 exports and 3.12 made stable, loads and calls wasm in every
CPython from 3.11 on that this machine has, and keeps Func on vectorcall on all of them; the heap
types it is made of release their type and take part in Python's GC like the static ones did."""

import ctypes
import gc
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import weakref
from pathlib import Path

import pytest

import wasmpy
from wasmpy import _native
from wasmpy._func import Func

HAVE_VECTORCALL = 1 << 11  # Py_TPFLAGS_HAVE_VECTORCALL
# Stable ABI from 3.12 on, exported by 3.11 (csrc/limited.h says why _native may use them).
VECTORCALL_FUNCTIONS = {"PyObject_Vectorcall", "PyVectorcall_Call"}
# Stable ABI since 3.2 (what PyModule_Create() calls), left out of the list CPython's test of the stable
# ABI checks because Py_TRACE_REFS builds rename it.
UNLISTED_STABLE_FUNCTIONS = {"PyModule_Create2"}

ADD = '(module (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1))))'
GCD_AND_MEMORY = """
(module
  (memory (export "memory") 1)
  (func (export "gcd") (param $a i32) (param $b i32) (result i32)
    (block $done
      (loop $again
        (br_if $done (i32.eqz (local.get $b)))
        (local.get $b)
        (local.set $b (i32.rem_u (local.get $a) (local.get $b)))
        (local.set $a)
        (br $again)))
    (local.get $a)))
"""


def test_native_is_the_abi3_build():
    assert Path(_native.__file__).name == "_native.abi3.so"


def _undefined_symbols(library: str):
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("nm (binutils) is not installed")
    listing = subprocess.run([nm, "-D", "--undefined-only", library], capture_output=True, text=True, check=True)
    return {line.split()[-1].split("@")[0] for line in listing.stdout.splitlines() if line.strip()}


def test_native_needs_only_the_stable_abi():
    # The stable ABI of the running Python, as CPython's own test of it lists it.
    stable_abi = pytest.importorskip("test.test_stable_abi_ctypes", reason="CPython's test package is not installed")
    python_symbols = {name for name in _undefined_symbols(_native.__file__) if re.match(r"_?Py", name)}
    assert python_symbols, "nm found none of CPython's symbols"
    allowed = set(stable_abi.SYMBOL_NAMES) | UNLISTED_STABLE_FUNCTIONS
    if sys.version_info >= (3, 12):
        assert VECTORCALL_FUNCTIONS <= allowed
    else:
        allowed |= VECTORCALL_FUNCTIONS
    assert sorted(python_symbols - allowed) == []


def test_funcs_are_called_through_vectorcall_and_keep_their_class_names():
    add = wasmpy.Instance(wasmpy.Module(ADD)).exports.add
    assert type(add) is Func and type(add).__flags__ & HAVE_VECTORCALL
    assert (Func.__module__, Func.__name__, Func.__qualname__) == ("wasmpy", "Func", "Func")  # wasmpy.Func: __init__.py
    assert Func.__doc__.startswith("A WebAssembly function, callable from Python.")
    assert add(2, 3) == 5 and Func.__call__(add, 2, 3) == 5
    with pytest.raises(AttributeError):
        add.anything = 1  # __slots__ only, as the class statement says: no __dict__ came with the subclass

    class Traced(Func):
        """A user's subclass: its own __call__ wins."""

        def __call__(self, *args):
            return ("traced", super().__call__(*args))

    traced = Traced(wasmpy.Store(), lambda a, b: a - b, wasmpy.FuncType(["i32", "i32"], ["i32"]))
    assert traced(5, 3) == ("traced", 2)


def test_vectorcall_subclass_refuses_classes_it_would_bypass_or_cannot_call():
    class WithCall(_native.Caller):
        def __call__(self):
            return "own"

    with pytest.raises(TypeError, match="defines __call__"):
        _native.vectorcall_subclass(WithCall)
    for not_a_caller in (int, object, object()):
        with pytest.raises(TypeError, match="needs a subclass of Caller"):
            _native.vectorcall_subclass(not_a_caller)


def test_the_native_base_types_are_immutable_like_static_types():
    for cls in (_native.Caller, _native.MemoryBase, _native.StoreHandle, _native.HostFunc):
        with pytest.raises(TypeError, match="immutable"):
            cls.anything = 1


def _make_objects_of_every_native_type(count: int):
    module = wasmpy.Module(GCD_AND_MEMORY)
    for _ in range(count):
        store = wasmpy.Store()
        exports = wasmpy.Instance(module, {}, store).exports
        host = Func(store, lambda a: a, wasmpy.FuncType(["i32"], ["i32"]))  # a HostFunc and a Func
        assert exports.gcd(12, 18) == 6 and exports.memory.read(0, 1) == b"\0" and host(7) == 7
        del exports, host
        store.close()


def test_instances_release_their_heap_type():
    """Each instance of a heap type holds a reference to it, which its dealloc gives back."""
    types = [Func, wasmpy.Memory, _native.StoreHandle, _native.HostFunc]
    _make_objects_of_every_native_type(2)  # caches filled once
    gc.collect()
    before = [sys.getrefcount(cls) for cls in types]
    _make_objects_of_every_native_type(100)
    gc.collect()
    assert [sys.getrefcount(cls) for cls in types] == before


def test_funcs_and_memories_in_reference_cycles_are_collected():
    exports = wasmpy.Instance(wasmpy.Module(GCD_AND_MEMORY)).exports
    gcd, memory = exports.gcd, exports.memory
    gcd.name = [gcd]  # through a slot of the class statement's Func, under the subclass from a spec
    memory.cycle = [memory]  # through the __dict__ of Memory, a Python subclass of MemoryBase
    gone = [weakref.ref(gcd), weakref.ref(memory)]
    del exports, gcd, memory
    gc.collect()
    assert [ref() for ref in gone] == [None, None]


# --- the same file on every CPython from 3.11 on that this machine has

# In a child interpreter of any version, with nothing but the standard library: loads this build of
# _native from its file and drives it with wasmtime's C API through ctypes (a store, the GCD_AND_MEMORY
# module, a call on the fast path and one on the slow path, the memory's buffer).
LOAD_AND_CALL = textwrap.dedent("""
    import ctypes, importlib.util, json, os, sys
    native_path, wasm = sys.argv[1], bytes.fromhex(sys.argv[2])
    spec = importlib.util.spec_from_file_location("wasmpy._native", native_path)
    native = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(native)

    class Func(ctypes.Structure):
        _fields_ = [("store_id", ctypes.c_uint64), ("private", ctypes.c_void_p)]

    class Extern(ctypes.Structure):  # wasmtime_extern_t: a kind, then a union of 24 bytes
        _fields_ = [("kind", ctypes.c_uint8), ("of", ctypes.c_uint64 * 3)]

    class Instance(ctypes.Structure):
        _fields_ = [("store_id", ctypes.c_uint64), ("private", ctypes.c_size_t)]

    P = ctypes.c_void_p
    lib = ctypes.CDLL(os.path.join(os.path.dirname(native_path), "_libwasmtime.so"))
    for name, restype, argtypes in [
            ("wasm_engine_new", P, []),
            ("wasmtime_store_new", P, [P, P, P]),
            ("wasmtime_store_context", P, [P]),
            ("wasmtime_module_new", P, [P, ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(P)]),
            ("wasmtime_instance_new", P, [P, P, P, ctypes.c_size_t, ctypes.POINTER(Instance), ctypes.POINTER(P)]),
            ("wasmtime_instance_export_get", ctypes.c_bool,
             [P, ctypes.POINTER(Instance), ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(Extern)])]:
        getattr(lib, name).restype, getattr(lib, name).argtypes = restype, argtypes

    engine = lib.wasm_engine_new()
    store = lib.wasmtime_store_new(engine, None, None)
    handle = native.StoreHandle(store)  # owns the store from here on
    context = lib.wasmtime_store_context(store)
    module, trap, instance = P(), P(), Instance()
    assert lib.wasmtime_module_new(engine, wasm, len(wasm), ctypes.byref(module)) is None
    assert lib.wasmtime_instance_new(context, module, None, 0, ctypes.byref(instance), ctypes.byref(trap)) is None
    exports = {}
    for name in (b"gcd", b"memory"):
        exports[name] = Extern()
        assert lib.wasmtime_instance_export_get(context, ctypes.byref(instance), name, len(name),
                                                ctypes.byref(exports[name]))

    class Gcd(native.Caller):
        pass

    Gcd = native.vectorcall_subclass(Gcd)
    gcd = Gcd()
    gcd._bind_native(handle, ctypes.addressof(exports[b"gcd"]) + Extern.of.offset, bytes([0, 0]), bytes([0]),
                     lambda self, *args: ("slow path", args), None)
    memory = native.MemoryBase()
    memory._bind_memory(handle, ctypes.addressof(exports[b"memory"]) + Extern.of.offset, False)
    memory.write(8, b"abi3")
    view = memoryview(memory)
    outcome = {"version": list(sys.version_info[:2]), "gcd": gcd(27, 6), "slow": list(gcd(27)[1]),
               "vectorcall": bool(Gcd.__flags__ & (1 << 11)), "read": memory.read(8, 4).decode(),
               "view": bytes(view[8:12]).decode(), "size": memory.data_size}
    view.release()
    handle.close()
    print(json.dumps(outcome))
    """)


def _cpythons_from_3_11():
    """The CPython executables of 3.11 and later (with the GIL: abi3 is not for free-threaded builds) on
    PATH or in pyenv, one per version, this one included."""
    candidates = [sys.executable]
    pyenv_versions = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    for directory in sorted(pyenv_versions.glob("3.*")):
        match = re.fullmatch(r"3\.(\d+)\.\d+", directory.name)
        if match and int(match.group(1)) >= 11:
            candidates.append(str(directory / "bin" / f"python3.{match.group(1)}"))
    candidates += filter(None, (shutil.which(f"python3.{minor}") for minor in range(11, 40)))
    found = {}
    probe = ("import json, sys, sysconfig; print(json.dumps([sys.implementation.name, sys.version_info[:2], "
             "bool(sysconfig.get_config_var('Py_GIL_DISABLED'))]))")
    for executable in candidates:
        try:
            answer = subprocess.run([executable, "-I", "-c", probe], capture_output=True, text=True, timeout=60)
            name, version, free_threaded = json.loads(answer.stdout)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            continue  # not an interpreter that runs (a pyenv shim for a version not selected, say)
        if name == "cpython" and tuple(version) >= (3, 11) and not free_threaded:
            found.setdefault(tuple(version), executable)
    return found


def test_the_one_build_loads_and_calls_wasm_on_every_cpython_from_3_11_here():
    pythons = _cpythons_from_3_11()
    assert tuple(sys.version_info[:2]) in pythons
    wasm = wasmpy.wat2wasm(GCD_AND_MEMORY)
    for version, executable in sorted(pythons.items()):
        proc = subprocess.run([executable, "-I", "-c", LOAD_AND_CALL, _native.__file__, wasm.hex()],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, f"Python {version} ({executable}):\n{proc.stderr[-3000:]}"
        outcome = json.loads(proc.stdout.splitlines()[-1])
        assert outcome == {"version": list(version), "gcd": 3, "slow": [27], "vectorcall": True,
                           "read": "abi3", "view": "abi3", "size": 65536}, executable


def test_the_layout_the_child_assumes_is_wasmtimes():
    """LOAD_AND_CALL describes wasmtime's structs in ctypes; these are the sizes wasmpy compiles with."""
    from wasmpy._ffi import ffi
    assert ffi.sizeof("wasmtime_extern_t") == 32 and ffi.offsetof("wasmtime_extern_t", "of") == 8
    assert ffi.sizeof("wasmtime_extern_union_t") == 3 * ctypes.sizeof(ctypes.c_uint64)
    assert ffi.sizeof("wasmtime_func_t") == ffi.sizeof("wasmtime_instance_t") == 16
    assert sysconfig.get_config_var("SIZEOF_VOID_P") == 8
