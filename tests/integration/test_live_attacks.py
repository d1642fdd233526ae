"""Attacks first run by hand against the live demo daemons, kept as tests against a real holder over loopback mTLS."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from helpers.ca_certs import client_cert
from helpers.holder_deployment import HOLDER_ORG, OTHER_ORG, REQUESTER_ORG, Deployment, MatchClient, make_deployment

from blindmatch.audit import AuditLog, load_entries
from blindmatch.audit.keys import sign_transcript
from blindmatch.core.messages import BlindedBatch, Close
from blindmatch.crypto.batch import BatchEngine
from blindmatch.holder import service as holder_service
from blindmatch.holder.index_build import build_index
from blindmatch.holder.service import HolderDaemon
from blindmatch.policy.request import open_envelope
from blindmatch.requester.config import HolderEndpoint
from blindmatch.requester.holder_client import HolderClient, HolderError
from blindmatch.requester.session import run_session
from blindmatch.transport.pki import organisation_of, slug
from blindmatch.transport.status import reason_from_rpc_error
from blindmatch.transport.wire import client_message_to_pb, server_message_from_pb
from blindmatch.v1 import holder_pb2 as pb
from blindmatch.v1 import holder_pb2_grpc as pb_grpc
from blindmatch.vocabulary import Mode


@pytest.fixture(scope="module")
def holder(engine: BatchEngine) -> Iterator[tuple[Deployment, HolderDaemon]]:
    with tempfile.TemporaryDirectory() as tmp:
        dep = make_deployment(Path(tmp), records=20)
        with dep.running(engine) as daemon:
            yield dep, daemon


def _org(name: str) -> x509.NameAttribute:
    return x509.NameAttribute(NameOID.ORGANIZATION_NAME, name)


TWO_ORGANISATIONS = {
    "allowed first": x509.Name([_org(REQUESTER_ORG), _org(OTHER_ORG)]),
    "allowed second": x509.Name([_org(OTHER_ORG), _org(REQUESTER_ORG)]),
    "one multi-valued RDN": x509.Name([x509.RelativeDistinguishedName([_org(REQUESTER_ORG), _org(OTHER_ORG)])]),
}


@pytest.mark.parametrize("subject", TWO_ORGANISATIONS.values(), ids=TWO_ORGANISATIONS.keys())
def test_a_certificate_naming_two_organisations_is_no_allowed_organisation(
    holder: tuple[Deployment, HolderDaemon], tmp_path: Path, subject: x509.Name
) -> None:
    """Found live: the holder took the first O= of the subject, so the same CA-signed certificate
    was the allowed requester or not depending on the order of its attributes."""
    dep, daemon = holder
    certs = client_cert(dep.pki, subject, tmp_path / "two-organisations")
    assert organisation_of((certs / "client.crt").read_bytes()) is None
    credentials = grpc.ssl_channel_credentials((dep.pki / "ca.crt").read_bytes(), (certs / "client.key").read_bytes(),
                                               (certs / "client.crt").read_bytes())
    with grpc.secure_channel(f"127.0.0.1:{daemon.port}", credentials) as ch, pytest.raises(grpc.RpcError) as err:
        pb_grpc.HolderStub(ch).GetInfo(pb.GetInfoRequest(), timeout=10)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert reason_from_rpc_error(err.value) == "organisation_not_allowed"


def test_an_issuer_epoch_the_requester_made_up_is_quoted_short_and_escaped(holder: tuple[Deployment, HolderDaemon]) -> None:
    """Found live: DownloadIndex echoed a requester's 10,000-character issuer_epoch, line breaks included."""
    dep, daemon = holder
    made_up = '2026-12\n{"level": "error"}' + "x" * 10_000
    with dep.channel(daemon.port) as ch, pytest.raises(grpc.RpcError) as err:
        list(pb_grpc.HolderStub(ch).DownloadIndex(pb.DownloadIndexRequest(kind=pb.MODE_MEMBERSHIP, issuer_epoch=made_up),
                                                  timeout=10))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason_from_rpc_error(err.value) == "issuer_epoch_mismatch"
    details = err.value.details() or ""
    assert details.isprintable() and len(details) < 300 and "\\n" in details


AFTER_CLOSE = {
    "a batch": lambda batch, close: client_message_to_pb(batch),
    "a second Close": lambda batch, close: client_message_to_pb(close),
    "an Abort": lambda batch, close: pb.MatchClientMessage(abort=pb.Abort(code="proof_invalid", message="too late")),
}


@pytest.mark.parametrize("late", AFTER_CLOSE.values(), ids=AFTER_CLOSE.keys())
def test_nothing_sent_after_close_turns_a_closed_session_into_a_failed_one(
    holder: tuple[Deployment, HolderDaemon], engine: BatchEngine, late: Callable[[BlindedBatch, Close], pb.MatchClientMessage]
) -> None:
    """Found live: a requester that sent one more message after its Close, once it had the
    Closed, made the holder log ``session_failed`` after the session's ``session_closed``."""
    dep, daemon = holder
    with dep.channel(daemon.port) as ch:
        stub = pb_grpc.HolderStub(ch)
        session, envelope = dep.signed_session(stub, engine, range(3), Mode.MEMBERSHIP)
        client = MatchClient(stub)
        responses = iter(client.responses)
        client.send(client_message_to_pb(session.hello(envelope)))
        session.receive(server_message_from_pb(next(responses)))
        batch = session.next_batch()
        assert batch is not None
        client.send(client_message_to_pb(batch))
        (close,) = session.receive(server_message_from_pb(next(responses))).messages
        assert isinstance(close, Close)
        signature = sign_transcript(dep.requester_audit_key, close.session_id, close.transcript_hash)
        close = replace(close, signature=signature, signer_key=dep.requester_audit_key.public_key().public_bytes_raw(),
                        checkpoint_note=dep.requester_checkpoint())
        client.send(client_message_to_pb(close))
        client.send(late(batch, close))
        assert next(responses).WhichOneof("message") == "closed"
        with pytest.raises(grpc.RpcError) as err:
            next(responses)
        client.done()
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    events = [e["event"] for e in load_entries(dep.config.audit_dir) if e.get("session_id") == session.session_id.hex()]
    assert events[-2:] == ["session_closed", "budget_settled"], events


class _TalksAfterClosed(holder_service.HolderServicer):
    """The real servicer, sending one more evaluated batch after its Closed and ending the call in error."""

    def Match(self, request_iterator, context):  # type: ignore[no-untyped-def]
        for reply in super().Match(request_iterator, context):
            yield reply
            if reply.WhichOneof("message") == "closed":
                yield pb.MatchServerMessage(evaluated=pb.ElementBatch(seq=99))
                context.abort(grpc.StatusCode.INTERNAL, "internal: after Closed")


def test_a_holder_talking_after_its_closed_cannot_unclose_the_requesters_session(
    engine: BatchEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found live: a holder sending anything after its signed Closed made the requester log the
    session failed, though both had signed its transcript, so the two logs no longer reconciled."""
    monkeypatch.setattr(holder_service, "HolderServicer", _TalksAfterClosed)
    dep = make_deployment(tmp_path, records=20)
    with dep.running(engine) as daemon:
        endpoint = _endpoint(dep, daemon)
        with dep.channel(daemon.port) as ch:
            session, envelope = dep.signed_session(pb_grpc.HolderStub(ch), engine, range(3), Mode.MEMBERSHIP)
        with HolderClient(endpoint) as client, AuditLog.open(tmp_path / "requester", "requester/test") as audit:
            info = client.info()
            request, signatures = open_envelope(envelope)
            closed = run_session(client, audit, session, request, envelope, "holder", 4, info.audit_public_key,
                                 lambda _batch: None, [dep.officials[request.official].public_key().public_bytes_raw()])
        assert closed.element_count == 3 and len(signatures) == 1
    events = [e["event"] for e in load_entries(tmp_path / "requester") if e.get("session_id") == session.session_id.hex()]
    assert "session_closed" in events and "session_failed" not in events, events


class _SendsTooMuch(holder_service.HolderServicer):
    """The real servicer, streaming the whole index again after its last chunk (a holder filling the disk)."""

    def DownloadIndex(self, request, context):  # type: ignore[no-untyped-def]
        chunks = list(super().DownloadIndex(request, context))
        yield from chunks
        end = chunks[-1].offset + len(chunks[-1].data)
        for _ in range(20):
            for chunk in chunks:
                yield pb.IndexChunk(offset=end, data=chunk.data, total_bytes=chunk.total_bytes)
                end += len(chunk.data)


def _endpoint(dep: Deployment, daemon: HolderDaemon) -> HolderEndpoint:
    org = dep.pki / slug(REQUESTER_ORG)
    return HolderEndpoint(address=f"127.0.0.1:{daemon.port}", name="holder", organisation=HOLDER_ORG,
                          oprf_public_key=daemon.runtime.key.public_key, audit_public_key=daemon.runtime.audit.public_key,
                          ca_cert=dep.pki / "ca.crt", cert=org / "client.crt", key=org / "client.key", server_name=None,
                          retry_seconds=10, batch_timeout_seconds=10)


def test_a_holder_cannot_fill_the_requesters_disk_with_its_index(
    engine: BatchEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found live: the download wrote whatever the holder streamed, past the size GetInfo announced."""
    monkeypatch.setattr(holder_service, "HolderServicer", _SendsTooMuch)
    dep = make_deployment(tmp_path / "holder", records=20)
    with dep.running(engine) as daemon, HolderClient(_endpoint(dep, daemon)) as client:
        wanted = next(i for i in client.info().indexes if i.kind == pb.MODE_MEMBERSHIP)
        target = tmp_path / "membership.bmidx"
        with pytest.raises(HolderError, match=f"more than the {wanted.size_bytes} bytes GetInfo announced"):
            client.download_index(Mode.MEMBERSHIP, wanted.digest, target, size=wanted.size_bytes)
        assert not target.exists() and not target.with_name(target.name + ".part").exists()
        with pytest.raises(HolderError, match="announces an index of 4611686018427387904 bytes"):
            client.download_index(Mode.MEMBERSHIP, wanted.digest, target, size=2**62)


def test_one_organisation_reading_slowly_cannot_hold_every_download_slot(engine: BatchEngine, tmp_path: Path) -> None:
    """Found live: the per-organisation bound on downloads was the total (4), so one requester
    that opened four downloads and read nothing kept every other organisation from its index."""
    dep = make_deployment(tmp_path, records=1500)
    dep.config_path.write_text(dep.config_path.read_text().replace(
        f'allowed_organisations = ["{REQUESTER_ORG}"]', f'allowed_organisations = ["{REQUESTER_ORG}", "{OTHER_ORG}"]'))
    build_index(tmp_path / "records.csv", dep.config, progress=False)
    total = dep.config.limits.max_concurrent_downloads
    with dep.running(engine) as daemon, dep.channel(daemon.port) as ch, dep.channel(daemon.port, OTHER_ORG) as other:
        stub = pb_grpc.HolderStub(ch)
        held = [stub.DownloadIndex(pb.DownloadIndexRequest(kind=pb.MODE_MEMBERSHIP), timeout=30) for _ in range(total)]
        try:
            refused = [call for call in held if _ends_busy(call)]
            assert len(refused) == 1  # the requester's last call: it may hold all slots but one
            data = b"".join(c.data for c in pb_grpc.HolderStub(other).DownloadIndex(
                pb.DownloadIndexRequest(kind=pb.MODE_MEMBERSHIP), timeout=30))
            assert data  # the other organisation still got its index
        finally:
            for call in held:
                call.cancel()


def _ends_busy(call: Iterator[pb.IndexChunk]) -> bool:
    """Whether a download was refused for want of a slot (the others stall: nobody reads them)."""
    try:
        next(call)
    except grpc.RpcError as exc:
        return reason_from_rpc_error(exc) == "busy"
    return False
