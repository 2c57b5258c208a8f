"""Engine: compilation settings shared by modules and stores."""

from __future__ import annotations

import hashlib
import json
import operator
import os
import platform
import tempfile
import threading
import types
import weakref
from typing import Any, Dict, Mapping, Optional, Tuple

from ._errors import WasmError, take_error
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
    "memory_init_cow": lib.wasmtime_config_memory_init_cow_set,
    # True by default, as wasmtime's (see Engine): what async component functions need
    "concurrency_support": lib.wasmtime_config_concurrency_support_set,
    # True by default, unlike wasmtime's (see Engine): components with map<K, V> types compile
    "component_model_map": lib.wasmtime_config_wasm_component_model_map_set,
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
    "async_stack_size": lib.wasmtime_config_async_stack_size_set,
    "memory_reservation": lib.wasmtime_config_memory_reservation_set,
    "memory_guard_size": lib.wasmtime_config_memory_guard_size_set,
    "memory_reservation_for_growth": lib.wasmtime_config_memory_reservation_for_growth_set,
}
# The sizes each option of _SIZES takes, in bytes (inclusive). No thread has a stack of more than
# 1 GiB (wasmtime puts the stack's limit max_wasm_stack below where the first call into wasm
# starts), and no x86-64 Linux process has more than 128 TiB of address space to reserve.
_STACK_LIMIT = 1 << 30
_ADDRESS_SPACE = 1 << 47
_SIZE_RANGES = {
    "max_wasm_stack": (1, _STACK_LIMIT),
    "async_stack_size": (1, _STACK_LIMIT),
    "memory_reservation": (0, _ADDRESS_SPACE),
    "memory_guard_size": (0, _ADDRESS_SPACE),
    "memory_reservation_for_growth": (0, _ADDRESS_SPACE),
}
# Turning a feature off turns off what needs it, unless that was asked for explicitly. wasmtime
# aborts on each of these pairs but one: it takes gc without function_references, and validates
# typed function references all the same, so wasmpy refuses that pair itself (tests/test_safety_engine.py).
_NEEDS = {
    "relaxed_simd": ("simd",),
    "function_references": ("reference_types",),
    "gc": ("reference_types", "function_references"),
    "exceptions": ("reference_types",),
    "concurrency_support": ("reference_types",),  # wasmtime: "the component-model-async feature requires..."
}
_OPT_LEVELS = {
    "none": lib.WASMTIME_OPT_LEVEL_NONE,
    "speed": lib.WASMTIME_OPT_LEVEL_SPEED,
    "speed_and_size": lib.WASMTIME_OPT_LEVEL_SPEED_AND_SIZE,
}
_PROFILERS = {
    "none": lib.WASMTIME_PROFILING_STRATEGY_NONE,
    "perfmap": lib.WASMTIME_PROFILING_STRATEGY_PERFMAP,
    "jitdump": lib.WASMTIME_PROFILING_STRATEGY_JITDUMP,
}
OPTIONS = sorted([*_FLAGS, *_SIZES, "cranelift_opt_level", "instance_pool", "cache", "profiler", "cranelift_flags"])
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
# wasmtime refuses a max_wasm_stack above its async_stack_size, even without async; wasmpy never
# runs wasm on async stacks (fibers), so it raises async_stack_size to match (see _resolve).
_DEFAULT_ASYNC_STACK = 2 * 1024 * 1024
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
_SIZE_MAX = 2**64 - 1
# Cranelift settings (cranelift_flags) that wasmpy passes on, with the values each may take: the
# ones that change how code is checked, optimised or hardened, never what it means. wasmtime
# aborts on a name it does not know or a value it cannot parse, and others would break wasmtime's
# traps and backtraces (unwind_info, preserve_frame_pointers) or emit instructions this CPU may
# lack (a has_* feature turned on: wasmtime does not check). Turning a CPU feature off is safe:
# the code is then made for an older CPU.
_BOOLEAN_VALUES = (True, False)
_CRANELIFT_FLAGS: Dict[str, Tuple[Any, ...]] = {
    "enable_verifier": _BOOLEAN_VALUES,
    "enable_alias_analysis": _BOOLEAN_VALUES,
    "enable_heap_access_spectre_mitigation": _BOOLEAN_VALUES,
    "enable_table_access_spectre_mitigation": _BOOLEAN_VALUES,
    "regalloc_checker": _BOOLEAN_VALUES,
    "regalloc_algorithm": ("backtracking", "single_pass"),
    **{f"has_{feature}": (False,) for feature in (
        "sse3", "ssse3", "cmpxchg16b", "sse41", "sse42", "popcnt", "avx", "avx2", "fma", "bmi1", "bmi2",
        "lzcnt", "avx512bitalg", "avx512dq", "avx512vl", "avx512vbmi", "avx512f")},
}


class _CraneliftFlags(Mapping[str, Any]):
    """The read-only mapping ``Engine.config["cranelift_flags"]`` holds, in name order: its repr is
    a dict's, and it pickles (with the engine: Engine.__reduce__)."""

    __slots__ = ("_flags",)
    _flags: Dict[str, Any]

    def __init__(self, flags: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_flags", dict(sorted(flags.items())))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("cranelift_flags cannot change")

    def __getitem__(self, name: str) -> Any:
        return self._flags[name]

    def __iter__(self) -> Any:
        return iter(self._flags)

    def __len__(self) -> int:
        return len(self._flags)

    def __repr__(self) -> str:
        return repr(self._flags)

    def __reduce__(self) -> Tuple[Any, Tuple[Dict[str, Any]]]:
        return (_CraneliftFlags, (self._flags,))


def _normalized(config: Dict[str, Any]) -> Dict[str, Any]:
    """``config`` with the options whose values could change after the engine is made, or mean
    different things later, fixed: cache as an absolute path, cranelift_flags as a read-only
    mapping in name order (so that ``Engine.config``, and the import hook's key made of it, are
    the same for the same flags), and sizes as exact ints."""
    normalized = dict(config)
    for name in (*_SIZES, "instance_pool"):
        value = normalized.get(name)
        # As the exact int it holds: an int subclass's own comparisons and arithmetic could pass
        # the range checks with a size wasmtime aborts on.
        if isinstance(value, int) and not isinstance(value, bool):
            normalized[name] = operator.index(value)
    if "cache" in normalized:
        normalized["cache"] = _cache_directory(normalized["cache"])
    if "cranelift_flags" in normalized:
        flags = _checked_cranelift_flags(normalized["cranelift_flags"])
        normalized["cranelift_flags"] = _CraneliftFlags(flags)
    return normalized


def native_stack_shortage(needed: int) -> RecursionError:
    """The error for a call into wasm refused because less than ``needed`` bytes of this thread's
    native stack were left (csrc/stack.h): how much there is, and how to get enough.

    wasmpy runs wasm on the calling thread's own stack, which cannot grow once the thread runs
    (the main thread's, up to its RLIMIT_STACK), so the remedy is a thread made with a big enough
    stack, or a higher limit for the main thread.
    """
    size, left = ffi.new("size_t *"), ffi.new("size_t *")
    # Enough for the call, and 1 MiB more for the thread's own Python frames, in whole MiB.
    suggested = -(-(needed + (1 << 20)) >> 20) << 20
    message = (f"not enough native stack left to call into wasm safely: this engine's calls need "
               f"{_describe_bytes(needed)} left (its max_wasm_stack, and {_describe_bytes(_HOST_STACK_MARGIN)} "
               f"for the host's frames)")
    if lib.wasmpy_stack_room(size, left) == 0:
        message += f", and {_describe_bytes(left[0])} of this thread's {_describe_bytes(size[0])} stack is left"
        if size[0] > needed:
            message += " (deep recursion between Python and wasm used the rest)"
    if threading.current_thread() is threading.main_thread():
        message += (f". The main thread's stack grows up to its limit, RLIMIT_STACK: raise it to at least "
                    f"{_describe_bytes(suggested)} (`ulimit -s {suggested >> 10}` before starting Python, or "
                    f"resource.setrlimit(resource.RLIMIT_STACK, ...) before the call), or call from a "
                    f"threading.Thread started after threading.stack_size({suggested})")
    else:
        message += (f". A thread's stack is sized when it starts: start this one after "
                    f"threading.stack_size({suggested}) (at least), or call from a thread with a bigger stack")
    return RecursionError(message)


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
    resolved.setdefault("concurrency_support", True)  # wasmtime's default, stated: see Engine
    resolved.setdefault("component_model_map", True)  # wasmpy's default, not wasmtime's: see Engine
    stack = resolved.get("max_wasm_stack")
    if isinstance(stack, int) and stack > _DEFAULT_ASYNC_STACK and "async_stack_size" not in resolved:
        resolved["async_stack_size"] = stack
    return resolved


def _settings(config: Dict[str, Any]) -> Dict[str, Any]:
    """What ``Engine(**config)`` is made with in this process."""
    if _parallel_compilation_lost:
        config = {"parallel_compilation": False, **config}
    return _resolve(_normalized(config))


def _checked_config(config: Dict[str, Any]):
    """A ``wasm_config_t *`` with ``config`` applied: raises TypeError/ValueError for bad options."""
    c_config = lib.wasm_config_new()
    try:
        for name, value in config.items():
            _apply(c_config, name, value)
        # After the loop: the pool's memory slots follow memory_reservation, checked by then.
        _apply_instance_pool(c_config, config.get("instance_pool"), config.get("memory_reservation"))
    except BaseException:
        lib.wasm_config_delete(c_config)
        raise
    return c_config


def _refusal(config: Dict[str, Any]) -> Optional[str]:
    """Why wasmtime 50 would refuse the resolved options ``config`` (its own words), or None.

    ``wasm_engine_new_with_config`` aborts the process on a configuration that
    ``Config::validate`` or ``Engine::new`` rejects, so every rule they apply to
    the options wasmpy offers is checked here first (tests/test_safety_engine.py
    checks this list against the library). A feature without what it needs
    (``relaxed_simd`` without ``simd``, ``concurrency_support`` without
    ``reference_types``...) is refused by :func:`_resolve`.
    """
    stack = config.get("max_wasm_stack", _DEFAULT_WASM_STACK)
    async_stack = config.get("async_stack_size", _DEFAULT_ASYNC_STACK)
    if stack > async_stack:
        return (f"max_wasm_stack size cannot exceed the async_stack_size (max_wasm_stack={stack}, "
                f"async_stack_size={async_stack}; without async_stack_size, wasmpy sets it to max_wasm_stack)")
    return None


def _new_engine(config: Dict[str, Any]):
    """A new ``wasm_engine_t *`` for the resolved options, which must have been checked
    (:func:`_refusal`, :func:`_reserve_pool`): wasmtime aborts on a configuration it rejects."""
    return lib.wasm_engine_new_with_config(_checked_config(config))  # takes the config


def _memory_slot(memory_reservation: Optional[int], memory_guard_size: int) -> int:
    """The bytes of a linear memory slot of an instance pool: wasmpy sets the pool's maximum memory
    size to the memory reservation when one is given (_apply_instance_pool)."""
    if memory_reservation is None:
        return max(_MEMORY_RESERVATION, _POOL_MAX_MEMORY_SIZE) + memory_guard_size
    return memory_reservation + memory_guard_size


def pool_address_space(count: int, memory_reservation: Optional[int] = None,
                       memory_guard_size: int = _MEMORY_GUARD) -> Tuple[int, int]:
    """The address space, in bytes, an instance pool of ``count`` instances maps when its engine
    is made with these memory options (None: wasmtime's default reservation): (inaccessible,
    read-write). Errs on the large side by one memory slot, for what the process maps between
    the check and the engine."""
    slot = _memory_slot(memory_reservation, memory_guard_size)
    return (count + 1) * slot + memory_guard_size, count * _POOL_TABLE_SLOT


def _reserve_pool(config: Dict[str, Any]) -> None:
    """Raises WasmError unless the address space the instance pool of the resolved options
    ``config`` needs is free.

    wasmtime aborts the process when it cannot map the pool, so the same
    mappings are tried first, and let go again for wasmtime to make.
    """
    count = config["instance_pool"]
    reservation, guard = config.get("memory_reservation"), config.get("memory_guard_size", _MEMORY_GUARD)
    slot = _memory_slot(reservation, guard)
    inaccessible, accessible = pool_address_space(count, reservation, guard)
    if inaccessible > _SIZE_MAX or accessible > _SIZE_MAX:
        failure = "that is more than a 64-bit address space holds"
    else:
        errno = lib.wasmpy_try_reserve(inaccessible, accessible)
        if errno == 0:
            return
        failure = f"mmap failed: {os.strerror(errno)}"
    raise WasmError(f"not enough address space for an instance pool of {count} instances: it maps about "
                    f"{(inaccessible + accessible) / 2**40:.1f} TiB ({slot / 2**30:.2f} GiB per "
                    f"instance, virtual memory, not RAM), and {failure}; use a smaller instance_pool or "
                    f"memory_reservation, or let other engines with instance pools go first")


def _apply(config, name: str, value: Any) -> None:
    if name in _FLAGS:
        if not isinstance(value, bool):
            raise TypeError(f"Engine option {name} takes True or False, not {value!r}")
        _FLAGS[name](config, value)
    elif name in _SIZES:
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"Engine option {name} takes a size in bytes (an int), not {value!r}")
        low, high = _SIZE_RANGES[name]
        if not low <= value <= high:
            raise ValueError(f"Engine option {name} must be from {low} to {high} bytes "
                             f"({_describe_bytes(high)}), not {value}")
        _SIZES[name](config, value)
    elif name == "cranelift_opt_level":
        if value not in _OPT_LEVELS:
            raise ValueError(f"cranelift_opt_level must be one of {', '.join(map(repr, _OPT_LEVELS))}, "
                             f"not {value!r}")
        lib.wasmtime_config_cranelift_opt_level_set(config, _OPT_LEVELS[value])
    elif name == "instance_pool":
        pass  # by _checked_config, which knows the memory options by then
    elif name == "profiler":
        if value is None:
            value = "none"
        if not isinstance(value, str):
            raise TypeError(f"Engine option profiler takes a str or None, not {type(value).__name__}")
        if value not in _PROFILERS:
            raise ValueError(f"Engine option profiler must be one of {', '.join(map(repr, _PROFILERS))} or None, "
                             f"not {value!r}")
        lib.wasmtime_config_profiler_set(config, _PROFILERS[value])
    elif name == "cranelift_flags":
        for flag, setting in _checked_cranelift_flags(value).items():
            text = str(setting).lower() if isinstance(setting, bool) else setting
            lib.wasmtime_config_cranelift_flag_set(config, flag.encode(), text.encode())
    elif name == "cache":
        _apply_cache(config, value)
    else:
        raise TypeError(f"unknown Engine option {name!r}; the options are: {', '.join(OPTIONS)}")


def _describe_bytes(count: int) -> str:
    """``count`` bytes for people, in the largest unit it holds: exact if that divides it, else to 0.1."""
    for unit, shift in (("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if count >= 1 << shift:
            exact = count % (1 << shift) == 0
            return f"{count >> shift} {unit}" if exact else f"{count / (1 << shift):.1f} {unit}"
    return f"{count} bytes"


def _checked_cranelift_flags(flags: Any) -> Dict[str, Any]:
    """``flags`` (cranelift_flags: a mapping of Cranelift setting names to values), checked
    against :data:`_CRANELIFT_FLAGS`; TypeError/ValueError otherwise."""
    if not isinstance(flags, Mapping):
        raise TypeError(f"Engine option cranelift_flags takes a dict of Cranelift setting names to values, "
                        f"not {type(flags).__name__}")
    checked = {}
    for flag, setting in flags.items():
        if not isinstance(flag, str):
            raise TypeError(f"cranelift_flags: setting names are strings, not {flag!r}")
        # The text it holds, as an exact str: a subclass's own __hash__ and __eq__ could match an
        # allowed name while its text, which wasmtime gets, is one wasmtime aborts on.
        flag = str.__str__(flag)
        allowed = _CRANELIFT_FLAGS.get(flag)
        if allowed is None:
            raise ValueError(f"cranelift_flags: unknown or unsupported Cranelift setting {flag!r}; wasmpy passes "
                             f"on these: {', '.join(sorted(_CRANELIFT_FLAGS))}")
        # bool before ==: True == 1, and "true" is not the same as True here
        if not any(type(setting) is type(value) and setting == value for value in allowed):
            raise ValueError(f"cranelift_flags: {flag} takes {' or '.join(map(repr, allowed))}, not {setting!r}"
                             + (" (wasmpy compiles for the CPU features this machine has, and only lets one be "
                                "turned off)" if flag.startswith("has_") else ""))
        checked[flag] = setting
    return checked


def _cache_directory(directory: Any) -> Optional[str]:
    """The absolute directory that cache=``directory`` names (None: no cache); TypeError/ValueError."""
    if directory is None:
        return None
    if not isinstance(directory, (str, os.PathLike)) or not isinstance(os.fspath(directory), str):
        raise TypeError(f"Engine option cache takes a directory (a str or os.PathLike[str] path) or None, "
                        f"not {type(directory).__name__}")
    path = os.path.abspath(os.fspath(directory))  # what it means now, whatever the cwd later
    if "\0" in path:
        raise ValueError("Engine option cache: the directory's path contains a NUL character")
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"Engine option cache: wasmtime takes UTF-8 paths only, not {path!r}") from None
    return path


def _apply_cache(config, directory: Any) -> None:
    """Turns wasmtime's own compilation cache on, in ``directory``: through the TOML settings file
    ``wasmtime_config_cache_config_load`` reads, written for it to a temporary file."""
    path = _cache_directory(directory)
    if path is None:
        return
    # A TOML basic string: JSON's escapes of quotes, backslashes and control characters are TOML's too.
    quoted = json.dumps(path, ensure_ascii=False).replace("\x7f", "\\u007f")  # TOML escapes DEL too
    settings = f"[cache]\ndirectory = {quoted}\n"
    descriptor, settings_path = tempfile.mkstemp(prefix="wasmpy-cache-", suffix=".toml")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(settings)
        error = lib.wasmtime_config_cache_config_load(config, os.fsencode(settings_path))
    finally:
        os.unlink(settings_path)
    if error != ffi.NULL:
        raise ValueError(f"Engine option cache={path!r}: {take_error(error)}")


def _apply_instance_pool(config, count: Any, memory_reservation: Optional[int]) -> None:
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
        if memory_reservation is not None:
            # wasmtime refuses a pool whose memories may grow past the reservation (4 GiB by default);
            # with memories that do not move they cannot anyway, so slots shrink with it.
            lib.wasmtime_pooling_allocation_config_max_memory_size_set(pooling, memory_reservation)
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
    running wasm, for up to about 30% of speed in tight loops), ``cranelift_opt_level`` ('none',
    'speed', 'speed_and_size'), ``parallel_compilation``,
    ``nan_canonicalization``, ``debug_info``, ``native_unwind_info``, the wasm
    features ``simd``, ``relaxed_simd``, ``threads``, ``gc``,
    ``function_references``, ``tail_call``, ``exceptions``, ``memory64``,
    ``multi_memory``, ``bulk_memory``, ``reference_types``, ``multi_value``,
    ``wide_arithmetic``, ``custom_page_sizes``, ``shared_memory``..., and:

    - ``max_wasm_stack``: the most native stack, in bytes, that wasm may use
      (512 KiB by default, at most 1 GiB); deeper recursion traps with
      STACK_OVERFLOW. wasm runs on the calling thread's own stack, so a call
      needs that much left on it, and 256 KiB more for the host's frames, or it
      raises RecursionError saying how big a stack to get: a
      ``threading.Thread`` started after ``threading.stack_size(n)``, or a
      main thread whose stack limit (RLIMIT_STACK, ``ulimit -s``: often 8 MiB)
      is raised. ``Engine(max_wasm_stack=16 << 20)`` runs wasm that recurses
      8 MiB deep, in a thread started after ``threading.stack_size(18 << 20)``.
    - ``async_stack_size``: wasmtime's stack size for async calls, which wasmpy
      never makes; wasmtime wants it at least ``max_wasm_stack``, and wasmpy
      sets it so (2 MiB otherwise) unless it is given.
    - ``memory_reservation``, ``memory_guard_size``,
      ``memory_reservation_for_growth`` (bytes, 0 to 128 TiB): the address
      space each linear memory reserves (4 GiB by default: 32-bit memories
      then need no bounds checks), the inaccessible guard regions before and
      after it (32 MiB each), and the room reserved beyond the initial size
      of a memory that starts bigger than the reservation (2 GiB). Unless
      ``memory_may_move`` is True, a memory never grows past what it
      reserved (it never moves). With an
      ``instance_pool``, ``memory_reservation`` is also the most each memory
      of the pool holds, and both sizes set the pool's address space.
    - ``memory_init_cow``: whether memories start as copy-on-write mappings of
      the module's data segments (on by default: fast instantiation).
    - ``cache``: a directory for wasmtime's own cache of compiled code (None,
      the default: none), shared by every process and engine of the same
      settings that uses it: compiling a module found there loads it instead.
      Like the import hook's cache, it holds native code that runs unchecked:
      use a directory only you can write to.
    - ``profiler``: 'perfmap' (writes /tmp/perf-PID.map, for ``perf``),
      'jitdump' (writes jit-PID.dump in the current directory, for ``perf
      inject``), or None/'none' (the default).
    - ``cranelift_flags``: a dict of Cranelift settings, among those wasmpy
      knows to be safe (see ``_CRANELIFT_FLAGS``): ``enable_verifier``,
      ``enable_alias_analysis``, the Spectre mitigations
      ``enable_heap_access_spectre_mitigation`` and
      ``enable_table_access_spectre_mitigation``, ``regalloc_checker`` (True or
      False), ``regalloc_algorithm`` ('backtracking', 'single_pass'), and CPU
      features turned off (``{"has_avx2": False}``...). Any other name or value
      raises ValueError.

    Turning a feature off also turns off the features that need it (e.g.
    ``simd=False`` turns off ``relaxed_simd``) unless they are asked for
    explicitly; a combination wasmtime rejects raises ValueError.

    ``concurrency_support`` (True by default, as in wasmtime): the component
    model's async support, which components with ``future`` or ``stream``
    types need to compile (wasmpy does not call their async functions yet).
    ``concurrency_support=False`` halves what wasmtime itself spends on each
    call of a component function (0.37 against 0.72 µs) and still runs core
    modules, but its compiled code is not interchangeable with that of an
    engine with it on (the ``wasmtime`` package's default): a serialized
    module loads only where the setting is the same. It needs
    ``reference_types``; ``reference_types=False`` turns it off.

    ``component_model_map`` (True by default; wasmtime's default is False):
    components may use WIT ``map<K, V>`` types (Python dicts). wasmtime
    records it in compiled code, so code compiled with it on
    loads only in engines with it on (the ``wasmtime`` package's engines need
    ``wasmtime_config_wasm_component_model_map_set``; its ``Config`` has no
    property for it), and code compiled with it off loads in either.

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
    stays valid; growth past the engine's ``memory_reservation`` fails instead.
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
            _reserve_pool(resolved)
        engine = _new_engine(resolved)
        self._ptr = _ticker.add(engine) if resolved["epoch_interruption"] else ffi.gc(engine, lib.wasm_engine_delete)
        self._config: Mapping[str, Any] = types.MappingProxyType(dict(sorted(resolved.items())))
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
    def config(self) -> Mapping[str, Any]:
        """The engine's settings, read-only: what its stores and memories do is worked out from them."""
        return self._config

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


# Settings that change how an engine compiles or runs, not the code it makes.
_NOT_IN_CODE = frozenset({"cache", "profiler", "parallel_compilation"})


def compiled_code_key(engine: Engine) -> str:
    """Names what compiled code is valid for: wasmtime's version, the engine's settings that shape
    code, the machine and its CPU features (the import hook's cache tag, and pickled modules' key)."""
    settings = repr(sorted((name, value) for name, value in engine.config.items()
                           if name not in _NOT_IN_CODE and value is not None))
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
