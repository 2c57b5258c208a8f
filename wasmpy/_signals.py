"""Wasm traps and the fault handlers other code installs (faulthandler above all).

wasmtime turns wasm's out-of-bounds accesses, ``unreachable`` and integer division by zero into a
:class:`~wasmpy.Trap` from its own SIGSEGV, SIGILL and SIGFPE handler. A handler installed over
it later gets those faults first; faulthandler's (``faulthandler.enable()``, ``python -X
faulthandler``, pytest) then dumps a traceback and kills the process on the first wasm trap.

The rule wasmpy keeps: **wasmtime's handler sees every fault first, whichever was installed
first; faults that are not wasm's go on to the other handlers, in the order they were
installed.** faulthandler therefore still prints its traceback for Python's own crashes, and the
process still dies by the signal. wasmpy puts wasmtime's handler first in line again (the chain
is explained in ``csrc/signals.c``):

- right after ``faulthandler.enable()`` and ``faulthandler.disable()`` (wasmpy wraps both when it
  is imported);
- at every instantiation (:class:`~wasmpy.Instance`);
- when :func:`keep_trap_handlers_first` is called: do so after installing another fault handler
  (a crash reporter, say) while wasm instances already exist, before calling into them again.
"""

from __future__ import annotations

import faulthandler
import functools
from typing import Any, Callable

from . import _native

__all__ = ["keep_trap_handlers_first", "wrap_faulthandler"]

_WRAPPED_MARK = "_wasmpy_keeps_trap_handlers_first"


def keep_trap_handlers_first() -> None:
    """Puts wasmtime's trap handler first in line again on SIGSEGV, SIGILL and SIGFPE wherever
    another handler replaced it (that handler still gets the faults that are not wasm's).

    Raises RuntimeError if more handlers were installed one over another than wasmpy keeps track
    of (eight), and OSError if the signal dispositions cannot be read or set.
    """
    _native.keep_trap_handlers_first()


def _then_keep_trap_handlers_first(function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        finally:
            _native.keep_trap_handlers_first()

    setattr(wrapper, _WRAPPED_MARK, True)
    return wrapper


def wrap_faulthandler() -> None:
    """Makes ``faulthandler.enable`` and ``faulthandler.disable`` put wasmtime's trap handler first
    in line again after they install or restore their handlers (once; safe to call again)."""
    for name in ("enable", "disable"):
        function = getattr(faulthandler, name)
        if not getattr(function, _WRAPPED_MARK, False):
            setattr(faulthandler, name, _then_keep_trap_handlers_first(function))
