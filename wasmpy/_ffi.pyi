# The cffi module build_ffi.py generates: its ffi and lib are typed by cffi at run time only.
from typing import Any

ffi: Any
lib: Any
