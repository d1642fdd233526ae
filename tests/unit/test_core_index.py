"""The Elias-Fano encrypted index: encoding, parsing, lookups and rejection of bad bytes."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest

from blindmatch.core.index import HEADER_BYTES, EncryptedIndex, IndexFormatError, encode_index, false_match_bound
from blindmatch.core.index_builder import IndexBuilder
from blindmatch.core.keys import HolderKey
from blindmatch.core.outputs import bucket_of, split_outputs
from blindmatch.core.purpose import evaluation_info
from blindmatch.crypto import oprf, poprf
from blindmatch.vocabulary import Mode


def _outputs(count: int, tag: bytes) -> bytes:
    return b"".join(hashlib.sha512(tag + i.to_bytes(4, "big")).digest() for i in range(count))


@pytest.mark.parametrize("n", [1, 2, 7, 1000, 4099])
def test_lookup_finds_members_and_only_members(n: int) -> None:
    members = _outputs(n, b"in")
    strangers = _outputs(2000, b"out")
    hi, lo = split_outputs(members)
    index = EncryptedIndex.parse(encode_index(Mode.MEMBERSHIP, b"k" * 32, b"f" * 32, hi, lo))
    assert len(index) == n
    assert index.contains(members).all()
    assert not index.contains(strangers).any()


def test_size_is_66_bits_per_entry_plus_header() -> None:
    n = 10_000
    hi, lo = split_outputs(_outputs(n, b"x"))
    data = encode_index(Mode.MEMBERSHIP, b"k" * 32, b"f" * 32, hi, lo)
    assert len(data) == HEADER_BYTES + (2 * n + 7) // 8 + 8 * n


def test_duplicates_and_empty_index() -> None:
    out = _outputs(3, b"d")
    hi, lo = split_outputs(out + out)
    index = EncryptedIndex.parse(encode_index(Mode.MEMBERSHIP, b"k" * 32, b"f" * 32, hi, lo))
    assert index.contains(out).all()
    empty = EncryptedIndex.parse(encode_index(Mode.CARDINALITY, b"k" * 32, b"f" * 32, hi[:0], lo[:0]))
    assert len(empty) == 0 and not empty.contains(out).any()


def test_bucket_is_exact_floor() -> None:
    rng = np.random.default_rng(1)
    hi = rng.integers(0, 2**63, size=500, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    for n in (1, 3, 1000, 2**32 - 1):
        expected = [(int(h) * n) >> 64 for h in hi]
        assert bucket_of(hi, n).tolist() == expected


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda d: d[:-1],
        lambda d: d + b"\x00",
        lambda d: b"XXXXXXXX" + d[8:],
        lambda d: d[:HEADER_BYTES] + bytes([d[HEADER_BYTES] ^ 0x80]) + d[HEADER_BYTES + 1 :],
        lambda d: d[:8] + b"\x07" + d[9:],
        lambda d: d[:9] + b"\x38" + d[10:],
    ],
    ids=["truncated", "trailing", "magic", "upper-bits", "kind", "lower-bits"],
)
def test_malformed_index_rejected(corrupt) -> None:  # type: ignore[no-untyped-def]
    hi, lo = split_outputs(_outputs(100, b"m"))
    data = encode_index(Mode.MEMBERSHIP, b"k" * 32, b"f" * 32, hi, lo)
    with pytest.raises(IndexFormatError):
        EncryptedIndex.parse(corrupt(data))


def test_builder_entries_are_rfc9497_poprf_evaluate_outputs_under_the_organisation_and_mode(engine) -> None:  # type: ignore[no-untyped-def]
    key = HolderKey.generate()
    keys = [os.urandom(20) for _ in range(300)]
    builder = IndexBuilder(key, b"f" * 32, engine, "Example County", kinds=[Mode.MEMBERSHIP])
    builder.add(keys[:100])
    builder.add(keys[100:])
    index = EncryptedIndex.parse(builder.finish()[Mode.MEMBERSHIP])
    assert index.header.key_id == key.key_id
    info = evaluation_info("Example County", Mode.MEMBERSHIP, key.key_id)
    assert index.contains(b"".join(poprf.evaluate(key.sk, k, info) for k in keys)).all()
    assert not index.contains(b"".join(poprf.evaluate(key.sk, k + b"!", info) for k in keys)).any()
    # Useless to another organisation, to the other mode, to another epoch's key, and in OPRF mode.
    for other in (evaluation_info("Other County", Mode.MEMBERSHIP, key.key_id),
                  evaluation_info("Example County", Mode.CARDINALITY, key.key_id),
                  evaluation_info("Example County", Mode.MEMBERSHIP, bytes(32))):
        assert not index.contains(b"".join(poprf.evaluate(key.sk, k, other) for k in keys)).any()
    assert not index.contains(b"".join(oprf.evaluate(key.sk, k) for k in keys)).any()


def test_false_match_bound_meets_spec() -> None:
    # SPEC.md: sessions of up to 2^24 - 2^8 elements stay below 2^-40 for any index size < 2^32.
    assert false_match_bound(2**32 - 1, 2**24 - 2**8) < 2**-40
    assert false_match_bound(0, 10) == 0.0
