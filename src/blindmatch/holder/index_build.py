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

from blindmatch.audit import AuditError, AuditLog
from blindmatch.core.index_builder import IndexBuilder
from blindmatch.core.keys import HolderKey
from blindmatch.core.rotation import format_time
from blindmatch.crypto.batch import BatchEngine
from blindmatch.csvrows import CsvRows, as_record, more_values_than_columns, read_rows
from blindmatch.holder.cluster_index import ClusterIndexBuilder
from blindmatch.holder.config import HolderNodeConfig
from blindmatch.holder.index_guard import IndexGuardRefusal, check_build
from blindmatch.holder.rotation import make_statement, record_build
from blindmatch.holder.store import (
    MANIFEST_NAME,
    IndexManifest,
    IndexSlot,
    StoreError,
    begin_rotation,
    commit_indexes,
    discard_staged,
    key_for_build,
    next_key_path,
    promote_next_key,
    read_manifest,
    stage_indexes,
    write_key_file,
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
    audit: bool = False,
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
    instead of the keys themselves (see :mod:`blindmatch.holder.tokens`); the manifest
    records their issuer epoch, and the token stage's spool is dropped once committed.
    ``audit`` writes the build's entries (``key_rotated`` with the digest of its rotation
    statement, ``index_built``) to the holder's audit log after the new files are staged and
    before the commit (issue 17: audit before effect): a log that cannot take them fails the
    build and the live index stays. The caller stores the statement after the commit
    (``holder.rotation.publish_statement``; a start after a crash makes it again).
    Any failure leaves the holder's files as they were: no new key, index file or directory.
    ``now`` is when a rotated key starts serving (its validity start; the clock if None).
    ``stage_in`` (without ``audit``) writes the indexes and their manifest to that directory
    instead, and with ``rotate_key`` leaves the new key in ``<key_file>.next``: the next epoch
    (the key's or the issuer's) built ahead, which the rotator audits and
    ``store.commit_prebuilt`` commits at the epoch's end.
    """
    target = stage_in or config.index_dir
    schema = load_configured_schema(config)
    key, created = _build_key(config, rotate_key, audit, stage_in)
    report = BuildReport(key_created=created, key_rotated=rotate_key)
    undo = _Undo(target, _missing_directories(target))
    target.mkdir(parents=True, exist_ok=True)
    rejects_tmp = target / f".{REJECTS_NAME}.tmp-{os.getpid()}"
    # The new key of a rotation or a first build is safe to drop on failure: no committed index uses it.
    undo.files += [rejects_tmp, next_key_path(config.key_file)] if rotate_key else [rejects_tmp]
    try:
        indexes = _build(records_csv, config, schema, key, report, rejects_tmp,
                         _BuildOptions(progress, engine, chunk_rows, cluster, tokens))
        _guard(records_csv, config, report, allow_shrink)
        staged = undo.staged = stage_indexes(
            target, indexes, key_id=key.key_id, schema_fingerprint=schema.fingerprint,
            schema_name=schema.name, schema_version=schema.version, records=report.rows - report.rejected,
            issuer_epoch=tokens.stamp if tokens is not None else None,
            **_key_epoch(config.index_dir, rotate_key, now or datetime.now(UTC)))
        if created:
            write_key_file(config.key_file, key)
            undo.files.append(config.key_file)
        if audit:
            _audit_build(config, staged, key, rotate_key)
        os.replace(rejects_tmp, target / REJECTS_NAME)  # before the commit: it drops temporary files
        commit_indexes(target, staged)
        if tokens is not None:
            tokens.committed()  # the token stage's spool (the holder's own tokens) goes once committed
    except BaseException:
        undo.unless_committed()
        raise
    report.manifest = staged
    report.rejects_file = target / REJECTS_NAME
    if rotate_key and stage_in is None:  # the manifest now names the new key: only now may it replace the old one
        report.retired_key = promote_next_key(config.key_file)
    return report


def _build_key(config: HolderNodeConfig, rotate_key: bool, audit: bool,
               stage_in: Path | None) -> tuple[HolderKey, bool]:
    """The key a build uses (a fresh one in ``<key_file>.next`` for a rotation); True if it is new."""
    if stage_in is not None and audit:
        raise ValueError("a build ahead is audited at its switch, not when it is staged (stage_in needs no audit)")
    if rotate_key:
        return begin_rotation(config.key_file, config.index_dir), False
    return key_for_build(config.key_file, config.index_dir)


@dataclass
class _Undo:
    """What a build created, removed when it fails before its commit (issue 17: a failed
    build, interrupted ones included, leaves the holder's files as they were)."""

    index_dir: Path
    directories: list[Path]  # created by the build, deepest first
    files: list[Path] = field(default_factory=list)
    staged: IndexManifest | None = None

    def unless_committed(self) -> None:
        """Undo, unless the manifest rename happened (an error after it, e.g. in the directory
        fsync, must not take away the key or the files the live manifest names)."""
        if self.staged is not None and _is_live(self.index_dir, self.staged):
            return
        if self.staged is not None:
            discard_staged(self.index_dir, self.staged)
        for path in self.files:
            path.unlink(missing_ok=True)
        for directory in self.directories:
            try:
                directory.rmdir()
            except OSError:
                return


def _is_live(index_dir: Path, staged: IndexManifest) -> bool:
    """Whether the committed manifest is ``staged`` (the manifest rename happened)."""
    try:
        committed = read_manifest(index_dir) if (index_dir / MANIFEST_NAME).exists() else None
    except StoreError:
        return False
    return committed == staged


@dataclass(frozen=True)
class _BuildOptions:
    progress: bool
    engine: BatchEngine | None
    chunk_rows: int
    cluster: str | None
    tokens: IssuerTokens | None


def _build(records_csv: Path, config: HolderNodeConfig, schema: Schema, key: HolderKey, report: BuildReport,
           rejects_tmp: Path, options: _BuildOptions) -> dict[IndexSlot, bytes]:
    """Read every row into one builder per organisation; the encoded indexes, not yet stored."""
    engine = options.engine or BatchEngine()
    try:
        builder = PerOrganisationBuilder(
            [_builder(key, schema.fingerprint, engine, options.cluster, org) for org in config.tls.allowed_organisations])
        try:  # a build that fails (an issuer gone, a bad row) still lets go of its cluster client
            with (
                read_rows(records_csv, IndexBuildError) as rows,
                rejects_tmp.open("w", newline="") as rejects_handle,
                tqdm(desc="indexing", unit=" rows", disable=not options.progress, total=None) as bar,
            ):
                _feed_rows(rows, rejects_handle, bar, schema, builder, report, options.chunk_rows, options.tokens)
            report.entries = builder.entries
            return builder.finish()
        finally:
            builder.close()
    finally:
        if options.engine is None:
            engine.close()


def _audit_build(config: HolderNodeConfig, manifest: IndexManifest, key: HolderKey, rotated: bool) -> None:
    """Write the build's entries durably, before its commit; failing to is the build's failure."""
    try:
        with AuditLog.open(config.audit_dir, config.audit_origin) as log:
            statement = make_statement(config.index_dir, manifest, key.public_key, config.organisation, log) \
                if rotated else None
            record_build(log, manifest, rotated, statement)
    except (AuditError, OSError) as exc:
        raise IndexBuildError(f"cannot write the build's entries to the audit log in {config.audit_dir} ({exc}); "
                              "the live index was not replaced") from None


def slot_order(item: tuple[IndexSlot, object]) -> tuple[str, str]:
    """Sort key of a manifest's ``(organisation, kind)`` slots: by organisation, then mode."""
    (organisation, kind), _file = item
    return organisation, kind.value


def _missing_directories(directory: Path) -> list[Path]:
    """``directory`` and its ancestors that do not exist yet, deepest first."""
    missing = []
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    return missing


def _guard(records_csv: Path, config: HolderNodeConfig, report: BuildReport, allow_shrink: bool) -> None:
    """Refuse a build the index guard rejects; like every refused build it changes nothing
    (its rejects and the unused new key are dropped), so the reasons for the rejected rows
    are given in the message, per field."""
    try:
        check_build(config.index_guard, rows=report.rows, rejected=report.rejected,
                    previous=_committed_records(config.index_dir), allow_shrink=allow_shrink)
    except IndexGuardRefusal as exc:
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


COLUMNS_FIELD = "columns"  # the rejects.csv field of a row with more values than the header has columns


def _feed_rows(
    rows: CsvRows,
    rejects_handle: TextIO,
    bar: tqdm,
    schema: Schema,
    builder: PerOrganisationBuilder,
    report: BuildReport,
    chunk_rows: int,
    tokens: IssuerTokens | None = None,
) -> None:
    """Normalise every row into the builder, chunk by chunk; rejected rows go to rejects.csv,
    numbered as every command numbers rows (``blindmatch.csvrows``)."""
    missing = [f for f in schema.tier_fields if f not in rows.header]
    if missing:
        raise IndexBuildError(f"{rows.path}: missing column(s) {', '.join(missing)} (header: {rows.header})")
    rejects = csv.writer(rejects_handle)
    rejects.writerow(["row", "field", "reason"])
    chunk: list[bytes] = []
    for number, values in rows:
        report.rows += 1
        try:
            if more_values_than_columns(rows.header, values):
                raise NormalizationError(COLUMNS_FIELD, "more values than the header has columns", number)
            chunk.extend(k for _, k in schema.match_keys(as_record(rows.header, values), side="holder", row=number))
        except NormalizationError as exc:
            report.rejected += 1
            report.rejects_by_field[exc.field] += 1
            rejects.writerow([number, exc.field, exc.reason])
        if report.rows % chunk_rows == 0:
            builder.add(chunk if tokens is None else tokens.convert(chunk))
            bar.update(chunk_rows)
            chunk = []
    builder.add(chunk if tokens is None else tokens.convert(chunk))
    bar.update(report.rows % chunk_rows)
