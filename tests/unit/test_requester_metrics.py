"""The requester's metrics classify sessions by the holder's reason and serve on loopback."""

from __future__ import annotations

import urllib.request

from blindmatch.requester.metrics import RequesterMetrics


def test_sessions_are_counted_by_outcome_and_refusals_by_reason() -> None:
    metrics = RequesterMetrics()
    metrics.session_ended(0.2, elements=25)
    metrics.session_ended(0.1, reason="over_budget")  # a refusal: final
    metrics.session_ended(0.3, reason="busy")  # not a refusal: retried
    metrics.budget_seen(990, 29_000)
    metrics.jobs.labels("succeeded").inc()
    port = metrics.serve("127.0.0.1:0")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    finally:
        metrics.close()
    samples = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line and not line.startswith("#")}
    assert samples['blindmatch_requester_sessions_total{outcome="closed"}'] == 1
    assert samples['blindmatch_requester_sessions_total{outcome="refused"}'] == 1
    assert samples['blindmatch_requester_sessions_total{outcome="failed"}'] == 1
    assert samples['blindmatch_requester_refusals_total{reason="over_budget"}'] == 1
    assert 'blindmatch_requester_refusals_total{reason="busy"}' not in samples
    assert samples["blindmatch_requester_answered_elements_total"] == 25
    assert samples['blindmatch_requester_budget_remaining_records{window="day"}'] == 990
    assert samples['blindmatch_requester_jobs_total{state="succeeded"}'] == 1
