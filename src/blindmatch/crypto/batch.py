"""Batched OPRF operations spread over all cores.

libsodium's scalar multiplication runs through ctypes, which releases the GIL, so a
thread pool scales across cores without pickling. Elements travel as one contiguous
``bytes`` of ``n * 32`` so that no per-element Python object crosses an API boundary.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from blindmatch.crypto import group, oprf
from blindmatch.crypto.group import ELEMENT_BYTES, InvalidElementError
from blindmatch.crypto.sodium import rbcl

_MIN_CHUNK = 256  # below this, thread hand-off costs more than it saves


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


class BatchEngine:
    """A thread pool sized to the machine, shared by every batched operation of one process."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or default_workers()
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="oprf") if self.workers > 1 else None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def _map_chunks(self, n: int, work: Callable[[int, int], bytes]) -> bytes:
        """Run ``work(start, stop)`` over ``[0, n)`` split into one chunk per worker; concatenate."""
        if self._pool is None or n < 2 * _MIN_CHUNK:
            return work(0, n)
        step = max(_MIN_CHUNK, -(-n // self.workers))
        bounds = [(i, min(i + step, n)) for i in range(0, n, step)]
        return b"".join(self._pool.map(lambda b: work(*b), bounds))

    def blind_evaluate(self, sk: bytes, blinded: bytes) -> bytes:
        """RFC 9497 BlindEvaluate of every 32-byte element in ``blinded``; same order out.

        Raises InvalidElementError naming the index of the first invalid element.
        """
        n = _count(blinded)
        sk = group.decode_scalar(sk)
        mult = rbcl.crypto_scalarmult_ristretto255

        def work(start: int, stop: int) -> bytes:
            out = []
            append = out.append
            for i in range(start, stop):
                try:
                    append(mult(sk, blinded[i * ELEMENT_BYTES : (i + 1) * ELEMENT_BYTES]))
                except RuntimeError:
                    raise InvalidElementError(f"element {i} is not a canonical non-identity ristretto255 element") from None
            return b"".join(out)

        return self._map_chunks(n, work)

    def blind(self, inputs: Sequence[bytes], blinds: bytes) -> bytes:
        """RFC 9497 Blind of each input with the matching scalar of ``blinds`` (n * 32 bytes)."""
        if len(blinds) != len(inputs) * 32:
            raise ValueError("one blind per input required")
        mult = rbcl.crypto_scalarmult_ristretto255
        h2g = oprf.hash_to_group

        def work(start: int, stop: int) -> bytes:
            return b"".join(mult(blinds[i * 32 : (i + 1) * 32], h2g(inputs[i])) for i in range(start, stop))

        return self._map_chunks(len(inputs), work)

    def unblind(self, blinds: bytes, evaluated: bytes) -> bytes:
        """``blind_i^-1 * evaluated_i`` for each i; validates every evaluated element."""
        n = _count(evaluated)
        if len(blinds) != n * 32:
            raise ValueError("one blind per evaluated element required")
        mult = rbcl.crypto_scalarmult_ristretto255

        def work(start: int, stop: int) -> bytes:
            inverses = group.batch_invert(blinds[start * 32 : stop * 32])
            out = []
            for i in range(start, stop):
                j = i - start
                try:
                    out.append(mult(inverses[j * 32 : (j + 1) * 32], evaluated[i * 32 : (i + 1) * 32]))
                except RuntimeError:
                    raise InvalidElementError(f"evaluated element {i} is invalid") from None
            return b"".join(out)

        return self._map_chunks(n, work)

    def evaluate_elements(self, sk: bytes, inputs: Sequence[bytes]) -> bytes:
        """``sk * HashToGroup(input)`` for every input: the holder's index build, before hashing."""
        sk = group.decode_scalar(sk)
        h2g = oprf.hash_to_group
        mult = rbcl.crypto_scalarmult_ristretto255

        def work(start: int, stop: int) -> bytes:
            return b"".join(mult(sk, h2g(inputs[i])) for i in range(start, stop))

        return self._map_chunks(len(inputs), work)


def _count(elements: bytes) -> int:
    """Number of elements in a batch, after the checks libsodium 1.0.18 does not make.

    libsodium rejects non-canonical field encodings and (through the identity result)
    the identity, but ignores the top bit that RFC 9496 requires to be clear.
    """
    if len(elements) % ELEMENT_BYTES:
        raise InvalidElementError(f"element batch length {len(elements)} is not a multiple of {ELEMENT_BYTES}")
    top_bits = np.frombuffer(elements, dtype=np.uint8)[ELEMENT_BYTES - 1 :: ELEMENT_BYTES] & 0x80
    if top_bits.any():
        raise InvalidElementError(f"element {int(np.flatnonzero(top_bits)[0])} is not a canonical ristretto255 encoding")
    return len(elements) // ELEMENT_BYTES
