"""The C2SP tlog-witness add-checkpoint request body, and the witness's refusals.

    old <size>\\n
    <base64 consistency proof hash>\\n      (zero to 63 lines)
    \\n
    <signed checkpoint note>

Both the client and the witness use these helpers, so the two ends cannot drift.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass

from blindmatch.vocabulary import Reason

MAX_PROOF_LINES = 63
MAX_BODY_BYTES = 64 * 1024
_OLD_RE = re.compile(r"old (0|[1-9][0-9]{0,18})")

# Refusal reasons (their gRPC statuses are the vocabulary's), with the C2SP HTTP status each stands for.
UNKNOWN_LOG = Reason.UNKNOWN_LOG  # 404
BAD_SIGNATURE = Reason.BAD_SIGNATURE  # 403
BAD_REQUEST = Reason.BAD_REQUEST  # 400 (also a body that does not parse)
SIZE_CONFLICT = Reason.SIZE_CONFLICT  # 409, old size is not the witness's latest
FORK = Reason.FORK  # 409, same size as the latest but a different root
BAD_PROOF = Reason.BAD_PROOF  # 422
ORGANISATION_NOT_ALLOWED = Reason.ORGANISATION_NOT_ALLOWED  # 403, mTLS identity may not submit
TLS_VERSION = Reason.TLS_VERSION  # the connection is not TLS 1.3


class ProtocolFormatError(ValueError):
    """The request body is not a tlog-witness add-checkpoint body."""


@dataclass(frozen=True)
class AddCheckpoint:
    """A parsed request: the old size, the consistency proof and the checkpoint note."""

    old_size: int
    proof: tuple[bytes, ...]
    note: str


def format_add_checkpoint(old_size: int, proof: Sequence[bytes], note: str) -> bytes:
    """The request body for ``note`` with a consistency proof from ``old_size``."""
    if len(proof) > MAX_PROOF_LINES:
        raise ValueError(f"a consistency proof has at most {MAX_PROOF_LINES} hashes")
    lines = [f"old {old_size}\n"] + [base64.b64encode(h).decode() + "\n" for h in proof]
    return ("".join(lines) + "\n" + note).encode()


def parse_add_checkpoint(body: bytes) -> AddCheckpoint:
    """Parse a request body; every problem raises :class:`ProtocolFormatError`."""
    if len(body) > MAX_BODY_BYTES:
        raise ProtocolFormatError(f"request body is larger than {MAX_BODY_BYTES} bytes")
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise ProtocolFormatError("request body is not UTF-8") from None
    head, sep, note = text.partition("\n\n")
    if not sep:
        raise ProtocolFormatError("request body has no empty line before the checkpoint")
    lines = head.split("\n")
    match = _OLD_RE.fullmatch(lines[0])
    if not match:
        raise ProtocolFormatError("first line is not 'old <size>' (decimal, no leading zeros)")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise ProtocolFormatError(f"more than {MAX_PROOF_LINES} consistency proof lines")
    proof = []
    for number, line in enumerate(lines[1:], start=2):
        try:
            digest = base64.b64decode(line, validate=True)
        except binascii.Error:
            raise ProtocolFormatError(f"line {number}: proof hash is not base64") from None
        if len(digest) != 32:
            raise ProtocolFormatError(f"line {number}: proof hash is not 32 bytes")
        proof.append(digest)
    if not note.endswith("\n"):
        raise ProtocolFormatError("checkpoint note does not end with a newline")
    return AddCheckpoint(int(match.group(1)), tuple(proof), note)
