"""Encrypted index files and the holder's index manifest, from random and mutated bytes.

The requester parses an index it downloaded (``EncryptedIndex.parse``); the holder reads
its manifest and index files at start-up (``holder_store.open_indexes``). Bad bytes must
give ``IndexFormatError`` / ``StoreError`` with a message, never a numpy or struct error,
and a parsed index must answer lookups.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from fuzz_support import assert_clear, heavy, snapshot
from hypothesis import given
from hypothesis import strategies as st

from blindmatch.core.index import HEADER_BYTES, MAGIC, EncryptedIndex, IndexFormatError, IndexHeader, encode_index
from blindmatch.core.outputs import Mode
from blindmatch.holder.store import MANIFEST_NAME, StoreError, commit_indexes, open_indexes, stage_indexes

pytestmark = pytest.mark.fuzz

KEY_ID = bytes(range(32))
FINGERPRINT = bytes(range(32, 64))


def _index(mode: Mode, entries: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    hi = rng.integers(0, 2**64, size=entries, dtype=np.uint64)
    lo = rng.integers(0, 2**64, size=entries, dtype=np.uint64)
    return encode_index(mode, KEY_ID, FINGERPRINT, hi, lo)


VALID = st.builds(_index, st.sampled_from(list(Mode)), st.integers(0, 40), st.integers(0, 2**32))


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` with a few bytes flipped, cut, inserted or the header's fields rewritten."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["flip", "truncate", "insert", "entries", "upper"]))
        if action == "flip" and out:
            i = draw(st.integers(0, len(out) - 1))
            out[i] ^= draw(st.integers(1, 255))
        elif action == "truncate":
            del out[draw(st.integers(0, len(out))):]
        elif action == "insert":
            i = draw(st.integers(0, len(out)))
            out[i:i] = draw(st.binary(min_size=1, max_size=16))
        elif len(out) >= HEADER_BYTES:
            # entries at offset 12, upper_bytes at 20: hostile counts that still look plausible
            offset = 12 if action == "entries" else 20
            value = draw(st.one_of(st.integers(0, 100), st.sampled_from([2**32 - 1, 2**32, 2**63, 2**64 - 1])))
            out[offset : offset + 8] = value.to_bytes(8, "big")
    return bytes(out)


def _check_parse(data: bytes) -> None:
    try:
        index = EncryptedIndex.parse(data)
    except IndexFormatError as exc:
        assert_clear(exc)
        return
    assert len(index) == index.header.entries
    hits = index.contains(bytes(64 * 3))
    assert hits.shape == (3,)


@given(st.binary(max_size=400))
def test_random_bytes_are_an_index_or_an_index_format_error(data: bytes) -> None:
    _check_parse(data)


@given(st.binary(max_size=200))
def test_random_bytes_after_a_valid_magic(tail: bytes) -> None:
    _check_parse(MAGIC + tail)


@given(st.data())
def test_mutated_indexes_are_refused_or_still_consistent(data: st.DataObject) -> None:
    _check_parse(data.draw(mutated(data.draw(VALID))))


@given(st.sampled_from(list(Mode)), st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1))
def test_header_with_hostile_counts(mode: Mode, entries: int, upper_bytes: int) -> None:
    raw = bytearray(IndexHeader(mode, 0, KEY_ID, FINGERPRINT).encode())
    raw[12:20] = entries.to_bytes(8, "big")
    raw[20:28] = upper_bytes.to_bytes(8, "big")
    _check_parse(bytes(raw))


# --- the holder's manifest and index files --------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


def _committed(directory: Path) -> dict[str, object]:
    indexes = {("Fuzz County", mode): _index(mode, 5, 1) for mode in Mode}
    commit_indexes(directory, stage_indexes(directory, indexes, key_id=KEY_ID, schema_fingerprint=FINGERPRINT,
                                            schema_name="s", schema_version=1, records=5))
    return json.loads((directory / MANIFEST_NAME).read_text())


def _paths(doc: object, prefix: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Every key path into the manifest document."""
    if isinstance(doc, dict):
        return [prefix] + [p for k, v in doc.items() for p in _paths(v, (*prefix, k))]
    return [prefix]


def _open_checked(directory: Path) -> None:
    before = snapshot(directory)
    try:
        open_indexes(directory).close()
    except StoreError as exc:
        assert_clear(exc)
    assert snapshot(directory) == before, "opening the index store changed it"


@heavy()
@given(st.data())
def test_manifest_with_hostile_values(data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        doc = _committed(directory)
        for _ in range(data.draw(st.integers(1, 3))):
            path = data.draw(st.sampled_from(_paths(doc)))
            if not path:
                doc = data.draw(JSON)
                break
            parent = doc
            for key in path[:-1]:
                parent = parent[key]  # type: ignore[index]
            if data.draw(st.booleans()):
                del parent[path[-1]]  # type: ignore[attr-defined]
            else:
                parent[path[-1]] = data.draw(JSON)  # type: ignore[index]
        (directory / MANIFEST_NAME).write_text(json.dumps(doc))
        _open_checked(directory)


@heavy()
@given(st.binary(max_size=300))
def test_manifest_of_random_bytes(raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        _committed(directory)
        (directory / MANIFEST_NAME).write_bytes(raw)
        _open_checked(directory)


@heavy()
@given(st.data())
def test_index_file_mutated_under_its_manifest(data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        _committed(directory)
        victim = data.draw(st.sampled_from(sorted(directory.glob("*.idx"))))
        victim.write_bytes(data.draw(mutated(victim.read_bytes())))
        _open_checked(directory)


@pytest.mark.parametrize("name", ["a\x00b.idx", "", "..", "/", "missing.idx", "x" * 300])
def test_manifest_naming_an_impossible_file(name: str) -> None:
    """Regression: a NUL byte (ValueError) or an over-long name (OSError) escaped open_indexes."""
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        doc = _committed(directory)
        next(e for e in doc["indexes"] if e["kind"] == "membership")["file"] = name
        (directory / MANIFEST_NAME).write_text(json.dumps(doc))
        _open_checked(directory)


@pytest.mark.parametrize("value", [None, 1, "x", {}, [{"file": "a"}], [1]])
def test_manifest_whose_indexes_is_not_a_list_of_tables(value: object) -> None:
    """Regression (found by the long run): 'indexes': null raised AttributeError from read_manifest."""
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        doc = _committed(directory)
        doc["indexes"] = value
        (directory / MANIFEST_NAME).write_text(json.dumps(doc))
        _open_checked(directory)
