"""Adversarial probes of the component layer's C conversions, C host callback and resources:
Python code (host imports, attribute getters, finalizers) that frees, closes, re-enters or
interrupts what a conversion or call is using. Each probe runs in a child: a crash there is
the bug (a crash is the worst outcome), a Python exception is the expected answer.
"""

from __future__ import annotations

import textwrap

from childproc import assert_clean_exit, run_python

RICH_SETUP = """
    import gc, sys
    from test_component_fast import RICH, Echo
    from wasmpy import Component, Instance, Store
    component = Component.from_file(RICH)
    store = Store(component.engine)
    host = Echo()
    def make():
        return Instance(component, {"test:rich/host": host, "log": lambda message: None}, store=store).exports
"""


def run_rich(code: str, timeout: float = 120) -> str:
    """Runs ``code`` after RICH_SETUP in a child; its stdout once it exited cleanly."""
    proc = run_python(textwrap.dedent(RICH_SETUP) + textwrap.dedent(code), timeout=timeout)
    assert_clean_exit(proc)
    return proc.stdout


def test_an_import_that_frees_the_store_host_functions_during_its_call(monkeypatch):
    """An import whose call drops the store's list of host functions (the only owner of the C
    callback's data besides the call): the rest of the call read the freed ComponentHost
    (segfault), before the callback held it for the call. PYTHONMALLOC=debug fills freed memory,
    so that reading it crashes every time."""
    monkeypatch.setenv("PYTHONMALLOC", "debug")
    out = run_rich("""
        def drop_hosts(value):
            store.__dict__["_component_host_functions"].clear()
            gc.collect()
            return value
        for kind in ("u32", "point", "string"):
            host.replies["echo_" + kind] = drop_hosts
        # A store per call: once the list is gone, wasm must not call its imports again.
        api = make().api
        assert api.roundtrip_u32(5) == 5
        store = Store(component.engine)
        api = make().api
        assert api.roundtrip_point(api.Point(1, 2)) == api.Point(1, 2)
        store = Store(component.engine)
        assert make().api.roundtrip_string("text") == "text"
        print("ok")
    """)
    assert out.strip().endswith("ok")
