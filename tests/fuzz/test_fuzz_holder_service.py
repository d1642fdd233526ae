"""The holder daemon's Match call fed hostile bytes and messages over real mutual TLS.

Whatever a requester sends, the holder must answer with a status that says what was
wrong (INVALID_ARGUMENT, FAILED_PRECONDITION, UNAUTHENTICATED, ...) and a reason code,
never INTERNAL or UNKNOWN (which mean a holder bug), and must keep serving.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from helpers.holder_deployment import Deployment, make_deployment
from hypothesis import given, settings
from hypothesis import strategies as st

from blindmatch.crypto.batch import BatchEngine
from blindmatch.holder.service import HolderDaemon
from blindmatch.transport.status import reason_from_rpc_error
from blindmatch.v1 import holder_pb2 as pb
from blindmatch.v1 import holder_pb2_grpc as pb_grpc

pytestmark = pytest.mark.fuzz

MATCH = "/blindmatch.v1.Holder/Match"
HOLDER_BUGS = (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN)


@pytest.fixture(scope="module")
def holder(engine: BatchEngine) -> Iterator[tuple[Deployment, HolderDaemon, pb.HolderInfo]]:
    with tempfile.TemporaryDirectory() as tmp:
        dep = make_deployment(Path(tmp), records=20)
        with dep.running(engine) as daemon, dep.channel(daemon.port) as ch:
            info = pb_grpc.HolderStub(ch).GetInfo(pb.GetInfoRequest(), timeout=10)
            yield dep, daemon, info


def _call(holder: tuple[Deployment, HolderDaemon, pb.HolderInfo], messages: list[bytes]) -> grpc.RpcError:
    dep, daemon, _ = holder
    with dep.channel(daemon.port) as ch:
        raw = ch.stream_stream(MATCH, request_serializer=None, response_deserializer=None)
        with pytest.raises(grpc.RpcError) as info:
            list(raw(iter(messages), timeout=20))
        pb_grpc.HolderStub(ch).GetInfo(pb.GetInfoRequest(), timeout=10)  # still serving
    return info.value


@st.composite
def hostile_hellos(draw: st.DrawFn, info: pb.HolderInfo) -> bytes:
    digests = [i.digest for i in info.indexes]
    hello = pb.Hello(
        protocol_version=draw(st.sampled_from([info.protocol_version, 0, 2, 2**32 - 1])),
        session_id=draw(st.one_of(st.binary(min_size=16, max_size=16), st.binary(max_size=70))),
        mode=draw(st.sampled_from([pb.MODE_MEMBERSHIP, pb.MODE_CARDINALITY, pb.MODE_UNSPECIFIED, 7])),
        key_id=draw(st.sampled_from([info.key_id, b"", bytes(32)])),
        schema_fingerprint=draw(st.sampled_from([info.schema_fingerprint, b"", bytes(32)])),
        index_digest=draw(st.sampled_from([*digests, b"", bytes(32)])),
        element_count=draw(st.one_of(st.integers(0, 4), st.sampled_from([2**24, 2**64 - 1]))),
        batch_size=draw(st.sampled_from([0, 1, 2, 64, 65, 2**32 - 1])),
        batch_digests=draw(st.lists(st.sampled_from([bytes(32), b"\x01" * 32, b"", b"\x02" * 33]), max_size=4)),
        authorization=draw(st.one_of(st.binary(max_size=200), st.just(b""))),
    )
    return pb.MatchClientMessage(hello=hello).SerializeToString()


@settings(max_examples=25)  # each example is a full mTLS call
@given(st.data())
def test_hostile_hellos_get_a_status_that_names_the_problem(
    holder: tuple[Deployment, HolderDaemon, pb.HolderInfo], data: st.DataObject
) -> None:
    messages = [data.draw(hostile_hellos(holder[2]))]
    messages += data.draw(st.lists(st.sampled_from([
        pb.MatchClientMessage(blinded=pb.ElementBatch(seq=0, elements=bytes(32))).SerializeToString(),
        pb.MatchClientMessage(close=pb.Close(session_id=bytes(16))).SerializeToString(),
        pb.MatchClientMessage().SerializeToString(),
    ]), max_size=2))
    error = _call(holder, messages)
    assert error.code() not in HOLDER_BUGS, error.details()
    assert reason_from_rpc_error(error), f"{error.code().name} without a blindmatch reason"


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


@st.composite
def parseable_garbage(draw: st.DrawFn) -> bytes:
    """A MatchClientMessage of any kind with random contents, plus unknown fields: it parses."""
    base = draw(st.sampled_from([
        pb.MatchClientMessage(),
        pb.MatchClientMessage(hello=pb.Hello(session_id=draw(st.binary(max_size=40)), batch_size=draw(st.integers(0, 9)))),
        pb.MatchClientMessage(blinded=pb.ElementBatch(seq=draw(st.integers(0, 2**32 - 1)), elements=draw(st.binary(max_size=70)))),
        pb.MatchClientMessage(close=pb.Close(session_id=draw(st.binary(max_size=20)), signature=draw(st.binary(max_size=70)))),
    ])).SerializeToString()
    unknown = b"".join(_varint(number << 3 | 2) + _varint(len(payload)) + payload
                       for number, payload in draw(st.lists(st.tuples(st.integers(4, 2**20), st.binary(max_size=20)), max_size=3)))
    return base + unknown


@settings(max_examples=25)
@given(parseable_garbage())
def test_parseable_garbage_is_a_protocol_error(holder: tuple[Deployment, HolderDaemon, pb.HolderInfo], raw: bytes) -> None:
    """Bytes that parse as a MatchClientMessage, whatever they hold: refused with a reason, not INTERNAL."""
    pb.MatchClientMessage.FromString(raw)
    error = _call(holder, [raw])
    assert error.code() not in HOLDER_BUGS, error.details()
    assert reason_from_rpc_error(error)


def test_undecodable_bytes_are_invalid_argument_with_a_reason(
    holder: tuple[Deployment, HolderDaemon, pb.HolderInfo],
) -> None:
    error = _call(holder, [b"\xff\xff\xff\xff garbage, not a protobuf"])
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, f"{error.code().name}: {error.details()}"
    assert reason_from_rpc_error(error) == "bad_request"
