"""``RequesterSession``: the requester's side of one Match session, as a state machine.

All match keys are blinded up front so that the Hello can carry a digest of every
batch, which the official's signed request commits to. Blinds never leave this object.

Blinding needs neither the index nor the POPRF ``info`` (only verification does), so a
caller that has the keys before the index may blind them ahead (``blind_ahead``) while
the holder builds its index or the index downloads, and hand the ``BlindedInputs`` to the
session as a prepared input.

Wire messages are named ``wire.X`` (``core.messages``), local inputs and events by their
own names (``core.events``), so a reader sees at once what crosses to the holder.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from enum import Enum, auto
from typing import Protocol

import numpy as np

from blindmatch import PROTOCOL_VERSION
from blindmatch.core import messages as wire
from blindmatch.core.engine import SessionEngine
from blindmatch.core.errors import ProtocolError, peer_text
from blindmatch.core.events import (
    BatchReceived,
    Output,
    RequesterInput,
    SendBatch,
    SendHello,
    SessionAccepted,
    SessionClosed,
)
from blindmatch.core.index import EncryptedIndex
from blindmatch.core.keys import key_id_of
from blindmatch.core.outputs import outputs_for
from blindmatch.core.purpose import evaluation_info, shuffle_context
from blindmatch.core.table import TableSession
from blindmatch.crypto import poprf
from blindmatch.crypto.backend import random_scalars
from blindmatch.crypto.dleq import ProofError
from blindmatch.crypto.group import ELEMENT_BYTES, InvalidElementError
from blindmatch.crypto.modes import POPRF
from blindmatch.crypto.shuffle import ShuffleProof, ShuffleProofError
from blindmatch.vocabulary import Mode, Reason, reason_named


class RequesterState(Enum):
    READY = auto()
    AWAITING_ACCEPT = auto()
    OPEN = auto()
    CLOSING = auto()
    CLOSED = auto()
    FAILED = auto()


_R = RequesterState


class Observer(Protocol):
    """Measures the requester's per-batch work (benchmarks); the core itself reads no clock."""

    def measure(self, phase: str) -> AbstractContextManager[object]: ...


class _Unobserved:
    def measure(self, phase: str) -> AbstractContextManager[object]:
        return nullcontext()


@dataclass(frozen=True)
class BlindedInputs:
    """Keys blinded before their session exists: RFC 9497 Blind under the POPRF DST, which needs no ``info``.

    ``blinds`` holds one scalar per key (membership) or the session's one scalar
    (cardinality); ``blinded`` the ``len(keys) * 32`` bytes of blinded elements.
    """

    keys: tuple[bytes, ...]
    mode: Mode
    blinds: bytes
    blinded: bytes


def blind_ahead(keys: Sequence[bytes], mode: Mode, engine: SessionEngine, blinds: bytes | None = None) -> BlindedInputs:
    """Blind ``keys`` for a later ``RequesterSession(..., prepared=...)`` (fresh blinds unless given)."""
    n = len(keys)
    blinds = blinds if blinds is not None else _fresh_blinds(n, mode)
    if len(blinds) != (n * 32 if mode is Mode.MEMBERSHIP else 32):
        raise ValueError("wrong number of blinds for this mode")
    per_key = blinds if mode is Mode.MEMBERSHIP else blinds * n
    return BlindedInputs(tuple(keys), mode, blinds, engine.blind_in_mode(POPRF, keys, per_key))


class RequesterSession(
    TableSession,
    states=RequesterState,
    rules={
        (_R.READY, SendHello): _R.AWAITING_ACCEPT,
        (_R.AWAITING_ACCEPT, wire.Accept): _R.OPEN,
        (_R.OPEN, SendBatch): _R.OPEN,
        (_R.OPEN, wire.EvaluatedBatch): _R.OPEN,
        (_R.CLOSING, wire.Closed): _R.CLOSED,
    },
):
    """Blind ``keys``, send them in batches, and look up the evaluations in ``index``.

    Membership mode: one fresh blind per key; ``matched[i]`` says whether ``keys[i]`` is in
    the holder's index. Cardinality mode: one blind for the whole session; the holder
    shuffles the evaluations, so only ``match_count`` can be learnt.

    Every evaluation is POPRF under ``evaluation_info(organisation, mode, key_id)``, with
    ``public_key`` the holder's pinned OPRF key of the index's epoch. A membership batch
    is used only after its DLEQ proof verifies against the tweaked key (``proof_invalid``
    otherwise, before any output of the batch is computed). Cardinality batches are held
    until the last; nothing of them is used before the shuffle proof of the whole session
    (SPEC.md 6.1) verifies: the outputs are then the inputs' evaluations under the
    tweaked key, each exactly once, in an order the requester cannot undo.

    ``prepared`` (from ``blind_ahead`` on the same keys and mode) skips the blinding here;
    ``blinds`` must then be None.
    """

    def __init__(
        self,
        keys: Sequence[bytes],
        mode: Mode,
        index: EncryptedIndex,
        session_id: bytes,
        batch_size: int,
        engine: SessionEngine,
        *,
        organisation: str,
        public_key: bytes,
        blinds: bytes | None = None,
        observer: Observer | None = None,
        prepared: BlindedInputs | None = None,
    ) -> None:
        if key_id_of(public_key) != index.header.key_id:
            raise ProtocolError(Reason.KEY_MISMATCH, "the index was not built under the pinned OPRF public key")
        if len(session_id) != wire.SESSION_ID_BYTES:
            raise ValueError(f"session id must be {wire.SESSION_ID_BYTES} bytes")
        if batch_size < 1:
            raise ValueError("batch size must be positive")
        if index.kind is not mode:
            raise ValueError(f"a {mode.value} session needs a {mode.value} index, not {index.kind.value}")
        self.mode = mode
        self.public_key = public_key
        self.info = evaluation_info(organisation, mode, index.header.key_id)
        self.session_id = session_id
        self.batch_size = batch_size
        self.matched = np.zeros(len(keys), dtype=bool)
        self.match_count = 0
        self._keys = list(keys)
        self._index = index
        self._engine = engine
        self._observer = observer or _Unobserved()
        # Cardinality: the evaluated batches (elements and proof parts) until the last one. No
        # check for repeated evaluations: the verified proof makes the outputs a permutation of
        # the inputs' evaluations, so a repeat beyond the requester's own repeated keys fails it.
        self._held: list[wire.EvaluatedBatch] = []
        self._held_count = 0
        super().__init__(RequesterState.READY, {
            SendHello: self._on_send_hello,
            SendBatch: self._on_send_batch,
            wire.Accept: self._on_accept,
            wire.EvaluatedBatch: self._on_evaluated,
            wire.Closed: self._on_closed,
        })
        if prepared is None:
            prepared = blind_ahead(self._keys, mode, engine, blinds)
        elif blinds is not None or prepared.mode is not mode or prepared.keys != tuple(self._keys):
            raise ValueError("the prepared blinding is of other keys or another mode (and carries its own blinds)")
        self._blinds = prepared.blinds
        self._blinded = prepared.blinded
        step = batch_size * ELEMENT_BYTES
        self._batches = [self._blinded[o : o + step] for o in range(0, len(self._blinded), step)]
        self.batch_digests = tuple(wire.batch_digest(b) for b in self._batches)
        self._next_to_send = 0
        self._evaluated_received = 0
        self._next_evaluated_seq = 0

    @property
    def element_count(self) -> int:
        return len(self._keys)

    @property
    def index_digest(self) -> bytes:
        """The digest of the index this session looks up in (the Hello and the signed request name it)."""
        return self._index.digest

    @property
    def blinded_commitment(self) -> bytes:
        """What the official's signed request must name (see ``messages.blinded_commitment``)."""
        return wire.blinded_commitment(self.element_count, self.batch_digests)

    @property
    def can_send(self) -> bool:
        """The session is open: blinded batches may go out (``core.pacing`` decides how many)."""
        return self.state is RequesterState.OPEN

    @property
    def batches_outstanding(self) -> int:
        """Batches sent whose evaluations have not come back (membership flow control)."""
        if self.mode is Mode.CARDINALITY:
            return 0  # the holder answers only after the last batch: send them all
        return self._next_to_send - self._next_evaluated_seq

    def hello(self, authorization: bytes = b"") -> wire.Hello:
        """``receive(SendHello(authorization))``, returning the Hello to send."""
        (message,) = self.receive(SendHello(authorization)).messages
        assert isinstance(message, wire.Hello)
        return message

    def next_batch(self) -> wire.BlindedBatch | None:
        """The next blinded batch to send, or None when all are out. The caller paces sending."""
        messages = self.receive(SendBatch()).messages
        if not messages:
            return None
        assert isinstance(messages[0], wire.BlindedBatch)
        return messages[0]

    def receive(self, event: RequesterInput) -> Output:
        """Feed one message from the holder or one local action; returns what to send (a Close at the end)."""
        output = self._step(event)
        if self.state is RequesterState.OPEN and self._evaluated_received == self.element_count:
            # State-triggered: every evaluation is in, so the session closes.
            self.state = RequesterState.CLOSING
            output.messages.append(wire.Close(self.session_id, self._transcript.digest()))
        return output

    def _on_send_hello(self, send: SendHello) -> Output:
        message = wire.Hello(
            protocol_version=PROTOCOL_VERSION,
            session_id=self.session_id,
            mode=self.mode,
            key_id=self._index.header.key_id,
            schema_fingerprint=self._index.header.schema_fingerprint,
            index_digest=self._index.digest,
            element_count=self.element_count,
            batch_size=self.batch_size,
            batch_digests=self.batch_digests,
            authorization=send.authorization,
        )
        self._transcript.add(message)
        return Output([message])

    def _on_send_batch(self, _send: SendBatch) -> Output:
        if self._next_to_send >= len(self._batches):
            return Output()
        batch = wire.BlindedBatch(self._next_to_send, self._batches[self._next_to_send])
        self._transcript.add(batch)
        self._next_to_send += 1
        return Output([batch])

    def _on_accept(self, message: wire.Accept) -> Output:
        if message.session_id != self.session_id:
            raise ProtocolError(Reason.BAD_REQUEST, "Accept names another session")
        if message.max_batch < self.batch_size:
            raise ProtocolError(Reason.LIMIT_EXCEEDED, f"holder accepts batches of at most {message.max_batch}")
        self._transcript.add(message)
        return Output(events=[SessionAccepted(message.session_id, message.max_batch)])

    def _on_closed(self, message: wire.Closed) -> Output:
        if message.transcript_hash != self._transcript.digest():
            raise ProtocolError(Reason.TRANSCRIPT_MISMATCH, "holder's transcript hash differs from the requester's")
        if message.element_count != self.element_count:
            raise ProtocolError(Reason.BAD_REQUEST, "holder reports a different element count")
        return Output(events=[SessionClosed(self.session_id, message.transcript_hash, message.element_count, closed=message)])

    def _on_abort(self, message: wire.Abort) -> Output:
        code = reason_named(message.code, Reason.REFUSED) if message.code in ProtocolError.CODES else Reason.REFUSED
        raise ProtocolError(code, peer_text(message.message))

    def batch_range(self, seq: int) -> range:
        """Which keys a (membership-mode) batch covers."""
        return range(seq * self.batch_size, min((seq + 1) * self.batch_size, self.element_count))

    def _on_evaluated(self, batch: wire.EvaluatedBatch) -> Output:
        if batch.seq != self._next_evaluated_seq:
            raise ProtocolError(Reason.UNEXPECTED_MESSAGE, f"expected evaluated batch {self._next_evaluated_seq}, got {batch.seq}")
        if self.mode is Mode.CARDINALITY:
            return self._on_shuffled(batch)
        if batch.seq >= self._next_to_send:
            raise ProtocolError(Reason.UNEXPECTED_MESSAGE, f"evaluated batch {batch.seq} was never sent")
        span = self.batch_range(batch.seq)
        if len(batch.elements) != len(span) * ELEMENT_BYTES:
            raise ProtocolError(Reason.BAD_REQUEST, f"evaluated batch {batch.seq} holds the wrong number of elements")
        try:
            with self._observer.measure("verify"):
                unblinded = self._engine.verify_and_unblind_poprf(
                    self.public_key, self.info, self._blinds[span.start * 32 : span.stop * 32], self._batches[batch.seq],
                    batch.elements, batch.proof, what=f"evaluated batch {batch.seq}")
        except InvalidElementError as exc:
            raise ProtocolError(Reason.INVALID_ELEMENT, f"evaluated batch {batch.seq}: {exc}") from None
        except ProofError as exc:
            raise ProtocolError(Reason.PROOF_INVALID, f"{exc}: the holder did not evaluate it with the pinned key") from None
        self._transcript.add(batch)
        hits = self._look_up(self._keys[span.start : span.stop], unblinded)
        self.matched[span.start : span.stop] = hits
        self.match_count += int(hits.sum())
        self._evaluated_received += len(span)
        self._next_evaluated_seq += 1
        return Output(events=[BatchReceived(batch.seq, len(span), self.batch_digests[batch.seq], batch.elements)])

    def _look_up(self, inputs: list[bytes] | None, unblinded: bytes) -> np.ndarray:
        """Which of the unblinded elements' outputs (of the session's kind) the index holds."""
        with self._observer.measure("finalize"):
            outputs = outputs_for(self.mode, inputs, unblinded, self.info)
        with self._observer.measure("lookup"):
            return self._index.contains(outputs)

    def _on_shuffled(self, batch: wire.EvaluatedBatch) -> Output:
        """Cardinality: keep the batch (its elements decoded, in the transcript) until the last one."""
        # After the last batch the session is CLOSING: the table refuses a further one (unexpected_message).
        count = min(self.batch_size, self.element_count - self._held_count)
        if len(batch.elements) != count * ELEMENT_BYTES:
            raise ProtocolError(Reason.BAD_REQUEST, f"evaluated batch {batch.seq} holds the wrong number of elements")
        try:
            wire.check_elements(batch.elements)
        except InvalidElementError as exc:
            raise ProtocolError(Reason.INVALID_ELEMENT, f"evaluated batch {batch.seq}: {exc}") from None
        self._transcript.add(batch)
        self._held.append(batch)
        self._held_count += count
        self._next_evaluated_seq += 1
        return self._count_matches() if self._held_count == self.element_count else Output()

    def _count_matches(self) -> Output:
        """Cardinality, every batch in: verify the shuffle proof, then (only then) unblind, hash and count."""
        held, self._held = self._held, []
        outputs = b"".join(b.elements for b in held)
        try:
            proof = ShuffleProof.from_batch_parts([b.proof for b in held], self.element_count, self.batch_size)
        except ShuffleProofError as exc:
            raise ProtocolError(Reason.BAD_REQUEST, f"cardinality batches: {exc}") from None
        try:
            with self._observer.measure("verify"):
                self._engine.verify_shuffled_evaluation(poprf.tweaked_key(self.public_key, self.info), self._blinded,
                                                        outputs, proof, shuffle_context(self.session_id, self.info))
        except ShuffleProofError as exc:
            raise ProtocolError(Reason.PROOF_INVALID, f"{exc}: the holder did not evaluate every element it was "
                                "sent, once, with the pinned key") from None
        unblinded = self._engine.unblind(self._blinds * self.element_count, outputs)
        self.match_count = int(self._look_up(None, unblinded).sum())
        self._evaluated_received = self.element_count
        return Output(events=[BatchReceived(b.seq, len(b.elements) // ELEMENT_BYTES, self.batch_digests[b.seq], b.elements)
                              for b in held])


def _fresh_blinds(n: int, mode: Mode) -> bytes:
    return random_scalars(n if mode is Mode.MEMBERSHIP else 1)
