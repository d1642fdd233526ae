"""Signed session request: encoding, strict decoding, envelope, test vector."""

from __future__ import annotations

import json
import struct
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from blindmatch.policy import PolicyRefusal, RequestFormatError, SessionRequest, open_envelope, sign_request, testvector
from blindmatch.policy.request import verify_request_signature

VECTOR_FILE = Path(__file__).resolve().parents[2] / "protocol" / "test-vectors" / "signed-request.json"
REQUEST = testvector.REQUEST
KEY = Ed25519PrivateKey.from_private_bytes(testvector.SEED)


def test_round_trip() -> None:
    encoded = REQUEST.encode()
    assert SessionRequest.decode(encoded) == REQUEST
    assert encoded.startswith(b"BLINDMATCH-SESSION-REQUEST-V1")


def test_datetimes_normalised_to_utc() -> None:
    plus2 = timezone(timedelta(hours=2))
    request = replace(REQUEST, issued_at=datetime(2026, 3, 1, 11, 30, tzinfo=plus2))
    assert request.issued_at.tzinfo is UTC and request.issued_at == REQUEST.issued_at
    assert request.encode() == REQUEST.encode()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"mode": "everything"}, "mode"),
        ({"organisation": ""}, "organisation"),
        ({"official": "Alice\nFAKE LOG LINE"}, "control"),
        ({"legal_basis": "x" * 1025}, "legal_basis"),
        ({"record_count": -1}, "record_count"),
        ({"held_back": 2**63}, "held_back"),
        ({"record_count": True}, "record_count"),
        ({"nonce": b"\x00" * 15}, "nonce"),
        ({"blinded_commitment": b"\x00" * 33}, "blinded_commitment"),
        ({"issued_at": datetime(2026, 3, 1, 9, 30)}, "timezone-aware"),
        ({"issued_at": datetime(2026, 3, 1, 9, 30, 0, 5, tzinfo=UTC)}, "whole seconds"),
    ],
)
def test_invalid_fields_rejected(changes: dict[str, object], message: str) -> None:
    with pytest.raises(RequestFormatError, match=message):
        replace(REQUEST, **changes)


def test_decode_rejects_trailing_bytes() -> None:
    with pytest.raises(RequestFormatError, match="trailing"):
        SessionRequest.decode(REQUEST.encode() + b"\x00")


@pytest.mark.parametrize("cut", [0, 10, 29, 31, 60, 200])
def test_decode_rejects_truncation(cut: int) -> None:
    with pytest.raises(RequestFormatError):
        SessionRequest.decode(REQUEST.encode()[:cut])


def test_decode_rejects_bad_tag() -> None:
    encoded = REQUEST.encode()
    with pytest.raises(RequestFormatError, match="tag"):
        SessionRequest.decode(encoded.replace(b"-V1", b"-V2", 1))


def _swap_text(encoded: bytes, old: bytes, new: bytes) -> bytes:
    marker = struct.pack(">H", len(old)) + old
    assert encoded.count(marker) == 1
    return encoded.replace(marker, struct.pack(">H", len(new)) + new)


def test_decode_rejects_unknown_mode() -> None:
    with pytest.raises(RequestFormatError, match="mode"):
        SessionRequest.decode(_swap_text(REQUEST.encode(), b"membership", b"everything"))


def test_decode_rejects_invalid_utf8_and_empty_text() -> None:
    with pytest.raises(RequestFormatError, match="UTF-8"):
        SessionRequest.decode(_swap_text(REQUEST.encode(), b"Alice Clerk", b"Alice \xff"))
    with pytest.raises(RequestFormatError, match="length 0"):
        SessionRequest.decode(_swap_text(REQUEST.encode(), b"Alice Clerk", b""))


def test_decode_rejects_length_past_end() -> None:
    short = b"BLINDMATCH-SESSION-REQUEST-V1" + struct.pack(">H", 200) + b"County Court"
    with pytest.raises(RequestFormatError, match="truncated"):
        SessionRequest.decode(short)


def test_decode_rejects_length_over_limit() -> None:
    oversized = b"BLINDMATCH-SESSION-REQUEST-V1" + struct.pack(">H", 257) + b"x" * 257
    with pytest.raises(RequestFormatError, match=r"outside 1\.\.256"):
        SessionRequest.decode(oversized)


def test_envelope_signs_the_encoding() -> None:
    envelope = sign_request(REQUEST, KEY)
    request, (signature,) = open_envelope(envelope)
    assert request == REQUEST
    assert envelope == REQUEST.encode() + signature and len(signature) == 64
    public = KEY.public_key().public_bytes_raw()
    assert verify_request_signature(request, signature, public)
    other = replace(REQUEST, record_count=REQUEST.record_count + 1)
    assert not verify_request_signature(other, signature, public)
    assert not verify_request_signature(request, bytes(64), public)


@pytest.mark.parametrize(
    "envelope",
    [b"", b"\x00" * 64, b"\x00" * 200, b"x" * 5000],
    ids=["empty", "signature-only", "garbage", "oversized"],
)
def test_malformed_envelope_is_unsigned(envelope: bytes) -> None:
    with pytest.raises(PolicyRefusal) as info:
        open_envelope(envelope)
    assert (info.value.reason, info.value.status) == ("unsigned", "UNAUTHENTICATED")


def test_envelope_with_extra_bytes_is_unsigned() -> None:
    with pytest.raises(PolicyRefusal, match="unsigned"):
        open_envelope(sign_request(REQUEST, KEY) + b"\x00")


def test_vector_file_is_generated_output() -> None:
    assert VECTOR_FILE.read_text(encoding="utf-8") == testvector.render()


def test_vector_matches_spec_layout_independently() -> None:
    """Rebuild the encoding from the SPEC's layout table, not from the implementation."""
    vector = json.loads(VECTOR_FILE.read_text(encoding="utf-8"))
    fields = vector["request"]

    def text(value: str) -> bytes:
        raw = value.encode("utf-8")
        return struct.pack(">H", len(raw)) + raw

    def seconds(value: str) -> bytes:
        return struct.pack(">Q", int(datetime.fromisoformat(value).timestamp()))

    expected = b"".join(
        [
            b"BLINDMATCH-SESSION-REQUEST-V1",
            text(fields["organisation"]),
            text(fields["official"]),
            text(fields["mode"]),
            struct.pack(">QQ", fields["record_count"], fields["held_back"]),
            text(fields["legal_basis"]),
            bytes.fromhex(fields["nonce"]),
            seconds(fields["issued_at"]),
            seconds(fields["expires_at"]),
            bytes.fromhex(fields["session_id"]),
            bytes.fromhex(fields["key_id"]),
            bytes.fromhex(fields["index_digest"]),
            bytes.fromhex(fields["blinded_commitment"]),
        ]
    )
    assert bytes.fromhex(vector["encoded_request"]) == expected
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(vector["ed25519_seed"]))
    assert key.public_key().public_bytes_raw().hex() == vector["public_key"]
    assert bytes.fromhex(vector["signature"]) == key.sign(expected)
    assert bytes.fromhex(vector["envelope"]) == expected + key.sign(expected)
    request, _ = open_envelope(bytes.fromhex(vector["envelope"]))
    assert request == REQUEST
