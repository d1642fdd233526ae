"""The holder's key rotation statements and the audit record of a build (SPEC.md 2.3).

After a rotation commits (the manifest names the new key and the key it replaced), the
holder signs a statement with its audit key and appends it to ``<index_dir>/key-rotations``
(signed-note blocks, like the audit log's checkpoints file). GetInfo serves every stored
statement, oldest first, so a requester pinned several rotations ago can follow the chain.
Publishing is idempotent and needs only the manifest: a crash between the commit and the
statement is mended by the next ``holder index`` or ``holder serve`` (Ed25519 signatures
are deterministic, so the re-made statement is byte for byte the same).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from blindmatch.audit import AuditLog
from blindmatch.audit.notefile import NoteFileError, append_note, read_notes
from blindmatch.core.rotation import RotationError, RotationStatement, parse_statement, parse_time, sign_statement
from blindmatch.holder.store import IndexManifest, StoreError

ROTATIONS_NAME = "key-rotations"


def published_statements(index_dir: Path) -> tuple[bytes, ...]:
    """The stored statements, oldest first (a torn last block from a crash is ignored)."""
    try:
        notes, _torn = read_notes(index_dir / ROTATIONS_NAME)
    except NoteFileError as exc:
        raise StoreError(f"{exc}; restore {ROTATIONS_NAME} from a backup (requesters need every statement)") from None
    return tuple(note.encode() for note in notes)


def retired_key_ids(statements: tuple[bytes, ...]) -> frozenset[bytes]:
    """The key ids the statements say were replaced: their epochs are over."""
    ids = set()
    for note in statements:
        try:
            ids.add(parse_statement(note)[0].previous_key_id)
        except RotationError as exc:
            raise StoreError(f"{ROTATIONS_NAME}: a stored statement is damaged ({exc})") from None
    return frozenset(ids)


def publish_statement(index_dir: Path, manifest: IndexManifest, oprf_public_key: bytes, organisation: str,
                      audit: AuditLog) -> bytes | None:
    """Sign and store the statement announcing the manifest's key, unless it has none to make or it is stored.

    Returns the new statement, or None. ``oprf_public_key`` is the manifest's key's.
    """
    note = make_statement(index_dir, manifest, oprf_public_key, organisation, audit)
    if note is not None:
        append_note(index_dir / ROTATIONS_NAME, note.decode())
    return note


def make_statement(index_dir: Path, manifest: IndexManifest, oprf_public_key: bytes, organisation: str,
                   audit: AuditLog) -> bytes | None:
    """The signed statement :func:`publish_statement` would store (Ed25519 is deterministic, so
    the same bytes): a build audits its digest before its commit, and stores it after."""
    if manifest.previous_key_id is None:
        return None  # the first key: requesters pin it by hand
    for note in published_statements(index_dir):
        if parse_statement(note)[0].key_id == manifest.key_id:
            return None
    statement = RotationStatement(
        origin=audit.origin, organisation=organisation, epoch=manifest.epoch,
        valid_from=parse_time(manifest.valid_from), previous_key_id=manifest.previous_key_id,
        oprf_public_key=oprf_public_key, audit_public_key=audit.public_key)
    if statement.key_id != manifest.key_id:
        raise StoreError("the key given for the rotation statement is not the manifest's key")
    return sign_statement(statement, [(audit.public_key, audit.sign_note_body)])


def record_build(audit: AuditLog, manifest: IndexManifest, rotated: bool, statement: bytes | None) -> None:
    """The audit entries of a build, written before its commit: ``key_rotated`` (with its epoch) first, then each index."""
    if rotated:
        fields: dict[str, object] = {"key_id": manifest.key_id.hex(), "epoch": manifest.epoch}
        if statement is not None:
            fields["statement"] = hashlib.sha256(statement).hexdigest()
        audit.append("key_rotated", **fields)
    over = {"issuer_epoch": manifest.issuer_epoch.name} if manifest.issuer_epoch is not None else {}
    for (_org, kind), f in sorted(manifest.files.items(), key=lambda item: (item[0][0], item[0][1].value)):
        audit.append("index_built", digest=f.digest.hex(), entries=f.entries, kind=kind.value, **over)
