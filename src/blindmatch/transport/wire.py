"""Conversion between the core's message dataclasses and the protobuf wire messages.

Everything from the wire is checked here for shape (lengths, enum values) before the
core sees it; the core then checks protocol semantics.
"""

from __future__ import annotations

from blindmatch.core.errors import ProtocolError
from blindmatch.core.messages import Abort, Accept, BlindedBatch, Close, Closed, EvaluatedBatch, Hello
from blindmatch.v1 import holder_pb2 as pb
from blindmatch.vocabulary import Mode, Reason

MODE_TO_PB = {Mode.MEMBERSHIP: pb.MODE_MEMBERSHIP, Mode.CARDINALITY: pb.MODE_CARDINALITY}
PB_TO_MODE = {v: k for k, v in MODE_TO_PB.items()}


def mode_from_pb(value: int) -> Mode:
    try:
        return PB_TO_MODE[value]  # type: ignore[index]  # an int off the wire, checked by the lookup
    except KeyError:
        raise ProtocolError(Reason.BAD_REQUEST, f"unknown mode {value}") from None


def hello_to_pb(hello: Hello) -> pb.MatchClientMessage:
    return pb.MatchClientMessage(
        hello=pb.Hello(
            protocol_version=hello.protocol_version,
            session_id=hello.session_id,
            mode=MODE_TO_PB[hello.mode],
            key_id=hello.key_id,
            schema_fingerprint=hello.schema_fingerprint,
            index_digest=hello.index_digest,
            element_count=hello.element_count,
            batch_size=hello.batch_size,
            batch_digests=list(hello.batch_digests),
            authorization=hello.authorization,
        )
    )


def client_message_to_pb(message: Hello | BlindedBatch | Close | Abort) -> pb.MatchClientMessage:
    if isinstance(message, Hello):
        return hello_to_pb(message)
    if isinstance(message, Abort):
        return pb.MatchClientMessage(abort=pb.Abort(code=message.code, message=message.message))
    if isinstance(message, BlindedBatch):
        return pb.MatchClientMessage(blinded=pb.ElementBatch(seq=message.seq, elements=message.elements))
    return pb.MatchClientMessage(
        close=pb.Close(
            session_id=message.session_id,
            transcript_hash=message.transcript_hash,
            signature=message.signature,
            signer_key=message.signer_key,
            checkpoint_note=message.checkpoint_note,
        )
    )


def client_message_from_pb(message: pb.MatchClientMessage) -> Hello | BlindedBatch | Close | Abort:
    kind = message.WhichOneof("message")
    if kind == "hello":
        h = message.hello
        return Hello(
            protocol_version=h.protocol_version,
            session_id=h.session_id,
            mode=mode_from_pb(h.mode),
            key_id=h.key_id,
            schema_fingerprint=h.schema_fingerprint,
            index_digest=h.index_digest,
            element_count=h.element_count,
            batch_size=h.batch_size,
            batch_digests=tuple(h.batch_digests),
            authorization=h.authorization,
        )
    if kind == "blinded":
        return BlindedBatch(message.blinded.seq, message.blinded.elements)
    if kind == "close":
        c = message.close
        return Close(c.session_id, c.transcript_hash, c.signature, c.signer_key, c.checkpoint_note)
    if kind == "abort":
        return Abort(message.abort.code, message.abort.message)
    raise ProtocolError(Reason.BAD_REQUEST, "empty client message")


def server_message_to_pb(message: Accept | EvaluatedBatch | Closed) -> pb.MatchServerMessage:
    if isinstance(message, Accept):
        return pb.MatchServerMessage(accept=pb.Accept(session_id=message.session_id, max_batch=message.max_batch))
    if isinstance(message, EvaluatedBatch):
        return pb.MatchServerMessage(evaluated=pb.ElementBatch(seq=message.seq, elements=message.elements, proof=message.proof))
    return pb.MatchServerMessage(
        closed=pb.Closed(
            session_id=message.session_id,
            transcript_hash=message.transcript_hash,
            element_count=message.element_count,
            signature=message.signature,
            signer_key=message.signer_key,
            checkpoint_note=message.checkpoint_note,
        )
    )


def server_message_from_pb(message: pb.MatchServerMessage) -> Accept | EvaluatedBatch | Closed:
    kind = message.WhichOneof("message")
    if kind == "accept":
        return Accept(message.accept.session_id, message.accept.max_batch)
    if kind == "evaluated":
        return EvaluatedBatch(message.evaluated.seq, message.evaluated.elements, message.evaluated.proof)
    if kind == "closed":
        c = message.closed
        return Closed(c.session_id, c.transcript_hash, c.element_count, c.signature, c.signer_key, c.checkpoint_note)
    raise ProtocolError(Reason.BAD_REQUEST, "empty server message")
