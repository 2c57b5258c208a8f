"""The same work run four ways: sequentially, with threads, with a process pool, with Dask.

The work: 64 chunks of 64 KiB of pseudo-random bytes, each hashed by fnv.wat (64-bit FNV-1a,
``rounds`` passes over the chunk). Every way gives the same 64 hashes:

- sequentially, one instance;
- with threads: one store and instance per thread (a store is used by one thread at a time),
  made with ``release_gil=True`` so that the threads' calls run in parallel from their start;
- with ``concurrent.futures.ProcessPoolExecutor``: the compiled module is pickled once per
  worker through the pool's initializer, and loads there without compiling again;
- with Dask's distributed scheduler (``pip install 'wasmpy[dist]'``): ``client.scatter`` ships
  the module to every worker once, ``client.map`` runs the chunks in batches of several.

Run it: ``python examples/parallel/parallel.py [--workers N] [--rounds R]``; it prints each way's
time and its speed against the sequential run, and fails if any way's hashes differ.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import os
import random
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import wasmpy

KERNEL = Path(__file__).resolve().parent / "fnv.wat"
CHUNKS = 64
CHUNK_SIZE = 64 * 1024


def load_module() -> wasmpy.Module:
    return wasmpy.Module.from_file(KERNEL)


def make_chunks(count: int = CHUNKS, size: int = CHUNK_SIZE, seed: int = 1) -> List[bytes]:
    generator = random.Random(seed)
    return [generator.randbytes(size) for _ in range(count)]


class Hasher:
    """An instance of the kernel in a store of its own; one thread uses it at a time.

    ``release_gil``: see :class:`wasmpy.Store`; threads want it, since a call that ends before
    the first epoch tick (10 ms) would otherwise keep the GIL from the other threads."""

    def __init__(self, module: wasmpy.Module, release_gil: bool = False) -> None:
        self.instance = wasmpy.Instance(module, store=wasmpy.Store(module.engine, release_gil=release_gil))
        self.memory = self.instance.exports.memory
        self.hash = self.instance.exports.hash

    def __call__(self, chunk: bytes, rounds: int) -> int:
        self.memory.write(0, chunk)
        return self.hash(0, len(chunk), rounds) & 0xFFFF_FFFF_FFFF_FFFF  # i64 comes back signed


def sequential(module: wasmpy.Module, chunks: List[bytes], rounds: int, workers: int) -> List[int]:
    hasher = Hasher(module)
    return [hasher(chunk, rounds) for chunk in chunks]


def with_threads(module: wasmpy.Module, chunks: List[bytes], rounds: int, workers: int) -> List[int]:
    local = threading.local()

    def work(chunk: bytes) -> int:
        if not hasattr(local, "hasher"):
            local.hasher = Hasher(module, release_gil=True)
        return local.hasher(chunk, rounds)

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        return list(pool.map(work, chunks))


_worker_hasher: Optional[Hasher] = None


def _start_worker(module: wasmpy.Module) -> None:
    global _worker_hasher
    _worker_hasher = Hasher(module)


def _hash_in_worker(chunk: bytes, rounds: int) -> int:
    assert _worker_hasher is not None, "the pool's initializer did not run"
    return _worker_hasher(chunk, rounds)


def process_pool(module: wasmpy.Module, workers: int) -> concurrent.futures.ProcessPoolExecutor:
    """A pool whose workers each get the module (pickled) and make their instance once. spawn:
    fresh interpreters, not forks of this multi-threaded process."""
    return concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                                  initializer=_start_worker, initargs=(module,))


def with_processes(module: wasmpy.Module, chunks: List[bytes], rounds: int, workers: int) -> List[int]:
    with process_pool(module, workers) as pool:
        return list(pool.map(_hash_in_worker, chunks, [rounds] * len(chunks)))


_dask_hashers: Dict[int, Any] = {}

# A Dask task costs the scheduler about a millisecond and its worker a message each way, time the
# two cores would otherwise spend hashing: so each task hashes a batch of chunks, as many batches as
# a few per worker, which still lets a worker that runs ahead take more of them.
BATCHES_PER_WORKER = 8


def _hash_batch_with_dask(module: wasmpy.Module, chunks: List[bytes], rounds: int) -> List[int]:
    """On a Dask worker: the scattered module is one object per worker; its instance is made once.

    ``release_gil=True``: the worker runs tasks in a thread beside its event loop, which receives
    the next task and sends results while this one hashes."""
    entry = _dask_hashers.get(id(module))
    if entry is None or entry[0] is not module:
        entry = _dask_hashers[id(module)] = (module, Hasher(module, release_gil=True))
    hasher = entry[1]
    return [hasher(chunk, rounds) for chunk in chunks]


def dask_cluster(workers: int) -> Any:
    """A local Dask cluster of ``workers`` single-threaded worker processes."""
    from distributed import LocalCluster

    return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)


def ship_to_dask(client: Any, module: wasmpy.Module) -> Any:
    """The module on every worker of ``client`` (pickled once per worker), as a Dask future."""
    return client.scatter(module, broadcast=True, hash=False)


def hash_with_dask(client: Any, shipped: Any, chunks: List[bytes], rounds: int) -> List[int]:
    workers = max(1, len(client.scheduler_info()["workers"]))
    size = max(1, -(-len(chunks) // (workers * BATCHES_PER_WORKER)))
    batches = [chunks[start:start + size] for start in range(0, len(chunks), size)]
    futures = client.map(_hash_batch_with_dask, [shipped] * len(batches), batches, [rounds] * len(batches),
                         pure=False)
    return [hashed for batch in client.gather(futures) for hashed in batch]


def with_dask(module: wasmpy.Module, chunks: List[bytes], rounds: int, workers: int) -> List[int]:
    from distributed import Client

    with dask_cluster(workers) as cluster, Client(cluster) as client:
        return hash_with_dask(client, ship_to_dask(client, module), chunks, rounds)


WAYS: Dict[str, Callable[[wasmpy.Module, List[bytes], int, int], List[int]]] = {
    "sequential": sequential, "threads": with_threads, "process pool": with_processes, "dask": with_dask,
}


def dask_available() -> bool:
    try:
        import distributed  # noqa: F401
    except ImportError:
        return False
    return True


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--rounds", type=int, default=100, help="passes over each chunk (the work per call)")
    options = parser.parse_args(argv)
    module = load_module()
    chunks = make_chunks()
    expected: Optional[List[int]] = None
    baseline = 0.0
    for name, way in WAYS.items():
        if name == "dask" and not dask_available():
            print(f"{name:>12}: skipped (pip install 'wasmpy[dist]' for Dask's distributed scheduler)")
            continue
        start = time.perf_counter()
        hashes = way(module, chunks, options.rounds, options.workers)
        seconds = time.perf_counter() - start
        if expected is None:
            expected, baseline = hashes, seconds
        elif hashes != expected:
            print(f"{name}: the hashes differ from the sequential run's", file=sys.stderr)
            return 1
        print(f"{name:>12}: {seconds:6.2f} s  {baseline / seconds:4.2f}x  (pools and clusters started in the time)")
    assert expected is not None
    print(f"hash of chunk 0: {expected[0]:016x}; all ways agree on all {len(expected)} chunks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
