"""Key rotation statements: the holder announces its next OPRF key under its current audit key.

A requester pins the holder's OPRF public key and audit key (SPEC.md 9.1). When the
holder rotates, it publishes a statement, a C2SP signed note, naming the new key, its
epoch and validity start and the key id it replaces, signed with the audit key the
requester already pins. The requester takes a new key only through such a statement
that chains from its pin, so a changed key is never accepted silently (SPEC.md 2.3).

This module is sans-IO: it encodes, signs (through a callback holding the key) and
verifies; storing statements and pins is the daemons' job.
"""

from __future__ import annotations

import base64
import hashlib
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from blindmatch.core.keys import key_id_of
from blindmatch.crypto.ed25519 import WeakPublicKeyError, load_public_key_strict, verify_strict
from blindmatch.crypto.voprf import load_public_key
from blindmatch.vocabulary import BlindmatchError, Reason

HEADER = "blindmatch/v1 key rotation"
FIELDS = ("origin", "organisation", "epoch", "valid-from", "previous-key-id", "key-id", "oprf-public-key",
          "audit-public-key")
SIGNATURE_PREFIX = "\u2014 "
MAX_STATEMENT_BYTES = 4096
# How far ahead of the requester's clock a statement's validity start may be (clock skew).
FUTURE_SKEW = timedelta(minutes=5)
_HEX32 = re.compile(r"[0-9a-f]{64}")
_DECIMAL = re.compile(r"[1-9][0-9]{0,18}")
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
_KEY_NAME = re.compile(r"[!-*,-~]+")  # printable ASCII without space or '+', as signed-note key names
_ED25519 = 1


class RotationError(BlindmatchError, ValueError):
    """A rotation statement is malformed, not signed by the pinned key, or does not chain from the pin."""

    default_reason = Reason.HOLDER_NOT_PINNED


def note_key_hash(name: str, public_key: bytes) -> bytes:
    """The signed-note key id of an Ed25519 key: SHA-256(name || 0x0A || 0x01 || key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([_ED25519]) + public_key).digest()[:4]


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    if not _TIME.fullmatch(text):
        raise ValueError(f"{text!r} is not an RFC 3339 UTC time (YYYY-MM-DDTHH:MM:SSZ)")
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


@dataclass(frozen=True)
class RotationStatement:
    """What the holder states: from ``valid_from`` on, ``oprf_public_key`` (epoch ``epoch``) replaces ``previous_key_id``."""

    origin: str  # the signed-note name of the holder's audit key (its audit log origin)
    organisation: str
    epoch: int
    valid_from: datetime
    previous_key_id: bytes
    oprf_public_key: bytes
    audit_public_key: bytes

    @property
    def key_id(self) -> bytes:
        return key_id_of(self.oprf_public_key)

    def body(self) -> str:
        """The signed text: the header line, then one ``name value`` line per field, in order."""
        values = (self.origin, self.organisation, str(self.epoch), format_time(self.valid_from),
                  self.previous_key_id.hex(), self.key_id.hex(), self.oprf_public_key.hex(),
                  self.audit_public_key.hex())
        return HEADER + "\n" + "".join(f"{name} {value}\n" for name, value in zip(FIELDS, values, strict=True))


def sign_statement(statement: RotationStatement, signers: list[tuple[bytes, Callable[[bytes], bytes]]]) -> bytes:
    """The signed note: ``signers`` are (public key, sign function) pairs, the current audit key first.

    A statement that changes the audit key is also signed by the new key, proving the
    holder holds it.
    """
    body = statement.body()
    if not _KEY_NAME.fullmatch(statement.origin):
        raise ValueError(f"origin {statement.origin!r} is not a signed-note key name")
    if not statement.organisation or _has_control(statement.organisation + "\n"):
        raise ValueError(f"organisation {statement.organisation!r} cannot be a line of a signed note")
    lines = []
    for public_key, sign in signers:
        blob = note_key_hash(statement.origin, public_key) + sign(body.encode())
        lines.append(f"{SIGNATURE_PREFIX}{statement.origin} {base64.b64encode(blob).decode()}\n")
    return (body + "\n" + "".join(lines)).encode()


def _has_control(text: str) -> bool:
    """Whether ``text`` has a control character other than newline (signed-note text must not)."""
    return any(c != "\n" and unicodedata.category(c) == "Cc" for c in text)


def _fields(body: str) -> dict[str, str]:
    lines = body.split("\n")
    if lines[-1] != "" or len(lines) != len(FIELDS) + 2 or lines[0] != HEADER:
        raise RotationError(f"not a key rotation statement (expected {HEADER!r} and {len(FIELDS)} field lines)")
    fields = {}
    for name, line in zip(FIELDS, lines[1:-1], strict=True):
        key, sep, value = line.partition(" ")
        if key != name or not sep or not value:
            raise RotationError(f"key rotation statement: expected field {name!r}, found {line[:40]!r}")
        fields[name] = value
    return fields


def _hex32(fields: dict[str, str], name: str) -> bytes:
    if not _HEX32.fullmatch(fields[name]):
        raise RotationError(f"key rotation statement: {name} is not 64 lowercase hexadecimal digits")
    return bytes.fromhex(fields[name])


def parse_statement(note: bytes) -> tuple[RotationStatement, list[tuple[str, bytes]]]:
    """The statement and its signature lines as (key name, key hash || signature); no signature checked."""
    if len(note) > MAX_STATEMENT_BYTES:
        raise RotationError(f"key rotation statement of {len(note)} bytes exceeds {MAX_STATEMENT_BYTES}")
    try:
        text = note.decode()
    except UnicodeDecodeError:
        raise RotationError("key rotation statement is not UTF-8") from None
    body, sep, signature_text = text.partition("\n\n")
    body += "\n"
    if not sep or not signature_text.endswith("\n") or _has_control(text):
        raise RotationError("key rotation statement is not a signed note (body, empty line, signature lines)")
    fields = _fields(body)
    if (not _KEY_NAME.fullmatch(fields["origin"]) or not _DECIMAL.fullmatch(fields["epoch"])
            or int(fields["epoch"]) >= 2**63):  # the audit log's uint: holder_repinned records it
        raise RotationError("key rotation statement: origin is not a key name or epoch not a positive decimal below 2^63")
    try:
        valid_from = parse_time(fields["valid-from"])
    except ValueError as exc:
        raise RotationError(f"key rotation statement: valid-from {exc}") from None
    statement = RotationStatement(
        origin=fields["origin"], organisation=fields["organisation"], epoch=int(fields["epoch"]),
        valid_from=valid_from, previous_key_id=_hex32(fields, "previous-key-id"),
        oprf_public_key=_hex32(fields, "oprf-public-key"), audit_public_key=_hex32(fields, "audit-public-key"))
    if statement.body() != body or _hex32(fields, "key-id") != statement.key_id:
        raise RotationError("key rotation statement: key-id does not name oprf-public-key, or the text is not canonical")
    signatures = []
    for line in signature_text[:-1].split("\n"):
        name, _, encoded = line.removeprefix(SIGNATURE_PREFIX).partition(" ")
        try:
            blob = base64.b64decode(encoded, validate=True)
        except ValueError:
            raise RotationError("key rotation statement: a signature is not base64") from None
        # Canonical base64 only: otherwise a changed padding bit would give a second, equally valid note.
        if not line.startswith(SIGNATURE_PREFIX) or len(blob) != 68 or base64.b64encode(blob).decode() != encoded:
            raise RotationError("key rotation statement: malformed signature line")
        signatures.append((name, blob))
    return statement, signatures


def _signed_by(statement: RotationStatement, signatures: list[tuple[str, bytes]], public_key: bytes) -> bool:
    wanted = note_key_hash(statement.origin, public_key)
    message = statement.body().encode()
    return any(name == statement.origin and blob[:4] == wanted and verify_strict(public_key, blob[4:], message)
               for name, blob in signatures)


@dataclass(frozen=True)
class Pin:
    """What a requester trusts as the holder now: its organisation, keys and (once known) epoch."""

    organisation: str
    oprf_public_key: bytes
    audit_public_key: bytes
    epoch: int = 0  # 0: pinned by hand, epoch unknown

    @property
    def key_id(self) -> bytes:
        return key_id_of(self.oprf_public_key)


def verify_statement(note: bytes, pin: Pin, now: datetime) -> RotationStatement:
    """The statement in ``note`` if it moves ``pin`` to a new key (SPEC.md 2.3, checks in order)."""
    statement, signatures = parse_statement(note)
    if statement.organisation != pin.organisation:
        raise RotationError(f"key rotation statement is for {statement.organisation!r}, not the pinned "
                            f"organisation {pin.organisation!r}")
    if statement.previous_key_id != pin.key_id:
        raise RotationError(f"key rotation statement replaces key {statement.previous_key_id.hex()[:16]}..., not the "
                            f"pinned key {pin.key_id.hex()[:16]}...: it does not chain from the pin")
    if not _signed_by(statement, signatures, pin.audit_public_key):
        raise RotationError("key rotation statement is not signed by the pinned audit key")
    try:
        load_public_key(statement.oprf_public_key)
        load_public_key_strict(statement.audit_public_key, what="the statement's audit-public-key")
    except (ValueError, WeakPublicKeyError) as exc:
        raise RotationError(f"key rotation statement names an invalid key: {exc}") from None
    if statement.oprf_public_key == pin.oprf_public_key:
        raise RotationError("key rotation statement names the pinned key again")
    if statement.audit_public_key != pin.audit_public_key and not _signed_by(
            statement, signatures, statement.audit_public_key):
        raise RotationError("key rotation statement changes the audit key but is not signed by the new one")
    if statement.epoch <= pin.epoch:
        raise RotationError(f"key rotation statement's epoch {statement.epoch} is not after the pinned epoch {pin.epoch}")
    if statement.valid_from > now + FUTURE_SKEW:
        raise RotationError(f"key rotation statement is valid only from {format_time(statement.valid_from)}, "
                            f"after this machine's clock ({format_time(now)})")
    return statement


def statement_chains(note: bytes, pin: Pin) -> bool:
    """Whether ``note`` parses and names the pinned key as the one it replaces."""
    try:
        return parse_statement(note)[0].previous_key_id == pin.key_id
    except RotationError:
        return False


def follow_rotations(notes: list[bytes], pin: Pin, target_key: bytes,
                     now: datetime) -> tuple[Pin, list[tuple[RotationStatement, bytes]]]:
    """Walk the holder's statements from ``pin`` to the announced ``target_key``.

    ``notes`` are the holder's statements, oldest first; those before the pin are skipped
    (they do not chain from it). Returns the new pin and the statements applied (with their
    notes); raises
    :class:`RotationError` naming why when no valid chain reaches ``target_key``.
    """
    applied: list[tuple[RotationStatement, bytes]] = []
    last_error = "the holder published no key rotation statement"
    for note in notes:
        if pin.oprf_public_key == target_key:
            break
        try:
            statement = verify_statement(note, pin, now)
        except RotationError as exc:
            if statement_chains(note, pin) or (not applied and last_error.startswith("the holder published")):
                last_error = str(exc)  # a statement from the pin that fails says more than an older one
            continue
        applied.append((statement, note))
        pin = Pin(pin.organisation, statement.oprf_public_key, statement.audit_public_key, statement.epoch)
    if pin.oprf_public_key != target_key:
        raise RotationError(f"no valid key rotation statement chains from the pinned key to the announced one "
                            f"({last_error})")
    return pin, applied
