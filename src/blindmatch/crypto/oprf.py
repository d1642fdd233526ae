"""RFC 9497 OPRF mode (mode 0x00) for the ristretto255-SHA512 suite.

Function names follow the RFC. Scalars and elements are canonical 32-byte encodings;
randomness is supplied by the caller where a test needs determinism.
"""

from __future__ import annotations

import hashlib

from blindmatch.crypto import group
from blindmatch.crypto.modes import OPRF
from blindmatch.crypto.modes import DeriveKeyPairError as DeriveKeyPairError  # re-exported

MODE_OPRF = OPRF.code
# RFC 9497 section 3.1: "OPRFV1-" || I2OSP(mode, 1) || "-" || identifier
CONTEXT_STRING = OPRF.context_string
HASH_TO_GROUP_DST = OPRF.hash_to_group_dst
HASH_TO_SCALAR_DST = b"HashToScalar-" + CONTEXT_STRING
MAX_INPUT_BYTES = 2**16 - 1  # inputs are length-prefixed with two bytes in Finalize


class InvalidInputError(ValueError):
    """RFC 9497 InvalidInputError: the input maps to the identity element or is too long."""


def _i2osp(value: int, length: int) -> bytes:
    return value.to_bytes(length, "big")


def hash_to_group(data: bytes) -> bytes:
    """RFC 9497 HashToGroup: RFC 9380 expand_message_xmd then the RFC 9496 one-way map."""
    return OPRF.hash_to_group(data)


def hash_to_scalar(data: bytes, dst: bytes = HASH_TO_SCALAR_DST) -> bytes:
    return OPRF.hash_to_scalar(data, dst)


def derive_key_pair(seed: bytes, info: bytes) -> tuple[bytes, bytes]:
    """RFC 9497 section 3.2.1 DeriveKeyPair: deterministic (skS, pkS) from a 32-byte seed."""
    return OPRF.derive_key_pair(seed, info)


def public_key(sk: bytes) -> bytes:
    return group.base_mult(group.decode_scalar(sk))


def _input_element(data: bytes) -> bytes:
    if len(data) > MAX_INPUT_BYTES:
        raise InvalidInputError(f"input longer than {MAX_INPUT_BYTES} bytes")
    element = hash_to_group(data)
    if element == group.IDENTITY:
        raise InvalidInputError("input maps to the identity element")
    return element


def blind(data: bytes, blind_scalar: bytes | None = None) -> tuple[bytes, bytes]:
    """RFC 9497 Blind: returns ``(blind, blindedElement)``; ``blind_scalar`` fixes randomness for tests."""
    r = group.random_scalar() if blind_scalar is None else group.decode_scalar(blind_scalar)
    return r, group.scalar_mult(r, _input_element(data))


def blind_evaluate(sk: bytes, blinded_element: bytes) -> bytes:
    """RFC 9497 BlindEvaluate; rejects a non-canonical or identity ``blinded_element``."""
    return group.scalar_mult(group.decode_scalar(sk), group.decode_element(blinded_element))


def unblind(blind_scalar: bytes, evaluated_element: bytes) -> bytes:
    """The first step of Finalize: ``blind^-1 * evaluatedElement``, validating the element."""
    element = group.decode_element(evaluated_element)
    return group.scalar_mult(group.invert(group.decode_scalar(blind_scalar)), element)


def finalize_unblinded(data: bytes, unblinded_element: bytes) -> bytes:
    """RFC 9497 Finalize's hash: Hash(len(input) || input || len(element) || element || "Finalize")."""
    if len(data) > MAX_INPUT_BYTES:
        raise InvalidInputError(f"input longer than {MAX_INPUT_BYTES} bytes")
    return hashlib.sha512(
        _i2osp(len(data), 2) + data + _i2osp(len(unblinded_element), 2) + unblinded_element + b"Finalize"
    ).digest()


def finalize(data: bytes, blind_scalar: bytes, evaluated_element: bytes) -> bytes:
    """RFC 9497 Finalize."""
    return finalize_unblinded(data, unblind(blind_scalar, evaluated_element))


def evaluate(sk: bytes, data: bytes) -> bytes:
    """RFC 9497 Evaluate: the server-side PRF output without blinding."""
    return finalize_unblinded(data, group.scalar_mult(group.decode_scalar(sk), _input_element(data)))
