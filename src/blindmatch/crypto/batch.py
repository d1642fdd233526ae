"""Batched OPRF operations spread over all cores.

The arithmetic comes from :mod:`blindmatch.crypto.backend` (libsodium through rbcl, or the
native C extension); both release the GIL, so a thread pool scales across cores without
pickling. Elements travel as one contiguous ``bytes`` of ``n * 32`` so that no
per-element Python object crosses an API boundary.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from blindmatch.crypto import backend as backends
from blindmatch.crypto import group, oprf
from blindmatch.crypto.group import ELEMENT_BYTES, InvalidElementError

_MIN_CHUNK = 256  # below this, thread hand-off costs more than it saves


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


class BatchEngine:
    """A thread pool sized to the machine, shared by every batched operation of one process.

    ``backend`` selects the arithmetic (``libsodium``, ``native``, ``native:PATH`` or
    ``auto``; default: ``$BLINDMATCH_CRYPTO_BACKEND``, else ``auto``); outputs are identical.
    """

    def __init__(self, workers: int | None = None, backend: str | None = None) -> None:
        self.workers = workers or default_workers()
        self.backend = backends.select(backend)
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
        mult = self.backend.mult

        def work(start: int, stop: int) -> bytes:
            out, bad = mult(sk, blinded[start * ELEMENT_BYTES : stop * ELEMENT_BYTES])
            if bad >= 0:
                raise InvalidElementError(f"element {start + bad} is not a canonical non-identity ristretto255 element")
            return out

        return self._map_chunks(n, work)

    def blind(self, inputs: Sequence[bytes], blinds: bytes) -> bytes:
        """RFC 9497 Blind of each input with the matching scalar of ``blinds`` (n * 32 bytes)."""
        if len(blinds) != len(inputs) * 32:
            raise ValueError("one blind per input required")
        h2g = self.backend.hash_to_group

        def work(start: int, stop: int) -> bytes:
            out, bad = h2g(inputs[start:stop], oprf.HASH_TO_GROUP_DST, blinds[start * 32 : stop * 32])
            if bad >= 0:
                raise oprf.InvalidInputError(f"input {start + bad} maps to the identity element")
            return out

        return self._map_chunks(len(inputs), work)

    def unblind(self, blinds: bytes, evaluated: bytes) -> bytes:
        """``blind_i^-1 * evaluated_i`` for each i; validates every evaluated element."""
        n = _count(evaluated)
        if len(blinds) != n * 32:
            raise ValueError("one blind per evaluated element required")
        invert, mult = self.backend.invert, self.backend.mult

        def work(start: int, stop: int) -> bytes:
            inverses = invert(blinds[start * 32 : stop * 32])
            out, bad = mult(inverses, evaluated[start * 32 : stop * 32])
            if bad >= 0:
                raise InvalidElementError(f"evaluated element {start + bad} is invalid")
            return out

        return self._map_chunks(n, work)

    def evaluate_elements(self, sk: bytes, inputs: Sequence[bytes]) -> bytes:
        """``sk * HashToGroup(input)`` for every input: the holder's index build, before hashing."""
        sk = group.decode_scalar(sk)
        h2g = self.backend.hash_to_group

        def work(start: int, stop: int) -> bytes:
            out, bad = h2g(inputs[start:stop], oprf.HASH_TO_GROUP_DST, sk)
            if bad >= 0:
                raise oprf.InvalidInputError(f"input {start + bad} maps to the identity element")
            return out

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
