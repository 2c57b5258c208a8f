"""Stress: signals, reference-heavy calls both ways, the cyclic GC, store cycles and threads, mixed
for a bounded time.

Each scenario runs in a child interpreter (tests/childproc.py) for ``WASMPY_STRESS_SECONDS`` seconds
(default 4; set it higher to stress longer) and prints, as JSON, how much it did and every problem
it saw: a result that is not exactly the expected object (externref payloads are compared by
identity), an exception where none belongs, a store that is never freed. The child imports this
file to run its scenario, so the workload below is ordinary code. A crash fails the test through
the child's exit status; a hang (a ``store.gc()`` that never returns, a deadlock) through a
watchdog that prints every thread's stack and the problems seen so far, and exits.

The known bugs these scenarios met when written are those of issue #11 (items 2, 8, 9 and 10):
references read after Python code ran, a signal handler's call into the store interrupted, store
cycles through externrefs never freed, Python finalizers run inside wasmtime's GC sweep.
"""

from __future__ import annotations

import faulthandler
import gc
import os
import random
import re
import signal
import sys
import threading
import time
import traceback
import weakref
from collections import Counter
from typing import Any, Callable, Dict, List, Optional

from childproc import child_json, run_python
from wasmpy import (AnyRef, Global, GlobalType, Instance, Memory, MemoryType, Module, Store, Table, TableType,
                    Trap, TrapCode, WasmError)

STRESS_SECONDS = float(os.environ.get("WASMPY_STRESS_SECONDS", "4"))
TIMER_INTERVAL = 50e-6  # seconds between two SIGALRMs: a handler is always about to run
MODULE_NAME = os.path.splitext(os.path.basename(__file__))[0]

# Slots of the instance's externref table: churn cycles through 0-7, the rounds use 8-13, payloads
# that wasm alone holds go to 14, and 15 always holds the workload's marker.
ROUND_SLOTS = range(8, 14)
DROP_SLOT = 14
DISTURB_SLOT = 15
CHURN_STEPS = 2000  # about 15 ms of wasm: long enough to meet the epoch ticker's 10 ms ticks
MAX_DISTURB_DEPTH = 3  # a disturbance may trigger another (a __del__ run by store.gc()), within reason

STRESS_WAT = r"""
(module
  (type $pair (struct (field (mut i32)) (field (mut externref))))
  (type $bytes (array (mut i8)))
  (import "host" "echo_extern" (func $echo_extern (param externref) (result externref)))
  (import "host" "echo_any" (func $echo_any (param anyref) (result anyref)))
  (import "host" "make_extern" (func $make_extern (param i32) (result externref)))
  (import "host" "fail" (func $fail (param externref)))
  (memory (export "memory") 1)
  (table $etab (export "etab") 16 externref)
  (table $atab (export "atab") 16 anyref)
  (global $eglobal (export "eglobal") (mut externref) (ref.null extern))
  (global $aglobal (export "aglobal") (mut anyref) (ref.null any))
  (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
  (func (export "id_extern") (param externref) (result externref) (local.get 0))
  (func (export "id_any") (param anyref) (result anyref) (local.get 0))
  (func (export "swap") (param externref anyref) (result anyref externref) (local.get 1) (local.get 0))
  (func (export "via_host_extern") (param externref) (result externref) (call $echo_extern (local.get 0)))
  (func (export "via_host_any") (param anyref) (result anyref) (call $echo_any (local.get 0)))
  (func (export "host_made") (param i32) (result externref) (call $make_extern (local.get 0)))
  (func (export "fail") (param externref) (call $fail (local.get 0)))
  (func (export "make_pair") (param i32 externref) (result anyref) (struct.new $pair (local.get 0) (local.get 1)))
  (func (export "pair_number") (param anyref) (result i32) (struct.get $pair 0 (ref.cast (ref $pair) (local.get 0))))
  (func (export "pair_extern") (param anyref) (result externref)
    (struct.get $pair 1 (ref.cast (ref $pair) (local.get 0))))
  (func (export "make_bytes") (param i32 i32) (result anyref) (array.new $bytes (local.get 0) (local.get 1)))
  (func (export "bytes_len") (param anyref) (result i32) (array.len (ref.cast (ref $bytes) (local.get 0))))
  (func (export "make_i31") (param i32) (result anyref) (ref.i31 (local.get 0)))
  (func (export "i31_value") (param anyref) (result i32) (i31.get_s (ref.cast (ref i31) (local.get 0))))
  (func (export "stash_extern") (param i32 externref) (table.set $etab (local.get 0) (local.get 1)))
  (func (export "fetch_extern") (param i32) (result externref) (table.get $etab (local.get 0)))
  (func (export "stash_any") (param i32 anyref) (table.set $atab (local.get 0) (local.get 1)))
  (func (export "fetch_any") (param i32) (result anyref) (table.get $atab (local.get 0)))
  (func (export "keep") (param externref anyref)
    (global.set $eglobal (local.get 0)) (global.set $aglobal (local.get 1)))
  ;; $n steps of: garbage for the GC (a struct holding the externref, an array), the externref
  ;; through the host and into the table; returns the externref the last step got back.
  (func (export "churn") (param $obj externref) (param $n i32) (result externref) (local $i i32)
    (block $done
      (loop $again
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (drop (struct.new $pair (local.get $i) (local.get $obj)))
        (drop (array.new $bytes (i32.const 0) (i32.const 64)))
        (local.set $obj (call $echo_extern (local.get $obj)))
        (table.set $etab (i32.and (local.get $i) (i32.const 7)) (local.get $obj))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again)))
    (local.get $obj))
)
"""


class Token:
    """An externref payload: it must come back as this very object."""

    __slots__ = ("number", "__weakref__")

    def __init__(self, number: int) -> None:
        self.number = number

    def __repr__(self) -> str:
        return f"Token({self.number})"


class Expected(Exception):
    """What the host function ``fail`` raises: it must reach the Python caller as itself."""


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


_NUMBERS = re.compile(r"0x[0-9a-f]+|\d+")


class Problems:
    """Every unexpected outcome of a scenario, grouped by kind: how often, and the first occurrence.

    A kind is a message with its numbers and addresses blanked out. No lock: signal handlers and
    finalizers report here too, and a lock held by the code they interrupt would deadlock them;
    under the GIL the worst race is a count off by one.
    """

    KINDS_KEPT = 20

    def __init__(self) -> None:
        self.count = 0
        self.kinds: Dict[str, List[Any]] = {}  # kind -> [occurrences, the first message]

    def add(self, where: str, what: str) -> None:
        self.count += 1
        message = f"{where}: {what}"
        kind = _NUMBERS.sub("#", message)
        entry = self.kinds.get(kind)
        if entry is not None:
            entry[0] += 1
        elif len(self.kinds) < self.KINDS_KEPT:
            self.kinds[kind] = [1, message]

    def unexpected(self, where: str, error: BaseException) -> None:
        """An exception nobody should have raised, with the innermost frames that raised it."""
        frames = traceback.extract_tb(error.__traceback__)[-4:]
        trail = " <- ".join(f"{os.path.basename(f.filename)}:{f.lineno} {f.name}" for f in reversed(frames))
        message = "".join(traceback.format_exception_only(type(error), error)).strip().splitlines()[0]
        self.add(where, f"{message} (at {trail})")

    def summary(self) -> List[str]:
        """One line per kind: how many times, and its first message."""
        return [f"{count} x {message}" for count, message in list(self.kinds.values())]


def start_watchdog(seconds: float, problems: Problems) -> None:
    """In the child: after ``seconds``, report a hang (the problems so far, every thread's stack)
    and exit with status 3. faulthandler backs this up in case the hang holds the GIL."""
    faulthandler.dump_traceback_later(seconds + 10, exit=True)

    def watch() -> None:
        time.sleep(seconds)
        sys.stderr.write(f"watchdog: still running after {seconds} s, a hang; the threads' stacks:\n")
        faulthandler.dump_traceback(all_threads=True)
        lines = "\n  ".join(problems.summary()) or "none"
        sys.stderr.write(f"watchdog: the problems so far (last, so that they end the output):\n  {lines}\n")
        sys.stderr.flush()
        os._exit(3)
    threading.Thread(target=watch, name="watchdog", daemon=True).start()


class Workload:
    """An instance of STRESS_WAT in ``store``, and the reference-heavy rounds and disturbances run on it.

    ``echo_through``, if given, is a function (of another store) that the host function
    ``echo_extern`` passes each object through.
    """

    def __init__(self, store: Store, module: Module, problems: Problems, label: str,
                 echo_through: Optional[Callable[[Any], Any]] = None) -> None:
        self.store = store
        self.problems = problems
        self.label = label
        self.echo_through = echo_through
        self.tokens = [Token(number) for number in range(64)]
        self.marker = Token(-1)
        imports = {"host": {"echo_extern": self._echo_extern, "echo_any": self._echo_any,
                            "make_extern": self._make_extern, "fail": self._fail}}
        self.exports = Instance(module, imports, store).exports
        self.table = Table(store, TableType("externref", 8))
        self.global_ = Global(store, GlobalType("anyref", True), None)
        self.memory = Memory(store, MemoryType(1))
        self.exports.etab[DISTURB_SLOT] = self.marker
        self.round_number = 0
        self.rounds = 0
        self.disturbances = 0
        self.skipped_disturbances = 0
        self.depth = 0

    # --- host functions, called from wasm

    # (Annotated with wasm types: wasmpy checks a host function's annotations against its import.)

    def _echo_extern(self, obj: "externref") -> "externref":
        return obj if self.echo_through is None else self.echo_through(obj)

    def _echo_any(self, obj: "anyref") -> "anyref":
        return obj

    def _make_extern(self, number: "i32") -> "externref":
        return self.tokens[number]

    def _fail(self, obj: "externref") -> None:
        raise Expected(obj)

    # --- checks

    def _same(self, what: str, got: Any, expected: Any) -> None:
        if got is not expected:
            self.problems.add(f"{self.label}, round {self.round_number}, {what}",
                              f"got {_short(got)}, expected {_short(expected)}")

    def _equal(self, what: str, got: Any, expected: Any) -> None:
        if type(got) is not type(expected) or got != expected:
            self.problems.add(f"{self.label}, round {self.round_number}, {what}",
                              f"got {_short(got)}, expected {_short(expected)}")

    def _raises(self, what: str, expected: type, call: Callable[..., Any], *args: Any) -> Optional[BaseException]:
        """Calls ``call(*args)``, which must raise ``expected``; returns the exception (None if it did not)."""
        try:
            result = call(*args)
        except expected as error:
            return error
        self.problems.add(f"{self.label}, round {self.round_number}, {what}",
                          f"returned {_short(result)} instead of raising {expected.__name__}")
        return None

    # --- the work

    def round(self) -> None:
        """One round of reference-heavy calls, each result checked; an exception ends the round."""
        self.round_number += 1
        try:
            self._round(self.round_number)
        except Exception as error:
            self.problems.unexpected(f"{self.label}, round {self.round_number}", error)
        self.rounds += 1

    def _round(self, k: int) -> None:
        e, same, equal = self.exports, self._same, self._equal
        token, other = self.tokens[k % 64], self.tokens[(k * 7 + 3) % 64]
        slot = ROUND_SLOTS[k % len(ROUND_SLOTS)]

        # externref and anyref through wasm, both ways, Python objects and null.
        same("id_extern(token)", e.id_extern(token), token)
        same("id_extern(None)", e.id_extern(None), None)
        same("id_any(token)", e.id_any(token), token)
        same("id_any(None)", e.id_any(None), None)
        same("id_extern.call_vals(token)", e.id_extern.call_vals(token)[0].value, token)

        # wasm GC objects: an i31 made by wasm and one made by Python, a struct, an array.
        number = k & 0x3FFFFFFF
        equal("i31_value(make_i31)", e.i31_value(e.make_i31(number)), number)
        equal("i31_value(id_any(AnyRef.from_i31))", e.i31_value(e.id_any(AnyRef.from_i31(self.store, -number))),
              -number)
        pair = e.make_pair(k, token)
        again = e.id_any(pair)
        equal("pair_number(id_any(pair))", e.pair_number(again), k)
        same("pair_extern(id_any(pair))", e.pair_extern(again), token)
        as_extern = e.id_extern(pair)  # a GC object as externref: converted there and back
        equal("pair_number(id_extern(pair))", e.pair_number(as_extern), k)
        length = k % 50
        equal("bytes_len(via_host_any(bytes))", e.bytes_len(e.via_host_any(e.make_bytes(k & 0x7F, length))), length)
        swapped_pair, swapped_token = e.swap(token, pair)
        same("swap: the externref", swapped_token, token)
        equal("swap: pair_number of the anyref", e.pair_number(swapped_pair), k)

        # Host functions taking and returning references, called from wasm.
        same("via_host_extern(token)", e.via_host_extern(token), token)
        same("via_host_any(token)", e.via_host_any(token), token)
        equal("pair_number(via_host_any(pair))", e.pair_number(e.via_host_any(pair)), k)
        same("host_made", e.host_made(k % 64), self.tokens[k % 64])

        # Tables and globals of references, written and read by wasm and by Python.
        e.stash_extern(slot, token)
        same("etab[slot] after stash_extern", e.etab[slot], token)
        e.etab[slot] = other
        same("fetch_extern after etab[slot] =", e.fetch_extern(slot), other)
        e.stash_any(slot, pair)
        equal("pair_number(atab[slot]) after stash_any", e.pair_number(e.atab[slot]), k)
        e.atab[slot] = token
        same("fetch_any after atab[slot] = token", e.fetch_any(slot), token)
        e.keep(token, pair)
        same("eglobal after keep", e.eglobal.value, token)
        equal("pair_number(aglobal) after keep", e.pair_number(e.aglobal.value), k)
        e.eglobal.value = other
        same("eglobal after assignment", e.eglobal.value, other)
        self.table[k % 8] = token
        same("host table", self.table[k % 8], token)
        self.global_.value = pair
        equal("pair_number(host anyref global)", e.pair_number(self.global_.value), k)
        self.global_.value = other
        same("host anyref global holding an object", self.global_.value, other)

        # Linear memory, the instance's and one made by Python.
        data = k.to_bytes(8, "little") * 4
        offset = (k * 64) % (65536 - len(data))
        e.memory.write(offset, data)
        equal("memory.read", e.memory.read(offset, len(data)), data)
        self.memory.write(offset, data[::-1])
        equal("host memory.read", self.memory.read(offset, len(data)), data[::-1])

        # What must raise, raises what it must.
        trap = self._raises("pair_number(i31)", Trap, e.pair_number, e.make_i31(1))
        if trap is not None:
            equal("pair_number(i31): trap code", trap.code, TrapCode.CAST_FAILURE)
        failure = self._raises("fail(token)", Expected, e.fail, token)
        if failure is not None:
            same("fail(token): the exception's payload", failure.args[0], token)
        self._raises("etab[16]", IndexError, e.etab.__getitem__, 16)
        self._raises("memory.read past the end", IndexError, e.memory.read, 65535, 2)

        # Now and then, a longer call, which meets the epoch ticker (and signal handlers in it).
        if k % 16 == 0:
            same("churn(token)", e.churn(token, CHURN_STEPS), token)
            same("etab[0] after churn", e.etab[0], token)

    def disturb(self, source: str, references: bool = True, writes: bool = True) -> None:
        """What signal handlers, ``__del__`` methods and weakref callbacks do here: collect the store's
        garbage and call it; with ``references``, a call returning an externref too, and with
        ``writes``, reads and writes of one of its tables through wasm and through Python."""
        if self.depth >= MAX_DISTURB_DEPTH:
            self.skipped_disturbances += 1
            return
        self.depth += 1
        self.disturbances += 1
        where = f"{self.label}, {source}"
        try:
            self.store.gc()
            e = self.exports
            if e.add(1, 2) != 3:
                self.problems.add(where, "add(1, 2) != 3")
            if references:
                got = e.id_extern(self.marker)
                if got is not self.marker:
                    self.problems.add(where, f"id_extern(marker) returned {_short(got)}")
            if writes:
                got = e.fetch_extern(DISTURB_SLOT)
                if got is not self.marker:
                    self.problems.add(where, f"fetch_extern(DISTURB_SLOT) returned {_short(got)}")
                e.stash_extern(DISTURB_SLOT, self.marker)
                e.etab[DISTURB_SLOT] = self.marker
        except Exception as error:
            self.problems.unexpected(where, error)
        finally:
            self.depth -= 1


def _report(problems: Problems, workloads: List[Workload], **extra: Any) -> Dict[str, Any]:
    return {"problems": problems.count, "kinds": problems.summary(),
            "rounds": {w.label: w.rounds for w in workloads},
            "disturbances": sum(w.disturbances for w in workloads),
            "skipped_disturbances": sum(w.skipped_disturbances for w in workloads), **extra}


class _Timer:
    """``with _Timer(workload):`` SIGALRM every TIMER_INTERVAL seconds, whose handler disturbs ``workload``.

    Every signal collects the store and calls it; every REFERENCE_CALL_EVERY-th also makes a call
    returning an externref, which takes about TIMER_INTERVAL itself: on every signal, handlers
    would leave no time at all to the code they interrupt.
    """

    REFERENCE_CALL_EVERY = 4

    def __init__(self, workload: Workload) -> None:
        self.workload = workload
        self.signals = 0

    def _handle(self, signum: int, frame: Any) -> None:
        self.signals += 1
        self.workload.disturb("SIGALRM handler", references=self.signals % self.REFERENCE_CALL_EVERY == 0,
                              writes=False)

    def __enter__(self) -> "_Timer":
        signal.signal(signal.SIGALRM, self._handle)
        signal.setitimer(signal.ITIMER_REAL, TIMER_INTERVAL, TIMER_INTERVAL)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        # Not the previous handler, which is usually SIG_DFL: a straggling SIGALRM would kill the child.
        signal.signal(signal.SIGALRM, signal.SIG_IGN)


# --------------------------------------------------------------------------- scenarios (run in the child)

def scenario_signals(seconds: float, problems: Problems) -> Dict[str, Any]:
    """Reference-heavy rounds while a SIGALRM handler, every 50 us, collects the store and calls it."""
    workload = Workload(Store(), Module(STRESS_WAT), problems, "main")
    deadline = time.monotonic() + seconds
    with _Timer(workload):
        while time.monotonic() < deadline:
            workload.round()
    return _report(problems, [workload])


class _FinalizedCycle:
    """Garbage in a reference cycle: the cyclic GC runs its ``__del__`` at whatever allocation
    happens to trigger a collection, in the middle of anything."""

    def __init__(self, workload: Workload) -> None:
        self.workload = workload
        self.cycle = self

    def __del__(self) -> None:
        self.workload.disturb("__del__ of a cycle")


class _Referent:
    """A weakly referenced object in a cycle."""

    def __init__(self) -> None:
        self.cycle = self


class _WasmHeld:
    """An externref payload that only wasm holds: its ``__del__`` runs when the store's GC frees it."""

    __slots__ = ("workload", "__weakref__")

    def __init__(self, workload: Workload) -> None:
        self.workload = workload

    def __del__(self) -> None:
        self.workload.disturb("__del__ of an externref payload")


class _LitteringWorkload(Workload):
    """A Workload that leaves garbage cycles (a ``__del__``, a weakref callback: both disturb it)
    after every check and in its host functions, and draws the cyclic GC's threshold anew each
    time, so that collections, and the Python code they run, happen at arbitrary allocations
    inside wasmpy's calls and conversions."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.random = random.Random(11)
        self.weakrefs: "set[weakref.ref]" = set()  # a callback runs only while its weakref is alive

    def litter(self) -> None:
        _FinalizedCycle(self)
        referent = _Referent()  # alive until its weakref is hashed (from 3.12, a collection may run in between)
        self.weakrefs.add(weakref.ref(referent, self._on_death))
        del referent
        gc.set_threshold(self.random.randint(1, 8), 2, 2)

    def _on_death(self, ref: weakref.ref) -> None:
        self.weakrefs.discard(ref)
        self.disturb("weakref callback")

    def _same(self, what: str, got: Any, expected: Any) -> None:
        super()._same(what, got, expected)
        self.litter()

    def _equal(self, what: str, got: Any, expected: Any) -> None:
        super()._equal(what, got, expected)
        self.litter()

    def _echo_extern(self, obj: "externref") -> "externref":
        self.litter()
        return super()._echo_extern(obj)

    def _echo_any(self, obj: "anyref") -> "anyref":
        self.litter()
        return obj

    def _make_extern(self, number: "i32") -> "externref":
        self.litter()
        return self.tokens[number]


def scenario_cyclic_gc(seconds: float, problems: Problems) -> Dict[str, Any]:
    """Reference-heavy rounds while the cyclic GC (at random allocations, and in gc.collect()) and
    wasmtime's GC (freeing externrefs) run ``__del__`` methods and weakref callbacks that collect
    the store, call it and write its tables."""
    workload = _LitteringWorkload(Store(), Module(STRESS_WAT), problems, "main")
    thresholds = gc.get_threshold()
    deadline = time.monotonic() + seconds
    step = 0
    try:
        while time.monotonic() < deadline:
            step += 1
            # The previous payload in the slot is now garbage that only wasmtime's GC can free.
            workload.exports.stash_extern(DROP_SLOT, _WasmHeld(workload))
            if step % 4 == 0:
                workload.exports.keep(_WasmHeld(workload), workload.exports.make_pair(step, _WasmHeld(workload)))
            workload.round()
            if step % 8 == 0:
                gc.collect()
    finally:
        gc.set_threshold(*thresholds)
    return _report(problems, [workload])


def _memory_status() -> Dict[str, int]:
    """VmRSS and VmSize of this process, in bytes."""
    status = {}
    with open("/proc/self/status") as lines:
        for line in lines:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmSize"):
                status[name] = int(value.split()[0]) * 1024
    return status


CYCLE_KINDS = ("its externref global holds the store", "a table slot holds a dict holding the store",
               "wasm keeps the instance in its global", "an anyref table slot holds a list holding the store",
               "a wasm struct in its anyref global holds the store", "a Global of its own holds the exports",
               "a table slot holds a closure over the exports", "two stores hold each other")
CHECK_EVERY = 256  # cycles between two gc.collect()s and memory readings
RSS_BOUND = 64 << 20  # bytes the process may grow by over the whole loop, once collected
VMSIZE_BOUND = 64 << 30  # bytes of address space likewise (each store reserves several GiB)
RSS_GIVE_UP = 512 << 20  # growth at which the loop stops: the stores leak, no need to eat the machine


def _make_store_cycle(module: Module, k: int, problems: Problems,
                      alive: "weakref.WeakKeyDictionary[Store, str]") -> None:
    """A store that can only be freed by the cyclic GC: one of its externrefs leads back to it.
    ``alive`` gets the store (and any other it makes), with the kind of cycle."""
    kind = k % len(CYCLE_KINDS)
    store = Store()
    alive[store] = CYCLE_KINDS[kind]
    holder = {"store": store}
    imports = {"host": {"echo_extern": lambda obj: obj, "echo_any": lambda obj: obj,
                        "make_extern": lambda number: holder, "fail": lambda obj: None}}
    instance = Instance(module, imports, store)
    e = instance.exports
    if kind == 0:
        e.eglobal.value = store
    elif kind == 1:
        e.etab[0] = holder
    elif kind == 2:
        e.keep(instance, None)
    elif kind == 3:
        e.stash_any(1, [store])
    elif kind == 4:
        e.keep(None, e.make_pair(k, store))
    elif kind == 5:
        Global(store, GlobalType("externref", True), e)
    elif kind == 6:
        e.etab[2] = lambda: e.add(1, 2)
    else:
        partner = Store()
        alive[partner] = CYCLE_KINDS[kind]
        Global(partner, GlobalType("externref", False), store)
        e.eglobal.value = partner
    if e.host_made(0) is not holder or e.via_host_extern(store) is not store:
        problems.add(f"cycle {k} ({CYCLE_KINDS[kind]})", "an externref did not come back as itself")


def scenario_store_cycles(seconds: float, problems: Problems) -> Dict[str, Any]:
    """Stores made and dropped in a loop, each in a cycle through its own externrefs: gc.collect()
    must free them (their weakrefs die), and memory must stay bounded."""
    module = Module(STRESS_WAT)
    alive: "weakref.WeakKeyDictionary[Store, str]" = weakref.WeakKeyDictionary()
    for k in range(CHECK_EVERY):  # warm up: caches, the allocator's arenas
        _make_store_cycle(module, k, problems, alive)
    gc.collect()
    baseline = _memory_status()
    peak = dict(baseline)
    deadline = time.monotonic() + seconds
    made = 0
    while time.monotonic() < deadline:
        try:
            for _ in range(CHECK_EVERY):
                _make_store_cycle(module, made, problems, alive)
                made += 1
        except WasmError as error:  # typically instantiation, once leaked stores exhaust something
            problems.unexpected(f"after {made} store cycles", error)
            break
        gc.collect()
        status = _memory_status()
        peak = {name: max(peak[name], value) for name, value in status.items()}
        if status["VmRSS"] - baseline["VmRSS"] > RSS_GIVE_UP:
            break
    gc.collect()
    final = _memory_status()
    survivors = Counter(alive.values())
    for kind, count in survivors.items():
        problems.add("after gc.collect()", f"{count} stores still alive where {kind}")
    growth = {name: final[name] - baseline[name] for name in final}
    if growth["VmRSS"] > RSS_BOUND:
        problems.add("memory", f"VmRSS grew by {growth['VmRSS'] >> 20} MiB over {made} store cycles")
    if growth["VmSize"] > VMSIZE_BOUND:
        problems.add("memory", f"VmSize grew by {growth['VmSize'] >> 30} GiB over {made} store cycles")
    return {"problems": problems.count, "kinds": problems.summary(), "cycles": made,
            "survivors": sum(survivors.values()), "baseline": baseline, "peak": peak, "final": final,
            "growth": growth}


def scenario_threads(seconds: float, problems: Problems) -> Dict[str, Any]:
    """Two threads calling into a store the main thread uses too (each through an instance of its own)
    and into stores of their own whose host functions call the shared store, while the main
    thread's SIGALRM handler collects the shared store and calls it."""
    module = Module(STRESS_WAT)
    shared = Store()
    main = Workload(shared, module, problems, "main thread, shared store")
    workloads = [main]
    pairs = []
    for number in (1, 2):
        on_shared = Workload(shared, module, problems, f"thread {number}, shared store")
        # Lock order: own store, then the shared one (never the other way round).
        on_own = Workload(Store(), module, problems, f"thread {number}, own store",
                          echo_through=main.exports.id_extern)
        pairs.append((on_shared, on_own))
        workloads += [on_shared, on_own]
    deadline = time.monotonic() + seconds

    def work(on_shared: Workload, on_own: Workload) -> None:
        try:
            while time.monotonic() < deadline:
                on_shared.round()
                on_own.round()
                if on_shared.rounds % 4 == 0:
                    on_shared.disturb(f"{threading.current_thread().name}")
        except BaseException as error:
            problems.unexpected(threading.current_thread().name, error)

    threads = [threading.Thread(target=work, args=pair, name=f"thread {number}")
               for number, pair in enumerate(pairs, 1)]
    with _Timer(main):
        for thread in threads:
            thread.start()
        while time.monotonic() < deadline:
            main.round()
    for thread in threads:
        thread.join()  # one that hangs is the watchdog's to report
    return _report(problems, workloads)


# --------------------------------------------------------------------------- the tests

def run_scenario(name: str) -> Dict[str, Any]:
    """Runs ``scenario_<name>`` in a child interpreter and returns its report."""
    watchdog = 1.5 * STRESS_SECONDS + 10  # seconds: far past the budget means a hang
    code = f"""
import json
import {MODULE_NAME} as stress
problems = stress.Problems()
stress.start_watchdog({watchdog!r}, problems)
print(json.dumps(stress.scenario_{name}({STRESS_SECONDS!r}, problems)))
"""
    return child_json(run_python(code, timeout=watchdog + 30))


def assert_no_problems(report: Dict[str, Any]) -> None:
    assert report["problems"] == 0, (f"{report['problems']} problems, by kind:\n  " + "\n  ".join(report["kinds"])
                                     + f"\nreport: {report}")


def test_signal_handlers_calling_the_store_during_reference_calls():
    """A SIGALRM handler every 50 us runs store.gc() and calls the store (results by identity) between
    and inside calls that move externrefs, anyrefs and GC objects both ways."""
    report = run_scenario("signals")
    assert_no_problems(report)
    assert report["rounds"]["main"] > 0 and report["disturbances"] > 0, report


def test_finalizers_and_weakref_callbacks_calling_the_store():
    """``__del__`` methods and weakref callbacks, run by the cyclic GC at arbitrary points and by
    wasmtime's GC when it frees an externref, collect the store and call it."""
    report = run_scenario("cyclic_gc")
    assert_no_problems(report)
    assert report["rounds"]["main"] > 0 and report["disturbances"] > 0, report


def test_store_cycles_through_externrefs_are_freed():
    """Stores whose externrefs lead back to themselves are freed by gc.collect(); memory stays bounded."""
    report = run_scenario("store_cycles")
    assert_no_problems(report)
    assert report["cycles"] > 0, report


def test_threads_and_signals_on_shared_and_own_stores():
    """Threads sharing a store with the main thread (and its SIGALRM handler), and stores of their own
    whose host functions call the shared one."""
    report = run_scenario("threads")
    assert_no_problems(report)
    assert all(rounds > 0 for rounds in report["rounds"].values()), report
