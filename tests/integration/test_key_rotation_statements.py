"""Key rotation announced by a statement signed with the current audit key (SPEC.md 2.1, 2.3).

The requester, pinned to the old key, follows a statement that verifies under its pinned
audit key and chains from its pinned key id, re-pins (stored, audited) and goes on; it
refuses a changed key with a forged, unsigned or unchained statement, or none. The
holder's epoch schedule is driven by an injected clock across an epoch boundary: the
holder refuses the ended epoch, rotates, rebuilds, publishes the statement, and the new
key starts a new lifetime cap.
"""

from __future__ import annotations

import hashlib
import json
import stat
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from helpers.holder_deployment import (
    HOLDER_ORG,
    REQUESTER_ORG,
    Deployment,
    download,
    make_deployment,
    requester_keys,
    requester_session,
)

from blindmatch.audit import AuditLog
from blindmatch.cli.main import main
from blindmatch.core.key_epochs import epoch_ends_at
from blindmatch.core.keys import HolderKey
from blindmatch.core.rotation import (
    Pin,
    RotationStatement,
    parse_statement,
    parse_time,
    sign_statement,
    verify_statement,
)
from blindmatch.crypto.batch import BatchEngine
from blindmatch.holder.index_build import IndexBuildError, build_index
from blindmatch.holder.rotation import published_statements
from blindmatch.holder.service import HolderDaemon
from blindmatch.holder.store import StoreError, load_key_file, read_manifest
from blindmatch.requester.config import HolderEndpoint
from blindmatch.requester.holder_client import HolderClient, HolderNotPinned
from blindmatch.requester.pins import PIN_NAME, PinStore
from blindmatch.transport.pki import slug
from blindmatch.transport.status import reason_from_rpc_error
from blindmatch.v1 import holder_pb2 as pb
from blindmatch.v1 import holder_pb2_grpc as pb_grpc
from blindmatch.vocabulary import Mode

pytestmark = pytest.mark.timeout(120)


def endpoint(dep: Deployment, port: int, oprf_public_key: bytes, audit_public_key: bytes) -> HolderEndpoint:
    client_dir = dep.pki / slug(REQUESTER_ORG)
    return HolderEndpoint(
        address=f"127.0.0.1:{port}", name="holder", organisation=HOLDER_ORG, oprf_public_key=oprf_public_key,
        audit_public_key=audit_public_key, ca_cert=dep.pki / "ca.crt", cert=client_dir / "client.crt",
        key=client_dir / "client.key", server_name=None, retry_seconds=1.0, batch_timeout_seconds=30.0)


def rotate_by_hand(dep: Deployment) -> None:
    argv = ["holder", "index", str(dep.root / "records.csv"), "--config", str(dep.config_path), "--quiet",
            "--rotate-key"]
    assert main(argv) == 0


def events(audit_dir: Path, name: str) -> list[dict[str, object]]:
    lines = (audit_dir / "audit" / "log.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["event"] == name]


def test_a_valid_statement_is_followed_re_pinned_and_audited(tmp_path: Path, engine: BatchEngine) -> None:
    dep = make_deployment(tmp_path / "holder", records=30)
    first_key = load_key_file(dep.config.key_file).public_key
    with dep.running(engine) as daemon:
        audit_key = daemon.runtime.audit.public_key
    rotate_by_hand(dep)
    rotated = events(dep.root, "key_rotated")[-1]
    assert rotated["epoch"] == 2
    state = tmp_path / "requester"
    with dep.running(engine) as daemon, AuditLog.open(tmp_path / "raudit", "requester/test") as audit:
        pinned = endpoint(dep, daemon.port, first_key, audit_key)
        with HolderClient(pinned) as client, pytest.raises(HolderNotPinned, match="is not the pinned"):
            client.info()  # without a pin store the configured pin is all there is: refused as before
        with HolderClient(pinned, pins=PinStore(state, pinned, audit)) as client:
            info = client.info()
        assert client.pin == Pin(HOLDER_ORG, info.oprf_public_key, audit_key, 2)
        assert info.oprf_public_key != first_key and len(info.key_rotations) == 1
        assert rotated["statement"] == hashlib.sha256(info.key_rotations[0]).hexdigest()
        assert stat.S_IMODE((state / PIN_NAME).stat().st_mode) == 0o600
        assert PinStore(state, pinned, None).current() == client.pin  # persisted: the next client starts there
        [entry] = events(tmp_path / "raudit", "holder_repinned")
        assert (entry["previous_key_id"], entry["key_id"], entry["epoch"]) == (
            Pin(HOLDER_ORG, first_key, audit_key).key_id.hex(), info.key_id.hex(), 2)
    rotate_by_hand(dep)  # two rotations: a requester pinned to the first key follows both statements
    with dep.running(engine) as daemon, AuditLog.open(tmp_path / "raudit2", "requester/test") as audit:
        pinned = endpoint(dep, daemon.port, first_key, audit_key)
        with HolderClient(pinned, pins=PinStore(tmp_path / "fresh", pinned, audit)) as client:
            info = client.info()
        assert client.pin.epoch == 3 and len(info.key_rotations) == 2
        assert [e["epoch"] for e in events(tmp_path / "raudit2", "holder_repinned")] == [2, 3]
        # An operator who pins the new key by hand replaces the stored pin.
        by_hand = replace(pinned, oprf_public_key=info.oprf_public_key)
        assert PinStore(state, by_hand, None).current() == Pin(HOLDER_ORG, info.oprf_public_key, audit_key, 0)


def _forged(kind: str, old: Pin, info: pb.HolderInfo, daemon: HolderDaemon) -> tuple[bytes, ...]:
    """What a holder (or someone in its place) might serve instead of a valid statement."""
    valid = info.key_rotations[0]
    origin = daemon.runtime.audit.origin
    s = RotationStatement(origin, HOLDER_ORG, 2, datetime.now(UTC).replace(microsecond=0), old.key_id,
                          info.oprf_public_key, old.audit_public_key)
    if kind == "none":
        return ()
    if kind == "unsigned":
        return (s.body().encode() + b"\n",)
    if kind == "other key":
        thief = Ed25519PrivateKey.generate()
        return (sign_statement(s, [(thief.public_key().public_bytes_raw(), thief.sign)]),)
    if kind == "wrong chain":
        unchained = replace(s, previous_key_id=HolderKey.generate().key_id)
        return (sign_statement(unchained, [(old.audit_public_key, daemon.runtime.audit.sign_note_body)]),)
    assert kind == "tampered"
    return (valid.replace(b"epoch 2", b"epoch 7"),)


@pytest.mark.parametrize("kind", ["none", "unsigned", "other key", "wrong chain", "tampered"])
def test_a_changed_key_without_a_valid_statement_is_refused(
    tmp_path: Path, engine: BatchEngine, kind: str,
) -> None:
    dep = make_deployment(tmp_path / "holder", records=20)
    first_key = load_key_file(dep.config.key_file).public_key
    rotate_by_hand(dep)
    with dep.running(engine) as daemon, AuditLog.open(tmp_path / "raudit", "requester/test") as audit:
        old = Pin(HOLDER_ORG, first_key, daemon.runtime.audit.public_key)
        pinned = endpoint(dep, daemon.port, first_key, old.audit_public_key)
        with dep.channel(daemon.port) as ch:
            info = pb_grpc.HolderStub(ch).GetInfo(pb.GetInfoRequest())
        daemon.runtime.rotations = _forged(kind, old, info, daemon)
        store = PinStore(tmp_path / "requester", pinned, audit)
        with HolderClient(pinned, pins=store) as client, pytest.raises(HolderNotPinned) as refused:
            client.info()
        assert "no valid key rotation statement chains" in str(refused.value)
        assert store.current() == old and not (tmp_path / "requester" / PIN_NAME).exists()
    assert not events(tmp_path / "raudit", "holder_repinned")


def test_the_epoch_schedule_rotates_across_a_boundary_of_the_injected_clock(
    tmp_path: Path, engine: BatchEngine,
) -> None:
    dep = make_deployment(tmp_path, records=40, limits="key_evaluation_cap = 20")
    text = dep.config_path.read_text()
    # No lead time: the rebuild starts at the boundary (test_epoch_prebuild.py builds ahead).
    dep.config_path.write_text(text.replace('audit_dir = "."\n', 'audit_dir = "."\nepoch_days = 30\n'
                                            'records = "records.csv"\nepoch_lead_hours = 0\n'))
    start = parse_time(read_manifest(dep.config.index_dir).valid_from)
    boundary = epoch_ends_at(start, 30)
    now = [start + timedelta(minutes=1)]
    with dep.clocked_daemon(engine, now) as (daemon, stub):
        old = stub.GetInfo(pb.GetInfoRequest())
        old_index = download(stub, Mode.MEMBERSHIP)
        assert not old.key_rotations
        session, envelope = dep.signed_session(stub, engine, range(20), Mode.MEMBERSHIP, issued_at=now[0])
        dep.run_match(stub, session, envelope)  # the whole lifetime cap of the first key
        now[0] = boundary - timedelta(seconds=1)
        assert not daemon.rotator.tick()

        now[0] = boundary  # the epoch is over; the rotation has not run yet
        session, envelope = dep.signed_session(stub, engine, range(1), Mode.MEMBERSHIP, issued_at=now[0])
        with pytest.raises(grpc.RpcError) as refused:
            dep.run_match(stub, session, envelope)
        assert reason_from_rpc_error(refused.value) == "epoch_ended"
        assert f"ended at {boundary.strftime('%Y-%m-%dT%H:%M:%SZ')}" in (refused.value.details() or "")

        assert daemon.rotator.tick()
        info = stub.GetInfo(pb.GetInfoRequest())
        assert info.key_id != old.key_id and len(info.key_rotations) == 1
        statement = verify_statement(info.key_rotations[0], Pin(HOLDER_ORG, old.oprf_public_key,
                                                                old.audit_public_key), now[0])
        assert (statement.epoch, statement.valid_from, statement.oprf_public_key) == (2, boundary,
                                                                                  info.oprf_public_key)
        new_index = download(stub, Mode.MEMBERSHIP)
        assert new_index.digest != old_index.digest and new_index.header.key_id == info.key_id

        stale = requester_session(old_index, requester_keys(range(5)), Mode.MEMBERSHIP, engine,
                                  oprf_public_key=old.oprf_public_key)
        stale_envelope = dep.sign_for(session_id=stale.session_id, key_id=old.key_id,
                                  index_digest=old_index.digest, commitment=stale.blinded_commitment,
                                  count=stale.element_count, mode=Mode.MEMBERSHIP, issued_at=now[0])
        with pytest.raises(grpc.RpcError) as refused:
            dep.run_match(stub, stale, stale_envelope)
        assert reason_from_rpc_error(refused.value) == "epoch_ended"

        # The new key starts a new lifetime cap: 20 more elements are served.
        session, envelope = dep.signed_session(stub, engine, range(20), Mode.MEMBERSHIP, issued_at=now[0])
        dep.run_match(stub, session, envelope)
        assert session.closed and session.match_count == 20
        assert daemon.runtime.key_usage.used(old.key_id) == 20

        now[0] = boundary + timedelta(days=29)
        assert not daemon.rotator.tick()  # a key started on a boundary serves the whole period
        now[0] = boundary + timedelta(days=30)
        assert daemon.rotator.tick()
        assert len(stub.GetInfo(pb.GetInfoRequest()).key_rotations) == 2
    assert [(e["epoch"]) for e in events(dep.root, "key_rotated")] == [2, 3]


def test_a_statement_a_crash_left_unmade_is_made_when_the_holder_starts(
    tmp_path: Path, engine: BatchEngine,
) -> None:
    dep = make_deployment(tmp_path, records=20)
    build_index(dep.root / "records.csv", dep.config, progress=False, rotate_key=True)  # committed, no statement
    assert not published_statements(dep.config.index_dir)
    with dep.running(engine) as daemon:
        first = daemon.runtime.rotations
    with dep.running(engine) as daemon:
        assert daemon.runtime.rotations == first and len(first) == 1  # made once, the same bytes after
    statement, _ = parse_statement(first[0])
    assert statement.key_id == read_manifest(dep.config.index_dir).key_id and statement.epoch == 2


def test_a_failed_scheduled_rebuild_keeps_the_ended_epoch_refused(
    tmp_path: Path, engine: BatchEngine,
) -> None:
    dep = make_deployment(tmp_path, records=20)
    text = dep.config_path.read_text()
    dep.config_path.write_text(text.replace('audit_dir = "."\n', 'audit_dir = "."\nepoch_days = 1\nrecords = "gone.csv"\n'))
    start = parse_time(read_manifest(dep.config.index_dir).valid_from)
    now = [epoch_ends_at(start, 1)]
    daemon = dep.clocked(engine, now)
    try:
        assert daemon.rotator is not None
        with pytest.raises(IndexBuildError, match=r"gone\.csv"):
            daemon.rotator.tick()
        key_id = daemon.runtime.key.key_id
        assert "is rotating its key" in daemon.runtime.holder_config(REQUESTER_ORG).ended_keys[key_id]
        assert read_manifest(dep.config.index_dir).key_id == key_id  # nothing changed
    finally:
        daemon.stop(0)


def test_a_damaged_statements_file_stops_the_holder_naming_it(tmp_path: Path, engine: BatchEngine) -> None:
    dep = make_deployment(tmp_path, records=20)
    rotate_by_hand(dep)
    rotate_by_hand(dep)
    path = dep.config.index_dir / "key-rotations"
    path.write_bytes(path.read_bytes().replace(b"\n\n", b"\nX\n", 1))  # the first block broken, the second intact
    with pytest.raises(StoreError, match="key-rotations is corrupt"):
        HolderDaemon.from_config(dep.config, engine=engine)
