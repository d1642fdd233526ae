"""``RequesterSession``: the requester's side of one Match session, as a state machine.

All match keys are blinded up front so that the Hello can carry a digest of every
batch, which the official's signed request commits to. Blinds never leave this object.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum, auto

import numpy as np
import rbcl

from blindmatch import PROTOCOL_VERSION
from blindmatch.core.errors import ProtocolError
from blindmatch.core.index import EncryptedIndex
from blindmatch.core.messages import (
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
from blindmatch.core.outputs import outputs_for
from blindmatch.crypto.batch import BatchEngine
from blindmatch.crypto.group import ELEMENT_BYTES, InvalidElementError
from blindmatch.vocabulary import Mode, Reason, reason_named


class RequesterState(Enum):
    READY = auto()
    AWAITING_ACCEPT = auto()
    OPEN = auto()
    CLOSING = auto()
    CLOSED = auto()
    FAILED = auto()


class RequesterSession:
    """Blind ``keys``, send them in batches, and look up the evaluations in ``index``.

    Membership mode: one fresh blind per key; ``matched[i]`` says whether ``keys[i]`` is in
    the holder's index. Cardinality mode: one blind for the whole session; the holder
    shuffles the evaluations, so only ``match_count`` can be learnt.
    """

    def __init__(
        self,
        keys: Sequence[bytes],
        mode: Mode,
        index: EncryptedIndex,
        session_id: bytes,
        batch_size: int,
        engine: BatchEngine,
        blinds: bytes | None = None,
    ) -> None:
        if index.kind is not mode:
            raise ValueError(f"a {mode.value} session needs a {mode.value} index, not {index.kind.value}")
        if len(session_id) != SESSION_ID_BYTES:
            raise ValueError(f"session id must be {SESSION_ID_BYTES} bytes")
        if batch_size < 1:
            raise ValueError("batch size must be positive")
        self.mode = mode
        self.state = RequesterState.READY
        self.session_id = session_id
        self.batch_size = batch_size
        self.matched = np.zeros(len(keys), dtype=bool)
        self.match_count = 0
        self._keys = list(keys)
        self._index = index
        self._engine = engine
        self._transcript = Transcript()
        n = len(self._keys)
        self._blinds = blinds if blinds is not None else _fresh_blinds(n, mode)
        expected_blinds = n * 32 if mode is Mode.MEMBERSHIP else 32
        if len(self._blinds) != expected_blinds:
            raise ValueError("wrong number of blinds for this mode")
        per_key = self._blinds if mode is Mode.MEMBERSHIP else self._blinds * n
        self._blinded = engine.blind(self._keys, per_key)
        step = batch_size * ELEMENT_BYTES
        self._batches = [self._blinded[o : o + step] for o in range(0, len(self._blinded), step)]
        self.batch_digests = tuple(batch_digest(b) for b in self._batches)
        self._next_to_send = 0
        self._evaluated_received = 0
        self._next_evaluated_seq = 0

    @property
    def element_count(self) -> int:
        return len(self._keys)

    @property
    def blinded_commitment(self) -> bytes:
        """What the official's signed request must name (see ``messages.blinded_commitment``)."""
        return blinded_commitment(self.element_count, self.batch_digests)

    def hello(self, authorization: bytes = b"") -> Hello:
        self._require(RequesterState.READY, "hello")
        message = Hello(
            protocol_version=PROTOCOL_VERSION,
            session_id=self.session_id,
            mode=self.mode,
            key_id=self._index.header.key_id,
            schema_fingerprint=self._index.header.schema_fingerprint,
            index_digest=self._index.digest,
            element_count=self.element_count,
            batch_size=self.batch_size,
            batch_digests=self.batch_digests,
            authorization=authorization,
        )
        self._transcript.add(message)
        self.state = RequesterState.AWAITING_ACCEPT
        return message

    def next_batch(self) -> BlindedBatch | None:
        """The next blinded batch to send, or None when all are out. The caller paces sending."""
        self._require(RequesterState.OPEN, "send a batch")
        if self._next_to_send >= len(self._batches):
            return None
        batch = BlindedBatch(self._next_to_send, self._batches[self._next_to_send])
        self._transcript.add(batch)
        self._next_to_send += 1
        return batch

    @property
    def batches_outstanding(self) -> int:
        """Batches sent whose evaluations have not come back (membership flow control)."""
        if self.mode is Mode.CARDINALITY:
            return 0  # the holder answers only after the last batch: send them all
        return self._next_to_send - self._next_evaluated_seq

    def receive(self, message: Message) -> list[Message]:
        """Feed one message from the holder; returns messages to send (a Close at the end)."""
        try:
            if isinstance(message, Abort):
                self.state = RequesterState.FAILED
                raise ProtocolError(reason_named(message.code, Reason.REFUSED) if message.code in ProtocolError.CODES else Reason.REFUSED, message.message)
            if isinstance(message, Accept) and self.state is RequesterState.AWAITING_ACCEPT:
                if message.session_id != self.session_id:
                    raise ProtocolError(Reason.BAD_REQUEST, "Accept names another session")
                if message.max_batch < self.batch_size:
                    raise ProtocolError(Reason.LIMIT_EXCEEDED, f"holder accepts batches of at most {message.max_batch}")
                self._transcript.add(message)
                self.state = RequesterState.OPEN
                return self._maybe_close()
            if isinstance(message, EvaluatedBatch) and self.state is RequesterState.OPEN:
                self._on_evaluated(message)
                return self._maybe_close()
            if isinstance(message, Closed) and self.state is RequesterState.CLOSING:
                if message.transcript_hash != self._transcript.digest():
                    raise ProtocolError(Reason.TRANSCRIPT_MISMATCH, "holder's transcript hash differs from the requester's")
                if message.element_count != self.element_count:
                    raise ProtocolError(Reason.BAD_REQUEST, "holder reports a different element count")
                self.state = RequesterState.CLOSED
                return []
            raise ProtocolError(Reason.UNEXPECTED_MESSAGE, f"{type(message).__name__} not allowed in state {self.state.name}")
        except ProtocolError:
            self.state = RequesterState.FAILED
            raise

    def batch_range(self, seq: int) -> range:
        """Which keys a (membership-mode) batch covers."""
        return range(seq * self.batch_size, min((seq + 1) * self.batch_size, self.element_count))

    def _on_evaluated(self, batch: EvaluatedBatch) -> None:
        if batch.seq != self._next_evaluated_seq:
            raise ProtocolError(Reason.UNEXPECTED_MESSAGE, f"expected evaluated batch {self._next_evaluated_seq}, got {batch.seq}")
        if self.mode is Mode.MEMBERSHIP:
            if batch.seq >= self._next_to_send:
                raise ProtocolError(Reason.UNEXPECTED_MESSAGE, f"evaluated batch {batch.seq} was never sent")
            span = self.batch_range(batch.seq)
            blinds = self._blinds[span.start * 32 : span.stop * 32]
            inputs = self._keys[span.start : span.stop]
        else:
            remaining = self.element_count - self._evaluated_received
            span = range(0, min(self.batch_size, remaining))
            blinds = self._blinds * len(span)
            inputs = None
        if len(batch.elements) != len(span) * ELEMENT_BYTES:
            raise ProtocolError(Reason.BAD_REQUEST, f"evaluated batch {batch.seq} holds the wrong number of elements")
        try:
            unblinded = self._engine.unblind(blinds, batch.elements)
        except InvalidElementError as exc:
            raise ProtocolError(Reason.INVALID_ELEMENT, f"evaluated batch {batch.seq}: {exc}") from None
        self._transcript.add(batch)
        hits = self._index.contains(outputs_for(self.mode, inputs, unblinded))
        if self.mode is Mode.MEMBERSHIP:
            self.matched[span.start : span.stop] = hits
        self.match_count += int(hits.sum())
        self._evaluated_received += len(span)
        self._next_evaluated_seq += 1

    def _maybe_close(self) -> list[Message]:
        if self._evaluated_received < self.element_count:
            return []
        self.state = RequesterState.CLOSING
        return [Close(self.session_id, self._transcript.digest())]

    @property
    def transcript_hash(self) -> bytes:
        return self._transcript.digest()

    def _require(self, state: RequesterState, action: str) -> None:
        if self.state is not state:
            raise ProtocolError(Reason.UNEXPECTED_MESSAGE, f"cannot {action} in state {self.state.name}")


def _fresh_blinds(n: int, mode: Mode) -> bytes:
    count = n if mode is Mode.MEMBERSHIP else 1
    return b"".join(rbcl.crypto_core_ristretto255_scalar_random() for _ in range(count))
