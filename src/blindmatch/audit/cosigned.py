"""The cosigned checkpoints of a log, kept next to it in ``audit/cosigned``.

Each block is the log's checkpoint note with the witnesses' cosignature lines
appended (one more signed note, readable by any signed-note tool), followed by
an empty line, exactly like the ``checkpoints`` file. The ``checkpoints`` file
itself stays untouched: it is append-only and a cosignature arrives after the
checkpoint was written.
"""

from __future__ import annotations

from pathlib import Path

from blindmatch.audit.checkpoint import Checkpoint
from blindmatch.audit.cosignature import Cosignature
from blindmatch.audit.notefile import NoteFileError, append_note, read_notes

COSIGNED_NAME = "cosigned"

# The ``cosigned`` file is damaged in the middle (not just a torn tail).
CosignedStoreError = NoteFileError


def cosigned_note(checkpoint: Checkpoint, cosignatures: list[Cosignature]) -> str:
    """The checkpoint note with the cosignature lines appended."""
    return checkpoint.note + "".join(c.line for c in cosignatures)


def read_cosigned(audit_dir: Path) -> tuple[list[str], bool]:
    """The stored notes, and whether the file ends in an incomplete (torn) block."""
    return read_notes(Path(audit_dir) / COSIGNED_NAME)


def append_cosigned(audit_dir: Path, note: str) -> None:
    """Durably append one cosigned note; a torn tail from a crash is cut first."""
    append_note(Path(audit_dir) / COSIGNED_NAME, note)
