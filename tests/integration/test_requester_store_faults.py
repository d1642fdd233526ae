"""A job store that cannot lie (issue 17): flipped bits fail the job instead of changing a
result, a store that forgot audited sessions is refused, a failed RESULTS.csv write leaves
no hidden copy of personal data."""

from __future__ import annotations

import errno
import gc
import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from blindmatch.audit import AuditLog
from blindmatch.cli.main import main
from blindmatch.crypto.batch import BatchEngine
from blindmatch.pilot.processes import HolderProcess, build_index
from blindmatch.pilot.workspace import Workspace, create_workspace
from blindmatch.requester import inputs
from blindmatch.requester.config import RequesterConfig, load_requester_config
from blindmatch.requester.jobs import JobStore
from blindmatch.requester.runner import JobRunner
from blindmatch.requester.store_check import JobStoreCorrupt
from blindmatch.vocabulary import Mode
from tests.helpers.officials import run_approved

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    ws = create_workspace(tmp_path_factory.mktemp("store"), holder_records=500, queries=60,
                          matching={"batch_size": 16, "window": 2})
    build_index(ws)
    process = HolderProcess(ws.holder_config, ws.root / "logs")
    process.start()
    yield ws
    process.terminate()


@pytest.fixture
def config(workspace: Workspace) -> RequesterConfig:
    config = load_requester_config(workspace.requester_config)
    config.state_dir.mkdir(parents=True, exist_ok=True)
    return config


def run_job(workspace: Workspace, config: RequesterConfig, queries: Path, out: Path) -> tuple[str, str, str]:
    """(job id, end state, error) of one in-process run, approved by the official when it waits."""
    engine = BatchEngine()
    try:
        with AuditLog.open(config.audit_dir, config.audit_origin) as audit:
            runner = JobRunner(config, JobStore(config.store_path), audit, engine)
            job, _ = runner.submit(queries, out, Mode.MEMBERSHIP)
            outcome = run_approved(workspace, runner, job.id)
            return job.id, outcome.exit_state, outcome.job.error
    finally:
        engine.close()


def sql(config: RequesterConfig, statement: str, *params: object) -> list[tuple[object, ...]]:
    with sqlite3.connect(config.store_path) as conn:
        rows = conn.execute(statement, params).fetchall()
    conn.close()
    return rows


@pytest.mark.parametrize("flip", ["record", "hit bit"])
def test_a_flipped_bit_fails_the_job_instead_of_changing_a_result(
        workspace: Workspace, config: RequesterConfig, tmp_path: Path, flip: str) -> None:
    out = tmp_path / "results.csv"
    job_id, state, _ = run_job(workspace, config, workspace.queries, out)
    assert state == "succeeded"
    out.unlink()
    if flip == "record":  # a record's true becomes false
        (row,) = sql(config, "SELECT row FROM records WHERE job_id = ? AND matched = 1 LIMIT 1", job_id)[0]
        sql(config, "UPDATE records SET matched = 0, tier = NULL WHERE job_id = ? AND row = ?", job_id, row)
        expected = f"the stored result of row {row} (matched=false) contradicts its evaluated batches"
    else:  # one hit bit of a batch flips
        session_id, seq, hits = next(r for r in sql(
            config, "SELECT session_id, seq, hits FROM batches WHERE job_id = ?", job_id) if any(r[2]))
        flipped = bytearray(hits)  # type: ignore[arg-type]
        flipped[next(i for i, b in enumerate(flipped) if b)] ^= 0xFF
        sql(config, "UPDATE batches SET hits = ? WHERE session_id = ? AND seq = ?", bytes(flipped), session_id, seq)
        expected = "contradicts its evaluated batches"
    sql(config, "UPDATE jobs SET state = 'queued' WHERE id = ?", job_id)  # resume the finished job
    job_id_again, state, error = run_job(workspace, config, workspace.queries, out)
    assert (job_id_again, state) == (job_id, "failed")
    assert expected in error and "no RESULTS.csv is written" in error
    assert not out.exists()


def test_an_emptied_store_with_audited_sessions_is_refused(
        workspace: Workspace, config: RequesterConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, state, _ = run_job(workspace, config, workspace.queries, tmp_path / "results.csv")
    assert state == "succeeded"
    gc.collect()  # close the finished run's store connections, as a stopped process would
    for suffix in ("-wal", "-shm"):
        Path(f"{config.store_path}{suffix}").unlink(missing_ok=True)
    config.store_path.write_bytes(b"")  # truncated to zero
    with pytest.raises(JobStoreCorrupt, match=r"does not know .* sessions the audit log"):
        run_job(workspace, config, workspace.queries, tmp_path / "again.csv")
    code = main(["requester", "match", str(workspace.queries), "--out", str(tmp_path / "again.csv"),
                 "--config", str(workspace.requester_config), "--json"])
    assert code == 1
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert str(config.store_path) in last["error"]
    assert not (tmp_path / "again.csv").exists()
    config.store_path.unlink()  # the next case starts over knowingly: store and audit log aside
    (config.audit_dir / "audit").rename(tmp_path / "old-audit")


def test_a_failed_results_write_leaves_no_hidden_copy(
        workspace: Workspace, config: RequesterConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class FullDisk:
        """``os`` for the results writer only, with a disk that fills at fsync."""

        def __getattr__(self, name: str) -> object:
            return getattr(os, name)

        @staticmethod
        def fsync(fd: int) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(inputs, "os", FullDisk())
    _, state, error = run_job(workspace, config, workspace.queries, tmp_path / "results.csv")
    monkeypatch.undo()
    assert state == "failed" and "No space left on device" in error
    assert list(tmp_path.iterdir()) == []


def test_a_corrupt_job_store_ends_with_the_json_line(
        workspace: Workspace, config: RequesterConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gc.collect()
    for suffix in ("-wal", "-shm"):
        Path(f"{config.store_path}{suffix}").unlink(missing_ok=True)
    config.store_path.write_bytes(b"\xff" * 8192)
    code = main(["requester", "match", str(workspace.queries), "--out", str(tmp_path / "r.csv"),
                 "--config", str(workspace.requester_config), "--json"])
    captured = capsys.readouterr()
    assert code == 1 and "Traceback" not in captured.err
    last = json.loads(captured.out.strip().splitlines()[-1])
    assert f"cannot open the job store {config.store_path}" in last["error"]
    config.store_path.unlink()
