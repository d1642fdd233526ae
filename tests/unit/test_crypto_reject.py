"""Rejection of malformed elements, scalars and seeds by ``blindmatch.crypto``.

Every wire element goes through RFC 9497 DeserializeElement, i.e. RFC 9496 section 4.3.1
decode plus an identity check. The expected verdicts come from the pure-Python test
oracle (``tests/helpers/oracle_ristretto255.py``), which is validated against RFC 9496 A.1/A.2.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from helpers import oracle_ristretto255 as oracle
from helpers import oracle_vectors

from blindmatch.crypto import group, oprf
from blindmatch.crypto.group import InvalidElementError, InvalidScalarError

P = oracle.P
L = oracle.L
SK = oprf.derive_key_pair(bytes(range(32)), b"reject tests")[0]
BLIND = (0x1234567890ABCDEF * 2**128 + 987654321).to_bytes(32, "little")
VALID_MULTIPLES = [bytes.fromhex(h) for h in oracle_vectors.RFC9496_MULTIPLES_OF_B[1:]]


def _le(value: int) -> bytes:
    return value.to_bytes(32, "little")


def _named(cases: list[tuple[str, bytes]]) -> list[object]:
    return [pytest.param(data, id=name) for name, data in cases]


WRONG_LENGTHS = _named(
    [
        ("len0", b""),
        ("len31", bytes(31)),
        ("len33", bytes(33)),
        ("len31-of-B", VALID_MULTIPLES[0][:31]),
        ("len33-of-B", VALID_MULTIPLES[0] + b"\x00"),
        ("len64", VALID_MULTIPLES[0] * 2),
    ]
)

IDENTITY = _named([("identity", bytes(32))])

# Non-canonical field encodings: every s in [p, 2^255) (p itself encodes 0 = identity mod p,
# p + 2k for small k would alias small field elements) plus the RFC 9496 A.2 entries.
NON_CANONICAL = _named(
    [(f"p+{k}", _le(P + k)) for k in range(19)]
    + [
        (f"rfc9496-a2-noncanonical-{i}", bytes.fromhex(h))
        for i, h in enumerate(oracle_vectors.RFC9496_INVALID_ENCODINGS[:4])
    ]
)

# s with bit 255 set: valid encodings of k*B with the high bit forced on (an implementation that
# masks the top bit, as fe25519_frombytes does, would accept them), and 2^256 - 1.
HIGH_BIT = _named(
    [(f"{k + 1}B|2^255", _le(int.from_bytes(e, "little") | 2**255)) for k, e in enumerate(VALID_MULTIPLES)]
    + [("2^256-1", b"\xff" * 32), ("identity|2^255", _le(2**255))]
)

# Negative (odd) s: 1, 3, p - 2, and p - s for each valid encoding s of k*B (i.e. -s mod p).
NEGATIVE = _named(
    [("s=1", _le(1)), ("s=3", _le(3)), ("s=p-2", _le(P - 2))]
    + [(f"-({k + 1}B)", _le(P - int.from_bytes(e, "little"))) for k, e in enumerate(VALID_MULTIPLES)]
    + [
        (f"rfc9496-a2-negative-{i}", bytes.fromhex(h))
        for i, h in enumerate(oracle_vectors.RFC9496_INVALID_ENCODINGS[4:12])
    ]
)

# Canonical, non-negative s whose decoding fails (non-square x^2, negative xy, y = 0).
INVALID_POINTS = _named(
    [(f"rfc9496-a2-point-{i}", bytes.fromhex(h)) for i, h in enumerate(oracle_vectors.RFC9496_INVALID_ENCODINGS[12:])]
)

ALL_32_BYTE_INVALID = IDENTITY + NON_CANONICAL + HIGH_BIT + NEGATIVE + INVALID_POINTS
ALL_INVALID = WRONG_LENGTHS + ALL_32_BYTE_INVALID


def _oracle_rejects(data: bytes) -> bool:
    try:
        oracle.deserialize_element(data)
    except oracle.OracleDecodeError:
        return True
    return False


def test_invalid_case_lists_are_rejected_by_the_oracle() -> None:
    """Guard against a case list that accidentally contains a valid element."""
    assert len(ALL_32_BYTE_INVALID) > 60
    for param in ALL_INVALID:
        (data,) = param.values  # type: ignore[attr-defined]
        assert _oracle_rejects(data), data.hex()


# -- decode_element / blind_evaluate / unblind / finalize ------------------------------

ELEMENT_CONSUMERS: dict[str, Callable[[bytes], object]] = {
    "decode_element": group.decode_element,
    "blind_evaluate": lambda x: oprf.blind_evaluate(SK, x),
    "unblind": lambda x: oprf.unblind(BLIND, x),
    "finalize": lambda x: oprf.finalize(b"input", BLIND, x),
}


@pytest.mark.parametrize("consumer", ELEMENT_CONSUMERS, ids=str)
@pytest.mark.parametrize("data", WRONG_LENGTHS)
def test_wrong_length_element_rejected(consumer: str, data: bytes) -> None:
    with pytest.raises(InvalidElementError):
        ELEMENT_CONSUMERS[consumer](data)


@pytest.mark.parametrize("consumer", ELEMENT_CONSUMERS, ids=str)
@pytest.mark.parametrize("data", ALL_32_BYTE_INVALID)
def test_invalid_element_rejected(consumer: str, data: bytes) -> None:
    with pytest.raises(InvalidElementError):
        ELEMENT_CONSUMERS[consumer](data)


@pytest.mark.parametrize("consumer", ELEMENT_CONSUMERS, ids=str)
def test_valid_multiples_of_generator_accepted(consumer: str) -> None:
    """The positive control for the lists above: canonical encodings of 1B..15B pass."""
    for encoded in VALID_MULTIPLES:
        ELEMENT_CONSUMERS[consumer](encoded)


def _random_encodings(kind: str) -> list[bytes]:
    """500 random 32-byte strings. ``uniform``: uniformly random bytes (mostly rejected by the
    cheap checks: bit 255, parity). ``top-bit-clear``: bit 255 and bit 0 cleared, so that the
    curve checks of decode (square root, sign of xy, y = 0), not the cheap checks, decide."""
    rng = random.Random(f"rfc9496-{kind}")
    if kind == "uniform":
        return [rng.randbytes(32) for _ in range(500)]
    return [_le(rng.getrandbits(255) & ~1) for _ in range(500)]


def _bm_accepts(consumer: Callable[[bytes], object], data: bytes) -> bool:
    try:
        consumer(data)
    except InvalidElementError:
        return False
    return True


@pytest.mark.parametrize("kind", ["uniform", "top-bit-clear"])
def test_random_encodings_agree_with_oracle(kind: str) -> None:
    """blindmatch accepts exactly the random strings the oracle accepts (decode_element and
    blind_evaluate), and on accepted ones blind_evaluate computes the oracle's element."""
    encodings = _random_encodings(kind)
    verdicts = {data: not _oracle_rejects(data) for data in encodings}
    n_valid = sum(verdicts.values())
    # Both classes must be well represented for the comparison to mean something.
    assert 20 <= n_valid <= len(encodings) - 100, n_valid
    sk_int = int.from_bytes(SK, "little")
    mismatches: list[str] = []
    for data, valid in verdicts.items():
        for name in ("decode_element", "blind_evaluate"):
            if _bm_accepts(ELEMENT_CONSUMERS[name], data) != valid:
                mismatches.append(f"{name} {'rejects' if valid else 'accepts'} {data.hex()}")
        if valid:
            expected = oracle.encode(oracle.scalar_mult(sk_int, oracle.decode(data)))
            if oprf.blind_evaluate(SK, data) != expected:
                mismatches.append(f"blind_evaluate value differs for {data.hex()}")
    assert not mismatches, f"{len(mismatches)} disagreements with the oracle, e.g. {mismatches[:4]}"


# -- decode_scalar ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    _named([
        ("zero", bytes(32)),
        ("L", _le(L)),
        ("L+1", _le(L + 1)),
        ("2L", _le(2 * L)),
        ("2^255", _le(2**255)),
        ("2^256-1", b"\xff" * 32),
        ("len0", b""),
        ("len31", b"\x01" * 31),
        ("len33", b"\x01" * 33),
        ("len64", b"\x01" * 64),
    ]),
)
def test_decode_scalar_rejects(data: bytes) -> None:
    with pytest.raises(InvalidScalarError):
        group.decode_scalar(data)


@pytest.mark.parametrize("value", [1, 2, L - 2, L - 1, 2**252], ids=["1", "2", "L-2", "L-1", "2^252"])
def test_decode_scalar_accepts(value: int) -> None:
    assert group.decode_scalar(_le(value)) == _le(value)


# -- derive_key_pair -------------------------------------------------------------------


@pytest.mark.parametrize("length", [0, 1, 31, 33, 64])
def test_derive_key_pair_rejects_wrong_seed_length(length: int) -> None:
    with pytest.raises(ValueError):
        oprf.derive_key_pair(b"\xa3" * length, b"info")


def test_derive_key_pair_accepts_32_byte_seed() -> None:
    sk, pk = oprf.derive_key_pair(b"\xa3" * 32, b"info")
    assert group.decode_scalar(sk) == sk
    assert group.decode_element(pk) == pk
