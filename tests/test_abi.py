"""wasmpy's C declarations (csrc/*.h) against the real ABI of wasmtime 50.0.1.

wasmpy compiles against its own copy of wasmtime's declarations, not the upstream
headers, so nothing but this test stops a struct in csrc/ from drifting away from
the library it is linked to: a wrong field order, field size or padding would
compile cleanly and then corrupt memory at run time. The wasmtime wheel's
``wasmtime._bindings`` is a ctypes description generated from the headers of that
exact release, so every struct and union wasmpy declares is compared with it:
total size and alignment, and the name, offset, size, alignment and kind (signed,
unsigned, float, pointer, ...) of every field, recursing into nested structs,
unions and arrays. A type wasmpy keeps opaque (handles only through pointers)
just has to exist in wasmtime as the same kind of aggregate. The types to check
come from ``ffi.list_types()``, so a newly declared struct is checked without
touching this file.
"""

import ctypes
import importlib.metadata
import keyword

import cffi
import pytest

bindings = pytest.importorskip("wasmtime._bindings")

import wasmpy  # noqa: E402
from wasmpy._ffi import ffi as wasmpy_ffi  # noqa: E402
from wasmpy._ffi import lib as wasmpy_lib  # noqa: E402

BINDINGS_VERSION = importlib.metadata.version("wasmtime")
if BINDINGS_VERSION != wasmpy.WASMTIME_VERSION:
    pytest.skip(f"wasmtime._bindings describes wasmtime {BINDINGS_VERSION}, "
                f"not the bundled {wasmpy.WASMTIME_VERSION}", allow_module_level=True)

CTYPES_BASES = (ctypes._SimpleCData, ctypes.Structure, ctypes.Union, ctypes.Array, ctypes._Pointer,
                ctypes._CFuncPtr)
SIMPLE_KINDS = {  # the kind of each ctypes simple type, by its type code (_type_)
    **dict.fromkeys("bhilq", "signed int"), **dict.fromkeys("BHILQ", "unsigned int"),
    **dict.fromkeys("fdg", "float"), "?": "bool", **dict.fromkeys("PzZ", "pointer"),
}


def tag(ctype):
    """The tag of a cffi struct or union, which is its name in ctypes (``union wasmtime_val_raw``)."""
    return ctype.cname.split()[-1]


def declared_aggregates(ffi):
    """Maps each struct and union `ffi` declares to every name it is declared under, its tag first."""
    typedefs, structs, unions = ffi.list_types()
    declared = {ffi.typeof(f"{kind} {name}"): [name]
                for kind, names in (("struct", structs), ("union", unions)) for name in names}
    for name in typedefs:
        ctype = ffi.typeof(name)
        if ctype.kind in ("struct", "union"):
            declared.setdefault(ctype, []).append(name)
    return declared


def counterpart(names):
    """The ctypes type that ``wasmtime._bindings`` gives the C type wasmpy declares under `names`."""
    found = {}
    for name in names:
        value = getattr(bindings, name, None)
        if isinstance(value, type) and issubclass(value, CTYPES_BASES):
            found[name] = value
    if not found:
        pytest.fail(f"{names[0]} has no counterpart in wasmtime._bindings (looked for {', '.join(names)}): "
                    "is it really part of wasmtime's C API?")
    if len(set(found.values())) > 1:
        pytest.fail("wasmtime._bindings gives these names different types: "
                    + ", ".join(f"{name} = {ctype.__name__}" for name, ctype in found.items()))
    return next(iter(found.values()))


def cffi_kind(ffi, ctype):
    """What sort of C type `ctype` is, in the vocabulary of `ctypes_kind`."""
    if ctype.kind in ("struct", "union"):
        try:
            ffi.sizeof(ctype)
        except ffi.error:  # never read .fields of an opaque type: cffi aborts the interpreter
            return f"opaque {ctype.kind}"
        return ctype.kind
    if ctype.kind == "function":  # a function pointer
        return "pointer"
    if ctype.kind in ("pointer", "array"):
        return ctype.kind
    if ctype.cname in ("float", "double", "long double"):
        return "float"
    if ctype.cname == "_Bool":
        return "bool"
    return "signed int" if int(ffi.cast(ctype, -1)) < 0 else "unsigned int"


def ctypes_kind(ctype):
    """What sort of C type the ctypes type `ctype` is, in the vocabulary of `cffi_kind`."""
    for base, kind in ((ctypes.Structure, "struct"), (ctypes.Union, "union")):
        if issubclass(ctype, base):
            return kind if hasattr(ctype, "_fields_") else f"opaque {kind}"
    if issubclass(ctype, ctypes.Array):
        return "array"
    if issubclass(ctype, (ctypes._Pointer, ctypes._CFuncPtr)):
        return "pointer"
    return SIMPLE_KINDS.get(ctype._type_, f"ctypes type code {ctype._type_!r}")


def ctypes_fields(ctype, base=0):
    """Yields (C name, type, offset) for the fields of a ctypes struct or union.

    Members of anonymous structs and unions, which the bindings generator wraps in a
    field named ``_anon_N``, are flattened into their parent, as C (and cffi) do;
    members that are Python keywords get their C name back (``global_`` -> ``global``).
    """
    for name, field_type, *_ in ctype._fields_:
        offset = base + getattr(ctype, name).offset
        if name.startswith("_anon_"):
            yield from ctypes_fields(field_type, offset)
        else:
            c_name = name[:-1] if name.endswith("_") and keyword.iskeyword(name[:-1]) else name
            yield c_name, field_type, offset


def layout_mismatches(ffi, ours, theirs, path):
    """How the cffi type `ours` (of `ffi`) differs in layout from the ctypes type `theirs` (none: they agree).

    A type wasmpy declares opaque (handled only through pointers) just has to be the
    same kind of aggregate. A union may leave out members wasmpy never uses, as long
    as its size and alignment are still right.
    """
    our_kind, their_kind = cffi_kind(ffi, ours), ctypes_kind(theirs)
    if our_kind.startswith("opaque ") and their_kind.split()[-1] == our_kind.split()[-1]:
        return []
    if our_kind != their_kind:
        return [f"{path}: {our_kind} in wasmpy, {their_kind} in wasmtime"]
    problems = [f"{path}: {what} {mine} in wasmpy, {real} in wasmtime"
                for what, mine, real in (("size", ffi.sizeof(ours), ctypes.sizeof(theirs)),
                                         ("alignment", ffi.alignof(ours), ctypes.alignment(theirs)))
                if mine != real]
    if our_kind == "array":
        if ours.length != theirs._length_:
            problems.append(f"{path}: length {ours.length} in wasmpy, {theirs._length_} in wasmtime")
        problems += layout_mismatches(ffi, ours.item, theirs._type_, f"{path}[]")
    elif our_kind in ("struct", "union"):
        their_fields = {name: (field_type, offset) for name, field_type, offset in ctypes_fields(theirs)}
        our_names = [name for name, _ in ours.fields]
        if our_kind == "struct" and our_names != list(their_fields):
            problems.append(f"{path}: fields ({', '.join(our_names)}) in wasmpy, "
                            f"({', '.join(their_fields)}) in wasmtime")
        for name, field in ours.fields:
            if name not in their_fields:
                if our_kind == "union":
                    problems.append(f"{path}.{name}: no such member in wasmtime")
                continue
            their_type, their_offset = their_fields[name]
            if field.offset != their_offset:
                problems.append(f"{path}.{name}: offset {field.offset} in wasmpy, {their_offset} in wasmtime")
            problems += layout_mismatches(ffi, field.type, their_type, f"{path}.{name}")
    return problems


DECLARED = declared_aggregates(wasmpy_ffi)


@pytest.mark.parametrize("ours, names", [pytest.param(ctype, names, id=tag(ctype))
                                         for ctype, names in DECLARED.items()])
def test_layout_matches_wasmtime(ours, names):
    if tag(ours).startswith("wasmpy"):  # wasmpy's own C helpers are named wasmpy_*
        pytest.skip("wasmpy's own type: wasmtime has nothing to compare it with")
    problems = layout_mismatches(wasmpy_ffi, ours, counterpart(names), tag(ours))
    assert not problems, "wasmpy's declaration differs from wasmtime's ABI:\n" + "\n".join(problems)


@pytest.mark.parametrize("declaration, expected", [
    pytest.param("struct wasmtime_func { uint64_t store_id; void *__private; };", [], id="faithful"),
    pytest.param("struct wasmtime_func { void *__private; uint64_t store_id; };", [
        "wasmtime_func: fields (__private, store_id) in wasmpy, (store_id, __private) in wasmtime",
        "wasmtime_func.__private: offset 0 in wasmpy, 8 in wasmtime",
        "wasmtime_func.store_id: offset 8 in wasmpy, 0 in wasmtime",
    ], id="field order"),
    pytest.param("struct wasmtime_instance { uint64_t store_id; uint32_t __private; };", [
        "wasmtime_instance.__private: size 4 in wasmpy, 8 in wasmtime",
        "wasmtime_instance.__private: alignment 4 in wasmpy, 8 in wasmtime",
    ], id="field size"),
    pytest.param("struct wasmtime_global { uint64_t store_id; uint32_t __private1, __private2; };", [
        "wasmtime_global: size 16 in wasmpy, 24 in wasmtime",
        "wasmtime_global: fields (store_id, __private1, __private2) in wasmpy, "
        "(store_id, __private1, __private2, __private3) in wasmtime",
    ], id="missing field"),
    pytest.param("struct wasmtime_memory { uint64_t store_id; uint32_t __private1; uint32_t __private2; };", [
        "wasmtime_memory: size 16 in wasmpy, 24 in wasmtime",
        "wasmtime_memory.__private2: offset 12 in wasmpy, 16 in wasmtime",
    ], id="anonymous struct dropped"),
    pytest.param("struct wasmtime_val { uint8_t kind; union { int64_t i64; uint8_t v128[8]; } of; };", [
        "wasmtime_val: size 16 in wasmpy, 32 in wasmtime",
        "wasmtime_val.of: size 8 in wasmpy, 24 in wasmtime",
        "wasmtime_val.of.v128: size 8 in wasmpy, 16 in wasmtime",
        "wasmtime_val.of.v128: length 8 in wasmpy, 16 in wasmtime",
    ], id="nested union"),
    pytest.param("union wasmtime_val_raw { int32_t i32; int64_t i64; float f32; double f64; uint8_t v128[16];"
                 " int32_t anyref; uint32_t externref; uint32_t exnref; uint64_t funcref; };", [
        "wasmtime_val_raw.anyref: signed int in wasmpy, unsigned int in wasmtime",
        "wasmtime_val_raw.funcref: unsigned int in wasmpy, pointer in wasmtime",
    ], id="field kind"),
])
def test_slips_are_caught(declaration, expected):
    """The comparison itself catches layout slips, shown on deliberately wrong declarations."""
    scratch = cffi.FFI()
    scratch.cdef(declaration)
    ours, = declared_aggregates(scratch)
    assert layout_mismatches(scratch, ours, getattr(bindings, tag(ours)), tag(ours)) == expected


def test_type_unknown_to_wasmtime_fails():
    """A declared struct that wasmtime does not have is an error, not something to skip."""
    with pytest.raises(pytest.fail.Exception, match="wasmtime_made_up has no counterpart"):
        counterpart(["wasmtime_made_up", "wasmtime_made_up_t"])


# The component model (csrc/component/): its structs are among those checked above, and what
# no struct comparison covers is checked here: the kind constants, and every function's
# signature, which changed between releases (wasmtime 50's host function callback gained a
# function type argument; its wasmtime_component_func_t grew from 24 to 32 bytes).
COMPONENT_STRUCTS = ["wasmtime_component_func", "wasmtime_component_instance", "wasmtime_component_val",
                     "wasmtime_component_valtype_t", "wasmtime_component_item_t", "wasmtime_component_valrecord_entry",
                     "wasmtime_component_valvariant", "wasmtime_component_valresult", "wasmtime_component_vallist",
                     "wasmtime_component_valmap", "wasmtime_component_valmap_entry"]
# The map kinds, which the ``wasmtime`` package does not spell out: checked against the library
# itself instead (test_map_kind_constants_match_the_library).
MAP_KINDS = {"WASMTIME_COMPONENT_MAP", "WASMTIME_COMPONENT_VALTYPE_MAP"}


def test_component_structs_are_checked():
    checked = {tag(ctype) for ctype in DECLARED}
    assert not [name for name in COMPONENT_STRUCTS if name not in checked]
    assert wasmpy_ffi.sizeof("wasmtime_component_func_t") == 32  # 24 in wasmtime 49


def test_component_kind_constants_match_wasmtime():
    """The value kinds and the type kinds are numbered differently: each constant wasmpy declares
    has the value the ``wasmtime`` package gives it (its _ffi module spells them out)."""
    theirs_module = pytest.importorskip("wasmtime._ffi")
    ours = {name: getattr(wasmpy_lib, name) for name in dir(wasmpy_lib)
            if name.startswith("WASMTIME_COMPONENT_") and name not in MAP_KINDS}
    theirs = {name: getattr(theirs_module, name).value for name in dir(theirs_module)
              if name.startswith("WASMTIME_COMPONENT_")}
    assert ours and set(ours) <= set(theirs), f"unknown to wasmtime: {sorted(set(ours) - set(theirs))}"
    assert {name: value for name, value in ours.items() if theirs[name] != value} == {}
    assert (wasmpy_lib.WASMTIME_COMPONENT_U8, wasmpy_lib.WASMTIME_COMPONENT_VALTYPE_U8) == (2, 5)


def test_map_kind_constants_match_the_library():
    """The map kinds, from what the library itself gives: the type kind of a map parameter, as
    type reflection reads it, and the kind of the map value a call returns."""
    from pathlib import Path

    from wasmpy import Instance
    from wasmpy.component import Component

    component = Component.from_file(Path(__file__).parent / "components" / "maps.wasm")
    component_type = wasmpy_ffi.gc(wasmpy_lib.wasmtime_component_type(component._ptr),
                                   wasmpy_lib.wasmtime_component_type_delete)
    engine = component.engine._ptr
    name, length = wasmpy_ffi.new("const char **"), wasmpy_ffi.new("size_t *")
    extern = wasmpy_ffi.new("wasmtime_component_extern_t **")
    item = wasmpy_ffi.new("wasmtime_component_item_t *")
    for index in range(wasmpy_lib.wasmtime_component_type_export_count(component_type, engine)):
        assert wasmpy_lib.wasmtime_component_type_export_nth(component_type, engine, index, name, length, extern)
        if wasmpy_ffi.unpack(name[0], length[0]) == b"test:maps/api@0.1.0":
            break
    else:
        pytest.fail("maps.wasm exports no test:maps/api@0.1.0")
    wasmpy_lib.wasmtime_component_extern_type(extern[0], item)
    wasmpy_lib.wasmtime_component_extern_delete(extern[0])
    try:
        assert item.kind == wasmpy_lib.WASMTIME_COMPONENT_ITEM_COMPONENT_INSTANCE
        instance_type = item.of.component_instance
        kinds = set()
        for index in range(wasmpy_lib.wasmtime_component_instance_type_export_count(instance_type, engine)):
            assert wasmpy_lib.wasmtime_component_instance_type_export_nth(instance_type, engine, index, name, length,
                                                                          extern)
            function = wasmpy_ffi.new("wasmtime_component_item_t *")
            wasmpy_lib.wasmtime_component_extern_type(extern[0], function)
            wasmpy_lib.wasmtime_component_extern_delete(extern[0])
            result = wasmpy_ffi.new("wasmtime_component_valtype_t *")
            if wasmpy_lib.wasmtime_component_func_type_result(function.of.component_func, result):
                kinds.add(result.kind)
                wasmpy_lib.wasmtime_component_valtype_delete(result)
            wasmpy_lib.wasmtime_component_item_delete(function)
    finally:
        wasmpy_lib.wasmtime_component_item_delete(item)
    # Every api function returns a map but count-entries and sum-values (u32).
    assert kinds == {wasmpy_lib.WASMTIME_COMPONENT_VALTYPE_MAP, wasmpy_lib.WASMTIME_COMPONENT_VALTYPE_U32}
    assert wasmpy_lib.WASMTIME_COMPONENT_VALTYPE_MAP == 26

    groups = Instance(component, {"test:maps/host": {"tally": dict, "regroup": dict}}).exports.api.groups
    value_kinds = []
    result = groups._result
    groups._result = type(result)(result.type, result.prepare, result.write,
                                  lambda val: value_kinds.append(val.kind) or result.read(val))
    assert groups() == {1: ["one"], 2: ["two", "deux"]}
    assert value_kinds == [wasmpy_lib.WASMTIME_COMPONENT_MAP] and wasmpy_lib.WASMTIME_COMPONENT_MAP == 22


def signature_mismatches(ours, theirs, path):
    """How the cffi function type `ours` differs from the ctypes prototype (argtypes, restype) `theirs`."""
    their_args, their_result = theirs
    if len(ours.args) != len(their_args):
        return [f"{path}: {len(ours.args)} parameters in wasmpy, {len(their_args)} in wasmtime"]
    problems = []
    pairs = [("result", ours.result, their_result)] + [
        (f"parameter {index}", mine, real) for index, (mine, real) in enumerate(zip(ours.args, their_args))]
    for where, mine, real in pairs:
        if real is None:  # void
            if mine.kind != "void":
                problems.append(f"{path} {where}: {mine.cname} in wasmpy, void in wasmtime")
            continue
        our_kind = "void" if mine.kind == "void" else cffi_kind(wasmpy_ffi, mine)
        their_kind = ctypes_kind(real)
        if mine.kind == "function":  # a function pointer, to a callback: compare its signature too
            if not issubclass(real, ctypes._CFuncPtr):
                problems.append(f"{path} {where}: a function pointer in wasmpy, {their_kind} in wasmtime")
            else:
                problems += signature_mismatches(mine, (real._argtypes_, real._restype_), f"{path} {where}")
            continue
        # The generator gives a callback returning a pointer a size_t result: equal as long as the sizes are.
        if our_kind != their_kind and not (where == "result" and {our_kind, their_kind} == {"pointer", "unsigned int"}
                                           and wasmpy_ffi.sizeof(mine) == ctypes.sizeof(real)):
            problems.append(f"{path} {where}: {our_kind} ({mine.cname}) in wasmpy, {their_kind} in wasmtime")
        elif our_kind == "pointer" and issubclass(real, ctypes._Pointer) and mine.item.kind in ("struct", "union"):
            if counterpart([tag(mine.item)]) is not real._type_:
                problems.append(f"{path} {where}: points to {tag(mine.item)} in wasmpy, "
                                f"{real._type_.__name__} in wasmtime")
        elif our_kind != "pointer" and wasmpy_ffi.sizeof(mine) != ctypes.sizeof(real):
            problems.append(f"{path} {where}: {wasmpy_ffi.sizeof(mine)} bytes in wasmpy, "
                            f"{ctypes.sizeof(real)} in wasmtime")
    return problems


COMPONENT_FUNCTIONS = sorted(name for name in dir(wasmpy_lib) if name.startswith(("wasmtime_component_", "wasi_",
                                                                                  "wasmtime_context_set_wasi"))
                             or name in ("wasmtime_config_concurrency_support_set",
                                         "wasmtime_config_wasm_component_model_map_set"))


@pytest.mark.parametrize("name", COMPONENT_FUNCTIONS)
def test_component_function_signature_matches_wasmtime(name):
    prototype = getattr(bindings, "_" + name, None)
    assert prototype is not None, f"{name} is not in wasmtime {BINDINGS_VERSION}'s C API"
    problems = signature_mismatches(wasmpy_ffi.typeof(getattr(wasmpy_lib, name)),
                                    (prototype.argtypes, prototype.restype), name)
    assert not problems, "wasmpy's declaration differs from wasmtime's:\n" + "\n".join(problems)


def test_host_resource_functions_are_declared():
    """Resources Python defines (wasmpy/component/_resources.py) use these: each is compared with
    wasmtime's by the signature test above, the destructor's function pointer type included."""
    needed = ["wasmtime_component_linker_instance_add_resource", "wasmtime_component_resource_type_new_host",
              "wasmtime_component_resource_host_new", "wasmtime_component_resource_host_rep",
              "wasmtime_component_resource_host_type", "wasmtime_component_resource_host_owned",
              "wasmtime_component_resource_host_clone", "wasmtime_component_resource_host_delete",
              "wasmtime_component_resource_any_to_host", "wasmtime_component_resource_host_to_any",
              "wasmtime_component_resource_any_type", "wasmtime_component_resource_any_drop"]
    assert [name for name in needed if name not in COMPONENT_FUNCTIONS] == []
    destructor = wasmpy_ffi.typeof(wasmpy_lib.wasmtime_component_linker_instance_add_resource).args[4]
    assert destructor is wasmpy_ffi.typeof("wasmtime_component_resource_destructor_t")
    assert destructor.args == tuple(map(wasmpy_ffi.typeof, ("void *", "wasmtime_context_t *", "uint32_t")))
    theirs = bindings._wasmtime_component_linker_instance_add_resource.argtypes[4]
    assert signature_mismatches(destructor, (theirs._argtypes_, theirs._restype_), "destructor") == []


def test_signature_slips_are_caught():
    """The signature comparison catches a wasmtime 49 declaration of the 50 callback."""
    scratch = cffi.FFI()
    scratch.cdef("typedef struct wasmtime_context wasmtime_context_t;"
                 "typedef struct wasmtime_error wasmtime_error_t;"
                 "typedef struct wasmtime_component_val wasmtime_component_val_t;"
                 "typedef wasmtime_error_t *(*callback_t)(void *, wasmtime_context_t *,"
                 " const wasmtime_component_val_t *, size_t, wasmtime_component_val_t *, size_t);")
    prototype = bindings._wasmtime_component_linker_instance_add_func.argtypes[3]
    assert signature_mismatches(scratch.typeof("callback_t"), (prototype._argtypes_, prototype._restype_),
                                "callback") == ["callback: 6 parameters in wasmpy, 7 in wasmtime"]
