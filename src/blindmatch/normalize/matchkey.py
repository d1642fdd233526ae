"""The byte encoding of match keys and of the schema fingerprint (protocol/SPEC.md section 8).

Every variable-length item is prefixed with its length, so no two different
(schema, tier, parts) tuples can encode to the same bytes, whatever the values contain.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Sequence
from typing import Any

KEY_DOMAIN = b"blindmatch/match-key/v1"
FINGERPRINT_DOMAIN = b"blindmatch/schema-fingerprint/v1"
# RFC 9497 encodes the OPRF input with a 2-byte length: a key must fit.
MAX_KEY_BYTES = 0xFFFF

_U32 = struct.Struct(">I")


def lp(data: bytes) -> bytes:
    """``len(data)`` as a 4-byte big-endian integer, then ``data``."""
    return _U32.pack(len(data)) + data


def encode_key(schema_name: str, schema_version: int, tier: str, parts: Sequence[tuple[str, str]]) -> bytes:
    """``lp(domain) lp(schema) u32(version) lp(tier) u32(n) [lp(part) lp(value)]*n``, all UTF-8."""
    out = [
        lp(KEY_DOMAIN),
        lp(schema_name.encode()),
        _U32.pack(schema_version),
        lp(tier.encode()),
        _U32.pack(len(parts)),
    ]
    for ref, value in parts:
        out.append(lp(ref.encode()))
        out.append(lp(value.encode()))
    key = b"".join(out)
    if len(key) > MAX_KEY_BYTES:
        raise ValueError(f"match key of tier {tier!r} is {len(key)} bytes, more than {MAX_KEY_BYTES}")
    return key


def canonical_json(obj: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8: one byte string per JSON value."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def fingerprint(schema_doc: dict[str, Any], normalizer_versions: dict[str, Any]) -> bytes:
    """SHA-256 of ``lp(domain) lp(canonical schema) lp(canonical normaliser versions)``."""
    return hashlib.sha256(
        lp(FINGERPRINT_DOMAIN) + lp(canonical_json(schema_doc)) + lp(canonical_json(normalizer_versions))
    ).digest()
