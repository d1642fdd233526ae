"""A holder key that changes in the middle of a requester job (SPEC.md 2.3, "In the middle of a job").

With a valid rotation statement the job re-pins, downloads the new index and finishes
with the same results as without the rotation. Without one it stops with
``holder_not_pinned`` and keeps every batch it has; once the operator pins the new key by
hand it resumes where it stopped and finishes with the same results.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from helpers.job_runner import job_runner
from helpers.key_change import results, resume_after_pinning, run_into_a_key_change, running_workspace

from blindmatch.crypto.batch import BatchEngine
from blindmatch.holder.service import HolderDaemon
from blindmatch.pilot.workspace import Workspace
from blindmatch.requester.pins import PIN_NAME
from blindmatch.requester.runner import Progress
from blindmatch.vocabulary import JobState, Mode
from tests.helpers.officials import approve

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[tuple[Workspace, HolderDaemon, BatchEngine]]:
    # An epoch schedule, so that the tests can rotate the key at will.
    with running_workspace(tmp_path / "ws", holder={"epoch_days": 3650, "records": "records.csv"}) as running:
        yield running


def rotate_after_first_batch(daemon: HolderDaemon, with_statement: bool) -> tuple[list[int], Callable[[Progress], None]]:
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
    rotated, on_progress = rotate_after_first_batch(daemon, with_statement=True)
    with job_runner(ws.requester_config, engine) as runner:
        config = runner.config
        # The sessions approved for the old key are prepared again for the new one: a second approval.
        final = run_into_a_key_change(ws, runner, tmp_path, on_progress, rounds=2)
    assert rotated and final.state == JobState.SUCCEEDED and final.elements_done == final.preparation.elements_total
    assert results(tmp_path / "results.csv") == results(tmp_path / "baseline.csv")
    [entry] = repinned(config.audit_dir)
    assert entry["epoch"] == 2 and entry["key_id"] == daemon.runtime.key.key_id.hex()
    assert json.loads((config.state_dir / PIN_NAME).read_text())["epoch"] == 2


def test_a_key_change_without_a_statement_stops_the_job_which_resumes_after_a_new_pin(
    workspace: tuple[Workspace, HolderDaemon, BatchEngine], tmp_path: Path,
) -> None:
    ws, daemon, engine = workspace
    rotated, on_progress = rotate_after_first_batch(daemon, with_statement=False)
    with job_runner(ws.requester_config, engine) as runner:
        config = runner.config
        stopped = run_into_a_key_change(ws, runner, tmp_path, on_progress)
    assert rotated and (stopped.state, stopped.reason) == (JobState.FAILED, "holder_not_pinned")
    assert "not the pinned ones" in stopped.error and "no valid key rotation statement" in stopped.error
    assert 0 < stopped.elements_done < stopped.preparation.elements_total  # the sessions before the change are kept
    assert not repinned(config.audit_dir) and not (config.state_dir / PIN_NAME).exists()
    # The operator checks the new key out of band and pins it by hand.
    resume_after_pinning(ws, engine, tmp_path, stopped.id, oprf_public_key=daemon.runtime.key.public_key.hex())


def test_approved_requests_for_the_old_key_are_not_sent_but_prepared_again(
    workspace: tuple[Workspace, HolderDaemon, BatchEngine], tmp_path: Path,
) -> None:
    ws, daemon, engine = workspace
    with job_runner(ws.requester_config, engine) as runner:
        config = runner.config
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
    assert final.state == JobState.SUCCEEDED and final.elements_done == final.preparation.elements_total
    assert [e["epoch"] for e in repinned(config.audit_dir)] == [2]
