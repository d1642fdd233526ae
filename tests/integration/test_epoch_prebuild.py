"""The next epoch built ahead (SPEC.md 2.1): no session is refused at a scheduled key rotation.

Driven by an injected clock: within ``epoch_lead_hours`` of the epoch's end the holder
builds the next key and indexes, unpublished and unused; the first call after the end
switches key, indexes and rotation statement at once (without reading the records file
again). A prebuild a crash interrupted is built again after the restart; one the index
guard refuses is logged and audited, and the epoch's end falls back to a rebuild with
sessions refused ``epoch_ended`` meanwhile.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from pathlib import Path

import grpc
import pytest
from helpers.holder_deployment import (
    HOLDER_ORG,
    Deployment,
    download,
    make_deployment,
)

from blindmatch.core.key_epochs import epoch_ends_at
from blindmatch.core.rotation import Pin, parse_time, verify_statement
from blindmatch.crypto.batch import BatchEngine
from blindmatch.holder import epoch_rotation
from blindmatch.holder.store import load_key_file, next_key_path, prebuilt_dir, read_manifest
from blindmatch.transport.status import reason_from_rpc_error
from blindmatch.v1 import holder_pb2 as pb
from blindmatch.v1 import holder_pb2_grpc as pb_grpc
from blindmatch.vocabulary import Mode

pytestmark = pytest.mark.timeout(120)


def scheduled(tmp_path: Path, epoch_days: int = 30) -> tuple[Deployment, datetime]:
    """A deployment on an ``epoch_days`` schedule with the default lead (a day), and its first epoch's end."""
    dep = make_deployment(tmp_path, records=40)
    text = dep.config_path.read_text()
    dep.config_path.write_text(text.replace(
        'audit_dir = "."\n', f'audit_dir = "."\nepoch_days = {epoch_days}\nrecords = "records.csv"\n'))
    return dep, epoch_ends_at(parse_time(read_manifest(dep.config.index_dir).valid_from), epoch_days)


def events(dep: Deployment, name: str) -> list[dict[str, object]]:
    lines = (dep.root / "audit" / "log.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["event"] == name]


def serve_20(dep: Deployment, stub: pb_grpc.HolderStub, engine: BatchEngine, now: datetime) -> None:
    session, envelope = dep.signed_session(stub, engine, range(20), Mode.MEMBERSHIP, issued_at=now)
    dep.run_match(stub, session, envelope)
    assert session.closed and session.match_count == 20


def test_the_next_epoch_built_ahead_is_served_from_the_boundary_without_a_refusal(
    tmp_path: Path, engine: BatchEngine,
) -> None:
    dep, boundary = scheduled(tmp_path)
    first_key = load_key_file(dep.config.key_file)
    now = [boundary - timedelta(hours=25)]
    with dep.clocked_daemon(engine, now) as (daemon, stub):
        old = stub.GetInfo(pb.GetInfoRequest())
        assert not daemon.rotator.tick() and not prebuilt_dir(dep.config.index_dir).exists()

        now[0] = boundary - timedelta(hours=23)  # within the lead: built, unpublished, unused
        assert not daemon.rotator.tick()
        assert (prebuilt_dir(dep.config.index_dir) / "index.json").exists()
        ahead = read_manifest(prebuilt_dir(dep.config.index_dir))
        assert (ahead.epoch, parse_time(ahead.valid_from), ahead.previous_key_id) == (2, boundary, old.key_id)
        info = stub.GetInfo(pb.GetInfoRequest())
        assert info.key_id == old.key_id and not info.key_rotations
        assert load_key_file(dep.config.key_file).key_id == first_key.key_id
        assert read_manifest(dep.config.index_dir).key_id == old.key_id
        serve_20(dep, stub, engine, now[0])
        assert not events(dep, "key_rotated")

        (dep.root / "records.csv").unlink()  # the switch must not need a rebuild
        now[0] = boundary  # no tick: the first call after the end switches
        info = stub.GetInfo(pb.GetInfoRequest())
        assert info.key_id == ahead.key_id and len(info.key_rotations) == 1
        statement = verify_statement(info.key_rotations[0], Pin(HOLDER_ORG, old.oprf_public_key,
                                                                old.audit_public_key), now[0])
        assert (statement.epoch, statement.valid_from) == (2, boundary)
        assert download(stub, Mode.MEMBERSHIP).header.key_id == ahead.key_id
        serve_20(dep, stub, engine, now[0])
        assert daemon.rotator.tick() is False  # nothing left to do in epoch 2
    assert [e["epoch"] for e in events(dep, "key_rotated")] == [2]
    assert read_manifest(dep.config.index_dir).key_id == ahead.key_id
    assert load_key_file(dep.config.key_file).key_id == ahead.key_id
    assert not prebuilt_dir(dep.config.index_dir).exists() and not next_key_path(dep.config.key_file).exists()


def test_a_prebuild_a_crash_interrupted_is_built_again_after_the_restart(
    tmp_path: Path, engine: BatchEngine,
) -> None:
    dep, boundary = scheduled(tmp_path)
    now = [boundary - timedelta(hours=2)]
    daemon = dep.clocked(engine, now)
    assert daemon.rotator is not None
    daemon.rotator.tick()
    interrupted = read_manifest(prebuilt_dir(dep.config.index_dir))
    daemon.stop(0)
    for f in interrupted.files.values():  # torn, as a crash in the middle of the build leaves it
        f.path.write_bytes(f.path.read_bytes()[:100])
    (prebuilt_dir(dep.config.index_dir) / "index.json").unlink()

    daemon = dep.clocked(engine, now)
    assert not prebuilt_dir(dep.config.index_dir).exists()  # before the schedule's thread builds it again
    with dep.clocked_daemon(engine, now, daemon) as (daemon, stub):
        old = stub.GetInfo(pb.GetInfoRequest())
        serve_20(dep, stub, engine, now[0])  # the current epoch serves meanwhile
        assert not daemon.rotator.tick()
        again = read_manifest(prebuilt_dir(dep.config.index_dir))
        assert again.key_id != interrupted.key_id and again.previous_key_id == old.key_id
        now[0] = boundary + timedelta(seconds=1)
        serve_20(dep, stub, engine, now[0])
        assert stub.GetInfo(pb.GetInfoRequest()).key_id == again.key_id


def test_a_prebuild_the_guard_refuses_is_logged_audited_and_rebuilt_at_the_boundary(
    tmp_path: Path, engine: BatchEngine, caplog: pytest.LogCaptureFixture,
) -> None:
    dep, boundary = scheduled(tmp_path, epoch_days=1)  # lead: a quarter of the epoch, 6 hours
    records = dep.root / "records.csv"
    kept = records.read_text()
    records.write_text(kept.splitlines()[0] + "\n")  # only the header: the guard refuses an empty index
    now = [boundary - timedelta(hours=5)]
    daemon = dep.clocked(engine, now)
    daemon.start()
    try:
        assert daemon.rotator is not None
        with caplog.at_level(logging.ERROR, logger="blindmatch.holder"):
            assert not daemon.rotator.tick()
        assert "were not built ahead" in caplog.text and "refusing to build an empty index" in caplog.text
        refused = events(dep, "epoch_prebuild_refused")
        assert len(refused) == 1 and refused[0]["epoch"] == 2 and "empty index" in str(refused[0]["reason"])
        assert not prebuilt_dir(dep.config.index_dir).exists()
        assert not daemon.rotator.tick() and len(events(dep, "epoch_prebuild_refused")) == 1  # not retried

        now[0] = boundary  # falls back to today's behaviour: refused until the rebuild
        with dep.channel(daemon.port) as ch:
            stub = pb_grpc.HolderStub(ch)
            with pytest.raises(grpc.RpcError) as refusal:
                serve_20(dep, stub, engine, now[0])
            assert reason_from_rpc_error(refusal.value) == "epoch_ended"
            records.write_text(kept)
            assert daemon.rotator.tick()
            serve_20(dep, stub, engine, now[0])
    finally:
        daemon.stop(0)
    assert [e["epoch"] for e in events(dep, "key_rotated")] == [2]


def test_a_switch_that_fails_after_its_commit_is_finished_not_rotated_again(
    tmp_path: Path, engine: BatchEngine, monkeypatch: pytest.MonkeyPatch,
) -> None:
    dep, boundary = scheduled(tmp_path)
    now = [boundary - timedelta(hours=1)]
    daemon = dep.clocked(engine, now)
    try:
        assert daemon.rotator is not None
        old_key = daemon.runtime.key
        daemon.rotator.tick()
        ahead = read_manifest(prebuilt_dir(dep.config.index_dir))
        real = epoch_rotation.publish_statement
        calls = []

        def failing_once(*args: object, **kwargs: object) -> bytes | None:
            calls.append(1)
            if len(calls) == 1:
                raise OSError(28, "No space left on device")
            return real(*args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(epoch_rotation, "publish_statement", failing_once)
        now[0] = boundary
        assert daemon.runtime.serving()[0] is old_key  # committed on disk, not yet served
        assert read_manifest(dep.config.index_dir).key_id == ahead.key_id
        assert daemon.rotator.tick()
        key, indexes, rotations = daemon.runtime.serving()
        assert key.key_id == ahead.key_id == indexes.manifest.key_id and indexes.manifest.epoch == 2
        assert len(rotations) == 1
    finally:
        daemon.stop(0)
    assert [e["epoch"] for e in events(dep, "key_rotated")] == [2]
