"""RFC 9497 section 3.3.3 POPRF mode (0x02) of ristretto255-SHA512, single-element and batch.

A public input ``info`` (for instance a session's purpose or date) tweaks the key:
``t = skS + HashToScalar("Info" || len(info) || info)`` and the server evaluates with
``t^-1``, proving with one DLEQ proof per batch that it used ``t`` behind the tweaked
key ``t * G = pkS + m * G``, which the client computes from ``pkS`` alone. Outputs for
different ``info`` values are unlinkable. The proof's lists are swapped with respect to
VOPRF (C = evaluated, D = blinded) because ``t * evaluated = blinded``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from blindmatch.crypto import dleq, group, oprf
from blindmatch.crypto.group import ELEMENT_BYTES
from blindmatch.crypto.modes import POPRF, length_prefixed
from blindmatch.crypto.sodium import rbcl
from blindmatch.crypto.voprf import GENERATOR, load_public_key

MODE = POPRF
CONTEXT_STRING = POPRF.context_string


class InverseError(ValueError):
    """RFC 9497 InverseError: ``skS + m`` is zero, so the tweaked key has no inverse."""


def _info_scalar(info: bytes) -> bytes:
    if len(info) > oprf.MAX_INPUT_BYTES:
        raise oprf.InvalidInputError(f"info longer than {oprf.MAX_INPUT_BYTES} bytes")
    return POPRF.hash_to_scalar(b"Info" + length_prefixed(info))


def derive_key_pair(seed: bytes, info: bytes) -> tuple[bytes, bytes]:
    return POPRF.derive_key_pair(seed, info)


def tweaked_key(pk: bytes, info: bytes) -> bytes:
    """The client's ``tweakedKey = HashToScalar(framedInfo) * G + pkS``; identity refused."""
    pk = load_public_key(pk)
    m = _info_scalar(info)
    tweaked = pk if not any(m) else rbcl.crypto_core_ristretto255_add(group.base_mult(m), pk)
    if tweaked == group.IDENTITY:
        raise oprf.InvalidInputError("public key and info give the identity as tweaked key")
    return tweaked


def tweaked_secret(sk: bytes, info: bytes) -> bytes:
    """The server's ``t = skS + m``; raises :class:`InverseError` if it is zero."""
    t = rbcl.crypto_core_ristretto255_scalar_add(group.decode_scalar(sk), _info_scalar(info))
    if not any(t):
        raise InverseError("skS + HashToScalar(info) is zero")
    return t


def input_element(data: bytes) -> bytes:
    if len(data) > oprf.MAX_INPUT_BYTES:
        raise oprf.InvalidInputError(f"input longer than {oprf.MAX_INPUT_BYTES} bytes")
    element = POPRF.hash_to_group(data)
    if element == group.IDENTITY:
        raise oprf.InvalidInputError("input maps to the identity element")
    return element


def blind(data: bytes, info: bytes, pk: bytes, blind_scalar: bytes | None = None) -> tuple[bytes, bytes, bytes]:
    """Blind: ``(blind, blindedElement, tweakedKey)``; ``blind_scalar`` fixes randomness for tests."""
    tweaked = tweaked_key(pk, info)
    r = group.random_scalar() if blind_scalar is None else group.decode_scalar(blind_scalar)
    return r, group.scalar_mult(r, input_element(data)), tweaked


def blind_evaluate_batch(sk: bytes, blinded: bytes, info: bytes, r: bytes | None = None) -> tuple[bytes, bytes]:
    """BlindEvaluate over a batch: ``(evaluated elements, one proof)``; ``r`` fixes the nonce."""
    t = tweaked_secret(sk, info)
    t_inverse = group.invert(t)
    evaluated = b"".join(
        oprf.blind_evaluate(t_inverse, blinded[i : i + ELEMENT_BYTES]) for i in range(0, len(blinded), ELEMENT_BYTES)
    )
    proof = dleq.generate_proof(POPRF, t, GENERATOR, group.base_mult(t), evaluated, blinded, r)
    return evaluated, proof


def blind_evaluate(sk: bytes, blinded_element: bytes, info: bytes, r: bytes | None = None) -> tuple[bytes, bytes]:
    """RFC 9497 POPRF BlindEvaluate of one element: ``(evaluatedElement, proof)``."""
    return blind_evaluate_batch(sk, group.decode_element(blinded_element), info, r)


def finalize_unblinded(data: bytes, info: bytes, unblinded: bytes) -> bytes:
    """Finalize's hash: ``Hash(len(input)||input||len(info)||info||len(N)||N||"Finalize")``."""
    if len(data) > oprf.MAX_INPUT_BYTES or len(info) > oprf.MAX_INPUT_BYTES:
        raise oprf.InvalidInputError(f"input or info longer than {oprf.MAX_INPUT_BYTES} bytes")
    transcript = length_prefixed(data) + length_prefixed(info) + length_prefixed(unblinded) + b"Finalize"
    return hashlib.sha512(transcript).digest()


def finalize_batch(
    inputs: Sequence[bytes], blinds: bytes, evaluated: bytes, blinded: bytes, proof: bytes, info: bytes, tweaked: bytes
) -> list[bytes]:
    """Finalize over a batch: verify the one proof against ``tweaked``, unblind, hash."""
    tweaked = load_public_key(tweaked, what="tweaked key")
    dleq.verify_proof(POPRF, GENERATOR, tweaked, evaluated, blinded, proof)
    return [
        finalize_unblinded(data, info, oprf.unblind(blinds[i * 32 : (i + 1) * 32], evaluated[i * 32 : (i + 1) * 32]))
        for i, data in enumerate(inputs)
    ]


def finalize(
    data: bytes, blind_scalar: bytes, evaluated: bytes, blinded: bytes, proof: bytes, info: bytes, tweaked: bytes
) -> bytes:
    """RFC 9497 POPRF Finalize of one element; raises :class:`dleq.ProofError` on a bad proof."""
    return finalize_batch([data], blind_scalar, evaluated, blinded, proof, info, tweaked)[0]


def evaluate(sk: bytes, data: bytes, info: bytes) -> bytes:
    """RFC 9497 POPRF Evaluate: ``t^-1 * HashToGroup(input)`` hashed with ``info``, no proof."""
    t_inverse = group.invert(tweaked_secret(sk, info))
    return finalize_unblinded(data, info, group.scalar_mult(t_inverse, input_element(data)))
