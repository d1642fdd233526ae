"""The encrypted index: the holder's OPRF outputs as an Elias-Fano coded sorted set.

Each output contributes ``(bucket, lo)`` where ``bucket = floor(hi * n / 2^64)`` and ``lo``
is 64 further output bits. Sorted by (bucket, lo), the buckets are written in unary
(bit ``bucket_i + i`` set in a ``2n``-bit vector) and the ``lo`` words verbatim: 66 bits per
entry, i.e. log2(1/p) + 2 with a per-query false-match probability p = 2^-64 (SPEC.md
section "Encrypted index" derives the bound). A requester decodes it once into two numpy
arrays and answers lookups with ``searchsorted``: no Python loop over entries or queries.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

import numpy as np

from blindmatch.core.outputs import bucket_of, split_outputs
from blindmatch.vocabulary import BlindmatchError, Mode

MAGIC = b"BMINDEX1"
LOWER_BITS = 64
# magic, kind, lower_bits, reserved(2), entries, upper_bytes, key_id, schema_fingerprint
_HEADER = struct.Struct(">8sBB2xQQ32s32s")
HEADER_BYTES = _HEADER.size
_KIND_CODES = {Mode.MEMBERSHIP: 0, Mode.CARDINALITY: 1}
_KIND_BY_CODE = {v: k for k, v in _KIND_CODES.items()}
MAX_ENTRIES = 2**32 - 1


class IndexFormatError(BlindmatchError, ValueError):
    """The bytes are not a well-formed blindmatch v1 encrypted index."""


@dataclass(frozen=True)
class IndexHeader:
    kind: Mode
    entries: int
    key_id: bytes
    schema_fingerprint: bytes

    @property
    def upper_bytes(self) -> int:
        return (2 * self.entries + 7) // 8

    @property
    def total_bytes(self) -> int:
        return HEADER_BYTES + self.upper_bytes + 8 * self.entries

    def encode(self) -> bytes:
        return _HEADER.pack(
            MAGIC, _KIND_CODES[self.kind], LOWER_BITS, self.entries, self.upper_bytes, self.key_id, self.schema_fingerprint
        )

    @classmethod
    def decode(cls, data: bytes) -> IndexHeader:
        if len(data) < HEADER_BYTES:
            raise IndexFormatError("index shorter than its header")
        magic, kind, lower_bits, entries, upper_bytes, key_id, fingerprint = _HEADER.unpack_from(data)
        if magic != MAGIC:
            raise IndexFormatError("not a blindmatch v1 index (bad magic)")
        if kind not in _KIND_BY_CODE:
            raise IndexFormatError(f"unknown index kind {kind}")
        if lower_bits != LOWER_BITS:
            raise IndexFormatError(f"unsupported lower_bits {lower_bits}")
        header = cls(_KIND_BY_CODE[kind], entries, key_id, fingerprint)
        if entries > MAX_ENTRIES or upper_bytes != header.upper_bytes:
            raise IndexFormatError("inconsistent entry count")
        return header


_BLOCK = 1 << 20  # entries per step of the encoder's temporaries


def encode_index(header_kind: Mode, key_id: bytes, schema_fingerprint: bytes, hi: np.ndarray, lo: np.ndarray) -> bytes:
    """Encode the entries given as the ``hi``/``lo`` words of their outputs (any order).

    Temporaries are made block by block so that, besides the inputs and the output,
    peak memory is one sort permutation and one bucket array (16 bytes per entry).
    """
    n = int(hi.shape[0])
    header = IndexHeader(header_kind, n, key_id, schema_fingerprint)
    if n == 0:
        return header.encode()
    if n > MAX_ENTRIES:
        raise ValueError("an index holds at most 2^32 - 1 entries; shard the holder's records")
    buckets = np.empty(n, dtype=np.uint64)
    for s in range(0, n, _BLOCK):
        buckets[s : s + _BLOCK] = bucket_of(hi[s : s + _BLOCK], n)
    order = np.lexsort((lo, buckets))
    buckets = buckets[order]
    for s in range(0, n, _BLOCK):  # Elias-Fano: entry i sets bit bucket_i + i
        buckets[s : s + _BLOCK] += np.arange(s, min(s + _BLOCK, n), dtype=np.uint64)
    bits = np.zeros(2 * n, dtype=np.uint8)
    bits[buckets] = 1
    del buckets
    out = np.empty(header.total_bytes, dtype=np.uint8)
    out[:HEADER_BYTES] = np.frombuffer(header.encode(), dtype=np.uint8)
    out[HEADER_BYTES : HEADER_BYTES + header.upper_bytes] = np.packbits(bits)
    del bits
    lower = out[HEADER_BYTES + header.upper_bytes :].view(">u8")
    for s in range(0, n, _BLOCK):
        lower[s : s + _BLOCK] = lo[order[s : s + _BLOCK]]
    return out.tobytes()


def index_digest(data: bytes) -> bytes:
    """SHA-256 of the whole encoded index: what GetInfo and the session hello name."""
    return hashlib.sha256(data).digest()


class EncryptedIndex:
    """A decoded index ready for vectorised lookups."""

    def __init__(self, header: IndexHeader, buckets: np.ndarray, lows: np.ndarray, digest: bytes) -> None:
        self.header = header
        self.digest = digest
        self._buckets = buckets
        self._lows = lows

    @property
    def kind(self) -> Mode:
        return self.header.kind

    def __len__(self) -> int:
        return self.header.entries

    @classmethod
    def parse(cls, data: bytes) -> EncryptedIndex:
        header = IndexHeader.decode(data)
        if len(data) != header.total_bytes:
            raise IndexFormatError(f"index is {len(data)} bytes, header says {header.total_bytes}")
        n = header.entries
        upper = np.frombuffer(data, dtype=np.uint8, count=header.upper_bytes, offset=HEADER_BYTES)
        ones = np.flatnonzero(np.unpackbits(upper)).astype(np.uint64)
        if ones.shape[0] != n:
            raise IndexFormatError("upper bit vector does not hold one bit per entry")
        buckets = ones - np.arange(n, dtype=np.uint64)
        if n and int(buckets[-1]) >= n:
            raise IndexFormatError("bucket out of range")
        lows = np.frombuffer(data, dtype=">u8", count=n, offset=HEADER_BYTES + header.upper_bytes).astype(np.uint64)
        return cls(header, buckets, lows, index_digest(data))

    def contains(self, outputs: bytes) -> np.ndarray:
        """For each 64-byte output in ``outputs``, whether the index holds it (bool array)."""
        hi, lo = split_outputs(outputs)
        hits = np.zeros(hi.shape[0], dtype=bool)
        n = self.header.entries
        if n == 0 or hi.shape[0] == 0:
            return hits
        wanted = bucket_of(hi, n)
        left = np.searchsorted(self._buckets, wanted, side="left")
        width = np.searchsorted(self._buckets, wanted, side="right") - left
        # Buckets hold one entry on average; step through the few candidates of each in lockstep.
        for j in range(int(width.max())):
            live = width > j
            candidate = np.minimum(left + j, n - 1)
            hits |= live & (self._lows[candidate] == lo)
        return hits


def false_match_bound(entries: int, queries: int) -> float:
    """Upper bound on P(any of ``queries`` outputs falsely matches one of ``entries``).

    Union bound over query/entry pairs: each pair collides only if both land in the same
    bucket (probability at most 1/n + 2^-64) and agree on 64 independent bits (2^-64).
    """
    if entries == 0 or queries == 0:
        return 0.0
    return queries * entries * (1.0 / entries + 2.0**-64) * 2.0**-64
