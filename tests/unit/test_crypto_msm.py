"""Multi-scalar multiplication and composite weights: native (Pippenger, C) against the libsodium loop."""

from __future__ import annotations

import pytest
import rbcl

from blindmatch.crypto import backend, dleq, group
from blindmatch.crypto.modes import POPRF, VOPRF, Mode
from tests.helpers.native_support import native_path, random_elements, random_scalars

LIBSODIUM = backend.LibsodiumBackend()


def _loop_sum(scalars: bytes, elements: bytes) -> bytes:
    """The definition, term by term through rbcl (independent of both backends' msm)."""
    total = group.IDENTITY
    for i in range(len(elements) // 32):
        scalar, element = scalars[32 * i : 32 * i + 32], elements[32 * i : 32 * i + 32]
        if any(scalar):
            total = dleq.add(total, bytes(rbcl.crypto_scalarmult_ristretto255(scalar, element)))
    return total


@native_path
@pytest.mark.parametrize("n", [1, 2, 3, 7, 64, 1000])
def test_native_msm_equals_libsodium_on_random_inputs(path: str, n: int) -> None:
    native = backend.NativeBackend(path)
    scalars, elements = random_scalars(n), random_elements(n)
    expected = _loop_sum(scalars, elements)
    assert native.msm(scalars, elements) == (expected, -1)
    assert LIBSODIUM.msm(scalars, elements) == (expected, -1)


@native_path
def test_native_msm_with_repeated_points_zero_and_extreme_scalars(path: str) -> None:
    native = backend.NativeBackend(path)
    point = random_elements(1)
    minus_one = (group.ORDER - 1).to_bytes(32, "little")
    cases = [
        (bytes(32) * 5, point * 5),  # all zero: the identity
        (minus_one + (1).to_bytes(32, "little"), point * 2),  # cancels: the identity
        (random_scalars(40) + bytes(32) * 24, point * 32 + random_elements(32)),  # repeats, zeros
        (random_scalars(300), point * 300),  # one point repeated: every bucket hit
        (b"\xff" * 31 + b"\x7f", point),  # 2^255 - 1, not reduced
    ]
    for scalars, elements in cases:
        expected = _loop_sum(scalars, elements)
        assert native.msm(scalars, elements) == (expected, -1)
        assert LIBSODIUM.msm(scalars, elements) == (expected, -1)
    assert native.msm(bytes(32) * 2, point * 2) == (group.IDENTITY, -1)


@native_path
@pytest.mark.parametrize("bad", [group.IDENTITY, b"\xff" * 32, b"\x01" + bytes(31), "top bit"])
def test_msm_names_the_first_invalid_element(path: str, bad: bytes | str) -> None:
    elements = random_elements(9)
    if isinstance(bad, str):
        bad = elements[5 * 32 : 5 * 32 + 31] + bytes([elements[5 * 32 + 31] | 0x80])
    tampered = elements[: 5 * 32] + bad + elements[6 * 32 :]
    scalars = random_scalars(9)
    assert backend.NativeBackend(path).msm(scalars, tampered)[1] == 5
    assert LIBSODIUM.msm(scalars, tampered)[1] == 5


@native_path
@pytest.mark.parametrize("mode", [VOPRF, POPRF])
def test_native_composite_weights_equal_the_rfc_transcript(path: str, mode: Mode) -> None:
    n, start = 70, 65536 - 70  # the highest indices I2OSP(i, 2) can frame
    c, d = random_elements(n), random_elements(n)
    seed = dleq.composite_seed(mode, random_elements(1))
    dst = b"HashToScalar-" + mode.context_string
    native = backend.NativeBackend(path).composite_weights(seed, c, d, start, dst)
    assert native == LIBSODIUM.composite_weights(seed, c, d, start, dst)
    prefix = len(seed).to_bytes(2, "big") + seed
    for i in (0, n - 1):
        ci, di = c[32 * i : 32 * i + 32], d[32 * i : 32 * i + 32]
        transcript = prefix + (start + i).to_bytes(2, "big") + b"\x00\x20" + ci + b"\x00\x20" + di + b"Composite"
        assert native[32 * i : 32 * i + 32] == mode.hash_to_scalar(transcript)


@native_path
def test_native_weights_refuse_indices_beyond_the_transcript(path: str) -> None:
    c = random_elements(2)
    with pytest.raises(ValueError, match="2\\^16"):
        backend.NativeBackend(path).composite_weights(bytes(64), c, c, 65535, b"dst")
