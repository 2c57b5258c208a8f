"""Instructions per operation, counted with callgrind: ``python -m benchmarks --instructions``.

Wall time on a loaded machine wanders; the number of instructions an
operation executes does not. This mode runs one child interpreter under
``valgrind --tool=callgrind`` that instantiates the calls, values and memory
modules in wasmpy and in each installed peer (and counts instantiating a small
module again, as the instantiate group times it), and counts only inside
*windows*: each
window is a timing loop (the generated loop of timing.py, statement unrolled
10 times) run through ``sys.call_tracing``, and callgrind is told to collect
only inside ``_PyEval_CallTracing`` (an exported CPython function nothing
else calls) and to dump its counters when it returns. Every case runs a
window of ``base`` loop iterations and one of ``base + extra``; the cost of an
operation is the difference over the operations the longer one adds, so the
interpreter's start-up, the set-up, the window itself and its loop's entry
cancel out. The (short, long) pair is repeated; the spread of the estimates
shows how repeatable the figures are.

Counted: user-space instructions of every thread (callgrind's ``Ir``).
wasmpy's epoch ticker is frozen in the child (its interval set to an hour
before any store runs): under valgrind the process runs tens of times slower,
so the ticker would tick tens of times more often per call than natively, and
each tick (a thread switch and the GIL handed over and back) costs thousands
of instructions that fall on whichever call is running: measured, a few
hundred instructions per call, varying from run to run. This is the one place
the benchmarks touch wasmpy's internals; the figures say whether it worked.
"""

from __future__ import annotations

import gc
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

MARKER = "_PyEval_CallTracing"   # what sys.call_tracing calls: the only code counted
UNROLL = 10
TIMEOUT = 1800                   # seconds for the whole child under callgrind
MEMORY_OFFSET = 4096
SIXTEEN = b"0123456789abcdef"
HOST_OVERHEAD = "host_overhead"
HOST_REF_OVERHEAD = "host_ref_overhead"


@dataclass(frozen=True)
class Plan:
    base: int       # loop iterations (of UNROLL operations) in the shorter window
    extra: int      # at most this many iterations the longer window adds: the operations measured
    pairs: int      # (short, long) window pairs per case
    # The longer window adds fewer iterations (at least min_extra) where they would take more than
    # about window_ns under callgrind: the wasmtime package's calls cost a hundred times wasmpy's.
    window_ns: int = 300_000_000
    min_extra: int = 10


FULL = Plan(base=20, extra=300, pairs=3)
QUICK = Plan(base=2, extra=20, pairs=2, min_extra=2)


class ValgrindMissing(RuntimeError):
    """valgrind is not installed (or not on PATH)."""


# Instantiations counted (keys of Runtime.instantiate_stmts, on the instantiate group's modules); the
# cyclic GC runs in their windows, since freeing what an instantiation made is part of its cost.
INSTANTIATE = [("new_store", "instantiate a small module, new store", "small"),
               ("with_import", "the same, with a Python import", "small_import")]


def _cases() -> List[Tuple[str, str, str]]:
    """(key, label, group) of every operation counted: the calls group's shapes, the values group's,
    memory's, and instantiation."""
    from .suite import CALLS, VALUES
    return ([(key, label, "calls") for key, label, *_ in CALLS]
            + [(key, label, "values") for key, label in VALUES]
            + [("read16", "memory.read(offset, 16)", "memory"),
               ("write16", "memory.write(offset, 16 bytes)", "memory")]
            + [(key, label, "instantiate") for key, label, _ in INSTANTIATE])


# --- the child, under callgrind


def _instance(rt: Any, group: str, instances: Dict[Tuple[str, str], Any]) -> Any:
    """The runtime's instance of the group's module, made once."""
    from . import modules
    from .runtimes import _host, _host_ref
    if (rt.name, group) not in instances:
        instances[rt.name, group] = rt.instantiate(modules.wasm(group), _host if group == "calls" else None,
                                                   _host_ref if group == "values" else None)
    return instances[rt.name, group]


def _statement(key: str, group: str, rt: Any,
               instances: Dict[Tuple[str, str], Any]) -> Optional[Tuple[str, Dict[str, Any]]]:
    """The statement a case counts, checked once first (a wrong result is an error, not a figure);
    None where the runtime has no such operation."""
    from . import modules
    from .suite import CALLS, _expect
    if group == "instantiate":
        wasm = modules.wasm(next(module for name, _, module in INSTANTIATE if name == key))
        factory = rt.instantiate_stmts(wasm).get(key)
        if factory is None:
            return None
        stmt, names = factory()
        exec(stmt, {}, dict(names))
        return stmt, names
    if group == "values":
        if not rt.reference_types:
            return None
        found = _instance(rt, group, instances).values_case(key)
        if found is None:
            return None
        (stmt, names), check = found
        check()
        return stmt, names
    inst = _instance(rt, group, instances)
    if key == "read16":
        inst.memory_view()[MEMORY_OFFSET:MEMORY_OFFSET + len(SIXTEEN)] = SIXTEEN
        stmt, names = inst.read16_stmt(MEMORY_OFFSET)
        _expect(bytes(eval(stmt, {}, dict(names))), SIXTEEN, stmt)
        return stmt, names
    if key == "write16":
        stmt, names = inst.write16_stmt(MEMORY_OFFSET, SIXTEEN[::-1])
        exec(stmt, {}, dict(names))
        _expect(bytes(inst.memory_view()[MEMORY_OFFSET:MEMORY_OFFSET + len(SIXTEEN)]), SIXTEEN[::-1], stmt)
        return stmt, names
    _, _, export, values, want = next(call for call in CALLS if call[0] == key)
    _expect(inst.call(export, *values), want, f"{export}{values}")
    return inst.call_stmt(export, ", ".join(map(repr, values)))


def _freeze_ticker() -> str:
    """Makes wasmpy's epoch ticker sleep for an hour at its first tick (it sleeps until a store is in
    use, then ``interval`` seconds per tick): no tick falls in a window. Says what was done."""
    try:
        from wasmpy import _engine
        ticker = _engine._ticker
        if not isinstance(ticker.interval, (int, float)):
            raise TypeError(f"interval is {ticker.interval!r}")
        ticker.interval = 3600.0
        return "frozen"
    except Exception as error:  # a wasmpy without this ticker: count as it is, and say so
        return f"not frozen ({type(error).__name__}: {error})"


def child(plan: Plan, keys: List[str], out: Path) -> None:
    """Runs the windows, in an order written to ``out`` (JSON) with the errors: callgrind's dump
    number i is window i."""
    from .runtimes import all_runtimes
    from .timing import compile_loop

    runtimes = [rt for rt in all_runtimes() if rt.available]
    ticker = _freeze_ticker()  # before any store of the runtimes is used
    windows: List[Dict[str, Any]] = []
    errors: Dict[str, Dict[str, str]] = {}
    instances: Dict[Tuple[str, str], Any] = {}
    gc.disable()  # as the timing loops do: no collection inside a window
    for key, _, group in _cases():
        if key not in keys:
            continue
        collecting = group == "instantiate"
        for rt in runtimes:
            try:
                found = _statement(key, group, rt, instances)
                if found is None:
                    continue
                stmt, names = found
                params = sorted(names)
                loop = compile_loop(stmt, params, UNROLL)
                args = tuple(names[p] for p in params)
                # warm-up, not counted: first calls, the interpreter's specialisation; and the time it
                # took (an overestimate) bounds the length of the windows
                warm_ns = loop(plan.base, *args)
                extra = max(plan.min_extra, min(plan.extra, plan.window_ns * plan.base // max(warm_ns, 1)))
            except Exception as error:
                errors.setdefault(key, {})[rt.name] = f"{type(error).__name__}: {error}"
                continue
            for _ in range(plan.pairs):
                for iterations in (plan.base, plan.base + extra):
                    if collecting:
                        gc.collect()  # not counted: each window starts with no garbage
                        gc.enable()
                    sys.call_tracing(loop, (iterations, *args))
                    gc.disable()
                    windows.append({"key": key, "runtime": rt.name, "iterations": iterations})
    out.write_text(json.dumps({"windows": windows, "errors": errors, "ticker": ticker}))


# --- the parent


_TOTALS = re.compile(r"^(?:totals|summary):\s*(\d+)", re.MULTILINE)


def _dump_total(path: Path) -> int:
    found = _TOTALS.search(path.read_text(errors="replace"))
    if found is None:
        raise RuntimeError(f"no totals in the callgrind dump {path}")
    return int(found.group(1))


def valgrind_path() -> str:
    found = shutil.which("valgrind")
    if found is None:
        raise ValgrindMissing("valgrind is not installed: --instructions counts instructions with callgrind "
                              "(Debian/Ubuntu: apt-get install valgrind)")
    return found


def count(plan: Plan, keys: Optional[List[str]] = None) -> Dict[str, Any]:
    """Runs the child under callgrind; per case and runtime: the instructions per operation (the median
    of the pairs' estimates), each pair's estimate and their spread."""
    valgrind = valgrind_path()
    keys = keys or [key for key, _, _ in _cases()]
    with tempfile.TemporaryDirectory(prefix="wasmpy-callgrind-") as tmp:
        order = Path(tmp) / "windows.json"
        dumps = Path(tmp) / "callgrind.out"
        code = ("import sys; sys.path[:] = {path!r}; from benchmarks.instructions import Plan, child; "
                "child(Plan(**{plan!r}), {keys!r}, __import__('pathlib').Path({out!r}))").format(
                    path=sys.path, plan=asdict(plan), keys=keys, out=str(order))
        command = [valgrind, "--tool=callgrind", "--collect-atstart=no", f"--toggle-collect={MARKER}",
                   f"--dump-after={MARKER}", f"--callgrind-out-file={dumps}", sys.executable, "-c", code]
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT,
                              cwd=str(Path(__file__).resolve().parent.parent))
        if done.returncode != 0 or not order.exists():
            raise RuntimeError(f"the callgrind run failed (exit status {done.returncode}):\n"
                               f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        written = json.loads(order.read_text())
        windows = written["windows"]
        numbered = sorted(Path(tmp).glob("callgrind.out.*"), key=lambda p: int(p.suffix[1:]))
        if len(numbered) != len(windows):
            raise RuntimeError(f"{len(numbered)} callgrind dumps for {len(windows)} windows: something else "
                               f"called {MARKER}, or this Python does not name it")
        totals = [_dump_total(path) for path in numbered]
    estimates: Dict[str, Dict[str, List[float]]] = {}
    operations_of: Dict[Tuple[str, str], int] = {}  # operations measured per pair
    for index in range(0, len(windows), 2):
        short, long = windows[index], windows[index + 1]
        operations = (long["iterations"] - short["iterations"]) * UNROLL
        per_op = (totals[index + 1] - totals[index]) / operations
        estimates.setdefault(short["key"], {}).setdefault(short["runtime"], []).append(per_op)
        operations_of[short["key"], short["runtime"]] = operations
    figures: Dict[str, Any] = {}
    for key, label, _ in _cases():
        if key not in keys:
            continue
        per_runtime = {}
        for name, values in estimates.get(key, {}).items():
            median = statistics.median(values)
            per_runtime[name] = {"per_op": median, "pairs": values, "operations": operations_of[key, name],
                                 "spread": (max(values) - min(values)) / median if median else None}
        figures[key] = {"label": label, "instructions": per_runtime, "errors": written["errors"].get(key)}
    for overhead, host_key, plain_key, label in (
            (HOST_OVERHEAD, "host_call", "ident_i32", "  host call overhead (callhost - ident)"),
            (HOST_REF_OVERHEAD, "host_ref", "externref", "  externref host call overhead (callhost_ref - ident_ref)")):
        if host_key in figures and plain_key in figures:
            host, plain = figures[host_key]["instructions"], figures[plain_key]["instructions"]
            figures[overhead] = {
                "label": label, "errors": None,
                "instructions": {name: {"per_op": host[name]["per_op"] - plain[name]["per_op"], "pairs": None,
                                        "operations": None, "spread": None} for name in host if name in plain}}
    return {"plan": asdict(plan), "unroll": UNROLL, "marker": MARKER, "wasmpy_ticker": written["ticker"],
            "valgrind": subprocess.run([valgrind, "--version"], capture_output=True, text=True).stdout.strip(),
            "benchmarks": figures}


def table(figures: Dict[str, Any], runtimes: List[str]) -> str:
    """Instructions per operation per runtime, the ratios wasmpy / each peer, and the worst spread."""
    from .report import PEERS, ratio_text
    from .report import table as format_table
    peers = [peer for peer in PEERS if peer in runtimes]
    headers = ["benchmark", *runtimes, *[f"wasmpy/{peer}" for peer in peers], "spread"]
    lines = []
    notes = []
    for key, row in figures["benchmarks"].items():
        counts = row["instructions"]
        per_op = {name: counts[name]["per_op"] for name in counts}
        spreads = [counts[name]["spread"] for name in counts if counts[name]["spread"] is not None]
        ratios = [per_op["wasmpy"] / per_op[peer] if per_op.get("wasmpy") and per_op.get(peer) else None
                  for peer in peers]
        lines.append([row["label"], *[f"{per_op[name]:,.0f}" if name in per_op else "-" for name in runtimes],
                      *map(ratio_text, ratios), f"{max(spreads):.1%}" if spreads else ""])
        for name, error in sorted((row["errors"] or {}).items()):
            notes.append(f"  ! {key} / {name}: {error}")
    plan = figures["plan"]
    return "\n".join([
        "== Instructions per operation (callgrind Ir, user space, all threads; "
        f"wasmpy's epoch ticker {figures['wasmpy_ticker']})",
        format_table(headers, lines), *notes,
        f"  note: each figure is (a window of {plan['base']} + k loop iterations - a window of {plan['base']}) "
        f"/ (k x {UNROLL}) operations, k at most {plan['extra']} (fewer for slow calls), the median of "
        f"{plan['pairs']} such pairs; spread: (largest - smallest) / median",
        "  ratios are wasmpy's instructions / the peer's: below 1, wasmpy executes fewer"])
