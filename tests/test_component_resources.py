"""Resources Python defines for a component (imported resources), and resource handles nested in
other types, for those and for the component's own.

The test component tests/components/host_resources.wasm (sources and build.sh beside it)
imports test:hostres/host, whose resource ``thing`` Python gives as a class (and test:hostres/lens,
which uses that thing), and exports
test:hostres/api: functions that make things through the import, call their methods, take
them from Python, give them back, keep them, and pass them in lists, records, options and
results; and a resource ``counter`` of its own, in lists.
"""

import gc
import types
import weakref
from pathlib import Path

import pytest

import wasmpy
from wasmpy import Component, Err, Instance, LinkError, Trap

from childproc import assert_clean_exit, run_python
from test_safety_engine import run_with_fork_helpers

HOST_RESOURCES = Path(__file__).resolve().parent / "components" / "host_resources.wasm"
HOST = "test:hostres/host"
LENS = "test:hostres/lens"


class Boom(Exception):
    pass


def make_host(closed=None):
    """A namespace for test:hostres/host whose Thing records in ``closed`` the value of each
    thing whose close() runs; a thing of value 13 raises in get(), one of value 7 in close()."""
    closed = [] if closed is None else closed

    class Thing:
        def __init__(self, value):
            self.value = value

        def get(self):
            if self.value == 13:
                raise Boom("get")
            return self.value

        def add(self, amount):
            self.value += amount

        @staticmethod
        def make(value):
            return Thing(value * 10)

        def close(self):
            closed.append(self.value)
            if self.value == 7:
                raise Boom("close")

    host = types.SimpleNamespace(Thing=Thing, closed=closed, consumed=[], peeked=[])

    def consume(thing):
        host.consumed.append(thing)
        return thing.value + 100

    def peek(thing):
        host.peeked.append(thing)
        return 1000 if thing is None else thing.get()

    host.consume = consume
    host.make_many = lambda n: [Thing(i) for i in range(n)]
    host.peek = peek
    return host


@pytest.fixture(scope="module")
def component():
    return Component.from_file(HOST_RESOURCES)


@pytest.fixture
def host():
    return make_host()


def imports(host):
    return {HOST: host, LENS: {"look": lambda thing: thing.get() + 50}}


@pytest.fixture
def instance(component, host):
    return Instance(component, imports(host))


@pytest.fixture
def api(instance):
    return instance.exports.api


def table_size(instance):
    """How many Python objects the store's wasm holds (the store's table of host resources)."""
    return len(instance.store.__dict__["_host_resources"])


# --- Resources Python defines ------------------------------------------------------------------

def test_the_guest_makes_calls_and_drops_a_python_object(api, host):
    # roundtrip: [constructor]thing(5), add(1), get(), then the guest drops it: close() runs.
    assert api.roundtrip(5) == 6
    assert host.closed == [6]


def test_an_exported_interface_using_the_resource_shows_its_class(api, host):
    assert api.Thing is host.Thing
    assert str(api.create.type) == "create: func(value: u32) -> thing"


def test_an_object_wasm_returns_is_the_one_its_constructor_made(instance, api, host):
    made = []
    original = host.Thing.__init__

    def recording_init(self, value):
        made.append(self)
        original(self, value)

    host.Thing.__init__ = recording_init
    thing = api.create(3)
    assert made == [thing] and type(thing) is host.Thing and thing.value == 3
    assert api.make_static(4).value == 40  # [static]thing.make: the class's static function
    # Returned: Python owns them now, wasm holds nothing and closes nothing.
    assert host.closed == [] and table_size(instance) == 0


def test_a_borrow_given_to_wasm_reaches_methods_as_the_same_object(instance, api, host):
    seen = []
    host.Thing.get = lambda self: seen.append(self) or self.value
    thing = host.Thing(8)
    assert api.inspect(thing) == 8
    assert seen == [thing]
    assert host.closed == [] and table_size(instance) == 0  # lent for the call only


def test_another_import_using_the_resource_gets_the_same_objects(api, host):
    # test:hostres/lens uses host's thing: its class is needed once, under host.
    assert api.look_through(4) == 54
    assert host.closed == [4]


def test_an_owned_object_passed_to_wasm_is_closed_when_wasm_drops_it(instance, api, host):
    thing = host.Thing(3)
    assert api.take(thing) == 3
    assert host.closed == [3] and table_size(instance) == 0


def test_wasm_keeps_an_object_alive_until_it_drops_it(instance, api, host):
    thing = host.Thing(3)
    alive = weakref.ref(thing)
    api.keep(thing)
    del thing
    gc.collect()
    assert alive() is not None and table_size(instance) == 1 and host.closed == []
    api.release()
    gc.collect()
    assert alive() is None and table_size(instance) == 0 and host.closed == [3]


def test_an_object_wasm_hands_back_is_not_closed(instance, api, host):
    thing = host.Thing(9)
    assert api.give_back(thing) is thing
    assert api.pass_to_host(8) == 108  # made in wasm, then owned by the import consume()
    assert [t.value for t in host.consumed] == [8] and type(host.consumed[0]) is host.Thing
    assert host.closed == [] and table_size(instance) == 0


def test_an_object_passed_twice_is_closed_once_wasm_drops_both(component, host):
    first = Instance(component, imports(host))
    second = Instance(component, imports(host), store=first.store)
    thing = host.Thing(5)
    first.exports.api.keep(thing)
    second.exports.api.keep(thing)
    first.exports.api.release()
    assert host.closed == [] and table_size(first) == 1
    second.exports.api.release()
    assert host.closed == [5] and table_size(first) == 0


def test_instances_in_a_store_given_one_class_share_its_objects(component, host):
    first = Instance(component, imports(host))
    second = Instance(component, imports(host), store=first.store)
    thing = first.exports.api.create(4)
    assert second.exports.api.take(thing) == 4
    assert host.closed == [4]


def test_instances_given_different_classes_refuse_each_others_objects(component):
    ours, theirs = make_host(), make_host()
    first = Instance(component, imports(ours))
    second = Instance(component, imports(theirs), store=first.store)
    with pytest.raises(TypeError, match="argument 't' of take: expected a Thing"):
        second.exports.api.take(first.exports.api.create(1))
    assert second.exports.api.take(theirs.Thing(2)) == 2  # refused before wasm: the instance still works


def test_the_class_is_found_under_its_wit_name_too(component, host):
    namespace = {"thing": host.Thing, "consume": host.consume, "make-many": host.make_many, "peek": host.peek}
    assert Instance(component, {**imports(host), HOST: namespace}).exports.api.roundtrip(1) == 2


def test_a_method_is_looked_up_on_the_object(component, host):
    class Doubled(host.Thing):
        def get(self):
            return 2 * self.value

    assert Instance(component, imports(host)).exports.api.inspect(Doubled(4)) == 8


def test_a_class_without_close(component, host):
    class Plain:
        def __init__(self, value):
            self.value = value

        def get(self):
            return self.value

        def add(self, amount):
            self.value += amount

        make = staticmethod(lambda value: Plain(value))

    host.Thing = Plain
    assert Instance(component, imports(host)).exports.api.roundtrip(1) == 2


@pytest.mark.parametrize("change, message", [
    (lambda host: delattr(host, "Thing"), "missing import test:hostres/host@0.1.0#thing: expected a Python class "
                                          "under 'Thing' or 'thing' for WIT resource thing, got nothing"),
    (lambda host: setattr(host, "Thing", lambda value: value), "got a function"),
    (lambda host: delattr(host.Thing, "add"), r"#\[method\]thing.add: the class Thing given for WIT resource thing "
                                              r"has no 'add'"),
    (lambda host: delattr(host.Thing, "make"), r"#\[static\]thing.make: .* has no 'make'"),
])
def test_a_missing_or_incomplete_class_is_a_link_error(component, host, change, message):
    change(host)
    with pytest.raises(LinkError, match=message):
        Instance(component, imports(host))


def test_objects_of_another_class_are_refused(api, host):
    with pytest.raises(TypeError, match="argument 't' of take: expected a Thing .WIT thing., got int"):
        api.take(5)
    with pytest.raises(TypeError, match="expected a Thing"):
        api.inspect(object())
    assert api.roundtrip(1) == 2  # refused before wasm ran: the instance is fine


def test_a_static_function_returning_another_class_is_a_type_error(component, host):
    host.Thing.make = staticmethod(lambda value: "not a thing")
    api = Instance(component, imports(host)).exports.api
    with pytest.raises(TypeError, match=r"the result of the import .*\[static\]thing.make: expected a Thing "
                                        r".WIT thing., got str"):
        api.make_static(1)
    with pytest.raises(Trap, match="cannot enter component instance"):  # a Python import raised: it trapped
        api.roundtrip(1)


def test_an_object_a_refused_call_did_not_take_is_not_held(component, host):
    host.Thing.make = staticmethod(lambda value: "not a thing")
    instance = Instance(component, imports(host))
    with pytest.raises(TypeError):
        instance.exports.api.make_static(1)  # the instance trapped: wasmtime refuses to enter it
    thing = host.Thing(3)
    with pytest.raises(Trap, match="cannot enter component instance"):
        instance.exports.api.keep(thing)
    assert table_size(instance) == 0 and host.closed == []


@pytest.mark.parametrize("call, where", [(lambda api, host: api.roundtrip(12), "get"),
                                         (lambda api, host: api.roundtrip(6), "close"),
                                         (lambda api, host: api.take(host.Thing(7)), "close")])
def test_exceptions_of_methods_and_close_reach_the_caller(api, host, call, where):
    with pytest.raises(Boom, match=where):
        call(api, host)


def test_close_cannot_close_the_store_wasm_is_running_in(instance, api, host):
    host.Thing.close = lambda self: instance.store.close()
    with pytest.raises(wasmpy.WasmError, match="cannot close the store while its wasm code is running"):
        api.roundtrip(1)
    assert not instance.store.closed


def test_the_destructor_of_a_representation_wasmpy_does_not_know_does_nothing(instance, host):
    # What the linker's destructor data is: wasmtime can only name representations wasmpy gave,
    # but an unknown one must not fail either.
    from wasmpy.component._resources import HostResource

    (resource,) = [data for data in map(wasmpy._ffi.ffi.from_handle, instance.store._component_host_functions)
                   if isinstance(data, HostResource)]
    resource.destroy(12345)
    assert host.closed == []
    table = instance.store.__dict__["_host_resources"]
    with pytest.raises(wasmpy.WasmError, match="representation .12345. wasmpy does not know"):
        table.get(12345)


def test_the_table_counts_the_handles_of_each_object():
    from wasmpy.component._resources import HostTable

    table, thing, other = HostTable(), object(), object()
    rep = table.lend(thing, owned=True)
    assert table.lend(thing, owned=False) == rep == table.lend(thing, owned=True)
    assert table.lend(other, owned=True) != rep and len(table) == 2
    assert table.unlend(rep, owned=False) == (thing, False)
    assert table.unlend(rep, owned=False) == (thing, False)  # no borrow left: nothing changes
    assert table.unlend(rep, owned=True) == (thing, False)
    assert table.get(rep) is thing
    assert table.unlend(rep, owned=True) == (thing, True) and len(table) == 1
    assert table.unlend(rep, owned=True) == (None, False)  # gone


def test_a_store_closed_while_wasm_holds_objects():
    result = run_python(f"""
import gc
from wasmpy import Component, Instance
from test_component_resources import imports, make_host
host = make_host()
instance = Instance(Component.from_file({str(HOST_RESOURCES)!r}), imports(host))
instance.exports.api.keep(host.Thing(3))
instance.store.close()
gc.collect()
instance = None
gc.collect()
# Dropped with no close: the store (and its linker's destructor data) freed by the collector.
instance = Instance(Component.from_file({str(HOST_RESOURCES)!r}), imports(host))
instance.exports.api.keep(host.Thing(4))
instance = None
gc.collect()
assert host.closed == [], host.closed  # wasm never dropped them: the stores took them with them
print("ok")
""")
    assert_clean_exit(result)
    assert result.stdout.strip() == "ok"


def test_threads_making_and_dropping_objects_in_one_store():
    result = run_python(f"""
import sys, threading
from wasmpy import Component, Instance
from test_component_resources import imports, make_host
sys.setswitchinterval(1e-6)
host = make_host()
component = Component.from_file({str(HOST_RESOURCES)!r})
first = Instance(component, imports(host))
second = Instance(component, imports(host), store=first.store)
errors = []

def work(api, offset):
    try:
        for index in range(300):
            assert api.roundtrip(offset + index) == offset + index + 1
            assert api.take(host.Thing(offset)) == offset
    except BaseException as error:
        errors.append(error)

threads = [threading.Thread(target=work, args=(api, 1000 * (n + 1))) for n, api in
           enumerate([first.exports.api, second.exports.api] * 2)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
assert not errors, errors
assert len(host.closed) == 4 * 600 and len(first.store.__dict__["_host_resources"]) == 0
print("ok")
""", timeout=240)
    assert_clean_exit(result)


def test_objects_wasm_holds_in_a_forked_child():
    proc = run_with_fork_helpers(f"""
        from wasmpy import Component
        from test_component_resources import imports, make_host
        host = make_host()
        api = Instance(Component.from_file({str(HOST_RESOURCES)!r}), imports(host)).exports.api
        api.keep(host.Thing(3))

        def child():
            api.release()
            return [list(host.closed), api.roundtrip(4), host.closed]

        print(json.dumps({{"child": in_forked_child(child), "parent": host.closed}}))
        api.release()
        assert host.closed == [3]
    """)
    assert_clean_exit(proc)
    assert proc.stdout.strip().splitlines()[-1] == '{"child": [0, [[3], 5, [3, 5]]], "parent": []}'


# --- Handles nested in other types -----------------------------------------------------------

def test_a_list_of_objects_from_an_import(api, host):
    # many(4): the import make-many returns list<thing>; the guest sums get() and drops each.
    assert api.many(4) == 0 + 1 + 2 + 3
    assert host.closed == [0, 1, 2, 3]


def test_an_import_returning_a_list_with_another_object_is_a_type_error(component, host):
    host.make_many = lambda n: [host.Thing(1), 5]
    with pytest.raises(TypeError, match=r"the result of the import .*#make-many\[1\]: expected a Thing"):
        Instance(component, imports(host)).exports.api.many(2)


def test_lists_of_owned_and_borrowed_objects(instance, api, host):
    a, b = host.Thing(30), host.Thing(40)
    assert api.inspect_list([a, b, a]) == 100
    assert host.closed == [] and table_size(instance) == 0  # borrows: lent for the call only
    assert api.take_list([a, b]) == 70
    assert host.closed == [30, 40] and table_size(instance) == 0


def test_an_object_moved_twice_in_one_call_is_closed_once(instance, api, host):
    thing = host.Thing(5)
    assert api.take_list([thing, thing]) == 10
    assert host.closed == [5] and table_size(instance) == 0


def test_a_record_holding_an_object_both_ways(instance, api, host):
    holder = api.wrap(6)
    assert type(holder) is api.Holder and holder.name == "held"
    assert type(holder.item) is host.Thing and holder.item.value == 6
    assert host.closed == [] and table_size(instance) == 0
    assert api.unwrap(holder) == 6 + len("held")
    assert api.unwrap({"name": "x", "item": host.Thing(2)}) == 2 + 1
    assert host.closed == [6, 2]


def test_optional_borrows_both_ways(api, host):
    thing = host.Thing(8)
    assert api.maybe(thing) == 8 and api.maybe(None) == 1000
    # peek-host: the guest lends its thing to the import peek (option<borrow<thing>>), then none.
    assert api.peek_host(5) == 5 + 1000
    first, second = host.peeked
    assert type(first) is host.Thing and first.value == 5 and second is None
    assert host.closed == [5]


def test_a_result_holding_an_object(api, host):
    thing = api.attempt(True)
    assert type(thing) is host.Thing and thing.value == 7
    with pytest.raises(Err) as raised:
        api.attempt(False)
    assert raised.value.value == "no"
    assert host.closed == []


def test_lists_of_the_components_own_resources(api):
    counters = api.counters(3)
    assert [type(c) for c in counters] == [api.Counter] * 3 and [c.get() for c in counters] == [0, 1, 2]
    assert api.sum_counters(counters) == 3  # borrows: still open
    assert not any(c.closed for c in counters)
    assert api.drop_counters(counters) == 3  # owned: moved into wasm, which dropped them
    assert all(c.closed for c in counters) and api.counter_drops() == 3


def test_a_resource_moved_twice_in_one_call_is_refused_before_wasm(api):
    counter = api.Counter(4)
    with pytest.raises(ValueError, match=r"argument 'cs' of drop-counters\[1\]: this Counter is already passed"):
        api.drop_counters([counter, counter])
    assert not counter.closed and api.drop_counters([counter]) == 4


def test_a_closed_resource_in_a_list_is_refused_before_wasm(api):
    kept, closed = api.Counter(1), api.Counter(2)
    closed.close()
    with pytest.raises(wasmpy.WasmError, match=r"argument 'cs' of drop-counters\[1\]: the Counter is closed"):
        api.drop_counters([kept, closed])
    assert not kept.closed and api.drop_counters([kept]) == 1  # the instance did not trap


def test_a_resource_of_another_instance_in_a_list_is_refused(component, api, host):
    other = Instance(component, imports(host)).exports.api
    with pytest.raises(TypeError, match=r"drop-counters\[0\]: expected a Counter of this component instance"):
        api.drop_counters([other.Counter(1)])
    with pytest.raises(TypeError, match=r"take-list\[0\]: expected a Thing .WIT thing., got Counter"):
        api.take_list([api.Counter(1)])


def test_the_import_hook_takes_the_class_from_the_interfaces_module(mods):
    import importlib
    import shutil

    name = mods.name("hostres")
    shutil.copy(HOST_RESOURCES, mods.path / f"{name}.wasm")
    package = mods.path / "test_hostres"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "host.py").write_text(
        "closed = []\n"
        "class Thing:\n"
        "    def __init__(self, value): self.value = value\n"
        "    def get(self): return self.value\n"
        "    def add(self, amount): self.value += amount\n"
        "    @staticmethod\n"
        "    def make(value): return Thing(value)\n"
        "    def close(self): closed.append(self.value)\n"
        "def consume(thing): return thing.value\n"
        "def make_many(n): return [Thing(i) for i in range(n)]\n"
        "def peek(thing): return 0 if thing is None else thing.get()\n")
    (package / "lens.py").write_text("def look(thing): return thing.get()\n")
    module = importlib.import_module(name)
    assert module.api.roundtrip(2) == 3
    assert importlib.import_module("test_hostres.host").closed == [3]
