"""WASI 0.2 for components: the ``wasi:*`` imports, from the store's WASI context.

A component's WASI comes from the same :class:`wasmpy.WasiConfig` (and the same
wasmtime context) as a preview 1 module's in that store. ``wasi:http`` is linked
only for a store whose configuration says ``http=True``: wasmtime panics when a
``wasi:http`` import runs in a store without its HTTP context, so a component
importing it elsewhere is refused here, before wasmtime sees it.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from .._errors import LinkError
from .._ffi import lib
from .._store import Store

__all__ = ["WASI_PREFIX", "link_wasi"]

# Whose interfaces wasmtime's WASI 0.2 implementation provides (wasmtime_component_linker_add_wasip2,
# and wasmtime_component_linker_add_wasi_http for wasi:http).
WASI_PREFIX = "wasi:"
_HTTP_PREFIX = "wasi:http/"


def link_wasi(linker: Any, store: Store, imported: Iterable[str], check: Callable[[Any, str], None]) -> None:
    """Defines WASI 0.2 in ``linker`` (a ``wasmtime_component_linker_t *``) if any interface
    named in ``imported`` is a ``wasi:*`` one, giving ``store`` its WASI context first (wasmtime
    aborts the process when WASI imports run in a store without one). ``check`` raises a
    LinkError for a wasmtime error. A ``wasi:http`` import in a store without ``http=True``
    is a LinkError naming it."""
    wasi = [name for name in imported if name.startswith(WASI_PREFIX)]
    if not wasi:
        return
    store._ensure_wasi()
    check(lib.wasmtime_component_linker_add_wasip2(linker), "cannot provide WASI")
    http = [name for name in wasi if name.startswith(_HTTP_PREFIX)]
    if not http:
        return
    if not store._wasi_http:
        raise LinkError(f"the component imports {', '.join(http)}, but HTTP is off in this store: give it "
                        f"WasiConfig(http=True) to let the component make HTTP requests")
    check(lib.wasmtime_component_linker_add_wasi_http(linker), "cannot provide wasi:http")
