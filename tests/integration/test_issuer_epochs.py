"""Issuer epochs enforced by the holder and by the requester, not only by the requester's clock.

The holder's index records the issuer epoch it was built for. Built here with the
issuer's clock set to another month, it stands for a holder that rebuilt for the next
epoch (tokens of the previous epoch are refused before anything is sent) and for a
holder that did not rebuild in time (its index's epoch has ended: it serves it no more).
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest

from blindmatch import PROTOCOL_VERSION
from blindmatch.audit import AuditLog
from blindmatch.core.index import EncryptedIndex
from blindmatch.core.messages import Hello, batch_digest, blinded_commitment
from blindmatch.crypto.batch import BatchEngine
from blindmatch.holder.config import load_holder_config
from blindmatch.holder.index_build import build_index
from blindmatch.holder.service import HolderDaemon
from blindmatch.holder.store import read_manifest
from blindmatch.holder.tokens import IssuerTokens
from blindmatch.issuer.config import IssuerConfig
from blindmatch.issuer.epochs import Epoch
from blindmatch.issuer.evaluation import BlindEvaluator
from blindmatch.issuer.issue import issue_tokens
from blindmatch.pilot import synthetic
from blindmatch.pilot.workspace import Workspace, create_workspace
from blindmatch.policy import SessionRequest, sign_request
from blindmatch.policy.keys import load_official_key
from blindmatch.requester.config import EligibilityConfig, load_requester_config
from blindmatch.requester.jobs import JobStore
from blindmatch.requester.runner import JobRunner
from blindmatch.transport.status import reason_from_rpc_error
from blindmatch.transport.wire import MODE_TO_PB, client_message_to_pb
from blindmatch.v1 import holder_pb2 as pb
from blindmatch.v1 import holder_pb2_grpc as pb_grpc
from blindmatch.vocabulary import Mode
from tests.helpers.holder_deployment import MatchClient
from tests.helpers.issuer_setup import make_issuer, write_orders

pytestmark = pytest.mark.timeout(240)
HOLDER_RECORDS = 80
NOW = datetime.now(UTC)
CURRENT = Epoch.containing(NOW)
NEXT = Epoch.containing(CURRENT.expires + timedelta(days=1))
PREVIOUS = Epoch.containing(CURRENT.not_before - timedelta(days=1))


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, IssuerConfig]:
    root = tmp_path_factory.mktemp("epochs")
    ws = create_workspace(root, holder_records=HOLDER_RECORDS, queries=10, matching={"batch_size": 16, "window": 2})
    organisation = load_holder_config(ws.holder_config).organisation
    return ws, make_issuer(root / "issuer", {organisation: HOLDER_RECORDS * 2})


def _build_for(ws: Workspace, issuer: IssuerConfig, engine: BatchEngine, epoch: Epoch) -> None:
    """The holder's index over tokens of ``epoch`` (the issuer's clock set inside it)."""
    config = load_holder_config(ws.holder_config)
    when = epoch.not_before + timedelta(days=2)
    evaluator = BlindEvaluator(issuer, engine)
    try:
        _, pk = evaluator.public_key(when)
        tokens = IssuerTokens(lambda b: evaluator.evaluate(config.organisation, b, epoch.name, now=when),
                              pk, epoch, engine, batch_elements=256)
        build_index(ws.records, config, progress=False, engine=engine, tokens=tokens)
    finally:
        evaluator.close()
    stamp = read_manifest(config.index_dir).issuer_epoch
    assert stamp is not None and (stamp.name, stamp.expires) == (epoch.name, epoch.expires)


@contextmanager
def _serving(ws: Workspace, engine: BatchEngine) -> Iterator[pb_grpc.HolderStub]:
    daemon = HolderDaemon.from_config(load_holder_config(ws.holder_config), engine=engine)
    daemon.start()
    holder = load_requester_config(ws.requester_config).holder
    credentials = grpc.ssl_channel_credentials(holder.ca_cert.read_bytes(), holder.key.read_bytes(),
                                               holder.cert.read_bytes())
    options = [("grpc.ssl_target_name_override", holder.server_name)] if holder.server_name else []
    try:
        with grpc.secure_channel(f"127.0.0.1:{daemon.port}", credentials, options) as channel:
            yield pb_grpc.HolderStub(channel)
    finally:
        daemon.stop(0)


def _orders(tmp_path: Path, issuer: IssuerConfig) -> tuple[Path, Path]:
    queries, tokens = tmp_path / "orders.csv", tmp_path / "tokens.txt"
    people = synthetic.generate_people(4, 2025)  # the holder's first records
    write_orders(queries, [{"name": p["name"], "address": p["address"], "order_date": "2024-01-02"} for p in people])
    assert issue_tokens(queries, issuer, tokens).issued == 4  # tokens of the current epoch
    return queries, tokens


def _run_job(ws: Workspace, issuer: IssuerConfig, queries: Path, tokens: Path, out: Path) -> tuple[str, str, bool]:
    """``(state, error, any session)`` of a requester job on ``tokens``."""
    config = load_requester_config(ws.requester_config)
    config = dataclasses.replace(config, eligibility=EligibilityConfig(issuer.signing_key.with_name("issuer.key.pub"),
                                                                       tokens))
    config.state_dir.mkdir(parents=True, exist_ok=True)
    engine = BatchEngine()
    try:
        with AuditLog.open(config.audit_dir, config.audit_origin) as audit:
            runner = JobRunner(config, JobStore(config.store_path), audit, engine)
            job, _ = runner.submit(queries, out, Mode.MEMBERSHIP)
            outcome = runner.run(job.id)
            return outcome.exit_state, outcome.job.error or "", runner.store.has_sessions(job.id)
    finally:
        engine.close()


def _download_error(stub: pb_grpc.HolderStub, issuer_epoch: str) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        list(stub.DownloadIndex(pb.DownloadIndexRequest(kind=MODE_TO_PB[Mode.MEMBERSHIP], issuer_epoch=issuer_epoch)))
    return info.value


def test_tokens_of_the_previous_epoch_against_a_current_index(setup: tuple[Workspace, IssuerConfig],
                                                              engine: BatchEngine, tmp_path: Path) -> None:
    """The holder rebuilt for the next epoch; the requester (its clock a little behind) holds this epoch's tokens."""
    ws, issuer = setup
    _build_for(ws, issuer, engine, NEXT)
    queries, tokens = _orders(tmp_path, issuer)
    with _serving(ws, engine) as stub:
        assert stub.GetInfo(pb.GetInfoRequest()).issuer_epoch == NEXT.name
        error = _download_error(stub, CURRENT.name)  # what a requester that skipped its own check gets
        assert error.code() is grpc.StatusCode.FAILED_PRECONDITION
        assert reason_from_rpc_error(error) == "issuer_epoch_mismatch"
        assert CURRENT.name in error.details() and NEXT.name in error.details()
        served = list(stub.DownloadIndex(pb.DownloadIndexRequest(kind=MODE_TO_PB[Mode.MEMBERSHIP],
                                                                 issuer_epoch=NEXT.name)))
        assert served[-1].digest
        state, message, sent = _run_job(ws, issuer, queries, tokens, tmp_path / "r.csv")
    assert state == "refused" and not sent  # nothing was sent: no session was opened
    assert str(tokens) in message and CURRENT.name in message and NEXT.name in message
    assert "issuer_epoch_mismatch" in message
    assert not list(load_requester_config(ws.requester_config).index_dir.glob("*.bmidx"))  # nor downloaded


def _hello_on_disk_index(ws: Workspace) -> Hello:
    """A well-formed, signed Hello for the committed membership index, read from the holder's disk."""
    config = load_holder_config(ws.holder_config)
    requester = load_requester_config(ws.requester_config)
    files = read_manifest(config.index_dir).for_organisation(requester.organisation)
    index = EncryptedIndex.parse(files[Mode.MEMBERSHIP].path.read_bytes())
    session_id, issued = secrets.token_bytes(16), datetime.now(UTC).replace(microsecond=0)
    batches = [secrets.token_bytes(32)]
    digests = tuple(batch_digest(b) for b in batches)
    request = SessionRequest(
        organisation=requester.organisation, official=requester.official.name, mode=Mode.MEMBERSHIP.value,
        record_count=1, held_back=0, legal_basis=requester.official.legal_basis, nonce=secrets.token_bytes(16),
        issued_at=issued, expires_at=issued + timedelta(minutes=5), session_id=session_id,
        key_id=index.header.key_id, index_digest=index.digest, blinded_commitment=blinded_commitment(1, digests))
    official = load_official_key(ws.officials_dir / "alice.key", ws.passphrase_file.read_bytes().strip())
    envelope = sign_request(request, official)
    return Hello(protocol_version=PROTOCOL_VERSION, session_id=session_id, mode=Mode.MEMBERSHIP,
                 key_id=index.header.key_id, schema_fingerprint=index.header.schema_fingerprint,
                 index_digest=index.digest, element_count=1, batch_size=1, batch_digests=digests,
                 authorization=envelope)


def test_an_index_of_an_ended_epoch_is_served_no_more(setup: tuple[Workspace, IssuerConfig], engine: BatchEngine,
                                                      tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The holder did not rebuild: its index is over last epoch's tokens."""
    ws, issuer = setup
    _build_for(ws, issuer, engine, PREVIOUS)
    queries, tokens = _orders(tmp_path, issuer)
    with caplog.at_level(logging.WARNING, logger="blindmatch.holder"), _serving(ws, engine) as stub:
        assert f"issuer epoch {PREVIOUS.name}, which has ended" in caplog.text  # the operator is told at start
        info = stub.GetInfo(pb.GetInfoRequest())  # still answers, and says which epoch the index is of
        assert (info.issuer_epoch, info.issuer_epoch_expires) == (PREVIOUS.name, CURRENT.not_before.strftime("%Y-%m-%dT%H:%M:%SZ"))
        for asked in ("", PREVIOUS.name):
            error = _download_error(stub, asked)
            assert error.code() is grpc.StatusCode.FAILED_PRECONDITION
            assert reason_from_rpc_error(error) == "issuer_epoch_ended" and PREVIOUS.name in error.details()
        client = MatchClient(stub)
        client.send(client_message_to_pb(_hello_on_disk_index(ws)))
        client.done()
        with pytest.raises(grpc.RpcError) as refused:
            list(client.responses)
        assert refused.value.code() is grpc.StatusCode.FAILED_PRECONDITION
        assert reason_from_rpc_error(refused.value) == "issuer_epoch_ended"
        state, message, sent = _run_job(ws, issuer, queries, tokens, tmp_path / "r.csv")
    # The requester's own check already stops it: its tokens are of this epoch, the index of the last.
    assert state == "refused" and not sent
    assert str(tokens) in message and CURRENT.name in message and PREVIOUS.name in message
