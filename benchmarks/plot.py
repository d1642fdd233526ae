"""Plots of a sweep: time and bytes per element against N, blindmatch beside OpenMined PSI.

    python benchmarks/plot.py [benchmarks/results/sweep.json]

Writes ``time_vs_n.png`` and ``bytes_per_element.png`` next to the JSON.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def _series(records, kind, key, select):
    values = defaultdict(list)
    for r in records:
        if r["kind"] == kind and select(r):
            values[(r["holder_records"], r["queries"])].append(r[key] if not callable(key) else key(r))
    return sorted((n, m, statistics.median(v)) for (n, m), v in values.items())


def main() -> int:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "results" / "sweep.json")
    data = json.loads(path.read_text())
    records = data["records"]
    machine = next((r for r in records if r["kind"] == "machine"), {})
    subtitle = f"{machine.get('cpu_model', '?')}, {machine.get('nproc', '?')} cores, Python {machine.get('python', '?')}"
    ms = sorted({r["queries"] for r in records if r["kind"] == "blindmatch"})
    ns = sorted({r["holder_records"] for r in records if r["kind"] == "blindmatch"})
    m_fixed, n_fixed = min(ms), max(ns)

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    panels = [
        (axes[0], f"fixed M = {m_fixed} queries", lambda r: r["queries"] == m_fixed, 0, "holder records N"),
        (axes[1], "balanced N = M", lambda r: r["queries"] == r["holder_records"], 0, "N = M"),
        (axes[2], f"fixed N = {n_fixed} holder records", lambda r: r["holder_records"] == n_fixed, 1, "queries M"),
    ]
    for ax, title, sel, axis, xlabel in panels:
        for kind, key, label, style in (
            ("blindmatch", "total_seconds", "blindmatch full (build + session)", "o-"),
            ("blindmatch", "session_seconds", "blindmatch session only (index exists)", "s--"),
            ("openmined", "total_seconds", "OpenMined PSI full exchange", "^-"),
        ):
            pts = _series(records, kind, key, sel)
            if pts:
                ax.plot([p[axis] for p in pts], [p[2] for p in pts], style, label=label)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("wall time (s)")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"Time against size: {subtitle}")
    fig.tight_layout()
    fig.savefig(path.with_name("time_vs_n.png"), dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    sel = lambda r: r["queries"] == m_fixed  # noqa: E731
    ax = axes[0]
    for kind, key, label, style in (
        ("blindmatch", lambda r: r["index_bytes"] / r["holder_records"], "blindmatch index (downloaded once)", "o-"),
        ("openmined", "setup_bytes_per_holder_record", "OpenMined setup message (every exchange, GCS)", "^-"),
        ("blindmatch", lambda r: (r["bytes_up"] + r["bytes_down"]) / (r["holder_records"] + r["queries"]), "blindmatch all bytes / (N + M)", "s--"),
        ("openmined", lambda r: (r["bytes_up"] + r["bytes_down"]) / (r["holder_records"] + r["queries"]), "OpenMined all bytes / (N + M)", "v--"),
    ):
        pts = _series(records, kind, key, sel)
        if pts:
            ax.plot([p[0] for p in pts], [p[2] for p in pts], style, label=label)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("holder records N")
    ax.set_ylabel("bytes per holder record")
    ax.set_title(f"Holder side, M = {m_fixed}")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    ax = axes[1]
    sel = lambda r: r["holder_records"] == n_fixed  # noqa: E731
    for kind, key, label, style in (
        ("blindmatch", "bytes_up_per_query", "blindmatch up (blinded)", "o-"),
        ("blindmatch", "bytes_down_per_query_excl_index", "blindmatch down (evaluated)", "s-"),
        ("openmined", "bytes_up_per_query", "OpenMined up (request)", "^-"),
        ("openmined", "bytes_down_per_query_excl_setup", "OpenMined down (response)", "v-"),
    ):
        pts = _series(records, kind, key, sel)
        if pts:
            ax.plot([p[1] for p in pts], [p[2] for p in pts], style, label=label)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("queries M")
    ax.set_ylabel("bytes per query")
    ax.set_title(f"Per query on the wire, N = {n_fixed}")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.suptitle(f"Bytes per element: {subtitle}")
    fig.tight_layout()
    fig.savefig(path.with_name("bytes_per_element.png"), dpi=110)
    plt.close(fig)
    print(f"wrote {path.with_name('time_vs_n.png')} and {path.with_name('bytes_per_element.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
