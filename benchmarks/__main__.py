"""wasmpy against its peers, side by side in one process: ``python -m benchmarks``.

Runs every group (calls, compute, memory, instantiate, threads) on wasmpy and
on the peers that are installed (the ``wasmtime`` package, ``pywasm3``), all
on the same wasm bytes, then the import-cache benchmark as a sub-step; prints
a table per group and the issue's targets, and writes every figure as JSON
(and a picture beside it) to build/benchmarks/, or to --json PATH. --refresh
writes them over the committed figures in benchmarks/results/ instead, which
README.md shows: only a full run may.

    python -m benchmarks [--quick] [--only GROUP ...] [--skip-import-cache] [--json PATH]
    python -m benchmarks --refresh [--rounds N] [--import-cache-rounds N]
    python -m benchmarks --instructions [--quick] [--json PATH]

Figures are medians over rounds; the runtimes of a benchmark are measured in
turns within each round, so the ratios of one run are what count on a noisy
machine. A full run takes about 75 seconds on a quiet 2-core machine (it
prints how long it took); --quick is a smoke test.

--instructions counts instructions per operation instead (callgrind, see
instructions.py): the calls group's shapes and memory.read/write, for wasmpy
and the peers; deterministic, so figures of different runs compare. It writes
JSON only when given --json.

"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Dict, List, Optional

from . import RESULTS, SCRATCH

HERE = Path(__file__).resolve().parent
DEFAULT_JSON = SCRATCH / "latest.json"
RESULTS_JSON = RESULTS / "latest.json"  # the committed figures: written only with --refresh
IMPORT_CACHE = "import_cache"
SCHEMA = "wasmpy-benchmarks/1"
INSTRUCTIONS_SCHEMA = "wasmpy-benchmarks-instructions/1"


def _settings(quick: bool, rounds: Optional[int]):
    from .timing import Settings
    if quick:
        settings = Settings(rounds=3, round_ns=3_000_000, budget_ns=1_000_000_000, min_rounds=2)
    else:
        settings = Settings(rounds=21, round_ns=20_000_000, budget_ns=8_000_000_000, min_rounds=5)
    if rounds is not None:
        settings = Settings(rounds, settings.round_ns, settings.budget_ns * max(1, rounds // settings.rounds),
                            min(settings.min_rounds, rounds))
    return settings


def _import_cache_json(json_path: Path) -> Path:
    from . import import_cache
    if json_path == RESULTS_JSON:
        return import_cache.RESULTS_JSON
    return json_path.with_name(f"{json_path.stem}.{IMPORT_CACHE}.json")


def _git_state() -> Optional[Dict[str, Any]]:
    """The checkout's commit and whether wasmpy/ or csrc/ differ from it (the figures describe the tree)."""
    import subprocess
    try:
        def git(*args: str) -> str:
            return subprocess.run(["git", *args], cwd=HERE.parent, capture_output=True, text=True,
                                  timeout=10, check=True).stdout.strip()
        return {"commit": git("rev-parse", "HEAD"),
                "modified": git("status", "--porcelain", "--", "wasmpy", "csrc", "build_ffi.py", "setup.py")
                .splitlines()}
    except Exception:
        return None


def _header(runtimes: List[Any], quick: bool, what: str) -> None:
    print(f"wasmpy benchmarks{what}{' (--quick: a smoke test, not figures)' if quick else ''}")
    print(f"Python {platform.python_version()} ({platform.python_implementation()}), {platform.machine()}, "
          f"{os.cpu_count()} CPUs, {platform.platform()}")
    for rt in runtimes:
        if rt.available:
            print(f"  {rt.name:<9} {rt.version}")
        else:
            print(f"  {rt.name:<9} MISSING ({rt.error}); install: pip install '{rt.requirement}'")


def _meta(started: float, argv: Optional[List[str]], quick: bool) -> Dict[str, Any]:
    from . import modules
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "seconds": time.perf_counter() - started,
        "argv": sys.argv[1:] if argv is None else list(argv),
        "quick": quick,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "git": _git_state(),
        "module_bytes": modules.sizes(),
    }


def _instructions(quick: bool, json_path: Optional[Path], argv: Optional[List[str]]) -> int:
    """``--instructions``: instructions per operation under callgrind; JSON only if asked for."""
    from . import instructions
    from .runtimes import all_runtimes
    try:
        instructions.valgrind_path()
    except instructions.ValgrindMissing as missing:
        print(f"python -m benchmarks --instructions: {missing}", file=sys.stderr)
        return 2
    runtimes = all_runtimes()
    if not runtimes[0].available:
        print(f"wasmpy cannot be imported: {runtimes[0].error}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    _header(runtimes, quick, ": instructions per operation")
    print("counting under callgrind (a child interpreter, tens of times slower than natively)...", flush=True)
    try:
        figures = instructions.count(instructions.QUICK if quick else instructions.FULL)
    except Exception:
        print(f"!! counting failed:\n{traceback.format_exc()}", file=sys.stderr)
        return 1
    print()
    print(instructions.table(figures, [rt.name for rt in runtimes if rt.available]))
    if json_path is not None:
        document = {"schema": INSTRUCTIONS_SCHEMA,
                    "meta": {**_meta(started, argv, quick),
                             "ratios": "wasmpy instructions / peer instructions (below 1: wasmpy executes fewer)"},
                    "runtimes": {rt.name: rt.describe() for rt in runtimes},
                    "instructions": figures}
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
        print(f"\nwrote {json_path}")
    print(f"({time.perf_counter() - started:.0f} s in all)")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    from .suite import GROUPS
    choices = [*GROUPS, IMPORT_CACHE]
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="groups: " + ", ".join(choices))
    parser.add_argument("--quick", action="store_true", help="few, short rounds: a smoke test, not figures")
    parser.add_argument("--only", action="append", choices=choices, metavar="GROUP",
                        help="run only this group (repeatable): " + ", ".join(choices))
    parser.add_argument("--skip-import-cache", action="store_true",
                        help=f"do not run the {IMPORT_CACHE} sub-step (python -m benchmarks.{IMPORT_CACHE})")
    parser.add_argument("--json", type=Path, metavar="PATH",
                        help=f"where to write the figures (default {DEFAULT_JSON.relative_to(HERE.parent)}; "
                        "with --instructions, none unless given)")
    parser.add_argument("--refresh", action="store_true",
                        help=f"write the figures over the committed ones, {RESULTS_JSON.relative_to(HERE.parent)} "
                        "(and its picture and import_cache.json), which README.md shows: a full run only")
    parser.add_argument("--instructions", action="store_true",
                        help="count instructions per operation with callgrind (needs valgrind) instead of timing")
    parser.add_argument("--rounds", type=int, metavar="N", help="rounds per measurement (default 21, 3 with --quick)")
    parser.add_argument("--import-cache-rounds", type=int, metavar="N",
                        help="new processes per import-cache measurement (default 5, 1 with --quick)")
    args = parser.parse_args(argv)
    if args.rounds is not None and args.rounds < 1:
        parser.error("--rounds must be positive")
    if args.instructions:
        if (args.only or args.rounds is not None or args.skip_import_cache or args.import_cache_rounds is not None
                or args.refresh):
            parser.error("--instructions takes only --quick and --json")
        return _instructions(args.quick, args.json, argv)
    if args.refresh:
        if args.quick or args.only or args.skip_import_cache or args.json is not None:
            parser.error("--refresh writes the committed figures, which are of a full run: "
                         "it takes no --quick, --only, --skip-import-cache or --json")
        args.json = RESULTS_JSON
    elif args.json is None:
        args.json = DEFAULT_JSON

    from .runtimes import all_runtimes
    runtimes = all_runtimes()
    if not runtimes[0].available:
        print(f"wasmpy cannot be imported: {runtimes[0].error}", file=sys.stderr)
        return 2
    from . import plot, report
    from .suite import Context

    started = time.perf_counter()
    settings = _settings(args.quick, args.rounds)
    selected = args.only or choices
    run_import_cache = IMPORT_CACHE in selected and not args.skip_import_cache

    _header(runtimes, args.quick, "")
    print(f"rounds: up to {settings.rounds} per measurement, about {settings.round_ns / 1e6:g} ms each; "
          "figures are medians")
    print()

    log = lambda line: print(line, flush=True)  # noqa: E731
    ctx = Context(runtimes, settings, args.quick, log)
    names = [rt.name for rt in ctx.runtimes]
    groups = {}
    failures: Dict[str, str] = {}
    for name, function in GROUPS.items():
        if name not in selected:
            continue
        log(f"-- {name}")
        group_started = time.perf_counter()
        try:
            group = function(ctx)
        except Exception:
            failures[name] = traceback.format_exc()
            log(f"!! the {name} group failed:\n{failures[name]}")
            continue
        group.seconds = time.perf_counter() - group_started
        groups[name] = group
        print()
        print(report.group_table(group, names))
        print(flush=True)

    cache: Optional[Dict[str, Any]] = None
    if run_import_cache:
        from . import import_cache
        rounds = args.import_cache_rounds or (1 if args.quick else 5)
        functions = 1000 if args.quick else 4000
        log(f"== {IMPORT_CACHE} (sub-step: python -m benchmarks.{IMPORT_CACHE} --rounds {rounds} "
            f"--functions {functions})")
        try:
            cache = import_cache.run(rounds, functions, _import_cache_json(args.json))
        except Exception:
            failures[IMPORT_CACHE] = traceback.format_exc()
            log(f"!! the {IMPORT_CACHE} sub-step failed:\n{failures[IMPORT_CACHE]}")
        print(flush=True)
    elif IMPORT_CACHE in selected:
        log(f"== {IMPORT_CACHE}: skipped (--skip-import-cache)")

    found = report.targets(groups, cache)
    print(report.targets_table(found))

    figures = {
        "schema": SCHEMA,
        "meta": {
            **_meta(started, argv, args.quick),
            "settings": {"rounds": settings.rounds, "round_ns": settings.round_ns,
                         "budget_ns": settings.budget_ns, "min_rounds": settings.min_rounds},
            "ratios": "wasmpy time / peer time (below 1: wasmpy faster)",
        },
        "runtimes": {rt.name: rt.describe() for rt in runtimes},
        "groups": {name: group.to_json() for name, group in groups.items()},
        "targets": found,
        IMPORT_CACHE: cache if cache is not None else {
            "skipped": "not selected" if IMPORT_CACHE not in selected else
            ("--skip-import-cache" if args.skip_import_cache else "failed")},
        "failures": failures or None,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(figures, indent=2, ensure_ascii=False) + "\n")
    picture = args.json.with_suffix(".svg")
    plot.write(figures, picture)
    print(f"\nwrote {args.json} and {picture.name}  ({time.perf_counter() - started:.0f} s in all)")
    if failures:
        print(f"failed: {', '.join(failures)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
