"""Engine: compilation settings shared by modules and stores."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import weakref
from typing import Any, Dict, Optional

from ._ffi import ffi, lib

__all__ = ["Engine"]

_FLAGS = {
    "consume_fuel": lib.wasmtime_config_consume_fuel_set,
    "epoch_interruption": lib.wasmtime_config_epoch_interruption_set,
    "debug_info": lib.wasmtime_config_debug_info_set,
    "parallel_compilation": lib.wasmtime_config_parallel_compilation_set,
    "nan_canonicalization": lib.wasmtime_config_cranelift_nan_canonicalization_set,
    "native_unwind_info": lib.wasmtime_config_native_unwind_info_set,
    # wasm features
    "threads": lib.wasmtime_config_wasm_threads_set,
    "shared_memory": lib.wasmtime_config_shared_memory_set,
    "tail_call": lib.wasmtime_config_wasm_tail_call_set,
    "reference_types": lib.wasmtime_config_wasm_reference_types_set,
    "function_references": lib.wasmtime_config_wasm_function_references_set,
    "gc": lib.wasmtime_config_wasm_gc_set,
    "simd": lib.wasmtime_config_wasm_simd_set,
    "relaxed_simd": lib.wasmtime_config_wasm_relaxed_simd_set,
    "relaxed_simd_deterministic": lib.wasmtime_config_wasm_relaxed_simd_deterministic_set,
    "bulk_memory": lib.wasmtime_config_wasm_bulk_memory_set,
    "multi_value": lib.wasmtime_config_wasm_multi_value_set,
    "multi_memory": lib.wasmtime_config_wasm_multi_memory_set,
    "memory64": lib.wasmtime_config_wasm_memory64_set,
    "wide_arithmetic": lib.wasmtime_config_wasm_wide_arithmetic_set,
    "exceptions": lib.wasmtime_config_wasm_exceptions_set,
    "custom_page_sizes": lib.wasmtime_config_wasm_custom_page_sizes_set,
}
_SIZES = {
    "max_wasm_stack": lib.wasmtime_config_max_wasm_stack_set,
}
# Turning a feature off turns off what needs it, unless that was asked for explicitly.
_NEEDS = {
    "relaxed_simd": ("simd",),
    "function_references": ("reference_types",),
    "gc": ("reference_types", "function_references"),
    "exceptions": ("reference_types",),
}
_OPT_LEVELS = {
    "none": lib.WASMTIME_OPT_LEVEL_NONE,
    "speed": lib.WASMTIME_OPT_LEVEL_SPEED,
    "speed_and_size": lib.WASMTIME_OPT_LEVEL_SPEED_AND_SIZE,
}
OPTIONS = sorted([*_FLAGS, *_SIZES, "cranelift_opt_level", "instance_pool"])
# Pool sizes that instance_pool=N sets to N: every kind of slot an instance may take.
_POOL_TOTALS = (
    lib.wasmtime_pooling_allocation_config_total_core_instances_set,
    lib.wasmtime_pooling_allocation_config_total_memories_set,
    lib.wasmtime_pooling_allocation_config_total_tables_set,
    lib.wasmtime_pooling_allocation_config_total_stacks_set,
    lib.wasmtime_pooling_allocation_config_total_gc_heaps_set,
    lib.wasmtime_pooling_allocation_config_max_memories_per_module_set,
    lib.wasmtime_pooling_allocation_config_max_tables_per_module_set,
)
_DEFAULT_WASM_STACK = 512 * 1024  # wasmtime's default max_wasm_stack
_HOST_STACK_MARGIN = 256 * 1024  # for wasmtime's and Python's frames around the wasm ones


def _resolve(config: Dict[str, Any]) -> Dict[str, Any]:
    """The options to apply: ``config``, wasmpy's defaults, and features turned off because what
    they need is off."""
    resolved = {"epoch_interruption": True, **config}
    for feature, needs in _NEEDS.items():
        missing = [need for need in needs if resolved.get(need) is False]
        if not missing:
            continue
        if resolved.get(feature) is True:
            raise ValueError(f"Engine option {feature}=True needs {' and '.join(f'{n}=True' for n in missing)}")
        resolved[feature] = False
    return resolved


def _checked_config(config: Dict[str, Any]):
    """A ``wasm_config_t *`` with ``config`` applied: raises TypeError/ValueError for bad options."""
    c_config = lib.wasm_config_new()
    try:
        for name, value in config.items():
            _apply(c_config, name, value)
    except BaseException:
        lib.wasm_config_delete(c_config)
        raise
    return c_config


def _build(config: Dict[str, Any]):
    """A new ``wasm_engine_t *`` for the resolved options."""
    c_config = _checked_config(config)
    lib.wasmtime_config_memory_may_move_set(c_config, False)
    return lib.wasm_engine_new_with_config(c_config)  # takes the config


_probed: Dict[str, Optional[str]] = {}


def _probe(config: Dict[str, Any]) -> None:
    """Raises ValueError if wasmtime rejects ``config``.

    wasmtime aborts the process on a configuration it rejects, so a
    configuration that turns something off is first tried in a child process.
    """
    key = json.dumps(config, sort_keys=True)
    if key not in _probed:
        child = subprocess.run(
            [sys.executable, "-c", "import json, sys; from wasmpy._engine import _build; "
                                   "_build(json.loads(sys.argv[1]))", key],
            capture_output=True, text=True, timeout=120)
        _probed[key] = None if child.returncode == 0 else _panic_message(child.stderr)
    if _probed[key] is not None:
        raise ValueError(f"wasmtime rejects this Engine configuration: {_probed[key]}")


def _panic_message(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for index, line in enumerate(lines):
        if "panicked at" in line and index + 1 < len(lines):
            return lines[index + 1]
    return lines[-1] if lines else "the configuration was refused"


def _apply(config, name: str, value: Any) -> None:
    if name in _FLAGS:
        if not isinstance(value, bool):
            raise TypeError(f"Engine option {name} takes True or False, not {value!r}")
        _FLAGS[name](config, value)
    elif name in _SIZES:
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"Engine option {name} takes a size in bytes (an int), not {value!r}")
        if not 0 < value < 2**63:
            raise ValueError(f"Engine option {name} must be a positive number of bytes, not {value}")
        _SIZES[name](config, value)
    elif name == "cranelift_opt_level":
        if value not in _OPT_LEVELS:
            raise ValueError(f"cranelift_opt_level must be one of {', '.join(map(repr, _OPT_LEVELS))}, "
                             f"not {value!r}")
        lib.wasmtime_config_cranelift_opt_level_set(config, _OPT_LEVELS[value])
    elif name == "instance_pool":
        _apply_instance_pool(config, value)
    else:
        raise TypeError(f"unknown Engine option {name!r}; the options are: {', '.join(OPTIONS)}")


def _apply_instance_pool(config, count: Any) -> None:
    if count is None:
        return
    if not isinstance(count, int) or isinstance(count, bool):
        raise TypeError(f"Engine option instance_pool takes a number of instances (an int) or None, not {count!r}")
    if not 1 <= count <= 2**32 - 1:
        raise ValueError(f"Engine option instance_pool must be from 1 to 2**32-1, not {count}")
    pooling = lib.wasmtime_pooling_allocation_config_new()
    try:
        for set_total in _POOL_TOTALS:
            set_total(pooling, count)
        lib.wasmtime_pooling_allocation_strategy_set(config, pooling)  # copies the pooling settings
    finally:
        lib.wasmtime_pooling_allocation_config_delete(pooling)


class _Ticker:
    """One thread for the whole process that advances the epoch of every interruptible engine.

    Each tick makes running wasm check its store's deadline and, in the main
    thread, run Python's signal handlers (so Ctrl-C raises KeyboardInterrupt).
    """

    interval = 0.01  # seconds: the precision of deadlines

    def __init__(self) -> None:
        self._engines: "weakref.WeakSet[Engine]" = weakref.WeakSet()
        self._lock = threading.Lock()
        self._thread: Optional[threading.Thread] = None

    def add(self, engine: "Engine") -> None:
        with self._lock:
            self._engines.add(engine)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="wasmpy epoch ticker", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            time.sleep(self.interval)
            for engine in list(self._engines):
                lib.wasmtime_engine_increment_epoch(engine._ptr)


_ticker = _Ticker()


class Engine:
    """Compiles and runs WebAssembly; holds the settings every module and store of it shares.

    Options (all optional; wasmtime's defaults otherwise): ``consume_fuel``,
    ``epoch_interruption`` (on by default: it lets deadlines and Ctrl-C stop
    running wasm, for a few percent of speed), ``max_wasm_stack`` (bytes), ``cranelift_opt_level``
    ('none', 'speed', 'speed_and_size'), ``parallel_compilation``,
    ``nan_canonicalization``, ``debug_info``, and the wasm features ``simd``,
    ``relaxed_simd``, ``threads``, ``gc``, ``function_references``, ``tail_call``,
    ``exceptions``, ``memory64``, ``multi_memory``, ``bulk_memory``,
    ``reference_types``, ``multi_value``, ``wide_arithmetic``, ``custom_page_sizes``, ``shared_memory``...

    Turning a feature off also turns off the features that need it (e.g.
    ``simd=False`` turns off ``relaxed_simd``) unless they are asked for
    explicitly; a combination wasmtime rejects raises ValueError.

    ``instance_pool=N`` reserves, once, the memories, tables and instance
    state of N instances, which then come from that pool: instantiating gets
    several times faster (no memory mapping per instance), for servers and
    tests that instantiate again and again. At most N instances of the
    engine's stores may be alive at once (one more raises WasmError), a
    module must fit a slot (wasmtime's pool defaults: tables of at most 20,000
    elements, instance state of at most 1 MiB; CompileError otherwise), and
    the reserved address space is about 4 GiB per instance (virtual memory,
    not RAM). None (the default) allocates each instance on demand.

    Linear memories never move when they grow, so that ``memoryview(memory)``
    stays valid; growth past the engine's reservation fails instead.
    """

    _default: Optional["Engine"] = None
    _default_lock = threading.Lock()

    def __init__(self, **config: Any) -> None:
        resolved = _resolve(config)
        lib.wasm_config_delete(_checked_config(resolved))
        if (any(value is False for value in resolved.values()) or any(name in _SIZES for name in resolved)
                or resolved.get("instance_pool") is not None):
            _probe(resolved)
        engine = _build(resolved)
        if engine == ffi.NULL:
            raise ValueError(f"wasmtime rejected this engine configuration: {config}")
        self._ptr = ffi.gc(engine, lib.wasm_engine_delete)
        self.config: Dict[str, Any] = dict(sorted(resolved.items()))
        self._gc_bridge_module: Any = None  # see _values._bridge_call
        self._host_signatures: Dict[Any, Any] = {}  # see _func._host_signature
        # The native stack a call into wasm may need: the checks in csrc/stack.h refuse calls without it.
        self._stack_needed = resolved.get("max_wasm_stack", _DEFAULT_WASM_STACK) + _HOST_STACK_MARGIN
        if resolved["epoch_interruption"]:
            _ticker.add(self)

    @classmethod
    def default(cls) -> "Engine":
        """The shared Engine used wherever none is given."""
        if cls._default is None:
            with cls._default_lock:
                if cls._default is None:
                    cls._default = cls()
        return cls._default

    @property
    def interruptible(self) -> bool:
        """Whether running wasm can be interrupted: deadlines and Ctrl-C (``epoch_interruption``)."""
        return self.config["epoch_interruption"]

    def __repr__(self) -> str:
        options = ", ".join(f"{name}={value!r}" for name, value in self.config.items())
        return f"Engine({options})"
