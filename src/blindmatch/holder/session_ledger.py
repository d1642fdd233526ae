"""The holder's audit writes around a session, split by what a failed write means (issue 17).

An entry that must precede its effect (a grant's debit, an evaluated batch, a Closed, a
settlement, a download) raises ``AuditUnavailable`` when it cannot be written, so the
effect does not happen and the call ends ``UNAVAILABLE``/``audit_unavailable``. An entry
that only reports an outcome (a refusal, a failure) or a checkpoint is best-effort: the
daemon's own log says it was lost and the call ends as it must.
"""

from __future__ import annotations

import logging

from blindmatch.audit import AuditError, AuditLog, entries
from blindmatch.audit.entries import Entry
from blindmatch.holder.runtime import PolicyGate
from blindmatch.vocabulary import BlindmatchError, Reason

log = logging.getLogger("blindmatch.holder")

AUDIT_UNAVAILABLE_MESSAGE = ("the holder cannot write its audit log, so this session was not granted "
                             "and nothing was debited; try again later")
AUDIT_LOST_MESSAGE = "the holder cannot write its audit log; the session is over"


class AuditUnavailable(BlindmatchError):
    """An entry that must precede its effect (a debit, an evaluation) could not be written."""

    default_reason = Reason.AUDIT_UNAVAILABLE


class SessionLedger:
    """Audit writes of the holder's calls, and the settlement of a session's reservation."""

    def __init__(self, audit: AuditLog, gate: PolicyGate) -> None:
        self._audit = audit
        self._gate = gate

    def record(self, entry: Entry) -> None:
        """Append an entry that must precede its effect; failing to is ``AuditUnavailable``."""
        try:
            self._audit.record(entry)
        except (AuditError, OSError) as exc:
            raise AuditUnavailable(f"cannot write {entry.event} to the audit log in {self._audit.path}: {exc}") from exc

    def record_outcome(self, entry: Entry) -> None:
        """Append an entry that only reports an outcome; a failure is logged, not raised."""
        try:
            self._audit.record(entry)
        except (AuditError, OSError) as exc:
            log.error("could not write %s to the audit log in %s: %s", entry.event, self._audit.path, exc)

    def closing_checkpoint(self) -> bytes:
        """The signed checkpoint a Closed carries (SPEC 10.4.1): it must exist before Closed is
        sent, so failing to write it is ``AuditUnavailable`` like any entry before its effect."""
        try:
            return self._audit.checkpoint().note.encode()
        except (AuditError, OSError) as exc:
            raise AuditUnavailable(f"cannot write the closing checkpoint in {self._audit.path}: {exc}") from exc

    def settle(self, session_id: bytes, evaluated: int) -> None:
        """Settle the reservation to the elements evaluated (and sent), audit first (SPEC 7.6).
        If the log cannot take it the full reservation stands and the next start settles it."""
        try:
            self._gate.settle(session_id, evaluated, lambda reserved: self.record(
                entries.budget_settled(session_id, reserved, evaluated)))
        except AuditUnavailable as exc:
            log.error("session %s: the reservation stands unsettled until the next start: %s", session_id.hex(), exc)
