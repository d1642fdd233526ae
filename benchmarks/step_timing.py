"""What the micro-benchmark scripts (``voprf_bench.py``, ``shuffle_bench.py``) share: timing and output.

Imported as a sibling module, as ``secretflow_common`` is: the scripts run as
``python benchmarks/NAME.py``, which puts this folder on ``sys.path``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def best_interleaved(repeat: int, steps: dict[str, Callable[[], object]]) -> dict[str, float]:
    """Best time of each step over ``repeat`` rounds, the steps alternating within a round
    so that a shared machine's changing load hits the compared steps alike."""
    best = {name: float("inf") for name in steps}
    for _ in range(repeat):
        for name, run in steps.items():
            start = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def report(result: dict[str, Any], out: Path | None) -> None:
    """Print the result as JSON and, with ``--out``, write it there too."""
    text = json.dumps(result, indent=1)
    print(text)
    if out:
        out.write_text(text + "\n")
