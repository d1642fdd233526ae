"""Benchmark inputs: holder match keys streamed in chunks and a query set with known matches.

When ``blindmatch.pilot.synthetic`` and ``blindmatch.normalize`` are available, ``source="synthetic"``
derives the keys from synthetic people through the default schema; ``source="cheap"``
(the default for large sizes) generates opaque keys directly, bypassing the normaliser,
which is what the OPRF sees anyway: one byte string per record.

``tokens=True`` gives each key's eligibility token instead (SPEC.md 15.3: the issuer's
VOPRF Evaluate of the key under a fixed bench issuer key, 64 bytes): what the holder's
index over tokens holds and what a requester on tokens sends, so a session on tokens
can be timed against one on plain keys of the same size.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

KEY_PREFIX = b"bm-bench-key|"
ISSUER_SEED = b"blindmatch-bench issuer seed".ljust(32, b"-")


def _key(seed: int, i: int) -> bytes:
    # ~40 bytes, the size of a normalised match key (name|dob|postcode).
    return b"%s%d|%020d" % (KEY_PREFIX, seed, i)


def as_tokens(keys: list[bytes]) -> list[bytes]:
    """Each key's token: RFC 9497 VOPRF Evaluate under the bench issuer's key (as the issuer computes it)."""
    from blindmatch.crypto import oprf, voprf
    from blindmatch.crypto.batch import BatchEngine
    from blindmatch.crypto.modes import VOPRF

    sk, _ = voprf.derive_key_pair(ISSUER_SEED, b"blindmatch-bench issuer")
    engine = BatchEngine()
    try:
        elements = engine.evaluate_elements_in_mode(VOPRF, sk, keys)
    finally:
        engine.close()
    return [oprf.finalize_unblinded(key, elements[i * 32 : (i + 1) * 32]) for i, key in enumerate(keys)]


def holder_key_chunks(n: int, seed: int = 1, chunk: int = 1 << 16, tokens: bool = False) -> Iterator[list[bytes]]:
    """The holder's ``n`` match keys (or their tokens), ``chunk`` at a time (only one chunk alive at once)."""
    for start in range(0, n, chunk):
        keys = [_key(seed, i) for i in range(start, min(start + chunk, n))]
        yield as_tokens(keys) if tokens else keys


def query_keys(holder_records: int, queries: int, seed: int = 1, tokens: bool = False) -> tuple[list[bytes], int]:
    """``queries`` requester keys (or tokens) of which ``queries // 2`` are holder keys; returns (keys, matches)."""
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
    shuffled = [keys[i] for i in order]
    return (as_tokens(shuffled) if tokens else shuffled), matches
