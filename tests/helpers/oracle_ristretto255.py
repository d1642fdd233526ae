"""TEST-ONLY reference oracle: ristretto255 (RFC 9496) and OPRF(ristretto255, SHA-512) (RFC 9497).

.. warning::
   This module exists only so the test-suite can cross-check ``blindmatch.crypto``
   against an independent implementation. It is **not constant time**, it is slow
   (a scalar multiplication costs a few milliseconds), and it must never be imported
   by production code.

It is written straight from the RFC pseudo-code with Python integers only: no
libsodium, no rbcl, no third-party package, and nothing imported from ``blindmatch``.
``hashlib`` supplies SHA-512. Its own correctness is established by
:func:`helpers.oracle_vectors.self_check` (RFC 9496 Appendix A.1/A.2/A.3, RFC 9380
Appendix K.2, algebraic consistency) and by the RFC 9497 Appendix A.1.1 vectors checked in
``tests/test_crypto_oracle.py``.

Conventions: a field element is an ``int`` in ``[0, p)``; a group element is a tuple
``(X, Y, Z, T)`` of extended twisted-Edwards coordinates (x = X/Z, y = Y/Z, xy = T/Z) on
``-x^2 + y^2 = 1 + d x^2 y^2``; scalars are ``int`` in ``[0, L)``. Decoding failures raise
:class:`OracleDecodeError` (RFC 9496) or :class:`OracleInputError` (RFC 9497).
"""

from __future__ import annotations

import hashlib

Point = tuple[int, int, int, int]

# --------------------------------------------------------------------------------------
# RFC 9496 section 4.1: constants.
# --------------------------------------------------------------------------------------
P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = 37095705934669439343138083508754565189542113879843219016388785533085940283555
SQRT_M1 = 19681161376707505956807079304988542015446066515923890162744021073123829784752
SQRT_AD_MINUS_ONE = 25063068953384623474111414158702152701244531502492656460079210482610430750235
INVSQRT_A_MINUS_D = 54469307008909316920995813868745141605393597292927456921205312896311721017578
ONE_MINUS_D_SQ = 1159843021668779879193775521855586647937357759715417654439879720876111806838
D_MINUS_ONE_SQ = 40440834346308536858101042469323190826248399146238708352240133220865137265952

IDENTITY: Point = (0, 1, 1, 0)


class OracleDecodeError(ValueError):
    """RFC 9496 decode failure (or RFC 9497 DeserializeElement of the identity)."""


class OracleInputError(ValueError):
    """RFC 9497 InvalidInputError (input maps to the identity) or DeriveKeyPairError."""


# --------------------------------------------------------------------------------------
# RFC 9496 section 4.2: field helpers.
# --------------------------------------------------------------------------------------
def _inv(x: int) -> int:
    """Multiplicative inverse in GF(p) (Fermat)."""
    return pow(x, P - 2, P)


def is_negative(x: int) -> bool:
    """IS_NEGATIVE: the least significant bit of the canonical representative."""
    return (x % P) & 1 == 1


def ct_abs(x: int) -> int:
    """CT_ABS: the non-negative one of x and -x."""
    x %= P
    return (-x) % P if is_negative(x) else x


def sqrt_ratio_m1(u: int, v: int) -> tuple[bool, int]:
    """SQRT_RATIO_M1(u, v) of RFC 9496 section 4.2.

    Returns ``(True, +sqrt(u/v))`` if u/v is square, ``(True, 0)`` if u = 0,
    ``(False, 0)`` if v = 0 and u != 0, and ``(False, +sqrt(SQRT_M1*u/v))`` otherwise.
    """
    u %= P
    v %= P
    v3 = v * v % P * v % P
    v7 = v3 * v3 % P * v % P
    r = (u * v3) % P * pow(u * v7 % P, (P - 5) // 8, P) % P
    check = v * r % P * r % P
    correct_sign_sqrt = check == u
    flipped_sign_sqrt = check == (-u) % P
    flipped_sign_sqrt_i = check == (-u * SQRT_M1) % P
    if flipped_sign_sqrt or flipped_sign_sqrt_i:
        r = r * SQRT_M1 % P
    r = ct_abs(r)
    return (correct_sign_sqrt or flipped_sign_sqrt), r


# --------------------------------------------------------------------------------------
# Curve25519 (edwards25519) group law, a = -1.
# --------------------------------------------------------------------------------------
def point_add(p1: Point, p2: Point) -> Point:
    """Complete addition in extended coordinates (Hisil-Wong-Carter-Dawson 2008, a = -1)."""
    x1, y1, z1, t1 = p1
    x2, y2, z2, t2 = p2
    a = (y1 - x1) * (y2 - x2) % P
    b = (y1 + x1) * (y2 + x2) % P
    c = 2 * D * t1 * t2 % P
    dd = 2 * z1 * z2 % P
    e, f, g, h = b - a, dd - c, dd + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def point_neg(p1: Point) -> Point:
    x, y, z, t = p1
    return ((-x) % P, y, z, (-t) % P)


def scalar_mult(k: int, p1: Point) -> Point:
    """``k * p1`` by left-to-right double-and-add (k taken as a non-negative integer)."""
    if k < 0:
        raise ValueError("negative scalar")
    result = IDENTITY
    for bit in bin(k)[2:] if k else "":
        result = point_add(result, result)
        if bit == "1":
            result = point_add(result, p1)
    return result


def on_curve(p1: Point) -> bool:
    """Projective curve equation and the extended-coordinate invariant XY = ZT."""
    x, y, z, t = p1
    if z % P == 0:
        return False
    lhs = (-x * x + y * y) * z * z % P
    rhs = (z**4 + D * x * x % P * y * y) % P
    return lhs == rhs and (x * y - z * t) % P == 0


def _edwards_base_point() -> Point:
    """The Ed25519 base point (x, 4/5) with x non-negative, recovered from the curve equation.

    Computed here (not decoded from its ristretto255 encoding) so that reproducing the
    RFC 9496 encoding of B is a real test of :func:`encode`.
    """
    y = 4 * _inv(5) % P
    was_square, x = sqrt_ratio_m1(y * y - 1, D * y * y + 1)
    if not was_square:  # pragma: no cover - mathematically impossible
        raise AssertionError("base point recovery failed")
    return (x, y, 1, x * y % P)


BASE: Point = _edwards_base_point()


def equals(p1: Point, p2: Point) -> bool:
    """RFC 9496 section 4.3.3: equality of ristretto255 elements (not of curve points)."""
    x1, y1, _, _ = p1
    x2, y2, _, _ = p2
    return (x1 * y2 - y1 * x2) % P == 0 or (y1 * y2 - x1 * x2) % P == 0


# --------------------------------------------------------------------------------------
# RFC 9496 section 4.3: decode, encode, one-way map.
# --------------------------------------------------------------------------------------
def decode(data: bytes) -> Point:
    """RFC 9496 section 4.3.1 Decode; raises :class:`OracleDecodeError` on any invalid input.

    The identity (all-zero encoding) decodes successfully here, as in the RFC; RFC 9497's
    extra identity check lives in :func:`deserialize_element`.
    """
    if len(data) != 32:
        raise OracleDecodeError(f"encoding must be 32 bytes, got {len(data)}")
    s = int.from_bytes(data, "little")
    if s >= P:
        raise OracleDecodeError("non-canonical field encoding (s >= p)")
    if is_negative(s):
        raise OracleDecodeError("negative field element s")
    ss = s * s % P
    u1 = (1 - ss) % P
    u2 = (1 + ss) % P
    u2_sqr = u2 * u2 % P
    v = (-(D * u1 % P * u1) - u2_sqr) % P
    was_square, invsqrt = sqrt_ratio_m1(1, v * u2_sqr % P)
    den_x = invsqrt * u2 % P
    den_y = invsqrt * den_x % P * v % P
    x = ct_abs(2 * s % P * den_x % P)
    y = u1 * den_y % P
    t = x * y % P
    if not was_square:
        raise OracleDecodeError("x^2 is not a square")
    if is_negative(t):
        raise OracleDecodeError("negative xy value")
    if y == 0:
        raise OracleDecodeError("y = 0")
    return (x, y, 1, t)


def encode(p1: Point) -> bytes:
    """RFC 9496 section 4.3.2 Encode."""
    x0, y0, z0, t0 = (c % P for c in p1)
    u1 = (z0 + y0) * (z0 - y0) % P
    u2 = x0 * y0 % P
    _, invsqrt = sqrt_ratio_m1(1, u1 * u2 % P * u2 % P)
    den1 = invsqrt * u1 % P
    den2 = invsqrt * u2 % P
    z_inv = den1 * den2 % P * t0 % P
    ix0 = x0 * SQRT_M1 % P
    iy0 = y0 * SQRT_M1 % P
    enchanted_denominator = den1 * INVSQRT_A_MINUS_D % P
    rotate = is_negative(t0 * z_inv % P)
    if rotate:
        x, y, den_inv = iy0, ix0, enchanted_denominator
    else:
        x, y, den_inv = x0, y0, den2
    if is_negative(x * z_inv % P):
        y = (-y) % P
    s = ct_abs(den_inv * (z0 - y) % P)
    return s.to_bytes(32, "little")


def map_to_point(t: int) -> Point:
    """MAP of RFC 9496 section 4.3.4 (the Elligator-based map) on a field element t."""
    t %= P
    r = SQRT_M1 * t % P * t % P
    u = (r + 1) * ONE_MINUS_D_SQ % P
    v = (-1 - r * D) * (r + D) % P
    was_square, s = sqrt_ratio_m1(u, v)
    s_prime = (-ct_abs(s * t % P)) % P
    if not was_square:
        s = s_prime
    c = (P - 1) if was_square else r
    n = (c * (r - 1) % P * D_MINUS_ONE_SQ - v) % P
    w0 = 2 * s * v % P
    w1 = n * SQRT_AD_MINUS_ONE % P
    w2 = (1 - s * s) % P
    w3 = (1 + s * s) % P
    return (w0 * w3 % P, w2 * w1 % P, w1 * w3 % P, w0 * w2 % P)


def from_uniform_bytes(data: bytes) -> Point:
    """RFC 9496 section 4.3.4 one-way map: 64 bytes -> MAP(low half) + MAP(high half).

    Each 32-byte half is read little-endian with its most significant bit masked off,
    then reduced mod p.
    """
    if len(data) != 64:
        raise ValueError("one-way map needs exactly 64 bytes")
    mask = (1 << 255) - 1
    t1 = (int.from_bytes(data[:32], "little") & mask) % P
    t2 = (int.from_bytes(data[32:], "little") & mask) % P
    return point_add(map_to_point(t1), map_to_point(t2))


# --------------------------------------------------------------------------------------
# Scalars (RFC 9496 section 4.4 / RFC 9497 section 4.1).
# --------------------------------------------------------------------------------------
def scalar_reduce(data: bytes) -> int:
    """Read bytes little-endian and reduce modulo L."""
    return int.from_bytes(data, "little") % L


def scalar_to_bytes(k: int) -> bytes:
    return (k % L).to_bytes(32, "little")


def deserialize_scalar(data: bytes) -> int:
    """RFC 9497 DeserializeScalar for ristretto255: 32 bytes, little-endian, < L.

    (The RFC's DeserializeScalar does not itself reject zero; callers that need a
    non-zero scalar check it.)
    """
    if len(data) != 32:
        raise ValueError("scalar must be 32 bytes")
    k = int.from_bytes(data, "little")
    if k >= L:
        raise ValueError("scalar not reduced modulo L")
    return k


def deserialize_element(data: bytes) -> Point:
    """RFC 9497 section 4.1 DeserializeElement: RFC 9496 decode, then reject the identity."""
    element = decode(data)
    if equals(element, IDENTITY):
        raise OracleDecodeError("identity element")
    return element


# --------------------------------------------------------------------------------------
# RFC 9380 section 5.3.1: expand_message_xmd with SHA-512.
# --------------------------------------------------------------------------------------
def expand_message_xmd(msg: bytes, dst: bytes, len_in_bytes: int) -> bytes:
    """expand_message_xmd(msg, DST, len_in_bytes) with H = SHA-512 (b = 64, s = 128 bytes)."""
    b_in_bytes, s_in_bytes = 64, 128
    if len(dst) > 255:
        raise ValueError("DST too long")
    ell = (len_in_bytes + b_in_bytes - 1) // b_in_bytes
    if ell > 255 or len_in_bytes > 65535:
        raise ValueError("len_in_bytes too large")
    dst_prime = dst + len(dst).to_bytes(1, "big")
    z_pad = b"\x00" * s_in_bytes
    l_i_b_str = len_in_bytes.to_bytes(2, "big")
    msg_prime = z_pad + msg + l_i_b_str + (0).to_bytes(1, "big") + dst_prime
    b_0 = hashlib.sha512(msg_prime).digest()
    b_vals = [hashlib.sha512(b_0 + (1).to_bytes(1, "big") + dst_prime).digest()]
    for i in range(2, ell + 1):
        mixed = bytes(a ^ b for a, b in zip(b_0, b_vals[-1], strict=False))
        b_vals.append(hashlib.sha512(mixed + i.to_bytes(1, "big") + dst_prime).digest())
    return b"".join(b_vals)[:len_in_bytes]


# --------------------------------------------------------------------------------------
# RFC 9497: OPRF(ristretto255, SHA-512), mode 0x00.
# --------------------------------------------------------------------------------------
MODE_OPRF = 0x00
IDENTIFIER = b"ristretto255-SHA512"
# Section 3.1: contextString = "OPRFV1-" || I2OSP(mode, 1) || "-" || identifier
CONTEXT_STRING = b"OPRFV1-" + MODE_OPRF.to_bytes(1, "big") + b"-" + IDENTIFIER


def hash_to_group(msg: bytes) -> Point:
    """Section 4.1 HashToGroup: one-way map of expand_message_xmd(msg, "HashToGroup-"||ctx, 64)."""
    return from_uniform_bytes(expand_message_xmd(msg, b"HashToGroup-" + CONTEXT_STRING, 64))


def hash_to_scalar(msg: bytes, dst: bytes | None = None) -> int:
    """Section 4.1 HashToScalar: expand_message_xmd to 64 bytes, little-endian, mod L."""
    if dst is None:
        dst = b"HashToScalar-" + CONTEXT_STRING
    return scalar_reduce(expand_message_xmd(msg, dst, 64))


def derive_key_pair(seed: bytes, info: bytes) -> tuple[bytes, bytes]:
    """Section 3.2.1 DeriveKeyPair -> (SerializeScalar(skS), SerializeElement(pkS))."""
    if len(seed) != 32:
        raise ValueError("seed must be 32 bytes (Ns)")
    derive_input = seed + len(info).to_bytes(2, "big") + info
    for counter in range(256):
        sk = hash_to_scalar(
            derive_input + counter.to_bytes(1, "big"), dst=b"DeriveKeyPair" + CONTEXT_STRING
        )
        if sk != 0:
            return scalar_to_bytes(sk), encode(scalar_mult(sk, BASE))
    raise OracleInputError("DeriveKeyPairError")


def _input_element(data: bytes) -> Point:
    element = hash_to_group(data)
    if equals(element, IDENTITY):
        raise OracleInputError("InvalidInputError")
    return element


def blind(data: bytes, blind_scalar: bytes) -> bytes:
    """Section 3.3.1 Blind with a caller-fixed blind; returns SerializeElement(blindedElement)."""
    r = deserialize_scalar(blind_scalar)
    return encode(scalar_mult(r, _input_element(data)))


def blind_evaluate(sk: bytes, blinded_element: bytes) -> bytes:
    """Section 3.3.1 BlindEvaluate (DeserializeElement on the wire bytes first)."""
    k = deserialize_scalar(sk)
    return encode(scalar_mult(k, deserialize_element(blinded_element)))


def _finalize_hash(data: bytes, element_bytes: bytes) -> bytes:
    return hashlib.sha512(
        len(data).to_bytes(2, "big")
        + data
        + len(element_bytes).to_bytes(2, "big")
        + element_bytes
        + b"Finalize"
    ).digest()


def finalize(data: bytes, blind_scalar: bytes, evaluated_element: bytes) -> bytes:
    """Section 3.3.1 Finalize: Hash(len||input||len||blind^-1 * evaluatedElement||"Finalize")."""
    r = deserialize_scalar(blind_scalar)
    if r == 0:
        raise ValueError("zero blind")
    n = scalar_mult(pow(r, -1, L), deserialize_element(evaluated_element))
    return _finalize_hash(data, encode(n))


def evaluate(sk: bytes, data: bytes) -> bytes:
    """Section 3.3.1 Evaluate: Hash(len||input||len||skS * HashToGroup(input)||"Finalize")."""
    k = deserialize_scalar(sk)
    return _finalize_hash(data, encode(scalar_mult(k, _input_element(data))))
