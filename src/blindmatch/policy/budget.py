"""Record budgets and seen nonces, in SQLite, decided atomically.

Legal ceilings must hold even when sessions race or the daemon dies, so every
decision is one ``BEGIN IMMEDIATE`` transaction (SQLite's single writer lock) that
checks the nonce, sums the windows and inserts the debit. A debit row *is* the
nonce record, so a nonce is recorded exactly when its budget is debited. WAL with
``synchronous=FULL`` makes each commit durable; an uncommitted transaction leaves
no trace after a crash. Windows are rolling (``now - 24 h``, ``now - 30 days``):
no double allowance around midnight. Debits are kept forever (audit trail), so
nonces are too.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from blindmatch.policy.errors import PolicyRefusal
from blindmatch.policy.officials import Limits
from blindmatch.vocabulary import Reason

DAY = timedelta(days=1)
THIRTY_DAYS = timedelta(days=30)
SCHEMA_VERSION = 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SCHEMA = (
    "CREATE TABLE debits ("
    " id           INTEGER PRIMARY KEY,"
    " session_id   BLOB    NOT NULL UNIQUE,"
    " nonce        BLOB    NOT NULL UNIQUE,"
    " organisation TEXT    NOT NULL,"
    " official     TEXT    NOT NULL,"
    " records      INTEGER NOT NULL CHECK (records >= 0),"
    " at_us        INTEGER NOT NULL)",
    "CREATE INDEX debits_by_organisation ON debits (organisation, at_us)",
    f"PRAGMA user_version = {SCHEMA_VERSION}",
)


def _micros(now: datetime) -> int:
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    return (now - _EPOCH) // timedelta(microseconds=1)


@dataclass(frozen=True)
class Window:
    """Records used in one rolling window against its limit."""

    used: int
    limit: int

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)


@dataclass(frozen=True)
class Debit:
    """A granted reservation; the windows include this debit (for audit and reports)."""

    session_id: bytes
    organisation: str
    official: str
    records: int
    at: datetime
    org_day: Window
    org_30d: Window
    official_day: Window
    official_30d: Window


@dataclass(frozen=True)
class DebitRecord:
    """One stored debit row."""

    session_id: bytes
    nonce: bytes
    organisation: str
    official: str
    records: int
    at: datetime


class BudgetStore:
    """One SQLite connection. Use one instance per thread; any number of processes
    may share the file."""

    def __init__(self, path: Path, *, busy_timeout: float = 30.0) -> None:
        self._db = sqlite3.connect(Path(path), timeout=busy_timeout, isolation_level=None)
        self._enable_wal(path, time.monotonic() + busy_timeout)
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("BEGIN IMMEDIATE")
        try:
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                for statement in _SCHEMA:  # not executescript: it would commit early
                    self._db.execute(statement)
            elif version != SCHEMA_VERSION:
                raise RuntimeError(f"budget store {path} has schema version {version}, expected {SCHEMA_VERSION}")
            self._db.execute("COMMIT")
        except BaseException:
            self._rollback()
            self._db.close()
            raise

    def _enable_wal(self, path: Path, deadline: float) -> None:
        # Switching a new file to WAL bypasses SQLite's busy handler, so several
        # processes opening a fresh store at once must retry here.
        while True:
            try:
                mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    self._db.close()
                    raise
                time.sleep(0.005)
                continue
            if mode.lower() != "wal":
                self._db.close()
                raise RuntimeError(f"budget store {path} cannot use WAL journaling (got {mode!r})")
            return

    def _rollback(self) -> None:
        # A failed COMMIT may already have ended the transaction.
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> BudgetStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def reserve(
        self,
        *,
        session_id: bytes,
        organisation: str,
        official: str,
        nonce: bytes,
        records: int,
        limits: Limits,
        now: datetime,
        before_commit: Callable[[Debit], None] | None = None,
    ) -> Debit:
        """Debit ``records`` for a session, or refuse (``replayed``, ``over_budget``)
        recording nothing. Checks, in order: nonce or session id already recorded,
        session maximum, organisation day/30-day, official day/30-day.

        ``before_commit`` runs inside the transaction once the debit is decided: the holder
        writes its audit entries there, so that a debit is never committed without them
        (anything it raises rolls the debit back and is re-raised)."""
        if type(records) is not int or records < 0:
            raise ValueError("records must be a non-negative int")
        now_us = _micros(now)
        self._db.execute("BEGIN IMMEDIATE")
        try:
            seen = self._db.execute(
                "SELECT 1 FROM debits WHERE nonce = ? OR session_id = ? LIMIT 1", (nonce, session_id)
            ).fetchone()
            if seen:
                raise PolicyRefusal(Reason.REPLAYED, "this request's nonce or session id has been used before")
            if records > limits.session_max_records:
                raise PolicyRefusal(
                    Reason.OVER_BUDGET,
                    f"{records} records exceed the per-session maximum of {limits.session_max_records}",
                )
            windows = {
                label: Window(used, getattr(limits, label))
                for label, used in self._used(organisation, official, now_us).items()
            }
            for label, window in windows.items():
                if window.used + records > window.limit:
                    raise PolicyRefusal(
                        Reason.OVER_BUDGET,
                        f"{records} records exceed the {_LABELS[label]} budget "
                        f"({window.used} of {window.limit} used)",
                    )
            self._db.execute(
                "INSERT INTO debits (session_id, nonce, organisation, official, records, at_us) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (session_id, nonce, organisation, official, records, now_us),
            )
            after = {label: Window(w.used + records, w.limit) for label, w in windows.items()}
            debit = Debit(session_id=session_id, organisation=organisation, official=official, records=records,
                          at=now.astimezone(UTC), **after)
            if before_commit is not None:
                before_commit(debit)
            self._db.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise
        return debit

    def settle(self, session_id: bytes, evaluated: int, before_commit: Callable[[int], None] | None = None) -> int:
        """Lower a session's debit to the ``evaluated`` elements (never raise it); returns the
        records it had reserved. ``before_commit(reserved)`` runs inside the transaction (the
        holder audits the settlement there); anything it raises leaves the debit as it was."""
        if type(evaluated) is not int or evaluated < 0:
            raise ValueError("evaluated must be a non-negative int")
        self._db.execute("BEGIN IMMEDIATE")
        try:
            row = self._db.execute("SELECT records FROM debits WHERE session_id = ?", (session_id,)).fetchone()
            if row is None:
                raise KeyError(session_id.hex())
            reserved = int(row[0])
            if before_commit is not None:
                before_commit(reserved)
            self._db.execute("UPDATE debits SET records = ? WHERE session_id = ?", (min(reserved, evaluated), session_id))
            self._db.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise
        return reserved

    def restore(self, records: Iterable[DebitRecord]) -> int:
        """Insert debits recovered from the audit log, in one transaction; returns how many.

        Used to rebuild a lost store and to complete one a crash left behind its audit log
        (SPEC section 7.6): no limit is checked, the debits happened.
        """
        rows = [(r.session_id, r.nonce, r.organisation, r.official, r.records, _micros(r.at)) for r in records]
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany(
                "INSERT INTO debits (session_id, nonce, organisation, official, records, at_us) "
                "VALUES (?, ?, ?, ?, ?, ?)", rows)
            self._db.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise
        return len(rows)

    def integrity(self) -> str:
        """SQLite's ``quick_check``: ``"ok"``, or what is damaged."""
        return str(self._db.execute("PRAGMA quick_check").fetchone()[0])

    def usage(self, organisation: str, official: str | None, now: datetime) -> dict[str, int]:
        """Records used per rolling window (``official_*`` only when ``official`` is given)."""
        return self._used(organisation, official, _micros(now))

    def remaining(self, organisation: str, official: str | None, limits: Limits, now: datetime) -> dict[str, int]:
        """What ``GetInfo`` reports: remaining records per window, the per-session
        maximum, and ``next_session_max``, the largest session that would be granted now."""
        used = self._used(organisation, official, _micros(now))
        result = {label: max(0, getattr(limits, label) - n) for label, n in used.items()}
        result["session_max_records"] = limits.session_max_records
        result["next_session_max"] = min(result.values())
        return result

    def debits(self, organisation: str | None = None) -> list[DebitRecord]:
        """Stored debits in commit order (audit, reports, tests)."""
        query = "SELECT session_id, nonce, organisation, official, records, at_us FROM debits"
        params: tuple[str, ...] = ()
        if organisation is not None:
            query += " WHERE organisation = ?"
            params = (organisation,)
        rows = self._db.execute(query + " ORDER BY id", params).fetchall()
        return [
            DebitRecord(sid, nonce, org, off, records, _EPOCH + timedelta(microseconds=at_us))
            for sid, nonce, org, off, records, at_us in rows
        ]

    def _used(self, organisation: str, official: str | None, now_us: int) -> dict[str, int]:
        # No upper bound on at_us: debits dated after ``now`` (clock stepped back)
        # still count, so a clock change can only make the store stricter.
        day_start = now_us - DAY // timedelta(microseconds=1)
        month_start = now_us - THIRTY_DAYS // timedelta(microseconds=1)
        org_day, org_30d, official_day, official_30d = self._db.execute(
            "SELECT"
            " COALESCE(SUM(CASE WHEN at_us > :day THEN records END), 0),"
            " COALESCE(SUM(records), 0),"
            " COALESCE(SUM(CASE WHEN official = :official AND at_us > :day THEN records END), 0),"
            " COALESCE(SUM(CASE WHEN official = :official THEN records END), 0)"
            " FROM debits WHERE organisation = :organisation AND at_us > :month",
            {"day": day_start, "month": month_start, "official": official, "organisation": organisation},
        ).fetchone()
        used = {"org_day": org_day, "org_30d": org_30d}
        if official is not None:
            used |= {"official_day": official_day, "official_30d": official_30d}
        return used


_LABELS = {
    "org_day": "organisation's 24-hour",
    "org_30d": "organisation's 30-day",
    "official_day": "official's 24-hour",
    "official_30d": "official's 30-day",
}
