"""``HolderSession``: the holder's side of one Match session, as a state machine.

It sees only blinded elements. It never decides *whether* a requester may ask: after a
valid Hello it waits in ``AWAITING_DECISION`` until the caller (the daemon, holding the
policy) calls :meth:`accept` or :meth:`refuse`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum, auto

from blindmatch import PROTOCOL_VERSION
from blindmatch.core.errors import ProtocolError
from blindmatch.core.messages import (
    DIGEST_BYTES,
    SESSION_ID_BYTES,
    Abort,
    Accept,
    BlindedBatch,
    Close,
    Closed,
    EvaluatedBatch,
    Hello,
    Message,
    Transcript,
    batch_digest,
    blinded_commitment,
)
from blindmatch.crypto.batch import BatchEngine
from blindmatch.crypto.group import ELEMENT_BYTES, InvalidElementError
from blindmatch.vocabulary import Mode, Reason

# SPEC.md "Encrypted index": with p = 2^-64 per element, this keeps a session below 2^-40.
PROTOCOL_MAX_SESSION_ELEMENTS = 2**24 - 2**8


class HolderState(Enum):
    AWAITING_HELLO = auto()
    AWAITING_DECISION = auto()
    OPEN = auto()
    AWAITING_CLOSE = auto()
    CLOSED = auto()
    FAILED = auto()


@dataclass(frozen=True)
class HolderConfig:
    """What the holder serves and its limits (SPEC.md, "Limits")."""

    sk: bytes = field(repr=False)  # the OPRF secret key must never reach a log line or traceback
    key_id: bytes
    schema_fingerprint: bytes
    index_digests: dict[Mode, bytes]
    max_batch: int = 4096
    max_session_elements: int = 65_536

    def __post_init__(self) -> None:
        if not 1 <= self.max_session_elements <= PROTOCOL_MAX_SESSION_ELEMENTS:
            raise ValueError(f"max_session_elements must be between 1 and {PROTOCOL_MAX_SESSION_ELEMENTS}")
        if self.max_batch < 1:
            raise ValueError("max_batch must be positive")


class HolderSession:
    def __init__(
        self,
        config: HolderConfig,
        engine: BatchEngine,
        randbelow: Callable[[int], int] = secrets.randbelow,
    ) -> None:
        self.config = config
        self.state = HolderState.AWAITING_HELLO
        self.hello: Hello | None = None
        self.evaluated_count = 0
        self._engine = engine
        self._randbelow = randbelow
        self._transcript = Transcript()
        self._next_seq = 0
        self._received = 0
        self._held: list[bytes] = []  # cardinality mode: evaluations held back until the shuffle

    @property
    def blinded_commitment(self) -> bytes:
        """The commitment the signed request must carry for this Hello."""
        assert self.hello is not None
        return blinded_commitment(self.hello.element_count, self.hello.batch_digests)

    def receive(self, message: Message) -> list[Message]:
        """Feed one message from the requester; returns the messages to send back."""
        try:
            if isinstance(message, Abort):
                self.state = HolderState.FAILED
                return []
            if isinstance(message, Hello) and self.state is HolderState.AWAITING_HELLO:
                self._on_hello(message)
                return []
            if isinstance(message, BlindedBatch) and self.state is HolderState.OPEN:
                return self._on_batch(message)
            if isinstance(message, Close) and self.state is HolderState.AWAITING_CLOSE:
                return self._on_close(message)
            raise ProtocolError(Reason.UNEXPECTED_MESSAGE, f"{type(message).__name__} not allowed in state {self.state.name}")
        except ProtocolError:
            self.state = HolderState.FAILED
            raise

    def accept(self) -> Accept:
        """The caller's policy authorised the session opened by the last Hello."""
        if self.state is not HolderState.AWAITING_DECISION or self.hello is None:
            raise ProtocolError(Reason.UNEXPECTED_MESSAGE, "accept() without a pending Hello")
        reply = Accept(self.hello.session_id, self.config.max_batch)
        self._transcript.add(reply)
        self.state = HolderState.OPEN if self.hello.element_count else HolderState.AWAITING_CLOSE
        return reply

    def refuse(self, message: str) -> Abort:
        """The caller's policy refused the session: nothing will be evaluated."""
        self.state = HolderState.FAILED
        return Abort(Reason.REFUSED, message)

    def _on_hello(self, hello: Hello) -> None:
        cfg = self.config
        if hello.protocol_version != PROTOCOL_VERSION:
            raise ProtocolError(Reason.BAD_VERSION, f"holder speaks protocol {PROTOCOL_VERSION}, not {hello.protocol_version}")
        if len(hello.session_id) != SESSION_ID_BYTES:
            raise ProtocolError(Reason.BAD_REQUEST, f"session id must be {SESSION_ID_BYTES} bytes")
        if hello.key_id != cfg.key_id:
            raise ProtocolError(Reason.KEY_MISMATCH, "requester's key id is not the holder's current key")
        if hello.schema_fingerprint != cfg.schema_fingerprint:
            raise ProtocolError(
                Reason.SCHEMA_MISMATCH,
                f"schema fingerprint {hello.schema_fingerprint.hex()[:16]}... differs from the holder's "
                f"{cfg.schema_fingerprint.hex()[:16]}...; both sides must normalise with the same schema",
            )
        if hello.index_digest != cfg.index_digests.get(hello.mode):
            raise ProtocolError(Reason.INDEX_MISMATCH, "requester's index is not the holder's current index; download it again")
        if not 0 <= hello.element_count <= cfg.max_session_elements:
            raise ProtocolError(Reason.LIMIT_EXCEEDED, f"session of {hello.element_count} elements exceeds the holder's maximum of {cfg.max_session_elements}")
        if any(len(d) != DIGEST_BYTES for d in hello.batch_digests):
            raise ProtocolError(Reason.BAD_REQUEST, "batch digests must be 32 bytes each")
        if not 1 <= hello.batch_size <= cfg.max_batch:
            raise ProtocolError(Reason.LIMIT_EXCEEDED, f"batch size {hello.batch_size} outside 1..{cfg.max_batch}")
        if len(hello.batch_digests) != -(-hello.element_count // hello.batch_size):
            # Batch boundaries are fixed by the Hello: every batch is full except the last.
            raise ProtocolError(Reason.BAD_REQUEST, "batch digest count does not match element count and batch size")
        self.hello = hello
        self._transcript.add(hello)
        self.state = HolderState.AWAITING_DECISION

    def _expected_batch_size(self, seq: int) -> int:
        assert self.hello is not None
        return min(self.hello.batch_size, self.hello.element_count - seq * self.hello.batch_size)

    def _on_batch(self, batch: BlindedBatch) -> list[Message]:
        assert self.hello is not None
        if batch.seq != self._next_seq:
            raise ProtocolError(Reason.UNEXPECTED_MESSAGE, f"expected batch {self._next_seq}, got {batch.seq}")
        expected = self._expected_batch_size(batch.seq)
        if len(batch.elements) != expected * ELEMENT_BYTES:
            raise ProtocolError(Reason.LIMIT_EXCEEDED, f"batch {batch.seq} must hold {expected} elements")
        if batch_digest(batch.elements) != self.hello.batch_digests[batch.seq]:
            raise ProtocolError(Reason.COMMITMENT_MISMATCH, f"batch {batch.seq} differs from the committed blinded batches")
        try:
            evaluated = self._engine.blind_evaluate(self.config.sk, batch.elements)
        except InvalidElementError as exc:
            raise ProtocolError(Reason.INVALID_ELEMENT, f"batch {batch.seq}: {exc}") from None
        self._transcript.add(batch)
        self._next_seq += 1
        self._received += expected
        self.evaluated_count += expected
        if self._received == self.hello.element_count:
            self.state = HolderState.AWAITING_CLOSE
        if self.hello.mode is Mode.MEMBERSHIP:
            return [self._emit(EvaluatedBatch(batch.seq, evaluated))]
        self._held.append(evaluated)
        return self._release_shuffled() if self.state is HolderState.AWAITING_CLOSE else []

    def _release_shuffled(self) -> list[Message]:
        """Cardinality mode: all evaluations of the session, uniformly shuffled, in batches."""
        pool = b"".join(self._held)
        self._held = []
        n = len(pool) // ELEMENT_BYTES
        order = list(range(n))
        for i in range(n - 1, 0, -1):  # Fisher-Yates with a CSPRNG
            j = self._randbelow(i + 1)
            order[i], order[j] = order[j], order[i]
        shuffled = b"".join(pool[k * ELEMENT_BYTES : (k + 1) * ELEMENT_BYTES] for k in order)
        step = self.hello.batch_size * ELEMENT_BYTES
        return [self._emit(EvaluatedBatch(seq, shuffled[off : off + step])) for seq, off in enumerate(range(0, len(shuffled), step))]

    def _emit(self, batch: EvaluatedBatch) -> EvaluatedBatch:
        self._transcript.add(batch)
        return batch

    def _on_close(self, close: Close) -> list[Message]:
        assert self.hello is not None
        mine = self._transcript.digest()
        if close.session_id != self.hello.session_id:
            raise ProtocolError(Reason.BAD_REQUEST, "Close names another session")
        if close.transcript_hash != mine:
            raise ProtocolError(Reason.TRANSCRIPT_MISMATCH, "requester's transcript hash differs from the holder's")
        self.state = HolderState.CLOSED
        return [Closed(self.hello.session_id, mine, self.evaluated_count)]

    @property
    def transcript_hash(self) -> bytes:
        return self._transcript.digest()
