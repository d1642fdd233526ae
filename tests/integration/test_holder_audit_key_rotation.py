"""The holder rotates its audit key alone (SPEC.md 2.4): ``holder rotate-audit-key``, requesters, mid-job.

The requester pinned to the old audit key follows the audit key statement, re-pins
(audited) and goes on; it refuses an announced audit key with no statement, a forged one
or one not signed by the new key. In the middle of a job the job re-pins and finishes, or
without a statement stops with ``holder_not_pinned`` naming the audit key, keeps its
batches, and resumes once the new key is pinned by hand.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import tomli_w
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from helpers.holder_deployment import HOLDER_ORG, Deployment, make_deployment
from helpers.job_runner import job_runner
from helpers.witness_setup import HOLDER_ORIGIN, WitnessSetup, add_sessions, running_witness, write_config

from blindmatch.audit import AuditError, AuditLog, verify_log
from blindmatch.audit.keys import format_verifier_key
from blindmatch.audit.reconcile import reconcile
from blindmatch.cli.main import main
from blindmatch.core.rotation import AuditKeyStatement, Pin, sign_audit_key_statement
from blindmatch.crypto.batch import BatchEngine
from blindmatch.holder.config import load_holder_config
from blindmatch.holder.index_build import build_index
from blindmatch.holder.rotation import rotate_audit_key
from blindmatch.holder.service import HolderDaemon
from blindmatch.holder.store import StoreError, load_key_file
from blindmatch.pilot.workspace import Workspace, create_workspace
from blindmatch.requester.config import load_requester_config
from blindmatch.requester.holder_client import HolderClient, HolderNotPinned
from blindmatch.requester.jobs import JobStore
from blindmatch.requester.pins import PIN_NAME, PinStore
from blindmatch.requester.runner import JobRunner, Progress
from blindmatch.vocabulary import JobState, Mode
from blindmatch.witness import protocol as p
from blindmatch.witness.client import WitnessClient, WitnessSubmitError
from tests.helpers.officials import run_approved
from tests.integration.test_key_change_mid_job import results
from tests.integration.test_key_rotation_statements import endpoint, events

pytestmark = pytest.mark.timeout(240)


def rotate(dep: Deployment, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    capsys.readouterr()
    assert main(["holder", "rotate-audit-key", "--config", str(dep.config_path), "--json"]) == 0
    out = capsys.readouterr().out
    assert "requesters follow it on their next call" in out
    return json.loads(out.strip().splitlines()[-1])


def test_the_command_rotates_and_a_pinned_requester_follows(
    tmp_path: Path, engine: BatchEngine, capsys: pytest.CaptureFixture[str],
) -> None:
    dep = make_deployment(tmp_path / "holder", records=20)
    oprf_key = load_key_file(dep.config.key_file).public_key
    with dep.running(engine) as daemon:
        old = daemon.runtime.audit.public_key
        with pytest.raises(AuditError, match="a running daemon"):
            rotate_audit_key(dep.config)
    done = rotate(dep, capsys)
    assert done["previous_key"] == old.hex() and done["key"] != old.hex()
    new = bytes.fromhex(str(done["key"]))
    assert done["verifier_key"] == format_verifier_key(dep.config.audit_origin, new)
    with dep.running(engine) as daemon, AuditLog.open(tmp_path / "raudit", "requester/test") as audit:
        assert daemon.runtime.audit.public_key == new
        pinned = endpoint(dep, daemon.port, oprf_key, old)
        with HolderClient(pinned) as client, pytest.raises(HolderNotPinned, match="audit key"):
            client.info()  # no pin store: the configured pin is all there is
        store = PinStore(tmp_path / "requester", pinned, audit)
        with HolderClient(pinned, pins=store) as client:
            info = client.info()
        assert client.pin == Pin(HOLDER_ORG, oprf_key, new, 0) == store.current()
        assert len(info.key_rotations) == 1 and info.audit_public_key == new
    [entry] = events(tmp_path / "raudit", "holder_repinned")
    assert entry["audit_public_key"] == new.hex() and entry["key_id"] == entry["previous_key_id"]
    # The holder's log verifies from the old key along the chain, by the CLI too.
    assert verify_log(dep.root, public_key=old).ok
    assert main(["audit", "verify", str(dep.root), "--key", format_verifier_key(dep.config.audit_origin, old)]) == 0
    capsys.readouterr()
    assert main(["holder", "pins", "--config", str(dep.config_path)]) == 0
    assert f'audit_public_key = "{new.hex()}"' in capsys.readouterr().out
    # An OPRF key rotation after it is signed with the new audit key, and a requester pinned
    # before both follows the two statements in turn.
    assert main(["holder", "index", str(dep.root / "records.csv"), "--config", str(dep.config_path), "--quiet",
                 "--rotate-key"]) == 0
    with dep.running(engine) as daemon, AuditLog.open(tmp_path / "raudit2", "requester/test") as audit:
        pinned = endpoint(dep, daemon.port, oprf_key, old)
        with HolderClient(pinned, pins=PinStore(tmp_path / "fresh", pinned, audit)) as client:
            info = client.info()
        assert client.pin == Pin(HOLDER_ORG, info.oprf_public_key, new, 2)
    assert len(events(tmp_path / "raudit2", "holder_repinned")) == 2


def _forged(kind: str, daemon: HolderDaemon, old: bytes, thief: Ed25519PrivateKey) -> tuple[bytes, ...]:
    origin = daemon.runtime.audit.origin
    s = AuditKeyStatement(origin, daemon.runtime.audit.size, old, thief.public_key().public_bytes_raw())
    if kind == "none":
        return ()
    if kind == "signed by the new key only":
        return (sign_audit_key_statement(s, thief.sign, thief.sign),)
    assert kind == "unchained"
    stranger = Ed25519PrivateKey.generate()
    other = AuditKeyStatement(origin, 3, stranger.public_key().public_bytes_raw(), s.audit_public_key)
    return (sign_audit_key_statement(other, stranger.sign, thief.sign),)


@pytest.mark.parametrize("kind", ["none", "signed by the new key only", "unchained"])
def test_an_announced_audit_key_without_a_valid_statement_is_refused(
    tmp_path: Path, engine: BatchEngine, kind: str,
) -> None:
    dep = make_deployment(tmp_path / "holder", records=20)
    oprf_key = load_key_file(dep.config.key_file).public_key
    thief = Ed25519PrivateKey.generate()
    with dep.running(engine) as daemon, AuditLog.open(tmp_path / "raudit", "requester/test") as audit:
        old = daemon.runtime.audit.public_key
        pinned = endpoint(dep, daemon.port, oprf_key, old)
        daemon.runtime.rotations = _forged(kind, daemon, old, thief)
        daemon.runtime.audit.public_key = thief.public_key().public_bytes_raw()  # what GetInfo announces
        try:
            store = PinStore(tmp_path / "requester", pinned, audit)
            with HolderClient(pinned, pins=store) as client, pytest.raises(HolderNotPinned) as refused:
                client.info()
        finally:
            daemon.runtime.audit.public_key = old
        assert "audit key" in str(refused.value) and "no valid key rotation statement chains" in str(refused.value)
        assert store.current() == Pin(HOLDER_ORG, oprf_key, old) and not (tmp_path / "requester" / PIN_NAME).exists()
    assert not events(tmp_path / "raudit", "holder_repinned")


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[tuple[Workspace, HolderDaemon, BatchEngine]]:
    ws = create_workspace(tmp_path / "ws", holder_records=300, queries=40,
                          matching={"batch_size": 8, "session_max_records": 24, "window": 1})
    config = load_holder_config(ws.holder_config)
    build_index(ws.records, config, progress=False)
    engine = BatchEngine(2)
    daemon = HolderDaemon.from_config(config, engine=engine)
    daemon.start()
    yield ws, daemon, engine
    daemon.stop(0)
    engine.close()


def rotate_audit_key_after_first_session(daemon: HolderDaemon, with_statement: bool) -> tuple[list[int], object]:
    """The holder's audit key changes between two sessions of a job, as when it is stopped, rotated and
    restarted: the rotation happens at the first GetInfo after a batch came back."""
    rotated: list[int] = []
    info = daemon.servicer._info

    def rotating_info(request: object, context: object) -> object:
        if rotated == [-1]:
            note = daemon.runtime.audit.rotate_key()
            daemon.runtime.rotations = (*daemon.runtime.rotations, note) if with_statement else ()
            rotated[0] = 1
        return info(request, context)  # type: ignore[arg-type]

    def on_progress(progress: Progress) -> None:
        if progress.phase == "match" and not rotated:
            rotated.append(-1)
    daemon.servicer._info = rotating_info  # type: ignore[method-assign]
    return rotated, on_progress


def test_a_statement_mid_job_re_pins_the_audit_key_and_the_job_finishes(
    workspace: tuple[Workspace, HolderDaemon, BatchEngine], tmp_path: Path,
) -> None:
    ws, daemon, engine = workspace
    old = daemon.runtime.audit.public_key
    with job_runner(ws.requester_config, engine) as runner:
        config = runner.config
        baseline, _ = runner.submit(ws.queries, tmp_path / "baseline.csv", Mode.MEMBERSHIP)
        assert run_approved(ws, runner, baseline.id).job.state == JobState.SUCCEEDED
        rotated, on_progress = rotate_audit_key_after_first_session(daemon, with_statement=True)
        job, _ = runner.submit(ws.queries, tmp_path / "results.csv", Mode.MEMBERSHIP)
        final = run_approved(ws, runner, job.id, on_progress).job  # type: ignore[arg-type]
    assert rotated == [1] and final.state == JobState.SUCCEEDED and final.elements_done == final.preparation.elements_total
    assert results(tmp_path / "results.csv") == results(tmp_path / "baseline.csv")
    [entry] = events(config.audit_dir, "holder_repinned")
    assert entry["audit_public_key"] == daemon.runtime.audit.public_key.hex() != old.hex()
    assert json.loads((config.state_dir / PIN_NAME).read_text())["audit_public_key"] == entry["audit_public_key"]
    # Both logs still verify, the holder's along its chain of keys, and reconcile: the sessions
    # before the rotation carry the retired key's signatures, those after the new key's.
    holder_audit = load_holder_config(ws.holder_config).audit_dir
    assert verify_log(config.audit_dir).ok
    assert verify_log(holder_audit, public_key=old).ok
    reconciled = reconcile(holder_audit, config.audit_dir)
    assert reconciled.ok, reconciled.mismatches
    keys = {e["peer_audit_key"] for e in events(config.audit_dir, "session_closed")}
    assert keys == {old.hex(), daemon.runtime.audit.public_key.hex()}


def test_an_audit_key_change_without_a_statement_stops_the_job_which_resumes_after_a_new_pin(
    workspace: tuple[Workspace, HolderDaemon, BatchEngine], tmp_path: Path,
) -> None:
    ws, daemon, engine = workspace
    config = load_requester_config(ws.requester_config)
    config.state_dir.mkdir(parents=True, exist_ok=True)
    store = JobStore(config.store_path)
    with AuditLog.open(config.audit_dir, config.audit_origin) as audit:
        runner = JobRunner(config, store, audit, engine)
        baseline, _ = runner.submit(ws.queries, tmp_path / "baseline.csv", Mode.MEMBERSHIP)
        assert run_approved(ws, runner, baseline.id).job.state == JobState.SUCCEEDED
        rotated, on_progress = rotate_audit_key_after_first_session(daemon, with_statement=False)
        job, _ = runner.submit(ws.queries, tmp_path / "results.csv", Mode.MEMBERSHIP)
        stopped = run_approved(ws, runner, job.id, on_progress).job  # type: ignore[arg-type]
    assert rotated == [1] and (stopped.state, stopped.reason) == (JobState.FAILED, "holder_not_pinned")
    assert "audit key" in stopped.error and "no valid key rotation statement" in stopped.error
    assert 0 < stopped.elements_done < stopped.preparation.elements_total  # the sessions before the change are kept
    assert not events(config.audit_dir, "holder_repinned") and not (config.state_dir / PIN_NAME).exists()

    # The operator checks the new audit key out of band and pins it by hand.
    doc = tomllib.loads(ws.requester_config.read_text())
    doc["holder"]["audit_public_key"] = daemon.runtime.audit.public_key.hex()
    ws.requester_config.write_text(tomli_w.dumps(doc))
    config = load_requester_config(ws.requester_config)
    with AuditLog.open(config.audit_dir, config.audit_origin) as audit:
        runner = JobRunner(config, store, audit, engine)
        resumed, was_resumed = runner.submit(ws.queries, tmp_path / "results.csv", Mode.MEMBERSHIP)
        assert was_resumed and resumed.id == job.id
        final = run_approved(ws, runner, job.id).job
    assert final.state == JobState.SUCCEEDED and final.elements_done == final.preparation.elements_total
    assert results(tmp_path / "results.csv") == results(tmp_path / "baseline.csv")


def test_a_live_witness_cosigns_the_handover_and_follows_once_its_operator_sets_the_new_key(
    tmp_path: Path, env: WitnessSetup,
) -> None:
    dep = make_deployment(tmp_path / "holder", records=20)
    with running_witness(env.config_path) as witness:
        config = replace(dep.config, audit_dir=env.log_dir, audit_origin=HOLDER_ORIGIN,
                         witnesses=(env.endpoint(witness.port),))
        with AuditLog.open(env.log_dir, HOLDER_ORIGIN) as log:
            old = log.public_key
        done = rotate_audit_key(config)
        assert done.cosigned_by == (env.key.name,) and not done.witness_failures
        with AuditLog.open(env.log_dir, HOLDER_ORIGIN) as log:
            add_sessions(log, 10, 2)
            with pytest.raises(WitnessSubmitError) as refused:
                WitnessClient(config.witnesses).submit(log, log.checkpoint())  # it knows only the old key
            assert [f.reason for f in refused.value.failures] == [p.BAD_SIGNATURE]
    write_config(env.root, format_verifier_key(HOLDER_ORIGIN, done.key))  # what the command told the operator
    with running_witness(env.config_path) as witness, AuditLog.open(env.log_dir, HOLDER_ORIGIN) as log:
        [cosignature] = WitnessClient([env.endpoint(witness.port)]).submit(log, log.checkpoint())
        assert cosignature.witness == env.key.name
    result = verify_log(env.log_dir, public_key=old, witnesses=[env.key])
    assert result.ok, result.error
    assert result.witnesses[0].size == result.size


def test_no_rotation_while_a_witness_does_not_answer(tmp_path: Path, env: WitnessSetup) -> None:
    dep = make_deployment(tmp_path / "holder", records=20)
    with running_witness(env.config_path) as witness:
        port = witness.port
    config = replace(dep.config, audit_dir=env.log_dir, audit_origin=HOLDER_ORIGIN,
                     witnesses=(replace(env.endpoint(port), timeout_seconds=0.5),))
    before = (env.log_dir / "audit" / "audit.pub").read_text()
    with pytest.raises(StoreError, match="every configured witness must cosign before the audit key rotates"):
        rotate_audit_key(config)
    assert (env.log_dir / "audit" / "audit.pub").read_text() == before
    assert verify_log(env.log_dir).ok


def test_a_statement_a_crash_left_uncopied_is_served_when_the_holder_starts(
    tmp_path: Path, engine: BatchEngine,
) -> None:
    dep = make_deployment(tmp_path / "holder", records=20)
    oprf_key = load_key_file(dep.config.key_file).public_key
    with AuditLog.open(dep.config.audit_dir, dep.config.audit_origin) as log:
        old = log.public_key
        note = log.rotate_key()  # the command died before copying it for GetInfo
    with dep.running(engine) as daemon, AuditLog.open(tmp_path / "raudit", "requester/test") as audit:
        assert daemon.runtime.rotations[-1] == note
        pinned = endpoint(dep, daemon.port, oprf_key, old)
        with HolderClient(pinned, pins=PinStore(tmp_path / "requester", pinned, audit)) as client:
            client.info()
        assert client.pin.audit_public_key == daemon.runtime.audit.public_key != old
