"""Refusals counted, not logged one by one: the log's growth is bounded whatever a peer sends.

A refusal whose official's signature verified is accountable (someone with a key asked)
and is logged as its own ``session_refused`` entry, up to ``max_individual`` per period;
any other refusal (no certificate of an allowed organisation, an unsigned or malformed
Hello, a signature that does not verify) and the signed ones beyond the cap only increment
a counter. ``flush`` writes one ``refusals_summarised`` entry for the period, if anything
was counted (SPEC.md 10.2.1, 10.6).
"""

from __future__ import annotations

import threading
from collections import Counter

from blindmatch.audit.entries import Entry, refusals_summarised, session_refused
from blindmatch.audit.log import AuditLog, format_time, utc_now
from blindmatch.vocabulary import Reason


class RefusalCounter:
    """Thread-safe counter of one period's refusals."""

    def __init__(self, audit: AuditLog, max_individual: int) -> None:
        self._audit = audit
        self._max_individual = max_individual
        self._lock = threading.Lock()
        self._reasons: Counter[str] = Counter()
        self._peers: set[str] = set()
        self._individual = 0
        self._since = format_time(utc_now())

    def refused(self, session_id: bytes, peer: str, official: str, reason: Reason, status: str) -> None:
        """One refused session: its own entry if ``official`` is verified and the cap allows, else counted."""
        entry: Entry | None = None
        with self._lock:
            if official and self._individual < self._max_individual and 8 <= len(session_id) <= 64:
                self._individual += 1
                entry = session_refused(session_id, peer, official, reason, status)
            else:
                self._count_locked(peer, reason)
        if entry is not None:
            self._audit.record(entry)

    def unauthenticated(self, peer: str, reason: Reason) -> None:
        """A call refused before any session: counted only (``peer`` may be empty)."""
        with self._lock:
            self._count_locked(peer, reason)

    def _count_locked(self, peer: str, reason: Reason) -> None:
        self._reasons[reason.value] += 1
        if len(self._peers) < 1000:  # the distinct-peer count saturates rather than grow memory
            self._peers.add(peer)

    def flush(self) -> int | None:
        """Write the period's summary (if anything was counted) and start a new period."""
        with self._lock:
            reasons, peers, since = dict(self._reasons), len(self._peers), self._since
            self._reasons.clear()
            self._peers.clear()
            self._individual = 0
            self._since = format_time(utc_now())
        if not reasons:
            return None
        return self._audit.record(refusals_summarised(since, sum(reasons.values()), peers, reasons))
