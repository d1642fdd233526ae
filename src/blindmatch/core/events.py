"""What a session tells its caller besides the messages to send, and the local decisions it is fed.

As in h2, the core reports facts as events (``SessionAccepted``, ``BatchEvaluated``,
``SessionClosed``, ...) and the daemon's audit adapter maps each event to one audit entry,
instead of reconstructing facts by inspecting replies. The policy's decision about a
Hello (``AcceptSession`` or ``RefuseSession``) is an input of the holder's transition table like any
message from the peer.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from blindmatch.core.messages import Close, Closed, Hello, Message
from blindmatch.vocabulary import Reason

# --- Local inputs: decisions and actions of this side, fed through the same table as messages.


@dataclass(frozen=True)
class AcceptSession:
    """The holder's policy authorised the session of the pending Hello."""


@dataclass(frozen=True)
class RefuseSession:
    """The holder's policy refused the session: nothing will be evaluated."""

    reason: Reason
    message: str


@dataclass(frozen=True)
class SendHello:
    """The requester opens the session under ``authorization`` (the signed request envelope)."""

    authorization: bytes = b""


@dataclass(frozen=True)
class SendBatch:
    """The requester sends its next blinded batch (the caller paces: see ``core.pacing``)."""


@dataclass(frozen=True)
class EndOfStream:
    """The peer stopped sending: fine after the session closed, a protocol error before."""


HolderInput = Message | AcceptSession | RefuseSession | EndOfStream
RequesterInput = Message | SendHello | SendBatch | EndOfStream

# --- Events: facts the caller records (the audit adapter maps each to one entry).


@dataclass(frozen=True)
class HelloReceived:
    """A valid Hello awaits the policy's decision."""

    hello: Hello


@dataclass(frozen=True)
class SessionAccepted:
    session_id: bytes
    max_batch: int


@dataclass(frozen=True)
class SessionRefused:
    session_id: bytes
    reason: Reason
    message: str


@dataclass(frozen=True)
class BatchDone:
    """One batch of evaluations done: what both sides' audit logs record of it (SPEC.md 10.2).

    ``count`` evaluated elements of batch ``seq``, the digest of the blinded batch the Hello
    committed to, and the evaluated elements as they crossed the wire.
    """

    seq: int
    count: int
    blinded_digest: bytes
    evaluated: bytes = field(repr=False)


@dataclass(frozen=True)
class BatchEvaluated(BatchDone):
    """Holder: one batch evaluated and sent (``evaluated`` is what left, in the order sent)."""


@dataclass(frozen=True)
class BatchReceived(BatchDone):
    """Requester: one evaluated batch unblinded and looked up."""


@dataclass(frozen=True)
class SessionClosed:
    """Both transcript hashes agree. ``close`` is the requester's Close; ``closed`` the holder's Closed."""

    session_id: bytes
    transcript_hash: bytes
    element_count: int
    close: Close | None = None
    closed: Closed | None = None


Event = HelloReceived | SessionAccepted | SessionRefused | BatchEvaluated | BatchReceived | SessionClosed


@dataclass
class Output:
    """What one input produced: messages for the peer, in order, and events for the caller."""

    messages: list[Message] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    def __iter__(self) -> Iterator[Message]:
        """Iterating an output yields its messages (``(closed,) = session.receive(close)``)."""
        return iter(self.messages)
