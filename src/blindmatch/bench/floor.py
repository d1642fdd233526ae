"""The libsodium floor: raw ristretto255 scalar multiplications per second on all cores.

Compares, on the same elements, the same count and the same number of threads:

* ``floor``: ``crypto_scalarmult_ristretto255`` called through ctypes into a preallocated
  output buffer, one tight loop per thread (nothing but the multiplication and the loop);
* ``blind_evaluate``: ``BatchEngine.blind_evaluate`` (the holder's online work);
* ``evaluate_elements``: ``BatchEngine.evaluate_elements`` (HashToGroup + multiplication,
  the index build's per-record work), and ``index_build``: ``IndexBuilder`` end to end.

The runs are interleaved (floor, engine, floor, engine, ...) so that background load on a
shared machine hits both alike; ratios use the medians.
"""

from __future__ import annotations

import ctypes
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any


def _elements(count: int) -> bytes:
    from blindmatch.crypto.sodium import rbcl

    return b"".join(rbcl.crypto_core_ristretto255_random() for _ in range(count))


def raw_scalarmult_rate(sk: bytes, elements: bytes, threads: int, pool: ThreadPoolExecutor | None) -> float:
    from blindmatch.crypto.sodium import lib

    fn = lib.crypto_scalarmult_ristretto255
    n = len(elements) // 32

    def loop(bounds: tuple[int, int]) -> None:
        out = ctypes.create_string_buffer(32)
        view = memoryview(elements)
        for i in range(*bounds):
            if fn(out, sk, bytes(view[i * 32 : i * 32 + 32])) != 0:
                raise RuntimeError("scalarmult failed")

    step = -(-n // threads)
    bounds = [(i, min(i + step, n)) for i in range(0, n, step)]
    t = time.perf_counter()
    if pool is None:
        loop((0, n))
    else:
        list(pool.map(loop, bounds))
    return n / (time.perf_counter() - t)


def measure_floor(count: int = 1 << 15, workers: int | None = None, repeats: int = 5) -> dict[str, Any]:
    from blindmatch.bench.common import BENCH_ORGANISATION, SCHEMA_FINGERPRINT, bench_key, machine_info
    from blindmatch.bench.data import holder_key_chunks
    from blindmatch.core.index_builder import IndexBuilder
    from blindmatch.crypto.batch import BatchEngine
    from blindmatch.vocabulary import Mode

    engine = BatchEngine(workers)
    threads = engine.workers
    key = bench_key(1)
    elements = _elements(count)
    inputs = next(holder_key_chunks(count, 1, count))
    pool = ThreadPoolExecutor(threads) if threads > 1 else None
    rates: dict[str, list[float]] = {"floor": [], "floor_1thread": [], "blind_evaluate": [], "evaluate_elements": [], "index_build": []}
    try:
        for _ in range(repeats):
            rates["floor"].append(raw_scalarmult_rate(key.sk, elements, threads, pool))
            t = time.perf_counter()
            engine.blind_evaluate(key.sk, elements)
            rates["blind_evaluate"].append(count / (time.perf_counter() - t))
            rates["floor_1thread"].append(raw_scalarmult_rate(key.sk, elements[: 32 * (count // 4)], 1, None) )
            t = time.perf_counter()
            engine.evaluate_elements(key.sk, inputs)
            rates["evaluate_elements"].append(count / (time.perf_counter() - t))
            t = time.perf_counter()
            builder = IndexBuilder(key, SCHEMA_FINGERPRINT, engine, BENCH_ORGANISATION, kinds=(Mode.MEMBERSHIP,))
            for lo in range(0, count, 4096):
                builder.add(inputs[lo : lo + 4096])
            builder.finish()
            rates["index_build"].append(count / (time.perf_counter() - t))
    finally:
        engine.close()
        if pool is not None:
            pool.shutdown()
    med = {k: statistics.median(v) for k, v in rates.items()}
    return {
        "count": count,
        "threads": threads,
        "repeats": repeats,
        "rates_per_second": rates,
        "median_per_second": med,
        # >= 1: how many times slower than the floor (targets: <= 1.2 / 1.25)
        "blind_evaluate_slowdown_vs_floor": med["floor"] / med["blind_evaluate"],
        "evaluate_elements_slowdown_vs_floor": med["floor"] / med["evaluate_elements"],
        "index_build_slowdown_vs_floor": med["floor"] / med["index_build"],
        "thread_scaling": med["floor"] / med["floor_1thread"],
        "machine": machine_info(),
    }
