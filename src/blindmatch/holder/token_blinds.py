"""The blinds the token stage sent each batch with, kept for the whole issuer epoch.

The issuer counts every element a holder has it evaluate against the holder's allowance
for the epoch, except a batch of blinded elements it has already answered that holder
in the epoch (SPEC.md 15.8). A batch of the same match keys sent with the same blinds is
the same blinded elements, so keeping each batch's blinds lets every later build of the
same epoch be answered again without being counted twice: a build interrupted after the
issuer answered but before the answer was kept, a build ahead that a restart threw away,
a holder key rotation in the middle of the issuer epoch, a re-run of the same records.

Blinds are not tokens: with them a token is obtained only by asking the issuer again,
which answers only the holder's own certificate. They still let whoever holds them and
that certificate re-derive the holder's tokens, so the file is 0600, lives in the index
directory, and is removed once a build of another epoch starts. Records whose keys
changed are new batches and are counted, as they should be.

File layout: ``MAGIC || pkI (32) || epoch (7 ASCII)``, then per batch ``SHA-256(keys)
(32) || count (u32) || count * 32 blind bytes || SHA-256 of the preceding bytes of the
record (32)``; integers big-endian. Opening reads the records one at a time, so memory is
one batch plus an offset per batch; a record torn by a crash fails its checksum and the
file is cut there.
"""

from __future__ import annotations

import hashlib
import os
import stat
import struct
from collections.abc import Callable
from pathlib import Path

from blindmatch.keyfile import fsync_directory

MAGIC = b"BMTBLD1\n"
SCALAR_BYTES = 32
_PREFIX = struct.Struct(">32sI")
_CHECK_BYTES = 32


def blinds_path(index_dir: Path, epoch: str) -> Path:
    return index_dir / f".issuer-tokens-{epoch}.blinds"


class BlindsLog:
    """Each batch's blinds by the digest of its match keys, appended durably before the batch is sent."""

    def __init__(self, index_dir: Path, epoch: str, issuer_public_key: bytes) -> None:
        self.path = blinds_path(index_dir, epoch)
        header = MAGIC + issuer_public_key + epoch.encode("ascii")
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        if stat.S_IMODE(os.fstat(fd).st_mode) & 0o077:
            os.close(fd)
            raise PermissionError(f"token blinds {self.path} are readable by others; remove the file and rebuild")
        self._fd = fd
        self._batches: dict[tuple[bytes, int], int] = {}  # (keys digest, count) -> offset of the blinds
        if os.pread(fd, len(header), 0) != header:  # new, or of another issuer key
            os.ftruncate(fd, 0)
            os.pwrite(fd, header, 0)
            os.fsync(fd)
            fsync_directory(index_dir)
        self._end = self._index(len(header))

    def _index(self, offset: int) -> int:
        """Index the intact records from ``offset``; cut a torn one. Returns the end of the last."""
        while True:
            prefix = os.pread(self._fd, _PREFIX.size, offset)
            if len(prefix) != _PREFIX.size:
                break
            digest, count = _PREFIX.unpack(prefix)
            size = _PREFIX.size + count * SCALAR_BYTES + _CHECK_BYTES
            record = os.pread(self._fd, size, offset)
            if len(record) != size or hashlib.sha256(record[:-_CHECK_BYTES]).digest() != record[-_CHECK_BYTES:]:
                break
            self._batches[digest, count] = offset + _PREFIX.size
            offset += size
        os.ftruncate(self._fd, offset)
        return offset

    def blinds_for(self, digest: bytes, count: int, fresh: Callable[[], bytes]) -> bytes:
        """The blinds this batch was sent with before in the epoch, or ``fresh()`` ones, kept durably first."""
        if (start := self._batches.get((digest, count))) is not None:
            return os.pread(self._fd, count * SCALAR_BYTES, start)
        blinds = fresh()
        body = _PREFIX.pack(digest, count) + blinds
        data = body + hashlib.sha256(body).digest()
        written = 0
        while written < len(data):
            written += os.pwrite(self._fd, data[written:], self._end + written)
        os.fsync(self._fd)
        self._batches[digest, count] = self._end + _PREFIX.size
        self._end += len(data)
        return blinds

    @property
    def batches(self) -> int:
        return len(self._batches)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

