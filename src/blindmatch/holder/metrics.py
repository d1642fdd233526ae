"""The holder's Prometheus metrics, served on their own loopback port (``[holder.metrics]``).

What an operator watches: sessions by outcome, refusals by reason, evaluated elements,
how long sessions and short calls take, and each organisation's budget left. Labels are
outcomes, reasons, method names and organisation names (which the audit log records
anyway); never session ids, officials' names or anything a requester sent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from blindmatch.transport.metrics import SESSION_BUCKETS, MetricsEndpoint

CALL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
BudgetReader = Callable[[datetime], dict[str, dict[str, int]]]


class _BudgetCollector(Collector):
    """Budget left per organisation and window, read from the budget store at scrape time."""

    def __init__(self, read: BudgetReader, clock: Callable[[], datetime]) -> None:
        self._read = read
        self._clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("blindmatch_holder_budget_remaining_records",
                                   "Records an organisation may still send in the window",
                                   labels=["organisation", "window"])
        for organisation, windows in sorted(self._read(self._clock()).items()):
            for window, left in sorted(windows.items()):
                family.add_metric([organisation, window], left)
        yield family


class HolderMetrics(MetricsEndpoint):
    """The holder's counters and histograms in a registry of their own (one per daemon)."""

    def __init__(self, budgets: BudgetReader, clock: Callable[[], datetime]) -> None:
        super().__init__()
        self.sessions = Counter("blindmatch_holder_sessions", "Match sessions by outcome (closed, refused, failed)",
                                ["outcome"], registry=self.registry)
        self.refusals = Counter("blindmatch_holder_refusals", "Calls and sessions refused, by reason",
                                ["reason"], registry=self.registry)
        self.evaluations = Counter("blindmatch_holder_evaluated_elements", "Blinded elements evaluated",
                                   registry=self.registry)
        self.session_seconds = Histogram("blindmatch_holder_session_seconds", "Duration of Match sessions by outcome",
                                         ["outcome"], buckets=SESSION_BUCKETS, registry=self.registry)
        self.call_seconds = Histogram("blindmatch_holder_call_seconds", "Duration of GetInfo calls",
                                      ["method"], buckets=CALL_BUCKETS, registry=self.registry)
        self.registry.register(_BudgetCollector(budgets, clock))

    def session_ended(self, outcome: str, seconds: float, reason: str = "") -> None:
        """One Match call's end; a refused one also counts under its reason."""
        self.sessions.labels(outcome).inc()
        self.session_seconds.labels(outcome).observe(seconds)
        if outcome == "refused" and reason:
            self.refusals.labels(reason).inc()

    def refused(self, reason: str) -> None:
        """A call refused before any session began (busy, organisation not allowed)."""
        self.refusals.labels(reason).inc()
