"""RFC 9497 section 3.3.2 VOPRF mode (0x01) of ristretto255-SHA512, single-element and batch.

The server proves with one DLEQ proof per batch that every evaluated element used the
key behind its public key ``pkS``; the client verifies the proof before it unblinds.
The batch functions here run on one thread; :class:`blindmatch.crypto.batch.BatchEngine`
offers the same computation spread over every core (``blind_evaluate_proven``,
``verify_and_unblind``).

Lists of elements are concatenated 32-byte encodings, as everywhere in this package.
"""

from __future__ import annotations

from collections.abc import Sequence

from blindmatch.crypto import dleq, group, oprf
from blindmatch.crypto.group import ELEMENT_BYTES
from blindmatch.crypto.modes import VOPRF

MODE = VOPRF
CONTEXT_STRING = VOPRF.context_string
GENERATOR = group.base_mult((1).to_bytes(32, "little"))


def load_public_key(pk: bytes, *, what: str = "server public key") -> bytes:
    """A peer's public key: canonical, non-identity ristretto255 (RFC 9496 decoding)."""
    try:
        return group.decode_element(pk)
    except group.InvalidElementError as exc:
        raise group.InvalidElementError(f"{what}: {exc}") from None


def derive_key_pair(seed: bytes, info: bytes) -> tuple[bytes, bytes]:
    return VOPRF.derive_key_pair(seed, info)


def input_element(data: bytes) -> bytes:
    """HashToGroup in VOPRF mode; rejects over-long inputs and the (negligible) identity."""
    if len(data) > oprf.MAX_INPUT_BYTES:
        raise oprf.InvalidInputError(f"input longer than {oprf.MAX_INPUT_BYTES} bytes")
    element = VOPRF.hash_to_group(data)
    if element == group.IDENTITY:
        raise oprf.InvalidInputError("input maps to the identity element")
    return element


def blind(data: bytes, blind_scalar: bytes | None = None) -> tuple[bytes, bytes]:
    """Blind: ``(blind, blindedElement)``; ``blind_scalar`` fixes the randomness for tests."""
    r = group.random_scalar() if blind_scalar is None else group.decode_scalar(blind_scalar)
    return r, group.scalar_mult(r, input_element(data))


def blind_evaluate_batch(sk: bytes, pk: bytes, blinded: bytes, r: bytes | None = None) -> tuple[bytes, bytes]:
    """BlindEvaluate over a batch: ``(evaluated elements, one proof)``; ``r`` fixes the proof nonce."""
    sk = group.decode_scalar(sk)
    evaluated = b"".join(
        oprf.blind_evaluate(sk, blinded[i : i + ELEMENT_BYTES]) for i in range(0, len(blinded), ELEMENT_BYTES)
    )
    return evaluated, dleq.generate_proof(VOPRF, sk, GENERATOR, pk, blinded, evaluated, r)


def blind_evaluate(sk: bytes, pk: bytes, blinded_element: bytes, r: bytes | None = None) -> tuple[bytes, bytes]:
    """RFC 9497 VOPRF BlindEvaluate of one element: ``(evaluatedElement, proof)``."""
    return blind_evaluate_batch(sk, pk, group.decode_element(blinded_element), r)


def finalize_batch(
    inputs: Sequence[bytes], blinds: bytes, evaluated: bytes, blinded: bytes, pk: bytes, proof: bytes
) -> list[bytes]:
    """Finalize over a batch: verify the one proof, then unblind and hash every element."""
    pk = load_public_key(pk)
    dleq.verify_proof(VOPRF, GENERATOR, pk, blinded, evaluated, proof)
    return [
        oprf.finalize(data, blinds[i * 32 : (i + 1) * 32], evaluated[i * 32 : (i + 1) * 32])
        for i, data in enumerate(inputs)
    ]


def finalize(data: bytes, blind_scalar: bytes, evaluated: bytes, blinded: bytes, pk: bytes, proof: bytes) -> bytes:
    """RFC 9497 VOPRF Finalize of one element; raises :class:`dleq.ProofError` on a bad proof."""
    return finalize_batch([data], blind_scalar, evaluated, blinded, pk, proof)[0]


def evaluate(sk: bytes, data: bytes) -> bytes:
    """RFC 9497 VOPRF Evaluate: the PRF output computed by the key holder, no proof."""
    return oprf.finalize_unblinded(data, group.scalar_mult(group.decode_scalar(sk), input_element(data)))
