"""Signed session requests (``policy.request``): the envelope the holder receives in a Hello.

``open_envelope`` is the holder's first look at bytes the requester chose: any bytes give
a request or ``PolicyRefusal("unsigned")``; ``SessionRequest.decode`` gives a request that
re-encodes to exactly its input, or ``RequestFormatError``; ``verify_request_signature``
answers True or False for any signature and key bytes.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fuzz_support import assert_clear
from hypothesis import given
from hypothesis import strategies as st

from blindmatch.policy.errors import PolicyRefusal
from blindmatch.policy.request import (
    MAX_ENVELOPE_BYTES,
    REQUEST_TAG,
    RequestFormatError,
    SessionRequest,
    open_envelope,
    sign_request,
    verify_request_signature,
)

pytestmark = pytest.mark.fuzz

OFFICIAL_KEY = Ed25519PrivateKey.from_private_bytes(b"\x07" * 32)
OFFICIAL_PUB = OFFICIAL_KEY.public_key().public_bytes_raw()
ISSUED = datetime(2026, 1, 1, tzinfo=UTC)
REQUEST = SessionRequest(
    organisation="County Court", official="Jane Clerk", mode="membership", record_count=10, held_back=0,
    legal_basis="Act s. 1", nonce=b"n" * 16, issued_at=ISSUED, expires_at=ISSUED.replace(hour=1),
    session_id=b"s" * 16, key_id=b"k" * 32, index_digest=b"d" * 32, blinded_commitment=b"c" * 32,
)
ENVELOPE = sign_request(REQUEST, OFFICIAL_KEY)


def _check_decode(data: bytes) -> None:
    try:
        request = SessionRequest.decode(data)
    except RequestFormatError as exc:
        assert_clear(exc)
        return
    assert request.encode() == data


def _check_envelope(envelope: bytes) -> None:
    try:
        request, signatures = open_envelope(envelope)
    except PolicyRefusal as exc:
        assert exc.reason == "unsigned" and exc.message.strip()
        return
    assert request.encode() + b"".join(signatures) == envelope
    assert all(isinstance(verify_request_signature(request, sig, OFFICIAL_PUB), bool) for sig in signatures)


@given(st.binary(max_size=600))
def test_random_bytes_decode_or_raise_request_format_error(data: bytes) -> None:
    _check_decode(data)
    _check_decode(REQUEST_TAG + data)


@given(st.binary(max_size=600))
def test_random_envelopes_open_or_are_refused_as_unsigned(envelope: bytes) -> None:
    _check_envelope(envelope)


@st.composite
def mutated_envelopes(draw: st.DrawFn) -> bytes:
    out = bytearray(ENVELOPE)
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(out)))
        action = draw(st.sampled_from(["flip", "cut", "insert", "length"]))
        if action == "flip" and i < len(out):
            out[i] ^= draw(st.integers(1, 255))
        elif action == "cut":
            del out[i : i + draw(st.integers(1, 40))]
        elif action == "insert":
            out[i:i] = draw(st.binary(min_size=1, max_size=40))
        elif i + 2 <= len(out):  # a length prefix or timestamp byte pair set to something hostile
            out[i : i + 2] = struct.pack(">H", draw(st.sampled_from([0, 1, 255, 256, 257, 0xFFFF])))
    return bytes(out)


@given(mutated_envelopes())
def test_mutated_envelopes_never_verify_unless_unchanged(envelope: bytes) -> None:
    _check_envelope(envelope)
    if envelope != ENVELOPE:
        try:
            request, signatures = open_envelope(envelope)
        except PolicyRefusal:
            return
        # Dual control: an envelope may repeat the one valid signature; the request itself cannot change.
        if request.encode() != ENVELOPE[:-64]:
            assert not any(verify_request_signature(request, sig, OFFICIAL_PUB) for sig in signatures)


TEXT = st.text(max_size=300)


@given(organisation=TEXT, official=TEXT, mode=TEXT, legal_basis=TEXT,
       record_count=st.integers(0, 2**64 - 1), held_back=st.integers(0, 2**64 - 1),
       issued=st.integers(0, 2**64 - 1), expires=st.integers(0, 2**64 - 1))
def test_canonical_layout_with_hostile_field_values(
    organisation: str, official: str, mode: str, legal_basis: str, record_count: int, held_back: int,
    issued: int, expires: int,
) -> None:
    """Well-framed requests (correct length prefixes) whose values break the field rules."""

    def text(value: str) -> bytes:
        raw = value.encode("utf-8", "surrogatepass")[:0xFFFF]
        return struct.pack(">H", len(raw)) + raw

    data = b"".join([
        REQUEST_TAG, text(organisation), text(official), text(mode), struct.pack(">QQ", record_count, held_back),
        text(legal_basis), b"n" * 16, struct.pack(">QQ", issued, expires), b"s" * 16, b"k" * 32, b"d" * 32, b"c" * 32,
    ])
    _check_decode(data)
    if len(data) + 64 <= MAX_ENVELOPE_BYTES:
        _check_envelope(data + bytes(64))


@given(st.binary(max_size=80), st.binary(max_size=40))
def test_signature_check_is_a_bool_for_any_signature_and_key(signature: bytes, public_key: bytes) -> None:
    assert verify_request_signature(REQUEST, signature, public_key) in (False, True)
    assert not verify_request_signature(REQUEST, signature, OFFICIAL_PUB) or signature == ENVELOPE[-64:]
