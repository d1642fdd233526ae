"""The holder's gRPC service against a real in-process server with mutual TLS."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from helpers.holder_deployment import (
    CARDINALITY_OFFICIAL,
    HOLDER_ORG,
    OFFICIAL,
    OTHER_OFFICIAL,
    OTHER_ORG,
    REQUESTER_ORG,
    TINY_OFFICIAL,
    Deployment,
    MatchClient,
    download,
    make_deployment,
    requester_keys,
    requester_session,
)

from blindmatch import PROTOCOL_VERSION
from blindmatch.audit.keys import verify_transcript_signature
from blindmatch.audit.peer_checkpoints import read_peer_checkpoints, verify_peer_note
from blindmatch.core.holder import HolderSession
from blindmatch.core.messages import Hello, batch_digest, blinded_commitment
from blindmatch.crypto.batch import BatchEngine
from blindmatch.holder.service import (
    INTERNAL_ERROR_MESSAGE,
    HolderDaemon,
)
from blindmatch.holder.store import load_key_file
from blindmatch.policy import BudgetStore, SessionRequest, sign_request
from blindmatch.transport.pki import init_pki
from blindmatch.transport.status import reason_from_rpc_error
from blindmatch.transport.wire import MODE_TO_PB, client_message_to_pb
from blindmatch.v1 import holder_pb2 as pb
from blindmatch.v1 import holder_pb2_grpc as pb_grpc
from blindmatch.vocabulary import Mode

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    return make_deployment(tmp_path_factory.mktemp("holder"), records=200)


@pytest.fixture(scope="module")
def daemon(deployment: Deployment, engine: BatchEngine) -> Iterator[HolderDaemon]:
    with deployment.running(engine) as d:
        yield d


@pytest.fixture
def stub(deployment: Deployment, daemon: HolderDaemon) -> Iterator[pb_grpc.HolderStub]:
    with deployment.channel(daemon.port) as ch:
        yield pb_grpc.HolderStub(ch)


def audit_events(dep: Deployment) -> list[dict[str, object]]:
    return [json.loads(line) for line in (dep.root / "audit" / "log.jsonl").read_text().splitlines()]


def assert_alive(stub: pb_grpc.HolderStub) -> None:
    assert stub.GetInfo(pb.GetInfoRequest()).protocol_version == PROTOCOL_VERSION


def failing_hello(dep: Deployment, stub: pb_grpc.HolderStub, hello: Hello, batches: list[bytes]) -> grpc.RpcError:
    """Send ``hello`` then ``batches`` raw; returns the call's error."""
    client = MatchClient(stub)
    client.send(client_message_to_pb(hello))
    with pytest.raises(grpc.RpcError) as info:
        for raw in client.responses:
            if raw.WhichOneof("message") == "accept":
                for seq, elements in enumerate(batches):
                    client.send(pb.MatchClientMessage(blinded=pb.ElementBatch(seq=seq, elements=elements)))
    client.done()
    return info.value


def raw_hello(dep: Deployment, stub: pb_grpc.HolderStub, batches: list[bytes], batch_size: int,
              **changes: object) -> Hello:
    """A signed Hello committing to ``batches`` as given (possibly invalid) elements."""
    index = download(stub, Mode.MEMBERSHIP)
    count = sum(len(b) for b in batches) // 32
    digests = tuple(batch_digest(b) for b in batches)
    session_id = secrets.token_bytes(16)
    fields: dict[str, object] = dict(
        protocol_version=PROTOCOL_VERSION, session_id=session_id, mode=Mode.MEMBERSHIP, key_id=index.header.key_id,
        schema_fingerprint=index.header.schema_fingerprint, index_digest=index.digest, element_count=count,
        batch_size=batch_size, batch_digests=digests,
    )
    fields.update(changes)
    envelope = dep.sign_for(session_id=session_id, key_id=index.header.key_id, index_digest=index.digest,
                        commitment=blinded_commitment(count, digests), count=count, mode=Mode.MEMBERSHIP)
    return Hello(authorization=envelope, **fields)  # type: ignore[arg-type]


def test_get_info(deployment: Deployment, daemon: HolderDaemon, stub: pb_grpc.HolderStub) -> None:
    info = stub.GetInfo(pb.GetInfoRequest(official=OFFICIAL))
    manifest = json.loads((deployment.root / "index" / "index.json").read_text())
    assert info.key_id.hex() == manifest["key_id"]
    assert info.schema_fingerprint.hex() == manifest["schema"]["fingerprint"]
    assert (info.schema_name, info.schema_version) == ("blindmatch-person", 3)
    assert {(i.kind, i.digest.hex(), i.entries) for i in info.indexes} == {
        (MODE_TO_PB[Mode(v["kind"])], v["digest"], v["entries"]) for v in manifest["indexes"]
        if v["organisation"] == REQUESTER_ORG
    }
    assert info.organisation == HOLDER_ORG
    assert info.oprf_public_key == load_key_file(deployment.config.key_file).public_key
    assert (info.limits.max_batch, info.limits.index_chunk_bytes, info.limits.max_message_bytes) == (64, 1024, 24576)
    assert info.budget.session_max_records == 5000
    assert info.budget.official_day_remaining <= 50000 and info.budget.organisation_day_remaining <= 100000
    assert info.audit_public_key == daemon.runtime.audit.public_key


def test_download_full_resumed_and_stale(stub: pb_grpc.HolderStub) -> None:
    info = stub.GetInfo(pb.GetInfoRequest())
    meta = next(i for i in info.indexes if i.kind == pb.MODE_MEMBERSHIP)
    chunks = list(stub.DownloadIndex(pb.DownloadIndexRequest(kind=pb.MODE_MEMBERSHIP, digest=meta.digest)))
    assert len(chunks) > 2 and all(len(c.data) <= 1024 for c in chunks)
    assert [c.digest for c in chunks[:-1]] == [b""] * (len(chunks) - 1) and chunks[-1].digest == meta.digest
    full = b"".join(c.data for c in chunks)
    assert len(full) == meta.size_bytes == chunks[0].total_bytes and hashlib.sha256(full).digest() == meta.digest

    offset = 1500  # not on a chunk boundary: resumption is by byte
    resumed = list(stub.DownloadIndex(pb.DownloadIndexRequest(kind=pb.MODE_MEMBERSHIP, digest=meta.digest, offset=offset)))
    assert resumed[0].offset == offset and full[:offset] + b"".join(c.data for c in resumed) == full

    stale = hashlib.sha256(b"yesterday's index").digest()
    with pytest.raises(grpc.RpcError) as info_err:
        list(stub.DownloadIndex(pb.DownloadIndexRequest(kind=pb.MODE_MEMBERSHIP, digest=stale, offset=offset)))
    assert info_err.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert reason_from_rpc_error(info_err.value) == "index_mismatch"
    with pytest.raises(grpc.RpcError) as info_err:
        list(stub.DownloadIndex(pb.DownloadIndexRequest(kind=pb.MODE_MEMBERSHIP, digest=meta.digest, offset=meta.size_bytes + 1)))
    assert info_err.value.code() is grpc.StatusCode.OUT_OF_RANGE


@pytest.mark.parametrize(("mode", "official"), [(Mode.MEMBERSHIP, OFFICIAL), (Mode.CARDINALITY, CARDINALITY_OFFICIAL)])
def test_match_session(deployment: Deployment, daemon: HolderDaemon, stub: pb_grpc.HolderStub,
                       engine: BatchEngine, mode: Mode, official: str) -> None:
    # Records 150..249: the holder has 0..199, so exactly 150..199 match.
    session, envelope = deployment.signed_session(stub, engine, range(150, 250), mode, official=official)
    closed = deployment.run_match(stub, session, envelope)
    assert session.closed and session.match_count == 50
    if mode is Mode.MEMBERSHIP:
        assert list(session.matched) == [True] * 50 + [False] * 50
    assert verify_transcript_signature(daemon.runtime.audit.public_key, session.session_id,
                                       session.transcript_hash, closed.signature)
    settled = wait_for_event(deployment, "budget_settled", session.session_id)  # written as the call ends
    assert (settled["reserved"], settled["records"]) == (100, 100)  # every element was evaluated
    events = [e for e in audit_events(deployment) if e.get("session_id") == session.session_id.hex()]
    assert [e["event"] for e in events] == (["session_opened", "budget_debited"] + ["batch_evaluated"] * 2
                                            + ["session_closed", "budget_settled"])
    assert events[0]["official"] == official and events[0]["peer"] == "County Court of Example"
    assert events[-2]["peer_signature"] == closed_peer_signature(events[-2])


def closed_peer_signature(event: dict[str, object]) -> str:
    """The requester's signature the holder logged must verify against the logged key."""
    assert verify_transcript_signature(bytes.fromhex(str(event["peer_audit_key"])), bytes.fromhex(str(event["session_id"])),
                                       bytes.fromhex(str(event["transcript_hash"])), bytes.fromhex(str(event["peer_signature"])))
    return str(event["peer_signature"])


def test_bad_requester_signature_on_close(deployment: Deployment, stub: pb_grpc.HolderStub, engine: BatchEngine) -> None:
    session, envelope = deployment.signed_session(stub, engine, range(10), Mode.MEMBERSHIP)
    stranger = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    with pytest.raises(grpc.RpcError) as info:
        deployment.run_match(stub, session, envelope, announced_key=stranger)
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT and reason_from_rpc_error(info.value) == "bad_request"
    assert "signature" in info.value.details()
    closed = [e for e in audit_events(deployment) if e["event"] == "session_closed" and e["session_id"] == session.session_id.hex()]
    assert closed == []
    assert_alive(stub)


def test_checkpoints_cross_in_close_and_closed(deployment: Deployment, daemon: HolderDaemon,
                                               stub: pb_grpc.HolderStub, engine: BatchEngine) -> None:
    session, envelope = deployment.signed_session(stub, engine, range(10), Mode.MEMBERSHIP)
    closed = deployment.run_match(stub, session, envelope)
    audit = daemon.runtime.audit
    # The Closed's checkpoint is the holder's, and covers its session_closed entry.
    cp = verify_peer_note(closed.checkpoint_note, audit.public_key)
    assert cp.origin == audit.origin
    ids = [(e["event"], e.get("session_id")) for e in audit_events(deployment)]
    assert ids.index(("session_closed", session.session_id.hex())) < cp.size
    # The requester's checkpoint from the Close is kept, as sent (one per closed session).
    notes, torn = read_peer_checkpoints(audit.path)
    assert notes[-1] == deployment.requester_checkpoint().decode() and not torn
    closed_sessions = sum(e["event"] == "session_closed" for e in audit_events(deployment))
    assert len(notes) == closed_sessions


@pytest.mark.parametrize("note", [b"", b"not a note", "\u2014".encode() * 3000])
def test_close_without_a_valid_requester_checkpoint(deployment: Deployment, daemon: HolderDaemon, stub: pb_grpc.HolderStub,
                                                    engine: BatchEngine, note: bytes) -> None:
    session, envelope = deployment.signed_session(stub, engine, range(10), Mode.MEMBERSHIP)
    kept = read_peer_checkpoints(daemon.runtime.audit.path)
    with pytest.raises(grpc.RpcError) as info:
        deployment.run_match(stub, session, envelope, checkpoint_note=note)
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT and reason_from_rpc_error(info.value) == "bad_request"
    assert "the checkpoint in the requester's Close" in info.value.details()
    assert not any(e["event"] == "session_closed" and e["session_id"] == session.session_id.hex()
                   for e in audit_events(deployment))
    assert read_peer_checkpoints(daemon.runtime.audit.path) == kept
    assert_alive(stub)


def test_invalid_group_elements(deployment: Deployment, stub: pb_grpc.HolderStub) -> None:
    bad = [b"\xff" * 32 * 4]  # not canonical ristretto255 encodings, yet committed and signed
    error = failing_hello(deployment, stub, raw_hello(deployment, stub, bad, batch_size=4), bad)
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert reason_from_rpc_error(error) == "invalid_element" and "element 0" in error.details()
    assert_alive(stub)


def test_oversized_batches(deployment: Deployment, stub: pb_grpc.HolderStub) -> None:
    # A Hello asking for batches above max_batch (64).
    batches = [secrets.token_bytes(32) * 65]
    error = failing_hello(deployment, stub, raw_hello(deployment, stub, batches, batch_size=65), batches)
    assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED and reason_from_rpc_error(error) == "limit_exceeded"
    # A message above max_message_bytes (24 KiB) is refused by gRPC itself.
    client = MatchClient(stub)
    client.send(pb.MatchClientMessage(blinded=pb.ElementBatch(seq=0, elements=b"\x00" * 30000)))
    client.done()
    with pytest.raises(grpc.RpcError) as info:
        list(client.responses)
    assert info.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert_alive(stub)


def test_wrong_schema_fingerprint(deployment: Deployment, stub: pb_grpc.HolderStub) -> None:
    batches = [secrets.token_bytes(32)]
    hello = raw_hello(deployment, stub, batches, batch_size=1, schema_fingerprint=hashlib.sha256(b"other schema").digest())
    error = failing_hello(deployment, stub, hello, batches)
    assert error.code() is grpc.StatusCode.FAILED_PRECONDITION and reason_from_rpc_error(error) == "schema_mismatch"
    assert "same schema" in error.details()
    refused = [e for e in audit_events(deployment) if e["event"] == "session_refused" and e["session_id"] == hello.session_id.hex()]
    assert refused and refused[0]["reason"] == "schema_mismatch" and refused[0]["official"] == OFFICIAL


def test_unverified_official_is_not_logged(deployment: Deployment, daemon: HolderDaemon,
                                          stub: pb_grpc.HolderStub) -> None:
    """A peer cannot pin a refusal on a real official by writing their name into a request it signed itself:
    an unverified refusal is only counted, in the period's summary."""
    batches = [secrets.token_bytes(32)]
    genuine = raw_hello(deployment, stub, batches, batch_size=1, schema_fingerprint=hashlib.sha256(b"other schema").digest())
    forged_request = SessionRequest.decode(genuine.authorization[:-64])
    assert forged_request.official == OFFICIAL
    forged = dataclasses.replace(genuine, session_id=forged_request.session_id,
                                 authorization=sign_request(forged_request, Ed25519PrivateKey.generate()))
    error = failing_hello(deployment, stub, forged, batches)
    assert reason_from_rpc_error(error) == "schema_mismatch"
    refused = [e for e in audit_events(deployment) if e["event"] == "session_refused" and e["session_id"] == forged.session_id.hex()]
    assert refused == []
    daemon.runtime.keeper.refusals.flush()
    summary = [e for e in audit_events(deployment) if e["event"] == "refusals_summarised"][-1]
    assert summary["reasons"] == {"schema_mismatch": 1} and summary["refused"] == 1


def test_foreign_ca_and_not_allowed_organisation(deployment: Deployment, daemon: HolderDaemon, tmp_path: Path) -> None:
    init_pki(tmp_path / "rogue", ["County Court of Example"], ["localhost"])
    with deployment.channel(daemon.port, pki=tmp_path / "rogue") as ch, pytest.raises(grpc.RpcError) as info:
        pb_grpc.HolderStub(ch).GetInfo(pb.GetInfoRequest(), timeout=10)
    assert info.value.code() is grpc.StatusCode.UNAVAILABLE
    with deployment.channel(daemon.port, organisation=OTHER_ORG) as ch, pytest.raises(grpc.RpcError) as info:
        pb_grpc.HolderStub(ch).GetInfo(pb.GetInfoRequest(), timeout=10)
    assert info.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert reason_from_rpc_error(info.value) == "organisation_not_allowed"


def test_garbage_bytes_on_match(deployment: Deployment, daemon: HolderDaemon, stub: pb_grpc.HolderStub) -> None:
    with deployment.channel(daemon.port) as ch:
        raw = ch.stream_stream("/blindmatch.v1.Holder/Match", request_serializer=None, response_deserializer=None)
        with pytest.raises(grpc.RpcError) as info:
            list(raw(iter([b"\xff\xff\xff\xff garbage, not a protobuf"]), timeout=10))
    assert info.value.code() in (grpc.StatusCode.INTERNAL, grpc.StatusCode.INVALID_ARGUMENT)
    # A well-formed but empty message is a protocol error, not a crash.
    client = MatchClient(stub)
    client.send(pb.MatchClientMessage())
    client.done()
    with pytest.raises(grpc.RpcError) as info:
        list(client.responses)
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT and reason_from_rpc_error(info.value) == "bad_request"
    assert_alive(stub)


REFUSALS = {
    "unsigned": ("UNAUTHENTICATED", dict(signer=Ed25519PrivateKey.generate())),
    "unknown_official": ("PERMISSION_DENIED", dict(official="Nobody Known", signer=Ed25519PrivateKey.generate())),
    "wrong_organisation": ("PERMISSION_DENIED", dict(official=OTHER_OFFICIAL, organisation=OTHER_ORG)),
    "expired": ("FAILED_PRECONDITION", dict(issued_at=datetime(2024, 1, 1, tzinfo=UTC), lifetime=timedelta(minutes=10))),
    "over_budget": ("RESOURCE_EXHAUSTED", dict(official=TINY_OFFICIAL)),
    "mode_not_allowed": ("PERMISSION_DENIED", dict(mode=Mode.CARDINALITY)),
    # 8 elements: below the default cardinality minimum of 10
    "too_few_records": ("FAILED_PRECONDITION", {"official": CARDINALITY_OFFICIAL, "mode": Mode.CARDINALITY}),
}


@pytest.mark.parametrize("reason", [*REFUSALS, "replayed"])
def test_policy_refusals(deployment: Deployment, stub: pb_grpc.HolderStub, engine: BatchEngine, reason: str) -> None:
    status, overrides = REFUSALS.get(reason, ("ALREADY_EXISTS", {}))
    overrides = dict(overrides)
    mode = overrides.pop("mode", Mode.MEMBERSHIP)
    if reason == "replayed":
        nonce = secrets.token_bytes(16)
        first, envelope = deployment.signed_session(stub, engine, range(8), mode, nonce=nonce)
        deployment.run_match(stub, first, envelope)
        overrides["nonce"] = nonce
    session, envelope = deployment.signed_session(stub, engine, range(8), mode, **overrides)  # type: ignore[arg-type]
    with pytest.raises(grpc.RpcError) as info:
        deployment.run_match(stub, session, envelope)
    assert info.value.code() is grpc.StatusCode[status]
    assert reason_from_rpc_error(info.value) == reason and info.value.details().startswith(f"{reason}: ")
    events = [e for e in audit_events(deployment) if e.get("session_id") == session.session_id.hex()]
    if reason in ("unsigned", "unknown_official"):
        # No verified signature: only counted, in the period's refusals_summarised (SPEC.md 10.6).
        assert events == []
        return
    assert [e["event"] for e in events] == ["session_refused"]  # nothing debited, nothing evaluated
    assert (events[0]["reason"], events[0]["status"]) == (reason, status)
    assert events[0]["official"] == overrides.get("official", OFFICIAL)
    assert_alive(stub)


def test_cardinality_minimum_counts_elements(deployment: Deployment, stub: pb_grpc.HolderStub, engine: BatchEngine) -> None:
    """Ten elements is the smallest cardinality session the default policy grants."""
    session, envelope = deployment.signed_session(stub, engine, range(190, 200), Mode.CARDINALITY,
                                       official=CARDINALITY_OFFICIAL)
    deployment.run_match(stub, session, envelope)
    assert session.element_count == 10 and session.match_count == 10
    session, envelope = deployment.signed_session(stub, engine, range(190, 199), Mode.CARDINALITY,
                                       official=CARDINALITY_OFFICIAL)
    with pytest.raises(grpc.RpcError) as info:
        deployment.run_match(stub, session, envelope)
    assert info.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert info.value.details() == "too_few_records: a cardinality session needs at least 10 elements; this one has 9"


def test_eight_concurrent_sessions(deployment: Deployment, stub: pb_grpc.HolderStub, engine: BatchEngine) -> None:
    prepared = [deployment.signed_session(stub, engine, range(20 * i, 20 * i + 100), Mode.MEMBERSHIP) for i in range(8)]
    results: dict[int, object] = {}
    barrier = threading.Barrier(8)

    def one(i: int) -> None:
        session, envelope = prepared[i]
        try:
            barrier.wait()  # all eight are open on the holder at once
            deployment.run_match(stub, session, envelope)
            results[i] = [bool(x) for x in session.matched]
        except Exception as exc:  # reported below
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(50)
    for i in range(8):
        expected = [20 * i + j < 200 for j in range(100)]
        assert results[i] == expected, f"session {i}: {results[i]!r}"


def wait_for_event(dep: Deployment, event: str, session_id: bytes, timeout: float = 10.0) -> dict[str, object]:
    """The audit entry ``event`` of ``session_id``, once the daemon thread has written it."""
    deadline = time.monotonic() + timeout
    while True:
        found = [e for e in audit_events(dep) if e["event"] == event and e.get("session_id") == session_id.hex()]
        if found or time.monotonic() > deadline:
            assert found, f"no {event} for the session"
            return found[0]
        time.sleep(0.05)


def test_cancelled_session_is_logged_as_failed(deployment: Deployment, stub: pb_grpc.HolderStub, engine: BatchEngine) -> None:
    session, envelope = deployment.signed_session(stub, engine, range(20), Mode.MEMBERSHIP)
    client = MatchClient(stub)
    client.send(client_message_to_pb(session.hello(envelope)))
    assert next(client.responses).WhichOneof("message") == "accept"
    client.responses.cancel()  # the requester goes away mid-session (reserved, nothing evaluated)
    failed = wait_for_event(deployment, "session_failed", session.session_id)
    assert (failed["reason"], failed["status"]) == ("cancelled", "CANCELLED")
    settled = wait_for_event(deployment, "budget_settled", session.session_id)
    assert (settled["reserved"], settled["records"]) == (20, 0)  # what it reserved is given back
    with BudgetStore(deployment.config.budget_db) as store:
        assert next(d.records for d in store.debits() if d.session_id == session.session_id) == 0
    assert_alive(stub)


def test_internal_error_is_logged_and_not_sent(deployment: Deployment, stub: pb_grpc.HolderStub,
                                               monkeypatch: pytest.MonkeyPatch, engine: BatchEngine) -> None:
    def broken(self: HolderSession, batch: object) -> list[object]:
        raise RuntimeError("disk full at /srv/holder/secret-path")

    monkeypatch.setattr(HolderSession, "_on_batch", broken)
    session, envelope = deployment.signed_session(stub, engine, range(20), Mode.MEMBERSHIP)
    with pytest.raises(grpc.RpcError) as info:
        deployment.run_match(stub, session, envelope)
    assert info.value.code() is grpc.StatusCode.INTERNAL and reason_from_rpc_error(info.value) == "internal"
    assert info.value.details() == f"internal: {INTERNAL_ERROR_MESSAGE}" and "secret-path" not in info.value.details()
    failed = wait_for_event(deployment, "session_failed", session.session_id)
    assert (failed["reason"], failed["status"]) == ("internal", "INTERNAL")
    monkeypatch.undo()
    assert_alive(stub)


def test_holder_config_repr_hides_the_key(daemon: HolderDaemon) -> None:
    config = daemon.runtime.holder_config(REQUESTER_ORG)
    assert repr(config.sk) not in repr(config) and "sk=" not in repr(config)


def test_unsigned_hello_flood_is_one_summary(deployment: Deployment, daemon: HolderDaemon, stub: pb_grpc.HolderStub,
                                             engine: BatchEngine) -> None:
    """200 unsigned Hellos grow the log by one summary entry for the period, however fast they come."""
    index = download(stub, Mode.MEMBERSHIP)
    pk = stub.GetInfo(pb.GetInfoRequest()).oprf_public_key
    daemon.runtime.keeper.refusals.flush()
    log_file = deployment.root / "audit" / "log.jsonl"
    before_bytes, before_lines = log_file.stat().st_size, len(log_file.read_text().splitlines())
    for _ in range(200):
        session = requester_session(index, requester_keys(range(1)), Mode.MEMBERSHIP, engine, oprf_public_key=pk)
        envelope = deployment.sign_for(session_id=session.session_id, key_id=index.header.key_id,
                            index_digest=index.digest, commitment=session.blinded_commitment, count=1,
                            mode=Mode.MEMBERSHIP, signer=Ed25519PrivateKey.generate())
        with pytest.raises(grpc.RpcError):
            deployment.run_match(stub, session, envelope)
    assert len(log_file.read_text().splitlines()) == before_lines
    daemon.runtime.keeper.refusals.flush()
    lines = log_file.read_text().splitlines()
    assert len(lines) == before_lines + 1
    assert json.loads(lines[-1])["reasons"] == {"unsigned": 200}
    assert log_file.stat().st_size - before_bytes < 400


def test_index_download_is_audited(deployment: Deployment, daemon: HolderDaemon, stub: pb_grpc.HolderStub) -> None:
    index = download(stub, Mode.MEMBERSHIP)
    entry = [e for e in audit_events(deployment) if e["event"] == "index_downloaded"][-1]
    manifest = daemon.runtime.indexes.manifest
    assert entry["peer"] in daemon.runtime.allowed_organisations
    assert (entry["kind"], entry["digest"], entry["offset"]) == ("membership", index.digest.hex(), 0)
    assert entry["bytes"] == manifest.files[entry["peer"], Mode.MEMBERSHIP].size_bytes
    assert entry["key_id"] == manifest.key_id.hex()


def test_a_download_cancelled_part_way_is_audited_with_what_was_sent(
    deployment: Deployment, daemon: HolderDaemon, stub: pb_grpc.HolderStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    meta = next(i for i in stub.GetInfo(pb.GetInfoRequest()).indexes if i.kind == pb.MODE_MEMBERSHIP)
    indexes, cancelled, reads = daemon.runtime.indexes, threading.Event(), []
    real_read = indexes.read

    def read_until_cancelled(slot: tuple[str, Mode], offset: int, length: int) -> bytes:
        reads.append(offset)
        if len(reads) == 2:  # the whole index fits in gRPC's flow-control window: hold the rest back
            cancelled.wait(10)
        return real_read(slot, offset, length)

    monkeypatch.setattr(indexes, "read", read_until_cancelled)
    before = len(audit_events(deployment))
    call = stub.DownloadIndex(pb.DownloadIndexRequest(kind=pb.MODE_MEMBERSHIP, digest=meta.digest, offset=100))
    first = next(call)
    call.cancel()
    cancelled.set()
    deadline = time.monotonic() + 10
    while not (new := [e for e in audit_events(deployment)[before:] if e["event"] == "index_downloaded"]):
        assert time.monotonic() < deadline, "the cancelled download left no audit entry"
        time.sleep(0.05)
    (entry,) = new
    assert entry["ended"] == "cancelled" and entry["offset"] == 100 and entry["digest"] == meta.digest.hex()
    # Counted: the chunks handed to gRPC (the first, and those gRPC asked for after the cancel before it
    # saw it: how many depends on the machine's load), not the whole index.
    extra = entry["bytes"] - len(first.data)
    assert extra >= 0 and extra % 1024 == 0 and entry["bytes"] < meta.size_bytes - 100
    assert entry["key_id"] == daemon.runtime.indexes.manifest.key_id.hex()
