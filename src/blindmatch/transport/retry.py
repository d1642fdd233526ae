"""Riding out a busy or restarting server: which failures to retry, and how long to wait.

Every client of the project (the requester's client of the holder, the daemons' client
of the witness, the ``requester match`` command's client of its daemon) retries the same
way (SPEC.md 9.5, "Retries"): ``UNAVAILABLE``, and ``RESOURCE_EXHAUSTED`` or
``DEADLINE_EXCEEDED`` that are not a refusal, with "full jitter" exponential backoff
(each wait uniform in ``[0, min(cap, base * 2**attempt)]``, so a crowd of clients that
failed together does not come back together), within an overall time limit. A refusal
is final: retrying it would only be refused again.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import grpc

from blindmatch.transport.status import reason_from_rpc_error
from blindmatch.vocabulary import reason_named

T = TypeVar("T")

RETRYABLE_STATUSES = frozenset({
    grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.DEADLINE_EXCEEDED})


def is_retryable(error: grpc.RpcError) -> bool:
    """A failure worth trying again: a retryable status whose reason (if any) is not a refusal."""
    code = error.code() if callable(getattr(error, "code", None)) else grpc.StatusCode.UNKNOWN
    if code not in RETRYABLE_STATUSES:
        return False
    reason = reason_from_rpc_error(error)
    return not (reason and reason_named(reason).is_refusal)


@dataclass
class Backoff:
    """Jittered exponential waits: ``next_delay()`` grows the ceiling, ``reset()`` after progress."""

    base: float = 0.1
    cap: float = 5.0
    rng: random.Random = field(default_factory=random.Random)
    attempt: int = 0

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.base * (2 ** min(self.attempt, 30)))
        self.attempt += 1
        return self.rng.uniform(0, ceiling)

    def reset(self) -> None:
        self.attempt = 0


def call_with_retry(
    call: Callable[[], T],
    within: float,
    retryable: Callable[[grpc.RpcError], bool] = is_retryable,
    backoff: Backoff | None = None,
    stop: threading.Event | None = None,
) -> T:
    """``call()``, retried on retryable failures for up to ``within`` seconds; the last failure is raised.

    ``stop`` (set by a daemon that is shutting down) ends the waiting at once with the
    last failure.
    """
    waits = backoff or Backoff()
    deadline = time.monotonic() + within
    while True:
        try:
            return call()
        except grpc.RpcError as error:
            delay = waits.next_delay()
            if not retryable(error) or time.monotonic() + delay > deadline:
                raise
            if stop is not None:
                if stop.wait(delay):
                    raise
            else:
                time.sleep(delay)
