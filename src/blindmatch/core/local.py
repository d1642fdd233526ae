"""Run a holder and a requester session against each other in memory.

Used by tests, the in-process benchmark transport and the protocol test vectors; the
daemons do the same over gRPC.
"""

from __future__ import annotations

from blindmatch.core.holder import HolderSession
from blindmatch.core.messages import Message
from blindmatch.core.requester import RequesterSession


def run_local(holder: HolderSession, requester: RequesterSession, authorization: bytes = b"") -> list[Message]:
    """Drive both sessions to the end; returns every message exchanged, in order sent."""
    wire: list[Message] = []
    hello = requester.hello(authorization)
    wire.append(hello)
    holder.receive(hello)
    accept = holder.accept()
    wire.append(accept)
    pending = requester.receive(accept)
    while pending or requester.state.name == "OPEN":
        if not pending:
            batch = requester.next_batch()
            if batch is None:
                raise RuntimeError("requester is open but has nothing to send")
            pending = [batch]
        to_holder, pending = pending, []
        for message in to_holder:
            wire.append(message)
            for reply in holder.receive(message):
                wire.append(reply)
                pending.extend(requester.receive(reply))
    return wire
