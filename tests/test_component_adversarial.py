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


def test_python_code_in_a_records_conversion_may_do_anything():
    """A C-path import returns a record whose class (a property on ``y``, read by records.c's
    prepare) collects garbage, re-enters the instance, raises KeyboardInterrupt, starts a thread
    that calls in, forks, or closes the store: an answer or an exception each time, never a
    crash; a fresh store per case (an import that raised leaves its instance unusable)."""
    out = run_rich("""
        import os, threading
        armed, threads, mode = [False], [], [None]
        def attack(self):
            if armed[0]:
                armed[0] = False
                if mode[0] == "gc":
                    gc.collect()
                elif mode[0] == "reenter":
                    assert api.roundtrip_u32(1) == 1
                elif mode[0] == "interrupt":
                    raise KeyboardInterrupt
                elif mode[0] == "thread":
                    thread = threading.Thread(target=lambda api=api: api.roundtrip_u32(7))
                    thread.start()
                    threads.append(thread)
                elif mode[0] == "fork":
                    pid = os.fork()
                    if pid == 0:  # the child calls in too
                        os._exit(0 if api.roundtrip_u32(9) == 9 else 1)
                    assert os.waitpid(pid, 0)[1] == 0
                elif mode[0] == "close":
                    store.close()
                elif mode[0] == "text":
                    return "not an int"  # refused by C, read again by the Python way
            return self.__dict__["y"]
        def keep(self, value):
            self.__dict__["y"] = value
        def reply(point):
            armed[0] = True
            return point
        host.replies["echo_point"] = reply
        outcomes = {}
        for mode[0] in ("gc", "reenter", "interrupt", "thread", "fork", "close", "text"):
            store = Store(component.engine)
            api = make().api
            Point = api.Point
            Point.y = property(attack, keep)
            try:
                outcomes[mode[0]] = repr(api.roundtrip_point(Point(1, 2)))
            except BaseException as exception:
                outcomes[mode[0]] = type(exception).__name__ + ": " + str(exception)
            del Point.y
        for thread in threads:
            thread.join()
        print(outcomes)
        assert outcomes.pop("interrupt") == "KeyboardInterrupt: "
        assert outcomes.pop("close").startswith("WasmError: cannot close the store while its wasm code is running")
        assert set(outcomes.values()) == {"Point(x=1, y=2)"}, outcomes
        print("ok")
    """)
    assert out.strip().endswith("ok")


def test_an_import_plan_that_lies_about_the_types_is_refused_not_trusted():
    """host.c trusts the plan only for what it checks: a plan (of _instance.py's _host_plan)
    whose kinds or record and tuple specs disagree with the function's WIT type gets an error
    (records.c's checks, or wasmtime's type check of the results), never memory misread."""
    out = run_rich("""
        import wasmpy.component._instance as component_instance
        from wasmpy._ffi import lib
        planned = component_instance._host_plan
        lies = {}
        def lying(functype, codecs):
            kinds, result_kind, specs = planned(functype, codecs)
            lie = lies.get(functype.name)
            return lie(kinds, result_kind, specs) if lie else (kinds, result_kind, specs)
        component_instance._host_plan = lying
        S32, STRING, LIST = lib.WASMTIME_COMPONENT_S32, lib.WASMTIME_COMPONENT_STRING, lib.WASMTIME_COMPONENT_LIST
        RECORD, TUPLE = lib.WASMTIME_COMPONENT_RECORD, lib.WASMTIME_COMPONENT_TUPLE
        def point_spec(specs, **changes):
            kinds, cls, attributes, names = specs[0]
            spec = dict(kinds=kinds, cls=cls, attributes=attributes, names=names)
            spec.update(changes)
            return (spec["kinds"], spec["cls"], spec["attributes"], spec["names"])
        cases = [
            ("echo-u32", lambda k, r, s: (k, STRING, s), lambda x: "text"),
            ("echo-u32", lambda k, r, s: (k, LIST, s), lambda x: b"bytes"),
            ("echo-point", lambda k, r, s: (k, r, (point_spec(s, kinds=bytes([S32] * 3), attributes=("x", "y", "x"),
                                                              names=(b"x", b"y", b"z")), s[1])), None),
            ("echo-point", lambda k, r, s: (k, r, (s[0], point_spec(s, names=(b"q", b"r")))), None),
            ("echo-point", lambda k, r, s: (k, r, (point_spec(s, kinds=bytes([STRING, STRING])), s[1])), None),
            ("echo-point", lambda k, r, s: (k, TUPLE, (s[0], (s[1][0],))), None),
            ("echo-tuple", lambda k, r, s: (bytes([RECORD]), r, ((s[0][0], object, ("a", "b", "c"), (b"a", b"b", b"c")),
                                                                  s[1])), None),
            ("echo-tuple", lambda k, r, s: (k, r, ((s[0][0][:2],), (s[1][0][:2],))), None),
            ("echo-u32", lambda k, r, s: (k, 255, s), None),
            ("echo-two", lambda k, r, s: (k[:1], r, (s[0], s[2])), lambda a, b: (a, b)),
            ("echo-u32", lambda k, r, s: (k, 255, s), lambda x: None),  # no result written: wasmtime's default
        ]
        calls = {"echo-u32": lambda api: api.roundtrip_u32(3), "echo-point": lambda api: api.roundtrip_point(api.Point(1, 2)),
                 "echo-tuple": lambda api: api.roundtrip_tuple((1, "a", 2.0)),
                 "echo-two": lambda api: api.roundtrip_two(3, "x")}
        outcomes = []
        for name, lie, reply in cases:
            lies.clear()
            lies[name] = lie
            host.replies.clear()
            if reply is not None:
                host.replies[name.replace("-", "_")] = reply
            store = Store(component.engine)
            try:
                outcomes.append(repr(calls[name](make().api)))
            except Exception as exception:
                outcomes.append(type(exception).__name__)
        print(outcomes)
        assert outcomes[:5] == ["Trap", "Trap", "ValueError", "Trap", "SystemError"], outcomes
        assert outcomes[7] == "ValueError" and outcomes[10] == "Trap", outcomes
        print("ok")
    """)
    assert out.strip().endswith("ok")


def test_deep_recursion_through_python_imports_stops_cleanly():
    """Each import makes a new instance and calls into it (no instance is entered twice), with
    Python's recursion limit out of the way: wasm's stack or the native stack check (csrc/stack.h)
    ends it with an exception, in the main thread and in a thread with a small stack."""
    out = run_rich("""
        import threading
        sys.setrecursionlimit(10**6)
        def deeper(value):
            return make().api.roundtrip_u32(value + 1)
        host.replies["echo_u32"] = deeper
        outcomes = []
        def run():
            try:
                make().api.roundtrip_u32(0)
            except BaseException as exception:
                outcomes.append(type(exception).__name__)
        run()
        threading.stack_size(512 * 1024)
        thread = threading.Thread(target=run)
        thread.start()
        thread.join()
        print(outcomes)
        assert len(outcomes) == 2 and set(outcomes) <= {"Trap", "RecursionError"}, outcomes
        print("ok")
    """, timeout=300)
    assert out.strip().endswith("ok")


RESOURCES_SETUP = """
    import gc, threading
    from test_component_resources import HOST, HOST_RESOURCES, LENS, make_host
    from wasmpy import Component, Instance
    component = Component.from_file(HOST_RESOURCES)
    def fresh():
        host = make_host()
        instance = Instance(component, {HOST: host, LENS: {"look": lambda thing: thing.get() + 50}})
        return host, instance, instance.exports.api
"""


def test_a_host_objects_close_may_do_anything():
    """The close() wasm's drop of a Python host object runs (from the destructor callback, under
    the store's lock) re-enters the instance, closes the store, raises KeyboardInterrupt,
    collects garbage or starts a thread that calls in: answers or exceptions, never a crash."""
    proc = run_python(textwrap.dedent(RESOURCES_SETUP) + textwrap.dedent("""
        outcomes, threads, mode = {}, [], [None]
        for case in ("reenter", "close", "interrupt", "gc", "thread"):
            host, instance, api = fresh()
            def close(self, api=api, instance=instance):
                what, mode[0] = mode[0], None  # once per case: a re-entry drops things too
                if what == "reenter":
                    assert api.roundtrip(1) == 2
                elif what == "close":
                    instance.store.close()
                elif what == "interrupt":
                    raise KeyboardInterrupt
                elif what == "gc":
                    gc.collect()
                elif what == "thread":
                    thread = threading.Thread(target=lambda: api.roundtrip(2))
                    thread.start()
                    threads.append(thread)
            host.Thing.close = close
            mode[0] = case
            try:
                outcomes[case] = repr((api.roundtrip(5), api.take(host.Thing(3))))
            except BaseException as exception:
                outcomes[case] = type(exception).__name__ + ": " + str(exception)
        for thread in threads:
            thread.join()
        print(outcomes)
        assert outcomes.pop("interrupt") == "KeyboardInterrupt: "
        assert outcomes.pop("close").startswith("WasmError: cannot close the store while its wasm code is running")
        assert set(outcomes.values()) == {"(6, 3)"}, outcomes
        print("ok")
    """), timeout=120)
    assert_clean_exit(proc)
    assert proc.stdout.strip().endswith("ok")


def test_a_store_freed_while_wasm_holds_host_objects_and_python_holds_guest_resources():
    """wasm keeps a Python object, lends another, Python keeps guest resources; everything is
    dropped and collected in an order the program does not choose (the store last, with the
    resources' classes): nothing is dropped twice or touched after the store is gone."""
    proc = run_python(textwrap.dedent(RESOURCES_SETUP) + textwrap.dedent("""
        import weakref
        host, instance, api = fresh()
        api.keep(host.Thing(4))
        counters, counter, thing = api.counters(2), api.Counter(3), host.Thing(5)
        assert api.inspect(thing) == 5
        store = weakref.ref(instance.store)
        del api, instance
        gc.collect()
        assert store() is not None and repr(counters[0]) == "<Counter resource>"  # the class holds the store
        del counters, counter, thing
        gc.collect()
        assert store() is None
        assert fresh()[2].pass_to_host(3) == 103
        print("ok")
    """), timeout=120)
    assert_clean_exit(proc)
    assert proc.stdout.strip().endswith("ok")


def test_a_second_init_of_a_guest_resource_makes_nothing_in_wasm():
    """Counter.__init__ again on a made Counter is refused before the constructor runs: the
    resource it made before the refusal was freed without a drop, its guest memory kept until
    the store went."""
    proc = run_python(textwrap.dedent(RESOURCES_SETUP) + textwrap.dedent("""
        from wasmpy.component._resources import Resource
        host, instance, api = fresh()
        counter = api.Counter(5)
        adopted = []
        adopt = Resource._adopt.__func__
        Resource._adopt = classmethod(lambda cls, handle: adopted.append(cls) or adopt(cls, handle))
        try:
            counter.__init__(7)
        except TypeError as error:
            assert "cannot run again" in str(error)
        else:
            raise AssertionError("a second __init__ was not refused")
        assert adopted == [] and counter.get() == 5, adopted
        print("ok")
    """), timeout=120)
    assert_clean_exit(proc)
    assert proc.stdout.strip().endswith("ok")


def test_packed_lists_hold_their_values_and_zeros_only():
    """component_pack_list's bytes are the values as wasmtime lays them out, the padding and the
    union's unused bytes zero: they were copied from an uninitialised C value (stack garbage
    reaching Python, seen under valgrind)."""
    proc = run_python("""
        from wasmpy._ffi import ffi, lib
        from wasmpy._native import component_pack_list
        def expected(kind, member, items):
            vals = ffi.new("wasmtime_component_val_t[]", len(items))
            for val, item in zip(vals, items):
                val.kind = kind
                setattr(val.of, member, item)
            return bytes(ffi.buffer(vals))
        for kind, member, items in [(lib.WASMTIME_COMPONENT_BOOL, "boolean", [True, False]),
                                    (lib.WASMTIME_COMPONENT_S8, "s8", [1, -1, 5]),
                                    (lib.WASMTIME_COMPONENT_U16, "u16", [65535, 2]),
                                    (lib.WASMTIME_COMPONENT_F32, "f32", [0.5, -2.0]),
                                    (lib.WASMTIME_COMPONENT_CHAR, "character", [0x1F600, 97])]:
            given = [chr(item) for item in items] if member == "character" else items
            for _ in range(3):
                assert component_pack_list(kind, given) == expected(kind, member, items), (kind, given)
        print("ok")
    """, timeout=120)
    assert_clean_exit(proc)
    assert proc.stdout.strip().endswith("ok")


def test_a_guest_resource_cannot_be_rebuilt_from_its_reduce():
    """copy and pickle are refused (Owner's __reduce_ex__), and so is __reduce__ called directly:
    it gave the handle in the state, and the copy copy._reconstruct made of it freed the handle a
    second time when both went (a double free: abort)."""
    proc = run_python(textwrap.dedent(RESOURCES_SETUP) + textwrap.dedent("""
        import copy
        host, instance, api = fresh()
        counter = api.Counter(5)
        try:
            twin = copy._reconstruct(counter, None, *counter.__reduce__())
        except TypeError as error:
            assert "cannot be pickled" in str(error)
        else:
            del twin
        del counter
        gc.collect()
        print("ok")
    """), timeout=120)
    assert_clean_exit(proc)
    assert proc.stdout.strip().endswith("ok")
