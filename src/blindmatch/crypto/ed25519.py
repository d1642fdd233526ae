"""Strict Ed25519 (RFC 8032 with the strict checks of "Taming the many EdDSAs").

Plain RFC 8032 verification, as OpenSSL and therefore ``cryptography`` do it, accepts
public keys of small order: for the identity key (or any of the other seven small-order
points) the signature ``R = identity, S = 0`` verifies on *every* message. An official
or audit key like that would let anyone sign anything. Here:

- :func:`load_public_key_strict` refuses any key that is not the canonical encoding of
  a point of the prime-order subgroup (libsodium's ``crypto_core_ed25519_is_valid_point``:
  canonical, on the curve, not of small order, no small-order component). Honest key
  generation (``a * B``) only ever produces such keys.
- :func:`verify_strict` additionally refuses a non-canonical ``S >= L``, a non-canonical
  or small-order ``R``, and requires both libsodium's ``crypto_sign_verify_detached``
  (libsodium >= 1.0.16 rejects small-order R and non-canonical S itself, and uses the
  cofactorless equation) and ``cryptography``'s verification to accept.

No curve arithmetic is written here: the point checks are libsodium's.
"""

from __future__ import annotations

import ctypes

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from blindmatch.crypto.sodium import lib

PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64
FIELD_PRIME = 2**255 - 19
# The order L of the prime-order subgroup (RFC 8032 section 5.1).
GROUP_ORDER = 2**252 + 27742317777372353535851937790883648493

_is_valid_point = lib.crypto_core_ed25519_is_valid_point
_is_valid_point.argtypes = [ctypes.c_char_p]
_is_valid_point.restype = ctypes.c_int
_verify_detached = lib.crypto_sign_verify_detached
_verify_detached.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulonglong, ctypes.c_char_p]
_verify_detached.restype = ctypes.c_int


class WeakPublicKeyError(ValueError):
    """An Ed25519 public key is malformed, non-canonical or of (partly) small order."""


def _canonical_y(encoding: bytes) -> bool:
    """The encoded y coordinate is below p (RFC 8032 decoding step 1 done strictly)."""
    return int.from_bytes(encoding, "little") & ((1 << 255) - 1) < FIELD_PRIME


def is_strict_point(encoding: bytes) -> bool:
    """Canonical encoding of a point of the prime-order subgroup, not the identity."""
    return len(encoding) == PUBLIC_KEY_BYTES and _canonical_y(encoding) and _is_valid_point(encoding) == 1


def load_public_key_strict(raw: bytes, *, what: str) -> Ed25519PublicKey:
    """Load a 32-byte Ed25519 public key, refusing weak ones; ``what`` names it in errors.

    The caller passes what the key is (e.g. ``"verifier key 'holder.example/audit'"``);
    its callers add the file and the key's owner, so the error says which key was
    refused and why.
    """
    if len(raw) != PUBLIC_KEY_BYTES:
        raise WeakPublicKeyError(f"{what} must be {PUBLIC_KEY_BYTES} bytes, got {len(raw)}")
    if not _canonical_y(raw):
        raise WeakPublicKeyError(f"{what} is a non-canonical Ed25519 encoding (y >= 2^255 - 19)")
    if _is_valid_point(raw) != 1:
        raise WeakPublicKeyError(
            f"{what} is not an Ed25519 point of the prime-order subgroup "
            "(small-order or mixed-order point, or not on the curve); such a key accepts forged signatures"
        )
    return Ed25519PublicKey.from_public_bytes(raw)


def verify_strict(public_key: Ed25519PublicKey | bytes, signature: bytes, message: bytes) -> bool:
    """True iff ``signature`` is a strictly valid Ed25519 signature of ``message``."""
    raw = public_key if isinstance(public_key, bytes) else public_key.public_bytes_raw()
    if not is_strict_point(raw) or len(signature) != SIGNATURE_BYTES:
        return False
    r, s = signature[:32], signature[32:]
    if int.from_bytes(s, "little") >= GROUP_ORDER or not is_strict_point(r):
        return False
    if _verify_detached(signature, message, len(message), raw) != 0:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(raw).verify(signature, message)
    except InvalidSignature:
        return False
    return True
