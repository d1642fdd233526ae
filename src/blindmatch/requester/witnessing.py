"""A one-shot run's checkpoint, submitted to the requester's witnesses before it exits.

The requester daemon submits its checkpoints in the background (``audit.keeper``).
``blindmatch requester match`` without a daemon runs in its own process and then exits,
so nobody would submit what it wrote: it checkpoints its log and submits that checkpoint
to every ``[[audit.witness]]`` itself, waiting a bounded time (SPEC.md 14.7). A witness
that does not answer does not fail the run, which has already done its work: the
checkpoint stays in the log, and the next run or the daemon submits a newer one with a
consistency proof from the size the witness last cosigned, which covers this one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from blindmatch.audit.log import AuditLog
from blindmatch.witness.client import WitnessClient, WitnessEndpoint, WitnessSubmitError

# How long a busy or unreachable witness is retried (on top of each call's own
# ``timeout_seconds``): short, because a later run or the daemon catches up.
ONE_SHOT_RETRY_SECONDS = 3.0
LATER = "the checkpoint stays in the log; the next run or the requester daemon submits it"


@dataclass(frozen=True)
class WitnessReport:
    """Which witnesses cosigned the run's last checkpoint and which did not (with why)."""

    size: int
    cosigned: tuple[str, ...]
    pending: tuple[tuple[str, str], ...]  # (witness name, error)

    def as_json(self) -> dict[str, object]:
        return {
            "checkpoint_size": self.size,
            "cosigned_by": list(self.cosigned),
            "pending": [{"witness": name, "error": error} for name, error in self.pending],
            "later": LATER if self.pending else "",
        }


def submit_checkpoint(
    audit: AuditLog, witnesses: Sequence[WitnessEndpoint], retry_seconds: float = ONE_SHOT_RETRY_SECONDS
) -> WitnessReport:
    """Checkpoint ``audit`` if entries are uncovered, and get that checkpoint cosigned.

    Never raises for a witness that refuses or cannot be reached; each is listed in
    ``pending`` with the reason. Waits at most about ``retry_seconds`` plus the
    endpoint's ``timeout_seconds`` per witness.
    """
    latest = audit.latest_checkpoint()
    checkpoint = latest if latest is not None and latest.size == audit.refreshed_size() else audit.checkpoint()
    client = WitnessClient(witnesses, retry_seconds)
    waiting = set(client.pending(audit))
    already = tuple(e.key.name for e in witnesses if e.key.name not in waiting)
    if not waiting:
        return WitnessReport(checkpoint.size, already, ())
    todo = [e for e in witnesses if e.key.name in waiting]
    try:
        cosignatures = WitnessClient(todo, retry_seconds).submit(audit, checkpoint)
        failures = []
    except WitnessSubmitError as exc:
        cosignatures, failures = exc.cosignatures, exc.failures
    return WitnessReport(checkpoint.size, already + tuple(c.witness for c in cosignatures),
                         tuple((f.witness, str(f)) for f in failures))
