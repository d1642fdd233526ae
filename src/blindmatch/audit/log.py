"""The append-only audit log of one side (holder or requester).

Layout under ``<working dir>/audit/`` (mode 0700):

* ``log.jsonl``   - one canonical JSON entry per line; each line (without the
  newline) is a leaf of an RFC 9162 Merkle tree; every entry is signed.
* ``checkpoints`` - signed notes committing to (size, root, time).
* ``audit.key``   - the Ed25519 audit signing key (PKCS#8 PEM, 0600).
* ``audit.pub``   - its signed-note verifier key, for reviewers and the peer.
* ``retired.pub``, ``key-statements``, ``audit.key.next`` - the audit key's rotations
  (``audit.key_rotation``; :meth:`AuditLog.rotate_key`).
* ``lock``        - ``flock`` target serialising writers across processes (the
  requester CLI and daemon may share one directory).
* ``lease``       - every open log holds a shared ``flock`` on it for its lifetime, so
  a key rotation can tell that no other writer (a running daemon) has the log open.
* ``torn-*.bin``  - bytes cut off a torn tail, kept for forensics.

Every write is a single ``write`` on an ``O_APPEND`` descriptor followed by
``fsync``, so a crash can leave at most one incomplete last line (or note);
opening the log detects and cuts it, but never below the latest checkpoint.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from blindmatch.audit import key_rotation, keys
from blindmatch.audit.checkpoint import (
    Checkpoint,
    CheckpointError,
    complete_note_after,
    parse_checkpoint,
    sign_checkpoint,
    signed_by,
    split_notes,
)
from blindmatch.audit.entries import Entry
from blindmatch.audit.events import (
    canonical_json,
    entry_signing_message,
    valid_origin,
    validate_fields,
)
from blindmatch.audit.merkle import CompactRange, MerkleTree
from blindmatch.core.rotation import AuditKeyStatement, sign_audit_key_statement
from blindmatch.keyfile import fsync_directory
from blindmatch.vocabulary import BlindmatchError

AUDIT_SUBDIR = "audit"
LOG_NAME = "log.jsonl"
CHECKPOINTS_NAME = "checkpoints"
KEY_NAME = "audit.key"
PUB_NAME = "audit.pub"
LOCK_NAME = "lock"
LEASE_NAME = "lease"  # every open log holds a shared flock on it: a key rotation needs it alone

Clock = Callable[[], datetime]


class AuditError(BlindmatchError):
    """The audit log cannot be opened or written safely."""


def utc_now() -> datetime:
    """Default clock."""
    return datetime.now(UTC)


def format_time(moment: datetime) -> str:
    """RFC 3339 UTC with microseconds, e.g. ``2024-05-01T09:30:00.000000Z``."""
    if moment.tzinfo is None:
        raise ValueError("audit clock must return timezone-aware datetimes")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def find_audit_dir(directory: Path) -> Path:
    """Accept either a side's working directory or its ``audit/`` directory."""
    for candidate in (directory / AUDIT_SUBDIR, directory):
        if (candidate / PUB_NAME).is_file():
            return candidate
    raise AuditError(f"no audit log in {directory} (missing {AUDIT_SUBDIR}/{PUB_NAME})")


def read_verifier_key(audit_dir: Path) -> tuple[str, bytes]:
    """(origin, raw public key) from ``audit.pub``; a weak or malformed key names the file."""
    return keys.read_verifier_file(audit_dir / PUB_NAME)


def _read(path: Path, offset: int = 0) -> bytes:
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            return handle.read()
    except FileNotFoundError:
        return b""


def _write_all(fd: int, data: bytes) -> None:
    """Write and fsync; one ``write`` call in practice, looped for short writes."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.fsync(fd)


def scan_lines(data: bytes, first_index: int) -> tuple[list[bytes], int, bool]:
    """Split log bytes into entry lines.

    Returns (lines, end offset of the last good line, whether a torn tail
    follows). Only the last line may be torn (no newline, or not a JSON
    object); a bad line anywhere else, or an index out of sequence, is damage
    that only a reviewer can judge, so it raises.
    """
    lines: list[bytes] = []
    pos = 0
    while pos < len(data):
        newline = data.find(b"\n", pos)
        if newline == -1:
            return lines, pos, True
        line = data[pos:newline]
        try:
            entry = json.loads(line)
        except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting, not an entry
            entry = None
        if not isinstance(entry, dict):
            if newline + 1 == len(data):
                return lines, pos, True
            raise AuditError(f"{LOG_NAME} entry {first_index + len(lines)} is corrupt")
        if entry.get("index") != first_index + len(lines):
            raise AuditError(
                f"{LOG_NAME} entry {first_index + len(lines)} has index {entry.get('index')!r}"
            )
        lines.append(line)
        pos = newline + 1
    return lines, pos, False


class AuditLog:
    """Writer of one side's audit log. Thread-safe and safe across processes."""

    def __init__(
        self, path: Path, origin: str, key: Ed25519PrivateKey, clock: Clock, lock_fd: int
    ) -> None:
        self.path = path
        self.origin = origin
        self._key = key
        self._clock = clock
        self._lock_fd = lock_fd
        self._thread_lock = threading.Lock()
        self._tree = CompactRange()  # O(log n): proofs are computed from disk (consistency_proof)
        self._offset = 0
        self._latest: Checkpoint | None = None
        self._log_fd = os.open(path / LOG_NAME, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._cp_fd = os.open(path / CHECKPOINTS_NAME, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._lease_fd = os.open(path / LEASE_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._lease_fd, fcntl.LOCK_SH)
        self._closed = False
        self.public_key: bytes = keys.raw_public_key(key)

    @classmethod
    def open(cls, directory: Path, origin: str, *, clock: Clock | None = None) -> AuditLog:
        """Open (creating if needed) the audit log under ``directory/audit``.

        Creates the directory (0700) and the audit key on first use, repairs a
        torn tail left by a crash, and reloads the tree. Refuses to open if
        entries covered by the latest checkpoint are missing or altered.
        """
        if not valid_origin(origin):
            raise ValueError(f"invalid audit origin {origin!r} (printable ASCII, no spaces or '+')")
        path = Path(directory) / AUDIT_SUBDIR
        if not path.is_dir():
            path.mkdir(parents=True, mode=0o700)
            fsync_directory(path.parent)
        lock_fd = os.open(path / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        log: AuditLog | None = None
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            pending = path / key_rotation.NEXT_KEY_NAME
            if pending.exists():  # a rotation a crash interrupted: audit.pub may already name the new key
                key = keys.load_signing_key(path / KEY_NAME)
            else:
                key = keys.load_or_create_signing_key(path / KEY_NAME, path / PUB_NAME, origin)
            log = cls(path, origin, key, clock or utc_now, lock_fd)
            log._load_locked(mid_rotation=pending.exists())
            if pending.exists():
                log._finish_interrupted_rotation_locked(keys.load_signing_key(pending))
        except BaseException:
            if log is not None:
                os.close(log._log_fd)
                os.close(log._cp_fd)
                os.close(log._lease_fd)
            os.close(lock_fd)  # also releases the flock
            raise
        fcntl.flock(lock_fd, fcntl.LOCK_UN)
        return log

    @property
    def size(self) -> int:
        """Number of entries (as of this process's last read or write)."""
        return self._tree.size

    def append(self, event: str, **fields: Any) -> int:
        """Validate, sign and durably append one event; returns its leaf index."""
        validate_fields(event, fields)
        with self._locked():
            self._sync_locked()
            return self._append_locked(event, fields)

    def record(self, entry: Entry) -> int:
        """``append`` one entry built by ``audit.entries``."""
        return self.append(entry.event, **entry.fields)

    def checkpoint(self) -> Checkpoint:
        """Sign the current tree head and durably append it to ``checkpoints``."""
        with self._locked():
            self._sync_locked()
            self._cut_checkpoints_tail_locked(*self._read_checkpoints_locked()[:2])
            cp = sign_checkpoint(
                self._key, self.origin, self._tree.size, self._tree.root(), format_time(self._clock())
            )
            _write_all(self._cp_fd, cp.note.encode() + b"\n")
            self._latest = cp
            return cp

    def latest_checkpoint(self) -> Checkpoint | None:
        """The newest checkpoint this process wrote or loaded (what is sent to witnesses)."""
        with self._thread_lock:
            return self._latest

    def consistency_proof(self, old_size: int, size: int) -> list[bytes]:
        """RFC 9162 consistency proof between two sizes of this log (for witnesses).

        Built from the entries on disk: the writer keeps only the tree's frontier, so a
        log's memory does not grow with its length; the full tree exists only while a
        proof is computed.
        """
        with self._locked():
            self._sync_locked()
            if not 0 <= size <= self._tree.size:
                raise ValueError(f"tree size {size} out of range 0..{self._tree.size}")
            lines, _, _ = scan_lines(_read(self.path / LOG_NAME)[:self._offset], 0)
        tree = MerkleTree()
        for line in lines[:size]:
            tree.append(line)
        return tree.consistency_proof(old_size, size)

    def refreshed_size(self) -> int:
        """Number of entries on disk now, including those other processes appended."""
        with self._locked():
            self._sync_locked()
            return self._tree.size

    def close(self) -> None:
        """Checkpoint (so every entry is covered on shutdown) and release files."""
        if self._closed:
            return
        self.checkpoint()
        self._closed = True
        self._close_files()

    def sign_transcript(self, session_id: bytes, transcript_hash: bytes) -> bytes:
        """This side's signature over the session transcript hash."""
        return keys.sign_transcript(self._key, session_id, transcript_hash)

    def sign_note_body(self, body: bytes) -> bytes:
        """The Ed25519 signature of a signed-note body other than this log's checkpoints
        (a key rotation statement, SPEC.md 2.3); a body that could be a checkpoint is refused."""
        if body.split(b"\n", 1)[0] == self.origin.encode():
            raise ValueError("a note whose first line is the log's origin would read as a checkpoint")
        return self._key.sign(body)

    def rotate_key(self) -> bytes:
        """Retire the audit key for a fresh one (SPEC.md 2.4); returns the audit key statement.

        Under the log's lock: the new key is stored as ``audit.key.next`` (0600), the
        rotation entry is appended (signed with the retiring key), the handover checkpoint
        is signed with both keys, the statement is stored, and only then do ``audit.pub``
        and ``audit.key`` change. A crash at any point is finished, or undone if the log
        does not yet name the new key, by the next :meth:`open`.
        """
        with self._locked(), self._alone():
            self._sync_locked()
            new_key = Ed25519PrivateKey.generate()
            key_rotation.write_next_key(self.path, new_key)
            index = self._tree.size
            note = self._statement(index, new_key)
            self._append_locked(key_rotation.ROTATION_EVENT, {
                "previous_key": self.public_key.hex(), "key": keys.raw_public_key(new_key).hex(),
                "statement": hashlib.sha256(note).hexdigest()})
            self._complete_rotation_locked(index, new_key)
            return note

    @contextmanager
    def _alone(self) -> Iterator[None]:
        """Hold the lease alone: no other process or instance has this log open (and its key in memory)."""
        try:
            fcntl.flock(self._lease_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fcntl.flock(self._lease_fd, fcntl.LOCK_SH)  # the conversion may have dropped the shared lock
            raise AuditError(f"another process has the audit log {self.path} open (a running daemon?): stop it "
                             "before rotating the audit key") from None
        try:
            yield
        finally:
            fcntl.flock(self._lease_fd, fcntl.LOCK_SH)

    def _statement(self, index: int, new_key: Ed25519PrivateKey) -> bytes:
        """The audit key statement of a rotation at entry ``index`` (deterministic: Ed25519 is)."""
        statement = AuditKeyStatement(self.origin, index + 1, self.public_key, keys.raw_public_key(new_key))
        return sign_audit_key_statement(statement, self._key.sign, new_key.sign)

    def _complete_rotation_locked(self, index: int, new_key: Ed25519PrivateKey) -> None:
        """Everything after the rotation entry; each step is skipped when a crash left it done."""
        if self._tree.size != index + 1:
            raise AuditError(f"{self.path / LOG_NAME} has entries after the audit key rotation at entry {index}; "
                             f"run 'blindmatch audit verify'")
        new_public = keys.raw_public_key(new_key)
        latest = self._latest
        if latest is None or latest.size != index + 1 or not signed_by(latest, new_public):
            self._cut_checkpoints_tail_locked(*self._read_checkpoints_locked()[:2])
            handover = sign_checkpoint(self._key, self.origin, index + 1, self._tree.root(),
                                       format_time(self._clock()), also=(new_key,))
            _write_all(self._cp_fd, handover.note.encode() + b"\n")
            self._latest = handover
        key_rotation.store_statement(self.path, self._statement(index, new_key))
        key_rotation.retire_files(self.path, self.origin, self.public_key, new_public)
        self._key, self.public_key = new_key, new_public

    def _finish_interrupted_rotation_locked(self, new_key: Ed25519PrivateKey) -> None:
        """Finish the rotation that left ``audit.key.next``, or delete that key if no entry names it."""
        lines, _, _ = scan_lines(_read(self.path / LOG_NAME)[:self._offset], 0)
        rotations = key_rotation.rotations_in(lines)
        new_public = keys.raw_public_key(new_key)
        last = rotations[-1] if rotations else None
        if last is None or last.key != new_public:
            (self.path / key_rotation.NEXT_KEY_NAME).unlink()  # it never signed anything
            fsync_directory(self.path)
            keys.load_or_create_signing_key(self.path / KEY_NAME, self.path / PUB_NAME, self.origin)
            return
        if last.previous_key != self.public_key:
            raise AuditError(f"{self.path / KEY_NAME} is not the key the audit key rotation at entry {last.index} "
                             "retires; restore it from a backup")
        if hashlib.sha256(self._statement(last.index, new_key)).digest() != last.statement:
            raise AuditError(f"the audit key rotation at entry {last.index} names another statement than its keys "
                             "make; run 'blindmatch audit verify'")
        self._complete_rotation_locked(last.index, new_key)

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- internals; the *_locked methods run with both locks held -------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._thread_lock:
            if self._closed:
                raise AuditError("audit log is closed")
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _close_files(self) -> None:
        for fd in (self._log_fd, self._cp_fd, self._lock_fd, self._lease_fd):
            os.close(fd)

    def _load_locked(self, mid_rotation: bool = False) -> None:
        """Check both files before repairing either: a log refused here is left as it was found.

        ``mid_rotation``: ``audit.key.next`` exists, so the key loaded may be the one the last
        rotation entry retires (the rotation is then finished)."""
        cp_data, cp_end, notes = self._read_checkpoints_locked()
        if notes:
            try:
                self._latest = parse_checkpoint(notes[-1], self.origin, self.public_key)
            except CheckpointError as exc:
                raise AuditError(f"{self.path / CHECKPOINTS_NAME}: latest checkpoint is invalid: {exc}") from exc
        data = _read(self.path / LOG_NAME)
        lines, good_end, torn = scan_lines(data, 0)
        covered = self._latest.size if self._latest else 0
        if len(lines) < covered:
            raise AuditError(
                f"{self.path / LOG_NAME} has {len(lines)} intact entries but the latest "
                f"checkpoint covers {covered}: checkpointed entries are lost; "
                "run 'blindmatch audit verify' and restore from backup"
            )
        for line in lines[:covered]:
            self._tree.append(line)
        covered_root = self._tree.root()
        for line in lines[covered:]:
            self._tree.append(line)
        self._offset = good_end
        rotations = key_rotation.rotations_in(lines)
        allowed = {rotations[-1].key, rotations[-1].previous_key if mid_rotation else rotations[-1].key} \
            if rotations else {self.public_key}
        if self.public_key not in allowed:
            raise AuditError(f"{self.path / KEY_NAME} is not the audit key the rotation at entry "
                             f"{rotations[-1].index} moved to; restore it from a backup")
        if self._latest and covered_root != self._latest.root:
            raise AuditError(
                f"{self.path / LOG_NAME} does not match its latest checkpoint; "
                "run 'blindmatch audit verify'"
            )
        self._cut_checkpoints_tail_locked(cp_data, cp_end)
        if torn:
            self._cut_torn_tail_locked(data[good_end:])

    def _sync_locked(self) -> None:
        """Pick up entries appended by another process since our last read."""
        current = os.fstat(self._log_fd).st_size
        if current < self._offset:
            raise AuditError(f"{self.path / LOG_NAME} shrank under us")
        if current == self._offset:
            return
        data = _read(self.path / LOG_NAME, self._offset)
        lines, good_end, torn = scan_lines(data, self._tree.size)
        if rotated := key_rotation.rotations_in(lines):
            raise AuditError(f"another process rotated the audit key (entry {rotated[0].index}): this process "
                             "holds the retired key and writes nothing more; restart it")
        for line in lines:
            self._tree.append(line)
        self._offset += good_end
        if torn:
            self._cut_torn_tail_locked(data[good_end:])

    def _cut_torn_tail_locked(self, torn: bytes) -> None:
        """Keep the torn bytes for forensics, truncate them, and log the repair."""
        self._save_torn("log", torn)
        os.truncate(self.path / LOG_NAME, self._offset)
        os.fsync(self._log_fd)
        self._append_locked(
            "log_repaired",
            {"dropped_bytes": len(torn), "dropped_sha256": hashlib.sha256(torn).hexdigest()},
        )

    def _save_torn(self, what: str, torn: bytes) -> None:
        stamp = format_time(self._clock()).replace(":", "").replace("-", "")
        target = self.path / f"torn-{what}-{stamp}-{os.getpid()}.bin"
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            _write_all(fd, torn)
        finally:
            os.close(fd)
        fsync_directory(self.path)

    def _read_checkpoints_locked(self) -> tuple[bytes, int, list[str]]:
        """(file bytes, end of the last complete note, the complete notes).

        Raises if a complete note follows the incomplete tail: that is damage, not a torn write.
        """
        path = self.path / CHECKPOINTS_NAME
        data = _read(path)
        notes, good_end = split_notes(data)
        if good_end < len(data) and complete_note_after(data, good_end):
            raise AuditError(f"{path} is corrupt at byte {good_end}; run 'blindmatch audit verify'")
        return data, good_end, notes

    def _cut_checkpoints_tail_locked(self, data: bytes, good_end: int) -> None:
        """Keep an incomplete last note for forensics and truncate it."""
        if good_end < len(data):
            self._save_torn("checkpoints", data[good_end:])
            os.truncate(self.path / CHECKPOINTS_NAME, good_end)
            os.fsync(self._cp_fd)

    def _append_locked(self, event: str, fields: dict[str, Any]) -> int:
        index = self._tree.size
        entry = {**fields, "event": event, "index": index, "time": format_time(self._clock())}
        entry["sig"] = self._key.sign(entry_signing_message(self.origin, entry)).hex()
        line = canonical_json(entry)
        try:
            _write_all(self._log_fd, line + b"\n")
        except OSError:
            # A full disk may take part of the line: cut it, so the log stays whole for the next writer.
            os.ftruncate(self._log_fd, self._offset)
            raise
        self._offset += len(line) + 1
        self._tree.append(line)
        return index
