"""Ownership rules shared by the classes whose objects own, or name, wasmtime state.

Such an object is made once: a second ``__init__`` would swap the state that
memoryviews, running calls and other objects still point into. It is not
copied either: a shallow copy would share the handle with two owners, so
that closing or freeing one leaves the other pointing at freed memory.
Immutable objects (engines, compiled modules) copy to themselves instead.
"""

from __future__ import annotations

from typing import Any, NoReturn

__all__ = ["Owner", "Immutable", "init_once"]


def init_once(obj: Any, attribute: str) -> None:
    """Raises TypeError if ``obj`` was initialised already (it has ``attribute``)."""
    try:
        object.__getattribute__(obj, attribute)
    except AttributeError:
        return
    raise TypeError(f"{type(obj).__name__}.__init__() cannot run again on an object that is already made: "
                    f"make a new {type(obj).__name__} instead")


class Owner:
    """Base of the classes whose objects own or name wasmtime state: refuses copies and pickling."""

    __slots__ = ()

    def __copy__(self) -> NoReturn:
        raise TypeError(f"{type(self).__name__} objects cannot be copied: they name wasmtime state "
                        f"that has one owner; share the object itself instead")

    def __deepcopy__(self, memo: Any) -> NoReturn:
        self.__copy__()

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise TypeError(f"{type(self).__name__} objects cannot be pickled: they live in one process's "
                        f"wasmtime store; send the Module or Component (or the wasm bytes) and the arguments instead")

    def __reduce__(self) -> Any:
        # object.__reduce__, called directly, gives the object's state, its handle included: a copy
        # rebuilt from it (copy._reconstruct) would free the handle twice.
        return self.__reduce_ex__(2)


class Immutable:
    """Base of the classes whose objects never change once made: copies are the object itself."""

    __slots__ = ()

    def __copy__(self) -> Any:
        return self

    def __deepcopy__(self, memo: Any) -> Any:
        return self
