"""Key rotation statements: the holder announces its next OPRF key under its current audit key.

A requester pins the holder's OPRF public key and audit key (SPEC.md 9.1). When the
holder rotates, it publishes a statement, a C2SP signed note, naming the new key, its
epoch and validity start and the key id it replaces, signed with the audit key the
requester already pins. The requester takes a new key only through such a statement
that chains from its pin, so a changed key is never accepted silently (SPEC.md 2.3).
The holder may also rotate its audit key alone: an *audit key statement* (SPEC.md 2.4),
signed by the retiring and the new audit key, names both and the audit log size from
which the new key signs; the requester's pin follows it the same way.

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
    if not statement.organisation or _has_control(statement.organisation + "\n"):
        raise ValueError(f"organisation {statement.organisation!r} cannot be a line of a signed note")
    return _signed_note(statement.origin, statement.body(), signers)


def _signed_note(origin: str, body: str, signers: list[tuple[bytes, Callable[[bytes], bytes]]]) -> bytes:
    """``body``, an empty line and one signature line per signer, all under the key name ``origin``."""
    if not _KEY_NAME.fullmatch(origin):
        raise ValueError(f"origin {origin!r} is not a signed-note key name")
    lines = []
    for public_key, sign in signers:
        blob = note_key_hash(origin, public_key) + sign(body.encode())
        lines.append(f"{SIGNATURE_PREFIX}{origin} {base64.b64encode(blob).decode()}\n")
    return (body + "\n" + "".join(lines)).encode()


def _has_control(text: str) -> bool:
    """Whether ``text`` has a control character other than newline (signed-note text must not)."""
    return any(c != "\n" and unicodedata.category(c) == "Cc" for c in text)


def _fields(body: str, header: str = HEADER, names: tuple[str, ...] = FIELDS) -> dict[str, str]:
    lines = body.split("\n")
    if lines[-1] != "" or len(lines) != len(names) + 2 or lines[0] != header:
        raise RotationError(f"not a {header.removeprefix('blindmatch/v1 ')} statement (expected {header!r} and "
                            f"{len(names)} field lines)")
    fields = {}
    for name, line in zip(names, lines[1:-1], strict=True):
        key, sep, value = line.partition(" ")
        if key != name or not sep or not value:
            raise RotationError(f"{header.removeprefix('blindmatch/v1 ')} statement: expected field {name!r}, "
                                f"found {line[:40]!r}")
        fields[name] = value
    return fields


def _hex32(fields: dict[str, str], name: str, what: str = "key rotation statement") -> bytes:
    if not _HEX32.fullmatch(fields[name]):
        raise RotationError(f"{what}: {name} is not 64 lowercase hexadecimal digits")
    return bytes.fromhex(fields[name])


def _split_note(note: bytes, what: str) -> tuple[str, list[tuple[str, bytes]]]:
    """The signed text of a statement note and its signature lines as (key name, key hash || signature)."""
    if len(note) > MAX_STATEMENT_BYTES:
        raise RotationError(f"{what} of {len(note)} bytes exceeds {MAX_STATEMENT_BYTES}")
    try:
        text = note.decode()
    except UnicodeDecodeError:
        raise RotationError(f"{what} is not UTF-8") from None
    body, sep, signature_text = text.partition("\n\n")
    body += "\n"
    if not sep or not signature_text.endswith("\n") or _has_control(text):
        raise RotationError(f"{what} is not a signed note (body, empty line, signature lines)")
    signatures = []
    for line in signature_text[:-1].split("\n"):
        name, _, encoded = line.removeprefix(SIGNATURE_PREFIX).partition(" ")
        try:
            blob = base64.b64decode(encoded, validate=True)
        except ValueError:
            raise RotationError(f"{what}: a signature is not base64") from None
        # Canonical base64 only: otherwise a changed padding bit would give a second, equally valid note.
        if not line.startswith(SIGNATURE_PREFIX) or len(blob) != 68 or base64.b64encode(blob).decode() != encoded:
            raise RotationError(f"{what}: malformed signature line")
        signatures.append((name, blob))
    return body, signatures


def parse_statement(note: bytes) -> tuple[RotationStatement, list[tuple[str, bytes]]]:
    """The statement and its signature lines as (key name, key hash || signature); no signature checked."""
    body, signatures = _split_note(note, "key rotation statement")
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
    return statement, signatures


def _signed_by(statement: RotationStatement | AuditKeyStatement, signatures: list[tuple[str, bytes]],
               public_key: bytes) -> bool:
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
    """Whether ``note`` parses and names the pinned key (OPRF key, or audit key) as the one it replaces."""
    try:
        if is_audit_key_statement(note):
            return parse_audit_key_statement(note)[0].previous_audit_public_key == pin.audit_public_key
        return parse_statement(note)[0].previous_key_id == pin.key_id
    except RotationError:
        return False


def apply_statement(note: bytes, pin: Pin, now: datetime) -> Pin:
    """The pin ``note`` moves ``pin`` to: a key rotation (SPEC.md 2.3) or an audit key statement (2.4)."""
    if is_audit_key_statement(note):
        audit = verify_audit_key_statement(note, pin)
        return Pin(pin.organisation, pin.oprf_public_key, audit.audit_public_key, pin.epoch)
    statement = verify_statement(note, pin, now)
    return Pin(pin.organisation, statement.oprf_public_key, statement.audit_public_key, statement.epoch)


def follow_rotations(notes: list[bytes], pin: Pin, target_key: bytes, now: datetime,
                     target_audit_key: bytes | None = None) -> tuple[Pin, list[tuple[Pin, bytes]]]:
    """Walk the holder's statements from ``pin`` to the announced ``target_key`` (and ``target_audit_key``).

    ``notes`` are the holder's statements, oldest first; those that do not chain from the
    pin are skipped (older ones, or a later one whose turn has not come: the walk repeats
    until no statement moves the pin, so the order of key and audit key statements does
    not matter). Returns the new pin and, per statement applied, the pin it moved to and
    its note; raises :class:`RotationError` naming why when no valid chain reaches the targets.
    """
    def reached(current: Pin) -> bool:
        return current.oprf_public_key == target_key and target_audit_key in (None, current.audit_public_key)

    applied: list[tuple[Pin, bytes]] = []
    remaining = list(notes)
    last_error = "the holder published no key rotation statement"
    while not reached(pin):
        for position, note in enumerate(remaining):
            try:
                pin = apply_statement(note, pin, now)
            except RotationError as exc:
                if statement_chains(note, pin) or (not applied and last_error.startswith("the holder published")):
                    last_error = str(exc)  # a statement from the pin that fails says more than an older one
                continue
            applied.append((pin, note))
            del remaining[position]
            break
        else:
            break  # no statement moves the pin any further
    if not reached(pin):
        raise RotationError(f"no valid key rotation statement chains from the pinned keys to the announced ones "
                            f"({last_error})")
    return pin, applied


AUDIT_HEADER = "blindmatch/v1 audit key rotation"
AUDIT_FIELDS = ("origin", "tree-size", "previous-audit-public-key", "audit-public-key")
_AUDIT_WHAT = "audit key statement"


@dataclass(frozen=True)
class AuditKeyStatement:
    """The audit log ``origin`` is signed with ``audit_public_key`` instead of ``previous_audit_public_key``
    from tree size ``tree_size`` on: entry ``tree_size - 1`` records the rotation (signed with the
    retiring key) and the checkpoint of that size is the first the new key signs (SPEC.md 2.4)."""

    origin: str
    tree_size: int
    previous_audit_public_key: bytes
    audit_public_key: bytes

    def body(self) -> str:
        values = (self.origin, str(self.tree_size), self.previous_audit_public_key.hex(), self.audit_public_key.hex())
        return AUDIT_HEADER + "\n" + "".join(f"{name} {value}\n" for name, value in zip(AUDIT_FIELDS, values,
                                                                                         strict=True))


def is_audit_key_statement(note: bytes) -> bool:
    return note.startswith(AUDIT_HEADER.encode() + b"\n")


def sign_audit_key_statement(statement: AuditKeyStatement, retiring: Callable[[bytes], bytes],
                             new: Callable[[bytes], bytes]) -> bytes:
    """The signed note: one signature by the retiring key, then one by the new key (which proves it is held)."""
    if statement.tree_size < 1:
        raise ValueError("an audit key statement follows its rotation entry: tree size at least 1")
    return _signed_note(statement.origin, statement.body(), [(statement.previous_audit_public_key, retiring),
                                                             (statement.audit_public_key, new)])


def parse_audit_key_statement(note: bytes) -> tuple[AuditKeyStatement, list[tuple[str, bytes]]]:
    """The statement and its signature lines; no signature checked."""
    body, signatures = _split_note(note, _AUDIT_WHAT)
    fields = _fields(body, AUDIT_HEADER, AUDIT_FIELDS)
    if (not _KEY_NAME.fullmatch(fields["origin"]) or not _DECIMAL.fullmatch(fields["tree-size"])
            or int(fields["tree-size"]) >= 2**63):  # a log size, like every uint of the audit log
        raise RotationError(f"{_AUDIT_WHAT}: origin is not a key name or tree-size not a positive decimal below 2^63")
    statement = AuditKeyStatement(fields["origin"], int(fields["tree-size"]),
                                  _hex32(fields, "previous-audit-public-key", _AUDIT_WHAT),
                                  _hex32(fields, "audit-public-key", _AUDIT_WHAT))
    if statement.body() != body:
        raise RotationError(f"{_AUDIT_WHAT}: the text is not canonical")
    return statement, signatures


def check_audit_key_statement(note: bytes, previous_audit_public_key: bytes) -> AuditKeyStatement:
    """The statement in ``note`` if it moves the audit key ``previous_audit_public_key`` on (SPEC.md 2.4, in order)."""
    statement, signatures = parse_audit_key_statement(note)
    if statement.previous_audit_public_key != previous_audit_public_key:
        raise RotationError(f"{_AUDIT_WHAT} replaces audit key {statement.previous_audit_public_key.hex()[:16]}..., "
                            f"not {previous_audit_public_key.hex()[:16]}...: it does not chain from it")
    if not _signed_by(statement, signatures, previous_audit_public_key):
        raise RotationError(f"{_AUDIT_WHAT} is not signed by the audit key it replaces")
    try:
        load_public_key_strict(statement.audit_public_key, what="the statement's audit-public-key")
    except WeakPublicKeyError as exc:
        raise RotationError(f"{_AUDIT_WHAT} names an invalid key: {exc}") from None
    if statement.audit_public_key == previous_audit_public_key:
        raise RotationError(f"{_AUDIT_WHAT} names the same audit key again")
    if not _signed_by(statement, signatures, statement.audit_public_key):
        raise RotationError(f"{_AUDIT_WHAT} is not signed by the new audit key")
    return statement


def verify_audit_key_statement(note: bytes, pin: Pin) -> AuditKeyStatement:
    """:func:`check_audit_key_statement` from the pinned audit key."""
    return check_audit_key_statement(note, pin.audit_public_key)
