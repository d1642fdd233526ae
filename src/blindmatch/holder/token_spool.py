"""The token stage's finished batches on disk, so an interrupted index build resumes.

Obtaining the issuer's tokens is the slow, metered part of a rebuild: every element the
holder sends counts against its declared allowance at the issuer (SPEC.md 15.8). If the
build stops partway (kill -9, the issuer going away, a power cut), asking again for
the batches already answered would cost time and allowance for nothing. So each batch's
tokens are appended here, and fsynced, as soon as its proof verified; a later build of
the same epoch replays them in order instead of asking the issuer, and asks only from
the first batch that is not in the spool.

A replayed batch is used only if it is the same batch: each record carries the SHA-256
of the batch's match keys, so a records file changed since the interruption (or another
chunk or batch size) stops the replay at the first batch that differs, and the spool is
cut there. A record torn by a crash in the middle of its append fails its own checksum
and is cut the same way. Only one batch is held in memory at a time.

Every batch's blinds are kept too, before it is sent, for the whole epoch
(:mod:`blindmatch.holder.token_blinds`): after a crash between the issuer's answer and
its append, and in any later build of the same epoch, the batch is resent with the same
blinds, so the issuer sees the same blinded elements and answers them without counting
them again.

The spool holds tokens of the holder's own records, which a requester must never
obtain, so it is created 0600, kept inside the index directory, and removed once the
index built from it is committed (and the spool and blinds of any other epoch as soon
as a build of a new epoch starts).

File layout: ``MAGIC || pkI (32) || batch_elements (u32) || epoch (7 ASCII)``, then per
batch ``SHA-256(keys) (32) || count (u32) || count * 64 token bytes || SHA-256 of the
preceding bytes of the record (32)``; integers big-endian.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import stat
import struct
from collections.abc import Callable, Sequence
from pathlib import Path

from blindmatch.holder.token_blinds import BlindsLog
from blindmatch.keyfile import fsync_directory

MAGIC = b"BMTSPL1\n"
TOKEN_BYTES = 64
_PREFIX = struct.Struct(">32sI")
_CHECK_BYTES = 32
SPOOL_GLOB = ".issuer-tokens-*"


def spool_path(index_dir: Path, epoch: str) -> Path:
    return index_dir / f".issuer-tokens-{epoch}.spool"


def keys_digest(keys: Sequence[bytes]) -> bytes:
    """What identifies a batch: SHA-256 over its match keys, each length-prefixed."""
    digest = hashlib.sha256()
    for key in keys:
        digest.update(struct.pack(">H", len(key)) + key)
    return digest.digest()


class TokenSpool:
    """Replays finished batches of an interrupted token stage, then records the new ones."""

    def __init__(self, index_dir: Path, epoch: str, issuer_public_key: bytes, batch_elements: int) -> None:
        index_dir.mkdir(parents=True, exist_ok=True)
        self.path = spool_path(index_dir, epoch)
        for other in index_dir.glob(SPOOL_GLOB):  # another epoch's tokens and blinds are of no use any more
            if not other.name.startswith(f".issuer-tokens-{epoch}."):
                other.unlink(missing_ok=True)
        self._header = MAGIC + issuer_public_key + struct.pack(">I", batch_elements) + epoch.encode("ascii")
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        if stat.S_IMODE(os.fstat(fd).st_mode) & 0o077:
            os.close(fd)
            raise PermissionError(f"token spool {self.path} is readable by others; remove it and rebuild")
        try:  # two builds appending to one spool would interleave their batches
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise BlockingIOError(f"token spool {self.path} is in use by another index build of epoch {epoch}; "
                                  "wait for it to finish") from None
        self._fd = fd
        try:
            self.blinds = BlindsLog(index_dir, epoch, issuer_public_key)
        except BaseException:
            os.close(fd)
            raise
        self._offset = len(self._header)
        self.replayed = 0  # elements taken from the spool instead of the issuer
        if os.pread(fd, len(self._header), 0) != self._header:  # new, or for another key or batch size
            self._cut(0)
            os.pwrite(fd, self._header, 0)
            os.fsync(fd)
            fsync_directory(index_dir)
        self._replaying = True

    def replay(self, keys: Sequence[bytes]) -> list[bytes] | None:
        """The tokens of this batch if the spool has it as its next record; else None, from now on."""
        if not self._replaying:
            return None
        tokens = self._read_record(keys)
        if tokens is None:
            self._replaying = False
            self._cut(self._offset)
            return None
        self.replayed += len(tokens)
        return tokens

    def _read_record(self, keys: Sequence[bytes]) -> list[bytes] | None:
        prefix = os.pread(self._fd, _PREFIX.size, self._offset)
        if len(prefix) != _PREFIX.size:
            return None
        digest, count = _PREFIX.unpack(prefix)
        if digest != keys_digest(keys) or count != len(keys):
            return None
        size = _PREFIX.size + count * TOKEN_BYTES + _CHECK_BYTES
        record = os.pread(self._fd, size, self._offset)
        if len(record) != size or hashlib.sha256(record[:-_CHECK_BYTES]).digest() != record[-_CHECK_BYTES:]:
            return None
        self._offset += size
        body = record[_PREFIX.size : -_CHECK_BYTES]
        return [body[i * TOKEN_BYTES : (i + 1) * TOKEN_BYTES] for i in range(count)]

    def blinds_for(self, keys: Sequence[bytes], fresh: Callable[[], bytes]) -> bytes:
        """The blinds to send this batch with, kept durably before it is sent.

        If the same batch was sent before in this epoch (its answer lost in a crash, or an
        earlier build of the epoch), the same blinds give the same blinded elements, which
        the issuer answers again without counting them (SPEC.md 15.8); otherwise ``fresh()``.
        """
        return self.blinds.blinds_for(keys_digest(keys), len(keys), fresh)

    def record(self, keys: Sequence[bytes], tokens: Sequence[bytes]) -> None:
        """Append a finished batch durably (after its issuer proof verified)."""
        body = _PREFIX.pack(keys_digest(keys), len(tokens)) + b"".join(tokens)
        data = body + hashlib.sha256(body).digest()
        written = 0
        while written < len(data):
            written += os.pwrite(self._fd, data[written:], self._offset + written)
        os.fsync(self._fd)
        self._offset += len(data)

    def _cut(self, offset: int) -> None:
        os.ftruncate(self._fd, offset)
        self._offset = max(offset, len(self._header))

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self.blinds.close()

    def discard(self) -> None:
        """The index built from these tokens is committed: the tokens are of no further use (the
        blinds stay, so another build of the epoch is not counted again)."""
        self.close()
        self.path.unlink(missing_ok=True)
        fsync_directory(self.path.parent)
