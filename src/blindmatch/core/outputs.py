"""The two OPRF output kinds an index can hold, and their mapping to index entries.

Membership entries are RFC 9497 POPRF Finalize outputs, which bind the input and the
public input ``info`` (``core.purpose``). Cardinality entries hash ``info`` and the
unblinded element alone under a different suffix, so a requester that receives
evaluations in shuffled order can still look them up without knowing which input each
one came from (SPEC.md, "Cardinality mode").
"""

from __future__ import annotations

import hashlib

import numpy as np

from blindmatch.crypto.backend import finalize_many
from blindmatch.crypto.modes import length_prefixed
from blindmatch.vocabulary import Mode

CARDINALITY_SUFFIX = b"CardinalityFinalize"


def cardinality_output(info: bytes, unblinded_element: bytes) -> bytes:
    """SHA-512(lp(info) || lp(element) || "CardinalityFinalize"): POPRF Finalize without the input."""
    return hashlib.sha512(length_prefixed(info) + length_prefixed(unblinded_element) + CARDINALITY_SUFFIX).digest()


def outputs_for(mode: Mode, inputs: list[bytes] | None, unblinded: bytes, info: bytes) -> bytes:
    """Hash ``n`` unblinded elements (``n * 32`` bytes) to ``n * 64`` bytes of outputs for ``mode`` under ``info``."""
    n = len(unblinded) // 32
    if mode is Mode.MEMBERSHIP:
        if inputs is None or len(inputs) != n:
            raise ValueError("membership outputs need the input of every element")
        # POPRF Finalize binds info: one batch call (in C on the native backend, without the GIL).
        return finalize_many(inputs, unblinded, info=info)
    return b"".join(cardinality_output(info, unblinded[i * 32 : (i + 1) * 32]) for i in range(n))


def split_outputs(outputs: bytes) -> tuple[np.ndarray, np.ndarray]:
    """The 64-bit big-endian words ``hi = out[0:8]`` and ``lo = out[8:16]`` of each 64-byte output."""
    words = np.frombuffer(outputs, dtype=">u8").reshape(-1, 8)
    return words[:, 0].astype(np.uint64), words[:, 1].astype(np.uint64)


def bucket_of(hi: np.ndarray, n: int) -> np.ndarray:
    """``floor(hi * n / 2^64)`` exactly, in 64-bit arithmetic (requires n < 2^32).

    Split hi = a*2^32 + b; then floor(hi*n / 2^64) = (a*n + ((b*n) >> 32)) >> 32, and no
    intermediate exceeds 2^64 - 1 when n < 2^32.
    """
    if not 0 < n < 2**32:
        raise ValueError("index size must be between 1 and 2^32 - 1 entries")
    hi = hi.astype(np.uint64, copy=False)
    nn = np.uint64(n)
    a = hi >> np.uint64(32)
    b = hi & np.uint64(0xFFFFFFFF)
    return (a * nn + ((b * nn) >> np.uint64(32))) >> np.uint64(32)
