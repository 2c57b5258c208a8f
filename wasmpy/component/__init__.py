"""The component model: components, their WIT types, and WIT values in Python.

``wasmpy.Component`` compiles a component; ``wasmpy.Instance(component, imports)``
instantiates it (a :class:`ComponentInstance`, a subclass of ``wasmpy.Instance``); its
``exports`` hold world-level functions and exported interfaces (namespaces with their
functions and generated types). WIT values take componentize-py's Python shapes (see
``_values``).

How it is built, for whoever extends it:

- ``csrc/component/*.h``: the C declarations (wasmtime 50.0.1's layouts; tests/test_abi.py
  checks structs, constants and signatures against the ``wasmtime`` package's bindings), and
  ``component.c``, wasmpy's stack-checked entry points (``wasmpy_component_call``...).
- ``_types``: WIT types read once from wasmtime's reflection, names recovered by comparing
  with the type exports of their instance; ``str()`` is WIT.
- ``_values``: a :class:`~wasmpy.component._values.Codec` per type (``prepare`` checks in
  Python, ``write`` builds wasmtime-owned C values and cannot fail, ``read`` converts back).
- ``csrc/component/call.c`` (in ``wasmpy._native``): ``ComponentCaller``, the base class of
  ``ComponentFunc``, calls functions of simple types (bool, integers, floats, char, string),
  lists of them and records and tuples of them in C from a per-function plan
  (``_instance._plan``); any other call, and any value the C path does not take as it is,
  goes through the codecs, which raise every error.
- ``_resources``: resources the component exports, as a class per instance (``Resource``);
  resources it imports, Python classes whose objects wasm holds through a per-store table
  (``wasmtime_component_linker_instance_add_resource``, an ``extern "Python"`` destructor);
  the per-thread context that tells the shared codecs which instance a call's handles are of.
- ``_instance``: the linker (Python imports as ``extern "Python"`` host functions), the
  instance, its exports, and the calls.
- ``_component``: compiling, (de)serializing, ``is_component`` (for the import hook).
"""

from ._component import Component, is_component
from ._instance import ComponentExports, ComponentFunc, ComponentInstance, InterfaceExports
from ._resources import Resource
from ._types import (ComponentItems, EnumType, FlagsType, FuncType, HandleType, InterfaceType, ListType, MapType,
                     OptionType, Primitive, RecordType, ResourceType, ResultType, TupleType, UnsupportedType,
                     VariantType, WitType)
from ._values import Err, Ok, Some

__all__ = [
    "Component", "is_component", "ComponentInstance", "ComponentFunc", "ComponentExports", "InterfaceExports",
    "Resource", "Ok", "Err", "Some", "WitType", "Primitive", "ListType", "TupleType", "RecordType", "VariantType",
    "EnumType", "FlagsType", "OptionType", "ResultType", "ResourceType", "HandleType", "MapType", "UnsupportedType",
    "FuncType", "InterfaceType", "ComponentItems",
]
