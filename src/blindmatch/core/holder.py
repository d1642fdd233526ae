"""``HolderSession``: the holder's side of one Match session, as a transition table.

It sees only blinded elements. It never decides *whether* a requester may ask: after a
valid Hello it waits in ``AWAITING_DECISION`` until the caller (the daemon, holding the
policy) feeds it the decision, ``AcceptSession()`` or ``RefuseSession(reason, message)``.

As in h11's ``_state.py``, ``TRANSITIONS`` maps (state, input type) to the next state, and
one state-triggered transition covers the data-driven case (every announced element has
arrived: wait for the Close). ``receive`` is a lookup and a handler; the handler returns
the messages to send and the events the caller records (``core.events``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum, auto

from blindmatch import PROTOCOL_VERSION
from blindmatch.core.engine import SessionEngine
from blindmatch.core.errors import ProtocolError, peer_text
from blindmatch.core.events import (
    AcceptSession,
    BatchEvaluated,
    EndOfStream,
    HelloReceived,
    HolderInput,
    Output,
    RefuseSession,
    SessionAccepted,
    SessionClosed,
    SessionRefused,
)
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
    batch_digest,
    blinded_commitment,
    check_elements,
)
from blindmatch.core.purpose import evaluation_info, shuffle_context
from blindmatch.core.table import TableSession
from blindmatch.crypto import poprf
from blindmatch.crypto.group import ELEMENT_BYTES, InvalidElementError
from blindmatch.crypto.shuffle import MAX_CHUNK, ShuffleRandomness
from blindmatch.vocabulary import PROTOCOL_CODES, Mode, Reason, reason_named

# SPEC.md "Encrypted index": with p = 2^-64 per element, this keeps a session below 2^-40.
PROTOCOL_MAX_SESSION_ELEMENTS = 2**24 - 2**8

# Checks the requester's audit signature over its Close (the audit layer's key material);
# may raise ProtocolError itself to name what exactly is wrong (e.g. its checkpoint).
CloseVerifier = Callable[[Close], bool]


class HolderState(Enum):
    AWAITING_HELLO = auto()
    AWAITING_DECISION = auto()
    OPEN = auto()
    AWAITING_CLOSE = auto()
    CLOSED = auto()
    FAILED = auto()


_H = HolderState


def unsigned_close(close: Close) -> bool:
    """The verifier of in-memory runs (tests, benchmarks, vectors), where no audit log signs."""
    return True


@dataclass(frozen=True)
class HolderConfig:
    """What the holder serves and its limits (SPEC.md, "Limits")."""

    sk: bytes = field(repr=False)  # the OPRF secret key must never reach a log line or traceback
    key_id: bytes
    schema_fingerprint: bytes
    index_digests: dict[Mode, bytes]
    max_batch: int = 4096
    max_session_elements: int = 65_536
    # Keys whose epoch is over (SPEC.md 2.1), each with the message that says what to do:
    # a Hello naming one is refused ``epoch_ended``. The daemon decides them from its clock.
    ended_keys: Mapping[bytes, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 1 <= self.max_session_elements <= PROTOCOL_MAX_SESSION_ELEMENTS:
            raise ValueError(f"max_session_elements must be between 1 and {PROTOCOL_MAX_SESSION_ELEMENTS}")
        if self.max_batch < 1:
            raise ValueError("max_batch must be positive")


class HolderSession(
    TableSession,
    states=HolderState,
    rules={
        (_H.AWAITING_HELLO, Hello): _H.AWAITING_DECISION,
        (_H.AWAITING_DECISION, AcceptSession): _H.OPEN,
        (_H.AWAITING_DECISION, RefuseSession): _H.FAILED,
        (_H.OPEN, BlindedBatch): _H.OPEN,
        (_H.AWAITING_CLOSE, Close): _H.CLOSED,
    },
):
    """One session with the requester ``organisation`` (the mTLS peer).

    Every batch is evaluated in POPRF mode under ``evaluation_info(organisation, mode,
    key_id)``; membership batches carry their batched DLEQ proof (one pass per batch:
    ComputeCompositesFast). Cardinality batches are evaluated only once the last is in,
    as one verifiable shuffled evaluation of the whole session (SPEC.md 6.1): the prover
    draws the permutation itself, and output batch k carries part k of the proof.
    ``shuffle_randomness`` fixes the prover's random values (test vectors only).
    """

    def __init__(
        self,
        config: HolderConfig,
        engine: SessionEngine,
        verify_close: CloseVerifier,
        organisation: str,
        proof_nonce: Callable[[int], bytes | None] = lambda _seq: None,
        shuffle_randomness: ShuffleRandomness | None = None,
    ) -> None:
        self.config = config
        self.organisation = organisation
        self.info = b""  # set by the Hello: the POPRF info of this session
        self._proof_nonce = proof_nonce
        self.hello: Hello | None = None
        self.evaluated_count = 0
        self._engine = engine
        self._verify_close = verify_close
        self._shuffle_randomness = shuffle_randomness
        self._next_seq = 0
        self._received = 0
        self._held: list[bytes] = []  # cardinality mode: blinded batches held back until the last
        super().__init__(HolderState.AWAITING_HELLO, {
            Hello: self._on_hello,
            AcceptSession: self._on_grant,
            RefuseSession: self._on_refuse,
            BlindedBatch: self._on_batch,
            Close: self._on_close,
        })

    @property
    def blinded_commitment(self) -> bytes:
        """The commitment the signed request must carry for this Hello."""
        assert self.hello is not None
        return blinded_commitment(self.hello.element_count, self.hello.batch_digests)

    def receive(self, event: HolderInput) -> Output:
        """Feed one message from the requester or one local decision; returns what to send and record."""
        output = self._step(event)
        if self.state is HolderState.OPEN and self._all_received:
            self.state = HolderState.AWAITING_CLOSE  # state-triggered: nothing more to evaluate
        return output

    def accept(self) -> Accept:
        """``receive(AcceptSession())``, returning the Accept to send."""
        (reply,) = self.receive(AcceptSession()).messages
        assert isinstance(reply, Accept)
        return reply

    def refuse(self, reason: Reason, message: str) -> Abort:
        """``receive(RefuseSession(reason, message))``, returning the Abort for the peer."""
        (reply,) = self.receive(RefuseSession(reason, message)).messages
        assert isinstance(reply, Abort)
        return reply

    def _not_allowed(self, current: Enum, event: object) -> ProtocolError:
        if isinstance(event, EndOfStream):
            return ProtocolError(Reason.BAD_REQUEST, f"the requester ended the stream in state {current.name}")
        return super()._not_allowed(current, event)

    @property
    def _all_received(self) -> bool:
        return self.hello is not None and self._received == self.hello.element_count

    def _on_hello(self, hello: Hello) -> Output:
        self._check_hello(hello)
        self.hello = hello
        self.info = evaluation_info(self.organisation, hello.mode, self.config.key_id)
        self._transcript.add(hello)
        return Output(events=[HelloReceived(hello)])

    def _on_grant(self, _grant: AcceptSession) -> Output:
        assert self.hello is not None
        reply = Accept(self.hello.session_id, self.config.max_batch)
        self._transcript.add(reply)
        return Output([reply], [SessionAccepted(reply.session_id, reply.max_batch)])

    def _on_refuse(self, refuse: RefuseSession) -> Output:
        assert self.hello is not None
        return Output([Abort(Reason.REFUSED, refuse.message)],
                      [SessionRefused(self.hello.session_id, refuse.reason, refuse.message)])

    def _check_hello(self, hello: Hello) -> None:
        cfg = self.config
        if hello.protocol_version != PROTOCOL_VERSION:
            raise ProtocolError(Reason.BAD_VERSION, f"holder speaks protocol {PROTOCOL_VERSION}, not {hello.protocol_version}")
        if len(hello.session_id) != SESSION_ID_BYTES:
            raise ProtocolError(Reason.BAD_REQUEST, f"session id must be {SESSION_ID_BYTES} bytes")
        if hello.key_id in cfg.ended_keys:
            raise ProtocolError(Reason.EPOCH_ENDED, cfg.ended_keys[hello.key_id])
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
        if hello.mode is Mode.CARDINALITY and hello.batch_size > MAX_CHUNK:
            # A batch is one chunk of the shuffle proof, whose DLEQ composites index 2 * chunk elements.
            raise ProtocolError(Reason.LIMIT_EXCEEDED, f"cardinality batch size {hello.batch_size} above {MAX_CHUNK}")
        if len(hello.batch_digests) != -(-hello.element_count // hello.batch_size):
            # Batch boundaries are fixed by the Hello: every batch is full except the last.
            raise ProtocolError(Reason.BAD_REQUEST, "batch digest count does not match element count and batch size")

    def _expected_batch_size(self, seq: int) -> int:
        assert self.hello is not None
        return min(self.hello.batch_size, self.hello.element_count - seq * self.hello.batch_size)

    def _on_batch(self, batch: BlindedBatch) -> Output:
        assert self.hello is not None
        if batch.seq != self._next_seq:
            raise ProtocolError(Reason.UNEXPECTED_MESSAGE, f"expected batch {self._next_seq}, got {batch.seq}")
        expected = self._expected_batch_size(batch.seq)
        if len(batch.elements) != expected * ELEMENT_BYTES:
            raise ProtocolError(Reason.LIMIT_EXCEEDED, f"batch {batch.seq} must hold {expected} elements")
        if batch_digest(batch.elements) != self.hello.batch_digests[batch.seq]:
            raise ProtocolError(Reason.COMMITMENT_MISMATCH, f"batch {batch.seq} differs from the committed blinded batches")
        try:
            if self.hello.mode is Mode.MEMBERSHIP:
                evaluated, proof = self._engine.blind_evaluate_proven_poprf(
                    self.config.sk, batch.elements, self.info, self._proof_nonce(batch.seq))
            else:
                check_elements(batch.elements)  # now, not after the last batch: nothing waits on a bad one
        except InvalidElementError as exc:
            raise ProtocolError(Reason.INVALID_ELEMENT, f"batch {batch.seq}: {exc}") from None
        self._transcript.add(batch)
        self._next_seq += 1
        self._received += expected
        self.evaluated_count += expected
        if self.hello.mode is Mode.MEMBERSHIP:
            return self._emit([EvaluatedBatch(batch.seq, evaluated, proof)])
        self._held.append(batch.elements)
        return self._emit(self._release_proven()) if self._all_received else Output()

    def _release_proven(self) -> list[EvaluatedBatch]:
        """Cardinality mode: every evaluation of the session, shuffled, in batches, with the shuffle proof.

        One proof covers the whole session (the permutation spans every batch); it is cut
        into one part per output batch, chunked at the session's batch size, so that each
        message stays within the holder's message limit (SPEC.md 6.1, 9.1).
        """
        assert self.hello is not None
        blinded = b"".join(self._held)
        self._held = []
        t = poprf.tweaked_secret(self.config.sk, self.info)
        outputs, proof = self._engine.prove_shuffled_evaluation(
            t, blinded, shuffle_context(self.hello.session_id, self.info), chunk=self.hello.batch_size,
            randomness=self._shuffle_randomness)
        step = self.hello.batch_size * ELEMENT_BYTES
        return [EvaluatedBatch(seq, outputs[off : off + step], proof.batch_part(seq))
                for seq, off in enumerate(range(0, len(outputs), step))]

    def _emit(self, batches: list[EvaluatedBatch]) -> Output:
        """Send evaluated batches; a membership batch answers its own, a cardinality batch (shuffled) none."""
        assert self.hello is not None
        events: list[BatchEvaluated] = []
        for batch in batches:
            self._transcript.add(batch)
            count = len(batch.elements) // ELEMENT_BYTES
            events.append(BatchEvaluated(batch.seq, count, self.hello.batch_digests[batch.seq], batch.elements))
        return Output(list(batches), list(events))

    def _on_abort(self, abort: Abort) -> Output:
        """The requester ended the session (e.g. a proof that did not verify): fail with its reason."""
        reason = reason_named(abort.code, Reason.BAD_REQUEST)
        if reason not in PROTOCOL_CODES:
            reason = Reason.BAD_REQUEST
        raise ProtocolError(reason, f"the requester aborted the session: {peer_text(abort.message)}")

    def _on_close(self, close: Close) -> Output:
        assert self.hello is not None
        mine = self._transcript.digest()
        if close.session_id != self.hello.session_id:
            raise ProtocolError(Reason.BAD_REQUEST, "Close names another session")
        if close.transcript_hash != mine:
            raise ProtocolError(Reason.TRANSCRIPT_MISMATCH, "requester's transcript hash differs from the holder's")
        # An unsigned Close is a protocol failure, not a completed session.
        if not self._verify_close(close):
            raise ProtocolError(Reason.BAD_REQUEST, "the requester's audit signature over the transcript does not verify")
        reply = Closed(self.hello.session_id, mine, self.evaluated_count)
        return Output([reply], [SessionClosed(reply.session_id, mine, self.evaluated_count, close=close)])

