"""The requester's side of the shuffled evaluation (SPEC section 6.1): CheckShuffleProof, then two DLEQs per chunk.

Everything here is public, so the equations run on the variable-time MSM. The checks
run in SPEC's order and the first failure raises :class:`ShuffleProofError` naming it:
0. lengths and encodings; 1. the generators and challenges are recomputed; 2. the
shuffle equations (Haenni et al., FC 2017, CheckShuffleProof); 3. every chunk's
exponentiation proof; 4. every chunk's decryption proof (RFC 9497 VerifyProof).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import numpy as np

from blindmatch.crypto import dleq, group
from blindmatch.crypto.group import ELEMENT_BYTES, ORDER, SCALAR_BYTES
from blindmatch.crypto.modes import POPRF
from blindmatch.crypto.shuffle import (
    CHUNK_PROOF_BYTES,
    HEADER_BYTES,
    RECORD_BYTES,
    ShuffleEngine,
    ShuffleProof,
    ShuffleProofError,
    challenge_c,
    challenge_u,
    check_shape,
    chunk_count,
    generators,
    seed_u,
)
from blindmatch.crypto.voprf import GENERATOR

RECORD_ELEMENTS = ("a'", "b'", "a''", "b''", "c", "c^", "t^")
RECORD_SCALARS = ("s^", "s'")
HEADER_ELEMENTS = ("H", "t1", "t2", "t3", "t4a", "t4b")
BATCH_WEIGHT_BITS = 128  # small-exponent batch verification (Bellare-Garay-Rabin 1998)


@dataclass(frozen=True)
class _Parsed:
    """A proof after check 0: every element decoded, every scalar canonical (as integers)."""

    header: dict[str, bytes]
    responses: list[int]  # s1..s4
    column: dict[str, bytes]  # each record element field over all positions, concatenated
    s_hat: list[int]
    s_prime: list[int]
    mask: bytes  # b''_i - Z_i


def verify(engine: ShuffleEngine, tweaked: bytes, blinded: bytes, outputs: bytes, proof: ShuffleProof, ctx: bytes) -> None:
    """Raise :class:`ShuffleProofError` unless ``outputs`` are ``t^-1 * B_pi(i)`` for some permutation ``pi``."""
    p = _parse(engine, tweaked, blinded, outputs, proof)
    n = len(blinded) // ELEMENT_BYTES
    gens = generators(n + 1)
    col = p.column
    records = np.frombuffer(proof.records, dtype=np.uint8).reshape(n, RECORD_BYTES)
    seed = seed_u(ctx, tweaked, p.header["H"], blinded, records[:, 0:64].tobytes(), col["c"])
    u = [int.from_bytes(x, "little") for x in challenge_u(engine, seed, n)]
    header_ts = b"".join(p.header[name] for name in HEADER_ELEMENTS[1:])
    c = int.from_bytes(challenge_c(seed, col["c^"], header_ts, col["t^"]), "little")
    _check_shuffle(engine, p, gens, u, c, blinded)
    chunks = chunk_count(n, proof.chunk)
    for k in range(chunks):
        lo, hi = k * proof.chunk, min(n, (k + 1) * proof.chunk)
        evaluated, reencrypted = records[lo:hi, 64:128].tobytes(), records[lo:hi, 0:64].tobytes()
        _check_dleq(engine, tweaked, evaluated, reencrypted, proof, 2 * k, f"chunk {k}: exponentiation proof")
    for k in range(chunks):
        lo, hi = k * proof.chunk * ELEMENT_BYTES, min(n, (k + 1) * proof.chunk) * ELEMENT_BYTES
        _check_dleq(engine, p.header["H"], col["a''"][lo:hi], p.mask[lo:hi], proof, 2 * k + 1,
                    f"chunk {k}: decryption proof")


def _elements(engine: ShuffleEngine, data: bytes, what: str) -> None:
    """ShuffleProofError naming ``what`` (``{}`` becomes the index) unless every element decodes."""
    bad = engine.first_invalid(data)
    if bad >= 0:
        raise ShuffleProofError(f"{what.format(bad)}: not a canonical non-identity ristretto255 element")


def _canonical(data: bytes, what: str, first: int = 0) -> list[int]:
    """The scalars as integers; ShuffleProofError naming ``what`` (``{}``: index from ``first``) unless all are below L."""
    values = [int.from_bytes(data[i : i + SCALAR_BYTES], "little") for i in range(0, len(data), SCALAR_BYTES)]
    bad = next((i for i, v in enumerate(values) if v >= ORDER), -1)
    if bad >= 0:
        raise ShuffleProofError(f"{what.format(bad + first)}: scalar not reduced modulo the group order")
    return values


def _parse(engine: ShuffleEngine, tweaked: bytes, blinded: bytes, outputs: bytes, proof: ShuffleProof) -> _Parsed:
    """Check 0: lengths, then every element and scalar of the statement and the proof."""
    if len(blinded) % ELEMENT_BYTES:
        raise ShuffleProofError(f"blinded batch length {len(blinded)} is not a multiple of {ELEMENT_BYTES}")
    n = len(blinded) // ELEMENT_BYTES
    check_shape(n, proof.chunk)
    sizes = {"outputs": (outputs, n * ELEMENT_BYTES), "header": (proof.header, HEADER_BYTES),
             "records": (proof.records, n * RECORD_BYTES),
             "chunk proofs": (proof.chunk_proofs, chunk_count(n, proof.chunk) * CHUNK_PROOF_BYTES)}
    for name, (value, size) in sizes.items():
        if len(value) != size:
            raise ShuffleProofError(f"shuffle proof: {name} must be {size} bytes for {n} elements, got {len(value)}")
    if len(tweaked) != ELEMENT_BYTES:
        raise ShuffleProofError(f"tweaked key must be {ELEMENT_BYTES} bytes, got {len(tweaked)}")
    _elements(engine, tweaked, "tweaked key")
    _elements(engine, blinded, "blinded element {}")
    header = {name: proof.header[32 * i : 32 * i + 32] for i, name in enumerate(HEADER_ELEMENTS)}
    for name, value in header.items():
        _elements(engine, value, f"shuffle proof header: {name}")
    responses = _canonical(proof.header[192:], "shuffle proof header: s{}", first=1)
    records = np.frombuffer(proof.records, dtype=np.uint8).reshape(n, RECORD_BYTES)
    column = {name: records[:, 32 * i : 32 * i + 32].tobytes() for i, name in enumerate(RECORD_ELEMENTS + RECORD_SCALARS)}
    for name in RECORD_ELEMENTS:
        _elements(engine, column[name], "position {}: " + name)
    _elements(engine, outputs, "position {}: output Z")
    s_hat = _canonical(column["s^"], "position {}: s^")
    s_prime = _canonical(column["s'"], "position {}: s'")
    for k in range(2 * chunk_count(n, proof.chunk)):
        what = f"chunk {k // 2}: {'decryption' if k % 2 else 'exponentiation'} proof"
        for half in (0, 1):
            try:
                group.decode_scalar(proof.chunk_proofs[64 * k + 32 * half : 64 * k + 32 * half + 32])
            except group.InvalidScalarError as exc:
                raise ShuffleProofError(f"{what}: {'cs'[half]} {exc}") from None
    mask = engine.add(column["b''"], outputs, subtract=True)
    bad = next((i for i in range(n) if not any(mask[32 * i : 32 * i + 32])), -1)
    if bad >= 0:
        raise ShuffleProofError(f"position {bad}: b'' - Z is the identity")
    return _Parsed(header, responses, column, s_hat, s_prime, mask)


def _msm(engine: ShuffleEngine, scalars: list[int], elements: bytes) -> bytes:
    return engine.msm(b"".join((x % ORDER).to_bytes(SCALAR_BYTES, "little") for x in scalars), elements)


def _check_shuffle(engine: ShuffleEngine, p: _Parsed, gens: bytes, u: list[int], c: int, blinded: bytes) -> None:
    """Check 2, CheckShuffleProof's equations (SPEC 6.1), in the order t1, t2, t3, t4a, t4b, t^."""
    n = len(u)
    s1, s2, s3, s4 = p.responses
    col, h0, hs = p.column, gens[:ELEMENT_BYTES], gens[ELEMENT_BYTES:]
    prod_u = 1
    for u_j in u:
        prod_u = prod_u * u_j % ORDER
    equations = {
        "t1": ([s1] + [-c] * n + [c] * n, GENERATOR + col["c"] + hs),
        "t2": ([s2, -c, c * prod_u], GENERATOR + col["c^"][-ELEMENT_BYTES:] + h0),
        "t3": ([s3, *p.s_prime] + [-c * u_j for u_j in u], GENERATOR + hs + col["c"]),
        "t4a": ([*p.s_prime, -s4], col["a'"] + GENERATOR),
        "t4b": ([*p.s_prime, -s4] + [-c * u_j for u_j in u], col["b'"] + p.header["H"] + blinded),
    }
    for name, (scalars, elements) in equations.items():
        if _msm(engine, scalars, elements) != p.header[name]:
            raise ShuffleProofError(f"shuffle proof: {name} does not verify")
    # sum_i alpha_i (s^_i G + s'_i c^_{i-1} - c c^_i - t^_i) = O, with c^_0 = h_0: one MSM.
    alpha = [secrets.randbits(BATCH_WEIGHT_BITS) for _ in range(n)]
    previous = [a * s for a, s in zip(alpha, p.s_prime, strict=True)]  # weight of c^_{i-1}
    chain_weights = [previous[i + 1] - c * alpha[i] for i in range(n - 1)] + [-c * alpha[-1]]
    scalars = [sum(a * s for a, s in zip(alpha, p.s_hat, strict=True)), previous[0], *chain_weights]
    scalars += [-a for a in alpha]
    if _msm(engine, scalars, GENERATOR + h0 + col["c^"] + col["t^"]) != group.IDENTITY:
        raise ShuffleProofError("shuffle proof: t^ does not verify")


def _check_dleq(
    engine: ShuffleEngine, b: bytes, c: bytes, d: bytes, proof: ShuffleProof, index: int, what: str
) -> None:
    """Checks 3 and 4: RFC 9497 VerifyProof(G, b, c, d) of the chunk proof at ``index``."""
    m, z = engine.compute_composites(POPRF, b, c, d)
    try:
        dleq.verify_from_composites(POPRF, GENERATOR, b, m, z, proof.chunk_proofs[64 * index : 64 * index + 64],
                                    what=what)
    except dleq.ProofError:
        raise ShuffleProofError(f"{what} does not verify") from None
