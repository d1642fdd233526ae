"""A requester job during which the holder's keys change: the run into the change and the
resumption once the operator pins the new key by hand (SPEC.md 2.3 and 2.4, "In the middle
of a job"), shared by the OPRF key and the audit key tests."""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import tomli_w

from blindmatch.crypto.batch import BatchEngine
from blindmatch.holder.config import load_holder_config
from blindmatch.holder.index_build import build_index
from blindmatch.holder.service import HolderDaemon
from blindmatch.pilot.workspace import Workspace, create_workspace
from blindmatch.requester.jobs import Job
from blindmatch.requester.runner import JobRunner, Progress
from blindmatch.vocabulary import JobState, Mode
from helpers.job_runner import job_runner
from helpers.officials import run_approved


@contextmanager
def running_workspace(root: Path, holder: dict[str, Any] | None = None) -> Iterator[tuple[Workspace, HolderDaemon, BatchEngine]]:
    """A pilot workspace whose jobs take several sessions (24 records each, in batches of 8),
    its holder daemon running in this process; ``holder`` adds entries to holder.toml's ``[holder]``."""
    ws = create_workspace(root, holder_records=300, queries=40,
                          matching={"batch_size": 8, "session_max_records": 24, "window": 1})
    if holder:
        doc = tomllib.loads(ws.holder_config.read_text())
        doc["holder"] |= holder
        ws.holder_config.write_text(tomli_w.dumps(doc))
    config = load_holder_config(ws.holder_config)
    build_index(ws.records, config, progress=False)
    engine = BatchEngine(2)
    daemon = HolderDaemon.from_config(config, engine=engine)
    daemon.start()
    try:
        yield ws, daemon, engine
    finally:
        daemon.stop(0)
        engine.close()


def results(path: Path) -> list[list[str]]:
    return [line.split(",") for line in path.read_text().splitlines()]


def run_into_a_key_change(ws: Workspace, runner: JobRunner, out_dir: Path,
                          on_progress: Callable[[Progress], None], rounds: int = 1) -> Job:
    """Match the queries once undisturbed (``baseline.csv``), then again into ``results.csv``
    while ``on_progress`` changes the holder's keys mid-job; the second job as it ended."""
    baseline, _ = runner.submit(ws.queries, out_dir / "baseline.csv", Mode.MEMBERSHIP)
    assert run_approved(ws, runner, baseline.id).job.state == JobState.SUCCEEDED
    job, _ = runner.submit(ws.queries, out_dir / "results.csv", Mode.MEMBERSHIP)
    return run_approved(ws, runner, job.id, on_progress, rounds=rounds).job


def resume_after_pinning(ws: Workspace, engine: BatchEngine, out_dir: Path, job_id: str, **pins: str) -> None:
    """The operator pins the holder's new keys by hand (``[holder]`` entries of requester.toml);
    the stopped job resumes and finishes with the results of the undisturbed baseline."""
    doc = tomllib.loads(ws.requester_config.read_text())
    doc["holder"] |= pins
    ws.requester_config.write_text(tomli_w.dumps(doc))
    with job_runner(ws.requester_config, engine) as runner:
        resumed, was_resumed = runner.submit(ws.queries, out_dir / "results.csv", Mode.MEMBERSHIP)
        assert was_resumed and resumed.id == job_id
        final = run_approved(ws, runner, job_id).job
    assert final.state == JobState.SUCCEEDED and final.elements_done == final.preparation.elements_total
    assert results(out_dir / "results.csv") == results(out_dir / "baseline.csv")
