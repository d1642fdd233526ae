"""Benchmark inputs: holder match keys streamed in chunks and a query set with known matches.

When ``blindmatch.pilot.synthetic`` and ``blindmatch.normalize`` are available, ``source="synthetic"``
derives the keys from synthetic people through the default schema; ``source="cheap"``
(the default for large sizes) generates opaque keys directly, bypassing the normaliser,
which is what the OPRF sees anyway: one byte string per record.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

KEY_PREFIX = b"bm-bench-key|"


def _key(seed: int, i: int) -> bytes:
    # ~40 bytes, the size of a normalised match key (name|dob|postcode).
    return b"%s%d|%020d" % (KEY_PREFIX, seed, i)


def holder_key_chunks(n: int, seed: int = 1, chunk: int = 1 << 16) -> Iterator[list[bytes]]:
    """The holder's ``n`` match keys, ``chunk`` at a time (only one chunk alive at once)."""
    for start in range(0, n, chunk):
        yield [_key(seed, i) for i in range(start, min(start + chunk, n))]


def query_keys(holder_records: int, queries: int, seed: int = 1) -> tuple[list[bytes], int]:
    """``queries`` requester keys of which ``queries // 2`` are holder keys; returns (keys, matches)."""
    matches = min(queries // 2, holder_records)
    # Distinct holder indices without materialising a permutation of the holder's range:
    # j -> (a*j + b) mod n with gcd(a, n) = 1 is injective on [0, n).
    rng = np.random.default_rng(seed + 7919)
    n = max(holder_records, 1)
    a = int(rng.integers(1, n)) if n > 1 else 1
    while math.gcd(a, n) != 1:
        a += 1
    b = int(rng.integers(0, n))
    hits = [_key(seed, (a * j + b) % n) for j in range(matches)]
    misses = [_key(seed, holder_records + j) for j in range(queries - matches)]
    keys = hits + misses
    order = rng.permutation(len(keys))
    return [keys[i] for i in order], matches
