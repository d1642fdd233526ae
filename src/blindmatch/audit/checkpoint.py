"""Signed checkpoints in the signed-note format (golang.org/x/mod/sumdb/note).

A checkpoint commits to the log's tree size and root hash at a point in time.
The body follows C2SP tlog-checkpoint (origin, size, base64 root) with the
time as an extension line, so existing note/checkpoint tooling can parse it:

    <origin>\\n<tree size>\\n<base64 root hash>\\n<RFC 3339 UTC time>\\n
    \\n
    \\u2014 <key name> <base64(4-byte key hash || 64-byte Ed25519 signature)>\\n

The signature covers the body bytes exactly. In the checkpoints file every
note is followed by one empty line, so the file is a sequence of
``body \\n sigs \\n`` blocks that can be split without ambiguity and whose
last block is visibly incomplete after a torn write.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from blindmatch.audit.events import valid_origin
from blindmatch.audit.keys import key_hash, raw_public_key, verify_ed25519
from blindmatch.vocabulary import BlindmatchError

SIG_PREFIX = "\u2014 "
# One note plus its separating empty line: body lines, empty line, signature lines, empty line.
NOTE_BLOCK_RE = re.compile(rb"((?:[^\n]+\n)+)\n((?:\xe2\x80\x94 [^\n]+\n)+)\n")
# Where NOTE_BLOCK_RE could match, found in linear time: the end of a non-empty body line,
# the empty line, the signature lines and the closing empty line (see complete_note_after).
_NOTE_END_RE = re.compile(rb"(?<=[^\n])\n\n(?:\xe2\x80\x94 [^\n]+\n)+\n")
_DECIMAL_RE = re.compile(r"0|[1-9][0-9]{0,18}")


class CheckpointError(BlindmatchError, ValueError):
    """A checkpoint note is malformed or its signature does not verify."""


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement: the log ``origin`` had ``size`` entries with ``root`` at ``time``."""

    origin: str
    size: int
    root: bytes
    time: str
    note: str

    def body(self) -> str:
        """The signed text."""
        return format_body(self.origin, self.size, self.root, self.time)


def format_body(origin: str, size: int, root: bytes, time: str) -> str:
    """The checkpoint text that is signed."""
    return f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n{time}\n"


def sign_checkpoint(
    key: Ed25519PrivateKey, origin: str, size: int, root: bytes, time: str,
    also: tuple[Ed25519PrivateKey, ...] = (),
) -> Checkpoint:
    """Create the signed note; the key name is the origin.

    ``also`` adds signature lines by further keys under the same name: the handover
    checkpoint of an audit key rotation is signed by the retiring and the new key (SPEC.md 2.4).
    """
    if not valid_origin(origin):
        raise ValueError(f"invalid origin {origin!r}")
    body = format_body(origin, size, root, time)
    lines = []
    for signer in (key, *also):
        blob = key_hash(origin, raw_public_key(signer)) + signer.sign(body.encode())
        lines.append(f"{SIG_PREFIX}{origin} {base64.b64encode(blob).decode()}\n")
    note = f"{body}\n{''.join(lines)}"
    return Checkpoint(origin, size, root, time, note)


def parse_checkpoint(note: str, name: str, public_key: bytes) -> Checkpoint:
    """Parse ``note`` and check it carries a valid signature by (``name``, ``public_key``)."""
    body, sep, sigs = note.partition("\n\n")
    if not sep or not sigs.endswith("\n"):
        raise CheckpointError("not a signed note")
    lines = body.split("\n")
    if len(lines) != 4:
        raise CheckpointError("checkpoint body must have 4 lines")
    origin, size_text, root_text, time = lines
    if origin != name:
        raise CheckpointError(f"origin {origin!r} is not the log's origin {name!r}")
    if not _DECIMAL_RE.fullmatch(size_text):
        raise CheckpointError("tree size is not a decimal number")
    try:
        root = base64.b64decode(root_text, validate=True)
    except ValueError as exc:  # binascii.Error, or non-ASCII text
        raise CheckpointError("root hash is not base64") from exc
    if len(root) != 32:
        raise CheckpointError("root hash is not 32 bytes")
    wanted_hash = key_hash(name, public_key)
    signed = (body + "\n").encode()
    for line in sigs[:-1].split("\n"):
        if not line.startswith(SIG_PREFIX):
            raise CheckpointError("malformed signature line")
        sig_name, _, encoded = line[len(SIG_PREFIX):].partition(" ")
        try:
            blob = base64.b64decode(encoded, validate=True)
        except ValueError as exc:  # binascii.Error, or non-ASCII text
            raise CheckpointError("signature is not base64") from exc
        if sig_name == name and blob[:4] == wanted_hash:
            if len(blob) == 68 and verify_ed25519(public_key, blob[4:], signed):
                return Checkpoint(origin, int(size_text), root, time, note)
            raise CheckpointError("signature does not verify")
    raise CheckpointError(f"no signature by the log's audit key {name!r}")


def signed_by(checkpoint: Checkpoint, public_key: bytes) -> bool:
    """Whether ``checkpoint`` carries a valid signature by ``public_key`` (one of its signers)."""
    try:
        parse_checkpoint(checkpoint.note, checkpoint.origin, public_key)
    except CheckpointError:
        return False
    return True


def split_notes(data: bytes) -> tuple[list[str], int]:
    """Split a checkpoints file into note texts.

    Returns the complete notes and the byte offset just after the last one;
    anything past that offset is a torn (incomplete) trailing write.
    """
    notes: list[str] = []
    pos = 0
    while match := NOTE_BLOCK_RE.match(data, pos):
        try:
            notes.append((match.group(1) + b"\n" + match.group(2)).decode())
        except UnicodeDecodeError:
            break
        pos = match.end()
    return notes, pos


def complete_note_after(data: bytes, offset: int) -> bool:
    """Whether a complete note block starts at or after ``offset`` (after a torn tail, damage).

    Same answer as ``NOTE_BLOCK_RE.search(data, offset)``, whose body part may start at any
    byte and so rescans the remaining lines from each one: quadratic on a large tail. A
    block exists exactly where a non-empty body line ends right before the empty line and
    signature lines, which ``_NOTE_END_RE`` finds in one pass.
    """
    return _NOTE_END_RE.search(data, offset + 1) is not None  # the body's last byte is at offset or later
