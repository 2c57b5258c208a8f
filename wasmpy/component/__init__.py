"""The component model: components, their WIT types, and WIT values in Python.

``wasmpy.Component`` compiles a component; ``wasmpy.Instance(component, imports)``
instantiates it. See ``_values`` for how WIT values look in Python (componentize-py's shapes).
"""

from ._component import Component, is_component
from ._instance import ComponentExports, ComponentFunc, ComponentInstance, InterfaceExports
from ._types import (ComponentItems, EnumType, FlagsType, FuncType, HandleType, InterfaceType, ListType,
                     OptionType, Primitive, RecordType, ResourceType, ResultType, TupleType, UnsupportedType,
                     VariantType, WitType)
from ._values import Err, Ok, Some

__all__ = ["Component", "is_component", "ComponentInstance", "ComponentFunc", "ComponentExports",
           "InterfaceExports", "Ok", "Err", "Some", "WitType", "Primitive", "ListType", "TupleType", "RecordType",
           "VariantType", "EnumType", "FlagsType", "OptionType", "ResultType", "ResourceType", "HandleType",
           "UnsupportedType", "FuncType", "InterfaceType", "ComponentItems"]
