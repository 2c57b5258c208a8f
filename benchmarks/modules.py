"""The modules every runtime runs: WAT here (compiled once, with wasmpy.wat2wasm) and the C kernels
in kernels/ (committed .wasm, rebuilt by kernels/build.sh)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Dict

KERNELS = Path(__file__).resolve().parent / "kernels"

# Calls of every shape, and a wasm -> Python round trip through the import env.host (i32 -> i32).
CALLS_WAT = """
(module
  (import "env" "host" (func $host (param i32) (result i32)))
  (func (export "noop"))
  (func (export "add") (param i32 i32) (result i32)
    (i32.add (local.get 0) (local.get 1)))
  (func (export "add64") (param i64 i64) (result i64)
    (i64.add (local.get 0) (local.get 1)))
  (func (export "addf") (param f64 f64) (result f64)
    (f64.add (local.get 0) (local.get 1)))
  (func (export "sum5") (param i32 i32 i32 i32 i32) (result i32)
    (i32.add (i32.add (i32.add (i32.add (local.get 0) (local.get 1)) (local.get 2)) (local.get 3))
             (local.get 4)))
  (func (export "two") (result i32 i32)
    (i32.const 1) (i32.const 2))
  (func (export "ident") (param i32) (result i32)
    (local.get 0))
  (func (export "callhost") (param i32) (result i32)
    (call $host (local.get 0))))
"""

# The values group: references, v128, globals and tables, and a wasm -> Python round trip through
# the import env.host_ref (externref -> externref). pywasm3 loads none of it (no reference types, no
# SIMD).
VALUES_WAT = """
(module
  (import "env" "host_ref" (func $host_ref (param externref) (result externref)))
  (global (export "counter") (mut i32) (i32.const 0))
  (table (export "objects") 4 externref)
  (func (export "add") (param i32 i32) (result i32)
    (i32.add (local.get 0) (local.get 1)))
  (func (export "ident_ref") (param externref) (result externref)
    (local.get 0))
  (func (export "ident_any") (param anyref) (result anyref)
    (local.get 0))
  (func (export "ident_func") (param funcref) (result funcref)
    (local.get 0))
  (func (export "ident_v128") (param v128) (result v128)
    (local.get 0))
  (func (export "callhost_ref") (param externref) (result externref)
    (call $host_ref (local.get 0))))
"""

FIB_WAT = """
(module
  (func $fib (export "fib") (param i32) (result i32)
    (if (result i32) (i32.lt_u (local.get 0) (i32.const 2))
      (then (local.get 0))
      (else (i32.add (call $fib (i32.sub (local.get 0) (i32.const 1)))
                     (call $fib (i32.sub (local.get 0) (i32.const 2))))))))
"""

# 17 pages: 1 MiB for the bulk copies and room beside it.
MEMORY_WAT = """
(module
  (memory (export "memory") 17)
  (func (export "size") (result i32) (memory.size)))
"""

# A small module, to instantiate again and again: a memory with data, a mutable global, a few
# functions; SMALL_IMPORT_WAT also imports a function (given as a Python function).
_SMALL_BODY = """
  (memory (export "memory") 1)
  (data (i32.const 16) "hello, wasm")
  (global $counter (mut i32) (i32.const 0))
  (func (export "add") (param i32 i32) (result i32)
    (i32.add (local.get 0) (local.get 1)))
  (func (export "bump") (result i32)
    (global.set $counter (i32.add (global.get $counter) (i32.const 1)))
    (global.get $counter))
  (func (export "load") (param i32) (result i32)
    (i32.load (local.get 0)))
"""
SMALL_WAT = f"(module {_SMALL_BODY})"
SMALL_IMPORT_WAT = f"""(module
  (import "env" "host" (func $host (param i32) (result i32)))
  {_SMALL_BODY}
  (func (export "callhost") (param i32) (result i32)
    (call $host (local.get 0))))"""

_WAT = {"calls": CALLS_WAT, "values": VALUES_WAT, "fib": FIB_WAT, "memory": MEMORY_WAT, "small": SMALL_WAT,
        "small_import": SMALL_IMPORT_WAT}
_KERNELS = {"nbody": "nbody.wasm", "hash": "hash.wasm", "lz4": "lz4.wasm"}


@lru_cache(maxsize=None)
def wasm(name: str) -> bytes:
    """The wasm bytes of module ``name``: WAT compiled once by wasmpy, or a committed kernel."""
    if name in _KERNELS:
        return (KERNELS / _KERNELS[name]).read_bytes()
    import wasmpy
    return bytes(wasmpy.wat2wasm(_WAT[name]))


def sizes() -> Dict[str, int]:
    return {name: len(wasm(name)) for name in list(_WAT) + list(_KERNELS)}
