"""A verifiable shuffled evaluation for cardinality mode: the wire form and the public hashes.

The holder returns ``{t^-1 * B_j}`` in a secret random order and proves it, composing
published constructions only (the re-encryption mix-net pattern "shuffle, then
exponentiate, then verifiably decrypt"):

1. the Terelius-Wikstrom proof of a shuffle of ElGamal ciphertexts (Wikstrom, ACISP 2009;
   Terelius & Wikstrom, AFRICACRYPT 2010) exactly as algorithms GenShuffleProof /
   CheckShuffleProof of Haenni, Locher, Koenig, Dubuis, "Pseudo-code algorithms for
   verifiable re-encryption mix-nets" (FC 2017 Workshops), over the trivial encryptions
   ``(O, B_j)`` under a fresh key ``H = s * G``;
2. RFC 9497 section 2.2 batched DLEQ proofs (POPRF context) that the re-encrypted pairs
   were multiplied by ``t^-1`` (against ``T = t * G``) and then decrypted with ``s``
   (against ``H``).

This module holds what both sides and the session share: the proof's byte layout (SPEC
section 6.1), the randomness a prover draws, and the Fiat-Shamir hashes. The prover and
the verifier are :mod:`blindmatch.crypto.shuffle_prove` and
:mod:`blindmatch.crypto.shuffle_verify`, reached through ``BatchEngine``.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Protocol

import numpy as np

from blindmatch.crypto import group
from blindmatch.crypto.group import ELEMENT_BYTES, SCALAR_BYTES
from blindmatch.crypto.h2c import expand_message_xmd_sha512
from blindmatch.crypto.modes import Mode, i2osp

HEADER_BYTES = 320  # H, t1, t2, t3, t4a, t4b, s1, s2, s3, s4
RECORD_BYTES = 288  # a', b', a'', b'', c, c^, t^ (elements), s^, s' (scalars)
CHUNK_PROOF_BYTES = 128  # exponentiation proof c || s, then decryption proof c || s
MAX_CHUNK = 2**15  # a chunk's exponentiation proof covers 2 * chunk elements, indexed by I2OSP(i, 2)
MAX_ELEMENTS = 2**32 - 1  # generators and u_j are indexed by I2OSP(i, 4)
GENERATOR_DST = b"blindmatch-v1-shuffle-generator"
SCALAR_DST = b"HashToScalar-blindmatch-v1-shuffle"
U_PREFIX = b"blindmatch-v1-shuffle-u"
C_PREFIX = b"blindmatch-v1-shuffle-c"
_GENERATOR_BLOCK = 1024


class ShuffleProofError(ValueError):
    """A shuffled evaluation does not verify; the message names the failed check, never a secret."""


def chunk_count(n: int, chunk: int) -> int:
    """Number of output batches (and chunk proofs) of ``n`` elements in chunks of ``chunk``."""
    return -(-n // chunk)


def check_shape(n: int, chunk: int) -> None:
    """The sizes the construction supports; ShuffleProofError otherwise."""
    if not 1 <= n <= MAX_ELEMENTS:
        raise ShuffleProofError(f"a shuffled evaluation covers 1 to {MAX_ELEMENTS} elements, got {n}")
    if not 1 <= chunk <= MAX_CHUNK:
        raise ShuffleProofError(f"chunk must be 1 to {MAX_CHUNK} elements, got {chunk}")


@dataclass(frozen=True)
class ShuffleProof:
    """The proof in its wire layout: a header, one record per output position, one proof pair per chunk."""

    header: bytes
    records: bytes
    chunk_proofs: bytes
    chunk: int

    @property
    def count(self) -> int:
        """Number of output positions the records cover."""
        return len(self.records) // RECORD_BYTES

    def batch_part(self, k: int) -> bytes:
        """What output batch ``k`` carries: the header (batch 0 only), its records, its chunk proofs."""
        if not 0 <= k < chunk_count(self.count, self.chunk):
            raise ValueError(f"batch {k} out of range for {self.count} elements in chunks of {self.chunk}")
        lo, hi = k * self.chunk, min(self.count, (k + 1) * self.chunk)
        head = self.header if k == 0 else b""
        proofs = self.chunk_proofs[k * CHUNK_PROOF_BYTES : (k + 1) * CHUNK_PROOF_BYTES]
        return head + self.records[lo * RECORD_BYTES : hi * RECORD_BYTES] + proofs

    @classmethod
    def from_batch_parts(cls, parts: Sequence[bytes], n: int, chunk: int) -> ShuffleProof:
        """The inverse of :meth:`batch_part` over all batches; ShuffleProofError on a bad count or length."""
        check_shape(n, chunk)
        batches = chunk_count(n, chunk)
        if len(parts) != batches:
            raise ShuffleProofError(f"shuffle proof: expected {batches} batch parts, got {len(parts)}")
        header, records, proofs = b"", [], []
        for k, part in enumerate(parts):
            size = (min(n, (k + 1) * chunk) - k * chunk) * RECORD_BYTES
            expected = size + CHUNK_PROOF_BYTES + (HEADER_BYTES if k == 0 else 0)
            if len(part) != expected:
                raise ShuffleProofError(f"batch {k}: shuffle proof part must be {expected} bytes, got {len(part)}")
            if k == 0:
                header, part = part[:HEADER_BYTES], part[HEADER_BYTES:]
            records.append(part[:size])
            proofs.append(part[size:])
        return cls(header, b"".join(records), b"".join(proofs), chunk)


@dataclass(frozen=True)
class ShuffleRandomness:
    """Every random value of one proof; :meth:`fresh` draws them, tests and vectors fix them.

    ``permutation[i]`` is the input shown at output position ``i``. ``r`` holds the
    permutation commitments' randomness indexed by *input* ``j``; ``rho``, ``r_hat``,
    ``w_hat`` and ``w_prime`` are indexed by position; ``w`` is ``w1 || w2 || w3 || w4``;
    ``dleq_nonces`` holds per chunk the exponentiation proof's nonce, then the decryption's.
    """

    s: bytes
    permutation: tuple[int, ...]
    rho: bytes
    r: bytes
    r_hat: bytes
    w: bytes
    w_hat: bytes
    w_prime: bytes
    dleq_nonces: bytes

    def __repr__(self) -> str:  # never show a secret (a log or a traceback could carry it)
        return f"ShuffleRandomness(<{len(self.permutation)} positions, secret>)"

    @classmethod
    def fresh(cls, n: int, chunk: int) -> ShuffleRandomness:
        """Uniform non-zero scalars and a Fisher-Yates permutation, all from :mod:`secrets`."""
        check_shape(n, chunk)
        order = list(range(n))
        for i in range(n - 1, 0, -1):
            j = secrets.randbelow(i + 1)
            order[i], order[j] = order[j], order[i]
        return cls(_scalars(1), tuple(order), _scalars(n), _scalars(n), _scalars(n), _scalars(4), _scalars(n),
                   _scalars(n), _scalars(2 * chunk_count(n, chunk)))

    def check(self, n: int, chunk: int) -> None:
        """Refuse randomness of the wrong shape, a non-permutation or a zero scalar (a test's mistake)."""
        sizes = {"rho": (self.rho, n), "r": (self.r, n), "r_hat": (self.r_hat, n), "w": (self.w, 4), "s": (self.s, 1),
                 "w_hat": (self.w_hat, n), "w_prime": (self.w_prime, n),
                 "dleq_nonces": (self.dleq_nonces, 2 * chunk_count(n, chunk))}
        for name, (value, count) in sizes.items():
            if len(value) != count * SCALAR_BYTES:
                raise ValueError(f"shuffle randomness: {name} must hold {count} scalars")
            for i in range(count):
                try:
                    group.decode_scalar(value[i * SCALAR_BYTES : (i + 1) * SCALAR_BYTES])
                except group.InvalidScalarError as exc:
                    raise ValueError(f"shuffle randomness: {name} scalar {i}: {exc}") from None
        if sorted(self.permutation) != list(range(n)):
            raise ValueError(f"shuffle randomness: permutation is not a permutation of 0..{n - 1}")


def _scalars(count: int) -> bytes:
    """``count`` uniform non-zero scalars: 64 random bytes each, reduced modulo L (RFC 9496), zero redrawn."""
    uniform = secrets.token_bytes(64 * count)
    out = [group.scalar_from_uniform(uniform[64 * i : 64 * i + 64]) for i in range(count)]
    for i, scalar in enumerate(out):
        while not any(scalar):  # probability 2^-252 each
            scalar = group.scalar_from_uniform(secrets.token_bytes(64))
        out[i] = scalar
    return b"".join(out)


def hash_to_scalar(data: bytes) -> bytes:
    """RFC 9380 hash_to_field form: ``OS2IP_LE(expand_message_xmd_SHA512(data, DST, 64)) mod L``."""
    return group.scalar_from_uniform(expand_message_xmd_sha512(data, SCALAR_DST, 64))


@cache
def _generator_block(k: int) -> bytes:
    """``h_i = hash_to_ristretto255(I2OSP(i, 4))`` (RFC 9380, DST GENERATOR_DST) for one block of indices."""
    out = []
    for i in range(k * _GENERATOR_BLOCK, (k + 1) * _GENERATOR_BLOCK):
        element = group.element_from_uniform(expand_message_xmd_sha512(i2osp(i, 4), GENERATOR_DST, 64))
        if element == group.IDENTITY:  # probability 2^-252 per index; would break the commitment
            raise ShuffleProofError(f"shuffle generator {i} is the identity")
        out.append(element)
    return b"".join(out)


def generators(count: int) -> bytes:
    """``h_0 .. h_{count-1}``, concatenated; cached per block since every session reuses them."""
    blocks = chunk_count(count, _GENERATOR_BLOCK)
    return b"".join(_generator_block(k) for k in range(blocks))[: count * ELEMENT_BYTES]


def seed_u(ctx: bytes, tweaked: bytes, h: bytes, blinded: bytes, reencrypted: bytes, commitments: bytes) -> bytes:
    """``SHA-512(U_PREFIX || I2OSP(len(ctx), 2) || ctx || T || H || B || a'_1 || b'_1 .. || c_1 ..)``."""
    if len(ctx) >= 2**16:
        raise ShuffleProofError("shuffle proof: ctx longer than 65535 bytes")
    data = U_PREFIX + i2osp(len(ctx), 2) + ctx + tweaked + h + blinded + reencrypted + commitments
    return hashlib.sha512(data).digest()


def challenge_u(engine: ShuffleEngine, seed: bytes, n: int) -> list[bytes]:
    """``u_j = HashToScalar(seed_u || I2OSP(j, 4))`` for ``j = 1..n`` (list index ``j - 1``), in one batch."""
    scalars = engine.hash_to_scalars([seed + i2osp(j, 4) for j in range(1, n + 1)], SCALAR_DST)
    return [scalars[i : i + SCALAR_BYTES] for i in range(0, len(scalars), SCALAR_BYTES)]


def challenge_c(seed: bytes, chain: bytes, header_commitments: bytes, t_hats: bytes) -> bytes:
    """``c = HashToScalar(SHA-512(C_PREFIX || seed_u || c^_1.. || t1 || t2 || t3 || t4a || t4b || t^_1..))``."""
    return hash_to_scalar(hashlib.sha512(C_PREFIX + seed + chain + header_commitments + t_hats).digest())


class ShuffleEngine(Protocol):
    """The batch arithmetic the prover and verifier use (``crypto.batch.BatchEngine`` provides it)."""

    def multiply(self, scalars: bytes, elements: bytes) -> bytes: ...

    def add(self, p: bytes, q: bytes, *, subtract: bool = False) -> bytes: ...

    def msm(self, scalars: bytes, elements: bytes) -> bytes: ...

    def first_invalid(self, elements: bytes) -> int: ...

    def hash_to_scalars(self, inputs: Sequence[bytes], dst: bytes) -> bytes: ...

    def compute_composites(
        self, mode: Mode, b: bytes, c: bytes, d: bytes, k: bytes | None = None
    ) -> tuple[bytes, bytes]: ...


def columns(*parts: bytes) -> bytes:
    """Row ``i`` of the result is the ``i``-th 32-byte item of every part, side by side (records, pairs)."""
    n = len(parts[0]) // 32
    return np.hstack([np.frombuffer(p, dtype=np.uint8).reshape(n, 32) for p in parts]).tobytes()
