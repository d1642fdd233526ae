"""The signed session request: canonical encoding, signing and parsing.

A holder must be able to prove later who asked for which data, and a signature must
not be reusable for another session or other data. Hence one canonical byte string
per request (strict decoding, re-encoding must reproduce the input exactly), a
domain-separation tag so the signature cannot be confused with any other signed
object, and binding fields (session id, OPRF key id, index digest, commitment to
the blinded batches). The layout is normative: see SPEC, "Signed session request".
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from blindmatch.crypto.ed25519 import verify_strict
from blindmatch.policy.errors import PolicyRefusal
from blindmatch.vocabulary import BlindmatchError, Mode, Reason

MODES: tuple[str, ...] = tuple(Mode)

REQUEST_TAG = b"BLINDMATCH-SESSION-REQUEST-V1"
SIGNATURE_BYTES = 64
# Dual control needs several officials' signatures over one request; more than this many
# is never needed and only adds verification work on unauthenticated input.
MAX_SIGNATURES = 8
# Generous for the fields' limits below; bounds the work done on unauthenticated input.
MAX_ENVELOPE_BYTES = 4096

# UTF-8 byte limits of the text fields (all must be non-empty).
TEXT_LIMITS: dict[str, int] = {"organisation": 256, "official": 256, "mode": 32, "legal_basis": 200}  # the audit log's text limit
# Exact byte lengths of the binary fields.
BYTES_LENGTHS: dict[str, int] = {
    "nonce": 16,
    "session_id": 16,
    "key_id": 32,
    "index_digest": 32,
    "blinded_commitment": 32,
}
# Unsigned 64-bit on the wire, but below 2**63 so every value fits SQLite's INTEGER.
MAX_INT = 2**63 - 1

_U16 = struct.Struct(">H")
_U64 = struct.Struct(">Q")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class RequestFormatError(BlindmatchError, ValueError):
    """A session request (or its encoding) violates the SPEC format."""


def _check_text(name: str, value: object) -> bytes:
    if not isinstance(value, str):
        raise RequestFormatError(f"{name} must be a str")
    # Control and other unprintable characters (line separators, bidi overrides) would let a
    # peer forge or disguise lines in the holder's logs; the audit log refuses them too.
    if not value.isprintable():
        raise RequestFormatError(f"{name} must not contain control characters or other unprintable characters")
    try:
        raw = value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise RequestFormatError(f"{name} is not encodable as UTF-8") from exc
    if not 1 <= len(raw) <= TEXT_LIMITS[name]:
        raise RequestFormatError(f"{name} must be 1..{TEXT_LIMITS[name]} UTF-8 bytes")
    return raw


def _check_int(name: str, value: object) -> int:
    if type(value) is not int or not 0 <= value <= MAX_INT:
        raise RequestFormatError(f"{name} must be an int in 0..2**63-1")
    return value


def _check_time(name: str, value: object) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise RequestFormatError(f"{name} must be a timezone-aware datetime")
    if value.microsecond:
        raise RequestFormatError(f"{name} must be whole seconds (the wire carries seconds)")
    utc = value.astimezone(UTC)
    if utc < _EPOCH:
        raise RequestFormatError(f"{name} must not be before 1970-01-01T00:00:00Z")
    return utc


def _seconds(value: datetime) -> int:
    return int((value - _EPOCH).total_seconds())


@dataclass(frozen=True)
class SessionRequest:
    """What an official authorises: who asks, for what, under which law, for which data.

    Construction validates every field, so an instance is always encodable; datetimes
    are normalised to UTC.
    """

    organisation: str
    official: str
    mode: str
    record_count: int
    held_back: int
    legal_basis: str
    nonce: bytes
    issued_at: datetime
    expires_at: datetime
    session_id: bytes
    key_id: bytes
    index_digest: bytes
    blinded_commitment: bytes

    def __post_init__(self) -> None:
        for name in TEXT_LIMITS:
            _check_text(name, getattr(self, name))
        if self.mode not in MODES:
            raise RequestFormatError(f"mode must be one of {', '.join(MODES)}")
        for name in ("record_count", "held_back"):
            _check_int(name, getattr(self, name))
        for name in ("issued_at", "expires_at"):
            object.__setattr__(self, name, _check_time(name, getattr(self, name)))
        for name, length in BYTES_LENGTHS.items():
            value = getattr(self, name)
            if not isinstance(value, bytes) or len(value) != length:
                raise RequestFormatError(f"{name} must be exactly {length} bytes")

    def encode(self) -> bytes:
        """The canonical encoding (SPEC layout); this is exactly what is signed."""

        def text(name: str) -> bytes:
            raw: bytes = getattr(self, name).encode("utf-8")
            return _U16.pack(len(raw)) + raw

        return b"".join(
            (
                REQUEST_TAG,
                text("organisation"),
                text("official"),
                text("mode"),
                _U64.pack(self.record_count),
                _U64.pack(self.held_back),
                text("legal_basis"),
                self.nonce,
                _U64.pack(_seconds(self.issued_at)),
                _U64.pack(_seconds(self.expires_at)),
                self.session_id,
                self.key_id,
                self.index_digest,
                self.blinded_commitment,
            )
        )

    @classmethod
    def decode(cls, data: bytes) -> SessionRequest:
        """Parse a canonical encoding; anything else (trailing bytes, bad lengths,
        unknown mode, invalid UTF-8, non-canonical input) raises RequestFormatError."""
        request, used = cls.decode_prefix(data)
        if used != len(data):
            raise RequestFormatError(f"{len(data) - used} trailing bytes after the request")
        return request

    @classmethod
    def decode_prefix(cls, data: bytes) -> tuple[SessionRequest, int]:
        """Parse the canonical request at the start of ``data``; returns it and its length.

        The encoding is self-delimiting, which is what lets an envelope carry any number
        of signatures after it."""
        data = bytes(data)
        reader = _Reader(data)
        if reader.take(len(REQUEST_TAG)) != REQUEST_TAG:
            raise RequestFormatError("not a v1 session request (bad tag)")
        organisation = reader.text("organisation")
        official = reader.text("official")
        mode = reader.text("mode")
        record_count = reader.u64()
        held_back = reader.u64()
        legal_basis = reader.text("legal_basis")
        nonce = reader.take(BYTES_LENGTHS["nonce"])
        issued_at = reader.time()
        expires_at = reader.time()
        session_id = reader.take(BYTES_LENGTHS["session_id"])
        key_id = reader.take(BYTES_LENGTHS["key_id"])
        index_digest = reader.take(BYTES_LENGTHS["index_digest"])
        blinded_commitment = reader.take(BYTES_LENGTHS["blinded_commitment"])
        used = len(data) - reader.remaining()
        request = cls(
            organisation=organisation,
            official=official,
            mode=mode,
            record_count=record_count,
            held_back=held_back,
            legal_basis=legal_basis,
            nonce=nonce,
            issued_at=issued_at,
            expires_at=expires_at,
            session_id=session_id,
            key_id=key_id,
            index_digest=index_digest,
            blinded_commitment=blinded_commitment,
        )
        # Signatures are checked over the re-encoding: it must be the received bytes.
        if request.encode() != data[:used]:
            raise RequestFormatError("non-canonical encoding")
        return request, used


class _Reader:
    """Bounds-checked cursor over untrusted bytes."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def remaining(self) -> int:
        return len(self._data) - self._pos

    def take(self, n: int) -> bytes:
        if n > self.remaining():
            raise RequestFormatError("truncated request")
        chunk = self._data[self._pos : self._pos + n]
        self._pos += n
        return chunk

    def u64(self) -> int:
        value: int = _U64.unpack(self.take(8))[0]
        return value

    def text(self, name: str) -> str:
        (length,) = _U16.unpack(self.take(2))
        if not 1 <= length <= TEXT_LIMITS[name]:
            raise RequestFormatError(f"{name} length {length} outside 1..{TEXT_LIMITS[name]}")
        try:
            return self.take(length).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RequestFormatError(f"{name} is not valid UTF-8") from exc

    def time(self) -> datetime:
        seconds = self.u64()
        if seconds > MAX_INT:
            raise RequestFormatError("timestamp out of range")
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise RequestFormatError("timestamp out of range") from exc


def sign_request(request: SessionRequest, private_key: Ed25519PrivateKey) -> bytes:
    """The signed envelope of one official: ``encode(request) || Ed25519(private_key, encode(request))``."""
    return seal_envelope(request, [sign_encoded(request, private_key)])


def sign_encoded(request: SessionRequest, private_key: Ed25519PrivateKey) -> bytes:
    """One official's approval: their signature over the canonical encoding (64 bytes)."""
    return private_key.sign(request.encode())


def seal_envelope(request: SessionRequest, signatures: list[bytes] | tuple[bytes, ...]) -> bytes:
    """``encode(request) || signature_1 || ... || signature_k`` (SPEC 7.4.3), 1 <= k <= MAX_SIGNATURES.

    The first signature is the named official's; the others are co-signatures (dual
    control). The encoding is self-delimiting, so the signatures are the remaining bytes.
    """
    if not 1 <= len(signatures) <= MAX_SIGNATURES:
        raise RequestFormatError(f"an envelope carries 1..{MAX_SIGNATURES} signatures, not {len(signatures)}")
    if any(len(sig) != SIGNATURE_BYTES for sig in signatures):
        raise RequestFormatError(f"every signature must be {SIGNATURE_BYTES} bytes")
    return request.encode() + b"".join(signatures)


def open_envelope(envelope: bytes) -> tuple[SessionRequest, tuple[bytes, ...]]:
    """Split and parse an envelope without verifying it (the verifying keys depend on
    the officials). A malformed envelope is refused as ``unsigned``."""
    if not isinstance(envelope, bytes | bytearray) or not envelope:
        raise PolicyRefusal(Reason.UNSIGNED, "no signed session request")
    if len(envelope) > MAX_ENVELOPE_BYTES:
        raise PolicyRefusal(Reason.UNSIGNED, f"signed session request longer than {MAX_ENVELOPE_BYTES} bytes")
    envelope = bytes(envelope)
    try:
        request, used = SessionRequest.decode_prefix(envelope)
    except RequestFormatError as exc:
        raise PolicyRefusal(Reason.UNSIGNED, f"malformed session request: {exc}") from None
    tail = envelope[used:]
    count, extra = divmod(len(tail), SIGNATURE_BYTES)
    if count == 0 or extra or count > MAX_SIGNATURES:
        raise PolicyRefusal(
            Reason.UNSIGNED, f"a signed session request ends in 1..{MAX_SIGNATURES} signatures of {SIGNATURE_BYTES} bytes"
        )
    return request, tuple(tail[i : i + SIGNATURE_BYTES] for i in range(0, len(tail), SIGNATURE_BYTES))


def verify_request_signature(request: SessionRequest, signature: bytes, public_key: bytes) -> bool:
    """True when ``signature`` is the official's Ed25519 signature of this request."""
    return verify_strict(public_key, signature, request.encode())
