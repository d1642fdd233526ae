"""The requester's job store: SQLite in WAL mode, shared by the daemon and the CLI.

A job must survive a crash of either peer without redoing finished work, so every
evaluated batch is committed (its element numbers, its hits, and the per-record
outcome) in one transaction before the next is asked for. Element numbers index the
job's *element list*: every eligible record's match keys, row by row, strongest tier
first; the list is recomputed from QUERIES.csv on resume (whose SHA-256 is pinned), so
match keys themselves are never stored. Eligibility depends on the date, so the date a
job was prepared on is stored with it and the list is always recomputed as of that date.
"""

from __future__ import annotations

import contextlib
import secrets
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np

from blindmatch.requester.job_owner import owner_alive
from blindmatch.vocabulary import BlindmatchError, JobState

# 2: jobs.prepared_on. A store of another version is refused (not migrated): finish or
# delete its jobs with the version that made it.
SCHEMA_VERSION = 2
INTERRUPTED = "interrupted"  # the state of a session whose runner died in it
_SCHEMA = (
    """CREATE TABLE jobs (
        id            TEXT PRIMARY KEY,
        queries_path  TEXT NOT NULL,
        out_path      TEXT NOT NULL,
        mode          TEXT NOT NULL,
        input_sha256  TEXT NOT NULL,
        state         TEXT NOT NULL,
        owner         TEXT,
        created_at    TEXT NOT NULL,
        updated_at    TEXT NOT NULL,
        prepared      INTEGER NOT NULL DEFAULT 0,
        prepared_on   TEXT,
        records       INTEGER NOT NULL DEFAULT 0,
        ineligible    INTEGER NOT NULL DEFAULT 0,
        invalid       INTEGER NOT NULL DEFAULT 0,
        elements_total INTEGER NOT NULL DEFAULT 0,
        elements_done INTEGER NOT NULL DEFAULT 0,
        matches       INTEGER NOT NULL DEFAULT 0,
        error         TEXT NOT NULL DEFAULT '',
        reason        TEXT NOT NULL DEFAULT '',
        status_code   TEXT NOT NULL DEFAULT '')""",
    "CREATE INDEX jobs_by_input ON jobs (input_sha256, mode, out_path)",
    # One row per input row; tier is the rank (0 = strongest) of the best matched tier.
    """CREATE TABLE records (
        job_id     TEXT NOT NULL,
        row        INTEGER NOT NULL,
        status     TEXT NOT NULL,
        keys_total INTEGER NOT NULL,
        keys_done  INTEGER NOT NULL DEFAULT 0,
        matched    INTEGER NOT NULL DEFAULT 0,
        tier       INTEGER,
        PRIMARY KEY (job_id, row)) WITHOUT ROWID""",
    """CREATE TABLE sessions (
        session_id      TEXT PRIMARY KEY,
        job_id          TEXT NOT NULL,
        elements        INTEGER NOT NULL,
        state           TEXT NOT NULL,
        match_count     INTEGER NOT NULL DEFAULT 0,
        transcript_hash TEXT NOT NULL DEFAULT '',
        opened_at       TEXT NOT NULL,
        closed_at       TEXT)""",
    # Finished work: element numbers (uint32 little-endian) and, in membership mode, hit bits.
    """CREATE TABLE batches (
        job_id     TEXT NOT NULL,
        session_id TEXT NOT NULL,
        seq        INTEGER NOT NULL,
        elements   BLOB NOT NULL,
        hits       BLOB,
        PRIMARY KEY (session_id, seq))""",
    "CREATE INDEX batches_by_job ON batches (job_id)",
    """CREATE TABLE index_cache (
        kind       TEXT PRIMARY KEY,
        digest     TEXT NOT NULL,
        path       TEXT NOT NULL,
        size_bytes INTEGER NOT NULL,
        entries    INTEGER NOT NULL,
        fetched_at TEXT NOT NULL)""",
    f"PRAGMA user_version = {SCHEMA_VERSION}",
)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Preparation:
    """What preparing a job found, fixed from then on (its element list is recomputed as of ``on``)."""

    on: date | None  # None until the job is first prepared; the counts are 0 until then
    records: int
    ineligible: int
    invalid: int
    elements_total: int


@dataclass(frozen=True)
class Job:
    id: str
    queries_path: Path
    out_path: Path
    mode: str
    input_sha256: str
    state: str
    owner: str | None
    preparation: Preparation
    elements_done: int
    matches: int
    error: str
    reason: str
    status_code: str

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Job:
        return cls(
            id=row["id"],
            queries_path=Path(row["queries_path"]),
            out_path=Path(row["out_path"]),
            mode=row["mode"],
            input_sha256=row["input_sha256"],
            state=row["state"],
            owner=row["owner"],
            preparation=Preparation(
                on=date.fromisoformat(row["prepared_on"]) if row["prepared"] else None,
                records=row["records"], ineligible=row["ineligible"], invalid=row["invalid"],
                elements_total=row["elements_total"],
            ),
            elements_done=row["elements_done"],
            matches=row["matches"],
            error=row["error"],
            reason=row["reason"],
            status_code=row["status_code"],
        )


@dataclass(frozen=True)
class CachedIndex:
    kind: str
    digest: bytes
    path: Path
    size_bytes: int
    entries: int


@dataclass(frozen=True)
class RecordOutcome:
    row: int
    status: str
    matched: bool
    tier: int | None


def _count_rows(element_rows: np.ndarray) -> dict[int, int]:
    """How many of the given elements belong to each input row."""
    rows, counts = np.unique(element_rows, return_counts=True)
    return dict(zip(rows.tolist(), counts.tolist(), strict=True))


class JobStoreError(BlindmatchError):
    """The job store cannot be opened or has another schema; the message names the file."""


class JobStore:
    """Thread-safe access to the store; one connection per thread, WAL for concurrent readers."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            with self._tx() as db:
                if db.execute("PRAGMA user_version").fetchone()[0] == 0:
                    for statement in _SCHEMA:
                        db.execute(statement)
            version = self._db().execute("PRAGMA user_version").fetchone()[0]
        except (sqlite3.Error, OSError, JobStoreError) as exc:  # corrupt, not a database, unwritable, disk full
            cause = exc.__context__ if isinstance(exc, JobStoreError) and exc.__context__ is not None else exc
            raise JobStoreError(f"cannot open the job store {self.path}: {cause}") from None
        if version != SCHEMA_VERSION:
            raise JobStoreError(
                f"{self.path}: job store schema {version}, this version reads {SCHEMA_VERSION}; finish its jobs with "
                "the version that made it, then delete the file"
            )

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=True)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA busy_timeout=30000")
            self._local.db = db
        return db

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (for the approvals tables kept in the same file)."""
        return self._db()

    def transaction(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction on this thread's connection."""
        return self._tx()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction. A store that cannot take it (disk full, I/O
        error, damaged file) is a ``JobStoreError`` naming the file, not a traceback (issue 17)."""
        db = self._db()
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:  # a failed COMMIT may leave it open; SQLITE_FULL may have ended it
                    db.execute("ROLLBACK")
                raise
        except sqlite3.IntegrityError:
            raise  # a constraint the code relies on, not a storage fault
        except sqlite3.DatabaseError as exc:
            raise JobStoreError(f"the job store {self.path} cannot be written: {exc}") from None

    # -- jobs ---------------------------------------------------------------------------

    def create_or_resume(self, queries_path: Path, out_path: Path, mode: str, input_sha256: str) -> tuple[Job, bool]:
        """The unfinished job for this input, mode and output, or a new queued one."""
        with self._tx() as db:
            row = db.execute(
                "SELECT * FROM jobs WHERE input_sha256 = ? AND mode = ? AND out_path = ? AND state != 'succeeded' "
                "ORDER BY created_at DESC LIMIT 1",
                (input_sha256, mode, str(out_path)),
            ).fetchone()
            if row is not None:
                db.execute(
                    "UPDATE jobs SET queries_path = ?, updated_at = ?, "
                    "state = CASE WHEN state = 'running' THEN state ELSE 'queued' END WHERE id = ?",
                    (str(queries_path), _now(), row["id"]),
                )
                return self._get(db, row["id"]), True
            job_id = secrets.token_hex(8)
            now = _now()
            db.execute(
                "INSERT INTO jobs (id, queries_path, out_path, mode, input_sha256, state, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, 'queued', ?, ?)",
                (job_id, str(queries_path), str(out_path), mode, input_sha256, now, now),
            )
            return self._get(db, job_id), False

    def _get(self, db: sqlite3.Connection, job_id: str) -> Job:
        row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise KeyError(job_id)
        return Job.from_row(row)

    def get(self, job_id: str) -> Job:
        return self._get(self._db(), job_id)

    def resumable(self) -> list[Job]:
        """Jobs a (re)started daemon should run: queued, or running under a dead owner."""
        rows = self._db().execute("SELECT * FROM jobs WHERE state IN ('queued', 'running') ORDER BY created_at").fetchall()
        return [Job.from_row(r) for r in rows if r["state"] == JobState.QUEUED or not owner_alive(r["owner"])]

    def claim(self, job_id: str, owner: str) -> bool:
        """Mark the job running under ``owner`` unless a live runner already has it. A session still
        ``open`` is then a dead runner's (kill -9): it is marked ``interrupted``, not left open (issue 17)."""
        with self._tx() as db:
            job = self._get(db, job_id)
            if job.state == JobState.SUCCEEDED or (job.state == JobState.RUNNING and job.owner != owner and owner_alive(job.owner)):
                return False
            db.execute(
                "UPDATE jobs SET state = 'running', owner = ?, error = '', reason = '', status_code = '', updated_at = ? "
                "WHERE id = ?",
                (owner, _now(), job_id),
            )
            db.execute("UPDATE sessions SET state = ?, closed_at = ? WHERE job_id = ? AND state = 'open'",
                       (INTERRUPTED, _now(), job_id))
            return True

    def release(self, job_id: str, state: str) -> None:
        """Give the job back (daemon shutting down): ``queued`` so the next start resumes it."""
        with self._tx() as db:
            db.execute("UPDATE jobs SET state = ?, owner = NULL, updated_at = ? WHERE id = ?", (state, _now(), job_id))

    def finish(self, job_id: str, state: str, error: str = "", reason: str = "", status_code: str = "") -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET state = ?, owner = NULL, error = ?, reason = ?, status_code = ?, updated_at = ? WHERE id = ?",
                (state, error, reason, status_code, _now(), job_id),
            )

    def record_prepared(
        self, job_id: str, statuses: Iterable[tuple[int, str, int]], elements_total: int, prepared_on: date
    ) -> None:
        """Store every input row's eligibility once (``row, status, keys``) and the date it
        was judged on, which later runs must use; idempotent."""
        with self._tx() as db:
            db.execute("DELETE FROM records WHERE job_id = ?", (job_id,))
            db.executemany(
                "INSERT INTO records (job_id, row, status, keys_total) VALUES (?, ?, ?, ?)",
                ((job_id, row, status, keys) for row, status, keys in statuses),
            )
            counts = db.execute(
                "SELECT COUNT(*), SUM(status LIKE 'ineligible:%'), SUM(status LIKE 'invalid:%') FROM records WHERE job_id = ?",
                (job_id,),
            ).fetchone()
            db.execute(
                "UPDATE jobs SET prepared = 1, prepared_on = ?, records = ?, ineligible = ?, invalid = ?, "
                "elements_total = ?, updated_at = ? WHERE id = ?",
                (prepared_on.isoformat(), counts[0], counts[1] or 0, counts[2] or 0, elements_total, _now(), job_id),
            )

    # -- sessions and batches -----------------------------------------------------------

    def open_session(self, job_id: str, session_id: bytes, elements: int) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO sessions (session_id, job_id, elements, state, opened_at) VALUES (?, ?, ?, 'open', ?)",
                (session_id.hex(), job_id, elements, _now()),
            )

    def end_session(self, session_id: bytes, state: str, match_count: int = 0, transcript_hash: bytes = b"") -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE sessions SET state = ?, match_count = ?, transcript_hash = ?, closed_at = ? WHERE session_id = ?",
                (state, match_count, transcript_hash.hex(), _now(), session_id.hex()),
            )

    def save_batch(
        self,
        job_id: str,
        session_id: bytes,
        seq: int,
        elements: np.ndarray,
        element_rows: np.ndarray,
        element_tiers: np.ndarray,
        hits: np.ndarray | None,
    ) -> None:
        """Commit one evaluated batch: which elements are done, and (membership) their outcome.

        ``element_rows``/``element_tiers`` are the input row and tier rank of each element.
        """
        packed_hits = None if hits is None else np.packbits(hits.astype(bool)).tobytes()
        per_row = _count_rows(element_rows)
        best: dict[int, int] = {}
        if hits is not None:
            for row, tier in zip(element_rows[hits].tolist(), element_tiers[hits].tolist(), strict=True):
                best[row] = min(best.get(row, tier), tier)
        with self._tx() as db:
            db.execute(
                "INSERT INTO batches (job_id, session_id, seq, elements, hits) VALUES (?, ?, ?, ?, ?)",
                (job_id, session_id.hex(), seq, elements.astype("<u4").tobytes(), packed_hits),
            )
            db.executemany(
                "UPDATE records SET keys_done = keys_done + ? WHERE job_id = ? AND row = ?",
                ((count, job_id, row) for row, count in per_row.items()),
            )
            db.executemany(
                "UPDATE records SET matched = 1, tier = CASE WHEN tier IS NULL OR tier > ? THEN ? ELSE tier END "
                "WHERE job_id = ? AND row = ?",
                ((tier, tier, job_id, row) for row, tier in best.items()),
            )
            db.execute(
                "UPDATE jobs SET elements_done = elements_done + ?, "
                "matches = (SELECT COUNT(*) FROM records WHERE job_id = ? AND matched = 1), updated_at = ? WHERE id = ?",
                (int(elements.shape[0]), job_id, _now(), job_id),
            )

    def save_cardinality_session(
        self, job_id: str, session_id: bytes, elements: np.ndarray, element_rows: np.ndarray, match_count: int
    ) -> None:
        """Commit a closed cardinality session: its elements are done, its count is added.

        Cardinality results exist only per session (the holder shuffles), so the whole
        session is one unit of work here.
        """
        with self._tx() as db:
            db.execute(
                "INSERT INTO batches (job_id, session_id, seq, elements, hits) VALUES (?, ?, 0, ?, NULL)",
                (job_id, session_id.hex(), elements.astype("<u4").tobytes()),
            )
            db.executemany(
                "UPDATE records SET keys_done = keys_done + ? WHERE job_id = ? AND row = ?",
                ((count, job_id, row) for row, count in _count_rows(element_rows).items()),
            )
            db.execute(
                "UPDATE jobs SET matches = matches + ?, elements_done = elements_done + ?, updated_at = ? WHERE id = ?",
                (match_count, int(elements.shape[0]), _now(), job_id),
            )

    def batches(self, job_id: str) -> Iterator[tuple[str, np.ndarray, bytes | None]]:
        """Every committed batch: (session id, element numbers, packed hit bits or None)."""
        cursor = self._db().execute("SELECT session_id, elements, hits FROM batches WHERE job_id = ?", (job_id,))
        for session_id, numbers, hits in cursor:
            yield session_id, np.frombuffer(numbers, dtype="<u4"), hits

    def closed_sessions(self, job_id: str) -> list[tuple[str, int]]:
        """(session id, match count) of the job's closed sessions."""
        return [(r[0], r[1]) for r in self._db().execute(
            "SELECT session_id, match_count FROM sessions WHERE job_id = ? AND state = 'closed'", (job_id,))]

    def session_ids(self) -> set[str]:
        """Every session the store has recorded, of any job (hex)."""
        return {r[0] for r in self._db().execute("SELECT session_id FROM sessions")}

    def has_sessions(self, job_id: str) -> bool:
        return self._db().execute("SELECT 1 FROM sessions WHERE job_id = ? LIMIT 1", (job_id,)).fetchone() is not None

    def done_elements(self, job_id: str) -> np.ndarray:
        """Element numbers of every committed batch of the job (sorted, unique)."""
        rows = self._db().execute("SELECT elements FROM batches WHERE job_id = ?", (job_id,)).fetchall()
        if not rows:
            return np.zeros(0, dtype=np.uint32)
        return np.unique(np.concatenate([np.frombuffer(r[0], dtype="<u4") for r in rows]))

    def outcomes(self, job_id: str) -> Iterator[RecordOutcome]:
        """Every input row's outcome, in row order (streams; no full list in memory)."""
        cursor = self._db().execute(
            "SELECT row, status, matched, tier FROM records WHERE job_id = ? ORDER BY row", (job_id,)
        )
        for row in cursor:
            yield RecordOutcome(row["row"], row["status"], bool(row["matched"]), row["tier"])

    # -- index cache --------------------------------------------------------------------

    def cached_index(self, kind: str) -> CachedIndex | None:
        row = self._db().execute("SELECT * FROM index_cache WHERE kind = ?", (kind,)).fetchone()
        if row is None or not Path(row["path"]).is_file():
            return None
        return CachedIndex(row["kind"], bytes.fromhex(row["digest"]), Path(row["path"]), row["size_bytes"], row["entries"])

    def set_cached_index(self, kind: str, digest: bytes, path: Path, size_bytes: int, entries: int) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO index_cache (kind, digest, path, size_bytes, entries, fetched_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (kind, digest.hex(), str(path), size_bytes, entries, _now()),
            )
