"""A picture of a benchmark run: each peer's time relative to wasmpy's, as an SVG (no plotting library).

    python -m benchmarks.plot [FIGURES.json [OUT.svg]]

``python -m benchmarks`` draws it too, beside its JSON (``results/latest.svg``).
"""

from __future__ import annotations

import json
import math
import sys
from html import escape
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

HERE = Path(__file__).resolve().parent

# (group, benchmark, label); time-like figures only (GB/s rows are left out).
SHOWN = [
    ("calls", "noop", "noop()"),
    ("calls", "add_i32", "add(1, 2)"),
    ("calls", "host_call", "wasm → Python → wasm"),
    ("memory", "read16", "memory.read(offset, 16)"),
    ("compute", "fib30", "fib(30)"),
    ("compute", "nbody", "n-body (C)"),
    ("compute", "fnv1a_1mib", "FNV-1a 1 MiB × 8 (C)"),
    ("compute", "lz4_hc", "LZ4 HC, 512 KiB (C)"),
    ("instantiate", "new_store", "instantiate, new store"),
    ("instantiate", "with_import", "instantiate with a Python import"),
]
PEERS = {"wasmtime": "#d1495b", "pywasm3": "#edae49"}
LOW, HIGH = 0.1, 1000.0  # the ratio axis, log scale

WIDTH, LABEL_WIDTH, ROW, BAR, TOP = 760, 230, 34, 12, 80


def ratios(figures: Dict[str, Any]) -> List[Tuple[str, Dict[str, Optional[float]]]]:
    """Per shown benchmark: each peer's median time over wasmpy's (above 1: wasmpy is faster)."""
    out = []
    for group, key, label in SHOWN:
        medians = figures.get("groups", {}).get(group, {}).get("benchmarks", {}).get(key, {}).get("median_ns")
        if not medians or not medians.get("wasmpy"):
            continue
        out.append((label, {peer: (medians[peer] / medians["wasmpy"] if medians.get(peer) else None)
                            for peer in PEERS}))
    return out


def _x(ratio: float) -> float:
    span = math.log10(HIGH) - math.log10(LOW)
    clamped = min(max(ratio, LOW), HIGH)
    return LABEL_WIDTH + (WIDTH - LABEL_WIDTH - 20) * (math.log10(clamped) - math.log10(LOW)) / span


def svg(figures: Dict[str, Any]) -> str:
    rows = ratios(figures)
    height = TOP + ROW * len(rows) + 40
    meta = figures.get("meta", {})
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
             f'font-family="sans-serif" font-size="12">',
             f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
             '<text x="10" y="20" font-size="15" font-weight="bold">How many times longer the others take '
             'than wasmpy</text>',
             f'<text x="10" y="38" fill="#555">medians, one run ({escape(str(meta.get("date", "?")))}, '
             f'Python {escape(str(meta.get("python", "?")))}); above 1: wasmpy is faster; log scale</text>',
             '<text x="10" y="54" fill="#555">default engines: wasmpy\'s checks epochs (deadlines, Ctrl-C), '
             'the wasmtime package\'s does not</text>']
    for tick in (0.1, 0.3, 1, 3, 10, 30, 100, 300, 1000):
        x = _x(tick)
        parts.append(f'<line x1="{x:.1f}" y1="{TOP - 6}" x2="{x:.1f}" y2="{TOP + ROW * len(rows)}" '
                     f'stroke="{"#333" if tick == 1 else "#ddd"}"/>')
        parts.append(f'<text x="{x:.1f}" y="{TOP + ROW * len(rows) + 14}" text-anchor="middle">{tick:g}×</text>')
    for index, (label, by_peer) in enumerate(rows):
        y = TOP + ROW * index
        parts.append(f'<text x="{LABEL_WIDTH - 8}" y="{y + ROW / 2 + 4:.1f}" text-anchor="end">{escape(label)}</text>')
        for slot, (peer, color) in enumerate(PEERS.items()):
            ratio = by_peer[peer]
            bar_y = y + 4 + slot * (BAR + 2)
            if ratio is None:
                parts.append(f'<text x="{LABEL_WIDTH + 4}" y="{bar_y + BAR - 2}" fill="#999">{peer}: -</text>')
                continue
            start, end = sorted((_x(1), _x(ratio)))
            parts.append(f'<rect x="{start:.1f}" y="{bar_y}" width="{max(end - start, 1):.1f}" height="{BAR}" '
                         f'fill="{color}"><title>{peer}: {ratio:.3g}×</title></rect>')
            parts.append(f'<text x="{end + 4:.1f}" y="{bar_y + BAR - 2}" fill="#333">{ratio:.3g}×</text>')
    legend_y = height - 12
    for slot, (peer, color) in enumerate(PEERS.items()):
        x = LABEL_WIDTH + slot * 160
        parts.append(f'<rect x="{x}" y="{legend_y - 10}" width="12" height="12" fill="{color}"/>')
        parts.append(f'<text x="{x + 18}" y="{legend_y}">{peer} / wasmpy</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def write(figures: Dict[str, Any], out: Path) -> None:
    out.write_text(svg(figures), encoding="utf-8")


def main(argv: Optional[List[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    source = Path(args[0]) if args else HERE / "results" / "latest.json"
    out = Path(args[1]) if len(args) > 1 else source.with_suffix(".svg")
    write(json.loads(source.read_text(encoding="utf-8")), out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
