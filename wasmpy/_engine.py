"""Engine: compilation settings shared by modules and stores."""

from __future__ import annotations

import hashlib
import os
import platform
import threading
import types
import weakref
from typing import Any, Dict, Mapping, Optional, Tuple

from ._errors import WasmError
from ._ffi import ffi, lib
from . import _native
from ._ownership import Immutable, init_once

__all__ = ["Engine"]

_FLAGS = {
    "consume_fuel": lib.wasmtime_config_consume_fuel_set,
    "epoch_interruption": lib.wasmtime_config_epoch_interruption_set,
    "debug_info": lib.wasmtime_config_debug_info_set,
    "parallel_compilation": lib.wasmtime_config_parallel_compilation_set,
    "nan_canonicalization": lib.wasmtime_config_cranelift_nan_canonicalization_set,
    "native_unwind_info": lib.wasmtime_config_native_unwind_info_set,
    "memory_may_move": lib.wasmtime_config_memory_may_move_set,  # False by default: see _memory.py
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
# Turning a feature off turns off what needs it, unless that was asked for explicitly. wasmtime
# aborts on each of these pairs but one: it takes gc without function_references, and validates
# typed function references all the same, so wasmpy refuses that pair itself (tests/test_safety_engine.py).
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
# Pool sizes that instance_pool=N sets to N: every kind of slot an instance may take. The pool of
# async stacks is set to none instead: wasmpy runs wasm on the calling thread's stack, never on
# wasmtime's fibers, and each such stack would cost 2 MiB of address space and two memory
# mappings (of the process's vm.max_map_count) for nothing.
_POOL_TOTALS = (
    lib.wasmtime_pooling_allocation_config_total_core_instances_set,
    lib.wasmtime_pooling_allocation_config_total_memories_set,
    lib.wasmtime_pooling_allocation_config_total_tables_set,
    lib.wasmtime_pooling_allocation_config_total_gc_heaps_set,
    lib.wasmtime_pooling_allocation_config_max_memories_per_module_set,
    lib.wasmtime_pooling_allocation_config_max_tables_per_module_set,
)
_DEFAULT_WASM_STACK = 512 * 1024  # wasmtime's default max_wasm_stack
# wasmtime refuses a max_wasm_stack above its async_stack_size (2 MiB by default), even without async.
_MAX_WASM_STACK = 2 * 1024 * 1024
_HOST_STACK_MARGIN = 256 * 1024  # for wasmtime's and Python's frames around the wasm ones
# The native stack compiling, validating or loading a module may need on the calling thread (the
# checks in csrc/stack.h refuse it without): a few times what the worst modules measured needed.
COMPILE_STACK_NEEDED = 256 * 1024

# What wasmtime 50's pooling allocator maps up front on x86-64 Linux, with wasmpy's settings
# (crates/wasmtime/src/runtime/vm/instance/allocator/pooling/): one PROT_NONE slab of linear
# memory slots (each the memory reservation, or the pool's maximum memory size if larger, plus
# the guard region after it; one more guard region before the first), which GC heaps share, and
# one read-write slab of table slots (20,000 elements of 8 bytes each, rounded to whole pages).
_MEMORY_RESERVATION = 4 << 30  # Config::memory_reservation's default
_MEMORY_GUARD = 32 << 20  # Config::memory_guard_size's default
_POOL_MAX_MEMORY_SIZE = 4 << 30  # PoolingAllocationConfig::max_memory_size's default
_POOL_TABLE_SLOT = -(-20_000 * 8 // 4096) * 4096  # PoolingAllocationConfig::table_elements's default
_MEMORY_SLOT = max(_MEMORY_RESERVATION, _POOL_MAX_MEMORY_SIZE) + _MEMORY_GUARD
_SIZE_MAX = 2**64 - 1


def _resolve(config: Dict[str, Any]) -> Dict[str, Any]:
    """The options to apply: ``config``, wasmpy's defaults, and features turned off because what
    they need is off."""
    resolved = {"epoch_interruption": True, "memory_may_move": False, **config}
    for feature, needs in _NEEDS.items():
        missing = [need for need in needs if resolved.get(need) is False]
        if not missing:
            continue
        if resolved.get(feature) is True:
            raise ValueError(f"Engine option {feature}=True needs {' and '.join(f'{n}=True' for n in missing)}")
        resolved[feature] = False
    return resolved


def _settings(config: Dict[str, Any]) -> Dict[str, Any]:
    """What ``Engine(**config)`` is made with in this process."""
    if _parallel_compilation_lost:
        config = {"parallel_compilation": False, **config}
    return _resolve(config)


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


def _refusal(config: Dict[str, Any]) -> Optional[str]:
    """Why wasmtime 50 would refuse the resolved options ``config`` (its own words), or None.

    ``wasm_engine_new_with_config`` aborts the process on a configuration that
    ``Config::validate`` or ``Engine::new`` rejects, so every rule they apply to
    the options wasmpy offers is checked here first (tests/test_safety_engine.py
    checks this list against the library). ``relaxed_simd`` without ``simd`` is
    refused by :func:`_resolve`.
    """
    if config.get("reference_types") is False:
        # The C API's build has the component model's async support on, which needs reference types.
        return "the component-model-async feature requires the wasm reference-types proposal"
    if config.get("max_wasm_stack", _DEFAULT_WASM_STACK) > _MAX_WASM_STACK:
        return (f"max_wasm_stack size cannot exceed the async_stack_size "
                f"(max_wasm_stack can be at most {_MAX_WASM_STACK} bytes)")
    return None


def _new_engine(config: Dict[str, Any]):
    """A new ``wasm_engine_t *`` for the resolved options, which must have been checked
    (:func:`_refusal`, :func:`_reserve_pool`): wasmtime aborts on a configuration it rejects."""
    return lib.wasm_engine_new_with_config(_checked_config(config))  # takes the config


def pool_address_space(count: int) -> Tuple[int, int]:
    """The address space, in bytes, an instance pool of ``count`` instances maps when its engine
    is made: (inaccessible, read-write). Errs on the large side by one memory slot, for what
    the process maps between the check and the engine."""
    return (count + 1) * _MEMORY_SLOT + _MEMORY_GUARD, count * _POOL_TABLE_SLOT


def _reserve_pool(count: int) -> None:
    """Raises WasmError unless the address space an instance pool of ``count`` needs is free.

    wasmtime aborts the process when it cannot map the pool, so the same
    mappings are tried first, and let go again for wasmtime to make.
    """
    inaccessible, accessible = pool_address_space(count)
    if inaccessible > _SIZE_MAX or accessible > _SIZE_MAX:
        failure = "that is more than a 64-bit address space holds"
    else:
        errno = lib.wasmpy_try_reserve(inaccessible, accessible)
        if errno == 0:
            return
        failure = f"mmap failed: {os.strerror(errno)}"
    raise WasmError(f"not enough address space for an instance pool of {count} instances: it maps about "
                    f"{(inaccessible + accessible) / 2**40:.1f} TiB ({_MEMORY_SLOT / 2**30:.2f} GiB per "
                    f"instance, virtual memory, not RAM), and {failure}; use a smaller instance_pool, or "
                    f"let other engines with instance pools go first")


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
        lib.wasmtime_pooling_allocation_config_total_stacks_set(pooling, 0)
        lib.wasmtime_pooling_allocation_strategy_set(config, pooling)  # copies the pooling settings
    finally:
        lib.wasmtime_pooling_allocation_config_delete(pooling)


class _Ticker:
    """The process's epoch ticker (csrc/ticker.c): one C thread that advances the epoch of
    every interruptible engine once per ``interval``.

    Each tick makes running wasm check its store's deadline, run Python's signal handlers in
    the main thread (so Ctrl-C raises KeyboardInterrupt), and release the GIL if it still holds
    it. The thread needs no GIL, and sleeps while no store is in use.
    """

    @property
    def ticks(self) -> int:
        """How many times the epochs have advanced."""
        return _native.ticker_ticks()

    @property
    def interval(self) -> float:
        """Seconds between ticks: the precision of deadlines and of Ctrl-C."""
        return _native.ticker_interval()

    @interval.setter
    def interval(self, seconds: float) -> None:
        _native.ticker_set_interval(seconds)

    def add(self, engine_ptr: Any) -> Any:
        """Ticks the engine from now on; returns it, owned, with the finalizer that stops that first."""
        try:
            _native.ticker_add_engine(int(ffi.cast("uintptr_t", engine_ptr)))
        except BaseException:
            lib.wasm_engine_delete(engine_ptr)
            raise
        return ffi.gc(engine_ptr, _TICKED_ENGINE_DELETE)


_TICKED_ENGINE_DELETE = ffi.cast("void (*)(wasm_engine_t *)", _native.ticked_engine_delete_address())
_ticker = _Ticker()

# wasmtime compiles and validates in parallel on a pool of threads (rayon's) that it starts on
# first use. fork() copies only the thread that forks, so in a child of a process that started
# the pool, a parallel compile waits forever for threads that are not there; such a child
# compiles on the calling thread instead (Engine._compiler_ptr).
_parallel_compilation_started = False  # in this process, or in the one it was forked from
_parallel_compilation_lost = False  # in the one it was forked from: its threads are gone here


def _after_fork_in_child() -> None:
    global _parallel_compilation_lost
    _parallel_compilation_lost = _parallel_compilation_started
    Engine._default_lock = threading.Lock()
    Engine._serial_compiler_lock = threading.Lock()
    _native.ticker_after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class Engine(Immutable):
    """Compiles and runs WebAssembly; holds the settings every module and store of it shares.

    Options (all optional; wasmtime's defaults otherwise): ``consume_fuel``,
    ``epoch_interruption`` (on by default: it lets deadlines and Ctrl-C stop
    running wasm, for a few percent of speed), ``max_wasm_stack`` (bytes, at most 2 MiB),
    ``cranelift_opt_level`` ('none', 'speed', 'speed_and_size'), ``parallel_compilation``,
    ``nan_canonicalization``, ``debug_info``, and the wasm features ``simd``,
    ``relaxed_simd``, ``threads``, ``gc``, ``function_references``, ``tail_call``,
    ``exceptions``, ``memory64``, ``multi_memory``, ``bulk_memory``,
    ``reference_types``, ``multi_value``, ``wide_arithmetic``, ``custom_page_sizes``, ``shared_memory``...

    Turning a feature off also turns off the features that need it (e.g.
    ``simd=False`` turns off ``relaxed_simd``) unless they are asked for
    explicitly; a combination wasmtime rejects raises ValueError (so does
    ``reference_types=False``: wasmtime 50 needs reference types).

    ``instance_pool=N`` reserves, once, the memories, tables and instance
    state of N instances, which then come from that pool: instantiating gets
    several times faster (no memory mapping per instance), for servers and
    tests that instantiate again and again. At most N instances of the
    engine's stores may be alive at once (one more raises WasmError), a
    module must fit a slot (wasmtime's pool defaults: tables of at most 20,000
    elements, instance state of at most 1 MiB; CompileError otherwise), and
    the reserved address space is about 4 GiB per instance (virtual memory,
    not RAM): a pool the process's address space cannot hold any more raises
    WasmError. None (the default) allocates each instance on demand.

    Linear memories never move when they grow, so that ``memoryview(memory)``
    stays valid; growth past the engine's reservation fails instead.
    ``memory_may_move=True`` (wasmtime's default; needed for the code of engines
    made with it) lets them move, and then a buffer view of one that may move
    holds its store's memories at their size until it is released (see Memory).

    In a process forked from one that compiled with ``parallel_compilation``
    (on by default), wasmtime's compiler threads are gone: modules compile on
    the calling thread there, and new engines default to
    ``parallel_compilation=False``.

    Engines never change once made: copies are the engine itself.
    """

    _default: Optional["Engine"] = None
    _default_lock = threading.Lock()
    _serial_compiler_lock = threading.Lock()

    def __init__(self, **config: Any) -> None:
        init_once(self, "_ptr")
        resolved = _settings(config)
        lib.wasm_config_delete(_checked_config(resolved))  # TypeError/ValueError for bad values
        refusal = _refusal(resolved)
        if refusal is not None:
            raise ValueError(f"wasmtime rejects this Engine configuration: {refusal}")
        if resolved.get("instance_pool") is not None:
            _reserve_pool(resolved["instance_pool"])
        engine = _new_engine(resolved)
        self._ptr = _ticker.add(engine) if resolved["epoch_interruption"] else ffi.gc(engine, lib.wasm_engine_delete)
        self.config: Mapping[str, Any] = types.MappingProxyType(dict(sorted(resolved.items())))
        self._gc_bridge_module: Any = None  # see _values._bridge_call
        self._host_signatures: Dict[Any, Any] = {}  # see _func._host_signature
        # The native stack a call into wasm may need: the checks in csrc/stack.h refuse calls without it.
        self._stack_needed = resolved.get("max_wasm_stack", _DEFAULT_WASM_STACK) + _HOST_STACK_MARGIN
        self._serial_compiler: Any = None  # see _compiler_ptr

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

    def _compiler_ptr(self):
        """The ``wasm_engine_t *`` that compiles and validates this engine's modules now.

        It is this engine, except in a process forked after parallel
        compilation started: there an engine of the same settings without
        parallel compilation (and without a pool) compiles, and the code moves
        over through serialize/deserialize, which wasmtime allows because
        parallel compilation does not change the code.
        """
        global _parallel_compilation_started
        if self.config.get("parallel_compilation") is False:
            return self._ptr
        if not _parallel_compilation_lost:
            _parallel_compilation_started = True  # before compiling: a fork may come while it runs
            return self._ptr
        with self._serial_compiler_lock:
            if self._serial_compiler is None:
                serial = {name: value for name, value in self.config.items() if name != "instance_pool"}
                serial["parallel_compilation"] = False
                self._serial_compiler = ffi.gc(_new_engine(serial), lib.wasm_engine_delete)
        return self._serial_compiler

    def __reduce__(self) -> Tuple[Any, Tuple[Dict[str, Any]]]:
        """Engines pickle to their settings; unpickling gives this process's engine of those
        settings (see :meth:`_shared`)."""
        if self is not Engine._default:
            with Engine._default_lock:
                _shared_engines.setdefault(repr(sorted(self.config.items())), self)
        return (Engine._shared, (dict(self.config),))

    @classmethod
    def _shared(cls, settings: Dict[str, Any]) -> "Engine":
        """This process's engine of ``settings``: the default engine for the default settings,
        otherwise the engine of those settings pickled or unpickled here before, if it is still
        alive, else a new one (so that modules unpickled with equal settings share an engine,
        and can be linked and share stores)."""
        if not isinstance(settings, dict):
            raise TypeError(f"engine settings must be a dict, not {type(settings).__name__}")
        default = cls.default()
        wanted = _settings(settings)
        if wanted == dict(default.config):
            return default
        key = repr(sorted(wanted.items()))
        with cls._default_lock:
            engine = _shared_engines.get(key)
            if engine is None:
                engine = _shared_engines[key] = cls(**settings)
        return engine

    def __repr__(self) -> str:
        options = ", ".join(f"{name}={value!r}" for name, value in self.config.items())
        return f"Engine({options})"


_shared_engines: "weakref.WeakValueDictionary[str, Engine]" = weakref.WeakValueDictionary()


def compiled_code_key(engine: Engine) -> str:
    """Names what compiled code is valid for: wasmtime's version, the engine's settings, the
    machine and its CPU features (the import hook's cache tag, and pickled modules' key)."""
    settings = repr(sorted(engine.config.items()))
    key = _code_keys.get(settings)
    if key is None:
        from . import WASMTIME_VERSION

        text = repr((WASMTIME_VERSION, settings, platform.machine(), _cpu_flags()))
        key = _code_keys[settings] = hashlib.sha256(text.encode()).hexdigest()
    return key


_code_keys: Dict[str, str] = {}


def _cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()
