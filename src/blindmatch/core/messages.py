"""Protocol messages of a Match session, and their canonical encodings for the transcript.

The wire carries these as protobuf (``proto/blindmatch/v1``); the transcript hash is
computed over the canonical encodings defined here, so it does not depend on how either
peer's protobuf library serialises (SPEC.md, "Transcript").
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field

from blindmatch.crypto.group import ELEMENT_BYTES, InvalidElementError, decode_element
from blindmatch.vocabulary import Mode

SESSION_ID_BYTES = 16
DIGEST_BYTES = 32


def _lp(data: bytes) -> bytes:
    """Length-prefixed field: 4-byte big-endian length, then the bytes."""
    return struct.pack(">I", len(data)) + data


@dataclass(frozen=True)
class Hello:
    """Requester -> holder: what the requester is about to send, and under which authority."""

    protocol_version: int
    session_id: bytes
    mode: Mode
    key_id: bytes
    schema_fingerprint: bytes
    index_digest: bytes
    element_count: int
    batch_size: int
    batch_digests: tuple[bytes, ...]
    authorization: bytes = b""

    def canonical(self) -> bytes:
        return b"".join(
            [
                b"\x01",
                struct.pack(">I", self.protocol_version),
                _lp(self.session_id),
                _lp(self.mode.value.encode()),
                _lp(self.key_id),
                _lp(self.schema_fingerprint),
                _lp(self.index_digest),
                struct.pack(">QI", self.element_count, self.batch_size),
                _lp(b"".join(self.batch_digests)),
                _lp(self.authorization),
            ]
        )


@dataclass(frozen=True)
class Accept:
    """Holder -> requester: the session is authorised; batches may flow."""

    session_id: bytes
    max_batch: int

    def canonical(self) -> bytes:
        return b"\x02" + _lp(self.session_id) + struct.pack(">I", self.max_batch)


@dataclass(frozen=True)
class BlindedBatch:
    seq: int
    elements: bytes  # count * 32 bytes

    def canonical(self) -> bytes:
        return b"\x03" + struct.pack(">I", self.seq) + _lp(self.elements)


@dataclass(frozen=True)
class EvaluatedBatch:
    """Holder -> requester: one evaluated batch and its proof.

    Membership: ``proof`` is RFC 9497's ``c || s`` (64 bytes) over this batch's blinded and
    evaluated elements under the tweaked key of the session's info. Cardinality: the
    elements are shuffled across the session, so no batch is proven alone; ``proof`` is
    this batch's part of the session's one shuffle proof (``ShuffleProof.batch_part``,
    SPEC.md 5.1 and 6.1), which the requester checks once every part is in.
    """

    seq: int
    elements: bytes
    proof: bytes = b""

    def canonical(self) -> bytes:
        return b"\x04" + struct.pack(">I", self.seq) + _lp(self.elements) + _lp(self.proof)


@dataclass(frozen=True)
class Close:
    """Requester -> holder after the last evaluated batch: its transcript hash.

    ``signature`` and ``signer_key`` carry the requester's audit signature over the
    transcript hash, ``checkpoint_note`` its signed audit checkpoint (SPEC.md 10.4.1); the
    core passes them through untouched (audit is a layer above) and none of them is part
    of the transcript: each is signed on its own.
    """

    session_id: bytes
    transcript_hash: bytes
    signature: bytes = field(default=b"", compare=False)
    signer_key: bytes = field(default=b"", compare=False)
    checkpoint_note: bytes = field(default=b"", compare=False)


@dataclass(frozen=True)
class Closed:
    """Holder -> requester: the holder's transcript hash and element count agree.

    Like ``Close``, the audit fields (signature, signer key, the checkpoint covering the
    holder's record of this session) are filled in by the audit layer, outside the transcript.
    """

    session_id: bytes
    transcript_hash: bytes
    element_count: int
    signature: bytes = field(default=b"", compare=False)
    signer_key: bytes = field(default=b"", compare=False)
    checkpoint_note: bytes = field(default=b"", compare=False)


@dataclass(frozen=True)
class Abort:
    """Either side: the session ends now. ``code`` is one of ``ProtocolError.CODES``."""

    code: str
    message: str


Message = Hello | Accept | BlindedBatch | EvaluatedBatch | Close | Closed | Abort


def batch_digest(elements: bytes) -> bytes:
    """SHA-256 of one blinded batch's concatenated elements."""
    return hashlib.sha256(elements).digest()


def check_elements(elements: bytes) -> None:
    """Every 32-byte element of a batch canonical and not the identity (RFC 9497
    DeserializeElement), else ``InvalidElementError`` naming the first bad one.

    For the batches whose elements are not validated by arithmetic on arrival: the
    cardinality batches either side holds until the session's last one.
    """
    for index in range(len(elements) // ELEMENT_BYTES):
        try:
            decode_element(elements[index * ELEMENT_BYTES : (index + 1) * ELEMENT_BYTES])
        except InvalidElementError as exc:
            raise InvalidElementError(f"element {index} is invalid: {exc}") from None


def blinded_commitment(element_count: int, batch_digests: tuple[bytes, ...]) -> bytes:
    """What the official signs: binds the session's count and every blinded batch, in order."""
    return hashlib.sha256(
        b"blindmatch/v1 blinded-commitment" + struct.pack(">Q", element_count) + b"".join(batch_digests)
    ).digest()


class Transcript:
    """Running hash of a session; both peers reach the same value whatever the interleaving.

    transcript_hash = SHA-256("blindmatch/v1 transcript" || Hello || Accept ||
    SHA-256(blinded batches in seq order) || SHA-256(evaluated batches in seq order)),
    each message in its canonical encoding. Each direction of a stream is ordered, so the
    two sub-hashes see the same sequence on both sides.
    """

    def __init__(self) -> None:
        self._head = hashlib.sha256(b"blindmatch/v1 transcript")
        self._blinded = hashlib.sha256()
        self._evaluated = hashlib.sha256()

    def add(self, message: Hello | Accept | BlindedBatch | EvaluatedBatch) -> None:
        if isinstance(message, BlindedBatch):
            self._blinded.update(message.canonical())
        elif isinstance(message, EvaluatedBatch):
            self._evaluated.update(message.canonical())
        else:
            self._head.update(message.canonical())

    def digest(self) -> bytes:
        final = self._head.copy()
        final.update(self._blinded.digest())
        final.update(self._evaluated.digest())
        return final.digest()
