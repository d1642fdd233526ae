"""RFC 9497 section 2.2 discrete-log-equality proofs, batched (one proof per batch).

A proof shows ``log_A(B) == log_C[i](D[i])`` for every ``i`` at once: both lists are
folded into composites ``M = sum d_i * C[i]`` and ``Z = sum d_i * D[i]`` with weights
``d_i = HashToScalar(seed || i || C[i] || D[i] || "Composite")``, and a Schnorr-style
proof ``(c, s)`` shows ``log_A(B) == log_M(Z)``. The prover knows ``k`` and uses
ComputeCompositesFast (``Z = k * M``); the verifier computes both sums.

The sums are split into index ranges so that :class:`blindmatch.crypto.batch.BatchEngine`
can compute partial sums on every core and add them at the end; :func:`composites` here
is the one-thread form of the same computation.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from blindmatch.crypto import group
from blindmatch.crypto.group import ELEMENT_BYTES, IDENTITY, SCALAR_BYTES, InvalidElementError
from blindmatch.crypto.modes import Mode, i2osp, length_prefixed
from blindmatch.crypto.sodium import rbcl

PROOF_BYTES = 2 * SCALAR_BYTES
MAX_BATCH = 2**16  # the element index is I2OSP(i, 2) in the composite transcript
_ZERO_SCALAR = bytes(SCALAR_BYTES)


class ProofError(ValueError):
    """A DLEQ proof did not verify: the evaluator did not use the key it committed to."""


def composite_seed(mode: Mode, b: bytes) -> bytes:
    """``seed = Hash(len(Bm) || Bm || len(seedDST) || seedDST)`` of ComputeComposites."""
    return hashlib.sha512(length_prefixed(b) + length_prefixed(b"Seed-" + mode.context_string)).digest()


def add(p: bytes, q: bytes) -> bytes:
    """Group addition on encodings; the 32 zero bytes encode the identity on either side."""
    if hmac.compare_digest(p, IDENTITY):
        return q
    if hmac.compare_digest(q, IDENTITY):
        return p
    return rbcl.crypto_core_ristretto255_add(p, q)


def _times(weight: bytes, element: bytes, index: int, what: str) -> bytes:
    if weight == _ZERO_SCALAR:  # probability 2^-252; 0 * X is the identity
        return IDENTITY
    try:
        return rbcl.crypto_scalarmult_ristretto255(weight, element)
    except RuntimeError:
        raise InvalidElementError(f"{what} element {index} is not a canonical non-identity ristretto255 element") from None


def partial_composites(
    mode: Mode, seed: bytes, c: bytes, d: bytes, start: int, stop: int, *, with_z: bool
) -> tuple[bytes, bytes]:
    """``(sum d_i C[i], sum d_i D[i])`` over ``start <= i < stop``; Z is IDENTITY unless ``with_z``."""
    m = z = IDENTITY
    prefix = length_prefixed(seed)
    for i in range(start, stop):
        ci = c[i * ELEMENT_BYTES : (i + 1) * ELEMENT_BYTES]
        di = d[i * ELEMENT_BYTES : (i + 1) * ELEMENT_BYTES]
        weight = mode.hash_to_scalar(prefix + i2osp(i, 2) + length_prefixed(ci) + length_prefixed(di) + b"Composite")
        m = add(m, _times(weight, ci, i, "C"))
        if with_z:
            z = add(z, _times(weight, di, i, "D"))
    return m, z


def check_batch(c: bytes, d: bytes) -> int:
    """The number of element pairs, after checking that the lists match and fit the transcript."""
    if len(c) != len(d) or len(c) % ELEMENT_BYTES:
        raise ValueError("C and D must hold the same number of 32-byte elements")
    n = len(c) // ELEMENT_BYTES
    if not 0 < n <= MAX_BATCH:
        raise ValueError(f"a proof covers 1 to {MAX_BATCH} elements, got {n}")
    return n


def composites(mode: Mode, b: bytes, c: bytes, d: bytes, k: bytes | None = None) -> tuple[bytes, bytes]:
    """ComputeComposites (``k`` None) or ComputeCompositesFast (``k`` given), one thread."""
    n = check_batch(c, d)
    m, z = partial_composites(mode, composite_seed(mode, b), c, d, 0, n, with_z=k is None)
    return (m, z) if k is None else (m, _mult_or_identity(k, m))


def _mult_or_identity(k: bytes, m: bytes) -> bytes:
    return IDENTITY if hmac.compare_digest(m, IDENTITY) else group.scalar_mult(k, m)


def challenge(mode: Mode, b: bytes, m: bytes, z: bytes, t2: bytes, t3: bytes) -> bytes:
    """``c = HashToScalar(len(Bm) || Bm || ... || len(a3) || a3 || "Challenge")``."""
    transcript = b"".join(length_prefixed(x) for x in (b, m, z, t2, t3)) + b"Challenge"
    return mode.hash_to_scalar(transcript)


def prove_from_composites(
    mode: Mode, k: bytes, a: bytes, b: bytes, m: bytes, z: bytes, r: bytes | None = None
) -> bytes:
    """GenerateProof after the composites: ``c || s`` with ``s = r - c * k``.

    ``r`` is the proof's random scalar, drawn with :mod:`secrets` unless a test fixes it.
    """
    r = _random_scalar() if r is None else group.decode_scalar(r)
    t2 = group.scalar_mult(r, a)
    t3 = _mult_or_identity(r, m)
    c = challenge(mode, b, m, z, t2, t3)
    s = rbcl.crypto_core_ristretto255_scalar_sub(r, rbcl.crypto_core_ristretto255_scalar_mul(c, k))
    return c + s


def verify_from_composites(mode: Mode, a: bytes, b: bytes, m: bytes, z: bytes, proof: bytes, *, what: str) -> None:
    """VerifyProof after the composites; raises :class:`ProofError` naming ``what``."""
    if len(proof) != PROOF_BYTES:
        raise ProofError(f"{what}: proof must be {PROOF_BYTES} bytes, got {len(proof)}")
    try:
        c = group.decode_scalar(proof[:SCALAR_BYTES])
        s = group.decode_scalar(proof[SCALAR_BYTES:])
    except group.InvalidScalarError as exc:
        raise ProofError(f"{what}: proof scalar invalid: {exc}") from None
    t2 = add(group.scalar_mult(s, a), group.scalar_mult(c, b))
    t3 = add(_mult_or_identity(s, m), _mult_or_identity(c, z))
    if not hmac.compare_digest(challenge(mode, b, m, z, t2, t3), c):
        raise ProofError(f"{what}: DLEQ proof does not verify; the evaluation did not use the committed key")


def generate_proof(mode: Mode, k: bytes, a: bytes, b: bytes, c: bytes, d: bytes, r: bytes | None = None) -> bytes:
    """RFC 9497 GenerateProof(k, A, B, C, D), one thread."""
    m, z = composites(mode, b, c, d, k)
    return prove_from_composites(mode, k, a, b, m, z, r)


def verify_proof(mode: Mode, a: bytes, b: bytes, c: bytes, d: bytes, proof: bytes, *, what: str = "batch") -> None:
    """RFC 9497 VerifyProof(A, B, C, D, proof), one thread; raises :class:`ProofError`."""
    m, z = composites(mode, b, c, d)
    verify_from_composites(mode, a, b, m, z, proof, what=what)


def _random_scalar() -> bytes:
    """A uniform non-zero scalar from :mod:`secrets`: 64 random bytes reduced modulo L."""
    while True:
        r = group.scalar_from_uniform(secrets.token_bytes(64))
        if any(r):
            return r
