"""Witness cosignatures of checkpoints (C2SP tlog-cosignature, Ed25519 ``cosignature/v1``).

A log signs its own checkpoints, so its operator can rewrite and re-sign them. A
witness is an independent party that signs a checkpoint only after checking it
extends the last one it saw; its signature line is appended to the checkpoint
note as one more signed-note signature:

    \\u2014 <witness name> base64(key ID (4) || uint64_be timestamp || Ed25519 signature (64))

over the message ``"cosignature/v1\\ntime <timestamp>\\n" || checkpoint body``.
The key ID uses algorithm byte 0x04, so a witness key can never be mistaken for a
log's (0x01) key and the verifier key ``name+keyid+base64(0x04 || key)`` says what
it is.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from blindmatch.audit.checkpoint import SIG_PREFIX
from blindmatch.audit.events import valid_origin
from blindmatch.audit.keys import AuditKeyError, raw_public_key, verify_ed25519

ALG_COSIGNATURE_V1 = 0x04
COSIGNATURE_HEADER = "cosignature/v1\n"
MAX_TIMESTAMP = 2**63 - 1
_BLOB_BYTES = 4 + 8 + 64


@dataclass(frozen=True)
class WitnessKey:
    """A witness's public identity: its name and Ed25519 public key."""

    name: str
    public_key: bytes

    @property
    def key_id(self) -> bytes:
        return cosigner_key_id(self.name, self.public_key)

    def verifier_key(self) -> str:
        return format_witness_verifier_key(self.name, self.public_key)


@dataclass(frozen=True)
class Cosignature:
    """One verified cosignature: ``witness`` vouched for the checkpoint body at ``timestamp``."""

    witness: str
    timestamp: int
    signature: bytes
    line: str


def cosigner_key_id(name: str, public_key: bytes) -> bytes:
    """SHA-256(name || "\\n" || 0x04 || public key)[:4] (tlog-cosignature, Ed25519)."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([ALG_COSIGNATURE_V1]) + public_key).digest()[:4]


def format_witness_verifier_key(name: str, public_key: bytes) -> str:
    """``<name>+<hex key ID>+<base64(0x04 || key)>`` (signed-note vkey, signature type 0x04)."""
    encoded = base64.b64encode(bytes([ALG_COSIGNATURE_V1]) + public_key).decode()
    return f"{name}+{cosigner_key_id(name, public_key).hex()}+{encoded}"


def parse_witness_verifier_key(text: str) -> WitnessKey:
    """Decode a witness verifier key; raises :class:`AuditKeyError` naming the problem."""
    parts = text.strip().split("+", 2)
    if len(parts) != 3:
        raise AuditKeyError("witness verifier key is not <name>+<key id>+<key>")
    name, id_hex, encoded = parts
    if not valid_origin(name):
        raise AuditKeyError(f"witness name {name!r} is not printable ASCII without spaces or '+'")
    try:
        blob = base64.b64decode(encoded, validate=True)
    except binascii.Error as exc:
        raise AuditKeyError("witness verifier key is not valid base64") from exc
    if len(blob) != 33 or blob[0] != ALG_COSIGNATURE_V1:
        raise AuditKeyError("not a cosignature/v1 (type 0x04) Ed25519 witness key")
    key = WitnessKey(name, blob[1:])
    if key.key_id.hex() != id_hex:
        raise AuditKeyError("witness verifier key ID does not match its name and key")
    return key


def signed_message(body: str, timestamp: int) -> bytes:
    """The bytes a cosignature covers: header, time line, then the whole checkpoint body."""
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise ValueError(f"cosignature timestamp {timestamp} out of range")
    return f"{COSIGNATURE_HEADER}time {timestamp}\n{body}".encode()


def cosign(key: Ed25519PrivateKey, name: str, body: str, timestamp: int) -> Cosignature:
    """Cosign checkpoint ``body`` (text up to, and including, its last newline) at ``timestamp``."""
    signature = key.sign(signed_message(body, timestamp))
    blob = cosigner_key_id(name, raw_public_key(key)) + struct.pack(">Q", timestamp) + signature
    line = f"{SIG_PREFIX}{name} {base64.b64encode(blob).decode()}\n"
    return Cosignature(name, timestamp, signature, line)


def note_body(note: str) -> str:
    """The signed text of a note (everything before the blank line, with its final newline)."""
    body, sep, _ = note.partition("\n\n")
    if not sep:
        raise ValueError("not a signed note")
    return body + "\n"


def signature_lines(note: str) -> list[str]:
    """The signature lines of a note, each with its newline."""
    _, sep, sigs = note.partition("\n\n")
    if not sep:
        raise ValueError("not a signed note")
    return [line + "\n" for line in sigs.split("\n") if line]


def verify_cosignature_line(line: str, body: str, witness: WitnessKey) -> Cosignature | None:
    """The cosignature if ``line`` is ``witness``'s valid cosignature of ``body``; None for
    lines by other keys. A line that claims to be this witness's but does not verify raises."""
    if not line.startswith(SIG_PREFIX) or not line.endswith("\n"):
        return None
    name, _, encoded = line[len(SIG_PREFIX):-1].partition(" ")
    if name != witness.name:
        return None
    try:
        blob = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        return None
    if blob[:4] != witness.key_id:
        return None
    if len(blob) != _BLOB_BYTES:
        raise ValueError(f"cosignature by {witness.name} has {len(blob)} bytes, not {_BLOB_BYTES}")
    (timestamp,) = struct.unpack(">Q", blob[4:12])
    if timestamp > MAX_TIMESTAMP or not verify_ed25519(witness.public_key, blob[12:], signed_message(body, timestamp)):
        raise ValueError(f"cosignature by {witness.name} does not verify")
    return Cosignature(witness.name, timestamp, blob[12:], line)


def cosignatures_in(note: str, witness: WitnessKey) -> list[Cosignature]:
    """Every valid cosignature of ``witness`` in ``note`` (raises on a forged one)."""
    body = note_body(note)
    found = []
    for line in signature_lines(note):
        cosignature = verify_cosignature_line(line, body, witness)
        if cosignature is not None:
            found.append(cosignature)
    return found
