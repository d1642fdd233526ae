"""The requester daemon's Prometheus metrics, on their own loopback port (``[metrics] listen``).

Jobs and sessions by outcome, refusals by reason, elements answered, session latency and
the budget the holder last reported for this organisation. Labels are outcomes and
reason codes only: never job paths, session ids or anything from a record.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from blindmatch.transport.metrics import SESSION_BUCKETS, MetricsEndpoint
from blindmatch.vocabulary import reason_named


class RequesterMetrics(MetricsEndpoint):
    """Counters of one requester process, in a registry of its own."""

    def __init__(self) -> None:
        super().__init__()
        self.jobs = Counter("blindmatch_requester_jobs", "Jobs ended, by end state", ["state"], registry=self.registry)
        self.sessions = Counter("blindmatch_requester_sessions", "Match sessions by outcome (closed, refused, failed)",
                                ["outcome"], registry=self.registry)
        self.refusals = Counter("blindmatch_requester_refusals", "Sessions the holder refused, by reason",
                                ["reason"], registry=self.registry)
        self.evaluations = Counter("blindmatch_requester_answered_elements", "Elements the holder evaluated for us",
                                   registry=self.registry)
        self.session_seconds = Histogram("blindmatch_requester_session_seconds", "Duration of Match sessions",
                                         ["outcome"], buckets=SESSION_BUCKETS, registry=self.registry)
        self.budget = Gauge("blindmatch_requester_budget_remaining_records",
                            "Records this organisation may still send, as the holder last reported", ["window"],
                            registry=self.registry)

    def session_ended(self, seconds: float, elements: int = 0, reason: str = "") -> None:
        """A session closed (no ``reason``) or ended with the holder's ``reason``."""
        outcome = "closed" if not reason else "refused" if reason_named(reason).is_refusal else "failed"
        self.sessions.labels(outcome).inc()
        self.session_seconds.labels(outcome).observe(seconds)
        self.evaluations.inc(elements)
        if outcome == "refused":
            self.refusals.labels(reason).inc()

    def budget_seen(self, day: int, thirty_days: int) -> None:
        self.budget.labels("day").set(day)
        self.budget.labels("30d").set(thirty_days)
