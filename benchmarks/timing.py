"""Timing loops generated from statements, calibrated rounds, medians; runtimes interleaved.

A case is a statement (``f(1, 2)``) and the local names it uses. The loop
that times it is generated source: the statement written ``unroll`` times in
the body of ``for _ in itertools.repeat(None, n)``, with every name a local
variable, so that the loop itself costs little next to the call. Each round
runs the loop with ``n`` calibrated so that a round lasts about
``Settings.round_ns``; the figure of a round is its time per operation, and
the result is the median over the rounds.

The runtimes of one benchmark are measured in turns, round by round (in an
order that rotates), so that a burst of noise on the machine falls on all of
them alike: on a noisy machine the ratios of one run are what count.
"""

from __future__ import annotations

import gc
import itertools
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

Stmt = Tuple[str, Dict[str, Any]]

_RESERVED = {"_n", "_t0", "_clock", "_repeat", "_"}


@dataclass(frozen=True)
class Settings:
    rounds: int                 # rounds per measurement (fewer when the budget runs out)
    round_ns: int               # how long a round should last
    budget_ns: int              # the most one benchmark (all runtimes) should take
    min_rounds: int = 3


@dataclass
class Case:
    """One runtime's side of a benchmark. ``make`` gives the statement and its names, once per round
    (so a round can start from a fresh store); ``unroll`` is how many times the loop body repeats it."""

    make: Callable[[], Stmt]
    unroll: int = 10
    max_ops: Optional[int] = None       # at most this many operations per round
    gc_enabled: bool = False            # leave the cyclic GC on while timing (work that makes garbage)
    collect: bool = False               # gc.collect() before each round (untimed): no garbage carried over


@dataclass
class Result:
    per_op_ns: List[float] = field(default_factory=list)   # one figure per round
    ops_per_round: int = 0
    error: Optional[str] = None

    @property
    def median_ns(self) -> Optional[float]:
        return statistics.median(self.per_op_ns) if self.per_op_ns else None

    def to_json(self) -> Dict[str, Any]:
        if self.error is not None:
            return {"error": self.error}
        return {"median_ns": self.median_ns, "min_ns": min(self.per_op_ns), "max_ns": max(self.per_op_ns),
                "rounds": len(self.per_op_ns), "ops_per_round": self.ops_per_round,
                "rounds_ns": self.per_op_ns}


def compile_loop(stmt: str, params: List[str], unroll: int) -> Callable[..., int]:
    """``loop(n, *values_of_params)``: runs ``stmt`` n * unroll times; returns the nanoseconds."""
    bad = _RESERVED.intersection(params)
    if bad:
        raise ValueError(f"reserved names in a benchmark statement: {sorted(bad)}")
    body = "\n".join("        " + stmt for _ in range(unroll))
    source = (f"def loop(_n, {', '.join(params)}):\n"
              f"    _t0 = _clock()\n"
              f"    for _ in _repeat(None, _n):\n{body}\n"
              f"    return _clock() - _t0\n")
    namespace: Dict[str, Any] = {"_clock": time.perf_counter_ns, "_repeat": itertools.repeat}
    exec(compile(source, f"<benchmark: {stmt}>", "exec"), namespace)
    return namespace["loop"]


class _Runner:
    def __init__(self, case: Case) -> None:
        self.case = case
        stmt, names = case.make()
        self.params = sorted(names)
        self.loop = compile_loop(stmt, self.params, case.unroll)
        self.names = names
        self.n = 1

    def fresh(self) -> None:
        self.names = None
        if self.case.collect:
            gc.collect()
        self.names = self.case.make()[1]

    def run(self, n: int) -> int:
        args = [self.names[p] for p in self.params]
        gc_was_enabled = gc.isenabled()
        if not self.case.gc_enabled:
            gc.disable()
        try:
            return self.loop(n, *args)
        finally:
            if gc_was_enabled:
                gc.enable()

    def calibrate(self, round_ns: int) -> int:
        """Picks n for rounds of about ``round_ns``; returns the expected duration of a round."""
        limit = max(1, (self.case.max_ops or 1 << 62) // self.case.unroll)
        elapsed = self.run(1)           # warm-up: first calls, lazy compilation, page faults
        n = 1
        while True:
            elapsed = self.run(n)
            if elapsed >= round_ns or n >= limit:
                break
            grow = round_ns / max(elapsed, 1)
            n = min(limit, max(n * 2, int(n * min(grow * 1.1, 100))))
        self.n = n
        return elapsed


def measure(cases: Dict[str, Case], settings: Settings, on_error: str = "record") -> Dict[str, Result]:
    """Times each runtime's case in turns, round by round; a case that raises is recorded as an error."""
    results = {name: Result() for name in cases}
    runners: Dict[str, _Runner] = {}
    expected: Dict[str, int] = {}
    for name, case in cases.items():
        try:
            runner = _Runner(case)
            expected[name] = runner.calibrate(settings.round_ns)
            runners[name] = runner
            results[name].ops_per_round = runner.n * case.unroll
        except Exception as error:
            if on_error != "record":
                raise
            results[name].error = f"{type(error).__name__}: {error}"
    if not runners:
        return results
    round_total = sum(expected.values())
    rounds = settings.rounds
    if round_total * rounds > settings.budget_ns:
        rounds = max(settings.min_rounds, int(settings.budget_ns // max(round_total, 1)))
    order = list(runners)
    for index in range(rounds):
        shift = index % len(order)
        for name in order[shift:] + order[:shift]:
            runner = runners[name]
            if results[name].error is not None:
                continue
            try:
                runner.fresh()
                elapsed = runner.run(runner.n)
            except Exception as error:
                results[name].error = f"{type(error).__name__}: {error}"
                continue
            results[name].per_op_ns.append(elapsed / (runner.n * runner.case.unroll))
    return results
