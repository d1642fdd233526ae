"""Differential tests: the native backend against libsodium (rbcl), byte for byte.

A few thousand random cases per arithmetic path keep CI fast; ``benchmarks/native_differential.py``
runs the same comparisons on millions of inputs by hand.
"""

from __future__ import annotations

import os

import pytest
import rbcl
from helpers.native_support import (
    libsodium_accepts,
    libsodium_mult,
    native_path,
    noncanonical_encodings,
    random_elements,
    random_messages,
    random_scalars,
    rng,
)

from blindmatch.crypto import backend, group, oprf
from blindmatch.crypto.native import load

R255 = load()
N = 1000  # per path and operation; multiples of 8 plus a ragged tail are covered by N + 3 below


@native_path
def test_one_scalar_many_points(path: str) -> None:
    sk = random_scalars(1)
    points = random_elements(N + 3)
    out, bad = R255.mult(path, sk, points)
    assert bad == -1
    assert out == b"".join(libsodium_mult(sk, points[i : i + 32]) or b"" for i in range(0, len(points), 32))


@native_path
def test_many_scalars_many_points(path: str) -> None:
    scalars, points = random_scalars(N + 5), random_elements(N + 5)
    out, bad = R255.mult(path, scalars, points)
    assert bad == -1
    assert out == b"".join(libsodium_mult(scalars[i : i + 32], points[i : i + 32]) or b"" for i in range(0, len(points), 32))


@native_path
@pytest.mark.parametrize("subtract", [False, True])
def test_addition_matches_libsodium_identities_and_doubling_included(path: str, subtract: bool) -> None:
    p, q = bytearray(random_elements(N + 3)), bytearray(random_elements(N + 3))
    p[32 * 5 : 32 * 6] = q[32 * 7 : 32 * 8] = bytes(32)  # the identity on either side
    q[32 * 9 : 32 * 10] = p[32 * 9 : 32 * 10]  # p + p, and p - p = identity
    out, bad = R255.add(path, bytes(p), bytes(q), subtract)
    op = rbcl.crypto_core_ristretto255_sub if subtract else rbcl.crypto_core_ristretto255_add
    assert bad == -1
    assert out == b"".join(op(bytes(p[i : i + 32]), bytes(q[i : i + 32])) for i in range(0, len(p), 32))
    for at, bad_element in ((100, b"\xff" * 32), (N + 2, b"\x01" + bytes(30) + b"\x80")):
        q_bad = bytes(q[: 32 * at]) + bad_element + bytes(q[32 * at + 32 :])
        assert R255.add(path, bytes(p), q_bad, subtract)[1] == at
        assert R255.add(path, q_bad, bytes(p), subtract)[1] == at


@native_path
def test_unreduced_and_top_bit_scalars_match_libsodium(path: str) -> None:
    """libsodium multiplies by the scalar with bit 255 cleared, reduced or not; so must we."""
    points = random_elements(64)
    scalars = os.urandom(32 * 64)
    out, bad = R255.mult(path, scalars, points)
    assert bad == -1
    assert out == b"".join(libsodium_mult(scalars[i : i + 32], points[i : i + 32]) or b"" for i in range(0, len(points), 32))


@native_path
def test_random_encodings_are_judged_like_libsodium(path: str) -> None:
    """Random 32-byte strings (mostly invalid), valid ones, and every non-canonical value."""
    r = rng(1)
    candidates = [r.randbytes(32) for _ in range(N)] + [random_elements(1) for _ in range(200)] + noncanonical_encodings()
    for i, encoding in enumerate(candidates):
        expected = libsodium_accepts(encoding) and any(encoding)
        assert (R255.validate(path, encoding, True) == -1) == expected, (i, encoding.hex())
    # The same verdicts in one batch: the first bad index is the first libsodium refuses.
    batch = b"".join(candidates)
    first = next(i for i, e in enumerate(candidates) if not (libsodium_accepts(e) and any(e)))
    assert R255.validate(path, batch, True) == first


@native_path
def test_mult_refuses_exactly_where_libsodium_does(path: str) -> None:
    r = rng(2)
    sk = random_scalars(1)
    for _ in range(300):
        encoding = r.randbytes(31) + bytes([r.randrange(0, 128)])
        expected = libsodium_mult(sk, encoding)
        out, bad = R255.mult(path, sk, encoding)
        assert (bad == -1) == (expected is not None)
        if expected is not None:
            assert out == expected


@native_path
def test_from_uniform_matches_libsodium(path: str) -> None:
    uniform = os.urandom(64 * (N + 1))
    out, bad = R255.from_uniform(path, uniform)
    assert bad == -1
    assert out == b"".join(group.element_from_uniform(uniform[i : i + 64]) for i in range(0, len(uniform), 64))


@native_path
def test_hash_to_group_matches_the_python_path(path: str) -> None:
    messages = random_messages(rng(3), N)
    data, offsets = backend.pack_messages(messages)
    out, bad = R255.hash_to_group(path, data, offsets, oprf.HASH_TO_GROUP_DST, b"")
    assert bad == -1
    assert out == b"".join(oprf.hash_to_group(m) for m in messages)
    sk = random_scalars(1)
    out, bad = R255.hash_to_group(path, data, offsets, oprf.HASH_TO_GROUP_DST, sk)
    assert out == b"".join(rbcl.crypto_scalarmult_ristretto255(sk, oprf.hash_to_group(m)) for m in messages)
    blinds = random_scalars(N)
    out, bad = R255.hash_to_group(path, data, offsets, oprf.HASH_TO_GROUP_DST, blinds)
    expected = (rbcl.crypto_scalarmult_ristretto255(blinds[32 * i : 32 * i + 32], oprf.hash_to_group(m)) for i, m in enumerate(messages))
    assert out == b"".join(expected)


def test_scalar_inversion_matches_libsodium() -> None:
    if R255 is None:
        return
    scalars = random_scalars(N)
    assert R255.scalar_invert(scalars) == b"".join(
        rbcl.crypto_core_ristretto255_scalar_invert(scalars[i : i + 32]) for i in range(0, len(scalars), 32)
    )
    edge = b"".join(v.to_bytes(32, "little") for v in (1, 2, group.ORDER - 1, group.ORDER - 2))
    assert R255.scalar_invert(edge) == group.batch_invert(edge)
    try:
        R255.scalar_invert(random_scalars(3) + bytes(32))
    except ValueError as exc:
        assert "zero scalar" in str(exc)
    else:
        raise AssertionError("a zero scalar must not invert")
