"""The part the two SecretFlow benchmark scripts share: both parties on threads of one process.

Imported by ``secretflow_psi.py`` and ``secretflow_ub_psi.py``, which run in SecretFlow's own
virtual environment (``spu`` pins its own protobuf): this module imports ``spu`` and the
standard library only, never blindmatch.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import spu.libspu.link as link


def memory_link(recv_timeout_ms: int | None = None) -> link.Desc:
    """The in-memory link of two parties (``create_mem``: no network), as SecretFlow's own tests use it."""
    desc = link.Desc()
    if recv_timeout_ms is not None:
        desc.recv_timeout_ms = recv_timeout_ms
    for rank in range(2):
        desc.add_party(f"party{rank}", f"thread_{rank}")
    return desc


def run_both_parties(party: Callable[[int], None]) -> tuple[float, float]:
    """Run ``party(0)`` and ``party(1)`` on two threads started together.

    Returns the wall seconds to the slower finish and the CPU seconds of this process (both
    parties' threads: the work done, which a shared machine's load disturbs less than the wall
    time). An exception in either party is re-raised here rather than lost in its thread.
    """
    finished = [0.0, 0.0]
    errors: list[BaseException] = []

    def run(rank: int) -> None:
        try:
            party(rank)
        except BaseException as exc:  # re-raised in the main thread
            errors.append(exc)
        finished[rank] = time.perf_counter()

    threads = [threading.Thread(target=run, args=(r,)) for r in range(2)]
    start, cpu_start = time.perf_counter(), time.process_time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cpu = time.process_time() - cpu_start
    if errors:
        raise errors[0]
    return max(finished) - start, cpu
