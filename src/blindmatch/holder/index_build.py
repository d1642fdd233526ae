"""``holder index``: turn the holder's records CSV into its encrypted indexes.

The CSV is streamed in chunks of rows through the schema's normalisers and the
:class:`IndexBuilder`, so memory stays at one chunk plus 16 bytes per entry and kind
whatever the file size. Rows that cannot be normalised are reported by row number,
field and reason — never by value — in the summary and in ``rejects.csv`` next to the
index, because the operator needs to fix them but the report may be shared.

One index is built per requesting organisation (``tls.allowed_organisations``) and mode,
each under its own POPRF info (``core.purpose``): an organisation's index is useless to
any other organisation and to the other mode.

With ``rotate_key`` the index is built under a fresh key held in ``<key_file>.next`` and
key and index are switched together (see ``holder_store``); without it the key must be
the one the committed index was built with, so a rebuild never silently changes keys.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from tqdm import tqdm

from blindmatch.core.index_builder import IndexBuilder
from blindmatch.core.keys import HolderKey
from blindmatch.core.rotation import format_time
from blindmatch.crypto.batch import BatchEngine
from blindmatch.holder.cluster_index import ClusterIndexBuilder
from blindmatch.holder.config import HolderNodeConfig
from blindmatch.holder.index_guard import IndexGuardRefusal, check_build
from blindmatch.holder.store import (
    MANIFEST_NAME,
    IndexManifest,
    IndexSlot,
    begin_rotation,
    key_for_rebuild,
    next_key_path,
    promote_next_key,
    read_manifest,
    write_indexes,
)
from blindmatch.holder.tokens import IssuerTokens
from blindmatch.normalize import NormalizationError, Schema, resolve_schema
from blindmatch.vocabulary import BlindmatchError

CHUNK_ROWS = 65_536
REJECTS_NAME = "rejects.csv"


class IndexBuildError(BlindmatchError):
    """The records file cannot be indexed as a whole (unreadable, missing columns)."""


@dataclass
class BuildReport:
    rows: int = 0
    entries: int = 0
    rejected: int = 0
    rejects_by_field: Counter[str] = field(default_factory=Counter)
    rejects_file: Path | None = None
    key_created: bool = False
    key_rotated: bool = False
    retired_key: Path | None = None
    manifest: IndexManifest | None = None

    def summary(self) -> str:
        lines = [f"{self.rows} rows read, {self.rows - self.rejected} indexed ({self.entries} entries), {self.rejected} rejected"]
        for name, count in sorted(self.rejects_by_field.items()):
            lines.append(f"  {name}: {count} rows rejected")
        if self.rejected:
            lines.append(f"row numbers and reasons: {self.rejects_file}")
        return "\n".join(lines)


def load_configured_schema(config: HolderNodeConfig) -> Schema:
    return resolve_schema(config.schema)


def _builder(
    key: HolderKey, fingerprint: bytes, engine: BatchEngine, cluster: str | None, organisation: str
) -> IndexBuilder | ClusterIndexBuilder:
    if cluster is None:
        return IndexBuilder(key, fingerprint, engine, organisation)
    try:
        return ClusterIndexBuilder(key, fingerprint, cluster, organisation)
    except ImportError:
        raise IndexBuildError("--cluster needs the 'cluster' extra: pip install 'blindmatch[cluster]'") from None


class PerOrganisationBuilder:
    """Feeds every chunk to one builder per requesting organisation; ``finish`` keys the indexes by slot."""

    def __init__(self, builders: list[IndexBuilder | ClusterIndexBuilder]) -> None:
        if not builders:
            raise IndexBuildError("holder.tls.allowed_organisations is empty: no organisation to build an index for")
        self._builders = builders

    @property
    def entries(self) -> int:
        return self._builders[0].entries

    def add(self, keys: list[bytes]) -> None:
        for builder in self._builders:
            builder.add(keys)

    def finish(self) -> dict[IndexSlot, bytes]:
        return {(b.organisation, kind): data for b in self._builders for kind, data in b.finish().items()}

    def close(self) -> None:
        for builder in self._builders:
            if isinstance(builder, ClusterIndexBuilder):
                builder.close()


def build_index(
    records_csv: Path,
    config: HolderNodeConfig,
    progress: bool = True,
    engine: BatchEngine | None = None,
    chunk_rows: int = CHUNK_ROWS,
    rotate_key: bool = False,
    cluster: str | None = None,
    allow_shrink: bool = False,
    tokens: IssuerTokens | None = None,
    now: datetime | None = None,
    stage_in: Path | None = None,
) -> BuildReport:
    """Build both index kinds from ``records_csv`` and commit them atomically to ``config.index_dir``.

    ``rotate_key`` builds under a new OPRF key and replaces the old key in the same commit.
    ``cluster`` (a Dask scheduler address) evaluates the chunks on that cluster instead of
    this machine's cores; the normalisation, encoding and commit stay here.
    A build the guard refuses (``holder.index_guard``) raises ``IndexBuildError`` and
    keeps the committed index, changing nothing (the message gives the rejects per field).
    ``tokens`` builds the index over the issuer's eligibility tokens of the match keys
    instead of the keys themselves (see :mod:`blindmatch.holder.tokens`).
    ``now`` is when a rotated key starts serving (its validity start; the clock if None).
    ``stage_in`` (with ``rotate_key``) writes the indexes and their manifest to that directory
    instead and leaves the new key in ``<key_file>.next``: the next epoch built ahead, which
    ``store.commit_prebuilt`` commits at the epoch's end.
    """
    target = stage_in or config.index_dir
    schema = load_configured_schema(config)
    key, created = _build_key(config, rotate_key, stage_in)
    report = BuildReport(key_created=created, key_rotated=rotate_key)
    own_engine = engine is None
    engine = engine or BatchEngine()
    target.mkdir(parents=True, exist_ok=True)
    rejects_path = target / REJECTS_NAME
    rejects_tmp = rejects_path.with_name(f".{REJECTS_NAME}.tmp-{os.getpid()}")
    # A failed build leaves nothing behind; the new key is safe to drop as no index uses it yet.
    leftovers = [rejects_tmp, next_key_path(config.key_file)] if rotate_key else [rejects_tmp]
    cursor = _Cursor()
    try:
        builder = PerOrganisationBuilder(
            [_builder(key, schema.fingerprint, engine, cluster, org) for org in config.tls.allowed_organisations])
        with (
            _open_records(records_csv) as handle,
            rejects_tmp.open("w", newline="") as rejects_handle,
            tqdm(desc="indexing", unit=" rows", disable=not progress, total=None) as bar,
        ):
            _feed_rows(records_csv, handle, rejects_handle, bar, schema, builder, report, chunk_rows, cursor, tokens)
        report.entries = builder.entries
        indexes = builder.finish()
        builder.close()
    except (UnicodeDecodeError, csv.Error) as exc:
        for path in leftovers:
            path.unlink(missing_ok=True)
        # Name the place, not the bytes: the message must not quote record data.
        if isinstance(exc, csv.Error) and str(exc).startswith("field larger than field limit"):
            raise IndexBuildError(
                f"{records_csv}: row {cursor.row}: a field exceeds the CSV field size limit "
                f"({csv.field_size_limit()} characters)"
            ) from None
        raise IndexBuildError(f"{records_csv}: not a UTF-8 CSV file ({type(exc).__name__} after row {report.rows + 1})") from None
    except BaseException:
        for path in leftovers:
            path.unlink(missing_ok=True)
        raise
    finally:
        if own_engine:
            engine.close()
    _guard(records_csv, config, report, leftovers, allow_shrink)
    os.replace(rejects_tmp, rejects_path)
    report.rejects_file = rejects_path
    report.manifest = write_indexes(
        target, indexes, key_id=key.key_id, schema_fingerprint=schema.fingerprint,
        schema_name=schema.name, schema_version=schema.version, records=report.rows - report.rejected,
        **_key_epoch(config.index_dir, rotate_key, now or datetime.now(UTC)),
    )
    if rotate_key and stage_in is None:  # the manifest now names the new key: only now may it replace the old one
        report.retired_key = promote_next_key(config.key_file)
    return report


def _build_key(config: HolderNodeConfig, rotate_key: bool, stage_in: Path | None) -> tuple[HolderKey, bool]:
    """The key a build uses (a fresh one in ``<key_file>.next`` for a rotation); True if it was created."""
    if stage_in is not None and not rotate_key:
        raise ValueError("only a key rotation is built ahead (stage_in needs rotate_key)")
    if rotate_key:
        return begin_rotation(config.key_file, config.index_dir), False
    return key_for_rebuild(config.key_file, config.index_dir)


def _guard(records_csv: Path, config: HolderNodeConfig, report: BuildReport, leftovers: list[Path],
           allow_shrink: bool) -> None:
    """Refuse a build the index guard rejects; like every refused build it changes nothing
    (its rejects and the unused new key of a rotation are dropped), so the reasons for the
    rejected rows are given in the message, per field."""
    try:
        check_build(config.index_guard, rows=report.rows, rejected=report.rejected,
                    previous=_committed_records(config.index_dir), allow_shrink=allow_shrink)
    except IndexGuardRefusal as exc:
        for path in leftovers:
            path.unlink(missing_ok=True)
        fields = ", ".join(f"{name} {count}" for name, count in sorted(report.rejects_by_field.items()))
        raise IndexBuildError(f"{records_csv}: {exc}" + (f"; rows rejected by field: {fields}" if fields else "")) from None


def _key_epoch(index_dir: Path, rotate_key: bool, now: datetime) -> dict[str, Any]:
    """The new manifest's epoch fields: the committed key's for a plain rebuild, the next epoch for a rotation."""
    if not (index_dir / MANIFEST_NAME).exists():
        return {"epoch": 1, "valid_from": format_time(now), "previous_key_id": None}
    old = read_manifest(index_dir)
    if not rotate_key:
        return {"epoch": old.epoch, "valid_from": old.valid_from, "previous_key_id": old.previous_key_id}
    return {"epoch": old.epoch + 1, "valid_from": format_time(now), "previous_key_id": old.key_id}


def _committed_records(index_dir: Path) -> int | None:
    """Records in the committed index, or None when there is none yet."""
    if not (index_dir / MANIFEST_NAME).exists():
        return None
    return read_manifest(index_dir).records


@dataclass
class _Cursor:
    """The CSV row being read, numbered as in rejects.csv (the header is row 1): errors name it."""

    row: int = 1


def _feed_rows(
    records_csv: Path,
    handle: TextIO,
    rejects_handle: TextIO,
    bar: tqdm,
    schema: Schema,
    builder: PerOrganisationBuilder,
    report: BuildReport,
    chunk_rows: int,
    cursor: _Cursor,
    tokens: IssuerTokens | None = None,
) -> None:
    """Normalise every row into the builder, chunk by chunk; rejected rows go to rejects.csv."""
    reader = csv.DictReader(handle)
    header = reader.fieldnames
    cursor.row = 2
    missing = [f for f in schema.tier_fields if f not in (header or [])]
    if missing:
        raise IndexBuildError(f"{records_csv}: missing column(s) {', '.join(missing)} (header: {header})")
    rejects = csv.writer(rejects_handle)
    rejects.writerow(["row", "field", "reason"])
    chunk: list[bytes] = []
    for row_number, row in enumerate(reader, start=2):
        report.rows += 1
        cursor.row = row_number + 1
        try:
            chunk.extend(k for _, k in schema.match_keys(row, side="holder", row=row_number))
        except NormalizationError as exc:
            report.rejected += 1
            report.rejects_by_field[exc.field] += 1
            rejects.writerow([row_number, exc.field, exc.reason])
        if report.rows % chunk_rows == 0:
            builder.add(chunk if tokens is None else tokens.convert(chunk))
            bar.update(chunk_rows)
            chunk = []
    builder.add(chunk if tokens is None else tokens.convert(chunk))
    bar.update(report.rows % chunk_rows)


def _open_records(path: Path) -> TextIO:
    try:
        return path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise IndexBuildError(f"cannot read {path}: {exc.strerror}") from None
