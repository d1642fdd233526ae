"""The audit key's chain: which key signs which entries and checkpoints, and its files (SPEC.md 2.4, 10.3.4).

A log may retire its audit key for a new one. The rotation is entry ``r``
(``audit_key_rotated``, naming both keys and the SHA-256 of the audit key statement),
signed with the retiring key; the checkpoint of size ``r + 1`` (the *handover*) is signed
with both keys; every later entry and checkpoint with the new key alone. So the new key
signs nothing before the log records it, and a witness or reviewer that trusts either key
can read the handover. Files in the audit directory, besides ``audit.key``/``audit.pub``
(always the key in force):

* ``audit.key.next`` - the new key (0600) while a rotation is under way; a crash leaves it,
  and the next open finishes the rotation if the log names it, or deletes it if not;
* ``retired.pub``    - the verifier keys of the retired keys, oldest first, one a line;
* ``key-statements`` - the audit key statements (signed notes), oldest first.
"""

from __future__ import annotations

import hashlib
import json
import os
from bisect import bisect_left
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from blindmatch.audit.keys import AuditKeyError, format_verifier_key, parse_verifier_key, read_verifier_file
from blindmatch.audit.notefile import NoteFileError, append_note, read_notes
from blindmatch.core.rotation import RotationError, check_audit_key_statement
from blindmatch.keyfile import create_new_file, fsync_directory

NEXT_KEY_NAME = "audit.key.next"
RETIRED_NAME = "retired.pub"
STATEMENTS_NAME = "key-statements"
ROTATION_EVENT = "audit_key_rotated"


class KeyChainError(ValueError):
    """The log's rotation entries, ``retired.pub``, ``audit.pub`` and ``key-statements`` disagree."""


@dataclass(frozen=True)
class Rotation:
    """Entry ``index`` retired ``previous_key`` for ``key``; ``statement`` is its statement's SHA-256."""

    index: int
    previous_key: bytes
    key: bytes
    statement: bytes


@dataclass(frozen=True)
class KeyChain:
    """The log's audit keys, oldest first, and the entry index of each rotation between them."""

    keys: tuple[bytes, ...]
    rotations: tuple[int, ...] = ()

    @property
    def current(self) -> bytes:
        return self.keys[-1]

    def key_for_entry(self, index: int) -> bytes:
        """The key that signs entry ``index`` (a rotation entry is signed with the retiring key)."""
        return self.keys[bisect_left(self.rotations, index)]

    def key_for_size(self, size: int) -> bytes:
        """The key that signs checkpoints of ``size`` (the handover, size r + 1, is the new key's first)."""
        return self.keys[bisect_left(self.rotations, size)]

    def handover_key(self, size: int) -> bytes | None:
        """The retiring key that must also sign the checkpoint of ``size``, if it is a handover."""
        position = bisect_left(self.rotations, size - 1)
        if position < len(self.rotations) and self.rotations[position] == size - 1:
            return self.keys[position]
        return None


def rotation_of(entry: dict[str, object]) -> Rotation | None:
    """The rotation an entry records, or None for any other event (the entry is trusted as given)."""
    if entry.get("event") != ROTATION_EVENT:
        return None
    try:
        return Rotation(int(str(entry["index"])), bytes.fromhex(str(entry["previous_key"])),
                        bytes.fromhex(str(entry["key"])), bytes.fromhex(str(entry["statement"])))
    except (KeyError, ValueError):
        return None


def rotations_in(lines: list[bytes]) -> list[Rotation]:
    """The rotations recorded in log lines (cheap: only lines naming the event are parsed)."""
    found = []
    for line in lines:
        if ROTATION_EVENT.encode() in line:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and (rotation := rotation_of(entry)) is not None:
                found.append(rotation)
    return found


def read_retired(audit_dir: Path, origin: str) -> list[bytes]:
    """The retired keys in ``retired.pub``, oldest first; each must be a verifier key of ``origin``."""
    path = audit_dir / RETIRED_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyChainError(f"{path}: unreadable ({exc})") from None
    keys = []
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            name, key = parse_verifier_key(line)
        except AuditKeyError as exc:
            raise KeyChainError(f"{path} line {number}: {exc}") from None
        if name != origin:
            raise KeyChainError(f"{path} line {number}: a key of {name!r}, not of this log ({origin!r})")
        keys.append(key)
    return keys


def chain_from_files(audit_dir: Path, origin: str, current: bytes, rotations: list[Rotation]) -> KeyChain:
    """The chain ``retired.pub`` and ``audit.pub`` give, checked against the log's ``rotations``.

    Raises :class:`KeyChainError` naming the first disagreement.
    """
    retired = read_retired(audit_dir, origin)
    keys = (*retired, current)
    if len(rotations) != len(retired):
        raise KeyChainError(f"the log records {len(rotations)} audit key rotation(s) but {RETIRED_NAME} lists "
                            f"{len(retired)} retired key(s)")
    for number, rotation in enumerate(rotations):
        if (rotation.previous_key, rotation.key) != (keys[number], keys[number + 1]):
            raise KeyChainError(f"entry {rotation.index} rotates audit key {rotation.previous_key.hex()[:16]}... to "
                                f"{rotation.key.hex()[:16]}..., but {RETIRED_NAME} and audit.pub list "
                                f"{keys[number].hex()[:16]}... then {keys[number + 1].hex()[:16]}...")
    return KeyChain(keys, tuple(r.index for r in rotations))


def check_statements(audit_dir: Path, rotations: list[Rotation]) -> None:
    """Every rotation's statement is in ``key-statements``, hashes as recorded and verifies (SPEC.md 2.4)."""
    try:
        notes, torn = read_notes(audit_dir / STATEMENTS_NAME)
    except NoteFileError as exc:
        raise KeyChainError(str(exc)) from None
    if torn:
        raise KeyChainError(f"{STATEMENTS_NAME}: bytes after note #{len(notes)} are not a complete note")
    by_hash = {hashlib.sha256(note.encode()).digest(): note.encode() for note in notes}
    for rotation in rotations:
        note = by_hash.get(rotation.statement)
        if note is None:
            raise KeyChainError(f"entry {rotation.index}: its audit key statement is not in {STATEMENTS_NAME}")
        try:
            statement = check_audit_key_statement(note, rotation.previous_key)
        except RotationError as exc:
            raise KeyChainError(f"entry {rotation.index}: {exc}") from None
        if (statement.tree_size, statement.audit_public_key) != (rotation.index + 1, rotation.key):
            raise KeyChainError(f"entry {rotation.index}: its audit key statement names another key or tree size")


def load_key_chain(audit_dir: Path) -> KeyChain:
    """The chain of a log that :func:`blindmatch.audit.verify.verify_log` accepted (reconciliation, peers)."""
    origin, current = read_verifier_file(audit_dir / "audit.pub")
    lines = (audit_dir / "log.jsonl").read_bytes().split(b"\n")[:-1]
    return chain_from_files(audit_dir, origin, current, rotations_in(lines))


def signing_key_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def write_next_key(audit_dir: Path, key: Ed25519PrivateKey) -> None:
    """Store the new key as ``audit.key.next`` (0600), replacing one no entry named (a crash before the entry)."""
    (audit_dir / NEXT_KEY_NAME).unlink(missing_ok=True)
    create_new_file(audit_dir / NEXT_KEY_NAME, signing_key_pem(key), 0o600)


def store_statement(audit_dir: Path, note: bytes) -> None:
    """Append the statement to ``key-statements`` unless it is there (a finished rotation repeated)."""
    path = audit_dir / STATEMENTS_NAME
    notes, _torn = read_notes(path)
    if note.decode() not in notes:
        append_note(path, note.decode())


def retire_files(audit_dir: Path, origin: str, retiring: bytes, new: bytes) -> None:
    """Record ``retiring`` in ``retired.pub``, then make ``new`` the key in force; each step repeatable.

    ``audit.pub`` is replaced before ``audit.key``: a crash between them leaves
    ``audit.key.next``, so the next open finishes the rotation.
    """
    retired_line = format_verifier_key(origin, retiring)
    path = audit_dir / RETIRED_NAME
    existing = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    if not existing or existing[-1] != retired_line:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (retired_line + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
    tmp = audit_dir / ".audit.pub.next"
    tmp.unlink(missing_ok=True)
    create_new_file(tmp, (format_verifier_key(origin, new) + "\n").encode(), 0o644)
    os.replace(tmp, audit_dir / "audit.pub")
    os.replace(audit_dir / NEXT_KEY_NAME, audit_dir / "audit.key")
    fsync_directory(audit_dir)
