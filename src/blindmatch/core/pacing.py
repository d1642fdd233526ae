"""The one pacing rule, and the in-memory driver that runs a holder and a requester against each other.

``pace`` is how many blinded batches go out now: in membership mode up to ``window`` are
in flight, in cardinality mode all of them (the holder answers only after the last). The
gRPC client, the benchmark's process transport and ``run_local`` all call it.

``run_local`` is used by tests, the protocol test vectors and the in-process benchmark;
the daemons do the same over gRPC.
"""

from __future__ import annotations

from collections.abc import Callable

from blindmatch.core.events import AcceptSession, Event, Output
from blindmatch.core.holder import HolderSession
from blindmatch.core.messages import BlindedBatch, Message
from blindmatch.core.requester import RequesterSession


def pace(session: RequesterSession, window: int) -> list[BlindedBatch]:
    """The blinded batches to send now, given what is in flight."""
    out: list[BlindedBatch] = []
    while session.can_send and session.batches_outstanding < window:
        batch = session.next_batch()
        if batch is None:
            break
        out.append(batch)
    return out


def run_local(
    holder: HolderSession,
    requester: RequesterSession,
    authorization: bytes = b"",
    window: int = 1,
    on_event: Callable[[Event], None] = lambda _event: None,
) -> list[Message]:
    """Drive both sessions to the end, granting the Hello (no policy in memory).

    Returns every message exchanged, in the order sent; ``on_event`` sees every event of
    both sides as it happens (tests and benchmarks observe there).
    """
    wire: list[Message] = []

    def observed(out: Output) -> list[Message]:
        for event in out.events:
            on_event(event)
        return out.messages

    def to_holder(message: Message) -> list[Message]:
        wire.append(message)
        return observed(holder.receive(message))

    def to_requester(message: Message) -> list[Message]:
        wire.append(message)
        return observed(requester.receive(message))

    to_holder(requester.hello(authorization))
    pending = [reply for accept in observed(holder.receive(AcceptSession())) for reply in to_requester(accept)]
    while pending or requester.can_send:
        if not pending:
            pending = list(pace(requester, window))
            if not pending:
                raise RuntimeError("requester is open but has nothing to send")
        sending, pending = pending, []
        for message in sending:
            for reply in to_holder(message):
                pending.extend(to_requester(reply))
    return wire
