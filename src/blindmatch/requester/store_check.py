"""The job store checked before it is believed (issue 17).

SQLite's own checks see pages, not meaning: one flipped bit in ``records.matched`` turns
a match into a non-match with ``integrity_check`` saying ok. Two facts are stored twice,
so they can be compared: every record's outcome is derived from the per-batch hit
bitmaps, and every closed session's match count from the same bits. And every session
the requester's audit log records was first written to the store, so a store that lacks
one was lost, emptied or replaced: running on would start the job over and spend the
budget again.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from blindmatch.audit import AuditLog, load_entries
from blindmatch.requester.inputs import Elements
from blindmatch.requester.jobs import Job, JobStore
from blindmatch.vocabulary import BlindmatchError


class JobStoreCorrupt(BlindmatchError):
    """The job store contradicts itself or the audit log; results from it would be wrong."""


def _best_tiers(store: JobStore, job: Job, elements: Elements) -> tuple[dict[int, int], Counter[str]]:
    """Best matched tier per input row, and hits per session, from the batches' hit bitmaps."""
    best: dict[int, int] = {}
    hits_per_session: Counter[str] = Counter()
    for session_id, numbers, packed in store.batches(job.id):
        if packed is None:
            continue  # cardinality: no per-element outcome exists
        if numbers.size and int(numbers.max()) >= len(elements.rows):
            raise JobStoreCorrupt(f"{store.path}: job {job.id}: a batch of session {session_id} names element "
                                  f"{int(numbers.max())}, beyond the job's {len(elements.rows)} elements")
        bits = np.unpackbits(np.frombuffer(packed, dtype=np.uint8), count=numbers.size).astype(bool)
        hit = numbers[bits]
        hits_per_session[session_id] += int(hit.size)
        for row, tier in zip(elements.rows[hit].tolist(), elements.tiers[hit].tolist(), strict=True):
            best[row] = min(best.get(row, tier), tier)
    return best, hits_per_session


def check_results(store: JobStore, job: Job, elements: Elements) -> None:
    """Raise ``JobStoreCorrupt`` unless every stored outcome follows from the stored hit bits."""
    best, hits_per_session = _best_tiers(store, job, elements)
    for outcome in store.outcomes(job.id):
        expected = best.get(outcome.row)
        stored = (outcome.matched, outcome.tier if outcome.matched else None)
        if stored != (expected is not None, expected):
            raise JobStoreCorrupt(
                f"{store.path}: job {job.id}: the stored result of row {outcome.row} "
                f"(matched={'true' if outcome.matched else 'false'}) contradicts its evaluated batches "
                f"(matched={'true' if expected is not None else 'false'}); the job store is damaged, so no "
                "RESULTS.csv is written: submit the job again")
    for session_id, match_count in store.closed_sessions(job.id):
        if hits_per_session[session_id] != match_count:
            raise JobStoreCorrupt(
                f"{store.path}: job {job.id}: session {session_id} closed with {match_count} matches but its "
                f"stored hit bits hold {hits_per_session[session_id]}; the job store is damaged, so no "
                "RESULTS.csv is written: submit the job again")


def check_store_knows_audited_sessions(store: JobStore, audit: AuditLog) -> None:
    """Refuse a store that lacks sessions the audit log records (it was lost, emptied or replaced)."""
    audited = [e["session_id"] for e in load_entries(audit.path) if e.get("event") == "session_opened"]
    missing = set(audited) - store.session_ids()
    if missing:
        raise JobStoreCorrupt(
            f"the job store {store.path} does not know {len(missing)} of the {len(set(audited))} sessions the "
            f"audit log in {audit.path} records (e.g. {sorted(missing)[0]}): it was lost, emptied or replaced. "
            "Restore it from a backup; starting its jobs over would spend their budget again. To start over "
            "knowingly, move the store and the audit directory aside together")
