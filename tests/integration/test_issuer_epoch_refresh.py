"""The holder daemon follows the issuer's epochs by itself (SPEC.md 15.6): no refusal at the boundary.

A clocked holder daemon with ``[holder.issuer]`` and ``holder.records`` talks to a live
issuer daemon over mutual TLS whose clock is the same. Within ``epoch_lead_hours`` of the
end of the issuer epoch its index is over, it builds the index over the next epoch's
tokens ahead (the issuer evaluates under the next key from ``evaluate_ahead_hours``
before it starts) and switches at the boundary on the first call. Requester sessions on
tokens of each epoch match before and after. An issuer that cannot be reached is tried
again with a growing delay while the current epoch serves; past the boundary sessions are
refused ``issuer_epoch_ended`` until the rebuild. A key epoch ending at the same instant
is one rebuild; a key rotation within an issuer epoch is not counted twice by the issuer.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from helpers.holder_deployment import (
    HOLDER_ORG,
    Deployment,
    download,
    make_deployment,
    requester_keys,
    requester_session,
)

from blindmatch.crypto import voprf
from blindmatch.crypto.batch import BatchEngine
from blindmatch.holder.index_build import build_index
from blindmatch.holder.store import prebuilt_dir, read_manifest
from blindmatch.holder.tokens import configured_tokens
from blindmatch.issuer.config import IssuerConfig, load_issuer_config
from blindmatch.issuer.epochs import Epoch, epoch_key_pair
from blindmatch.issuer.evaluation import BlindEvaluator
from blindmatch.issuer.keys import read_seed
from blindmatch.issuer.service import IssuerDaemon
from blindmatch.pilot.workspace import free_port
from blindmatch.transport.pki import init_pki, slug
from blindmatch.transport.status import reason_from_rpc_error
from blindmatch.v1 import holder_pb2 as pb
from blindmatch.v1 import holder_pb2_grpc as pb_grpc
from blindmatch.vocabulary import Mode
from tests.helpers.issuer_setup import make_issuer

pytestmark = pytest.mark.timeout(180)
ISSUER_ORG = "County Courts"
RECORDS = 40
CURRENT = Epoch.containing(datetime.now(UTC))
NEXT = Epoch.containing(CURRENT.expires)
BOUNDARY = CURRENT.expires


@dataclass
class Setup:
    dep: Deployment
    issuer: IssuerConfig
    now: list[datetime]
    port: int

    @contextmanager
    def issuer_serving(self, engine: BatchEngine) -> Iterator[IssuerDaemon]:
        """The issuer daemon on its fixed port, on the test's clock."""
        daemon = IssuerDaemon(self.issuer, engine, clock=lambda: self.now[0])
        daemon.start()
        try:
            yield daemon
        finally:
            daemon.stop(0)

    def used(self, engine: BatchEngine, epoch: Epoch) -> int:
        evaluator = BlindEvaluator(self.issuer, engine)
        try:
            return evaluator.used(HOLDER_ORG, epoch)
        finally:
            evaluator.close()

    def session(self, stub: pb_grpc.HolderStub, engine: BatchEngine, epoch: Epoch) -> int:
        """A requester session on tokens of ``epoch`` for 20 of the holder's people; how many matched."""
        sk = epoch_key_pair(read_seed(self.issuer.seed_file), epoch)[0]
        tokens = [voprf.evaluate(sk, key) for key in requester_keys(range(20))]
        index = download(stub, Mode.MEMBERSHIP)
        pk = stub.GetInfo(pb.GetInfoRequest()).oprf_public_key
        session = requester_session(index, tokens, Mode.MEMBERSHIP, engine, oprf_public_key=pk)
        envelope = self.dep.sign_for(session_id=session.session_id, key_id=index.header.key_id,
                                     index_digest=index.digest, commitment=session.blinded_commitment,
                                     count=session.element_count, mode=Mode.MEMBERSHIP, issued_at=self.now[0])
        self.dep.run_match(stub, session, envelope)
        assert session.closed
        return int(session.match_count)

    def events(self, name: str) -> list[dict[str, object]]:
        lines = (self.dep.root / "audit" / "log.jsonl").read_text().splitlines()
        return [e for e in map(json.loads, lines) if e["event"] == name]


def _setup(tmp_path: Path, engine: BatchEngine, now: datetime, epoch_days: int | None = None) -> Setup:
    """A holder over tokens of the issuer epoch at ``now`` (built at ``now``), the daemon rebuilding by itself."""
    dep = make_deployment(tmp_path / "holder", records=RECORDS)
    server = init_pki(dep.pki, [ISSUER_ORG], ["127.0.0.1"])[0]
    make_issuer(tmp_path / "issuer", {HOLDER_ORG: RECORDS})  # no margin: one epoch's worth of evaluations
    port = free_port()
    with (tmp_path / "issuer" / "issuer.toml").open("a") as handle:
        handle.write(f'\n[issuer.tls]\ncert = "{server.server_cert}"\nkey = "{server.server_key}"\n'
                     f'client_ca = "{dep.pki / "ca.crt"}"\n')
    text = (tmp_path / "issuer" / "issuer.toml").read_text()
    (tmp_path / "issuer" / "issuer.toml").write_text(
        text.replace('state_dir = "state"\n', f'state_dir = "state"\nlisten = "127.0.0.1:{port}"\n'))
    client = f"pki/{slug(HOLDER_ORG)}/client"
    schedule = f"epoch_days = {epoch_days}\n" if epoch_days else ""
    text = dep.config_path.read_text().replace('audit_dir = "."\n', f'audit_dir = "."\n{schedule}records = "records.csv"\n')
    dep.config_path.write_text(text + f'\n[holder.issuer]\naddress = "127.0.0.1:{port}"\nca_cert = "pki/ca.crt"\n'
                                      f'cert = "{client}.crt"\nkey = "{client}.key"\n')
    setup = Setup(dep, load_issuer_config(tmp_path / "issuer" / "issuer.toml"), [now], port)
    with setup.issuer_serving(engine), configured_tokens(dep.config) as tokens:
        build_index(dep.root / "records.csv", dep.config, progress=False, engine=engine, tokens=tokens,
                    rotate_key=epoch_days is not None, now=now, audit=True)
    return setup


def test_the_next_issuer_epoch_is_built_ahead_and_served_from_the_boundary(tmp_path: Path, engine: BatchEngine) -> None:
    setup = _setup(tmp_path, engine, BOUNDARY - timedelta(hours=30))
    dep, now = setup.dep, setup.now
    elements = setup.used(engine, CURRENT)
    assert elements > RECORDS
    with setup.issuer_serving(engine), dep.clocked_daemon(engine, now) as (daemon, stub):
        old = stub.GetInfo(pb.GetInfoRequest())
        assert old.issuer_epoch == CURRENT.name
        assert setup.session(stub, engine, CURRENT) == 20
        assert not daemon.rotator.tick() and not prebuilt_dir(dep.config.index_dir).exists()

        now[0] = BOUNDARY - timedelta(hours=23)  # within the default lead of a day: built ahead, not served
        assert not daemon.rotator.tick()
        ahead = read_manifest(prebuilt_dir(dep.config.index_dir))
        assert ahead.issuer_epoch is not None and ahead.issuer_epoch.name == NEXT.name and ahead.key_id == old.key_id
        assert stub.GetInfo(pb.GetInfoRequest()).issuer_epoch == CURRENT.name
        assert setup.session(stub, engine, CURRENT) == 20
        assert setup.used(engine, NEXT) == elements  # the next epoch's own allowance

        now[0] = BOUNDARY  # no tick: the first call after the boundary switches
        info = stub.GetInfo(pb.GetInfoRequest())
        assert (info.issuer_epoch, info.key_id, len(info.key_rotations)) == (NEXT.name, old.key_id, 0)
        assert setup.session(stub, engine, NEXT) == 20
        assert setup.session(stub, engine, CURRENT) == 0  # a token of another epoch matches nothing
        assert daemon.rotator.tick() is False
    assert [e["issuer_epoch"] for e in setup.events("index_built")][-2:] == [NEXT.name] * 2
    assert not setup.events("key_rotated")
    assert (setup.used(engine, CURRENT), setup.used(engine, NEXT)) == (elements, elements)


def test_an_unreachable_issuer_is_retried_and_the_current_epoch_serves_until_it_ends(
    tmp_path: Path, engine: BatchEngine, caplog: pytest.LogCaptureFixture,
) -> None:
    setup = _setup(tmp_path, engine, BOUNDARY - timedelta(hours=30))
    dep, now = setup.dep, setup.now
    caplog.set_level(logging.WARNING, logger="blindmatch.holder")
    now[0] = BOUNDARY - timedelta(hours=20)
    with dep.clocked_daemon(engine, now) as (daemon, stub):  # no issuer: its first tick fails
        daemon.rotator.tick()
        tries = [r for r in caplog.records if "ahead failed" in r.getMessage()]
        assert tries and not prebuilt_dir(dep.config.index_dir).exists()
        assert setup.session(stub, engine, CURRENT) == 20
        daemon.rotator.tick()  # too early for the next try
        assert len([r for r in caplog.records if "ahead failed" in r.getMessage()]) == len(tries)
        now[0] += timedelta(minutes=5)
        daemon.rotator.tick()  # tried again, failed again: the delay doubles
        assert len([r for r in caplog.records if "ahead failed" in r.getMessage()]) == len(tries) + 1

        now[0] = BOUNDARY + timedelta(seconds=1)  # still unreachable at the boundary: refused, as before
        with pytest.raises(grpc.RpcError) as refused:
            setup.session(stub, engine, NEXT)
        assert reason_from_rpc_error(refused.value) == "issuer_epoch_ended"
        with setup.issuer_serving(engine):
            assert daemon.rotator.tick()  # the rebuild once the issuer answers
            assert stub.GetInfo(pb.GetInfoRequest()).issuer_epoch == NEXT.name
            assert setup.session(stub, engine, NEXT) == 20


def test_a_key_epoch_ending_with_the_issuer_epoch_is_one_rebuild(tmp_path: Path, engine: BatchEngine) -> None:
    """Daily key epochs end with every issuer epoch, at midnight UTC: one build ahead rotates the key and
    takes the next issuer epoch."""
    setup = _setup(tmp_path, engine, BOUNDARY - timedelta(hours=8), epoch_days=1)
    dep, now = setup.dep, setup.now
    with setup.issuer_serving(engine), dep.clocked_daemon(engine, now) as (daemon, stub):
        old = stub.GetInfo(pb.GetInfoRequest())
        now[0] = BOUNDARY - timedelta(hours=5)  # within the lead of a quarter of the day
        assert not daemon.rotator.tick()
        ahead = read_manifest(prebuilt_dir(dep.config.index_dir))
        assert ahead.issuer_epoch is not None and ahead.issuer_epoch.name == NEXT.name
        assert ahead.previous_key_id == old.key_id
        now[0] = BOUNDARY
        info = stub.GetInfo(pb.GetInfoRequest())
        assert info.issuer_epoch == NEXT.name and info.key_id == ahead.key_id
        assert len(info.key_rotations) == len(old.key_rotations) + 1
        assert setup.session(stub, engine, NEXT) == 20
    assert len(setup.events("key_rotated")) == 2  # the setup's rotation, then this one


def test_a_key_rotation_within_an_issuer_epoch_is_not_counted_twice(tmp_path: Path, engine: BatchEngine) -> None:
    """The rebuild under the new key resends each batch with the blinds it was sent with in the epoch: the
    issuer answers again without counting it (its allowance has no margin here, so counting would refuse)."""
    start = CURRENT.not_before + timedelta(days=3, hours=20)
    setup = _setup(tmp_path, engine, start, epoch_days=1)
    dep, now = setup.dep, setup.now
    elements = setup.used(engine, CURRENT)
    with setup.issuer_serving(engine), dep.clocked_daemon(engine, now) as (daemon, stub):
        old = stub.GetInfo(pb.GetInfoRequest())
        now[0] = start + timedelta(hours=2)  # 2 h before the key's day ends; the issuer epoch goes on
        daemon.rotator.tick()
        now[0] = start + timedelta(hours=4)
        info = stub.GetInfo(pb.GetInfoRequest())
        assert info.key_id != old.key_id and info.issuer_epoch == CURRENT.name
        assert setup.session(stub, engine, CURRENT) == 20
    assert setup.used(engine, CURRENT) == elements
    lines = (setup.issuer.state_dir / "audit" / "log.jsonl").read_text().splitlines()
    assert any(json.loads(line)["event"] == "blind_evaluation_repeated" for line in lines)


def test_a_build_ahead_lost_in_a_restart_is_built_again_without_being_counted_again(
    tmp_path: Path, engine: BatchEngine,
) -> None:
    setup = _setup(tmp_path, engine, BOUNDARY - timedelta(hours=30))
    dep, now = setup.dep, setup.now
    now[0] = BOUNDARY - timedelta(hours=10)
    with setup.issuer_serving(engine):
        with dep.clocked_daemon(engine, now) as (daemon, _stub):
            daemon.rotator.tick()
            assert prebuilt_dir(dep.config.index_dir).exists()
        counted = setup.used(engine, NEXT)
        assert counted > RECORDS
        with dep.clocked_daemon(engine, now) as (daemon, stub):  # the restart drops the unswitched build ahead
            daemon.rotator.tick()
            again = read_manifest(prebuilt_dir(dep.config.index_dir)).issuer_epoch
            assert again is not None and again.name == NEXT.name
            now[0] = BOUNDARY
            assert setup.session(stub, engine, NEXT) == 20
    assert setup.used(engine, NEXT) == counted  # the same blinded batches again: answered, not counted
