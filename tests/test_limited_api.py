"""wasmpy._native on the limited API of Python 3.11 (issue 13, item 2): one abi3 build of it serves
every supported Python.

- the built extension takes from Python no private name of the stable ABI (the underscored names
  it takes are those the limited headers' own macros expand to; test_abi3.py checks the rest);
- its C sources compile on the limited API of 3.11 with the running Python's headers, without a
  warning (a deprecation there is a function the one binary may not find on a later Python);
- values.c's types are heap types that behave as its static types did: immutable, FuncCall made
  only by bind_func, and their instances visit their type (which they hold) for the cyclic GC;
- what values.c reads while Python code runs stays alive: instantiate() writes only the imports it
  made room for, whatever Python code does to the list; a host function's list of results is read
  from a tuple of its items.
"""

from __future__ import annotations

import gc
import shutil
import struct
import subprocess
import sys
import sysconfig
import weakref
from pathlib import Path
from typing import List

import pytest

import wasmpy
from wasmpy import FuncType, ValType
from wasmpy._native import FuncCall, HostCall

from childproc import child_json, run_python
from test_packaging import Elf

NATIVE = Path(wasmpy._native.__file__)
CSRC = Path(__file__).resolve().parent.parent / "csrc"
NATIVE_SOURCES = ["native.c", "signals.c", "ticker.c", "values.c", "output.c"]
LIMITED_API = "0x030B0000"  # setup.py's NATIVE_LIMITED_API: Python 3.11

# The underscored stable-ABI names that the limited headers' macros name (Py_DECREF, Py_None and
# the other singletons, PY_SSIZE_T_CLEAN's argument parsers): any other underscored name is private.
MACRO_NAMES = {
    "_Py_Dealloc", "_Py_NoneStruct", "_Py_TrueStruct", "_Py_FalseStruct", "_Py_NotImplementedStruct",
    "_Py_EllipsisObject", "_Py_IncRef", "_Py_DecRef",
    "_PyArg_ParseTuple_SizeT", "_PyArg_ParseTupleAndKeywords_SizeT", "_PyArg_Parse_SizeT",
    "_Py_BuildValue_SizeT", "_PyObject_CallFunction_SizeT", "_PyObject_CallMethod_SizeT",
    "_PyObject_New", "_PyObject_GC_New",
}

SHT_DYNSYM, SHN_UNDEF = 11, 0


def undefined_symbols(path: Path) -> List[str]:
    """The names of the dynamic symbols ``path`` takes from elsewhere (the interpreter, libc...)."""
    elf = Elf(path)
    names = []
    for kind, offset, size, link in elf.sections:
        if kind != SHT_DYNSYM:
            continue
        for entry in range(offset + 24, offset + size, 24):  # entry 0 is the null symbol
            name, _, _, section = struct.unpack_from("<IBBH", elf.data, entry)
            if section == SHN_UNDEF and name:
                names.append(elf._string(link, name))
    return names


def test_native_takes_no_private_name_from_python():
    """test_abi3.py checks the names against the stable ABI, which lists private ones too
    (_PyWeakref_RefType, which PyWeakref_CheckRef() names): of those, only the macros' own."""
    assert NATIVE.name == "_native.abi3.so", NATIVE
    taken = [name for name in undefined_symbols(NATIVE) if name.startswith(("Py", "_Py"))]
    assert "PyObject_Vectorcall" in taken, taken  # what the module's calls go through
    private = sorted(name for name in taken if name.startswith("_") and name not in MACRO_NAMES)
    assert private == [], private


@pytest.mark.parametrize("source", NATIVE_SOURCES)
def test_the_sources_compile_on_the_limited_api_without_a_warning(source):
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler on PATH")
    include = Path(sysconfig.get_paths()["include"])
    assert (include / "Python.h").is_file(), f"{include}: no Python.h (python3-dev)"
    assert (CSRC / source).is_file(), f"{CSRC / source}: the tests run from a checkout that has csrc/"
    command = [compiler, "-fsyntax-only", "-Wall", "-Werror", f"-DPy_LIMITED_API={LIMITED_API}",
               f"-I{CSRC}", f"-I{include}", str(CSRC / source)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"Python {sys.version.split()[0]}:\n{result.stderr}"


WAT = """
(module
  (func (export "ident_ref") (param externref) (result externref) local.get 0))
"""


@pytest.fixture
def calls(store) -> FuncCall:
    """The FuncCall of an exported function (its call path for every signature)."""
    func = wasmpy.Instance(wasmpy.Module(WAT, store.engine), store=store).exports.ident_ref
    assert func(func) is func
    return func._calls


@pytest.fixture
def host_call(store) -> HostCall:
    from wasmpy._func import _HostFunction

    functype = FuncType([ValType.externref], [ValType.externref])
    host = _HostFunction(store, lambda value: value, functype)
    return HostCall(host, host.fn, weakref.ref(store), functype.params, functype.results)


def test_func_calls_visit_their_type(calls):
    assert type(calls) is FuncCall
    assert FuncCall in gc.get_referents(calls)


def test_host_calls_visit_their_type(host_call):
    assert HostCall in gc.get_referents(host_call)


@pytest.mark.parametrize("cls", [FuncCall, HostCall])
def test_the_types_are_immutable(cls):
    with pytest.raises(TypeError, match="immutable"):
        cls.extra = 1
    assert not hasattr(cls, "extra")


def test_func_calls_are_made_only_by_bind_func():
    with pytest.raises(TypeError, match="cannot create"):
        FuncCall()


def test_host_calls_take_the_store_as_a_weak_reference(store):
    with pytest.raises(TypeError, match="weakref"):
        HostCall(object(), len, store, (), ())


# --- instantiate() and the list of imports


def test_instantiate_writes_only_the_imports_it_made_room_for():
    """Python code run while the imports are written (here a Global subclass's __class__, which
    isinstance() reads) grows the list, then empties it: C writes the imports it counted when it
    made room for them, and a list that lost some raises IndexError instead of instantiating with
    imports never written."""
    proc = run_python("""
        import json
        import wasmpy
        from wasmpy import GlobalType
        from wasmpy._instance import _plan
        from wasmpy._native import instantiate

        imports = []

        class Growing(wasmpy.Global):
            __slots__ = ()

            @property
            def __class__(self):
                if imports:  # not while it is made
                    imports.extend([imports[0]] * 100)  # past the 8 imports written on the C stack
                return wasmpy.Global

        class Emptying(wasmpy.Global):
            __slots__ = ()

            @property
            def __class__(self):
                imports.clear()
                return wasmpy.Global

        store = wasmpy.Store()
        module = wasmpy.Module('''(module
          (import "m" "a" (global i32)) (import "m" "b" (global i32))
          (func (export "sum") (result i32) global.get 0 global.get 1 i32.add))''', store.engine)
        address = _plan(module).address
        i32 = GlobalType("i32")
        imports[:] = [Growing(store, i32, 40), Growing(store, i32, 2)]
        instance = instantiate(store, store._handle, address, imports)
        grown = len(imports)

        imports[:] = [Emptying(store, i32, 1), Emptying(store, i32, 2)]
        try:
            instantiate(store, store._handle, address, imports)
            emptied = "instantiated"
        except IndexError as error:
            emptied = f"IndexError: {error}"
        print(json.dumps({"instance": isinstance(instance, bytes), "grown": grown, "emptied": emptied}))
    """, timeout=120)
    found = child_json(proc)
    assert found["instance"] and found["grown"] > 8, found
    assert found["emptied"].startswith("IndexError"), found


def test_a_host_functions_list_of_results_is_read_from_a_tuple_of_its_items(monkeypatch):
    """Converting a result may run Python code (here an __index__) that empties the list the host
    function returned, freeing its other items, which C converts next: from a tuple of them it made.
    (Python's debug allocator overwrites freed memory, so that reading it crashes.)"""
    monkeypatch.setenv("PYTHONMALLOC", "debug")
    proc = run_python("""
        import json
        import wasmpy
        from wasmpy import FuncType

        returned = []

        class Empties:
            def __index__(self):
                returned.clear()
                return 7

        def host():
            returned[:] = [Empties(), object()]  # the object is the list's alone
            return returned

        store = wasmpy.Store()
        module = wasmpy.Module('''(module
          (import "m" "f" (func $f (result i32 externref)))
          (func (export "g") (result i32 externref) call $f))''', store.engine)
        host_func = wasmpy.Func(store, host, FuncType([], ["i32", "externref"]))
        number, item = wasmpy.Instance(module, {"m": {"f": host_func}}, store).exports.g()
        print(json.dumps({"number": number, "item": type(item).__name__}))
    """, timeout=120)
    assert child_json(proc) == {"number": 7, "item": "object"}
