"""Cross-check the DLEQ proofs against the pure-Python oracle (no libsodium on that side).

The oracle's point arithmetic (``tests/helpers/oracle_ristretto255.py``) recomputes RFC 9497
section 2.2 from the pseudo-code: the composites, the challenge and the verification
equation, for VOPRF and POPRF batches produced by blindmatch; and it produces a proof
with a fixed nonce that must equal blindmatch's byte for byte.
"""

from __future__ import annotations

import hashlib
import random

from helpers import oracle_ristretto255 as oracle

from blindmatch.crypto import dleq, group, poprf, voprf
from blindmatch.crypto.modes import POPRF, VOPRF, Mode


def _lp(data: bytes) -> bytes:
    return len(data).to_bytes(2, "big") + data


def _h2s(mode: Mode, msg: bytes) -> int:
    return oracle.hash_to_scalar(msg, b"HashToScalar-" + mode.context_string)


def _oracle_composites(mode: Mode, b: bytes, cs: list[bytes], ds: list[bytes]) -> tuple[oracle.Point, oracle.Point]:
    seed = hashlib.sha512(_lp(b) + _lp(b"Seed-" + mode.context_string)).digest()
    m = z = oracle.IDENTITY
    for i, (c, d) in enumerate(zip(cs, ds, strict=True)):
        weight = _h2s(mode, _lp(seed) + i.to_bytes(2, "big") + _lp(c) + _lp(d) + b"Composite")
        m = oracle.point_add(oracle.scalar_mult(weight, oracle.decode(c)), m)
        z = oracle.point_add(oracle.scalar_mult(weight, oracle.decode(d)), z)
    return m, z


def _oracle_challenge(mode: Mode, b: bytes, points: list[oracle.Point]) -> int:
    return _h2s(mode, b"".join(_lp(x) for x in [b, *(oracle.encode(p) for p in points)]) + b"Challenge")


def _oracle_verify(mode: Mode, b: bytes, cs: list[bytes], ds: list[bytes], proof: bytes) -> bool:
    m, z = _oracle_composites(mode, b, cs, ds)
    c, s = oracle.deserialize_scalar(proof[:32]), oracle.deserialize_scalar(proof[32:])
    a = oracle.decode(voprf.GENERATOR)
    t2 = oracle.point_add(oracle.scalar_mult(s, a), oracle.scalar_mult(c, oracle.decode(b)))
    t3 = oracle.point_add(oracle.scalar_mult(s, m), oracle.scalar_mult(c, z))
    return _oracle_challenge(mode, b, [m, z, t2, t3]) == c


def _oracle_prove(mode: Mode, k: int, b: bytes, cs: list[bytes], ds: list[bytes], r: int) -> bytes:
    m, z = _oracle_composites(mode, b, cs, ds)
    t2 = oracle.scalar_mult(r, oracle.decode(voprf.GENERATOR))
    t3 = oracle.scalar_mult(r, m)
    c = _oracle_challenge(mode, b, [m, z, t2, t3])
    return oracle.scalar_to_bytes(c) + oracle.scalar_to_bytes(r - c * k)


def test_generator_is_rfc9496_base_point() -> None:
    # RFC 9496 Appendix A.1, the first multiple of the generator.
    assert voprf.GENERATOR.hex() == "e2f2ae0a6abc4e71a884a961c500515f58e30b6aa582dd8db6a65945e08d2d76"


def _split(data: bytes) -> list[bytes]:
    return [data[i : i + 32] for i in range(0, len(data), 32)]


def test_voprf_batch_proof_agrees_with_oracle() -> None:
    rng = random.Random(11)
    sk, pk = voprf.derive_key_pair(rng.randbytes(32), b"oracle")
    blinded = b"".join(voprf.blind(rng.randbytes(9))[1] for _ in range(3))
    nonce = group.scalar_from_uniform(rng.randbytes(64))
    evaluated, proof = voprf.blind_evaluate_batch(sk, pk, blinded, nonce)
    assert _oracle_verify(VOPRF, pk, _split(blinded), _split(evaluated), proof)
    k = int.from_bytes(sk, "little")
    assert _oracle_prove(VOPRF, k, pk, _split(blinded), _split(evaluated), int.from_bytes(nonce, "little")) == proof
    wrong = _split(evaluated)
    wrong[1] = evaluated[:32]
    assert not _oracle_verify(VOPRF, pk, _split(blinded), wrong, proof)


def test_poprf_batch_proof_agrees_with_oracle() -> None:
    rng = random.Random(12)
    sk, pk = poprf.derive_key_pair(rng.randbytes(32), b"oracle")
    info = b"case 2026-0042"
    blinded = b"".join(poprf.blind(rng.randbytes(5), info, pk)[1] for _ in range(3))
    evaluated, proof = poprf.blind_evaluate_batch(sk, blinded, info)
    tweaked = poprf.tweaked_key(pk, info)
    assert _oracle_verify(POPRF, tweaked, _split(evaluated), _split(blinded), proof)
    assert not _oracle_verify(POPRF, pk, _split(evaluated), _split(blinded), proof)
    dleq.verify_proof(POPRF, voprf.GENERATOR, tweaked, evaluated, blinded, proof)
