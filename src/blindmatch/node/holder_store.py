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
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from blindmatch.core.index import HEADER_BYTES, IndexFormatError, IndexHeader, index_digest
from blindmatch.core.keys import HolderKey
from blindmatch.core.outputs import Mode
from blindmatch.keyfile import KeyFileError, read_oprf_key, write_oprf_key

MANIFEST_NAME = "index.json"
MANIFEST_FORMAT = 1
_TMP_MARK = ".tmp-"
_HASH_CHUNK = 1 << 20


class StoreError(Exception):
    """A key or index file is missing, unsafe or inconsistent. Messages never contain key material."""


# --- OPRF key ---------------------------------------------------------------------------


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_key_file(path: Path, key: HolderKey) -> None:
    """Create ``path`` (mode 0600, never overwriting) holding ``key``."""
    try:
        write_oprf_key(path, key.sk)
    except KeyFileError as exc:
        raise StoreError(str(exc)) from None
    _fsync_dir(path.parent)


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


# --- encrypted indexes ------------------------------------------------------------------


@dataclass(frozen=True)
class IndexFile:
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
    files: dict[Mode, IndexFile]


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
    indexes: dict[Mode, bytes],
    *,
    key_id: bytes,
    schema_fingerprint: bytes,
    schema_name: str,
    schema_version: int,
    records: int,
) -> IndexManifest:
    """Store freshly built indexes and switch the manifest to them atomically."""
    index_dir.mkdir(parents=True, exist_ok=True)
    files: dict[Mode, IndexFile] = {}
    for kind, data in indexes.items():
        digest = index_digest(data)
        header = IndexHeader.decode(data)
        path = index_dir / f"{kind.value}-{digest.hex()[:16]}.idx"
        _write_durably(path, data)
        files[kind] = IndexFile(kind, path, digest, len(data), header.entries)
    manifest = IndexManifest(
        key_id=key_id,
        schema_fingerprint=schema_fingerprint,
        schema_name=schema_name,
        schema_version=schema_version,
        records=records,
        built_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        files=files,
    )
    _fsync_dir(index_dir)  # the new index files' names are durable before the manifest names them
    _write_durably(index_dir / MANIFEST_NAME, _manifest_json(manifest))
    _fsync_dir(index_dir)
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
        "indexes": {
            kind.value: {"file": f.path.name, "digest": f.digest.hex(), "size_bytes": f.size_bytes, "entries": f.entries}
            for kind, f in manifest.files.items()
        },
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
            Mode(kind): IndexFile(Mode(kind), index_dir / entry["file"], bytes.fromhex(entry["digest"]),
                                  int(entry["size_bytes"]), int(entry["entries"]))
            for kind, entry in doc["indexes"].items()
        }
        schema = doc["schema"]
        return IndexManifest(
            key_id=bytes.fromhex(doc["key_id"]),
            schema_fingerprint=bytes.fromhex(schema["fingerprint"]),
            schema_name=str(schema["name"]),
            schema_version=int(schema["version"]),
            records=int(doc["records"]),
            built_at=str(doc["built_at"]),
            files=files,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise StoreError(f"{path} is malformed ({type(exc).__name__}: {exc})") from None


class OpenIndexes:
    """The verified indexes of one manifest, held open for serving.

    The descriptors stay valid even if a later rebuild removes the files, so a running
    daemon keeps serving exactly the digests it announced until it is restarted.
    """

    def __init__(self, manifest: IndexManifest, fds: dict[Mode, int]) -> None:
        self.manifest = manifest
        self._fds = fds

    def read(self, kind: Mode, offset: int, length: int) -> bytes:
        return os.pread(self._fds[kind], length, offset)

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds = {}


def open_indexes(index_dir: Path) -> OpenIndexes:
    """Open the manifest's index files after checking size, digest and header of each."""
    manifest = read_manifest(index_dir)
    fds: dict[Mode, int] = {}
    try:
        for kind, f in manifest.files.items():
            fd = os.open(f.path, os.O_RDONLY)
            fds[kind] = fd
            _verify(fd, f, manifest)
    except FileNotFoundError as exc:
        for fd in fds.values():
            os.close(fd)
        raise StoreError(f"index file {exc.filename} named by the manifest is missing") from None
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
