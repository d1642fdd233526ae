"""The ristretto255 group (RFC 9496) as RFC 9497 uses it, backed by libsodium through rbcl.

Elements and scalars are 32-byte strings in their canonical encodings. Everything that
comes from the wire goes through :func:`decode_element` or :func:`decode_scalar`, which
reject non-canonical encodings, the identity element and the zero scalar.
"""

from __future__ import annotations

import hmac

from blindmatch.crypto.sodium import rbcl

ELEMENT_BYTES = 32
SCALAR_BYTES = 32
IDENTITY = bytes(ELEMENT_BYTES)
# The group order L = 2^252 + 27742317777372353535851937790883648493 (RFC 9496 section 4.1).
ORDER = 2**252 + 27742317777372353535851937790883648493


class InvalidElementError(ValueError):
    """A byte string is not the canonical encoding of a non-identity ristretto255 element."""


class InvalidScalarError(ValueError):
    """A byte string is not the canonical encoding of a non-zero scalar below the group order."""


def decode_element(data: bytes) -> bytes:
    """Validate an element received from a peer (RFC 9497 section 2.1 DeserializeElement)."""
    if len(data) != ELEMENT_BYTES:
        raise InvalidElementError(f"element must be {ELEMENT_BYTES} bytes, got {len(data)}")
    if data[31] & 0x80:
        # RFC 9496 rejects a set top bit; the libsodium in rbcl (1.0.18) silently ignores it,
        # which would give one element two accepted encodings.
        raise InvalidElementError("not a canonical ristretto255 encoding (top bit set)")
    if hmac.compare_digest(data, IDENTITY):
        raise InvalidElementError("identity element is not allowed")
    if not rbcl.crypto_core_ristretto255_is_valid_point(data):
        raise InvalidElementError("not a canonical ristretto255 encoding")
    return data


def decode_scalar(data: bytes) -> bytes:
    """Validate a scalar (RFC 9497 DeserializeScalar): canonical, i.e. below L, and non-zero."""
    if len(data) != SCALAR_BYTES:
        raise InvalidScalarError(f"scalar must be {SCALAR_BYTES} bytes, got {len(data)}")
    value = int.from_bytes(data, "little")
    if value >= ORDER:
        raise InvalidScalarError("scalar is not reduced modulo the group order")
    if value == 0:
        raise InvalidScalarError("zero scalar is not allowed")
    return data


def scalar_from_uniform(uniform64: bytes) -> bytes:
    """Reduce 64 uniform bytes, read little-endian, modulo L (RFC 9497 HashToScalar's last step)."""
    return rbcl.crypto_core_ristretto255_scalar_reduce(uniform64)


def element_from_uniform(uniform64: bytes) -> bytes:
    """RFC 9496 hash-to-group one-way map applied to 64 uniform bytes."""
    return rbcl.crypto_core_ristretto255_from_hash(uniform64)


def random_scalar() -> bytes:
    """A uniformly random non-zero scalar from libsodium's CSPRNG."""
    return rbcl.crypto_core_ristretto255_scalar_random()


def invert(scalar: bytes) -> bytes:
    return rbcl.crypto_core_ristretto255_scalar_invert(scalar)


def batch_invert(scalars: bytes) -> bytes:
    """Inverses of ``n`` concatenated non-zero scalars with one inversion (Montgomery's trick).

    An inversion costs about half a scalar multiplication; this replaces ``n`` of them
    by one plus ``3(n - 1)`` multiplications modulo L.
    """
    n = len(scalars) // SCALAR_BYTES
    if n == 0:
        return b""
    mul = rbcl.crypto_core_ristretto255_scalar_mul
    items = [scalars[i * SCALAR_BYTES : (i + 1) * SCALAR_BYTES] for i in range(n)]
    prefix = [items[0]]
    for item in items[1:]:
        prefix.append(mul(prefix[-1], item))
    if not any(prefix[-1]):
        raise InvalidScalarError("cannot invert a batch containing the zero scalar")
    inv = rbcl.crypto_core_ristretto255_scalar_invert(prefix[-1])
    out = [b""] * n
    for i in range(n - 1, 0, -1):
        out[i] = mul(inv, prefix[i - 1])
        inv = mul(inv, items[i])
    out[0] = inv
    return b"".join(out)


def scalar_mult(scalar: bytes, element: bytes) -> bytes:
    """``scalar * element``; libsodium rejects a non-canonical element or an identity result.

    A valid non-zero scalar times a non-identity element of prime order is never the
    identity, so a failure here always means that ``element`` was invalid.
    """
    if len(element) != ELEMENT_BYTES or element[31] & 0x80:
        raise InvalidElementError("not a canonical non-identity ristretto255 element")
    try:
        return rbcl.crypto_scalarmult_ristretto255(scalar, element)
    except RuntimeError:
        raise InvalidElementError("not a canonical non-identity ristretto255 element") from None


def add(p: bytes, q: bytes) -> bytes:
    """``p + q`` on encodings (the identity, 32 zero bytes, allowed on either side)."""
    return rbcl.crypto_core_ristretto255_add(p, q)


def sub(p: bytes, q: bytes) -> bytes:
    """``p - q`` on encodings; the result may be the identity."""
    return rbcl.crypto_core_ristretto255_sub(p, q)


def base_mult(scalar: bytes) -> bytes:
    return rbcl.crypto_scalarmult_ristretto255_base(scalar)
