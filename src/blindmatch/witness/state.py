"""The witness's durable state: latest cosigned checkpoint per log, evidence, ledger.

Layout of ``state_dir`` (mode 0700)::

    lock                      flock: one witness process per state directory
    logs/<log id>.note        latest cosigned checkpoint of the log, with the cosignature
    evidence/<log id>-*.txt   refused submissions whose log signature verified (forks,
                              bad proofs, rollbacks) next to the latest checkpoint then
    events.jsonl              append-only ledger: one JSON object per cosigning or refusal

``<log id>`` is the hex SHA-256 of the origin (origins may contain '/'). The latest
checkpoint is replaced atomically (temporary file, fsync, rename, directory fsync), so
a crash leaves the old or the new one, never a mix; the ledger and evidence are written
with fsync before the witness answers. Nothing here holds personal data: origins,
organisation names, sizes, hashes and times only.
"""

from __future__ import annotations

import fcntl
import hashlib
import itertools
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from blindmatch.keyfile import fsync_directory

LOGS = "logs"
EVIDENCE = "evidence"
LEDGER = "events.jsonl"


class WitnessStateError(Exception):
    """The state directory cannot be used (locked by another witness, unreadable)."""


def log_id(origin: str) -> str:
    return hashlib.sha256(origin.encode()).hexdigest()


def _write_durably(path: Path, data: bytes, flags: int) -> None:
    fd = os.open(path, flags, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


class WitnessState:
    """Files of one witness; callers serialise access (the witness holds one lock)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        for sub in (self.directory, self.directory / LOGS, self.directory / EVIDENCE):
            sub.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._lock_fd = os.open(self.directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise WitnessStateError(f"{self.directory} is in use by another witness process") from None

    def close(self) -> None:
        os.close(self._lock_fd)  # also releases the flock

    def latest(self, origin: str) -> str | None:
        """The stored latest cosigned note of ``origin``, or None if it was never cosigned."""
        try:
            return (self.directory / LOGS / f"{log_id(origin)}.note").read_text()
        except FileNotFoundError:
            return None

    def store_latest(self, origin: str, note: str) -> None:
        """Atomically replace the latest cosigned note of ``origin``."""
        target = self.directory / LOGS / f"{log_id(origin)}.note"
        temporary = target.with_suffix(f".tmp{os.getpid()}")
        _write_durably(temporary, note.encode(), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.replace(temporary, target)
        fsync_directory(target.parent)

    def keep_evidence(self, origin: str, reason: str, submitted: str, latest: str | None, now: datetime) -> Path:
        """Write the refused submission and the then-latest note side by side; returns the file."""
        stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        previous = latest if latest is not None else "(none)\n"
        text = (
            f"origin {origin}\nreason {reason}\n\n--- submitted request body ---\n{submitted}"
            f"\n--- latest cosigned checkpoint ---\n{previous}"
        )
        for n in itertools.count():  # never overwrite evidence, even within one clock tick
            path = self.directory / EVIDENCE / f"{log_id(origin)[:16]}-{stamp}{f'.{n}' if n else ''}-{reason}.txt"
            try:
                _write_durably(path, text.encode(), os.O_WRONLY | os.O_CREAT | os.O_EXCL)
                break
            except FileExistsError:
                continue
        fsync_directory(path.parent)
        return path

    def record(self, event: str, now: datetime, **fields: Any) -> None:
        """Append one ledger line (fsync'd)."""
        entry = {"time": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "event": event, **fields}
        line = json.dumps(entry, sort_keys=True, separators=(",", ":")).encode() + b"\n"
        _write_durably(self.directory / LEDGER, line, os.O_WRONLY | os.O_CREAT | os.O_APPEND)

