"""Benchmarks for wasmpy, against the wasmtime package and pywasm3 when they are installed.

Run them all from the repository root with ``python -m benchmarks`` (``--quick``
for a smoke test, ``--only GROUP``, ``--skip-import-cache``, ``--json PATH``,
``--refresh``); ``python -m benchmarks.import_cache`` runs the import-cache
benchmark alone, ``python -m benchmarks.load`` loads 55 MB of machine code and
``python -m benchmarks.epoch_cost`` measures what epoch checks cost a real
program. See benchmarks/README.md.
"""

from pathlib import Path

# The figures README.md shows, committed: written only by `python -m benchmarks --refresh`.
RESULTS = Path(__file__).resolve().parent / "results"
# Where runs write their figures otherwise (build/ is not committed).
SCRATCH = Path(__file__).resolve().parent.parent / "build" / "benchmarks"
