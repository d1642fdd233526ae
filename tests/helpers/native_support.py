"""Shared helpers for the native-backend tests: which paths run here, random inputs, rbcl references."""

from __future__ import annotations

import os
import random

import pytest
import rbcl

from blindmatch.crypto import backend

PATHS = backend.native_paths()
# One test id per native arithmetic path this CPU can run; skipped when the extension is missing.
native_path = pytest.mark.parametrize(
    "path", PATHS or [pytest.param("none", marks=pytest.mark.skip(reason="native extension not built"))]
)

P = 2**255 - 19


def rng(seed: int) -> random.Random:
    return random.Random(seed)


def random_elements(n: int) -> bytes:
    return b"".join(rbcl.crypto_core_ristretto255_random() for _ in range(n))


def random_scalars(n: int) -> bytes:
    return b"".join(rbcl.crypto_core_ristretto255_scalar_random() for _ in range(n))


def libsodium_mult(scalar: bytes, element: bytes) -> bytes | None:
    """rbcl's answer, ``None`` where it refuses (invalid element or identity result)."""
    try:
        return bytes(rbcl.crypto_scalarmult_ristretto255(scalar, element))
    except RuntimeError:
        return None


def libsodium_accepts(element: bytes) -> bool:
    """RFC 9496 Decode success as libsodium 1.0.18 decides it, plus the top bit it ignores."""
    return not element[31] & 0x80 and bool(rbcl.crypto_core_ristretto255_is_valid_point(element))


def noncanonical_encodings() -> list[bytes]:
    """Field values s + p for every s with s + p < 2^255 (s in 0..18): never canonical."""
    return [(s + P).to_bytes(32, "little") for s in range(19)]


def random_messages(r: random.Random, n: int) -> list[bytes]:
    return [os.urandom(r.randrange(0, 200)) for _ in range(n)]
