"""The cosigned checkpoints of a log, kept next to it in ``audit/cosigned``.

Each block is the log's checkpoint note with the witnesses' cosignature lines
appended (one more signed note, readable by any signed-note tool), followed by
an empty line, exactly like the ``checkpoints`` file. The ``checkpoints`` file
itself stays untouched: it is append-only and a cosignature arrives after the
checkpoint was written.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from blindmatch.audit.checkpoint import NOTE_BLOCK_RE, Checkpoint, split_notes
from blindmatch.audit.cosignature import Cosignature
from blindmatch.keyfile import fsync_directory

COSIGNED_NAME = "cosigned"


class CosignedStoreError(Exception):
    """The ``cosigned`` file is damaged in the middle (not just a torn tail)."""


def cosigned_note(checkpoint: Checkpoint, cosignatures: list[Cosignature]) -> str:
    """The checkpoint note with the cosignature lines appended."""
    return checkpoint.note + "".join(c.line for c in cosignatures)


def read_cosigned(audit_dir: Path) -> tuple[list[str], bool]:
    """The stored notes, and whether the file ends in an incomplete (torn) block."""
    try:
        data = (Path(audit_dir) / COSIGNED_NAME).read_bytes()
    except FileNotFoundError:
        return [], False
    notes, good_end = split_notes(data)
    if good_end < len(data) and NOTE_BLOCK_RE.search(data, good_end):
        raise CosignedStoreError(f"{Path(audit_dir) / COSIGNED_NAME} is corrupt at byte {good_end}")
    return notes, good_end < len(data)


def append_cosigned(audit_dir: Path, note: str) -> None:
    """Durably append one cosigned note; a torn tail from a crash is cut first."""
    path = Path(audit_dir) / COSIGNED_NAME
    existed = path.exists()
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        # Each open() is its own flock holder, so threads and processes appending at once
        # queue here and never cut each other's block as if it were a torn tail.
        fcntl.flock(fd, fcntl.LOCK_EX)
        data = os.pread(fd, os.fstat(fd).st_size, 0)
        _, good_end = split_notes(data)
        if good_end < len(data):
            if NOTE_BLOCK_RE.search(data, good_end):
                raise CosignedStoreError(f"{path} is corrupt at byte {good_end}")
            os.ftruncate(fd, good_end)
        block = memoryview(note.encode() + b"\n")
        while block:
            block = block[os.write(fd, block):]
        os.fsync(fd)
    finally:
        os.close(fd)
    if not existed:
        fsync_directory(path.parent)
