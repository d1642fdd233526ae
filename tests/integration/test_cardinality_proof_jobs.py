"""A requester job against a holder daemon that falsifies a cardinality count mid-job (SPEC.md 6, 5.5 step 4a).

The holder answers the job's first session honestly and drops a match from the second
(``helpers.dishonest_engine``). The second session's shuffle proof fails: the job stops
(``proof_invalid``) with the first session's count kept and nothing of the second counted,
both audit logs record the failed session with that reason, and once the holder is honest
again the job resumes with the rest and ends with the count of an undisturbed run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.dishonest_engine import DishonestEngine
from helpers.job_runner import job_runner
from helpers.officials import run_approved

from blindmatch.crypto.batch import BatchEngine
from blindmatch.holder.config import load_holder_config
from blindmatch.holder.index_build import build_index
from blindmatch.holder.service import HolderDaemon
from blindmatch.pilot.workspace import Workspace, create_workspace
from blindmatch.vocabulary import JobState, Mode, Reason

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[tuple[Workspace, BatchEngine]]:
    """A pilot workspace whose cardinality jobs take two sessions (24 keys each at most, batches of 8)."""
    ws = create_workspace(tmp_path / "ws", holder_records=300, queries=40,
                          matching={"batch_size": 8, "session_max_records": 24, "window": 1})
    build_index(ws.records, load_holder_config(ws.holder_config), progress=False)
    engine = BatchEngine(2)
    try:
        yield ws, engine
    finally:
        engine.close()


def _serving(ws: Workspace, engine: object) -> HolderDaemon:
    daemon = HolderDaemon.from_config(load_holder_config(ws.holder_config), engine=engine)  # type: ignore[arg-type]
    daemon.start()
    return daemon


def _failed_sessions(audit_dir: Path) -> list[tuple[str, str]]:
    lines = (audit_dir / "audit" / "log.jsonl").read_text().splitlines()
    return [(e["session_id"], e["reason"]) for e in map(json.loads, lines) if e["event"] == "session_failed"]


def test_a_falsified_count_stops_the_job_which_keeps_its_progress_and_resumes(
        workspace: tuple[Workspace, BatchEngine], tmp_path: Path) -> None:
    ws, engine = workspace
    honest = _serving(ws, engine)
    try:
        with job_runner(ws.requester_config, engine) as runner:
            baseline, _ = runner.submit(ws.queries, tmp_path / "baseline.count", Mode.CARDINALITY)
            undisturbed = run_approved(ws, runner, baseline.id).job
    finally:
        honest.stop(0)
    assert undisturbed.state == JobState.SUCCEEDED and undisturbed.matches > 0
    total = undisturbed.preparation.elements_total
    assert total > 24  # two sessions

    liar = DishonestEngine(engine, "drop a match", target=0, source=1, cheat_from=1)
    dishonest = _serving(ws, liar)
    try:
        with job_runner(ws.requester_config, engine) as runner:
            job, _ = runner.submit(ws.queries, tmp_path / "results.count", Mode.CARDINALITY)
            stopped = run_approved(ws, runner, job.id).job
    finally:
        dishonest.stop(0)
    assert liar.sessions == 2
    # As for a membership batch whose proof fails: the job ends as the holder's refusal to answer honestly.
    assert stopped.state == JobState.ended_by(Reason.PROOF_INVALID) == JobState.REFUSED
    assert "proof_invalid" in stopped.error
    assert stopped.elements_done == 24  # the first session's, verified and kept; nothing of the second
    mine = _failed_sessions(ws.requester_dir)
    assert [reason for _, reason in mine] == ["proof_invalid"]
    assert _failed_sessions(ws.holder_dir) == mine  # the same session, the same reason, on the holder's side

    honest = _serving(ws, engine)
    try:
        with job_runner(ws.requester_config, engine) as runner:
            resumed, was_resumed = runner.submit(ws.queries, tmp_path / "results.count", Mode.CARDINALITY)
            assert was_resumed and resumed.id == job.id
            final = run_approved(ws, runner, job.id).job
    finally:
        honest.stop(0)
    assert final.state == JobState.SUCCEEDED and final.elements_done == total
    assert final.matches == undisturbed.matches
