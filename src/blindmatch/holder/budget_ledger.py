"""The budget store checked against, and rebuilt from, the holder's audit log (SPEC section 7.6).

Every debit is written to the audit log inside its reservation's transaction, before it
commits, so the log is the authority and the SQLite store a fast index of it. A store that
was lost, emptied, restored from an old backup or edited would otherwise reset budgets and
forget nonces without a word; the holder therefore compares the two when it starts and
refuses to serve on any disagreement but the one a crash can cause (the last logged debit
not yet committed), which it completes. ``rebuild_budgets`` is the operator's way back.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from blindmatch.audit import AuditLog, entries, load_entries, verify_log
from blindmatch.holder.store import StoreError
from blindmatch.keyfile import fsync_directory
from blindmatch.policy import BudgetStore
from blindmatch.policy.budget import DebitRecord

log = logging.getLogger("blindmatch.holder")

_NO_NONCE_CONTEXT = b"blindmatch: debit logged without its nonce\n"


class BudgetLedgerError(StoreError):
    """The budget store and the audit log disagree, or one of them cannot be read."""


REBUILD_HINT = ("run 'blindmatch holder rebuild-budgets --config HOLDER_TOML' (with the holder stopped) "
                "to rebuild it from the audit log")


def _nonce(entry: dict[str, Any], session_id: bytes) -> bytes:
    """The logged nonce; entries written before the log carried it get a stand-in derived
    from the session id (the session id itself stays unique, so replay is still refused)."""
    if "nonce" in entry:
        return bytes.fromhex(entry["nonce"])
    return hashlib.sha256(_NO_NONCE_CONTEXT + session_id).digest()[:16]


@dataclass
class _Ledger:
    """The budget facts of an audit log, by session id in log (= commit) order."""

    debits: dict[bytes, DebitRecord]  # records as settled, if the session was
    reserved: dict[bytes, int]  # records reserved at open
    settled: set[bytes]
    evaluated: dict[bytes, int]  # elements in the session's batch_evaluated entries


def read_ledger(audit_dir: Path) -> _Ledger:
    ledger = _Ledger({}, {}, set(), {})
    for entry in load_entries(audit_dir):
        event = entry.get("event")
        if event == "batch_evaluated":
            sid = bytes.fromhex(entry["session_id"])
            ledger.evaluated[sid] = ledger.evaluated.get(sid, 0) + entry["count"]
        elif event == "budget_settled":
            sid = bytes.fromhex(entry["session_id"])
            if sid in ledger.debits:
                ledger.debits[sid] = replace(ledger.debits[sid], records=entry["records"])
                ledger.settled.add(sid)
        elif event == "budget_debited":
            ledger.debits[bytes.fromhex(entry["session_id"])] = _debit(entry)
            ledger.reserved[bytes.fromhex(entry["session_id"])] = entry["records"]
    return ledger


def logged_debits(audit_dir: Path) -> dict[bytes, DebitRecord]:
    """Every debit of the log as settled, by session id, in log (= commit) order."""
    return read_ledger(audit_dir).debits


def _debit(entry: dict[str, Any]) -> DebitRecord:
    session_id = bytes.fromhex(entry["session_id"])
    return DebitRecord(
        session_id=session_id,
        nonce=_nonce(entry, session_id),
        organisation=entry["organisation"],
        official=entry["official"],
        records=entry["records"],
        at=datetime.fromisoformat(entry["time"].replace("Z", "+00:00")).astimezone(UTC),
    )


def _stored_debits(budget_db: Path) -> list[DebitRecord]:
    try:
        with BudgetStore(budget_db) as store:
            status = store.integrity()
            if status != "ok":
                raise sqlite3.DatabaseError(status)
            return store.debits()
    except (sqlite3.DatabaseError, RuntimeError) as exc:
        raise BudgetLedgerError(f"the budget database {budget_db} is unreadable or corrupt ({exc}); {REBUILD_HINT}") from None


def _describe(debit: DebitRecord) -> tuple[str, str, int]:
    return debit.organisation, debit.official, debit.records


def check_budgets(budget_db: Path, audit_dir: Path) -> int:
    """Refuse (``BudgetLedgerError``) unless the store holds exactly the logged debits, after
    completing the last logged one if only it is missing; returns how many were completed."""
    ledger = read_ledger(audit_dir)
    logged = ledger.debits
    hint = REBUILD_HINT
    if not budget_db.exists():
        if logged:
            raise BudgetLedgerError(f"the budget database {budget_db} is missing, but the audit log records "
                                    f"{len(logged)} debits; {hint}")
        return 0
    stored = _stored_debits(budget_db)
    unapplied = []
    for debit in stored:
        entry = logged.get(debit.session_id)
        if entry is None:
            raise BudgetLedgerError(f"the budget database {budget_db} holds a debit for session "
                                    f"{debit.session_id.hex()} that the audit log does not record; {hint}")
        if debit.session_id in ledger.settled and debit.records == ledger.reserved[debit.session_id]:
            unapplied.append(entry)  # audited, then the holder stopped before the settlement committed
        elif _describe(entry) != _describe(debit):
            raise BudgetLedgerError(f"the budget database {budget_db} and the audit log disagree on session "
                                    f"{debit.session_id.hex()}: {_describe(debit)} stored, {_describe(entry)} logged; {hint}")
    if unapplied:
        with BudgetStore(budget_db) as store:
            for entry in unapplied:
                store.settle(entry.session_id, entry.records)
    stored_ids = {d.session_id for d in stored}
    missing = [sid for sid in logged if sid not in stored_ids]
    if not missing:
        return 0
    if len(missing) > 1 or missing[0] != list(logged)[-1]:
        what = "is empty" if not stored else f"lacks {len(missing)} of the {len(logged)} logged debits"
        raise BudgetLedgerError(f"the budget database {budget_db} {what}; {hint}")
    with BudgetStore(budget_db) as store:
        store.restore(logged[sid] for sid in missing)
    log.warning("completed the budget database %s with the last logged debit (session %s): the holder "
                "stopped after auditing it and before committing it", budget_db, missing[0].hex())
    return 1


def _auditor(audit: AuditLog, entry: entries.Entry) -> Callable[[int], None]:
    def record(_reserved: int) -> None:
        audit.record(entry)
    return record


def prepare_budgets(budget_db: Path, audit: AuditLog) -> None:
    """At start: check the store against the log, then settle interrupted sessions; on any
    failure the audit log is closed and the error raised (the holder must not serve)."""
    try:
        check_budgets(budget_db, audit.path)
        settle_interrupted(budget_db, audit)
    except BaseException:
        audit.close()
        raise


def settle_interrupted(budget_db: Path, audit: AuditLog) -> int:
    """Settle the reservations of sessions a stop or crash left unsettled to the elements their
    ``batch_evaluated`` entries count (SPEC section 7.6), audit first; returns how many."""
    ledger = read_ledger(audit.path)
    pending = [sid for sid in ledger.debits if sid not in ledger.settled
               and ledger.evaluated.get(sid, 0) < ledger.reserved[sid]]
    if not pending:
        return 0
    with BudgetStore(budget_db) as store:
        for sid in pending:
            evaluated = ledger.evaluated.get(sid, 0)
            store.settle(sid, evaluated, _auditor(audit, entries.budget_settled(sid, ledger.reserved[sid], evaluated)))
            log.info("settled the interrupted session %s to the %d elements it evaluated (of %d reserved)",
                     sid.hex(), evaluated, ledger.reserved[sid])
    return len(pending)


@dataclass(frozen=True)
class RebuildReport:
    debits: int
    records: int
    replaced: Path | None  # where the previous database was moved, if there was one


def _move_aside(budget_db: Path, stamp: str) -> Path | None:
    if not budget_db.exists():
        return None
    target = budget_db.with_name(f"{budget_db.name}.replaced-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        source = Path(f"{budget_db}{suffix}")
        if source.exists():
            os.replace(source, Path(f"{target}{suffix}"))
    return target


def rebuild_budgets(budget_db: Path, audit_dir: Path, origin: str) -> RebuildReport:
    """Rebuild the store from the verified audit log; the old one is kept beside it.

    The rebuild is itself audited (``budgets_rebuilt``) before the store is replaced.
    """
    result = verify_log(audit_dir)
    if not result.ok:
        raise BudgetLedgerError(f"the audit log in {audit_dir} does not verify, so budgets cannot be rebuilt "
                                f"from it: {result.error}")
    logged = logged_debits(audit_dir)
    records = sum(d.records for d in logged.values())
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    budget_db.parent.mkdir(parents=True, exist_ok=True)
    fresh = budget_db.with_name(f".{budget_db.name}.rebuilding-{stamp}")
    try:
        with BudgetStore(fresh) as store:
            store.restore(logged.values())
        with AuditLog.open(audit_dir, origin) as audit:
            audit.append("budgets_rebuilt", debits=len(logged), records=records)
        replaced = _move_aside(budget_db, stamp)
        os.replace(fresh, budget_db)
        fsync_directory(budget_db.parent)
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{fresh}{suffix}").unlink(missing_ok=True)
    return RebuildReport(debits=len(logged), records=records, replaced=replaced)
