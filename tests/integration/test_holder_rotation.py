"""OPRF key rotation: key and index switch together, survive crashes, and are audited."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import grpc
import pytest
from helpers.holder_deployment import (
    Deployment,
    channel,
    download,
    engine,  # noqa: F401  (module-scoped fixture)
    make_deployment,
    requester_keys,
    requester_session,
    run_match,
    running,
    sign_for,
    signed_session,
)

from blindmatch.cli.main import main
from blindmatch.core.keys import HolderKey
from blindmatch.crypto.batch import BatchEngine
from blindmatch.holder.index_build import IndexBuildError, build_index
from blindmatch.holder.service import HolderDaemon
from blindmatch.holder.store import (
    StoreError,
    load_key_file,
    next_key_path,
    read_manifest,
    retired_key_path,
    write_key_file,
)
from blindmatch.transport.status import reason_from_rpc_error
from blindmatch.v1 import holder_pb2 as pb
from blindmatch.v1 import holder_pb2_grpc as pb_grpc
from blindmatch.vocabulary import Mode

pytestmark = pytest.mark.timeout(60)


def state(dep: Deployment) -> tuple[bytes, bytes, set[bytes]]:
    """(key file's key id, manifest's key id, manifest's index digests)."""
    config = dep.config
    manifest = read_manifest(config.index_dir)
    return load_key_file(config.key_file).key_id, manifest.key_id, {f.digest for f in manifest.files.values()}


def crash_on(monkeypatch: pytest.MonkeyPatch, function: str, target: Path) -> None:
    """Make ``os.<function>`` (link or replace) die like a power cut when it would create ``target``."""
    real = getattr(os, function)

    def crashing(src: object, dst: object) -> None:
        if Path(str(dst)) == target:
            raise KeyboardInterrupt("simulated crash")
        real(src, dst)

    monkeypatch.setattr(os, function, crashing)


def test_cli_rotation_switches_key_and_index_and_is_audited(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dep = make_deployment(tmp_path, records=40)
    old_key, _, old_digests = state(dep)
    old_secret = dep.config.key_file.read_text()

    argv = ["holder", "index", str(tmp_path / "records.csv"), "--config", str(dep.config_path), "--quiet", "--rotate-key"]
    assert main(argv) == 0
    new_key, manifest_key, new_digests = state(dep)
    assert new_key == manifest_key != old_key
    assert new_digests.isdisjoint(old_digests)

    retired = retired_key_path(dep.config.key_file, old_key)
    assert retired.name == f"oprf.key.retired-{old_key.hex()[:16]}"
    assert load_key_file(retired).key_id == old_key and stat.S_IMODE(retired.stat().st_mode) == 0o600
    assert stat.S_IMODE(dep.config.key_file.stat().st_mode) == 0o600
    assert not next_key_path(dep.config.key_file).exists()

    out = capsys.readouterr().out
    assert new_key.hex() in out and str(retired) in out and "retention policy" in out
    assert old_secret.split()[1] not in out and dep.config.key_file.read_text().split()[1] not in out

    events = [json.loads(line) for line in (tmp_path / "audit" / "log.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events] == ["key_rotated", "index_built", "index_built"]
    assert events[0]["key_id"] == new_key.hex()
    assert {bytes.fromhex(e["digest"]) for e in events[1:]} == new_digests
    assert main(["audit", "verify", str(tmp_path)]) == 0


@pytest.mark.parametrize(("crash_point", "loader"), [("link", "serve"), ("replace", "index")])
def test_crash_after_manifest_commit_is_finished_on_next_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: BatchEngine, crash_point: str, loader: str,  # noqa: F811
) -> None:
    dep = make_deployment(tmp_path, records=30)
    config = dep.config
    old_key, _, _ = state(dep)
    # "link" dies before the old key is retired, "replace" after it but before the new key is in place.
    target = retired_key_path(config.key_file, old_key) if crash_point == "link" else config.key_file
    crash_on(monkeypatch, crash_point, target)
    with pytest.raises(KeyboardInterrupt):
        build_index(tmp_path / "records.csv", config, progress=False, rotate_key=True)
    monkeypatch.undo()
    key_file_id, committed, digests = state(dep)
    assert key_file_id == old_key != committed  # the index is committed, the key rename is not
    assert load_key_file(next_key_path(config.key_file)).key_id == committed

    if loader == "serve":
        with running(dep, engine) as daemon, channel(dep, daemon.port) as ch:
            info = pb_grpc.HolderStub(ch).GetInfo(pb.GetInfoRequest())
            assert info.key_id == committed and {i.digest for i in info.indexes} == digests
    else:
        report = build_index(tmp_path / "records.csv", config, progress=False)
        assert report.manifest is not None and report.manifest.key_id == committed
    assert load_key_file(config.key_file).key_id == committed
    assert not next_key_path(config.key_file).exists()
    assert load_key_file(retired_key_path(config.key_file, old_key)).key_id == old_key


def test_crash_before_manifest_commit_keeps_old_key_and_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: BatchEngine,  # noqa: F811
) -> None:
    dep = make_deployment(tmp_path, records=30)
    config = dep.config
    before = state(dep)
    crash_on(monkeypatch, "replace", config.index_dir / "index.json")
    with pytest.raises(KeyboardInterrupt):
        build_index(tmp_path / "records.csv", config, progress=False, rotate_key=True)
    monkeypatch.undo()
    assert state(dep) == before and next_key_path(config.key_file).exists()  # the orphaned new key stays unused
    with running(dep, engine) as daemon, channel(dep, daemon.port) as ch:
        info = pb_grpc.HolderStub(ch).GetInfo(pb.GetInfoRequest())
        assert info.key_id == before[0] and {i.digest for i in info.indexes} == before[2]

    (tmp_path / "bad.csv").write_text("surname,street\nSmith,Main St\n")  # a build that fails outright
    with pytest.raises(IndexBuildError, match="missing column"):
        build_index(tmp_path / "bad.csv", config, progress=False, rotate_key=True)
    assert state(dep) == before and not next_key_path(config.key_file).exists()

    build_index(tmp_path / "records.csv", config, progress=False, rotate_key=True)  # a later rotation still works
    key_file_id, committed, _ = state(dep)
    assert key_file_id == committed != before[0]


def test_mismatched_key_is_refused_naming_both_key_ids(tmp_path: Path, engine: BatchEngine) -> None:  # noqa: F811
    dep = make_deployment(tmp_path, records=10)
    config = dep.config
    built_with = read_manifest(config.index_dir).key_id
    config.key_file.unlink()
    stranger = HolderKey.generate()
    write_key_file(config.key_file, stranger)
    for load in (lambda: HolderDaemon.from_config(config, engine=engine),
                 lambda: build_index(tmp_path / "records.csv", config, progress=False)):
        with pytest.raises(StoreError, match="--rotate-key") as info:
            load()
        message = str(info.value)
        assert stranger.key_id.hex()[:16] in message and built_with.hex()[:16] in message
        assert stranger.sk.hex() not in message
    assert read_manifest(config.index_dir).key_id == built_with  # the refused rebuild changed nothing


def test_requester_matches_after_rotation_and_restart(tmp_path: Path, engine: BatchEngine) -> None:  # noqa: F811
    # The holder has records 0..99; the requester asks for 50..149, so exactly 50..99 match.
    dep = make_deployment(tmp_path, records=100)
    with running(dep, engine) as daemon, channel(dep, daemon.port) as ch:
        stub = pb_grpc.HolderStub(ch)
        old_index = download(stub, Mode.MEMBERSHIP)
        old_pk = stub.GetInfo(pb.GetInfoRequest()).oprf_public_key
        session, envelope = signed_session(dep, stub, engine, range(50, 150), Mode.MEMBERSHIP)
        run_match(dep, stub, session, envelope)
        assert session.match_count == 50

    build_index(tmp_path / "records.csv", dep.config, progress=False, rotate_key=True)

    with running(dep, engine) as daemon, channel(dep, daemon.port) as ch:
        stub = pb_grpc.HolderStub(ch)
        info = stub.GetInfo(pb.GetInfoRequest())
        assert info.key_id != old_index.header.key_id
        assert old_index.digest not in {i.digest for i in info.indexes}

        stale = requester_session(old_index, requester_keys(range(50, 150)), Mode.MEMBERSHIP, engine, oprf_public_key=old_pk)
        stale_envelope = sign_for(dep, session_id=stale.session_id, key_id=old_index.header.key_id,
                                  index_digest=old_index.digest, commitment=stale.blinded_commitment,
                                  count=stale.element_count, mode=Mode.MEMBERSHIP)
        with pytest.raises(grpc.RpcError) as refused:
            run_match(dep, stub, stale, stale_envelope)
        # The old key is named by the rotation statement: its epoch is over (SPEC.md 2.1).
        assert reason_from_rpc_error(refused.value) == "epoch_ended"
        assert "follow its key rotation statement" in (refused.value.details() or "")

        session, envelope = signed_session(dep, stub, engine, range(50, 150), Mode.MEMBERSHIP)
        run_match(dep, stub, session, envelope)
        assert session.closed and session.match_count == 50
