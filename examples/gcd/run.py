"""Loads gcd.wat with wasmpy's direct API and calls its export."""

from pathlib import Path

import wasmpy

module = wasmpy.Module.from_file(Path(__file__).with_name("gcd.wat"))
gcd = wasmpy.Instance(module).exports.gcd
print(f"gcd(27, 6) = {gcd(27, 6)}")
