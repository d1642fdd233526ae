"""QUERIES.csv in, RESULTS.csv out: reading, checking and preparing a job's records.

Errors name rows and fields, never values: records are personal data.
"""

from __future__ import annotations

import csv
import hashlib
import os
import tempfile
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np

from blindmatch.csvrows import as_record, more_values_than_columns, read_rows
from blindmatch.normalize import NormalizationError, Schema
from blindmatch.requester.jobs import Job, JobStore
from blindmatch.vocabulary import InputError, Mode

OUTPUT_COLUMNS = ("matched", "tier", "confirms", "status")


class JobInputError(InputError, ValueError):
    """QUERIES.csv cannot be used as given (missing column, clash, changed since submission)."""


def check_output_path(queries: Path, out: Path, mode: Mode) -> None:
    """Refuse an output that cannot be written before any budget is spent on the job.

    RESULTS.csv replacing QUERIES.csv would destroy the input (and the pinned SHA-256 that
    a resume needs); a missing or read-only directory would fail only after matching.
    Cardinality mode writes no file, so only the first rule applies to it.
    """
    queries, out = Path(queries).resolve(), Path(out).resolve()
    if out == queries or (out.exists() and os.path.samefile(out, queries)):
        raise JobInputError(f"{out}: the results file must not be the queries file")
    if mode is Mode.CARDINALITY:
        return
    if not out.parent.is_dir():
        raise JobInputError(f"{out.parent}: the results directory does not exist")
    try:
        # A real probe: os.access ignores read-only mounts and is always true for root.
        with tempfile.NamedTemporaryFile(dir=out.parent, prefix=f".{out.name}.", suffix=".probe"):
            pass
    except OSError as exc:
        raise JobInputError(f"{out.parent}: the results directory is not writable ({exc.strerror})") from None


def _today() -> date:
    """The date eligibility is judged on when a job is first prepared (UTC, like the holder)."""
    return datetime.now(UTC).date()


@dataclass
class Elements:
    """The job's element list: match keys with the input row and tier rank of each."""

    keys: list[bytes]
    rows: np.ndarray
    tiers: np.ndarray


def file_sha256(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            hasher.update(block)
    return hasher.hexdigest()


def iter_rows(path: Path) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """The header and ``(row number, values)`` of each non-blank data row, numbered as every
    command numbers rows (``blindmatch.csvrows``: row 1 = first record)."""
    rows = read_rows(path, JobInputError)

    def numbered() -> Iterator[tuple[int, list[str]]]:
        with rows:
            yield from rows

    return rows.header, numbered()


def check_header(header: list[str], schema: Schema) -> None:
    """Fail early, naming the column, rather than marking every row invalid."""
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise JobInputError(f"input column {name!r} appears more than once; column names must be unique")
        seen.add(name)
    for name in OUTPUT_COLUMNS:
        if name in header:
            raise JobInputError(f"input column {name!r} clashes with an output column of RESULTS.csv; rename it")
    needed = [*schema.tier_fields, *([schema.basis_field] if schema.basis_field else [])]
    for name in needed:
        if name not in header:
            raise JobInputError(f"input has no column {name!r} (the schema needs: {', '.join(needed)})")


# A row's elements as (tier rank, element) pairs, strongest first, or the status that excludes it.
RowElements = Callable[[int, dict[str, str]], "list[tuple[int, bytes]] | str"]


def collect_elements(
    path: Path, schema: Schema, mode: Mode, elements_of: RowElements
) -> tuple[Elements, list[tuple[int, str, int]]]:
    """Every row's elements, from match keys (:func:`prepare_elements`) or issuer tokens
    (``token_inputs``): ``elements_of(row number, record)`` gives them, or a status.

    A row with more values than the header is ``invalid: columns`` (its values cannot be
    assigned to fields). Cardinality mode sends each record's strongest tier only, so that
    the count is a count of records, not of keys, and sends each distinct element once: the
    session has one blind, so equal elements would give equal blinded elements and show the
    holder which inputs are equal. A record whose element an earlier record already has is
    ``ok`` with no element of its own (counted once).
    """
    header, rows = iter_rows(path)
    check_header(header, schema)
    keys: list[bytes] = []
    key_rows: list[int] = []
    key_tiers: list[int] = []
    statuses: list[tuple[int, str, int]] = []
    sent: set[bytes] = set()
    for number, values in rows:
        if more_values_than_columns(header, values):
            statuses.append((number, "invalid: columns", 0))
            continue
        ranked = elements_of(number, as_record(header, values))
        if isinstance(ranked, str):
            statuses.append((number, ranked, 0))
            continue
        if mode is Mode.CARDINALITY:
            ranked = [t for t in ranked[:1] if t[1] not in sent]
            sent.update(element for _, element in ranked)
        for rank, element in ranked:
            keys.append(element)
            key_rows.append(number)
            key_tiers.append(rank)
        statuses.append((number, "ok", len(ranked)))
    return Elements(keys, np.array(key_rows, dtype=np.int64), np.array(key_tiers, dtype=np.int16)), statuses


def prepare_elements(
    path: Path, schema: Schema, mode: Mode, today: date
) -> tuple[Elements, list[tuple[int, str, int]]]:
    """Eligibility and match keys of every row, judged as of ``today`` (see :func:`collect_elements`)."""

    def elements_of(number: int, record: dict[str, str]) -> list[tuple[int, bytes]] | str:
        reason = schema.check_basis(record, today)
        if reason is not None:
            return f"ineligible: {reason}"
        try:
            tiered = schema.match_keys(record, "requester", number)
        except NormalizationError as exc:
            return f"invalid: {exc.field}"
        return [(schema.tier_rank[tier_name], key) for tier_name, key in tiered]  # the schema's rank: tiers may be skipped

    return collect_elements(path, schema, mode, elements_of)


def write_results(store: JobStore, job: Job, tier_names: list[str], confirming_tiers: Collection[str] = ()) -> None:
    """RESULTS.csv: the input columns in input order plus matched, tier, confirms, status (atomically).

    ``confirms`` is ``true`` when the strongest matched tier is one the schema counts as a
    confirmation, ``false`` when it is a candidate for review, empty when nothing matched.
    """
    header, rows = iter_rows(job.queries_path)
    out = job.out_path
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow([*header, *OUTPUT_COLUMNS])
            for (number, values), outcome in zip(rows, store.outcomes(job.id), strict=True):
                if outcome.row != number:
                    raise JobInputError(f"job store and input disagree at row {number}")
                eligible = outcome.status == "ok"
                matched = ("true" if outcome.matched else "false") if eligible else ""
                tier = tier_names[outcome.tier] if outcome.matched and outcome.tier is not None else ""
                confirms = ("true" if tier in confirming_tiers else "false") if tier else ""
                values = values + [""] * (len(header) - len(values))
                writer.writerow([*values[: len(header)], matched, tier, confirms, outcome.status])
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a partial copy of personal data must not stay behind (issue 17)
        raise
