"""Batched OPRF operations spread over all cores.

The arithmetic comes from :mod:`blindmatch.crypto.backend` (libsodium through rbcl, or the
native C extension); both release the GIL, so a thread pool scales across cores without
pickling. Elements travel as one contiguous ``bytes`` of ``n * 32`` so that no
per-element Python object crosses an API boundary.

Verifiable modes (RFC 9497 VOPRF 0x01 and POPRF 0x02), one DLEQ proof per batch of at
most 2^16 elements:

- holder: ``blind_evaluate_proven(sk, pk, blinded) -> (evaluated, proof)`` and
  ``blind_evaluate_proven_poprf(sk, blinded, info) -> (evaluated, proof)``;
- requester: ``verify_and_unblind(pk, blinds, blinded, evaluated, proof) -> unblinded``
  and ``verify_and_unblind_poprf(pk, info, blinds, blinded, evaluated, proof)``, which
  raise :class:`blindmatch.crypto.dleq.ProofError` naming the batch before unblinding;
- ``blind_in_mode`` / ``evaluate_elements_in_mode`` hash to the group with the mode's
  DST (a VOPRF index must be built with ``evaluate_elements_in_mode(VOPRF, ...)``; a
  POPRF one with the key ``poprf.tweaked_secret(sk, info)`` inverted, and hashed with
  ``poprf.finalize_unblinded``, which includes ``info``).

The composites ``sum d_i * C_i`` (and ``sum d_i * D_i`` for the verifier) are split
into one index range per worker; the partial sums are added at the end. Each range's
weights ``d_i`` and sums come from the backend: on the native one, one C call hashes
the range's transcripts and a variable-time Pippenger multi-scalar multiplication sums
it (the weights and elements are public; the prover's secret ``k`` multiplies only the
final ``M``, in constant time); on libsodium, which has no multi-scalar
multiplication, one scalar multiplication per element and side. They need only the
elements, not the
proof: a session that receives a batch's evaluated elements before its proof can run
``compute_composites`` while the holder still proves, then finish with
``dleq.verify_from_composites`` and ``unblind``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np

from blindmatch.crypto import backend as backends
from blindmatch.crypto import dleq, group, oprf, poprf, shuffle_prove, shuffle_verify, voprf
from blindmatch.crypto.group import ELEMENT_BYTES, SCALAR_BYTES, InvalidElementError
from blindmatch.crypto.modes import OPRF, POPRF, VOPRF, Mode
from blindmatch.crypto.shuffle import ShuffleProof, ShuffleRandomness

_MIN_CHUNK = 256  # below this, thread hand-off costs more than it saves
_T = TypeVar("_T")


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

    def _map_ranges(self, n: int, work: Callable[[int, int], _T]) -> list[_T]:
        """Run ``work(start, stop)`` over ``[0, n)`` in one range per worker; results in order."""
        if self._pool is None or n < 2 * _MIN_CHUNK:
            return [work(0, n)]
        step = -(-n // self.workers)
        return list(self._pool.map(lambda start: work(start, min(start + step, n)), range(0, n, step)))

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
        """RFC 9497 Blind (OPRF mode) of each input with the matching scalar of ``blinds`` (n * 32 bytes)."""
        return self.blind_in_mode(OPRF, inputs, blinds)

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
        """``sk * HashToGroup(input)`` for every input (OPRF mode): the holder's index build, before hashing."""
        return self.evaluate_elements_in_mode(OPRF, sk, inputs)

    def _hash_and_multiply(self, mode: Mode, inputs: Sequence[bytes], scalars: bytes) -> bytes:
        """``scalar_i * HashToGroup_mode(input_i)`` (``scalars`` is one scalar or one per input)."""
        h2g, dst = self.backend.hash_to_group, mode.hash_to_group_dst
        step = 0 if len(scalars) == 32 else 32

        def work(start: int, stop: int) -> bytes:
            out, bad = h2g(inputs[start:stop], dst, scalars[start * step : stop * step] if step else scalars)
            if bad >= 0:
                raise oprf.InvalidInputError(f"input {start + bad} maps to the identity element")
            return out

        return self._map_chunks(len(inputs), work)

    def compute_composites(self, mode: Mode, b: bytes, c: bytes, d: bytes, k: bytes | None = None) -> tuple[bytes, bytes]:
        """RFC 9497 ComputeComposites (``k`` None, verifier) or ComputeCompositesFast (prover).

        Partial sums over one index range per worker, added at the end; same result as
        :func:`blindmatch.crypto.dleq.composites`.
        """
        n = dleq.check_batch(c, d)
        seed = dleq.composite_seed(mode, b)
        dst, weights, msm = b"HashToScalar-" + mode.context_string, self.backend.composite_weights, self.backend.msm

        def partial(start: int, stop: int) -> tuple[bytes, bytes]:
            ci, di = c[start * ELEMENT_BYTES : stop * ELEMENT_BYTES], d[start * ELEMENT_BYTES : stop * ELEMENT_BYTES]
            scalars = weights(seed, ci, di, start, dst)
            return _sum_or_raise(msm, scalars, ci, start, "C"), (
                _sum_or_raise(msm, scalars, di, start, "D") if k is None else group.IDENTITY
            )

        m = z = group.IDENTITY
        for partial_m, partial_z in self._map_ranges(n, partial):
            m, z = dleq.add(m, partial_m), dleq.add(z, partial_z)
        if k is not None:
            z = group.IDENTITY if m == group.IDENTITY else group.scalar_mult(k, m)
        return m, z

    def multiply(self, scalars: bytes, elements: bytes) -> bytes:
        """``s_i * e_i`` (``s * e_i`` when ``scalars`` is one scalar), constant time: secret scalars allowed."""
        n = _count(elements)
        step = 0 if len(scalars) == SCALAR_BYTES else SCALAR_BYTES
        if step and len(scalars) != n * SCALAR_BYTES:
            raise ValueError("one scalar, or one scalar per element, required")
        mult = self.backend.mult

        def work(start: int, stop: int) -> bytes:
            out, bad = mult(scalars[start * step : stop * step] if step else scalars, elements[start * 32 : stop * 32])
            if bad >= 0:
                raise InvalidElementError(f"element {start + bad} is not a canonical non-identity ristretto255 element")
            return out

        return self._map_chunks(n, work)

    def add(self, p: bytes, q: bytes, *, subtract: bool = False) -> bytes:
        """``p_i + q_i`` (or ``p_i - q_i``) for two equally long element lists, constant time, spread over the workers."""
        if len(p) != len(q):
            raise ValueError("element lists of different lengths")
        add = self.backend.add

        def work(start: int, stop: int) -> bytes:
            out, bad = add(p[32 * start : 32 * stop], q[32 * start : 32 * stop], subtract)
            if bad >= 0:
                raise InvalidElementError(f"element pair {start + bad} holds a non-canonical ristretto255 encoding")
            return out

        return self._map_chunks(_count(p), work)

    def msm(self, scalars: bytes, elements: bytes) -> bytes:
        """``sum s_i * e_i`` of public scalars (variable time), partial sums per worker added at the end."""
        if len(scalars) != len(elements):
            raise ValueError("one scalar per element required")
        msm = self.backend.msm

        def partial(start: int, stop: int) -> bytes:
            return _sum_or_raise(msm, scalars[32 * start : 32 * stop], elements[32 * start : 32 * stop], start, "MSM")

        total = group.IDENTITY
        for part in self._map_ranges(_count(elements), partial):
            total = dleq.add(total, part)
        return total

    def hash_to_scalars(self, inputs: Sequence[bytes], dst: bytes) -> bytes:
        """RFC 9380 hash_to_field (SHA-512, 64 bytes, modulo L) of every input under ``dst``, spread over the workers."""
        hash_many = self.backend.hash_to_scalars
        return self._map_chunks(len(inputs), lambda start, stop: hash_many(inputs[start:stop], dst))

    def first_invalid(self, elements: bytes) -> int:
        """Index of the first element failing RFC 9496 Decode or being the identity, or -1."""
        n = len(elements) // ELEMENT_BYTES
        if isinstance(self.backend, backends.NativeBackend):
            return self.backend.validate(elements[: n * ELEMENT_BYTES])
        for i in range(n):
            try:
                group.decode_element(elements[i * ELEMENT_BYTES : (i + 1) * ELEMENT_BYTES])
            except InvalidElementError:
                return i
        return -1

    def prove_shuffled_evaluation(
        self, t: bytes, blinded: bytes, ctx: bytes, chunk: int, randomness: ShuffleRandomness | None = None
    ) -> tuple[bytes, ShuffleProof]:
        """Cardinality mode's evaluation ``t^-1 * B`` in a secret order, with its proof (SPEC 6.1).

        Returns ``(Z_1 || .. || Z_n, proof)``; ``randomness`` fixes every random value for tests.
        """
        return shuffle_prove.prove(self, t, blinded, ctx, chunk, randomness)

    def verify_shuffled_evaluation(
        self, tweaked_key: bytes, blinded: bytes, outputs: bytes, proof: ShuffleProof, ctx: bytes
    ) -> None:
        """Check a shuffled evaluation against ``T`` and the blinded elements sent; ShuffleProofError if not."""
        shuffle_verify.verify(self, tweaked_key, blinded, outputs, proof, ctx)

    def blind_evaluate_proven(self, sk: bytes, pk: bytes, blinded: bytes, r: bytes | None = None) -> tuple[bytes, bytes]:
        """VOPRF BlindEvaluate of a batch: ``(evaluated, proof)``, one proof for the batch.

        ``pk`` must be ``sk``'s public key (checked: a proof against another key would
        only make honest requesters fail). ``r`` fixes the proof nonce for tests.
        """
        sk = group.decode_scalar(sk)
        if group.base_mult(sk) != pk:
            raise ValueError("public key does not belong to the evaluation key")
        evaluated = self.blind_evaluate(sk, blinded)
        m, z = self.compute_composites(VOPRF, pk, blinded, evaluated, sk)
        return evaluated, dleq.prove_from_composites(VOPRF, sk, voprf.GENERATOR, pk, m, z, r)

    def verify_and_unblind(
        self, pk: bytes, blinds: bytes, blinded: bytes, evaluated: bytes, proof: bytes, *, what: str = "batch"
    ) -> bytes:
        """VOPRF Finalize's first half for a batch: verify the one proof, then unblind.

        Raises :class:`dleq.ProofError` naming ``what`` if the proof fails, and
        InvalidElementError naming the element if ``pk`` or an evaluated element is invalid.
        """
        pk = voprf.load_public_key(pk)
        _count(evaluated)
        m, z = self.compute_composites(VOPRF, pk, blinded, evaluated)
        dleq.verify_from_composites(VOPRF, voprf.GENERATOR, pk, m, z, proof, what=what)
        return self.unblind(blinds, evaluated)

    def blind_evaluate_proven_poprf(
        self, sk: bytes, blinded: bytes, info: bytes, r: bytes | None = None
    ) -> tuple[bytes, bytes]:
        """POPRF BlindEvaluate of a batch under public input ``info``: ``(evaluated, proof)``."""
        t = poprf.tweaked_secret(sk, info)
        tweaked = group.base_mult(t)
        evaluated = self.blind_evaluate(group.invert(t), blinded)
        m, z = self.compute_composites(POPRF, tweaked, evaluated, blinded, t)
        return evaluated, dleq.prove_from_composites(POPRF, t, voprf.GENERATOR, tweaked, m, z, r)

    def verify_and_unblind_poprf(
        self, pk: bytes, info: bytes, blinds: bytes, blinded: bytes, evaluated: bytes, proof: bytes, *, what: str = "batch"
    ) -> bytes:
        """POPRF Finalize's first half for a batch: verify against the tweaked key, unblind."""
        tweaked = poprf.tweaked_key(pk, info)
        _count(evaluated)
        m, z = self.compute_composites(POPRF, tweaked, evaluated, blinded)
        dleq.verify_from_composites(POPRF, voprf.GENERATOR, tweaked, m, z, proof, what=what)
        return self.unblind(blinds, evaluated)

    def blind_in_mode(self, mode: Mode, inputs: Sequence[bytes], blinds: bytes) -> bytes:
        """RFC 9497 Blind with ``mode``'s HashToGroup DST, one blind per input."""
        if len(blinds) != len(inputs) * 32:
            raise ValueError("one blind per input required")
        return self._hash_and_multiply(mode, inputs, blinds)

    def evaluate_elements_in_mode(self, mode: Mode, sk: bytes, inputs: Sequence[bytes]) -> bytes:
        """``sk * HashToGroup_mode(input)`` per input: an index build, before hashing."""
        return self._hash_and_multiply(mode, inputs, group.decode_scalar(sk))


def _sum_or_raise(msm: Callable[[bytes, bytes], tuple[bytes, int]], scalars: bytes, elements: bytes, start: int, what: str) -> bytes:
    """``sum d_i * X_i`` over one range; InvalidElementError names the batch index of a bad element."""
    total, bad = msm(scalars, elements)
    if bad >= 0:
        raise InvalidElementError(f"{what} element {start + bad} is not a canonical non-identity ristretto255 element")
    return total


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
