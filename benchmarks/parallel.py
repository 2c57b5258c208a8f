"""Running on many cores: the work of examples/parallel four ways, and shipping modules to workers.

Throughput: examples/parallel's 64 chunks through fnv.wat, sequentially, with threads, with a
``ProcessPoolExecutor`` and with a Dask ``LocalCluster`` (if ``distributed`` is installed), each
with one worker per core. Pools and clusters are started and their workers given the module
before the clock starts (each way's start-up is reported beside it), so the figures compare
steady throughput; each is the median of ``--repeats`` runs, as a ratio to the sequential run.

Shipping: for a module of a few megabytes (``import_cache.generate_wat``), the time to compile it
against the time a fresh process takes to unpickle it (which loads its compiled code), and the
pickle's size.

    python -m benchmarks.parallel [--rounds 300] [--repeats 3] [--workers N] [--functions 4000]
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import wasmpy

from . import SCRATCH
from .import_cache import generate_wat

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "parallel"
sys.path.insert(0, str(EXAMPLE))
import parallel  # noqa: E402  (examples/parallel/parallel.py)

DEFAULT_JSON = SCRATCH / "parallel.json"
TARGET_SPEEDUP = 1.6  # issue 17, on 2 cores: every parallel way at least this against sequential


def _median_seconds(run: Callable[[], List[int]], repeats: int, expected: Optional[List[int]]) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        hashes = run()
        times.append(time.perf_counter() - start)
        if expected is not None and hashes != expected:
            raise AssertionError("a parallel way gave other hashes than the sequential run")
    return statistics.median(times)


def throughput(rounds: int, repeats: int, workers: int) -> Dict[str, Any]:
    module = parallel.load_module()
    chunks = parallel.make_chunks()
    expected = parallel.sequential(module, chunks, rounds, 1)
    rows: Dict[str, Any] = {}
    rows["sequential"] = {"seconds": _median_seconds(lambda: parallel.sequential(module, chunks, rounds, 1),
                                                     repeats, expected), "startup_s": 0.0}
    rows["threads"] = {"seconds": _median_seconds(lambda: parallel.with_threads(module, chunks, rounds, workers),
                                                  repeats, expected), "startup_s": 0.0}
    start = time.perf_counter()
    with parallel.process_pool(module, workers) as pool:
        list(pool.map(parallel._hash_in_worker, chunks[:workers], [1] * workers))  # every worker started
        startup = time.perf_counter() - start
        seconds = _median_seconds(lambda: list(pool.map(parallel._hash_in_worker, chunks, [rounds] * len(chunks))),
                                  repeats, expected)
    rows["process pool"] = {"seconds": seconds, "startup_s": startup}
    if parallel.dask_available():
        from distributed import Client

        start = time.perf_counter()
        with parallel.dask_cluster(workers) as cluster, Client(cluster) as client:
            shipped = parallel.ship_to_dask(client, module)
            parallel.hash_with_dask(client, shipped, chunks[:workers], 1)
            startup = time.perf_counter() - start
            seconds = _median_seconds(lambda: parallel.hash_with_dask(client, shipped, chunks, rounds), repeats,
                                      expected)
        rows["dask"] = {"seconds": seconds, "startup_s": startup}
    for row in rows.values():
        row["speedup"] = rows["sequential"]["seconds"] / row["seconds"]
    return rows


UNPICKLE_CHILD = """
import json, pickle, sys, time
import wasmpy
with open(sys.argv[1], "rb") as file:
    data = file.read()
start = time.perf_counter()
module = pickle.loads(data)
loaded = time.perf_counter() - start
print(json.dumps({"unpickle_s": loaded, "result": wasmpy.Instance(module).exports.run(3, 4)}))
"""


def shipping(functions: int, repeats: int) -> Dict[str, Any]:
    source = generate_wat(functions)
    compile_times = []
    for _ in range(repeats):
        start = time.perf_counter()
        module = wasmpy.Module(source)
        compile_times.append(time.perf_counter() - start)
    start = time.perf_counter()
    data = pickle.dumps(module)
    pickle_s = time.perf_counter() - start
    expected = wasmpy.Instance(module).exports.run(3, 4)
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "module.pickle")
        with open(path, "wb") as file:
            file.write(data)
        loads = []
        for _ in range(repeats):
            proc = subprocess.run([sys.executable, "-c", UNPICKLE_CHILD, path], capture_output=True, text=True,
                                  check=True)
            child = json.loads(proc.stdout)
            if child["result"] != expected:
                raise AssertionError("the unpickled module computed something else")
            loads.append(child["unpickle_s"])
    compile_s, unpickle_s = statistics.median(compile_times), statistics.median(loads)
    return {"functions": functions, "code_bytes": len(module.serialize()), "pickle_bytes": len(data),
            "compile_s": compile_s, "pickle_s": pickle_s, "unpickle_in_fresh_process_s": unpickle_s,
            "compile_over_unpickle": compile_s / unpickle_s}


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # 300 rounds: each call hashes 19 MiB, tens of milliseconds, so that a Dask task's own cost (about
    # a millisecond) and a process pool's are small beside it, as they are for work worth sending away.
    parser.add_argument("--rounds", type=int, default=300, help="passes over each chunk (the work per call)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--functions", type=int, default=4000, help="functions in the shipped module")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    options = parser.parse_args(argv)
    rows = throughput(options.rounds, options.repeats, options.workers)
    print(f"throughput, {options.workers} workers on {os.cpu_count()} cores, 64 chunks x {options.rounds} rounds "
          f"(median of {options.repeats}):")
    for name, row in rows.items():
        startup = f"  (start-up {row['startup_s']:.2f} s, not counted)" if row["startup_s"] else ""
        print(f"  {name:>12}: {row['seconds']:6.3f} s  {row['speedup']:4.2f}x sequential{startup}")
    shipped = shipping(options.functions, options.repeats)
    print(f"shipping a module of {shipped['code_bytes'] / 1e6:.1f} MB of code ({shipped['functions']} functions): "
          f"compile {shipped['compile_s']:.3f} s, unpickle in a fresh process {shipped['unpickle_in_fresh_process_s']:.3f} s "
          f"({shipped['compile_over_unpickle']:.0f}x less), pickle {shipped['pickle_bytes'] / 1e6:.1f} MB "
          f"made in {shipped['pickle_s']:.3f} s")
    missed = [name for name, row in rows.items() if name != "sequential" and row["speedup"] < TARGET_SPEEDUP]
    if os.cpu_count() == 2 and options.workers == 2:
        print(f"target: every way >= {TARGET_SPEEDUP}x sequential on 2 cores: "
              + ("met" if not missed else "missed by " + ", ".join(missed)))
    options.json.parent.mkdir(parents=True, exist_ok=True)
    options.json.write_text(json.dumps({"workers": options.workers, "cores": os.cpu_count(),
                                        "rounds": options.rounds, "throughput": rows, "shipping": shipped}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
