"""Wire messages as the holder and the requester receive them: raw bytes, then hostile fields.

Each peer parses protobuf (``holder_pb2``), converts it to core messages (``node.wire``)
and feeds those to its session state machine (``core.holder`` / ``core.requester``). The
only failures allowed are protobuf's ``DecodeError`` for bytes that are not a message and
``ProtocolError`` (with a known code and a message) for everything else: a hostile peer
must never reach an uncaught ``IndexError``, ``struct.error`` or the like.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

import pytest
from google.protobuf.message import DecodeError
from helpers.core_setup import built_holder
from hypothesis import given
from hypothesis import strategies as st

from blindmatch.core.errors import ProtocolError
from blindmatch.core.holder import HolderSession, HolderState, unsigned_close
from blindmatch.core.messages import Accept, BlindedBatch, Closed, EvaluatedBatch, Hello, batch_digest
from blindmatch.core.outputs import Mode
from blindmatch.core.requester import RequesterSession, RequesterState
from blindmatch.crypto.batch import BatchEngine
from blindmatch.crypto.group import ELEMENT_BYTES, IDENTITY, random_scalar
from blindmatch.requester.holder_client import _check_closed
from blindmatch.transport.wire import client_message_from_pb, server_message_from_pb
from blindmatch.v1 import holder_pb2 as pb

pytestmark = pytest.mark.fuzz

FINGERPRINT = hashlib.sha256(b"fuzz schema").digest()
HOLDER_KEYS = [f"holder person {i}".encode() for i in range(40)]
MAX_BATCH = 8
ORG = "Fuzz County"


class Peer:
    """One holder key and its indexes, shared by every example (building them is the slow part)."""

    def __init__(self, engine: BatchEngine) -> None:
        key, self.config, self.indexes = built_holder(engine, HOLDER_KEYS, FINGERPRINT, ORG, max_batch=MAX_BATCH,
                                                      max_session_elements=64)
        self.public_key = key.public_key
        # A valid element of the group, so that some hostile batches get past decoding.
        self.valid_element = engine.blind([b"x"], random_scalar())


@pytest.fixture(scope="module")
def peer(engine: BatchEngine) -> Iterator[Peer]:
    yield Peer(engine)


def check_protocol_error(error: ProtocolError) -> None:
    assert error.code in ProtocolError.CODES
    assert error.message.strip(), f"ProtocolError {error.code} without a message"


# --- raw bytes ------------------------------------------------------------------------------

@given(st.binary(max_size=512))
def test_holder_parses_any_bytes_into_a_message_or_a_decode_error(peer: Peer, engine: BatchEngine, raw: bytes) -> None:
    try:
        message = pb.MatchClientMessage.FromString(raw)
    except DecodeError:
        return
    session = HolderSession(peer.config, engine, unsigned_close, ORG)
    try:
        session.receive(client_message_from_pb(message))
    except ProtocolError as exc:
        check_protocol_error(exc)
        assert session.state in (HolderState.AWAITING_HELLO, HolderState.FAILED)


@given(st.binary(max_size=512))
def test_requester_parses_any_bytes_into_a_message_or_a_decode_error(peer: Peer, engine: BatchEngine, raw: bytes) -> None:
    try:
        message = pb.MatchServerMessage.FromString(raw)
    except DecodeError:
        return
    session = _requester(peer, engine, Mode.MEMBERSHIP, 3)
    session.hello()
    try:
        session.receive(server_message_from_pb(message))
    except ProtocolError as exc:
        check_protocol_error(exc)
        assert session.state in (RequesterState.AWAITING_ACCEPT, RequesterState.FAILED)


@given(st.sampled_from([pb.Hello, pb.ElementBatch, pb.Close, pb.Closed, pb.Accept, pb.HolderInfo,
                        pb.IndexChunk, pb.DownloadIndexRequest, pb.GetInfoRequest]), st.binary(max_size=512))
def test_every_message_type_parses_or_raises_decode_error(message_type: type, raw: bytes) -> None:
    try:
        message = message_type.FromString(raw)
    except DecodeError:
        return
    assert message_type.FromString(message.SerializeToString()) == message


# --- structurally valid protobuf, hostile field values ----------------------------------------

U32 = st.integers(0, 2**32 - 1)
U64 = st.one_of(st.integers(0, 2**64 - 1), st.sampled_from([0, 1, 2**24, 2**32, 2**63, 2**64 - 1]))


def _bytes_near(length: int) -> st.SearchStrategy[bytes]:
    """Lengths around the one the field must have, and the identity-like all-zero value."""
    return st.one_of(st.binary(min_size=length, max_size=length), st.binary(max_size=2 * length + 1),
                     st.just(bytes(length)), st.just(b"\xff" * length))


@st.composite
def hostile_hellos(draw: st.DrawFn, peer: Peer) -> pb.MatchClientMessage:
    cfg = peer.config
    mode = draw(st.sampled_from([pb.MODE_MEMBERSHIP, pb.MODE_CARDINALITY, pb.MODE_UNSPECIFIED, 3, 2**31 - 1, -1]))
    hello = pb.Hello(
        protocol_version=draw(st.one_of(st.just(1), U32)),
        session_id=draw(_bytes_near(16)),
        mode=mode,
        key_id=draw(st.one_of(st.just(cfg.key_id), _bytes_near(32))),
        schema_fingerprint=draw(st.one_of(st.just(cfg.schema_fingerprint), _bytes_near(32))),
        index_digest=draw(st.one_of(st.sampled_from(list(cfg.index_digests.values())), _bytes_near(32))),
        element_count=draw(st.one_of(st.integers(0, 70), U64)),
        batch_size=draw(st.one_of(st.integers(0, MAX_BATCH + 1), U32)),
        batch_digests=draw(st.lists(_bytes_near(32), max_size=10)),
        authorization=draw(st.binary(max_size=64)),
    )
    return pb.MatchClientMessage(hello=hello)


@given(st.data())
def test_holder_refuses_hostile_hellos_with_a_protocol_error(peer: Peer, engine: BatchEngine, data: st.DataObject) -> None:
    message = data.draw(hostile_hellos(peer))
    session = HolderSession(peer.config, engine, unsigned_close, ORG)
    try:
        hello = client_message_from_pb(message)
        session.receive(hello)
    except ProtocolError as exc:
        check_protocol_error(exc)
        return
    assert session.state is HolderState.AWAITING_DECISION
    assert len(session.blinded_commitment) == 32


ELEMENTS = st.one_of(
    st.binary(min_size=ELEMENT_BYTES, max_size=ELEMENT_BYTES),
    st.just(IDENTITY),  # the identity element must be refused, never evaluated
    st.just(b"\xff" * ELEMENT_BYTES),  # not a canonical encoding
    st.just(b"\x01" + bytes(ELEMENT_BYTES - 1)),
)


@given(st.data(), st.sampled_from(list(Mode)), st.integers(1, 20), st.integers(1, MAX_BATCH))
def test_holder_session_with_committed_hostile_batches(
    peer: Peer, engine: BatchEngine, data: st.DataObject, mode: Mode, count: int, batch_size: int
) -> None:
    """A Hello that commits to the hostile batches, so they reach the group code."""
    elements = [data.draw(st.one_of(ELEMENTS, st.just(peer.valid_element))) for _ in range(count)]
    step = batch_size * ELEMENT_BYTES
    blob = b"".join(elements)
    batches = [blob[o : o + step] for o in range(0, len(blob), step)]
    hello = Hello(1, os.urandom(16), mode, peer.config.key_id, FINGERPRINT, peer.config.index_digests[mode],
                  count, batch_size, tuple(batch_digest(b) for b in batches))
    session = HolderSession(peer.config, engine, unsigned_close, ORG)
    session.receive(hello)
    session.accept()
    for seq, batch in enumerate(batches):
        # A peer may also resend, skip, truncate or extend a batch.
        seq = data.draw(st.sampled_from([seq, seq, seq + 1, 2**32 - 1]))
        batch = data.draw(st.sampled_from([batch, batch, batch[:-1], batch + IDENTITY]))
        try:
            replies = session.receive(BlindedBatch(seq, batch))
        except ProtocolError as exc:
            check_protocol_error(exc)
            assert session.state is HolderState.FAILED
            return
        for reply in replies:
            assert isinstance(reply, EvaluatedBatch) and len(reply.elements) % ELEMENT_BYTES == 0
    assert IDENTITY not in elements or session.state is HolderState.FAILED


def _requester(peer: Peer, engine: BatchEngine, mode: Mode, count: int) -> RequesterSession:
    keys = [f"query {i}".encode() for i in range(count)]
    return RequesterSession(keys, mode, peer.indexes[mode], os.urandom(16), 2, engine, organisation=ORG,
                            public_key=peer.public_key)


@st.composite
def hostile_server_messages(draw: st.DrawFn, session_id: bytes) -> pb.MatchServerMessage:
    kind = draw(st.sampled_from(["accept", "evaluated", "closed", "empty"]))
    if kind == "accept":
        return pb.MatchServerMessage(accept=pb.Accept(session_id=draw(st.one_of(st.just(session_id), _bytes_near(16))),
                                                      max_batch=draw(st.one_of(st.integers(0, 4), U32))))
    if kind == "evaluated":
        elements = b"".join(draw(st.lists(ELEMENTS, max_size=4)))
        elements = draw(st.sampled_from([elements, elements[:-1], elements + b"\x00"]))
        return pb.MatchServerMessage(evaluated=pb.ElementBatch(seq=draw(st.one_of(st.integers(0, 3), U32)), elements=elements))
    if kind == "closed":
        return pb.MatchServerMessage(closed=pb.Closed(
            session_id=draw(st.one_of(st.just(session_id), _bytes_near(16))), transcript_hash=draw(_bytes_near(32)),
            element_count=draw(U64), signature=draw(_bytes_near(64)), signer_key=draw(_bytes_near(32))))
    return pb.MatchServerMessage()


@given(st.data(), st.sampled_from(list(Mode)), st.integers(0, 5))
def test_requester_refuses_hostile_holder_messages_with_a_protocol_error(
    peer: Peer, engine: BatchEngine, data: st.DataObject, mode: Mode, count: int
) -> None:
    """Any sequence of holder messages: the requester ends FAILED with a ProtocolError, or runs on."""
    session = _requester(peer, engine, mode, count)
    session.hello()
    holder_audit_key = data.draw(_bytes_near(32))
    for _ in range(data.draw(st.integers(1, 6))):
        message = data.draw(hostile_server_messages(session.session_id))
        try:
            core = server_message_from_pb(message)
            if isinstance(core, Closed):
                _check_closed(session, core, holder_audit_key)
            session.receive(core)
        except ProtocolError as exc:
            check_protocol_error(exc)
            return
        if session.state is RequesterState.OPEN:
            while session.next_batch() is not None:
                pass
    assert session.state is not RequesterState.FAILED


@given(st.sampled_from(list(Mode)), st.integers(1, 5), st.sampled_from([IDENTITY, b"\xff" * 32, bytes(31) + b"\x80"]))
def test_requester_refuses_invalid_evaluated_elements(
    peer: Peer, engine: BatchEngine, mode: Mode, count: int, bad: bytes
) -> None:
    """An evaluated batch of the right length whose elements are invalid or the identity."""
    session = _requester(peer, engine, mode, count)
    session.hello()
    session.receive(Accept(session.session_id, MAX_BATCH))
    while session.next_batch() is not None:
        pass
    with pytest.raises(ProtocolError) as caught:
        session.receive(EvaluatedBatch(0, bad * min(2, count)))
    assert caught.value.code == "invalid_element"
    check_protocol_error(caught.value)
