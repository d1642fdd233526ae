"""Plot of a native-backend target run: blindmatch beside SecretFlow (and OpenMined), wall and CPU.

    python benchmarks/plot_native.py [benchmarks/results/native-targets-run2.json]

Reads the ``rows`` of a ``native_bench.py`` run and writes ``native_vs_secretflow.png`` next
to the JSON: per row, the median wall seconds and the median CPU seconds (both sides
together) of blindmatch (native backend) and of SecretFlow measured in the same run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

LABELS = {"balanced_2^14": "balanced 2^14 x 2^14\n(SecretFlow ECDH)", "unbalanced_2^20x2^14_online": "2^20 x 2^14 online\n(SecretFlow UB-PSI)"}


def _bars(rows: dict[str, Any], kind: str) -> tuple[list[str], list[float], list[float]]:
    """Row labels and medians (blindmatch, SecretFlow) of wall (``kind`` = seconds) or CPU seconds."""
    names, ours, theirs = [], [], []
    for row, entry in rows.items():
        measured = entry.get("secretflow_measured_median")
        if not measured:
            continue
        names.append(LABELS.get(row, row))
        if kind == "seconds":
            ours.append(entry["median"]["native"])
            theirs.append(measured["ecdh"])
        else:
            ours.append(entry["cpu_seconds"]["median"]["native"])
            theirs.append(measured["ecdh_cpu"])
    return names, ours, theirs


def main() -> int:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "results" / "native-targets-run2.json")
    rows = json.loads(path.read_text())["rows"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, kind, title in zip(axes, ("seconds", "cpu"), ("wall seconds (median)", "CPU seconds, both sides (median)"), strict=True):
        names, ours, theirs = _bars(rows, kind)
        xs = range(len(names))
        ax.bar([x - 0.2 for x in xs], ours, 0.4, label="blindmatch (RFC 9497 POPRF + proofs, native)")
        ax.bar([x + 0.2 for x in xs], theirs, 0.4, label="SecretFlow spu 0.9.5")
        for x, a, b in zip(xs, ours, theirs, strict=True):
            ax.annotate(f"{a / b:.2f}x", (x, max(a, b)), ha="center", va="bottom")
        ax.set_ylim(0, 1.15 * max(ours + theirs))
        ax.set_xticks(list(xs), names)
        ax.set_title(title)
        ax.set_ylabel("seconds")
    axes[0].legend(fontsize=8, loc="upper left")
    fig.suptitle("same run, shared 2-vCPU machine (see benchmarks/README.md)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path.with_name("native_vs_secretflow.png"), dpi=110)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
