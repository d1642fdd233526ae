"""The native ristretto255 backend against the RFC 9496 vectors and the independent oracle.

Each test runs on every arithmetic path this CPU can run (``portable`` everywhere,
``avx2`` on AVX2 machines, ``ifma`` on AVX-512 IFMA machines). Differential tests against libsodium are in
``test_crypto_native_diff.py``; backend selection in ``test_crypto_native_backend.py``.
"""

from __future__ import annotations

import pytest
from helpers import oracle_ristretto255 as oracle
from helpers import oracle_vectors
from helpers.native_support import native_path, noncanonical_encodings

from blindmatch.crypto import backend, oprf
from blindmatch.crypto.native import load

R255 = load()
BASE = bytes.fromhex(oracle_vectors.RFC9496_MULTIPLES_OF_B[1])


def _limbs(value: int) -> list[int]:
    return [(value >> (51 * i)) & (2**51 - 1) for i in range(5)]


def test_constants_match_the_rfc_decimals() -> None:
    """The radix-2^51 limbs in r255_consts.h are the RFC 9496 section 4.1 values."""
    from pathlib import Path

    import blindmatch.crypto.native as pkg

    text = (Path(pkg.__file__).parent / "r255_consts.h").read_text()
    expected = {
        "D": oracle.D, "D2": 2 * oracle.D % oracle.P, "SQRT_M1": oracle.SQRT_M1,
        "SQRT_AD_MINUS_ONE": oracle.SQRT_AD_MINUS_ONE, "INVSQRT_A_MINUS_D": oracle.INVSQRT_A_MINUS_D,
        "ONE_MINUS_D_SQ": oracle.ONE_MINUS_D_SQ, "D_MINUS_ONE_SQ": oracle.D_MINUS_ONE_SQ,
    }
    for name, value in expected.items():
        line = next(line for line in text.splitlines() if f" K_{name}[5] = " in line)
        limbs = [int(tok.strip().removesuffix("ULL"), 16) for tok in line.split("{")[1].split("}")[0].split(",")]
        assert limbs == _limbs(value), name


@native_path
def test_multiples_of_the_generator(path: str) -> None:
    """RFC 9496 A.1: k * B for k = 1..15, one scalar per point and one scalar for many."""
    scalars = b"".join(k.to_bytes(32, "little") for k in range(1, 16))
    out, bad = R255.mult(path, scalars, BASE * 15)
    assert bad == -1
    assert [out[i : i + 32].hex() for i in range(0, len(out), 32)] == list(oracle_vectors.RFC9496_MULTIPLES_OF_B[1:])
    for k in (2, 7, 15):
        multiples = b"".join(bytes.fromhex(h) for h in oracle_vectors.RFC9496_MULTIPLES_OF_B[1:])
        out, bad = R255.mult(path, k.to_bytes(32, "little"), multiples)
        assert bad == -1
        assert out == b"".join(oracle.encode(oracle.scalar_mult(k * j, oracle.BASE)) for j in range(1, 16))


@native_path
def test_identity_results_are_refused(path: str) -> None:
    """libsodium's failure cases: the identity as input, the zero scalar, L as scalar."""
    identity = bytes.fromhex(oracle_vectors.RFC9496_MULTIPLES_OF_B[0])
    assert R255.mult(path, (5).to_bytes(32, "little"), BASE + identity)[1] == 1
    assert R255.mult(path, bytes(32), BASE)[1] == 0
    assert R255.mult(path, oracle.L.to_bytes(32, "little"), BASE)[1] == 0
    assert R255.validate(path, identity, True) == 0
    assert R255.validate(path, BASE + identity, False) == -1


@native_path
@pytest.mark.parametrize("encoding", oracle_vectors.RFC9496_INVALID_ENCODINGS)
def test_invalid_encodings_are_rejected(path: str, encoding: str) -> None:
    """RFC 9496 A.2, alone and at the end of a batch (so the IFMA lanes see it mid-block)."""
    bad = bytes.fromhex(encoding)
    assert R255.validate(path, bad, False) == 0
    assert R255.validate(path, BASE * 5 + bad + BASE * 3, False) == 5
    assert R255.mult(path, (3).to_bytes(32, "little"), BASE * 5 + bad)[1] == 5


@native_path
def test_top_bit_and_noncanonical_field_values_are_rejected(path: str) -> None:
    for k in range(1, 16):
        valid = bytes.fromhex(oracle_vectors.RFC9496_MULTIPLES_OF_B[k])
        assert R255.validate(path, valid[:31] + bytes([valid[31] | 0x80]), False) == 0
    for encoding in noncanonical_encodings():
        assert R255.validate(path, encoding, False) == 0


@native_path
@pytest.mark.parametrize("label,uniform,element", oracle_vectors.RFC9496_ONE_WAY_MAP, ids=lambda x: str(x)[:12])
def test_one_way_map(path: str, label: bytes, uniform: str, element: str) -> None:
    """RFC 9496 A.3."""
    out, bad = R255.from_uniform(path, bytes.fromhex(uniform))
    assert (out.hex(), bad) == (element, -1)


@native_path
def test_expand_message_xmd_matches_rfc9380(path: str) -> None:
    """RFC 9380 K.2 vectors have len_in_bytes 32; the C code's 64-byte output is checked by the oracle."""
    dst = oprf.HASH_TO_GROUP_DST
    for message in (b"", b"abc", b"x" * 127, b"y" * 128, b"z" * 300):
        data, offsets = backend.pack_messages([message])
        assert R255.expand_message_xmd(data, offsets, dst) == oracle.expand_message_xmd(message, dst, 64)


@native_path
def test_against_the_oracle(path: str) -> None:
    """A few random operations checked against the pure-Python oracle (slow, so few)."""
    import random

    r = random.Random(9497)
    for _ in range(4):
        k = r.randrange(1, oracle.L)
        point = oracle.scalar_mult(r.randrange(1, oracle.L), oracle.BASE)
        out, bad = R255.mult(path, k.to_bytes(32, "little"), oracle.encode(point))
        assert bad == -1 and out == oracle.encode(oracle.scalar_mult(k, point))
        message = r.randbytes(r.randrange(0, 80))
        data, offsets = backend.pack_messages([message])
        out, bad = R255.hash_to_group(path, data, offsets, oprf.HASH_TO_GROUP_DST, b"")
        assert out == oracle.encode(oracle.hash_to_group(message))


@native_path
def test_batches_release_the_gil(path: str) -> None:
    """While a batch multiplies in C, another Python thread keeps running (so a pool scales).

    The main thread wakes every millisecond and stamps the time; if the C call held the
    GIL, no stamp could fall inside it except around a single switch interval.
    """
    import threading
    import time

    from helpers.native_support import random_elements, random_scalars

    points, scalars = random_elements(64) * 256, random_scalars(1)
    window: list[float] = []

    def work() -> None:
        window.append(time.perf_counter())
        R255.mult(path, scalars, points)
        window.append(time.perf_counter())

    stamps: list[float] = []
    worker = threading.Thread(target=work)
    worker.start()
    while worker.is_alive():
        stamps.append(time.perf_counter())
        time.sleep(0.001)
    start, stop = window
    inside = [t for t in stamps if start < t < stop]
    assert inside and max(inside) - min(inside) > 0.5 * (stop - start)
