"""A holder key that changes in the middle of a requester job (SPEC.md 2.3, "In the middle of a job").

With a valid rotation statement the job re-pins, downloads the new index and finishes
with the same results as without the rotation. Without one it stops with
``holder_not_pinned`` and keeps every batch it has; once the operator pins the new key by
hand it resumes where it stopped and finishes with the same results.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import tomli_w

from blindmatch.audit import AuditLog
from blindmatch.crypto.batch import BatchEngine
from blindmatch.holder.config import load_holder_config
from blindmatch.holder.index_build import build_index
from blindmatch.holder.service import HolderDaemon
from blindmatch.pilot.workspace import Workspace, create_workspace
from blindmatch.requester.config import load_requester_config
from blindmatch.requester.jobs import JobStore
from blindmatch.requester.pins import PIN_NAME
from blindmatch.requester.runner import JobRunner, Progress
from blindmatch.vocabulary import JobState, Mode
from tests.helpers.officials import approve, run_approved

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[tuple[Workspace, HolderDaemon, BatchEngine]]:
    ws = create_workspace(tmp_path / "ws", holder_records=300, queries=40,
                          matching={"batch_size": 8, "session_max_records": 24, "window": 1})
    doc = tomllib.loads(ws.holder_config.read_text())
    doc["holder"] |= {"epoch_days": 3650, "records": "records.csv"}  # an epoch schedule, rotated at will below
    ws.holder_config.write_text(tomli_w.dumps(doc))
    config = load_holder_config(ws.holder_config)
    build_index(ws.records, config, progress=False)
    engine = BatchEngine(2)
    daemon = HolderDaemon.from_config(config, engine=engine)
    daemon.start()
    yield ws, daemon, engine
    daemon.stop(0)
    engine.close()


def results(path: Path) -> list[list[str]]:
    return [line.split(",") for line in path.read_text().splitlines()]


def rotate_after_first_batch(daemon: HolderDaemon, with_statement: bool) -> tuple[list[int], object]:
    rotated: list[int] = []

    def on_progress(progress: Progress) -> None:
        if progress.phase == "match" and not rotated:
            assert daemon.rotator is not None
            daemon.rotator.rotate(datetime.now(UTC).replace(microsecond=0))
            if not with_statement:
                daemon.runtime.rotations = ()  # a holder that changed its key without saying so
            rotated.append(progress.done)
    return rotated, on_progress


def repinned(audit_dir: Path) -> list[dict[str, object]]:
    lines = (audit_dir / "audit" / "log.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["event"] == "holder_repinned"]


def test_a_valid_statement_mid_job_re_pins_and_the_job_finishes(
    workspace: tuple[Workspace, HolderDaemon, BatchEngine], tmp_path: Path,
) -> None:
    ws, daemon, engine = workspace
    config = load_requester_config(ws.requester_config)
    config.state_dir.mkdir(parents=True, exist_ok=True)
    with AuditLog.open(config.audit_dir, config.audit_origin) as audit:
        runner = JobRunner(config, JobStore(config.store_path), audit, engine)
        baseline, _ = runner.submit(ws.queries, tmp_path / "baseline.csv", Mode.MEMBERSHIP)
        assert run_approved(ws, runner, baseline.id).job.state == JobState.SUCCEEDED
        rotated, on_progress = rotate_after_first_batch(daemon, with_statement=True)
        job, _ = runner.submit(ws.queries, tmp_path / "results.csv", Mode.MEMBERSHIP)
        # The sessions approved for the old key are prepared again for the new one: a second approval.
        final = run_approved(ws, runner, job.id, on_progress, rounds=2).job  # type: ignore[arg-type]
    assert rotated and final.state == JobState.SUCCEEDED and final.elements_done == final.elements_total
    assert results(tmp_path / "results.csv") == results(tmp_path / "baseline.csv")
    [entry] = repinned(config.audit_dir)
    assert entry["epoch"] == 2 and entry["key_id"] == daemon.runtime.key.key_id.hex()
    assert json.loads((config.state_dir / PIN_NAME).read_text())["epoch"] == 2


def test_a_key_change_without_a_statement_stops_the_job_which_resumes_after_a_new_pin(
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
        rotated, on_progress = rotate_after_first_batch(daemon, with_statement=False)
        job, _ = runner.submit(ws.queries, tmp_path / "results.csv", Mode.MEMBERSHIP)
        stopped = run_approved(ws, runner, job.id, on_progress).job  # type: ignore[arg-type]
    assert rotated and (stopped.state, stopped.reason) == (JobState.FAILED, "holder_not_pinned")
    assert "not the pinned ones" in stopped.error and "no valid key rotation statement" in stopped.error
    assert 0 < stopped.elements_done < stopped.elements_total  # the sessions before the change are kept
    assert not repinned(config.audit_dir) and not (config.state_dir / PIN_NAME).exists()

    # The operator checks the new key out of band and pins it by hand.
    doc = tomllib.loads(ws.requester_config.read_text())
    doc["holder"]["oprf_public_key"] = daemon.runtime.key.public_key.hex()
    ws.requester_config.write_text(tomli_w.dumps(doc))
    config = load_requester_config(ws.requester_config)
    with AuditLog.open(config.audit_dir, config.audit_origin) as audit:
        runner = JobRunner(config, store, audit, engine)
        resumed, was_resumed = runner.submit(ws.queries, tmp_path / "results.csv", Mode.MEMBERSHIP)
        assert was_resumed and resumed.id == job.id
        final = run_approved(ws, runner, job.id).job
    assert final.state == JobState.SUCCEEDED and final.elements_done == final.elements_total
    assert results(tmp_path / "results.csv") == results(tmp_path / "baseline.csv")


def test_approved_requests_for_the_old_key_are_not_sent_but_prepared_again(
    workspace: tuple[Workspace, HolderDaemon, BatchEngine], tmp_path: Path,
) -> None:
    ws, daemon, engine = workspace
    config = load_requester_config(ws.requester_config)
    config.state_dir.mkdir(parents=True, exist_ok=True)

    with AuditLog.open(config.audit_dir, config.audit_origin) as audit:
        runner = JobRunner(config, JobStore(config.store_path), audit, engine)
        job, _ = runner.submit(ws.queries, tmp_path / "results.csv", Mode.MEMBERSHIP)
        assert runner.run(job.id).exit_state == JobState.AWAITING_APPROVAL
        approve(ws, job.id)
        assert daemon.rotator is not None
        daemon.rotator.rotate(datetime.now(UTC).replace(microsecond=0))  # after the approval, before the sending
        again = runner.run(job.id)
        assert again.exit_state == JobState.AWAITING_APPROVAL and again.job.elements_done == 0
        assert not runner.store.has_sessions(job.id)  # nothing signed for the old key went out
        approve(ws, job.id)
        final = runner.run(job.id).job
    assert final.state == JobState.SUCCEEDED and final.elements_done == final.elements_total
    assert [e["epoch"] for e in repinned(config.audit_dir)] == [2]
