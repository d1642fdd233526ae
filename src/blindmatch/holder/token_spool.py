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

The batch in flight is kept too (``.pending``: its keys' digest and its blinds, written
before it is sent): after a crash between the issuer's answer and its append, the
batch is resent with the same blinds, so the issuer sees the same blinded elements and
answers them without counting them again.

The spool holds tokens of the holder's own records, which a requester must never
obtain (and the blinds, which with the issuer's answer give tokens), so both files are
created 0600, kept inside the index directory, and removed once the
index built from it is committed (and a spool of any other epoch as soon as a build of
a new epoch starts).

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

from blindmatch.keyfile import fsync_directory

MAGIC = b"BMTSPL1\n"
TOKEN_BYTES = 64
_PREFIX = struct.Struct(">32sI")
_CHECK_BYTES = 32
SPOOL_GLOB = ".issuer-tokens-*"


def spool_path(index_dir: Path, epoch: str) -> Path:
    return index_dir / f".issuer-tokens-{epoch}.spool"


def pending_path(index_dir: Path, epoch: str) -> Path:
    """The blinds of the batch in flight: resent as they were, the issuer does not count it twice."""
    return index_dir / f".issuer-tokens-{epoch}.pending"


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
        self.path, self.pending = spool_path(index_dir, epoch), pending_path(index_dir, epoch)
        for other in index_dir.glob(SPOOL_GLOB):  # an older epoch's tokens are of no use any more
            if other not in (self.path, self.pending):
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

        If the batch was in flight when the last build stopped (sent, but its answer not
        kept), the same blinds give the same blinded elements, which the issuer answers
        again without counting them (SPEC.md 15.8); otherwise ``fresh()``.
        """
        digest = keys_digest(keys)
        try:
            kept = self.pending.read_bytes()
        except FileNotFoundError:
            kept = b""
        body, check = kept[:-_CHECK_BYTES], kept[-_CHECK_BYTES:]
        if len(kept) == _PREFIX.size + 32 * len(keys) + _CHECK_BYTES and hashlib.sha256(body).digest() == check \
                and _PREFIX.unpack(body[: _PREFIX.size]) == (digest, len(keys)):
            return body[_PREFIX.size :]
        blinds = fresh()
        body = _PREFIX.pack(digest, len(keys)) + blinds
        tmp = self.pending.with_name(self.pending.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, body + hashlib.sha256(body).digest())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.pending)
        fsync_directory(self.pending.parent)
        return blinds

    def record(self, keys: Sequence[bytes], tokens: Sequence[bytes]) -> None:
        """Append a finished batch durably (after its issuer proof verified)."""
        body = _PREFIX.pack(keys_digest(keys), len(tokens)) + b"".join(tokens)
        data = body + hashlib.sha256(body).digest()
        written = 0
        while written < len(data):
            written += os.pwrite(self._fd, data[written:], self._offset + written)
        os.fsync(self._fd)
        self._offset += len(data)
        self.pending.unlink(missing_ok=True)  # its answer is kept now

    def _cut(self, offset: int) -> None:
        os.ftruncate(self._fd, offset)
        self._offset = max(offset, len(self._header))

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def discard(self) -> None:
        """The index built from these tokens is committed: the spool is of no further use."""
        self.close()
        self.path.unlink(missing_ok=True)
        self.pending.unlink(missing_ok=True)
        fsync_directory(self.path.parent)
