"""Benchmarks for wasmpy, against the wasmtime package and pywasm3 when they are installed.

Run them all from the repository root with ``python -m benchmarks`` (``--quick``
for a smoke test, ``--only GROUP``, ``--skip-import-cache``, ``--json PATH``);
``python -m benchmarks.import_cache`` runs the import-cache benchmark alone.
See benchmarks/README.md.
"""
