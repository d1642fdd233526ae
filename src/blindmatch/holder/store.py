"""The holder's files: its OPRF key and the encrypted indexes it serves.

Key file: the format of ``blindmatch.keyfile`` (so ``blindmatch keys generate`` makes
one), mode 0600. Loading refuses a file that
group or others can read, because anyone holding it can evaluate the holder's PRF
offline and test guesses against the index.

Index directory: content-addressed index files (``membership-<digest>.idx``) plus the
manifest ``index.json`` that names them with their digests. A rebuild writes and
fsyncs the new files first and then atomically renames a new manifest over the old
one: that rename is the commit point, so a crash at any moment leaves either the old
or the new index complete and served, never a mix. Files the manifest no longer names
are removed only after the commit (a daemon that still has them open keeps reading).

Key rotation: the manifest records the key id its indexes were built with, so it decides
which key is current. A rotation writes the new key to ``<key_file>.next`` (0600), builds
and commits the index under it, then hard-links the old key to
``<key_file>.retired-<key id prefix>`` and renames ``.next`` over ``<key_file>``. A crash
before the manifest rename leaves the old key matching the old manifest (the orphaned
``.next`` is discarded by the next rotation); a crash after it leaves a ``.next`` that
matches the manifest, and every load finishes the rename before using the key. So no
load ever pairs a key with an index built under another one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from blindmatch.core.index import HEADER_BYTES, IndexFormatError, IndexHeader, index_digest
from blindmatch.core.keys import HolderKey
from blindmatch.keyfile import KeyFileError, fsync_directory, read_oprf_key, write_oprf_key
from blindmatch.vocabulary import BlindmatchError, Mode

MANIFEST_NAME = "index.json"
MANIFEST_FORMAT = 2  # 2: one index per (requesting organisation, mode), POPRF under its info
_TMP_MARK = ".tmp-"
_HASH_CHUNK = 1 << 20


class StoreError(BlindmatchError):
    """A key or index file is missing, unsafe or inconsistent. Messages never contain key material."""


# --- OPRF key ---------------------------------------------------------------------------


def write_key_file(path: Path, key: HolderKey) -> None:
    """Create ``path`` (mode 0600, never overwriting) holding ``key``."""
    try:
        write_oprf_key(path, key.sk)
    except KeyFileError as exc:
        raise StoreError(str(exc)) from None
    fsync_directory(path.parent)


def load_key_file(path: Path) -> HolderKey:
    """Read the OPRF key, refusing files readable by group or others."""
    if not path.exists():
        raise StoreError(f"OPRF key file {path} does not exist; run 'blindmatch holder keygen'")
    try:
        return HolderKey(read_oprf_key(path))
    except KeyFileError as exc:
        raise StoreError(str(exc)) from None
    except ValueError:
        raise StoreError(f"OPRF key file {path} does not hold a valid ristretto255 scalar") from None


def load_or_create_key(path: Path) -> tuple[HolderKey, bool]:
    """The key at ``path``, creating one if the file does not exist; True if created."""
    if path.exists():
        return load_key_file(path), False
    key = HolderKey.generate()
    write_key_file(path, key)
    return key, True


def next_key_path(key_file: Path) -> Path:
    """Where a rotation keeps the new key until the index built with it is committed."""
    return key_file.with_name(key_file.name + ".next")


def retired_key_path(key_file: Path, key_id: bytes) -> Path:
    """Where a rotation leaves the replaced key; the id prefix tells retired keys apart."""
    return key_file.with_name(f"{key_file.name}.retired-{key_id.hex()[:16]}")


def committed_key_id(index_dir: Path) -> bytes | None:
    """The key id the committed manifest names, or None before the first index is built."""
    if not (index_dir / MANIFEST_NAME).exists():
        return None
    return read_manifest(index_dir).key_id


def promote_next_key(key_file: Path) -> Path | None:
    """Make ``<key_file>.next`` the key file, keeping the old key as a retired file.

    Only call once the manifest names the ``.next`` key. The old key is hard-linked to its
    retired name (same inode, so still 0600) before the rename, so ``key_file`` exists at
    every moment; rerunning after a crash between the two steps is harmless. Returns the
    retired path, or None if there was no old key file.
    """
    retired = None
    if key_file.exists():
        retired = retired_key_path(key_file, load_key_file(key_file).key_id)
        if not retired.exists():
            os.link(key_file, retired)
    os.replace(next_key_path(key_file), key_file)
    fsync_directory(key_file.parent)
    return retired


def _settle_key(key_file: Path, key_id: bytes) -> HolderKey | None:
    """The key with ``key_id``, finishing a rotation whose commit happened but not its rename."""
    current = load_key_file(key_file) if key_file.exists() else None
    if current is not None and current.key_id == key_id:
        return current
    pending_path = next_key_path(key_file)
    if pending_path.exists():
        pending = load_key_file(pending_path)
        if pending.key_id == key_id:
            promote_next_key(key_file)
            return pending
    return None


def load_committed_key(key_file: Path, index_dir: Path, key_id: bytes) -> HolderKey:
    """The key the committed index (manifest key id ``key_id``) was built with.

    Finishes an interrupted rotation first; refuses any other mismatch, because serving
    or extending an index with the wrong key silently matches nothing.
    """
    key = _settle_key(key_file, key_id)
    if key is not None:
        return key
    have = load_key_file(key_file).key_id.hex()[:16] if key_file.exists() else "none, file missing"
    raise StoreError(
        f"OPRF key {key_file} (key id {have}) is not the key the index in {index_dir} was built with "
        f"(key id {key_id.hex()[:16]}); restore that key, or replace key and index together with "
        "'blindmatch holder index RECORDS.csv --rotate-key'"
    )


def key_for_rebuild(key_file: Path, index_dir: Path) -> tuple[HolderKey, bool]:
    """The key a rebuild without rotation must use: the committed index's, or a new one if none."""
    key_id = committed_key_id(index_dir)
    if key_id is None:
        return load_or_create_key(key_file)
    return load_committed_key(key_file, index_dir, key_id), False


def begin_rotation(key_file: Path, index_dir: Path) -> HolderKey:
    """Write a fresh key to ``<key_file>.next`` for a rotation and return it.

    An earlier rotation that committed but did not rename is finished first, so its old
    key is retired rather than lost. A ``.next`` left after that was never committed (the
    rotation stopped before its manifest rename), so no index uses it and it is removed.
    """
    key_id = committed_key_id(index_dir)
    if key_id is not None:
        _settle_key(key_file, key_id)
    pending_path = next_key_path(key_file)
    pending_path.unlink(missing_ok=True)
    key = HolderKey.generate()
    write_key_file(pending_path, key)
    return key


# --- encrypted indexes ------------------------------------------------------------------


# Which index: the requesting organisation it was built for (its POPRF info) and its mode.
IndexSlot = tuple[str, Mode]


@dataclass(frozen=True)
class IndexFile:
    organisation: str
    kind: Mode
    path: Path
    digest: bytes
    size_bytes: int
    entries: int


@dataclass(frozen=True)
class IndexManifest:
    key_id: bytes
    schema_fingerprint: bytes
    schema_name: str
    schema_version: int
    records: int
    built_at: str
    files: dict[IndexSlot, IndexFile]
    # The key's epoch (SPEC.md 2.1): 1 for the first key, one more per rotation; when it
    # started serving, and the key it replaced (None for the first), for its rotation statement.
    epoch: int = 1
    valid_from: str = ""
    previous_key_id: bytes | None = None

    def for_organisation(self, organisation: str) -> dict[Mode, IndexFile]:
        """The indexes built for ``organisation``, by mode (none for an organisation not indexed)."""
        return {kind: f for (org, kind), f in self.files.items() if org == organisation}


def _write_durably(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary sibling, fsync it and rename it to ``path``."""
    tmp = path.with_name(f".{path.name}{_TMP_MARK}{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def write_indexes(
    index_dir: Path,
    indexes: dict[IndexSlot, bytes],
    *,
    key_id: bytes,
    schema_fingerprint: bytes,
    schema_name: str,
    schema_version: int,
    records: int,
    epoch: int = 1,
    valid_from: str | None = None,
    previous_key_id: bytes | None = None,
) -> IndexManifest:
    """Store freshly built indexes and switch the manifest to them atomically.

    ``epoch``, ``valid_from`` (RFC 3339 UTC; the build time if None) and ``previous_key_id``
    describe the key the indexes were built with (section 2.1 of SPEC.md).
    """
    index_dir.mkdir(parents=True, exist_ok=True)
    files: dict[IndexSlot, IndexFile] = {}
    for (organisation, kind), data in indexes.items():
        digest = index_digest(data)
        header = IndexHeader.decode(data)
        path = index_dir / f"{kind.value}-{digest.hex()[:16]}.idx"
        _write_durably(path, data)
        files[organisation, kind] = IndexFile(organisation, kind, path, digest, len(data), header.entries)
    built_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    manifest = IndexManifest(
        key_id=key_id,
        schema_fingerprint=schema_fingerprint,
        schema_name=schema_name,
        schema_version=schema_version,
        records=records,
        built_at=built_at,
        files=files,
        epoch=epoch,
        valid_from=valid_from or built_at,
        previous_key_id=previous_key_id,
    )
    fsync_directory(index_dir)  # the new index files' names are durable before the manifest names them
    _write_durably(index_dir / MANIFEST_NAME, _manifest_json(manifest))
    fsync_directory(index_dir)
    _remove_unreferenced(index_dir, manifest)
    return manifest


def _manifest_json(manifest: IndexManifest) -> bytes:
    doc = {
        "format": MANIFEST_FORMAT,
        "key_id": manifest.key_id.hex(),
        "schema": {
            "fingerprint": manifest.schema_fingerprint.hex(),
            "name": manifest.schema_name,
            "version": manifest.schema_version,
        },
        "records": manifest.records,
        "built_at": manifest.built_at,
        "epoch": manifest.epoch,
        "valid_from": manifest.valid_from,
        "previous_key_id": manifest.previous_key_id.hex() if manifest.previous_key_id is not None else None,
        "indexes": [
            {"organisation": org, "kind": kind.value, "file": f.path.name, "digest": f.digest.hex(),
             "size_bytes": f.size_bytes, "entries": f.entries}
            for (org, kind), f in sorted(manifest.files.items(), key=lambda item: (item[0][0], item[0][1].value))
        ],
    }
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


def _remove_unreferenced(index_dir: Path, manifest: IndexManifest) -> None:
    keep = {f.path.name for f in manifest.files.values()}
    for entry in index_dir.iterdir():
        stale_index = entry.suffix == ".idx" and entry.name not in keep
        if stale_index or _TMP_MARK in entry.name:
            entry.unlink(missing_ok=True)


def read_manifest(index_dir: Path) -> IndexManifest:
    """Parse ``index.json``; file contents are checked by :func:`open_indexes`."""
    path = index_dir / MANIFEST_NAME
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise StoreError(f"no index in {index_dir}; run 'blindmatch holder index RECORDS.csv'") from None
    except (OSError, ValueError) as exc:
        raise StoreError(f"cannot read {path}: {exc}") from None
    try:
        if doc["format"] != MANIFEST_FORMAT:
            raise StoreError(f"{path}: unsupported manifest format {doc['format']!r}")
        files = {
            (str(entry["organisation"]), Mode(entry["kind"])): IndexFile(
                str(entry["organisation"]), Mode(entry["kind"]), index_dir / entry["file"],
                bytes.fromhex(entry["digest"]), int(entry["size_bytes"]), int(entry["entries"]))
            for entry in doc["indexes"]
        }
        if any("\x00" in f.path.name for f in files.values()):  # os.open would raise ValueError
            raise ValueError("NUL byte in an index file name")
        schema = doc["schema"]
        previous = doc.get("previous_key_id")  # absent (with epoch and valid_from) in manifests of older versions
        return IndexManifest(
            key_id=bytes.fromhex(doc["key_id"]),
            schema_fingerprint=bytes.fromhex(schema["fingerprint"]),
            schema_name=str(schema["name"]),
            schema_version=int(schema["version"]),
            records=int(doc["records"]),
            built_at=str(doc["built_at"]),
            files=files,
            epoch=int(doc.get("epoch", 1)),
            valid_from=str(doc.get("valid_from", doc["built_at"])),
            previous_key_id=None if previous is None else bytes.fromhex(previous),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:  # AttributeError: a non-table where a table belongs
        raise StoreError(f"{path} is malformed ({type(exc).__name__}: {exc})") from None


class OpenIndexes:
    """The verified indexes of one manifest, held open for serving.

    The descriptors stay valid even if a later rebuild removes the files, so a running
    daemon keeps serving exactly the digests it announced until it is restarted.
    """

    def __init__(self, manifest: IndexManifest, fds: dict[IndexSlot, int]) -> None:
        self.manifest = manifest
        self._fds = fds

    def read(self, slot: IndexSlot, offset: int, length: int) -> bytes:
        return os.pread(self._fds[slot], length, offset)

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds = {}


def open_indexes(index_dir: Path) -> OpenIndexes:
    """Open the manifest's index files after checking size, digest and header of each."""
    manifest = read_manifest(index_dir)
    fds: dict[IndexSlot, int] = {}
    try:
        for slot, f in manifest.files.items():
            fd = os.open(f.path, os.O_RDONLY)
            fds[slot] = fd
            _verify(fd, f, manifest)
    except OSError as exc:  # missing, unreadable, or a name no file can have (too long)
        for fd in fds.values():
            os.close(fd)
        raise StoreError(f"index file {exc.filename} named by the manifest cannot be opened: {exc.strerror}") from None
    except StoreError:
        for fd in fds.values():
            os.close(fd)
        raise
    return OpenIndexes(manifest, fds)


def _verify(fd: int, f: IndexFile, manifest: IndexManifest) -> None:
    if os.fstat(fd).st_size != f.size_bytes:
        raise StoreError(f"{f.path} is {os.fstat(fd).st_size} bytes, the manifest says {f.size_bytes}")
    digest = hashlib.sha256()
    offset = 0
    while chunk := os.pread(fd, _HASH_CHUNK, offset):
        digest.update(chunk)
        offset += len(chunk)
    if digest.digest() != f.digest:
        raise StoreError(f"{f.path} does not match its digest in the manifest")
    try:
        header = IndexHeader.decode(os.pread(fd, HEADER_BYTES, 0))
    except IndexFormatError as exc:
        raise StoreError(f"{f.path}: {exc}") from None
    if (header.kind, header.key_id, header.schema_fingerprint) != (f.kind, manifest.key_id, manifest.schema_fingerprint):
        raise StoreError(f"{f.path}: header does not match the manifest (kind, key id or schema)")


# --- the next epoch, built ahead ----------------------------------------------------------

PREBUILT_DIR = "next-epoch"  # <index_dir>/next-epoch: the next epoch's indexes, unserved until its switch


def prebuilt_dir(index_dir: Path) -> Path:
    return index_dir / PREBUILT_DIR


def commit_prebuilt(index_dir: Path, staged: OpenIndexes) -> OpenIndexes:
    """Make the next epoch's indexes, built ahead in ``prebuilt_dir``, the committed ones.

    The files move into ``index_dir`` (same file system, so the open descriptors stay
    valid and nothing is read again), then the manifest rename commits them as a rebuild
    does; the caller then finishes the key switch (``load_committed_key`` promotes
    ``<key_file>.next``). Returns the staged descriptors under the committed manifest.
    """
    source = prebuilt_dir(index_dir)
    files = {}
    for slot, f in staged.manifest.files.items():
        target = index_dir / f.path.name
        os.replace(f.path, target)
        files[slot] = IndexFile(f.organisation, f.kind, target, f.digest, f.size_bytes, f.entries)
    manifest = replace(staged.manifest, files=files)
    fsync_directory(index_dir)
    _write_durably(index_dir / MANIFEST_NAME, _manifest_json(manifest))
    fsync_directory(index_dir)
    _remove_unreferenced(index_dir, manifest)
    shutil.rmtree(source, ignore_errors=True)
    committed = OpenIndexes(manifest, staged._fds)
    staged._fds = {}
    return committed
