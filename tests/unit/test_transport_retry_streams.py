"""Retry rules and backoff, stream slots and read deadlines, without a server."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator

import grpc
import pytest

from blindmatch.transport.retry import Backoff, call_with_retry, is_retryable
from blindmatch.transport.status import REASON_METADATA_KEY
from blindmatch.transport.streams import DeadlineReader, NoSlot, SendWatch, StreamIdle, StreamSlots


class FakeError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, reason: str = "") -> None:
        self._code, self._reason = code, reason

    def code(self) -> grpc.StatusCode:
        return self._code

    def trailing_metadata(self) -> tuple[tuple[str, str], ...]:
        return ((REASON_METADATA_KEY, self._reason),) if self._reason else ()


@pytest.mark.parametrize(("code", "reason", "retry"), [
    (grpc.StatusCode.UNAVAILABLE, "", True),
    (grpc.StatusCode.RESOURCE_EXHAUSTED, "", True),  # gRPC's own "Concurrent RPC limit exceeded!"
    (grpc.StatusCode.RESOURCE_EXHAUSTED, "busy", True),
    (grpc.StatusCode.DEADLINE_EXCEEDED, "idle_timeout", True),
    (grpc.StatusCode.RESOURCE_EXHAUSTED, "over_budget", False),  # a refusal is final
    (grpc.StatusCode.RESOURCE_EXHAUSTED, "limit_exceeded", False),
    (grpc.StatusCode.INVALID_ARGUMENT, "bad_request", False),
    (grpc.StatusCode.PERMISSION_DENIED, "", False),
])
def test_only_transient_failures_that_are_not_refusals_are_retried(code: grpc.StatusCode, reason: str, retry: bool) -> None:
    assert is_retryable(FakeError(code, reason)) is retry


def test_backoff_is_full_jitter_under_a_doubling_ceiling() -> None:
    backoff = Backoff(base=0.1, cap=1.0, rng=random.Random(7))
    delays = [backoff.next_delay() for _ in range(50)]
    ceilings = [min(1.0, 0.1 * 2**i) for i in range(50)]
    assert all(0 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    assert len(set(delays)) == 50  # jittered: no two clients' schedules line up
    backoff.reset()
    assert backoff.next_delay() <= 0.1


def test_call_with_retry_retries_until_success_and_gives_up_on_refusals() -> None:
    failures = [FakeError(grpc.StatusCode.UNAVAILABLE), FakeError(grpc.StatusCode.RESOURCE_EXHAUSTED, "busy")]

    def flaky() -> str:
        if failures:
            raise failures.pop(0)
        return "ok"

    assert call_with_retry(flaky, within=5, backoff=Backoff(base=0.01)) == "ok"
    calls = []

    def refused() -> str:
        calls.append(1)
        raise FakeError(grpc.StatusCode.RESOURCE_EXHAUSTED, "over_budget")

    with pytest.raises(FakeError):
        call_with_retry(refused, within=5)
    assert len(calls) == 1


def test_call_with_retry_stops_at_its_time_limit() -> None:
    started = time.monotonic()
    with pytest.raises(FakeError):
        call_with_retry(lambda: (_ for _ in ()).throw(FakeError(grpc.StatusCode.UNAVAILABLE)), within=0.5,
                        backoff=Backoff(base=0.05, cap=0.1))
    assert time.monotonic() - started < 1.0


def test_stream_slots_bound_each_organisation_and_the_total() -> None:
    slots = StreamSlots("Match sessions", total=3, per_peer=2)
    with slots.slot("A"), slots.slot("A"):
        with pytest.raises(NoSlot, match="'A' already has 2 Match sessions open"), slots.slot("A"):
            pass
        with slots.slot("B"), pytest.raises(NoSlot, match="has 3 Match sessions open"), slots.slot("C"):
            pass
        assert slots.in_use() == 2 and slots.in_use("A") == 2
    assert slots.in_use() == 0


def test_deadline_reader_times_out_a_silent_peer_and_passes_messages_and_errors() -> None:
    gate = threading.Event()

    def requests() -> Iterator[int]:
        yield 1
        gate.wait(5)
        yield 2
        raise ValueError("the call ended")

    reader = DeadlineReader(requests())
    assert reader.next(1) == 1
    with pytest.raises(StreamIdle, match=r"no message from the peer for 0\.2 s"):
        reader.next(0.2)
    gate.set()
    assert reader.next(1) == 2
    with pytest.raises(ValueError, match="the call ended"):
        reader.next(1)
    assert DeadlineReader(iter([])).next(1) is None


class FakeContext:
    def __init__(self) -> None:
        self.cancelled = threading.Event()

    def cancel(self) -> None:
        self.cancelled.set()


def test_send_watch_cancels_only_a_send_that_waits_past_its_limit() -> None:
    watch = SendWatch(poll_seconds=0.05)
    try:
        quick, stuck = FakeContext(), FakeContext()
        with watch.sending(quick, 0.5):  # type: ignore[arg-type]
            time.sleep(0.1)
        with watch.sending(stuck, 0.2):  # type: ignore[arg-type]
            assert stuck.cancelled.wait(2)  # a peer that stopped reading: its call is cancelled
        time.sleep(0.7)
        assert not quick.cancelled.is_set()
    finally:
        watch.close()
