"""Tables for the terminal, and the issue's targets checked against the figures (informational only)."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

from .runtimes import WasmpyNoEpoch, WasmpyPooled, WasmtimeEpoch
from .suite import MEMCPY, Group, Row
from .components import NO_CONCURRENCY

NOEPOCH, POOLED, WASMTIME_EPOCH = WasmpyNoEpoch.name, WasmpyPooled.name, WasmtimeEpoch.name

PEERS = ("wasmtime", "pywasm3")
# Ratio columns, where a group has both: wasmpy against each peer, then the same engine settings.
RATIOS = [*(("wasmpy", peer) for peer in PEERS), ("wasmpy", WASMTIME_EPOCH), (NOEPOCH, "wasmtime"),
          (POOLED, "wasmtime"), (NO_CONCURRENCY, "wasmtime")]
UNIT_SCALE = {"ns": 1.0, "µs": 1e3, "ms": 1e6}


def shown(row: Row, ns: Optional[float]) -> str:
    if ns is None:
        return "-"
    if row.unit == "GB/s":
        value = row.bytes_per_op / ns
    else:
        value = ns / UNIT_SCALE[row.unit]
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def ratio_text(value: Optional[float]) -> str:
    if value is None:
        return "-"
    if value >= 10:
        return f"{value:.0f}"
    if value >= 0.1:
        return f"{value:.2f}"
    return f"{value:.2g}"


def time_ratio(row: Row, peer: str, mine: str = "wasmpy") -> Optional[float]:
    """``mine``'s time over the peer's (below 1: wasmpy is faster)."""
    mine, theirs = row.medians.get(mine), row.medians.get(peer)
    if mine is None or theirs is None or theirs <= 0 or mine <= 0:
        return None
    return mine / theirs


def table(headers: Sequence[str], lines: List[Sequence[str]], left: int = 1) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *lines)]
    out = []
    for index, cells in enumerate([headers, *lines]):
        out.append("  ".join(str(cell).ljust(width) if column < left else str(cell).rjust(width)
                             for column, (cell, width) in enumerate(zip(cells, widths))).rstrip())
        if index == 0:
            out.append("  ".join("-" * width for width in widths))
    return "\n".join(out)


def group_table(group: Group, runtimes: Sequence[str]) -> str:
    if group.name == "threads":
        return threads_table(group, runtimes)
    with_memcpy = any(MEMCPY in row.medians for row in group.rows)
    extra = []  # columns of runtimes in other settings (wasmpy-noepoch...)
    for row in group.rows:
        extra += [name for name in row.medians if name not in runtimes and name != MEMCPY and name not in extra]
    runtimes = [*runtimes, *extra]
    ratios = [(mine, peer) for mine, peer in RATIOS if mine in runtimes and peer in runtimes]
    if with_memcpy:
        ratios.append(("wasmpy", MEMCPY))
    headers = ["benchmark", "unit", *runtimes, *([MEMCPY] if with_memcpy else []),
               *[f"{mine}/{peer}" for mine, peer in ratios]]
    lines = []
    for row in group.rows:
        line = [row.label, row.unit, *[shown(row, row.medians.get(name)) for name in runtimes]]
        if with_memcpy:
            line.append(shown(row, row.medians.get(MEMCPY)))
        line += [ratio_text(time_ratio(row, peer, mine)) for mine, peer in ratios]
        lines.append(line)
    text = [f"== {group.title}  [{group.seconds:.0f} s]", table(headers, lines)]
    for row in group.rows:
        for name, error in sorted(row.errors.items()):
            text.append(f"  ! {row.key} / {name}: {error}")
    text += [f"  note: {note}" for note in group.notes]
    text.append("  ratios are one runtime's time / the other's: below 1, the first is faster")
    return "\n".join(text)


def threads_table(group: Group, runtimes: Sequence[str]) -> str:
    figures = group.extra.get("runtimes", {})
    names = [name for name in runtimes if name in figures] + [name for name in figures if name not in runtimes]
    lines = []
    for name in names:
        figure = figures[name]
        versus = figure.get("speedup_vs_control")
        lines.append([name, str(figure["calls_per_thread"]), f"{figure['sequential_ms']:.1f}",
                      f"{figure['parallel_ms']:.1f}", f"{figure['speedup']:.2f}x",
                      "-" if versus is None else f"{versus:.2f}"])
    text = [f"== {group.title}  [{group.seconds:.0f} s]",
            table(["runtime", "calls per thread", "one after the other (ms)", "two threads at once (ms)",
                   "speed-up", "/ control"], lines)]
    for name, error in sorted((group.extra.get("errors") or {}).items()):
        text.append(f"  ! {name}: {error}")
    text += [f"  note: {note}" for note in group.notes]
    return "\n".join(text)


# --- the targets of the "Performance" issue: reported, never asserted


def _median(groups: Dict[str, Group], group: str, key: str, runtime: str) -> Optional[float]:
    found = groups.get(group)
    row = found.row(key) if found else None
    return row.medians.get(runtime) if row else None


def _ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return a / b if a is not None and b is not None and b > 0 else None


def targets(groups: Dict[str, Group], import_cache: Optional[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The targets of the groups that ran: name, group, what, measured value (None if not measured),
    the bound, and whether it is met."""
    out: List[Dict[str, Any]] = []

    def add(group: str, name: str, what: str, value: Optional[float], bound: Optional[float], at_most: bool,
            unit: str = "x") -> None:
        """A target; with no ``bound``, a figure reported beside the targets, for information."""
        met = None if value is None or bound is None else (value <= bound if at_most else value >= bound)
        out.append({"name": name, "group": group, "what": what, "value": value, "bound": bound,
                    "at_most": at_most, "unit": unit, "met": met})

    def m(group: str, key: str, runtime: str = "wasmpy") -> Optional[float]:
        return _median(groups, group, key, runtime)

    if "calls" in groups:
        add("calls", "add_vs_pywasm3", "add(1, 2): wasmpy / pywasm3",
            _ratio(m("calls", "add_i32"), m("calls", "add_i32", "pywasm3")), 0.7, True)
        add("calls", "noop_vs_pywasm3", "noop(): wasmpy / pywasm3",
            _ratio(m("calls", "noop"), m("calls", "noop", "pywasm3")), 1.0, True)
        add("calls", "add_vs_wasmtime", "add(1, 2): wasmtime package / wasmpy (times faster)",
            _ratio(m("calls", "add_i32", "wasmtime"), m("calls", "add_i32")), 50, False)
        add("calls", "host_call_vs_pywasm3", "host call round trip: wasmpy / pywasm3",
            _ratio(m("calls", "host_call"), m("calls", "host_call", "pywasm3")), 0.8, True)
        for key, what in (("add_i64", "add64 (i64)"), ("add_f64", "addf (f64)"), ("sum5_i32", "sum5 (5 args)"),
                          ("two_results", "two() (2 results)")):
            add("calls", f"{key}_vs_add", f"wasmpy {what} / wasmpy add",
                _ratio(m("calls", key), m("calls", "add_i32")), 1.5, True)
    if "compute" in groups:
        # "Same engine": the default engines differ in one setting, epoch checks (on in wasmpy's, for
        # deadlines and Ctrl-C), so the binding is compared on either setting, and the defaults are shown.
        for key, what in (("fib30", "fib(30)"), ("nbody", "nbody"), ("fnv1a_1mib", "FNV-1a 1 MiB"),
                          ("lz4_fast", "LZ4 fast"), ("lz4_hc", "LZ4 HC")):
            add("compute", f"{key}_epoch_cost", f"{what}: wasmpy / wasmpy without epoch checks (their cost, info)",
                _ratio(m("compute", key), m("compute", key, NOEPOCH)), None, True)
            add("compute", f"{key}_vs_wasmtime_epoch", f"{what}: wasmpy / wasmtime package, both checking epochs",
                _ratio(m("compute", key), m("compute", key, WASMTIME_EPOCH)), 1.05, True)
            add("compute", f"{key}_noepoch_vs_wasmtime", f"{what}: wasmpy / wasmtime package, neither checking",
                _ratio(m("compute", key, NOEPOCH), m("compute", key, "wasmtime")), 1.05, True)
            add("compute", f"{key}_vs_wasmtime", f"{what}: wasmpy / wasmtime package, default engines (info)",
                _ratio(m("compute", key), m("compute", key, "wasmtime")), None, True)
    if "memory" in groups:
        for key, what in (("read_1mib", "read 1 MiB"), ("write_1mib", "write 1 MiB")):
            add("memory", f"{key}_vs_memcpy", f"{what} through memoryview: wasmpy speed / memcpy speed",
                _ratio(m("memory", key, MEMCPY), m("memory", key)), 0.9, False)
        add("memory", "read16_ns", "memory.read(offset, 16)", m("memory", "read16"), 300, True, "ns")
    if "instantiate" in groups:
        instance = m("instantiate", "new_store")
        add("instantiate", "instantiate_us", "instantiate a small compiled module again (new store)",
            None if instance is None else instance / 1e3, 20, True, "µs")
        pooled = m("instantiate", "new_store", POOLED)
        add("instantiate", "instantiate_pooled_us",
            f"the same, on Engine(instance_pool={WasmpyPooled.pool_size})",
            None if pooled is None else pooled / 1e3, 20, True, "µs")
        again = m("instantiate", "same_store")
        add("instantiate", "instantiate_same_store_us", "instantiate a small compiled module again (same store)",
            None if again is None else again / 1e3, 20, True, "µs")
    if "components" in groups:
        for key, what in (("nothing", "nothing()"), ("greet", 'greet("world")')):
            add("components", f"component_{key}_vs_wasmtime",
                f"component {what}: wasmtime package / wasmpy (times faster)",
                _ratio(m("components", key, "wasmtime"), m("components", key)), 8, False)
            add("components", f"component_{key}_noasync_vs_wasmtime",
                "the same, wasmpy on Engine(concurrency_support=False) (times faster, info)",
                _ratio(m("components", key, "wasmtime"), m("components", key, NO_CONCURRENCY)), None, False)
        for key, what in (("add", "add(1, 2)"), ("record", "a record through an import"),
                          ("list_u32", "list<u32> of 1,000 through an import"), ("import", "a Python import")):
            add("components", f"component_{key}_vs_wasmtime",
                f"component {what}: wasmtime package / wasmpy (times faster, info)",
                _ratio(m("components", key, "wasmtime"), m("components", key)), None, False)
    if import_cache and "ratio" in import_cache:
        add("import_cache", "import_cache_ratio", "import hook: cold / warm import of a big module",
            import_cache["ratio"], import_cache.get("target_ratio", 20.0), False)
    return out


def targets_table(found: List[Dict[str, Any]]) -> str:
    lines = []
    for target in found:
        value = target["value"]
        unit = target["unit"]
        shown_value = "-" if value is None else (f"{value:.3g}{unit}" if unit == "x" else f"{value:.0f} {unit}"
                                                if value >= 10 else f"{value:.2f} {unit}")
        if target["bound"] is None:
            bound, status = "", "info"
        else:
            bound = f"{'<=' if target['at_most'] else '>='} {target['bound']:g}{unit if unit == 'x' else ' ' + unit}"
            status = {True: "met", False: "MISSED", None: "not measured"}[target["met"]]
        lines.append([target["what"], shown_value, bound, status])
    text = ["== Targets of the Performance issue (informational, never asserted)",
            table(["target", "measured", "goal", ""], lines) if lines else "  (no group with a target ran)"]
    if any(target["group"] == "memory" for target in found):
        text.append("  the memoryview goal 'at memcpy speed' is read here as at least 90% of it")
    return "\n".join(text)
