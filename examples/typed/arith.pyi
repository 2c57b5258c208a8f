"""What type checkers know of arith.wat, which the import hook makes a module at run time.

A wasm module has no Python source for a type checker to read, so its exports are described here,
as for any extension module: numbers are int or float, and several results a tuple.
"""

def add(a: int, b: int, /) -> int: ...
def divmod(a: int, b: int, /) -> tuple[int, int]: ...
