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
from dataclasses import dataclass
from pathlib import Path

from blindmatch.audit import AuditLog
from blindmatch.audit.key_rotation import STATEMENTS_NAME
from blindmatch.audit.notefile import NoteFileError, append_note, read_notes
from blindmatch.core.rotation import (
    RotationError,
    RotationStatement,
    is_audit_key_statement,
    parse_statement,
    parse_time,
    sign_statement,
)
from blindmatch.holder.config import HolderNodeConfig
from blindmatch.holder.store import IndexManifest, StoreError, load_committed_key, read_manifest
from blindmatch.witness.client import WitnessClient, WitnessSubmitError

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
        if is_audit_key_statement(note):
            continue  # it retires an audit key, not an OPRF key
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
    publish_audit_key_statements(index_dir, audit)
    note = make_statement(index_dir, manifest, oprf_public_key, organisation, audit)
    if note is not None:
        append_note(index_dir / ROTATIONS_NAME, note.decode())
    return note


def publish_audit_key_statements(index_dir: Path, audit: AuditLog) -> list[bytes]:
    """Copy the audit log's audit key statements that GetInfo does not serve yet; returns those copied."""
    try:
        kept, _torn = read_notes(audit.path / STATEMENTS_NAME)
    except NoteFileError as exc:
        raise StoreError(f"{exc}; run 'blindmatch audit verify'") from None
    served = set(published_statements(index_dir))
    copied = []
    for note in kept:
        if note.encode() not in served:
            append_note(index_dir / ROTATIONS_NAME, note)
            copied.append(note.encode())
    return copied


def make_statement(index_dir: Path, manifest: IndexManifest, oprf_public_key: bytes, organisation: str,
                   audit: AuditLog) -> bytes | None:
    """The signed statement :func:`publish_statement` would store (Ed25519 is deterministic, so
    the same bytes): a build audits its digest before its commit, and stores it after."""
    if manifest.previous_key_id is None:
        return None  # the first key: requesters pin it by hand
    for note in published_statements(index_dir):
        if not is_audit_key_statement(note) and parse_statement(note)[0].key_id == manifest.key_id:
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


@dataclass(frozen=True)
class AuditKeyRotation:
    """What ``holder rotate-audit-key`` did: the statement, the keys, and the witnesses' answers."""

    statement: bytes
    previous_key: bytes
    key: bytes
    handover_size: int
    cosigned_by: tuple[str, ...]
    witness_failures: tuple[str, ...]


def rotate_audit_key(config: HolderNodeConfig) -> AuditKeyRotation:
    """Retire the holder's audit key for a new one (SPEC.md 2.4), with the daemon stopped
    (refused, ``AuditError``, while another process has the audit log open).

    An OPRF key statement a crash left unmade is made first, under the retiring key that
    audited it. Then the log rotates (``AuditLog.rotate_key``), the statement is copied
    for GetInfo, and the handover checkpoint goes to the configured witnesses, which can
    verify it with the key they know.
    """
    with AuditLog.open(config.audit_dir, config.audit_origin) as audit:
        if config.witnesses:  # a witness must cosign the handover with the old key: make sure each answers
            try:
                WitnessClient(config.witnesses).submit(audit, audit.checkpoint())
            except WitnessSubmitError as exc:
                raise StoreError("every configured witness must cosign before the audit key rotates (it learns "
                                 "the new key from the handover checkpoint): "
                                 + "; ".join(str(f) for f in exc.failures)) from None
        try:
            manifest = read_manifest(config.index_dir)
        except StoreError:
            manifest = None  # no index yet: no OPRF statement to mend
        if manifest is not None:
            key = load_committed_key(config.key_file, config.index_dir, manifest.key_id)
            publish_statement(config.index_dir, manifest, key.public_key, config.organisation, audit)
        previous = audit.public_key
        note = audit.rotate_key()
        publish_audit_key_statements(config.index_dir, audit)
        handover = audit.latest_checkpoint()
        assert handover is not None  # rotate_key wrote it
        cosigned: list[str] = []
        failures: list[str] = []
        if config.witnesses:
            try:
                cosigned = [c.witness for c in WitnessClient(config.witnesses).submit(audit, handover)]
            except WitnessSubmitError as exc:
                cosigned = [c.witness for c in exc.cosignatures]
                failures = [str(failure) for failure in exc.failures]
        return AuditKeyRotation(note, previous, audit.public_key, handover.size, tuple(cosigned), tuple(failures))
