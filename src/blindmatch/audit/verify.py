"""Independent verification of an audit log directory, for reviewers.

Nothing here trusts the writer's in-memory state: the tree is recomputed from
the bytes of ``log.jsonl``, every entry's signature and schema are checked,
every checkpoint signature is checked against ``audit.pub`` (or a pinned key),
each checkpoint root must equal the recomputed root at its size, and successive
checkpoints must be linked by a valid RFC 9162 consistency proof. A log whose
audit key was rotated is read along its key chain (``audit.key_rotation``): each
rotation entry, signed with the retiring key, names the next key, the handover
checkpoint is signed with both, and the statement verifies. Verification stops
at the first problem and names it, because everything after a bad entry is
suspect anyway.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from blindmatch.audit.checkpoint import Checkpoint, CheckpointError, parse_checkpoint, split_notes
from blindmatch.audit.cosignature import WitnessKey
from blindmatch.audit.cosigned import COSIGNED_NAME, CosignedStoreError, read_cosigned
from blindmatch.audit.events import canonical_json, entry_signing_message, validate_envelope
from blindmatch.audit.key_rotation import (
    KeyChain,
    KeyChainError,
    Rotation,
    chain_from_files,
    check_statements,
    read_retired,
    rotation_of,
)
from blindmatch.audit.keys import AuditKeyError, verify_ed25519
from blindmatch.audit.log import (
    CHECKPOINTS_NAME,
    LOG_NAME,
    AuditError,
    find_audit_dir,
    read_verifier_key,
)
from blindmatch.audit.merkle import MerkleTree, verify_consistency
from blindmatch.audit.witness_check import (
    SourcedNote,
    WitnessCheckFailure,
    WitnessStatus,
    check_witnesses,
    size_of,
)
from blindmatch.vocabulary import BlindmatchError


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of :func:`verify_log`.

    ``size`` counts the entries that verified (all of them when ``ok``);
    ``unsigned_tail`` counts entries after the latest checkpoint, which are
    individually signed but could be truncated without detection (unless a
    witness cosigned them). ``witnesses`` has one status per witness asked for;
    ``warnings`` lists oddities that are not proof of tampering (a clock that
    went backwards, a checkpoint not yet cosigned).
    """

    ok: bool
    error: str | None
    size: int
    checkpoints: int
    origin: str | None = None
    root: bytes | None = None
    latest: Checkpoint | None = None
    unsigned_tail: int = 0
    witnesses: tuple[WitnessStatus, ...] = ()
    warnings: tuple[str, ...] = ()


class _Failure(BlindmatchError):
    pass


def _parse_time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _time_went_back(previous: str | None, current: str) -> bool:
    before, now = (_parse_time(previous) if previous else None), _parse_time(current)
    return before is not None and now is not None and now < before


def _check_lines(data: bytes, origin: str, first_key: bytes, tree: MerkleTree, warnings: list[str]) -> list[Rotation]:
    """Check every entry under the key in force at it; returns the audit key rotations found."""
    if data and not data.endswith(b"\n"):
        line_no = data.count(b"\n") + 1
        raise _Failure(f"{LOG_NAME} line {line_no}: incomplete last line (torn write)")
    previous_time: str | None = None
    public_key = first_key
    rotations: list[Rotation] = []
    for line_no, line in enumerate(data.split(b"\n")[:-1], start=1):
        where = f"{LOG_NAME} line {line_no}"
        entry = _entry(line, where, tree.size)
        signature = bytes.fromhex(entry["sig"])
        if not verify_ed25519(public_key, signature, entry_signing_message(origin, entry)):
            raise _Failure(f"{where} (entry {tree.size}): signature does not verify (the entry was altered)")
        if (rotation := rotation_of(entry)) is not None:
            if rotation.previous_key != public_key or rotation.key == public_key:
                raise _Failure(f"{where} (entry {tree.size}): audit key rotation does not retire the key in force")
            rotations.append(rotation)
            public_key = rotation.key
        if _time_went_back(previous_time, entry["time"]):
            warnings.append(f"{where}: time {entry['time']} is earlier than the previous entry's {previous_time}")
        previous_time = entry["time"]
        tree.append(line)
    return rotations


def _entry(line: bytes, where: str, index: int) -> dict[str, Any]:
    """The parsed entry of one line: JSON, canonical, a valid envelope and payload."""
    try:
        entry = json.loads(line)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than any entry has
        raise _Failure(f"{where}: not valid JSON") from None
    if not isinstance(entry, dict):
        raise _Failure(f"{where}: not a JSON object")
    try:
        canonical = canonical_json(entry)
    except ValueError:  # e.g. a lone surrogate escape: no writer produces one
        raise _Failure(f"{where}: not encodable as canonical UTF-8 JSON (the line was altered)") from None
    if canonical != line:
        raise _Failure(f"{where}: not in canonical form (the line was altered)")
    try:
        validate_envelope(entry, index)
    except ValueError as exc:
        raise _Failure(f"{where}: {exc}") from None
    return entry


def _check_checkpoints(
    data: bytes, origin: str, chain: KeyChain, tree: MerkleTree, warnings: list[str]
) -> list[Checkpoint]:
    notes, good_end = split_notes(data)
    checkpoints: list[Checkpoint] = []
    handovers = set(chain.rotations)  # rotations whose handover checkpoint is still to come
    for number, note in enumerate(notes, start=1):
        where = f"{CHECKPOINTS_NAME} #{number}"
        cp = _signed_checkpoint(note, origin, chain, handovers, where)
        if cp.size > tree.size:
            raise _Failure(
                f"{where}: covers {cp.size} entries but {LOG_NAME} has only {tree.size} "
                f"(entry {tree.size} onwards was deleted)"
            )
        if tree.root(cp.size) != cp.root:
            raise _Failure(
                f"{where}: root hash does not match entries 0..{cp.size - 1} of {LOG_NAME}"
            )
        if checkpoints:
            prev = checkpoints[-1]
            if cp.size < prev.size:
                raise _Failure(f"{where}: tree size {cp.size} is smaller than the previous {prev.size}")
            if prev.size > 0:
                proof = tree.consistency_proof(prev.size, cp.size)
                if not verify_consistency(prev.size, cp.size, prev.root, cp.root, proof):
                    raise _Failure(f"{where}: not consistent with checkpoint #{number - 1}")
            if _time_went_back(prev.time, cp.time):
                warnings.append(f"{where}: time {cp.time} is earlier than checkpoint #{number - 1}'s {prev.time}")
        checkpoints.append(cp)
    if good_end != len(data):
        raise _Failure(
            f"{CHECKPOINTS_NAME}: bytes after checkpoint #{len(notes)} are not a complete note"
        )
    if handovers:
        raise _Failure(f"{CHECKPOINTS_NAME}: no handover checkpoint (size {min(handovers) + 1}, signed by the "
                       f"retiring and the new audit key) follows the audit key rotation at entry {min(handovers)}")
    return checkpoints


def _signed_checkpoint(note: str, origin: str, chain: KeyChain, handovers: set[int], where: str) -> Checkpoint:
    """The checkpoint, signed by the key in force at its size (and the retiring key too, at a handover)."""
    try:
        cp = parse_checkpoint(note, origin, chain.key_for_size(size_of(note)))
    except CheckpointError as exc:
        raise _Failure(f"{where}: {exc}") from None
    pending = [r for r in handovers if r < cp.size]
    for rotation in pending:
        if cp.size != rotation + 1 or chain.handover_key(cp.size) is None:
            raise _Failure(f"{where}: the first checkpoint after the audit key rotation at entry {rotation} must be "
                           f"its handover, of size {rotation + 1}")
        try:
            parse_checkpoint(note, origin, chain.key_for_size(rotation))
        except CheckpointError as exc:
            raise _Failure(f"{where}: the handover checkpoint of the audit key rotation at entry {rotation} is not "
                           f"signed by the retiring key ({exc})") from None
        handovers.discard(rotation)
    return cp


def _witness_notes(audit_dir: Path, witnessed: Sequence[SourcedNote]) -> list[SourcedNote]:
    try:
        stored, torn = read_cosigned(audit_dir)
    except CosignedStoreError as exc:
        raise _Failure(str(exc)) from None
    if torn:
        raise _Failure(f"{COSIGNED_NAME}: bytes after note #{len(stored)} are not a complete note")
    local = [SourcedNote(note, f"{COSIGNED_NAME} #{n}") for n, note in enumerate(stored, start=1)]
    return local + list(witnessed)


def _pending_warnings(latest: Checkpoint | None, statuses: Sequence[WitnessStatus]) -> list[str]:
    return [
        f"the latest checkpoint (size {latest.size}) is not yet cosigned by {s.witness} "
        f"(it last cosigned size {s.size} at {s.time})"
        for s in statuses
        if latest is not None and s.size < latest.size
    ]


def verify_log(
    directory: Path,
    *,
    public_key: bytes | None = None,
    witnesses: Sequence[WitnessKey] = (),
    witnessed: Sequence[SourcedNote] = (),
) -> VerifyResult:
    """Verify the audit log under ``directory`` (working dir or its ``audit/``).

    ``public_key`` pins the expected audit key; without it the key in
    ``audit.pub`` is trusted, which only proves internal consistency.
    ``witnesses`` additionally requires every checkpoint they cosigned (in
    ``audit/cosigned`` or in ``witnessed``, notes obtained from the witnesses)
    to be part of the log: that catches a rewrite re-signed with the log's key.
    """
    try:
        audit_dir = find_audit_dir(Path(directory))
        origin, key = read_verifier_key(audit_dir)
        retired = read_retired(audit_dir, origin)
    except (AuditError, AuditKeyError, KeyChainError, OSError) as exc:
        return VerifyResult(False, str(exc), 0, 0)
    if public_key is not None and public_key not in (*retired, key):
        return VerifyResult(False, "audit.pub is not the expected (pinned) audit key, nor is any key in "
                            "retired.pub", 0, 0, origin)
    tree = MerkleTree()
    checkpoints: list[Checkpoint] = []
    warnings: list[str] = []
    statuses: list[WitnessStatus] = []
    try:
        rotations = _check_lines((audit_dir / LOG_NAME).read_bytes(), origin, (*retired, key)[0], tree, warnings)
        try:
            chain = chain_from_files(audit_dir, origin, key, rotations)
            check_statements(audit_dir, rotations)
        except KeyChainError as exc:
            raise _Failure(str(exc)) from None
        cp_path = audit_dir / CHECKPOINTS_NAME
        cp_data = cp_path.read_bytes() if cp_path.exists() else b""
        checkpoints = _check_checkpoints(cp_data, origin, chain, tree, warnings)
        latest = checkpoints[-1] if checkpoints else None
        if witnesses:
            notes = _witness_notes(audit_dir, witnessed)
            statuses = check_witnesses(notes, origin, chain, tree, latest, witnesses)
            warnings.extend(_pending_warnings(latest, statuses))
    except (_Failure, WitnessCheckFailure) as exc:
        return VerifyResult(False, str(exc), tree.size, len(checkpoints), origin, warnings=tuple(warnings))
    except OSError as exc:
        return VerifyResult(False, str(exc), tree.size, len(checkpoints), origin, warnings=tuple(warnings))
    return VerifyResult(
        ok=True,
        error=None,
        size=tree.size,
        checkpoints=len(checkpoints),
        origin=origin,
        root=tree.root(),
        latest=latest,
        unsigned_tail=tree.size - (latest.size if latest else 0),
        witnesses=tuple(statuses),
        warnings=tuple(warnings),
    )


def _printable_text(value: Any) -> Any:
    """``value`` with lone surrogates (a JSON escape such as \\ud800, which no writer
    produces) shown as their escape, so a tampered entry can still be printed and reported."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, list):
        return [_printable_text(v) for v in value]
    if isinstance(value, dict):
        return {_printable_text(k): _printable_text(v) for k, v in value.items()}
    return value


def load_entries(directory: Path) -> list[dict[str, Any]]:
    """Parse every readable entry, without verifying (for display and reports)."""
    audit_dir = find_audit_dir(Path(directory))
    entries = []
    for line in (audit_dir / LOG_NAME).read_bytes().split(b"\n"):
        try:
            entry = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(entry, dict):
            entries.append(_printable_text(entry))
    return entries
