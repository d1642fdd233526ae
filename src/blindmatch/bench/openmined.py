"""OpenMined PSI (``openmined-psi``, the ``bench`` extra) on the same inputs, for comparison.

One full exchange: the server's setup message (it encrypts every one of its items: it
must redo this for every exchange, its key being fresh), the client's request, the
server's response and the client's intersection. Bytes are the protobuf ``ByteSize()``
of the three messages. Runs in a spawned process so that its peak RSS is its own.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from typing import Any

DEFAULT_FPR = 2.0**-40  # blindmatch's per-session bound (SPEC: 2^-64 per query, <= 2^24 queries)


def available() -> bool:
    try:
        import private_set_intersection.python  # noqa: F401
    except ImportError:
        return False
    return True


def _run(n: int, m: int, seed: int, fpr: float, structure: str) -> dict[str, Any]:
    import private_set_intersection.python as psi

    from blindmatch.bench.data import holder_key_chunks, query_keys
    from blindmatch.bench.rss import peak_rss_bytes

    server_items = [k for chunk in holder_key_chunks(n, seed) for k in chunk]
    client_items, expected = query_keys(n, m, seed)
    ds = {"gcs": psi.DataStructure.GCS, "raw": psi.DataStructure.RAW}[structure]
    t0 = time.perf_counter()
    server = psi.server.CreateWithNewKey(True)
    client = psi.client.CreateWithNewKey(True)
    setup = server.CreateSetupMessage(fpr, len(client_items), server_items, ds)
    t1 = time.perf_counter()
    request = client.CreateRequest(client_items)
    t2 = time.perf_counter()
    response = server.ProcessRequest(request)
    t3 = time.perf_counter()
    intersection = client.GetIntersection(setup, response)
    t4 = time.perf_counter()
    return {
        "holder_records": n,
        "queries": m,
        "data_structure": structure,
        "fpr": fpr,
        "matches": len(intersection),
        "expected_matches": expected,
        "setup_seconds": t1 - t0,
        "request_seconds": t2 - t1,
        "process_seconds": t3 - t2,
        "intersection_seconds": t4 - t3,
        "total_seconds": t4 - t0,
        "setup_bytes": setup.ByteSize(),
        "request_bytes": request.ByteSize(),
        "response_bytes": response.ByteSize(),
        "bytes_up": request.ByteSize(),
        "bytes_down": setup.ByteSize() + response.ByteSize(),
        "setup_bytes_per_holder_record": setup.ByteSize() / n,
        "bytes_up_per_query": request.ByteSize() / m,
        "bytes_down_per_query_excl_setup": response.ByteSize() / m,
        "peak_rss_bytes": peak_rss_bytes(),
    }


def _child(conn: Any, *args: Any) -> None:
    try:
        conn.send(("ok", _run(*args)))
    except BaseException:
        import traceback

        conn.send(("error", traceback.format_exc()))


def run_openmined(n: int, m: int, seed: int = 1, fpr: float = DEFAULT_FPR, structure: str = "gcs") -> dict[str, Any]:
    """One OpenMined PSI exchange on the benchmark's inputs, in its own process."""
    ctx = mp.get_context("spawn")
    mine, theirs = ctx.Pipe()
    proc = ctx.Process(target=_child, args=(theirs, n, m, seed, fpr, structure), name="bench-openmined")
    proc.start()
    theirs.close()
    try:
        status, payload = mine.recv()
    except EOFError:
        proc.join()
        raise RuntimeError(f"OpenMined PSI process died (exit code {proc.exitcode})") from None
    proc.join()
    if status != "ok":
        raise RuntimeError(payload)
    return dict(payload)
