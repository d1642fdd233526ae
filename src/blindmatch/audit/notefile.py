"""Append-only files of signed-note blocks (``cosigned``, ``peer-checkpoints``).

Each block is one signed note followed by an empty line, exactly like the log's
``checkpoints`` file, so the file splits without ambiguity and a torn write leaves a
visibly incomplete last block. Every append is one ``write`` on an ``O_APPEND``
descriptor followed by ``fsync``, under an ``flock`` so concurrent writers queue.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from blindmatch.audit.checkpoint import NOTE_BLOCK_RE, split_notes
from blindmatch.keyfile import fsync_directory


class NoteFileError(Exception):
    """A note file is damaged in the middle (not just a torn tail)."""


def read_notes(path: Path) -> tuple[list[str], bool]:
    """The stored notes, and whether the file ends in an incomplete (torn) block."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return [], False
    notes, good_end = split_notes(data)
    if good_end < len(data) and NOTE_BLOCK_RE.search(data, good_end):
        raise NoteFileError(f"{path} is corrupt at byte {good_end}")
    return notes, good_end < len(data)


def append_note(path: Path, note: str) -> None:
    """Durably append one note; a torn tail from a crash is cut first."""
    path = Path(path)
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
                raise NoteFileError(f"{path} is corrupt at byte {good_end}")
            os.ftruncate(fd, good_end)
        block = memoryview(note.encode() + b"\n")
        while block:
            block = block[os.write(fd, block):]
        os.fsync(fd)
    finally:
        os.close(fd)
    if not existed:
        fsync_directory(path.parent)
